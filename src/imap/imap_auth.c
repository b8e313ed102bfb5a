/* Not-authenticated state and connection-level commands: CAPABILITY,
   STARTTLS (RFC 3501 6.2.1), LOGIN, AUTHENTICATE with SASL-IR (RFC 4959),
   ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342) and COMPRESS
   (RFC 4978).  Password checks run on a job thread; failures are answered
   after a delay (growing with the IP's failures) and too many of them end
   the session.  An IP or account locked out by the shared penalty table
   gets NO [UNAVAILABLE] without a password check. */
#include "imap/imap_private.h"
#include "auth/auth_check.h"
#include "auth/password.h"
#include "auth/sasl.h"
#include "lib/io.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"
#include "session/session_registry.h"
#include "store/store_imap_extra.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/event.h>

/* ---- shared per-user store handles ---- */

static struct imap_user *users;

/* On the job thread of a login: the user's store, which the first open
   may make or upgrade (writes); NULL with *error_r. */
static struct store *user_store_open(const struct config *cfg, const char *address, char **error_r)
{
	struct store_config store_conf;
	store_config_init(&store_conf, cfg);
	struct store *store = store_open_user(&store_conf, address, error_r);
	if (store != NULL && store_cache_prepare(store, error_r) < 0)
		store_close(&store);
	return store;
}

/* The user's shared state, with *store (opened by the login's job) as its
   handle when the user has none yet, else as a handle for its jobs. */
static struct imap_user *user_get(const struct service_ctx *ctx, const char *address, uint64_t quota,
				  struct store **store)
{
	for (struct imap_user *u = users; u != NULL; u = u->next) {
		if (strcmp(u->address, address) == 0) {
			u->refs++;
			u->quota = quota;
			imap_job_store_give(u, store);
			return u;
		}
	}
	struct imap_user *u = xcalloc(1, sizeof(*u));
	u->address = xstrdup(address);
	u->store = *store;
	*store = NULL;
	u->base = ctx->base;
	u->quota = quota;
	u->refs = 1;
	u->next = users;
	users = u;
	return u;
}

void imap_user_unref(struct imap_user **up)
{
	struct imap_user *u = *up;
	*up = NULL;
	if (u == NULL || --u->refs > 0)
		return;
	for (struct imap_user **p = &users; *p != NULL; p = &(*p)->next) {
		if (*p == u) {
			*p = u->next;
			break;
		}
	}
	imap_job_user_free(u);
	imap_job_store_close(&u->store);
	free(u->address);
	free(u);
}

/* ---- CAPABILITY, STARTTLS ---- */

int imap_cmd_capability(struct imap_cmd_ctx *c, const char **error_r)
{
	if (c->count > 0) {
		*error_r = "CAPABILITY takes no arguments";
		return -1;
	}
	imap_untagged(c->s, "CAPABILITY %s", imap_capabilities(c->s));
	imap_tagged(c->s, "OK", "CAPABILITY completed");
	return 0;
}

int imap_cmd_starttls(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	if (c->count > 0) {
		*error_r = "STARTTLS takes no arguments";
		return -1;
	}
	if (s->core.tls || s->core.ctx->tls == NULL) {
		imap_tagged(s, "NO", "%s", s->core.tls ? "TLS is already active" : "TLS is not available");
		return 0;
	}
	imap_tagged(s, "OK", "Begin TLS negotiation now");
	/* RFC 3501 6.2.1: anything the client sent after STARTTLS before the
	   handshake is discarded (io_start_tls_server does that). */
	if (session_start_tls(&s->core) < 0)
		imap_session_close(s, "TLS failed");
	return 0;
}

/* ---- password checks ---- */

struct auth_job {
	struct imap_session *s;
	const struct config *cfg;
	struct auth_check check;
	/* the user's store, opened here rather than in the loop */
	struct store *store;
	char *store_error;
	/* a slot among the user's sessions on all nodes (NULL registry: local) */
	struct session_registry *registry;
	int slot_rc; /* of session_registry_acquire() */
	int64_t slot;
	char *slot_error;
};

static void auth_work(void *arg)
{
	struct auth_job *job = arg;
	if (auth_check_verify(&job->check))
		job->store = user_store_open(job->cfg, job->check.user, &job->store_error);
	if (job->store != NULL)
		job->slot_rc = session_registry_acquire(job->registry, "imap", job->check.user,
							job->cfg->imap_max_connections_per_user, &job->slot,
							&job->slot_error);
}

static void auth_job_free(struct auth_job *job)
{
	session_registry_release_async(job->registry, job->slot);
	free(job->slot_error);
	auth_check_clear(&job->check);
	imap_job_store_close(&job->store);
	free(job->store_error);
	free(job);
}

static void failure_delay_done(struct session *core)
{
	struct imap_session *s = SESSION_OF(core, struct imap_session);
	if (core->dead) {
		imap_command_done(s);
		return;
	}
	/* RFC 5530 section 3: UNAVAILABLE, a temporary failure. */
	if (s->auth_unavailable)
		imap_tagged(s, "NO", "[UNAVAILABLE] User database unavailable, try again later");
	else if (s->auth_refused)
		imap_tagged(s, "NO", "[UNAVAILABLE] Too many authentication failures, try again later");
	else
		imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
	if (s->auth_failures >= core->ctx->cfg->max_auth_failures) {
		log_info("imap disconnect session=%s reason=too-many-auth-failures", core->id);
		imap_session_close(s, "Too many authentication failures");
	}
	imap_command_done(s);
}

/* Answers a failed or refused login after the check's delay; the command (and so
   the session's input) waits until then. */
static void failure_delay(struct imap_session *s, const struct auth_check *check)
{
	s->auth_refused = auth_check_refused(check);
	s->auth_unavailable = auth_check_unavailable(check);
	/* a failure of ours (the user database) is not the client's */
	if (!s->auth_unavailable)
		s->auth_failures++;
	session_delay(&s->core, check->delay_ms, failure_delay_done);
}

static void login_ok(struct imap_session *s, struct auth_job *job)
{
	if (job->store == NULL) {
		imap_internal_error(s, "store open", job->store_error);
		job->store_error = NULL;
		return;
	}
	if (job->slot_rc < 0) {
		/* Admitted: the cap is a limit against abuse, not worth a
		   login while the table of all nodes is out of reach. */
		log_error("imap session-registry failed session=%s user=%s error=\"%s\"", s->core.id,
			  job->check.user, job->slot_error);
	}
	struct imap_user *u = user_get(s->core.ctx, job->check.user, job->check.quota, &job->store);
	if (job->slot_rc == 0 || u->sessions >= s->core.ctx->cfg->imap_max_connections_per_user) {
		imap_user_unref(&u);
		log_info("imap login-refused session=%s user=%s reason=too-many-sessions", s->core.id,
			 job->check.user);
		imap_tagged(s, "NO", "[LIMIT] Too many sessions for this user");
		return;
	}
	u->sessions++;
	s->user = u;
	s->registry_slot = job->slot;
	job->slot = 0;
	s->state = IMAP_STATE_AUTH;
	int timeout = s->core.ctx->cfg->imap_timeout;
	io_set_timeout(s->core.io, timeout < IMAP_MIN_TIMEOUT ? IMAP_MIN_TIMEOUT : timeout);
	log_info("imap login session=%s user=%s tls=%d", s->core.id, u->address, s->core.tls);
	imap_tagged(s, "OK", "[CAPABILITY %s] Logged in", imap_capabilities(s));
}

static void auth_done(void *arg)
{
	struct auth_job *job = arg;
	struct imap_session *s = job->s;
	bool refused = auth_check_refused(&job->check);
	metrics_auth(s->core.conn.service, job->check.ok ? METRICS_AUTH_SUCCESS
					   : refused     ? METRICS_AUTH_REFUSED
							 : METRICS_AUTH_FAILURE);
	if (s->core.dead) {
		auth_job_free(job);
		imap_command_done(s);
		return;
	}
	if (job->check.ok) {
		login_ok(s, job);
		auth_job_free(job);
		imap_command_done(s);
		return;
	}
	char who[128];
	log_printable(who, sizeof(who), job->check.user, strlen(job->check.user));
	if (refused)
		log_info("imap auth-refused session=%s ip=%s user=%s reason=%s", s->core.id, s->core.conn.ip,
			 who, auth_penalty_verdict_name(job->check.verdict));
	else
		log_info("imap auth-failed session=%s ip=%s user=%s", s->core.id, s->core.conn.ip, who);
	failure_delay(s, &job->check);
	auth_job_free(job);
}

/* Starts the password check; the tagged reply comes from auth_done.  The
   user lookup runs here, the yescrypt check on a job thread. */
static void verify_password(struct imap_session *s, const char *user, const char *password)
{
	struct auth_job *job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->cfg = s->core.ctx->cfg;
	job->registry = s->core.ctx->registry;
	auth_check_prepare(&job->check, s->core.ctx->userdb, user, password);
	s->core.busy = true;
	if (auth_check_penalty(&job->check, s->core.ctx->auth_penalty, s->core.ctx->cfg, s->core.conn.ip) <
	    0) {
		char who[128];
		log_printable(who, sizeof(who), job->check.user, strlen(job->check.user));
		log_info("imap auth-refused session=%s ip=%s user=%s reason=%s", s->core.id, s->core.conn.ip,
			 who, auth_penalty_verdict_name(job->check.verdict));
		metrics_auth(s->core.conn.service, METRICS_AUTH_REFUSED);
		failure_delay(s, &job->check);
		auth_job_free(job);
		return;
	}
	jobs_submit(auth_work, auth_done, job);
}

static bool plaintext_refused(struct imap_session *s)
{
	if (service_plaintext_auth_allowed(s->core.ctx, &s->core.conn, s->core.tls))
		return false;
	imap_tagged(s, "NO", "[PRIVACYREQUIRED] Plaintext authentication is disallowed without TLS");
	return true;
}

int imap_cmd_login(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *user, *password;
	if (c->count != 2 || (user = imap_arg_astring(&c->args[0])) == NULL ||
	    (password = imap_arg_astring(&c->args[1])) == NULL) {
		*error_r = "LOGIN needs a user name and a password";
		return -1;
	}
	if (plaintext_refused(c->s))
		return 0;
	if (strlen(user) > SASL_MAX_USER || strlen(password) > PASSWORD_MAX_LEN) {
		imap_tagged(c->s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
		return 0;
	}
	verify_password(c->s, user, password);
	return 0;
}

static void sasl_step(struct imap_session *s, const char *line, size_t len)
{
	char *challenge = NULL;
	const char *err = NULL;
	int r = sasl_server_step(s->sasl, line, len, &challenge, &err);
	if (r == 0) {
		io_printf(s->core.io, "+ %s\r\n", challenge != NULL ? challenge : "");
		free(challenge);
		return;
	}
	if (r < 0) {
		sasl_server_free(&s->sasl);
		if (err != NULL && strcmp(err, "cancelled") == 0)
			imap_tagged(s, "BAD", "Authentication cancelled");
		else
			imap_tagged(s, "BAD", "Invalid SASL response: %s", err != NULL ? err : "malformed");
		return;
	}
	char *user = xstrdup(sasl_server_user(s->sasl));
	char *password = xstrdup(sasl_server_password(s->sasl));
	sasl_server_free(&s->sasl);
	verify_password(s, user, password);
	explicit_bzero(password, strlen(password));
	free(password);
	free(user);
}

void imap_auth_input(struct imap_session *s, const char *line, size_t len)
{
	sasl_step(s, line, len);
}

int imap_cmd_authenticate(struct imap_cmd_ctx *c, const char **error_r)
{
	enum sasl_mech mech;
	if (c->count < 1 || c->count > 2 || c->args[0].type != IMAP_ARG_ATOM) {
		*error_r = "AUTHENTICATE needs a mechanism";
		return -1;
	}
	if (sasl_mech_parse(c->args[0].str, &mech) < 0) {
		imap_tagged(c->s, "NO", "Unsupported authentication mechanism");
		return 0;
	}
	const char *initial = NULL;
	if (c->count == 2) {
		if (c->args[1].type != IMAP_ARG_ATOM) {
			*error_r = "Invalid initial response";
			return -1;
		}
		initial = c->args[1].str;
	}
	if (plaintext_refused(c->s))
		return 0;
	c->s->sasl = sasl_server_new(mech);
	sasl_step(c->s, initial, initial != NULL ? strlen(initial) : 0);
	return 0;
}

/* ---- ID, ENABLE, NAMESPACE, COMPRESS ---- */

int imap_cmd_id(struct imap_cmd_ctx *c, const char **error_r)
{
	/* RFC 2971: a list of field/value pairs (at most 30) or NIL. */
	if (c->count != 1 || (c->args[0].type != IMAP_ARG_NIL && c->args[0].type != IMAP_ARG_LIST) ||
	    (c->args[0].type == IMAP_ARG_LIST && (c->args[0].count % 2 != 0 || c->args[0].count > 60))) {
		*error_r = "ID needs a list of field-value pairs or NIL";
		return -1;
	}
	const struct imap_arg *l = &c->args[0];
	for (unsigned int i = 0; l->type == IMAP_ARG_LIST && i < l->count; i += 2) {
		const char *k, *v;
		if (!imap_arg_nstring(&l->list[i], &k) || k == NULL ||
		    !imap_arg_nstring(&l->list[i + 1], &v)) {
			*error_r = "ID fields must be strings";
			return -1;
		}
		if (strcasecmp(k, "name") == 0 && v != NULL) {
			char pr[64];
			log_info("imap id session=%s name=%s", c->s->core.id,
				 log_printable(pr, sizeof(pr), v, strlen(v)));
		}
	}
	imap_untagged(c->s, "ID (\"name\" \"postoffice\" \"vendor\" \"postoffice\")");
	imap_tagged(c->s, "OK", "ID completed");
	return 0;
}

/* What ENABLE turns on (RFC 5161): QRESYNC implies CONDSTORE (RFC 7162
   3.2.3). */
static const struct {
	const char *name;
	unsigned int bits; /* enum imap_enabled */
} enable_caps[] = {
    {"CONDSTORE", IMAP_ENABLED_CONDSTORE},
    {"QRESYNC", IMAP_ENABLED_QRESYNC | IMAP_ENABLED_CONDSTORE},
    {"IMAP4rev2", IMAP_ENABLED_IMAP4REV2},
    {"UTF8=ACCEPT", IMAP_ENABLED_UTF8},
};

int imap_cmd_enable(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	if (c->count == 0) {
		*error_r = "ENABLE needs capability names";
		return -1;
	}
	struct buf out = BUF_INIT;
	for (unsigned int i = 0; i < c->count; i++) {
		if (c->args[i].type != IMAP_ARG_ATOM) {
			buf_free(&out);
			*error_r = "ENABLE takes capability names";
			return -1;
		}
		size_t k = 0;
		while (k < N_ELEMENTS(enable_caps) && strcasecmp(c->args[i].str, enable_caps[k].name) != 0)
			k++;
		/* RFC 5161 3.1: unknown ones are ignored; RFC 6855 3: UTF8=ACCEPT
		   only in the authenticated state (the selected mailbox's names
		   were given in modified UTF-7) */
		if (k == N_ELEMENTS(enable_caps) ||
		    (s->enabled & enable_caps[k].bits) == enable_caps[k].bits ||
		    (enable_caps[k].bits == IMAP_ENABLED_UTF8 && s->state != IMAP_STATE_AUTH))
			continue;
		s->enabled |= enable_caps[k].bits;
		buf_printf(&out, " %s", enable_caps[k].name);
	}
	imap_untagged(s, "ENABLED%s", buf_cstr(&out));
	buf_free(&out);
	imap_tagged(s, "OK", "ENABLE completed");
	return 0;
}

int imap_cmd_namespace(struct imap_cmd_ctx *c, const char **error_r)
{
	if (c->count > 0) {
		*error_r = "NAMESPACE takes no arguments";
		return -1;
	}
	imap_untagged(c->s, "NAMESPACE ((\"\" \"" IMAP_SEPARATOR "\")) NIL NIL");
	imap_tagged(c->s, "OK", "NAMESPACE completed");
	return 0;
}

int imap_cmd_compress(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	if (c->count != 1 || !imap_arg_atom_equals(&c->args[0], "DEFLATE")) {
		*error_r = "COMPRESS supports DEFLATE only";
		return -1;
	}
	if (s->compressed) {
		imap_tagged(s, "NO", "[COMPRESSIONACTIVE] Compression is already active");
		return 0;
	}
	imap_tagged(s, "OK", "DEFLATE active");
	/* RFC 4978 3: compression starts right after the tagged OK. */
	if (io_start_deflate(s->core.io) < 0) {
		imap_session_close(s, "Compression failed");
		return 0;
	}
	s->compressed = true;
	return 0;
}
