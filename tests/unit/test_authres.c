/* Authentication-Results (RFC 8601, src/trust/authres.c): the writer's
   syntax, quoting and folding, and the authserv-id reader that finds the
   forged fields to take out (section 5). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "trust/authres.h"

#include <string.h>

static void test_none(void **state)
{
	struct buf out = BUF_INIT;
	struct authres_writer w;
	authres_begin(&w, &out, "mx.example.org");
	authres_end(&w);
	/* 2.2 no-result: no method was applied */
	assert_string_equal(out.data, "Authentication-Results: mx.example.org; none\r\n");
	buf_reset(&out);
	authres_begin(&w, &out, "mx.example.org");
	authres_result(&w, "dkim", "none", NULL);
	authres_end(&w);
	assert_string_equal(out.data, "Authentication-Results: mx.example.org;\r\n\tdkim=none\r\n");
	buf_free(&out);
}

static void test_results_and_folding(void **state)
{
	struct buf out = BUF_INIT;
	struct authres_writer w;
	authres_begin(&w, &out, "mx.example.org");
	authres_result(&w, "dkim", "pass", NULL);
	authres_property(&w, "header", "d", "example.com");
	authres_property(&w, "header", "i", "@example.com");
	authres_property(&w, "header", "s", "sel");
	authres_property(&w, "header", "a", "rsa-sha256");
	authres_property(&w, "header", "b", "abc/+=gh");
	authres_result(&w, "dkim", "fail", "body hash did not verify");
	authres_property(&w, "header", "d", "a-much-longer-domain-name.example.com");
	authres_property(&w, "header", "i", "user.name+tag@sub.example.com");
	authres_end(&w);
	assert_string_equal(out.data,
			    "Authentication-Results: mx.example.org;\r\n"
			    "\tdkim=pass header.d=example.com header.i=@example.com header.s=sel\r\n"
			    "\theader.a=rsa-sha256 header.b=\"abc/+=gh\";\r\n"
			    "\tdkim=fail reason=\"body hash did not verify\"\r\n"
			    "\theader.d=a-much-longer-domain-name.example.com\r\n"
			    "\theader.i=user.name+tag@sub.example.com\r\n");
	/* every line fits in 78 columns */
	for (const char *l = out.data; *l != '\0';) {
		const char *e = strstr(l, "\r\n");
		assert_true(e - l <= AUTHRES_FOLD_WIDTH);
		l = e + 2;
	}
	buf_free(&out);
}

static void test_values(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"example.com", "example.com"},
	    {"", "\"\""},
	    {"two words", "\"two words\""},
	    {"a;b", "\"a;b\""},
	    {"q\"uo\\te", "\"q\\\"uo\\\\te\""},
	    /* no line end or control character can get into the field */
	    {"a\r\nX-Injected: yes", "\"aX-Injected: yes\""},
	    {"tab\there", "\"tabhere\""},
	    {"caf\xc3\xa9", "\"caf\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out = BUF_INIT;
		authres_append_value(&out, cases[i].in);
		assert_string_equal(buf_cstr(&out), cases[i].out);
		buf_free(&out);
	}
	/* an address is a pvalue; anything else in an i= is quoted */
	struct buf out = BUF_INIT;
	struct authres_writer w;
	authres_begin(&w, &out, "id");
	authres_result(&w, "dkim", "neutral", NULL);
	authres_property(&w, "header", "i", "\"quoted local\"@example.com");
	authres_property(&w, "header", "i", "@");
	authres_end(&w);
	assert_string_equal(
	    out.data, "Authentication-Results: id;\r\n"
		      "\tdkim=neutral header.i=\"\\\"quoted local\\\"@example.com\" header.i=\"@\"\r\n");
	buf_free(&out);
}

static void test_parse_id(void **state)
{
	static const struct {
		const char *value, *id; /* id NULL: none */
	} cases[] = {
	    {"mx.example.org; dkim=pass", "mx.example.org"},
	    {"mx.example.org 1; none", "mx.example.org"},
	    {"  \r\n\tmx.example.org;", "mx.example.org"},
	    {"(comment (nested \\) still) done) mx.example.org;", "mx.example.org"},
	    {"\"mx.example.org\"; none", "mx.example.org"},
	    {"\"mx.exa\\\"mple\"; none", "mx.exa\"mple"},
	    {"mx.example.org", "mx.example.org"},
	    {"", NULL},
	    {"; dkim=pass", NULL},
	    {"(unclosed comment mx.example.org;", NULL},
	    {"\"unclosed", NULL},
	    {"\"ends with a backslash\\", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf id = BUF_INIT;
		int rc = authres_parse_id(cases[i].value, strlen(cases[i].value), &id);
		if (cases[i].id == NULL) {
			assert_int_equal(rc, -1);
			assert_int_equal(id.len, 0);
		} else {
			assert_int_equal(rc, 0);
			assert_string_equal(buf_cstr(&id), cases[i].id);
		}
		buf_free(&id);
	}
}

static bool ours(const char *name, const char *value)
{
	return authres_field_is_ours(name, strlen(name), value, strlen(value), "mx.example.org");
}

static void test_field_is_ours(void **state)
{
	assert_true(ours("Authentication-Results", "mx.example.org; dkim=pass"));
	assert_true(ours("authentication-results", "MX.Example.ORG; none"));
	assert_true(ours("Authentication-Results", "(forged) \"mx.example.org\"; spf=pass"));
	assert_false(ours("Authentication-Results", "mx.example.org.evil; dkim=pass"));
	assert_false(ours("Authentication-Results", "other.example; dkim=pass header.d=mx.example.org"));
	assert_false(ours("Authentication-Results", "mx.example.or; dkim=pass"));
	assert_false(ours("X-Authentication-Results", "mx.example.org; dkim=pass"));
	assert_false(ours("ARC-Authentication-Results", "i=1; mx.example.org; dkim=pass"));
	/* what the writer wrote reads back as ours */
	struct buf out = BUF_INIT;
	struct authres_writer w;
	authres_begin(&w, &out, "mx.example.org");
	authres_result(&w, "dkim", "pass", NULL);
	authres_end(&w);
	const char *colon = strchr(out.data, ':');
	assert_true(authres_field_is_ours(out.data, (size_t)(colon - out.data), colon + 1, strlen(colon + 1),
					  "mx.example.org"));
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_none),          cmocka_unit_test(test_results_and_folding),
	    cmocka_unit_test(test_values),        cmocka_unit_test(test_parse_id),
	    cmocka_unit_test(test_field_is_ours),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
