/* Base64, quoted-printable, RFC 2047 and RFC 2231 codecs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/base64.h"
#include "mime/charset.h"
#include "mime/header.h"
#include "mime/param.h"
#include "mime/qp.h"
#include "mime/rfc2047.h"

#include <stdlib.h>
#include <string.h>

static void test_base64_encode(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	    {"\xff\xfe\x00", "//4A"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf b = BUF_INIT;
		size_t len = i == 7 ? 3 : strlen(cases[i].in);
		base64_encode(&b, cases[i].in, len);
		assert_string_equal(buf_cstr(&b), cases[i].out);
		buf_free(&b);
	}
}

static void test_base64_lines(void **state)
{
	char in[200];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (char)i;
	struct buf b = BUF_INIT, d = BUF_INIT;
	base64_encode_lines(&b, in, sizeof(in));
	assert_int_equal(b.data[76], '\r');
	assert_int_equal(b.data[77], '\n');
	assert_memory_equal(b.data + b.len - 2, "\r\n", 2);
	base64_decode_lenient(&d, b.data, b.len);
	assert_int_equal(d.len, sizeof(in));
	assert_memory_equal(d.data, in, sizeof(in));
	buf_free(&b);
	buf_free(&d);
}

static void test_base64_strict(void **state)
{
	static const struct {
		const char *in, *out;
		int rc;
	} cases[] = {
	    {"", "", 0},
	    {"Zg==", "f", 0},
	    {"Zm8=", "fo", 0},
	    {"Zm9v", "foo", 0},
	    {"AGZvbwBiYXI=", NULL, 0},
	    {"Zg=", NULL, -1},   /* bad length */
	    {"Zm9v ", NULL, -1}, /* space */
	    {"Zm 9v", NULL, -1},
	    {"Z===", NULL, -1},     /* too much padding */
	    {"Zg==Zg==", NULL, -1}, /* padding in the middle */
	    {"Zh==", NULL, -1},     /* non-zero unused bits */
	    {"Zm9!", NULL, -1},     /* junk */
	    {"=Zm9", NULL, -1},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf b = BUF_INIT;
		int rc = base64_decode_strict(&b, cases[i].in, strlen(cases[i].in));
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0 && cases[i].out != NULL)
			assert_string_equal(buf_cstr(&b), cases[i].out);
		if (rc < 0)
			assert_int_equal(b.len, 0);
		buf_free(&b);
	}
	struct buf b = BUF_INIT;
	assert_int_equal(base64_decode_strict(&b, "AGZvbwBiYXI=", 12), 0);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.data, "\0foo\0bar", 8);
	buf_free(&b);
}

static void test_base64_lenient(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"Zm9v\r\nYmFy", "foobar"},
	    {"Zm 9v\tYm Fy", "foobar"},
	    {"Zm9v!!YmFy", "foobar"},
	    {"Zm9vYg==junkafter", "foob"},
	    {"Zm9vYmE", "fooba"}, /* truncated, no padding */
	    {"Zm9vY", "foo"},     /* one stray character */
	    {"", ""},
	    {"====", ""},
	    {"\x80\xff", ""},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf b = BUF_INIT;
		base64_decode_lenient(&b, cases[i].in, strlen(cases[i].in));
		assert_string_equal(buf_cstr(&b), cases[i].out);
		buf_free(&b);
	}
}

static void test_qp_decode(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"abc", "abc"},
	    {"a=3Db", "a=b"},
	    {"a=3db", "a=b"},
	    {"soft=\r\nbreak", "softbreak"},
	    {"soft=\nbreak", "softbreak"},
	    {"soft=  \r\nbreak", "softbreak"},     /* whitespace after = */
	    {"trailing   \r\nx", "trailing\r\nx"}, /* transport padding */
	    {"bad=XYz", "bad=XYz"},
	    {"bad=4", "bad=4"},
	    {"end=", "end"},
	    {"=C3=A9t=C3=A9", "\xc3\xa9t\xc3\xa9"},
	    {"a = b", "a = b"},
	    {"line1\r\nline2\r\n", "line1\r\nline2\r\n"},
	    {"nul=00x", NULL},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf b = BUF_INIT;
		qp_decode(&b, cases[i].in, strlen(cases[i].in));
		if (cases[i].out != NULL)
			assert_string_equal(buf_cstr(&b), cases[i].out);
		else
			assert_memory_equal(b.data, "nul\0x", 5);
		buf_free(&b);
	}
}

#define LONG_X "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static void test_qp_roundtrip(void **state)
{
	static const char *const texts[] = {
	    "plain ascii\n",
	    "caf\xc3\xa9 cr\xc3\xa8me\r\n",
	    "trailing space \nand tab\t\n",
	    "=equals= sign",
	    ".leading dot\nFrom the start\n",
	    "a very long line that goes past seventy-six characters for sure, yes it does, absolutely, more "
	    "than that\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(texts); i++) {
		struct buf e = BUF_INIT, d = BUF_INIT, want = BUF_INIT;
		qp_encode(&e, texts[i], strlen(texts[i]));
		/* Lines stay within 76 and are 7-bit. */
		size_t col = 0;
		for (size_t j = 0; j < e.len; j++) {
			assert_true((unsigned char)e.data[j] < 128);
			col = e.data[j] == '\n' ? 0 : col + 1;
			assert_true(col <= 77);
		}
		qp_decode(&d, e.data, e.len);
		/* Line ends come back as CRLF. */
		for (const char *p = texts[i]; *p; p++) {
			if (*p == '\n' && (p == texts[i] || p[-1] != '\r'))
				buf_append_char(&want, '\r');
			buf_append_char(&want, *p);
		}
		assert_string_equal(buf_cstr(&d), buf_cstr(&want));
		buf_free(&e);
		buf_free(&d);
		buf_free(&want);
	}
	struct buf e = BUF_INIT, d = BUF_INIT;
	qp_encode_binary(&e, "a\r\nb\0c", 6);
	qp_decode(&d, e.data, e.len);
	assert_int_equal(d.len, 6);
	assert_memory_equal(d.data, "a\r\nb\0c", 6);
	buf_free(&e);
	buf_free(&d);
	/* A '.' or "From " that a soft break puts at the start of a line is
	   escaped too (found by fuzz_mime_qp). */
	static const char *const starts[] = {".", "From "};
	for (size_t i = 0; i < N_ELEMENTS(starts); i++) {
		for (int pad = 70; pad <= 78; pad++) {
			char *in = xasprintf("%.*s%stail\n", pad, LONG_X, starts[i]);
			char *want = xasprintf("%.*s%stail\r\n", pad, LONG_X, starts[i]);
			qp_encode(&e, in, strlen(in));
			for (const char *line = e.data; line != NULL; line = strchr(line, '\n')) {
				line += line[0] == '\n';
				assert_false(line[0] == '.');
				assert_false(!strncmp(line, "From ", 5));
			}
			qp_decode(&d, e.data, e.len);
			assert_string_equal(buf_cstr(&d), want);
			buf_reset(&e);
			buf_reset(&d);
			free(in);
			free(want);
		}
	}
	buf_free(&e);
	buf_free(&d);
	assert_false(qp_needs_encoding("hello\r\nworld\n", 13));
	assert_true(qp_needs_encoding("caf\xc3\xa9", 5));
	assert_true(qp_needs_encoding("a\rb", 3));
}

static void test_2047_decode(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain text", "plain text"},
	    {"=?utf-8?q?caf=C3=A9?=", "caf\xc3\xa9"},
	    {"=?UTF-8?B?Y2Fmw6k=?=", "caf\xc3\xa9"},
	    {"=?iso-8859-1?q?caf=E9?=", "caf\xc3\xa9"},
	    {"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"}, /* space dropped */
	    {"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"},
	    {"=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"},
	    {"x=?utf-8?q?a?=y", "xay"}, /* glued */
	    {"=?utf-8?q?a?==?utf-8?q?b?=", "ab"},
	    {"=?utf-8?q?hello_world?=", "hello world"},
	    {"=?utf-8?q?with space?=", "with space"}, /* Q with spaces */
	    {"=?x-unknown-cs?q?abc?=", "=?x-unknown-cs?q?abc?="},
	    {"=?utf-8?x?abc?=", "=?utf-8?x?abc?="},
	    {"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
	    {"=?utf-8?b?w6k?=", "\xc3\xa9"}, /* no padding */
	    /* a character split across two words */
	    {"=?utf-8?b?w6g=?= =?utf-8?b?w6k=?=", "\xc3\xa8\xc3\xa9"},
	    {"=?utf-8?b?w6?= =?utf-8?b?k=?=", NULL},
	    {"=?utf-8*en?q?lang?=", "lang"},            /* RFC 2231 5 */
	    {"raw \xc3\xa9 utf8", "raw \xc3\xa9 utf8"}, /* RFC 6532 */
	    {"raw \xe9 latin1", "raw \xc3\xa9 latin1"},
	    {"=?iso-2022-jp?b?GyRCJEYkOSRIGyhC?=", "\xe3\x81\xa6\xe3\x81\x99\xe3\x81\xa8"},
	    {"=?utf-8?q?bad=ZZ?=", "bad=ZZ"},
	    /* glibc let 5-byte forms through UTF-8 under another name
	       (found by fuzz_mime_rfc2047) */
	    {"=?utf-8//?q?a=F8=A4=A4=A4=A4z?=", NULL},
	    {"=?utf-8?q?"
	     "?=",
	     ""},
	    {"=?"
	     "?q?x?=",
	     "=?"
	     "?q?x?="},
	    {"=?", "=?"},
	    {"", ""},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf b = BUF_INIT;
		mime_2047_decode(&b, cases[i].in, strlen(cases[i].in));
		if (cases[i].out != NULL)
			assert_string_equal(buf_cstr(&b), cases[i].out);
		assert_true(utf8_valid(b.data, b.len));
		buf_free(&b);
	}
}

static void test_2047_encode(void **state)
{
	static const struct {
		const char *in;
		int phrase;
		const char *out;
	} cases[] = {
	    {"hello world", 0, "hello world"},
	    {"caf\xc3\xa9 au lait", 0, "=?UTF-8?Q?caf=C3=A9?= au lait"},
	    {"Smith, John", 1, "\"Smith, John\""},
	    {"Jos\xc3\xa9 Garc\xc3\xad"
	     "a",
	     1, "=?UTF-8?Q?Jos=C3=A9_Garc=C3=ADa?="},
	    {"looks =?like?= a word", 0, "looks =?UTF-8?B?PT9saWtlPz0=?= a word"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf b = BUF_INIT, d = BUF_INIT;
		mime_2047_encode(&b, cases[i].in, strlen(cases[i].in), 9, cases[i].phrase);
		assert_string_equal(buf_cstr(&b), cases[i].out);
		buf_free(&b);
		buf_free(&d);
	}
	/* Long non-ASCII text: words <= 75, lines <= 78, decodes back. */
	struct buf in = BUF_INIT, b = BUF_INIT, unf = BUF_INIT, d = BUF_INIT;
	for (int i = 0; i < 30; i++)
		buf_append_str(&in, "\xc3\xa9t\xc3\xa9 \xe2\x82\xac ");
	buf_truncate(&in, in.len - 1);
	mime_2047_encode(&b, in.data, in.len, 9, 0);
	size_t col = 9;
	for (size_t i = 0; i < b.len; i++) {
		if (b.data[i] == '\r')
			continue;
		col = b.data[i] == '\n' ? 0 : col + 1;
		assert_true(col <= 78);
	}
	mime_header_unfold(&unf, b.data, b.len);
	mime_2047_decode(&d, unf.data, unf.len);
	assert_string_equal(buf_cstr(&d), buf_cstr(&in));
	buf_free(&in);
	buf_free(&b);
	buf_free(&unf);
	buf_free(&d);
}

static void test_params_2231(void **state)
{
	static const struct {
		const char *in, *name, *value, *imap_name, *imap_value;
	} cases[] = {
	    {"text/plain; charset=us-ascii", "charset", "us-ascii", "charset", "us-ascii"},
	    {"text/plain; charset=\"utf-8\"", "charset", "utf-8", "charset", "utf-8"},
	    {"a/b; name=\"quoted \\\"x\\\" y\"", "name", "quoted \"x\" y", "name", "quoted \"x\" y"},
	    {"a/b; filename*=utf-8''%E2%82%AC%20rates.txt", "filename", "\xe2\x82\xac rates.txt", "filename*",
	     "utf-8''%E2%82%AC%20rates.txt"},
	    {"a/b; filename*=iso-8859-1'en'caf%E9", "filename", "caf\xc3\xa9", "filename*",
	     "iso-8859-1'en'caf%E9"},
	    {"a/b; name*0=\"long \"; name*1=\"name\"", "name", "long name", "name", "long name"},
	    {"a/b; name*1=\"second\"; name*0=\"first \"", "name", "first second", "name", "first second"},
	    {"a/b; n*0*=utf-8''%C3; n*1*=%A9; n*2=.txt", "n", "\xc3\xa9.txt", "n*", "utf-8''%C3%A9.txt"},
	    {"a/b; n*0=a; n*2=c", "n", "a", "n", "a"}, /* gap: stop */
	    /* IMAP sees the sections as written, joined (not re-encoded) */
	    {"a/b; t*0*=us-ascii'en'a%20b; t*1=\"c d%\"", "t", "a bc d%", "t*", "us-ascii'en'a%20bc d%"},
	    {"a/b; f*0=\"one \"; f*1*=%41", "f", "one A", "f*", "''one %41"},
	    {"a/b; name=\"=?utf-8?q?caf=C3=A9?=.pdf\"", "name", "caf\xc3\xa9.pdf", "name",
	     "=?utf-8?q?caf=C3=A9?=.pdf"},
	    {"a/b; name=my file.pdf; x=y", "name", "my file.pdf", "name", "my file.pdf"},
	    {"a/b; name=\"unterminated", "name", "unterminated", "name", "unterminated"},
	    {"a/b (comment) ; (c) name = v (trailing)", "name", "v", "name", "v"},
	    {"a/b; name*=bogus-charset''x%41", "name", "xA", "name*", "bogus-charset''x%41"},
	    {"a/b; name*=noquotes%41", "name", "noquotesA", "name*", "noquotes%41"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct pool *pool = pool_create(1024);
		struct mime_content_type ct;
		mime_content_type_parse(pool, cases[i].in, strlen(cases[i].in), &ct);
		const char *v = mime_param_get(&ct.params, cases[i].name);
		assert_non_null(v);
		assert_string_equal(v, cases[i].value);
		int found = 0;
		for (unsigned int j = 0; j < ct.params.count; j++) {
			if (!strcmp(ct.params.items[j].imap_name, cases[i].imap_name)) {
				assert_string_equal(ct.params.items[j].imap_value, cases[i].imap_value);
				found = 1;
			}
		}
		assert_true(found);
		pool_destroy(&pool);
	}
}

static void test_content_type(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *type, *subtype;
	} cases[] = {
	    {"Text/HTML; charset=x", 0, "text", "html"},
	    {" multipart / mixed ; boundary=b", 0, "multipart", "mixed"},
	    {"", -1, "text", "plain"},
	    {"text", -1, "text", "plain"},
	    {"/plain", -1, "text", "plain"},
	    {"text/", -1, "text", "plain"},
	    {"(comment only", -1, "text", "plain"},
	    /* 8-bit bytes end a token (RFC 2045 5.1; found by fuzz_mime_param) */
	    {"text/plain\xa0; charset=x", 0, "text", "plain"},
	    {"t\xe9xt/plain", -1, "text", "plain"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct pool *pool = pool_create(1024);
		struct mime_content_type ct;
		assert_int_equal(mime_content_type_parse(pool, cases[i].in, strlen(cases[i].in), &ct),
				 cases[i].rc);
		assert_string_equal(ct.type, cases[i].type);
		assert_string_equal(ct.subtype, cases[i].subtype);
		pool_destroy(&pool);
	}
	struct pool *pool = pool_create(1024);
	struct mime_disposition d;
	const char *v = "attachment; filename=\"a.txt\"; size=12";
	assert_int_equal(mime_disposition_parse(pool, v, strlen(v), &d), 0);
	assert_string_equal(d.type, "attachment");
	assert_string_equal(mime_param_get(&d.params, "filename"), "a.txt");
	assert_string_equal(mime_param_get(&d.params, "size"), "12");
	assert_int_equal(mime_disposition_parse(pool, ";x=y", 4, &d), -1);
	v = "attachment; n\xe4me=x; size=1";
	assert_int_equal(mime_disposition_parse(pool, v, strlen(v), &d), 0);
	assert_int_equal(d.params.count, 1);
	assert_string_equal(d.params.items[0].name, "size");
	pool_destroy(&pool);
}

static void test_charset(void **state)
{
	struct buf b = BUF_INIT;
	assert_int_equal(mime_charset_to_utf8(&b, "windows-1251", "\xcf\xf0\xe8", 3), 0);
	assert_string_equal(buf_cstr(&b), "\xd0\x9f\xd1\x80\xd0\xb8");
	buf_reset(&b);
	assert_int_equal(mime_charset_to_utf8(&b, "no-such-charset", "x", 1), -1);
	assert_int_equal(mime_charset_to_utf8(&b, "utf-8", "a\xffz", 3), 0);
	buf_reset(&b);
	assert_int_equal(mime_charset_to_utf8(&b, "utf-8//", "a\xf8\xa4\xa4\xa4\xa4z", 7), 0);
	assert_true(utf8_valid(b.data, b.len));
	buf_reset(&b);
	assert_int_equal(mime_charset_to_utf8(&b, "utf-8", "a\xffz", 3), 0);
	assert_string_equal(buf_cstr(&b), "a\xef\xbf\xbdz");
	/* strict conversion: all or nothing */
	buf_reset(&b);
	buf_append_str(&b, "kept");
	assert_int_equal(mime_charset_convert(&b, "UTF-16BE", "UTF-8", "\xc3\xa9", 2), 0);
	assert_int_equal(b.len, 6);
	assert_memory_equal(b.data + 4, "\x00\xe9", 2);
	assert_int_equal(mime_charset_convert(&b, "UTF-16BE", "UTF-8", "ab\xff", 3), -1);
	assert_int_equal(mime_charset_convert(&b, "UTF-8", "UTF-8", "\xe2\x82", 2), -1);
	assert_int_equal(mime_charset_convert(&b, "UTF-8", "no-such-charset", "x", 1), -1);
	assert_int_equal(b.len, 6);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64_encode), cmocka_unit_test(test_base64_lines),
	    cmocka_unit_test(test_base64_strict), cmocka_unit_test(test_base64_lenient),
	    cmocka_unit_test(test_qp_decode),     cmocka_unit_test(test_qp_roundtrip),
	    cmocka_unit_test(test_2047_decode),   cmocka_unit_test(test_2047_encode),
	    cmocka_unit_test(test_params_2231),   cmocka_unit_test(test_content_type),
	    cmocka_unit_test(test_charset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
