#ifndef SMTP_SMTP_CLIENT_H
#define SMTP_SMTP_CLIENT_H
/* The SMTP client (RFC 5321) on the io object, used by the queue runner
   (asynchronously, one event loop for every connection) and by the
   command-line tools (smtp_client_submit_sync runs its own loop).
   Extensions: EHLO with HELO fallback, STARTTLS (RFC 3207) by policy,
   AUTH PLAIN/LOGIN (RFC 4954), PIPELINING (RFC 2920), SIZE (RFC 1870),
   8BITMIME (RFC 6152) with conversion to quoted-printable, SMTPUTF8
   (RFC 6531), DSN (RFC 3461), CHUNKING/BINARYMIME (RFC 3030), enhanced
   status codes (RFC 3463). */
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/tls.h"
#include "smtp/smtp_dsn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct smtp_client;

/* ---- replies ---- */

/* Longest reply line and number of lines accepted. */
#define SMTP_CLIENT_LINE_MAX 4096
#define SMTP_CLIENT_REPLY_LINES_MAX 200

struct smtp_client_reply {
	int code;          /* 200..599 */
	char enhanced[16]; /* "5.1.1" when the first line carried one, else "" */
	char *text;        /* the lines' text after code (and enhanced code),
			      joined by '\n'; heap, owned by the reply */
};

struct smtp_client_reply_parser {
	struct buf text;
	int code;
	unsigned lines;
	char enhanced[16];
};

void smtp_client_reply_parser_init(struct smtp_client_reply_parser *p);
void smtp_client_reply_parser_deinit(struct smtp_client_reply_parser *p);
/* Feeds one reply line without its CRLF.  Returns 1 when the reply is
   complete (*reply_r filled; free with smtp_client_reply_free), 0 when more
   lines follow, -1 when the line is malformed (*error_r static text; the
   parser is reset). */
int smtp_client_reply_feed(struct smtp_client_reply_parser *p, const char *line, size_t len,
			   struct smtp_client_reply *reply_r, const char **error_r);
void smtp_client_reply_free(struct smtp_client_reply *reply);
/* "550 5.1.1 text of all lines" on one line, printable (caller frees). */
char *smtp_client_reply_string(const struct smtp_client_reply *reply);

/* ---- EHLO capabilities ---- */

enum smtp_client_cap {
	SMTP_CAP_STARTTLS = 1 << 0,
	SMTP_CAP_PIPELINING = 1 << 1,
	SMTP_CAP_SIZE = 1 << 2,
	SMTP_CAP_8BITMIME = 1 << 3,
	SMTP_CAP_SMTPUTF8 = 1 << 4,
	SMTP_CAP_DSN = 1 << 5,
	SMTP_CAP_AUTH = 1 << 6,
	SMTP_CAP_CHUNKING = 1 << 7,
	SMTP_CAP_BINARYMIME = 1 << 8,
	SMTP_CAP_ENHANCEDSTATUSCODES = 1 << 9,
	SMTP_CAP_AUTH_PLAIN = 1 << 10,
	SMTP_CAP_AUTH_LOGIN = 1 << 11,
};

struct smtp_client_caps {
	unsigned flags; /* enum smtp_client_cap */
	uint64_t size;  /* SIZE limit, 0 = none announced */
};

/* Parses the text of a 250 reply to EHLO (lines joined by '\n'; the first
   line is the greeting and is skipped). */
void smtp_client_parse_ehlo(const char *text, struct smtp_client_caps *caps_r);

/* ---- sessions ---- */

struct smtp_client_settings {
	const char *helo_name;   /* our host name for EHLO */
	enum tls_policy tls;     /* STARTTLS: none, may, encrypt, verify */
	bool implicit_tls;       /* TLS from the first byte (port 465) */
	const char *tls_name;    /* SNI and the name verified (verify) */
	const char *tls_ca_file; /* verify and tls_check against this PEM file, NULL:
				    the system CA store */
	bool tls_check;          /* check the certificate for tls_name as verify does,
				    but only to report (smtp_client_tls_verify_error) */
	/* DANE (RFC 7672): the certificate must match one of these TLSA
	   records (tls_name is the TLSA base domain); the CA store is not
	   used.  tls must then be encrypt or verify. */
	const struct tls_tlsa *tlsa;
	size_t ntlsa;
	const char *user, *password; /* AUTH when user is non-NULL */
	const char *peer_name;       /* for messages, e.g. "mx.b.test[127.0.0.1]" */
	int connect_timeout;         /* seconds; 0: 30 */
	int command_timeout;         /* 0: 300 (RFC 5321 4.5.3.2) */
	int data_timeout;            /* final reply after the data; 0: 600 */
};

enum smtp_client_status {
	SMTP_CLIENT_OK,
	SMTP_CLIENT_TEMPFAIL, /* 4xx, connection trouble: retry later */
	SMTP_CLIENT_PERMFAIL, /* 5xx, or the message cannot be sent there */
};

struct smtp_client_result {
	enum smtp_client_status status;
	bool connection_failed; /* session unusable before a transaction: try
				   the next host */
	bool tls_failed;        /* the STARTTLS handshake failed (the session is
				   dead; a new one without TLS may work) */
	char *reply;            /* "250 2.0.0 Ok queued" / "550 5.1.1 text":
				   the server's last relevant reply, or
				   ours for local failures */
	char enhanced[16];      /* status code for a DSN ("4.4.1") */
	bool remote;            /* reply came from the server */
	const char *stage;      /* "connect", "greeting", "EHLO", "STARTTLS",
				   "AUTH", "MAIL FROM", "RCPT TO", "DATA", "end of data" */
};

struct smtp_client_rcpt {
	const char *address;
	const char *orcpt; /* "rfc822;x@y" (not xtext-encoded) or NULL */
	unsigned notify;   /* enum smtp_notify bits */
	/* results of smtp_client_send(): */
	enum smtp_client_status status;
	char *reply; /* one line, heap (freed by smtp_client_msg_clear) */
	char enhanced[16];
	bool remote; /* the status came from the server */
	const char *stage;
};

struct smtp_client_msg {
	const char *sender; /* "" for <> */
	const char *envid;  /* or NULL */
	enum smtp_ret ret;
	enum smtp_body body;
	bool smtputf8;
	struct smtp_client_rcpt *rcpts;
	size_t nrcpts;
	const char *data; /* content: CRLF lines, not dot-stuffed */
	size_t size;
	/* results: */
	bool converted_8bit; /* downgraded to quoted-printable */
	bool dsn_relayed;    /* the server did not offer DSN */
};

/* Frees the per-recipient results. */
void smtp_client_msg_clear(struct smtp_client_msg *msg);

typedef void smtp_client_callback(struct smtp_client *c, const struct smtp_client_result *res, void *ctx);

/* Opens a session: connect, greeting, EHLO (HELO when EHLO is refused),
   STARTTLS per policy, AUTH.  cb is called once from the loop: with
   SMTP_CLIENT_OK when transactions may start, otherwise the session is
   dead (free it).  settings' strings must stay valid for the session. */
struct smtp_client *smtp_client_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
					const struct smtp_client_settings *settings, smtp_client_callback *cb,
					void *ctx);
/* One transaction: MAIL, RCPT (one per recipient), DATA or BDAT, pipelined
   when offered.  Results go to msg->rcpts[]; cb is called once with the
   message-level result (OK when at least one recipient was accepted and
   the data was).  msg must stay valid until then. */
void smtp_client_send(struct smtp_client *c, struct smtp_client_msg *msg, smtp_client_callback *cb,
		      void *ctx);
/* True while another transaction can be started on the session. */
bool smtp_client_usable(const struct smtp_client *c);
const struct smtp_client_caps *smtp_client_get_caps(const struct smtp_client *c);
bool smtp_client_is_tls(const struct smtp_client *c);
/* After STARTTLS: NULL when the certificate passed the checks asked for
   (verify, tls_check or DANE), else why not ("no TLS" without TLS). */
const char *smtp_client_tls_verify_error(const struct smtp_client *c);
/* Sends QUIT when the session is usable and frees the client once the
   server answered (or at once).  Safe inside the client's callback. */
void smtp_client_quit(struct smtp_client **c);
/* Frees at once (closing the connection).  Safe inside the callback. */
void smtp_client_free(struct smtp_client **c);

/* Blocking submission for command-line tools: resolves host through
   dns/dns.h (c-ares) with the resolver dns_server (the [dns] resolver:
   "host:port", or "" for /etc/resolv.conf; an IP literal is used as it
   is), connects to each address in turn while the session fails before a
   transaction (RFC 5321 section 5.1: try the next address), sends msg and
   quits.  Returns 0 when every recipient was accepted, -1 otherwise;
   *reply_r is the server's final reply (or NULL), *error_r a clear message
   for failures, "cannot resolve HOST: ..." when the name has no address
   (caller frees both).  Per-recipient results stay in msg->rcpts. */
int smtp_client_submit_sync(const char *host, int port, const char *dns_server,
			    const struct smtp_client_settings *settings, struct smtp_client_msg *msg,
			    char **reply_r, char **error_r);

/* ---- data helpers (exposed for tests) ---- */

/* Appends data to out dot-stuffed (RFC 5321 4.5.2) and terminated by
   CRLF.CRLF, adding a CRLF when data lacks a final one. */
void smtp_client_dot_stuff(struct buf *out, const char *data, size_t len);
/* xtext encoding (RFC 3461 section 4) of s. */
void smtp_client_xtext(struct buf *out, const char *s);
/* Converts an 8-bit message into 7-bit by re-encoding each 8-bit text part
   of the MIME structure as quoted-printable (RFC 6152 section 3; RFC 1652
   section 6: "the conversion ... should be done by re-encoding").  Returns 0
   with out filled, -1 when a conversion is impossible (8-bit header text,
   or 8-bit data in a message/ or multipart part without a usable boundary). */
int smtp_client_downgrade_8bit(const char *data, size_t len, struct buf *out, const char **error_r);
#endif
