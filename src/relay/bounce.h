#ifndef QUEUE_BOUNCE_H
#define QUEUE_BOUNCE_H
/* Delivery status notifications: RFC 3464 message/delivery-status inside
   an RFC 6522 multipart/report, from MAILER-DAEMON with the null sender
   (RFC 5321 section 4.5.5).  Never sent for a message whose sender is
   null: the runner checks that before calling. */
#include "lib/id.h"
#include "lib/buf.h"
#include "queue/queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bounce_rcpt {
	const char *address;      /* Final-Recipient */
	const char *orcpt;        /* "rfc822;x@y" or NULL: Original-Recipient */
	const char *action;       /* "failed", "delayed", "delivered", "relayed", "expanded" */
	const char *status;       /* "5.1.1" */
	const char *remote_mta;   /* host name, or NULL */
	const char *diagnostic;   /* "550 5.1.1 text" (an SMTP reply), or NULL */
	int64_t last_attempt;     /* 0: none */
	int64_t will_retry_until; /* "delayed" only; 0: omitted */
};

struct bounce_info {
	const char *reporting_mta; /* our host name */
	const char *queue_id;      /* of the original message */
	const char *sender;        /* original envelope sender: the DSN goes there */
	const char *envid;         /* or NULL */
	int64_t arrival;
	int64_t now;
	enum smtp_ret ret;
	const char *message; /* the original content (CRLF lines) */
	size_t message_size;
	const struct bounce_rcpt *rcpts;
	size_t nrcpts;
	const char *boundary;   /* NULL: generated */
	const char *message_id; /* NULL: generated */
};

/* Largest original returned whole; bigger ones are returned as headers. */
#define BOUNCE_FULL_MAX (10 * 1024 * 1024)

/* Appends the DSN message (headers and body, CRLF lines) to out.  Returns
   true when the result contains 8-bit text (the original's), so it must
   travel as 8BITMIME. */
bool bounce_compose(struct buf *out, const struct bounce_info *info);
/* Queues a DSN: msg (len bytes of bounce_compose()'s output, 8-bit when
   eight) goes to `to` from the null sender through delivery/delivery.h,
   with a "Return-Path: <>" line before it.  Blocking (fsync): a job
   thread.  0 with the new queue id in id_r, or -1 with *error_r (caller
   frees). */
int bounce_queue(const char *data_dir, const char *reporting_mta, const char *to, const void *msg, size_t len,
		 bool eight, char id_r[ID_SIZE], char **error_r);
/* Composes the DSN and queues it for info->sender (bounce_queue()).
   0 with *id_r (caller frees), or -1 with *error_r. */
int bounce_enqueue(const char *data_dir, const struct bounce_info *info, char **id_r, char **error_r);
#endif
