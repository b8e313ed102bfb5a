/* The POP3 client connection: resolution, connection, TLS and replies on
   the io object, one command at a time (see pop3_client.h). */
#include "cli/pop3_client.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/xalloc.h"
#include "smtp/smtp_data.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <openssl/x509.h>

enum client_state {
	ST_RESOLVING,
	ST_CONNECTING,
	ST_TLS,    /* handshake (implicit TLS or after STLS) */
	ST_STATUS, /* waiting for a status line */
	ST_BODY,   /* reading a multi-line body */
	ST_IDLE,   /* no command waiting */
	ST_DEAD,
};

struct pop3_client {
	struct event_base *base;
	struct pop3_client_settings set;
	void *ctx;
	pop3_client_fail_callback *fail;
	struct dns_resolver *dns;
	struct dns_addr *addrs;
	size_t naddrs, ai;
	char *connect_error; /* the last address's failure */
	struct io *io;
	SSL_CTX *tls_ctx;
	enum client_state state;
	pop3_client_reply_callback *reply_cb;
	void (*tls_done)(struct pop3_client *c, void *ctx);
	char verb[16]; /* of the command waiting, for errors */
	bool multiline;
	struct buf status, body;
	struct smtp_data_scanner scanner;
	struct event *defer; /* a failure found inside an API call */
	char *deferred_error;
};

static void client_io_cb(struct io *io, enum io_event event, void *ctx);

/* ---- failures ---- */

static void client_fail(struct pop3_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void client_fail(struct pop3_client *c, const char *fmt, ...)
{
	if (c->state == ST_DEAD)
		return;
	c->state = ST_DEAD;
	va_list ap;
	va_start(ap, fmt);
	char *error = xvasprintf(fmt, ap);
	va_end(ap);
	io_free(&c->io); /* safe inside the io's callback */
	c->fail(c, error, c->ctx);
	free(error);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_client *c = arg;
	client_fail(c, "%s", c->deferred_error);
}

/* Reports from the loop, not from inside the API call that found it. */
static void client_fail_later(struct pop3_client *c, char *error)
{
	free(c->deferred_error);
	c->deferred_error = error;
	if (c->defer == NULL)
		c->defer = evtimer_new(c->base, defer_cb, c);
	struct timeval tv = {0, 0};
	evtimer_add(c->defer, &tv);
}

/* ---- connection ---- */

static void client_try_addr(struct pop3_client *c)
{
	if (c->ai >= c->naddrs) {
		client_fail(c, "cannot connect to %s:%d: %s", c->set.host, c->set.port,
			    c->connect_error != NULL ? c->connect_error : "no address");
		return;
	}
	c->state = ST_CONNECTING;
	c->io = io_connect(c->base, (const struct sockaddr *)&c->addrs[c->ai].sa, c->addrs[c->ai].len,
			   client_io_cb, c);
	io_set_timeout(c->io, c->set.timeout);
}

static void client_connect_failed(struct pop3_client *c)
{
	free(c->connect_error);
	c->connect_error = xstrdup(io_error(c->io));
	io_free(&c->io);
	c->ai++;
	client_try_addr(c);
}

static void addr_cb(void *ctx, enum dns_status status, const struct dns_addr *addrs, size_t n,
		    const char *error)
{
	struct pop3_client *c = ctx;
	if (status == DNS_CANCELLED)
		return; /* the client is being freed */
	if (status != DNS_OK) {
		client_fail(c, "cannot resolve %s: %s", c->set.host, error != NULL ? error : "no address");
		return;
	}
	c->addrs = xcalloc(n, sizeof(*c->addrs));
	memcpy(c->addrs, addrs, n * sizeof(*addrs));
	c->naddrs = n;
	c->ai = 0;
	client_try_addr(c);
}

struct pop3_client *pop3_client_connect(struct event_base *base, const struct pop3_client_settings *settings,
					pop3_client_reply_callback *greeting, pop3_client_fail_callback *fail,
					void *ctx)
{
	struct pop3_client *c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->set = *settings;
	c->ctx = ctx;
	c->fail = fail;
	c->reply_cb = greeting;
	snprintf(c->verb, sizeof(c->verb), "greeting");
	c->state = ST_RESOLVING;
	char *error = NULL;
	c->dns = dns_resolver_new(base, settings->dns_server, &error);
	if (c->dns == NULL)
		client_fail_later(c, error);
	else
		dns_lookup_addr(c->dns, settings->host, settings->port, addr_cb, c);
	return c;
}

/* ---- TLS ---- */

static void client_tls_start(struct pop3_client *c)
{
	char *error = NULL;
	if (c->tls_ctx == NULL)
		c->tls_ctx = tls_client_ctx(c->set.verify, &error);
	if (c->tls_ctx == NULL) {
		client_fail_later(c, xasprintf("TLS: %s", error));
		free(error);
		return;
	}
	/* SNI always; the certificate is checked against the name only when
	   verifying (fetch does not for a loopback server or --insecure). */
	if (io_start_tls_client(c->io, c->tls_ctx, c->set.host, c->set.verify ? c->set.host : NULL) < 0) {
		client_fail_later(c, xasprintf("TLS handshake with %s:%d failed: cannot start TLS",
					       c->set.host, c->set.port));
		return;
	}
	c->state = ST_TLS;
}

void pop3_client_start_tls(struct pop3_client *c, void (*done)(struct pop3_client *c, void *ctx))
{
	c->tls_done = done;
	client_tls_start(c);
}

static void client_tls_failed(struct pop3_client *c, enum io_event event)
{
	/* A peer that closes or speaks plain text leaves OpenSSL's error
	   queue empty: say what happened instead of "error:00000000". */
	const char *why =
	    event == IO_EVENT_EOF ? "the server closed the connection (is it a TLS port?)" : io_error(c->io);
	SSL *ssl = io_ssl(c->io);
	long verify = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (verify != X509_V_OK)
		client_fail(c, "TLS handshake with %s:%d failed: %s (%s)", c->set.host, c->set.port, why,
			    X509_verify_cert_error_string(verify));
	else
		client_fail(c, "TLS handshake with %s:%d failed: %s", c->set.host, c->set.port, why);
}

/* ---- replies ---- */

static void client_expect(struct pop3_client *c, pop3_client_reply_callback *cb, bool multiline)
{
	c->reply_cb = cb;
	c->multiline = multiline;
	c->state = ST_STATUS;
}

static void client_reply(struct pop3_client *c, bool ok, bool with_body)
{
	struct pop3_client_reply r = {
	    .ok = ok,
	    .line = buf_cstr(&c->status),
	    .body = with_body ? buf_cstr(&c->body) : NULL,
	    .body_len = with_body ? c->body.len : 0,
	};
	pop3_client_reply_callback *cb = c->reply_cb;
	c->reply_cb = NULL;
	c->state = ST_IDLE;
	cb(c, &r, c->ctx);
}

/* Returns false when no more can be done with what is buffered. */
static bool client_read_status(struct pop3_client *c)
{
	char *line;
	size_t len;
	int rc = io_read_line(c->io, POP3_CLIENT_LINE_MAX, &line, &len);
	if (rc == 0)
		return false;
	if (rc < 0) {
		client_fail(c, "line too long from the server (over %d bytes) after %s", POP3_CLIENT_LINE_MAX,
			    c->verb);
		return false;
	}
	buf_reset(&c->status);
	buf_append(&c->status, line, len);
	bool ok = len >= 3 && memcmp(line, "+OK", 3) == 0;
	if (ok && c->multiline) {
		buf_reset(&c->body);
		/* RFC 1939 section 3: the same byte-stuffing and terminator
		   as SMTP's DATA (RFC 5321 4.5.2). */
		smtp_data_scanner_init(&c->scanner, true, true, UINT64_MAX);
		c->state = ST_BODY;
		return true;
	}
	client_reply(c, ok, false);
	return true;
}

static bool client_read_body(struct pop3_client *c)
{
	const char *data;
	size_t len = io_input_peek(c->io, &data);
	if (len == 0)
		return false;
	bool done;
	size_t used = smtp_data_scan(&c->scanner, data, len, &c->body, &done);
	io_input_drain(c->io, used);
	if (done)
		client_reply(c, true, true);
	return true;
}

static void client_input(struct pop3_client *c)
{
	bool more = true;
	while (more) {
		if (c->state == ST_STATUS)
			more = client_read_status(c);
		else if (c->state == ST_BODY)
			more = client_read_body(c);
		else
			more = false; /* nothing asked: what the server sends waits */
	}
}

static void client_io_cb(struct io *io, enum io_event event, void *ctx)
{
	struct pop3_client *c = ctx;
	switch (event) {
	case IO_EVENT_CONNECTED:
		if (c->set.implicit_tls)
			client_tls_start(c);
		else
			client_expect(c, c->reply_cb, false);
		return;
	case IO_EVENT_TLS_DONE:
		if (c->tls_done != NULL) {
			void (*done)(struct pop3_client *, void *) = c->tls_done;
			c->tls_done = NULL;
			c->state = ST_IDLE;
			done(c, c->ctx);
		} else {
			client_expect(c, c->reply_cb, false); /* POP3S: the greeting */
		}
		return;
	case IO_EVENT_INPUT:
		client_input(c);
		return;
	case IO_EVENT_DRAINED:
	case IO_EVENT_CLOSED:
		return;
	case IO_EVENT_TIMEOUT:
	case IO_EVENT_EOF:
	case IO_EVENT_ERROR:
		break;
	}
	if (c->state == ST_CONNECTING)
		client_connect_failed(c);
	else if (c->state == ST_TLS)
		client_tls_failed(c, event);
	else if (event == IO_EVENT_EOF)
		client_fail(c, "connection closed by the server during %s", c->verb);
	else if (event == IO_EVENT_TIMEOUT)
		client_fail(c, "no answer from %s:%d within %d seconds during %s", c->set.host, c->set.port,
			    c->set.timeout, c->verb);
	else
		client_fail(c, "connection to %s:%d failed during %s: %s", c->set.host, c->set.port, c->verb,
			    io_error(c->io));
}

/* ---- commands ---- */

void pop3_client_command(struct pop3_client *c, bool multiline, pop3_client_reply_callback *cb,
			 const char *fmt, ...)
{
	if (c->state == ST_DEAD)
		return; /* the fail callback came or comes */
	if (c->state != ST_IDLE)
		log_panic("pop3_client_command() while a reply is awaited");
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* The keyword names the command in errors (RFC 1939 section 3: three
	   or four characters); a SASL response is no keyword, and is secret. */
	size_t kw = strcspn(buf_cstr(&b), " ");
	bool keyword = kw >= 3 && kw <= 4 && strspn(b.data, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == kw;
	snprintf(c->verb, sizeof(c->verb), "%.*s", keyword ? (int)kw : 4, keyword ? b.data : "AUTH");
	buf_append_str(&b, "\r\n");
	io_write(c->io, b.data, b.len);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
	client_expect(c, cb, multiline);
}

void pop3_client_free(struct pop3_client **cp)
{
	struct pop3_client *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	/* Pending lookups report DNS_CANCELLED, which addr_cb ignores. */
	dns_resolver_free(&c->dns);
	io_free(&c->io);
	if (c->tls_ctx != NULL)
		SSL_CTX_free(c->tls_ctx);
	if (c->defer != NULL)
		event_free(c->defer);
	free(c->deferred_error);
	free(c->addrs);
	free(c->connect_error);
	buf_free(&c->status);
	buf_free(&c->body);
	free(c);
}
