/* The mail transaction: MAIL, RCPT, DATA and BDAT, and the durable commit
   that comes before the 250 reply (DESIGN.md: the 2xx to DATA is a promise). */
#include "smtpd/smtp_private.h"
#include "smtp/smtp_path.h"
#include "auth/userdb.h"
#include "delivery/delivery.h"
#include "delivery/delivery_dkim.h"
#include "delivery/delivery_verify.h"
#include "trust/inbound.h"
#include "queue/queue.h"
#include "store/store.h"
#include "lib/config.h"
#include "lib/id.h"
#include "lib/io.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"
#include "mime/compose.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void smtp_txn_free(struct smtp_txn **txnp)
{
	struct smtp_txn *t = *txnp;
	if (t == NULL)
		return;
	*txnp = NULL;
	/* Not committed: the message is dropped (RSET, QUIT, errors).  The
	   checks' lookups go first. */
	trust_inbound_free(&t->trust);
	delivery_free(&t->delivery);
	for (int i = 0; i < t->nrcpts; i++) {
		free(t->rcpts[i].address);
		free(t->rcpts[i].orcpt);
	}
	free(t->rcpts);
	for (int i = 0; i < t->nlocal; i++)
		free(t->local_users[i]);
	free(t->local_users);
	free(t->sender);
	free(t->envid);
	buf_free(&t->out);
	free(t);
}

static void reset_to_ready(struct smtp_session *s)
{
	smtp_txn_free(&s->txn);
	s->state = SMTP_ST_READY;
}

/* Mail from other servers is checked (trust/inbound.h); mail of our own
   users is not checked against itself.  SPF starts now, while the
   recipients come. */
static void start_checks(struct smtp_session *s, struct smtp_txn *t)
{
	const struct config *cfg = s->core.ctx->cfg;
	if (s->core.conn.service != SERVICE_SMTP || s->auth_user != NULL ||
	    !(cfg->dkim_verify || cfg->spf_verify || cfg->dmarc_verify || cfg->arc_verify))
		return;
	struct trust_inbound_settings set = {
	    .base = s->core.ctx->base,
	    .resolver = service_resolver(s->core.ctx),
	    .key_cache = service_dkim_key_cache(s->core.ctx),
	    .client_ip = s->core.conn.ip,
	    .helo = s->helo,
	    .mail_from = t->sender,
	    .receiver = cfg->hostname,
	    .spf = cfg->spf_verify,
	    .dkim = cfg->dkim_verify,
	    .dmarc = cfg->dmarc_verify,
	    .arc = cfg->arc_verify,
	    .dmarc_reject = cfg->dmarc_reject,
	    .dmarc_quarantine = cfg->dmarc_quarantine,
	    .spf_reject = cfg->spf_reject,
	    .arc_trusted = cfg->arc_trusted_sealers,
	};
	t->trust = trust_inbound_start(&set);
}

/* ---- lookups off the loop ----
   MAIL's sender check (submission) and RCPT's recipient lookups read the
   user database and the stores' usage.  With a backend whose lookups are
   network round trips (userdb_lookups_block(), store_user_lookups_block():
   PostgreSQL) they run on a job thread while the session waits, input
   held, so that a slow or unreachable database holds up no other session
   of the worker; pipelined commands after it wait in the input buffer
   and are answered in order.  The local backend's reads are cheap and
   stay on the loop (a job costs each RCPT a thread hop). */

static bool lookups_block(const struct service_ctx *ctx)
{
	struct store_config store_conf;
	store_config_init(&store_conf, ctx->cfg);
	return userdb_lookups_block(ctx->userdb) || store_user_lookups_block(&store_conf);
}

/* Runs lookup(arg) now, then answer(arg), or with job on a job thread,
   the session waiting (see above). */
static void lookup_run(struct smtp_session *s, bool job, void (*lookup)(void *arg), void (*answer)(void *arg),
		       void *arg)
{
	if (!job) {
		lookup(arg);
		answer(arg);
		return;
	}
	session_busy(&s->core);
	jobs_submit(lookup, answer, arg);
}

/* After the answer of a lookup run on a job: takes input again, or frees
   the session when its connection ended meanwhile. */
static void lookup_resume(struct smtp_session *s, bool was_job)
{
	if (was_job)
		session_resume(&s->core);
}

struct mail_lookup {
	struct smtp_session *s;
	bool job; /* ran on a job thread: the session is busy */
	struct smtp_mail_params params;
	char *envid; /* params.envid, copied out of the command */
	struct smtp_path path;
	/* the sender check of submission: userdb_sender_allowed() */
	struct userdb *db;
	const char *auth_user; /* the session's, unchanged while it waits */
	int allowed;
};

static void mail_lookup(void *arg)
{
	struct mail_lookup *m = arg;
	m->allowed = m->auth_user == NULL ? 1 : userdb_sender_allowed(m->db, m->auth_user, m->path.address);
}

static void mail_answer(void *arg)
{
	struct mail_lookup *m = arg;
	struct smtp_session *s = m->s;
	bool dead = s->core.dead;
	if (!dead && m->allowed == 0) {
		log_info("smtp reject session=%s reason=sender-not-owned user=%s", s->core.id, s->auth_user);
		smtp_metrics_reject(s, METRICS_REJECT_SENDER, m->path.address);
		smtp_reply_error(s, 553, "5.7.1", "Sender address rejected: not owned by user %s",
				 s->auth_user);
	} else if (!dead && m->allowed < 0) {
		smtp_reply(s, 451, "4.3.0", "Temporary lookup failure, try again later");
	} else if (!dead) {
		struct smtp_txn *t = xcalloc(1, sizeof(*t));
		id_new(t->id);
		t->mail_ns = metrics_now_ns();
		t->sender = m->path.address;
		m->path.address = NULL;
		t->params = m->params;
		t->envid = m->envid;
		m->envid = NULL;
		t->params.envid = NULL;
		start_checks(s, t);
		s->txn = t;
		s->state = SMTP_ST_MAIL;
		smtp_reply(s, 250, "2.1.0", "Ok");
	}
	bool job = m->job;
	smtp_path_free(&m->path);
	free(m->envid);
	free(m);
	lookup_resume(s, job);
}

void smtp_cmd_mail(struct smtp_session *s, struct smtp_command *cmd)
{
	if (s->submission && s->auth_user == NULL) {
		smtp_metrics_reject(s, METRICS_REJECT_AUTH_REQUIRED, NULL);
		smtp_reply_error(s, 530, "5.7.0", "Authentication required");
		return;
	}
	struct smtp_mail_params params;
	bool unknown;
	const char *error;
	if (smtp_mail_params_parse(cmd, &params, &unknown, &error) < 0) {
		if (unknown)
			smtp_reply_error(s, 555, "5.5.4", "Error: %s", error);
		else
			smtp_reply_error(s, 501, "5.5.4", "Error: %s", error);
		return;
	}
	if ((params.smtputf8 || params.body != SMTP_BODY_7BIT || params.ret || params.envid) && !s->esmtp) {
		smtp_reply_error(s, 555, "5.5.4", "Error: parameters need EHLO");
		return;
	}
	if (params.size > s->core.ctx->cfg->max_message_size) {
		smtp_metrics_reject(s, METRICS_REJECT_SIZE, NULL);
		smtp_reply_error(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return;
	}
	struct smtp_path path;
	if (smtp_path_parse(cmd->path, true, params.smtputf8, &path, &error) < 0) {
		smtp_reply_error(s, 501, "5.1.7", "Bad sender address syntax: %s", error);
		return;
	}
	struct mail_lookup *m = xcalloc(1, sizeof(*m));
	m->s = s;
	m->params = params;
	m->envid = params.envid ? xstrdup(params.envid) : NULL;
	m->path = path;
	m->db = s->core.ctx->userdb;
	m->auth_user = s->submission ? s->auth_user : NULL;
	if (m->auth_user == NULL) {
		/* nothing to look up */
		mail_lookup(m);
		mail_answer(m);
		return;
	}
	m->job = lookups_block(s->core.ctx);
	lookup_run(s, m->job, mail_lookup, mail_answer, m);
}

static void add_local_user(struct smtp_txn *t, const char *user)
{
	for (int i = 0; i < t->nlocal; i++)
		if (!strcmp(t->local_users[i], user))
			return;
	t->local_users = xreallocarray(t->local_users, (size_t)t->nlocal + 1, sizeof(char *));
	t->local_users[t->nlocal++] = xstrdup(user);
}

static void add_rcpt(struct smtp_txn *t, const char *address, const struct smtp_rcpt_params *p, bool remote)
{
	t->rcpts = xreallocarray(t->rcpts, (size_t)t->nrcpts + 1, sizeof(*t->rcpts));
	struct smtp_rcpt *r = &t->rcpts[t->nrcpts++];
	r->address = xstrdup(address);
	r->orcpt = p && p->orcpt ? xstrdup(p->orcpt) : NULL;
	r->notify = p ? p->notify : 0;
	r->remote = remote;
	if (remote)
		t->nremote++;
}

struct rcpt_lookup {
	struct smtp_session *s;
	bool job; /* ran on a job thread: the session is busy */
	struct smtp_path path;
	struct smtp_rcpt_params params; /* orcpt copied out of the command */
	/* what the lookup reads: the session's, unchanged while it waits */
	struct userdb *db;
	const char *postmaster;
	struct store_config store_conf;
	uint64_t size; /* MAIL's SIZE */
	/* found: userdb_resolve()'s result and targets, and whether a local
	   target is over quota */
	int rc;
	struct userdb_targets targets;
	bool over_quota;
};

/* 1 when a local user is over quota (or would be with the declared SIZE). */
static int over_quota(const struct rcpt_lookup *r, const char *user)
{
	struct userdb_user u;
	if (userdb_user_lookup(r->db, user, &u) != 1)
		return 0;
	uint64_t quota = u.quota;
	userdb_user_free(&u);
	if (quota == 0)
		return 0;
	uint64_t used = 0;
	char *error = NULL;
	if (store_user_usage(&r->store_conf, user, &used, &error) < 0)
		free(error); /* counted as empty, as a missing store */
	return used >= quota || used + r->size > quota;
}

static void rcpt_lookup(void *arg)
{
	struct rcpt_lookup *r = arg;
	/* A quoted local part with specials ("a@b"@here) is nobody here. */
	if (r->path.odd_local)
		r->rc = userdb_domain_exists(r->db, strrchr(r->path.address, '@') + 1) == 1 ? 0 : 2;
	else
		r->rc = userdb_resolve(r->db, r->path.address, r->postmaster, &r->targets);
	for (size_t i = 0; r->rc == 1 && i < r->targets.users_count && !r->over_quota; i++)
		r->over_quota = over_quota(r, r->targets.users[i]);
}

/* The reply to RCPT from what rcpt_lookup() found. */
static void rcpt_reply(struct smtp_session *s, struct rcpt_lookup *r)
{
	struct smtp_txn *t = s->txn;
	char shown[300];
	log_printable(shown, sizeof(shown), r->path.address, strlen(r->path.address));
	switch (r->rc) {
	case 1:
		if (r->over_quota) {
			log_info("smtp reject session=%s rcpt=%s reason=over-quota", s->core.id, shown);
			smtp_metrics_reject(s, METRICS_REJECT_QUOTA, shown);
			smtp_reply(s, 452, "4.2.2", "Mailbox full: <%s>", shown);
			return;
		}
		for (size_t i = 0; i < r->targets.users_count; i++)
			add_local_user(t, r->targets.users[i]);
		add_rcpt(t, r->path.address, &r->params, false);
		/* Alias targets outside our domains are relayed. */
		for (size_t i = 0; i < r->targets.remote_count; i++)
			add_rcpt(t, r->targets.remote[i], NULL, true);
		break;
	case 0:
		log_info("smtp reject session=%s rcpt=%s reason=unknown-user", s->core.id, shown);
		smtp_metrics_reject(s, METRICS_REJECT_UNKNOWN_USER, shown);
		smtp_reply_error(s, 550, "5.1.1", "<%s>: Recipient address rejected: user unknown", shown);
		return;
	case 2:
		if (s->auth_user == NULL || r->path.literal) {
			log_info("smtp reject session=%s rcpt=%s reason=relay-denied", s->core.id, shown);
			smtp_metrics_reject(s, METRICS_REJECT_RELAY_DENIED, shown);
			smtp_reply_error(s, 554, "5.7.1", "<%s>: Relay access denied", shown);
			return;
		}
		add_rcpt(t, r->path.address, &r->params, true);
		break;
	default:
		smtp_reply(s, 451, "4.3.0", "Temporary lookup failure, try again later");
		return;
	}
	s->state = SMTP_ST_RCPT;
	smtp_reply(s, 250, "2.1.5", "Ok");
}

static void rcpt_answer(void *arg)
{
	struct rcpt_lookup *r = arg;
	struct smtp_session *s = r->s;
	if (!s->core.dead)
		rcpt_reply(s, r);
	bool job = r->job;
	if (r->rc == 1)
		userdb_targets_free(&r->targets);
	smtp_path_free(&r->path);
	free(r->params.orcpt);
	free(r);
	lookup_resume(s, job);
}

void smtp_cmd_rcpt(struct smtp_session *s, struct smtp_command *cmd)
{
	struct smtp_txn *t = s->txn;
	if (t->nrcpts >= s->core.ctx->cfg->max_recipients) {
		smtp_metrics_reject(s, METRICS_REJECT_RECIPIENTS, NULL);
		smtp_reply(s, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	struct smtp_rcpt_params params;
	bool unknown;
	const char *error;
	if (smtp_rcpt_params_parse(cmd, &params, &unknown, &error) < 0) {
		smtp_reply_error(s, unknown ? 555 : 501, "5.5.4", "Error: %s", error);
		return;
	}
	if ((params.notify || params.orcpt) && !s->esmtp) {
		smtp_reply_error(s, 555, "5.5.4", "Error: parameters need EHLO");
		return;
	}
	struct smtp_path path;
	if (smtp_path_parse(cmd->path, false, t->params.smtputf8, &path, &error) < 0) {
		smtp_reply_error(s, 501, "5.1.3", "Bad recipient address syntax: %s", error);
		return;
	}
	if (path.address[0] == '\0') {
		smtp_reply_error(s, 501, "5.1.3", "Bad recipient address syntax: empty");
		smtp_path_free(&path);
		return;
	}
	struct rcpt_lookup *r = xcalloc(1, sizeof(*r));
	r->s = s;
	r->path = path;
	r->params = params;
	r->params.orcpt = params.orcpt ? xstrdup(params.orcpt) : NULL;
	r->db = s->core.ctx->userdb;
	r->postmaster = s->core.ctx->cfg->postmaster;
	store_config_init(&r->store_conf, s->core.ctx->cfg);
	r->size = t->params.size;
	r->job = lookups_block(s->core.ctx);
	lookup_run(s, r->job, rcpt_lookup, rcpt_answer, r);
}

/* RFC 5321 4.4 trace field, with the RFC 3848 protocol names (the
   Return-Path line before it is the delivery's). */
static void write_trace_headers(struct smtp_session *s, struct smtp_txn *t)
{
	const char *proto = t->params.smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP";
	buf_printf(&t->out, "Received: from %s ([%s])\r\n", s->helo ? s->helo : "unknown", s->core.conn.ip);
	if (s->core.tls)
		buf_printf(&t->out, "\t(using %s with cipher %s)\r\n", io_tls_version(s->core.io),
			   io_tls_cipher(s->core.io));
	buf_printf(&t->out, "\tby %s (postoffice) with %s%s%s id %s", s->core.ctx->cfg->hostname, proto,
		   s->core.tls && s->esmtp ? "S" : "", s->auth_user && s->esmtp ? "A" : "", t->id);
	if (t->nrcpts == 1 && !t->params.smtputf8)
		buf_printf(&t->out, "\r\n\tfor <%s>", t->rcpts[0].address);
	buf_append_str(&t->out, ";\r\n\t");
	mime_date_format(&t->out, time(NULL));
	buf_append_str(&t->out, "\r\n");
}

/* The message file (delivery/delivery.h) with the Return-Path line. */
static int open_spool(struct smtp_session *s, struct smtp_txn *t)
{
	struct delivery_settings set = {
	    .data_dir = s->core.ctx->cfg->data_dir,
	    .id = t->id,
	    .return_path = t->sender,
	    .mode = 0640,
	};
	char *error = NULL;
	t->delivery = delivery_begin(&set, &error);
	if (t->delivery == NULL) {
		log_error("smtp spool session=%s error=\"%s\"", s->core.id, error);
		free(error);
		return -1;
	}
	/* RFC 6376 5: mail of our own users leaves signed (the keys of its
	   From: domain; none: unsigned) */
	struct dkim_keyring *keys = s->auth_user != NULL ? service_dkim_keys(s->core.ctx) : NULL;
	if (keys != NULL)
		delivery_add_filter(t->delivery, delivery_dkim_signer(keys, NULL));
	if (t->trust != NULL) {
		t->verifier = delivery_verifier(t->trust, s->core.ctx->cfg->hostname);
		delivery_add_filter(t->delivery, t->verifier);
	}
	write_trace_headers(s, t);
	return 0;
}

/* Hands what the scanner produced to the delivery, which batches writes. */
static void flush_out(struct smtp_session *s, struct smtp_txn *t)
{
	if (t->out.len == 0)
		return;
	if (delivery_append(t->delivery, t->out.data, t->out.len) < 0 && !t->write_failed) {
		log_error("smtp spool session=%s qid=%s error=\"%s\"", s->core.id, t->id,
			  delivery_error(t->delivery));
		t->write_failed = true;
	}
	buf_reset(&t->out);
}

void smtp_cmd_data(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (t->nrcpts == 0) {
		smtp_reply_error(s, 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	if (open_spool(s, t) < 0) {
		smtp_reply(s, 451, "4.3.0", "Error: local problem, try again later");
		return;
	}
	smtp_data_scanner_init(&t->scanner, true, s->core.ctx->cfg->bare_newline == BARE_NEWLINE_NORMALIZE,
			       s->core.ctx->cfg->max_message_size);
	s->state = SMTP_ST_DATA;
	smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* ---- commit ---- */

struct commit_job {
	struct smtp_session *s;
	struct smtp_txn *t;
	struct queue_rcpt *qr;
	struct queue_envelope env;
};

/* The remote recipients' envelope; its strings stay with the transaction
   and the session, which wait for the commit. */
static void set_remote(struct commit_job *job)
{
	struct smtp_txn *t = job->t;
	struct smtp_session *s = job->s;
	job->qr = xcalloc((size_t)t->nremote, sizeof(*job->qr));
	int n = 0;
	for (int i = 0; i < t->nrcpts; i++) {
		if (!t->rcpts[i].remote)
			continue;
		job->qr[n].address = t->rcpts[i].address;
		job->qr[n].orcpt = t->rcpts[i].orcpt;
		job->qr[n].notify = t->rcpts[i].notify;
		n++;
	}
	job->env = (struct queue_envelope){
	    .sender = t->sender,
	    .envid = t->envid,
	    .ret = t->params.ret,
	    .body = t->params.body == SMTP_BODY_8BITMIME ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT,
	    .smtputf8 = t->params.smtputf8,
	    .auth_user = s->auth_user,
	    .client_ip = s->core.conn.ip,
	    .helo = s->helo,
	    .rcpts = job->qr,
	    .nrcpts = (size_t)n,
	};
	delivery_set_remote(t->delivery, &job->env);
}

static void commit_done(void *arg, const char *error)
{
	struct commit_job *job = arg;
	struct smtp_session *s = job->s;
	struct smtp_txn *t = job->t;
	int code;
	const char *status, *text;
	if (error != NULL && t->trust != NULL &&
	    trust_inbound_action(t->trust, &code, &status, &text) == TRUST_REJECT) {
		/* the checks refused it (trust/inbound.h): nothing was delivered */
		bool spf = !strcmp(status, "5.7.23");
		log_info("smtp reject session=%s qid=%s reason=%s", s->core.id, t->id, spf ? "spf" : "dmarc");
		smtp_metrics_reject(s, spf ? METRICS_REJECT_SPF : METRICS_REJECT_DMARC, t->sender);
		if (!s->core.dead)
			smtp_reply_error(s, code, status, "%s", text);
	} else if (error != NULL) {
		log_error("smtp commit session=%s qid=%s error=\"%s\"", s->core.id, t->id, error);
		if (!s->core.dead)
			smtp_reply(s, 451, "4.3.0",
				   "Error: local problem, message not accepted, try again later");
	} else {
		char from[300];
		log_printable(from, sizeof(from), t->sender, strlen(t->sender));
		log_info("smtp accept session=%s qid=%s from=<%s> rcpts=%d local=%d remote=%d size=%llu%s",
			 s->core.id, t->id, from, t->nrcpts, t->nlocal, t->nremote,
			 (unsigned long long)delivery_size(t->delivery), s->core.dead ? " client=gone" : "");
		s->messages++;
		smtp_metrics_accepted(s, t, delivery_size(t->delivery));
		if (!s->core.dead)
			smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", t->id);
	}
	free(job->qr);
	free(job);
	smtp_txn_free(&t);
	session_resume(&s->core);
}

/* The checks' lookups are answered (or timed out): commit. */
static void checks_ready(void *arg)
{
	struct commit_job *job = arg;
	delivery_commit_async(job->t->delivery, commit_done, job);
}

static void finish_message(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	flush_out(s, t);
	const struct smtp_data_scanner *sc = &t->scanner;
	if (smtp_data_too_big(sc)) {
		log_info("smtp reject session=%s qid=%s reason=too-big size=%llu", s->core.id, t->id,
			 (unsigned long long)sc->size);
		smtp_metrics_reject(s, METRICS_REJECT_SIZE, t->sender);
		smtp_reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		reset_to_ready(s);
		return;
	}
	if ((sc->bare_lf || sc->bare_cr) && !sc->normalize) {
		log_info("smtp reject session=%s qid=%s reason=bare-newline lf=%d cr=%d", s->core.id, t->id,
			 sc->bare_lf, sc->bare_cr);
		smtp_metrics_reject(s, METRICS_REJECT_SMUGGLING, t->sender);
		smtp_reply(s, 550, "5.5.2",
			   "Error: bare <%s> received; lines must end with <CR><LF> (RFC 5321 2.3.8)",
			   sc->bare_lf ? "LF" : "CR");
		reset_to_ready(s);
		return;
	}
	if (t->write_failed) {
		smtp_reply(s, 451, "4.3.0", "Error: local problem, try again later");
		reset_to_ready(s);
		return;
	}
	if (t->verifier != NULL)
		delivery_verifier_eof(t->verifier);
	/* Hand the transaction to the commit job; the session waits for it:
	   the 250 comes once the message is on stable storage. */
	struct commit_job *job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->t = t;
	struct store_config store_conf;
	store_config_init(&store_conf, s->core.ctx->cfg);
	for (int i = 0; i < t->nlocal; i++)
		delivery_add_user(t->delivery, &store_conf, t->local_users[i]);
	if (t->nremote > 0)
		set_remote(job);
	s->txn = NULL;
	s->state = SMTP_ST_READY;
	session_busy(&s->core);
	/* Lookups of the checks still running: the session waits for them
	   (its own, on the loop, bounded by verify_timeout), then commits. */
	if (t->trust != NULL) {
		trust_inbound_wait(t->trust, s->core.ctx->cfg->dkim_verify_timeout * 1000, checks_ready, job);
		return;
	}
	delivery_commit_async(t->delivery, commit_done, job);
}

bool smtp_data_input(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	const char *data;
	size_t len;
	while ((len = io_input_peek(s->core.io, &data)) > 0) {
		bool done;
		size_t used = smtp_data_scan(&t->scanner, data, len, &t->out, &done);
		io_input_drain(s->core.io, used);
		flush_out(s, t);
		if (done) {
			finish_message(s);
			return true;
		}
	}
	return false;
}

/* ---- BDAT (RFC 3030) ---- */

void smtp_cmd_bdat(struct smtp_session *s, struct smtp_command *cmd)
{
	char *end;
	errno = 0;
	unsigned long long size = strtoull(cmd->arg, &end, 10);
	if (errno != 0 || end == cmd->arg || *cmd->arg == '-' || (*end != '\0' && *end != ' ')) {
		/* Without a size the chunk cannot be skipped: stop here. */
		smtp_session_close(s, 501, "5.5.4", "Syntax error: BDAT needs a size; closing connection");
		return;
	}
	while (*end == ' ')
		end++;
	bool last = false;
	if (!strcasecmp(end, "LAST"))
		last = true;
	else if (*end != '\0') {
		smtp_session_close(s, 501, "5.5.4", "Syntax error: BDAT size [LAST]; closing connection");
		return;
	}
	struct smtp_txn *t = s->txn;
	const char *error = NULL;
	if (t == NULL)
		error = "need MAIL command";
	else if (t->nrcpts == 0)
		error = "no valid recipients";
	if (error == NULL && !t->bdat) {
		if (open_spool(s, t) < 0) {
			error = "local problem";
		} else {
			t->bdat = true;
			smtp_data_scanner_init(&t->scanner, false,
					       s->core.ctx->cfg->bare_newline == BARE_NEWLINE_NORMALIZE,
					       s->core.ctx->cfg->max_message_size);
		}
	}
	if (error != NULL) {
		/* The chunk still follows and must be read (and dropped). */
		if (t == NULL)
			t = s->txn = xcalloc(1, sizeof(*t));
		t->bdat_discard = true;
		t->bdat_error = error;
	}
	t->bdat_left = size;
	t->bdat_last = last;
	s->state = SMTP_ST_BDAT;
}

static void bdat_chunk_done(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (t->bdat_discard) {
		const char *error = t->bdat_error;
		bool had_mail = t->sender != NULL;
		if (!had_mail) {
			smtp_txn_free(&s->txn);
		} else {
			t->bdat_discard = false;
		}
		s->state = had_mail ? SMTP_ST_MAIL : SMTP_ST_READY;
		if (!strcmp(error, "local problem"))
			smtp_reply(s, 451, "4.3.0", "Error: local problem, try again later");
		else
			smtp_reply_error(s, 503, "5.5.1", "Error: %s", error);
		return;
	}
	if (t->bdat_last) {
		smtp_data_scan_finish(&t->scanner, &t->out);
		finish_message(s);
		return;
	}
	s->state = SMTP_ST_RCPT;
	smtp_reply(s, 250, "2.0.0", "%llu octets received", (unsigned long long)t->scanner.size);
}

bool smtp_bdat_input(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	const char *data;
	size_t len;
	while (t->bdat_left > 0 && (len = io_input_peek(s->core.io, &data)) > 0) {
		size_t take = len < t->bdat_left ? len : (size_t)t->bdat_left;
		if (!t->bdat_discard) {
			bool done;
			smtp_data_scan(&t->scanner, data, take, &t->out, &done);
			flush_out(s, t);
		}
		io_input_drain(s->core.io, take);
		t->bdat_left -= take;
	}
	if (t->bdat_left > 0)
		return false;
	bdat_chunk_done(s);
	return true;
}
