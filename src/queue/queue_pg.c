/* The queue backend "postgresql": the spool of several nodes in the
   tables queue_messages (envelope, message bytes once, hold flag, lease)
   and queue_recipients (per-recipient state) of lib/pg_schema.c.

   Any node delivers any message: a runner claims due messages (a lease:
   holder and expiry in the message's row, taken by one UPDATE whose
   candidates are locked FOR UPDATE SKIP LOCKED, so two claimers never get
   one message), saves its attempts only while the lease is still its own
   (the holder is checked in the UPDATE that writes the state), and gives
   the lease back when it is done.  A node that dies keeps its leases until
   they run out; another node then claims the messages and delivers them.
   Times are the callers' clocks (unix seconds): nodes keep them in step
   (NTP), as they must for the retry schedule anyway.

   Each thread has a connection of its own (made on first use, closed when
   the thread ends), so enqueues from several sessions commit in parallel
   and PostgreSQL groups their commits.  An enqueue is one transaction: the
   message and every recipient, durable when it returns (the 250 after
   DATA follows it).  The other operations are single statements, which
   the connection layer may send again after a lost connection: each is
   idempotent. */
#include "queue/queue_backend.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/pg_schema.h"
#include "lib/utf8.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The first schema version that has the queue tables. */
#define QUEUE_PG_SCHEMA_VERSION 2

/* ---- connections ---- */

static char *pgq_conninfo;
/* Changed by each queue_backend_open(): connections to an older
   location are closed by their threads on their next use. */
static unsigned pgq_generation;
static pthread_once_t pgq_once = PTHREAD_ONCE_INIT;
static pthread_key_t pgq_key;

struct pgq_thread {
	struct pg_conn *conn;
	pid_t pid; /* the process that made it */
	unsigned generation;
};

static void pgq_thread_end(void *arg)
{
	struct pgq_thread *t = arg;
	if (t->pid == getpid())
		pg_close(&t->conn);
	free(t);
}

static void pgq_key_make(void)
{
	if (pthread_key_create(&pgq_key, pgq_thread_end) != 0)
		log_panic("pthread_key_create failed");
}

static int pgq_open(const char *conninfo, char **error_r)
{
	if (conninfo == NULL || conninfo[0] == '\0') {
		*error_r = xstrdup("the postgresql queue needs [postgresql] conninfo");
		return -1;
	}
	free(pgq_conninfo);
	pgq_conninfo = xstrdup(conninfo);
	pgq_generation++;
	return 0;
}

static int schema_check(struct pg_conn *conn, char **error_r)
{
	int version;
	if (pg_schema_current(conn, &version, error_r) < 0)
		return -1;
	if (version < QUEUE_PG_SCHEMA_VERSION) {
		*error_r = xasprintf("the database has schema version %d, without the queue tables: "
				     "run postoffice db migrate",
				     version);
		return -1;
	}
	return 0;
}

/* The calling thread's connection, made on first use.  A connection
   inherited through fork() is the parent's socket: it is left alone (never
   closed here, which would end the parent's session) and a new one made. */
static struct pg_conn *pgq_conn(char **error_r)
{
	if (pgq_conninfo == NULL) {
		*error_r = xstrdup("postgresql: no conninfo given to the queue");
		return NULL;
	}
	pthread_once(&pgq_once, pgq_key_make);
	struct pgq_thread *t = pthread_getspecific(pgq_key);
	if (t == NULL || t->pid != getpid()) {
		t = xcalloc(1, sizeof(*t));
		t->pid = getpid();
		pthread_setspecific(pgq_key, t);
	}
	if (t->conn != NULL && t->generation != pgq_generation)
		pg_close(&t->conn);
	if (t->conn == NULL) {
		char *error = NULL;
		struct pg_conn *conn = pg_connect(pgq_conninfo, &error);
		if (conn != NULL && schema_check(conn, &error) < 0)
			pg_close(&conn);
		if (conn == NULL) {
			*error_r = xasprintf("postgresql: %s", error);
			free(error);
			return NULL;
		}
		t->conn = conn;
		t->generation = pgq_generation;
	}
	return t->conn;
}

/* Runs one statement (binary parameters where lengths says so, results in
   result_format) on the thread's connection; NULL with *error_r as
   "postgresql: what: ...". */
static PGresult *run_params(const char *what, const char *sql, int n, const char *const *values,
			    const int *lengths, const int *formats, int result_format, char **error_r)
{
	struct pg_conn *conn = pgq_conn(error_r);
	if (conn == NULL)
		return NULL;
	char *error = NULL;
	PGresult *res = pg_query_params(conn, sql, n, values, lengths, formats, result_format, &error);
	if (res == NULL) {
		*error_r = xasprintf("postgresql: %s: %s", what, error);
		free(error);
	}
	return res;
}

static PGresult *run(const char *what, const char *sql, int n, const char *const *values, char **error_r)
{
	return run_params(what, sql, n, values, NULL, NULL, 0, error_r);
}

/* A statement whose result is the number of rows changed: 1 when one or
   more, 0 none, -1 error. */
static int run_changes(const char *what, const char *sql, int n, const char *const *values, char **error_r)
{
	PGresult *res = run(what, sql, n, values, error_r);
	if (res == NULL)
		return -1;
	long long changed = pg_changes(res);
	PQclear(res);
	return changed > 0 ? 1 : 0;
}

/* ---- parameters ---- */

/* Numbers as text parameters. */
struct num {
	char s[24];
};

static const char *num(struct num *n, long long v)
{
	snprintf(n->s, sizeof(n->s), "%lld", v);
	return n->s;
}

/* Text for a text column: a database in UTF-8 refuses other bytes, and a
   remote server's reply may hold any; they become '?'.  NULL stays NULL.
   The result is s itself or *copy_r (caller frees). */
static const char *text_value(const char *s, char **copy_r)
{
	*copy_r = NULL;
	if (s == NULL || utf8_valid(s, strlen(s)))
		return s;
	char *c = xstrdup(s);
	for (char *p = c; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	*copy_r = c;
	return c;
}

/* An array literal ("{"a","b",NULL}") built one element at a time. */
static void array_add(struct buf *b, const char *s)
{
	buf_append_char(b, b->len == 0 ? '{' : ',');
	if (s == NULL) {
		buf_append_str(b, "NULL");
		return;
	}
	char *copy;
	const char *v = text_value(s, &copy);
	buf_append_char(b, '"');
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_append_char(b, '\\');
		buf_append_char(b, *p);
	}
	buf_append_char(b, '"');
	free(copy);
}

static void array_add_num(struct buf *b, long long v)
{
	struct num n;
	array_add(b, num(&n, v));
}

static const char *array_end(struct buf *b)
{
	if (b->len == 0)
		buf_append_char(b, '{');
	buf_append_char(b, '}');
	return buf_cstr(b);
}

/* The recipients of e as the arrays of RCPT_COLUMNS, in that order. */
#define RCPT_ARRAYS 11
#define RCPT_COLUMNS                                                                                         \
	"idx, address, orcpt, notify, state, attempts, next_attempt, last_attempt, delay_notified, "         \
	"remote_mta, "                                                                                       \
	"last_reply"
/* unnest() of parameters $F..$F+10 as RCPT_COLUMNS ("F" is the first). */
#define RCPT_UNNEST(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10)                                             \
	"unnest($" f0 "::integer[], $" f1 "::text[], $" f2 "::text[], $" f3 "::integer[], $" f4              \
	"::smallint[], $" f5 "::integer[], $" f6 "::bigint[], $" f7 "::bigint[], $" f8 "::boolean[], $" f9   \
	"::text[], $" f10 "::text[]) AS u (" RCPT_COLUMNS ")"

static void rcpt_arrays(const struct queue_entry *e, struct buf a[RCPT_ARRAYS],
			const char *values[RCPT_ARRAYS])
{
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct queue_entry_rcpt *r = &e->rcpts[i];
		array_add_num(&a[0], (long long)i);
		array_add(&a[1], r->address);
		array_add(&a[2], r->orcpt);
		array_add_num(&a[3], r->notify);
		array_add_num(&a[4], r->state);
		array_add_num(&a[5], r->attempts);
		array_add_num(&a[6], r->next_attempt);
		array_add_num(&a[7], r->last_attempt);
		array_add(&a[8], r->delay_notified ? "t" : "f");
		array_add(&a[9], r->remote_mta);
		array_add(&a[10], r->last_reply);
	}
	for (int k = 0; k < RCPT_ARRAYS; k++)
		values[k] = array_end(&a[k]);
}

static void rcpt_arrays_free(struct buf a[RCPT_ARRAYS])
{
	for (int k = 0; k < RCPT_ARRAYS; k++)
		buf_free(&a[k]);
}

/* ---- enqueueing ---- */

/* Reads src whole (a symbolic link is not followed). */
static int read_source(int src_dirfd, const char *src, struct buf *out, char **error_r)
{
	int fd = openat(src_dirfd, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", src, strerror(errno));
		return -1;
	}
	for (;;) {
		buf_reserve(out, 65536);
		ssize_t n = read(fd, out->data + out->len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				*error_r = xasprintf("read(%s) failed: %s", src, strerror(errno));
			close(fd);
			return n < 0 ? -1 : 0;
		}
		out->len += (size_t)n;
	}
}

static const char sql_insert_message[] =
    "INSERT INTO queue_messages (id, created, data_offset, sender, envid, ret, body, smtputf8, auth_user, "
    "client_ip, helo, next_attempt, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

static const char sql_insert_rcpts[] =
    "INSERT INTO queue_recipients (queue_id, " RCPT_COLUMNS
    ") SELECT $1, u.* FROM " RCPT_UNNEST("2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12");

static int insert_message(const struct queue_entry *e, const struct buf *data, char **error_r)
{
	struct num created, offset, ret, body, due;
	char *copies[6];
	const char *v[13] = {e->id,
			     num(&created, e->created),
			     num(&offset, (long long)e->offset),
			     text_value(e->sender, &copies[0]),
			     text_value(e->envid, &copies[1]),
			     num(&ret, e->ret),
			     num(&body, e->body),
			     e->smtputf8 ? "t" : "f",
			     text_value(e->auth_user, &copies[2]),
			     text_value(e->client_ip, &copies[3]),
			     text_value(e->helo, &copies[4]),
			     num(&due, queue_entry_due(e)),
			     data->data != NULL ? data->data : ""};
	copies[5] = NULL;
	int lengths[13] = {0}, formats[13] = {0};
	lengths[12] = (int)data->len;
	formats[12] = 1;
	PGresult *res = run_params("enqueue", sql_insert_message, 13, v, lengths, formats, 0, error_r);
	for (int i = 0; i < 6; i++)
		free(copies[i]);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

static int insert_rcpts(const struct queue_entry *e, char **error_r)
{
	struct buf a[RCPT_ARRAYS] = {BUF_INIT};
	const char *v[1 + RCPT_ARRAYS] = {e->id};
	rcpt_arrays(e, a, v + 1);
	PGresult *res = run("enqueue recipients", sql_insert_rcpts, 1 + RCPT_ARRAYS, v, error_r);
	rcpt_arrays_free(a);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Stores e with the message data in one transaction: 0, or -1.  With
   check (an import), 1 when the id exists already (nothing written);
   without it (a new id) that is an error of the INSERT. */
static int insert_entry(const struct queue_entry *e, const struct buf *data, bool check, char **error_r)
{
	struct pg_conn *conn = pgq_conn(error_r);
	if (conn == NULL)
		return -1;
	int rc = -1;
	char *error = NULL;
	const char *v[] = {e->id};
	PGresult *res = NULL;
	if (pg_begin(conn, &error) < 0) {
		*error_r = xasprintf("postgresql: enqueue: %s", error);
	} else if (check && (res = run("enqueue", "SELECT 1 FROM queue_messages WHERE id = $1", 1, v,
				       error_r)) == NULL) {
		pg_rollback(conn);
	} else if (res != NULL && PQntuples(res) > 0) {
		pg_rollback(conn);
		rc = 1;
	} else if (insert_message(e, data, error_r) < 0 || insert_rcpts(e, error_r) < 0 ||
		   (e->held && run_changes("enqueue", "UPDATE queue_messages SET held = true WHERE id = $1",
					   1, v, error_r) < 0)) {
		pg_rollback(conn);
	} else if (pg_commit(conn, &error) < 0) {
		*error_r = xasprintf("postgresql: enqueue: commit: %s", error);
	} else {
		rc = 0;
	}
	PQclear(res);
	free(error);
	return rc;
}

/* The message file src, whose content starts offset bytes in, whole. */
static int read_message(int src_dirfd, const char *src, uint64_t offset, struct buf *data, char **error_r)
{
	if (read_source(src_dirfd, src, data, error_r) < 0)
		return -1;
	if (offset > data->len || data->len > INT32_MAX) {
		*error_r =
		    xasprintf("%s: %zu bytes, data offset %llu", src, data->len, (unsigned long long)offset);
		return -1;
	}
	return 0;
}

static int pgq_enqueue(const char *data_dir, const char *id, int src_dirfd, const char *src,
		       off_t data_offset, const struct queue_envelope *env, char **error_r)
{
	struct buf data = BUF_INIT;
	struct queue_entry e;
	queue_entry_from_envelope(&e, id, (uint64_t)data_offset, env, (int64_t)time(NULL));
	int rc = read_message(src_dirfd, src, e.offset, &data, error_r);
	if (rc == 0)
		rc = insert_entry(&e, &data, false, error_r);
	queue_entry_free(&e);
	buf_free(&data);
	return rc;
}

static int pgq_entry_import(const char *data_dir, const struct queue_entry *e, int src_dirfd, const char *src,
			    char **error_r)
{
	struct buf data = BUF_INIT;
	int rc = read_message(src_dirfd, src, e->offset, &data, error_r);
	if (rc == 0)
		rc = insert_entry(e, &data, true, error_r);
	buf_free(&data);
	return rc;
}

/* ---- reading entries ---- */

#define ENTRY_SELECT                                                                                         \
	"SELECT m.id, m.created, m.data_offset, m.sender, m.envid, m.ret, m.body, m.smtputf8, m.auth_user, " \
	"m.client_ip, m.helo, m.held, r.address, r.orcpt, r.notify, r.state, r.attempts, r.next_attempt, "   \
	"r.last_attempt, r.delay_notified, r.remote_mta, r.last_reply "                                      \
	"FROM queue_messages m JOIN queue_recipients r ON r.queue_id = m.id "

enum entry_col {
	COL_ID,
	COL_CREATED,
	COL_OFFSET,
	COL_SENDER,
	COL_ENVID,
	COL_RET,
	COL_BODY,
	COL_SMTPUTF8,
	COL_AUTH_USER,
	COL_CLIENT_IP,
	COL_HELO,
	COL_HELD,
	COL_R_ADDRESS,
	COL_R_ORCPT,
	COL_R_NOTIFY,
	COL_R_STATE,
	COL_R_ATTEMPTS,
	COL_R_NEXT,
	COL_R_LAST,
	COL_R_DELAYED,
	COL_R_REMOTE_MTA,
	COL_R_LAST_REPLY,
};

static char *value_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : xstrdup(PQgetvalue(res, row, col));
}

static bool value_bool(const PGresult *res, int row, int col)
{
	return pg_value(res, row, col)[0] == 't';
}

/* An entry's message columns, from row. */
static void entry_from_row(struct queue_entry *e, const PGresult *res, int row)
{
	memset(e, 0, sizeof(*e));
	e->id = xstrdup(pg_value(res, row, COL_ID));
	e->created = pg_value_int64(res, row, COL_CREATED);
	e->offset = (uint64_t)pg_value_int64(res, row, COL_OFFSET);
	e->sender = xstrdup(pg_value(res, row, COL_SENDER));
	e->envid = value_or_null(res, row, COL_ENVID);
	long long ret = pg_value_int64(res, row, COL_RET), body = pg_value_int64(res, row, COL_BODY);
	e->ret = ret >= SMTP_RET_DEFAULT && ret <= SMTP_RET_HDRS ? (enum smtp_ret)ret : SMTP_RET_DEFAULT;
	e->body =
	    body >= SMTP_BODY_7BIT && body <= SMTP_BODY_BINARYMIME ? (enum smtp_body)body : SMTP_BODY_7BIT;
	e->smtputf8 = value_bool(res, row, COL_SMTPUTF8);
	e->auth_user = value_or_null(res, row, COL_AUTH_USER);
	e->client_ip = value_or_null(res, row, COL_CLIENT_IP);
	e->helo = value_or_null(res, row, COL_HELO);
	e->held = value_bool(res, row, COL_HELD);
}

/* Appends row's recipient to e. */
static void rcpt_from_row(struct queue_entry *e, const PGresult *res, int row)
{
	struct queue_entry_rcpt *r = queue_entry_add_rcpt(e, pg_value(res, row, COL_R_ADDRESS), NULL,
							  (unsigned)pg_value_int64(res, row, COL_R_NOTIFY));
	r->orcpt = value_or_null(res, row, COL_R_ORCPT);
	long long state = pg_value_int64(res, row, COL_R_STATE);
	r->state = state >= QUEUE_RCPT_PENDING && state <= QUEUE_RCPT_BOUNCED ? (enum queue_rcpt_state)state
									      : QUEUE_RCPT_PENDING;
	r->attempts = (int)pg_value_int64(res, row, COL_R_ATTEMPTS);
	r->next_attempt = pg_value_int64(res, row, COL_R_NEXT);
	r->last_attempt = pg_value_int64(res, row, COL_R_LAST);
	r->delay_notified = value_bool(res, row, COL_R_DELAYED);
	r->remote_mta = value_or_null(res, row, COL_R_REMOTE_MTA);
	r->last_reply = value_or_null(res, row, COL_R_LAST_REPLY);
}

/* Calls cb for each entry of res (rows ordered by message, then
   recipient) until it returns non-zero. */
static void entries_each(const PGresult *res, int (*cb)(void *ctx, const struct queue_entry *e), void *ctx)
{
	int rows = PQntuples(res);
	for (int row = 0; row < rows;) {
		struct queue_entry e;
		entry_from_row(&e, res, row);
		for (; row < rows && !strcmp(pg_value(res, row, COL_ID), e.id); row++)
			rcpt_from_row(&e, res, row);
		int stop = cb(ctx, &e);
		queue_entry_free(&e);
		if (stop != 0)
			break;
	}
}

static int pgq_walk(const char *data_dir, int (*cb)(void *ctx, const struct queue_entry *e), void *ctx,
		    char **error_r)
{
	PGresult *res = run("walk", ENTRY_SELECT "ORDER BY m.created, m.id, r.idx", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	entries_each(res, cb, ctx);
	PQclear(res);
	return 0;
}

struct load_ctx {
	struct queue_entry *e;
	bool found;
};

/* Keeps the entry (entries_each() frees its own copy). */
static int load_cb(void *ctx, const struct queue_entry *e)
{
	struct load_ctx *l = ctx;
	*l->e = *e;
	memset((struct queue_entry *)e, 0, sizeof(*e));
	l->found = true;
	return 1;
}

static int pgq_entry_load(const char *qdir, const char *id, struct queue_entry *e, char **error_r)
{
	const char *v[] = {id};
	PGresult *res = run("load", ENTRY_SELECT "WHERE m.id = $1 ORDER BY r.idx", 1, v, error_r);
	if (res == NULL)
		return -1;
	struct load_ctx l = {e, false};
	entries_each(res, load_cb, &l);
	PQclear(res);
	return l.found ? 0 : 1;
}

/* ---- saving ---- */

/* The state of the recipients (upserted: recipients are only ever added)
   and the message's next attempt, written when the message still exists
   and, for a holder, while the lease is holder's, in one statement.  The
   result: rows written (0/1) and whether the message exists. */
static const char sql_save[] =
    "WITH m AS (UPDATE queue_messages SET next_attempt = $3 WHERE id = $1 AND ($2::text IS NULL OR "
    "lease_holder = $2) RETURNING id), "
    "r AS (INSERT INTO queue_recipients (queue_id, " RCPT_COLUMNS ") SELECT m.id, u.* FROM m, " RCPT_UNNEST(
	"4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
	"14") " ON CONFLICT (queue_id, idx) DO UPDATE SET address = excluded.address, orcpt = "
	      "excluded.orcpt, "
	      "notify = excluded.notify, state = excluded.state, attempts = excluded.attempts, next_attempt "
	      "= "
	      "excluded.next_attempt, last_attempt = excluded.last_attempt, delay_notified = "
	      "excluded.delay_notified, remote_mta = excluded.remote_mta, last_reply = excluded.last_reply) "
	      "SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM queue_messages WHERE id = $1)";

/* Entries are made by enqueue only: a save of a missing entry writes
   nothing, with or without only_if_exists. */
static int pgq_entry_save(const char *qdir, const struct queue_entry *e, bool only_if_exists,
			  const char *holder, char **error_r)
{
	struct num due;
	struct buf a[RCPT_ARRAYS] = {BUF_INIT};
	const char *v[3 + RCPT_ARRAYS] = {e->id, holder, num(&due, queue_entry_due(e))};
	rcpt_arrays(e, a, v + 3);
	PGresult *res = run("save", sql_save, 3 + RCPT_ARRAYS, v, error_r);
	rcpt_arrays_free(a);
	if (res == NULL)
		return -1;
	int rc = pg_value_int64(res, 0, 0) > 0 ? 0 : pg_value_int64(res, 0, 1) > 0 ? 2 : 1;
	PQclear(res);
	return rc;
}

static void pgq_entry_remove(const char *qdir, const char *id)
{
	const char *v[] = {id};
	char *error = NULL;
	if (run_changes("remove", "DELETE FROM queue_messages WHERE id = $1", 1, v, &error) < 0) {
		log_error("queue remove id=%s error=\"%s\"", id, error);
		free(error);
	}
}

/* ---- leases ---- */

static int pgq_entry_lease(const char *qdir, const char *id, const char *holder, int64_t now,
			   unsigned seconds, char **error_r)
{
	struct num n, until;
	const char *v[] = {id, holder, num(&n, now), num(&until, now + (int64_t)seconds)};
	PGresult *res =
	    run("lease",
		"WITH l AS (UPDATE queue_messages SET lease_holder = $2, lease_expiry = $4 "
		"WHERE id = $1 AND (lease_holder IS NULL OR lease_holder = $2 OR lease_expiry <= $3) "
		"RETURNING id) "
		"SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM queue_messages WHERE id = $1)",
		4, v, error_r);
	if (res == NULL)
		return -1;
	int rc = pg_value_int64(res, 0, 0) > 0 ? 1 : pg_value_int64(res, 0, 1) > 0 ? 0 : 2;
	PQclear(res);
	return rc;
}

static int pgq_claim(const char *qdir, const char *holder, int64_t now, unsigned seconds, size_t max,
		     char ***ids_r, size_t *count_r, char **error_r)
{
	struct num n, until, limit;
	const char *v[] = {holder, num(&n, now), num(&until, now + (int64_t)seconds),
			   num(&limit, (long long)max)};
	PGresult *res =
	    run("claim",
		"WITH c AS (SELECT id FROM queue_messages WHERE next_attempt <= $2 AND NOT held "
		"AND (lease_holder IS NULL OR lease_expiry <= $2) ORDER BY next_attempt, id LIMIT $4 "
		"FOR UPDATE SKIP LOCKED), "
		"l AS (UPDATE queue_messages q SET lease_holder = $1, lease_expiry = $3 FROM c "
		"WHERE q.id = c.id RETURNING q.id, q.next_attempt) "
		"SELECT id FROM l ORDER BY next_attempt, id",
		4, v, error_r);
	if (res == NULL)
		return -1;
	int rows = PQntuples(res);
	if (rows > 0)
		*ids_r = xcalloc((size_t)rows, sizeof(char *));
	for (int i = 0; i < rows; i++)
		(*ids_r)[i] = xstrdup(pg_value(res, i, 0));
	*count_r = (size_t)rows;
	PQclear(res);
	return 0;
}

static int pgq_entry_release(const char *qdir, const char *id, const char *holder, char **error_r)
{
	const char *v[] = {id, holder};
	return run_changes("release",
			   "UPDATE queue_messages SET lease_holder = NULL, lease_expiry = 0 "
			   "WHERE id = $1 AND lease_holder = $2",
			   2, v, error_r);
}

static int pgq_msg_open(const char *qdir, const char *id, int *fd_r, char **error_r)
{
	const char *v[] = {id};
	PGresult *res = run_params("message", "SELECT message FROM queue_messages WHERE id = $1", 1, v, NULL,
				   NULL, 1, error_r);
	if (res == NULL)
		return -1;
	int rc = 0;
	if (PQntuples(res) > 0) {
		*fd_r = fs_memfd_with(id, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), error_r);
		rc = *fd_r < 0 ? -1 : 1;
	}
	PQclear(res);
	return rc;
}

/* ---- control ---- */

static int pgq_hold(const char *data_dir, const char *id, bool hold, char **error_r)
{
	const char *v[] = {id, hold ? "t" : "f"};
	int rc = run_changes("hold", "UPDATE queue_messages SET held = $2 WHERE id = $1", 2, v, error_r);
	return rc < 0 ? -1 : rc == 0 ? 1 : 0;
}

static int pgq_delete(const char *data_dir, const char *id, char **error_r)
{
	const char *v[] = {id};
	int rc = run_changes("delete", "DELETE FROM queue_messages WHERE id = $1", 1, v, error_r);
	return rc < 0 ? -1 : rc == 0 ? 1 : 0;
}

/* Every pending recipient of id (NULL: of every message) due now: the
   runners' next claim takes the messages, on whichever node. */
static int pgq_flush(const char *data_dir, const char *id, char **error_r)
{
	struct num n;
	const char *v[] = {id, num(&n, (long long)time(NULL))};
	int rc =
	    run_changes("flush",
			"WITH r AS (UPDATE queue_recipients SET next_attempt = $2 WHERE ($1::text IS NULL OR "
			"queue_id = $1) AND state = 0 AND next_attempt > $2) "
			"UPDATE queue_messages SET next_attempt = least(next_attempt, $2) "
			"WHERE ($1::text IS NULL OR id = $1)",
			2, v, error_r);
	if (rc < 0)
		return -1;
	return id != NULL && rc == 0 ? 1 : 0;
}

const struct queue_backend queue_backend_pg = {
    .name = "postgresql",
    .open = pgq_open,
    .enqueue_copies = true,
    .enqueue = pgq_enqueue,
    .entry_import = pgq_entry_import,
    .walk = pgq_walk,
    .entry_load = pgq_entry_load,
    .entry_save = pgq_entry_save,
    .entry_remove = pgq_entry_remove,
    .entry_lease = pgq_entry_lease,
    .claim = pgq_claim,
    .entry_release = pgq_entry_release,
    .msg_open = pgq_msg_open,
    .hold = pgq_hold,
    .delete = pgq_delete,
    .flush = pgq_flush,
};
