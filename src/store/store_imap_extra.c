/* Additions to the store interface for the IMAP server: counters without a
   message scan, a range read of the ENVELOPE/BODYSTRUCTURE cache, and the
   cached header blocks that SEARCH, SORT and THREAD read. */
#include "store/store_imap_extra.h"
#include "store/store_private.h"
#include "lib/xalloc.h"

#include <stdbool.h>
#include <string.h>

uint32_t store_mailbox_uidvalidity(const struct store_mailbox *mbox)
{
	return mbox->uidvalidity;
}

int store_mailbox_get_counters(struct store_mailbox *mbox, uint32_t *uidnext_r, uint64_t *modseq_r,
			       char **error_r)
{
	return store_mailbox_counters(mbox, uidnext_r, modseq_r, error_r);
}

int store_cache_get_range(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
			  enum store_cache_field field,
			  int (*cb)(void *ctx, uint32_t uid, const char *text, size_t len), void *ctx,
			  char **error_r)
{
	sqlite3_stmt *st = store_stmt(mbox->store, field == STORE_CACHE_ENVELOPE
		? "SELECT uid, envelope FROM cache WHERE mailbox=?1 AND uid BETWEEN ?2 AND ?3"
		  " AND envelope IS NOT NULL ORDER BY uid"
		: "SELECT uid, bodystructure FROM cache WHERE mailbox=?1 AND uid BETWEEN ?2 AND ?3"
		  " AND bodystructure IS NOT NULL ORDER BY uid");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, lo);
	sqlite3_bind_int64(st, 3, hi);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		if (cb(ctx, (uint32_t)sqlite3_column_int64(st, 0), text, len) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_db_error(mbox->store, "reading the cache", error_r);
	return 0;
}

int store_cache_begin(struct store_mailbox *mbox, char **error_r)
{
	return store_begin(mbox->store, error_r);
}

int store_cache_commit(struct store_mailbox *mbox, char **error_r)
{
	return store_commit(mbox->store, error_r);
}

/* ---- cached header blocks ---- */

/* The header column is added to the cache table on first use: rows are
   removed with the message (expunge, folder delete) by the store as they
   are, and the envelope/bodystructure upserts leave it alone. */
int store_cache_prepare(struct store *store, char **error_r)
{
	/* Range reads of the cache (SEARCH over 10,000 headers) then read the
	   shared page cache in place instead of copying every page with
	   pread(); the mapping costs address space, not memory. */
	if (store_exec(store, "PRAGMA mmap_size=268435456", error_r) < 0)
		return -1;
	sqlite3_stmt *st = store_stmt(store, "SELECT 1 FROM pragma_table_info('cache') WHERE name='header'");
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return store_db_error(store, "reading the cache table", error_r);
	char *msg = NULL;
	if (sqlite3_exec(store->db, "ALTER TABLE cache ADD COLUMN header BLOB", NULL, NULL, &msg) != SQLITE_OK) {
		/* another process may have added it meanwhile */
		bool dup = msg != NULL && strstr(msg, "duplicate column") != NULL;
		if (!dup)
			*error_r = xasprintf("adding the header cache: %s (index %s)", msg ? msg : "?",
					     store->path);
		sqlite3_free(msg);
		return dup ? 0 : -1;
	}
	return 0;
}

int store_cache_set_header(struct store_mailbox *mbox, uint32_t uid, const void *data, size_t len,
			   char **error_r)
{
	sqlite3_stmt *st = store_stmt(mbox->store,
		"INSERT INTO cache(mailbox, uid, header) VALUES(?1, ?2, ?3)"
		" ON CONFLICT(mailbox, uid) DO UPDATE SET header=excluded.header");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_db_error(mbox->store, "writing the header cache", error_r);
	return 0;
}

int store_cache_get_header_range(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
				 int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
				 void *ctx, char **error_r)
{
	sqlite3_stmt *st = store_stmt(mbox->store,
		"SELECT uid, header FROM cache WHERE mailbox=?1 AND uid BETWEEN ?2 AND ?3"
		" AND header IS NOT NULL ORDER BY uid");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, lo);
	sqlite3_bind_int64(st, 3, hi);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *data = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		if (cb(ctx, (uint32_t)sqlite3_column_int64(st, 0), data != NULL ? data : "", len) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_db_error(mbox->store, "reading the header cache", error_r);
	return 0;
}
