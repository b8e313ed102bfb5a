/* The IMAP client connection: whole responses with their literals, read
   from the io object of a client_conn, and their parsing (see
   imap_client.h). */
#include "cli/imap_client.h"
#include "cli/client_conn.h"
#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum client_state {
	ST_CONNECTING, /* resolution, connection, implicit TLS (client_conn) */
	ST_TLS,        /* the handshake after STARTTLS */
	ST_GREETING,
	ST_READY, /* reading responses */
	ST_DEAD,
};

struct imap_client {
	struct imap_client_settings set;
	void *ctx;
	imap_client_response_callback *greeting, *untagged, *cmd_cb;
	imap_client_fail_callback *fail;
	struct client_conn *conn;
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
};

static void client_event(struct client_conn *conn, enum io_event event, void *ctx);

static void client_failed(struct client_conn *conn, const char *error, void *ctx)
{
	struct imap_client *c = ctx;
	c->state = ST_DEAD;
	c->fail(c, error, c->ctx);
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

struct imap_client *imap_client_connect(struct event_base *base, const struct imap_client_settings *settings,
					imap_client_response_callback *greeting,
					imap_client_response_callback *untagged,
					imap_client_fail_callback *fail, void *ctx)
{
	struct imap_client *c = xcalloc(1, sizeof(*c));
	c->set = *settings;
	c->ctx = ctx;
	c->greeting = greeting;
	c->untagged = untagged;
	c->fail = fail;
	c->pool = pool_create(4096);
	snprintf(c->verb, sizeof(c->verb), "greeting");
	c->state = ST_CONNECTING;
	c->conn = client_conn_new(base, &settings->conn, client_event, client_failed, c);
	return c;
}

void imap_client_start_tls(struct imap_client *c, void (*done)(struct imap_client *c, void *ctx))
{
	if (c->state == ST_DEAD)
		return;
	c->tls_done = done;
	c->state = ST_TLS;
	client_conn_start_tls(c->conn);
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
		client_conn_fail(c->conn, "malformed response from the server during %s: %s", c->verb, shown);
		free(shown);
		return;
	}
	imap_client_response_callback *cb;
	if (c->state == ST_GREETING) {
		if (r.kind != IMAP_RESPONSE_STATUS || r.tagged) {
			client_conn_fail(c->conn, "malformed greeting from %s:%d", c->set.conn.host,
					 c->set.conn.port);
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
			client_conn_fail(c->conn, "unexpected continuation request from the server: %s",
					 r.text);
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
	int rc = client_conn_read_line(c->conn, IMAP_CLIENT_LINE_MAX, "during", c->verb, &line, &len);
	if (rc <= 0)
		return false;
	if (c->text.len + len > IMAP_CLIENT_RESPONSE_MAX) {
		client_conn_fail(
		    c->conn, "response too long from the server (over %d bytes outside literals) during %s",
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
		client_conn_fail(
		    c->conn, "the server sent a literal of %s bytes during %s, over the limit of %llu bytes",
		    size, c->verb, (unsigned long long)c->set.literal_max);
		return false;
	}
	if (c->nliterals == IMAP_CLIENT_LITERALS_MAX) {
		client_conn_fail(c->conn,
				 "too many literals in one response from the server (over %d) during %s",
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
		size_t len = io_input_peek(client_conn_io(c->conn), &data);
		if (len == 0)
			return false;
		if (len > c->literal_left)
			len = (size_t)c->literal_left;
		buf_append(lit, data, len);
		io_input_drain(client_conn_io(c->conn), len);
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

static void client_event(struct client_conn *conn, enum io_event event, void *ctx)
{
	struct imap_client *c = ctx;
	switch (event) {
	case IO_EVENT_CONNECTED: /* with IMAPS after the handshake */
		c->state = ST_GREETING;
		client_input(c); /* what came with the handshake's last record */
		return;
	case IO_EVENT_TLS_DONE: {
		void (*done)(struct imap_client *, void *) = c->tls_done;
		c->tls_done = NULL;
		c->state = ST_READY;
		done(c, c->ctx);
		client_input(c);
		return;
	}
	case IO_EVENT_INPUT:
		client_input(c);
		return;
	case IO_EVENT_EOF:
		if (c->bye != NULL) {
			client_conn_fail(conn, "connection closed by the server during %s: %s", c->verb,
					 c->bye);
			return;
		}
		/* fall through */
	case IO_EVENT_TIMEOUT:
	case IO_EVENT_ERROR:
		client_conn_fail_event(conn, event, c->verb);
		return;
	case IO_EVENT_DRAINED:
	case IO_EVENT_CLOSED:
		return;
	}
}

/* ---- commands ---- */

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
	client_conn_vsend(c->conn, prefix, fmt, ap);
	va_end(ap);
	free(prefix);
}

void imap_client_continue(struct imap_client *c, const char *fmt, ...)
{
	if (c->state == ST_DEAD)
		return;
	va_list ap;
	va_start(ap, fmt);
	client_conn_vsend(c->conn, "", fmt, ap);
	va_end(ap);
}

void imap_client_set_timeout(struct imap_client *c, int seconds)
{
	client_conn_set_timeout(c->conn, seconds);
}

void imap_client_free(struct imap_client **cp)
{
	struct imap_client *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	client_conn_free(&c->conn);
	client_response_reset(c);
	pool_destroy(&c->pool);
	buf_free(&c->text);
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
