/* POP3 login: USER/PASS (RFC 1939 section 7) and AUTH (RFC 5034).  The
   password check, the maildrop lock and opening the store all run on a job
   thread, so the event loop never waits for yescrypt or the disk.  An IP or
   account locked out by the shared penalty table gets -ERR [SYS/TEMP]
   without a password check. */
#include "pop3/pop3_private.h"
#include "auth/auth_check.h"
#include "auth/password.h"
#include "auth/sasl.h"
#include "auth/userdb.h"
#include "lib/config.h"
#include "lib/io.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

enum login_result { LOGIN_OK, LOGIN_BAD, LOGIN_IN_USE, LOGIN_TEMPFAIL };

struct login_job {
	struct pop3_session *s;
	const char *method;
	struct auth_check check;
	struct store_config store_conf; /* points into the worker's config */
	enum login_result result;
	char *error;
	struct store *store;
	struct store_mailbox *inbox;
	struct store_msg_list msgs;
	double open_ms; /* store open + sync + list, for the log */
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void login_work(void *arg)
{
	struct login_job *job = arg;
	if (!auth_check_verify(&job->check)) {
		job->result = LOGIN_BAD;
		return;
	}
	double start = now_ms();
	job->store = store_open_user(&job->store_conf, job->check.user, &job->error);
	int rc = job->store != NULL ? store_maildrop_lock(job->store, &job->error) : -1;
	if (rc <= 0) {
		store_close(&job->store);
		job->result = rc == 0 ? LOGIN_IN_USE : LOGIN_TEMPFAIL;
		return;
	}
	/* Listed under the lock: no other POP3 session changes the maildrop
	   meanwhile (RFC 1939 section 8). */
	if (store_mailbox_open(job->store, "INBOX", &job->inbox, &job->error) != 1 ||
	    store_mailbox_list(job->inbox, &job->msgs, &job->error) < 0) {
		if (job->error == NULL)
			job->error = xstrdup("INBOX missing");
		store_mailbox_close(&job->inbox);
		store_close(&job->store); /* and its lock */
		job->result = LOGIN_TEMPFAIL;
		return;
	}
	job->open_ms = now_ms() - start;
	job->result = LOGIN_OK;
}

static void login_job_free(struct login_job *job)
{
	store_msg_list_free(&job->msgs);
	store_mailbox_close(&job->inbox);
	store_close(&job->store);
	auth_check_clear(&job->check);
	free(job->error);
	free(job);
}

static void delay_done(struct session *core)
{
	struct pop3_session *s = SESSION_OF(core, struct pop3_session);
	if (core->dead) {
		core->busy = false;
		session_reap(core);
		return;
	}
	/* RFC 3206 section 4: SYS/TEMP for a refusal that may go away. */
	const char *reply = s->auth_unavailable ? "-ERR [SYS/TEMP] User database unavailable, try again later"
			    : s->auth_refused   ? "-ERR [SYS/TEMP] Too many failed logins, try again later"
						: "-ERR [AUTH] Authentication failed";
	if (s->auth_failures >= core->ctx->cfg->max_auth_failures) {
		log_info("pop3 disconnect session=%s reason=too-many-auth-failures", core->id);
		core->busy = false;
		char *last = xasprintf("%s; too many failures, closing connection", reply);
		pop3_session_close(s, last);
		free(last);
		return;
	}
	pop3_reply(s, "%s", reply);
	session_resume(core);
}

/* Answers a failed or refused login after the check's delay, input held
   meanwhile.  A refusal for a failure of ours (the user database) is not
   counted against the client. */
static void delay_reply(struct pop3_session *s, const struct auth_check *check)
{
	int delay_ms = check->delay_ms;
	s->auth_refused = auth_check_refused(check);
	s->auth_unavailable = auth_check_unavailable(check);
	if (!s->auth_unavailable)
		s->auth_failures++;
	session_delay(&s->core, delay_ms, delay_done);
}

static void login_enter(struct pop3_session *s, struct login_job *job)
{
	s->address = job->check.user;
	job->check.user = NULL;
	s->store = job->store; /* holding the maildrop lock */
	job->store = NULL;
	s->inbox = job->inbox;
	job->inbox = NULL;
	s->msgs = job->msgs;
	memset(&job->msgs, 0, sizeof(job->msgs));
	s->deleted = xcalloc(s->msgs.count + 1, sizeof(bool));
	for (size_t i = 0; i < s->msgs.count; i++)
		s->total_size += s->msgs.msgs[i].size;
	s->state = POP3_ST_TRANSACTION;
	log_info("pop3 login session=%s user=%s method=%s messages=%zu size=%llu open_ms=%.2f", s->core.id,
		 s->address, job->method, s->msgs.count, (unsigned long long)s->total_size, job->open_ms);
	pop3_reply(s, "+OK Logged in, %zu messages (%llu octets)", s->msgs.count,
		   (unsigned long long)s->total_size);
}

static void login_done(void *arg)
{
	struct login_job *job = arg;
	struct pop3_session *s = job->s;
	bool refused = auth_check_refused(&job->check);
	metrics_auth(s->core.conn.service, job->check.ok ? METRICS_AUTH_SUCCESS
					   : refused     ? METRICS_AUTH_REFUSED
							 : METRICS_AUTH_FAILURE);
	char who[200];
	log_printable(who, sizeof(who), job->check.user, strlen(job->check.user));
	if (s->core.dead) {
		login_job_free(job); /* unlocks and closes what it opened */
		s->core.busy = false;
		session_reap(&s->core);
		return;
	}
	switch (job->result) {
	case LOGIN_OK:
		login_enter(s, job);
		session_resume(&s->core);
		break;
	case LOGIN_IN_USE:
		log_info("pop3 login-refused session=%s user=%s reason=in-use", s->core.id, who);
		pop3_reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
		session_resume(&s->core);
		break;
	case LOGIN_TEMPFAIL:
		log_error("pop3 login-failed session=%s user=%s error=%s", s->core.id, who,
			  job->error ? job->error : "?");
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary server failure, try again later");
		session_resume(&s->core);
		break;
	case LOGIN_BAD:
		if (refused)
			log_info("pop3 auth-refused session=%s ip=%s user=%s method=%s reason=%s", s->core.id,
				 s->core.conn.ip, who, job->method,
				 auth_penalty_verdict_name(job->check.verdict));
		else
			log_info("pop3 auth-failed session=%s ip=%s user=%s method=%s failures=%d",
				 s->core.id, s->core.conn.ip, who, job->method, s->auth_failures + 1);
		delay_reply(s, &job->check);
		break;
	}
	login_job_free(job);
}

static void login_start(struct pop3_session *s, const char *user, const char *password, const char *method)
{
	struct login_job *job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->method = method;
	auth_check_prepare(&job->check, s->core.ctx->userdb, user, password);
	store_config_init(&job->store_conf, s->core.ctx->cfg);
	session_busy(&s->core);
	if (auth_check_penalty(&job->check, s->core.ctx->auth_penalty, s->core.ctx->cfg, s->core.conn.ip) <
	    0) {
		char who[200];
		log_printable(who, sizeof(who), job->check.user, strlen(job->check.user));
		log_info("pop3 auth-refused session=%s ip=%s user=%s method=%s reason=%s", s->core.id,
			 s->core.conn.ip, who, method, auth_penalty_verdict_name(job->check.verdict));
		metrics_auth(s->core.conn.service, METRICS_AUTH_REFUSED);
		delay_reply(s, &job->check);
		login_job_free(job);
		return;
	}
	jobs_submit(login_work, login_done, job);
}

static bool plaintext_ok(struct pop3_session *s)
{
	if (service_plaintext_auth_allowed(s->core.ctx, &s->core.conn, s->core.tls))
		return true;
	pop3_reply_error(
	    s, "[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS first");
	return false;
}

void pop3_cmd_user(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!plaintext_ok(s))
		return;
	free(s->user);
	s->user = xstrndup(cmd->arg, cmd->arg_len);
	pop3_reply(s, "+OK");
}

void pop3_cmd_pass(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!plaintext_ok(s))
		return;
	if (s->user == NULL) {
		pop3_reply_error(s, "Send USER first");
		return;
	}
	if (cmd->arg_len > PASSWORD_MAX_LEN) {
		pop3_reply_error(s, "[AUTH] Password too long");
		return;
	}
	char *password = xstrndup(cmd->arg, cmd->arg_len);
	char *user = s->user;
	s->user = NULL;
	login_start(s, user, password, "user");
	explicit_bzero(password, strlen(password));
	free(password);
	free(user);
}

static void sasl_result(struct pop3_session *s, int rc, char *challenge, const char *error)
{
	if (rc == 1) {
		s->state = POP3_ST_AUTH;
		login_start(s, sasl_server_user(s->sasl), sasl_server_password(s->sasl), s->sasl_method);
		sasl_server_free(&s->sasl);
	} else if (rc == 0) {
		s->state = POP3_ST_SASL;
		pop3_reply(s, "+ %s", challenge ? challenge : "");
	} else {
		sasl_server_free(&s->sasl);
		s->state = POP3_ST_AUTH;
		if (error != NULL && !strcmp(error, "cancelled"))
			pop3_reply_error(s, "Authentication cancelled");
		else
			pop3_reply_error(s, "[AUTH] %s", error ? error : "malformed response");
	}
	free(challenge);
}

void pop3_cmd_auth(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->arg == NULL) {
		/* Not in RFC 5034, but what Outlook sends and Dovecot answers. */
		pop3_reply(s, "+OK\r\nPLAIN\r\nLOGIN\r\n.");
		return;
	}
	if (!plaintext_ok(s))
		return;
	char *name = xstrndup(cmd->arg, cmd->arg_len);
	enum sasl_mech mech;
	int known = sasl_mech_parse(name, &mech);
	free(name);
	if (known < 0) {
		pop3_reply_error(s, "Unsupported authentication mechanism");
		return;
	}
	s->sasl = sasl_server_new(mech);
	s->sasl_method = mech == SASL_MECH_PLAIN ? "plain" : "login";
	char *challenge = NULL;
	const char *error = NULL;
	char *initial = cmd->arg2 ? xstrndup(cmd->arg2, cmd->arg2_len) : NULL;
	int rc = sasl_server_step(s->sasl, initial, cmd->arg2_len, &challenge, &error);
	free(initial);
	sasl_result(s, rc, challenge, error);
}

void pop3_sasl_input(struct pop3_session *s, const char *line, size_t len)
{
	char *challenge = NULL;
	const char *error = NULL;
	int rc = sasl_server_step(s->sasl, line, len, &challenge, &error);
	sasl_result(s, rc, challenge, error);
}

void pop3_auth_free(struct pop3_session *s)
{
	free(s->user);
	s->user = NULL;
	sasl_server_free(&s->sasl);
	free(s->pending_error);
	s->pending_error = NULL;
}
