#ifndef POP3_POP3_PRIVATE_H
#define POP3_POP3_PRIVATE_H
/* The POP3 session (RFC 1939), shared by pop3_session.c (connection,
   dispatch, STLS, CAPA, QUIT/UPDATE), pop3_auth.c (USER/PASS, AUTH) and
   pop3_mail.c (the TRANSACTION commands and RETR/TOP streaming). */
#include "pop3/pop3_parse.h"
#include "session/session.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct event;
struct io;
struct sasl_server;

enum pop3_state {
	POP3_ST_TLS_WAIT, /* implicit TLS or STLS handshake running */
	POP3_ST_AUTH,     /* AUTHORIZATION */
	POP3_ST_SASL,     /* inside an AUTH exchange */
	POP3_ST_TRANSACTION,
	POP3_ST_UPDATE, /* after QUIT: deleting */
};

/* RETR/TOP in progress: the file is streamed as the client drains. */
struct pop3_send {
	int fd;
	bool active;
	bool line_start; /* the next byte begins a line (dot-stuffing) */
	bool bare_lf;    /* turn LF into CRLF */
	bool top;
	bool in_body;        /* TOP: past the header */
	char prev;           /* last byte sent */
	size_t line_len;     /* bytes of the current line so far */
	uint32_t lines_left; /* TOP: body lines still to send */
	uint64_t sent;
};

struct pop3_session {
	struct session core; /* first: the shared skeleton */
	enum pop3_state state;
	int auth_failures;
	bool auth_refused;     /* the delayed reply is a penalty refusal */
	bool auth_unavailable; /* ... because the user database failed */

	/* AUTHORIZATION */
	char *user; /* from USER */
	struct sasl_server *sasl;
	const char *sasl_method; /* for the log */
	char *pending_error;     /* reply held back by the failure delay */

	/* TRANSACTION */
	char *address;
	struct store *store; /* holds the maildrop lock (store_maildrop_lock) */
	struct store_mailbox *inbox;
	struct store_msg_list msgs; /* the maildrop as of login */
	bool *deleted;
	uint32_t ndeleted;
	uint64_t deleted_size, total_size;

	struct pop3_send send;
	char *send_buf;
	unsigned retrieved;
	uint64_t retrieved_bytes;
};

/* pop3_session.c */
void pop3_reply(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* -ERR reply for a client mistake; too many close the session. */
void pop3_reply_error(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_session_close(struct pop3_session *s, const char *text);
/* The skeleton's session_busy/session_resume/session_reap
   (session/session.h) hold and continue the session around jobs. */

/* pop3_auth.c */
void pop3_cmd_user(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_pass(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_auth(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_sasl_input(struct pop3_session *s, const char *line, size_t len);
void pop3_auth_free(struct pop3_session *s);

/* pop3_mail.c */
void pop3_cmd_stat(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_list(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_retr(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_dele(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_cmd_rset(struct pop3_session *s, const struct pop3_command *cmd);
/* Sends more of a RETR/TOP as output drains. */
void pop3_send_pump(struct pop3_session *s);
void pop3_update(struct pop3_session *s);
void pop3_mail_free(struct pop3_session *s);
#endif
