/* Unit tests for SMTP reply formatting (src/smtp/smtp_reply.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtp/smtp_reply.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	int code;
	const char *enh, *text, *expect;
} reply_cases[] = {
    /* single line */
    {250, NULL, "OK", "250 OK\r\n"},
    {250, "2.0.0", "OK", "250 2.0.0 OK\r\n"},
    {220, NULL, "mail.example ESMTP postoffice", "220 mail.example ESMTP postoffice\r\n"},
    {354, NULL, "End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>\r\n"},
    {550, "5.1.1", "<nobody@example.com>: Recipient address rejected",
     "550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n"},
    {421, "4.7.0", "Too many connections", "421 4.7.0 Too many connections\r\n"},
    {250, "2.0.0", "", "250 2.0.0\r\n"},
    /* multi-line: every line but the last has "-" (RFC 5321 4.2.1) */
    {250, NULL, "mail.example\nPIPELINING\nSIZE 26214400",
     "250-mail.example\r\n250-PIPELINING\r\n250 SIZE 26214400\r\n"},
    {250, "2.0.0", "first\nsecond", "250-2.0.0 first\r\n250 2.0.0 second\r\n"},
    {214, "2.0.0", "a\nb\nc\nd", "214-2.0.0 a\r\n214-2.0.0 b\r\n214-2.0.0 c\r\n214 2.0.0 d\r\n"},
    {250, "2.0.0", "a\n", "250-2.0.0 a\r\n250 2.0.0\r\n"},
    {250, "2.0.0", "\na", "250-2.0.0\r\n250 2.0.0 a\r\n"},
    {250, NULL, "a\n\nb", "250-a\r\n250-\r\n250 b\r\n"},
    /* control characters cannot break the framing */
    {501, "5.5.4", "bad\rthing", "501 5.5.4 bad?thing\r\n"},
    {501, "5.5.4", "bad\r\n250 OK", "501-5.5.4 bad?\r\n501 5.5.4 250 OK\r\n"},
    {501, NULL, "tab\there", "501 tab?here\r\n"},
    {501, NULL, "del\x7f", "501 del?\r\n"},
    {501, NULL, "\x01\x02\x1b[0m\x1f", "501 ???[0m?\r\n"},
    {501, NULL, "\r", "501 ?\r\n"},
    /* UTF-8 (SMTPUTF8) and printable ASCII pass through */
    {250, NULL, "caf\xc3\xa9 ~!@#$%^&*()", "250 caf\xc3\xa9 ~!@#$%^&*()\r\n"},
};

static void test_reply_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(reply_cases); i++) {
		struct buf out = BUF_INIT;
		smtp_reply_format(&out, reply_cases[i].code, reply_cases[i].enh, reply_cases[i].text);
		if (strcmp(buf_cstr(&out), reply_cases[i].expect) != 0)
			fail_msg("case %zu: got <%s> expected <%s>", i, buf_cstr(&out),
				 reply_cases[i].expect);
		buf_free(&out);
	}
}

/* Pipelined replies go into one buffer: earlier ones are left alone. */
static void test_reply_appends(void **state)
{
	struct buf out = BUF_INIT;
	smtp_reply_format(&out, 250, "2.1.0", "Ok");
	smtp_reply_format(&out, 250, "2.1.5", "Ok");
	smtp_reply_format(&out, 354, NULL, "Go ahead");
	assert_string_equal(buf_cstr(&out), "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n");
	buf_free(&out);
}

/* Whatever the text, the output is well-formed reply lines. */
static void test_reply_random(void **state)
{
	srandom(31337);
	char text[200];
	for (int n = 0; n < 20000; n++) {
		size_t len = (size_t)random() % (sizeof(text) - 1);
		for (size_t i = 0; i < len; i++) {
			char c = (char)(1 + random() % 255);
			text[i] = random() % 4 == 0 ? "\r\n\t\x7f"[random() % 4] : c;
		}
		text[len] = '\0';
		size_t lines = 1;
		for (size_t i = 0; i < len; i++)
			lines += text[i] == '\n';
		const char *enh = n % 2 ? "5.5.2" : NULL;
		struct buf out = BUF_INIT;
		smtp_reply_format(&out, 554, enh, text);
		const char *p = out.data, *end = out.data + out.len;
		for (size_t l = 0; l < lines; l++) {
			const char *eol = memchr(p, '\r', (size_t)(end - p));
			assert_non_null(eol);
			assert_true(eol + 1 < end && eol[1] == '\n');
			assert_true(eol - p >= 4);
			assert_memory_equal(p, "554", 3);
			assert_int_equal(p[3], l + 1 == lines ? ' ' : '-');
			if (enh != NULL)
				assert_memory_equal(p + 4, "5.5.2", 5);
			for (const char *q = p; q < eol; q++)
				assert_false((unsigned char)*q < 32 || *q == 127);
			p = eol + 2;
		}
		assert_ptr_equal(p, end);
		buf_free(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_table),
	    cmocka_unit_test(test_reply_appends),
	    cmocka_unit_test(test_reply_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
