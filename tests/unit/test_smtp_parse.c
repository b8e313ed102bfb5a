/* Unit tests for the SMTP command parser and the MAIL/RCPT parameter
   parsers (src/smtp/smtp_parse.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtp/smtp_parse.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders a parse as text: "VERB arg=[..] path=[..] K=V K" on success,
   "UNKNOWN", "SYNTAX" or "TOO_LONG" on failure. */
static char *render(const char *line, size_t len)
{
	struct smtp_command *cmd = xmalloc(sizeof(*cmd));
	const char *error = NULL;
	enum smtp_parse_result r = smtp_command_parse(line, len, cmd, &error);
	struct buf out = BUF_INIT;
	switch (r) {
	case SMTP_PARSE_OK:
		assert_null(error);
		buf_append_str(&out, smtp_verb_name(cmd->verb));
		if (cmd->verb != SMTP_VERB_MAIL && cmd->verb != SMTP_VERB_RCPT && cmd->arg[0] != '\0')
			buf_printf(&out, " arg=[%s]", cmd->arg);
		if (cmd->path != NULL)
			buf_printf(&out, " path=[%s]", cmd->path);
		for (int i = 0; i < cmd->nparams; i++) {
			buf_printf(&out, " %s", cmd->params[i].keyword);
			if (cmd->params[i].value != NULL)
				buf_printf(&out, "=%s", cmd->params[i].value);
		}
		break;
	case SMTP_PARSE_UNKNOWN:
		assert_non_null(error);
		buf_append_str(&out, "UNKNOWN");
		break;
	case SMTP_PARSE_SYNTAX:
		assert_non_null(error);
		buf_append_str(&out, "SYNTAX");
		break;
	case SMTP_PARSE_TOO_LONG:
		assert_non_null(error);
		buf_append_str(&out, "TOO_LONG");
		break;
	default:
		fail_msg("unexpected result %d", (int)r);
	}
	free(cmd);
	return buf_steal(&out);
}

static void check(const char *line, size_t len, const char *expect, const char *what)
{
	char *got = render(line, len);
	if (strcmp(got, expect) != 0)
		fail_msg("%s <%s>: got <%s> expected <%s>", what, line, got, expect);
	free(got);
}

static const struct {
	const char *line, *expect;
} command_cases[] = {
    /* every verb, any case */
    {"HELO client.example", "HELO arg=[client.example]"},
    {"helo client.example", "HELO arg=[client.example]"},
    {"HeLo client.example", "HELO arg=[client.example]"},
    {"EHLO client.example", "EHLO arg=[client.example]"},
    {"ehlo [127.0.0.1]", "EHLO arg=[[127.0.0.1]]"},
    {"EHLO [IPv6:::1]", "EHLO arg=[[IPv6:::1]]"},
    {"EHLO   spaced.example   ", "EHLO arg=[spaced.example]"},
    {"EHLO two words", "EHLO arg=[two words]"},
    {"MAIL FROM:<user@example.com>", "MAIL path=[user@example.com]"},
    {"mail from:<user@example.com>", "MAIL path=[user@example.com]"},
    {"Mail From:<user@example.com>", "MAIL path=[user@example.com]"},
    {"RCPT TO:<user@example.com>", "RCPT path=[user@example.com]"},
    {"rcpt to:<user@example.com>", "RCPT path=[user@example.com]"},
    {"DATA", "DATA"},
    {"data", "DATA"},
    {"BDAT 100", "BDAT arg=[100]"},
    {"bdat 0 LAST", "BDAT arg=[0 LAST]"},
    {"RSET", "RSET"},
    {"rset", "RSET"},
    {"NOOP", "NOOP"},
    {"noop", "NOOP"},
    {"NOOP anything at all", "NOOP arg=[anything at all]"},
    {"QUIT", "QUIT"},
    {"quit", "QUIT"},
    {"VRFY user", "VRFY arg=[user]"},
    {"vrfy <user@example.com>", "VRFY arg=[<user@example.com>]"},
    {"EXPN staff", "EXPN arg=[staff]"},
    {"HELP", "HELP"},
    {"help MAIL", "HELP arg=[MAIL]"},
    {"STARTTLS", "STARTTLS"},
    {"starttls", "STARTTLS"},
    {"AUTH PLAIN", "AUTH arg=[PLAIN]"},
    {"auth plain AHVzZXIAcGFzcw==", "AUTH arg=[plain AHVzZXIAcGFzcw==]"},
    {"AUTH LOGIN", "AUTH arg=[LOGIN]"},
    /* trailing white space is dropped */
    {"DATA ", "DATA"},
    {"DATA\t", "DATA"},
    {"QUIT \t ", "QUIT"},
    {"RSET    ", "RSET"},
    /* commands that need an argument, without one */
    {"HELO", "SYNTAX"},
    {"HELO ", "SYNTAX"},
    {"EHLO", "SYNTAX"},
    {"EHLO    ", "SYNTAX"},
    {"AUTH", "SYNTAX"},
    {"BDAT", "SYNTAX"},
    {"VRFY", "SYNTAX"},
    {"EXPN", "SYNTAX"},
    {"MAIL", "SYNTAX"},
    {"RCPT", "SYNTAX"},
    /* commands that take no argument, with one */
    {"DATA x", "SYNTAX"},
    {"DATA FROM:<a@b>", "SYNTAX"},
    {"RSET now", "SYNTAX"},
    {"QUIT please", "SYNTAX"},
    {"STARTTLS x", "SYNTAX"},
    {"starttls TLSv1.3", "SYNTAX"},
    /* unknown verbs and broken verb syntax */
    {"", "UNKNOWN"},
    {" ", "UNKNOWN"},
    {"   NOOP", "UNKNOWN"},
    {"XYZZY", "UNKNOWN"},
    {"MAI", "UNKNOWN"},
    {"MAILX FROM:<a@b>", "UNKNOWN"},
    {"MAILFROM:<a@b>", "UNKNOWN"},
    {"HELO1 x", "UNKNOWN"},
    {"START TLS", "UNKNOWN"},
    {"TURN", "UNKNOWN"},
    {"ETRN example.com", "UNKNOWN"},
    {"ATRN", "UNKNOWN"},
    {"SEND FROM:<a@b>", "UNKNOWN"},
    {"SAML FROM:<a@b>", "UNKNOWN"},
    {"XCLIENT ADDR=1.2.3.4", "UNKNOWN"},
    {"GET / HTTP/1.1", "UNKNOWN"},
    {"POST /x HTTP/1.0", "UNKNOWN"},
    {"NOOP\tx", "UNKNOWN"},
    {"DATA:", "UNKNOWN"},
    {"QUIT\r", "UNKNOWN"},
    {"-QUIT", "UNKNOWN"},
    {"\x80\x81\x82", "UNKNOWN"},
    {"\xff\xfe\xfd\xfc", "UNKNOWN"},
    {"\x16\x03\x01\x02\x00\x01", "UNKNOWN"}, /* a TLS ClientHello */
    {"Ma\xc3\xaf\x6c FROM:<a@b>", "UNKNOWN"},
    {"\x1b[A", "UNKNOWN"},

    /* MAIL FROM paths */
    {"MAIL FROM:<>", "MAIL path=[]"},
    {"MAIL FROM: <user@example.com>", "MAIL path=[user@example.com]"},
    {"MAIL FROM:   <user@example.com>", "MAIL path=[user@example.com]"},
    {"MAIL   FROM:<user@example.com>", "MAIL path=[user@example.com]"},
    {"MAIL FROM: <>", "MAIL path=[]"},
    {"MAIL FROM:<user@example.com>   ", "MAIL path=[user@example.com]"},
    {"MAIL FROM:<\"a>b\"@example.com>", "MAIL path=[\"a>b\"@example.com]"},
    {"MAIL FROM:<\"a\\\">b\"@example.com>", "MAIL path=[\"a\\\">b\"@example.com]"},
    {"MAIL FROM:<\"a b\"@example.com> SIZE=1", "MAIL path=[\"a b\"@example.com] SIZE=1"},
    {"MAIL FROM:<\"\\\\\"@example.com>", "MAIL path=[\"\\\\\"@example.com]"},
    {"MAIL FROM:<@relay.example:user@example.com>", "MAIL path=[@relay.example:user@example.com]"},
    {"MAIL FROM:<not an address>", "MAIL path=[not an address]"}, /* path checks come later */
    {"MAIL FROM:<\"unterminated@example.com>", "SYNTAX"},
    {"MAIL FROM:<\"a\\\"@example.com>", "SYNTAX"},
    {"MAIL FROM:user@example.com", "SYNTAX"},
    {"MAIL FROM:<user@example.com", "SYNTAX"},
    {"MAIL FROM:user@example.com>", "SYNTAX"},
    {"MAIL FROM:<a@b>trailing", "SYNTAX"},
    {"MAIL FROM:<a@b>>", "SYNTAX"},
    {"MAIL FROM:<a@b><c@d>", "SYNTAX"},
    {"MAIL FROM:<a@b>\tSIZE=1", "SYNTAX"},
    {"MAIL FROM:", "SYNTAX"},
    {"MAIL FROM: ", "SYNTAX"},
    {"MAIL FROM", "SYNTAX"},
    {"MAIL TO:<a@b>", "SYNTAX"},
    {"MAIL FROM <a@b>", "SYNTAX"},
    {"MAIL FROM :<a@b>", "SYNTAX"},
    {"MAIL FRM:<a@b>", "SYNTAX"},
    {"MAIL <a@b>", "SYNTAX"},
    {"MAIL FROM:(a@b)", "SYNTAX"},
    /* RCPT TO paths */
    {"RCPT TO:<Postmaster>", "RCPT path=[Postmaster]"},
    {"RCPT TO: <user@example.com>", "RCPT path=[user@example.com]"},
    {"RCPT TO:<\"x>y\"@example.com>", "RCPT path=[\"x>y\"@example.com]"},
    {"RCPT TO:<>", "RCPT path=[]"}, /* refused by smtp_path_parse */
    {"RCPT FROM:<a@b>", "SYNTAX"},
    {"RCPT TO:a@b", "SYNTAX"},
    {"RCPT TO:<a@b", "SYNTAX"},
    {"RCPT TO:<a@b>x", "SYNTAX"},
    {"RCPT TO", "SYNTAX"},
    {"RCPT TO :<a@b>", "SYNTAX"},
    {"RCPT T0:<a@b>", "SYNTAX"},

    /* parameters: split and keywords upper-cased, values kept */
    {"MAIL FROM:<a@b> SIZE=1000", "MAIL path=[a@b] SIZE=1000"},
    {"MAIL FROM:<a@b> size=1000 body=8bitmime", "MAIL path=[a@b] SIZE=1000 BODY=8bitmime"},
    {"MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8", "MAIL path=[a@b] SIZE=1000 BODY=8BITMIME SMTPUTF8"},
    {"MAIL FROM:<a@b>   SIZE=1    BODY=7BIT   ", "MAIL path=[a@b] SIZE=1 BODY=7BIT"},
    {"MAIL FROM:<> RET=HDRS ENVID=QQ314159 AUTH=<>", "MAIL path=[] RET=HDRS ENVID=QQ314159 AUTH=<>"},
    {"MAIL FROM:<a@b> X-FOO=bar", "MAIL path=[a@b] X-FOO=bar"},
    {"MAIL FROM:<a@b> X-", "MAIL path=[a@b] X-"},
    {"MAIL FROM:<a@b> 8BIT", "MAIL path=[a@b] 8BIT"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b",
     "RCPT path=[a@b] NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b"},
    {"RCPT TO:<a@b> ORCPT=utf-8;\xc3\xbc@b", "RCPT path=[a@b] ORCPT=utf-8;\xc3\xbc@b"},
    {"MAIL FROM:<a@b> SIZE=", "SYNTAX"},
    {"MAIL FROM:<a@b> =5", "SYNTAX"},
    {"MAIL FROM:<a@b> SIZE==5", "SYNTAX"},
    {"MAIL FROM:<a@b> SIZE=5=6", "SYNTAX"},
    {"MAIL FROM:<a@b> -SIZE=5", "SYNTAX"},
    {"MAIL FROM:<a@b> SI_ZE=5", "SYNTAX"},
    {"MAIL FROM:<a@b> SIZE:5", "SYNTAX"},
    {"MAIL FROM:<a@b> SIZE=\x7f", "SYNTAX"},
    {"MAIL FROM:<a@b> SIZE=1\x01", "SYNTAX"},
    {"MAIL FROM:<a@b> SIZE=1\t2", "SYNTAX"},
    {"MAIL FROM:<a@b> SIZE=1 =", "SYNTAX"},
    {"MAIL FROM:<a@b> \xc3\xbc=1", "SYNTAX"},
    {"MAIL FROM:<a@b> <c@d>", "SYNTAX"},
    {"RCPT TO:<a@b> NOTIFY=", "SYNTAX"},
    {"RCPT TO:<a@b> ,", "SYNTAX"},
    /* sixteen parameters fit, seventeen do not */
    {"MAIL FROM:<a@b> A B C D E F G H I J K L M N O P", "MAIL path=[a@b] A B C D E F G H I J K L M N O P"},
    {"MAIL FROM:<a@b> A B C D E F G H I J K L M N O P Q", "SYNTAX"},
};

static void test_command_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(command_cases); i++)
		check(command_cases[i].line, strlen(command_cases[i].line), command_cases[i].expect,
		      "command");
}

/* A line of len bytes: prefix, then fill. */
static char *make_line(const char *prefix, char fill, size_t len)
{
	char *s = xmalloc(len + 1);
	size_t plen = strlen(prefix);
	memset(s, fill, len);
	memcpy(s, prefix, plen < len ? plen : len);
	s[len] = '\0';
	return s;
}

/* RFC 5321 4.5.3.1.4: 512 octets with CRLF for ordinary commands; MAIL and
   RCPT get the longer limit the extensions allow. */
static void test_line_limits(void **state)
{
	static const struct {
		const char *prefix;
		size_t len;
		const char *expect;
	} cases[] = {
	    {"NOOP ", SMTP_MAX_LINE - 2, "NOOP"},
	    {"NOOP ", SMTP_MAX_LINE - 1, "TOO_LONG"},
	    {"NOOP ", SMTP_MAX_LINE, "TOO_LONG"},
	    {"HELO ", SMTP_MAX_LINE - 2, "HELO"},
	    {"HELO ", SMTP_MAX_LINE - 1, "TOO_LONG"},
	    {"EHLO ", SMTP_MAX_LINE - 1, "TOO_LONG"},
	    {"VRFY ", SMTP_MAX_LINE - 1, "TOO_LONG"},
	    {"AUTH ", SMTP_MAX_LINE - 1, "TOO_LONG"},
	    {"DATA ", SMTP_MAX_LINE - 1, "TOO_LONG"},
	    {"MAIL ", SMTP_MAX_MAIL_LINE, "MAIL"},
	    {"MAIL ", SMTP_MAX_MAIL_LINE + 1, "TOO_LONG"},
	    {"RCPT ", SMTP_MAX_MAIL_LINE, "RCPT"},
	    {"RCPT ", SMTP_MAX_MAIL_LINE + 1, "TOO_LONG"},
	    {"NOOP ", 2000, "TOO_LONG"},
	    {"MAIL ", 2000, "TOO_LONG"},
	    {"NOOP ", 1024 * 1024, "TOO_LONG"},
	    {"", 1024 * 1024, "TOO_LONG"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *line = make_line(cases[i].prefix, 'x', cases[i].len);
		if (!strcmp(cases[i].expect, "MAIL") || !strcmp(cases[i].expect, "RCPT")) {
			/* A valid long MAIL/RCPT: path then one long parameter. */
			const char *head =
			    !strcmp(cases[i].expect, "MAIL") ? "MAIL FROM:<a@b> X=" : "RCPT TO:<a@b> X=";
			memcpy(line, head, strlen(head));
		}
		char *got = render(line, cases[i].len);
		if (strncmp(got, cases[i].expect, strlen(cases[i].expect)) != 0)
			fail_msg("limit case %zu (%zu bytes): got <%.40s> expected <%s>", i, cases[i].len,
				 got, cases[i].expect);
		free(got);
		free(line);
	}
	/* Trailing spaces count: the limit is on the line as received. */
	char *line = make_line("NOOP", ' ', SMTP_MAX_LINE + 100);
	check(line, SMTP_MAX_LINE + 100, "TOO_LONG", "padded NOOP");
	free(line);
	line = make_line("NOOP", ' ', SMTP_MAX_LINE - 2);
	check(line, SMTP_MAX_LINE - 2, "NOOP", "padded NOOP");
	free(line);
}

static void test_nul_bytes(void **state)
{
	static const struct {
		const char *line;
		size_t len;
	} cases[] = {
	    {"\0", 1},
	    {"NOOP\0", 5},
	    {"NO\0OP", 5},
	    {"\0NOOP", 5},
	    {"HELO a\0b", 8},
	    {"MAIL FROM:<a\0@b>", 16},
	    {"MAIL FROM:<a@b> SIZE=1\0", 23},
	    {"RCPT TO:<a@b>\0", 14},
	    {"DATA\0\0\0", 7},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		check(cases[i].line, cases[i].len, "SYNTAX", "NUL");
	/* The length given is what counts, not a NUL later in memory. */
	check("QUIT\0garbage", 4, "QUIT", "len");
	check("QUITX", 4, "QUIT", "len");
}

/* Random bytes: never crash; results are consistent. */
static void test_binary_garbage(void **state)
{
	static const char smtpish[] = "<>:@\" =,;+\\MAILFROMRCPTO";
	srandom(4242);
	struct smtp_command *cmd = xmalloc(sizeof(*cmd));
	char line[1200];
	for (int n = 0; n < 20000; n++) {
		size_t len = (size_t)random() % sizeof(line);
		int mode = n % 4;
		for (size_t i = 0; i < len; i++) {
			long r = random();
			/* mode 0: any byte; 1: printable; 2: a verb then printable; 3: SMTP-ish bytes */
			if (mode == 0)
				line[i] = (char)r;
			else if (mode == 3)
				line[i] = smtpish[r % (long)(sizeof(smtpish) - 1)];
			else
				line[i] = (char)(32 + r % 95);
		}
		if (mode >= 2 && len >= 10)
			memcpy(line, n % 8 < 4 ? "MAIL FROM:" : "RCPT TO:<", n % 8 < 4 ? 10 : 9);
		const char *error = NULL;
		enum smtp_parse_result r = smtp_command_parse(line, len, cmd, &error);
		assert_true(r == SMTP_PARSE_OK || r == SMTP_PARSE_UNKNOWN || r == SMTP_PARSE_SYNTAX ||
			    r == SMTP_PARSE_TOO_LONG);
		if (r != SMTP_PARSE_OK) {
			assert_non_null(error);
			continue;
		}
		assert_true(cmd->verb < SMTP_VERB_COUNT);
		assert_true(cmd->nparams >= 0 && cmd->nparams <= SMTP_MAX_PARAMS);
		assert_true(strlen(cmd->text) <= SMTP_MAX_MAIL_LINE);
		if (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT) {
			assert_non_null(cmd->path);
			assert_true(cmd->path >= cmd->text && cmd->path < cmd->text + sizeof(cmd->text));
			struct smtp_mail_params mp;
			struct smtp_rcpt_params rp;
			bool unknown;
			if (cmd->verb == SMTP_VERB_MAIL)
				(void)smtp_mail_params_parse(cmd, &mp, &unknown, &error);
			else
				(void)smtp_rcpt_params_parse(cmd, &rp, &unknown, &error);
		}
		for (int i = 0; i < cmd->nparams; i++) {
			const char *k = cmd->params[i].keyword;
			assert_true(k >= cmd->text && k < cmd->text + sizeof(cmd->text));
			for (; *k != '\0'; k++)
				assert_false(*k >= 'a' && *k <= 'z');
		}
	}
	free(cmd);
}

/* ---- MAIL parameters ---- */

static char *render_mail(const char *line, const char *what)
{
	struct smtp_command *cmd = xmalloc(sizeof(*cmd));
	const char *error = NULL;
	if (smtp_command_parse(line, strlen(line), cmd, &error) != SMTP_PARSE_OK)
		fail_msg("%s <%s> does not parse: %s", what, line, error);
	struct buf out = BUF_INIT;
	bool unknown = true;
	int rc;
	if (cmd->verb == SMTP_VERB_MAIL) {
		struct smtp_mail_params p;
		rc = smtp_mail_params_parse(cmd, &p, &unknown, &error);
		if (rc == 0) {
			assert_false(unknown);
			static const char *const bodies[] = {"7BIT", "8BITMIME", "BINARYMIME"};
			buf_printf(&out, "size=%" PRIu64 " body=%s", p.size, bodies[p.body]);
			if (p.smtputf8)
				buf_append_str(&out, " smtputf8");
			if (p.ret != SMTP_RET_DEFAULT)
				buf_printf(&out, " ret=%s", p.ret == SMTP_RET_FULL ? "FULL" : "HDRS");
			if (p.envid != NULL)
				buf_printf(&out, " envid=[%s]", p.envid);
		}
	} else {
		struct smtp_rcpt_params p;
		rc = smtp_rcpt_params_parse(cmd, &p, &unknown, &error);
		if (rc == 0) {
			assert_false(unknown);
			buf_printf(&out, "notify=%u", p.notify);
			if (p.orcpt != NULL)
				buf_printf(&out, " orcpt=[%s]", p.orcpt);
		}
	}
	if (rc < 0) {
		assert_int_equal(rc, -1);
		assert_non_null(error);
		buf_append_str(&out, unknown ? "UNKNOWN" : "BAD");
	}
	free(cmd);
	return buf_steal(&out);
}

#define E100                                                                                                 \
	"01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567" \
	"89"

static const struct {
	const char *line, *expect;
} param_cases[] = {
    {"MAIL FROM:<a@b>", "size=0 body=7BIT"},
    {"MAIL FROM:<>", "size=0 body=7BIT"},
    /* SIZE (RFC 1870) */
    {"MAIL FROM:<a@b> SIZE=0", "size=0 body=7BIT"},
    {"MAIL FROM:<a@b> SIZE=1000", "size=1000 body=7BIT"},
    {"MAIL FROM:<a@b> size=1000", "size=1000 body=7BIT"},
    {"MAIL FROM:<a@b> SIZE=00000000000000000012", "size=12 body=7BIT"},
    {"MAIL FROM:<a@b> SIZE=18446744073709551615", "size=18446744073709551615 body=7BIT"},
    {"MAIL FROM:<a@b> SIZE=18446744073709551616", "BAD"},
    {"MAIL FROM:<a@b> SIZE=99999999999999999999", "BAD"},
    {"MAIL FROM:<a@b> SIZE=123456789012345678901", "BAD"},
    {"MAIL FROM:<a@b> SIZE=-1", "BAD"},
    {"MAIL FROM:<a@b> SIZE=+1", "BAD"},
    {"MAIL FROM:<a@b> SIZE=1k", "BAD"},
    {"MAIL FROM:<a@b> SIZE=0x10", "BAD"},
    {"MAIL FROM:<a@b> SIZE=1.5", "BAD"},
    {"MAIL FROM:<a@b> SIZE", "BAD"},
    {"MAIL FROM:<a@b> SIZE=\xd9\xa3", "BAD"}, /* ARABIC-INDIC DIGIT THREE */
    /* BODY (RFC 6152) */
    {"MAIL FROM:<a@b> BODY=7BIT", "size=0 body=7BIT"},
    {"MAIL FROM:<a@b> BODY=8BITMIME", "size=0 body=8BITMIME"},
    {"MAIL FROM:<a@b> body=8bitmime", "size=0 body=8BITMIME"},
    {"MAIL FROM:<a@b> BODY=BINARYMIME", "BAD"}, /* not offered */
    {"MAIL FROM:<a@b> BODY=8BIT", "BAD"},
    {"MAIL FROM:<a@b> BODY=8BITMIMEX", "BAD"},
    {"MAIL FROM:<a@b> BODY", "BAD"},
    /* SMTPUTF8 (RFC 6531) */
    {"MAIL FROM:<a@b> SMTPUTF8", "size=0 body=7BIT smtputf8"},
    {"MAIL FROM:<a@b> smtputf8", "size=0 body=7BIT smtputf8"},
    {"MAIL FROM:<a@b> SMTPUTF8=yes", "BAD"},
    /* RET and ENVID (RFC 3461) */
    {"MAIL FROM:<a@b> RET=FULL", "size=0 body=7BIT ret=FULL"},
    {"MAIL FROM:<a@b> RET=HDRS", "size=0 body=7BIT ret=HDRS"},
    {"MAIL FROM:<a@b> ret=hdrs", "size=0 body=7BIT ret=HDRS"},
    {"MAIL FROM:<a@b> RET=NONE", "BAD"},
    {"MAIL FROM:<a@b> RET", "BAD"},
    {"MAIL FROM:<a@b> ENVID=QQ314159", "size=0 body=7BIT envid=[QQ314159]"},
    {"MAIL FROM:<a@b> ENVID=a+2Bb", "size=0 body=7BIT envid=[a+b]"},
    {"MAIL FROM:<a@b> ENVID=+3D+2B+20", "size=0 body=7BIT envid=[=+ ]"},
    {"MAIL FROM:<a@b> ENVID=<id@host>", "size=0 body=7BIT envid=[<id@host>]"},
    {"MAIL FROM:<a@b> ENVID=" E100, "size=0 body=7BIT envid=[" E100 "]"},
    {"MAIL FROM:<a@b> ENVID=" E100 "+41", "BAD"}, /* 101 once decoded */
    {"MAIL FROM:<a@b> ENVID=" E100 "x", "BAD"},
    {"MAIL FROM:<a@b> ENVID=a+2b", "BAD"}, /* hex digits are upper case */
    {"MAIL FROM:<a@b> ENVID=a+2", "BAD"},
    {"MAIL FROM:<a@b> ENVID=a+", "BAD"},
    {"MAIL FROM:<a@b> ENVID=a+GG", "BAD"},
    {"MAIL FROM:<a@b> ENVID=a+00b", "BAD"}, /* a NUL once decoded */
    {"MAIL FROM:<a@b> ENVID=\xc3\xa9", "BAD"},
    {"MAIL FROM:<a@b> ENVID", "BAD"},
    /* AUTH (RFC 4954 5) */
    {"MAIL FROM:<a@b> AUTH=<>", "size=0 body=7BIT"},
    {"MAIL FROM:<a@b> AUTH=user+40example.com", "size=0 body=7BIT"},
    {"MAIL FROM:<a@b> AUTH=a+zz", "BAD"},
    {"MAIL FROM:<a@b> AUTH", "BAD"},
    /* all together */
    {"MAIL FROM:<a@b> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x+2By AUTH=<>",
     "size=100 body=8BITMIME smtputf8 ret=HDRS envid=[x+y]"},
    /* duplicates are errors, not unknown */
    {"MAIL FROM:<a@b> SIZE=1 SIZE=2", "BAD"},
    {"MAIL FROM:<a@b> SIZE=1 size=1", "BAD"},
    {"MAIL FROM:<a@b> BODY=7BIT BODY=8BITMIME", "BAD"},
    {"MAIL FROM:<a@b> SMTPUTF8 SMTPUTF8", "BAD"},
    {"MAIL FROM:<a@b> RET=FULL RET=HDRS", "BAD"},
    {"MAIL FROM:<a@b> ENVID=a ENVID=b", "BAD"},
    {"MAIL FROM:<a@b> AUTH=<> AUTH=<>", "BAD"},
    /* unknown parameters are reported as unknown (555 5.5.4) */
    {"MAIL FROM:<a@b> FOO=bar", "UNKNOWN"},
    {"MAIL FROM:<a@b> FOO", "UNKNOWN"},
    {"MAIL FROM:<a@b> XFORWARD=1", "UNKNOWN"},
    {"MAIL FROM:<a@b> SIZE=10 FOO", "UNKNOWN"},
    {"MAIL FROM:<a@b> NOTIFY=NEVER", "UNKNOWN"}, /* RCPT only */
    {"MAIL FROM:<a@b> ORCPT=rfc822;a@b", "UNKNOWN"},
    {"MAIL FROM:<a@b> SIZES=10", "UNKNOWN"},
    {"MAIL FROM:<a@b> MT-PRIORITY=3", "UNKNOWN"},
    {"MAIL FROM:<a@b> REQUIRETLS", "UNKNOWN"},

    /* NOTIFY (RFC 3461 4.1) */
    {"RCPT TO:<a@b>", "notify=0"},
    {"RCPT TO:<a@b> NOTIFY=NEVER", "notify=1"},
    {"RCPT TO:<a@b> notify=never", "notify=1"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS", "notify=2"},
    {"RCPT TO:<a@b> NOTIFY=FAILURE", "notify=4"},
    {"RCPT TO:<a@b> NOTIFY=DELAY", "notify=8"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE", "notify=6"},
    {"RCPT TO:<a@b> NOTIFY=DELAY,FAILURE,SUCCESS", "notify=14"},
    {"RCPT TO:<a@b> NOTIFY=success,Delay", "notify=10"},
    {"RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS,NEVER", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=FAILURE,NEVER,DELAY", "BAD"},
    {"RCPT TO:<a@b> NOTIFY", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=,", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS,", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=,SUCCESS", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS,,DELAY", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=ALWAYS", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=SUCCES", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESSX", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=NEVERX", "BAD"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS NOTIFY=FAILURE", "BAD"},
    /* ORCPT (RFC 3461 4.2) */
    {"RCPT TO:<a@b> ORCPT=rfc822;user@example.com", "notify=0 orcpt=[rfc822;user@example.com]"},
    {"RCPT TO:<a@b> ORCPT=rfc822;user+2Bx@example.com", "notify=0 orcpt=[rfc822;user+x@example.com]"},
    {"RCPT TO:<a@b> NOTIFY=FAILURE ORCPT=rfc822;a@b", "notify=4 orcpt=[rfc822;a@b]"},
    {"RCPT TO:<a@b> ORCPT=rfc822;", "BAD"},
    {"RCPT TO:<a@b> ORCPT=;a@b", "BAD"},
    {"RCPT TO:<a@b> ORCPT=rfc822", "BAD"},
    {"RCPT TO:<a@b> ORCPT", "BAD"},
    {"RCPT TO:<a@b> ORCPT=rfc822;a+zz", "BAD"},
    {"RCPT TO:<a@b> ORCPT=rfc822;a+00b", "BAD"},
    {"RCPT TO:<a@b> ORCPT=rfc822;a@b ORCPT=rfc822;c@d", "BAD"},
    {"RCPT TO:<a@b> ORCPT=rfc822;" E100 E100 E100 E100 E100, "BAD"},
    /* unknown */
    {"RCPT TO:<a@b> SIZE=10", "UNKNOWN"},
    {"RCPT TO:<a@b> FOO", "UNKNOWN"},
    {"RCPT TO:<a@b> NOTIFY=NEVER BODY=8BITMIME", "UNKNOWN"},
};

static void test_param_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(param_cases); i++) {
		char *got = render_mail(param_cases[i].line, "param");
		if (strcmp(got, param_cases[i].expect) != 0)
			fail_msg("param <%s>: got <%s> expected <%s>", param_cases[i].line, got,
				 param_cases[i].expect);
		free(got);
	}
}

static void test_xtext(void **state)
{
	static const struct {
		const char *in, *out; /* out NULL: malformed */
	} cases[] = {
	    {"", ""},         {"abc", "abc"},       {"+2B", "+"},  {"+3D", "="},   {"a+20b", "a b"},
	    {"+7E+21", "~!"}, {"+41+42+43", "ABC"}, {"+", NULL},   {"+4", NULL},   {"+4g", NULL},
	    {"+4a", NULL},    {"+G1", NULL},        {"a=b", NULL}, {"a b", NULL},  {"\x7f", NULL},
	    {"\x80", NULL},   {"\x01", NULL},       {"+00", NULL}, {"a+00", NULL},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *s = xstrdup(cases[i].in);
		int rc = smtp_xtext_decode(s);
		if (cases[i].out == NULL) {
			if (rc != -1)
				fail_msg("xtext <%s> accepted as <%s>", cases[i].in, s);
		} else {
			if (rc != 0)
				fail_msg("xtext <%s> refused", cases[i].in);
			assert_string_equal(s, cases[i].out);
		}
		free(s);
	}
}

static void test_verb_names(void **state)
{
	for (int v = 0; v < SMTP_VERB_COUNT; v++) {
		const char *name = smtp_verb_name((enum smtp_verb)v);
		assert_true(strlen(name) >= 4);
		/* each name parses back to its verb (with an argument where needed) */
		char line[64];
		snprintf(line, sizeof(line), "%s", name);
		struct smtp_command cmd;
		const char *error;
		enum smtp_parse_result r = smtp_command_parse(line, strlen(line), &cmd, &error);
		if (r == SMTP_PARSE_SYNTAX) {
			snprintf(line, sizeof(line), "%s %s", name,
				 v == SMTP_VERB_MAIL   ? "FROM:<>"
				 : v == SMTP_VERB_RCPT ? "TO:<a@b>"
						       : "x");
			r = smtp_command_parse(line, strlen(line), &cmd, &error);
		}
		assert_int_equal(r, SMTP_PARSE_OK);
		assert_int_equal(cmd.verb, v);
	}
	assert_string_equal(smtp_verb_name(SMTP_VERB_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_command_table), cmocka_unit_test(test_line_limits),
	    cmocka_unit_test(test_nul_bytes),     cmocka_unit_test(test_binary_garbage),
	    cmocka_unit_test(test_param_table),   cmocka_unit_test(test_xtext),
	    cmocka_unit_test(test_verb_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
