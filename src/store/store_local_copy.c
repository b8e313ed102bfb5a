/* The local backend: adding messages to a mailbox (APPEND, COPY, MOVE).
   The file enters cur/ while the index's write transaction is held, so no
   concurrent sync can give it a UID of its own. */
#include "store/store_local_private.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct new_msg {
	const char *base;
	const char *info;
	uint64_t size, psize;
	int64_t internaldate;
	uint32_t flags;
	const char *keywords;
	const char *emailid; /* NULL: derived from base */
};

static int insert_row(struct store_local_mailbox *mbox, const struct new_msg *m, uint32_t uid,
		      uint64_t modseq, char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(
	    mbox->store, "INSERT INTO message(mailbox, uid, base, info, size, psize, internaldate, flags,"
			 " keywords, modseq, emailid) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, m->base, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->info, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)m->size);
	sqlite3_bind_int64(st, 6, (int64_t)m->psize);
	sqlite3_bind_int64(st, 7, m->internaldate);
	sqlite3_bind_int64(st, 8, m->flags);
	sqlite3_bind_text(st, 9, m->keywords ? m->keywords : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (int64_t)modseq);
	if (m->emailid != NULL)
		sqlite3_bind_text(st, 11, m->emailid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(mbox->store, "adding a message", error_r);
	return 0;
}

static uint64_t crlf_size(const char *data, size_t len)
{
	uint64_t size = len;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			size++;
	return size;
}

/* One message of an append: its names and what its row gets. */
struct append_file {
	struct new_msg m;
	char *base, *info, *tmp, *cur;
	bool written, in_cur;
};

static void append_file_init(struct store_local_mailbox *mbox, struct append_file *f,
			     const struct store_append *a)
{
	f->m.psize = a->len;
	f->m.size = crlf_size(a->data, a->len);
	f->m.internaldate = a->internaldate ? a->internaldate : (int64_t)time(NULL);
	f->m.flags = a->flags & STORE_FLAGS_ALL;
	f->m.keywords = a->keywords;
	f->base = store_local_unique_base(f->m.psize, f->m.size);
	f->info = store_local_info_build(f->m.flags, NULL);
	f->m.base = f->base;
	f->m.info = f->info;
	f->tmp = xasprintf("%s/tmp/%s", mbox->dir, f->base);
	f->cur = xasprintf("%s/cur/%s%s", mbox->dir, f->base, f->info);
}

/* Takes back what a failed append made of f, frees its names. */
static void append_file_free(struct append_file *f, bool failed)
{
	if (failed && f->in_cur)
		unlink(f->cur);
	else if (failed && f->written)
		unlink(f->tmp);
	free(f->base);
	free(f->info);
	free(f->tmp);
	free(f->cur);
}

/* Moves the written files into cur/ and lists them, all in one index
   transaction (the caller's): a concurrent sync cannot give one of them a
   UID of its own, and a failure lists none. */
static int append_commit(struct store_local_mailbox *mbox, struct append_file *files, size_t count,
			 uint32_t *first_uid_r, char **error_r)
{
	uint32_t uidnext;
	uint64_t modseq;
	if (store_local_counters(mbox, &uidnext, &modseq, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (rename(files[i].tmp, files[i].cur) < 0) {
			*error_r = xasprintf("rename(%s, %s) failed: %s", files[i].tmp, files[i].cur,
					     strerror(errno));
			return -1;
		}
		files[i].in_cur = true;
	}
	char *cur_dir = xasprintf("%s/cur", mbox->dir);
	int rc = fs_fsync_dir(cur_dir, error_r);
	free(cur_dir);
	/* one modseq for the whole command, as a COPY gets */
	for (size_t i = 0; i < count && rc == 0; i++)
		rc = insert_row(mbox, &files[i].m, uidnext + (uint32_t)i, modseq + 1, error_r);
	if (rc == 0)
		rc = store_local_set_counters(mbox, uidnext + (uint32_t)count, modseq + 1, error_r);
	if (rc == 0)
		rc = store_local_commit(mbox->store, error_r);
	if (rc == 0)
		*first_uid_r = uidnext;
	return rc;
}

int store_local_msg_append_many(struct store_mailbox *box, const struct store_append *msgs, size_t count,
				uint32_t *first_uid_r, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	struct append_file *files = xcalloc(count, sizeof(*files));
	int rc = 0;
	/* INTERNALDATE is the file's mtime (as Dovecot keeps it). */
	for (size_t i = 0; i < count && rc == 0; i++) {
		append_file_init(mbox, &files[i], &msgs[i]);
		rc = fs_write_new_file(files[i].tmp, msgs[i].data, msgs[i].len, 0600, files[i].m.internaldate,
				       error_r);
		files[i].written = rc == 0;
	}
	if (rc == 0 && (rc = store_local_begin(mbox->store, error_r)) == 0) {
		rc = append_commit(mbox, files, count, first_uid_r, error_r);
		if (rc < 0)
			store_local_rollback(mbox->store);
	}
	for (size_t i = 0; i < count; i++)
		append_file_free(&files[i], rc < 0);
	free(files);
	return rc;
}

struct copy_src {
	char *base, *info, *keywords;
	char emailid[STORE_OBJECTID_MAX + 1];
	uint64_t size, psize;
	int64_t internaldate;
	uint32_t flags;
};

static int copy_src_read(struct store_local_mailbox *mbox, uint32_t uid, struct copy_src *s, char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT base, info, keywords, size, psize,"
							 " internaldate, flags, emailid FROM message"
							 " WHERE mailbox=?1 AND uid=?2 AND expunging=0");
	sqlite3_bind_int64(st, 1, mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->base = xstrdup((const char *)sqlite3_column_text(st, 0));
		s->info = xstrdup((const char *)sqlite3_column_text(st, 1));
		s->keywords = xstrdup((const char *)sqlite3_column_text(st, 2));
		s->size = (uint64_t)sqlite3_column_int64(st, 3);
		s->psize = (uint64_t)sqlite3_column_int64(st, 4);
		s->internaldate = sqlite3_column_int64(st, 5);
		s->flags = (uint32_t)sqlite3_column_int64(st, 6);
		store_local_emailid(s->base, (const char *)sqlite3_column_text(st, 7), s->emailid);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_local_db_error(mbox->store, "reading a message", error_r);
}

static void copy_src_free(struct copy_src *s)
{
	free(s->base);
	free(s->info);
	free(s->keywords);
}

/* Links (or, across file systems, copies) src to dest; -2 when src is
   gone. */
static int link_or_copy(const char *src, const char *dest, char **error_r)
{
	if (fs_link_or_copy_at(AT_FDCWD, src, AT_FDCWD, dest) == 0)
		return 0;
	if (errno == ENOENT)
		return 0 - 2;
	*error_r = xasprintf("link(%s, %s) failed: %s", src, dest, strerror(errno));
	return -1;
}

/* Copies one message; 1 copied, 0 gone, -1 error. */
static int copy_one(struct store_local_mailbox *src, uint32_t uid, struct store_local_mailbox *dest,
		    uint32_t dest_uid, uint64_t modseq, char **error_r)
{
	struct copy_src s = {0};
	int rc = copy_src_read(src, uid, &s, error_r);
	if (rc <= 0)
		return rc;
	char *base = store_local_unique_base(s.psize, s.size);
	char *from = xasprintf("%s/cur/%s%s", src->dir, s.base, s.info);
	char *to = xasprintf("%s/cur/%s%s", dest->dir, base, s.info);
	rc = link_or_copy(from, to, error_r);
	if (rc == -2)
		rc = 0; /* renamed or expunged meanwhile: treat as gone */
	else if (rc == 0) {
		struct new_msg m = {base,           s.info,  s.size,     s.psize,
				    s.internaldate, s.flags, s.keywords, s.emailid};
		rc = insert_row(dest, &m, dest_uid, modseq, error_r) == 0 ? 1 : -1;
		if (rc < 0)
			unlink(to);
	}
	free(from);
	free(to);
	free(base);
	copy_src_free(&s);
	return rc;
}

int store_local_msg_copy(struct store_mailbox *src_box, const uint32_t *uids, size_t count,
			 struct store_mailbox *dest_box, bool move, uint32_t **dest_uids_r, char **error_r)
{
	struct store_local_mailbox *src = store_local_mailbox_cast(src_box);
	struct store_local_mailbox *dest = store_local_mailbox_cast(dest_box);
	uint32_t *dest_uids = xcalloc(count + 1, sizeof(*dest_uids));
	uint32_t uidnext;
	uint64_t modseq;
	if (store_local_begin(dest->store, error_r) < 0) {
		free(dest_uids);
		return -1;
	}
	int rc = store_local_counters(dest, &uidnext, &modseq, error_r);
	int copied = 0;
	for (size_t i = 0; i < count && rc >= 0; i++) {
		rc = copy_one(src, uids[i], dest, uidnext, modseq + 1, error_r);
		if (rc > 0) {
			dest_uids[i] = uidnext++;
			copied++;
		}
	}
	char *cur_dir = xasprintf("%s/cur", dest->dir);
	if (rc >= 0 && copied > 0)
		rc = fs_fsync_dir(cur_dir, error_r);
	free(cur_dir);
	if (rc >= 0 && copied > 0)
		rc = store_local_set_counters(dest, uidnext, modseq + 1, error_r);
	if (rc >= 0)
		rc = store_local_commit(dest->store, error_r);
	if (rc < 0) {
		/* The linked files stay; the next sync indexes them. */
		store_local_rollback(dest->store);
		free(dest_uids);
		return -1;
	}
	if (move && copied > 0) {
		uint32_t *gone = xcalloc((size_t)copied, sizeof(*gone));
		size_t n = 0;
		for (size_t i = 0; i < count; i++)
			if (dest_uids[i] != 0)
				gone[n++] = uids[i];
		rc = store_local_msg_expunge(src_box, gone, n, error_r);
		free(gone);
		if (rc < 0) {
			free(dest_uids);
			return -1;
		}
	}
	*dest_uids_r = dest_uids;
	return copied;
}
