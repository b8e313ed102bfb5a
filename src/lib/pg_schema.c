/* The migrations of the PostgreSQL schema (pg_schema.h) and the code that
   applies them.

   To add tables: append an entry to migrations[] with the next version
   number, a one-line description and its SQL.  Never edit or reorder an
   entry once it is merged: databases in the field have run it.  Text
   columns that are compared or ordered like the local backend's SQLite
   (binary order) are COLLATE "C", so that the order does not depend on the
   database's locale. */
#include "lib/pg_schema.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct pg_migration migrations[] = {
    {1, "user database: domains, users, aliases",
     "CREATE TABLE domains ("
     " name text COLLATE \"C\" PRIMARY KEY,"
     " created bigint NOT NULL);"
     "CREATE TABLE users ("
     " address text COLLATE \"C\" PRIMARY KEY,"
     " local text COLLATE \"C\" NOT NULL,"
     " domain text COLLATE \"C\" NOT NULL,"
     " password text NOT NULL,"
     " quota_bytes bigint NOT NULL DEFAULT 0,"
     " created bigint NOT NULL,"
     " id bigserial NOT NULL UNIQUE);"
     "CREATE INDEX users_domain ON users (domain, created, id);"
     "CREATE TABLE aliases ("
     " source text COLLATE \"C\" NOT NULL,"
     " target text COLLATE \"C\" NOT NULL,"
     " domain text COLLATE \"C\" NOT NULL,"
     " created bigint NOT NULL,"
     " id bigserial NOT NULL,"
     " PRIMARY KEY (source, target));"
     "CREATE INDEX aliases_domain ON aliases (domain);"
     "CREATE INDEX aliases_target ON aliases (target);"},
    {2, "outgoing queue: messages with their leases, recipients",
     /* One row per message: the envelope, the message once (bytes from
	data_offset on are what is relayed), the earliest next attempt of a
	pending recipient (what claims compare), and the lease: who holds
	the message and until when (unix seconds). */
     "CREATE TABLE queue_messages ("
     " id text COLLATE \"C\" PRIMARY KEY,"
     " created bigint NOT NULL,"
     " data_offset bigint NOT NULL,"
     " sender text NOT NULL,"
     " envid text,"
     " ret smallint NOT NULL,"
     " body smallint NOT NULL,"
     " smtputf8 boolean NOT NULL,"
     " auth_user text,"
     " client_ip text,"
     " helo text,"
     " held boolean NOT NULL DEFAULT false,"
     " next_attempt bigint NOT NULL,"
     " lease_holder text,"
     " lease_expiry bigint NOT NULL DEFAULT 0,"
     " message bytea NOT NULL);"
     "CREATE INDEX queue_messages_due ON queue_messages (next_attempt, id);"
     "CREATE INDEX queue_messages_created ON queue_messages (created, id);"
     /* state: 0 pending, 1 delivered, 2 bounced (spool.h). */
     "CREATE TABLE queue_recipients ("
     " queue_id text COLLATE \"C\" NOT NULL REFERENCES queue_messages (id) ON DELETE CASCADE,"
     " idx integer NOT NULL,"
     " address text NOT NULL,"
     " orcpt text,"
     " notify integer NOT NULL,"
     " state smallint NOT NULL,"
     " attempts integer NOT NULL,"
     " next_attempt bigint NOT NULL,"
     " last_attempt bigint NOT NULL,"
     " delay_notified boolean NOT NULL,"
     " remote_mta text,"
     " last_reply text,"
     " PRIMARY KEY (queue_id, idx));"},
};

/* pg_advisory_xact_lock() key of migrations: "pomg". */
#define SCHEMA_LOCK_KEY "1886351719"

const struct pg_migration *pg_schema_migrations(size_t *count_r)
{
	*count_r = N_ELEMENTS(migrations);
	return migrations;
}

int pg_schema_latest(void)
{
	return migrations[N_ELEMENTS(migrations) - 1].version;
}

int pg_schema_current(struct pg_conn *conn, int *version_r, char **error_r)
{
	*version_r = 0;
	PGresult *res = pg_query(conn,
				 "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN -1 "
				 "ELSE 0 END",
				 0, NULL, error_r);
	if (res == NULL)
		return -1;
	bool exists = pg_value_int64(res, 0, 0) == 0;
	PQclear(res);
	if (!exists)
		return 0;
	res = pg_query(conn, "SELECT coalesce(max(version), 0) FROM schema_version", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	*version_r = (int)pg_value_int64(res, 0, 0);
	PQclear(res);
	return 0;
}

/* Applies m when the database is at the version before it; 1 applied,
   0 already there (another node was first), -1 error. */
static int migrate_one(struct pg_conn *conn, const struct pg_migration *m, char **error_r)
{
	if (pg_begin(conn, error_r) < 0)
		return -1;
	int current;
	PGresult *res = pg_query(conn, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")", 0, NULL, error_r);
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (pg_exec_script(conn,
			   "CREATE TABLE IF NOT EXISTS schema_version ("
			   " version integer PRIMARY KEY,"
			   " description text NOT NULL,"
			   " applied timestamptz NOT NULL DEFAULT now())",
			   error_r) < 0 ||
	    pg_schema_current(conn, &current, error_r) < 0)
		goto fail;
	if (current >= m->version) {
		pg_rollback(conn);
		return 0;
	}
	if (current != m->version - 1) {
		*error_r = xasprintf("schema version %d cannot take migration %d", current, m->version);
		goto fail;
	}
	char version[16];
	snprintf(version, sizeof(version), "%d", m->version);
	const char *params[] = {version, m->description};
	if (pg_exec_script(conn, m->sql, error_r) < 0)
		goto fail;
	res = pg_query(conn, "INSERT INTO schema_version (version, description) VALUES ($1, $2)", 2, params,
		       error_r);
	if (res == NULL)
		goto fail;
	PQclear(res);
	return pg_commit(conn, error_r) < 0 ? -1 : 1;
fail:
	pg_rollback(conn);
	return -1;
}

int pg_schema_migrate(struct pg_conn *conn, int *applied_r, char **error_r)
{
	*applied_r = 0;
	int current;
	if (pg_schema_current(conn, &current, error_r) < 0)
		return -1;
	if (current > pg_schema_latest()) {
		*error_r = xasprintf("the database's schema version %d is newer than this program's (%d)",
				     current, pg_schema_latest());
		return -1;
	}
	for (size_t i = 0; i < N_ELEMENTS(migrations); i++) {
		const struct pg_migration *m = &migrations[i];
		if (m->version != (int)i + 1)
			log_panic("migration %zu has version %d", i, m->version);
		if (m->version <= current)
			continue;
		char *error = NULL;
		int rc = migrate_one(conn, m, &error);
		if (rc < 0) {
			*error_r = xasprintf("migration %d (%s): %s", m->version, m->description, error);
			free(error);
			return -1;
		}
		if (rc > 0) {
			log_info("postgresql schema migrated version=%d description=\"%s\"", m->version,
				 m->description);
			(*applied_r)++;
		}
	}
	return 0;
}
