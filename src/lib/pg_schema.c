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
    /* Limits shared by the nodes of a cluster: the failed-login counters
       of auth/auth_penalty.h (scope 0 a client address, 1 an account) with
       the pairs that logged in, and the live sessions counted against
       [imap] max_connections_per_user (session/session_registry.h).  The
       functions do in one statement what the shared-memory table does
       under its mutex: rows locked in one order (address, then account),
       times in milliseconds of the database's clock unless a test gives
       its own.  (A row that a count needs is locked by the upsert that
       makes sure it is there, so that no expiry deletes it in between.)
       Their commits do not wait for the WAL flush (synchronous_commit off
       for the transaction): a crash of the database may forget the last
       counts of a fraction of a second, which costs nothing that matters,
       and a login does not wait for a disk. */
    {2, "limits across nodes: failed-login counters, live sessions",
     "CREATE TABLE auth_failures ("
     " scope smallint NOT NULL,"
     " name text COLLATE \"C\" NOT NULL,"
     " failures integer NOT NULL DEFAULT 0,"
     " last_ms bigint NOT NULL DEFAULT 0,"
     " locked_until_ms bigint NOT NULL DEFAULT 0,"
     " pending integer NOT NULL DEFAULT 0,"
     " pending_ms bigint NOT NULL DEFAULT 0,"
     " expires_ms bigint NOT NULL DEFAULT 0,"
     " PRIMARY KEY (scope, name));"
     "CREATE INDEX auth_failures_expires ON auth_failures (expires_ms);"
     "CREATE TABLE auth_trusted ("
     " account text COLLATE \"C\" NOT NULL,"
     " ip text COLLATE \"C\" NOT NULL,"
     " last_ms bigint NOT NULL,"
     " PRIMARY KEY (account, ip));"
     "CREATE INDEX auth_trusted_last ON auth_trusted (last_ms);"
     "CREATE FUNCTION po_now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS"
     " $$SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint$$;"
     /* counter_refresh(): checks in flight that outlived their worker,
	failures a quiet window ago */
     "CREATE FUNCTION auth_failures_refresh(r auth_failures, now_ms bigint, window_ms bigint,"
     " pending_timeout_ms bigint) RETURNS auth_failures LANGUAGE plpgsql IMMUTABLE AS $$"
     "BEGIN"
     " IF r.pending > 0 AND now_ms - r.pending_ms >= pending_timeout_ms THEN r.pending := 0; END IF;"
     " IF r.failures > 0 AND now_ms - r.last_ms >= window_ms THEN r.failures := 0; END IF;"
     " RETURN r;"
     "END $$;"
     /* counter_fail(): a lockout starts when locked_until_ms changes */
     "CREATE FUNCTION auth_failures_fail(r auth_failures, threshold integer, now_ms bigint,"
     " lockout_ms bigint) RETURNS auth_failures LANGUAGE plpgsql IMMUTABLE AS $$"
     "BEGIN"
     " IF r.name IS NULL THEN RETURN r; END IF;"
     " r.failures := least(r.failures + 1, 65535);"
     " IF r.last_ms < now_ms THEN r.last_ms := now_ms; END IF;"
     " IF threshold <= 0 OR r.failures < threshold THEN RETURN r; END IF;"
     " IF r.locked_until_ms <= now_ms THEN r.locked_until_ms := now_ms + lockout_ms; END IF;"
     " r.failures := threshold - 1;"
     " r.last_ms := r.locked_until_ms;"
     " RETURN r;"
     "END $$;"
     /* writes a counter back; expires_ms: from then on the row is as good
	as none */
     "CREATE FUNCTION auth_failures_save(r auth_failures, window_ms bigint, pending_timeout_ms bigint)"
     " RETURNS void LANGUAGE plpgsql AS $$"
     "BEGIN"
     " UPDATE auth_failures f SET failures = r.failures, last_ms = r.last_ms,"
     "  locked_until_ms = r.locked_until_ms, pending = r.pending, pending_ms = r.pending_ms,"
     "  expires_ms = greatest(r.locked_until_ms,"
     "   CASE WHEN r.failures > 0 THEN r.last_ms + window_ms ELSE 0 END,"
     "   CASE WHEN r.pending > 0 THEN r.pending_ms + pending_timeout_ms ELSE 0 END)"
     "  WHERE f.scope = r.scope AND f.name = r.name;"
     "END $$;"
     /* auth_penalty_check(): verdict 0 allow, 1 address locked, 2 account
	locked; ip_used: the address's failures and checks in flight */
     "CREATE FUNCTION auth_penalty_check(p_ip text, p_account text, p_now bigint, ip_limit integer,"
     " account_limit integer, window_ms bigint, pending_timeout_ms bigint, trust_ms bigint,"
     " OUT verdict integer, OUT ip_used integer) LANGUAGE plpgsql AS $$"
     "DECLARE"
     " now_ms bigint := coalesce(p_now, po_now_ms());"
     " trusted boolean; i auth_failures; a auth_failures;"
     "BEGIN"
     " PERFORM set_config('synchronous_commit', 'off', true);"
     " trusted := EXISTS (SELECT 1 FROM auth_trusted t WHERE t.account = p_account AND t.ip = p_ip"
     "  AND now_ms - t.last_ms < trust_ms);"
     " IF NOT trusted THEN"
     "  INSERT INTO auth_failures AS f (scope, name) VALUES (0, p_ip), (1, p_account)"
     "   ON CONFLICT (scope, name) DO UPDATE SET scope = f.scope;"
     " END IF;"
     " SELECT * INTO i FROM auth_failures f WHERE f.scope = 0 AND f.name = p_ip FOR UPDATE;"
     " IF NOT trusted THEN"
     "  SELECT * INTO a FROM auth_failures f WHERE f.scope = 1 AND f.name = p_account FOR UPDATE;"
     " END IF;"
     " i := auth_failures_refresh(i, now_ms, window_ms, pending_timeout_ms);"
     " a := auth_failures_refresh(a, now_ms, window_ms, pending_timeout_ms);"
     " verdict := 0;"
     " IF i.name IS NOT NULL AND ip_limit > 0 AND (i.locked_until_ms > now_ms OR i.failures"
     "  + CASE WHEN NOT trusted AND i.failures > 0 THEN i.pending ELSE 0 END >= ip_limit) THEN"
     "  verdict := 1;"
     " ELSIF a.name IS NOT NULL AND account_limit > 0 AND (a.locked_until_ms > now_ms OR a.failures"
     "  + CASE WHEN a.failures > 0 THEN a.pending ELSE 0 END >= account_limit) THEN"
     "  verdict := 2;"
     " END IF;"
     " ip_used := coalesce(i.failures + i.pending, 0);"
     " IF verdict = 0 AND NOT trusted THEN"
     "  i.pending := least(i.pending + 1, 65535); i.pending_ms := now_ms;"
     "  a.pending := least(a.pending + 1, 65535); a.pending_ms := now_ms;"
     " END IF;"
     " PERFORM auth_failures_save(i, window_ms, pending_timeout_ms);"
     " PERFORM auth_failures_save(a, window_ms, pending_timeout_ms);"
     "END $$;"
     /* auth_penalty_record(): bit 1 the address's lockout started, bit 2
	the account's */
     "CREATE FUNCTION auth_penalty_record(p_ip text, p_account text, p_success boolean, p_now bigint,"
     " ip_limit integer, account_limit integer, window_ms bigint, lockout_ms bigint,"
     " pending_timeout_ms bigint, trust_ms bigint) RETURNS integer LANGUAGE plpgsql AS $$"
     "DECLARE"
     " now_ms bigint := coalesce(p_now, po_now_ms());"
     " trusted boolean; i auth_failures; a auth_failures; li bigint; la bigint;"
     "BEGIN"
     " PERFORM set_config('synchronous_commit', 'off', true);"
     " trusted := EXISTS (SELECT 1 FROM auth_trusted t WHERE t.account = p_account AND t.ip = p_ip"
     "  AND now_ms - t.last_ms < trust_ms);"
     " IF NOT p_success THEN"
     "  INSERT INTO auth_failures AS f (scope, name) VALUES (0, p_ip), (1, p_account)"
     "   ON CONFLICT (scope, name) DO UPDATE SET scope = f.scope;"
     " END IF;"
     " SELECT * INTO i FROM auth_failures f WHERE f.scope = 0 AND f.name = p_ip FOR UPDATE;"
     " SELECT * INTO a FROM auth_failures f WHERE f.scope = 1 AND f.name = p_account FOR UPDATE;"
     " i := auth_failures_refresh(i, now_ms, window_ms, pending_timeout_ms);"
     " a := auth_failures_refresh(a, now_ms, window_ms, pending_timeout_ms);"
     " IF NOT trusted THEN"
     "  i.pending := greatest(i.pending - 1, 0); a.pending := greatest(a.pending - 1, 0);"
     " END IF;"
     " IF p_success THEN"
     "  i.failures := 0;"
     "  INSERT INTO auth_trusted (account, ip, last_ms) VALUES (p_account, p_ip, now_ms)"
     "   ON CONFLICT (account, ip) DO UPDATE SET last_ms = excluded.last_ms;"
     " ELSE"
     "  li := i.locked_until_ms; la := a.locked_until_ms;"
     "  i := auth_failures_fail(i, ip_limit, now_ms, lockout_ms);"
     "  a := auth_failures_fail(a, account_limit, now_ms, lockout_ms);"
     " END IF;"
     " PERFORM auth_failures_save(i, window_ms, pending_timeout_ms);"
     " PERFORM auth_failures_save(a, window_ms, pending_timeout_ms);"
     " RETURN CASE WHEN i.locked_until_ms <> li THEN 1 ELSE 0 END"
     "  | CASE WHEN a.locked_until_ms <> la THEN 2 ELSE 0 END;"
     "END $$;"
     "CREATE TABLE live_sessions ("
     " id bigserial PRIMARY KEY,"
     " node text NOT NULL,"
     " pid integer NOT NULL,"
     " instance text COLLATE \"C\" NOT NULL,"
     " service text COLLATE \"C\" NOT NULL,"
     " username text COLLATE \"C\" NOT NULL,"
     " started timestamptz NOT NULL DEFAULT now(),"
     " expires timestamptz NOT NULL);"
     "CREATE INDEX live_sessions_user ON live_sessions (service, username);"
     "CREATE INDEX live_sessions_instance ON live_sessions (instance);"
     "CREATE INDEX live_sessions_expires ON live_sessions (expires);"
     /* a slot for one more session of a user, or 0 at the cap: the user's
	count and the insert under one advisory lock (each statement of the
	function sees what the previous holder committed) */
     "CREATE FUNCTION live_session_add(p_node text, p_pid integer, p_instance text, p_service text,"
     " p_user text, p_max integer, p_ttl_ms bigint) RETURNS bigint LANGUAGE plpgsql AS $$"
     "DECLARE n integer; slot bigint;"
     "BEGIN"
     " PERFORM set_config('synchronous_commit', 'off', true);"
     " PERFORM pg_advisory_xact_lock(1886350444, hashtext(p_service || ' ' || p_user));"
     " DELETE FROM live_sessions s WHERE s.service = p_service AND s.username = p_user"
     "  AND s.expires <= clock_timestamp();"
     " SELECT count(*) INTO n FROM live_sessions s WHERE s.service = p_service AND s.username = p_user;"
     " IF n >= p_max THEN RETURN 0; END IF;"
     " INSERT INTO live_sessions (node, pid, instance, service, username, expires)"
     "  VALUES (p_node, p_pid, p_instance, p_service, p_user,"
     "  clock_timestamp() + p_ttl_ms * interval '1 millisecond') RETURNING id INTO slot;"
     " RETURN slot;"
     "END $$;"},
    {3, "outgoing queue: messages with their leases, recipients",
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
    /* The mail store backend "postgresql" (store/store_pg*.c).  A
       message's octets are stored once per content in mail_bodies (keyed
       by their SHA-256; bytea, TOAST-compressed), whatever number of
       recipients and copies refer to it: refs counts the mail_messages
       rows that do, kept by the statement triggers below, and a body
       whose count falls to 0 is deleted in the same transaction.
       Writers of a mailbox lock its row (UIDNEXT, HIGHESTMODSEQ) first,
       so UIDs and modseqs are handed out and committed in one order. */
    {4, "mail store: stores, mailboxes, messages, bodies stored once, IMAP cache",
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
    /* The stable id (POP3 UIDL) a message had in the store it was
       imported from (store_mailbox_import(), postoffice
       migrate-to-postgresql), kept so that POP3 clients that leave mail
       on the server do not fetch it again; NULL for messages that came
       in here, whose id is made of UIDVALIDITY and UID. */
    {5, "mail store: stable ids of imported messages",
     "ALTER TABLE mail_messages ADD COLUMN stable_id text;"},
    /* A delivery in one statement (store/store_pg_user.c), so that it
       costs one round trip between BEGIN and COMMIT instead of one per
       step: the folder p_folder of the store of each of p_addresses (made
       when missing, with the folders p_folders), their rows locked in id
       order (several; one is locked by its UPDATE), each takes a UID and
       a modseq; the octets p_data stored once under their hash p_hash
       (the node computes it: CPU of the nodes, not of the database), and
       a row per mailbox refers to them.  One row per address: its
       position (from 1), mailbox and UID; an address whose mailbox went
       meanwhile has none.  The caller notifies the mailboxes' watchers
       after the commit (lib/pg.h, pg_notify_after_commit()). */
    {6, "mail store: a delivery in one statement",
     "CREATE FUNCTION mail_deliver(p_addresses text[], p_folders text[], p_folder text,"
     " p_hash bytea, p_data bytea, p_size bigint, p_date bigint)"
     " RETURNS TABLE (r_idx integer, r_mailbox bigint, r_uid bigint)"
     " LANGUAGE plpgsql AS $$ DECLARE ids bigint[] := '{}'; a text;"
     " mbs bigint[]; uids bigint[]; mss bigint[]; BEGIN"
     " FOREACH a IN ARRAY p_addresses LOOP"
     "  ids := ids || mail_mailbox_ensure(mail_store_ensure(a, p_folders), p_folder);"
     " END LOOP;"
     " IF cardinality(ids) > 1 THEN"
     "  PERFORM 1 FROM mail_mailboxes m WHERE m.id = ANY(ids) ORDER BY m.id FOR UPDATE;"
     " END IF;"
     " WITH t AS (UPDATE mail_mailboxes m SET uidnext = m.uidnext + 1,"
     "  highestmodseq = m.highestmodseq + 1 WHERE m.id = ANY(ids)"
     "  RETURNING m.id, m.uidnext - 1 AS uid, m.highestmodseq AS modseq)"
     " SELECT array_agg(t.id), array_agg(t.uid), array_agg(t.modseq) INTO mbs, uids, mss FROM t;"
     " PERFORM 1 FROM mail_bodies b WHERE b.hash = p_hash FOR UPDATE;"
     " IF NOT FOUND THEN"
     "  INSERT INTO mail_bodies (hash, size, data) VALUES (p_hash, octet_length(p_data), p_data)"
     "   ON CONFLICT (hash) DO UPDATE SET refs = mail_bodies.refs;"
     " END IF;"
     " INSERT INTO mail_messages (mailbox, uid, modseq, internaldate, size, psize, body, emailid)"
     "  SELECT u.m, u.u, u.s, p_date, p_size, octet_length(p_data), p_hash,"
     "  'M' || substr(md5(random()::text || clock_timestamp()::text), 1, 24)"
     "  FROM unnest(mbs, uids, mss) AS u(m, u, s);"
     " RETURN QUERY SELECT i.n::integer, u.m, u.u FROM unnest(ids) WITH ORDINALITY AS i(id, n)"
     "  JOIN unnest(mbs, uids) AS u(m, u) ON u.m = i.id ORDER BY i.n;"
     " END $$;"},
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
