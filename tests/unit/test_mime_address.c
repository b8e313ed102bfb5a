/* RFC 5322 address lists and RFC 5321 paths. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/path.h"

#include <string.h>

/* Each address rendered as name|route|local|domain|flags, joined by " ; ". */
static void render(struct buf *out, const struct mime_address *a)
{
	for (; a != NULL; a = a->next) {
		buf_printf(out, "%s|%s|%s|%s|%u", a->name ? a->name : "-", a->route ? a->route : "-",
			   a->local, a->domain ? a->domain : "-", a->flags);
		if (a->next != NULL)
			buf_append_str(out, " ; ");
	}
}

static void test_address_lists(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"user@example.com", "-|-|user|example.com|0"},
	    {"John Doe <john@example.com>", "John Doe|-|john|example.com|0"},
	    {"\"Doe, John\" <john@example.com>", "Doe, John|-|john|example.com|0"},
	    {"a@b, c@d", "-|-|a|b|0 ; -|-|c|d|0"},
	    {"john@example.com (John Doe)", "John Doe|-|john|example.com|0"},
	    {"(comment) John <j@x>", "John|-|j|x|0"},
	    {"\"quoted local\"@x.org", "-|-|quoted local|x.org|8"},
	    {"<@route1,@route2:user@dom>", "-|@route1,@route2|user|dom|0"},
	    {"Friends: a@b, C <c@d>;", "Friends|-||-|1 ; -|-|a|b|0 ; C|-|c|d|0 ; -|-||-|2"},
	    {"undisclosed-recipients:;", "undisclosed-recipients|-||-|1 ; -|-||-|2"},
	    {"Group: a@b", "Group|-||-|1 ; -|-|a|b|0 ; -|-||-|2"}, /* unterminated group */
	    {"localonly", "-|-|localonly|-|4"},
	    {"Name <localonly>", "Name|-|localonly|-|4"},
	    {"<>", "-|-||-|4"},
	    {"=?utf-8?q?J=C3=B6rg?= <j@x>", "=?utf-8?q?J=C3=B6rg?=|-|j|x|0"},
	    {"J\xc3\xb6rg <j\xc3\xb6@b\xc3\xbc.de>", "J\xc3\xb6rg|-|j\xc3\xb6|b\xc3\xbc.de|0"},
	    {"a@[1.2.3.4]", "-|-|a|[1.2.3.4]|0"},
	    {"Broken <a@b", "Broken|-|a|b|16"},
	    {"\"unterminated <a@b>", "-|-|unterminated <a@b>|-|12"},
	    {"(unterminated comment a@b", ""},
	    {"a@b,,, ,c@d", "-|-|a|b|0 ; -|-|c|d|0"},
	    {"John Q. Public <jqp@x>", "John Q. Public|-|jqp|x|0"},
	    {"a.b.c@d.e", "-|-|a.b.c|d.e|0"},
	    {"", ""},
	    {"   ", ""},
	    {",", ""},
	    {"A <a@b> junk, c@d", "A|-|a|b|16 ; -|-|c|d|0"},
	    {"a@b c", "-|-|a|b|16"},
	    /* words with no address: a name without mailbox (as Dovecot) */
	    {"Undisclosed recipients", "Undisclosed recipients|-||-|20"},
	    {"one word, solo, two words <>", "one word|-||-|20 ; -|-|solo|-|4 ; two words|-||-|4"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct pool *pool = pool_create(1024);
		struct buf out = BUF_INIT;
		render(&out, mime_address_parse(pool, cases[i].in, strlen(cases[i].in)));
		if (strcmp(buf_cstr(&out), cases[i].out) != 0)
			print_error("case %zu: %s\n", i, cases[i].in);
		assert_string_equal(buf_cstr(&out), cases[i].out);
		buf_free(&out);
		pool_destroy(&pool);
	}
}

static void test_address_format(void **state)
{
	struct pool *pool = pool_create(1024);
	const char *in = "\"a b\"@x, \"a\\\"q\"@y, plain.dot@z";
	struct mime_address *a = mime_address_parse(pool, in, strlen(in));
	struct buf out = BUF_INIT;
	for (; a != NULL; a = a->next) {
		mime_address_format_spec(&out, a);
		buf_append_char(&out, ' ');
	}
	assert_string_equal(buf_cstr(&out), "\"a b\"@x \"a\\\"q\"@y plain.dot@z ");
	a = mime_address_parse(pool, "=?utf-8?b?SsO2cmc=?= <j@x>", 26);
	assert_string_equal(mime_address_name_utf8(pool, a), "J\xc3\xb6rg");
	buf_free(&out);
	pool_destroy(&pool);
}

#define U MIME_PATH_ALLOW_UTF8
#define N MIME_PATH_ALLOW_NULL
#define P MIME_PATH_ALLOW_POSTMASTER
#define A MIME_PATH_ALLOW_NO_ANGLE

static void test_paths(void **state)
{
	static const struct {
		const char *in;
		unsigned int parse_flags;
		int rc;
		const char *local, *domain, *route;
		unsigned int flags;
		size_t consumed;
	} cases[] = {
	    {"<user@example.com>", 0, 0, "user", "example.com", NULL, 0, 18},
	    {"<user@example.com> SIZE=100", 0, 0, "user", "example.com", NULL, 0, 18},
	    {"<>", N, 0, "", NULL, NULL, MIME_PATH_NULL, 2},
	    {"<>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<@a.example,@b.example:u@d.example>", 0, 0, "u", "d.example", "@a.example,@b.example",
	     MIME_PATH_HAS_ROUTE, 35},
	    {"<\"john smith\"@x.org>", 0, 0, "john smith", "x.org", NULL, MIME_PATH_QUOTED, 20},
	    {"<\"a\\\"b\"@x.org>", 0, 0, "a\"b", "x.org", NULL, MIME_PATH_QUOTED, 14},
	    {"<u@[192.0.2.1]>", 0, 0, "u", "[192.0.2.1]", NULL, MIME_PATH_LITERAL, 15},
	    {"<u@[IPv6:2001:db8::1]>", 0, 0, "u", "[IPv6:2001:db8::1]", NULL, MIME_PATH_LITERAL, 22},
	    {"<u@[999.0.2.1]>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<u@[IPv6:zz]>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<u@[tag:stuff]>", 0, 0, "u", "[tag:stuff]", NULL, MIME_PATH_LITERAL, 15},
	    {"<Postmaster>", P, 0, "Postmaster", NULL, NULL, MIME_PATH_POSTMASTER, 12},
	    {"<Postmaster>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<user>", P, -1, NULL, NULL, NULL, 0, 0},
	    {"<j\xc3\xb6rg@m\xc3\xbcller.de>", U, 0, "j\xc3\xb6rg", "m\xc3\xbcller.de", NULL, MIME_PATH_UTF8,
	     18},
	    {"<j\xc3\xb6rg@m\xc3\xbcller.de>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<j\xc3@x>", U, -1, NULL, NULL, NULL, 0, 0}, /* invalid UTF-8 */
	    {"user@example.com", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"user@example.com SIZE=1", A, 0, "user", "example.com", NULL, 0, 16},
	    {"<user@example.com", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<us er@x>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<.user@x>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<user.@x>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<us..er@x>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<user@-x.org>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<user@x-.org>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<user@x..org>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<user@>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<@a:>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<@a,b:u@d>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<\"unterminated@x>", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"", 0, -1, NULL, NULL, NULL, 0, 0},
	    {"<", 0, -1, NULL, NULL, NULL, 0, 0},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct pool *pool = pool_create(1024);
		struct mime_path p;
		size_t consumed = 0;
		const char *error = NULL;
		int rc = mime_path_parse(pool, cases[i].in, strlen(cases[i].in), cases[i].parse_flags, &p,
					 &consumed, &error);
		if (rc != cases[i].rc)
			print_error("case %zu: %s (%s)\n", i, cases[i].in, error ? error : "ok");
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_string_equal(p.local, cases[i].local);
			if (cases[i].domain == NULL)
				assert_null(p.domain);
			else
				assert_string_equal(p.domain, cases[i].domain);
			if (cases[i].route == NULL)
				assert_null(p.route);
			else
				assert_string_equal(p.route, cases[i].route);
			assert_int_equal(p.flags, cases[i].flags);
			assert_int_equal(consumed, cases[i].consumed);
		} else {
			assert_non_null(error);
		}
		pool_destroy(&pool);
	}
	/* A NUL in a local part or an address literal is refused (found by
	   fuzz_mime_path). */
	static const struct {
		const char *in;
		size_t len;
	} nul_cases[] = {
	    {"<u@[tag:abc\0x]>", 15},
	    {"<u@[192.0.2.1\0junk]>", 20},
	    {"<u@[IPv6:::1\0]>", 15},
	    {"<u\0v@x.org>", 11},
	};
	for (size_t i = 0; i < N_ELEMENTS(nul_cases); i++) {
		struct pool *pool = pool_create(1024);
		struct mime_path p;
		size_t consumed = 0;
		const char *error = NULL;
		assert_int_equal(
		    mime_path_parse(pool, nul_cases[i].in, nul_cases[i].len, 0, &p, &consumed, &error), -1);
		pool_destroy(&pool);
	}
}

static void test_path_limits(void **state)
{
	struct buf b = BUF_INIT;
	struct pool *pool = pool_create(1024);
	struct mime_path p;
	size_t consumed;
	const char *error;
	/* local part: 64 ok, 65 refused */
	for (int n = 64; n <= 65; n++) {
		buf_reset(&b);
		buf_append_char(&b, '<');
		for (int i = 0; i < n; i++)
			buf_append_char(&b, 'a');
		buf_append_str(&b, "@x.org>");
		assert_int_equal(mime_path_parse(pool, b.data, b.len, 0, &p, &consumed, &error),
				 n == 64 ? 0 : -1);
	}
	/* whole path over 256 */
	buf_reset(&b);
	buf_append_str(&b, "<a@");
	for (int i = 0; i < 5; i++)
		buf_append_str(&b, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	buf_append_str(&b, "org>");
	assert_int_equal(mime_path_parse(pool, b.data, b.len, 0, &p, &consumed, &error), -1);
	/* a label over 63 */
	buf_reset(&b);
	buf_append_str(&b, "<a@");
	for (int i = 0; i < 64; i++)
		buf_append_char(&b, 'l');
	buf_append_str(&b, ".org>");
	assert_int_equal(mime_path_parse(pool, b.data, b.len, 0, &p, &consumed, &error), -1);
	/* format re-quotes */
	assert_int_equal(mime_path_parse(pool, "<\"a b\"@x>", 9, 0, &p, &consumed, &error), 0);
	buf_reset(&b);
	mime_path_format(&b, &p);
	assert_string_equal(buf_cstr(&b), "<\"a b\"@x>");
	buf_free(&b);
	pool_destroy(&pool);
}

static void test_idna(void **state)
{
	struct pool *pool = pool_create(1024);
	const char *out, *error;
	assert_int_equal(mime_domain_to_ascii(pool, "m\xc3\xbcller.de", &out, &error), 0);
	assert_string_equal(out, "xn--mller-kva.de");
	assert_int_equal(mime_domain_to_ascii(pool, "Example.COM", &out, &error), 0);
	assert_string_equal(out, "example.com");
	assert_int_equal(mime_domain_to_utf8(pool, "xn--mller-kva.de", &out, &error), 0);
	assert_string_equal(out, "m\xc3\xbcller.de");
	assert_int_equal(mime_domain_to_ascii(pool, "\xff\xfe.de", &out, &error), -1);
	/* U+24AC maps to "(q)", not a host name (found by fuzz_mime_path) */
	assert_int_equal(mime_domain_to_ascii(pool, "a\xe2\x92\xac.de", &out, &error), -1);
	/* fullwidth letters map to ASCII ones and stay valid */
	assert_int_equal(mime_domain_to_ascii(pool, "\xef\xbd\x81\xc3\xbc.de", &out, &error), 0);
	assert_string_equal(out, "xn--a-eha.de");
	pool_destroy(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_address_lists), cmocka_unit_test(test_address_format),
	    cmocka_unit_test(test_paths),         cmocka_unit_test(test_path_limits),
	    cmocka_unit_test(test_idna),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
