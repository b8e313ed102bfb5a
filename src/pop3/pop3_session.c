/* The POP3 session: connection, command dispatch, STLS, CAPA, QUIT. */
#include "pop3/pop3_private.h"
#include "pop3/pop3.h"
#include "lib/config.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/metrics.h"
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
    [POP3_CMD_USER] = {POP3_CMD_USER, IN_AUTH, pop3_cmd_user},
    [POP3_CMD_PASS] = {POP3_CMD_PASS, IN_AUTH, pop3_cmd_pass},
    [POP3_CMD_APOP] = {POP3_CMD_APOP, IN_AUTH, cmd_apop},
    [POP3_CMD_AUTH] = {POP3_CMD_AUTH, IN_AUTH, pop3_cmd_auth},
    [POP3_CMD_STLS] = {POP3_CMD_STLS, IN_AUTH, cmd_stls},
    [POP3_CMD_CAPA] = {POP3_CMD_CAPA, IN_AUTH | IN_TRANS, cmd_capa},
    [POP3_CMD_QUIT] = {POP3_CMD_QUIT, IN_AUTH | IN_TRANS, cmd_quit},
    [POP3_CMD_STAT] = {POP3_CMD_STAT, IN_TRANS, pop3_cmd_stat},
    [POP3_CMD_LIST] = {POP3_CMD_LIST, IN_TRANS, pop3_cmd_list},
    [POP3_CMD_RETR] = {POP3_CMD_RETR, IN_TRANS, pop3_cmd_retr},
    [POP3_CMD_DELE] = {POP3_CMD_DELE, IN_TRANS, pop3_cmd_dele},
    [POP3_CMD_NOOP] = {POP3_CMD_NOOP, IN_TRANS, cmd_noop},
    [POP3_CMD_RSET] = {POP3_CMD_RSET, IN_TRANS, pop3_cmd_rset},
    [POP3_CMD_TOP] = {POP3_CMD_TOP, IN_TRANS, pop3_cmd_retr},
    [POP3_CMD_UIDL] = {POP3_CMD_UIDL, IN_TRANS, pop3_cmd_uidl},
};

/* A draining worker closes sessions between commands.  Without QUIT
   nothing is deleted (RFC 1939 section 6), so this loses nothing. */
static bool close_if_draining(struct pop3_session *s)
{
	if (!s->core.ctx->draining || s->core.busy || s->core.closing || s->core.dead || s->send.active ||
	    s->state == POP3_ST_TLS_WAIT || s->state == POP3_ST_UPDATE)
		return false;
	pop3_session_close(s, "-ERR [SYS/TEMP] Server shutting down, try again later");
	return true;
}

void pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	io_vprintf(s->core.io, fmt, ap);
	va_end(ap);
	io_write(s->core.io, "\r\n", 2);
}

void pop3_reply_error(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	io_write(s->core.io, "-ERR ", 5);
	va_start(ap, fmt);
	io_vprintf(s->core.io, fmt, ap);
	va_end(ap);
	io_write(s->core.io, "\r\n", 2);
	session_error(&s->core);
}

void pop3_session_close(struct pop3_session *s, const char *text)
{
	if (s->core.closing)
		return;
	if (text != NULL)
		pop3_reply(s, "%s", text);
	session_close(&s->core);
}

/* ---- the skeleton's hooks (session/session.h) ---- */

static struct pop3_session *pop3_of(struct session *core)
{
	return SESSION_OF(core, struct pop3_session);
}

static int pop3_timeout(const struct config *cfg)
{
	return cfg->pop3_timeout;
}

static void pop3_greet(struct session *core)
{
	/* No APOP timestamp: passwords are stored hashed (RFC 1939 section 7). */
	pop3_reply(pop3_of(core), "+OK postoffice POP3 ready");
}

static void pop3_tls_ready(struct session *core)
{
	pop3_of(core)->state = POP3_ST_AUTH;
}

static void pop3_bye(struct session *core, enum session_bye why)
{
	static const char *const text[] = {
	    [SESSION_BYE_DRAINING] = "-ERR [SYS/TEMP] Server shutting down, try again later",
	    [SESSION_BYE_TOO_MANY] = "-ERR [SYS/TEMP] Too many connections, try again later",
	    [SESSION_BYE_TIMEOUT] = "-ERR Disconnected for inactivity",
	    [SESSION_BYE_TOO_MANY_ERRORS] = "-ERR Too many errors, closing connection",
	};
	pop3_reply(pop3_of(core), "%s", text[why]);
}

static void pop3_drain(struct session *core)
{
	close_if_draining(pop3_of(core));
}

/* A session that ends without QUIT deletes nothing (RFC 1939 section 6). */
static void pop3_ended(struct session *core, const char *reason)
{
	struct pop3_session *s = pop3_of(core);
	log_info("pop3 disconnect session=%s reason=%s user=%s retrieved=%u bytes=%llu", core->id, reason,
		 s->address ? s->address : "-", s->retrieved, (unsigned long long)s->retrieved_bytes);
}

static void pop3_free(struct session *core)
{
	pop3_auth_free(pop3_of(core));
	pop3_mail_free(pop3_of(core));
}

static const char *pop3_eof_reason(struct session *core)
{
	return pop3_of(core)->send.active ? "eof-during-retr" : NULL;
}

static bool pop3_timeout_silent(struct session *core)
{
	struct pop3_session *s = pop3_of(core);
	return s->send.active || s->state == POP3_ST_TLS_WAIT;
}

static void pop3_process(struct pop3_session *s);

static void pop3_input(struct session *core)
{
	pop3_process(pop3_of(core));
}

static void pop3_drained(struct session *core)
{
	struct pop3_session *s = pop3_of(core);
	if (!s->send.active)
		return;
	pop3_send_pump(s);
	/* Pipelined commands may be waiting in the input buffer. */
	if (!s->send.active)
		pop3_process(s);
}

static const struct session_ops pop3_ops = {
    .protocol = "pop3",
    .timeout = pop3_timeout,
    .greet = pop3_greet,
    .tls_ready = pop3_tls_ready,
    .input = pop3_input,
    .drained = pop3_drained,
    .bye = pop3_bye,
    .drain = pop3_drain,
    .ended = pop3_ended,
    .free = pop3_free,
    .eof_reason = pop3_eof_reason,
    .timeout_silent = pop3_timeout_silent,
};

void pop3_session_start(struct service_ctx *ctx, const struct conn_info *conn)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	s->send.fd = -1;
	s->state = conn->implicit_tls ? POP3_ST_TLS_WAIT : POP3_ST_AUTH;
	session_start(&s->core, &pop3_ops, ctx, conn);
}

static void cmd_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	/* RFC 2449 section 5; login capabilities only before login. */
	pop3_reply(s, "+OK Capability list follows");
	io_write_str(s->core.io, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (s->state == POP3_ST_AUTH) {
		io_write_str(s->core.io, "USER\r\nSASL PLAIN LOGIN\r\n");
		if (!s->core.tls && s->core.ctx->tls != NULL)
			io_write_str(s->core.io, "STLS\r\n");
	}
	io_write_str(s->core.io, "IMPLEMENTATION postoffice\r\n.\r\n");
}

static void cmd_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (s->core.tls) {
		pop3_reply_error(s, "TLS is already active");
		return;
	}
	if (s->core.ctx->tls == NULL) {
		pop3_reply_error(s, "[SYS/PERM] TLS is not available");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation now");
	/* RFC 2595 section 4: forget what the client said before TLS. */
	free(s->user);
	s->user = NULL;
	int discarded = session_start_tls(&s->core);
	if (discarded < 0) {
		session_end(&s->core, "tls-failed");
		return;
	}
	if (discarded > 0)
		log_info("pop3 stls-discard session=%s bytes=%d", s->core.id, discarded);
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
	pop3_reply_error(
	    s, "[AUTH] APOP is not supported (passwords are stored hashed); use USER/PASS or AUTH over TLS");
}

static void dispatch(struct pop3_session *s, const char *line, size_t len)
{
	struct pop3_command cmd;
	const char *error;
	int rc = pop3_parse(line, len, &cmd, &error);
	metrics_command(METRICS_PROTO_POP3, rc == 0 ? pop3_cmd_name(cmd.cmd) : NULL);
	if (rc < 0) {
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
	while (!s->core.busy && !s->core.closing && !s->send.active && s->state != POP3_ST_TLS_WAIT &&
	       s->state != POP3_ST_UPDATE && !close_if_draining(s)) {
		char *line;
		size_t len;
		int rc = io_read_line(s->core.io, POP3_LINE_MAX, &line, &len);
		if (rc == 0)
			return;
		if (rc < 0) {
			log_info("pop3 line-too-long session=%s", s->core.id);
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
