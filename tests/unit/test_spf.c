/* SPF (RFC 7208): the macro examples of section 7.4, the record syntax,
   the evaluation over a table of DNS answers and the limits of 4.6.4.  The
   whole openspf.org suite runs in tests/integration/test_spf.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "lib/xalloc.h"
#include "trust/spf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A zone: (type, name, records separated by '|'); absent names do not
   exist, "TEMPFAIL" fails. */
struct rr {
	enum spf_rr_type type;
	const char *name;
	const char *records;
};

static int runs;

/* Evaluates with answers from zone, as the event loop would; the number of
   rounds is bounded. */
static enum spf_result eval(const struct rr *zone, size_t nzone, const char *ip, const char *sender,
			    const char **detail_r)
{
	struct spf *spf = spf_new(ip, sender, "helo.example.org", "mx.example.net");
	assert_non_null(spf);
	runs = 0;
	while (!spf_run(spf)) {
		assert_true(++runs < 100);
		const struct spf_lookup *pending;
		size_t n = spf_pending(spf, &pending);
		assert_true(n > 0);
		/* copy: answering changes the pending list */
		struct spf_lookup todo[64];
		char *names[64];
		assert_true(n <= 64);
		for (size_t i = 0; i < n; i++) {
			names[i] = xstrdup(pending[i].name);
			todo[i] = (struct spf_lookup){pending[i].type, names[i]};
		}
		for (size_t i = 0; i < n; i++) {
			const struct rr *found = NULL;
			bool name_exists = false;
			for (size_t z = 0; z < nzone; z++) {
				if (strcmp(zone[z].name, todo[i].name) != 0)
					continue;
				name_exists = true;
				if (zone[z].type == todo[i].type)
					found = &zone[z];
			}
			if (found != NULL && !strcmp(found->records, "TEMPFAIL")) {
				spf_answer(spf, todo[i].type, todo[i].name, SPF_DNS_TEMPFAIL, NULL, 0);
			} else if (found != NULL) {
				char *copy = xstrdup(found->records);
				const char *rrs[32];
				size_t nrr = 0;
				for (char *tok = strtok(copy, "|"); tok != NULL && nrr < 32;
				     tok = strtok(NULL, "|"))
					rrs[nrr++] = tok;
				spf_answer(spf, todo[i].type, todo[i].name, SPF_DNS_OK, rrs, nrr);
				free(copy);
			} else {
				spf_answer(spf, todo[i].type, todo[i].name,
					   name_exists ? SPF_DNS_OK : SPF_DNS_NXDOMAIN, NULL, 0);
			}
			free(names[i]);
		}
	}
	const char *detail;
	enum spf_result r = spf_result(spf, &detail);
	static char kept[512];
	snprintf(kept, sizeof(kept), "%s", detail != NULL ? detail : "");
	if (detail_r != NULL)
		*detail_r = kept;
	spf_free(&spf);
	return r;
}

static void check_expand(struct spf *spf, const char *macro, const char *expected)
{
	char *got = spf_expand(spf, macro, strlen(macro), "email.example.com", false);
	if (got == NULL || strcmp(got, expected) != 0)
		fail_msg("%s: \"%s\", expected \"%s\"", macro, got ? got : "(error)", expected);
	free(got);
}

static void test_macro_examples(void **state)
{
	(void)state;
	/* RFC 7208 7.4 */
	struct spf *spf = spf_new("192.0.2.3", "strong-bad@email.example.com", "helo", "mx");
	check_expand(spf, "%{s}", "strong-bad@email.example.com");
	check_expand(spf, "%{o}", "email.example.com");
	check_expand(spf, "%{d}", "email.example.com");
	check_expand(spf, "%{d4}", "email.example.com");
	check_expand(spf, "%{d3}", "email.example.com");
	check_expand(spf, "%{d2}", "example.com");
	check_expand(spf, "%{d1}", "com");
	check_expand(spf, "%{dr}", "com.example.email");
	check_expand(spf, "%{d2r}", "example.email");
	check_expand(spf, "%{l}", "strong-bad");
	check_expand(spf, "%{l-}", "strong.bad");
	check_expand(spf, "%{lr}", "strong-bad");
	check_expand(spf, "%{lr-}", "bad.strong");
	check_expand(spf, "%{l1r-}", "strong");
	check_expand(spf, "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com");
	check_expand(spf, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com");
	check_expand(spf, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		     "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	check_expand(spf, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com");
	check_expand(spf, "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net");
	/* escapes, and URL encoding for uppercase letters */
	check_expand(spf, "%%%_%-", "% %20");
	check_expand(spf, "%{L}", "strong-bad");
	spf_free(&spf);
	spf = spf_new("2001:db8::cb01", "strong-bad@email.example.com", "helo", "mx");
	check_expand(spf, "%{ir}.%{v}._spf.%{d2}",
		     "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com");
	spf_free(&spf);
	spf = spf_new("192.0.2.3", "a b@example.com", "helo", "mx");
	check_expand(spf, "%{S}", "a%20b%40example.com");
	/* syntax errors; c, r and t only in explanations */
	static const char *const bad[] = {"%",     "%x",     "%{",   "%{s",  "%{x}",
					  "%{s0}", "%{s.x}", "%{c}", "%{r}", "%{t}"};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		char *got = spf_expand(spf, bad[i], strlen(bad[i]), "example.com", false);
		if (got != NULL)
			fail_msg("%s expanded to \"%s\"", bad[i], got);
	}
	char *exp = spf_expand(spf, "%{c} via %{r}", 13, "example.com", true);
	assert_string_equal(exp, "192.0.2.3 via mx");
	free(exp);
	spf_free(&spf);
}

static void test_initial(void **state)
{
	(void)state;
	static const struct rr zone[] = {
	    {SPF_RR_TXT, "example.com", "v=spf1 ip4:192.0.2.0/24 -all"},
	    {SPF_RR_TXT, "helo.example.org", "v=spf1 ip4:192.0.2.9 -all"},
	};
	assert_int_equal(eval(zone, 2, "192.0.2.3", "a@example.com", NULL), SPF_PASS);
	assert_int_equal(eval(zone, 2, "198.51.100.1", "a@example.com", NULL), SPF_FAIL);
	/* the null sender: the HELO name is checked */
	assert_int_equal(eval(zone, 2, "192.0.2.9", "", NULL), SPF_PASS);
	assert_int_equal(eval(zone, 2, "192.0.2.3", "", NULL), SPF_FAIL);
	/* no record, and a name that is not a domain */
	assert_int_equal(eval(zone, 2, "192.0.2.3", "a@other.example", NULL), SPF_NONE);
	assert_int_equal(eval(zone, 2, "192.0.2.3", "a@localhost", NULL), SPF_NONE);
	/* an IPv4-mapped client is an IPv4 client */
	assert_int_equal(eval(zone, 2, "::ffff:192.0.2.3", "a@example.com", NULL), SPF_PASS);
	assert_null(spf_new("not-an-ip", "a@example.com", "h", "r"));
}

static void test_records(void **state)
{
	(void)state;
	static const struct {
		const char *record;
		enum spf_result result;
	} cases[] = {
	    {"v=spf1", SPF_NEUTRAL},
	    {"v=spf1 ", SPF_NEUTRAL},
	    {"v=spf1 -all", SPF_FAIL},
	    {"v=spf1 ~all", SPF_SOFTFAIL},
	    {"v=spf1 ?all", SPF_NEUTRAL},
	    {"v=spf1 +all", SPF_PASS},
	    {"V=SPF1 ALL", SPF_PASS},
	    {"v=spf1 ip4:192.0.2.3 -all", SPF_PASS},
	    {"v=spf1 ip4:192.0.2.0/30 -all", SPF_PASS},
	    {"v=spf1 ip4:192.0.2.4/30 -all", SPF_FAIL},
	    {"v=spf1 ip4:192.0.2.3/33 -all", SPF_PERMERROR},
	    {"v=spf1 ip4:192.0.2.3/032 -all", SPF_PERMERROR},
	    {"v=spf1 ip6:2001:db8::/32 -all", SPF_FAIL}, /* an IPv4 client */
	    {"v=spf1 ip4:300.1.1.1 -all", SPF_PERMERROR},
	    {"v=spf1 a -all", SPF_PASS},
	    {"v=spf1 a/24 -all", SPF_PASS},
	    {"v=spf1 a:host.example.com//64 -all", SPF_PASS},
	    {"v=spf1 a:nohost.example.com -all", SPF_FAIL},
	    {"v=spf1 mx -all", SPF_PASS},
	    {"v=spf1 mx:example.com/24//64 -all", SPF_PASS},
	    {"v=spf1 exists:%{ir}.list.example.com -all", SPF_PASS},
	    {"v=spf1 include:inc.example.com -all", SPF_PASS},
	    {"v=spf1 include:failing.example.com ?all", SPF_NEUTRAL},
	    {"v=spf1 include:nospf.example.com -all", SPF_PERMERROR},
	    {"v=spf1 include:broken.example.com -all", SPF_TEMPERROR},
	    {"v=spf1 redirect=inc.example.com", SPF_PASS},
	    {"v=spf1 redirect=nospf.example.com", SPF_PERMERROR},
	    {"v=spf1 -all redirect=inc.example.com", SPF_FAIL},
	    {"v=spf1 redirect=a.example.com redirect=b.example.com", SPF_PERMERROR},
	    {"v=spf1 exp=a.example.com exp=b.example.com -all", SPF_PERMERROR},
	    {"v=spf1 unknown=%{l} -all", SPF_FAIL}, /* unknown modifiers are ignored */
	    {"v=spf1 foo:bar -all", SPF_PERMERROR},
	    {"v=spf1 -all foo", SPF_PERMERROR}, /* a syntax error anywhere */
	    {"v=spf1 a:example.123 -all", SPF_PERMERROR},
	    {"v=spf1 include: -all", SPF_PERMERROR},
	    {"v=spf1 exists:%{x}.example.com -all", SPF_PERMERROR},
	    {"v=spf1 ptr -all", SPF_PASS},
	    {"v=spf1 ptr:other.example -all", SPF_FAIL},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const struct rr zone[] = {
		    {SPF_RR_TXT, "example.com", cases[i].record},
		    {SPF_RR_A, "example.com", "192.0.2.3"},
		    {SPF_RR_AAAA, "host.example.com", "2001:db8::1"},
		    {SPF_RR_A, "host.example.com", "192.0.2.3"},
		    {SPF_RR_MX, "example.com", "mail.example.com"},
		    {SPF_RR_A, "mail.example.com", "192.0.2.200|192.0.2.3"},
		    {SPF_RR_A, "3.2.0.192.list.example.com", "127.0.0.2"},
		    {SPF_RR_TXT, "inc.example.com", "v=spf1 ip4:192.0.2.3 -all"},
		    {SPF_RR_TXT, "failing.example.com", "v=spf1 -all"},
		    {SPF_RR_TXT, "nospf.example.com", "not spf"},
		    {SPF_RR_TXT, "broken.example.com", "TEMPFAIL"},
		    {SPF_RR_PTR, "3.2.0.192.in-addr.arpa", "mail.example.com|liar.other.example"},
		};
		const char *detail;
		enum spf_result r = eval(zone, N_ELEMENTS(zone), "192.0.2.3", "user@example.com", &detail);
		if (r != cases[i].result)
			fail_msg("\"%s\": %s (%s), expected %s", cases[i].record, spf_result_name(r), detail,
				 spf_result_name(cases[i].result));
	}
}

static void test_records_selection_and_exp(void **state)
{
	(void)state;
	static const struct rr two[] = {{SPF_RR_TXT, "example.com", "v=spf1 -all|v=spf1 +all"}};
	assert_int_equal(eval(two, 1, "192.0.2.3", "a@example.com", NULL), SPF_PERMERROR);
	static const struct rr other[] = {
	    {SPF_RR_TXT, "example.com", "v=spf10 +all|google-site-verification=x"}};
	assert_int_equal(eval(other, 1, "192.0.2.3", "a@example.com", NULL), SPF_NONE);
	static const struct rr exp[] = {
	    {SPF_RR_TXT, "example.com", "v=spf1 exp=why.%{d} -all"},
	    {SPF_RR_TXT, "why.example.com", "%{i} may not send for %{d}; ask %{l}"},
	};
	const char *detail;
	assert_int_equal(eval(exp, 2, "192.0.2.3", "joe@example.com", &detail), SPF_FAIL);
	assert_string_equal(detail, "192.0.2.3 may not send for example.com; ask joe");
}

static void test_limits(void **state)
{
	(void)state;
	/* 10 terms that query DNS pass, 11 are permerror */
	char ten[512] = "v=spf1", eleven[1024];
	for (int i = 0; i < 10; i++)
		strcat(ten, " a:host.example.com/32");
	snprintf(eleven, sizeof(eleven), "%s a:host.example.com", ten);
	strcat(ten, " -all");
	struct rr zone[] = {
	    {SPF_RR_TXT, "example.com", ten},
	    {SPF_RR_A, "host.example.com", "198.51.100.1"},
	};
	assert_int_equal(eval(zone, 2, "192.0.2.3", "a@example.com", NULL), SPF_FAIL);
	zone[0].records = eleven;
	const char *detail;
	assert_int_equal(eval(zone, 2, "192.0.2.3", "a@example.com", &detail), SPF_PERMERROR);
	assert_string_equal(detail, "more than 10 DNS lookups");

	/* an include loop ends at the limit */
	static const struct rr loop[] = {{SPF_RR_TXT, "example.com", "v=spf1 include:example.com -all"}};
	assert_int_equal(eval(loop, 1, "192.0.2.3", "a@example.com", NULL), SPF_PERMERROR);

	/* two void lookups are allowed, the third is permerror */
	static const struct rr voids[] = {
	    {SPF_RR_TXT, "example.com", "v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com -all"},
	};
	assert_int_equal(eval(voids, 1, "192.0.2.3", "a@example.com", &detail), SPF_PERMERROR);
	assert_string_equal(detail, "more than 2 void lookups");

	/* more than 10 MX hosts: permerror */
	static const struct rr mx[] = {
	    {SPF_RR_TXT, "example.com", "v=spf1 mx -all"},
	    {SPF_RR_MX, "example.com", "m1|m2|m3|m4|m5|m6|m7|m8|m9|m10|m11"},
	};
	assert_int_equal(eval(mx, 2, "192.0.2.3", "a@example.com", NULL), SPF_PERMERROR);

	/* the MX hosts are looked up in one round, not one after the other */
	static const struct rr mx3[] = {
	    {SPF_RR_TXT, "example.com", "v=spf1 mx -all"},
	    {SPF_RR_MX, "example.com", "m1.example.com|m2.example.com|m3.example.com"},
	    {SPF_RR_A, "m3.example.com", "192.0.2.3"},
	};
	assert_int_equal(eval(mx3, 3, "192.0.2.3", "a@example.com", NULL), SPF_PASS);
	assert_int_equal(runs, 3); /* TXT, MX, the three A lookups */

	/* a DNS error on the record: temperror */
	static const struct rr tf[] = {{SPF_RR_TXT, "example.com", "TEMPFAIL"}};
	assert_int_equal(eval(tf, 1, "192.0.2.3", "a@example.com", NULL), SPF_TEMPERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_macro_examples), cmocka_unit_test(test_initial),
	    cmocka_unit_test(test_records),        cmocka_unit_test(test_records_selection_and_exp),
	    cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
