#ifndef SMTP_SMTP_PRIVATE_H
#define SMTP_SMTP_PRIVATE_H
/* The SMTP server session, shared by the files of src/smtp/. */
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"
#include "session/session.h"
#include "lib/buf.h"

#include <stdbool.h>
#include <stdint.h>

struct io;
struct event;
struct sasl_server;
struct delivery;
struct delivery_filter;
struct trust_inbound;

enum smtp_state {
	SMTP_ST_TLS_WAIT, /* implicit TLS or STARTTLS handshake in progress */
	SMTP_ST_INIT,     /* before HELO/EHLO */
	SMTP_ST_READY,    /* after HELO/EHLO, no transaction */
	SMTP_ST_MAIL,     /* after MAIL FROM */
	SMTP_ST_RCPT,     /* after at least one accepted RCPT TO */
	SMTP_ST_DATA,     /* reading DATA */
	SMTP_ST_BDAT,     /* reading a BDAT chunk */
	SMTP_ST_AUTH,     /* reading SASL responses */
};

struct smtp_rcpt {
	char *address; /* as given (normalised domain) */
	char *orcpt;
	unsigned notify;
	bool remote; /* goes to the queue */
};

struct smtp_txn {
	char id[24];
	char *sender; /* "" for <> */
	struct smtp_mail_params params;
	char *envid;
	struct smtp_rcpt *rcpts;
	int nrcpts;
	char **local_users; /* deduplicated local user addresses */
	int nlocal;
	int nremote;
	/* message data */
	struct delivery *delivery; /* from DATA or the first BDAT on */
	struct smtp_data_scanner scanner;
	struct buf out; /* scanned, not yet handed to the delivery */
	/* inbound mail: its checks (SPF from MAIL on, the rest from the end
	   of the header block) and the verifier among the delivery's filters
	   that feeds them and writes their results */
	struct trust_inbound *trust;
	struct delivery_filter *verifier;
	bool write_failed;
	bool bdat;          /* the message came (or comes) by BDAT */
	uint64_t bdat_left; /* octets still to read of the current chunk */
	bool bdat_last;
	bool bdat_discard;      /* reading a chunk only to throw it away */
	const char *bdat_error; /* reply owed after the discarded chunk */
	int64_t mail_ns;        /* metrics_now_ns() at MAIL */
};

struct smtp_session {
	struct session core; /* first: the shared skeleton */
	enum smtp_state state;
	bool submission; /* AUTH service: MAIL needs AUTH */
	bool esmtp;
	char *helo;
	char *auth_user;
	int auth_failures;
	bool auth_refused;     /* the delayed reply is a penalty refusal */
	bool auth_unavailable; /* ... because the user database failed */
	struct sasl_server *sasl;
	int messages;
	struct smtp_txn *txn;
	struct buf reply;
};

/* smtp_session.c */
void smtp_reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A protocol error by the client: counted; too many end the session. */
void smtp_reply_error(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void smtp_session_close(struct smtp_session *s, int code, const char *enh, const char *text);
/* The skeleton's session_busy/session_resume/session_reap
   (session/session.h) hold and continue the session around jobs. */

/* smtp_txn.c */
void smtp_cmd_mail(struct smtp_session *s, struct smtp_command *cmd);
void smtp_cmd_rcpt(struct smtp_session *s, struct smtp_command *cmd);
void smtp_cmd_data(struct smtp_session *s);
void smtp_cmd_bdat(struct smtp_session *s, struct smtp_command *cmd);
/* Reads message data from the input buffer; false when more input is needed. */
bool smtp_data_input(struct smtp_session *s);
bool smtp_bdat_input(struct smtp_session *s);
void smtp_txn_free(struct smtp_txn **txn);

/* smtp_metrics.c: what the transaction records in lib/metrics.h */
enum metrics_reject;
/* A message accepted (its 250 is being sent): counters, the acceptance
   time since MAIL, and the senders' and recipients' volume. */
void smtp_metrics_accepted(const struct smtp_session *s, const struct smtp_txn *t, uint64_t size);
/* A refused command: reason, and what was refused (an address) for the
   status page's list of recent rejects. */
void smtp_metrics_reject(const struct smtp_session *s, enum metrics_reject reason, const char *what);

/* smtp_auth.c */
void smtp_cmd_auth(struct smtp_session *s, struct smtp_command *cmd);
void smtp_auth_input(struct smtp_session *s, const char *line, size_t len);
bool smtp_auth_offered(const struct smtp_session *s);
#endif
