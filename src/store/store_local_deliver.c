/* The local backend's delivery (store.h: store_delivery_commit): the
   message file is hard-linked into new/ of every recipient's Maildir, so
   one data write serves all local recipients, and each new/ is fsynced
   once per batch. */
#include "store/store_local_private.h"
#include "store/maildir_create.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The directory a delivery into folder (NULL: the INBOX) of the Maildir
   goes to: MAILDIR or MAILDIR/.FOLDER.  Caller frees. */
static char *folder_dir(const char *maildir, const char *folder)
{
	return folder != NULL ? xasprintf("%s/.%s", maildir, folder) : xstrdup(maildir);
}

/* Hard-links src into new/ of folder (NULL: the INBOX) of the Maildir under
   a unique name (making the Maildir layout, with its default folders, on
   the first delivery or when the folder is missing; copying, fsynced,
   where the file system cannot link: fs_link_or_copy_at()) and returns
   that name.  The directory is not fsynced. */
static int link_one(const char *maildir, const char *folder, int src_dirfd, const char *src, uint64_t size,
		    char **name_r, char **error_r)
{
	char *dir = folder_dir(maildir, folder);
	int rc = -1;
	for (int attempt = 0; attempt < 3; attempt++) {
		char *name = store_local_unique_base(size, size);
		char *dst = xasprintf("%s/new/%s", dir, name);
		if (fs_link_or_copy_at(src_dirfd, src, AT_FDCWD, dst) == 0) {
			free(dst);
			*name_r = name;
			rc = 0;
			break;
		}
		int err = errno;
		free(dst);
		free(name);
		if (err == ENOENT && attempt == 0) {
			/* First delivery to this user (or into this folder):
			   make the Maildir. */
			if (maildir_create(maildir, error_r) < 0)
				break;
			continue;
		}
		if (err != EEXIST) {
			*error_r = xasprintf("link(%s, %s/new) failed: %s", src, dir, strerror(err));
			break;
		}
		if (attempt == 2)
			*error_r = xasprintf("cannot find a unique name in %s/new", dir);
	}
	free(dir);
	return rc;
}

/* One data write serves every Maildir (links), then one fsync of each
   new/ for the whole batch. */
int store_local_deliver(const char *const *locations, size_t count, const char *folder, int src_dirfd,
			const char *src, uint64_t size, char **made_r, char **error_r)
{
	for (size_t i = 0; i < count; i++)
		if (link_one(locations[i], folder, src_dirfd, src, size, &made_r[i], error_r) < 0)
			return -1;
	for (size_t i = 0; i < count; i++) {
		char *dir = folder_dir(locations[i], folder);
		char *new_dir = xasprintf("%s/new", dir);
		int rc = fs_fsync_dir(new_dir, error_r);
		free(new_dir);
		free(dir);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* The path of the file with base name base in MAILDIR/cur (base:2,INFO),
   or NULL. */
static char *find_in_cur(const char *maildir, const char *base)
{
	char *cur = xasprintf("%s/cur", maildir);
	DIR *d = opendir(cur);
	char *path = NULL;
	size_t len = strlen(base);
	struct dirent *de;
	while (d != NULL && path == NULL && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, base, len) == 0 && de->d_name[len] == ':')
			path = xasprintf("%s/%s", cur, de->d_name);
	if (d != NULL)
		closedir(d);
	free(cur);
	return path;
}

int store_local_undeliver(const char *location, const char *folder, const char *made, char **error_r)
{
	char *dir = folder_dir(location, folder);
	char *path = xasprintf("%s/new/%s", dir, made);
	int rc = unlink(path);
	if (rc < 0 && errno == ENOENT) {
		/* A reader's sync took it into cur/ meanwhile, under the same
		   base name: it goes from there (the next sync drops its row). */
		free(path);
		path = find_in_cur(dir, made);
		rc = path != NULL ? unlink(path) : 0;
	}
	if (rc < 0 && errno != ENOENT) {
		*error_r = xasprintf("unlink(%s) failed: %s", path, strerror(errno));
		free(path);
		free(dir);
		return -1;
	}
	free(path);
	free(dir);
	return 0;
}
