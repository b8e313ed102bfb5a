/* The user database backend "postgresql": the tables of version 1 of
   lib/pg_schema.c (domains, users, aliases, as the local backend keeps
   them), on one connection of lib/pg.h per handle.  Operations take the
   handle's lock around their statements only: results are read whole
   before callbacks run.  Operations that change several tables are one
   statement each (data-modifying WITH), so they apply at once without an
   explicit transaction, and running one again after a lost connection
   changes nothing more. */
#include "auth/userdb_backend.h"
#include "auth/userdb_private.h"
#include "lib/log.h"
#include "lib/pg_schema.h"
#include "lib/xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The first schema version that has the user tables. */
#define USERDB_PG_SCHEMA_VERSION 1

struct userdb_pg {
	struct userdb base; /* the interface's part: first */
	struct pg_conn *conn;
	pthread_mutex_t lock; /* one statement at a time on conn */
};

static struct userdb_pg *pg_cast(struct userdb *db)
{
	if (db->be != &userdb_backend_pg)
		log_panic("userdb handle of backend %s given to the postgresql backend", db->be->name);
	return (struct userdb_pg *)db;
}

/* Runs one statement under the lock.  NULL on error: the text goes to
   *error_r as "postgresql: what: ..." when error_r is given, else to the
   log. */
static PGresult *run(struct userdb *base, const char *what, const char *sql, int n, const char *const *values,
		     char **error_r)
{
	struct userdb_pg *db = pg_cast(base);
	char *error = NULL;
	pthread_mutex_lock(&db->lock);
	PGresult *res = pg_query(db->conn, sql, n, values, &error);
	bool temporary = res == NULL && pg_error_temporary(db->conn);
	pthread_mutex_unlock(&db->lock);
	if (res != NULL)
		return res;
	if (error_r != NULL)
		*error_r = xasprintf("postgresql: %s: %s", what, error);
	else
		log_error("userdb %s failed backend=postgresql temporary=%d error=\"%s\"", what, temporary,
			  error);
	free(error);
	return NULL;
}

/* A statement whose result is the number of rows changed (or, with rows,
   returned): 1 when there was one or more, 0 none, -1 error. */
static int run_changes(struct userdb *db, const char *what, const char *sql, int n, const char *const *values,
		       char **error_r)
{
	PGresult *res = run(db, what, sql, n, values, error_r);
	if (res == NULL)
		return -1;
	long long changed = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : pg_changes(res);
	PQclear(res);
	return changed > 0 ? 1 : 0;
}

/* ---- handle ---- */

static void pg_free(struct userdb_pg *db)
{
	pg_close(&db->conn);
	pthread_mutex_destroy(&db->lock);
	free(db);
}

/* With create the schema is brought to the latest version (as the local
   backend does); without it, the user tables must be there. */
static int schema_check(struct pg_conn *conn, bool create, char **error_r)
{
	int version, applied;
	char *error = NULL;
	if (create ? pg_schema_migrate(conn, &applied, &error) : pg_schema_current(conn, &version, &error)) {
		*error_r = xasprintf("postgresql: schema: %s", error);
		free(error);
		return -1;
	}
	if (!create && version < USERDB_PG_SCHEMA_VERSION) {
		*error_r =
		    xasprintf("postgresql: the database has schema version %d, without the user tables: "
			      "run postoffice db init",
			      version);
		return -1;
	}
	return 0;
}

static struct userdb *pg_open(const char *conninfo, bool create, char **error_r)
{
	char *error = NULL;
	struct pg_conn *conn = pg_connect(conninfo, &error);
	if (conn == NULL) {
		*error_r = xasprintf("postgresql: %s", error);
		free(error);
		return NULL;
	}
	if (schema_check(conn, create, error_r) < 0) {
		pg_close(&conn);
		return NULL;
	}
	struct userdb_pg *db = xcalloc(1, sizeof(*db));
	db->base.be = &userdb_backend_pg;
	db->conn = conn;
	pthread_mutex_init(&db->lock, NULL);
	return &db->base;
}

static void pg_userdb_close(struct userdb *base)
{
	pg_free(pg_cast(base));
}

/* ---- domains ---- */

static int pg_domain_add(struct userdb *db, const char *domain, char **error_r)
{
	char now[24];
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	const char *v[] = {domain, now};
	return run_changes(db, "add domain",
			   "INSERT INTO domains (name, created) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, v,
			   error_r);
}

static int pg_domain_exists(struct userdb *db, const char *domain)
{
	return run_changes(db, "domain lookup", "SELECT 1 FROM domains WHERE name = $1", 1, &domain, NULL);
}

static int pg_domain_usage(struct userdb *db, const char *domain, unsigned *users_r, unsigned *aliases_r,
			   char **error_r)
{
	PGresult *res = run(db, "count domain users",
			    "SELECT (SELECT count(*) FROM users WHERE domain = $1), "
			    "(SELECT count(*) FROM aliases WHERE domain = $1)",
			    1, &domain, error_r);
	if (res == NULL)
		return -1;
	*users_r = (unsigned)pg_value_int64(res, 0, 0);
	*aliases_r = (unsigned)pg_value_int64(res, 0, 1);
	PQclear(res);
	return 0;
}

static int pg_domain_del(struct userdb *db, const char *domain, char **error_r)
{
	return run_changes(db, "delete domain",
			   "WITH a AS (DELETE FROM aliases WHERE domain = $1 OR target IN "
			   "(SELECT address FROM users WHERE domain = $1)), "
			   "u AS (DELETE FROM users WHERE domain = $1) "
			   "DELETE FROM domains WHERE name = $1",
			   1, &domain, error_r) < 0
		   ? -1
		   : 0;
}

static int pg_domain_list(struct userdb *db,
			  int (*cb)(void *ctx, const char *domain, unsigned users, int64_t created),
			  void *ctx, char **error_r)
{
	PGresult *res =
	    run(db, "list domains",
		"SELECT d.name, d.created, (SELECT count(*) FROM users u WHERE u.domain = d.name) "
		"FROM domains d ORDER BY d.name",
		0, NULL, error_r);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (cb(ctx, pg_value(res, i, 0), (unsigned)pg_value_int64(res, i, 2),
		       pg_value_int64(res, i, 1)) != 0)
			break;
	PQclear(res);
	return 0;
}

/* ---- users ---- */

#define USER_COLUMNS "address, local, domain, password, quota_bytes, created"

static void user_from_row(const PGresult *res, int row, struct userdb_user *user_r)
{
	user_r->address = xstrdup(pg_value(res, row, 0));
	user_r->local = xstrdup(pg_value(res, row, 1));
	user_r->domain = xstrdup(pg_value(res, row, 2));
	user_r->password_hash = xstrdup(pg_value(res, row, 3));
	long long quota = pg_value_int64(res, row, 4);
	user_r->quota = quota > 0 ? (uint64_t)quota : 0;
	user_r->created = pg_value_int64(res, row, 5);
}

static void quota_text(char *out, size_t size, uint64_t quota)
{
	snprintf(out, size, "%lld", (long long)(quota > INT64_MAX ? INT64_MAX : quota));
}

static int pg_user_add(struct userdb *db, const char *address, const char *hash, uint64_t quota,
		       char **error_r)
{
	const char *domain = userdb_address_domain(address);
	char *local = xstrndup(address, (size_t)(domain - 1 - address));
	char quota_s[24], now[24];
	quota_text(quota_s, sizeof(quota_s), quota);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	const char *v[] = {address, local, domain, hash, quota_s, now};
	int rc = run_changes(db, "add user",
			     "INSERT INTO users (" USER_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6) "
			     "ON CONFLICT DO NOTHING",
			     6, v, error_r);
	free(local);
	return rc;
}

static int pg_user_lookup(struct userdb *db, const char *address, struct userdb_user *user_r)
{
	memset(user_r, 0, sizeof(*user_r));
	PGresult *res = run(db, "user lookup", "SELECT " USER_COLUMNS " FROM users WHERE address = $1", 1,
			    &address, NULL);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) > 0;
	if (found)
		user_from_row(res, 0, user_r);
	PQclear(res);
	return found;
}

static int pg_user_set_password(struct userdb *db, const char *address, const char *hash, char **error_r)
{
	const char *v[] = {address, hash};
	return run_changes(db, "update user", "UPDATE users SET password = $2 WHERE address = $1", 2, v,
			   error_r);
}

static int pg_user_set_quota(struct userdb *db, const char *address, uint64_t quota, char **error_r)
{
	char quota_s[24];
	quota_text(quota_s, sizeof(quota_s), quota);
	const char *v[] = {address, quota_s};
	return run_changes(db, "update user", "UPDATE users SET quota_bytes = $2 WHERE address = $1", 2, v,
			   error_r);
}

static int pg_user_del(struct userdb *db, const char *address, char **error_r)
{
	return run_changes(db, "delete user",
			   "WITH u AS (DELETE FROM users WHERE address = $1 RETURNING address), "
			   "a AS (DELETE FROM aliases WHERE target = $1 AND EXISTS (SELECT 1 FROM u)) "
			   "SELECT address FROM u",
			   1, &address, error_r);
}

static int pg_user_list(struct userdb *db, const char *domain,
			int (*cb)(void *ctx, const struct userdb_user *user), void *ctx, char **error_r)
{
	PGresult *res =
	    domain != NULL
		? run(db, "list users", "SELECT " USER_COLUMNS " FROM users WHERE domain = $1 ORDER BY local",
		      1, &domain, error_r)
		: run(db, "list users", "SELECT " USER_COLUMNS " FROM users ORDER BY domain, local", 0, NULL,
		      error_r);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		struct userdb_user user;
		user_from_row(res, i, &user);
		int stop = cb(ctx, &user);
		userdb_user_free(&user);
		if (stop != 0)
			break;
	}
	PQclear(res);
	return 0;
}

static int pg_user_first(struct userdb *db, const char *domain, char **address_r)
{
	PGresult *res = domain != NULL
			    ? run(db, "first user lookup",
				  "SELECT address FROM users WHERE domain = $1 ORDER BY created, id LIMIT 1",
				  1, &domain, NULL)
			    : run(db, "first user lookup",
				  "SELECT address FROM users ORDER BY created, id LIMIT 1", 0, NULL, NULL);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) > 0;
	if (found)
		*address_r = xstrdup(pg_value(res, 0, 0));
	PQclear(res);
	return found;
}

/* ---- alias rows ---- */

static int pg_alias_add(struct userdb *db, const char *source, const char *domain, const char *target,
			char **error_r)
{
	char now[24];
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	const char *v[] = {source, target, domain, now};
	return run_changes(db, "add alias",
			   "INSERT INTO aliases (source, target, domain, created) VALUES ($1, $2, $3, $4) "
			   "ON CONFLICT DO NOTHING",
			   4, v, error_r);
}

static int pg_alias_del(struct userdb *db, const char *source, const char *target, char **error_r)
{
	const char *v[] = {source, target};
	/* Targets compared without case, in ASCII only, as the local
	   backend's COLLATE NOCASE does. */
	return target != NULL
		   ? run_changes(db, "delete alias",
				 "DELETE FROM aliases WHERE source = $1 AND "
				 "lower(target COLLATE \"C\") = lower($2 COLLATE \"C\")",
				 2, v, error_r)
		   : run_changes(db, "delete alias", "DELETE FROM aliases WHERE source = $1", 1, v, error_r);
}

static int pg_alias_list(struct userdb *db, const char *domain,
			 int (*cb)(void *ctx, const char *source, const char *target), void *ctx,
			 char **error_r)
{
	PGresult *res =
	    domain != NULL
		? run(db, "list aliases",
		      "SELECT source, target FROM aliases WHERE domain = $1 ORDER BY source, target", 1,
		      &domain, error_r)
		: run(db, "list aliases",
		      "SELECT source, target FROM aliases ORDER BY domain, source, target", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (cb(ctx, pg_value(res, i, 0), pg_value(res, i, 1)) != 0)
			break;
	PQclear(res);
	return 0;
}

static int pg_alias_targets(struct userdb *db, const char *source, struct strlist *targets)
{
	PGresult *res = run(db, "alias lookup", "SELECT target FROM aliases WHERE source = $1 ORDER BY id", 1,
			    &source, NULL);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		strlist_add(targets, pg_value(res, i, 0));
	PQclear(res);
	return 0;
}

/* ---- the table ---- */

const struct userdb_backend userdb_backend_pg = {
    .name = "postgresql",
    .lookups_block = true,
    .open = pg_open,
    .close = pg_userdb_close,
    .domain_add = pg_domain_add,
    .domain_exists = pg_domain_exists,
    .domain_usage = pg_domain_usage,
    .domain_del = pg_domain_del,
    .domain_list = pg_domain_list,
    .user_add = pg_user_add,
    .user_lookup = pg_user_lookup,
    .user_set_password = pg_user_set_password,
    .user_set_quota = pg_user_set_quota,
    .user_del = pg_user_del,
    .user_list = pg_user_list,
    .user_first = pg_user_first,
    .alias_add = pg_alias_add,
    .alias_del = pg_alias_del,
    .alias_list = pg_alias_list,
    .alias_targets = pg_alias_targets,
};
