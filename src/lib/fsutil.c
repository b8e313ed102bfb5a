#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_fsync_dir(const char *path, char **error_r)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	if (fsync(fd) < 0) {
		*error_r = xasprintf("fsync(%s) failed: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int fs_fsync_parent(const char *path, char **error_r)
{
	char *copy = xstrdup(path);
	int rc = fs_fsync_dir(dirname(copy), error_r);
	free(copy);
	return rc;
}

int fs_write_file_durable(const char *path, const void *data, size_t len, mode_t mode, char **error_r)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	if (fs_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		*error_r = xasprintf("write(%s) failed: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		*error_r = xasprintf("rename(%s, %s) failed: %s", tmp, path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return fs_fsync_parent(path, error_r);
}

int fs_read_file(const char *path, char **data_r, size_t *len_r, char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, len = 0;
	char *data = xmalloc(cap);
	for (;;) {
		if (cap - len < 2) {
			cap *= 2;
			data = xrealloc(data, cap);
		}
		ssize_t n = read(fd, data + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("read(%s) failed: %s", path, strerror(errno));
			free(data);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	data[len] = '\0';
	*data_r = data;
	if (len_r != NULL)
		*len_r = len;
	return 0;
}

int fs_mkdir_p(const char *path, mode_t mode, char **error_r)
{
	char *copy = xstrdup(path);
	for (char *p = copy + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			*error_r = xasprintf("mkdir(%s) failed: %s", copy, strerror(errno));
			free(copy);
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(copy);
	return 0;
}

int fs_chown_tree(const char *path, uid_t uid, gid_t gid, bool recursive)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return -1;
	if ((st.st_uid != uid || st.st_gid != gid) && lchown(path, uid, gid) < 0)
		return -1;
	if (!recursive || !S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *child = xasprintf("%s/%s", path, de->d_name);
		if (fs_chown_tree(child, uid, gid, true) < 0)
			rc = -1;
		free(child);
	}
	closedir(d);
	return rc;
}
