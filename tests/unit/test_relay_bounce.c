/* Unit tests for DSN composition (src/relay/bounce.c): RFC 3464 fields,
   RET handling, and python3's email package reads the result back as a
   valid multipart/report. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "relay/bounce.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/compose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char original[] = "From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: hello\r\n"
			       "Message-ID: <m1@a.test>\r\n\r\nThe body.\r\n";

static const struct bounce_rcpt failed_rcpts[] = {
    {.address = "bob@b.test",
     .orcpt = "rfc822;Bob@b.test",
     .action = "failed",
     .status = "5.1.1",
     .remote_mta = "mx.b.test",
     .diagnostic =
	 "550 5.1.1 <bob@b.test>: Recipient address rejected: user unknown in virtual mailbox table here",
     .last_attempt = 1700000100},
    {.address = "carol@c.test",
     .action = "failed",
     .status = "4.4.7",
     .diagnostic = "451 4.4.1 connection refused (delivery time expired after 9 attempts)"},
};

static void compose(struct buf *out, enum smtp_ret ret, const struct bounce_rcpt *rcpts, size_t n)
{
	struct bounce_info info = {
	    .reporting_mta = "mx.a.test",
	    .queue_id = "Q1",
	    .sender = "alice@a.test",
	    .envid = "env-1",
	    .arrival = 1700000000,
	    .now = 1700000200,
	    .ret = ret,
	    .message = original,
	    .message_size = strlen(original),
	    .rcpts = rcpts,
	    .nrcpts = n,
	    .boundary = "BOUNDARY",
	    .message_id = "<dsn1@mx.a.test>",
	};
	bounce_compose(out, &info);
}

static void test_fields(void **state)
{
	struct buf out = BUF_INIT;
	compose(&out, SMTP_RET_DEFAULT, failed_rcpts, 2);
	const char *s = out.data;
	assert_non_null(strstr(s, "From: Mail Delivery System <MAILER-DAEMON@mx.a.test>\r\n"));
	assert_non_null(strstr(s, "To: <alice@a.test>\r\n"));
	assert_non_null(strstr(s, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(s, "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(s, "Reporting-MTA: dns; mx.a.test\r\n"));
	assert_non_null(strstr(s, "Original-Envelope-Id: env-1\r\n"));
	/* RFC 5322 dates that read back as the times given */
	const char *date = strstr(s, "Arrival-Date: ");
	assert_non_null(date);
	date += strlen("Arrival-Date: ");
	time_t t;
	int tz;
	assert_int_equal(mime_date_parse(date, strcspn(date, "\r"), &t, &tz), 0);
	assert_int_equal(t, 1700000000);
	date = strstr(s, "Last-Attempt-Date: ");
	assert_non_null(date);
	date += strlen("Last-Attempt-Date: ");
	assert_int_equal(mime_date_parse(date, strcspn(date, "\r"), &t, &tz), 0);
	assert_int_equal(t, 1700000100);
	assert_non_null(strstr(s, "Original-Recipient: rfc822;Bob@b.test\r\n"));
	assert_non_null(strstr(s, "Final-Recipient: rfc822; bob@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
				  "Remote-MTA: dns; mx.b.test\r\nDiagnostic-Code: smtp; 550 5.1.1"));
	assert_non_null(
	    strstr(s, "Final-Recipient: rfc822; carol@c.test\r\nAction: failed\r\nStatus: 4.4.7\r\n"));
	/* RET default on failure: the whole message */
	assert_non_null(strstr(s, "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(s, "The body.\r\n"));
	assert_non_null(strstr(s, "\r\n--BOUNDARY--\r\n"));
	/* every line within 998 octets, folded diagnostics near 78 */
	for (const char *p = s; *p != '\0';) {
		const char *eol = strstr(p, "\r\n");
		assert_non_null(eol);
		assert_true(eol - p < 200);
		p = eol + 2;
	}
	buf_free(&out);

	compose(&out, SMTP_RET_HDRS, failed_rcpts, 1);
	assert_non_null(strstr(out.data, "Content-Type: text/rfc822-headers\r\n"));
	assert_null(strstr(out.data, "The body."));
	assert_non_null(strstr(out.data, "Subject: hello\r\n"));
	buf_free(&out);
}

static void test_delay_and_success(void **state)
{
	const struct bounce_rcpt delayed[] = {
	    {.address = "bob@b.test",
	     .action = "delayed",
	     .status = "4.4.1",
	     .diagnostic = "451 4.4.1 connection refused",
	     .will_retry_until = 1700432000},
	};
	struct buf out = BUF_INIT;
	compose(&out, SMTP_RET_FULL, delayed, 1);
	assert_non_null(strstr(out.data, "Subject: Delayed Mail (still being retried)\r\n"));
	assert_non_null(strstr(out.data, "Action: delayed\r\n"));
	assert_non_null(strstr(out.data, "Will-Retry-Until: "));
	/* only the headers for a delay, even with RET=FULL */
	assert_null(strstr(out.data, "The body."));
	buf_free(&out);
	const struct bounce_rcpt ok[] = {{.address = "bob@b.test", .action = "delivered", .status = "2.0.0"}};
	compose(&out, SMTP_RET_DEFAULT, ok, 1);
	assert_non_null(strstr(out.data, "Subject: Successful Mail Delivery Report\r\n"));
	buf_free(&out);
}

/* python3's email package parses it as a multipart/report with the three
   parts and one status group per recipient. */
static void test_python_parses(void **state)
{
	if (access("/usr/bin/python3", X_OK) != 0)
		skip();
	struct buf out = BUF_INIT;
	compose(&out, SMTP_RET_DEFAULT, failed_rcpts, 2);
	char path[] = "/tmp/po-dsn-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, out.data, out.len), (ssize_t)out.len);
	close(fd);
	char *cmd = xasprintf(
	    "/usr/bin/python3 -c '\n"
	    "import email, email.policy, sys\n"
	    "m = email.message_from_bytes(open(\"%s\", \"rb\").read(), policy=email.policy.default)\n"
	    "assert m.get_content_type() == \"multipart/report\", m.get_content_type()\n"
	    "assert m.get_param(\"report-type\") == \"delivery-status\"\n"
	    "assert not m.defects, m.defects\n"
	    "parts = list(m.iter_parts())\n"
	    "assert [p.get_content_type() for p in parts] == [\"text/plain\", \"message/delivery-status\", "
	    "\"message/rfc822\"]\n"
	    "groups = parts[1].get_payload()\n"
	    "assert len(groups) == 3, len(groups)\n"
	    "assert groups[0][\"Reporting-MTA\"] == \"dns; mx.a.test\"\n"
	    "assert groups[1][\"Final-Recipient\"] == \"rfc822; bob@b.test\"\n"
	    "assert groups[1][\"Action\"] == \"failed\" and groups[1][\"Status\"] == \"5.1.1\"\n"
	    "assert \"user unknown\" in groups[1][\"Diagnostic-Code\"]\n"
	    "assert groups[2][\"Status\"] == \"4.4.7\"\n"
	    "inner = parts[2].get_payload()[0]\n"
	    "assert inner[\"Subject\"] == \"hello\"\n"
	    "'",
	    path);
	int rc = system(cmd);
	unlink(path);
	free(cmd);
	buf_free(&out);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_delay_and_success),
	    cmocka_unit_test(test_python_parses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
