/* The POP3 client connection: replies on the io object of a client_conn,
   one command at a time (see pop3_client.h). */
#include "cli/pop3_client.h"
#include "cli/client_conn.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "smtp/smtp_data.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum client_state {
	ST_CONNECTING, /* resolution, connection, implicit TLS (client_conn) */
	ST_TLS,        /* the handshake after STLS */
	ST_STATUS,     /* waiting for a status line */
	ST_BODY,       /* reading a multi-line body */
	ST_IDLE,       /* no command waiting */
	ST_DEAD,
};

struct pop3_client {
	void *ctx;
	pop3_client_fail_callback *fail;
	struct client_conn *conn;
	enum client_state state;
	pop3_client_reply_callback *reply_cb;
	void (*tls_done)(struct pop3_client *c, void *ctx);
	char verb[16]; /* of the command waiting, for errors */
	bool multiline;
	struct buf status, body;
	struct smtp_data_scanner scanner;
};

static void client_event(struct client_conn *conn, enum io_event event, void *ctx);

static void client_failed(struct client_conn *conn, const char *error, void *ctx)
{
	struct pop3_client *c = ctx;
	c->state = ST_DEAD;
	c->fail(c, error, c->ctx);
}

struct pop3_client *pop3_client_connect(struct event_base *base, const struct client_conn_settings *settings,
					pop3_client_reply_callback *greeting, pop3_client_fail_callback *fail,
					void *ctx)
{
	struct pop3_client *c = xcalloc(1, sizeof(*c));
	c->ctx = ctx;
	c->fail = fail;
	c->reply_cb = greeting;
	snprintf(c->verb, sizeof(c->verb), "greeting");
	c->state = ST_CONNECTING;
	c->conn = client_conn_new(base, settings, client_event, client_failed, c);
	return c;
}

void pop3_client_start_tls(struct pop3_client *c, void (*done)(struct pop3_client *c, void *ctx))
{
	if (c->state == ST_DEAD)
		return;
	c->tls_done = done;
	c->state = ST_TLS;
	client_conn_start_tls(c->conn);
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
	int rc = client_conn_read_line(c->conn, POP3_CLIENT_LINE_MAX, "after", c->verb, &line, &len);
	if (rc <= 0)
		return false;
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
	size_t len = io_input_peek(client_conn_io(c->conn), &data);
	if (len == 0)
		return false;
	bool done;
	size_t used = smtp_data_scan(&c->scanner, data, len, &c->body, &done);
	io_input_drain(client_conn_io(c->conn), used);
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

static void client_event(struct client_conn *conn, enum io_event event, void *ctx)
{
	struct pop3_client *c = ctx;
	switch (event) {
	case IO_EVENT_CONNECTED: /* with POP3S after the handshake */
		client_expect(c, c->reply_cb, false);
		return;
	case IO_EVENT_TLS_DONE: {
		void (*done)(struct pop3_client *, void *) = c->tls_done;
		c->tls_done = NULL;
		c->state = ST_IDLE;
		done(c, c->ctx);
		return;
	}
	case IO_EVENT_INPUT:
		client_input(c);
		return;
	case IO_EVENT_TIMEOUT:
	case IO_EVENT_EOF:
	case IO_EVENT_ERROR:
		client_conn_fail_event(conn, event, c->verb);
		return;
	case IO_EVENT_DRAINED:
	case IO_EVENT_CLOSED:
		return;
	}
}

/* ---- commands ---- */

void pop3_client_command(struct pop3_client *c, bool multiline, pop3_client_reply_callback *cb,
			 const char *fmt, ...)
{
	if (c->state == ST_DEAD)
		return; /* the fail callback came or comes */
	if (c->state != ST_IDLE)
		log_panic("pop3_client_command() while a reply is awaited");
	/* The keyword names the command in errors (RFC 1939 section 3: three
	   or four characters); a SASL response is no keyword, and is secret. */
	size_t kw = strcspn(fmt, " ");
	bool keyword = kw >= 3 && kw <= 4 && strspn(fmt, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == kw;
	snprintf(c->verb, sizeof(c->verb), "%.*s", keyword ? (int)kw : 4, keyword ? fmt : "AUTH");
	va_list ap;
	va_start(ap, fmt);
	client_conn_vsend(c->conn, "", fmt, ap);
	va_end(ap);
	client_expect(c, cb, multiline);
}

void pop3_client_free(struct pop3_client **cp)
{
	struct pop3_client *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	client_conn_free(&c->conn);
	buf_free(&c->status);
	buf_free(&c->body);
	free(c);
}
