/* The PostgreSQL connection layer (pg.h): connecting and reconnecting,
   the per-connection cache of prepared statements, transactions, and the
   classification of errors by SQLSTATE (PostgreSQL documentation,
   appendix A, "PostgreSQL Error Codes"). */
#include "lib/pg.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pg_stmt {
	char *sql;
	char name[16];
};

struct pg_conn {
	char *conninfo;
	PGconn *pg; /* NULL while not connected */
	bool in_tx;
	int64_t last_attempt_ms; /* the start of the last (re)connection attempt, or its failure */
	struct pg_stmt *stmts;   /* prepared on this->pg */
	size_t stmts_count;
	unsigned stmts_made; /* for unique names across reconnections */
	char **notify;       /* channels to notify after the commit */
	size_t notify_count;
	/* the last error */
	char sqlstate[6];
	bool temporary;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq's messages span lines ("...failed: Connection refused\n\tIs the
   server running ..."): one line for our logs and replies. */
static char *one_line(const char *msg)
{
	char *out = xstrdup(msg != NULL && msg[0] != '\0' ? msg : "unknown error");
	size_t n = 0;
	for (const char *p = out; *p != '\0'; p++) {
		char ch = *p == '\n' || *p == '\t' || *p == '\r' ? ' ' : *p;
		if (ch == ' ' && (n == 0 || out[n - 1] == ' '))
			continue;
		out[n++] = ch;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return out;
}

bool pg_sqlstate_temporary(const char *s)
{
	if (s == NULL || strlen(s) != 5)
		return false;
	if (!strncmp(s, "08", 2) || !strncmp(s, "40", 2) || !strncmp(s, "53", 2))
		return true;
	return !strcmp(s, "57P01") || !strcmp(s, "57P02") || !strcmp(s, "57P03");
}

/* Records a failure: its SQLSTATE (from res when given) and class, and
   the text in *error_r.  A call that fails on a broken connection is
   temporary whatever the SQLSTATE says. */
static void set_error(struct pg_conn *c, const PGresult *res, const char *msg, char **error_r)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state != NULL ? state : "");
	c->temporary =
	    c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK || pg_sqlstate_temporary(c->sqlstate);
	if (error_r != NULL)
		*error_r = one_line(msg);
}

static void notice_log(void *arg, const char *message)
{
	char *line = one_line(message);
	log_debug("postgresql notice: %s", line);
	free(line);
}

static void stmts_forget(struct pg_conn *c)
{
	for (size_t i = 0; i < c->stmts_count; i++)
		free(c->stmts[i].sql);
	free(c->stmts);
	c->stmts = NULL;
	c->stmts_count = 0;
}

static void notify_forget(struct pg_conn *c)
{
	for (size_t i = 0; i < c->notify_count; i++)
		free(c->notify[i]);
	free(c->notify);
	c->notify = NULL;
	c->notify_count = 0;
}

static void disconnect(struct pg_conn *c)
{
	if (c->pg != NULL)
		PQfinish(c->pg);
	c->pg = NULL;
	c->in_tx = false;
	stmts_forget(c);
	notify_forget(c);
}

/* One connection attempt: 0, or -1 with the error recorded. */
static int connect_once(struct pg_conn *c, char **error_r)
{
	disconnect(c);
	c->last_attempt_ms = now_ms();
	char timeout[16];
	snprintf(timeout, sizeof(timeout), "%d", PG_CONNECT_TIMEOUT_S);
	/* Keywords before "dbname" are defaults that the expanded conninfo
	   overrides. */
	const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *const values[] = {timeout, "postoffice", c->conninfo, NULL};
	c->pg = PQconnectdbParams(keys, values, 1);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		char *msg = one_line(c->pg != NULL ? PQerrorMessage(c->pg) : "out of memory");
		disconnect(c);
		/* The interval runs from the failure: an attempt that took the
		   whole connect_timeout is not repeated by the next call at once. */
		c->last_attempt_ms = now_ms();
		set_error(c, NULL, msg, error_r);
		free(msg);
		return -1;
	}
	PQsetNoticeProcessor(c->pg, notice_log, NULL);
	return 0;
}

/* A usable connection: the current one, or a new one when it was lost
   and no attempt was made in the last PG_RECONNECT_INTERVAL_MS (force:
   whatever the time).  0, or -1 with a temporary error. */
static int ensure_connected(struct pg_conn *c, bool force, char **error_r)
{
	if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	if (c->in_tx) {
		set_error(c, NULL, "the connection to PostgreSQL was lost inside a transaction", error_r);
		return -1;
	}
	if (!force && now_ms() - c->last_attempt_ms < PG_RECONNECT_INTERVAL_MS) {
		set_error(c, NULL, "not connected to PostgreSQL (the last attempt failed; retrying shortly)",
			  error_r);
		return -1;
	}
	if (connect_once(c, error_r) < 0)
		return -1;
	log_info("postgresql connected host=%s port=%s db=%s", PQhost(c->pg), PQport(c->pg), PQdb(c->pg));
	return 0;
}

struct pg_conn *pg_connect(const char *conninfo, char **error_r)
{
	struct pg_conn *c = xcalloc(1, sizeof(*c));
	c->conninfo = xstrdup(conninfo);
	if (connect_once(c, error_r) < 0) {
		pg_close(&c);
		return NULL;
	}
	return c;
}

void pg_close(struct pg_conn **connp)
{
	struct pg_conn *c = *connp;
	if (c == NULL)
		return;
	*connp = NULL;
	disconnect(c);
	free(c->conninfo);
	free(c);
}

/* The name sql is prepared under on this connection, preparing it first
   when needed.  NULL with the error recorded. */
static const char *stmt_name(struct pg_conn *c, const char *sql, int n, char **error_r)
{
	for (size_t i = 0; i < c->stmts_count; i++)
		if (strcmp(c->stmts[i].sql, sql) == 0)
			return c->stmts[i].name;
	char name[16];
	snprintf(name, sizeof(name), "po_%u", c->stmts_made++);
	PGresult *res = PQprepare(c->pg, name, sql, n, NULL);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		set_error(c, res, res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c->pg), error_r);
		PQclear(res);
		return NULL;
	}
	PQclear(res);
	c->stmts = xreallocarray(c->stmts, c->stmts_count + 1, sizeof(*c->stmts));
	struct pg_stmt *st = &c->stmts[c->stmts_count++];
	st->sql = xstrdup(sql);
	snprintf(st->name, sizeof(st->name), "%s", name);
	return st->name;
}

static PGresult *run_prepared(struct pg_conn *c, const char *sql, int n, const char *const *values,
			      const int *lengths, const int *formats, int result_format, char **error_r)
{
	const char *name = stmt_name(c, sql, n, error_r);
	if (name == NULL)
		return NULL;
	PGresult *res = PQexecPrepared(c->pg, name, n, values, lengths, formats, result_format);
	ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	set_error(c, res, res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c->pg), error_r);
	PQclear(res);
	return NULL;
}

/* Hands a kept error text to the caller's error_r (NULL: frees it). */
static void pass_error(char *error, char **error_r)
{
	if (error_r != NULL && error != NULL)
		*error_r = error;
	else
		free(error);
}

PGresult *pg_query_params(struct pg_conn *c, const char *sql, int n, const char *const *values,
			  const int *lengths, const int *formats, int result_format, char **error_r)
{
	if (n < 0 || n > PG_PARAMS_MAX)
		log_panic("%d parameters for: %s", n, sql);
	bool was_connected = c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK;
	if (ensure_connected(c, false, error_r) < 0)
		return NULL;
	char *first_error = NULL;
	PGresult *res = run_prepared(c, sql, n, values, lengths, formats, result_format, &first_error);
	/* The connection was idle and died meanwhile (a restart of the server
	   ends it with 57P01): once more on a new one, outside transactions. */
	if (res == NULL && was_connected && !c->in_tx && PQstatus(c->pg) != CONNECTION_OK) {
		log_info("postgresql connection lost, reconnecting error=\"%s\"", first_error);
		if (ensure_connected(c, true, error_r) < 0) {
			free(first_error);
			return NULL;
		}
		res = run_prepared(c, sql, n, values, lengths, formats, result_format, error_r);
		free(first_error);
		return res;
	}
	pass_error(first_error, error_r);
	return res;
}

PGresult *pg_query(struct pg_conn *c, const char *sql, int n, const char *const *values, char **error_r)
{
	return pg_query_params(c, sql, n, values, NULL, NULL, 0, error_r);
}

/* PQexec() of a command without result rows: 0 or -1 (recorded). */
static int exec_command(struct pg_conn *c, const char *sql, char **error_r)
{
	PGresult *res = PQexec(c->pg, sql);
	ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(res);
		return 0;
	}
	set_error(c, res, res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c->pg), error_r);
	PQclear(res);
	return -1;
}

int pg_exec_script(struct pg_conn *c, const char *sql, char **error_r)
{
	if (ensure_connected(c, false, error_r) < 0)
		return -1;
	return exec_command(c, sql, error_r);
}

int pg_begin(struct pg_conn *c, char **error_r)
{
	if (c->in_tx)
		log_panic("pg_begin() inside a transaction");
	bool was_connected = c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK;
	if (ensure_connected(c, false, error_r) < 0)
		return -1;
	char *first_error = NULL;
	int rc = exec_command(c, "BEGIN", &first_error);
	/* BEGIN on a connection that died while idle: once more. */
	if (rc < 0 && was_connected && PQstatus(c->pg) != CONNECTION_OK) {
		rc = ensure_connected(c, true, error_r) < 0 ? -1 : exec_command(c, "BEGIN", error_r);
		free(first_error);
		first_error = NULL;
	}
	pass_error(first_error, error_r);
	if (rc < 0)
		return -1;
	c->in_tx = true;
	return 0;
}

void pg_notify_after_commit(struct pg_conn *c, const char *channel)
{
	if (!c->in_tx)
		log_panic("pg_notify_after_commit() outside a transaction");
	for (size_t i = 0; i < c->notify_count; i++)
		if (strcmp(c->notify[i], channel) == 0)
			return;
	c->notify = xreallocarray(c->notify, c->notify_count + 1, sizeof(*c->notify));
	c->notify[c->notify_count++] = xstrdup(channel);
}

/* The NOTIFYs of the transaction just committed, in a transaction of
   their own that does not wait for the WAL flush.  PostgreSQL serializes
   the commits of transactions that NOTIFY (a lock on the database held
   until the commit's WAL is flushed, so that notifications queue in
   commit order): sent inside the writing transactions they would take
   their turns for the disk one by one, and concurrent commits would no
   longer share a flush.  A failure is logged: the data is committed, and
   watchers see it at their next sync. */
static void notify_send(struct pg_conn *c)
{
	size_t len = 3;
	for (size_t i = 0; i < c->notify_count; i++)
		len += strlen(c->notify[i]) + 3;
	char *array = xmalloc(len), *p = array;
	*p++ = '{';
	for (size_t i = 0; i < c->notify_count; i++)
		p += sprintf(p, "%s\"%s\"", i > 0 ? "," : "", c->notify[i]);
	*p++ = '}';
	*p = '\0';
	notify_forget(c);
	const char *v[] = {array};
	char *error = NULL;
	PGresult *res = run_prepared(c,
				     "SELECT set_config('synchronous_commit', 'off', true),"
				     " (SELECT count(pg_notify(n, '')) FROM unnest($1::text[]) AS n)",
				     1, v, NULL, NULL, 0, &error);
	if (res == NULL) {
		log_warn("postgresql notify after commit failed channels=%s error=\"%s\"", array, error);
		free(error);
	}
	PQclear(res);
	free(array);
}

int pg_commit(struct pg_conn *c, char **error_r)
{
	if (!c->in_tx)
		log_panic("pg_commit() outside a transaction");
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		c->in_tx = false;
		notify_forget(c);
		set_error(c, NULL, "the connection to PostgreSQL was lost inside a transaction", error_r);
		return -1;
	}
	PGresult *res = PQexec(c->pg, "COMMIT");
	c->in_tx = false;
	ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	/* COMMIT of a transaction that an error aborted succeeds as ROLLBACK. */
	if (st == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0) {
		PQclear(res);
		if (c->notify_count > 0)
			notify_send(c);
		return 0;
	}
	notify_forget(c);
	if (st == PGRES_COMMAND_OK)
		set_error(c, NULL, "the transaction was rolled back after an error", error_r);
	else
		set_error(c, res, res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c->pg), error_r);
	PQclear(res);
	return -1;
}

void pg_rollback(struct pg_conn *c)
{
	if (!c->in_tx)
		return;
	c->in_tx = false;
	notify_forget(c);
	if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK) {
		PGresult *res = PQexec(c->pg, "ROLLBACK");
		PQclear(res);
	}
}

bool pg_in_transaction(const struct pg_conn *c)
{
	return c->in_tx;
}

bool pg_error_temporary(const struct pg_conn *c)
{
	return c->temporary;
}

const char *pg_error_sqlstate(const struct pg_conn *c)
{
	return c->sqlstate;
}

bool pg_error_is(const struct pg_conn *c, const char *sqlstate)
{
	return strcmp(c->sqlstate, sqlstate) == 0;
}

const char *pg_value(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

long long pg_value_int64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

long long pg_changes(const PGresult *res)
{
	const char *n = PQcmdTuples((PGresult *)res);
	return n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
}
