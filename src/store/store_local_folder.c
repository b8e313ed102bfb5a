/* The local backend's folders (Maildir++: MAILDIR/.Name with cur/ new/
   tmp/), subscriptions and quota usage. */
#include "store/store_local_private.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/strlist.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

static bool dir_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int folder_make(const char *dir, char **error_r)
{
	static const char *const subdirs[] = {"cur", "new", "tmp"};
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = xasprintf("mkdir(%s) failed: %s", dir, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		char *path = xasprintf("%s/%s", dir, subdirs[i]);
		int rc = mkdir(path, 0700);
		int err = errno;
		free(path);
		if (rc < 0 && err != EEXIST) {
			*error_r = xasprintf("mkdir(%s/%s) failed: %s", dir, subdirs[i], strerror(err));
			return -1;
		}
	}
	/* Maildir++ marks folders with this file (quota tools look for it). */
	char *marker = xasprintf("%s/maildirfolder", dir);
	int fd = open(marker, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	free(marker);
	return 0;
}

int store_local_folder_create(struct store *base, const char *name, bool *exists_r, char **error_r)
{
	struct store_local *store = store_local_cast(base);
	const char *err;
	*exists_r = false;
	if (is_inbox(name)) {
		*exists_r = true;
		*error_r = xstrdup("INBOX always exists");
		return -1;
	}
	if (store_name_check(name, &err) < 0) {
		*error_r = xstrdup(err);
		return -1;
	}
	char *dir = store_local_mailbox_dir(store, name);
	if (dir_exists(dir)) {
		*exists_r = true;
		*error_r = xasprintf("mailbox %s exists", name);
		free(dir);
		return -1;
	}
	/* Parents first, so that LIST shows the hierarchy. */
	int rc = 0;
	for (const char *p = strchr(name, STORE_SEPARATOR); p != NULL && rc == 0;
	     p = strchr(p + 1, STORE_SEPARATOR)) {
		char *parent = xstrndup(name, (size_t)(p - name));
		char *pdir = store_local_mailbox_dir(store, parent);
		if (!dir_exists(pdir))
			rc = folder_make(pdir, error_r);
		free(parent);
		free(pdir);
	}
	if (rc == 0)
		rc = folder_make(dir, error_r);
	if (rc == 0)
		rc = fs_fsync_dir(store->path, error_r);
	free(dir);
	return rc;
}

static int remove_files(const char *dir, char **error_r)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			*error_r = xasprintf("unlink(%s/%s) failed: %s", dir, de->d_name, strerror(errno));
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

static int forget_mailbox(struct store_local *store, const char *name, char **error_r)
{
	static const char *const sqls[] = {
	    "DELETE FROM message WHERE mailbox=(SELECT id FROM mailbox WHERE name=?1)",
	    "DELETE FROM expunged WHERE mailbox=(SELECT id FROM mailbox WHERE name=?1)",
	    "DELETE FROM cache WHERE mailbox=(SELECT id FROM mailbox WHERE name=?1)",
	    "DELETE FROM sortkey WHERE mailbox=(SELECT id FROM mailbox WHERE name=?1)",
	    "DELETE FROM mailbox WHERE name=?1",
	};
	for (size_t i = 0; i < N_ELEMENTS(sqls); i++) {
		sqlite3_stmt *st = store_local_stmt(store, sqls[i]);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			return store_local_db_error(store, "deleting a mailbox", error_r);
	}
	return 0;
}

int store_local_folder_delete(struct store *base, const char *name, char **error_r)
{
	struct store_local *store = store_local_cast(base);
	if (is_inbox(name)) {
		*error_r = xstrdup("INBOX cannot be deleted");
		return -1;
	}
	char *dir = store_local_mailbox_dir(store, name);
	if (dir == NULL || !dir_exists(dir)) {
		*error_r = xasprintf("no such mailbox");
		free(dir);
		return -1;
	}
	/* Forget the index rows first: a crash then leaves files that the
	   next open indexes again, never rows without files. */
	int rc = store_local_begin(store, error_r);
	if (rc == 0 && (rc = forget_mailbox(store, name, error_r)) == 0)
		rc = store_local_commit(store, error_r);
	if (rc < 0)
		store_local_rollback(store);
	static const char *const subdirs[] = {"cur", "new", "tmp"};
	for (size_t i = 0; i < N_ELEMENTS(subdirs) && rc == 0; i++) {
		char *sub = xasprintf("%s/%s", dir, subdirs[i]);
		rc = remove_files(sub, error_r);
		if (rc == 0 && rmdir(sub) < 0 && errno != ENOENT) {
			*error_r = xasprintf("rmdir(%s) failed: %s", sub, strerror(errno));
			rc = -1;
		}
		free(sub);
	}
	if (rc == 0) {
		rc = remove_files(dir, error_r);
		if (rc == 0 && rmdir(dir) < 0) {
			*error_r = xasprintf("rmdir(%s) failed: %s", dir, strerror(errno));
			rc = -1;
		}
	}
	free(dir);
	return rc;
}

static int rename_one(struct store_local *store, const char *from, const char *to, char **error_r)
{
	char *fdir = store_local_mailbox_dir(store, from), *tdir = store_local_mailbox_dir(store, to);
	int rc = rename(fdir, tdir);
	if (rc < 0)
		*error_r = xasprintf("rename(%s, %s) failed: %s", fdir, tdir, strerror(errno));
	free(fdir);
	free(tdir);
	if (rc < 0)
		return -1;
	sqlite3_stmt *st = store_local_stmt(store, "UPDATE mailbox SET name=?2 WHERE name=?1");
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(store, "renaming a mailbox", error_r);
	return 0;
}

int store_local_folder_rename(struct store *base, const char *from, const char *to, char **error_r)
{
	struct store_local *store = store_local_cast(base);
	const char *err;
	if (store_name_check(to, &err) < 0 || is_inbox(to)) {
		*error_r = xstrdup(is_inbox(to) ? "cannot rename to INBOX" : err);
		return -1;
	}
	if (is_inbox(from))
		return store_folder_rename_inbox(base, to, error_r);
	char *fdir = store_local_mailbox_dir(store, from), *tdir = store_local_mailbox_dir(store, to);
	bool ok_from = fdir != NULL && dir_exists(fdir), exists_to = tdir != NULL && dir_exists(tdir);
	free(fdir);
	free(tdir);
	if (!ok_from || exists_to) {
		*error_r = xstrdup(!ok_from ? "no such mailbox" : "target mailbox exists");
		return -1;
	}
	struct strlist all = STRLIST_INIT;
	if (store_local_folder_list(base, strlist_add_cb, &all, error_r) < 0)
		return -1;
	size_t flen = strlen(from);
	int rc = store_local_begin(store, error_r);
	for (size_t i = 0; i < all.count && rc == 0; i++) {
		const char *n = all.items[i];
		if (strcmp(n, from) == 0) {
			rc = rename_one(store, from, to, error_r);
		} else if (strncmp(n, from, flen) == 0 && n[flen] == STORE_SEPARATOR) {
			char *child = xasprintf("%s%s", to, n + flen);
			rc = rename_one(store, n, child, error_r);
			free(child);
		}
	}
	if (rc == 0)
		rc = store_local_commit(store, error_r);
	else
		store_local_rollback(store);
	strlist_free(&all);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_local_folder_list(struct store *base, int (*cb)(void *ctx, const char *name), void *ctx,
			    char **error_r)
{
	struct store_local *store = store_local_cast(base);
	DIR *d = opendir(store->path);
	if (d == NULL) {
		*error_r = xasprintf("opendir(%s) failed: %s", store->path, strerror(errno));
		return -1;
	}
	struct strlist l = STRLIST_INIT;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (n[0] != '.' || n[1] == '\0' || !strcmp(n, ".."))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		char *cur = xasprintf("%s/%s/cur", store->path, n);
		bool ok = dir_exists(cur);
		free(cur);
		const char *err;
		if (ok && store_name_check(n + 1, &err) == 0)
			strlist_add(&l, n + 1);
	}
	closedir(d);
	qsort(l.items, l.count, sizeof(char *), name_cmp);
	int rc = cb(ctx, "INBOX");
	for (size_t i = 0; i < l.count && rc == 0; i++)
		rc = cb(ctx, l.items[i]);
	strlist_free(&l);
	return 0;
}

int store_local_subscribe(struct store *base, const char *name, bool subscribe, char **error_r)
{
	struct store_local *store = store_local_cast(base);
	const char *err;
	if (store_name_check(name, &err) < 0) {
		*error_r = xstrdup(err);
		return -1;
	}
	sqlite3_stmt *st =
	    store_local_stmt(store, subscribe ? "INSERT OR IGNORE INTO subscription(name) VALUES(?1)"
					      : "DELETE FROM subscription WHERE name=?1");
	sqlite3_bind_text(st, 1, strcasecmp(name, "INBOX") == 0 ? "INBOX" : name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return store_local_db_error(store, "changing a subscription", error_r);
	return 0;
}

int store_local_subscription_list(struct store *base, int (*cb)(void *ctx, const char *name), void *ctx,
				  char **error_r)
{
	struct store_local *store = store_local_cast(base);
	struct strlist l = STRLIST_INIT;
	sqlite3_stmt *st = store_local_stmt(store, "SELECT name FROM subscription ORDER BY name");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		strlist_add_cb(&l, (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		strlist_free(&l);
		return store_local_db_error(store, "listing subscriptions", error_r);
	}
	/* The callback may call back into the store: walk a copy. */
	int stop = 0;
	for (size_t i = 0; i < l.count && stop == 0; i++)
		stop = cb(ctx, l.items[i]);
	strlist_free(&l);
	return 0;
}

int store_local_quota_usage(struct store *base, uint64_t *bytes_r, uint64_t *messages_r, char **error_r)
{
	struct store_local *store = store_local_cast(base);
	sqlite3_stmt *st = store_local_stmt(store, "SELECT coalesce(sum(psize), 0), count(*) FROM message");
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_local_db_error(store, "reading quota usage", error_r);
	}
	*bytes_r = (uint64_t)sqlite3_column_int64(st, 0);
	*messages_r = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	return 0;
}
