/* Preview text (RFC 8970): the text pass (HTML, whitespace, controls,
   the character budget) and the choice and decoding of a message's part. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/preview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *in;
	bool html;
	size_t max;
	const char *out;
} text_cases[] = {
    {"hello world", false, 200, "hello world"},
    {"  \r\n\thello \r\n\r\n  world \t\r\n", false, 200, "hello world"},
    {"a\x01"
     "b\x7f"
     "c\x1b[0m",
     false, 200, "abc[0m"},
    {"caf\xc3\xa9\xc2\xa0"
     "au\xc2\x85lait",
     false, 200, "caf\xc3\xa9 au lait"}, /* NBSP, NEL */
    {"\xef\xbb\xbf"
     "BOM, C1 \xc2\x9b"
     "x",
     false, 200, "BOM, C1 x"},
    {"line\xe2\x80\xa8next", false, 200, "line next"},
    {"bad \xff\xfe utf8 \xe2\x98", false, 200, "bad utf8"},
    {"", false, 200, ""},
    {" \r\n ", false, 200, ""},
    /* the budget counts characters, and leaves no space at the end */
    {"abcdef", false, 3, "abc"},
    {"\xe2\x98\x83\xe2\x98\x83\xe2\x98\x83\xe2\x98\x83", false, 2, "\xe2\x98\x83\xe2\x98\x83"},
    {"ab cd", false, 3, "ab"},
    {"ab cd", false, 4, "ab c"},
    /* HTML */
    {"<p>Hello&nbsp;<b>wor</b>ld</p><p>next</p>", true, 200, "Hello world next"},
    {"<html><head><title>T</title><style>p{color:red}</style></head><body>Hi<br>there</body></html>", true,
     200, "Hi there"},
    {"<script type=\"x\">alert('<p>')</script>text", true, 200, "text"},
    {"a<!-- <p>hidden</p> -->b", true, 200, "ab"},
    {"<!DOCTYPE html><div title=\"a>b\">x</div>", true, 200, "x"},
    {"1 < 2 &amp; 3 &gt; 2 &#233;&#xE9;&#x1F600; &bogus; &", true, 200,
     "1 < 2 & 3 > 2 \xc3\xa9\xc3\xa9\xf0\x9f\x98\x80 &bogus; &"},
    {"&#0;&#xD800;&#x110000;&#65", true, 200, "&#65"},
    {"soft&shy;hyphen", true, 200, "softhyphen"},
    {"<header>kept</header><headline>too</headline>", true, 200, "kepttoo"},
    {"<head>never closed", true, 200, ""},
    {"<td>a</td><td>b</td>", true, 200, "a b"},
    {"<p>x", false, 200, "<p>x"},
};

static void test_text(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(text_cases); i++) {
		struct buf out = BUF_INIT;
		mime_preview_text(&out, text_cases[i].in, strlen(text_cases[i].in), text_cases[i].html,
				  text_cases[i].max);
		if (strcmp(buf_cstr(&out), text_cases[i].out) != 0)
			fail_msg("case %zu: got <%s> expected <%s>", i, buf_cstr(&out), text_cases[i].out);
		buf_free(&out);
	}
}

static const struct {
	const char *name, *msg, *out;
} msg_cases[] = {
    {"plain", "Subject: x\r\n\r\nHello,\r\n\r\nthe meeting is at 10.\r\n", "Hello, the meeting is at 10."},
    {"no body", "Subject: x\r\n\r\n", ""},
    {"quoted-printable latin1",
     "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
     "Gr=FC=DFe aus K=F6ln, a long line that is=\r\n continued\r\n",
     "Gr\xc3\xbc\xc3\x9f"
     "e aus K\xc3\xb6ln, a long line that is continued"},
    {"base64 utf-8",
     "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     "4piDIFNub3dtYW4gc2F5cyBoaQ==\r\n",
     "\xe2\x98\x83 Snowman says hi"},
    {"8-bit without charset: UTF-8", "Subject: x\r\n\r\nZo\xc3\xab\r\n", "Zo\xc3\xab"},
    {"8-bit without charset, not UTF-8: Windows-1252", "Subject: x\r\n\r\nZo\xeb \x93q\x94\r\n",
     "Zo\xc3\xab \xe2\x80\x9cq\xe2\x80\x9d"},
    {"alternative: plain preferred",
     "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n"
     "<p>html version</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n--b--\r\n",
     "plain version"},
    {"html only",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n"
     "Content-Transfer-Encoding: quoted-printable\r\n\r\n<div>Caf=C3=A9 &amp; <i>cr=C3=A8me</i></div>\r\n"
     "--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\n"
     "attached\r\n--b--\r\n",
     "Caf\xc3\xa9 & cr\xc3\xa8me"},
    {"attachment first",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf\r\n"
     "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
     "the text\r\n--b--\r\n",
     "the text"},
    {"no text", "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n", ""},
    {"unknown charset", "Content-Type: text/plain; charset=x-unheard-of\r\n\r\nplain ascii\r\n",
     "plain ascii"},
};

static void test_message(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(msg_cases); i++) {
		const char *in = msg_cases[i].msg;
		struct mime_message *msg = mime_message_parse(in, strlen(in), NULL);
		struct buf out = BUF_INIT;
		mime_preview(&out, msg, MIME_PREVIEW_CHARS);
		if (strcmp(buf_cstr(&out), msg_cases[i].out) != 0)
			fail_msg("%s: got <%s> expected <%s>", msg_cases[i].name, buf_cstr(&out),
				 msg_cases[i].out);
		buf_free(&out);
		mime_message_free(&msg);
	}
}

/* A long body: 200 characters, valid UTF-8, whatever the size; a body
   beyond the scan limit is read only that far. */
static void test_bounds(void **state)
{
	struct buf in = BUF_INIT;
	buf_append_str(&in, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	while (in.len < MIME_PREVIEW_SCAN + 100000)
		buf_append_str(&in, "\xc3\xa9t\xc3\xa9 ");
	struct mime_message *msg = mime_message_parse(in.data, in.len, NULL);
	struct buf out = BUF_INIT;
	mime_preview(&out, msg, MIME_PREVIEW_CHARS);
	assert_true(utf8_valid(out.data, out.len));
	size_t chars = 0;
	for (size_t i = 0; i < out.len; i++)
		chars += ((unsigned char)out.data[i] & 0xc0) != 0x80;
	/* 50 times "été " but the last space */
	assert_int_equal(chars, MIME_PREVIEW_CHARS - 1);
	assert_true(out.data[out.len - 1] != ' ');
	assert_memory_equal(out.data, "\xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9", 11);
	buf_free(&out);
	mime_message_free(&msg);
	/* an HTML body that hides everything in the first 256 KiB */
	buf_reset(&in);
	buf_append_str(&in, "Content-Type: text/html\r\n\r\n<style>");
	while (in.len < MIME_PREVIEW_SCAN + 1000)
		buf_append_str(&in, "p { color: red; }\r\n");
	buf_append_str(&in, "</style>visible\r\n");
	msg = mime_message_parse(in.data, in.len, NULL);
	mime_preview(&out, msg, MIME_PREVIEW_CHARS);
	assert_int_equal(out.len, 0);
	buf_free(&out);
	mime_message_free(&msg);
	buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_message),
	    cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
