/* Maildir++ layout creation (used by `postoffice user add` and by delivery
   when a Maildir is missing). */
#include "store/maildir_create.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const maildir_default_folders[MAILDIR_DEFAULT_FOLDER_COUNT] = {
	"Sent", "Drafts", "Trash", "Junk", "Archive",
};

/* mkdir that tolerates an existing directory; *created_r is set when this
   call made it. */
static int mkdir_one(const char *path, bool *created_r, char **error_r)
{
	if (mkdir(path, 0700) == 0) {
		*created_r = true;
		return 0;
	}
	struct stat st;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	*error_r = xasprintf("mkdir(%s) failed: %s", path,
			     errno == EEXIST ? "exists and is not a directory" : strerror(errno));
	return -1;
}

/* DIR/cur, DIR/new, DIR/tmp, fsyncing DIR when it gained entries. */
static int make_subdirs(const char *dir, char **error_r)
{
	static const char *const subdirs[] = { "cur", "new", "tmp" };
	bool created = false;
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		char *sub = xasprintf("%s/%s", dir, subdirs[i]);
		int rc = mkdir_one(sub, &created, error_r);
		free(sub);
		if (rc < 0)
			return -1;
	}
	return created ? fs_fsync_dir(dir, error_r) : 0;
}

static int make_folder(const char *root, const char *name, bool *created_r, char **error_r)
{
	char *dir = xasprintf("%s/.%s", root, name);
	char *marker = xasprintf("%s/maildirfolder", dir);
	int ret = -1;
	if (mkdir_one(dir, created_r, error_r) < 0 || make_subdirs(dir, error_r) < 0)
		goto out;
	int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", marker, strerror(errno));
		goto out;
	}
	close(fd);
	ret = 0;
out:
	free(marker);
	free(dir);
	return ret;
}

int maildir_create(const char *path, char **error_r)
{
	struct stat st;
	bool existed = stat(path, &st) == 0;
	if (!existed && fs_mkdir_p(path, 0700, error_r) < 0)
		return -1;
	bool created = false;
	if (make_subdirs(path, error_r) < 0)
		return -1;
	for (size_t i = 0; i < MAILDIR_DEFAULT_FOLDER_COUNT; i++)
		if (make_folder(path, maildir_default_folders[i], &created, error_r) < 0)
			return -1;
	if (created && fs_fsync_dir(path, error_r) < 0)
		return -1;
	/* A new Maildir's own entry (and its DOMAIN directory's, which
	   fs_mkdir_p may have made) must survive a crash too. */
	if (!existed) {
		char *copy = xstrdup(path);
		char *parent = xstrdup(dirname(copy));
		int rc = fs_fsync_dir(parent, error_r) < 0 ? -1 : fs_fsync_parent(parent, error_r);
		free(parent);
		free(copy);
		if (rc < 0)
			return -1;
	}
	return 0;
}
