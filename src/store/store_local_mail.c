/* The local backend: reading the index and changing messages (lists,
   status, opening files, flags, expunge). */
#include "store/store_local_private.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MSG_COLUMNS "uid, flags, size, psize, modseq, internaldate, keywords, base, info"

int store_local_counters(struct store_local_mailbox *mbox, uint32_t *uidnext_r, uint64_t *modseq_r,
			 char **error_r)
{
	sqlite3_stmt *st =
	    store_local_stmt(mbox->store, "SELECT uidnext, highestmodseq FROM mailbox WHERE id=?1");
	sqlite3_bind_int64(st, 1, mbox->id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_local_db_error(mbox->store, "reading a mailbox", error_r);
	}
	*uidnext_r = (uint32_t)sqlite3_column_int64(st, 0);
	*modseq_r = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	return 0;
}

int store_local_set_counters(struct store_local_mailbox *mbox, uint32_t uidnext, uint64_t modseq,
			     char **error_r)
{
	sqlite3_stmt *st =
	    store_local_stmt(mbox->store, "UPDATE mailbox SET uidnext=?1, highestmodseq=?2 WHERE id=?3");
	sqlite3_bind_int64(st, 1, uidnext);
	sqlite3_bind_int64(st, 2, (int64_t)modseq);
	sqlite3_bind_int64(st, 3, mbox->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(mbox->store, "updating a mailbox", error_r);
	return 0;
}

static int read_list(struct store_local_mailbox *mbox, sqlite3_stmt *st, struct store_msg_list *list_r,
		     char **error_r)
{
	memset(list_r, 0, sizeof(*list_r));
	list_r->pool = pool_create(64 * 1024);
	size_t cap = 64;
	list_r->msgs = xmalloc(cap * sizeof(*list_r->msgs));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (list_r->count == cap) {
			cap *= 2;
			list_r->msgs = xreallocarray(list_r->msgs, cap, sizeof(*list_r->msgs));
		}
		struct store_msg *m = &list_r->msgs[list_r->count++];
		m->uid = (uint32_t)sqlite3_column_int64(st, 0);
		m->flags = (uint32_t)sqlite3_column_int64(st, 1);
		m->size = (uint64_t)sqlite3_column_int64(st, 2);
		m->bare_lf = (uint64_t)sqlite3_column_int64(st, 3) != m->size;
		m->modseq = (uint64_t)sqlite3_column_int64(st, 4);
		m->internaldate = sqlite3_column_int64(st, 5);
		const char *kw = (const char *)sqlite3_column_text(st, 6);
		m->keywords = kw[0] ? pool_strdup(list_r->pool, kw) : "";
		int blen = sqlite3_column_bytes(st, 7);
		const char *base = (const char *)sqlite3_column_text(st, 7);
		int ilen = sqlite3_column_bytes(st, 8);
		const char *info = (const char *)sqlite3_column_text(st, 8);
		char *loc = pool_alloc(list_r->pool, (size_t)blen + (size_t)ilen + 1);
		memcpy(loc, base, (size_t)blen);
		memcpy(loc + blen, info, (size_t)ilen);
		m->locator = loc;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_msg_list_free(list_r);
		return store_local_db_error(mbox->store, "listing messages", error_r);
	}
	return 0;
}

int store_local_mailbox_list(struct store_mailbox *box, struct store_msg_list *list_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT " MSG_COLUMNS " FROM message"
							 " WHERE mailbox=?1 AND expunging=0 ORDER BY uid");
	sqlite3_bind_int64(st, 1, mbox->id);
	return read_list(mbox, st, list_r, error_r);
}

int store_local_mailbox_changed_since(struct store_mailbox *box, uint64_t modseq,
				      struct store_msg_list *list_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT " MSG_COLUMNS " FROM message"
							 " WHERE mailbox=?1 AND modseq>?2 AND expunging=0"
							 " ORDER BY uid");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, (int64_t)modseq);
	return read_list(mbox, st, list_r, error_r);
}

int store_local_mailbox_expunged_since(struct store_mailbox *box, uint64_t modseq, uint32_t **uids_r,
				       size_t *count_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT uid FROM expunged WHERE mailbox=?1"
							 " AND modseq>?2 ORDER BY uid");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, (int64_t)modseq);
	size_t count = 0, cap = 16;
	uint32_t *uids = xmalloc(cap * sizeof(*uids));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap *= 2;
			uids = xreallocarray(uids, cap, sizeof(*uids));
		}
		uids[count++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(uids);
		return store_local_db_error(mbox->store, "listing expunges", error_r);
	}
	*uids_r = uids;
	*count_r = count;
	return 0;
}

int store_local_mailbox_take_recent(struct store_mailbox *box, uint32_t *first_recent_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	struct store_local *store = mbox->store;
	/* nothing recent (the usual case): no write transaction */
	sqlite3_stmt *st = store_local_stmt(store, "SELECT first_recent, uidnext FROM mailbox WHERE id=?1");
	sqlite3_bind_int64(st, 1, mbox->id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) >= sqlite3_column_int64(st, 1)) {
		*first_recent_r = (uint32_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (store_local_begin(store, error_r) < 0)
		return -1;
	st = store_local_stmt(store, "SELECT first_recent FROM mailbox WHERE id=?1");
	sqlite3_bind_int64(st, 1, mbox->id);
	int rc = sqlite3_step(st);
	*first_recent_r = rc == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(st, 0) : 1;
	sqlite3_reset(st);
	st = store_local_stmt(store, "UPDATE mailbox SET first_recent=uidnext WHERE id=?1");
	sqlite3_bind_int64(st, 1, mbox->id);
	if (rc != SQLITE_ROW || sqlite3_step(st) != SQLITE_DONE) {
		store_local_db_error(store, "taking recent messages", error_r);
		store_local_rollback(store);
		return -1;
	}
	return store_local_commit(store, error_r);
}

int store_local_mailbox_status(struct store_mailbox *box, struct store_status *status_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	memset(status_r, 0, sizeof(*status_r));
	sqlite3_stmt *st = store_local_stmt(
	    mbox->store, "SELECT m.uidvalidity, m.uidnext, m.highestmodseq, m.first_recent,"
			 " count(g.uid), coalesce(sum(g.size), 0),"
			 " coalesce(sum((g.flags & 1) = 0), 0), coalesce(sum(g.uid >= m.first_recent), 0),"
			 " coalesce(sum((g.flags & 8) != 0), 0)"
			 " FROM mailbox m LEFT JOIN message g ON g.mailbox = m.id AND g.expunging = 0"
			 " WHERE m.id=?1");
	sqlite3_bind_int64(st, 1, mbox->id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_local_db_error(mbox->store, "reading mailbox status", error_r);
	}
	status_r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
	status_r->uidnext = (uint32_t)sqlite3_column_int64(st, 1);
	status_r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 2);
	status_r->messages = (uint32_t)sqlite3_column_int64(st, 4);
	status_r->size = (uint64_t)sqlite3_column_int64(st, 5);
	status_r->unseen = (uint32_t)sqlite3_column_int64(st, 6);
	status_r->recent = (uint32_t)sqlite3_column_int64(st, 7);
	status_r->deleted = (uint32_t)sqlite3_column_int64(st, 8);
	sqlite3_reset(st);
	return 0;
}

/* ---- message files ---- */

static int row_locator(struct store_local_mailbox *mbox, uint32_t uid, char **name_r, char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT base || info FROM message"
							 " WHERE mailbox=?1 AND uid=?2 AND expunging=0");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*name_r = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_local_db_error(mbox->store, "finding a message", error_r);
}

static int open_in_cur(struct store_local_mailbox *mbox, const char *name)
{
	if (mbox->cur_fd >= 0)
		return openat(mbox->cur_fd, name, O_RDONLY | O_CLOEXEC);
	char *path = xasprintf("%s/cur/%s", mbox->dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	return fd;
}

int store_local_msg_open_uid(struct store_mailbox *box, uint32_t uid, int *fd_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	char *name = NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc = row_locator(mbox, uid, &name, error_r);
		if (rc <= 0)
			return rc;
		int fd = open_in_cur(mbox, name);
		free(name);
		if (fd >= 0) {
			*fd_r = fd;
			return 1;
		}
		if (errno != ENOENT) {
			*error_r = xasprintf("open(%s/cur/...) failed: %s", mbox->dir, strerror(errno));
			return -1;
		}
		/* Renamed or deleted by someone else: learn which, then retry. */
		if (store_local_mailbox_sync(box, true, error_r) < 0)
			return -1;
	}
	return 0;
}

int store_local_msg_open(struct store_mailbox *box, const struct store_msg *msg, int *fd_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	int fd = open_in_cur(mbox, msg->locator);
	if (fd >= 0) {
		*fd_r = fd;
		return 1;
	}
	return store_local_msg_open_uid(box, msg->uid, fd_r, error_r);
}

/* ---- flags ---- */

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

/* The keyword set after op (space-separated, case-insensitive names). */
static char *keywords_apply(const char *old, enum store_flag_op op, const char *kws)
{
	struct buf b = BUF_INIT;
	const char *base = op == STORE_FLAGS_REPLACE ? kws : old;
	for (const char *p = base; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		bool drop = op == STORE_FLAGS_REMOVE && keyword_in(kws, p, n);
		if (n > 0 && !drop && !keyword_in(buf_cstr(&b), p, n)) {
			if (b.len)
				buf_append_char(&b, ' ');
			buf_append(&b, p, n);
		}
		p += n;
	}
	if (op == STORE_FLAGS_ADD) {
		for (const char *p = kws; *p;) {
			while (*p == ' ')
				p++;
			size_t n = strcspn(p, " ");
			if (n > 0 && !keyword_in(buf_cstr(&b), p, n)) {
				if (b.len)
					buf_append_char(&b, ' ');
				buf_append(&b, p, n);
			}
			p += n;
		}
	}
	char *out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

struct flag_row {
	uint32_t flags;
	uint64_t modseq;
	char *base, *info, *keywords;
};

static int flag_row_read(struct store_local_mailbox *mbox, uint32_t uid, struct flag_row *row, char **error_r)
{
	sqlite3_stmt *st =
	    store_local_stmt(mbox->store, "SELECT flags, modseq, base, info, keywords FROM message"
					  " WHERE mailbox=?1 AND uid=?2 AND expunging=0");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row->flags = (uint32_t)sqlite3_column_int64(st, 0);
		row->modseq = (uint64_t)sqlite3_column_int64(st, 1);
		row->base = xstrdup((const char *)sqlite3_column_text(st, 2));
		row->info = xstrdup((const char *)sqlite3_column_text(st, 3));
		row->keywords = xstrdup((const char *)sqlite3_column_text(st, 4));
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_local_db_error(mbox->store, "reading flags", error_r);
}

static void flag_row_free(struct flag_row *row)
{
	free(row->base);
	free(row->info);
	free(row->keywords);
}

/* Renames the file for new flags (when the info changes) and updates the
   row.  Returns 1 changed, 0 nothing to change or gone, -1 error. */
static int flags_change_one(struct store_local_mailbox *mbox, uint32_t uid, struct flag_row *row,
			    uint32_t flags, const char *keywords, uint64_t modseq, char **error_r)
{
	char *info = store_local_info_build(flags, row->info);
	bool same_kw = strcmp(keywords, row->keywords) == 0;
	if (flags == row->flags && same_kw && strcmp(info, row->info) == 0) {
		free(info);
		return 0;
	}
	if (strcmp(info, row->info) != 0) {
		char *from = xasprintf("%s/cur/%s%s", mbox->dir, row->base, row->info);
		char *to = xasprintf("%s/cur/%s%s", mbox->dir, row->base, info);
		int rrc = rename(from, to);
		int err = errno;
		free(from);
		free(to);
		if (rrc < 0) {
			free(info);
			if (err == ENOENT)
				return 0; /* changed or expunged by someone else: next sync */
			*error_r =
			    xasprintf("rename(%s/cur/%s...) failed: %s", mbox->dir, row->base, strerror(err));
			return -1;
		}
	}
	sqlite3_stmt *st = store_local_stmt(mbox->store, "UPDATE message SET flags=?1, info=?2, keywords=?3,"
							 " modseq=?4 WHERE mailbox=?5 AND uid=?6");
	sqlite3_bind_int64(st, 1, flags);
	sqlite3_bind_text(st, 2, info, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)modseq);
	sqlite3_bind_int64(st, 5, mbox->id);
	sqlite3_bind_int64(st, 6, uid);
	free(info);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(mbox->store, "updating flags", error_r);
	return 1;
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

int store_local_msg_set_flags(struct store_mailbox *box, const uint32_t *uids, size_t count,
			      enum store_flag_op op, uint32_t flags, const char *keywords,
			      uint64_t unchanged_since, uint32_t **failed_r, size_t *failed_count_r,
			      char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	struct store_local *store = mbox->store;
	uint32_t uidnext;
	uint64_t highest;
	size_t nfailed = 0;
	uint32_t *failed = failed_r != NULL ? xcalloc(count + 1, sizeof(*failed)) : NULL;
	if (store_local_begin(store, error_r) < 0 ||
	    store_local_counters(mbox, &uidnext, &highest, error_r) < 0) {
		store_local_rollback(store);
		free(failed);
		return -1;
	}
	uint64_t modseq = highest + 1;
	int changed = 0, rc = 0;
	for (size_t i = 0; i < count && rc >= 0; i++) {
		struct flag_row row = {0};
		rc = flag_row_read(mbox, uids[i], &row, error_r);
		if (rc <= 0)
			continue;
		if (unchanged_since != 0 && row.modseq > unchanged_since) {
			if (failed != NULL)
				failed[nfailed++] = uids[i];
			flag_row_free(&row);
			continue;
		}
		char *kw = keywords != NULL || op == STORE_FLAGS_REPLACE
			       ? keywords_apply(row.keywords, op, keywords ? keywords : "")
			       : xstrdup(row.keywords);
		rc = flags_change_one(mbox, uids[i], &row, flags_apply(row.flags, op, flags), kw, modseq,
				      error_r);
		if (rc > 0)
			changed++;
		free(kw);
		flag_row_free(&row);
	}
	if (rc >= 0 && changed > 0)
		rc = store_local_set_counters(mbox, uidnext, modseq, error_r);
	if (rc >= 0)
		rc = store_local_commit(store, error_r);
	if (rc < 0) {
		store_local_rollback(store);
		free(failed);
		return -1;
	}
	if (failed_r != NULL) {
		*failed_r = failed;
		*failed_count_r = nfailed;
	}
	return changed;
}

/* ---- expunge ---- */

static int expunge_mark(struct store_local_mailbox *mbox, const uint32_t *uids, size_t count, char ***names_r,
			char **error_r)
{
	struct store_local *store = mbox->store;
	char **names = xcalloc(count + 1, sizeof(char *));
	if (store_local_begin(store, error_r) < 0) {
		free(names);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < count && rc >= 0; i++) {
		rc = row_locator(mbox, uids[i], &names[i], error_r);
		if (rc <= 0)
			continue;
		sqlite3_stmt *st =
		    store_local_stmt(store, "UPDATE message SET expunging=1 WHERE mailbox=?1 AND uid=?2");
		sqlite3_bind_int64(st, 1, mbox->id);
		sqlite3_bind_int64(st, 2, uids[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = store_local_db_error(store, "marking a message", error_r);
	}
	/* A crash before the rows are deleted: the next sync must look. */
	sqlite3_stmt *st = store_local_stmt(store, "UPDATE mailbox SET cur_mtime=0 WHERE id=?1");
	sqlite3_bind_int64(st, 1, mbox->id);
	if (rc >= 0 && sqlite3_step(st) != SQLITE_DONE)
		rc = store_local_db_error(store, "marking a mailbox", error_r);
	if (rc >= 0)
		rc = store_local_commit(store, error_r);
	if (rc < 0) {
		store_local_rollback(store);
		for (size_t i = 0; i < count; i++)
			free(names[i]);
		free(names);
		return -1;
	}
	*names_r = names;
	return 0;
}

static int expunge_delete(struct store_local_mailbox *mbox, const uint32_t *uids, size_t count, char **names,
			  char **error_r)
{
	struct store_local *store = mbox->store;
	uint32_t uidnext;
	uint64_t highest;
	if (store_local_begin(store, error_r) < 0)
		return -1;
	if (store_local_counters(mbox, &uidnext, &highest, error_r) < 0) {
		store_local_rollback(store);
		return -1;
	}
	int n = 0;
	for (size_t i = 0; i < count; i++) {
		if (names[i] == NULL)
			continue;
		static const char *const sqls[] = {
		    "DELETE FROM message WHERE mailbox=?1 AND uid=?2",
		    "DELETE FROM cache WHERE mailbox=?1 AND uid=?2",
		    "DELETE FROM sortkey WHERE mailbox=?1 AND uid=?2",
		    "INSERT OR REPLACE INTO expunged(mailbox, uid, modseq) VALUES(?1, ?2, ?3)",
		};
		for (size_t k = 0; k < N_ELEMENTS(sqls); k++) {
			sqlite3_stmt *st = store_local_stmt(store, sqls[k]);
			sqlite3_bind_int64(st, 1, mbox->id);
			sqlite3_bind_int64(st, 2, uids[i]);
			if (k == N_ELEMENTS(sqls) - 1)
				sqlite3_bind_int64(st, 3, (int64_t)highest + 1);
			if (sqlite3_step(st) != SQLITE_DONE) {
				store_local_db_error(store, "deleting a message", error_r);
				store_local_rollback(store);
				return -1;
			}
		}
		n++;
	}
	if ((n > 0 && store_local_set_counters(mbox, uidnext, highest + 1, error_r) < 0) ||
	    store_local_commit(store, error_r) < 0) {
		store_local_rollback(store);
		return -1;
	}
	return n;
}

int store_local_msg_expunge(struct store_mailbox *box, const uint32_t *uids, size_t count, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	char **names;
	if (count == 0)
		return 0;
	if (expunge_mark(mbox, uids, count, &names, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (names[i] == NULL)
			continue;
		char *path = xasprintf("%s/cur/%s", mbox->dir, names[i]);
		/* ENOENT: renamed by another program; the next sync finds the
		   marked row and removes the file under its new name. */
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("store unlink-failed path=%s error=%s", path, strerror(errno));
		free(path);
	}
	int rc = expunge_delete(mbox, uids, count, names, error_r);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return rc;
}
