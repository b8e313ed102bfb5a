/* SMTP AUTH (RFC 4954) with SASL PLAIN and LOGIN on the submission
   services.  The password check runs on a job thread; a failure is answered
   after a delay (growing with the IP's failures), and too many failures end
   the session.  An IP or account locked out by the shared penalty table
   gets 454 4.7.0 without a password check. */
#include "smtpd/smtp_private.h"
#include "auth/auth_check.h"
#include "auth/sasl.h"
#include "lib/config.h"
#include "lib/io.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

bool smtp_auth_offered(const struct smtp_session *s)
{
	return s->submission && s->auth_user == NULL &&
	       service_plaintext_auth_allowed(s->core.ctx, &s->core.conn, s->core.tls);
}

struct auth_job {
	struct smtp_session *s;
	struct auth_check check;
};

static void auth_work(void *arg)
{
	struct auth_job *job = arg;
	auth_check_verify(&job->check);
}

static void delay_done(struct session *core)
{
	struct smtp_session *s = SESSION_OF(core, struct smtp_session);
	if (core->dead) {
		core->busy = false;
		session_reap(core);
		return;
	}
	if (s->auth_failures >= core->ctx->cfg->max_auth_failures) {
		log_info("smtp disconnect session=%s reason=too-many-auth-failures", core->id);
		core->busy = false;
		smtp_session_close(s, 421, "4.7.0", "Too many authentication failures");
		return;
	}
	if (s->auth_unavailable)
		smtp_reply(s, 454, "4.7.0",
			   "Temporary authentication failure (user database unavailable), try again later");
	else if (s->auth_refused)
		smtp_reply(s, 454, "4.7.0", "Temporary authentication failure, try again later");
	else
		smtp_reply(s, 535, "5.7.8", "Error: authentication failed");
	session_resume(core);
}

/* Answers a failed or refused AUTH after the check's delay, input held
   meanwhile.  A refusal for a failure of ours (the user database) is not
   counted against the client. */
static void delay_reply(struct smtp_session *s, const struct auth_check *check)
{
	s->auth_refused = auth_check_refused(check);
	s->auth_unavailable = auth_check_unavailable(check);
	if (!s->auth_unavailable)
		s->auth_failures++;
	session_delay(&s->core, check->delay_ms, delay_done);
}

static void auth_done(void *arg)
{
	struct auth_job *job = arg;
	struct smtp_session *s = job->s;
	bool refused = auth_check_refused(&job->check);
	metrics_auth(s->core.conn.service, job->check.ok ? METRICS_AUTH_SUCCESS
					   : refused     ? METRICS_AUTH_REFUSED
							 : METRICS_AUTH_FAILURE);
	char who[200];
	log_printable(who, sizeof(who), job->check.user, strlen(job->check.user));
	if (job->check.ok) {
		log_info("smtp auth session=%s user=%s result=ok", s->core.id, who);
		s->auth_user = xstrdup(job->check.user);
		if (!s->core.dead)
			smtp_reply(s, 235, "2.7.0", "Authentication successful");
		session_resume(&s->core);
	} else if (refused) {
		log_info("smtp auth-refused session=%s ip=%s user=%s reason=%s", s->core.id, s->core.conn.ip,
			 who, auth_penalty_verdict_name(job->check.verdict));
		delay_reply(s, &job->check);
	} else {
		log_info("smtp auth session=%s ip=%s user=%s result=fail failures=%d", s->core.id,
			 s->core.conn.ip, who, s->auth_failures + 1);
		delay_reply(s, &job->check);
	}
	auth_check_clear(&job->check);
	free(job);
}

/* The SASL exchange is over: check the credentials off the loop. */
static void auth_verify(struct smtp_session *s)
{
	struct auth_job *job = xcalloc(1, sizeof(*job));
	job->s = s;
	auth_check_prepare(&job->check, s->core.ctx->userdb, sasl_server_user(s->sasl),
			   sasl_server_password(s->sasl));
	sasl_server_free(&s->sasl);
	s->state = SMTP_ST_READY;
	session_busy(&s->core);
	if (auth_check_penalty(&job->check, s->core.ctx->auth_penalty, s->core.ctx->cfg, s->core.conn.ip) <
	    0) {
		/* RFC 4954 section 6: 454 4.7.0, temporary authentication failure. */
		char who[200];
		log_printable(who, sizeof(who), job->check.user, strlen(job->check.user));
		log_info("smtp auth-refused session=%s ip=%s user=%s reason=%s", s->core.id, s->core.conn.ip,
			 who, auth_penalty_verdict_name(job->check.verdict));
		metrics_auth(s->core.conn.service, METRICS_AUTH_REFUSED);
		delay_reply(s, &job->check);
		auth_check_clear(&job->check);
		free(job);
		return;
	}
	jobs_submit(auth_work, auth_done, job);
}

static void auth_step(struct smtp_session *s, const char *line, size_t len)
{
	char *challenge = NULL;
	const char *error = NULL;
	int rc = sasl_server_step(s->sasl, line, len, &challenge, &error);
	if (rc == 1) {
		auth_verify(s);
	} else if (rc == 0) {
		s->state = SMTP_ST_AUTH;
		smtp_reply(s, 334, NULL, "%s", challenge ? challenge : "");
	} else {
		sasl_server_free(&s->sasl);
		s->state = SMTP_ST_READY;
		if (error != NULL && !strcmp(error, "cancelled"))
			smtp_reply_error(s, 501, "5.7.0", "Authentication cancelled");
		else
			smtp_reply_error(s, 501, "5.5.2", "Error: %s", error ? error : "malformed response");
	}
	free(challenge);
}

void smtp_cmd_auth(struct smtp_session *s, struct smtp_command *cmd)
{
	if (!s->submission) {
		smtp_reply_error(s, 503, "5.5.1", "Error: authentication not enabled");
		return;
	}
	if (s->state == SMTP_ST_INIT || !s->esmtp) {
		smtp_reply_error(s, 503, "5.5.1", "Error: send EHLO first");
		return;
	}
	if (s->auth_user != NULL) {
		smtp_reply_error(s, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (s->txn != NULL) {
		smtp_reply_error(s, 503, "5.5.1", "Error: MAIL transaction in progress");
		return;
	}
	if (!service_plaintext_auth_allowed(s->core.ctx, &s->core.conn, s->core.tls)) {
		smtp_reply_error(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	char *mech_name = cmd->arg;
	char *initial = strchr(mech_name, ' ');
	if (initial != NULL) {
		*initial++ = '\0';
		while (*initial == ' ')
			initial++;
	}
	enum sasl_mech mech;
	if (sasl_mech_parse(mech_name, &mech) < 0) {
		smtp_reply_error(s, 504, "5.5.4", "Unrecognized authentication mechanism");
		return;
	}
	s->sasl = sasl_server_new(mech);
	auth_step(s, initial, initial ? strlen(initial) : 0);
}

void smtp_auth_input(struct smtp_session *s, const char *line, size_t len)
{
	auth_step(s, line, len);
}
