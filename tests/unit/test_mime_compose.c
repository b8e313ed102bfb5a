/* Composition: structure, encodings, line lengths, round trip through
   the parser. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/compose.h"
#include "mime/tree.h"

#include <stdio.h>
#include <string.h>

/* Every line ends in CRLF and is at most 78 characters. */
static void assert_lines_ok(const struct buf *b)
{
	size_t start = 0;
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '\n') {
			assert_true(i > 0 && b->data[i - 1] == '\r');
			assert_true(i - 1 - start <= 78);
			start = i + 1;
		}
		assert_true(b->data[i] != '\r' || (i + 1 < b->len && b->data[i + 1] == '\n'));
	}
	assert_int_equal(start, b->len);
}

static struct buf build(int text, int html, int inl, int att)
{
	struct mime_compose *c = mime_compose_create();
	mime_compose_set_domain(c, "example.org");
	mime_compose_set_date(c, 1700000000);
	const char *error;
	assert_int_equal(
	    mime_compose_header(c, "From", "J\xc3\xb6rg M\xc3\xbcller <joerg@example.org>", &error), 0);
	assert_int_equal(
	    mime_compose_header(c, "To", "\"Doe, Jane\" <jane@example.com>, bob@example.com", &error), 0);
	assert_int_equal(
	    mime_compose_header(c, "Subject",
				"Gr\xc3\xbc\xc3\x9f"
				"e \xe2\x80\x94 quarterly report with a long subject line to fold",
				&error),
	    0);
	if (text)
		mime_compose_text(c, "Hello J\xc3\xb6rg,\nsee attached.\n", 28);
	if (html)
		mime_compose_html(c, "<p>Hello <img src=\"cid:x\"></p>", 30);
	if (inl)
		mime_compose_inline(c, "logo.png", NULL, "\x89PNG\r\n\x1a\n", 8);
	if (att) {
		char bin[300];
		for (size_t i = 0; i < sizeof(bin); i++)
			bin[i] = (char)(i * 7);
		mime_compose_attach(c, "r\xc3\xa9sum\xc3\xa9 final.pdf", NULL, bin, sizeof(bin));
	}
	struct buf out = BUF_INIT;
	mime_compose_write(c, &out);
	mime_compose_destroy(&c);
	assert_null(c);
	return out;
}

static void render(struct buf *out, const struct mime_message *msg)
{
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p))
		buf_printf(out, "%s%s/%s", out->len ? " " : "", p->ct.type, p->ct.subtype);
}

static void test_structures(void **state)
{
	static const struct {
		int text, html, inl, att;
		const char *tree;
	} cases[] = {
	    {1, 0, 0, 0, "text/plain"},
	    {0, 1, 0, 0, "text/html"},
	    {1, 1, 0, 0, "multipart/alternative text/plain text/html"},
	    {1, 1, 1, 0, "multipart/alternative text/plain multipart/related text/html image/png"},
	    {1, 0, 0, 1, "multipart/mixed text/plain application/pdf"},
	    {1, 1, 1, 1,
	     "multipart/mixed multipart/alternative text/plain multipart/related text/html image/png "
	     "application/pdf"},
	    {0, 0, 0, 0, "text/plain"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf m = build(cases[i].text, cases[i].html, cases[i].inl, cases[i].att);
		assert_lines_ok(&m);
		struct mime_message *msg = mime_message_parse(m.data, m.len, NULL);
		struct buf tree = BUF_INIT;
		render(&tree, msg);
		assert_string_equal(buf_cstr(&tree), cases[i].tree);
		struct pool *pool = pool_create(1024);
		const struct mime_headers *h = msg->root->headers;
		assert_string_equal(mime_headers_get_utf8(pool, h, "Subject"),
				    "Gr\xc3\xbc\xc3\x9f"
				    "e \xe2\x80\x94 quarterly report with a long subject line to fold");
		assert_string_equal(mime_headers_get_utf8(pool, h, "From"),
				    "J\xc3\xb6rg M\xc3\xbcller <joerg@example.org>");
		assert_string_equal(mime_headers_get(pool, h, "MIME-Version"), "1.0");
		assert_non_null(strstr(mime_headers_get(pool, h, "Message-ID"), "@example.org>"));
		assert_non_null(mime_headers_get(pool, h, "Date"));
		for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p)) {
			struct buf d = BUF_INIT;
			if (!strcmp(p->ct.subtype, "pdf")) {
				mime_part_decode(msg, p, &d);
				assert_int_equal(d.len, 300);
				assert_int_equal((unsigned char)d.data[299], (299 * 7) & 0xff);
				assert_string_equal(mime_part_filename(pool, p),
						    "r\xc3\xa9sum\xc3\xa9 final.pdf");
				assert_true(mime_part_is_attachment(pool, p));
			} else if (!strcmp(p->ct.subtype, "plain") && cases[i].text) {
				mime_part_decode_text(msg, p, &d);
				assert_string_equal(buf_cstr(&d), "Hello J\xc3\xb6rg,\r\nsee attached.\r\n");
			} else if (!strcmp(p->ct.subtype, "png")) {
				mime_part_decode(msg, p, &d);
				assert_memory_equal(d.data, "\x89PNG\r\n\x1a\n", 8);
				assert_non_null(mime_headers_find(p->headers, "Content-ID"));
			}
			buf_free(&d);
		}
		pool_destroy(&pool);
		buf_free(&tree);
		mime_message_free(&msg);
		buf_free(&m);
	}
}

static void test_dates(void **state)
{
	static const struct {
		const char *in;
		long t;
		int tz;
	} cases[] = {
	    {"Mon, 7 Feb 1994 21:52:25 -0800", 760686745, -480},
	    {"7 Feb 1994 21:52:25 -0800", 760686745, -480},
	    {"Mon, 07 Feb 94 21:52 PST", 760686720, -480},
	    {"Tue, 14 Nov 2023 22:13:20 +0000 (UTC)", 1700000000, 0},
	    {"Tue, 14 Nov 2023 22:13:20 GMT", 1700000000, 0},
	    {"garbage", -1, 0},
	    {"", -1, 0},
	    {"32 Jan 2020 00:00 +0000", -1, 0},
	    {"1 Foo 2020 00:00 +0000", -1, 0},
	    /* zone minutes are 00-59 (found by fuzz_mime_date) */
	    {"Mon, 7 Feb 1994 21:52:25 +0959", 760622005, 599},
	    {"Mon, 7 Feb 1994 21:52:25 +9999", -1, 0},
	    {"1 Jan 2020 00:00 -0060", -1, 0},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		time_t t;
		int tz;
		int rc = mime_date_parse(cases[i].in, strlen(cases[i].in), &t, &tz);
		if (cases[i].t < 0) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal((long)t, cases[i].t);
		assert_int_equal(tz, cases[i].tz);
	}
	struct buf b = BUF_INIT;
	mime_date_format(&b, 1700000000);
	time_t t;
	int tz;
	assert_int_equal(mime_date_parse(b.data, b.len, &t, &tz), 0);
	assert_int_equal((long)t, 1700000000);
	buf_free(&b);
}

static void test_types_and_headers(void **state)
{
	assert_string_equal(mime_type_from_filename("a.PDF"), "application/pdf");
	assert_string_equal(mime_type_from_filename("photo.jpeg"), "image/jpeg");
	assert_string_equal(mime_type_from_filename("noext"), "application/octet-stream");
	assert_string_equal(mime_type_from_filename("dir.d/noext"), "application/octet-stream");
	assert_string_equal(mime_type_from_filename(NULL), "application/octet-stream");
	static const struct {
		const char *name, *value, *out;
	} cases[] = {
	    {"Subject", "plain", "Subject: plain\r\n"},
	    {"To", "a@b, C D <c@d>", "To: a@b, C D <c@d>\r\n"},
	    {"To", "Team: a@b, c@d;", "To: Team: a@b, c@d;\r\n"},
	    {"From", "\"x, y\" <a@m\xc3\xbcller.de>", "From: \"x, y\" <a@xn--mller-kva.de>\r\n"},
	    {"Cc", "J\xc3\xb6rg <j@x>", "Cc: =?UTF-8?Q?J=C3=B6rg?= <j@x>\r\n"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf b = BUF_INIT;
		mime_header_write(&b, cases[i].name, cases[i].value);
		assert_string_equal(buf_cstr(&b), cases[i].out);
		buf_free(&b);
	}
}

/* A field name must be an RFC 5322 field name and a value must not hold
   a line break: either would let the caller write a field of its choice. */
static void test_header_injection(void **state)
{
	static const struct {
		const char *name, *value;
	} bad[] = {
	    {"X-B\r\nInjected", "z"},
	    {"X B", "z"},
	    {"", "z"},
	    {"X:B", "z"},
	    {"X-\xc3\xa9", "z"},
	    {"X-V", "v\r\nInjected: 2"},
	    {"Subject", "s\nInjected: 3"},
	    {"To", "b@example.org\rBcc: c@example.org"},
	};
	struct mime_compose *c = mime_compose_create();
	const char *error;
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		assert_int_equal(mime_compose_header(c, bad[i].name, bad[i].value, &error), -1);
		assert_non_null(error);
	}
	assert_int_equal(mime_compose_header(c, "From", "a@example.org", &error), 0);
	assert_int_equal(mime_compose_header(c, "X-Ok", "fine\tvalue", &error), 0);
	mime_compose_text(c, "x", 1);
	struct buf out = BUF_INIT;
	mime_compose_write(c, &out);
	assert_null(strstr(buf_cstr(&out), "Injected"));
	assert_non_null(strstr(buf_cstr(&out), "\r\nX-Ok: fine"));
	buf_free(&out);
	mime_compose_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_structures),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_types_and_headers),
	    cmocka_unit_test(test_header_injection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
