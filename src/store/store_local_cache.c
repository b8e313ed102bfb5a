/* The local backend's IMAP cache (the cache table of the index): ENVELOPE
   and BODYSTRUCTURE text, their range reads, and the cached header blocks
   that SEARCH, SORT and THREAD read; plus the mailbox counters without a
   message scan. */
#include "store/store_local_private.h"
#include "lib/xalloc.h"

#include <stdbool.h>
#include <string.h>

int store_local_mailbox_counters(struct store_mailbox *box, uint32_t *uidnext_r, uint64_t *modseq_r,
				 char **error_r)
{
	return store_local_counters(store_local_mailbox_cast(box), uidnext_r, modseq_r, error_r);
}

int store_local_cache_get(struct store_mailbox *box, uint32_t uid, enum store_cache_field field,
			  char **text_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	sqlite3_stmt *st = store_local_stmt(
	    mbox->store, field == STORE_CACHE_ENVELOPE
			     ? "SELECT envelope FROM cache WHERE mailbox=?1 AND uid=?2"
			     : "SELECT bodystructure FROM cache WHERE mailbox=?1 AND uid=?2");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	int found = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*text_r = xstrdup((const char *)sqlite3_column_text(st, 0));
		found = 1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_local_db_error(mbox->store, "reading the cache", error_r);
	return found;
}

int store_local_cache_set(struct store_mailbox *box, uint32_t uid, enum store_cache_field field,
			  const char *text, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	sqlite3_stmt *st = store_local_stmt(
	    mbox->store,
	    field == STORE_CACHE_ENVELOPE
		? "INSERT INTO cache(mailbox, uid, envelope) VALUES(?1, ?2, ?3)"
		  " ON CONFLICT(mailbox, uid) DO UPDATE SET envelope=excluded.envelope"
		: "INSERT INTO cache(mailbox, uid, bodystructure) VALUES(?1, ?2, ?3)"
		  " ON CONFLICT(mailbox, uid) DO UPDATE SET bodystructure=excluded.bodystructure");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(mbox->store, "writing the cache", error_r);
	return 0;
}

int store_local_cache_get_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
				enum store_cache_field field,
				int (*cb)(void *ctx, uint32_t uid, const char *text, size_t len), void *ctx,
				char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	sqlite3_stmt *st = store_local_stmt(
	    mbox->store,
	    field == STORE_CACHE_ENVELOPE
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
		return store_local_db_error(mbox->store, "reading the cache", error_r);
	return 0;
}

int store_local_cache_begin(struct store_mailbox *box, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	return store_local_begin(mbox->store, error_r);
}

int store_local_cache_commit(struct store_mailbox *box, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	return store_local_commit(mbox->store, error_r);
}

/* ---- cached header blocks ---- */

/* The header column is added to the cache table on first use: rows are
   removed with the message (expunge, folder delete) by the store as they
   are, and the envelope/bodystructure upserts leave it alone. */
int store_local_cache_prepare(struct store *base, char **error_r)
{
	struct store_local *store = store_local_cast(base);
	/* Range reads of the cache (SEARCH over 10,000 headers) then read the
	   shared page cache in place instead of copying every page with
	   pread(); the mapping costs address space, not memory. */
	if (store_local_exec(store, "PRAGMA mmap_size=268435456", error_r) < 0)
		return -1;
	sqlite3_stmt *st =
	    store_local_stmt(store, "SELECT 1 FROM pragma_table_info('cache') WHERE name='header'");
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return store_local_db_error(store, "reading the cache table", error_r);
	char *msg = NULL;
	if (sqlite3_exec(store->db, "ALTER TABLE cache ADD COLUMN header BLOB", NULL, NULL, &msg) !=
	    SQLITE_OK) {
		/* another process may have added it meanwhile */
		bool dup = msg != NULL && strstr(msg, "duplicate column") != NULL;
		if (!dup)
			*error_r =
			    xasprintf("adding the header cache: %s (index %s)", msg ? msg : "?", store->path);
		sqlite3_free(msg);
		return dup ? 0 : -1;
	}
	return 0;
}

/* Writes one blob: sql binds ?1 the mailbox, ?2 the UID, ?3 the blob. */
static int blob_write(struct store_local_mailbox *mbox, const char *sql, uint32_t uid, const void *data,
		      size_t len, const char *what, char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(mbox->store, sql);
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_local_db_error(mbox->store, what, error_r);
	return 0;
}

/* Calls cb with each row (UID, blob) of sql, which binds ?1 the mailbox
   and ?2..?3 the UID range, until cb returns non-zero. */
static int blob_range(struct store_local_mailbox *mbox, const char *sql, uint32_t lo, uint32_t hi,
		      int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len), void *ctx,
		      const char *what, char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(mbox->store, sql);
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
		return store_local_db_error(mbox->store, what, error_r);
	return 0;
}

int store_local_cache_set_header(struct store_mailbox *box, uint32_t uid, const void *data, size_t len,
				 char **error_r)
{
	return blob_write(store_local_mailbox_cast(box),
			  "INSERT INTO cache(mailbox, uid, header) VALUES(?1, ?2, ?3)"
			  " ON CONFLICT(mailbox, uid) DO UPDATE SET header=excluded.header",
			  uid, data, len, "writing the header cache", error_r);
}

int store_local_cache_get_header_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
				       int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
				       void *ctx, char **error_r)
{
	return blob_range(store_local_mailbox_cast(box),
			  "SELECT uid, header FROM cache WHERE mailbox=?1 AND uid BETWEEN ?2 AND ?3"
			  " AND header IS NOT NULL ORDER BY uid",
			  lo, hi, cb, ctx, "reading the header cache", error_r);
}

/* ---- sort keys ---- */

/* Their own table (store_local_index.c), not a cache column: a range read
   of 10,000 small rows then reads a few hundred pages, not the header
   blocks' overflow chains that sit before a column added last. */
int store_local_cache_set_sortkey(struct store_mailbox *box, uint32_t uid, const void *data, size_t len,
				  char **error_r)
{
	return blob_write(store_local_mailbox_cast(box),
			  "INSERT OR REPLACE INTO sortkey(mailbox, uid, keys) VALUES(?1, ?2, ?3)", uid, data,
			  len, "writing sort keys", error_r);
}

int store_local_cache_get_sortkey_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
					int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
					void *ctx, char **error_r)
{
	return blob_range(
	    store_local_mailbox_cast(box),
	    "SELECT uid, keys FROM sortkey WHERE mailbox=?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid", lo, hi,
	    cb, ctx, "reading sort keys", error_r);
}
