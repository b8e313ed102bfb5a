/* What MTA-STS policies and DANE states ask of a session
   (src/relay/transport.c): which MX hosts may be used, the TLS settings
   with DANE first (RFC 8461 2), and the plain-text retry of
   outbound_tls = may. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "relay/transport.h"

#include <stdlib.h>
#include <string.h>

static void policy_of(struct mta_sts_policy *p, const char *mode)
{
	char *text =
	    xasprintf("version: STSv1\nmode: %s\nmx: mx.example\nmx: *.backup.example\nmax_age: 60\n", mode);
	const char *error;
	assert_int_equal(mta_sts_policy_parse(text, strlen(text), p, &error), 0);
	free(text);
}

static struct tls_tlsa rec = {3, 1, 1, (unsigned char *)"0123456789abcdef0123456789abcdef", 32};

static void test_refuse_host(void **state)
{
	(void)state;
	struct transport_policy tp = {.mx = true, .base = TLS_POLICY_MAY};
	struct mta_sts_policy p;
	/* no policy: every host */
	assert_null(transport_policy_refuse_host(&tp, "example", "other.example"));
	policy_of(&p, "enforce");
	transport_policy_set_sts(&tp, &p);
	assert_null(transport_policy_refuse_host(&tp, "example", "mx.example"));
	assert_null(transport_policy_refuse_host(&tp, "example", "b1.backup.example"));
	char *reply = transport_policy_refuse_host(&tp, "example", "other.example");
	assert_non_null(reply);
	assert_non_null(strstr(reply, "451 4.7.5 MTA-STS"));
	free(reply);
	/* DANE with usable records takes precedence for its host */
	transport_policy_set_dane(&tp, RUNNER_DANE_VERIFY, &rec, 1);
	assert_null(transport_policy_refuse_host(&tp, "example", "other.example"));
	mta_sts_policy_clear(&p);
	/* testing mode: logged only */
	policy_of(&p, "testing");
	transport_policy_set_sts(&tp, &p);
	transport_policy_set_dane(&tp, RUNNER_DANE_NONE, NULL, 0);
	assert_null(transport_policy_refuse_host(&tp, "example", "other.example"));
	mta_sts_policy_clear(&p);
	/* mode none is no policy */
	policy_of(&p, "none");
	transport_policy_set_sts(&tp, &p);
	assert_false(tp.has_sts);
	mta_sts_policy_clear(&p);
	transport_policy_clear(&tp);
}

static void test_settings(void **state)
{
	(void)state;
	static const struct {
		const char *mode; /* MTA-STS, NULL: none */
		enum runner_tls_dane dane;
		enum tls_policy base;
		bool mx;
		enum tls_policy tls;
		bool check, ca, tlsa;
		const char *name;
	} cases[] = {
	    {NULL, RUNNER_DANE_NONE, TLS_POLICY_MAY, true, TLS_POLICY_MAY, false, false, false, NULL},
	    {NULL, RUNNER_DANE_NONE, TLS_POLICY_NONE, true, TLS_POLICY_NONE, false, false, false, NULL},
	    {"enforce", RUNNER_DANE_NONE, TLS_POLICY_MAY, true, TLS_POLICY_VERIFY, false, true, false,
	     "MTA-STS"},
	    {"enforce", RUNNER_DANE_NONE, TLS_POLICY_NONE, true, TLS_POLICY_VERIFY, false, true, false,
	     "MTA-STS"},
	    {"testing", RUNNER_DANE_NONE, TLS_POLICY_MAY, true, TLS_POLICY_MAY, true, true, false, NULL},
	    {"testing", RUNNER_DANE_NONE, TLS_POLICY_NONE, true, TLS_POLICY_NONE, false, false, false, NULL},
	    {NULL, RUNNER_DANE_VERIFY, TLS_POLICY_MAY, true, TLS_POLICY_ENCRYPT, false, false, true, "DANE"},
	    /* RFC 8461 2: DANE first */
	    {"enforce", RUNNER_DANE_VERIFY, TLS_POLICY_MAY, true, TLS_POLICY_ENCRYPT, false, false, true,
	     "DANE"},
	    {"testing", RUNNER_DANE_VERIFY, TLS_POLICY_NONE, true, TLS_POLICY_ENCRYPT, false, false, true,
	     "DANE"},
	    /* records, none usable: TLS without authentication, unless MTA-STS enforces */
	    {NULL, RUNNER_DANE_ENCRYPT, TLS_POLICY_MAY, true, TLS_POLICY_ENCRYPT, false, false, false,
	     "DANE"},
	    {NULL, RUNNER_DANE_ENCRYPT, TLS_POLICY_VERIFY, true, TLS_POLICY_VERIFY, false, false, false,
	     "DANE"},
	    {"enforce", RUNNER_DANE_ENCRYPT, TLS_POLICY_MAY, true, TLS_POLICY_VERIFY, false, true, false,
	     "MTA-STS"},
	    /* [routes] and the relayhost: no policies */
	    {"enforce", RUNNER_DANE_VERIFY, TLS_POLICY_MAY, false, TLS_POLICY_MAY, false, false, false, NULL},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct transport_policy tp = {.mx = cases[i].mx, .base = cases[i].base};
		struct mta_sts_policy p;
		if (cases[i].mode != NULL) {
			policy_of(&p, cases[i].mode);
			transport_policy_set_sts(&tp, &p);
			mta_sts_policy_clear(&p);
		}
		transport_policy_set_dane(&tp, cases[i].dane, &rec, 1);
		struct smtp_client_settings set;
		memset(&set, 0, sizeof(set));
		transport_policy_settings(&tp, "/ca.pem", &set);
		if (set.tls != cases[i].tls || set.tls_check != cases[i].check ||
		    (set.tls_ca_file != NULL) != cases[i].ca || (set.ntlsa > 0) != cases[i].tlsa)
			fail_msg("case %zu: tls %d check %d ca %d tlsa %zu", i, set.tls, set.tls_check,
				 set.tls_ca_file != NULL, set.ntlsa);
		const char *name = transport_policy_name(&tp, &set);
		if ((name == NULL) != (cases[i].name == NULL) ||
		    (name != NULL && strcmp(name, cases[i].name) != 0))
			fail_msg("case %zu: policy %s", i, name != NULL ? name : "none");
		if (set.ntlsa > 0)
			assert_memory_equal(set.tlsa[0].data, rec.data, 32);
		transport_policy_clear(&tp);
	}
}

static void test_fallback(void **state)
{
	(void)state;
	struct transport_policy tp = {.mx = true, .base = TLS_POLICY_MAY};
	struct smtp_client_settings set;
	memset(&set, 0, sizeof(set));
	struct smtp_client_result failed = {.status = SMTP_CLIENT_TEMPFAIL, .tls_failed = true};
	struct smtp_client_result refused = {.status = SMTP_CLIENT_TEMPFAIL, .connection_failed = true};
	transport_policy_settings(&tp, NULL, &set);
	assert_false(transport_policy_fallback(&tp, &set, &refused)); /* not a TLS failure */
	assert_true(transport_policy_fallback(&tp, &set, &failed));
	transport_policy_settings(&tp, NULL, &set);
	assert_int_equal(set.tls, TLS_POLICY_NONE);
	assert_false(transport_policy_fallback(&tp, &set, &failed)); /* once */
	/* the next host starts with TLS again */
	transport_policy_set_dane(&tp, RUNNER_DANE_NONE, NULL, 0);
	transport_policy_settings(&tp, NULL, &set);
	assert_int_equal(set.tls, TLS_POLICY_MAY);
	/* a policy that asks for TLS: never in plain text */
	struct mta_sts_policy p;
	policy_of(&p, "enforce");
	transport_policy_set_sts(&tp, &p);
	mta_sts_policy_clear(&p);
	transport_policy_settings(&tp, NULL, &set);
	assert_false(transport_policy_fallback(&tp, &set, &failed));
	transport_policy_set_sts(&tp, NULL);
	transport_policy_set_dane(&tp, RUNNER_DANE_VERIFY, &rec, 1);
	transport_policy_settings(&tp, NULL, &set);
	assert_false(transport_policy_fallback(&tp, &set, &failed));
	transport_policy_set_dane(&tp, RUNNER_DANE_ENCRYPT, NULL, 0);
	transport_policy_settings(&tp, NULL, &set);
	assert_false(transport_policy_fallback(&tp, &set, &failed));
	/* outbound_tls = encrypt: no retry either */
	transport_policy_set_dane(&tp, RUNNER_DANE_NONE, NULL, 0);
	tp.base = TLS_POLICY_ENCRYPT;
	transport_policy_settings(&tp, NULL, &set);
	assert_false(transport_policy_fallback(&tp, &set, &failed));
	transport_policy_clear(&tp);
}

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refuse_host),
	    cmocka_unit_test(test_settings),
	    cmocka_unit_test(test_fallback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
