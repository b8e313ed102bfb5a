/* The local backend: changing flags and keywords (IMAP STORE, \Seen set by
   FETCH), and the Maildir file names that carry the flags.

   One call is one index transaction: the rows are read at once (one range
   scan when the UIDs are dense, as in STORE 1:*), and each message whose
   flags or keywords change gets its row updated with the call's one new
   modseq.  The index is where flags are read from; the letters of the
   Maildir info part (":2,FS", for other programs reading the Maildir and
   for rebuilding a lost index) follow later, in one batch: the mailbox
   row counts the files whose letters no longer match their flags, and
   store_local_mailbox_flush_flags() renames them (the IMAP server a moment
   after the changes, or after it opens a mailbox that has some waiting).
   So a burst of changes costs one rename per file at most, and none when
   it undoes itself (+FLAGS then -FLAGS).  The info column always names
   the file as it is on disk, so a sync tells our pending renames from
   another program's. */
#include "store/store_local_private.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A range scan reads every row between the first and last UID: worth it
   when at least this share of them is wanted. */
#define FLAGS_RANGE_DENSITY 4

struct flag_row {
	uint32_t uid;
	uint32_t flags;
	uint64_t modseq;
	const char *info, *keywords; /* in the call's pool */
};

struct flags_call {
	struct store_local_mailbox *mbox;
	enum store_flag_op op;
	uint32_t flags;
	const char *keywords; /* NULL: keywords stay (ADD, REMOVE) */
	uint64_t unchanged_since;
	uint64_t modseq; /* of this call's changes */
	struct pool *pool;
	struct flag_row *rows;
	size_t nrows;
	struct buf kw; /* reused for every message */
	uint32_t *failed;
	size_t nfailed;
	int changed;
	int64_t pending; /* change in the count of files to rename */
};

/* The keyword set of a row after the call: the row's own when the call
   names none. */
static const char *keywords_apply(struct flags_call *c, const char *old)
{
	return store_keywords_apply(&c->kw, c->op, old, c->keywords);
}

/* ---- reading the rows ---- */

static void row_take(struct flags_call *c, sqlite3_stmt *st)
{
	struct flag_row *row = &c->rows[c->nrows++];
	row->uid = (uint32_t)sqlite3_column_int64(st, 0);
	row->flags = (uint32_t)sqlite3_column_int64(st, 1);
	row->modseq = (uint64_t)sqlite3_column_int64(st, 2);
	row->info = pool_strdup(c->pool, (const char *)sqlite3_column_text(st, 3));
	row->keywords = pool_strdup(c->pool, (const char *)sqlite3_column_text(st, 4));
}

static bool ascending(const uint32_t *uids, size_t count)
{
	for (size_t i = 1; i < count; i++)
		if (uids[i] <= uids[i - 1])
			return false;
	return true;
}

/* One range scan, keeping the rows of uids (ascending). */
static int rows_read_range(struct flags_call *c, const uint32_t *uids, size_t count, char **error_r)
{
	struct store_local_mailbox *mbox = c->mbox;
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT uid, flags, modseq, info, keywords"
							 " FROM message WHERE mailbox=?1"
							 " AND uid BETWEEN ?2 AND ?3 AND expunging=0"
							 " ORDER BY uid");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, uids[0]);
	sqlite3_bind_int64(st, 3, uids[count - 1]);
	size_t next = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t uid = (uint32_t)sqlite3_column_int64(st, 0);
		while (next < count && uids[next] < uid)
			next++;
		if (next < count && uids[next] == uid)
			row_take(c, st);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_local_db_error(mbox->store, "reading flags", error_r);
	return 0;
}

static int rows_read_each(struct flags_call *c, const uint32_t *uids, size_t count, char **error_r)
{
	struct store_local_mailbox *mbox = c->mbox;
	for (size_t i = 0; i < count; i++) {
		sqlite3_stmt *st = store_local_stmt(
		    mbox->store, "SELECT uid, flags, modseq, info, keywords"
				 " FROM message WHERE mailbox=?1 AND uid=?2 AND expunging=0");
		sqlite3_bind_int64(st, 1, mbox->id);
		sqlite3_bind_int64(st, 2, uids[i]);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			row_take(c, st);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return store_local_db_error(mbox->store, "reading flags", error_r);
	}
	return 0;
}

static int rows_read(struct flags_call *c, const uint32_t *uids, size_t count, char **error_r)
{
	c->rows = pool_alloc(c->pool, (count + 1) * sizeof(*c->rows));
	if (count == 0)
		return 0;
	if (ascending(uids, count) &&
	    (uint64_t)(uids[count - 1] - uids[0]) < (uint64_t)count * FLAGS_RANGE_DENSITY)
		return rows_read_range(c, uids, count, error_r);
	return rows_read_each(c, uids, count, error_r);
}

/* ---- changing them ---- */

static int row_update(struct flags_call *c, const struct flag_row *row, uint32_t flags, const char *keywords,
		      char **error_r)
{
	struct store_local_mailbox *mbox = c->mbox;
	sqlite3_stmt *st = store_local_stmt(mbox->store, "UPDATE message SET flags=?1, keywords=?2, modseq=?3"
							 " WHERE mailbox=?4 AND uid=?5");
	sqlite3_bind_int64(st, 1, flags);
	sqlite3_bind_text(st, 2, keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)c->modseq);
	sqlite3_bind_int64(st, 4, mbox->id);
	sqlite3_bind_int64(st, 5, row->uid);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_local_db_error(mbox->store, "updating flags", error_r);
	return 0;
}

/* True when the file of a row with these flags is to be renamed. */
static bool letters_differ(uint32_t flags, const char *info)
{
	char want[STORE_LOCAL_INFO_MAX];
	store_local_info_format(want, flags, info);
	return strcmp(want, info) != 0;
}

/* Applies the call to one row: 0 (changed or unchanged) or -1. */
static int row_change(struct flags_call *c, const struct flag_row *row, char **error_r)
{
	if (c->unchanged_since != 0 && row->modseq > c->unchanged_since) {
		c->failed[c->nfailed++] = row->uid;
		return 0;
	}
	uint32_t flags = store_flags_apply(row->flags, c->op, c->flags);
	const char *keywords = keywords_apply(c, row->keywords);
	if (flags == row->flags && strcmp(keywords, row->keywords) == 0)
		return 0;
	if (row_update(c, row, flags, keywords, error_r) < 0)
		return -1;
	/* keywords have no letters: only flags can make a rename due */
	if (flags != row->flags)
		c->pending +=
		    (int64_t)letters_differ(flags, row->info) - letters_differ(row->flags, row->info);
	c->changed++;
	return 0;
}

/* Runs sql (one of the two below) on the mailbox's count of files
   waiting for a rename, with ?1 value. */
#define PENDING_ADD "UPDATE mailbox SET pending_renames = max(0, pending_renames + ?1) WHERE id=?2"
#define PENDING_SET "UPDATE mailbox SET pending_renames=?1 WHERE id=?2"
static int pending_write(struct store_local_mailbox *mbox, const char *sql, int64_t value, char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(mbox->store, sql);
	sqlite3_bind_int64(st, 1, value);
	sqlite3_bind_int64(st, 2, mbox->id);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_local_db_error(mbox->store, "counting renames", error_r);
	return 0;
}

/* One transaction over uids[0..count). */
static int flags_run(struct flags_call *c, const uint32_t *uids, size_t count, char **error_r)
{
	struct store_local *store = c->mbox->store;
	uint32_t uidnext;
	uint64_t highest;
	if (store_local_begin(store, error_r) < 0)
		return -1;
	int rc = store_local_counters(c->mbox, &uidnext, &highest, error_r);
	if (rc == 0)
		rc = rows_read(c, uids, count, error_r);
	c->modseq = highest + 1;
	for (size_t i = 0; i < c->nrows && rc == 0; i++)
		rc = row_change(c, &c->rows[i], error_r);
	if (rc == 0 && c->changed > 0)
		rc = store_local_set_counters(c->mbox, uidnext, c->modseq, error_r);
	if (rc == 0 && c->pending != 0)
		rc = pending_write(c->mbox, PENDING_ADD, c->pending, error_r);
	if (rc == 0)
		rc = store_local_commit(store, error_r);
	if (rc < 0)
		store_local_rollback(store);
	return rc;
}

int store_local_msg_set_flags(struct store_mailbox *box, const uint32_t *uids, size_t count,
			      enum store_flag_op op, uint32_t flags, const char *keywords,
			      uint64_t unchanged_since, uint32_t **failed_r, size_t *failed_count_r,
			      char **error_r)
{
	struct flags_call c = {
	    .mbox = store_local_mailbox_cast(box),
	    .op = op,
	    .flags = flags,
	    .keywords = keywords,
	    .unchanged_since = unchanged_since,
	    .pool = pool_create(64 * 1024),
	    .failed = xcalloc(count + 1, sizeof(uint32_t)),
	};
	int rc = flags_run(&c, uids, count, error_r);
	pool_destroy(&c.pool);
	buf_free(&c.kw);
	if (rc < 0) {
		free(c.failed);
		return -1;
	}
	if (failed_r != NULL) {
		*failed_r = c.failed;
		*failed_count_r = c.nfailed;
	} else {
		free(c.failed);
	}
	return c.changed;
}

/* ---- the file names ---- */

int store_local_mailbox_flags_pending(struct store_mailbox *box, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT pending_renames FROM mailbox WHERE id=?1");
	sqlite3_bind_int64(st, 1, mbox->id);
	int rc = sqlite3_step(st);
	int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_local_db_error(mbox->store, "reading a mailbox", error_r);
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

struct flush_row {
	uint32_t uid;
	const char *base, *info;
	char want[STORE_LOCAL_INFO_MAX];
};

/* The rows whose file is to be renamed. */
static int flush_rows(struct store_local_mailbox *mbox, struct pool *pool, struct flush_row **rows_r,
		      size_t *count_r, char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT uid, flags, base, info FROM message"
							 " WHERE mailbox=?1 AND expunging=0");
	sqlite3_bind_int64(st, 1, mbox->id);
	size_t count = 0, cap = 64;
	struct flush_row *rows = xmalloc(cap * sizeof(*rows));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *info = (const char *)sqlite3_column_text(st, 3);
		struct flush_row *r = &rows[count];
		store_local_info_format(r->want, (uint32_t)sqlite3_column_int64(st, 1), info);
		if (strcmp(r->want, info) == 0)
			continue;
		r->uid = (uint32_t)sqlite3_column_int64(st, 0);
		r->base = pool_strdup(pool, (const char *)sqlite3_column_text(st, 2));
		r->info = pool_strdup(pool, info);
		if (++count == cap) {
			cap *= 2;
			rows = xreallocarray(rows, cap, sizeof(*rows));
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(rows);
		return store_local_db_error(mbox->store, "reading flags", error_r);
	}
	*rows_r = rows;
	*count_r = count;
	return 0;
}

/* Renames cur/BASE+info to cur/BASE+want and records the new name.  0
   (done, or the file is gone: a sync finds out where), -1 error. */
static int flush_one(struct store_local_mailbox *mbox, const struct flush_row *r, struct buf *from,
		     struct buf *to, size_t *left_r, char **error_r)
{
	buf_reset(from);
	buf_append_str(from, r->base);
	buf_append_str(from, r->info);
	buf_reset(to);
	buf_append_str(to, r->base);
	buf_append_str(to, r->want);
	int rc;
	if (mbox->cur_fd >= 0) {
		rc = renameat(mbox->cur_fd, from->data, mbox->cur_fd, to->data);
	} else {
		char *a = xasprintf("%s/cur/%s", mbox->dir, from->data),
		     *b = xasprintf("%s/cur/%s", mbox->dir, to->data);
		rc = rename(a, b);
		int err = errno;
		free(a);
		free(b);
		errno = err;
	}
	if (rc < 0 && errno == ENOENT) {
		(*left_r)++;
		return 0;
	}
	if (rc < 0) {
		*error_r = xasprintf("rename(%s/cur/%s, ...%s) failed: %s", mbox->dir, from->data, r->want,
				     strerror(errno));
		return -1;
	}
	sqlite3_stmt *st =
	    store_local_stmt(mbox->store, "UPDATE message SET info=?1 WHERE mailbox=?2 AND uid=?3");
	sqlite3_bind_text(st, 1, r->want, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, mbox->id);
	sqlite3_bind_int64(st, 3, r->uid);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_local_db_error(mbox->store, "recording a file name", error_r);
	return 0;
}

int store_local_mailbox_flush_flags(struct store_mailbox *box, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	int pending = store_local_mailbox_flags_pending(box, error_r);
	if (pending <= 0)
		return pending;
	if (store_local_begin(mbox->store, error_r) < 0)
		return -1;
	struct pool *pool = pool_create(64 * 1024);
	struct flush_row *rows = NULL;
	size_t count = 0, left = 0;
	struct buf from = BUF_INIT, to = BUF_INIT;
	int rc = flush_rows(mbox, pool, &rows, &count, error_r);
	for (size_t i = 0; i < count && rc == 0; i++)
		rc = flush_one(mbox, &rows[i], &from, &to, &left, error_r);
	/* files gone meanwhile stay counted until a sync has seen them */
	if (rc == 0)
		rc = pending_write(mbox, PENDING_SET, (int64_t)left, error_r);
	if (rc == 0)
		rc = store_local_commit(mbox->store, error_r);
	if (rc < 0)
		store_local_rollback(mbox->store);
	free(rows);
	buf_free(&from);
	buf_free(&to);
	pool_destroy(&pool);
	return rc < 0 ? -1 : (int)(count - left);
}
