/* Delivery status notifications (RFC 3464, RFC 6522, RFC 3461 section 6). */
#include "relay/bounce.h"
#include "delivery/delivery.h"
#include "delivery/delivery_dkim.h"
#include "lib/log.h"
#include "queue/spool.h"
#include "lib/id.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/compose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A field "Name: value" folded at spaces to stay near 78 columns
   (RFC 5322 2.1.1); control characters in value become '?'. */
static void append_field(struct buf *out, const char *name, const char *value)
{
	size_t col = 0, min = 0;
	if (name != NULL) {
		buf_printf(out, "%s:", name);
		col = min = strlen(name) + 1;
	}
	const char *p = value;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == 0)
			break;
		if (col + 1 + n > 78 && col > min) {
			buf_append_str(out, "\r\n");
			col = 0;
		}
		if (col > 0 || name != NULL || p != value)
			buf_append_char(out, ' ');
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			buf_append_char(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
		}
		col += n + 1;
		p += n;
	}
	buf_append_str(out, "\r\n");
}

static const char *report_kind(const struct bounce_info *info, const char **subject_r)
{
	bool failed = false, delayed = false;
	for (size_t i = 0; i < info->nrcpts; i++) {
		failed |= !strcmp(info->rcpts[i].action, "failed");
		delayed |= !strcmp(info->rcpts[i].action, "delayed");
	}
	if (failed) {
		*subject_r = "Undelivered Mail Returned to Sender";
		return "failed";
	}
	if (delayed) {
		*subject_r = "Delayed Mail (still being retried)";
		return "delayed";
	}
	*subject_r = "Successful Mail Delivery Report";
	return "delivered";
}

static void append_human(struct buf *out, const struct bounce_info *info, const char *kind)
{
	buf_printf(out, "This is the mail system at host %s.\r\n\r\n", info->reporting_mta);
	if (!strcmp(kind, "failed"))
		buf_append_str(out, "I'm sorry to have to inform you that your message could not\r\n"
				    "be delivered to one or more recipients. It's attached below.\r\n");
	else if (!strcmp(kind, "delayed"))
		buf_append_str(out, "Your message could not be delivered yet to one or more\r\n"
				    "recipients. Delivery will be retried; you do not need to\r\n"
				    "send it again.\r\n");
	else
		buf_append_str(out, "Your message was successfully delivered to the destination(s)\r\n"
				    "listed below.\r\n");
	buf_append_str(out, "\r\n");
	for (size_t i = 0; i < info->nrcpts; i++) {
		const struct bounce_rcpt *r = &info->rcpts[i];
		struct buf line = BUF_INIT;
		buf_printf(&line, "<%s>: %s", r->address, r->diagnostic != NULL ? r->diagnostic : r->action);
		if (r->remote_mta != NULL)
			buf_printf(&line, " (host %s)", r->remote_mta);
		append_field(out, NULL, line.data);
		buf_free(&line);
	}
}

static void append_status(struct buf *out, const struct bounce_info *info)
{
	/* Per-message fields (RFC 3464 2.2). */
	buf_printf(out, "Reporting-MTA: dns; %s\r\n", info->reporting_mta);
	if (info->queue_id != NULL)
		buf_printf(out, "X-Postoffice-Queue-ID: %s\r\n", info->queue_id);
	if (info->envid != NULL)
		append_field(out, "Original-Envelope-Id", info->envid);
	if (info->arrival > 0) {
		buf_append_str(out, "Arrival-Date: ");
		mime_date_format(out, (time_t)info->arrival);
		buf_append_str(out, "\r\n");
	}
	/* Per-recipient fields (RFC 3464 2.3), each group after a blank line. */
	for (size_t i = 0; i < info->nrcpts; i++) {
		const struct bounce_rcpt *r = &info->rcpts[i];
		buf_append_str(out, "\r\n");
		if (r->orcpt != NULL && strchr(r->orcpt, ';') != NULL)
			append_field(out, "Original-Recipient", r->orcpt);
		struct buf v = BUF_INIT;
		buf_printf(&v, "rfc822; %s", r->address);
		append_field(out, "Final-Recipient", v.data);
		buf_printf(out, "Action: %s\r\nStatus: %s\r\n", r->action, r->status);
		if (r->remote_mta != NULL)
			buf_printf(out, "Remote-MTA: dns; %s\r\n", r->remote_mta);
		if (r->diagnostic != NULL) {
			buf_reset(&v);
			buf_printf(&v, "smtp; %s", r->diagnostic);
			append_field(out, "Diagnostic-Code", v.data);
		}
		buf_free(&v);
		if (r->last_attempt > 0) {
			buf_append_str(out, "Last-Attempt-Date: ");
			mime_date_format(out, (time_t)r->last_attempt);
			buf_append_str(out, "\r\n");
		}
		if (r->will_retry_until > 0) {
			buf_append_str(out, "Will-Retry-Until: ");
			mime_date_format(out, (time_t)r->will_retry_until);
			buf_append_str(out, "\r\n");
		}
	}
}

static size_t header_size(const char *msg, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] == '\n' &&
		    (msg[i + 1] == '\n' || (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n')))
			return i + 1;
	}
	return len;
}

bool bounce_compose(struct buf *out, const struct bounce_info *info)
{
	const char *subject;
	const char *kind = report_kind(info, &subject);
	char boundary[80], msgid[160];
	unsigned r = (unsigned)random();
	if (info->boundary != NULL)
		snprintf(boundary, sizeof(boundary), "%s", info->boundary);
	else
		snprintf(boundary, sizeof(boundary), "=_%lld.%08x/%s", (long long)info->now, r,
			 info->reporting_mta);
	if (info->message_id != NULL)
		snprintf(msgid, sizeof(msgid), "%s", info->message_id);
	else
		snprintf(msgid, sizeof(msgid), "<%lld.%08x.%s@%s>", (long long)info->now, r,
			 info->queue_id != NULL ? info->queue_id : "dsn", info->reporting_mta);

	bool full =
	    !strcmp(kind, "failed") && info->ret != SMTP_RET_HDRS && info->message_size <= BOUNCE_FULL_MAX;
	size_t orig_len = full ? info->message_size : header_size(info->message, info->message_size);
	bool eight = utf8_has_8bit(info->message, orig_len);

	buf_append_str(out, "Date: ");
	mime_date_format(out, (time_t)info->now);
	buf_printf(out, "\r\nFrom: Mail Delivery System <MAILER-DAEMON@%s>\r\n", info->reporting_mta);
	buf_printf(out, "To: <%s>\r\nSubject: %s\r\nMessage-ID: %s\r\n", info->sender, subject, msgid);
	buf_append_str(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_printf(out,
		   "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		   "\tboundary=\"%s\"\r\n",
		   boundary);
	buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", eight ? "8bit" : "7bit");
	buf_append_str(out, "This is a MIME-encapsulated message.\r\n\r\n");

	buf_printf(out,
		   "--%s\r\nContent-Description: Notification\r\n"
		   "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		   boundary);
	append_human(out, info, kind);

	buf_printf(out,
		   "\r\n--%s\r\nContent-Description: Delivery report\r\n"
		   "Content-Type: message/delivery-status\r\n\r\n",
		   boundary);
	append_status(out, info);

	buf_printf(out, "\r\n--%s\r\n", boundary);
	if (full)
		buf_append_str(out, "Content-Description: Undelivered Message\r\n"
				    "Content-Type: message/rfc822\r\n");
	else
		buf_append_str(out, "Content-Description: Undelivered Message Headers\r\n"
				    "Content-Type: text/rfc822-headers\r\n");
	buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", eight ? "8bit" : "7bit");
	buf_append(out, info->message, orig_len);
	if (orig_len > 0 && info->message[orig_len - 1] != '\n')
		buf_append_str(out, "\r\n");
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	return eight;
}

int bounce_queue(const char *data_dir, const char *reporting_mta, const char *to, const void *msg, size_t len,
		 bool eight, char id_r[ID_SIZE], char **error_r)
{
	id_new(id_r);
	struct delivery_settings set = {.data_dir = data_dir, .id = id_r, .return_path = ""};
	struct delivery *d = delivery_begin(&set, error_r);
	if (d == NULL)
		return -1;
	struct queue_rcpt rcpt = {.address = to, .orcpt = NULL, .notify = SMTP_NOTIFY_NEVER};
	struct queue_envelope env = {
	    .sender = "",
	    .ret = SMTP_RET_DEFAULT,
	    .body = eight ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT,
	    .smtputf8 = utf8_has_8bit(to, strlen(to)),
	    .client_ip = "127.0.0.1",
	    .helo = reporting_mta,
	    .rcpts = &rcpt,
	    .nrcpts = 1,
	};
	char *error = NULL;
	if (delivery_sign_local(d, data_dir, &error) < 0) {
		log_error("bounce dkim error=\"%s\"", error);
		free(error);
	}
	delivery_append(d, msg, len);
	delivery_set_remote(d, &env);
	int rc = delivery_commit(d, error_r);
	delivery_free(&d);
	return rc;
}

int bounce_enqueue(const char *data_dir, const struct bounce_info *info, char **id_r, char **error_r)
{
	struct buf msg = BUF_INIT;
	bool eight = bounce_compose(&msg, info);
	char id[ID_SIZE];
	int rc =
	    bounce_queue(data_dir, info->reporting_mta, info->sender, msg.data, msg.len, eight, id, error_r);
	buf_free(&msg);
	if (rc == 0)
		*id_r = xstrdup(id);
	return rc;
}
