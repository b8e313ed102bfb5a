/* The local backend's users' stores without a handle: where a user's
   Maildir is (DATA_DIR/mail/DOMAIN/LOCAL), making and removing it as root
   for the server's user, and its usage read from the file names. */
#include "store/store_local_private.h"
#include "store/maildir_create.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *store_local_user_location(const struct store_config *conf, const char *address)
{
	const char *at = strrchr(address, '@');
	if (at == NULL)
		return xasprintf("%s/mail/%s", conf->data_dir, address);
	return xasprintf("%s/mail/%s/%.*s", conf->data_dir, at + 1, (int)(at - address), address);
}

/* Opens DATA_DIR/mail/DOMAIN of address (made when create, owned by
   uid:gid), refusing links: the CLI runs as root in a tree the server's
   user can write.  *local_r gets LOCAL, *dir_r the directory's path for
   messages (caller frees both). */
static int open_domain_dir(const struct store_config *conf, const char *address, bool create, uid_t uid,
			   gid_t gid, char **local_r, char **dir_r, char **error_r)
{
	const char *at = strrchr(address, '@');
	if (at == NULL) {
		*error_r = xasprintf("invalid address %s: no @domain", address);
		errno = EINVAL;
		return -1;
	}
	char *rel = xasprintf("mail/%s", at + 1);
	int fd = fs_open_dir_beneath(conf->data_dir, rel, create, 0700, uid, gid, error_r);
	int err = errno;
	free(rel);
	errno = err; /* the caller tells a missing directory from an error */
	if (fd >= 0) {
		*local_r = xstrndup(address, (size_t)(at - address));
		*dir_r = xasprintf("%s/mail/%s", conf->data_dir, at + 1);
	}
	return fd;
}

int store_local_user_create(const struct store_config *conf, const char *address, uid_t uid, gid_t gid,
			    char **error_r)
{
	char *local, *dir;
	int dirfd = open_domain_dir(conf, address, true, uid, gid, &local, &dir, error_r);
	if (dirfd < 0)
		return -1;
	int rc = maildir_create_at(dirfd, dir, local, error_r);
	/* Reported, not fatal: the mailbox exists either way. */
	if (rc == 0 && uid != (uid_t)-1 && fs_chown_tree_at(dirfd, local, uid, gid, true) < 0)
		log_warn("store user-create error=\"chown(%s/%s) failed: %s\"", dir, local, strerror(errno));
	free(local);
	free(dir);
	close(dirfd);
	return rc;
}

int store_local_user_purge(const struct store_config *conf, const char *address, char **error_r)
{
	char *local, *dir;
	int dirfd = open_domain_dir(conf, address, false, (uid_t)-1, (gid_t)-1, &local, &dir, error_r);
	if (dirfd < 0) {
		if (errno != ENOENT)
			return -1;
		free(*error_r);
		*error_r = NULL;
		return 0;
	}
	int rc = fs_remove_tree_at(dirfd, dir, local, error_r);
	/* A failed fsync is reported; the tree is gone all the same. */
	char *error = NULL;
	if (rc == 0 && fs_fsync_dirfd(dirfd, dir, &error) < 0) {
		log_warn("store user-purge error=\"%s\"", error);
		free(error);
	}
	free(local);
	free(dir);
	close(dirfd);
	return rc;
}

/* Size of a Maildir file from its ",S=" field, or -1. */
static long long name_size(const char *name)
{
	const char *s = strstr(name, ",S=");
	if (s == NULL)
		return -1;
	s += 3;
	if (!isdigit((unsigned char)*s))
		return -1;
	return strtoll(s, NULL, 10);
}

static void add_dir_usage(const char *dir, uint64_t *bytes)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		long long n = name_size(de->d_name);
		if (n < 0) {
			struct stat st;
			char *path = xasprintf("%s/%s", dir, de->d_name);
			n = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : 0;
			free(path);
		}
		*bytes += (uint64_t)n;
	}
	closedir(d);
}

static void add_folder_usage(const char *folder, uint64_t *bytes)
{
	static const char *const subs[] = {"new", "cur"};
	for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
		char *dir = xasprintf("%s/%s", folder, subs[i]);
		add_dir_usage(dir, bytes);
		free(dir);
	}
}

int store_local_usage(const char *maildir, uint64_t *bytes_r, char **error_r)
{
	uint64_t bytes = 0;
	*bytes_r = 0;
	DIR *d = opendir(maildir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("opendir(%s) failed: %s", maildir, strerror(errno));
		return -1;
	}
	add_folder_usage(maildir, &bytes);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		/* Maildir++ folders are ".Name" directories. */
		if (de->d_name[0] != '.' || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *folder = xasprintf("%s/%s", maildir, de->d_name);
		add_folder_usage(folder, &bytes);
		free(folder);
	}
	closedir(d);
	*bytes_r = bytes;
	return 1;
}
