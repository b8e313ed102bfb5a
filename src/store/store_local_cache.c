/* The local backend's IMAP cache (the cache table of the index): ENVELOPE,
   BODYSTRUCTURE and PREVIEW text, their range reads, and the cached header blocks
   that SEARCH, SORT and THREAD read; plus the mailbox counters without a
   message scan. */
#include "store/store_local_private.h"
#include "lib/xalloc.h"
#include "mime/imap.h"

#include <stdbool.h>
#include <string.h>

int store_local_mailbox_counters(struct store_mailbox *box, uint32_t *uidnext_r, uint64_t *modseq_r,
				 char **error_r)
{
	return store_local_counters(store_local_mailbox_cast(box), uidnext_r, modseq_r, error_r);
}

/* The statements of each cached field (store_local_stmt() keys its cache
   by the literals' addresses). */
static const struct {
	const char *get, *set, *range;
} cache_sql[] = {
    [STORE_CACHE_ENVELOPE] = {"SELECT envelope FROM cache WHERE mailbox=?1 AND uid=?2",
			      "INSERT INTO cache(mailbox, uid, envelope) VALUES(?1, ?2, ?3)"
			      " ON CONFLICT(mailbox, uid) DO UPDATE SET envelope=excluded.envelope",
			      "SELECT uid, envelope FROM cache WHERE mailbox=?1 AND uid BETWEEN ?2 AND ?3"
			      " AND envelope IS NOT NULL ORDER BY uid"},
    [STORE_CACHE_BODYSTRUCTURE] =
	{"SELECT bodystructure FROM cache WHERE mailbox=?1 AND uid=?2",
	 "INSERT INTO cache(mailbox, uid, bodystructure) VALUES(?1, ?2, ?3)"
	 " ON CONFLICT(mailbox, uid) DO UPDATE SET bodystructure=excluded.bodystructure",
	 "SELECT uid, bodystructure FROM cache WHERE mailbox=?1 AND uid BETWEEN ?2 AND ?3"
	 " AND bodystructure IS NOT NULL ORDER BY uid"},
    [STORE_CACHE_PREVIEW] = {"SELECT preview FROM cache WHERE mailbox=?1 AND uid=?2",
			     "INSERT INTO cache(mailbox, uid, preview) VALUES(?1, ?2, ?3)"
			     " ON CONFLICT(mailbox, uid) DO UPDATE SET preview=excluded.preview",
			     "SELECT uid, preview FROM cache WHERE mailbox=?1 AND uid BETWEEN ?2 AND ?3"
			     " AND preview IS NOT NULL ORDER BY uid"},
};

int store_local_cache_get(struct store_mailbox *box, uint32_t uid, enum store_cache_field field,
			  char **text_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	sqlite3_stmt *st = store_local_stmt(mbox->store, cache_sql[field].get);
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
	sqlite3_stmt *st = store_local_stmt(mbox->store, cache_sql[field].set);
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
	sqlite3_stmt *st = store_local_stmt(mbox->store, cache_sql[field].range);
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

/* ---- the builder's version ---- */

/* The MIME_IMAP_VERSION that built the cached texts, -1 on error; 0 for an
   index from before it was kept. */
static int cache_version_read(struct store_local *store)
{
	sqlite3_stmt *st = store_local_stmt(store, "SELECT value FROM cache_meta WHERE name='imap'");
	int rc = sqlite3_step(st);
	int version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : rc == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	return version;
}

/* Drops the cached texts and records this version (in a transaction). */
static int cache_version_write(struct store_local *store)
{
	if (sqlite3_exec(store->db,
			 "UPDATE cache SET envelope=NULL, bodystructure=NULL"
			 " WHERE envelope IS NOT NULL OR bodystructure IS NOT NULL",
			 NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	sqlite3_stmt *st =
	    store_local_stmt(store, "INSERT OR REPLACE INTO cache_meta(name, value) VALUES('imap', ?1)");
	sqlite3_bind_int(st, 1, MIME_IMAP_VERSION);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ENVELOPE and BODYSTRUCTURE texts built by another version of the builder
   (an upgrade, or a downgrade) are dropped, once, in one transaction; they
   are built again as clients fetch them.  The raw header blocks stay. */
static int cache_version_check(struct store_local *store, char **error_r)
{
	if (store_local_exec(
		store, "CREATE TABLE IF NOT EXISTS cache_meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
		error_r) < 0)
		return -1;
	int version = cache_version_read(store);
	if (version == MIME_IMAP_VERSION)
		return 0;
	if (store_local_begin(store, error_r) < 0)
		return -1;
	version = cache_version_read(store); /* another process may have done it */
	if (version < 0 || (version != MIME_IMAP_VERSION && cache_version_write(store) < 0)) {
		store_local_db_error(store, "dropping the cached texts", error_r);
		store_local_rollback(store);
		return -1;
	}
	return store_local_commit(store, error_r);
}

/* ---- cached header blocks ---- */

/* Adds a column to the cache table unless it has it. */
static int cache_column(struct store_local *store, const char *exists_sql, const char *add_sql,
			char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(store, exists_sql);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return store_local_db_error(store, "reading the cache table", error_r);
	char *msg = NULL;
	if (sqlite3_exec(store->db, add_sql, NULL, NULL, &msg) != SQLITE_OK) {
		/* another process may have added it meanwhile */
		bool dup = msg != NULL && strstr(msg, "duplicate column") != NULL;
		if (!dup)
			*error_r = xasprintf("%s: %s (index %s)", add_sql, msg ? msg : "?", store->path);
		sqlite3_free(msg);
		return dup ? 0 : -1;
	}
	return 0;
}

/* The header and preview columns are added to the cache table on first
   use: rows are removed with the message (expunge, folder delete) by the
   store as they are, and the other fields' upserts leave them alone.
   Cached texts of another builder version are dropped here too. */
int store_local_cache_prepare(struct store *base, char **error_r)
{
	struct store_local *store = store_local_cast(base);
	/* Range reads of the cache (SEARCH over 10,000 headers) then read the
	   shared page cache in place instead of copying every page with
	   pread(); the mapping costs address space, not memory. */
	if (store_local_exec(store, "PRAGMA mmap_size=268435456", error_r) < 0)
		return -1;
	if (cache_version_check(store, error_r) < 0)
		return -1;
	if (cache_column(store, "SELECT 1 FROM pragma_table_info('cache') WHERE name='header'",
			 "ALTER TABLE cache ADD COLUMN header BLOB", error_r) < 0)
		return -1;
	return cache_column(store, "SELECT 1 FROM pragma_table_info('cache') WHERE name='preview'",
			    "ALTER TABLE cache ADD COLUMN preview TEXT", error_r);
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
