/* Header block parsing, unfolding, lookup, limits, incremental parser. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/header.h"

#include <string.h>

static void test_parse_table(void **state)
{
	static const struct {
		const char *in;
		unsigned int count;
		size_t size; /* (size_t)-1: whole input */
		unsigned int flags;
		const char *subject; /* unfolded */
	} cases[] = {
	    {"Subject: hi\r\n\r\nbody", 1, 15, 0, "hi"},
	    {"Subject: hi\n\nbody", 1, 13, 0, "hi"},
	    {"Subject: a\r\n  folded\r\n\tagain\r\nX: y\r\n\r\n", 2, 38, 0, "a  folded\tagain"},
	    {"Subject:no-space\r\n\r\n", 1, 20, 0, "no-space"},
	    {"Subject  : obsolete\r\n\r\n", 1, 23, 0, "obsolete"},
	    {"Subject: \xc3\xa9t\xc3\xa9\r\n\r\n", 1, 18, MIME_HEADERS_8BIT, "\xc3\xa9t\xc3\xa9"},
	    /* Only an empty line ends the block (RFC 5322 2.1): a line that is
	       no field stays in it, as in Dovecot and Cyrus. */
	    {"Subject: x\r\nno colon line\r\n\r\n", 1, 29, 0, "x"},
	    {"junk first\r\nSubject: y\r\n\r\nbody", 1, 26, 0, "y"},
	    {"no header\r\nat all", 0, (size_t)-1, MIME_HEADERS_NO_END, NULL},
	    {"Subject: x", 1, (size_t)-1, MIME_HEADERS_NO_END, "x"},
	    {"", 0, 0, MIME_HEADERS_NO_END, NULL},
	    {"\r\nbody", 0, 2, 0, NULL},
	    {"From sender@x Tue\r\nSubject: mbox\r\n\r\n", 1, 36, 0, "mbox"},
	    {" leading continuation\r\nSubject: y\r\n\r\n", 1, 37, 0, "y"},
	    {"Subject: trailing   \r\n\r\n", 1, 24, 0, "trailing"},
	    {"Subject: a\r\nSubject: b\r\n\r\n", 2, 26, 0, "a"},
	    {": empty name\r\n\r\n", 0, 16, 0, NULL},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct pool *pool = pool_create(1024);
		size_t len = strlen(cases[i].in);
		struct mime_headers *h = mime_headers_parse(pool, cases[i].in, len, NULL);
		assert_int_equal(h->count, cases[i].count);
		assert_int_equal(h->size, cases[i].size == (size_t)-1 ? len : cases[i].size);
		assert_int_equal(h->flags, cases[i].flags);
		const char *s = mime_headers_get(pool, h, "SUBJECT");
		if (cases[i].subject == NULL)
			assert_null(s);
		else
			assert_string_equal(s, cases[i].subject);
		pool_destroy(&pool);
	}
}

static void test_lookup(void **state)
{
	const char *m =
	    "Received: a\r\nReceived: b\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nX-Raw: \xe9t\xe9\r\n\r\n";
	struct pool *pool = pool_create(1024);
	struct mime_headers *h = mime_headers_parse(pool, m, strlen(m), NULL);
	assert_int_equal(mime_headers_count(h, "received"), 2);
	const struct mime_header_field *f = mime_headers_find_last(h, "Received");
	assert_int_equal(f->value_len, 1);
	assert_int_equal(f->value[0], 'b');
	assert_int_equal(f->offset, 13);
	assert_int_equal(f->size, 13);
	assert_string_equal(mime_headers_get_utf8(pool, h, "subject"), "caf\xc3\xa9");
	assert_string_equal(mime_headers_get_utf8(pool, h, "x-raw"), "\xc3\xa9t\xc3\xa9");
	assert_null(mime_headers_find(h, "missing"));
	assert_true(mime_header_name_valid("X-Foo", 5));
	assert_false(mime_header_name_valid("X Foo", 5));
	assert_false(mime_header_name_valid("X:Foo", 5));
	assert_false(mime_header_name_valid("", 0));
	pool_destroy(&pool);
}

static void test_limits(void **state)
{
	struct buf m = BUF_INIT;
	for (int i = 0; i < 50; i++)
		buf_printf(&m, "X-%d: v\r\n", i);
	buf_printf(&m, "X-Long: ");
	for (int i = 0; i < 300; i++)
		buf_append_char(&m, 'a');
	buf_append_str(&m, "\r\nSubject: kept\r\n\r\nbody");
	struct mime_limits lim = {.max_header_count = 20, .max_field_size = 100};
	struct pool *pool = pool_create(1024);
	struct mime_headers *h = mime_headers_parse(pool, m.data, m.len, &lim);
	assert_int_equal(h->count, 20);
	assert_true(h->flags & MIME_HEADERS_TRUNCATED);
	assert_int_equal(h->size, m.len - 4);
	lim.max_header_count = 100;
	h = mime_headers_parse(pool, m.data, m.len, &lim);
	assert_int_equal(h->count, 51); /* the long one dropped */
	assert_non_null(mime_headers_find(h, "Subject"));
	assert_null(mime_headers_find(h, "X-Long"));
	/* NUL bytes are kept and flagged. */
	h = mime_headers_parse(pool, "A: x\0y\r\n\r\n", 10, NULL);
	assert_true(h->flags & MIME_HEADERS_NUL);
	assert_int_equal(h->fields[0].value_len, 3);
	pool_destroy(&pool);
	buf_free(&m);
}

static void test_incremental(void **state)
{
	const char *m = "Subject: one\r\n two\r\nFrom: a@b\r\n\r\nbody here";
	size_t hdr = strlen(m) - strlen("body here");
	/* Every chunk size gives the same result. */
	for (size_t chunk = 1; chunk <= strlen(m); chunk++) {
		struct mime_header_parser *p = mime_header_parser_create(NULL);
		size_t off = 0, used;
		const char *error;
		int r = 0;
		while (off < strlen(m) && r == 0) {
			size_t n = strlen(m) - off < chunk ? strlen(m) - off : chunk;
			r = mime_header_parser_feed(p, m + off, n, &used, &error);
			off += used;
		}
		assert_int_equal(r, 1);
		assert_int_equal(off, hdr);
		struct pool *pool = pool_create(1024);
		struct mime_headers *h = mime_header_parser_finish(p, pool);
		assert_int_equal(h->count, 2);
		assert_string_equal(mime_headers_get(pool, h, "subject"), "one two");
		pool_destroy(&pool);
		mime_header_parser_destroy(&p);
		assert_null(p);
	}
}

static void test_incremental_limits(void **state)
{
	static const struct {
		struct mime_limits lim;
		const char *in;
		const char *error;
	} cases[] = {
	    {{.max_header_count = 2}, "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", "too many header fields"},
	    {{.max_field_size = 10}, "A: 0123456789\r\n\r\n", "header field too long"},
	    {{.max_field_size = 10}, "A: 01\r\n 23456789\r\n\r\n", "header field too long"},
	    {{.max_field_size = 10}, "A: 0123456789 no newline yet", "header field too long"},
	    {{.max_header_size = 16}, "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", "header too large"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct mime_header_parser *p = mime_header_parser_create(&cases[i].lim);
		size_t used;
		const char *error = NULL;
		assert_int_equal(mime_header_parser_feed(p, cases[i].in, strlen(cases[i].in), &used, &error),
				 -1);
		assert_string_equal(error, cases[i].error);
		mime_header_parser_destroy(&p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_incremental),
	    cmocka_unit_test(test_incremental_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
