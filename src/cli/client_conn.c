/* The connection of the fetch protocol clients: resolution, one address
   after the other, TLS and the failures of these steps (see
   client_conn.h). */
#include "cli/client_conn.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/tls.h"
#include "lib/xalloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <openssl/x509.h>

enum conn_state {
	CONN_RESOLVING,
	CONN_CONNECTING,
	CONN_TLS, /* handshake (implicit TLS or after STLS/STARTTLS) */
	CONN_OPEN,
	CONN_DEAD,
};

struct client_conn {
	struct event_base *base;
	struct client_conn_settings set;
	client_conn_event_callback *event;
	client_conn_fail_callback *fail;
	void *ctx;
	enum conn_state state;
	struct dns_resolver *dns;
	struct dns_addr *addrs;
	size_t naddrs, ai;
	char *connect_error; /* the last address's failure */
	struct io *io;
	SSL_CTX *tls_ctx;
	bool tls_implicit;   /* the handshake running is the implicit one */
	struct event *defer; /* a failure found inside an API call */
	char *deferred_error;
};

static void conn_io_cb(struct io *io, enum io_event event, void *ctx);

/* ---- failures ---- */

static void conn_failv(struct client_conn *conn, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void conn_failv(struct client_conn *conn, const char *fmt, va_list ap)
{
	if (conn->state == CONN_DEAD)
		return;
	conn->state = CONN_DEAD;
	char *error = xvasprintf(fmt, ap);
	io_free(&conn->io); /* safe inside the io's callback */
	conn->fail(conn, error, conn->ctx);
	free(error);
}

void client_conn_fail(struct client_conn *conn, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_failv(conn, fmt, ap);
	va_end(ap);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client_conn *conn = arg;
	client_conn_fail(conn, "%s", conn->deferred_error);
}

/* Reports from the loop, not from inside the API call that found it. */
static void conn_fail_later(struct client_conn *conn, char *error)
{
	free(conn->deferred_error);
	conn->deferred_error = error;
	if (conn->defer == NULL)
		conn->defer = evtimer_new(conn->base, defer_cb, conn);
	struct timeval tv = {0, 0};
	evtimer_add(conn->defer, &tv);
}

/* ---- connection ---- */

static void conn_try_addr(struct client_conn *conn)
{
	if (conn->ai >= conn->naddrs) {
		client_conn_fail(conn, "cannot connect to %s:%d: %s", conn->set.host, conn->set.port,
				 conn->connect_error != NULL ? conn->connect_error : "no address");
		return;
	}
	conn->state = CONN_CONNECTING;
	conn->io = io_connect(conn->base, (const struct sockaddr *)&conn->addrs[conn->ai].sa,
			      conn->addrs[conn->ai].len, conn_io_cb, conn);
	io_set_timeout(conn->io, conn->set.timeout);
}

static void conn_connect_failed(struct client_conn *conn)
{
	free(conn->connect_error);
	conn->connect_error = xstrdup(io_error(conn->io));
	io_free(&conn->io);
	conn->ai++;
	conn_try_addr(conn);
}

static void addr_cb(void *ctx, enum dns_status status, const struct dns_addr *addrs, size_t n,
		    const char *error)
{
	struct client_conn *conn = ctx;
	if (status == DNS_CANCELLED)
		return; /* the connection is being freed */
	if (status != DNS_OK) {
		client_conn_fail(conn, "cannot resolve %s: %s", conn->set.host,
				 error != NULL ? error : "no address");
		return;
	}
	conn->addrs = xcalloc(n, sizeof(*conn->addrs));
	memcpy(conn->addrs, addrs, n * sizeof(*addrs));
	conn->naddrs = n;
	conn->ai = 0;
	conn_try_addr(conn);
}

struct client_conn *client_conn_new(struct event_base *base, const struct client_conn_settings *settings,
				    client_conn_event_callback *event, client_conn_fail_callback *fail,
				    void *ctx)
{
	struct client_conn *conn = xcalloc(1, sizeof(*conn));
	conn->base = base;
	conn->set = *settings;
	conn->event = event;
	conn->fail = fail;
	conn->ctx = ctx;
	conn->state = CONN_RESOLVING;
	char *error = NULL;
	conn->dns = dns_resolver_new(base, settings->dns_server, &error);
	if (conn->dns == NULL)
		conn_fail_later(conn, error);
	else
		dns_lookup_addr(conn->dns, settings->host, settings->port, addr_cb, conn);
	return conn;
}

struct io *client_conn_io(const struct client_conn *conn)
{
	return conn->io;
}

/* ---- TLS ---- */

static void conn_tls_start(struct client_conn *conn, bool implicit)
{
	char *error = NULL;
	if (conn->tls_ctx == NULL)
		conn->tls_ctx = tls_client_ctx(conn->set.verify, &error);
	if (conn->tls_ctx == NULL) {
		conn_fail_later(conn, xasprintf("TLS: %s", error));
		free(error);
		return;
	}
	/* SNI always; the certificate is checked against the name only when
	   verifying (fetch does not for a loopback server or --insecure). */
	if (io_start_tls_client(conn->io, conn->tls_ctx, conn->set.host,
				conn->set.verify ? conn->set.host : NULL) < 0) {
		conn_fail_later(conn, xasprintf("TLS handshake with %s:%d failed: cannot start TLS",
						conn->set.host, conn->set.port));
		return;
	}
	conn->state = CONN_TLS;
	conn->tls_implicit = implicit;
}

void client_conn_start_tls(struct client_conn *conn)
{
	if (conn->state != CONN_DEAD)
		conn_tls_start(conn, false);
}

static void conn_tls_failed(struct client_conn *conn, enum io_event event)
{
	/* A peer that closes or speaks plain text leaves OpenSSL's error
	   queue empty: say what happened instead of "error:00000000". */
	const char *why = event == IO_EVENT_EOF ? "the server closed the connection (is it a TLS port?)"
						: io_error(conn->io);
	SSL *ssl = io_ssl(conn->io);
	long verify = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (verify != X509_V_OK)
		client_conn_fail(conn, "TLS handshake with %s:%d failed: %s (%s)", conn->set.host,
				 conn->set.port, why, X509_verify_cert_error_string(verify));
	else
		client_conn_fail(conn, "TLS handshake with %s:%d failed: %s", conn->set.host, conn->set.port,
				 why);
}

/* ---- lines ---- */

int client_conn_read_line(struct client_conn *conn, size_t max, const char *prep, const char *what,
			  char **line_r, size_t *len_r)
{
	int rc = io_read_line(conn->io, max, line_r, len_r);
	if (rc < 0)
		client_conn_fail(conn, "line too long from the server (over %zu bytes) %s %s", max, prep,
				 what);
	return rc;
}

void client_conn_vsend(struct client_conn *conn, const char *prefix, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, prefix);
	buf_vprintf(&b, fmt, ap);
	buf_append_str(&b, "\r\n");
	io_write(conn->io, b.data, b.len);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
}

/* ---- events ---- */

void client_conn_fail_event(struct client_conn *conn, enum io_event event, const char *during)
{
	if (event == IO_EVENT_EOF)
		client_conn_fail(conn, "connection closed by the server during %s", during);
	else if (event == IO_EVENT_TIMEOUT)
		client_conn_fail(conn, "no answer from %s:%d within %d seconds during %s", conn->set.host,
				 conn->set.port, conn->set.timeout, during);
	else
		client_conn_fail(conn, "connection to %s:%d failed during %s: %s", conn->set.host,
				 conn->set.port, during, conn->io != NULL ? io_error(conn->io) : "closed");
}

void client_conn_set_timeout(struct client_conn *conn, int seconds)
{
	conn->set.timeout = seconds;
	if (conn->io != NULL)
		io_set_timeout(conn->io, seconds);
}

static void conn_io_cb(struct io *io, enum io_event event, void *ctx)
{
	struct client_conn *conn = ctx;
	bool failure = event == IO_EVENT_TIMEOUT || event == IO_EVENT_EOF || event == IO_EVENT_ERROR;
	if (conn->state == CONN_CONNECTING) {
		if (failure)
			conn_connect_failed(conn);
		else if (event == IO_EVENT_CONNECTED && conn->set.implicit_tls)
			conn_tls_start(conn, true);
		else if (event == IO_EVENT_CONNECTED) {
			conn->state = CONN_OPEN;
			conn->event(conn, IO_EVENT_CONNECTED, conn->ctx);
		}
		return;
	}
	if (conn->state == CONN_TLS) {
		if (failure)
			conn_tls_failed(conn, event);
		else if (event == IO_EVENT_TLS_DONE) {
			conn->state = CONN_OPEN;
			conn->event(conn, conn->tls_implicit ? IO_EVENT_CONNECTED : IO_EVENT_TLS_DONE,
				    conn->ctx);
		}
		return;
	}
	if (conn->state == CONN_OPEN)
		conn->event(conn, event, conn->ctx);
}

void client_conn_free(struct client_conn **connp)
{
	struct client_conn *conn = *connp;
	if (conn == NULL)
		return;
	*connp = NULL;
	/* Pending lookups report DNS_CANCELLED, which addr_cb ignores. */
	dns_resolver_free(&conn->dns);
	io_free(&conn->io);
	if (conn->tls_ctx != NULL)
		SSL_CTX_free(conn->tls_ctx);
	if (conn->defer != NULL)
		event_free(conn->defer);
	free(conn->deferred_error);
	free(conn->addrs);
	free(conn->connect_error);
	free(conn);
}
