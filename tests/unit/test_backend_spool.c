/* Contract tests of the spool interface (spool.h, queue.h), run against
   every queue backend in the table below and only through the public
   functions: enqueue (linking a file, or from memory), list (walk), claim
   (leases), defer (recording an attempt), bounce or complete, hold,
   delete and flush, and the leases of several holders at once (threads
   racing for one message, claims that never overlap, a stale holder's
   save refused).  A new backend passes when it is added to
   spool_backends[] with a way to make an empty location.  The postgresql
   case needs a server (tests/unit/pg_test.h): each test gets a database
   of its own. */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "queue/queue.h"
#include "queue/spool.h"
#include "lib/fsutil.h"
#include "lib/pg_schema.h"
#include "lib/xalloc.h"
#include "pg_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the backends under test ---- */

struct spool_backend_case {
	const char *name;
	bool needs_pg; /* an empty database of its own, with the schema */
	bool copies;   /* enqueue keeps a durable copy of its own (the source
			  need not be synced) */
};

static const struct spool_backend_case spool_backends[] = {
    {"local", false, false},
    {"postgresql", true, true},
};

/* ---- fixture ---- */

struct fixture {
	const struct spool_backend_case *be;
	char *dir;
	char *data_dir;
	char *qdir;
	char *conninfo; /* postgresql */
};

/* A database with the schema (what `postoffice db init` makes). */
static char *pg_location(void)
{
	char *conninfo = pg_test_database_create();
	char *error = NULL;
	struct pg_conn *conn = pg_connect(conninfo, &error);
	int applied;
	if (conn == NULL || pg_schema_migrate(conn, &applied, &error) < 0)
		fail_msg("schema: %s", error);
	pg_close(&conn);
	return conninfo;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->be = *state;
	char tmpl[] = "/tmp/test_backend_spool.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	f->dir = xstrdup(tmpl);
	f->data_dir = xasprintf("%s/data", f->dir);
	char *error = NULL;
	assert_int_equal(fs_mkdir_p(f->data_dir, 0700, &error), 0);
	f->qdir = queue_dir(f->data_dir);
	f->conninfo = f->be->needs_pg ? pg_location() : NULL;
	if (queue_backend_open(f->be->name, f->conninfo, &error) < 0)
		fail_msg("queue_backend_open(%s): %s", f->be->name, error);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	if (f->conninfo != NULL)
		pg_test_database_drop(f->conninfo);
	free(f->qdir);
	free(f->data_dir);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ---- */

#define RETURN_PATH "Return-Path: <a@a.test>\r\n"
static const char message[] = RETURN_PATH "Subject: x\r\n\r\nbody\r\n";
#define MESSAGE_OFFSET (sizeof(RETURN_PATH) - 1)

static const struct queue_rcpt two_rcpts[] = {
    {"bob@b.test", "rfc822;Bob@b.test", SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY},
    {"carol@c.test", NULL, SMTP_NOTIFY_DEFAULT},
};

static const struct queue_envelope envelope = {
    .sender = "a@a.test",
    .envid = "ENV 1",
    .ret = SMTP_RET_HDRS,
    .body = SMTP_BODY_8BITMIME,
    .smtputf8 = true,
    .auth_user = "a@a.test",
    .client_ip = "192.0.2.7",
    .helo = "client.a.test",
    .rcpts = two_rcpts,
    .nrcpts = 2,
};

/* queue_enqueue() of len bytes written to a file first, as the delivery
   module hands the queue its fsynced spool file. */
static int enqueue_bytes(struct fixture *f, const char *id, const char *data, size_t len, off_t offset,
			 const struct queue_envelope *env, char **error_r)
{
	char *src = xasprintf("%s/incoming", f->dir);
	if (fs_write_file_durable(src, data, len, 0600, error_r) < 0)
		fail_msg("write %s: %s", src, *error_r);
	int rc = queue_enqueue(f->data_dir, id, AT_FDCWD, src, offset, env, error_r);
	unlink(src);
	free(src);
	return rc;
}

static void enqueue(struct fixture *f, const char *id)
{
	char *error = NULL;
	if (enqueue_bytes(f, id, message, strlen(message), (off_t)MESSAGE_OFFSET, &envelope, &error) < 0)
		fail_msg("queue_enqueue(%s): %s", id, error);
}

static void load(struct fixture *f, const char *id, struct queue_entry *e)
{
	char *error = NULL;
	int rc = queue_entry_load(f->qdir, id, e, &error);
	if (rc != 0)
		fail_msg("queue_entry_load(%s): %d %s", id, rc, error != NULL ? error : "");
}

static void save(struct fixture *f, const struct queue_entry *e)
{
	char *error = NULL;
	if (queue_entry_save(f->qdir, e, true, NULL, &error) != 0)
		fail_msg("queue_entry_save(%s): %s", e->id, error != NULL ? error : "gone");
}

#define IDS_MAX 256

/* Walk callback: "ID(held);" for each entry, in order. */
static int collect(void *ctx, const struct queue_entry *e)
{
	char *out = ctx;
	snprintf(out + strlen(out), IDS_MAX - strlen(out), "%s%s;", e->id, e->held ? "(held)" : "");
	return 0;
}

static void walk(struct fixture *f, char out[IDS_MAX])
{
	char *error = NULL;
	out[0] = '\0';
	if (queue_walk(f->data_dir, collect, out, &error) < 0)
		fail_msg("queue_walk: %s", error);
}

/* The message of id as read through the spool. */
static char *read_message(struct fixture *f, const char *id)
{
	int fd;
	char *error = NULL;
	if (queue_msg_open(f->qdir, id, &fd, &error) != 1)
		fail_msg("queue_msg_open(%s): %s", id, error != NULL ? error : "gone");
	char buf[512];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return xstrdup(buf);
}

/* ---- tests ---- */

static void test_select(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	assert_int_equal(queue_backend_select("no-such-backend", &error), -1);
	assert_non_null(strstr(error, "no-such-backend"));
	free(error);
	/* A failed choice keeps the previous one. */
	assert_string_equal(queue_backend_name(), f->be->name);
	/* the local spool links the message file: it must be synced first */
	assert_int_equal(queue_enqueue_needs_synced_source(), !f->be->copies);
}

static void test_enqueue_and_list(void **state)
{
	struct fixture *f = *state;
	char out[IDS_MAX];
	walk(f, out);
	assert_string_equal(out, "");
	enqueue(f, "Q1");
	/* From a file the receiver wrote and synced (never copied by a local
	   spool: linked). */
	char *error = NULL;
	char *src = xasprintf("%s/incoming", f->dir);
	assert_int_equal(fs_write_file_durable(src, message, strlen(message), 0600, &error), 0);
	assert_int_equal(
	    queue_enqueue(f->data_dir, "Q2", AT_FDCWD, src, (off_t)MESSAGE_OFFSET, &envelope, &error), 0);
	free(src);
	walk(f, out);
	assert_string_equal(out, "Q1;Q2;");

	struct queue_entry e;
	load(f, "Q2", &e);
	assert_string_equal(e.id, "Q2");
	assert_true(e.created > 0);
	assert_int_equal(e.offset, MESSAGE_OFFSET);
	assert_string_equal(e.sender, "a@a.test");
	assert_string_equal(e.envid, "ENV 1");
	assert_int_equal(e.ret, SMTP_RET_HDRS);
	assert_int_equal(e.body, SMTP_BODY_8BITMIME);
	assert_true(e.smtputf8);
	assert_string_equal(e.auth_user, "a@a.test");
	assert_string_equal(e.client_ip, "192.0.2.7");
	assert_string_equal(e.helo, "client.a.test");
	assert_false(e.held);
	assert_int_equal(e.nrcpts, 2);
	assert_string_equal(e.rcpts[0].address, "bob@b.test");
	assert_string_equal(e.rcpts[0].orcpt, "rfc822;Bob@b.test");
	assert_int_equal(e.rcpts[0].notify, SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	assert_null(e.rcpts[1].orcpt);
	for (size_t i = 0; i < e.nrcpts; i++) {
		assert_int_equal(e.rcpts[i].state, QUEUE_RCPT_PENDING);
		assert_int_equal(e.rcpts[i].attempts, 0);
		assert_true(e.rcpts[i].next_attempt <= e.created); /* due at once */
	}
	queue_entry_free(&e);
	char *text = read_message(f, "Q1");
	assert_string_equal(text, message);
	free(text);
	text = read_message(f, "Q2");
	assert_string_equal(text, message);
	free(text);
	assert_int_equal(queue_entry_load(f->qdir, "Q3", &e, &error), 1);
	int fd;
	assert_int_equal(queue_msg_open(f->qdir, "Q3", &fd, &error), 0);
}

static void test_enqueue_refused(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	assert_int_equal(enqueue_bytes(f, "bad/id", message, strlen(message), 0, &envelope, &error), -1);
	assert_non_null(strstr(error, "invalid queue id"));
	free(error);
	error = NULL;
	struct queue_envelope none = envelope;
	none.nrcpts = 0;
	assert_int_equal(enqueue_bytes(f, "Q1", message, strlen(message), 0, &none, &error), -1);
	assert_non_null(strstr(error, "no recipients"));
	free(error);
	error = NULL;
	assert_int_equal(
	    queue_enqueue(f->data_dir, "Q1", AT_FDCWD, "/nonexistent/file", 0, &envelope, &error), -1);
	free(error);
	char out[IDS_MAX];
	walk(f, out);
	assert_string_equal(out, "");
}

static void test_lease(void **state)
{
	struct fixture *f = *state;
	enqueue(f, "Q1");
	char *error = NULL;
	const int64_t now = 1700000000;
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-a", now, 60, &error), 1);
	/* Held by a: b must wait until it runs out. */
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-b", now + 1, 60, &error), 0);
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-b", now + 59, 60, &error), 0);
	/* a renews: the lease now runs to now + 30 + 60. */
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-a", now + 30, 60, &error), 1);
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-b", now + 61, 60, &error), 0);
	/* Expired: b takes it over, and a's release no longer counts. */
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-b", now + 91, 60, &error), 1);
	assert_int_equal(queue_entry_release(f->qdir, "Q1", "node-a", &error), 0);
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-a", now + 92, 60, &error), 0);
	/* Released: free for anyone at once. */
	assert_int_equal(queue_entry_release(f->qdir, "Q1", "node-b", &error), 1);
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-a", now + 93, 60, &error), 1);
	/* A lease does not show in the entry or its listing. */
	char out[IDS_MAX];
	walk(f, out);
	assert_string_equal(out, "Q1;");
	/* Nothing to lease. */
	assert_int_equal(queue_entry_lease(f->qdir, "Q9", "node-a", now, 60, &error), 2);
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "bad holder", now, 60, &error), -1);
	free(error);
	error = NULL;
	assert_int_equal(queue_entry_lease(f->qdir, "../Q1", "node-a", now, 60, &error), -1);
	free(error);
}

static void test_defer(void **state)
{
	struct fixture *f = *state;
	enqueue(f, "Q1");
	struct queue_entry e;
	load(f, "Q1", &e);
	/* A temporary failure for bob: try again later. */
	struct queue_entry_rcpt *r = &e.rcpts[0];
	r->attempts = 1;
	r->last_attempt = e.created + 5;
	r->next_attempt = e.created + 905;
	r->delay_notified = true;
	r->remote_mta = xstrdup("mx.b.test");
	r->last_reply = xstrdup("451 4.7.1 try again later");
	save(f, &e);
	queue_entry_free(&e);
	load(f, "Q1", &e);
	r = &e.rcpts[0];
	assert_int_equal(r->state, QUEUE_RCPT_PENDING);
	assert_int_equal(r->attempts, 1);
	assert_int_equal(r->last_attempt, e.created + 5);
	assert_int_equal(r->next_attempt, e.created + 905);
	assert_true(r->delay_notified);
	assert_string_equal(r->remote_mta, "mx.b.test");
	assert_string_equal(r->last_reply, "451 4.7.1 try again later");
	assert_int_equal(e.rcpts[1].attempts, 0);
	/* A recipient added by alias expansion at delivery is kept. */
	queue_entry_add_rcpt(&e, "dave@d.test", NULL, SMTP_NOTIFY_NEVER);
	save(f, &e);
	queue_entry_free(&e);
	load(f, "Q1", &e);
	assert_int_equal(e.nrcpts, 3);
	assert_string_equal(e.rcpts[2].address, "dave@d.test");
	queue_entry_free(&e);
}

static void test_bounce_and_complete(void **state)
{
	struct fixture *f = *state;
	enqueue(f, "Q1");
	enqueue(f, "Q2");
	struct queue_entry e;
	load(f, "Q1", &e);
	e.rcpts[0].state = QUEUE_RCPT_DELIVERED;
	e.rcpts[1].state = QUEUE_RCPT_BOUNCED;
	e.rcpts[1].last_reply = xstrdup("550 5.1.1 no such user");
	save(f, &e);
	queue_entry_free(&e);
	load(f, "Q1", &e);
	assert_int_equal(e.rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(e.rcpts[1].state, QUEUE_RCPT_BOUNCED);
	queue_entry_free(&e);

	/* The DSN goes in first, from the null sender, then the message is
	   complete. */
	static const char dsn[] = "Subject: Undelivered Mail\r\n\r\n550 5.1.1\r\n";
	struct queue_rcpt to = {"a@a.test", NULL, SMTP_NOTIFY_NEVER};
	struct queue_envelope dsn_env = {.sender = "", .rcpts = &to, .nrcpts = 1};
	char *error = NULL;
	assert_int_equal(enqueue_bytes(f, "D1", dsn, strlen(dsn), 0, &dsn_env, &error), 0);
	queue_entry_remove(f->qdir, "Q1");
	assert_int_equal(queue_entry_load(f->qdir, "Q1", &e, &error), 1);
	int fd;
	assert_int_equal(queue_msg_open(f->qdir, "Q1", &fd, &error), 0);
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-a", 1, 60, &error), 2);
	char out[IDS_MAX];
	walk(f, out);
	assert_non_null(strstr(out, "Q2;"));
	assert_non_null(strstr(out, "D1;"));
	assert_null(strstr(out, "Q1"));
	load(f, "D1", &e);
	assert_string_equal(e.sender, "");
	assert_int_equal(e.offset, 0);
	queue_entry_free(&e);
	char *text = read_message(f, "D1");
	assert_string_equal(text, dsn);
	free(text);
}

static void test_hold(void **state)
{
	struct fixture *f = *state;
	enqueue(f, "Q1");
	enqueue(f, "Q2");
	char *error = NULL;
	assert_int_equal(queue_hold(f->data_dir, "Q1", true, &error), 0);
	assert_int_equal(queue_hold(f->data_dir, "Q1", true, &error), 0);
	struct queue_entry e;
	load(f, "Q1", &e);
	assert_true(e.held);
	/* Saving the state does not release it. */
	save(f, &e);
	queue_entry_free(&e);
	char out[IDS_MAX];
	walk(f, out);
	assert_string_equal(out, "Q1(held);Q2;");
	assert_int_equal(queue_hold(f->data_dir, "Q1", false, &error), 0);
	walk(f, out);
	assert_string_equal(out, "Q1;Q2;");
	assert_int_equal(queue_hold(f->data_dir, "Q9", true, &error), 1);
	assert_int_equal(queue_hold(f->data_dir, "../x", true, &error), -1);
	free(error);
}

static void test_delete(void **state)
{
	struct fixture *f = *state;
	enqueue(f, "Q1");
	enqueue(f, "Q2");
	struct queue_entry e;
	load(f, "Q1", &e);
	char *error = NULL;
	assert_int_equal(queue_delete(f->data_dir, "Q1", &error), 0);
	/* A runner finishing an attempt must not bring it back. */
	assert_int_equal(queue_entry_save(f->qdir, &e, true, NULL, &error), 1);
	queue_entry_free(&e);
	assert_int_equal(queue_entry_load(f->qdir, "Q1", &e, &error), 1);
	assert_int_equal(queue_delete(f->data_dir, "Q1", &error), 1);
	assert_int_equal(queue_delete(f->data_dir, "bad.id", &error), -1);
	free(error);
	char out[IDS_MAX];
	walk(f, out);
	assert_string_equal(out, "Q2;");
}

static void test_flush(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	/* Before anything was queued there is nothing to flush. */
	assert_int_equal(queue_flush(f->data_dir, "Q1", &error), 1);
	enqueue(f, "Q1");
	/* 0 when a runner was asked, 1 when the request waits for one. */
	int rc = queue_flush(f->data_dir, "Q1", &error);
	assert_true(rc == 0 || rc == 1);
	rc = queue_flush(f->data_dir, NULL, &error);
	assert_true(rc == 0 || rc == 1);
	assert_int_equal(queue_flush(f->data_dir, "Q9", &error), 1);
	assert_int_equal(queue_flush(f->data_dir, "a/b", &error), -1);
	free(error);
	/* A flush request changes nothing in the entry. */
	char out[IDS_MAX];
	walk(f, out);
	assert_string_equal(out, "Q1;");
}

/* ---- several holders ---- */

#define RACERS 6

struct racer {
	struct fixture *f;
	pthread_barrier_t *start;
	char holder[24];
	int64_t now;
	int rc;
	char **ids; /* claims */
	size_t nids;
	char *error;
};

static void *race_lease(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->start);
	r->rc = queue_entry_lease(r->f->qdir, "Q1", r->holder, r->now, 60, &r->error);
	return NULL;
}

static void *race_claim(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->start);
	r->rc = queue_claim(r->f->qdir, r->holder, r->now, 60, 4, &r->ids, &r->nids, &r->error);
	return NULL;
}

/* RACERS threads (each with a connection of its own where the backend
   has connections) call fn at once. */
static void race(struct fixture *f, void *(*fn)(void *), int64_t now, struct racer racers[RACERS])
{
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, RACERS);
	pthread_t threads[RACERS];
	for (int i = 0; i < RACERS; i++) {
		racers[i] = (struct racer){.f = f, .start = &start, .now = now};
		snprintf(racers[i].holder, sizeof(racers[i].holder), "node-%d", i);
		assert_int_equal(pthread_create(&threads[i], NULL, fn, &racers[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&start);
}

static void test_lease_race(void **state)
{
	struct fixture *f = *state;
	enqueue(f, "Q1");
	struct racer racers[RACERS];
	const int64_t now = (int64_t)time(NULL);
	for (int round = 0; round < 3; round++) {
		/* Free, then expired (each round 61 s later): exactly one wins. */
		race(f, race_lease, now + round * 61, racers);
		int winners = 0;
		for (int i = 0; i < RACERS; i++) {
			if (racers[i].rc < 0)
				fail_msg("lease: %s", racers[i].error);
			assert_true(racers[i].rc == 0 || racers[i].rc == 1);
			winners += racers[i].rc;
		}
		assert_int_equal(winners, 1);
	}
}

static void test_claim(void **state)
{
	struct fixture *f = *state;
	char id[16];
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "Q%d", i);
		enqueue(f, id);
	}
	char *error = NULL;
	const int64_t now = (int64_t)time(NULL) + 10;
	/* Q0 is held, Q1 deferred to later, Q2 leased by node-b. */
	assert_int_equal(queue_hold(f->data_dir, "Q0", true, &error), 0);
	struct queue_entry e;
	load(f, "Q1", &e);
	for (size_t i = 0; i < e.nrcpts; i++)
		e.rcpts[i].next_attempt = now + 100;
	save(f, &e);
	queue_entry_free(&e);
	assert_int_equal(queue_entry_lease(f->qdir, "Q2", "node-b", now, 60, &error), 1);
	char **ids;
	size_t n;
	assert_int_equal(queue_claim(f->qdir, "node-a", now, 60, 10, &ids, &n, &error), 0);
	assert_int_equal(n, 0);
	/* Released, due, and its lease ran out: in due order, up to max. */
	assert_int_equal(queue_hold(f->data_dir, "Q0", false, &error), 0);
	assert_int_equal(queue_claim(f->qdir, "node-a", now + 100, 60, 2, &ids, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "Q0");
	assert_string_equal(ids[1], "Q2");
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	/* What node-a claimed is its own until the lease runs out. */
	assert_int_equal(queue_entry_lease(f->qdir, "Q0", "node-b", now + 101, 60, &error), 0);
	assert_int_equal(queue_claim(f->qdir, "node-b", now + 101, 60, 10, &ids, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "Q1");
	free(ids[0]);
	free(ids);
	assert_int_equal(queue_claim(f->qdir, "bad holder", now, 60, 10, &ids, &n, &error), -1);
	free(error);
}

static void test_claim_race(void **state)
{
	struct fixture *f = *state;
	enum { MESSAGES = 12 };
	char id[16];
	for (int i = 0; i < MESSAGES; i++) {
		snprintf(id, sizeof(id), "Q%02d", i);
		enqueue(f, id);
	}
	struct racer racers[RACERS];
	race(f, race_claim, (int64_t)time(NULL) + 1, racers);
	/* Every message claimed once at most, and no claimer came back with
	   nothing while messages were left over. */
	int seen[MESSAGES] = {0};
	size_t total = 0;
	for (int i = 0; i < RACERS; i++) {
		if (racers[i].rc < 0)
			fail_msg("claim: %s", racers[i].error);
		for (size_t k = 0; k < racers[i].nids; k++) {
			int idx = atoi(racers[i].ids[k] + 1);
			assert_true(idx >= 0 && idx < MESSAGES);
			seen[idx]++;
			free(racers[i].ids[k]);
		}
		total += racers[i].nids;
		free(racers[i].ids);
	}
	for (int i = 0; i < MESSAGES; i++)
		assert_true(seen[i] <= 1);
	assert_true(total <= MESSAGES);
	assert_true(total >= 4); /* at least one claimer got its maximum */
}

static void test_stale_holder(void **state)
{
	struct fixture *f = *state;
	enqueue(f, "Q1");
	char *error = NULL;
	const int64_t now = (int64_t)time(NULL);
	/* a claims the message and starts an attempt... */
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-a", now, 60, &error), 1);
	struct queue_entry stale;
	load(f, "Q1", &stale);
	/* ...stalls past its lease; b takes over and delivers bob. */
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-b", now + 61, 60, &error), 1);
	struct queue_entry e;
	load(f, "Q1", &e);
	e.rcpts[0].state = QUEUE_RCPT_DELIVERED;
	assert_int_equal(queue_entry_save(f->qdir, &e, true, "node-b", &error), 0);
	queue_entry_free(&e);
	/* a's late save of its own view is refused, b's state stays. */
	stale.rcpts[0].attempts = 1;
	stale.rcpts[0].last_reply = xstrdup("451 4.4.1 timeout");
	assert_int_equal(queue_entry_save(f->qdir, &stale, true, "node-a", &error), 2);
	assert_int_equal(queue_entry_release(f->qdir, "Q1", "node-a", &error), 0);
	load(f, "Q1", &e);
	assert_int_equal(e.rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(e.rcpts[0].attempts, 0);
	assert_null(e.rcpts[0].last_reply);
	queue_entry_free(&e);
	/* Once b released it, a save without the lease is still refused. */
	assert_int_equal(queue_entry_release(f->qdir, "Q1", "node-b", &error), 1);
	assert_int_equal(queue_entry_save(f->qdir, &stale, true, "node-b", &error), 2);
	queue_entry_free(&stale);
	/* And a holder's save of a deleted message brings nothing back. */
	assert_int_equal(queue_entry_lease(f->qdir, "Q1", "node-a", now + 62, 60, &error), 1);
	load(f, "Q1", &e);
	assert_int_equal(queue_delete(f->data_dir, "Q1", &error), 0);
	assert_int_equal(queue_entry_save(f->qdir, &e, true, "node-a", &error), 1);
	queue_entry_free(&e);
	assert_int_equal(queue_entry_load(f->qdir, "Q1", &e, &error), 1);
}

int main(void)
{
	int failed = 0;
	for (size_t i = 0; i < N_ELEMENTS(spool_backends); i++) {
		char *name = xasprintf("spool backend %s", spool_backends[i].name);
		int avail = spool_backends[i].needs_pg ? pg_test_available(name) : 1;
		if (avail <= 0) {
			failed += avail < 0;
			free(name);
			continue;
		}
		void *be = (void *)&spool_backends[i];
#define T(f) cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, be)
		const struct CMUnitTest tests[] = {
		    T(test_select),
		    T(test_enqueue_and_list),
		    T(test_enqueue_refused),
		    T(test_lease),
		    T(test_defer),
		    T(test_bounce_and_complete),
		    T(test_hold),
		    T(test_delete),
		    T(test_flush),
		    T(test_lease_race),
		    T(test_claim),
		    T(test_claim_race),
		    T(test_stale_holder),
		};
#undef T
		failed += cmocka_run_group_tests_name(name, tests, NULL, NULL);
		free(name);
	}
	return failed;
}
