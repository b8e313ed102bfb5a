/* The local backend: changing flags and keywords (IMAP STORE, \Seen set by
   FETCH).

   One call is one index transaction: the rows are read at once (one range
   scan when the UIDs are dense, as in STORE 1:*), then each message whose
   flags or keywords change gets its row updated with the call's one new
   modseq, and its file renamed when the letters of its Maildir info part
   change (keywords and letters that only differ in what we keep from the
   old name need no rename).  The renames use the mailbox's cur/ directory
   handle and names built in two reused buffers: no path walk, no stat, no
   allocation per message. */
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
	const char *base, *info, *keywords; /* in the call's pool */
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
	struct buf from, to, kw; /* reused for every message */
	uint32_t *failed, *missing;
	size_t nfailed, nmissing;
	int changed;
};

static bool keyword_in(const char *list, const char *kw, size_t kwlen)
{
	const char *p = list;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == kwlen && n > 0 && strncasecmp(p, kw, n) == 0)
			return true;
		p += n;
	}
	return false;
}

/* Appends the words of list to b that b does not have yet (and, with
   drop, that are not in drop either). */
static void keywords_merge(struct buf *b, const char *list, const char *drop)
{
	for (const char *p = list; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n > 0 && (drop == NULL || !keyword_in(drop, p, n)) && !keyword_in(buf_cstr(b), p, n)) {
			if (b->len)
				buf_append_char(b, ' ');
			buf_append(b, p, n);
		}
		p += n;
	}
}

/* The keyword set of a row after the call (space-separated,
   case-insensitive names): the row's own when the call names none. */
static const char *keywords_apply(struct flags_call *c, const char *old)
{
	if (c->keywords == NULL && c->op != STORE_FLAGS_REPLACE)
		return old;
	const char *kws = c->keywords != NULL ? c->keywords : "";
	buf_reset(&c->kw);
	keywords_merge(&c->kw, c->op == STORE_FLAGS_REPLACE ? kws : old,
		       c->op == STORE_FLAGS_REMOVE ? kws : NULL);
	if (c->op == STORE_FLAGS_ADD)
		keywords_merge(&c->kw, kws, NULL);
	return buf_cstr(&c->kw);
}

static uint32_t flags_apply(uint32_t old, enum store_flag_op op, uint32_t flags)
{
	switch (op) {
	case STORE_FLAGS_REPLACE:
		return flags & STORE_FLAGS_ALL;
	case STORE_FLAGS_ADD:
		return (old | flags) & STORE_FLAGS_ALL;
	case STORE_FLAGS_REMOVE:
		return old & ~flags & STORE_FLAGS_ALL;
	}
	return old;
}

/* ---- reading the rows ---- */

static void row_take(struct flags_call *c, sqlite3_stmt *st)
{
	struct flag_row *row = &c->rows[c->nrows++];
	row->uid = (uint32_t)sqlite3_column_int64(st, 0);
	row->flags = (uint32_t)sqlite3_column_int64(st, 1);
	row->modseq = (uint64_t)sqlite3_column_int64(st, 2);
	row->base = pool_strdup(c->pool, (const char *)sqlite3_column_text(st, 3));
	row->info = pool_strdup(c->pool, (const char *)sqlite3_column_text(st, 4));
	row->keywords = pool_strdup(c->pool, (const char *)sqlite3_column_text(st, 5));
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
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT uid, flags, modseq, base, info, keywords"
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
		    mbox->store, "SELECT uid, flags, modseq, base, info, keywords"
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

/* Renames cur/BASE+old_info to cur/BASE+info.  1 done, 0 the file is gone
   (renamed or expunged by another program), -1 error. */
static int file_rename(struct flags_call *c, const struct flag_row *row, const char *info, char **error_r)
{
	struct store_local_mailbox *mbox = c->mbox;
	buf_reset(&c->from);
	buf_append_str(&c->from, row->base);
	buf_append_str(&c->from, row->info);
	buf_reset(&c->to);
	buf_append_str(&c->to, row->base);
	buf_append_str(&c->to, info);
	int rc;
	if (mbox->cur_fd >= 0) {
		rc = renameat(mbox->cur_fd, c->from.data, mbox->cur_fd, c->to.data);
	} else {
		char *from = xasprintf("%s/cur/%s", mbox->dir, c->from.data);
		char *to = xasprintf("%s/cur/%s", mbox->dir, c->to.data);
		rc = rename(from, to);
		int err = errno;
		free(from);
		free(to);
		errno = err;
	}
	if (rc == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	*error_r =
	    xasprintf("rename(%s/cur/%s, ...%s) failed: %s", mbox->dir, c->from.data, info, strerror(errno));
	return -1;
}

static int row_update(struct flags_call *c, const struct flag_row *row, uint32_t flags, const char *info,
		      const char *keywords, char **error_r)
{
	struct store_local_mailbox *mbox = c->mbox;
	sqlite3_stmt *st = store_local_stmt(mbox->store, "UPDATE message SET flags=?1, info=?2, keywords=?3,"
							 " modseq=?4 WHERE mailbox=?5 AND uid=?6");
	sqlite3_bind_int64(st, 1, flags);
	sqlite3_bind_text(st, 2, info, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)c->modseq);
	sqlite3_bind_int64(st, 5, mbox->id);
	sqlite3_bind_int64(st, 6, row->uid);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_local_db_error(mbox->store, "updating flags", error_r);
	return 0;
}

/* Applies the call to one row: 0 (changed, unchanged, or its file gone:
   then in c->missing) or -1. */
static int row_change(struct flags_call *c, const struct flag_row *row, char **error_r)
{
	if (c->unchanged_since != 0 && row->modseq > c->unchanged_since) {
		c->failed[c->nfailed++] = row->uid;
		return 0;
	}
	uint32_t flags = flags_apply(row->flags, c->op, c->flags);
	const char *keywords = keywords_apply(c, row->keywords);
	char info[STORE_LOCAL_INFO_MAX];
	store_local_info_format(info, flags, row->info);
	bool same_info = strcmp(info, row->info) == 0;
	if (flags == row->flags && same_info && strcmp(keywords, row->keywords) == 0)
		return 0;
	if (!same_info) {
		int r = file_rename(c, row, info, error_r);
		if (r <= 0) {
			if (r == 0)
				c->missing[c->nmissing++] = row->uid;
			return r;
		}
	}
	if (row_update(c, row, flags, info, keywords, error_r) < 0)
		return -1;
	c->changed++;
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
	int changed_before = c->changed;
	for (size_t i = 0; i < c->nrows && rc == 0; i++)
		rc = row_change(c, &c->rows[i], error_r);
	if (rc == 0 && c->changed > changed_before)
		rc = store_local_set_counters(c->mbox, uidnext, c->modseq, error_r);
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
	    .missing = xcalloc(count + 1, sizeof(uint32_t)),
	};
	int rc = flags_run(&c, uids, count, error_r);
	if (rc == 0 && c.nmissing > 0) {
		/* Files renamed or removed by another program meanwhile: a sync
		   finds their new names (and takes over their flags, with a new
		   modseq) or drops their rows; then the call is made once more
		   on those messages. */
		uint32_t *again = c.missing;
		size_t nagain = c.nmissing;
		c.missing = xcalloc(nagain + 1, sizeof(uint32_t));
		c.nmissing = 0;
		pool_clear(c.pool);
		c.nrows = 0;
		rc = store_local_mailbox_sync(box, true, error_r);
		if (rc == 0)
			rc = flags_run(&c, again, nagain, error_r);
		free(again);
	}
	pool_destroy(&c.pool);
	buf_free(&c.from);
	buf_free(&c.to);
	buf_free(&c.kw);
	free(c.missing);
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
