/* The SMTP server session (RFC 5321): connection, greeting, the command
   loop with pipelining, HELO/EHLO, STARTTLS and the small commands. */
#include "smtpd/smtp_private.h"
#include "smtp/smtp_reply.h"
#include "smtpd/smtp_server.h"
#include "auth/sasl.h"
#include "lib/config.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

static void smtp_process(struct smtp_session *s);

/* Between transactions a draining worker says goodbye (RFC 5321 3.8). */
static bool close_if_draining(struct smtp_session *s)
{
	if (!s->core.ctx->draining || s->core.busy || s->core.closing || s->core.dead || s->txn != NULL ||
	    (s->state != SMTP_ST_INIT && s->state != SMTP_ST_READY))
		return false;
	smtp_session_close(s, 421, "4.3.2", "Service shutting down, try again later");
	return true;
}

static void session_vreply(struct smtp_session *s, int code, const char *enh, const char *fmt, va_list ap)
{
	char text[1024];
	vsnprintf(text, sizeof(text), fmt, ap);
	buf_reset(&s->reply);
	smtp_reply_format(&s->reply, code, enh, text);
	io_write(s->core.io, s->reply.data, s->reply.len);
}

void smtp_reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	session_vreply(s, code, enh, fmt, ap);
	va_end(ap);
}

void smtp_reply_error(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	session_vreply(s, code, enh, fmt, ap);
	va_end(ap);
	session_error(&s->core);
}

void smtp_session_close(struct smtp_session *s, int code, const char *enh, const char *text)
{
	if (s->core.closing)
		return;
	if (code != 0)
		smtp_reply(s, code, enh, "%s %s", s->core.ctx->cfg->hostname, text);
	session_close(&s->core);
}

/* ---- the skeleton's hooks (session/session.h) ---- */

static struct smtp_session *smtp_of(struct session *core)
{
	return SESSION_OF(core, struct smtp_session);
}

static int smtp_timeout(const struct config *cfg)
{
	return cfg->smtp_timeout;
}

static void smtp_greet(struct session *core)
{
	/* RFC 2034: no enhanced code in the greeting. */
	smtp_reply(smtp_of(core), 220, NULL, "%s ESMTP postoffice", core->ctx->cfg->hostname);
}

static void smtp_tls_ready(struct session *core)
{
	smtp_of(core)->state = SMTP_ST_INIT;
}

static void smtp_bye(struct session *core, enum session_bye why)
{
	static const struct {
		int code;
		const char *enh, *text;
	} bye[] = {
	    [SESSION_BYE_DRAINING] = {421, "4.3.2", "Service shutting down, try again later"},
	    [SESSION_BYE_TOO_MANY] = {421, "4.7.0", "Too many connections, try again later"},
	    [SESSION_BYE_TIMEOUT] = {421, "4.4.2", "Timeout, closing connection"},
	    [SESSION_BYE_TOO_MANY_ERRORS] = {421, "4.7.0", "Too many errors, closing connection"},
	};
	smtp_reply(smtp_of(core), bye[why].code, bye[why].enh, "%s %s", core->ctx->cfg->hostname,
		   bye[why].text);
}

static void smtp_drain(struct session *core)
{
	close_if_draining(smtp_of(core));
}

static void smtp_ended(struct session *core, const char *reason)
{
	log_info("smtp disconnect session=%s reason=%s messages=%d", core->id, reason,
		 smtp_of(core)->messages);
}

static void smtp_free(struct session *core)
{
	struct smtp_session *s = smtp_of(core);
	smtp_txn_free(&s->txn);
	sasl_server_free(&s->sasl);
	free(s->helo);
	free(s->auth_user);
	buf_free(&s->reply);
}

static const char *smtp_eof_reason(struct session *core)
{
	enum smtp_state state = smtp_of(core)->state;
	if (state == SMTP_ST_DATA || state == SMTP_ST_BDAT)
		return "eof-in-data";
	return state == SMTP_ST_TLS_WAIT ? "tls-failed" : NULL;
}

static void smtp_input(struct session *core)
{
	smtp_process(smtp_of(core));
}

static const struct session_ops smtp_ops = {
    .protocol = "smtp",
    .timeout = smtp_timeout,
    .greet = smtp_greet,
    .tls_ready = smtp_tls_ready,
    .input = smtp_input,
    .bye = smtp_bye,
    .drain = smtp_drain,
    .ended = smtp_ended,
    .free = smtp_free,
    .eof_reason = smtp_eof_reason,
};

void smtp_session_start(struct service_ctx *ctx, const struct conn_info *conn)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->submission = conn->service != SERVICE_SMTP;
	s->state = conn->implicit_tls ? SMTP_ST_TLS_WAIT : SMTP_ST_INIT;
	session_start(&s->core, &smtp_ops, ctx, conn);
}

static void cmd_helo(struct smtp_session *s, struct smtp_command *cmd)
{
	/* HELO/EHLO reset any transaction (RFC 5321 4.1.4). */
	smtp_txn_free(&s->txn);
	free(s->helo);
	char clean[256];
	log_printable(clean, sizeof(clean), cmd->arg, strlen(cmd->arg));
	/* The name goes into Received: keep it to one token. */
	for (char *p = clean; *p; p++)
		if (*p == ' ' || *p == '(' || *p == ')' || *p == ';')
			*p = '_';
	s->helo = xstrdup(clean);
	s->esmtp = cmd->verb == SMTP_VERB_EHLO;
	s->state = SMTP_ST_READY;
	if (!s->esmtp) {
		smtp_reply(s, 250, NULL, "%s", s->core.ctx->cfg->hostname);
		return;
	}
	struct buf text = BUF_INIT;
	buf_printf(&text,
		   "%s Hello %s [%s]\nPIPELINING\nSIZE %llu\n8BITMIME\nENHANCEDSTATUSCODES\n"
		   "SMTPUTF8\nDSN\nCHUNKING",
		   s->core.ctx->cfg->hostname, s->helo, s->core.conn.ip,
		   (unsigned long long)s->core.ctx->cfg->max_message_size);
	if (!s->core.tls && s->core.ctx->tls != NULL)
		buf_append_str(&text, "\nSTARTTLS");
	if (smtp_auth_offered(s))
		buf_append_str(&text, "\nAUTH PLAIN LOGIN");
	buf_append_str(&text, "\nHELP");
	smtp_reply(s, 250, NULL, "%s", buf_cstr(&text));
	buf_free(&text);
}

static void cmd_starttls(struct smtp_session *s, struct smtp_command *cmd)
{
	if (s->core.tls) {
		smtp_reply_error(s, 503, "5.5.1", "TLS is already active");
		return;
	}
	if (s->core.ctx->tls == NULL) {
		smtp_reply_error(s, 454, "4.7.0", "TLS not available");
		return;
	}
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* RFC 3207 4.2: forget everything learnt before the handshake. */
	smtp_txn_free(&s->txn);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	int discarded = session_start_tls(&s->core);
	if (discarded < 0) {
		session_end(&s->core, "tls-failed");
		return;
	}
	if (discarded > 0)
		log_info("smtp starttls-discard session=%s bytes=%d", s->core.id, discarded);
	s->state = SMTP_ST_TLS_WAIT;
}

static void cmd_rset(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_txn_free(&s->txn);
	if (s->state != SMTP_ST_INIT)
		s->state = SMTP_ST_READY;
	smtp_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_noop(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_quit(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_session_close(s, 221, "2.0.0", "Bye");
}

static void cmd_vrfy(struct smtp_session *s, struct smtp_command *cmd)
{
	/* RFC 5321 3.5.3: 252 when we will not verify. */
	smtp_reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_reply_error(s, 502, "5.5.1", "EXPN is not available");
}

static void cmd_help(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_reply(s, 214, "2.0.0",
		   "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP%s%s\n"
		   "See RFC 5321",
		   s->core.tls || s->core.ctx->tls == NULL ? "" : " STARTTLS",
		   smtp_auth_offered(s) ? " AUTH" : "");
}

static void cmd_data(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_cmd_data(s);
}

/* Which commands each state allows (RFC 5321 4.1.4 and 3.3: HELO/EHLO
   first, then MAIL, RCPT, DATA in that order; RFC 3030 2: between BDAT
   chunks only BDAT, RSET, NOOP and QUIT). */
#define IN_INIT (1u << SMTP_ST_INIT)
#define IN_READY (1u << SMTP_ST_READY)
#define IN_TXN ((1u << SMTP_ST_MAIL) | (1u << SMTP_ST_RCPT))
#define IN_ANY (IN_INIT | IN_READY | IN_TXN)

static const struct {
	void (*handler)(struct smtp_session *s, struct smtp_command *cmd);
	unsigned states;
	bool between_chunks; /* allowed during a BDAT transfer */
} commands[SMTP_VERB_COUNT] = {
    [SMTP_VERB_HELO] = {cmd_helo, IN_ANY, false},
    [SMTP_VERB_EHLO] = {cmd_helo, IN_ANY, false},
    [SMTP_VERB_MAIL] = {smtp_cmd_mail, IN_READY, false},
    [SMTP_VERB_RCPT] = {smtp_cmd_rcpt, IN_TXN, false},
    [SMTP_VERB_DATA] = {cmd_data, IN_TXN, false},
    /* BDAT checks its own state: its chunk must be read even when refused. */
    [SMTP_VERB_BDAT] = {smtp_cmd_bdat, IN_ANY, true},
    [SMTP_VERB_RSET] = {cmd_rset, IN_ANY, true},
    [SMTP_VERB_NOOP] = {cmd_noop, IN_ANY, true},
    [SMTP_VERB_QUIT] = {cmd_quit, IN_ANY, true},
    [SMTP_VERB_VRFY] = {cmd_vrfy, IN_ANY, false},
    [SMTP_VERB_EXPN] = {cmd_expn, IN_ANY, false},
    [SMTP_VERB_HELP] = {cmd_help, IN_ANY, false},
    [SMTP_VERB_STARTTLS] = {cmd_starttls, IN_ANY, false},
    [SMTP_VERB_AUTH] = {smtp_cmd_auth, IN_ANY, false},
};

/* The 503 reply for a command out of order. */
static const char *out_of_order(const struct smtp_session *s, enum smtp_verb verb)
{
	if (s->state == SMTP_ST_INIT)
		return "send HELO or EHLO first";
	return verb == SMTP_VERB_MAIL ? "nested MAIL command" : "need MAIL command";
}

static void dispatch(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command *cmd = xmalloc(sizeof(*cmd));
	const char *error = NULL;
	switch (smtp_command_parse(line, len, cmd, &error)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_UNKNOWN:
		smtp_reply_error(s, 500, "5.5.1", "Error: command not recognized");
		free(cmd);
		return;
	case SMTP_PARSE_TOO_LONG:
		smtp_reply_error(s, 500, "5.5.2", "Error: line too long");
		free(cmd);
		return;
	case SMTP_PARSE_SYNTAX:
		smtp_reply_error(s, 501, "5.5.4", "Syntax error: %s", error);
		free(cmd);
		return;
	}
	if (s->txn != NULL && s->txn->bdat && !commands[cmd->verb].between_chunks)
		smtp_reply_error(s, 503, "5.5.1",
				 "Error: only BDAT, RSET, NOOP or QUIT during a BDAT transfer");
	else if (!(commands[cmd->verb].states & (1u << s->state)))
		smtp_reply_error(s, 503, "5.5.1", "Error: %s", out_of_order(s, cmd->verb));
	else
		commands[cmd->verb].handler(s, cmd);
	free(cmd);
}

static void smtp_process(struct smtp_session *s)
{
	while (!s->core.busy && !s->core.closing && !s->core.dead) {
		if (s->state == SMTP_ST_TLS_WAIT || close_if_draining(s))
			return;
		if (s->state == SMTP_ST_DATA) {
			if (!smtp_data_input(s))
				return;
			continue;
		}
		if (s->state == SMTP_ST_BDAT) {
			if (!smtp_bdat_input(s))
				return;
			continue;
		}
		char *line;
		size_t len;
		int rc = io_read_line(s->core.io, SMTP_MAX_MAIL_LINE, &line, &len);
		if (rc == 0)
			return;
		if (rc < 0) {
			if (s->state == SMTP_ST_AUTH) {
				sasl_server_free(&s->sasl);
				s->state = SMTP_ST_READY;
			}
			smtp_reply_error(s, 500, "5.5.2", "Error: line too long");
			continue;
		}
		if (s->state == SMTP_ST_AUTH)
			smtp_auth_input(s, line, len);
		else
			dispatch(s, line, len);
	}
}
