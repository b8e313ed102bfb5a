#ifndef CLI_CLIENT_CONN_H
#define CLI_CLIENT_CONN_H
/* The connection under the protocol clients of `postoffice fetch`
   (cli/pop3_client.h, cli/imap_client.h): the host is resolved through
   dns/dns.h (c-ares, the [dns] resolver), each address is tried in turn
   with io_connect(), and TLS, implicit (POP3S, IMAPS) or after the
   protocol's STLS or STARTTLS, runs on the io object (lib/io.h) with
   lib/tls.h's client context.  The failures of these steps come back as
   complete sentences naming the server; the protocol reports its own
   through client_conn_fail(), so that every session fails exactly once.

   The caller runs the event loop.  Callbacks come from the loop, never
   from inside the call that asked for them; client_conn_free() must not be
   called from a callback.  (The SMTP client, smtp/smtp_client.h, is given
   one address by its caller, the relay's MX loop or
   smtp_client_submit_sync(), which resolves through dns/dns.h too and
   retries the whole session on the next address, and keeps its own
   connection.) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/io.h"

struct event_base;
struct client_conn;

struct client_conn_settings {
	const char *host;       /* a name (resolved with dns_server) or an IP literal */
	int port;               /* 1..65535 */
	const char *dns_server; /* [dns] resolver: "" for /etc/resolv.conf */
	bool implicit_tls;      /* TLS from the first byte */
	bool verify;            /* check the server's certificate against host */
	int timeout;            /* seconds for the connection and each reply */
};

/* Once connected, the io's events (lib/io.h), with two meanings of ours:
   IO_EVENT_CONNECTED once the server's greeting may be read (with
   implicit_tls: after the handshake), IO_EVENT_TLS_DONE once the handshake
   client_conn_start_tls() started completed.  The failures of resolution,
   connection and handshakes never come here, they go to the fail
   callback; EOF, TIMEOUT and ERROR afterwards are the protocol's to report
   (the io is still there to ask io_error()). */
typedef void client_conn_event_callback(struct client_conn *conn, enum io_event event, void *ctx);
/* The session failed and is over ("cannot resolve HOST: ...", "cannot
   connect to HOST:PORT: Connection refused", "TLS handshake with HOST:PORT
   failed: ... (self-signed certificate)", or the protocol's sentence given
   to client_conn_fail()).  Called at most once; no event follows. */
typedef void client_conn_fail_callback(struct client_conn *conn, const char *error, void *ctx);

/* Resolves, connects to each address in turn until one answers (and with
   implicit_tls completes the handshake), then reports IO_EVENT_CONNECTED.
   settings' strings must stay valid for the connection's life.  ctx goes
   to both callbacks. */
struct client_conn *client_conn_new(struct event_base *base, const struct client_conn_settings *settings,
				    client_conn_event_callback *event, client_conn_fail_callback *fail,
				    void *ctx);
/* The connected io (to read replies and write commands), or NULL before
   the connection and after a failure. */
struct io *client_conn_io(const struct client_conn *conn);
/* After the server accepted STLS or STARTTLS: starts the handshake (the
   io discards what the server sent in plain text after that reply, RFC
   2595 section 4, RFC 3501 6.2.1); IO_EVENT_TLS_DONE or the fail callback
   follows.  Does nothing once the session failed. */
void client_conn_start_tls(struct client_conn *conn);
/* Ends the session: closes the connection and calls the fail callback
   with the formatted sentence (at once: call it from a callback of the
   connection's).  Does nothing once the session failed. */
void client_conn_fail(struct client_conn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads one line of at most max bytes (io_read_line()): 1 with it, 0 when
   no whole line is buffered, -1 after ending the session for a longer one
   ("line too long from the server (over MAX bytes) PREP WHAT"). */
int client_conn_read_line(struct client_conn *conn, size_t max, const char *prep, const char *what,
			  char **line_r, size_t *len_r);
/* Writes prefix, the formatted line and CRLF; our copy, which may hold a
   password, is wiped once the io has it. */
void client_conn_vsend(struct client_conn *conn, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* For an EOF, TIMEOUT or ERROR event after the setup: ends the session
   with the sentence for it, during naming what the protocol waited for
   ("connection closed by the server during RETR", "no answer from
   HOST:PORT within N seconds during IDLE", "connection to HOST:PORT failed
   during FETCH: Connection reset by peer"). */
void client_conn_fail_event(struct client_conn *conn, enum io_event event, const char *during);
/* Changes the idle timeout (seconds), e.g. around IMAP's IDLE. */
void client_conn_set_timeout(struct client_conn *conn, int seconds);
/* Closes the connection at once and frees everything. */
void client_conn_free(struct client_conn **conn);
#endif
