/* The queue runner: keeps every spooled message in memory, learns of new
   ones through inotify, hands due recipients to runner_deliver.h grouped by
   destination domain, and records each result durably (ID.env rewritten,
   DSNs queued first, so a crash repeats a delivery at worst).

   On a spool shared by several nodes (queue_backend_shared()) the runner
   keeps only the messages it has claimed: every RUNNER_CLAIM_POLL_MS it
   renews their leases and claims due ones (runner_claim.h), saves each
   result only while its lease holds, and gives the lease back (and the
   message up) once no recipient is in a job. */
#include "relay/relay.h"
#include "relay/bounce.h"
#include "relay/runner_claim.h"
#include "relay/runner_deliver.h"
#include "relay/schedule.h"
#include "lib/fsutil.h"
#include "lib/heartbeat.h"
#include "lib/id.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"
#include "mime/header.h"
#include "queue/spool.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

/* A message in memory. */
struct qmsg {
	struct queue_entry e;
	struct qmsg *hnext;       /* hash chain */
	struct qmsg *prev, *next; /* all messages */
	bool *busy;               /* per recipient: in a job now */
	size_t busy_cap;
	int inflight; /* recipients in jobs now (busy): the message stays */
	bool saving, save_again, removed, deleted;
	bool checked; /* loop check done */
	/* shared spool: the lease's end, a lease found lost, a release under
	   way */
	int64_t lease_until;
	bool lease_lost, releasing;
	/* the content, mapped while jobs use it */
	char *map;
	size_t map_size;
	struct buf dsn_failed, dsn_delayed, dsn_success; /* pending DSN rcpt indexes */
};

struct runner {
	const struct config *cfg;
	struct event_base *base;
	char *qdir;
	struct runner_deliver *deliver;
	struct queue_schedule sched;
	struct qmsg **hash;
	size_t hash_size;
	struct qmsg *first, *last;
	size_t nmsgs;
	struct event *timer, *kick_ev, *sig_term, *sig_usr1, *sig_usr2, *sig_int, *inotify_ev, *stop_ev;
	int inotify_fd;
	int64_t wakeup;
	bool stopping;
	int saves_pending;
	/* shared spool */
	bool shared;
	char *holder; /* this runner's lease holder name */
	struct event *poll_ev;
	bool polling;
};

static struct runner *runner;

/* Delay DSNs (NOTIFY=DELAY) go out once a recipient has waited this long
   (or a quarter of the lifetime, whichever is shorter). */
#define RUNNER_DELAY_WARNING (4 * 3600)
#define RUNNER_STOP_GRACE 30

struct dsn_pending {
	size_t idx;
	const char *action;
};

/* ---- message table ---- */

static size_t hash_id(const char *id)
{
	uint32_t h = 2166136261u;
	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h;
}

static struct qmsg *msg_find(const char *id)
{
	for (struct qmsg *m = runner->hash[hash_id(id) % runner->hash_size]; m != NULL; m = m->hnext)
		if (!strcmp(m->e.id, id))
			return m;
	return NULL;
}

static void msg_add(struct qmsg *m)
{
	size_t h = hash_id(m->e.id) % runner->hash_size;
	m->hnext = runner->hash[h];
	runner->hash[h] = m;
	m->prev = runner->last;
	if (runner->last != NULL)
		runner->last->next = m;
	else
		runner->first = m;
	runner->last = m;
	runner->nmsgs++;
}

static void msg_free(struct qmsg *m)
{
	struct qmsg **pp = &runner->hash[hash_id(m->e.id) % runner->hash_size];
	while (*pp != m)
		pp = &(*pp)->hnext;
	*pp = m->hnext;
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		runner->first = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	else
		runner->last = m->prev;
	runner->nmsgs--;
	if (m->map != NULL)
		munmap(m->map, m->map_size);
	buf_free(&m->dsn_failed);
	buf_free(&m->dsn_delayed);
	buf_free(&m->dsn_success);
	queue_entry_free(&m->e);
	free(m->busy);
	free(m);
}

static void msg_sync_busy(struct qmsg *m)
{
	if (m->busy_cap < m->e.nrcpts) {
		m->busy = xreallocarray(m->busy, m->e.nrcpts, sizeof(bool));
		memset(m->busy + m->busy_cap, 0, (m->e.nrcpts - m->busy_cap) * sizeof(bool));
		m->busy_cap = m->e.nrcpts;
	}
}

static const char *runner_message_data(struct qmsg *m, size_t *size_r)
{
	if (m->map == NULL) {
		char *error = NULL;
		int rc = runner_map_message(runner->qdir, m->e.id, &m->map, &m->map_size, &error);
		if (rc != 0 || m->map == NULL) {
			log_error("queue read id=%s error=\"%s\"", m->e.id,
				  rc < 0   ? error
				  : rc > 0 ? "no such message"
					   : "empty message");
			free(error);
			return NULL;
		}
	}
	if (m->e.offset > m->map_size)
		return NULL;
	*size_r = m->map_size - m->e.offset;
	return m->map + m->e.offset;
}

static const char *runner_job_data(void *ctx, void *msg, size_t *size_r)
{
	return runner_message_data(msg, size_r);
}

static void runner_lease_release(struct qmsg *m);

static void runner_message_release(struct qmsg *m)
{
	if (m->inflight > 0 || m->saving || m->releasing)
		return;
	if (m->removed || m->deleted || m->lease_lost) {
		msg_free(m);
		return;
	}
	if (runner->shared) {
		runner_lease_release(m);
		return;
	}
	if (m->map != NULL) {
		munmap(m->map, m->map_size);
		m->map = NULL;
	}
}

static char *runner_rcpt_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	char *d = xstrdup(at != NULL ? at + 1 : "");
	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* ---- saving ---- */

struct save_dsn {
	struct buf data; /* bounce_compose()'s output */
	bool eight;
	char *to;
};

struct save_task {
	struct qmsg *m;
	char *id;
	struct buf env; /* empty: remove the message */
	bool remove;
	struct save_dsn dsn[3];
	int ndsn;
	bool gone; /* ID.env was removed meanwhile (queue delete) */
	bool lost; /* shared spool: the lease is another holder's now */
};

/* The save on a shared spool: only while the lease is the runner's (a
   lease that ran out and went to another node leaves its state alone). */
static void save_shared(struct save_task *t)
{
	char *error = NULL;
	int rc;
	if (t->remove) {
		rc = queue_entry_lease(runner->qdir, t->id, runner->holder, (int64_t)time(NULL),
				       (unsigned)runner->cfg->queue_lease_time, &error);
		if (rc == 1)
			queue_entry_remove(runner->qdir, t->id);
		rc = rc == 1 ? 0 : rc == 0 ? 2 : rc == 2 ? 1 : -1;
	} else {
		struct queue_entry e;
		rc = queue_entry_parse(&e, t->env.data, t->env.len, &error);
		if (rc == 0) {
			rc = queue_entry_save(runner->qdir, &e, true, runner->holder, &error);
			queue_entry_free(&e);
		}
	}
	if (rc < 0) {
		log_error("queue save id=%s error=\"%s\"", t->id, error);
		free(error);
	}
	t->gone = rc == 1;
	t->lost = rc == 2;
}

static void save_work(void *arg)
{
	struct save_task *t = arg;
	char *error = NULL;
	bool dsn_ok = true;
	for (int i = 0; i < t->ndsn; i++) {
		struct save_dsn *d = &t->dsn[i];
		char id[ID_SIZE];
		if (bounce_queue(runner->cfg->data_dir, runner->cfg->hostname, d->to, d->data.data,
				 d->data.len, d->eight, id, &error) < 0) {
			log_error("queue dsn id=%s error=%s", t->id, error);
			free(error);
			error = NULL;
			dsn_ok = false;
		} else {
			log_info("queue dsn id=%s dsn_id=%s to=<%s>", t->id, id, d->to);
		}
	}
	if (!dsn_ok)
		return; /* keep the old state on disk: the attempt is repeated */
	if (runner->shared) {
		save_shared(t);
		return;
	}
	if (t->remove) {
		queue_entry_remove(runner->qdir, t->id);
		return;
	}
	char *path = queue_path(runner->qdir, t->id, "env");
	if (access(path, F_OK) < 0)
		t->gone = true;
	else if (fs_write_file_durable(path, t->env.data, t->env.len, 0640, &error) < 0) {
		log_error("queue save id=%s error=%s", t->id, error);
		free(error);
	} else {
		/* `queue delete` between the check and the write would leave an
		   envelope without its message: look again, and take it back */
		char *msg = queue_path(runner->qdir, t->id, "msg");
		if (access(msg, F_OK) < 0 && errno == ENOENT) {
			unlink(path);
			t->gone = true;
		}
		free(msg);
	}
	free(path);
}

static void runner_consider(struct qmsg *m);
static void runner_save(struct qmsg *m);

static void save_done(void *arg)
{
	struct save_task *t = arg;
	struct qmsg *m = t->m;
	if (t->lost) {
		log_warn("queue lease lost id=%s: another node has the message", m->e.id);
		m->lease_lost = true;
	}
	if (t->gone && !m->removed) {
		log_info("queue deleted id=%s", m->e.id);
		m->deleted = true;
		queue_entry_remove(runner->qdir, m->e.id);
	}
	for (int i = 0; i < t->ndsn; i++) {
		buf_free(&t->dsn[i].data);
		free(t->dsn[i].to);
	}
	buf_free(&t->env);
	free(t->id);
	free(t);
	runner->saves_pending--;
	m->saving = false;
	if (m->save_again) {
		m->save_again = false;
		runner_save(m);
		return;
	}
	if (m->removed || m->deleted || m->lease_lost) {
		runner_message_release(m);
		return;
	}
	runner_consider(m);
	runner_message_release(m);
}

static void compose_dsn(struct qmsg *m, struct buf *pending, struct save_task *t)
{
	size_t n = pending->len / sizeof(struct dsn_pending);
	if (n == 0)
		return;
	const struct dsn_pending *p = (const struct dsn_pending *)pending->data;
	struct bounce_rcpt *br = xcalloc(n, sizeof(*br));
	for (size_t i = 0; i < n; i++) {
		const struct queue_entry_rcpt *r = &m->e.rcpts[p[i].idx];
		br[i].address = r->address;
		br[i].orcpt = r->orcpt;
		br[i].action = p[i].action;
		br[i].remote_mta = r->remote_mta;
		br[i].diagnostic = r->last_reply;
		br[i].last_attempt = r->last_attempt;
		/* The status is the reply's enhanced code (RFC 3463). */
		static char status[3][16];
		const char *reply = r->last_reply != NULL ? r->last_reply : "";
		const char *sp = strchr(reply, ' ');
		char *st = status[i % 3];
		if (sp != NULL && isdigit((unsigned char)sp[1]) && sp[2] == '.')
			snprintf(st, 16, "%.*s", (int)strcspn(sp + 1, " "), sp + 1);
		else
			snprintf(st, 16, "%s",
				 !strcmp(p[i].action, "failed")    ? "5.0.0"
				 : !strcmp(p[i].action, "delayed") ? "4.0.0"
								   : "2.0.0");
		br[i].status = xstrdup(st);
		if (!strcmp(p[i].action, "delayed"))
			br[i].will_retry_until = m->e.created + runner->sched.lifetime;
	}
	size_t size = 0;
	const char *data = runner_message_data(m, &size);
	struct bounce_info info = {
	    .reporting_mta = runner->cfg->hostname,
	    .queue_id = m->e.id,
	    .sender = m->e.sender,
	    .envid = m->e.envid,
	    .arrival = m->e.created,
	    .now = (int64_t)time(NULL),
	    .ret = m->e.ret,
	    .message = data != NULL ? data : "",
	    .message_size = data != NULL ? size : 0,
	    .rcpts = br,
	    .nrcpts = n,
	};
	struct save_dsn *d = &t->dsn[t->ndsn++];
	d->eight = bounce_compose(&d->data, &info);
	d->to = xstrdup(m->e.sender);
	for (size_t i = 0; i < n; i++)
		free((char *)br[i].status);
	free(br);
	buf_reset(pending);
}

static bool msg_complete(const struct qmsg *m)
{
	for (size_t i = 0; i < m->e.nrcpts; i++)
		if (m->e.rcpts[i].state == QUEUE_RCPT_PENDING)
			return false;
	return true;
}

static void runner_save(struct qmsg *m)
{
	if (m->saving) {
		m->save_again = true;
		return;
	}
	struct save_task *t = xcalloc(1, sizeof(*t));
	t->m = m;
	t->id = xstrdup(m->e.id);
	compose_dsn(m, &m->dsn_failed, t);
	compose_dsn(m, &m->dsn_delayed, t);
	compose_dsn(m, &m->dsn_success, t);
	if (msg_complete(m) && m->inflight == 0) {
		t->remove = true;
		m->removed = true;
	} else {
		queue_entry_serialize(&m->e, &t->env);
	}
	m->saving = true;
	runner->saves_pending++;
	jobs_submit(save_work, save_done, t);
}

/* ---- results ---- */

static bool notify_failure(const struct qmsg *m, unsigned notify)
{
	if (m->e.sender[0] == '\0' || (notify & SMTP_NOTIFY_NEVER))
		return false;
	return notify == SMTP_NOTIFY_DEFAULT || (notify & SMTP_NOTIFY_FAILURE);
}

static void dsn_add(struct buf *list, size_t idx, const char *action)
{
	struct dsn_pending p = {idx, action};
	buf_append(list, &p, sizeof(p));
}

static void rcpt_bounce(struct qmsg *m, size_t i, const char *reply)
{
	struct queue_entry_rcpt *r = &m->e.rcpts[i];
	r->state = QUEUE_RCPT_BOUNCED;
	metrics_count(METRICS_BOUNCED);
	if (reply != NULL) {
		free(r->last_reply);
		r->last_reply = xstrdup(reply);
	}
	if (notify_failure(m, r->notify))
		dsn_add(&m->dsn_failed, i, "failed");
	log_info("queue bounced id=%s to=<%s> reply=%s", m->e.id, r->address,
		 r->last_reply != NULL ? r->last_reply : "");
}

/* Recipients delivered locally whose aliases point to other domains: those
   addresses become recipients of their own (RFC 3461 6.2.7.3), due now. */
static void runner_add_forwards(struct qmsg *m, const struct runner_deliver_job *job)
{
	for (size_t k = 0; k < job->n; k++) {
		const struct runner_deliver_forward *fw = &job->forward[k];
		if (job->rcpts[k].status != SMTP_CLIENT_OK || fw->count == 0)
			continue;
		const struct queue_entry_rcpt *r = &m->e.rcpts[job->idx[k]];
		char *orcpt = r->orcpt != NULL ? xstrdup(r->orcpt) : xasprintf("rfc822;%s", r->address);
		unsigned notify = r->notify;
		for (size_t i = 0; i < fw->count; i++) {
			queue_entry_add_rcpt(&m->e, fw->addresses[i], orcpt, notify);
			m->e.rcpts[m->e.nrcpts - 1].next_attempt = (int64_t)time(NULL);
		}
		free(orcpt);
	}
	msg_sync_busy(m);
}

static void runner_job_done(void *ctx, struct runner_deliver_job *job)
{
	struct qmsg *m = job->msg;
	int64_t now = (int64_t)time(NULL);
	if (!job->local)
		metrics_observe(METRICS_HIST_RELAY, metrics_now_ns() - job->started_ns);
	if (job->forward != NULL)
		runner_add_forwards(m, job);
	const struct schedule_info {
		int delay_warning;
	} si = {runner->sched.lifetime / 4 < RUNNER_DELAY_WARNING ? runner->sched.lifetime / 4
								  : RUNNER_DELAY_WARNING};
	for (size_t k = 0; k < job->n; k++) {
		size_t i = job->idx[k];
		struct queue_entry_rcpt *r = &m->e.rcpts[i];
		const struct smtp_client_rcpt *cr = &job->rcpts[k];
		m->busy[i] = false;
		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		r->last_attempt = now;
		free(r->remote_mta);
		r->remote_mta = job->remote_mta != NULL && cr->remote ? xstrdup(job->remote_mta) : NULL;
		if (cr->reply != NULL) {
			free(r->last_reply);
			r->last_reply = xstrdup(cr->reply);
		}
		switch (cr->status) {
		case SMTP_CLIENT_OK:
			r->state = QUEUE_RCPT_DELIVERED;
			metrics_count(job->local ? METRICS_DELIVERED_LOCAL : METRICS_RELAYED);
			log_info("queue sent id=%s to=<%s> relay=%s reply=%s", m->e.id, r->address,
				 job->local                ? "local"
				 : job->remote_mta != NULL ? job->remote_mta
							   : "?",
				 r->last_reply != NULL ? r->last_reply : "");
			if ((r->notify & SMTP_NOTIFY_SUCCESS) && m->e.sender[0] != '\0' &&
			    (job->local || job->cmsg.dsn_relayed))
				dsn_add(&m->dsn_success, i, job->local ? "delivered" : "relayed");
			break;
		case SMTP_CLIENT_PERMFAIL:
			rcpt_bounce(m, i, NULL);
			break;
		case SMTP_CLIENT_TEMPFAIL:
			r->attempts++;
			if (queue_schedule_expired(&runner->sched, m->e.created, now)) {
				char *reply = xasprintf("%s (delivery time expired after %d attempts)",
							r->last_reply != NULL ? r->last_reply
									      : "451 4.4.7 not delivered",
							r->attempts);
				rcpt_bounce(m, i, reply);
				free(reply);
				break;
			}
			r->next_attempt = queue_schedule_next(&runner->sched, m->e.created, r->attempts, now);
			log_info("queue deferred id=%s to=<%s> attempts=%d next=%llds reply=%s", m->e.id,
				 r->address, r->attempts, (long long)(r->next_attempt - now),
				 r->last_reply != NULL ? r->last_reply : "");
			metrics_count(METRICS_DEFERRED);
			if ((r->notify & SMTP_NOTIFY_DELAY) && !(r->notify & SMTP_NOTIFY_NEVER) &&
			    !r->delay_notified && m->e.sender[0] != '\0' &&
			    now - m->e.created >= si.delay_warning) {
				r->delay_notified = true;
				dsn_add(&m->dsn_delayed, i, "delayed");
			}
			break;
		}
	}
	m->inflight -= (int)job->n;
	runner_deliver_job_free(job);
	if (m->deleted) {
		runner_message_release(m);
		return;
	}
	runner_save(m);
}

/* ---- scheduling ---- */

static void runner_arm(int64_t when)
{
	if (when >= runner->wakeup)
		return;
	runner->wakeup = when;
	int64_t now = (int64_t)time(NULL);
	struct timeval tv = {when > now ? (time_t)(when - now) : 0, when > now ? 0 : 1000};
	evtimer_add(runner->timer, &tv);
}

static int count_received(const char *data, size_t size)
{
	struct pool *pool = pool_create(16384);
	struct mime_headers *h = mime_headers_parse(pool, data, size, NULL);
	int n = (int)mime_headers_count(h, "Received");
	pool_destroy(&pool);
	return n;
}

/* RFC 5321 6.3: a message that has passed too many relays loops. */
static bool runner_loop_check(struct qmsg *m)
{
	size_t size;
	const char *data = runner_message_data(m, &size);
	if (data == NULL) {
		log_error("queue message file missing id=%s: dropped", m->e.id);
		for (size_t i = 0; i < m->e.nrcpts; i++)
			m->e.rcpts[i].state = QUEUE_RCPT_BOUNCED;
		m->removed = true;
		queue_entry_remove(runner->qdir, m->e.id);
		return false;
	}
	int received = count_received(data, size);
	if (received <= runner->cfg->queue_max_received)
		return true;
	char *reply = xasprintf("554 5.4.6 too many hops (%d Received headers): mail loop", received);
	for (size_t i = 0; i < m->e.nrcpts; i++)
		if (m->e.rcpts[i].state == QUEUE_RCPT_PENDING && !m->busy[i])
			rcpt_bounce(m, i, reply);
	free(reply);
	runner_save(m);
	return false;
}

/* One job for the due recipients of m in domains[first]'s domain (their
   entries are consumed). */
static void runner_submit(struct qmsg *m, char **domains, size_t first)
{
	size_t n = 0;
	for (size_t j = first; j < m->e.nrcpts; j++)
		if (domains[j] != NULL && !strcmp(domains[j], domains[first]))
			n++;
	struct runner_deliver_job *job = runner_deliver_job_new(m, m->e.id, domains[first], n);
	job->cmsg = (struct smtp_client_msg){
	    .sender = m->e.sender,
	    .envid = m->e.envid,
	    .ret = m->e.ret,
	    .body = m->e.body,
	    .smtputf8 = m->e.smtputf8,
	};
	size_t k = 0;
	for (size_t j = first; j < m->e.nrcpts; j++) {
		if (domains[j] == NULL || strcmp(domains[j], job->domain) != 0)
			continue;
		const struct queue_entry_rcpt *r = &m->e.rcpts[j];
		job->idx[k] = j;
		job->rcpts[k].address = r->address;
		job->rcpts[k].orcpt = r->orcpt;
		job->rcpts[k].notify = r->notify;
		k++;
		m->busy[j] = true;
		free(domains[j]);
		domains[j] = NULL;
	}
	m->inflight += (int)n;
	runner_deliver_submit(runner->deliver, job);
}

static void runner_consider(struct qmsg *m)
{
	if (runner->shared && m->e.held && !m->releasing) {
		/* Held between the claim and the load: given back. */
		runner_message_release(m);
		return;
	}
	if (m->removed || m->deleted || m->e.held || m->lease_lost || m->releasing || runner->stopping)
		return;
	msg_sync_busy(m);
	if (!m->checked) {
		m->checked = true;
		if (!runner_loop_check(m)) {
			runner_message_release(m);
			return;
		}
	}
	int64_t now = (int64_t)time(NULL);
	int64_t next = INT64_MAX;
	char **domains = xcalloc(m->e.nrcpts, sizeof(char *));
	for (size_t i = 0; i < m->e.nrcpts; i++) {
		const struct queue_entry_rcpt *r = &m->e.rcpts[i];
		if (r->state != QUEUE_RCPT_PENDING || m->busy[i])
			continue;
		if (r->next_attempt > now) {
			if (r->next_attempt < next)
				next = r->next_attempt;
			continue;
		}
		domains[i] = runner_rcpt_domain(r->address);
	}
	for (size_t i = 0; i < m->e.nrcpts; i++)
		if (domains[i] != NULL)
			runner_submit(m, domains, i);
	free(domains);
	if (next != INT64_MAX)
		runner_arm(next);
	runner_message_release(m);
}

static void runner_scan_all(void)
{
	/* consider() may free messages (loop bounces): take next first. */
	for (struct qmsg *m = runner->first, *next; m != NULL; m = next) {
		next = m->next;
		runner_consider(m);
	}
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	runner->wakeup = INT64_MAX;
	runner_scan_all();
}

/* ---- spool events ---- */

static struct qmsg *runner_load(const char *id)
{
	struct qmsg *m = xcalloc(1, sizeof(*m));
	char *error = NULL;
	int rc = queue_entry_load(runner->qdir, id, &m->e, &error);
	if (rc != 0) {
		if (rc < 0) {
			log_error("queue load id=%s error=%s", id, error);
			free(error);
		}
		free(m);
		return NULL;
	}
	msg_add(m);
	msg_sync_busy(m);
	return m;
}

static void flush_message(struct qmsg *m)
{
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < m->e.nrcpts; i++)
		if (m->e.rcpts[i].state == QUEUE_RCPT_PENDING && m->e.rcpts[i].next_attempt > now)
			m->e.rcpts[i].next_attempt = now;
}

/* Every pending recipient is due now (queue flush, SIGUSR1). */
static void runner_flush_all(void)
{
	log_info("queue flush requested");
	for (struct qmsg *m = runner->first; m != NULL; m = m->next)
		flush_message(m);
	runner_scan_all();
}

static void runner_file_event(const char *name, uint32_t mask)
{
	if (!strcmp(name, QUEUE_FLUSH_ALL)) {
		/* Created (inotify reports both the creation and the close):
		   the request is handled once, by whoever removes it. */
		char *path = xasprintf("%s/%s", runner->qdir, name);
		if ((mask & (IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE)) && unlink(path) == 0)
			runner_flush_all();
		free(path);
		return;
	}
	const char *dot = strrchr(name, '.');
	if (dot == NULL || strchr(name, '.') != dot)
		return; /* tmp files "ID.env.tmp.PID" */
	char id[64];
	if ((size_t)(dot - name) >= sizeof(id))
		return;
	memcpy(id, name, (size_t)(dot - name));
	id[dot - name] = '\0';
	if (!queue_id_valid(id))
		return;
	const char *suffix = dot + 1;
	struct qmsg *m = msg_find(id);
	bool created = (mask & (IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE)) != 0;
	if (!strcmp(suffix, "env")) {
		if (created && m == NULL && (m = runner_load(id)) != NULL) {
			log_info("queue new id=%s from=<%s> nrcpt=%zu", id, m->e.sender, m->e.nrcpts);
			runner_consider(m);
		} else if (!created && m != NULL && !m->removed && !m->saving) {
			/* `queue delete` removed it. */
			log_info("queue deleted id=%s", id);
			m->deleted = true;
			queue_entry_remove(runner->qdir, id);
			runner_message_release(m);
		}
	} else if (!strcmp(suffix, "hold") && m != NULL) {
		m->e.held = created;
		log_info("queue %s id=%s", created ? "hold" : "release", id);
		if (!created)
			runner_consider(m);
	} else if (!strcmp(suffix, "flush") && created) {
		char *path = queue_path(runner->qdir, id, "flush");
		unlink(path);
		free(path);
		if (m != NULL) {
			flush_message(m);
			runner_consider(m);
		}
	}
}

static void runner_scan_dir(bool startup)
{
	DIR *dir = opendir(runner->qdir);
	if (dir == NULL) {
		log_error("queue opendir(%s) failed: %s", runner->qdir, strerror(errno));
		return;
	}
	time_t now = time(NULL);
	struct dirent *d;
	char **flushes = NULL;
	size_t nflush = 0;
	while ((d = readdir(dir)) != NULL) {
		const char *name = d->d_name;
		if (name[0] == '.')
			continue;
		if (startup && strstr(name, ".tmp.") != NULL) {
			/* Left by a crash mid-write; an enqueue in progress is younger. */
			char *path = xasprintf("%s/%s", runner->qdir, name);
			struct stat st;
			if (stat(path, &st) == 0 && now - st.st_mtime > 3600)
				unlink(path);
			free(path);
			continue;
		}
		size_t n = strlen(name);
		if (n > 4 && !strcmp(name + n - 4, ".env")) {
			char *id = xstrndup(name, n - 4);
			if (queue_id_valid(id) && msg_find(id) == NULL)
				runner_load(id);
			free(id);
		} else if ((n > 6 && !strcmp(name + n - 6, ".flush")) || !strcmp(name, QUEUE_FLUSH_ALL)) {
			flushes = xreallocarray(flushes, nflush + 1, sizeof(char *));
			flushes[nflush++] = xstrdup(name);
		}
	}
	closedir(dir);
	for (size_t i = 0; i < nflush; i++) {
		runner_file_event(flushes[i], IN_CREATE);
		free(flushes[i]);
	}
	free(flushes);
}

static void inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				log_warn("queue inotify overflow: rescanning the spool");
				runner_scan_dir(false);
				runner_scan_all();
			} else if (ev->len > 0) {
				runner_file_event(ev->name, ev->mask);
			}
			p += sizeof(struct inotify_event) + ev->len;
		}
	}
}

/* ---- shared spool: claims and leases ---- */

struct release_task {
	struct qmsg *m;
	char *id;
};

static void release_work(void *arg)
{
	struct release_task *t = arg;
	char *error = NULL;
	if (queue_entry_release(runner->qdir, t->id, runner->holder, &error) < 0) {
		/* It runs out by itself. */
		log_error("queue release id=%s error=\"%s\"", t->id, error);
		free(error);
	}
}

static void release_done(void *arg)
{
	struct release_task *t = arg;
	msg_free(t->m);
	free(t->id);
	free(t);
}

/* Gives the lease of an idle message back and forgets the message: its
   state is saved, and its next attempt is claimed again by whichever node
   polls first when it is due. */
static void runner_lease_release(struct qmsg *m)
{
	struct release_task *t = xcalloc(1, sizeof(*t));
	t->m = m;
	t->id = xstrdup(m->e.id);
	m->releasing = true;
	jobs_submit(release_work, release_done, t);
}

/* Messages kept in memory at most: claims stop above it. */
#define RUNNER_CLAIM_HELD_MAX 2000

static void claim_work(void *arg)
{
	runner_claim_work(arg);
}

static void runner_poll(void);

static void claim_adopt(struct runner_claimed *c, int64_t until)
{
	struct qmsg *m = msg_find(c->e.id);
	if (m != NULL) {
		/* Ours already (its lease had run out unrenewed, and no other
		   node took it): the lease is renewed, the entry ours. */
		if (!m->lease_lost)
			m->lease_until = until;
		return;
	}
	m = xcalloc(1, sizeof(*m));
	m->e = c->e;
	memset(&c->e, 0, sizeof(c->e));
	m->map = c->map;
	m->map_size = c->map_size;
	c->map = NULL;
	m->lease_until = until;
	msg_add(m);
	msg_sync_busy(m);
	log_info("queue claimed id=%s from=<%s> nrcpt=%zu", m->e.id, m->e.sender, m->e.nrcpts);
	runner_consider(m);
}

static void claim_done(void *arg)
{
	struct runner_claim_task *t = arg;
	runner->polling = false;
	int64_t until = (int64_t)time(NULL) + runner->cfg->queue_lease_time;
	for (size_t i = 0; i < t->nrenew && t->renewed != NULL; i++) {
		struct qmsg *m = msg_find(t->renew[i]);
		if (m == NULL || t->renewed[i] < 0)
			continue;
		if (t->renewed[i] == 1) {
			m->lease_until = until;
		} else if (!m->lease_lost) {
			log_warn("queue lease lost id=%s: another node has the message", m->e.id);
			m->lease_lost = true;
			runner_message_release(m);
		}
	}
	bool full = t->max > 0 && t->nclaimed == t->max;
	if (!runner->stopping)
		for (size_t i = 0; i < t->nclaimed; i++)
			claim_adopt(&t->claimed[i], until);
	runner_claim_task_free(t);
	if (full && !runner->stopping)
		runner_poll();
}

/* Renews the leases that are a third through, claims due messages. */
static void runner_poll(void)
{
	if (runner->polling || runner->stopping)
		return;
	struct runner_claim_task *t = xcalloc(1, sizeof(*t));
	t->qdir = runner->qdir;
	t->holder = runner->holder;
	t->lease_time = (unsigned)runner->cfg->queue_lease_time;
	t->max = runner->nmsgs < RUNNER_CLAIM_HELD_MAX ? RUNNER_CLAIM_MAX : 0;
	int64_t renew_before = (int64_t)time(NULL) + runner->cfg->queue_lease_time * 2 / 3;
	for (struct qmsg *m = runner->first; m != NULL; m = m->next) {
		if (m->lease_lost || m->releasing || m->removed || m->lease_until > renew_before)
			continue;
		t->renew = xreallocarray(t->renew, t->nrenew + 1, sizeof(char *));
		t->renew[t->nrenew++] = xstrdup(m->e.id);
	}
	runner->polling = true;
	jobs_submit(claim_work, claim_done, t);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
	runner_poll();
}

/* The lease holder name of this runner: the node's name, the process and
   its start, unique across nodes and restarts. */
static char *runner_holder_name(const struct config *cfg)
{
	char *name = xasprintf("%s/%ld/%lld", cfg->hostname, (long)getpid(), (long long)time(NULL));
	for (char *p = name; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			*p = '_';
	return name;
}

/* At the end, the leases of what is still in memory go back at once
   (another node need not wait for them to run out). */
static void runner_release_all(void)
{
	for (struct qmsg *m = runner->first; m != NULL; m = m->next) {
		char *error = NULL;
		if (!m->removed && !m->lease_lost &&
		    queue_entry_release(runner->qdir, m->e.id, runner->holder, &error) < 0) {
			log_error("queue release id=%s error=\"%s\"", m->e.id, error);
			free(error);
		}
	}
}

/* ---- process ---- */

static void stop_check_cb(evutil_socket_t fd, short what, void *arg)
{
	static int ticks;
	ticks++;
	if ((runner->saves_pending == 0 && runner_deliver_pending(runner->deliver) == 0) ||
	    ticks > RUNNER_STOP_GRACE * 10)
		event_base_loopexit(runner->base, NULL);
}

static void sig_term_cb(evutil_socket_t fd, short what, void *arg)
{
	if (runner->stopping)
		return;
	log_info("queue runner stopping saves=%d", runner->saves_pending);
	runner->stopping = true;
	runner_deliver_stop(runner->deliver);
	runner->stop_ev = event_new(runner->base, -1, EV_PERSIST, stop_check_cb, NULL);
	struct timeval tv = {0, 100000};
	event_add(runner->stop_ev, &tv);
	stop_check_cb(-1, 0, NULL);
}

/* SIGUSR2: logrotate moved the log file. */
static void sig_usr2_cb(evutil_socket_t fd, short what, void *arg)
{
	log_reopen();
}

static void sig_usr1_cb(evutil_socket_t fd, short what, void *arg)
{
	runner_flush_all();
	if (runner->shared)
		runner_poll();
}

static int runner_setup(const struct config *cfg)
{
	char *error = NULL;
	runner = xcalloc(1, sizeof(*runner));
	runner->cfg = cfg;
	runner->wakeup = INT64_MAX;
	runner->hash_size = 16381;
	runner->hash = xcalloc(runner->hash_size, sizeof(*runner->hash));
	runner->qdir = queue_dir(cfg->data_dir);
	runner->shared = queue_backend_shared();
	/* A real directory, not a link (see spool.h). */
	int qfd = fs_open_dir_beneath(cfg->data_dir, "queue", true, 0750, (uid_t)-1, (gid_t)-1, &error);
	if (qfd >= 0)
		close(qfd);
	if (qfd < 0) {
		log_error("queue runner setup failed: %s", error);
		free(error);
		return -1;
	}
	queue_schedule_init(&runner->sched, cfg->queue_retry.seconds, cfg->queue_retry.count,
			    cfg->queue_lifetime);
	runner->base = event_base_new();
	static const struct runner_deliver_ops ops = {
	    .job_done = runner_job_done,
	    .message_data = runner_job_data,
	};
	runner->deliver = runner_deliver_new(runner->base, cfg, &ops, NULL, &error);
	if (runner->deliver == NULL) {
		log_error("queue runner: %s", error);
		free(error);
		return -1;
	}
	runner->timer = evtimer_new(runner->base, timer_cb, NULL);
	runner->sig_term = evsignal_new(runner->base, SIGTERM, sig_term_cb, NULL);
	runner->sig_int = evsignal_new(runner->base, SIGINT, sig_term_cb, NULL);
	runner->sig_usr1 = evsignal_new(runner->base, SIGUSR1, sig_usr1_cb, NULL);
	runner->sig_usr2 = evsignal_new(runner->base, SIGUSR2, sig_usr2_cb, NULL);
	event_add(runner->sig_term, NULL);
	event_add(runner->sig_int, NULL);
	event_add(runner->sig_usr1, NULL);
	event_add(runner->sig_usr2, NULL);
	signal(SIGPIPE, SIG_IGN);
	jobs_init(runner->base, 4);
	runner->inotify_fd = -1;
	if (runner->shared) {
		runner->holder = runner_holder_name(cfg);
		runner->poll_ev = event_new(runner->base, -1, EV_PERSIST, poll_cb, NULL);
		struct timeval tv = {RUNNER_CLAIM_POLL_MS / 1000, (RUNNER_CLAIM_POLL_MS % 1000) * 1000};
		event_add(runner->poll_ev, &tv);
		log_info("queue runner shared backend=%s holder=%s lease=%ds", queue_backend_name(),
			 runner->holder, cfg->queue_lease_time);
		return 0;
	}

	runner->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (runner->inotify_fd < 0 ||
	    inotify_add_watch(runner->inotify_fd, runner->qdir,
			      IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_CLOSE_WRITE) < 0) {
		log_error("queue inotify on %s failed: %s", runner->qdir, strerror(errno));
		return -1;
	}
	runner->inotify_ev =
	    event_new(runner->base, runner->inotify_fd, EV_READ | EV_PERSIST, inotify_cb, NULL);
	event_add(runner->inotify_ev, NULL);

	char *pidfile = xasprintf("%s/%s", runner->qdir, QUEUE_RUNNER_PID);
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (fs_write_file_durable(pidfile, pid, (size_t)n, 0644, &error) < 0) {
		log_warn("queue runner: %s", error);
		free(error);
	}
	free(pidfile);
	return 0;
}

static void runner_teardown(void)
{
	jobs_deinit();
	if (runner->shared)
		runner_release_all();
	while (runner->first != NULL) {
		runner->first->inflight = 0;
		runner->first->saving = false;
		msg_free(runner->first);
	}
	runner_deliver_free(&runner->deliver);
	if (!runner->shared) {
		char *pidfile = xasprintf("%s/%s", runner->qdir, QUEUE_RUNNER_PID);
		unlink(pidfile);
		free(pidfile);
	}
	struct event *evs[] = {runner->timer,      runner->kick_ev,  runner->sig_term,
			       runner->sig_usr1,   runner->sig_usr2, runner->sig_int,
			       runner->inotify_ev, runner->stop_ev,  runner->poll_ev};
	for (size_t i = 0; i < N_ELEMENTS(evs); i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	if (runner->inotify_fd >= 0)
		close(runner->inotify_fd);
	if (runner->base != NULL)
		event_base_free(runner->base);
	queue_schedule_deinit(&runner->sched);
	free(runner->hash);
	free(runner->holder);
	free(runner->qdir);
	free(runner);
	runner = NULL;
}

int queue_runner_run(const struct config *cfg, struct heartbeat *hb)
{
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	if (runner_setup(cfg) < 0) {
		if (runner->base != NULL)
			runner_teardown();
		return -1;
	}
	struct event *beat = heartbeat_start(runner->base, hb);
	if (runner->shared) {
		log_info("queue runner started messages=0");
		runner_poll();
	} else {
		runner_scan_dir(true);
		log_info("queue runner started messages=%zu", runner->nmsgs);
		runner_scan_all();
	}
	event_base_dispatch(runner->base);
	event_free(beat);
	log_info("queue runner stopped messages=%zu", runner->nmsgs);
	runner_teardown();
	return 0;
}
