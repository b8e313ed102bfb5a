/* IMAP ENVELOPE, BODY and BODYSTRUCTURE of tricky messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_quote(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		unsigned int flags;
		const char *out;
	} cases[] = {
	    {"plain", 5, 0, "\"plain\""},
	    {"", 0, 0, "\"\""},
	    {"q\"b\\s", 5, 0, "\"q\\\"b\\\\s\""},
	    {"two\r\nlines", 10, 0, "{10}\r\ntwo\r\nlines"},
	    {"caf\xc3\xa9", 5, 0, "{5}\r\ncaf\xc3\xa9"},
	    {"caf\xc3\xa9", 5, MIME_IMAP_UTF8, "\"caf\xc3\xa9\""},
	    {"bad\xe9", 4, MIME_IMAP_UTF8, "{4}\r\nbad\xe9"},
	    {"n\0ul", 4, 0, "\"nul\""},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf b = BUF_INIT;
		mime_imap_quote(&b, cases[i].in, cases[i].len, cases[i].flags);
		assert_string_equal(buf_cstr(&b), cases[i].out);
		buf_free(&b);
	}
	struct buf b = BUF_INIT;
	mime_imap_nstring(&b, NULL, 0, 0);
	assert_string_equal(buf_cstr(&b), "NIL");
	buf_free(&b);
}

static const struct {
	const char *name, *in, *envelope, *body, *bodystructure;
} cases[] = {
    {"simple",
     "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nFrom: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
     "Subject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu\r\nMessage-Id: "
     "<B27397-0100000@Blurdybloop.COM>\r\n"
     "MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can "
     "meet at 3:30 tomorrow?\r\n",
     "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" ((\"Fred Foobar\" NIL \"foobar\" "
     "\"Blurdybloop.COM\")) "
     "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")) ((\"Fred Foobar\" NIL \"foobar\" "
     "\"Blurdybloop.COM\")) "
     "((NIL NIL \"mooch\" \"owatagu.siam.edu\")) NIL NIL NIL \"<B27397-0100000@Blurdybloop.COM>\")",
     "(\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 55 1)",
     "(\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 55 1 NIL NIL NIL NIL)"},
    {"no headers at all", "\r\nbody\r\n", "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL)"},
    {"groups, 8-bit and empty sender",
     "From: J\xc3\xb6rg <j@x>\r\nSender:\r\nTo: team: a@b, \"c d\" <c@d>;, solo\r\nSubject: "
     "caf\xc3\xa9\r\n\r\nx",
     "(NIL {5}\r\ncaf\xc3\xa9 (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
     "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) ((NIL NIL \"team\" NIL)(NIL NIL \"a\" \"b\")(\"c d\" NIL \"c\" "
     "\"d\")"
     "(NIL NIL NIL NIL)(NIL NIL \"solo\" \"MISSING_DOMAIN\")) NIL NIL NIL NIL)",
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0)", NULL},
    {"multipart with 2231, disposition, language, LF line ends",
     "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain; charset=utf-8\n"
     "Content-Language: en, de\nContent-Location: http://x/\nContent-ID: <id@x>\nContent-Description: "
     "desc\n\n"
     "one\ntwo\n--b\nContent-Type: application/pdf; name*0=\"long \"; name*1=\"name.pdf\"\n"
     "Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.pdf\nContent-Transfer-Encoding: BASE64\n"
     "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\nAAAA\n--b--\n",
     NULL,
     "((\"text\" \"plain\" (\"charset\" \"utf-8\") \"<id@x>\" \"desc\" \"7bit\" 8 1)(\"application\" \"pdf\" "
     "(\"name\" \"long name.pdf\") NIL NIL \"base64\" 4) \"mixed\")",
     "((\"text\" \"plain\" (\"charset\" \"utf-8\") \"<id@x>\" \"desc\" \"7bit\" 8 1 NIL NIL (\"en\" \"de\") "
     "\"http://x/\")"
     "(\"application\" \"pdf\" (\"name\" \"long name.pdf\") NIL NIL \"base64\" 4 "
     "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" "
     "(\"attachment\" (\"filename*\" \"utf-8''%E2%82%AC.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL "
     "NIL NIL)"},
    {"message/rfc822 and a multipart without parts",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
     "Subject: inner\r\nFrom: i@x\r\n\r\nhi\r\n--b\r\nContent-Type: multipart/alternative; "
     "boundary=never\r\n\r\nnothing\r\n--b--\r\n",
     NULL,
     "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 31 (NIL \"inner\" ((NIL NIL \"i\" \"x\")) ((NIL NIL "
     "\"i\" \"x\")) "
     "((NIL NIL \"i\" \"x\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
     "\"7bit\" 2 0) 3)"
     "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"alternative\") \"mixed\")",
     "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 31 (NIL \"inner\" ((NIL NIL \"i\" \"x\")) ((NIL NIL "
     "\"i\" \"x\")) "
     "((NIL NIL \"i\" \"x\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
     "\"7bit\" 2 0 "
     "NIL NIL NIL NIL) 3 NIL NIL NIL NIL)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 "
     "0 "
     "NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"never\") NIL NIL NIL) \"mixed\" (\"boundary\" \"b\") "
     "NIL NIL NIL)"},
    /* The classes of docs/imap.md ("BODYSTRUCTURE and ENVELOPE"), one case
       each: what postoffice answers where servers and senders disagree. */
    {"repeated address fields are merged, the last Subject/Date/ids count",
     "From: a@x\r\nTo: t1@x\r\nCc: c1@x\r\nTo: T2 <t2@x>, t3@x\r\nBcc: b1@x\r\nCc: c2@x\r\nBcc: b2@x\r\n"
     "Subject: one\r\nSubject: two\r\nDate: d1\r\nDate: d2\r\nMessage-ID: <m1@x>\r\nMessage-ID: <m2@x>\r\n"
     "In-Reply-To: <i1@x>\r\nIn-Reply-To: <i2@x>\r\nFrom: b@x\r\nReply-To:\r\nReply-To: r@x\r\n\r\n",
     "(\"d2\" \"two\" ((NIL NIL \"a\" \"x\")(NIL NIL \"b\" \"x\")) ((NIL NIL \"a\" \"x\")(NIL NIL \"b\" "
     "\"x\")) "
     "((NIL NIL \"r\" \"x\")) ((NIL NIL \"t1\" \"x\")(\"T2\" NIL \"t2\" \"x\")(NIL NIL \"t3\" \"x\")) "
     "((NIL NIL \"c1\" \"x\")(NIL NIL \"c2\" \"x\")) ((NIL NIL \"b1\" \"x\")(NIL NIL \"b2\" \"x\")) "
     "\"<i2@x>\" "
     "\"<m2@x>\")",
     NULL, NULL},
    {"empty display name, words without address, empty first field",
     "From: \"\" <e@x>\r\nTo:\r\nTo: Undisclosed recipients\r\nCc: solo\r\n\r\n",
     "(NIL NIL ((NIL NIL \"e\" \"x\")) ((NIL NIL \"e\" \"x\")) ((NIL NIL \"e\" \"x\")) "
     "((\"Undisclosed recipients\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) "
     "((NIL NIL \"solo\" \"MISSING_DOMAIN\")) NIL NIL NIL)",
     NULL, NULL},
    {"text without charset: us-ascii after its parameters; lines count line ends",
     "Content-Type: text/plain; format=flowed\r\n\r\none\r\ntwo", NULL, NULL,
     "(\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 1 NIL NIL NIL "
     "NIL)"},
    {"invalid Content-Type keeps its charset; an RFC 2231 charset is one",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text; charset=utf-8\r\n\r\nx\r\n"
     "--b\r\nContent-Type: text/plain; charset*=us-ascii''utf-8\r\n\r\ny\r\n--b\r\nContent-Type:\r\n\r\nz\r\n"
     "--b--\r\n",
     NULL, NULL,
     "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 1 0 NIL NIL NIL NIL)"
     "(\"text\" \"plain\" (\"charset*\" \"us-ascii''utf-8\") NIL NIL \"7bit\" 1 0 NIL NIL NIL NIL)"
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NIL NIL NIL NIL) \"mixed\" "
     "(\"boundary\" \"b\") NIL NIL NIL)"},
    {"multipart without boundary: text/plain with the default parameters",
     "Content-Type: multipart/mixed; foo=bar\r\n\r\n--b\r\nx\r\n", NULL, NULL,
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 2 NIL NIL NIL NIL)"},
    {"RFC 2231 sections joined as written",
     "Content-Type: application/x-stuff; title*0*=us-ascii'en'a%20b; title*1*=%2A; title*2=\"c d\"\r\n"
     "Content-Disposition: attachment; filename*0=\"one \"; filename*1*=%41\r\n\r\n",
     NULL, NULL,
     "(\"application\" \"x-stuff\" (\"title*\" \"us-ascii'en'a%20b%2Ac d\") NIL NIL \"7bit\" 0 NIL "
     "(\"attachment\" (\"filename*\" \"''one %41\")) NIL NIL)"},
    {"Content-Transfer-Encoding: comments dropped, no token is 7bit",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: BASE64 (c)\r\n\r\n"
     "--b\r\nContent-Transfer-Encoding: \"base64\"\r\n\r\n--b\r\nContent-Transfer-Encoding: "
     "8bit;\r\n\r\n--b--\r\n",
     NULL, NULL,
     "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 0 0 NIL NIL NIL NIL)"
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" "
     "(\"boundary\" \"b\") NIL NIL NIL)"},
    {"Content-Language: always a list, comments dropped, up to the first non-tag",
     "Content-Type: multipart/mixed; boundary=b\r\nContent-Language: de\r\n\r\n"
     "--b\r\nContent-Language: en-US, fr (French)\r\n\r\n--b\r\nContent-Language:\r\nContent-Language: "
     "en;fr, de\r\n\r\n--b--\r\n",
     NULL, NULL,
     "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL (\"en-US\" \"fr\") NIL)"
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL (\"en\") NIL) \"mixed\" "
     "(\"boundary\" \"b\") NIL (\"de\") NIL)"},
    {"an encoded message/rfc822 still has an envelope and a body",
     "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp4\r\n",
     NULL, NULL,
     "(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 22 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) 1 NIL NIL NIL "
     "NIL)"},
    {"a junk line stays in the header block", "From: a@x\r\njunk line\r\nSubject: kept\r\n\r\nbody\r\n",
     "(NIL \"kept\" ((NIL NIL \"a\" \"x\")) ((NIL NIL \"a\" \"x\")) ((NIL NIL \"a\" \"x\")) NIL NIL NIL NIL "
     "NIL)",
     NULL, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL)"},
};

static void test_structures(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct mime_message *msg = mime_message_parse(cases[i].in, strlen(cases[i].in), NULL);
		struct buf env = BUF_INIT, body = BUF_INIT, bs = BUF_INIT;
		mime_imap_envelope(&env, msg->root->headers, 0);
		mime_imap_bodystructure(&body, msg, NULL, 0, 0);
		mime_imap_bodystructure(&bs, msg, msg->root, 1, 0);
		if (getenv("SHOWALL") != NULL)
			print_error("case %s:\n  env  %s\n  body %s\n  bs   %s\n", cases[i].name,
				    buf_cstr(&env), buf_cstr(&body), buf_cstr(&bs));
		if (cases[i].envelope != NULL)
			assert_string_equal(buf_cstr(&env), cases[i].envelope);
		if (cases[i].body != NULL)
			assert_string_equal(buf_cstr(&body), cases[i].body);
		if (cases[i].bodystructure != NULL)
			assert_string_equal(buf_cstr(&bs), cases[i].bodystructure);
		buf_free(&env);
		buf_free(&body);
		buf_free(&bs);
		mime_message_free(&msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quote),
	    cmocka_unit_test(test_structures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
