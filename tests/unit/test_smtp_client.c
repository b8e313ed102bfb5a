/* Unit tests for the SMTP client (src/smtp/smtp_client*.c): reply parsing,
   EHLO keywords, dot-stuffing, xtext, 8-bit downgrade, and whole sessions
   against a scripted server on loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtp/smtp_client.h"
#include "lib/buf.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- reply parser ---- */

static const struct {
	const char *lines; /* '|' separates lines */
	int rc;            /* of the last feed */
	int code;
	const char *enhanced, *text;
} reply_cases[] = {
    {"250 OK", 1, 250, "", "OK"},
    {"250", 1, 250, "", ""},
    {"250 2.1.0 Sender ok", 1, 250, "2.1.0", "Sender ok"},
    {"550 5.1.1 <x@y>: user unknown", 1, 550, "5.1.1", "<x@y>: user unknown"},
    {"451 4.7.1 Greylisted", 1, 451, "4.7.1", "Greylisted"},
    {"250-mx.example|250-PIPELINING|250 SIZE 1000", 1, 250, "", "mx.example\nPIPELINING\nSIZE 1000"},
    {"550-5.7.1 first|550 5.7.1 second", 1, 550, "5.7.1", "first\nsecond"},
    /* an enhanced code of the wrong class is text */
    {"550 2.1.0 odd", 1, 550, "", "2.1.0 odd"},
    {"250 2.1 short", 1, 250, "", "2.1 short"},
    {"250 2.1.1234 long", 1, 250, "", "2.1.1234 long"},
    {"250 2.0.0", 1, 250, "2.0.0", ""},
    {"354 End data with <CR><LF>.<CR><LF>", 1, 354, "", "End data with <CR><LF>.<CR><LF>"},
    {"250-a", 0, 0, NULL, NULL},
    /* malformed */
    {"25", -1, 0, NULL, NULL},
    {"abc def", -1, 0, NULL, NULL},
    {"150 too low", -1, 0, NULL, NULL},
    {"650 too high", -1, 0, NULL, NULL},
    {"250xOK", -1, 0, NULL, NULL},
    {"250-a|251 b", -1, 0, NULL, NULL},
    {"", -1, 0, NULL, NULL},
};

static void test_reply_table(void **state)
{
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		struct smtp_client_reply_parser p;
		smtp_client_reply_parser_init(&p);
		char *copy = xstrdup(reply_cases[i].lines);
		int rc = 0;
		struct smtp_client_reply r = {0};
		const char *error = NULL;
		char *save = NULL;
		char *line = strtok_r(copy, "|", &save);
		if (line == NULL)
			rc = smtp_client_reply_feed(&p, "", 0, &r, &error);
		for (; line != NULL; line = strtok_r(NULL, "|", &save))
			rc = smtp_client_reply_feed(&p, line, strlen(line), &r, &error);
		assert_int_equal(rc, reply_cases[i].rc);
		if (rc == 1) {
			assert_int_equal(r.code, reply_cases[i].code);
			assert_string_equal(r.enhanced, reply_cases[i].enhanced);
			assert_string_equal(r.text, reply_cases[i].text);
			smtp_client_reply_free(&r);
		} else if (rc < 0) {
			assert_non_null(error);
		}
		free(copy);
		smtp_client_reply_parser_deinit(&p);
	}
}

static void test_reply_string(void **state)
{
	struct smtp_client_reply r = {.code = 550, .enhanced = "5.1.1", .text = xstrdup("a\nb\x01")};
	char *s = smtp_client_reply_string(&r);
	assert_string_equal(s, "550 5.1.1 a b?");
	free(s);
	smtp_client_reply_free(&r);
}

static void test_reply_limits(void **state)
{
	struct smtp_client_reply_parser p;
	smtp_client_reply_parser_init(&p);
	struct smtp_client_reply r;
	const char *error = NULL;
	int rc = 0;
	for (int i = 0; i < SMTP_CLIENT_REPLY_LINES_MAX + 5 && rc == 0; i++)
		rc = smtp_client_reply_feed(&p, "250-x", 5, &r, &error);
	assert_int_equal(rc, -1);
	/* the parser is usable again after an error */
	assert_int_equal(smtp_client_reply_feed(&p, "250 ok", 6, &r, &error), 1);
	smtp_client_reply_free(&r);
	smtp_client_reply_parser_deinit(&p);
}

/* ---- EHLO ---- */

static void test_ehlo(void **state)
{
	struct smtp_client_caps c;
	smtp_client_parse_ehlo(
	    "mx.example greets you\nPIPELINING\nSIZE 10240000\n8BITMIME\nSTARTTLS\n"
	    "AUTH LOGIN PLAIN CRAM-MD5\nENHANCEDSTATUSCODES\nDSN\nSMTPUTF8\nCHUNKING\nBINARYMIME",
	    &c);
	unsigned all = SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_8BITMIME | SMTP_CAP_STARTTLS |
		       SMTP_CAP_AUTH | SMTP_CAP_AUTH_LOGIN | SMTP_CAP_AUTH_PLAIN |
		       SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_DSN | SMTP_CAP_SMTPUTF8 | SMTP_CAP_CHUNKING |
		       SMTP_CAP_BINARYMIME;
	assert_int_equal(c.flags, all);
	assert_int_equal(c.size, 10240000);

	smtp_client_parse_ehlo("x\nAUTH=LOGIN\nsize\npipelining", &c);
	assert_int_equal(c.flags, SMTP_CAP_AUTH | SMTP_CAP_AUTH_LOGIN | SMTP_CAP_SIZE | SMTP_CAP_PIPELINING);
	assert_int_equal(c.size, 0);
	/* the greeting line is not a keyword; unknown keywords are ignored */
	smtp_client_parse_ehlo("PIPELINING\nXFOO\nSTARTTLSX", &c);
	assert_int_equal(c.flags, 0);
}

/* ---- data ---- */

static void test_dot_stuff(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"a\r\n", "a\r\n.\r\n"},
	    {".a\r\n", "..a\r\n.\r\n"},
	    {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
	    {"no end", "no end\r\n.\r\n"},
	    {"", ".\r\n"},
	    {"x\r\n..y\r\n", "x\r\n...y\r\n.\r\n"},
	    {"cr\r", "cr\r\n.\r\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = BUF_INIT;
		smtp_client_dot_stuff(&b, cases[i].in, strlen(cases[i].in));
		assert_string_equal(buf_cstr(&b), cases[i].out);
		buf_free(&b);
	}
}

static void test_xtext(void **state)
{
	struct buf b = BUF_INIT;
	smtp_client_xtext(&b, "a+b=c d\x01\xc3\xa9");
	assert_string_equal(b.data, "a+2Bb+3Dc+20d+01+C3+A9");
	buf_free(&b);
}

static void test_downgrade(void **state)
{
	const char *plain = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
			    "Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n";
	struct buf out = BUF_INIT;
	const char *error = NULL;
	assert_int_equal(smtp_client_downgrade_8bit(plain, strlen(plain), &out, &error), 0);
	assert_false(utf8_has_8bit(out.data, out.len));
	assert_non_null(strstr(out.data, "Content-Transfer-Encoding: quoted-printable\r\n"));
	assert_non_null(strstr(out.data, "caf=C3=A9"));
	assert_null(strstr(out.data, "8bit"));
	buf_free(&out);

	const char *multi =
	    "Subject: m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
	    "--XX\r\nContent-Type: text/plain\r\n\r\nascii only\r\n"
	    "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xbc\r\n"
	    "--XX\r\nContent-Type: application/octet-stream\r\n\r\n\x80\x81\r\n--XX--\r\n";
	assert_int_equal(smtp_client_downgrade_8bit(multi, strlen(multi), &out, &error), 0);
	assert_false(utf8_has_8bit(out.data, out.len));
	assert_non_null(strstr(out.data, "ascii only\r\n--XX"));
	assert_non_null(strstr(out.data, "=C3=BC"));
	assert_non_null(strstr(out.data, "Content-Transfer-Encoding: base64"));
	assert_non_null(strstr(out.data, "--XX--"));
	buf_free(&out);

	const char *hdr8 = "Subject: caf\xc3\xa9\r\n\r\nbody\r\n";
	assert_int_equal(smtp_client_downgrade_8bit(hdr8, strlen(hdr8), &out, &error), -1);
	assert_non_null(error);
	buf_free(&out);
}

/* ---- sessions against a scripted server ---- */

struct script {
	int fd;
	const char *const *steps; /* "S:reply" to send, "C:prefix" to expect */
	char log[8192];
	int failed;
};

static void *server_thread(void *arg)
{
	struct script *s = arg;
	int c = accept(s->fd, NULL, NULL);
	char buf[16384];
	size_t have = 0;
	for (const char *const *st = s->steps; *st != NULL; st++) {
		if ((*st)[0] == 'S') {
			char out[1024];
			int n = snprintf(out, sizeof(out), "%s\r\n", *st + 2);
			if (write(c, out, (size_t)n) != n)
				break;
			continue;
		}
		/* read one line */
		char *eol;
		while ((eol = memchr(buf, '\n', have)) == NULL) {
			ssize_t n = read(c, buf + have, sizeof(buf) - have - 1);
			if (n <= 0) {
				s->failed = 1;
				goto out;
			}
			have += (size_t)n;
		}
		size_t len = (size_t)(eol - buf) + 1;
		strncat(s->log, buf, len < sizeof(s->log) - strlen(s->log) - 1 ? len : 0);
		const char *want = *st + 2;
		if (strncmp(buf, want, strlen(want)) != 0) {
			fprintf(stderr, "expected '%s', got '%.*s'\n", want, (int)len, buf);
			s->failed = 1;
		}
		memmove(buf, buf + len, have - len);
		have -= len;
	}
out:
	close(c);
	return NULL;
}

static int listen_loopback(struct sockaddr_in *sin)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	socklen_t len = sizeof(*sin);
	getsockname(fd, (struct sockaddr *)sin, &len);
	listen(fd, 1);
	return fd;
}

static int run_session(const char *const *steps, struct smtp_client_msg *msg, char **reply_r, char **error_r,
		       const char *user)
{
	struct sockaddr_in sin;
	struct script s = {.fd = listen_loopback(&sin), .steps = steps};
	pthread_t t;
	pthread_create(&t, NULL, server_thread, &s);
	struct smtp_client_settings set = {
	    .helo_name = "client.test",
	    .tls = TLS_POLICY_NONE,
	    .command_timeout = 5,
	    .connect_timeout = 5,
	    .data_timeout = 5,
	    .user = user,
	    .password = user ? "pw" : NULL,
	};
	char port[8];
	snprintf(port, sizeof(port), "%d", ntohs(sin.sin_port));
	int rc = smtp_client_submit_sync("127.0.0.1", ntohs(sin.sin_port), "", &set, msg, reply_r, error_r);
	pthread_join(t, NULL);
	close(s.fd);
	assert_int_equal(s.failed, 0);
	return rc;
}

static const char *const pipelined_steps[] = {
    "S:220 mx.test ESMTP",
    "C:EHLO client.test",
    "S:250-mx.test\r\n250-PIPELINING\r\n250-DSN\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 100000",
    "C:AUTH PLAIN AHVzZXIAcHc=",
    "S:235 2.7.0 ok",
    "C:MAIL FROM:<a@client.test> SIZE=",
    "C:RCPT TO:<b@mx.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@mx.test",
    "C:RCPT TO:<c@mx.test>",
    "C:RCPT TO:<d@mx.test>",
    "C:DATA",
    "S:250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n451 4.7.1 later\r\n354 go",
    "C:Subject: hi",
    "C:",
    "C:..dot",
    "C:.",
    "S:250 2.0.0 queued as X1",
    "C:QUIT",
    "S:221 bye",
    NULL,
};

static void test_session_pipelined(void **state)
{
	struct smtp_client_rcpt rcpts[] = {
	    {.address = "b@mx.test",
	     .orcpt = "rfc822;b+x@mx.test",
	     .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE},
	    {.address = "c@mx.test"},
	    {.address = "d@mx.test"},
	};
	const char *data = "Subject: hi\r\n\r\n.dot\r\n";
	struct smtp_client_msg msg = {
	    .sender = "a@client.test", .rcpts = rcpts, .nrcpts = 3, .data = data, .size = strlen(data)};
	char *reply = NULL, *error = NULL;
	int rc = run_session(pipelined_steps, &msg, &reply, &error, "user");
	assert_int_equal(rc, -1); /* not every recipient was accepted */
	assert_string_equal(reply, "250 2.0.0 queued as X1");
	assert_int_equal(rcpts[0].status, SMTP_CLIENT_OK);
	assert_int_equal(rcpts[1].status, SMTP_CLIENT_PERMFAIL);
	assert_string_equal(rcpts[1].enhanced, "5.1.1");
	assert_int_equal(rcpts[2].status, SMTP_CLIENT_TEMPFAIL);
	assert_string_equal(rcpts[2].reply, "451 4.7.1 later");
	assert_non_null(strstr(error, "c@mx.test"));
	smtp_client_msg_clear(&msg);
	free(reply);
	free(error);
}

static const char *const helo_steps[] = {
    "S:220 old.test",
    "C:EHLO client.test",
    "S:502 5.5.2 what?",
    "C:HELO client.test",
    "S:250 old.test",
    "C:MAIL FROM:<>",
    "S:250 ok",
    "C:RCPT TO:<b@old.test>",
    "S:250 ok",
    "C:DATA",
    "S:354 go",
    "C:Subject: q",
    "C:Content-Transfer-Encoding: quoted-printable",
    "C:",
    "C:abc=C3=A9",
    "C:.",
    "S:250 ok",
    "C:QUIT",
    "S:221 bye",
    NULL,
};

/* No EHLO, so no 8BITMIME: the 8-bit body is converted. */
static void test_session_helo_downgrade(void **state)
{
	struct smtp_client_rcpt rcpts[] = {{.address = "b@old.test"}};
	const char *data = "Subject: q\r\n\r\nabc\xc3\xa9\r\n";
	struct smtp_client_msg msg = {.sender = "",
				      .body = SMTP_BODY_8BITMIME,
				      .rcpts = rcpts,
				      .nrcpts = 1,
				      .data = data,
				      .size = strlen(data)};
	char *reply = NULL, *error = NULL;
	assert_int_equal(run_session(helo_steps, &msg, &reply, &error, NULL), 0);
	assert_true(msg.converted_8bit);
	assert_int_equal(rcpts[0].status, SMTP_CLIENT_OK);
	smtp_client_msg_clear(&msg);
	free(reply);
	free(error);
}

static const char *const size_steps[] = {
    "S:220 small.test", "C:EHLO client.test", "S:250-small.test\r\n250 SIZE 10", "C:QUIT", "S:221 bye", NULL,
};

static void test_session_size_refused(void **state)
{
	struct smtp_client_rcpt rcpts[] = {{.address = "b@small.test"}};
	const char *data = "Subject: too big for ten bytes\r\n\r\nx\r\n";
	struct smtp_client_msg msg = {
	    .sender = "a@x", .rcpts = rcpts, .nrcpts = 1, .data = data, .size = strlen(data)};
	char *reply = NULL, *error = NULL;
	assert_int_equal(run_session(size_steps, &msg, &reply, &error, NULL), -1);
	assert_int_equal(rcpts[0].status, SMTP_CLIENT_PERMFAIL);
	assert_string_equal(rcpts[0].enhanced, "5.3.4");
	smtp_client_msg_clear(&msg);
	free(reply);
	free(error);
}

static void test_connect_refused(void **state)
{
	struct sockaddr_in sin;
	int fd = listen_loopback(&sin);
	close(fd); /* nothing listens there now */
	struct smtp_client_rcpt rcpts[] = {{.address = "b@x"}};
	struct smtp_client_msg msg = {
	    .sender = "a@x", .rcpts = rcpts, .nrcpts = 1, .data = "x\r\n", .size = 3};
	struct smtp_client_settings set = {.helo_name = "c", .connect_timeout = 2};
	char *reply = NULL, *error = NULL;
	assert_int_equal(
	    smtp_client_submit_sync("127.0.0.1", ntohs(sin.sin_port), "", &set, &msg, &reply, &error), -1);
	assert_non_null(error);
	assert_non_null(strstr(error, "connect"));
	free(reply);
	free(error);
}

/* An address with a line break (or anything else that is not a Path) is
   never sent: the sender refuses the message before MAIL FROM, a recipient
   only itself.  The server script fails on any line it does not expect,
   such as an injected RCPT TO. */
static const char *const injected_sender_steps[] = {
    "S:220 mx.test ESMTP", "C:EHLO client.test", "S:250 mx.test", "C:QUIT", "S:221 bye", NULL,
};

static const char *const injected_rcpt_steps[] = {
    "S:220 mx.test ESMTP",
    "C:EHLO client.test",
    "S:250 mx.test",
    "C:MAIL FROM:<a@client.test>",
    "S:250 ok",
    "C:RCPT TO:<b@mx.test>",
    "S:250 ok",
    "C:DATA",
    "S:354 go",
    "C:Subject: hi",
    "C:",
    "C:x",
    "C:.",
    "S:250 2.0.0 queued",
    "C:QUIT",
    "S:221 bye",
    NULL,
};

static void test_session_injection_refused(void **state)
{
	const char *data = "Subject: hi\r\n\r\nx\r\n";
	struct smtp_client_rcpt rcpts[] = {{.address = "b@mx.test"}};
	struct smtp_client_msg msg = {.sender = "x@example.net>\r\nRCPT TO:<bob@example.org",
				      .rcpts = rcpts,
				      .nrcpts = 1,
				      .data = data,
				      .size = strlen(data)};
	char *reply = NULL, *error = NULL;
	assert_int_equal(run_session(injected_sender_steps, &msg, &reply, &error, NULL), -1);
	assert_int_equal(rcpts[0].status, SMTP_CLIENT_PERMFAIL);
	assert_string_equal(rcpts[0].enhanced, "5.1.7");
	assert_false(rcpts[0].remote);
	smtp_client_msg_clear(&msg);
	free(reply);
	free(error);

	struct smtp_client_rcpt two[] = {
	    {.address = "b@mx.test"},
	    {.address = "c@mx.test>\r\nDATA"},
	    {.address = "d@mx.test\nRSET"},
	};
	struct smtp_client_msg msg2 = {
	    .sender = "a@client.test", .rcpts = two, .nrcpts = 3, .data = data, .size = strlen(data)};
	reply = error = NULL;
	assert_int_equal(run_session(injected_rcpt_steps, &msg2, &reply, &error, NULL), -1);
	assert_int_equal(two[0].status, SMTP_CLIENT_OK);
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(two[i].status, SMTP_CLIENT_PERMFAIL);
		assert_string_equal(two[i].enhanced, "5.1.3");
		assert_non_null(strstr(two[i].reply, "invalid recipient address"));
	}
	smtp_client_msg_clear(&msg2);
	free(reply);
	free(error);
}

/* Nor any other argument: a HELO name with a line break ends the session
   before EHLO is written (the script expects nothing after the greeting). */
static const char *const injected_helo_steps[] = {
    "S:220 mx.test ESMTP",
    NULL,
};

static void test_session_helo_line_break_refused(void **state)
{
	struct sockaddr_in sin;
	struct script s = {.fd = listen_loopback(&sin), .steps = injected_helo_steps};
	pthread_t t;
	pthread_create(&t, NULL, server_thread, &s);
	struct smtp_client_settings set = {.helo_name = "client.test\r\nRSET",
					   .command_timeout = 5,
					   .connect_timeout = 5,
					   .data_timeout = 5};
	struct smtp_client_rcpt rcpts[] = {{.address = "b@mx.test"}};
	struct smtp_client_msg msg = {
	    .sender = "a@x.test", .rcpts = rcpts, .nrcpts = 1, .data = "x\r\n", .size = 3};
	char *reply = NULL, *error = NULL;
	assert_int_equal(
	    smtp_client_submit_sync("127.0.0.1", ntohs(sin.sin_port), "", &set, &msg, &reply, &error), -1);
	pthread_join(t, NULL);
	close(s.fd);
	assert_int_equal(s.failed, 0);
	assert_non_null(strstr(error, "line break"));
	free(reply);
	free(error);
}

static void test_unresolvable(void **state)
{
	struct smtp_client_rcpt rcpts[] = {{.address = "b@x"}};
	struct smtp_client_msg msg = {
	    .sender = "a@x", .rcpts = rcpts, .nrcpts = 1, .data = "x\r\n", .size = 3};
	struct smtp_client_settings set = {.helo_name = "c", .connect_timeout = 2};
	char *reply = NULL, *error = NULL;
	/* The resolver given is used (here: refused as invalid), not the
	   system's. */
	assert_int_equal(smtp_client_submit_sync("mx.test", 25, "not a resolver", &set, &msg, &reply, &error),
			 -1);
	assert_null(reply);
	assert_non_null(error);
	assert_non_null(strstr(error, "cannot resolve mx.test: "));
	assert_non_null(strstr(error, "not a resolver"));
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_table),
	    cmocka_unit_test(test_reply_string),
	    cmocka_unit_test(test_reply_limits),
	    cmocka_unit_test(test_ehlo),
	    cmocka_unit_test(test_dot_stuff),
	    cmocka_unit_test(test_xtext),
	    cmocka_unit_test(test_downgrade),
	    cmocka_unit_test(test_session_pipelined),
	    cmocka_unit_test(test_session_helo_downgrade),
	    cmocka_unit_test(test_session_size_refused),
	    cmocka_unit_test(test_connect_refused),
	    cmocka_unit_test(test_unresolvable),
	    cmocka_unit_test(test_session_injection_refused),
	    cmocka_unit_test(test_session_helo_line_break_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
