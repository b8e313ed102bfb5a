/* DMARC (RFC 7489): policy records, organizational domains, alignment and
   the verdict with p, sp and pct. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "lib/xalloc.h"
#include "trust/dmarc.h"

#include <stdlib.h>
#include <string.h>

static void test_records(void **state)
{
	(void)state;
	struct dmarc_record r;
	const char *error;
	assert_int_equal(dmarc_record_parse(&r, "v=DMARC1; p=reject", &error), 1);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_int_equal(r.sp, DMARC_POLICY_REJECT);
	assert_int_equal(r.pct, 100);
	assert_false(r.adkim_strict);
	assert_int_equal(
	    dmarc_record_parse(&r,
			       "v=DMARC1;p=quarantine;sp=none;adkim=s;aspf=r;pct=20;rua=mailto:d@"
			       "example.com;fo=1;x_unknown=1;",
			       &error),
	    1);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_true(r.adkim_strict);
	assert_false(r.aspf_strict);
	assert_int_equal(r.pct, 20);
	/* not DMARC records: ignored */
	assert_int_equal(dmarc_record_parse(&r, "v=spf1 -all", &error), 0);
	assert_int_equal(dmarc_record_parse(&r, "p=reject; v=DMARC1", &error), 0);
	assert_int_equal(dmarc_record_parse(&r, "v=DMARC2; p=reject", &error), 0);
	assert_int_equal(dmarc_record_parse(&r, "", &error), 0);
	/* DMARC records without a usable policy */
	static const char *const bad[] = {
	    "v=DMARC1",
	    "v=DMARC1; p=bounce",
	    "v=DMARC1; p=reject; sp=maybe",
	    "v=DMARC1; p=none; pct=101",
	    "v=DMARC1; p=none; pct=x",
	    "v=DMARC1; p=none; adkim=x",
	    "v=DMARC1; p=none; p=reject",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		if (dmarc_record_parse(&r, bad[i], &error) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(error);
	}
	/* 6.6.3: a bad policy with a reporting address is p=none */
	assert_int_equal(dmarc_record_parse(&r, "v=DMARC1; p=bogus; rua=mailto:r@example.com", &error), 1);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
}

static void check_org(const char *domain, const char *org)
{
	char *got = dmarc_org_domain(domain);
	if (strcmp(got, org) != 0)
		fail_msg("%s: %s, expected %s", domain, got, org);
	free(got);
}

static void test_org_domain(void **state)
{
	(void)state;
	check_org("example.com", "example.com");
	check_org("Mail.Example.COM", "example.com");
	check_org("a.b.c.example.com.", "example.com");
	check_org("mail.example.co.uk", "example.co.uk");
	check_org("co.uk", "co.uk");
	check_org("com", "com");
	/* unknown top-level domains: the last two labels (the PSL's "*" rule) */
	check_org("x.example.test", "example.test");
	assert_true(dmarc_aligned("mail.example.com", "example.com", false));
	assert_false(dmarc_aligned("mail.example.com", "example.com", true));
	assert_true(dmarc_aligned("EXAMPLE.com", "example.com", true));
	assert_false(dmarc_aligned("example.co.uk", "other.co.uk", false));
	assert_false(dmarc_aligned("example.com", NULL, false));
}

static void test_evaluate(void **state)
{
	(void)state;
	struct dmarc_record r;
	const char *error;
	struct dmarc_verdict v;
	const char *sub[] = {"mail.example.com"};
	assert_int_equal(dmarc_record_parse(&r, "v=DMARC1; p=reject; sp=quarantine", &error), 1);

	/* SPF aligned (relaxed) passes; so does DKIM of a subdomain */
	struct dmarc_input in = {"example.com", SPF_PASS, "bounce.example.com", NULL, 0};
	dmarc_evaluate(&r, "example.com", &in, 0, &v);
	assert_int_equal(v.result, DMARC_PASS);
	assert_true(v.spf_aligned);
	assert_int_equal(v.policy, DMARC_POLICY_NONE);
	in = (struct dmarc_input){"example.com", SPF_FAIL, "example.com", sub, 1};
	dmarc_evaluate(&r, "example.com", &in, 0, &v);
	assert_int_equal(v.result, DMARC_PASS);
	assert_true(v.dkim_aligned);
	assert_false(v.spf_aligned);

	/* a forged From: SPF passed for another domain, no aligned DKIM */
	const char *other[] = {"attacker.example"};
	in = (struct dmarc_input){"example.com", SPF_PASS, "attacker.example", other, 1};
	dmarc_evaluate(&r, "example.com", &in, 0, &v);
	assert_int_equal(v.result, DMARC_FAIL);
	assert_int_equal(v.policy, DMARC_POLICY_REJECT);

	/* a From in a subdomain, under the organizational domain's record */
	in.from_domain = "news.example.com";
	dmarc_evaluate(&r, "example.com", &in, 0, &v);
	assert_int_equal(v.policy, DMARC_POLICY_QUARANTINE);

	/* strict alignment refuses the subdomain */
	assert_int_equal(dmarc_record_parse(&r, "v=DMARC1; p=reject; adkim=s; aspf=s", &error), 1);
	in = (struct dmarc_input){"example.com", SPF_PASS, "bounce.example.com", sub, 1};
	dmarc_evaluate(&r, "example.com", &in, 0, &v);
	assert_int_equal(v.result, DMARC_FAIL);

	/* pct: sampled messages get the policy, the others the weaker one */
	assert_int_equal(dmarc_record_parse(&r, "v=DMARC1; p=reject; pct=25", &error), 1);
	in = (struct dmarc_input){"example.com", SPF_FAIL, "example.com", NULL, 0};
	int rejected = 0;
	for (unsigned rnd = 0; rnd < 100; rnd++) {
		dmarc_evaluate(&r, "example.com", &in, rnd, &v);
		assert_int_equal(v.result, DMARC_FAIL);
		assert_int_equal(v.requested, DMARC_POLICY_REJECT);
		if (v.policy == DMARC_POLICY_REJECT)
			rejected++;
		else
			assert_int_equal(v.policy, DMARC_POLICY_QUARANTINE);
	}
	assert_int_equal(rejected, 25);
	char *name = dmarc_record_name("Example.COM.");
	assert_string_equal(name, "_dmarc.example.com");
	free(name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_records),
	    cmocka_unit_test(test_org_domain),
	    cmocka_unit_test(test_evaluate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
