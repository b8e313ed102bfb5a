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
    /* The mail store backend "postgresql" (store/store_pg*.c).  A
       message's octets are stored once per content in mail_bodies (keyed
       by their SHA-256; bytea, TOAST-compressed), whatever number of
       recipients and copies refer to it: refs counts the mail_messages
       rows that do, kept by the statement triggers below, and a body
       whose count falls to 0 is deleted in the same transaction.
       Writers of a mailbox lock its row (UIDNEXT, HIGHESTMODSEQ) first,
       so UIDs and modseqs are handed out and committed in one order. */
    {2, "mail store: stores, mailboxes, messages, bodies stored once, IMAP cache",
     "CREATE TABLE mail_stores ("
     " id bigserial PRIMARY KEY,"
     " address text COLLATE \"C\" NOT NULL UNIQUE,"
     " last_uidvalidity bigint NOT NULL DEFAULT 0,"
     " created bigint NOT NULL DEFAULT extract(epoch FROM now())::bigint);"
     "CREATE TABLE mail_mailboxes ("
     " id bigserial PRIMARY KEY,"
     " store bigint NOT NULL REFERENCES mail_stores ON DELETE CASCADE,"
     " name text COLLATE \"C\" NOT NULL,"
     " uidvalidity bigint NOT NULL,"
     " uidnext bigint NOT NULL DEFAULT 1,"
     " highestmodseq bigint NOT NULL DEFAULT 1,"
     " first_recent bigint NOT NULL DEFAULT 1,"
     " mailboxid text COLLATE \"C\","
     " UNIQUE (store, name));"
     "CREATE TABLE mail_subscriptions ("
     " store bigint NOT NULL REFERENCES mail_stores ON DELETE CASCADE,"
     " name text COLLATE \"C\" NOT NULL,"
     " PRIMARY KEY (store, name));"
     "CREATE TABLE mail_bodies ("
     " hash bytea PRIMARY KEY,"
     " refs bigint NOT NULL DEFAULT 0,"
     " size bigint NOT NULL,"
     " data bytea NOT NULL);"
     "ALTER TABLE mail_bodies ALTER COLUMN data SET STORAGE EXTENDED;"
     "CREATE TABLE mail_messages ("
     " mailbox bigint NOT NULL REFERENCES mail_mailboxes ON DELETE CASCADE,"
     " uid bigint NOT NULL,"
     " flags integer NOT NULL DEFAULT 0,"
     " keywords text NOT NULL DEFAULT '',"
     " modseq bigint NOT NULL,"
     " internaldate bigint NOT NULL,"
     " size bigint NOT NULL,"
     " psize bigint NOT NULL,"
     " body bytea NOT NULL REFERENCES mail_bodies,"
     " emailid text COLLATE \"C\" NOT NULL,"
     " PRIMARY KEY (mailbox, uid));"
     "CREATE INDEX mail_messages_modseq ON mail_messages (mailbox, modseq);"
     "CREATE INDEX mail_messages_body ON mail_messages (body);"
     "CREATE TABLE mail_expunged ("
     " mailbox bigint NOT NULL REFERENCES mail_mailboxes ON DELETE CASCADE,"
     " uid bigint NOT NULL,"
     " modseq bigint NOT NULL,"
     " PRIMARY KEY (mailbox, uid));"
     "CREATE TABLE mail_cache ("
     " mailbox bigint NOT NULL,"
     " uid bigint NOT NULL,"
     " envelope text,"
     " bodystructure text,"
     " preview text,"
     " header bytea,"
     " sortkey bytea,"
     " PRIMARY KEY (mailbox, uid),"
     " FOREIGN KEY (mailbox, uid) REFERENCES mail_messages ON DELETE CASCADE);"
     "CREATE FUNCTION mail_bodies_ref() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
     " UPDATE mail_bodies b SET refs = b.refs + n.c"
     "  FROM (SELECT body, count(*) AS c FROM mail_new GROUP BY body) n WHERE b.hash = n.body;"
     " RETURN NULL; END $$;"
     "CREATE TRIGGER mail_messages_ref AFTER INSERT ON mail_messages"
     " REFERENCING NEW TABLE AS mail_new FOR EACH STATEMENT EXECUTE FUNCTION mail_bodies_ref();"
     "CREATE FUNCTION mail_bodies_unref() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
     " UPDATE mail_bodies b SET refs = b.refs - o.c"
     "  FROM (SELECT body, count(*) AS c FROM mail_old GROUP BY body) o WHERE b.hash = o.body;"
     " DELETE FROM mail_bodies b WHERE b.hash IN (SELECT body FROM mail_old) AND b.refs <= 0;"
     " RETURN NULL; END $$;"
     "CREATE TRIGGER mail_messages_unref AFTER DELETE ON mail_messages"
     " REFERENCING OLD TABLE AS mail_old FOR EACH STATEMENT EXECUTE FUNCTION mail_bodies_unref();"
     /* The mailbox p_name of store p_store, made when missing with a
	UIDVALIDITY above any the store gave before (RFC 3501 2.3.1.1). */
     "CREATE FUNCTION mail_mailbox_ensure(p_store bigint, p_name text) RETURNS bigint"
     " LANGUAGE plpgsql AS $$ DECLARE r bigint; uv bigint; BEGIN"
     " SELECT m.id INTO r FROM mail_mailboxes m WHERE m.store = p_store AND m.name = p_name;"
     " IF r IS NOT NULL THEN RETURN r; END IF;"
     " UPDATE mail_stores s SET last_uidvalidity = greatest(s.last_uidvalidity + 1,"
     "  extract(epoch FROM clock_timestamp())::bigint) WHERE s.id = p_store"
     "  RETURNING s.last_uidvalidity INTO uv;"
     " INSERT INTO mail_mailboxes (store, name, uidvalidity) VALUES (p_store, p_name, uv)"
     "  ON CONFLICT (store, name) DO NOTHING RETURNING id INTO r;"
     " IF r IS NULL THEN"
     "  SELECT m.id INTO r FROM mail_mailboxes m WHERE m.store = p_store AND m.name = p_name;"
     " END IF;"
     " RETURN r; END $$;"
     /* The store of p_address, made when missing with an INBOX and the
	folders p_folders. */
     "CREATE FUNCTION mail_store_ensure(p_address text, p_folders text[]) RETURNS bigint"
     " LANGUAGE plpgsql AS $$ DECLARE r bigint; f text; BEGIN"
     " SELECT s.id INTO r FROM mail_stores s WHERE s.address = p_address;"
     " IF r IS NOT NULL THEN RETURN r; END IF;"
     " INSERT INTO mail_stores (address) VALUES (p_address)"
     "  ON CONFLICT (address) DO NOTHING RETURNING id INTO r;"
     " IF r IS NULL THEN"
     "  SELECT s.id INTO r FROM mail_stores s WHERE s.address = p_address; RETURN r;"
     " END IF;"
     " PERFORM mail_mailbox_ensure(r, 'INBOX');"
     " FOREACH f IN ARRAY coalesce(p_folders, '{}') LOOP PERFORM mail_mailbox_ensure(r, f); END LOOP;"
     " RETURN r; END $$;"},
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
