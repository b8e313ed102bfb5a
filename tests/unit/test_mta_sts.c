/* MTA-STS (RFC 8461): TXT records (3.1), policy files (3.2), MX patterns
   (4.1) and the cache file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "lib/xalloc.h"
#include "relay/mta_sts.h"

#include <stdlib.h>
#include <string.h>

static void test_txt(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int rc;
		const char *id;
	} cases[] = {
	    {"v=STSv1; id=20160831085700Z;", 1, "20160831085700Z"}, /* the example of 3.1 */
	    {"v=STSv1; id=abc", 1, "abc"},
	    {"v=STSv1;id=abc;", 1, "abc"},
	    {"v=STSv1 ; id=abc ; ", 1, "abc"},
	    {"v=STSv1; ext-1.x=a:b; id=Z9", 1, "Z9"},
	    {"v=STSv1; id=12345678901234567890123456789012", 1, "12345678901234567890123456789012"},
	    {"v=STSv1; id=first; id=second", 1, "first"},
	    /* not MTA-STS records */
	    {"v=spf1 -all", 0, NULL},
	    {"id=abc; v=STSv1", 0, NULL},
	    {"v=STSv1", 0, NULL},
	    {"v=STSv10; id=1", 0, NULL},
	    {"", 0, NULL},
	    /* MTA-STS records that break the grammar */
	    {"v=STSv1;", -1, NULL},
	    {"v=STSv1; id=", -1, NULL},
	    {"v=STSv1; id=has-dash", -1, NULL},
	    {"v=STSv1; id=123456789012345678901234567890123", -1, NULL},
	    {"v=STSv1; id=a b", -1, NULL},
	    {"v=STSv1; id=a; =x", -1, NULL},
	    {"v=STSv1; id=a; x=", -1, NULL},
	    {"v=STSv1; id=a; _x=1", -1, NULL},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char id[MTA_STS_ID_MAX + 1] = "";
		const char *error = NULL;
		int rc = mta_sts_txt_parse(cases[i].text, id, &error);
		if (rc != cases[i].rc)
			fail_msg("%s: %d, expected %d", cases[i].text, rc, cases[i].rc);
		if (rc == 1)
			assert_string_equal(id, cases[i].id);
		if (rc == -1)
			assert_non_null(error);
	}
}

static void test_txt_select(void **state)
{
	(void)state;
	char id[MTA_STS_ID_MAX + 1];
	const char *error;
	char *one[] = {"v=spf1 -all", "v=STSv1; id=7"};
	assert_int_equal(mta_sts_txt_select(one, 2, id, &error), 1);
	assert_string_equal(id, "7");
	char *none[] = {"v=spf1 -all"};
	assert_int_equal(mta_sts_txt_select(none, 1, id, &error), 0);
	assert_null(error);
	/* 3.1: more than one record, or an invalid one: no policy */
	char *two[] = {"v=STSv1; id=7", "v=STSv1; id=8"};
	assert_int_equal(mta_sts_txt_select(two, 2, id, &error), 0);
	assert_non_null(error);
	char *bad[] = {"v=STSv1; id=-"};
	assert_int_equal(mta_sts_txt_select(bad, 1, id, &error), 0);
	assert_non_null(error);
}

static void test_policy(void **state)
{
	(void)state;
	struct mta_sts_policy p;
	const char *error = NULL;
	/* the example of 3.2, CRLF line ends */
	const char *text = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
			   "mx: backupmx.example.com\r\nmax_age: 604800\r\n";
	assert_int_equal(mta_sts_policy_parse(text, strlen(text), &p, &error), 0);
	assert_int_equal(p.mode, MTA_STS_MODE_ENFORCE);
	assert_int_equal(p.max_age, 604800);
	assert_int_equal(p.nmx, 3);
	assert_string_equal(p.mx[0], "mail.example.com");
	assert_string_equal(p.mx[1], "*.example.net");
	assert_string_equal(p.mx[2], "backupmx.example.com");
	mta_sts_policy_clear(&p);

	/* LF ends, no final newline, blanks around values, unknown keys,
	   uppercase names, a trailing dot, max_age above a year */
	text =
	    "version:STSv1\nmode:\ttesting  \nmx: MX.Example.COM.\nfoo_bar: any thing\nmax_age: 9999999999";
	assert_int_equal(mta_sts_policy_parse(text, strlen(text), &p, &error), 0);
	assert_int_equal(p.mode, MTA_STS_MODE_TESTING);
	assert_int_equal(p.max_age, MTA_STS_MAX_AGE_MAX);
	assert_int_equal(p.nmx, 1);
	assert_string_equal(p.mx[0], "mx.example.com");
	mta_sts_policy_clear(&p);

	/* mode none needs no mx; a repeated key: the first counts */
	text = "version: STSv1\nmode: none\nmax_age: 86400\nmode: enforce\nmax_age: 1\n";
	assert_int_equal(mta_sts_policy_parse(text, strlen(text), &p, &error), 0);
	assert_int_equal(p.mode, MTA_STS_MODE_NONE);
	assert_int_equal(p.max_age, 86400);
	assert_int_equal(p.nmx, 0);
	mta_sts_policy_clear(&p);

	static const char *const bad[] = {
	    "",
	    "mode: enforce\nmx: a.example\nmax_age: 1\n",                           /* no version */
	    "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",           /* another version */
	    "version: STSv1\nmx: a.example\nmax_age: 1\n",                          /* no mode */
	    "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",           /* %s"enforce" */
	    "version: STSv1\nmode: enforce\nmax_age: 1\n",                          /* no mx */
	    "version: STSv1\nmode: testing\nmx: a.example\n",                       /* no max_age */
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",          /* not digits */
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n", /* 11 digits */
	    "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",
	    "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n",
	    "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n",
	    "version: STSv1\nmode: enforce\nmx: -a.example\nmax_age: 1\n",
	    "version: STSv1\nmode: enforce\nmx: a_b.example\nmax_age: 1\n",
	    "version: STSv1\nmode: enforce\nmx: a.example b.example\nmax_age: 1\n",
	    "version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\njunk line\n",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n: value\n",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nba d: value\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		if (mta_sts_policy_parse(bad[i], strlen(bad[i]), &p, &error) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(error);
		assert_int_equal(p.nmx, 0);
		assert_null(p.mx);
	}
	/* a NUL byte inside */
	const char nul[] = "version: STSv1\nmode: none\nmax_age: 1\n\0";
	assert_int_equal(mta_sts_policy_parse(nul, sizeof(nul) - 1, &p, &error), -1);
	/* the mx bound */
	char *many = xstrdup("version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (int i = 0; i <= MTA_STS_MX_MAX; i++) {
		char *more = xasprintf("%smx: mx%d.example\n", many, i);
		free(many);
		many = more;
	}
	assert_int_equal(mta_sts_policy_parse(many, strlen(many), &p, &error), -1);
	free(many);
}

static void test_patterns(void **state)
{
	(void)state;
	static const struct {
		const char *pattern, *host;
		bool match;
	} cases[] = {
	    {"mail.example.com", "mail.example.com", true},
	    {"mail.example.com", "MAIL.Example.Com.", true},
	    {"mail.example.com", "mail.example.co", false},
	    {"mail.example.com", "xmail.example.com", false},
	    /* 4.1: the wildcard is exactly the leftmost label */
	    {"*.example.com", "mx1.example.com", true},
	    {"*.example.com", "MX1.EXAMPLE.COM.", true},
	    {"*.example.com", "example.com", false},
	    {"*.example.com", "a.mx1.example.com", false},
	    {"*.example.com", ".example.com", false},
	    {"*.example.com", "mx1.example.com.evil", false},
	    {"*.example.com", "mx1xexample.com", false},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (mta_sts_pattern_match(cases[i].pattern, cases[i].host) != cases[i].match)
			fail_msg("%s ~ %s: expected %d", cases[i].pattern, cases[i].host, cases[i].match);
	struct mta_sts_policy p;
	const char *error;
	const char *text = "version: STSv1\nmode: enforce\nmx: a.example\nmx: *.b.example\nmax_age: 60\n";
	assert_int_equal(mta_sts_policy_parse(text, strlen(text), &p, &error), 0);
	assert_true(mta_sts_policy_match(&p, "a.example"));
	assert_true(mta_sts_policy_match(&p, "mx.b.example"));
	assert_false(mta_sts_policy_match(&p, "b.example"));
	assert_false(mta_sts_policy_match(&p, "c.example"));
	mta_sts_policy_clear(&p);
}

static void test_cache(void **state)
{
	(void)state;
	struct mta_sts_policy p, q, r;
	const char *error;
	const char *text = "version: STSv1\nmode: enforce\nmx: a.example\nmx: *.b.example\nmax_age: 600\n";
	assert_int_equal(mta_sts_policy_parse(text, strlen(text), &p, &error), 0);
	strcpy(p.id, "id42");
	p.fetched = 1700000000;
	size_t len;
	char *file = mta_sts_cache_format(&p, &len);
	assert_int_equal(strlen(file), len);
	assert_int_equal(mta_sts_cache_parse(file, len, &q, &error), 0);
	assert_string_equal(q.id, "id42");
	assert_int_equal(q.fetched, 1700000000);
	assert_int_equal(q.mode, MTA_STS_MODE_ENFORCE);
	assert_int_equal(q.max_age, 600);
	assert_int_equal(q.nmx, 2);
	assert_string_equal(q.mx[1], "*.b.example");
	assert_true(mta_sts_policy_fresh(&q, 1700000599));
	assert_false(mta_sts_policy_fresh(&q, 1700000600));
	mta_sts_policy_copy(&r, &q);
	mta_sts_policy_clear(&q);
	assert_string_equal(r.mx[0], "a.example");
	assert_string_equal(r.id, "id42");
	mta_sts_policy_clear(&r);
	free(file);
	static const char *const bad[] = {
	    "",
	    "fetched: 1\nid: x\nversion: STSv1\nmode: none\nmax_age: 1\n",
	    "id: x-y\nfetched: 1\nversion: STSv1\nmode: none\nmax_age: 1\n",
	    "id: x\nfetched: 1a\nversion: STSv1\nmode: none\nmax_age: 1\n",
	    "id: x\nfetched: 1\nversion: STSv1\nmode: enforce\nmax_age: 1\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		if (mta_sts_cache_parse(bad[i], strlen(bad[i]), &q, &error) != -1)
			fail_msg("accepted: %s", bad[i]);
	mta_sts_policy_clear(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_txt),      cmocka_unit_test(test_txt_select), cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_patterns), cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
