/* The SMTP server session (RFC 5321): connection, greeting, the command
   loop with pipelining, HELO/EHLO, STARTTLS and the small commands. */
#include "smtp/smtp_private.h"
#include "smtp/smtp_reply.h"
#include "auth/sasl.h"
#include "lib/id.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

static void smtp_io_cb(struct io *io, enum io_event ev, void *ctx);
static void smtp_process(struct smtp_session *s);

/* Between transactions a draining worker says goodbye (RFC 5321 3.8). */
static bool close_if_draining(struct smtp_session *s)
{
	if (!worker->draining || s->busy || s->closing || s->dead || s->txn != NULL ||
	    (s->state != SMTP_ST_INIT && s->state != SMTP_ST_READY))
		return false;
	smtp_session_close(s, 421, "4.3.2", "Service shutting down, try again later");
	return true;
}

static void drain_session(struct worker_session *ws)
{
	close_if_draining(WORKER_SESSION_OF(ws, struct smtp_session, link));
}

static void session_vreply(struct smtp_session *s, int code, const char *enh, const char *fmt, va_list ap)
{
	char text[1024];
	vsnprintf(text, sizeof(text), fmt, ap);
	buf_reset(&s->reply);
	smtp_reply_format(&s->reply, code, enh, text);
	io_write(s->io, s->reply.data, s->reply.len);
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
	if (++s->errors >= worker->cfg->max_errors) {
		log_info("smtp disconnect session=%s reason=too-many-errors errors=%d", s->id, s->errors);
		smtp_session_close(s, 421, "4.7.0", "Too many errors, closing connection");
	}
}

void smtp_session_close(struct smtp_session *s, int code, const char *enh, const char *text)
{
	if (s->closing)
		return;
	if (code != 0)
		smtp_reply(s, code, enh, "%s %s", worker->cfg->hostname, text);
	s->closing = true;
	io_close_after_flush(s->io);
}

static void session_free(struct smtp_session *s)
{
	worker_session_remove(&s->link);
	if (s->acquired)
		worker_conn_release(&s->conn);
	smtp_txn_free(&s->txn);
	sasl_server_free(&s->sasl);
	if (s->delay != NULL)
		event_free(s->delay);
	io_free(&s->io);
	free(s->helo);
	free(s->auth_user);
	buf_free(&s->reply);
	free(s);
}

/* The connection is over: free now, or when the running job returns. */
static void session_end(struct smtp_session *s, const char *reason)
{
	log_info("smtp disconnect session=%s reason=%s messages=%d", s->id, reason, s->messages);
	if (s->busy) {
		s->dead = true;
		io_pause_input(s->io);
		return;
	}
	session_free(s);
}

bool smtp_session_reap(struct smtp_session *s)
{
	if (!s->dead)
		return false;
	session_free(s);
	return true;
}

void smtp_session_resume(struct smtp_session *s)
{
	s->busy = false;
	if (smtp_session_reap(s))
		return;
	io_resume_input(s->io);
	io_kick_input(s->io);
}

static void greet(struct smtp_session *s)
{
	/* RFC 2034: no enhanced code in the greeting. */
	smtp_reply(s, 220, NULL, "%s ESMTP postoffice", worker->cfg->hostname);
}

void smtp_session_start(const struct conn_info *conn)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	worker_session_add(&s->link, drain_session);
	s->conn = *conn;
	id_new(s->id);
	s->submission = conn->service != SERVICE_SMTP;
	s->io = io_new(worker->base, conn->fd, smtp_io_cb, s);
	io_set_timeout(s->io, worker->cfg->smtp_timeout);
	log_info("smtp connect session=%s service=%s ip=%s port=%d", s->id, service_name(conn->service),
		 conn->ip, conn->port);
	if (worker->draining) {
		smtp_session_close(s, 421, "4.3.2", "Service shutting down, try again later");
		return;
	}
	if (!worker_conn_acquire(conn)) {
		log_info("smtp reject session=%s reason=too-many-connections ip=%s", s->id, conn->ip);
		smtp_session_close(s, 421, "4.7.0", "Too many connections, try again later");
		return;
	}
	s->acquired = true;
	if (conn->implicit_tls) {
		if (worker->tls == NULL || io_start_tls_server(s->io, worker->tls) < 0) {
			session_end(s, "tls-unavailable");
			return;
		}
		s->state = SMTP_ST_TLS_WAIT;
		return;
	}
	s->state = SMTP_ST_INIT;
	greet(s);
}

static void tls_done(struct smtp_session *s)
{
	s->tls = true;
	log_info("smtp tls session=%s version=%s cipher=%s", s->id, io_tls_version(s->io), io_tls_cipher(s->io));
	s->state = SMTP_ST_INIT;
	if (s->conn.implicit_tls)
		greet(s);
	io_kick_input(s->io);
}

static void smtp_io_cb(struct io *io, enum io_event ev, void *ctx)
{
	struct smtp_session *s = ctx;
	switch (ev) {
	case IO_EVENT_INPUT:
		smtp_process(s);
		break;
	case IO_EVENT_TLS_DONE:
		tls_done(s);
		break;
	case IO_EVENT_TIMEOUT:
		if (s->busy)
			break;
		log_info("smtp timeout session=%s state=%d", s->id, s->state);
		smtp_session_close(s, 421, "4.4.2", "Timeout, closing connection");
		break;
	case IO_EVENT_CLOSED:
		session_end(s, "quit");
		break;
	case IO_EVENT_EOF:
		session_end(s, s->state == SMTP_ST_DATA || s->state == SMTP_ST_BDAT ? "eof-in-data" : "eof");
		break;
	case IO_EVENT_ERROR: {
		char why[200];
		log_info("smtp io-error session=%s error=\"%s\"", s->id,
			 log_printable(why, sizeof(why), io_error(io), strlen(io_error(io))));
		session_end(s, s->state == SMTP_ST_TLS_WAIT ? "tls-failed" : "io-error");
		break;
	}
	default:
		break;
	}
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
		smtp_reply(s, 250, NULL, "%s", worker->cfg->hostname);
		return;
	}
	struct buf text = BUF_INIT;
	buf_printf(&text, "%s Hello %s [%s]\nPIPELINING\nSIZE %llu\n8BITMIME\nENHANCEDSTATUSCODES\n"
			  "SMTPUTF8\nDSN\nCHUNKING",
		   worker->cfg->hostname, s->helo, s->conn.ip, (unsigned long long)worker->cfg->max_message_size);
	if (!s->tls && worker->tls != NULL)
		buf_append_str(&text, "\nSTARTTLS");
	if (smtp_auth_offered(s))
		buf_append_str(&text, "\nAUTH PLAIN LOGIN");
	buf_append_str(&text, "\nHELP");
	smtp_reply(s, 250, NULL, "%s", buf_cstr(&text));
	buf_free(&text);
}

static void cmd_starttls(struct smtp_session *s)
{
	if (s->tls) {
		smtp_reply_error(s, 503, "5.5.1", "TLS is already active");
		return;
	}
	if (worker->tls == NULL) {
		smtp_reply_error(s, 454, "4.7.0", "TLS not available");
		return;
	}
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* RFC 3207 4.2: forget everything learnt before the handshake. */
	smtp_txn_free(&s->txn);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	int discarded = io_start_tls_server(s->io, worker->tls);
	if (discarded < 0) {
		session_end(s, "tls-failed");
		return;
	}
	if (discarded > 0)
		log_info("smtp starttls-discard session=%s bytes=%d", s->id, discarded);
	s->state = SMTP_ST_TLS_WAIT;
}

static void cmd_rset(struct smtp_session *s)
{
	smtp_txn_free(&s->txn);
	if (s->state != SMTP_ST_INIT)
		s->state = SMTP_ST_READY;
	smtp_reply(s, 250, "2.0.0", "Ok");
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
	if (s->txn != NULL && s->txn->bdat && cmd->verb != SMTP_VERB_BDAT && cmd->verb != SMTP_VERB_RSET &&
	    cmd->verb != SMTP_VERB_QUIT && cmd->verb != SMTP_VERB_NOOP) {
		/* RFC 3030 2: only BDAT, RSET, QUIT and NOOP between chunks. */
		smtp_reply_error(s, 503, "5.5.1", "Error: only BDAT, RSET, NOOP or QUIT during a BDAT transfer");
		free(cmd);
		return;
	}
	switch (cmd->verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		cmd_helo(s, cmd);
		break;
	case SMTP_VERB_MAIL:
		smtp_cmd_mail(s, cmd);
		break;
	case SMTP_VERB_RCPT:
		smtp_cmd_rcpt(s, cmd);
		break;
	case SMTP_VERB_DATA:
		smtp_cmd_data(s);
		break;
	case SMTP_VERB_BDAT:
		smtp_cmd_bdat(s, cmd);
		break;
	case SMTP_VERB_RSET:
		cmd_rset(s);
		break;
	case SMTP_VERB_NOOP:
		smtp_reply(s, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_QUIT:
		smtp_session_close(s, 221, "2.0.0", "Bye");
		break;
	case SMTP_VERB_VRFY:
		/* RFC 5321 3.5.3: 252 when we will not verify. */
		smtp_reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case SMTP_VERB_EXPN:
		smtp_reply_error(s, 502, "5.5.1", "EXPN is not available");
		break;
	case SMTP_VERB_HELP:
		smtp_reply(s, 214, "2.0.0",
			   "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP%s%s\n"
			   "See RFC 5321",
			   s->tls || worker->tls == NULL ? "" : " STARTTLS", smtp_auth_offered(s) ? " AUTH" : "");
		break;
	case SMTP_VERB_STARTTLS:
		cmd_starttls(s);
		break;
	case SMTP_VERB_AUTH:
		smtp_cmd_auth(s, cmd);
		break;
	case SMTP_VERB_COUNT:
		break;
	}
	free(cmd);
}

static void smtp_process(struct smtp_session *s)
{
	while (!s->busy && !s->closing && !s->dead) {
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
		int rc = io_read_line(s->io, SMTP_MAX_MAIL_LINE, &line, &len);
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
