#ifndef LIB_FSUTIL_H
#define LIB_FSUTIL_H
/* Durable file helpers: the one way files are committed to stable storage
   (write to a temporary name, fsync, rename, fsync the directory). */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes all of buf to fd, retrying on EINTR and short writes. */
int fs_write_all(int fd, const void *buf, size_t len);
/* fsyncs the directory at path. */
int fs_fsync_dir(const char *path, char **error_r);
/* fsyncs the directory that contains path. */
int fs_fsync_parent(const char *path, char **error_r);
/* Writes data to path atomically and durably (tmp + fsync + rename + fsync dir). */
int fs_write_file_durable(const char *path, const void *data, size_t len, mode_t mode, char **error_r);
/* Reads a whole file into *data_r (NUL-terminated; caller frees). */
int fs_read_file(const char *path, char **data_r, size_t *len_r, char **error_r);
/* mkdir -p with mode; existing directories are fine. */
int fs_mkdir_p(const char *path, mode_t mode, char **error_r);
/* Changes ownership of path (and, when recursive, everything below it). */
int fs_chown_tree(const char *path, uid_t uid, gid_t gid, bool recursive);
#endif
