/* The IMAP client connection: resolution, connection, TLS, whole
   responses with their literals, and their parsing (see imap_client.h). */
#include "cli/imap_client.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/event.h>
#include <openssl/x509.h>

enum client_state {
	ST_RESOLVING,
	ST_CONNECTING,
	ST_TLS, /* handshake (implicit TLS or after STARTTLS) */
	ST_GREETING,
	ST_READY, /* reading responses */
	ST_DEAD,
};

struct imap_client {
	struct event_base *base;
	struct imap_client_settings set;
	void *ctx;
	imap_client_response_callback *greeting, *untagged, *cmd_cb;
	imap_client_fail_callback *fail;
	struct dns_resolver *dns;
	struct dns_addr *addrs;
	size_t naddrs, ai;
	char *connect_error; /* the last address's failure */
	struct io *io;
	SSL_CTX *tls_ctx;
	enum client_state state;
	void (*tls_done)(struct imap_client *c, void *ctx);
	unsigned tag_seq;
	char tag[16];  /* of the command waiting, "" when none */
	char verb[24]; /* of the command waiting, for errors */
	/* The response being read: its text (lines joined, literals left as
	   their {n} announcements) and the literals in order. */
	struct buf text;
	struct buf literals[IMAP_CLIENT_LITERALS_MAX];
	size_t nliterals;
	uint64_t literal_left, literal_total;
	bool in_literal;
	struct pool *pool; /* the parsed values of one response */
	char *bye;         /* the text of an untagged BYE, for the error at EOF */
	struct event *defer;
	char *deferred_error;
};

static void client_io_cb(struct io *io, enum io_event event, void *ctx);

/* ---- failures ---- */

static void client_fail(struct imap_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void client_fail(struct imap_client *c, const char *fmt, ...)
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
	struct imap_client *c = arg;
	client_fail(c, "%s", c->deferred_error);
}

/* Reports from the loop, not from inside the API call that found it. */
static void client_fail_later(struct imap_client *c, char *error)
{
	free(c->deferred_error);
	c->deferred_error = error;
	if (c->defer == NULL)
		c->defer = evtimer_new(c->base, defer_cb, c);
	struct timeval tv = {0, 0};
	evtimer_add(c->defer, &tv);
}

/* Server text in an error message: printable ASCII, at most 200 bytes. */
static char *printable(const char *s, size_t len)
{
	size_t n = len > 200 ? 200 : len;
	char *out = xmalloc(n + 4);
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
	strcpy(out + n, len > n ? "..." : "");
	return out;
}

/* ---- connection ---- */

static void client_try_addr(struct imap_client *c)
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

static void client_connect_failed(struct imap_client *c)
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
	struct imap_client *c = ctx;
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

struct imap_client *imap_client_connect(struct event_base *base, const struct imap_client_settings *settings,
					imap_client_response_callback *greeting,
					imap_client_response_callback *untagged,
					imap_client_fail_callback *fail, void *ctx)
{
	struct imap_client *c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->set = *settings;
	c->ctx = ctx;
	c->greeting = greeting;
	c->untagged = untagged;
	c->fail = fail;
	c->pool = pool_create(4096);
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

static void client_tls_start(struct imap_client *c)
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

void imap_client_start_tls(struct imap_client *c, void (*done)(struct imap_client *c, void *ctx))
{
	if (c->state == ST_DEAD)
		return;
	c->tls_done = done;
	client_tls_start(c);
}

static void client_tls_failed(struct imap_client *c, enum io_event event)
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

/* ---- parsing (RFC 3501 section 9, leniently: values separated by any
   number of spaces) ---- */

struct parser {
	struct imap_client *c;
	const char *p, *end;
	size_t next_literal;
	int depth;
};

#define PARSE_DEPTH_MAX 32

static bool is_atom_end(char ch)
{
	return ch == ' ' || ch == '(' || ch == ')' || ch == '"' || ch == '{';
}

static void skip_spaces(struct parser *ps)
{
	while (ps->p < ps->end && *ps->p == ' ')
		ps->p++;
}

/* An atom; "[...]" inside it is taken whole, spaces and parentheses
   included (BODY[HEADER.FIELDS (A B)], response codes). */
static int parse_atom(struct parser *ps, struct imap_value *v)
{
	const char *start = ps->p;
	int brackets = 0;
	while (ps->p < ps->end && (brackets > 0 || !is_atom_end(*ps->p))) {
		if (*ps->p == '[')
			brackets++;
		else if (*ps->p == ']' && brackets > 0)
			brackets--;
		ps->p++;
	}
	if (ps->p == start || brackets > 0)
		return -1;
	size_t len = (size_t)(ps->p - start);
	v->data = pool_strndup(ps->c->pool, start, len);
	v->len = len;
	v->type = len == 3 && strncasecmp(start, "NIL", 3) == 0 ? IMAP_VALUE_NIL : IMAP_VALUE_ATOM;
	return 0;
}

static int parse_quoted(struct parser *ps, struct imap_value *v)
{
	struct buf b = BUF_INIT;
	ps->p++;
	while (ps->p < ps->end && *ps->p != '"') {
		if (*ps->p == '\\' && ps->p + 1 < ps->end)
			ps->p++;
		buf_append_char(&b, *ps->p++);
	}
	if (ps->p >= ps->end) {
		buf_free(&b);
		return -1;
	}
	ps->p++;
	v->type = IMAP_VALUE_STRING;
	v->len = b.len;
	v->data = pool_memdup(ps->c->pool, buf_cstr(&b), b.len + 1);
	buf_free(&b);
	return 0;
}

/* "{n}" or "{n+}" stands for the next literal read with the response. */
static int parse_literal(struct parser *ps, struct imap_value *v)
{
	const char *close = memchr(ps->p, '}', (size_t)(ps->end - ps->p));
	if (close == NULL || ps->next_literal >= ps->c->nliterals)
		return -1;
	const struct buf *lit = &ps->c->literals[ps->next_literal++];
	ps->p = close + 1;
	v->type = IMAP_VALUE_STRING;
	v->data = buf_cstr(lit);
	v->len = lit->len;
	return 0;
}

static int parse_value(struct parser *ps, struct imap_value *v);

/* Values up to the end or a ")" (not consumed). */
static int parse_values(struct parser *ps, const struct imap_value **items_r, size_t *count_r)
{
	struct imap_value *items = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;
	for (;;) {
		skip_spaces(ps);
		if (ps->p >= ps->end || *ps->p == ')')
			break;
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			items = xreallocarray(items, cap, sizeof(*items));
		}
		if ((rc = parse_value(ps, &items[count])) < 0)
			break;
		count++;
	}
	*items_r = count > 0 ? pool_memdup(ps->c->pool, items, count * sizeof(*items)) : NULL;
	*count_r = count;
	free(items);
	return rc;
}

static int parse_value(struct parser *ps, struct imap_value *v)
{
	memset(v, 0, sizeof(*v));
	if (*ps->p == '"')
		return parse_quoted(ps, v);
	if (*ps->p == '{')
		return parse_literal(ps, v);
	if (*ps->p != '(')
		return parse_atom(ps, v);
	if (++ps->depth > PARSE_DEPTH_MAX)
		return -1;
	ps->p++;
	v->type = IMAP_VALUE_LIST;
	if (parse_values(ps, &v->items, &v->count) < 0 || ps->p >= ps->end || *ps->p != ')')
		return -1;
	ps->p++;
	ps->depth--;
	return 0;
}

/* resp-text (RFC 3501 9): ["[" resp-text-code "]" SP] text */
static int parse_resp_text(struct parser *ps, struct imap_response *r)
{
	skip_spaces(ps);
	if (ps->p < ps->end && *ps->p == '[') {
		const char *close = memchr(ps->p, ']', (size_t)(ps->end - ps->p));
		if (close == NULL)
			return -1;
		r->code = pool_strndup(ps->c->pool, ps->p + 1, (size_t)(close - ps->p - 1));
		ps->p = close + 1;
		skip_spaces(ps);
	}
	r->text = pool_strndup(ps->c->pool, ps->p, (size_t)(ps->end - ps->p));
	return 0;
}

static bool is_status(const char *name)
{
	static const char *const names[] = {"OK", "NO", "BAD", "BYE", "PREAUTH"};
	for (size_t i = 0; i < N_ELEMENTS(names); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

static char *upper_word(struct parser *ps)
{
	const char *start = ps->p;
	while (ps->p < ps->end && *ps->p != ' ')
		ps->p++;
	char *w = pool_strndup(ps->c->pool, start, (size_t)(ps->p - start));
	for (char *q = w; *q != '\0'; q++)
		*q = (char)toupper((unsigned char)*q);
	return w;
}

/* The response in c->text and c->literals: 0, or -1 when malformed. */
static int parse_response(struct imap_client *c, struct imap_response *r)
{
	struct parser ps = {.c = c, .p = c->text.data, .end = c->text.data + c->text.len};
	memset(r, 0, sizeof(*r));
	if (c->text.len == 0 || memchr(c->text.data, '\0', c->text.len) != NULL)
		return -1;
	char *tag = upper_word(&ps);
	skip_spaces(&ps);
	if (strcmp(tag, "+") == 0) {
		r->kind = IMAP_RESPONSE_CONTINUE;
		r->text = pool_strndup(c->pool, ps.p, (size_t)(ps.end - ps.p));
		return 0;
	}
	r->tagged = strcmp(tag, "*") != 0;
	if (r->tagged && (c->tag[0] == '\0' || strcasecmp(tag, c->tag) != 0))
		return -1; /* not the tag of the command waiting */
	if (!r->tagged && ps.p < ps.end && isdigit((unsigned char)*ps.p)) {
		char *end;
		errno = 0;
		unsigned long n = strtoul(ps.p, &end, 10);
		if (errno != 0 || n > UINT32_MAX || end == ps.p || (end < ps.end && *end != ' '))
			return -1;
		r->has_number = true;
		r->number = (uint32_t)n;
		ps.p = end;
		skip_spaces(&ps);
	}
	r->name = upper_word(&ps);
	if (r->name[0] == '\0')
		return -1;
	if (is_status(r->name) && !r->has_number) {
		r->kind = IMAP_RESPONSE_STATUS;
		if (r->tagged && strcmp(r->name, "BYE") == 0)
			return -1;
		return parse_resp_text(&ps, r);
	}
	if (r->tagged)
		return -1;
	r->kind = IMAP_RESPONSE_DATA;
	if (parse_values(&ps, &r->args, &r->nargs) < 0 || ps.p < ps.end)
		return -1; /* an unbalanced ")" stops parse_values early */
	return 0;
}

/* ---- reading responses ---- */

static void client_dispatch(struct imap_client *c)
{
	struct imap_response r;
	if (parse_response(c, &r) < 0) {
		char *shown = printable(c->text.data, c->text.len);
		client_fail(c, "malformed response from the server during %s: %s", c->verb, shown);
		free(shown);
		return;
	}
	imap_client_response_callback *cb;
	if (c->state == ST_GREETING) {
		if (r.kind != IMAP_RESPONSE_STATUS || r.tagged) {
			client_fail(c, "malformed greeting from %s:%d", c->set.host, c->set.port);
			return;
		}
		c->state = ST_READY;
		cb = c->greeting;
	} else if (r.tagged) {
		cb = c->cmd_cb;
		c->tag[0] = '\0';
		c->cmd_cb = NULL;
	} else if (r.kind == IMAP_RESPONSE_CONTINUE) {
		if (c->cmd_cb == NULL) {
			client_fail(c, "unexpected continuation request from the server: %s", r.text);
			return;
		}
		cb = c->cmd_cb;
	} else {
		if (r.kind == IMAP_RESPONSE_STATUS && strcmp(r.name, "BYE") == 0) {
			free(c->bye);
			c->bye = printable(r.text, strlen(r.text));
		}
		cb = c->untagged;
	}
	cb(c, &r, c->ctx);
}

static void client_response_reset(struct imap_client *c)
{
	buf_reset(&c->text);
	for (size_t i = 0; i < c->nliterals; i++)
		buf_free(&c->literals[i]);
	c->nliterals = 0;
	c->literal_total = 0;
	pool_clear(c->pool);
}

/* A line ending in "{n}" or "{n+}" (RFC 3501 4.3, RFC 7888): 1 with n,
   0 when it announces no literal, -1 for a number that does not fit. */
static int literal_announced(const char *line, size_t len, uint64_t *n_r)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	size_t end = len - 1;
	if (line[end - 1] == '+')
		end--;
	size_t start = end;
	while (start > 0 && isdigit((unsigned char)line[start - 1]))
		start--;
	if (start == end || start == 0 || line[start - 1] != '{')
		return 0;
	if (end - start > 19)
		return -1;
	*n_r = strtoull(line + start, NULL, 10);
	return 1;
}

/* Returns false when no more can be done with what is buffered. */
static bool client_read_line(struct imap_client *c)
{
	char *line;
	size_t len;
	int rc = io_read_line(c->io, IMAP_CLIENT_LINE_MAX, &line, &len);
	if (rc == 0)
		return false;
	if (rc < 0) {
		client_fail(c, "line too long from the server (over %d bytes) during %s",
			    IMAP_CLIENT_LINE_MAX, c->verb);
		return false;
	}
	if (c->text.len + len > IMAP_CLIENT_RESPONSE_MAX) {
		client_fail(c, "response too long from the server (over %d bytes outside literals) during %s",
			    IMAP_CLIENT_RESPONSE_MAX, c->verb);
		return false;
	}
	buf_append(&c->text, line, len);
	uint64_t n = 0;
	int lit = literal_announced(line, len, &n);
	if (lit == 0) {
		client_dispatch(c);
		if (c->state != ST_DEAD)
			client_response_reset(c);
		return true;
	}
	if (lit < 0 || n > c->set.literal_max || c->literal_total + n > c->set.literal_max) {
		char size[32] = "too many";
		if (lit > 0)
			snprintf(size, sizeof(size), "%llu", (unsigned long long)n);
		client_fail(c,
			    "the server sent a literal of %s bytes during %s, over the limit of %llu bytes",
			    size, c->verb, (unsigned long long)c->set.literal_max);
		return false;
	}
	if (c->nliterals == IMAP_CLIENT_LITERALS_MAX) {
		client_fail(c, "too many literals in one response from the server (over %d) during %s",
			    IMAP_CLIENT_LITERALS_MAX, c->verb);
		return false;
	}
	buf_reserve(&c->literals[c->nliterals], (size_t)n);
	c->nliterals++;
	c->literal_total += n;
	c->literal_left = n;
	c->in_literal = true;
	return true;
}

static bool client_read_literal(struct imap_client *c)
{
	struct buf *lit = &c->literals[c->nliterals - 1];
	while (c->literal_left > 0) {
		const char *data;
		size_t len = io_input_peek(c->io, &data);
		if (len == 0)
			return false;
		if (len > c->literal_left)
			len = (size_t)c->literal_left;
		buf_append(lit, data, len);
		io_input_drain(c->io, len);
		c->literal_left -= len;
	}
	c->in_literal = false;
	return true;
}

static void client_input(struct imap_client *c)
{
	bool more = true;
	while (more && (c->state == ST_GREETING || c->state == ST_READY))
		more = c->in_literal ? client_read_literal(c) : client_read_line(c);
}

static void client_io_cb(struct io *io, enum io_event event, void *ctx)
{
	struct imap_client *c = ctx;
	switch (event) {
	case IO_EVENT_CONNECTED:
		if (c->set.implicit_tls)
			client_tls_start(c);
		else
			c->state = ST_GREETING;
		return;
	case IO_EVENT_TLS_DONE:
		if (c->tls_done != NULL) {
			void (*done)(struct imap_client *, void *) = c->tls_done;
			c->tls_done = NULL;
			c->state = ST_READY;
			done(c, c->ctx);
		} else {
			c->state = ST_GREETING; /* IMAPS: the greeting */
		}
		if (c->state != ST_DEAD && io_input_length(c->io) > 0)
			client_input(c);
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
		client_fail(c, "connection closed by the server during %s%s%s", c->verb,
			    c->bye != NULL ? ": " : "", c->bye != NULL ? c->bye : "");
	else if (event == IO_EVENT_TIMEOUT)
		client_fail(c, "no answer from %s:%d in time during %s", c->set.host, c->set.port, c->verb);
	else
		client_fail(c, "connection to %s:%d failed during %s: %s", c->set.host, c->set.port, c->verb,
			    io_error(c->io));
}

/* ---- commands ---- */

static void client_send(struct imap_client *c, const char *prefix, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, prefix);
	buf_vprintf(&b, fmt, ap);
	buf_append_str(&b, "\r\n");
	io_write(c->io, b.data, b.len);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
}

void imap_client_command(struct imap_client *c, imap_client_response_callback *cb, const char *fmt, ...)
{
	if (c->state == ST_DEAD)
		return; /* the fail callback came or comes */
	if (c->state != ST_READY || c->tag[0] != '\0')
		log_panic("imap_client_command() while a command waits");
	snprintf(c->tag, sizeof(c->tag), "F%u", ++c->tag_seq);
	c->cmd_cb = cb;
	/* The command's name for errors: "FETCH", "UID FETCH" (never its
	   arguments, which may be a password). */
	size_t kw = strcspn(fmt, " ");
	if (kw == 3 && strncmp(fmt, "UID", 3) == 0)
		kw += 1 + strcspn(fmt + 4, " ");
	snprintf(c->verb, sizeof(c->verb), "%.*s", (int)kw, fmt);
	char *prefix = xasprintf("%s ", c->tag);
	va_list ap;
	va_start(ap, fmt);
	client_send(c, prefix, fmt, ap);
	va_end(ap);
	free(prefix);
}

void imap_client_continue(struct imap_client *c, const char *fmt, ...)
{
	if (c->state == ST_DEAD)
		return;
	va_list ap;
	va_start(ap, fmt);
	client_send(c, "", fmt, ap);
	va_end(ap);
}

void imap_client_set_timeout(struct imap_client *c, int seconds)
{
	if (c->io != NULL)
		io_set_timeout(c->io, seconds);
}

void imap_client_free(struct imap_client **cp)
{
	struct imap_client *c = *cp;
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
	client_response_reset(c);
	pool_destroy(&c->pool);
	buf_free(&c->text);
	free(c->deferred_error);
	free(c->addrs);
	free(c->connect_error);
	free(c->bye);
	free(c);
}

/* ---- reading values ---- */

const struct imap_value *imap_value_item(const struct imap_value *list, const char *key)
{
	if (list == NULL || list->type != IMAP_VALUE_LIST)
		return NULL;
	for (size_t i = 0; i + 1 < list->count; i += 2)
		if (list->items[i].type == IMAP_VALUE_ATOM && strcasecmp(list->items[i].data, key) == 0)
			return &list->items[i + 1];
	return NULL;
}

int imap_value_uint32(const struct imap_value *v, uint32_t *n_r)
{
	if (v == NULL || v->type != IMAP_VALUE_ATOM || v->len == 0 || v->len > 10)
		return -1;
	uint64_t n = 0;
	for (size_t i = 0; i < v->len; i++) {
		if (!isdigit((unsigned char)v->data[i]))
			return -1;
		n = n * 10 + (uint64_t)(v->data[i] - '0');
	}
	if (n > UINT32_MAX)
		return -1;
	*n_r = (uint32_t)n;
	return 0;
}
