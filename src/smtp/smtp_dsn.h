#ifndef SMTP_SMTP_DSN_H
#define SMTP_SMTP_DSN_H
/* The envelope parameters that travel with a message: what MAIL FROM and
   RCPT TO carry in, what the queue stores and what the SMTP client sends
   on.  Protocol values only; the queue's file names for them are in
   queue/queue.c. */

/* RCPT TO NOTIFY (RFC 3461 section 4.1): a set of bits, DEFAULT (0) when
   the parameter was not given.  NEVER excludes the others. */
enum smtp_notify {
	SMTP_NOTIFY_DEFAULT = 0,
	SMTP_NOTIFY_NEVER = 1,
	SMTP_NOTIFY_SUCCESS = 2,
	SMTP_NOTIFY_FAILURE = 4,
	SMTP_NOTIFY_DELAY = 8,
};

/* MAIL FROM RET (RFC 3461 section 4.3): how much of the message a DSN
   returns. */
enum smtp_ret { SMTP_RET_DEFAULT, SMTP_RET_FULL, SMTP_RET_HDRS };

/* MAIL FROM BODY (RFC 6152 8BITMIME, RFC 3030 BINARYMIME). */
enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
#endif
