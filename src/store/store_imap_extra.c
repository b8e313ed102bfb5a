/* Additions to the store interface for the IMAP server: counters without a
   message scan and a range read of the ENVELOPE/BODYSTRUCTURE cache. */
#include "store/store_imap_extra.h"
#include "store/store_private.h"

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
