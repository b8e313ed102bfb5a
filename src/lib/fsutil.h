#ifndef LIB_FSUTIL_H
#define LIB_FSUTIL_H
/* Durable file helpers: the one way files are committed to stable storage
   (write to a temporary name, fsync, rename, fsync the directory). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all of buf to fd, retrying on EINTR and short writes. */
int fs_write_all(int fd, const void *buf, size_t len);
/* An anonymous memory file (memfd_create, close-on-exec) named name that
   holds data[0..len), positioned at its start: what a reader of message
   files gets when the octets come from a database.  The fd, or -1 with
   *error_r. */
int fs_memfd_with(const char *name, const void *data, size_t len, char **error_r);
/* fsync(fd) and fdatasync(fd), timed into the fsync latency histogram
   (lib/metrics.h).  Return what the system call returns, errno kept. */
int fs_fsync(int fd);
int fs_fdatasync(int fd);
/* fsyncs the directory at path. */
int fs_fsync_dir(const char *path, char **error_r);
/* fsyncs the directory that contains path. */
int fs_fsync_parent(const char *path, char **error_r);
/* Writes data to path atomically and durably (tmp + fsync + rename + fsync
   dir).  The temporary file PATH.tmp.PID is created with O_EXCL |
   O_NOFOLLOW: when anything already has that name (a leftover, or a link
   planted by whoever can write the directory) the write fails and nothing
   is written through it. */
int fs_write_file_durable(const char *path, const void *data, size_t len, mode_t mode, char **error_r);
/* The same for the entry name of the directory dirfd (dir names it in
   error messages); the temporary file gets the owner uid:gid before it is
   renamed into place unless uid is (uid_t)-1. */
int fs_write_file_durable_at(int dirfd, const char *dir, const char *name, const void *data, size_t len,
			     mode_t mode, uid_t uid, gid_t gid, char **error_r);
/* Reads a whole file into *data_r (NUL-terminated; caller frees). */
int fs_read_file(const char *path, char **data_r, size_t *len_r, char **error_r);
/* mkdir -p with mode; existing directories are fine. */
int fs_mkdir_p(const char *path, mode_t mode, char **error_r);

/* ---- root in a tree that the server's user can write ----
   DATA_DIR belongs to the unprivileged server user, who can put symbolic
   links and hard links anywhere below it.  A process running as root there
   follows nothing below the path it was given: directories are opened one
   component at a time with O_NOFOLLOW, files are created with O_EXCL |
   O_NOFOLLOW, ownership is changed through descriptors. */

/* Opens the directory BASE/REL.  BASE, the administrator's path, is
   followed as given; every component of REL must be a directory, never a
   symbolic link ("... is a symbolic link, not a directory: refusing to use
   it"), and ".." is refused.  With create, BASE and missing components are
   made with mode (each new entry fsynced); unless uid is (uid_t)-1 every
   component of REL is made owned by uid:gid.  Returns the descriptor
   (O_DIRECTORY, close-on-exec) or -1 with *error_r; errno is ENOENT when a
   component is missing (without create). */
int fs_open_dir_beneath(const char *base, const char *rel, bool create, mode_t mode, uid_t uid, gid_t gid,
			char **error_r);
/* Opens the entry name of dirfd as a directory without following a link:
   -1 with a clear error for a link or a non-directory (path names the
   entry in messages; errno is kept). */
int fs_open_dir_at(int dirfd, const char *path, const char *name, char **error_r);
/* Creates the new file name in dirfd (O_EXCL | O_NOFOLLOW: an existing
   entry, link or not, fails with EEXIST) owned by uid:gid unless uid is
   (uid_t)-1.  Returns the descriptor (write-only) or -1 with *error_r
   (dir names the directory in it). */
int fs_create_at(int dirfd, const char *dir, const char *name, mode_t mode, uid_t uid, gid_t gid,
		 char **error_r);
/* Changes ownership of path (and, when recursive, everything below it).
   path itself is followed; below it nothing is: links are changed
   themselves, directories are entered through O_NOFOLLOW descriptors, and
   files with more than one hard link are left alone (-1 at the end).  Trees
   deeper than 32 levels are not finished (-1). */
int fs_chown_tree(const char *path, uid_t uid, gid_t gid, bool recursive);
/* The same for the entry name of dirfd, which is not followed either. */
int fs_chown_tree_at(int dirfd, const char *name, uid_t uid, gid_t gid, bool recursive);
/* Removes the entry name of dirfd and, for a directory, everything below it
   (rm -r), following no link.  A missing entry is not an error.  dir names
   dirfd in error messages.  0 or -1 with *error_r. */
int fs_remove_tree_at(int dirfd, const char *dir, const char *name, char **error_r);

/* ---- the pieces of a durable commit ----
   Message files are written once and then linked into place (Maildir
   new/, the spool): the file is fsynced when written, the directories it
   is linked into once per batch (delivery/delivery.h). */

/* fsyncs the directory open as dirfd (path names it in the error). */
int fs_fsync_dirfd(int dirfd, const char *path, char **error_r);
/* Creates the new file path (O_EXCL | O_NOFOLLOW: never through an
   existing name), writes data, gives it the modification time mtime
   (seconds) unless mtime is 0, and fsyncs it.  Its directory is not
   fsynced: the caller renames or links the file into place and fsyncs the
   directory there.  On failure nothing is left at path. */
int fs_write_new_file(const char *path, const void *data, size_t len, mode_t mode, int64_t mtime,
		      char **error_r);
/* Appends data to path (made with mode when missing; a new file's
   directory is fsynced too) and fsyncs it.  When the write fails the file
   is cut back to its old length: no partial record stays behind. */
int fs_append_durable(const char *path, const void *data, size_t len, mode_t mode, char **error_r);
/* Makes dest (in dest_dirfd) a hard link of src (in src_dirfd) or, where
   the file system cannot link it (EXDEV: another file system, EPERM,
   EMLINK), a copy with src's permission bits, written and fsynced.
   Neither name is followed when it is a symbolic link; an existing dest
   fails with EEXIST.  0, or -1 with errno as link(2) sets it (ENOENT: src
   or dest's directory is missing) and nothing at dest.  dest's directory
   is not fsynced. */
int fs_link_or_copy_at(int src_dirfd, const char *src, int dest_dirfd, const char *dest);
#endif
