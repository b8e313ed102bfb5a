#include "lib/fsutil.h"
#include "lib/buf.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
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

int fs_memfd_with(const char *name, const void *data, size_t len, char **error_r)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("memfd_create() failed: %s", strerror(errno));
		return -1;
	}
	if (fs_write_all(fd, data, len) < 0) {
		*error_r = xasprintf("write(memfd) failed: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		*error_r = xasprintf("lseek(memfd) failed: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* sync(fd), timed into the fsync histogram. */
static int fs_sync_timed(int (*sync)(int fd), int fd)
{
	int64_t start = metrics_now_ns();
	int rc = sync(fd);
	int err = errno;
	metrics_observe(METRICS_HIST_FSYNC, metrics_now_ns() - start);
	errno = err;
	return rc;
}

int fs_fsync(int fd)
{
	return fs_sync_timed(fsync, fd);
}

int fs_fdatasync(int fd)
{
	return fs_sync_timed(fdatasync, fd);
}

int fs_fsync_dir(const char *path, char **error_r)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	if (fs_fsync(fd) < 0) {
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

/* The temporary name is predictable (NAME.tmp.PID), so it is created with
   O_EXCL | O_NOFOLLOW: whatever already has that name (a file left by a
   crash, or a link planted by whoever can write the directory) makes the
   write fail; it is never written through. */
int fs_write_file_durable_at(int dirfd, const char *dir, const char *name, const void *data, size_t len,
			     mode_t mode, uid_t uid, gid_t gid, char **error_r)
{
	char *tmp = xasprintf("%s.tmp.%ld", name, (long)getpid());
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		*error_r = xasprintf("open(%s/%s) failed: %s", dir, tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	if ((uid != (uid_t)-1 && fchown(fd, uid, gid) < 0) || fs_write_all(fd, data, len) < 0 ||
	    fs_fsync(fd) < 0) {
		*error_r = xasprintf("write(%s/%s) failed: %s", dir, tmp, strerror(errno));
		close(fd);
		unlinkat(dirfd, tmp, 0);
		free(tmp);
		return -1;
	}
	close(fd);
	int rc = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		*error_r = xasprintf("rename(%s/%s, %s/%s) failed: %s", dir, tmp, dir, name, strerror(errno));
		unlinkat(dirfd, tmp, 0);
	} else if (fs_fsync(dirfd) < 0) {
		*error_r = xasprintf("fsync(%s) failed: %s", dir, strerror(errno));
	} else {
		rc = 0;
	}
	free(tmp);
	return rc;
}

int fs_write_file_durable(const char *path, const void *data, size_t len, mode_t mode, char **error_r)
{
	char *copy = xstrdup(path);
	const char *slash = strrchr(copy, '/');
	const char *dir = slash == NULL ? "." : slash == copy ? "/" : copy;
	const char *name = slash == NULL ? copy : slash + 1;
	if (slash != NULL && slash != copy)
		copy[slash - copy] = '\0';
	int rc = -1;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", dir, strerror(errno));
	} else {
		rc = fs_write_file_durable_at(dirfd, dir, name, data, len, mode, (uid_t)-1, (gid_t)-1,
					      error_r);
		close(dirfd);
	}
	free(copy);
	return rc;
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
	for (char *p = copy + 1;; p++) {
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

/* ---- trees the server's user can write ---- */

/* Deep enough for any Maildir++ or spool layout; a deeper tree is refused
   rather than exhausting descriptors. */
#define FS_TREE_MAX_DEPTH 32

int fs_open_dir_at(int dirfd, const char *path, const char *name, char **error_r)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int err = errno;
	struct stat st;
	if ((err == ELOOP || err == ENOTDIR) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		*error_r = S_ISLNK(st.st_mode)
			       ? xasprintf("%s is a symbolic link, not a directory: refusing to use it", path)
			       : xasprintf("%s exists and is not a directory", path);
		errno = err;
		return -1;
	}
	*error_r = xasprintf("open(%s) failed: %s", path, strerror(err));
	errno = err;
	return -1;
}

static int own_fd(int fd, const char *path, uid_t uid, gid_t gid, char **error_r)
{
	struct stat st;
	if (uid == (uid_t)-1 || (fstat(fd, &st) == 0 && st.st_uid == uid && st.st_gid == gid))
		return 0;
	if (fchown(fd, uid, gid) < 0) {
		*error_r = xasprintf("chown(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int fs_open_dir_beneath(const char *base, const char *rel, bool create, mode_t mode, uid_t uid, gid_t gid,
			char **error_r)
{
	if (create && fs_mkdir_p(base, mode, error_r) < 0)
		return -1;
	int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", base, strerror(errno));
		return -1;
	}
	struct buf path = BUF_INIT;
	buf_append_str(&path, base);
	char *copy = xstrdup(rel), *save = NULL;
	for (char *name = strtok_r(copy, "/", &save); name != NULL && fd >= 0;
	     name = strtok_r(NULL, "/", &save)) {
		if (!strcmp(name, "."))
			continue;
		buf_printf(&path, "/%s", name);
		if (!strcmp(name, "..")) {
			*error_r = xasprintf("%s: \"..\" is not allowed here", buf_cstr(&path));
			close(fd);
			fd = -1;
			break;
		}
		bool made = create && mkdirat(fd, name, mode) == 0;
		if (create && !made && errno != EEXIST) {
			*error_r = xasprintf("mkdir(%s) failed: %s", buf_cstr(&path), strerror(errno));
			close(fd);
			fd = -1;
			break;
		}
		int child = fs_open_dir_at(fd, buf_cstr(&path), name, error_r);
		/* A new entry must survive a crash with what is put in it. */
		if (child >= 0 && made && fs_fsync(fd) < 0) {
			*error_r = xasprintf("fsync(%s) failed: %s", buf_cstr(&path), strerror(errno));
			close(child);
			child = -1;
		}
		if (child >= 0 && own_fd(child, buf_cstr(&path), uid, gid, error_r) < 0) {
			close(child);
			child = -1;
		}
		close(fd);
		fd = child;
	}
	free(copy);
	buf_free(&path);
	return fd;
}

int fs_create_at(int dirfd, const char *dir, const char *name, mode_t mode, uid_t uid, gid_t gid,
		 char **error_r)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		*error_r = xasprintf("open(%s/%s) failed: %s", dir, name, strerror(errno));
		return -1;
	}
	if (uid != (uid_t)-1 && fchown(fd, uid, gid) < 0) {
		*error_r = xasprintf("chown(%s/%s) failed: %s", dir, name, strerror(errno));
		close(fd);
		unlinkat(dirfd, name, 0);
		return -1;
	}
	return fd;
}

static int chown_dir(int fd, uid_t uid, gid_t gid, int depth);

/* One entry, never followed: a link is changed itself, a directory through
   a descriptor opened without following, and a file that has other hard
   links is left alone (it could be any file of the file system, linked into
   the tree by whoever can write it).  O_PATH makes the checks and the
   change apply to the same inode. */
static int chown_entry(int dirfd, const char *name, uid_t uid, gid_t gid, bool recursive, int depth)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode) && recursive) {
		int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		return dfd < 0 ? -1 : chown_dir(dfd, uid, gid, depth + 1);
	}
	int rc = 0;
	if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode) && st.st_nlink > 1 &&
	    (st.st_uid != uid || st.st_gid != gid)) {
		errno = EMLINK;
		rc = -1;
	} else if ((st.st_uid != uid || st.st_gid != gid) && fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0) {
		rc = -1;
	}
	close(fd);
	return rc;
}

/* Changes the directory fd (closed here) and everything below it. */
static int chown_dir(int fd, uid_t uid, gid_t gid, int depth)
{
	struct stat st;
	if (depth > FS_TREE_MAX_DEPTH || fstat(fd, &st) < 0 ||
	    ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)) {
		close(fd);
		return -1;
	}
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (chown_entry(dirfd(d), de->d_name, uid, gid, true, depth) < 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int fs_chown_tree_at(int dirfd, const char *name, uid_t uid, gid_t gid, bool recursive)
{
	return chown_entry(dirfd, name, uid, gid, recursive, 0);
}

int fs_chown_tree(const char *path, uid_t uid, gid_t gid, bool recursive)
{
	/* path itself is the caller's (followed); nothing below it is. */
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? fs_chown_tree_at(AT_FDCWD, path, uid, gid, false) : -1;
	if (!recursive) {
		struct stat st;
		int rc =
		    fstat(fd, &st) == 0 && st.st_uid == uid && st.st_gid == gid ? 0 : fchown(fd, uid, gid);
		close(fd);
		return rc;
	}
	return chown_dir(fd, uid, gid, 0);
}

static int remove_entry(int dirfd, const char *path, const char *name, int depth, char **error_r);

/* Empties the directory fd (closed here). */
static int remove_contents(int fd, const char *path, int depth, char **error_r)
{
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		*error_r = xasprintf("opendir(%s) failed: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			rc = remove_entry(dirfd(d), path, de->d_name, depth, error_r);
	}
	closedir(d);
	return rc;
}

static int remove_entry(int dirfd, const char *path, const char *name, int depth, char **error_r)
{
	char *child = xasprintf("%s/%s", path, name);
	int rc = 0;
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) {
		/* a file or a link (never followed), or gone already */
	} else if (errno != EISDIR && errno != EPERM) {
		*error_r = xasprintf("unlink(%s) failed: %s", child, strerror(errno));
		rc = -1;
	} else if (depth >= FS_TREE_MAX_DEPTH) {
		*error_r = xasprintf("%s: too deep", child);
		rc = -1;
	} else {
		int fd = fs_open_dir_at(dirfd, child, name, error_r);
		rc = fd < 0 ? -1 : remove_contents(fd, child, depth + 1, error_r);
		if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0) {
			*error_r = xasprintf("rmdir(%s) failed: %s", child, strerror(errno));
			rc = -1;
		}
	}
	free(child);
	return rc;
}

int fs_remove_tree_at(int dirfd, const char *dir, const char *name, char **error_r)
{
	return remove_entry(dirfd, dir, name, 0, error_r);
}

/* ---- the pieces of a durable commit ---- */

int fs_fsync_dirfd(int dirfd, const char *path, char **error_r)
{
	if (fs_fsync(dirfd) < 0) {
		*error_r = xasprintf("fsync(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int fs_write_new_file(const char *path, const void *data, size_t len, mode_t mode, int64_t mtime,
		      char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	/* The time is set before the fsync so that it is durable with the data. */
	struct timespec times[2] = {{0, UTIME_OMIT}, {(time_t)mtime, 0}};
	if (fs_write_all(fd, data, len) < 0 || (mtime != 0 && futimens(fd, times) < 0) || fs_fsync(fd) < 0) {
		*error_r = xasprintf("write(%s) failed: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

int fs_append_durable(const char *path, const void *data, size_t len, mode_t mode, char **error_r)
{
	bool created = false;
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		created = fd >= 0;
	}
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fs_write_all(fd, data, len) < 0 || fs_fsync(fd) < 0) {
		*error_r = xasprintf("write(%s) failed: %s", path, strerror(errno));
		if (ftruncate(fd, st.st_size) == 0)
			fs_fsync(fd);
		close(fd);
		return -1;
	}
	close(fd);
	return created ? fs_fsync_parent(path, error_r) : 0;
}

/* The copy fallback of fs_link_or_copy_at(): -1 with errno. */
static int copy_at(int src_dirfd, const char *src, int dest_dirfd, const char *dest)
{
	int in = openat(src_dirfd, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (in < 0)
		return -1;
	if (fstat(in, &st) < 0) {
		int err = errno;
		close(in);
		errno = err;
		return -1;
	}
	int out = openat(dest_dirfd, dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			 st.st_mode & 07777);
	if (out < 0) {
		int err = errno;
		close(in);
		errno = err;
		return -1;
	}
	char chunk[65536];
	ssize_t n;
	int rc = 0;
	while (rc == 0 && (n = read(in, chunk, sizeof(chunk))) != 0) {
		if (n < 0)
			rc = errno == EINTR ? 0 : -1;
		else
			rc = fs_write_all(out, chunk, (size_t)n);
	}
	if (rc == 0)
		rc = fs_fsync(out);
	int err = errno;
	close(in);
	close(out);
	if (rc < 0) {
		unlinkat(dest_dirfd, dest, 0);
		errno = err;
	}
	return rc;
}

int fs_link_or_copy_at(int src_dirfd, const char *src, int dest_dirfd, const char *dest)
{
	if (linkat(src_dirfd, src, dest_dirfd, dest, 0) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return -1;
	return copy_at(src_dirfd, src, dest_dirfd, dest);
}
