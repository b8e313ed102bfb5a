/* The failed-login counters in PostgreSQL (auth_penalty_pg.h): thin calls
   of the schema's functions auth_penalty_check() and auth_penalty_record()
   (lib/pg_schema.c, version 2), which do under row locks what
   auth_penalty.c does under its mutex. */
#include "auth/auth_penalty_pg.h"
#include "auth/auth_penalty_private.h"
#include "lib/log.h"
#include "lib/pg.h"
#include "lib/pg_shared.h"
#include "lib/xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The first schema version with the tables. */
#define AUTH_PENALTY_PG_SCHEMA_VERSION 2

struct auth_penalty_pg {
	struct pg_shared *conn;
	pthread_mutex_t lock; /* guards expired_ms */
	int64_t expired_ms;   /* CLOCK_MONOTONIC of the last expiry */
};

struct auth_penalty_pg *auth_penalty_pg_open(const char *conninfo, char **error_r)
{
	struct pg_shared *conn =
	    pg_shared_open(conninfo, AUTH_PENALTY_PG_SCHEMA_VERSION, "the failed-login counters", error_r);
	if (conn == NULL)
		return NULL;
	struct auth_penalty_pg *pg = xcalloc(1, sizeof(*pg));
	pg->conn = conn;
	pthread_mutex_init(&pg->lock, NULL);
	pg->expired_ms = auth_penalty_now();
	return pg;
}

void auth_penalty_pg_close(struct auth_penalty_pg **pgp)
{
	struct auth_penalty_pg *pg = *pgp;
	if (pg == NULL)
		return;
	*pgp = NULL;
	pg_shared_close(&pg->conn);
	pthread_mutex_destroy(&pg->lock);
	free(pg);
}

/* The parameters every call shares: $1 ip key, $2 account, $3 now (NULL:
   the database's clock), $4 ip limit, $5 account limit, $6 window. */
struct call_params {
	char ip[AUTH_PENALTY_IP_KEY_MAX];
	char now[24], ip_limit[16], account_limit[16], window[24];
	char lockout[24], pending_timeout[24], trust[24];
};

static void params_make(struct call_params *c, const struct auth_penalty_policy *p, const char *ip,
			int64_t now_ms)
{
	auth_penalty_ip_key(ip, c->ip);
	snprintf(c->now, sizeof(c->now), "%lld", (long long)now_ms);
	snprintf(c->ip_limit, sizeof(c->ip_limit), "%d", p->ip_failures);
	snprintf(c->account_limit, sizeof(c->account_limit), "%d", p->account_failures);
	snprintf(c->window, sizeof(c->window), "%lld", (long long)p->window_ms);
	snprintf(c->lockout, sizeof(c->lockout), "%lld", (long long)p->lockout_ms);
	snprintf(c->pending_timeout, sizeof(c->pending_timeout), "%lld",
		 (long long)AUTH_PENALTY_PENDING_TIMEOUT_MS);
	snprintf(c->trust, sizeof(c->trust), "%lld", (long long)AUTH_PENALTY_TRUST_MS);
}

/* One statement with one result row; NULL with *error_r. */
static PGresult *run(struct auth_penalty_pg *pg, const char *sql, int n, const char *const *values,
		     char **error_r)
{
	PGresult *res = pg_shared_query(pg->conn, sql, n, values, error_r);
	if (res != NULL && PQntuples(res) != 1) {
		PQclear(res);
		*error_r = xstrdup("postgresql: no result row");
		res = NULL;
	}
	return res;
}

int auth_penalty_pg_check(struct auth_penalty_pg *pg, const struct auth_penalty_policy *p, const char *ip,
			  const char *account, int64_t now_ms, enum auth_penalty_verdict *verdict_r,
			  int *delay_ms_r, char **error_r)
{
	struct call_params c;
	params_make(&c, p, ip, now_ms);
	const char *values[] = {c.ip,
				account,
				now_ms < 0 ? NULL : c.now,
				c.ip_limit,
				c.account_limit,
				c.window,
				c.pending_timeout,
				c.trust};
	PGresult *res =
	    run(pg,
		"SELECT verdict, ip_used FROM auth_penalty_check($1, $2, $3::bigint, $4::integer, "
		"$5::integer, $6::bigint, $7::bigint, $8::bigint)",
		8, values, error_r);
	*verdict_r = AUTH_PENALTY_ALLOW;
	*delay_ms_r = auth_penalty_delay(p, 0);
	if (res == NULL)
		return -1;
	long long verdict = pg_value_int64(res, 0, 0);
	*verdict_r = verdict == 1   ? AUTH_PENALTY_REFUSE_IP
		     : verdict == 2 ? AUTH_PENALTY_REFUSE_ACCOUNT
				    : AUTH_PENALTY_ALLOW;
	*delay_ms_r = auth_penalty_delay(p, (int)pg_value_int64(res, 0, 1));
	PQclear(res);
	return 0;
}

/* Expiry on the way, at most once per AUTH_PENALTY_PG_EXPIRE_INTERVAL_MS
   of this handle: a failed one is only logged. */
static void expire_now_and_then(struct auth_penalty_pg *pg, int64_t now_ms)
{
	int64_t mono = auth_penalty_now();
	pthread_mutex_lock(&pg->lock);
	bool due = mono - pg->expired_ms >= AUTH_PENALTY_PG_EXPIRE_INTERVAL_MS;
	if (due)
		pg->expired_ms = mono;
	pthread_mutex_unlock(&pg->lock);
	char *error = NULL;
	if (due && auth_penalty_pg_expire(pg, now_ms, AUTH_PENALTY_PG_EXPIRE_BATCH, &error) < 0) {
		log_warn("auth-penalty expiry failed backend=postgresql error=\"%s\"", error);
		free(error);
	}
}

int auth_penalty_pg_record(struct auth_penalty_pg *pg, const struct auth_penalty_policy *p, const char *ip,
			   const char *account, bool success, int64_t now_ms, char **error_r)
{
	expire_now_and_then(pg, now_ms);
	struct call_params c;
	params_make(&c, p, ip, now_ms);
	const char *values[] = {c.ip,
				account,
				success ? "t" : "f",
				now_ms < 0 ? NULL : c.now,
				c.ip_limit,
				c.account_limit,
				c.window,
				c.lockout,
				c.pending_timeout,
				c.trust};
	PGresult *res =
	    run(pg,
		"SELECT auth_penalty_record($1, $2, $3::boolean, $4::bigint, $5::integer, $6::integer, "
		"$7::bigint, $8::bigint, $9::bigint, $10::bigint)",
		10, values, error_r);
	if (res == NULL)
		return -1;
	int locked = (int)pg_value_int64(res, 0, 0);
	PQclear(res);
	return locked;
}

int auth_penalty_pg_expire(struct auth_penalty_pg *pg, int64_t now_ms, int limit, char **error_r)
{
	char now[24], batch[16], trust[24];
	snprintf(now, sizeof(now), "%lld", (long long)now_ms);
	snprintf(batch, sizeof(batch), "%d", limit);
	snprintf(trust, sizeof(trust), "%lld", (long long)AUTH_PENALTY_TRUST_MS);
	const char *values[] = {now_ms < 0 ? NULL : now, batch, trust};
	/* Rows that a check holds are skipped, not waited for: an expiry
	   never takes part in a deadlock with the checks' lock order. */
	PGresult *res =
	    run(pg,
		"WITH n AS (SELECT coalesce($1::bigint, po_now_ms()) AS ms), "
		"f AS (DELETE FROM auth_failures WHERE ctid IN (SELECT ctid FROM auth_failures, n "
		"WHERE expires_ms < n.ms LIMIT $2::integer FOR UPDATE OF auth_failures SKIP LOCKED) "
		"RETURNING 1), "
		"t AS (DELETE FROM auth_trusted WHERE ctid IN (SELECT ctid FROM auth_trusted, n "
		"WHERE last_ms < n.ms - $3::bigint LIMIT $2::integer FOR UPDATE OF auth_trusted SKIP LOCKED) "
		"RETURNING 1) "
		"SELECT (SELECT count(*) FROM f) + (SELECT count(*) FROM t)",
		3, values, error_r);
	if (res == NULL)
		return -1;
	int deleted = (int)pg_value_int64(res, 0, 0);
	PQclear(res);
	return deleted;
}
