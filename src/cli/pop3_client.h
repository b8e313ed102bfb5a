#ifndef CLI_POP3_CLIENT_H
#define CLI_POP3_CLIENT_H
/* The POP3 client connection of `postoffice fetch` (RFC 1939) on
   cli/client_conn.h, which resolves, connects and runs TLS, implicit
   (POP3S) or after STLS (RFC 2595).  One command at a time: each reply,
   its status line and for multi-line responses the body, goes to the
   callback given with the command.

   The caller runs the event loop.  Callbacks come from the loop, never
   from inside the call that asked for them; pop3_client_free() must not be
   called from a callback (stop the loop, then free). */
#include "cli/client_conn.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct pop3_client;

/* A status line longer than this ends the session with an error.  The
   lines of a multi-line body (a message) have no limit of their own. */
#define POP3_CLIENT_LINE_MAX 8192

struct pop3_client_reply {
	bool ok;          /* the status line starts with "+OK" */
	const char *line; /* the status line without its CRLF (a "+ " line is a SASL
			     challenge, RFC 5034: neither ok nor -ERR) */
	/* Multi-line responses after +OK (RFC 1939 section 3): the body with
	   the byte-stuffing removed and without the terminating ".", lines
	   ending in CRLF (a bare LF or CR becomes CRLF).  NULL otherwise. */
	const char *body;
	size_t body_len;
};

typedef void pop3_client_reply_callback(struct pop3_client *c, const struct pop3_client_reply *reply,
					void *ctx);
/* The session failed and is over: error is a complete sentence naming the
   server ("cannot connect to HOST:PORT: Connection refused", "TLS handshake
   with HOST:PORT failed: ...", "connection closed by the server during
   RETR", "line too long from the server ...").  Called at most once; no
   reply callback follows. */
typedef void pop3_client_fail_callback(struct pop3_client *c, const char *error, void *ctx);

/* Resolves, connects (and with implicit_tls completes the handshake), then
   calls greeting with the server's greeting.  settings' strings must stay
   valid for the client's life.  ctx goes to every callback. */
struct pop3_client *pop3_client_connect(struct event_base *base, const struct client_conn_settings *settings,
					pop3_client_reply_callback *greeting, pop3_client_fail_callback *fail,
					void *ctx);
/* Sends one command (CRLF is added; our formatted copy, which may hold a
   password, is wiped once the io has it) and calls cb with its reply.
   multiline: a +OK reply is followed by a body (RETR, UIDL, CAPA).  One
   command waits for its reply at a time (a second one is a bug: abort).
   Does nothing once the session failed. */
void pop3_client_command(struct pop3_client *c, bool multiline, pop3_client_reply_callback *cb,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* After a +OK to STLS: discards anything the server sent in plain text
   after that reply (RFC 2595 section 4, as RFC 3207 4.2 for SMTP), starts
   the handshake and calls done once it completed. */
void pop3_client_start_tls(struct pop3_client *c, void (*done)(struct pop3_client *c, void *ctx));
/* Closes the connection at once and frees everything. */
void pop3_client_free(struct pop3_client **c);
#endif
