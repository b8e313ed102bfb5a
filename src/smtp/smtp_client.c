/* SMTP client sessions: a state machine on the io object.  One session is
   set up (greeting, EHLO, STARTTLS, AUTH) and then carries any number of
   transactions; the queue runner reuses it for every message waiting for
   the same destination. */
#include "smtp/smtp_client.h"
#include "auth/sasl.h"
#include "dns/dns.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/tls.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

enum client_state {
	ST_CONNECTING,
	ST_TLS_IMPLICIT,
	ST_GREETING,
	ST_EHLO,
	ST_HELO,
	ST_STARTTLS,
	ST_TLS,
	ST_AUTH_PLAIN,
	ST_AUTH_LOGIN,      /* sent AUTH LOGIN, waiting for 334 Username */
	ST_AUTH_LOGIN_USER, /* sent the user, waiting for 334 Password */
	ST_AUTH_LOGIN_PASS, /* sent the password, waiting for 235 */
	ST_READY,
	ST_TXN,
	ST_DATA_SENT,
	ST_QUIT,
	ST_DEAD,
};

static const char *const state_stage[] = {
    "connect", "TLS handshake", "greeting", "EHLO", "HELO",      "STARTTLS",    "TLS handshake", "AUTH",
    "AUTH",    "AUTH",          "AUTH",     "idle", "MAIL FROM", "end of data", "QUIT",          "closed",
};

enum cmd_kind { CMD_RSET, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_BDAT };

struct client_cmd {
	enum cmd_kind kind;
	size_t rcpt;
};

struct smtp_client {
	struct event_base *base;
	struct io *io;
	struct smtp_client_settings set;
	enum client_state state;
	struct smtp_client_reply_parser parser;
	struct smtp_client_caps caps;
	bool did_tls, did_auth, need_rset;
	bool tls_failed; /* the STARTTLS handshake failed */
	smtp_client_callback *cb;
	void *ctx;
	int depth;
	bool free_pending;
	struct event *defer; /* a result reported from the loop */
	struct smtp_client_result pending;
	/* the transaction */
	struct smtp_client_msg *msg;
	struct client_cmd *cmds;
	size_t ncmds, nsent, nreplied;
	bool *accepted;
	size_t naccepted;
	char *mail_reply; /* MAIL FROM's failure, given to every recipient */
	char mail_enhanced[16];
	int mail_code;
	struct buf conv; /* 8-bit data converted to 7 bits */
	const char *data;
	size_t size;
	bool use_bdat, body_8bit;
};

/* Client contexts, made on first use: without checks (also DANE's), with
   the system CA store, and with the CA file of settings (the last one
   asked for). */
static SSL_CTX *tls_ctx_plain, *tls_ctx_verify, *tls_ctx_file;
static char *tls_ctx_file_path;

static void client_io_cb(struct io *io, enum io_event event, void *ctx);

static void client_destroy(struct smtp_client *c)
{
	io_free(&c->io);
	if (c->defer != NULL)
		event_free(c->defer);
	free(c->pending.reply);
	smtp_client_reply_parser_deinit(&c->parser);
	free(c->cmds);
	free(c->accepted);
	free(c->mail_reply);
	buf_free(&c->conv);
	free(c);
}

void smtp_client_free(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	c->state = ST_DEAD;
	if (c->depth > 0)
		c->free_pending = true;
	else
		client_destroy(c);
}

static void client_leave(struct smtp_client *c)
{
	if (--c->depth == 0 && c->free_pending)
		client_destroy(c);
}

/* ---- reporting ---- */

static void client_report(struct smtp_client *c, enum smtp_client_status status, const char *stage,
			  char *reply, const char *enhanced, bool remote, bool connection_failed)
{
	struct smtp_client_result res = {
	    .status = status,
	    .connection_failed = connection_failed,
	    .tls_failed = c->tls_failed,
	    .reply = reply,
	    .remote = remote,
	    .stage = stage,
	};
	snprintf(res.enhanced, sizeof(res.enhanced), "%s", enhanced != NULL ? enhanced : "");
	smtp_client_callback *cb = c->cb;
	c->cb = NULL;
	c->depth++;
	if (cb != NULL)
		cb(c, &res, c->ctx);
	free(reply);
	client_leave(c);
}

/* The session failed before or between transactions. */
static void client_fail(struct smtp_client *c, enum smtp_client_status status, char *reply,
			const char *enhanced, bool remote)
{
	const char *stage = state_stage[c->state];
	bool in_txn = c->state == ST_TXN || c->state == ST_DATA_SENT;
	c->state = ST_DEAD;
	if (in_txn) {
		/* Every recipient without a final answer is deferred. */
		struct smtp_client_msg *msg = c->msg;
		for (size_t i = 0; i < msg->nrcpts; i++) {
			struct smtp_client_rcpt *r = &msg->rcpts[i];
			if (r->reply != NULL && !c->accepted[i])
				continue;
			free(r->reply);
			r->reply = xstrdup(reply);
			r->status = SMTP_CLIENT_TEMPFAIL;
			snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
			r->remote = remote;
			r->stage = stage;
		}
	}
	client_report(c, status, stage, reply, enhanced, remote, !in_txn);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	struct smtp_client_result r = c->pending;
	c->pending.reply = NULL;
	client_report(c, r.status, r.stage, r.reply, r.enhanced, r.remote, r.connection_failed);
}

/* Reports from the loop (never from inside the API call). */
static void client_report_later(struct smtp_client *c, enum smtp_client_status status, const char *stage,
				char *reply, const char *enhanced)
{
	free(c->pending.reply);
	memset(&c->pending, 0, sizeof(c->pending));
	c->pending.status = status;
	c->pending.stage = stage;
	c->pending.reply = reply;
	snprintf(c->pending.enhanced, sizeof(c->pending.enhanced), "%s", enhanced);
	if (c->defer == NULL)
		c->defer = evtimer_new(c->base, defer_cb, c);
	struct timeval tv = {0, 0};
	evtimer_add(c->defer, &tv);
}

/* ---- session setup ---- */

static int timeout_of(int v, int def)
{
	return v > 0 ? v : def;
}

/* RFC 5321 2.3.8: a command line ends at its only CRLF.  A CR or LF inside
   an argument (an address, the HELO name) would end the line early and
   start a command of someone else's choosing: such a line is never sent. */
static bool client_line_ok(const struct buf *line)
{
	return line->len >= 2 && memchr(line->data, '\r', line->len - 2) == NULL &&
	       memchr(line->data, '\n', line->len - 2) == NULL;
}

/* Writes one setup command (always from the io callback, so failing the
   session here reports at once); false when it was refused. */
static bool client_write_cmd(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool client_write_cmd(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct buf b = BUF_INIT;
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_append_str(&b, "\r\n");
	bool ok = client_line_ok(&b);
	if (ok)
		io_write(c->io, b.data, b.len);
	buf_free(&b);
	if (!ok)
		client_fail(
		    c, SMTP_CLIENT_PERMFAIL,
		    xasprintf("554 5.5.4 refusing to send %s a command with a line break in an argument",
			      c->set.peer_name),
		    "5.5.4", false);
	return ok;
}

struct smtp_client *smtp_client_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
					const struct smtp_client_settings *settings, smtp_client_callback *cb,
					void *ctx)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->set = *settings;
	if (c->set.helo_name == NULL || c->set.helo_name[0] == '\0')
		c->set.helo_name = "localhost";
	if (c->set.peer_name == NULL)
		c->set.peer_name = "server";
	c->cb = cb;
	c->ctx = ctx;
	c->state = ST_CONNECTING;
	smtp_client_reply_parser_init(&c->parser);
	c->io = io_connect(base, sa, salen, client_io_cb, c);
	io_set_timeout(c->io, timeout_of(c->set.connect_timeout, 30));
	return c;
}

static SSL_CTX *client_tls_ctx(bool pkix, const char *ca_file, char **error_r)
{
	if (pkix && ca_file != NULL) {
		if (tls_ctx_file != NULL && strcmp(tls_ctx_file_path, ca_file) != 0) {
			SSL_CTX_free(tls_ctx_file);
			tls_ctx_file = NULL;
			free(tls_ctx_file_path);
		}
		if (tls_ctx_file == NULL && (tls_ctx_file = tls_client_ctx_file(ca_file, error_r)) != NULL)
			tls_ctx_file_path = xstrdup(ca_file);
		return tls_ctx_file;
	}
	SSL_CTX **ctx = pkix ? &tls_ctx_verify : &tls_ctx_plain;
	if (*ctx == NULL)
		*ctx = tls_client_ctx(pkix, error_r);
	return *ctx;
}

/* The SSL for this session's policy: DANE records, a PKIX check that
   must pass (verify) or is only recorded (tls_check), or none. */
static SSL *client_tls_ssl(struct smtp_client *c, char **error_r)
{
	bool dane = c->set.ntlsa > 0;
	bool pkix = !dane && (c->set.tls == TLS_POLICY_VERIFY || c->set.tls_check);
	SSL_CTX *ctx = client_tls_ctx(pkix, c->set.tls_ca_file, error_r);
	if (ctx == NULL)
		return NULL;
	struct tls_client_check check = {
	    .sni = c->set.tls_name,
	    .host = dane || pkix ? c->set.tls_name : NULL,
	    .require = dane || c->set.tls == TLS_POLICY_VERIFY,
	    .tlsa = c->set.tlsa,
	    .ntlsa = c->set.ntlsa,
	};
	return tls_client_ssl(ctx, &check, error_r);
}

static void client_start_tls(struct smtp_client *c, enum client_state next)
{
	char *error = NULL;
	SSL *ssl = client_tls_ssl(c, &error);
	if (ssl == NULL || io_start_tls_client_ssl(c->io, ssl) < 0) {
		char *reply = xasprintf("cannot start TLS with %s: %s", c->set.peer_name,
					error != NULL ? error : "TLS setup failed");
		free(error);
		client_fail(c, SMTP_CLIENT_TEMPFAIL, reply, "4.7.5", false);
		return;
	}
	c->state = next;
}

static void client_send_ehlo(struct smtp_client *c)
{
	c->state = ST_EHLO;
	memset(&c->caps, 0, sizeof(c->caps));
	client_write_cmd(c, "EHLO %s", c->set.helo_name);
}

static void client_ready(struct smtp_client *c)
{
	c->state = ST_READY;
	io_set_timeout(c->io, timeout_of(c->set.command_timeout, 300));
	client_report(c, SMTP_CLIENT_OK, "connect", NULL, "", false, false);
}

static void client_auth(struct smtp_client *c)
{
	if (c->set.user == NULL || c->did_auth) {
		client_ready(c);
		return;
	}
	if (!(c->caps.flags & SMTP_CAP_AUTH)) {
		client_fail(
		    c, SMTP_CLIENT_TEMPFAIL,
		    xasprintf("%s offers no AUTH (needed for user %s)", c->set.peer_name, c->set.user),
		    "4.7.0", false);
		return;
	}
	if ((c->caps.flags & SMTP_CAP_AUTH_PLAIN) || !(c->caps.flags & SMTP_CAP_AUTH_LOGIN)) {
		char *ir = sasl_client_plain(c->set.user, c->set.password != NULL ? c->set.password : "");
		c->state = ST_AUTH_PLAIN;
		client_write_cmd(c, "AUTH PLAIN %s", ir);
		free(ir);
	} else {
		c->state = ST_AUTH_LOGIN;
		client_write_cmd(c, "AUTH LOGIN");
	}
}

/* After EHLO/HELO: STARTTLS per policy, then AUTH. */
static void client_after_ehlo(struct smtp_client *c)
{
	bool offered = (c->caps.flags & SMTP_CAP_STARTTLS) != 0;
	if (!io_is_tls(c->io) && c->set.tls != TLS_POLICY_NONE) {
		if (offered) {
			c->state = ST_STARTTLS;
			client_write_cmd(c, "STARTTLS");
			return;
		}
		if (c->set.tls >= TLS_POLICY_ENCRYPT) {
			client_fail(
			    c, SMTP_CLIENT_TEMPFAIL,
			    xasprintf("TLS is required but %s does not offer STARTTLS", c->set.peer_name),
			    "4.7.4", false);
			return;
		}
	}
	client_auth(c);
}

static char *remote_reply(const struct smtp_client_reply *r)
{
	return smtp_client_reply_string(r);
}

static void client_setup_reply(struct smtp_client *c, struct smtp_client_reply *r)
{
	int cls = r->code / 100;
	char *error;
	switch (c->state) {
	case ST_GREETING:
		if (r->code != 220)
			goto fail;
		client_send_ehlo(c);
		return;
	case ST_EHLO:
		if (cls == 2) {
			smtp_client_parse_ehlo(r->text, &c->caps);
			client_after_ehlo(c);
		} else if (cls == 5) {
			/* RFC 5321 3.2: fall back to HELO when EHLO is not known. */
			c->state = ST_HELO;
			client_write_cmd(c, "HELO %s", c->set.helo_name);
		} else {
			goto fail;
		}
		return;
	case ST_HELO:
		if (cls != 2)
			goto fail;
		memset(&c->caps, 0, sizeof(c->caps));
		client_after_ehlo(c);
		return;
	case ST_STARTTLS:
		if (r->code == 220) {
			c->did_tls = true;
			client_start_tls(c, ST_TLS);
		} else if (c->set.tls == TLS_POLICY_MAY) {
			client_auth(c);
		} else {
			goto fail;
		}
		return;
	case ST_AUTH_PLAIN:
	case ST_AUTH_LOGIN_PASS:
		if (r->code != 235)
			goto fail;
		c->did_auth = true;
		client_ready(c);
		return;
	case ST_AUTH_LOGIN:
	case ST_AUTH_LOGIN_USER:
		if (r->code != 334)
			goto fail;
		error = sasl_client_login_response(c->state == ST_AUTH_LOGIN ? c->set.user
						   : c->set.password != NULL ? c->set.password
									     : "");
		c->state = c->state == ST_AUTH_LOGIN ? ST_AUTH_LOGIN_USER : ST_AUTH_LOGIN_PASS;
		client_write_cmd(c, "%s", error);
		free(error);
		return;
	default:
		log_panic("unexpected state %d", c->state);
	}
fail:
	client_fail(c, cls == 5 ? SMTP_CLIENT_PERMFAIL : SMTP_CLIENT_TEMPFAIL, remote_reply(r),
		    r->enhanced[0] ? r->enhanced
		    : cls == 5     ? "5.0.0"
				   : "4.0.0",
		    true);
}

/* ---- transactions ---- */

static void rcpt_set(struct smtp_client_rcpt *rcpt, enum smtp_client_status status, const char *reply,
		     const char *enhanced, bool remote, const char *stage)
{
	free(rcpt->reply);
	rcpt->reply = reply != NULL ? xstrdup(reply) : NULL;
	rcpt->status = status;
	snprintf(rcpt->enhanced, sizeof(rcpt->enhanced), "%s", enhanced != NULL ? enhanced : "");
	rcpt->remote = remote;
	rcpt->stage = stage;
}

static enum smtp_client_status status_of(int code)
{
	return code / 100 == 2   ? SMTP_CLIENT_OK
	       : code / 100 == 5 ? SMTP_CLIENT_PERMFAIL
				 : SMTP_CLIENT_TEMPFAIL;
}

static const char *enhanced_of(const struct smtp_client_reply *r)
{
	if (r->enhanced[0] != '\0')
		return r->enhanced;
	return r->code / 100 == 2 ? "2.0.0" : r->code / 100 == 5 ? "5.0.0" : "4.0.0";
}

static void txn_finish(struct smtp_client *c, char *reply, const char *enhanced, bool remote,
		       const char *stage)
{
	struct smtp_client_msg *msg = c->msg;
	enum smtp_client_status status = SMTP_CLIENT_PERMFAIL;
	for (size_t i = 0; i < msg->nrcpts; i++) {
		if (msg->rcpts[i].status == SMTP_CLIENT_OK) {
			status = SMTP_CLIENT_OK;
			break;
		}
		if (msg->rcpts[i].status == SMTP_CLIENT_TEMPFAIL)
			status = SMTP_CLIENT_TEMPFAIL;
	}
	c->state = ST_READY;
	io_set_timeout(c->io, timeout_of(c->set.command_timeout, 300));
	client_report(c, status, stage, reply, enhanced, remote, false);
}

/* Fails the whole message before anything is sent (size, conversion). */
static void txn_refuse(struct smtp_client *c, const char *enhanced, char *reply)
{
	struct smtp_client_msg *msg = c->msg;
	for (size_t i = 0; i < msg->nrcpts; i++)
		rcpt_set(&msg->rcpts[i], SMTP_CLIENT_PERMFAIL, reply, enhanced, false, "MAIL FROM");
	client_report_later(c, SMTP_CLIENT_PERMFAIL, "MAIL FROM", reply, enhanced);
}

/* Decides how the data travels; returns false (and refuses the message)
   when it cannot go to this server. */
static bool txn_prepare_data(struct smtp_client *c)
{
	struct smtp_client_msg *msg = c->msg;
	c->data = msg->data;
	c->size = msg->size;
	c->use_bdat = false;
	c->body_8bit = false;
	buf_reset(&c->conv);
	unsigned caps = c->caps.flags;
	bool has8 = msg->body != SMTP_BODY_7BIT && utf8_has_8bit(msg->data, msg->size);
	if (msg->smtputf8 && !(caps & SMTP_CAP_SMTPUTF8)) {
		/* RFC 6531 3.7.5: only a message that really needs SMTPUTF8
		   is refused. */
		bool need = utf8_has_8bit(msg->sender, strlen(msg->sender));
		for (size_t i = 0; i < msg->nrcpts && !need; i++)
			need = utf8_has_8bit(msg->rcpts[i].address, strlen(msg->rcpts[i].address));
		size_t hdr_end = msg->size;
		const char *end = memmem(msg->data, msg->size, "\r\n\r\n", 4);
		if (end != NULL)
			hdr_end = (size_t)(end - msg->data);
		need = need || utf8_has_8bit(msg->data, hdr_end);
		if (need) {
			txn_refuse(
			    c, "5.6.7",
			    xasprintf("554 5.6.7 %s does not support SMTPUTF8, which the message needs",
				      c->set.peer_name));
			return false;
		}
	}
	if (msg->body == SMTP_BODY_BINARYMIME && (caps & SMTP_CAP_BINARYMIME) && (caps & SMTP_CAP_CHUNKING)) {
		c->use_bdat = true;
	} else if (has8 && !(caps & SMTP_CAP_8BITMIME)) {
		const char *error;
		if (smtp_client_downgrade_8bit(msg->data, msg->size, &c->conv, &error) < 0) {
			txn_refuse(c, "5.6.3",
				   xasprintf("554 5.6.3 %s does not support 8BITMIME and the conversion to 7 "
					     "bits failed: %s",
					     c->set.peer_name, error));
			return false;
		}
		c->data = c->conv.data;
		c->size = c->conv.len;
		msg->converted_8bit = true;
	} else if (msg->body != SMTP_BODY_7BIT && (caps & SMTP_CAP_8BITMIME)) {
		c->body_8bit = true;
	}
	if (c->caps.size > 0 && c->size > c->caps.size) {
		txn_refuse(c, "5.3.4",
			   xasprintf("552 5.3.4 message size %zu exceeds the limit of %s (%llu)", c->size,
				     c->set.peer_name, (unsigned long long)c->caps.size));
		return false;
	}
	return true;
}

static void txn_write_mail(struct smtp_client *c, struct buf *b)
{
	struct smtp_client_msg *msg = c->msg;
	unsigned caps = c->caps.flags;
	buf_printf(b, "MAIL FROM:<%s>", msg->sender);
	if (caps & SMTP_CAP_SIZE)
		buf_printf(b, " SIZE=%zu", c->size);
	if (c->use_bdat)
		buf_append_str(b, " BODY=BINARYMIME");
	else if (c->body_8bit)
		buf_append_str(b, " BODY=8BITMIME");
	if (msg->smtputf8 && (caps & SMTP_CAP_SMTPUTF8))
		buf_append_str(b, " SMTPUTF8");
	if (caps & SMTP_CAP_DSN) {
		if (msg->ret != SMTP_RET_DEFAULT)
			buf_append_str(b, msg->ret == SMTP_RET_FULL ? " RET=FULL" : " RET=HDRS");
		if (msg->envid != NULL && msg->envid[0] != '\0') {
			buf_append_str(b, " ENVID=");
			smtp_client_xtext(b, msg->envid);
		}
	}
	buf_append_str(b, "\r\n");
}

/* NOTIFY=... (RFC 3461 4.1). */
static void append_notify(struct buf *b, unsigned notify)
{
	if (notify & SMTP_NOTIFY_NEVER) {
		buf_append_str(b, "NEVER");
		return;
	}
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
	    {SMTP_NOTIFY_SUCCESS, "SUCCESS"}, {SMTP_NOTIFY_FAILURE, "FAILURE"}, {SMTP_NOTIFY_DELAY, "DELAY"}};
	bool first = true;
	for (size_t i = 0; i < N_ELEMENTS(names); i++) {
		if (notify & names[i].bit) {
			buf_printf(b, "%s%s", first ? "" : ",", names[i].name);
			first = false;
		}
	}
}

static void txn_write_rcpt(struct smtp_client *c, struct buf *b, const struct smtp_client_rcpt *r)
{
	buf_printf(b, "RCPT TO:<%s>", r->address);
	if (c->caps.flags & SMTP_CAP_DSN) {
		if (r->notify != SMTP_NOTIFY_DEFAULT) {
			buf_append_str(b, " NOTIFY=");
			append_notify(b, r->notify);
		}
		const char *semi = r->orcpt != NULL ? strchr(r->orcpt, ';') : NULL;
		if (semi != NULL) {
			buf_append_str(b, " ORCPT=");
			buf_append(b, r->orcpt, (size_t)(semi - r->orcpt) + 1);
			smtp_client_xtext(b, semi + 1);
		}
	} else if (r->notify & SMTP_NOTIFY_SUCCESS) {
		c->msg->dsn_relayed = true;
	}
	buf_append_str(b, "\r\n");
}

static void txn_write_cmd(struct smtp_client *c, const struct client_cmd *cmd)
{
	struct buf b = BUF_INIT;
	switch (cmd->kind) {
	case CMD_RSET:
		buf_append_str(&b, "RSET\r\n");
		break;
	case CMD_MAIL:
		txn_write_mail(c, &b);
		break;
	case CMD_RCPT:
		txn_write_rcpt(c, &b, &c->msg->rcpts[cmd->rcpt]);
		break;
	case CMD_DATA:
		buf_append_str(&b, "DATA\r\n");
		break;
	case CMD_BDAT:
		buf_printf(&b, "BDAT %zu LAST\r\n", c->size);
		break;
	}
	io_write(c->io, b.data, b.len);
	if (cmd->kind == CMD_BDAT) {
		io_write(c->io, c->data, c->size);
		io_set_timeout(c->io, timeout_of(c->set.data_timeout, 600));
	}
	buf_free(&b);
}

/* RFC 5321 4.1.2: every address goes out as a Path.  One that is not a
   valid Path (a line break in it would be a second command) is refused
   here, permanently and never sent: the sender refuses the message, a
   recipient only itself.  false when nothing is left to send (reported
   from the loop). */
static bool txn_check_addresses(struct smtp_client *c)
{
	struct smtp_client_msg *msg = c->msg;
	const char *error;
	if (mime_path_check_address(msg->sender, MIME_PATH_ALLOW_NULL | MIME_PATH_ALLOW_UTF8, &error) < 0) {
		txn_refuse(c, "5.1.7", xasprintf("553 5.1.7 invalid sender address: %s", error));
		return false;
	}
	size_t valid = 0;
	for (size_t i = 0; i < msg->nrcpts; i++) {
		struct smtp_client_rcpt *r = &msg->rcpts[i];
		if (mime_path_check_address(r->address, MIME_PATH_ALLOW_UTF8 | MIME_PATH_ALLOW_POSTMASTER,
					    &error) == 0) {
			valid++;
			continue;
		}
		char *reply = xasprintf("553 5.1.3 invalid recipient address: %s", error);
		rcpt_set(r, SMTP_CLIENT_PERMFAIL, reply, "5.1.3", false, "RCPT TO");
		free(reply);
	}
	if (valid == 0 && msg->nrcpts > 0) {
		client_report_later(c, SMTP_CLIENT_PERMFAIL, "RCPT TO", xstrdup(msg->rcpts[0].reply),
				    "5.1.3");
		return false;
	}
	return true;
}

/* The transaction's command lines, checked before any is sent (the
   arguments that are not addresses: ORCPT, ENVID). */
static bool txn_check_lines(struct smtp_client *c)
{
	bool ok = true;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < c->ncmds && ok; i++) {
		buf_reset(&b);
		if (c->cmds[i].kind == CMD_MAIL)
			txn_write_mail(c, &b);
		else if (c->cmds[i].kind == CMD_RCPT)
			txn_write_rcpt(c, &b, &c->msg->rcpts[c->cmds[i].rcpt]);
		else
			continue;
		ok = client_line_ok(&b);
	}
	buf_free(&b);
	if (!ok)
		txn_refuse(
		    c, "5.5.4",
		    xasprintf("554 5.5.4 refusing to send %s a command with a line break in an argument",
			      c->set.peer_name));
	return ok;
}

/* Sends what may be sent now: everything at once with PIPELINING (RFC 2920
   3.1: DATA/BDAT may end a group), else one command per reply.  Without
   PIPELINING and no accepted recipient, DATA is not sent. */
static void txn_send_more(struct smtp_client *c)
{
	bool pipelining = (c->caps.flags & SMTP_CAP_PIPELINING) != 0;
	while (c->nsent < c->ncmds && (pipelining || c->nsent == c->nreplied)) {
		const struct client_cmd *cmd = &c->cmds[c->nsent];
		if (!pipelining && (cmd->kind == CMD_DATA || cmd->kind == CMD_BDAT) && c->naccepted == 0) {
			c->need_rset = true;
			const struct smtp_client_rcpt *r0 = &c->msg->rcpts[c->msg->nrcpts - 1];
			txn_finish(c, xstrdup(r0->reply != NULL ? r0->reply : "no recipient accepted"),
				   r0->enhanced, r0->remote, "RCPT TO");
			return;
		}
		txn_write_cmd(c, cmd);
		c->nsent++;
	}
}

void smtp_client_send(struct smtp_client *c, struct smtp_client_msg *msg, smtp_client_callback *cb, void *ctx)
{
	if (c->state != ST_READY)
		log_panic("SMTP client session is not ready (state %d)", c->state);
	c->msg = msg;
	c->cb = cb;
	c->ctx = ctx;
	msg->converted_8bit = false;
	msg->dsn_relayed = false;
	for (size_t i = 0; i < msg->nrcpts; i++)
		rcpt_set(&msg->rcpts[i], SMTP_CLIENT_TEMPFAIL, NULL, "", false, "RCPT TO");
	if (!txn_check_addresses(c) || !txn_prepare_data(c))
		return;
	free(c->cmds);
	free(c->accepted);
	c->cmds = xcalloc(msg->nrcpts + 3, sizeof(*c->cmds));
	c->accepted = xcalloc(msg->nrcpts + 1, sizeof(bool));
	c->ncmds = c->nsent = c->nreplied = c->naccepted = 0;
	free(c->mail_reply);
	c->mail_reply = NULL;
	if (c->need_rset)
		c->cmds[c->ncmds++].kind = CMD_RSET;
	c->need_rset = false;
	c->cmds[c->ncmds++].kind = CMD_MAIL;
	for (size_t i = 0; i < msg->nrcpts; i++) {
		if (msg->rcpts[i].status == SMTP_CLIENT_PERMFAIL)
			continue; /* refused by txn_check_addresses */
		c->cmds[c->ncmds].kind = CMD_RCPT;
		c->cmds[c->ncmds++].rcpt = i;
	}
	c->cmds[c->ncmds++].kind = c->use_bdat ? CMD_BDAT : CMD_DATA;
	if (!txn_check_lines(c))
		return;
	c->state = ST_TXN;
	txn_send_more(c);
}

/* The data has been sent; every accepted recipient gets the final reply. */
static void txn_final_reply(struct smtp_client *c, struct smtp_client_reply *r)
{
	struct smtp_client_msg *msg = c->msg;
	char *reply = remote_reply(r);
	for (size_t i = 0; i < msg->nrcpts; i++)
		if (c->accepted[i])
			rcpt_set(&msg->rcpts[i], status_of(r->code), reply, enhanced_of(r), true,
				 "end of data");
	if (c->naccepted == 0)
		c->need_rset = true;
	txn_finish(c, reply, enhanced_of(r), true, "end of data");
}

static void txn_data_go(struct smtp_client *c)
{
	struct buf out = BUF_INIT;
	if (c->naccepted > 0)
		smtp_client_dot_stuff(&out, c->data, c->size);
	else
		buf_append_str(&out, ".\r\n"); /* a 354 without recipients: send nothing */
	io_write(c->io, out.data, out.len);
	buf_free(&out);
	c->state = ST_DATA_SENT;
	io_set_timeout(c->io, timeout_of(c->set.data_timeout, 600));
}

static void txn_reply(struct smtp_client *c, struct smtp_client_reply *r)
{
	const struct client_cmd *cmd = &c->cmds[c->nreplied++];
	struct smtp_client_msg *msg = c->msg;
	char *reply;
	switch (cmd->kind) {
	case CMD_RSET:
		if (r->code / 100 != 2) {
			client_fail(c, SMTP_CLIENT_TEMPFAIL, remote_reply(r), enhanced_of(r), true);
			return;
		}
		break;
	case CMD_MAIL:
		if (r->code / 100 != 2) {
			c->mail_reply = remote_reply(r);
			c->mail_code = r->code;
			snprintf(c->mail_enhanced, sizeof(c->mail_enhanced), "%s", enhanced_of(r));
			if (!(c->caps.flags & SMTP_CAP_PIPELINING)) {
				/* Nothing else was sent: every recipient gets MAIL's answer. */
				for (size_t i = 0; i < msg->nrcpts; i++)
					rcpt_set(&msg->rcpts[i], status_of(r->code), c->mail_reply,
						 c->mail_enhanced, true, "MAIL FROM");
				c->need_rset = true;
				txn_finish(c, xstrdup(c->mail_reply), c->mail_enhanced, true, "MAIL FROM");
				return;
			}
		}
		break;
	case CMD_RCPT:
		if (c->mail_reply != NULL) {
			rcpt_set(&msg->rcpts[cmd->rcpt], status_of(c->mail_code), c->mail_reply,
				 c->mail_enhanced, true, "MAIL FROM");
		} else {
			reply = remote_reply(r);
			rcpt_set(&msg->rcpts[cmd->rcpt], status_of(r->code), reply, enhanced_of(r), true,
				 "RCPT TO");
			free(reply);
			if (r->code / 100 == 2) {
				/* accepted for now; the final reply decides */
				c->accepted[cmd->rcpt] = true;
				c->naccepted++;
				msg->rcpts[cmd->rcpt].status = SMTP_CLIENT_TEMPFAIL;
			}
		}
		break;
	case CMD_DATA:
		if (r->code == 354) {
			txn_data_go(c);
			return;
		}
		c->need_rset = true;
		reply = remote_reply(r);
		if (c->naccepted > 0) {
			for (size_t i = 0; i < msg->nrcpts; i++)
				if (c->accepted[i])
					rcpt_set(&msg->rcpts[i],
						 status_of(r->code) == SMTP_CLIENT_OK ? SMTP_CLIENT_TEMPFAIL
										      : status_of(r->code),
						 reply, enhanced_of(r), true, "DATA");
			txn_finish(c, reply, enhanced_of(r), true, "DATA");
		} else {
			free(reply);
			const struct smtp_client_rcpt *last = &msg->rcpts[msg->nrcpts - 1];
			txn_finish(c, xstrdup(last->reply != NULL ? last->reply : "no recipient accepted"),
				   last->enhanced, true, "RCPT TO");
		}
		return;
	case CMD_BDAT:
		txn_final_reply(c, r);
		return;
	}
	txn_send_more(c);
}

/* ---- input ---- */

static void client_reply(struct smtp_client *c, struct smtp_client_reply *r)
{
	switch (c->state) {
	case ST_TXN:
		txn_reply(c, r);
		break;
	case ST_DATA_SENT:
		txn_final_reply(c, r);
		break;
	case ST_READY:
	case ST_QUIT:
	case ST_DEAD:
		break; /* unsolicited (e.g. 421 before closing): the EOF follows */
	default:
		client_setup_reply(c, r);
		break;
	}
}

static void client_input(struct smtp_client *c)
{
	char *line;
	size_t len;
	int rc;
	while (!c->free_pending && c->state != ST_DEAD && c->state != ST_TLS && c->state != ST_TLS_IMPLICIT &&
	       c->io != NULL && (rc = io_read_line(c->io, SMTP_CLIENT_LINE_MAX, &line, &len)) != 0) {
		struct smtp_client_reply r;
		const char *error = "reply line too long";
		if (rc > 0)
			rc = smtp_client_reply_feed(&c->parser, line, len, &r, &error);
		if (rc < 0) {
			client_fail(c, SMTP_CLIENT_TEMPFAIL,
				    xasprintf("protocol error from %s: %s", c->set.peer_name, error), "4.5.0",
				    false);
			return;
		}
		if (rc == 0)
			continue;
		client_reply(c, &r);
		smtp_client_reply_free(&r);
	}
}

/* Why the handshake failed when it was the certificate: " (certificate:
   hostname mismatch)", else "". */
static const char *client_tls_failure(struct smtp_client *c)
{
	static char text[160];
	SSL *ssl = c->state == ST_TLS || c->state == ST_TLS_IMPLICIT ? io_ssl(c->io) : NULL;
	const char *error =
	    ssl != NULL && SSL_get0_peer_certificate(ssl) != NULL ? tls_verify_error(ssl) : NULL;
	if (error == NULL)
		return "";
	snprintf(text, sizeof(text), " (certificate: %s)", error);
	return text;
}

static void client_io_cb(struct io *io, enum io_event event, void *ctx)
{
	struct smtp_client *c = ctx;
	c->depth++;
	switch (event) {
	case IO_EVENT_INPUT:
		client_input(c);
		break;
	case IO_EVENT_CONNECTED:
		metrics_connection(METRICS_SERVICE_RELAY);
		io_set_timeout(c->io, timeout_of(c->set.command_timeout, 300));
		if (c->set.implicit_tls)
			client_start_tls(c, ST_TLS_IMPLICIT);
		else
			c->state = ST_GREETING;
		break;
	case IO_EVENT_TLS_DONE:
		metrics_tls(METRICS_SERVICE_RELAY, true);
		if (c->state == ST_TLS_IMPLICIT) {
			c->state = ST_GREETING;
		} else if (c->state == ST_TLS) {
			client_send_ehlo(c);
		}
		client_input(c);
		break;
	case IO_EVENT_DRAINED:
		break;
	case IO_EVENT_CLOSED:
		if (c->state == ST_QUIT) {
			c->state = ST_DEAD;
			c->free_pending = true;
		}
		break;
	case IO_EVENT_TIMEOUT:
	case IO_EVENT_EOF:
	case IO_EVENT_ERROR:
		if (c->state == ST_TLS || c->state == ST_TLS_IMPLICIT)
			metrics_tls(METRICS_SERVICE_RELAY, false);
		if (c->state == ST_QUIT || c->state == ST_READY || c->state == ST_DEAD) {
			if (c->state == ST_QUIT)
				c->free_pending = true;
			c->state = ST_DEAD;
			break;
		}
		c->tls_failed = c->state == ST_TLS;
		client_fail(c, SMTP_CLIENT_TEMPFAIL,
			    xasprintf("%s with %s during %s: %s%s",
				      event == IO_EVENT_TIMEOUT   ? "timeout"
				      : c->state == ST_CONNECTING ? "connection failed"
								  : "lost connection",
				      c->set.peer_name, state_stage[c->state], io_error(c->io),
				      client_tls_failure(c)),
			    event == IO_EVENT_TIMEOUT   ? "4.4.2"
			    : c->state == ST_CONNECTING ? "4.4.1"
							: "4.4.2",
			    false);
		break;
	}
	client_leave(c);
}

/* ---- public helpers ---- */

bool smtp_client_usable(const struct smtp_client *c)
{
	return c != NULL && c->state == ST_READY && !c->free_pending;
}

const struct smtp_client_caps *smtp_client_get_caps(const struct smtp_client *c)
{
	return &c->caps;
}

bool smtp_client_is_tls(const struct smtp_client *c)
{
	return c->io != NULL && io_is_tls(c->io);
}

const char *smtp_client_tls_verify_error(const struct smtp_client *c)
{
	SSL *ssl = c->io != NULL ? io_ssl(c->io) : NULL;
	return ssl != NULL ? tls_verify_error(ssl) : "no TLS";
}

void smtp_client_quit(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;
	if (c == NULL)
		return;
	if (c->state != ST_READY || c->free_pending) {
		smtp_client_free(cp);
		return;
	}
	*cp = NULL;
	c->cb = NULL;
	c->state = ST_QUIT;
	io_write_str(c->io, "QUIT\r\n");
	io_set_timeout(c->io, 10);
	io_close_after_flush(c->io);
}

void smtp_client_msg_clear(struct smtp_client_msg *msg)
{
	for (size_t i = 0; i < msg->nrcpts; i++) {
		free(msg->rcpts[i].reply);
		msg->rcpts[i].reply = NULL;
	}
}

/* ---- blocking use ---- */

struct sync_state {
	struct smtp_client_msg *msg;
	struct smtp_client *client;
	bool connected, done, connection_failed;
	int rc;
	char *reply, *error;
};

static void sync_sent(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct sync_state *s = ctx;
	s->done = true;
	free(s->reply);
	s->reply = res->reply != NULL ? xstrdup(res->reply) : NULL;
	bool all = res->status == SMTP_CLIENT_OK;
	for (size_t i = 0; i < s->msg->nrcpts; i++)
		if (s->msg->rcpts[i].status != SMTP_CLIENT_OK)
			all = false;
	s->rc = all ? 0 : -1;
	if (!all) {
		struct buf b = BUF_INIT;
		for (size_t i = 0; i < s->msg->nrcpts; i++) {
			const struct smtp_client_rcpt *r = &s->msg->rcpts[i];
			if (r->status != SMTP_CLIENT_OK)
				buf_printf(&b, "%s<%s>: %s", b.len ? "; " : "", r->address,
					   r->reply != NULL ? r->reply : "not delivered");
		}
		if (b.len == 0)
			buf_append_str(&b, res->reply != NULL ? res->reply : "delivery failed");
		s->error = buf_steal(&b);
	}
	smtp_client_quit(&s->client);
}

static void sync_ready(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct sync_state *s = ctx;
	if (res->status != SMTP_CLIENT_OK) {
		s->done = true;
		s->connection_failed = !res->remote;
		s->rc = -1;
		free(s->error);
		s->error = xstrdup(res->reply != NULL ? res->reply : "session failed");
		smtp_client_free(&s->client);
		return;
	}
	smtp_client_send(c, s->msg, sync_sent, s);
}

struct sync_lookup {
	struct event_base *base;
	bool done;
	struct dns_addr *addrs;
	size_t naddrs;
	char *error;
};

static void sync_resolved(void *ctx, enum dns_status status, const struct dns_addr *addrs, size_t n,
			  const char *error)
{
	struct sync_lookup *l = ctx;
	if (status == DNS_CANCELLED)
		return;
	l->done = true;
	if (status == DNS_OK) {
		l->addrs = xmemdup(addrs, n * sizeof(*addrs));
		l->naddrs = n;
	} else {
		l->error = xstrdup(error != NULL ? error : "no address");
	}
	/* The resolver keeps its sockets and timer armed: stop the loop, it
	   is freed outside its own callback. */
	event_base_loopbreak(l->base);
}

/* The addresses of host through the resolver dns_server (c-ares, the
   [dns] resolver; an IP literal is taken as it is).  Returns 0 with
   *addrs_r (at least one, caller frees) and *n_r, or -1 with *error_r. */
static int sync_resolve(const char *host, int port, const char *dns_server, struct dns_addr **addrs_r,
			size_t *n_r, char **error_r)
{
	struct sync_lookup l = {.base = event_base_new()};
	char *error = NULL;
	struct dns_resolver *r = dns_resolver_new(l.base, dns_server, &error);
	if (r != NULL) {
		dns_lookup_addr(r, host, port, sync_resolved, &l);
		/* Bounded: c-ares gives up after its tries (dns_resolver_new). */
		event_base_dispatch(l.base);
		dns_resolver_free(&r);
		error = l.done ? l.error : xstrdup("no answer");
	}
	event_base_free(l.base);
	if (error != NULL) {
		*error_r = xasprintf("cannot resolve %s: %s", host, error);
		free(error);
		free(l.addrs);
		return -1;
	}
	*addrs_r = l.addrs;
	*n_r = l.naddrs;
	return 0;
}

int smtp_client_submit_sync(const char *host, int port, const char *dns_server,
			    const struct smtp_client_settings *settings, struct smtp_client_msg *msg,
			    char **reply_r, char **error_r)
{
	*reply_r = NULL;
	*error_r = NULL;
	struct dns_addr *addrs;
	size_t naddrs;
	if (sync_resolve(host, port, dns_server, &addrs, &naddrs, error_r) < 0)
		return -1;
	struct sync_state s = {.msg = msg, .rc = -1};
	/* Each address in turn while the session fails before a transaction
	   (connection refused, no greeting, ...). */
	for (size_t i = 0; i < naddrs; i++) {
		struct event_base *base = event_base_new();
		s.done = false;
		s.connection_failed = false;
		s.client = smtp_client_connect(base, (const struct sockaddr *)&addrs[i].sa, addrs[i].len,
					       settings, sync_ready, &s);
		/* Bounded: every stage has a timeout, so the loop ends. */
		event_base_dispatch(base);
		smtp_client_free(&s.client);
		event_base_free(base);
		if (!s.done) {
			free(s.error);
			s.error = xstrdup("connection closed unexpectedly");
		}
		if (!s.connection_failed || s.rc == 0)
			break;
	}
	free(addrs);
	*reply_r = s.reply;
	if (s.rc < 0)
		*error_r = s.error != NULL ? s.error : xstrdup("delivery failed");
	else
		free(s.error);
	return s.rc;
}
