/* The local backend: opening a mailbox and syncing its index with the
   Maildir. */
#include "store/store_local_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A directory mtime is trusted as "nothing changed since" only when it is
   older than the sync's start by this margin: a file added in the same
   timestamp tick as our readdir would otherwise go unseen. */
#define SYNC_MTIME_MARGIN_NS 1000000000LL

struct sync_entry {
	char *name;
	size_t base_len;
};

struct sync_row {
	uint32_t uid;
	char *base;
	char *info;
	bool expunging;
	bool seen;
};

struct sync_new {
	char *name;
	size_t base_len;
	int64_t sort_secs;
	int64_t mtime;
	uint64_t size, psize;
	uint32_t flags;
};

struct sync_ctx {
	struct store_local_mailbox *mbox;
	char *cur_path;
	int cur_fd;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint64_t modseq; /* of this sync's changes, or 0 before one */
	struct sync_entry *entries;
	size_t nentries;
	struct sync_row *rows;
	size_t nrows;
	struct sync_new *news;
	size_t nnews;
	unsigned added, expunged, changed;
};

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int base_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int entry_cmp(const void *x, const void *y)
{
	const struct sync_entry *a = x, *b = y;
	return base_cmp(a->name, a->base_len, b->name, b->base_len);
}

/* Names in dir, skipping dot files (Maildir++ folders, editors' temps). */
static int read_names(const char *dir, struct sync_entry **entries_r, size_t *count_r, char **error_r)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		*error_r = xasprintf("opendir(%s) failed: %s", dir, strerror(errno));
		return -1;
	}
	size_t count = 0, cap = 256;
	struct sync_entry *entries = xmalloc(cap * sizeof(*entries));
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (count == cap) {
			cap *= 2;
			entries = xreallocarray(entries, cap, sizeof(*entries));
		}
		const char *info = strstr(de->d_name, ":2,");
		entries[count].name = xstrdup(de->d_name);
		entries[count].base_len = info ? (size_t)(info - de->d_name) : strlen(de->d_name);
		count++;
	}
	closedir(d);
	*entries_r = entries;
	*count_r = count;
	return 0;
}

static void free_entries(struct sync_entry *entries, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(entries[i].name);
	free(entries);
}

/* New mail: new/NAME -> cur/NAME:2, (the base name stays). */
static int sync_new_dir(struct sync_ctx *ctx, char **error_r)
{
	char *new_path = xasprintf("%s/new", ctx->mbox->dir);
	struct sync_entry *entries;
	size_t count;
	int rc = read_names(new_path, &entries, &count, error_r);
	if (rc < 0) {
		free(new_path);
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		const char *name = entries[i].name;
		char *from = xasprintf("%s/%s", new_path, name);
		char *to = strstr(name, ":2,") != NULL ? xasprintf("%s/%s", ctx->cur_path, name)
						       : xasprintf("%s/%s:2,", ctx->cur_path, name);
		/* ENOENT: another process moved it first; it is in cur/ now. */
		if (rename(from, to) < 0 && errno != ENOENT)
			log_warn("store rename-failed from=%s to=%s error=%s", from, to, strerror(errno));
		free(from);
		free(to);
	}
	free_entries(entries, count);
	free(new_path);
	return 0;
}

static int load_rows(struct sync_ctx *ctx, char **error_r)
{
	struct store_local *store = ctx->mbox->store;
	sqlite3_stmt *st = store_local_stmt(store, "SELECT uid, base, info, expunging FROM message"
						   " WHERE mailbox=?1 ORDER BY base");
	sqlite3_bind_int64(st, 1, ctx->mbox->id);
	size_t cap = 256;
	ctx->rows = xmalloc(cap * sizeof(*ctx->rows));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (ctx->nrows == cap) {
			cap *= 2;
			ctx->rows = xreallocarray(ctx->rows, cap, sizeof(*ctx->rows));
		}
		struct sync_row *row = &ctx->rows[ctx->nrows++];
		row->uid = (uint32_t)sqlite3_column_int64(st, 0);
		row->base = xstrdup((const char *)sqlite3_column_text(st, 1));
		row->info = xstrdup((const char *)sqlite3_column_text(st, 2));
		row->expunging = sqlite3_column_int(st, 3) != 0;
		row->seen = false;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_local_db_error(store, "reading messages", error_r);
	return 0;
}

static uint64_t sync_modseq(struct sync_ctx *ctx)
{
	if (ctx->modseq == 0)
		ctx->modseq = ctx->highestmodseq + 1;
	return ctx->modseq;
}

/* The file of row now carries info (another program changed its flags). */
static int sync_changed_info(struct sync_ctx *ctx, struct sync_row *row, const char *name, char **error_r)
{
	struct store_local *store = ctx->mbox->store;
	struct store_local_fname fn;
	store_local_fname_parse(name, &fn);
	const char *info = name + fn.base_len;
	sqlite3_stmt *st = store_local_stmt(store, "UPDATE message SET info=?1, modseq=?2,"
						   " flags=(flags & ~?3) | ?4"
						   " WHERE mailbox=?5 AND uid=?6");
	sqlite3_bind_text(st, 1, info, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)sync_modseq(ctx));
	sqlite3_bind_int64(st, 3, STORE_FLAGS_ALL);
	sqlite3_bind_int64(st, 4, fn.flags);
	sqlite3_bind_int64(st, 5, ctx->mbox->id);
	sqlite3_bind_int64(st, 6, row->uid);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(store, "updating flags", error_r);
	ctx->changed++;
	return 0;
}

static int sync_drop_row(struct sync_ctx *ctx, uint32_t uid, char **error_r)
{
	struct store_local *store = ctx->mbox->store;
	uint64_t modseq = sync_modseq(ctx);
	sqlite3_stmt *st = store_local_stmt(store, "DELETE FROM message WHERE mailbox=?1 AND uid=?2");
	sqlite3_bind_int64(st, 1, ctx->mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(store, "deleting a message", error_r);
	st = store_local_stmt(store, "DELETE FROM cache WHERE mailbox=?1 AND uid=?2");
	sqlite3_bind_int64(st, 1, ctx->mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(store, "deleting a cache row", error_r);
	st = store_local_stmt(store, "DELETE FROM sortkey WHERE mailbox=?1 AND uid=?2");
	sqlite3_bind_int64(st, 1, ctx->mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(store, "deleting sort keys", error_r);
	st = store_local_stmt(store,
			      "INSERT OR REPLACE INTO expunged(mailbox, uid, modseq) VALUES(?1, ?2, ?3)");
	sqlite3_bind_int64(st, 1, ctx->mbox->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (int64_t)modseq);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(store, "recording an expunge", error_r);
	ctx->expunged++;
	return 0;
}

/* Facts about a file seen for the first time: its internaldate (mtime) and
   sizes.  The ",S=" size is trusted when the file agrees; other files are
   read once to learn their size with CRLF line ends. */
static int sync_stat_new(struct sync_ctx *ctx, const char *name, size_t base_len)
{
	struct stat st;
	if (fstatat(ctx->cur_fd, name, &st, 0) < 0 || !S_ISREG(st.st_mode))
		return -1; /* gone again, or not a message: skip */
	struct store_local_fname fn;
	store_local_fname_parse(name, &fn);
	struct sync_new *n = &ctx->news[ctx->nnews];
	n->psize = (uint64_t)st.st_size;
	if (fn.has_size && fn.size == n->psize) {
		n->size = fn.has_vsize ? fn.vsize : fn.size;
	} else {
		int fd = openat(ctx->cur_fd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || store_local_file_vsize(fd, &n->psize, &n->size) < 0) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	n->name = xstrdup(name);
	n->base_len = base_len;
	n->mtime = st.st_mtim.tv_sec;
	n->flags = fn.flags;
	/* Delivery order: Maildir names begin with the delivery second. */
	char *end;
	long long secs = strtoll(name, &end, 10);
	n->sort_secs = (end != name && *end == '.') ? secs : n->mtime;
	ctx->nnews++;
	return 0;
}

static int new_cmp(const void *x, const void *y)
{
	const struct sync_new *a = x, *b = y;
	if (a->sort_secs != b->sort_secs)
		return a->sort_secs < b->sort_secs ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int sync_add_news(struct sync_ctx *ctx, char **error_r)
{
	struct store_local *store = ctx->mbox->store;
	qsort(ctx->news, ctx->nnews, sizeof(*ctx->news), new_cmp);
	for (size_t i = 0; i < ctx->nnews; i++) {
		struct sync_new *n = &ctx->news[i];
		sqlite3_stmt *st = store_local_stmt(
		    store, "INSERT INTO message(mailbox, uid, base, info, size, psize, internaldate,"
			   " flags, modseq) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
		sqlite3_bind_int64(st, 1, ctx->mbox->id);
		sqlite3_bind_int64(st, 2, ctx->uidnext);
		sqlite3_bind_text(st, 3, n->name, (int)n->base_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, n->name + n->base_len, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (int64_t)n->size);
		sqlite3_bind_int64(st, 6, (int64_t)n->psize);
		sqlite3_bind_int64(st, 7, n->mtime);
		sqlite3_bind_int64(st, 8, n->flags);
		sqlite3_bind_int64(st, 9, (int64_t)sync_modseq(ctx));
		int rc = sqlite3_step(st);
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
			/* Two files with one base name: index the first only. */
			log_warn("store duplicate-base mailbox=%s file=%s", ctx->mbox->dir, n->name);
			continue;
		}
		if (rc != SQLITE_DONE)
			return store_local_db_error(store, "adding a message", error_r);
		ctx->uidnext++;
		ctx->added++;
	}
	return 0;
}

static struct sync_entry *find_entry(struct sync_entry *entries, size_t count, const char *base)
{
	struct sync_entry key = {(char *)base, strlen(base)};
	return bsearch(&key, entries, count, sizeof(*entries), entry_cmp);
}

/* Rows whose file was not seen: a concurrent rename in cur/ can hide a file
   from readdir, so look once more before calling it expunged. */
static int sync_missing(struct sync_ctx *ctx, char **error_r)
{
	struct sync_entry *again = NULL;
	size_t nagain = 0;
	bool reread = false;
	int rc = 0;
	for (size_t j = 0; j < ctx->nrows && rc == 0; j++) {
		struct sync_row *row = &ctx->rows[j];
		if (row->seen)
			continue;
		if (!reread) {
			reread = true;
			if (read_names(ctx->cur_path, &again, &nagain, error_r) < 0)
				return -1;
			qsort(again, nagain, sizeof(*again), entry_cmp);
		}
		struct sync_entry *e = find_entry(again, nagain, row->base);
		if (e != NULL && !row->expunging) {
			if (strcmp(e->name + e->base_len, row->info) != 0)
				rc = sync_changed_info(ctx, row, e->name, error_r);
			continue;
		}
		if (e != NULL)
			unlinkat(ctx->cur_fd, e->name, 0);
		rc = sync_drop_row(ctx, row->uid, error_r);
	}
	if (again != NULL)
		free_entries(again, nagain);
	return rc;
}

/* Merges the sorted cur/ listing with the rows sorted by base name. */
static int sync_merge(struct sync_ctx *ctx, char **error_r)
{
	size_t i = 0, j = 0;
	ctx->news = xcalloc(ctx->nentries + 1, sizeof(*ctx->news));
	while (i < ctx->nentries) {
		struct sync_entry *e = &ctx->entries[i];
		int c = j < ctx->nrows
			    ? base_cmp(e->name, e->base_len, ctx->rows[j].base, strlen(ctx->rows[j].base))
			    : -1;
		if (c > 0) {
			j++; /* row without file: handled by sync_missing */
			continue;
		}
		i++;
		if (c < 0) {
			if (i >= 2 && entry_cmp(e, e - 1) == 0)
				continue; /* same base twice */
			sync_stat_new(ctx, e->name, e->base_len);
			continue;
		}
		struct sync_row *row = &ctx->rows[j];
		if (row->seen)
			continue;
		if (row->expunging)
			continue; /* finished by sync_missing */
		row->seen = true;
		if (strcmp(e->name + e->base_len, row->info) != 0 &&
		    sync_changed_info(ctx, row, e->name, error_r) < 0)
			return -1;
	}
	return 0;
}

static void sync_ctx_free(struct sync_ctx *ctx)
{
	if (ctx->entries != NULL)
		free_entries(ctx->entries, ctx->nentries);
	for (size_t j = 0; j < ctx->nrows; j++) {
		free(ctx->rows[j].base);
		free(ctx->rows[j].info);
	}
	free(ctx->rows);
	for (size_t k = 0; k < ctx->nnews; k++)
		free(ctx->news[k].name);
	free(ctx->news);
	if (ctx->cur_fd >= 0)
		close(ctx->cur_fd);
	free(ctx->cur_path);
}

static int read_mailbox_row(struct store_local_mailbox *mbox, uint32_t *uidnext_r, uint64_t *modseq_r,
			    int64_t *new_mtime_r, int64_t *cur_mtime_r, char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(mbox->store, "SELECT uidnext, highestmodseq, new_mtime,"
							 " cur_mtime FROM mailbox WHERE id=?1");
	sqlite3_bind_int64(st, 1, mbox->id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_local_db_error(mbox->store, "reading a mailbox", error_r);
	}
	*uidnext_r = (uint32_t)sqlite3_column_int64(st, 0);
	*modseq_r = (uint64_t)sqlite3_column_int64(st, 1);
	*new_mtime_r = sqlite3_column_int64(st, 2);
	*cur_mtime_r = sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	return 0;
}

static int stat_dirs(struct store_local_mailbox *mbox, int64_t *new_r, int64_t *cur_r, char **error_r)
{
	struct stat st;
	char *path = xasprintf("%s/new", mbox->dir);
	if (stat(path, &st) < 0) {
		*error_r = xasprintf("stat(%s) failed: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	*new_r = mtime_ns(&st);
	path[strlen(path) - 3] = '\0';
	strcat(path, "cur");
	if (stat(path, &st) < 0) {
		*error_r = xasprintf("stat(%s) failed: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	*cur_r = mtime_ns(&st);
	free(path);
	return 0;
}

static int sync_locked(struct sync_ctx *ctx, int64_t start, char **error_r)
{
	struct store_local_mailbox *mbox = ctx->mbox;
	if (sync_new_dir(ctx, error_r) < 0 ||
	    read_names(ctx->cur_path, &ctx->entries, &ctx->nentries, error_r) < 0)
		return -1;
	qsort(ctx->entries, ctx->nentries, sizeof(*ctx->entries), entry_cmp);
	if (load_rows(ctx, error_r) < 0 || sync_merge(ctx, error_r) < 0 || sync_missing(ctx, error_r) < 0 ||
	    sync_add_news(ctx, error_r) < 0)
		return -1;
	int64_t new_mtime, cur_mtime;
	if (stat_dirs(mbox, &new_mtime, &cur_mtime, error_r) < 0)
		return -1;
	if (new_mtime > start - SYNC_MTIME_MARGIN_NS)
		new_mtime = 0;
	if (cur_mtime > start - SYNC_MTIME_MARGIN_NS)
		cur_mtime = 0;
	sqlite3_stmt *st = store_local_stmt(mbox->store, "UPDATE mailbox SET uidnext=?1, highestmodseq=?2,"
							 " new_mtime=?3, cur_mtime=?4 WHERE id=?5");
	sqlite3_bind_int64(st, 1, ctx->uidnext);
	sqlite3_bind_int64(st, 2, (int64_t)(ctx->modseq ? ctx->modseq : ctx->highestmodseq));
	sqlite3_bind_int64(st, 3, new_mtime);
	sqlite3_bind_int64(st, 4, cur_mtime);
	sqlite3_bind_int64(st, 5, mbox->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(mbox->store, "updating a mailbox", error_r);
	return 0;
}

/* The sync proper, on this backend's mailbox. */
static int mailbox_sync(struct store_local_mailbox *mbox, bool force, char **error_r)
{
	uint32_t uidnext;
	uint64_t modseq;
	int64_t rec_new, rec_cur, new_mtime, cur_mtime;
	if (stat_dirs(mbox, &new_mtime, &cur_mtime, error_r) < 0 ||
	    read_mailbox_row(mbox, &uidnext, &modseq, &rec_new, &rec_cur, error_r) < 0)
		return -1;
	if (!force && rec_new != 0 && rec_cur != 0 && rec_new == new_mtime && rec_cur == cur_mtime)
		return 0;

	int64_t start = now_ns();
	if (store_local_begin(mbox->store, error_r) < 0)
		return -1;
	struct sync_ctx ctx = {.mbox = mbox, .cur_fd = -1};
	/* Another process may have synced while we waited for the lock. */
	int rc = read_mailbox_row(mbox, &ctx.uidnext, &ctx.highestmodseq, &rec_new, &rec_cur, error_r);
	ctx.cur_path = xasprintf("%s/cur", mbox->dir);
	if (rc == 0) {
		ctx.cur_fd = open(ctx.cur_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ctx.cur_fd < 0) {
			*error_r = xasprintf("open(%s) failed: %s", ctx.cur_path, strerror(errno));
			rc = -1;
		}
	}
	if (rc == 0)
		rc = sync_locked(&ctx, start, error_r);
	if (rc == 0)
		rc = store_local_commit(mbox->store, error_r);
	else
		store_local_rollback(mbox->store);
	if (rc == 0 && (ctx.added || ctx.expunged || ctx.changed))
		log_debug("store sync mailbox=%s added=%u expunged=%u changed=%u", mbox->dir, ctx.added,
			  ctx.expunged, ctx.changed);
	sync_ctx_free(&ctx);
	return rc;
}

static int mailbox_row(struct store_local *store, const char *name, int64_t *id_r, uint32_t *uidvalidity_r,
		       char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(store, "SELECT id, uidvalidity FROM mailbox WHERE name=?1");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(st, 0);
		*uidvalidity_r = (uint32_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_local_db_error(store, "reading a mailbox", error_r);
}

static int mailbox_row_create(struct store_local *store, const char *name, int64_t *id_r,
			      uint32_t *uidvalidity_r, char **error_r)
{
	if (store_local_begin(store, error_r) < 0)
		return -1;
	int rc = mailbox_row(store, name, id_r, uidvalidity_r, error_r);
	if (rc == 0) {
		*uidvalidity_r = store_local_next_uidvalidity(store);
		sqlite3_stmt *st =
		    store_local_stmt(store, "INSERT INTO mailbox(name, uidvalidity) VALUES(?1, ?2)");
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, *uidvalidity_r);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = store_local_db_error(store, "creating a mailbox", error_r);
		} else {
			*id_r = sqlite3_last_insert_rowid(store->db);
			rc = 1;
		}
	}
	if (rc < 0) {
		store_local_rollback(store);
		return -1;
	}
	return store_local_commit(store, error_r) < 0 ? -1 : 1;
}

int store_local_mailbox_sync(struct store_mailbox *box, bool force, char **error_r)
{
	return mailbox_sync(store_local_mailbox_cast(box), force, error_r);
}

static void mailbox_free(struct store_local_mailbox *mbox)
{
	if (mbox->cur_fd >= 0)
		close(mbox->cur_fd);
	free(mbox->box.name);
	free(mbox->box.objectid);
	free(mbox->dir);
	free(mbox);
}

/* Opens the mailbox name: with indexed_only, reading only (0 when it has
   no index row), else making its row when missing and syncing it. */
static int mailbox_open(struct store *base, const char *name, bool indexed_only,
			struct store_mailbox **mbox_r, char **error_r)
{
	struct store_local *store = store_local_cast(base);
	char *dir = store_local_mailbox_dir(store, name);
	if (dir == NULL)
		return 0;
	struct stat st;
	char *cur = xasprintf("%s/cur", dir);
	int exists = stat(cur, &st) == 0 && S_ISDIR(st.st_mode);
	free(cur);
	if (!exists) {
		free(dir);
		return 0;
	}
	const char *canonical = strcasecmp(name, "INBOX") == 0 ? "INBOX" : name;
	struct store_local_mailbox *mbox = xcalloc(1, sizeof(*mbox));
	mbox->box.store = base;
	mbox->box.name = xstrdup(canonical);
	mbox->store = store;
	mbox->dir = dir;
	char *cur_path = xasprintf("%s/cur", dir);
	mbox->cur_fd = open(cur_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(cur_path);
	int rc = mailbox_row(store, canonical, &mbox->id, &mbox->box.uidvalidity, error_r);
	if (rc == 0 && !indexed_only)
		rc = mailbox_row_create(store, canonical, &mbox->id, &mbox->box.uidvalidity, error_r);
	if (rc > 0 &&
	    (indexed_only ? store_local_mailbox_objectid_read(store, mbox->id, &mbox->box.objectid, error_r)
			  : store_local_mailbox_objectid(store, mbox->id, &mbox->box.objectid, error_r)) < 0)
		rc = -1;
	/* reading only, a row without its id was never opened for writing */
	if (rc > 0 && indexed_only && mbox->box.objectid == NULL)
		rc = 0;
	if (rc > 0 && !indexed_only && mailbox_sync(mbox, false, error_r) < 0)
		rc = -1;
	if (rc <= 0) {
		mailbox_free(mbox);
		return rc;
	}
	*mbox_r = &mbox->box;
	return 1;
}

int store_local_mailbox_open(struct store *base, const char *name, struct store_mailbox **mbox_r,
			     char **error_r)
{
	return mailbox_open(base, name, false, mbox_r, error_r);
}

int store_local_mailbox_open_indexed(struct store *base, const char *name, struct store_mailbox **mbox_r,
				     char **error_r)
{
	return mailbox_open(base, name, true, mbox_r, error_r);
}

void store_local_mailbox_close(struct store_mailbox *box)
{
	mailbox_free(store_local_mailbox_cast(box));
}
