/* Maildir++ layout creation (used by `postoffice user add` and by delivery
   when a Maildir is missing).  `user add` runs as root inside DATA_DIR,
   which the server's user can write: every directory is made and entered
   relative to its parent's descriptor, never through a symbolic link. */
#include "store/maildir_create.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const maildir_default_folders[MAILDIR_DEFAULT_FOLDER_COUNT] = {
    "Sent", "Drafts", "Trash", "Junk", "Archive",
};

/* Makes DIR/NAME (an existing directory is fine) and opens it without
   following a link; *created_r is set when this call made it. */
static int make_dir(int dirfd, const char *dir, const char *name, bool *created_r, char **error_r)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = -1;
	struct stat st;
	bool ok = mkdirat(dirfd, name, 0700) == 0;
	if (ok)
		*created_r = true;
	else if (errno != EEXIST)
		*error_r = xasprintf("mkdir(%s) failed: %s", path, strerror(errno));
	else if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
		 !S_ISLNK(st.st_mode))
		*error_r = xasprintf("mkdir(%s) failed: exists and is not a directory", path);
	else
		ok = true; /* a link is refused by the open */
	if (ok)
		fd = fs_open_dir_at(dirfd, path, name, error_r);
	free(path);
	return fd;
}

/* cur, new and tmp in the directory fd (DIR), fsyncing it when it gained
   entries. */
static int make_subdirs(int fd, const char *dir, char **error_r)
{
	static const char *const subdirs[] = {"cur", "new", "tmp"};
	bool created = false;
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		int sub = make_dir(fd, dir, subdirs[i], &created, error_r);
		if (sub < 0)
			return -1;
		close(sub);
	}
	return created ? fs_fsync_dirfd(fd, dir, error_r) : 0;
}

static int make_folder(int rootfd, const char *root, const char *name, bool *created_r, char **error_r)
{
	char *dotted = xasprintf(".%s", name);
	char *dir = xasprintf("%s/%s", root, dotted);
	int ret = -1;
	int fd = make_dir(rootfd, root, dotted, created_r, error_r);
	if (fd < 0 || make_subdirs(fd, dir, error_r) < 0)
		goto out;
	/* The marker is empty: an existing one (whatever it is) will do,
	   and nothing is ever written through it. */
	int mfd = openat(fd, "maildirfolder", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (mfd < 0 && errno != EEXIST) {
		*error_r = xasprintf("open(%s/maildirfolder) failed: %s", dir, strerror(errno));
		goto out;
	}
	if (mfd >= 0)
		close(mfd);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(dir);
	free(dotted);
	return ret;
}

int maildir_create_at(int dirfd, const char *dir, const char *name, char **error_r)
{
	bool existed = false, created = false;
	char *path = xasprintf("%s/%s", dir, name);
	int ret = -1;
	int fd = make_dir(dirfd, dir, name, &created, error_r);
	existed = !created;
	if (fd < 0 || make_subdirs(fd, path, error_r) < 0)
		goto out;
	created = false;
	for (size_t i = 0; i < MAILDIR_DEFAULT_FOLDER_COUNT; i++)
		if (make_folder(fd, path, maildir_default_folders[i], &created, error_r) < 0)
			goto out;
	if (created && fs_fsync_dirfd(fd, path, error_r) < 0)
		goto out;
	/* A new Maildir's own entry must survive a crash too. */
	if (!existed && fs_fsync_dirfd(dirfd, dir, error_r) < 0)
		goto out;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

int maildir_create(const char *path, char **error_r)
{
	char *parent = xstrdup(path);
	char *slash = strrchr(parent, '/');
	if (slash == NULL || slash == parent || slash[1] == '\0') {
		*error_r = xasprintf("%s: not a Maildir path", path);
		free(parent);
		return -1;
	}
	*slash = '\0';
	const char *name = slash + 1;
	struct stat st;
	bool parent_existed = stat(parent, &st) == 0;
	int ret = -1;
	if (!parent_existed && fs_mkdir_p(parent, 0700, error_r) < 0)
		goto out;
	int dirfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", parent, strerror(errno));
		goto out;
	}
	ret = maildir_create_at(dirfd, parent, name, error_r);
	close(dirfd);
	/* The DOMAIN directory fs_mkdir_p made must survive a crash too. */
	if (ret == 0 && !parent_existed)
		ret = fs_fsync_parent(parent, error_r);
out:
	free(parent);
	return ret;
}
