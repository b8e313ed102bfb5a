/* `postoffice fetch`: a POP3 client (RFC 1939; CAPA RFC 2449, STLS RFC
   2595, AUTH PLAIN RFC 5034) that downloads into a local Maildir or mbox.  Blocking sockets and OpenSSL: one
   connection, one command at a time.  A message is deleted on the server only after it is on stable storage
   here; with --keep, the UIDLs already fetched are kept in a state file so that a rerun fetches only new
   mail. */
#include "cli/cli.h"
#include "delivery/delivery.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/tls.h"
#include "lib/xalloc.h"
#include "mime/base64.h"
#include "store/deliver.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#define FETCH_LINE_MAX 8192
#define FETCH_TIMEOUT 120

struct fetch_opts {
	char *host, *port;
	const char *user, *password_file, *maildir, *mbox, *state;
	bool tls, starttls, plain, insecure, keep;
};

struct pop3_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char in[16384];
	size_t len, pos;
};

static void fetch_usage(FILE *out)
{
	fprintf(out, "usage: postoffice fetch --server HOST:PORT --user USER (--maildir DIR | --mbox FILE)\n"
		     "                        [--starttls | --tls | --plain] [--keep] [--password-file F]\n\n"
		     "Downloads mail over POP3 into a local Maildir (new/) or mbox file.  Logs\n"
		     "in with AUTH PLAIN when CAPA offers SASL PLAIN (RFC 5034), else USER/PASS.\n"
		     "A message is deleted on the server only once it is on disk here.\n\n"
		     "  --server HOST:PORT  the POP3 server (port 110, or 995 with --tls)\n"
		     "  --starttls          upgrade with STLS (the default); --tls: implicit TLS (POP3S)\n"
		     "  --plain             no TLS at all (only sensible on loopback)\n"
		     "  --insecure          do not verify the server's certificate (never checked\n"
		     "                      for loopback addresses)\n"
		     "  --user USER         the login name, usually the address\n"
		     "  --password-file F   the password's file (first line); else it is prompted\n"
		     "  --maildir DIR       deliver into DIR/new (created when missing)\n"
		     "  --mbox FILE         append to FILE in mboxrd format\n"
		     "  --keep              leave the messages on the server; their UIDLs are kept in\n"
		     "                      the state file so that a rerun fetches only new ones\n"
		     "  --state FILE        the UIDL state file (default: DIR/.postoffice-fetch-USER\n"
		     "                      or FILE.postoffice-fetch-USER)\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "postoffice fetch: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return -1;
}

/* ---- connection ---- */

static int conn_open(struct pop3_conn *c, const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return fail("cannot resolve %s: %s", host, gai_strerror(rc));
	c->fd = -1;
	for (ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (c->fd >= 0 && connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			close(c->fd);
			c->fd = -1;
		}
	}
	freeaddrinfo(res);
	if (c->fd < 0)
		return fail("cannot connect to %s:%s: %s", host, port, strerror(errno));
	struct timeval tv = {FETCH_TIMEOUT, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
}

static bool is_loopback(const char *host)
{
	return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

static int conn_tls(struct pop3_conn *c, const struct fetch_opts *o)
{
	bool verify = !o->insecure && !is_loopback(o->host);
	char *error = NULL;
	c->ctx = tls_client_ctx(verify, &error);
	if (c->ctx == NULL) {
		fail("TLS: %s", error);
		free(error);
		return -1;
	}
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, o->host);
	if (verify) {
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set1_host(c->ssl, o->host);
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	}
	int r = SSL_connect(c->ssl);
	if (r != 1) {
		/* The OpenSSL error queue is empty when the peer just closed
		   or spoke plain text: say so instead of "error:00000000". */
		unsigned long e = ERR_get_error();
		int saved = errno;
		char tmp[256];
		if (e != 0)
			ERR_error_string_n(e, tmp, sizeof(tmp));
		else if (SSL_get_error(c->ssl, r) == SSL_ERROR_SYSCALL && saved != 0)
			snprintf(tmp, sizeof(tmp), "%s", strerror(saved));
		else
			snprintf(tmp, sizeof(tmp), "the server closed the connection (is it a TLS port?)");
		return fail("TLS handshake with %s:%s failed: %s", o->host, o->port, tmp);
	}
	return 0;
}

static void conn_close(struct pop3_conn *c)
{
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->ctx != NULL)
		SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
}

static ssize_t conn_read(struct pop3_conn *c, void *p, size_t n)
{
	if (c->ssl != NULL) {
		int r = SSL_read(c->ssl, p, (int)n);
		return r > 0 ? r : -1;
	}
	ssize_t r;
	do
		r = read(c->fd, p, n);
	while (r < 0 && errno == EINTR);
	return r > 0 ? r : -1;
}

static int conn_write(struct pop3_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int conn_write(struct pop3_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	size_t len = strlen(text);
	int rc = c->ssl != NULL ? (SSL_write(c->ssl, text, (int)len) == (int)len ? 0 : -1)
				: fs_write_all(c->fd, text, len);
	explicit_bzero(text, len);
	free(text);
	return rc < 0 ? fail("connection lost while sending") : 0;
}

/* One line without CRLF into line (NUL-terminated). */
static int conn_line(struct pop3_conn *c, struct buf *line)
{
	buf_reset(line);
	for (;;) {
		if (c->pos == c->len) {
			ssize_t n = conn_read(c, c->in, sizeof(c->in));
			if (n <= 0)
				return fail("connection closed by the server");
			c->len = (size_t)n;
			c->pos = 0;
		}
		char *nl = memchr(c->in + c->pos, '\n', c->len - c->pos);
		size_t take = nl ? (size_t)(nl - (c->in + c->pos)) + 1 : c->len - c->pos;
		buf_append(line, c->in + c->pos, take);
		c->pos += take;
		if (nl != NULL)
			break;
		if (line->len > FETCH_LINE_MAX * 64)
			return fail("line too long from the server");
	}
	while (line->len > 0 && (line->data[line->len - 1] == '\n' || line->data[line->len - 1] == '\r'))
		line->len--;
	line->data[line->len] = '\0';
	return 0;
}

/* Reads a status line; 0 for +OK, -1 (after printing it) for -ERR. */
static int conn_status(struct pop3_conn *c, const char *what)
{
	struct buf line = BUF_INIT;
	int rc = conn_line(c, &line);
	if (rc == 0 && strncmp(buf_cstr(&line), "+OK", 3) != 0)
		rc = fail("%s: %s", what, buf_cstr(&line));
	buf_free(&line);
	return rc;
}

/* A multi-line body, un-byte-stuffed, lines ending in CRLF. */
static int conn_multiline(struct pop3_conn *c, struct buf *out)
{
	struct buf line = BUF_INIT;
	buf_reset(out);
	int rc;
	while ((rc = conn_line(c, &line)) == 0) {
		const char *p = buf_cstr(&line);
		if (!strcmp(p, "."))
			break;
		if (p[0] == '.')
			p++;
		buf_append(out, p, line.len - (size_t)(p - line.data));
		buf_append(out, "\r\n", 2);
	}
	buf_free(&line);
	return rc;
}

/* ---- local storage ---- */

/* Into DIR/new through delivery/delivery.h: written in DIR/tmp,
   fdatasynced, linked into new/ and new/ fsynced. */
static int deliver_maildir_file(const char *dir, const struct buf *msg)
{
	char *tmp = xasprintf("%s/tmp", dir);
	struct delivery_settings set = {.tmp_dir = tmp, .mode = 0600};
	char *error = NULL;
	struct delivery *d = delivery_begin(&set, &error);
	int rc = -1;
	if (d != NULL) {
		delivery_append(d, msg->data, msg->len);
		delivery_add_maildir(d, dir);
		rc = delivery_commit(d, &error);
		delivery_free(&d);
	}
	if (rc < 0) {
		fail("%s", error);
		free(error);
	}
	free(tmp);
	return rc;
}

/* The envelope sender for the mbox "From " line: the Return-Path. */
static char *mbox_sender(const struct buf *msg)
{
	const char *p = msg->data;
	if (strncasecmp(p, "Return-Path:", 12) == 0) {
		const char *lt = strchr(p, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		const char *eol = strchr(p, '\n');
		if (gt != NULL && gt - lt > 1 && (eol == NULL || gt < eol))
			return xstrndup(lt + 1, (size_t)(gt - lt - 1));
	}
	return xstrdup("MAILER-DAEMON");
}

/* mboxrd: LF line ends, ">" before lines matching ^>*From . */
static int deliver_mbox_file(const char *path, const struct buf *msg)
{
	struct buf out = BUF_INIT;
	char *sender = mbox_sender(msg);
	time_t now = time(NULL);
	char date[64];
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", gmtime(&now));
	buf_printf(&out, "From %s %s\n", sender, date);
	free(sender);
	const char *p = msg->data, *end = msg->data + msg->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		const char *q = p;
		while (q < stop && *q == '>')
			q++;
		if ((size_t)(stop - q) >= 5 && memcmp(q, "From ", 5) == 0)
			buf_append_char(&out, '>');
		size_t len = (size_t)(stop - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		buf_append(&out, p, len);
		buf_append_char(&out, '\n');
		p = nl ? nl + 1 : end;
	}
	buf_append_char(&out, '\n');
	char *error = NULL;
	int rc = fs_append_durable(path, out.data, out.len, 0600, &error);
	if (rc < 0) {
		fail("%s", error);
		free(error);
	}
	buf_free(&out);
	return rc;
}

/* ---- UIDL state ---- */

struct uidl_state {
	char **ids;
	size_t count, cap;
};

static void state_add(struct uidl_state *st, const char *id)
{
	if (st->count == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 64;
		st->ids = xreallocarray(st->ids, st->cap, sizeof(char *));
	}
	st->ids[st->count++] = xstrdup(id);
}

static bool state_has(const struct uidl_state *st, const char *id)
{
	for (size_t i = 0; i < st->count; i++)
		if (!strcmp(st->ids[i], id))
			return true;
	return false;
}

static void state_load(struct uidl_state *st, const char *path)
{
	char *data = NULL, *error = NULL;
	if (fs_read_file(path, &data, NULL, &error) < 0) {
		free(error);
		return;
	}
	for (char *save = NULL, *tok = strtok_r(data, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
		state_add(st, tok);
	free(data);
}

static int state_save(const struct uidl_state *st, const char *path)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < st->count; i++)
		buf_printf(&b, "%s\n", st->ids[i]);
	char *error = NULL;
	int rc = fs_write_file_durable(path, b.data ? b.data : "", b.len, 0600, &error);
	if (rc < 0) {
		fail("%s", error);
		free(error);
	}
	buf_free(&b);
	return rc;
}

static void state_free(struct uidl_state *st)
{
	for (size_t i = 0; i < st->count; i++)
		free(st->ids[i]);
	free(st->ids);
}

/* ---- the session ---- */

struct server_msg {
	unsigned n;
	char *uidl;
};

/* What CAPA (RFC 2449) announced; all false when the server has no CAPA. */
struct pop3_caps {
	bool stls, sasl_plain;
};

static void capa_parse(const char *text, struct pop3_caps *caps)
{
	char *copy = xstrdup(text);
	for (char *save = NULL, *l = strtok_r(copy, "\r\n", &save); l != NULL;
	     l = strtok_r(NULL, "\r\n", &save)) {
		char *save2 = NULL, *tag = strtok_r(l, " ", &save2);
		if (tag == NULL)
			continue;
		if (!strcasecmp(tag, "STLS"))
			caps->stls = true;
		else if (!strcasecmp(tag, "SASL"))
			for (char *m = strtok_r(NULL, " ", &save2); m != NULL;
			     m = strtok_r(NULL, " ", &save2))
				caps->sasl_plain |= !strcasecmp(m, "PLAIN");
	}
	free(copy);
}

static int fetch_capa(struct pop3_conn *c, struct pop3_caps *caps)
{
	struct buf line = BUF_INIT, body = BUF_INIT;
	memset(caps, 0, sizeof(*caps));
	int rc = conn_write(c, "CAPA\r\n");
	if (rc == 0)
		rc = conn_line(c, &line);
	if (rc == 0 && strncmp(buf_cstr(&line), "+OK", 3) == 0) {
		rc = conn_multiline(c, &body);
		if (rc == 0)
			capa_parse(buf_cstr(&body), caps);
	}
	buf_free(&line);
	buf_free(&body);
	return rc;
}

/* AUTH PLAIN (RFC 5034, RFC 4616).  The initial response goes on the
   command line unless that would pass 255 octets (RFC 5034 section 4). */
static int fetch_auth_plain(struct pop3_conn *c, const struct fetch_opts *o, const char *password)
{
	struct buf raw = BUF_INIT, b64 = BUF_INIT, line = BUF_INIT;
	buf_append_char(&raw, '\0');
	buf_append_str(&raw, o->user);
	buf_append_char(&raw, '\0');
	buf_append_str(&raw, password);
	base64_encode(&b64, raw.data, raw.len);
	bool initial = strlen("AUTH PLAIN \r\n") + b64.len <= 255;
	int rc =
	    initial ? conn_write(c, "AUTH PLAIN %s\r\n", buf_cstr(&b64)) : conn_write(c, "AUTH PLAIN\r\n");
	if (rc == 0)
		rc = conn_line(c, &line);
	if (rc == 0 && !initial && line.data[0] == '+' && line.data[1] != 'O') {
		rc = conn_write(c, "%s\r\n", buf_cstr(&b64));
		if (rc == 0)
			rc = conn_line(c, &line);
	}
	if (rc == 0 && line.data[0] == '+' && line.data[1] != 'O') {
		/* Another challenge: PLAIN has only one step. */
		conn_write(c, "*\r\n");
		rc = fail("login failed: unexpected challenge to AUTH PLAIN");
	} else if (rc == 0 && strncmp(buf_cstr(&line), "+OK", 3) != 0) {
		rc = fail("login failed (AUTH PLAIN as %s): %s", o->user, buf_cstr(&line));
	}
	explicit_bzero(raw.data, raw.len);
	explicit_bzero(b64.data, b64.len);
	buf_free(&raw);
	buf_free(&b64);
	buf_free(&line);
	return rc;
}

static int fetch_login(struct pop3_conn *c, const struct fetch_opts *o, const char *password)
{
	struct pop3_caps caps;
	if (conn_status(c, "greeting") < 0)
		return -1;
	if (!o->tls && !o->plain) {
		if (conn_write(c, "STLS\r\n") < 0 ||
		    conn_status(c, "the server refused STLS (--tls for POP3S, --plain for none)") < 0 ||
		    conn_tls(c, o) < 0)
			return -1;
	}
	/* Capabilities are asked after TLS: those before it do not count
	   (RFC 2595 section 4). */
	if (fetch_capa(c, &caps) < 0)
		return -1;
	if (caps.sasl_plain)
		return fetch_auth_plain(c, o, password);
	if (conn_write(c, "USER %s\r\n", o->user) < 0 || conn_status(c, "USER refused") < 0)
		return -1;
	if (conn_write(c, "PASS %s\r\n", password) < 0 || conn_status(c, "login failed") < 0)
		return -1;
	return 0;
}

static int fetch_uidls(struct pop3_conn *c, struct server_msg **msgs_r, size_t *count_r)
{
	struct buf body = BUF_INIT;
	if (conn_write(c, "UIDL\r\n") < 0 || conn_status(c, "UIDL") < 0 || conn_multiline(c, &body) < 0) {
		buf_free(&body);
		return -1;
	}
	size_t count = 0, cap = 64;
	struct server_msg *msgs = xmalloc(cap * sizeof(*msgs));
	for (char *save = NULL, *tok = strtok_r(body.data ? body.data : (char *)"", "\r\n", &save);
	     tok != NULL; tok = strtok_r(NULL, "\r\n", &save)) {
		char id[128];
		unsigned n;
		if (sscanf(tok, "%u %127s", &n, id) != 2)
			continue;
		if (count == cap) {
			cap *= 2;
			msgs = xreallocarray(msgs, cap, sizeof(*msgs));
		}
		msgs[count].n = n;
		msgs[count].uidl = xstrdup(id);
		count++;
	}
	buf_free(&body);
	*msgs_r = msgs;
	*count_r = count;
	return 0;
}

static int fetch_run(struct pop3_conn *c, const struct fetch_opts *o, const char *password)
{
	struct server_msg *msgs = NULL;
	size_t count = 0, fetched = 0, deleted = 0;
	uint64_t bytes = 0;
	struct uidl_state seen = {0}, still = {0};
	struct buf msg = BUF_INIT;
	bool local_error = false;
	int rc = fetch_login(c, o, password);
	if (rc == 0)
		rc = fetch_uidls(c, &msgs, &count);
	if (rc == 0)
		state_load(&seen, o->state);
	bool had_state = seen.count > 0;
	for (size_t i = 0; i < count && rc == 0; i++) {
		if (state_has(&seen, msgs[i].uidl)) {
			/* Stored here by an earlier --keep run. */
			if (o->keep) {
				state_add(&still, msgs[i].uidl);
			} else if ((rc = conn_write(c, "DELE %u\r\n", msgs[i].n)) == 0 &&
				   (rc = conn_status(c, "DELE")) == 0) {
				deleted++;
			}
			continue;
		}
		rc = conn_write(c, "RETR %u\r\n", msgs[i].n);
		if (rc == 0)
			rc = conn_status(c, "RETR");
		if (rc == 0)
			rc = conn_multiline(c, &msg);
		if (rc == 0 && (o->maildir ? deliver_maildir_file(o->maildir, &msg)
					   : deliver_mbox_file(o->mbox, &msg)) < 0)
			local_error = true;
		if (rc < 0 || local_error)
			break;
		fetched++;
		bytes += msg.len;
		if (o->keep) {
			/* Remember it at once: an interrupted run does not fetch it twice. */
			state_add(&still, msgs[i].uidl);
			state_add(&seen, msgs[i].uidl);
			rc = state_save(&seen, o->state);
		} else if ((rc = conn_write(c, "DELE %u\r\n", msgs[i].n)) == 0 &&
			   (rc = conn_status(c, "DELE")) == 0) {
			/* Safe: the message is on stable storage here, and the
			   server deletes only after QUIT. */
			deleted++;
		}
	}
	if (rc == 0 && !local_error && (o->keep || had_state))
		rc = state_save(&still, o->state); /* forget what left the server */
	if (rc == 0)
		rc = conn_write(c, "QUIT\r\n") == 0 ? conn_status(c, "QUIT") : -1;
	if (local_error) {
		/* QUIT still commits the deletions of the messages stored
		   before the failure, so a rerun does not fetch them twice. */
		fprintf(stderr, "postoffice fetch: stopped after %zu messages; the rest stay on the server\n",
			fetched);
		rc = -1;
	}
	if (rc == 0)
		printf("fetched %zu messages (%llu bytes), deleted %zu on the server\n", fetched,
		       (unsigned long long)bytes, deleted);
	for (size_t i = 0; i < count; i++)
		free(msgs[i].uidl);
	free(msgs);
	state_free(&seen);
	state_free(&still);
	buf_free(&msg);
	return rc;
}

static int parse_server(const char *arg, struct fetch_opts *o)
{
	const char *colon = strrchr(arg, ':');
	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');
		if (close == NULL)
			return -1;
		o->host = xstrndup(arg + 1, (size_t)(close - arg - 1));
		o->port = xstrdup(close[1] == ':' ? close + 2 : "");
	} else if (colon != NULL) {
		o->host = xstrndup(arg, (size_t)(colon - arg));
		o->port = xstrdup(colon + 1);
	} else {
		o->host = xstrdup(arg);
		o->port = xstrdup("");
	}
	return o->host[0] ? 0 : -1;
}

static int fetch_prepare(struct fetch_opts *o, char **state_alloc)
{
	if (o->port[0] == '\0') {
		free(o->port);
		o->port = xstrdup(o->tls ? "995" : "110");
	}
	char *error = NULL;
	if (o->maildir != NULL) {
		static const char *const subs[] = {"cur", "new", "tmp"};
		for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
			char *p = xasprintf("%s/%s", o->maildir, subs[i]);
			int rc = fs_mkdir_p(p, 0700, &error);
			free(p);
			if (rc < 0) {
				fail("%s", error);
				free(error);
				return -1;
			}
		}
	}
	if (o->state == NULL) {
		*state_alloc = o->maildir ? xasprintf("%s/.postoffice-fetch-%s", o->maildir, o->user)
					  : xasprintf("%s.postoffice-fetch-%s", o->mbox, o->user);
		o->state = *state_alloc;
	}
	return 0;
}

static char *fetch_password(const struct fetch_opts *o)
{
	if (o->password_file == NULL)
		return cli_read_password("password: ", 0);
	char *data = NULL, *error = NULL;
	if (fs_read_file(o->password_file, &data, NULL, &error) < 0) {
		fail("%s", error);
		free(error);
		return NULL;
	}
	data[strcspn(data, "\r\n")] = '\0';
	return data;
}

static int fetch_cmd(struct config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"user", required_argument, NULL, 'u'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"maildir", required_argument, NULL, 'd'},
	    {"mbox", required_argument, NULL, 'm'},
	    {"state", required_argument, NULL, 'S'},
	    {"keep", no_argument, NULL, 'k'},
	    {"tls", no_argument, NULL, 'T'},
	    {"starttls", no_argument, NULL, 't'},
	    {"plain", no_argument, NULL, 'P'},
	    {"insecure", no_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0},
	};
	struct fetch_opts o = {0};
	const char *server = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'p':
			o.password_file = optarg;
			break;
		case 'd':
			o.maildir = optarg;
			break;
		case 'm':
			o.mbox = optarg;
			break;
		case 'S':
			o.state = optarg;
			break;
		case 'k':
			o.keep = true;
			break;
		case 'T':
			o.tls = true;
			break;
		case 't':
			o.starttls = true;
			break;
		case 'P':
			o.plain = true;
			break;
		case 'i':
			o.insecure = true;
			break;
		default:
			fetch_usage(stderr);
			return 2;
		}
	}
	if (server == NULL || o.user == NULL || (o.maildir == NULL) == (o.mbox == NULL) || optind != argc ||
	    (o.tls + o.starttls + o.plain) > 1) {
		fetch_usage(stderr);
		return 2;
	}
	for (const char *p = o.user; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			fail("--user must not hold control characters");
			return 2;
		}
	}
	if (parse_server(server, &o) < 0) {
		fail("bad --server %s (HOST:PORT)", server);
		free(o.host);
		free(o.port);
		return 2;
	}
	char *state_alloc = NULL;
	char *password = NULL;
	struct pop3_conn c = {.fd = -1};
	int rc = fetch_prepare(&o, &state_alloc);
	if (rc == 0 && (password = fetch_password(&o)) == NULL)
		rc = -1;
	if (rc == 0)
		rc = conn_open(&c, o.host, o.port);
	if (rc == 0 && o.tls)
		rc = conn_tls(&c, &o);
	if (rc == 0)
		rc = fetch_run(&c, &o, password);
	conn_close(&c);
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	free(state_alloc);
	free(o.host);
	free(o.port);
	return rc == 0 ? 0 : 1;
}

const struct cli_command cmd_fetch = {
    "fetch",
    "--server HOST:PORT --user USER (--maildir DIR | --mbox FILE) [--keep]",
    "download mail over POP3 into a Maildir or mbox",
    fetch_cmd,
    fetch_usage,
};
