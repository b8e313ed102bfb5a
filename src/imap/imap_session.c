/* The IMAP session engine (RFC 3501, RFC 9051): greeting, the command
   table with the states each command is allowed in, the input loop that
   feeds the incremental parser, tagged and untagged replies, timeouts and
   teardown.  Command groups live in their own files. */
#include "imap/imap_private.h"
#include "imap/imap.h"
#include "auth/sasl.h"
#include "lib/id.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"
#include "mime/imap.h"
#include "session/session_registry.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <event2/event.h>

static const struct imap_cmd_def commands[] = {
    {"CAPABILITY", IMAP_IN_ANY, imap_cmd_capability, false, false},
    {"NOOP", IMAP_IN_ANY, imap_cmd_noop, false, false},
    {"LOGOUT", IMAP_IN_ANY, NULL, false, false},
    {"ID", IMAP_IN_ANY, imap_cmd_id, false, false},
    {"STARTTLS", IMAP_IN_NOAUTH, imap_cmd_starttls, false, false},
    {"LOGIN", IMAP_IN_NOAUTH, imap_cmd_login, false, false},
    {"AUTHENTICATE", IMAP_IN_NOAUTH, imap_cmd_authenticate, false, false},
    {"ENABLE", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_enable, false, false},
    {"SELECT", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_select, false, false},
    {"EXAMINE", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_select, false, false},
    {"CREATE", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_create, false, false},
    {"DELETE", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_delete, false, false},
    {"RENAME", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_rename, false, false},
    {"SUBSCRIBE", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_subscribe, false, false},
    {"UNSUBSCRIBE", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_subscribe, false, false},
    {"LIST", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_list, false, false},
    {"LSUB", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_list, false, false},
    {"STATUS", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_status, false, false},
    {"APPEND", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_append, false, false},
    {"NAMESPACE", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_namespace, false, false},
    {"IDLE", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_idle, false, false},
    {"GETQUOTA", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_getquota, false, false},
    {"GETQUOTAROOT", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_getquotaroot, false, false},
    {"SETQUOTA", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_setquota, false, false},
    {"COMPRESS", IMAP_IN_AUTH | IMAP_IN_SELECTED, imap_cmd_compress, false, false},
    {"CHECK", IMAP_IN_SELECTED, imap_cmd_noop, false, false},
    {"CLOSE", IMAP_IN_SELECTED, imap_cmd_close, false, false},
    {"UNSELECT", IMAP_IN_SELECTED, imap_cmd_close, false, false},
    {"EXPUNGE", IMAP_IN_SELECTED, imap_cmd_expunge, true, false},
    {"SEARCH", IMAP_IN_SELECTED, imap_cmd_search, true, true},
    {"FETCH", IMAP_IN_SELECTED, imap_cmd_fetch, true, true},
    {"STORE", IMAP_IN_SELECTED, imap_cmd_store, true, true},
    {"COPY", IMAP_IN_SELECTED, imap_cmd_copy, true, false},
    {"MOVE", IMAP_IN_SELECTED, imap_cmd_copy, true, false},
    {"SORT", IMAP_IN_SELECTED, imap_cmd_sort, true, true},
    {"THREAD", IMAP_IN_SELECTED, imap_cmd_thread, true, true},
};

static void session_input(struct imap_session *s);

/* ---- replies ---- */

void imap_write_buf(struct imap_session *s, struct buf *b)
{
	if (b->len > 0)
		io_write(s->core.io, b->data, b->len);
	buf_reset(b);
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	io_write(s->core.io, "* ", 2);
	io_vprintf(s->core.io, fmt, ap);
	io_write(s->core.io, "\r\n", 2);
	va_end(ap);
}

static bool current_no_expunge(const struct imap_session *s)
{
	for (size_t i = 0; s->cmd_name != NULL && i < N_ELEMENTS(commands); i++)
		if (strcmp(commands[i].name, s->cmd_name) == 0)
			return commands[i].no_expunge;
	return false;
}

void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
	/* Changes made by other sessions are reported before the tagged reply
	   (RFC 3501 7: at the end of any command), expunges only where 7.4.1
	   allows them. */
	if (s->view != NULL && s->state == IMAP_STATE_SELECTED && !s->core.dead)
		imap_view_update(s, !current_no_expunge(s));
	va_list ap;
	va_start(ap, fmt);
	io_printf(s->core.io, "%s %s ", s->tag != NULL ? s->tag : "*", status);
	io_vprintf(s->core.io, fmt, ap);
	io_write(s->core.io, "\r\n", 2);
	va_end(ap);
	free(s->tag);
	s->tag = NULL;
	s->cmd_name = NULL;
	s->in_command = false;
}

void imap_internal_error(struct imap_session *s, const char *what, char *error)
{
	if (error != NULL && strncmp(error, STORE_ERROR_BUSY, strlen(STORE_ERROR_BUSY)) == 0) {
		/* another writer held the index longer than the busy timeout:
		   temporary (RFC 5530 3) */
		log_warn("imap %s busy session=%s user=%s: %s", what, s->core.id,
			 s->user != NULL ? s->user->address : "-", error);
		free(error);
		imap_tagged(s, "NO", "[UNAVAILABLE] The mailbox index is busy, try again later");
		return;
	}
	log_error("imap %s failed session=%s user=%s: %s", what, s->core.id,
		  s->user != NULL ? s->user->address : "-", error != NULL ? error : "?");
	free(error);
	imap_tagged(s, "NO",
		    "[SERVERBUG] Internal error occurred. Refer to server log for more information.");
}

int imap_cmd_mailbox(struct imap_cmd_ctx *c, const struct imap_arg *arg, const char **name_r,
		     const char **error_r)
{
	int r = imap_mailbox_parse(c->pool, arg, (c->s->enabled & IMAP_ENABLED_UTF8) != 0, name_r, error_r);
	if (r == 0)
		c->refuse = true;
	return r > 0 ? 0 : -1;
}

void imap_append_astring(struct buf *out, const char *str)
{
	size_t len = strlen(str);
	bool quote_ok = len < 1024;
	for (size_t i = 0; quote_ok && i < len; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c == '\r' || c == '\n' || c >= 0x80)
			quote_ok = false;
	}
	if (!quote_ok) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, str, len);
		return;
	}
	buf_append_char(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, str[i]);
	}
	buf_append_char(out, '"');
}

void imap_append_mailbox(const struct imap_session *s, struct buf *out, const char *name)
{
	/* RFC 6855 3: once UTF8=ACCEPT is enabled, names go out in UTF-8, in
	   quoted strings, never in modified UTF-7 */
	if (!(s->enabled & IMAP_ENABLED_UTF8)) {
		imap_append_astring(out, name);
		return;
	}
	struct pool *pool = pool_create(256);
	const char *utf8 = imap_utf7_to_utf8(pool, name);
	if (utf8 == NULL)
		utf8 = name; /* not modified UTF-7 (made by another program) */
	mime_imap_quote(out, utf8, strlen(utf8), MIME_IMAP_UTF8);
	pool_destroy(&pool);
}

const char *imap_capabilities(const struct imap_session *s)
{
	static char caps[1024];
	bool plain_ok = service_plaintext_auth_allowed(s->core.ctx, &s->core.conn, s->core.tls);
	if (s->state == IMAP_STATE_NOAUTH) {
		snprintf(caps, sizeof(caps), "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE%s%s",
			 !s->core.tls && s->core.ctx->tls != NULL ? " STARTTLS" : "",
			 plain_ok ? " AUTH=PLAIN AUTH=LOGIN" : " LOGINDISABLED");
		return caps;
	}
	snprintf(caps, sizeof(caps),
		 "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT CHILDREN "
		 "UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED LIST-STATUS CONDSTORE QRESYNC "
		 "ESEARCH SEARCHRES SORT SORT=DISPLAY THREAD=REFERENCES THREAD=ORDEREDSUBJECT QUOTA "
		 "QUOTA=RES-STORAGE QUOTA=RES-MESSAGE%s APPENDLIMIT=%llu BINARY STATUS=SIZE WITHIN "
		 "MULTIAPPEND UTF8=ACCEPT OBJECTID PREVIEW",
		 s->compressed ? "" : " COMPRESS=DEFLATE",
		 (unsigned long long)s->core.ctx->cfg->max_message_size);
	return caps;
}

/* ---- lifetime ---- */

void imap_session_close(struct imap_session *s, const char *bye)
{
	if (s->idling)
		imap_idle_stop(s);
	if (bye != NULL)
		imap_untagged(s, "BYE %s", bye);
	s->logout = true;
	session_close(&s->core);
}

void imap_command_done(struct imap_session *s)
{
	s->core.busy = false;
	if (session_reap(&s->core))
		return;
	/* Input may have been held by a delay (session_delay()). */
	io_resume_input(s->core.io);
	if (!s->logout)
		io_kick_input(s->core.io);
}

/* ---- draining ---- */

/* True between commands: nothing received of the next one, nothing running. */
static bool session_between_commands(const struct imap_session *s)
{
	return !s->in_command && !s->core.busy && s->cont == NULL &&
	       (s->parser == NULL || !imap_parser_busy(s->parser));
}

/* The worker drains (SIGTERM): sessions that are idle or in IDLE get BYE
   now (RFC 3501 7.1.5); the others when their command is done
   (session_input). */
static void imap_drain(struct session *core)
{
	struct imap_session *s = SESSION_OF(core, struct imap_session);
	if (core->dead || s->logout)
		return;
	if (s->idling || session_between_commands(s))
		imap_session_close(s, "Server shutting down");
}

/* ---- commands ---- */

/* Command names are case-insensitive (RFC 3501 9: "the ABNF is case-
   insensitive"), UID's subcommand ("uid fetch") as much as the command. */
static const struct imap_cmd_def *find_command(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(commands); i++)
		if (strcasecmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void run_command(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_cmd_ctx c = {.s = s, .cmd = cmd, .args = cmd->args, .count = cmd->count};
	const char *name = cmd->name;
	s->tag = xstrdup(cmd->tag);
	s->in_command = true;
	if (strcasecmp(name, "UID") == 0) {
		if (c.count == 0 || c.args[0].type != IMAP_ARG_ATOM) {
			imap_tagged(s, "BAD", "UID needs a command");
			return;
		}
		c.uid = true;
		name = c.args[0].str;
		c.args++;
		c.count--;
	}
	const struct imap_cmd_def *def = find_command(name);
	metrics_command(METRICS_PROTO_IMAP, def != NULL ? def->name : NULL);
	if (def == NULL || (c.uid && !def->uid_ok)) {
		char pr[64];
		imap_tagged(s, "BAD", "Unknown command %s",
			    log_printable(pr, sizeof(pr), name, strlen(name)));
		s->bad_commands++;
		return;
	}
	s->cmd_name = def->name;
	if (!(def->states & (1u << s->state))) {
		imap_tagged(s, "BAD", "%s not allowed %s", def->name,
			    s->state == IMAP_STATE_NOAUTH ? "before authentication"
			    : s->state == IMAP_STATE_AUTH ? "without a selected mailbox"
							  : "after authentication");
		s->bad_commands++;
		return;
	}
	if (def->fn == NULL) { /* LOGOUT */
		if (c.count > 0) {
			imap_tagged(s, "BAD", "LOGOUT takes no arguments");
			return;
		}
		/* Logout state (RFC 3501 3.4): nothing more about the mailbox
		   after BYE, only the tagged OK (6.1.3). */
		s->state = IMAP_STATE_LOGOUT;
		imap_untagged(s, "BYE Logging out");
		imap_tagged(s, "OK", "LOGOUT completed");
		s->logout = true;
		io_close_after_flush(s->core.io);
		return;
	}
	c.pool = pool_create(4096);
	const char *error = NULL;
	if (def->fn(&c, &error) < 0) {
		imap_tagged(s, c.refuse ? "NO" : "BAD", "%s", error != NULL ? error : "Invalid arguments");
		if (!c.refuse)
			s->bad_commands++;
	}
	pool_destroy(&c.pool);
}

static void parse_error(struct imap_session *s)
{
	const char *tag = imap_parser_tag(s->parser);
	const char *err = imap_parser_error(s->parser);
	s->bad_commands++;
	if (imap_parser_fatal(s->parser)) {
		imap_session_close(s, err);
		return;
	}
	io_printf(s->core.io, "%s BAD %s\r\n", tag, err);
	if (s->bad_commands >= IMAP_MAX_BAD_COMMANDS)
		imap_session_close(s, "Too many invalid commands");
}

/* The parser's limits in the session's state: before authentication a
   whole command, literals included, is held to IMAP_PREAUTH_MAX_COMMAND
   and a literal to IMAP_PREAUTH_MAX_LITERAL; a non-synchronising literal
   beyond either ends the connection (its
   data is on the way: RFC 7888 4); a synchronising one gets BAD without
   a continuation, and the client may go on. */
static void session_parse_limits(const struct imap_session *s, struct imap_parse_limits *limits_r)
{
	memset(limits_r, 0, sizeof(*limits_r));
	limits_r->max_append_literal = s->core.ctx->cfg->max_message_size;
	if (s->state == IMAP_STATE_NOAUTH) {
		limits_r->max_line = IMAP_PREAUTH_MAX_COMMAND;
		limits_r->max_literal = IMAP_PREAUTH_MAX_LITERAL;
		limits_r->max_append_literal = IMAP_PREAUTH_MAX_LITERAL;
		limits_r->max_command = IMAP_PREAUTH_MAX_COMMAND;
		limits_r->big_literal_fatal = true;
	}
}

/* Reads and runs commands while input is buffered and nothing waits. */
static void session_input(struct imap_session *s)
{
	char *line;
	size_t len;
	while (!s->core.dead && !s->core.busy && !s->logout && s->cont == NULL) {
		if (s->core.ctx->draining && !s->idling && session_between_commands(s)) {
			imap_session_close(s, "Server shutting down");
			return;
		}
		if (s->idling || s->sasl != NULL) {
			int r = io_read_line(s->core.io, 8192, &line, &len);
			if (r == 0)
				return;
			if (r < 0) {
				line = "";
				len = 0;
			}
			if (s->idling)
				imap_idle_input(s, line, len);
			else
				imap_auth_input(s, line, len);
			continue;
		}
		const char *data;
		if ((len = io_input_peek(s->core.io, &data)) == 0 || io_congested(s->core.io))
			return;
		struct imap_parse_limits limits;
		session_parse_limits(s, &limits);
		if (s->parser == NULL)
			s->parser = imap_parser_create(&limits);
		else if (!imap_parser_busy(s->parser))
			imap_parser_set_limits(s->parser, &limits);
		size_t used = 0;
		enum imap_parse_result r = imap_parser_feed(s->parser, data, len, &used);
		io_input_drain(s->core.io, used);
		switch (r) {
		case IMAP_PARSE_MORE:
			break;
		case IMAP_PARSE_LITERAL:
			io_write_str(s->core.io, "+ OK\r\n");
			break;
		case IMAP_PARSE_ERROR:
			parse_error(s);
			break;
		case IMAP_PARSE_COMMAND:
			run_command(s, imap_parser_command(s->parser));
			if (!s->core.dead && s->parser != NULL && !imap_parser_busy(s->parser))
				imap_parser_reset(s->parser);
			break;
		}
		if (s->bad_commands >= IMAP_MAX_BAD_COMMANDS && !s->logout)
			imap_session_close(s, "Too many invalid commands");
	}
}

/* ---- the skeleton's hooks (session/session.h) ---- */

static struct imap_session *imap_of(struct session *core)
{
	return SESSION_OF(core, struct imap_session);
}

static int imap_timeout(const struct config *cfg)
{
	return IMAP_PREAUTH_TIMEOUT;
}

static void imap_greet(struct session *core)
{
	struct imap_session *s = imap_of(core);
	imap_untagged(s, "OK [CAPABILITY %s] postoffice ready", imap_capabilities(s));
}

static void imap_input(struct session *core)
{
	session_input(imap_of(core));
}

static void imap_drained(struct session *core)
{
	struct imap_session *s = imap_of(core);
	if (s->cont != NULL && s->cont(s) != 0) {
		s->cont = NULL;
		io_want_drained(s->core.io, 0);
		imap_command_done(s);
	}
}

static void imap_bye(struct session *core, enum session_bye why)
{
	static const char *const text[] = {
	    [SESSION_BYE_DRAINING] = "Server shutting down",
	    [SESSION_BYE_TOO_MANY] = "Too many connections, try again later",
	    [SESSION_BYE_TIMEOUT] = "Autologout; idle for too long",
	    [SESSION_BYE_TOO_MANY_ERRORS] = "Too many invalid commands",
	};
	imap_session_close(imap_of(core), text[why]);
}

static void imap_ended(struct session *core, const char *reason)
{
	struct imap_session *s = imap_of(core);
	log_info("imap disconnect session=%s reason=%s user=%s", core->id, reason,
		 s->user != NULL ? s->user->address : "-");
}

static void imap_free(struct session *core)
{
	struct imap_session *s = imap_of(core);
	if (s->idling)
		imap_idle_stop(s);
	imap_view_free(&s->view);
	if (s->user != NULL) {
		s->user->sessions--;
		imap_user_unref(&s->user);
	}
	session_registry_release_async(core->ctx->registry, s->registry_slot);
	sasl_server_free(&s->sasl);
	imap_parser_destroy(&s->parser);
	free(s->tag);
	free(s->saved);
}

static const struct session_ops imap_ops = {
    .protocol = "imap",
    .timeout = imap_timeout,
    .greet = imap_greet,
    .input = imap_input,
    .drained = imap_drained,
    .bye = imap_bye,
    .drain = imap_drain,
    .ended = imap_ended,
    .free = imap_free,
};

void imap_session_start(struct service_ctx *ctx, const struct conn_info *conn)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	session_start(&s->core, &imap_ops, ctx, conn);
}
