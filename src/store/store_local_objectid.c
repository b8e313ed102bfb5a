/* The local backend's object ids (RFC 8474).  A mailbox's MAILBOXID is a
   random id kept in its index row: a rename updates the row's name and
   keeps it; a mailbox deleted and created again gets a new row and a new
   id.  A message's EMAILID is derived from its file's base name, which
   the file keeps for life, unless its row names one: a copy (COPY, MOVE,
   RENAME of INBOX) is a new file and keeps the id of its source in the
   row.  Both survive restarts; a lost index (new UIDVALIDITY) gives new
   MAILBOXIDs and the copies' EMAILIDs their own. */
#include "store/store_local_private.h"
#include "lib/hash.h"
#include "lib/xalloc.h"

#include <stdbool.h>
#include <string.h>

/* The columns are added to an index made before them, in one
   transaction (another process may be doing the same). */
static int objectid_columns(struct store_local *store, bool *present_r, char **error_r)
{
	sqlite3_stmt *st =
	    store_local_stmt(store, "SELECT 1 FROM pragma_table_info('message') WHERE name='emailid'");
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_local_db_error(store, "reading the message table", error_r);
	*present_r = rc == SQLITE_ROW;
	return 0;
}

int store_local_objectid_upgrade(struct store_local *store, char **error_r)
{
	bool present = false;
	if (objectid_columns(store, &present, error_r) < 0)
		return -1;
	if (present)
		return 0;
	if (store_local_begin(store, error_r) < 0)
		return -1;
	int rc = objectid_columns(store, &present, error_r);
	if (rc == 0 && !present)
		rc = store_local_exec(store,
				      "ALTER TABLE mailbox ADD COLUMN mailboxid TEXT;"
				      "ALTER TABLE message ADD COLUMN emailid TEXT;",
				      error_r);
	if (rc == 0)
		return store_local_commit(store, error_r);
	store_local_rollback(store);
	return -1;
}

int store_local_mailbox_objectid_read(struct store_local *store, int64_t id, char **objectid_r,
				      char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(store, "SELECT mailboxid FROM mailbox WHERE id=?1");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*objectid_r = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_local_db_error(store, "reading a mailbox id", error_r);
	return 0;
}

int store_local_mailbox_objectid(struct store_local *store, int64_t id, char **objectid_r, char **error_r)
{
	*objectid_r = NULL;
	if (store_local_mailbox_objectid_read(store, id, objectid_r, error_r) < 0 || *objectid_r != NULL)
		return *objectid_r != NULL ? 0 : -1;
	/* A row without one (new, or from before the column): 96 random
	   bits, unless another handle was first. */
	sqlite3_stmt *st =
	    store_local_stmt(store, "UPDATE mailbox SET mailboxid='F'||lower(hex(randomblob(12)))"
				    " WHERE id=?1 AND mailboxid IS NULL");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_local_db_error(store, "setting a mailbox id", error_r);
	if (store_local_mailbox_objectid_read(store, id, objectid_r, error_r) < 0)
		return -1;
	if (*objectid_r == NULL)
		return store_local_db_error(store, "a mailbox id vanished", error_r);
	return 0;
}

void store_local_emailid(const char *base, const char *emailid, char out[STORE_OBJECTID_MAX + 1])
{
	if (emailid != NULL && emailid[0] != '\0' && strlen(emailid) <= STORE_OBJECTID_MAX) {
		strcpy(out, emailid);
		return;
	}
	/* 96 bits of the base name's hash: unique as the base name is */
	hash_digest_id(out, 'M', base, strlen(base), 12);
}

int store_local_msg_emailids(struct store_mailbox *box, uint32_t lo, uint32_t hi,
			     int (*cb)(void *ctx, uint32_t uid, const char *emailid), void *ctx,
			     char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT uid, base, emailid FROM message"
							 " WHERE mailbox=?1 AND uid BETWEEN ?2 AND ?3"
							 " AND expunging=0 ORDER BY uid");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, lo);
	sqlite3_bind_int64(st, 3, hi);
	int rc;
	char id[STORE_OBJECTID_MAX + 1];
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_local_emailid((const char *)sqlite3_column_text(st, 1),
				    (const char *)sqlite3_column_text(st, 2), id);
		if (cb(ctx, (uint32_t)sqlite3_column_int64(st, 0), id) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_local_db_error(mbox->store, "reading email ids", error_r);
	return 0;
}
