/* The postgresql backend: importing a mailbox of another store as it was
   there (store_mailbox_import(), for `postoffice migrate-to-postgresql`).
   One transaction per mailbox: the mailbox row is made (or taken while it
   is still unused) and locked, given the source's counters, and the
   messages are stored as an append stores them, with their own UIDs and
   modseqs instead of new ones. */
#include "store/store_pg_private.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The mailbox id of imp->name, made when missing, locked; -1 unless it
   was never used. */
static int import_mailbox(struct store_pg *store, const struct store_import *imp, int64_t *id_r,
			  char **error_r)
{
	char sid[STORE_PG_INT_MAX];
	const char *name = strcasecmp(imp->name, "INBOX") == 0 ? "INBOX" : imp->name;
	const char *v[] = {store_pg_int(sid, store->id), name};
	/* (a row the function makes is not seen by the statement that calls
	   it: two statements) */
	PGresult *res = store_pg_run(store->conn, "importing a mailbox", "SELECT mail_mailbox_ensure($1, $2)",
				     2, v, error_r);
	if (res == NULL)
		return -1;
	char id[STORE_PG_INT_MAX];
	const char *w[] = {store_pg_int(id, pg_value_int64(res, 0, 0))};
	PQclear(res);
	res = store_pg_run(store->conn, "importing a mailbox",
			   "SELECT m.id, m.uidnext,"
			   " EXISTS (SELECT 1 FROM mail_messages WHERE mailbox = m.id),"
			   " EXISTS (SELECT 1 FROM mail_expunged WHERE mailbox = m.id)"
			   " FROM mail_mailboxes m WHERE m.id = $1 FOR UPDATE",
			   1, w, error_r);
	if (res == NULL)
		return -1;
	int rc = 0;
	if (PQntuples(res) != 1) {
		*error_r = xasprintf("import of %s: the mailbox was not made", name);
		rc = -1;
	} else if (pg_value_int64(res, 0, 1) != 1 || pg_value(res, 0, 2)[0] == 't' ||
		   pg_value(res, 0, 3)[0] == 't') {
		*error_r = xasprintf("import of %s: the mailbox holds or held mail already (UIDNEXT %s)",
				     name, pg_value(res, 0, 1));
		rc = -1;
	} else {
		*id_r = pg_value_int64(res, 0, 0);
	}
	PQclear(res);
	return rc;
}

/* The source's counters and MAILBOXID; later mailboxes of the store get
   UIDVALIDITYs above this one (mail_mailbox_ensure()). */
static int import_counters(struct store_pg *store, int64_t mailbox, const struct store_import *imp,
			   char **error_r)
{
	char id[STORE_PG_INT_MAX], sid[STORE_PG_INT_MAX], uv[STORE_PG_INT_MAX], next[STORE_PG_INT_MAX],
	    ms[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mailbox),
			   store_pg_int(uv, imp->uidvalidity),
			   store_pg_int(next, imp->uidnext),
			   store_pg_int(ms, (long long)imp->highestmodseq),
			   imp->mailboxid,
			   store_pg_int(sid, store->id)};
	if (store_pg_exec(store->conn, "importing a mailbox",
			  "UPDATE mail_mailboxes SET uidvalidity = $2, uidnext = $3, highestmodseq = $4,"
			  " first_recent = $3, mailboxid = coalesce($5, mailboxid) WHERE id = $1",
			  5, v, error_r) < 0)
		return -1;
	const char *s[] = {sid, uv};
	return store_pg_exec(store->conn, "importing a mailbox",
			     "UPDATE mail_stores SET last_uidvalidity = greatest(last_uidvalidity, $2)"
			     " WHERE id = $1",
			     2, s, error_r);
}

static int import_expunged(struct store_pg *store, int64_t mailbox, const struct store_import *imp,
			   char **error_r)
{
	if (imp->expunged_count == 0)
		return 0;
	char id[STORE_PG_INT_MAX], ms[STORE_PG_INT_MAX];
	char *array = store_pg_uid_array(imp->expunged, imp->expunged_count);
	const char *v[] = {store_pg_int(id, mailbox), array, store_pg_int(ms, (long long)imp->highestmodseq)};
	int rc = store_pg_exec(store->conn, "importing expunged UIDs",
			       "INSERT INTO mail_expunged (mailbox, uid, modseq)"
			       " SELECT $1, u, $3 FROM unnest($2::bigint[]) AS u ON CONFLICT DO NOTHING",
			       3, v, error_r);
	free(array);
	return rc;
}

static int import_tx(struct store_pg *store, void *ctx, char **error_r)
{
	const struct store_import *imp = ctx;
	int64_t mailbox;
	if (import_mailbox(store, imp, &mailbox, error_r) < 0 ||
	    import_counters(store, mailbox, imp, error_r) < 0)
		return -1;
	for (size_t i = 0; i < imp->count; i++) {
		const struct store_import_msg *m = &imp->msgs[i];
		const void *data;
		size_t len;
		if (imp->read(imp->ctx, i, &data, &len, error_r) < 0)
			return -1;
		struct store_pg_row row = {m->uid,
					   m->flags,
					   m->keywords,
					   m->internaldate,
					   m->modseq != 0 ? m->modseq : imp->highestmodseq,
					   m->emailid,
					   m->stable_id};
		if (store_pg_msg_insert(store->conn, mailbox, &row, data, len, error_r) < 0)
			return -1;
	}
	if (import_expunged(store, mailbox, imp, error_r) < 0)
		return -1;
	return store_pg_notify(store->conn, mailbox, error_r);
}

int store_pg_mailbox_import(struct store *base, const struct store_import *imp, char **error_r)
{
	return store_pg_tx(store_pg_cast(base), import_tx, (void *)imp, error_r);
}
