/* The POP3 session: connection, command dispatch, STLS, CAPA, QUIT. */
#include "pop3/pop3_private.h"
#include "lib/id.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdarg.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

/* Which commands each state allows (RFC 1939 sections 4-6, RFC 2449 CAPA
   in every state, RFC 2595 STLS only before login). */
#define IN_AUTH (1u << POP3_ST_AUTH)
#define IN_TRANS (1u << POP3_ST_TRANSACTION)

static void cmd_capa(struct pop3_session *s, const struct pop3_command *cmd);
static void cmd_stls(struct pop3_session *s, const struct pop3_command *cmd);
static void cmd_quit(struct pop3_session *s, const struct pop3_command *cmd);
static void cmd_noop(struct pop3_session *s, const struct pop3_command *cmd);
static void cmd_apop(struct pop3_session *s, const struct pop3_command *cmd);

static const struct {
	enum pop3_cmd cmd;
	unsigned states;
	void (*handler)(struct pop3_session *s, const struct pop3_command *cmd);
} command_table[POP3_CMD_COUNT] = {
	[POP3_CMD_USER] = { POP3_CMD_USER, IN_AUTH, pop3_cmd_user },
	[POP3_CMD_PASS] = { POP3_CMD_PASS, IN_AUTH, pop3_cmd_pass },
	[POP3_CMD_APOP] = { POP3_CMD_APOP, IN_AUTH, cmd_apop },
	[POP3_CMD_AUTH] = { POP3_CMD_AUTH, IN_AUTH, pop3_cmd_auth },
	[POP3_CMD_STLS] = { POP3_CMD_STLS, IN_AUTH, cmd_stls },
	[POP3_CMD_CAPA] = { POP3_CMD_CAPA, IN_AUTH | IN_TRANS, cmd_capa },
	[POP3_CMD_QUIT] = { POP3_CMD_QUIT, IN_AUTH | IN_TRANS, cmd_quit },
	[POP3_CMD_STAT] = { POP3_CMD_STAT, IN_TRANS, pop3_cmd_stat },
	[POP3_CMD_LIST] = { POP3_CMD_LIST, IN_TRANS, pop3_cmd_list },
	[POP3_CMD_RETR] = { POP3_CMD_RETR, IN_TRANS, pop3_cmd_retr },
	[POP3_CMD_DELE] = { POP3_CMD_DELE, IN_TRANS, pop3_cmd_dele },
	[POP3_CMD_NOOP] = { POP3_CMD_NOOP, IN_TRANS, cmd_noop },
	[POP3_CMD_RSET] = { POP3_CMD_RSET, IN_TRANS, pop3_cmd_rset },
	[POP3_CMD_TOP] = { POP3_CMD_TOP, IN_TRANS, pop3_cmd_retr },
	[POP3_CMD_UIDL] = { POP3_CMD_UIDL, IN_TRANS, pop3_cmd_uidl },
};

static void pop3_io_cb(struct io *io, enum io_event ev, void *ctx);

/* A draining worker closes sessions between commands.  Without QUIT
   nothing is deleted (RFC 1939 section 6), so this loses nothing. */
static bool close_if_draining(struct pop3_session *s)
{
	if (!worker->draining || s->busy || s->closing || s->dead || s->send.active ||
	    s->state == POP3_ST_TLS_WAIT || s->state == POP3_ST_UPDATE)
		return false;
	pop3_session_close(s, "-ERR [SYS/TEMP] Server shutting down, try again later");
	return true;
}

static void drain_session(struct worker_session *ws)
{
	close_if_draining(WORKER_SESSION_OF(ws, struct pop3_session, link));
}

void pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	io_vprintf(s->io, fmt, ap);
	va_end(ap);
	io_write(s->io, "\r\n", 2);
}

void pop3_reply_error(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	io_write(s->io, "-ERR ", 5);
	va_start(ap, fmt);
	io_vprintf(s->io, fmt, ap);
	va_end(ap);
	io_write(s->io, "\r\n", 2);
	if (++s->errors >= worker->cfg->max_errors) {
		log_info("pop3 disconnect session=%s reason=too-many-errors errors=%d", s->id, s->errors);
		pop3_session_close(s, "-ERR Too many errors, closing connection");
	}
}

void pop3_session_close(struct pop3_session *s, const char *text)
{
	if (s->closing)
		return;
	if (text != NULL)
		pop3_reply(s, "%s", text);
	s->closing = true;
	io_close_after_flush(s->io);
}

static void session_free(struct pop3_session *s)
{
	worker_session_remove(&s->link);
	if (s->acquired)
		worker_conn_release(&s->conn);
	pop3_auth_free(s);
	pop3_mail_free(s);
	if (s->delay != NULL)
		event_free(s->delay);
	io_free(&s->io);
	free(s);
}

/* The connection is over: free now, or when the running job returns.  A
   session that ends without QUIT deletes nothing (RFC 1939 section 6). */
static void session_end(struct pop3_session *s, const char *reason)
{
	log_info("pop3 disconnect session=%s reason=%s user=%s retrieved=%u bytes=%llu", s->id, reason,
		 s->address ? s->address : "-", s->retrieved, (unsigned long long)s->retrieved_bytes);
	if (s->busy) {
		s->dead = true;
		io_pause_input(s->io);
		return;
	}
	session_free(s);
}

bool pop3_session_reap(struct pop3_session *s)
{
	if (!s->dead)
		return false;
	session_free(s);
	return true;
}

void pop3_session_resume(struct pop3_session *s)
{
	s->busy = false;
	if (pop3_session_reap(s))
		return;
	io_resume_input(s->io);
	io_kick_input(s->io);
}

static void greet(struct pop3_session *s)
{
	/* No APOP timestamp: passwords are stored hashed (RFC 1939 section 7). */
	pop3_reply(s, "+OK postoffice POP3 ready");
}

void pop3_session_start(const struct conn_info *conn)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	worker_session_add(&s->link, drain_session);
	s->conn = *conn;
	s->lock_fd = -1;
	s->send.fd = -1;
	id_new(s->id);
	s->io = io_new(worker->base, conn->fd, pop3_io_cb, s);
	io_set_timeout(s->io, worker->cfg->pop3_timeout);
	log_info("pop3 connect session=%s service=%s ip=%s port=%d", s->id,
		 conn->service == SERVICE_POP3S ? "pop3s" : "pop3", conn->ip, conn->port);
	if (worker->draining) {
		pop3_session_close(s, "-ERR [SYS/TEMP] Server shutting down, try again later");
		return;
	}
	if (!worker_conn_acquire(conn)) {
		log_info("pop3 reject session=%s reason=too-many-connections ip=%s", s->id, conn->ip);
		pop3_session_close(s, "-ERR [SYS/TEMP] Too many connections, try again later");
		return;
	}
	s->acquired = true;
	if (conn->implicit_tls) {
		if (worker->tls == NULL || io_start_tls_server(s->io, worker->tls) < 0) {
			session_end(s, "tls-unavailable");
			return;
		}
		s->state = POP3_ST_TLS_WAIT;
		return;
	}
	s->state = POP3_ST_AUTH;
	greet(s);
}

static void tls_done(struct pop3_session *s)
{
	s->tls = true;
	log_info("pop3 tls session=%s version=%s cipher=%s", s->id, io_tls_version(s->io),
		 io_tls_cipher(s->io));
	s->state = POP3_ST_AUTH;
	if (s->conn.implicit_tls)
		greet(s);
	io_kick_input(s->io);
}

static void cmd_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	/* RFC 2449 section 5; login capabilities only before login. */
	pop3_reply(s, "+OK Capability list follows");
	io_write_str(s->io, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (s->state == POP3_ST_AUTH) {
		io_write_str(s->io, "USER\r\nSASL PLAIN LOGIN\r\n");
		if (!s->tls && worker->tls != NULL)
			io_write_str(s->io, "STLS\r\n");
	}
	io_write_str(s->io, "IMPLEMENTATION postoffice\r\n.\r\n");
}

static void cmd_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (s->tls) {
		pop3_reply_error(s, "TLS is already active");
		return;
	}
	if (worker->tls == NULL) {
		pop3_reply_error(s, "[SYS/PERM] TLS is not available");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation now");
	/* RFC 2595 section 4: forget what the client said before TLS. */
	free(s->user);
	s->user = NULL;
	int discarded = io_start_tls_server(s->io, worker->tls);
	if (discarded < 0) {
		session_end(s, "tls-failed");
		return;
	}
	if (discarded > 0)
		log_info("pop3 stls-discard session=%s bytes=%d", s->id, discarded);
	s->state = POP3_ST_TLS_WAIT;
}

static void cmd_quit(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (s->state == POP3_ST_TRANSACTION) {
		pop3_update(s);
		return;
	}
	pop3_session_close(s, "+OK postoffice POP3 signing off");
}

static void cmd_noop(struct pop3_session *s, const struct pop3_command *cmd)
{
	pop3_reply(s, "+OK");
}

static void cmd_apop(struct pop3_session *s, const struct pop3_command *cmd)
{
	pop3_reply_error(s, "[AUTH] APOP is not supported (passwords are stored hashed); use USER/PASS or AUTH over TLS");
}

static void dispatch(struct pop3_session *s, const char *line, size_t len)
{
	struct pop3_command cmd;
	const char *error;
	if (pop3_parse(line, len, &cmd, &error) < 0) {
		pop3_reply_error(s, "%s", error);
		return;
	}
	if (!(command_table[cmd.cmd].states & (1u << s->state))) {
		pop3_reply_error(s, "%s is not allowed %s", pop3_cmd_name(cmd.cmd),
				 s->state == POP3_ST_AUTH ? "before login" : "after login");
		return;
	}
	command_table[cmd.cmd].handler(s, &cmd);
}

static void pop3_process(struct pop3_session *s)
{
	while (!s->busy && !s->closing && !s->send.active && s->state != POP3_ST_TLS_WAIT &&
	       s->state != POP3_ST_UPDATE && !close_if_draining(s)) {
		char *line;
		size_t len;
		int rc = io_read_line(s->io, POP3_LINE_MAX, &line, &len);
		if (rc == 0)
			return;
		if (rc < 0) {
			log_info("pop3 line-too-long session=%s", s->id);
			if (s->state == POP3_ST_SASL) {
				/* RFC 5034 section 4: a bad response ends the exchange. */
				pop3_auth_free(s);
				s->state = POP3_ST_AUTH;
			}
			pop3_reply_error(s, "Line too long");
			continue;
		}
		if (s->state == POP3_ST_SASL)
			pop3_sasl_input(s, line, len);
		else
			dispatch(s, line, len);
	}
}

static void pop3_io_cb(struct io *io, enum io_event ev, void *ctx)
{
	struct pop3_session *s = ctx;
	switch (ev) {
	case IO_EVENT_INPUT:
		pop3_process(s);
		break;
	case IO_EVENT_DRAINED:
		if (!s->send.active)
			break;
		pop3_send_pump(s);
		/* Pipelined commands may be waiting in the input buffer. */
		if (!s->send.active)
			pop3_process(s);
		break;
	case IO_EVENT_TLS_DONE:
		tls_done(s);
		break;
	case IO_EVENT_TIMEOUT:
		if (s->closing || s->send.active || s->state == POP3_ST_TLS_WAIT) {
			session_end(s, "timeout");
			return;
		}
		log_info("pop3 timeout session=%s", s->id);
		pop3_session_close(s, "-ERR Disconnected for inactivity");
		break;
	case IO_EVENT_EOF:
		session_end(s, s->send.active ? "eof-during-retr" : "eof");
		break;
	case IO_EVENT_ERROR:
		session_end(s, io_error(io));
		break;
	case IO_EVENT_CLOSED:
		session_end(s, s->state == POP3_ST_UPDATE ? "quit" : "closed");
		break;
	case IO_EVENT_CONNECTED:
		break;
	}
}
