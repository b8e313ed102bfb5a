#ifndef STORE_DELIVER_H
#define STORE_DELIVER_H
/* Local delivery into Maildir++ (new/ of a user's INBOX).  The message file
   is written once and hard-linked into every recipient's Maildir, so one
   data write serves all local recipients.  Blocking: call on a job thread
   (lib/jobs.h) from the event loop. */
#include <stdbool.h>
#include <stdint.h>

/* Returns the Maildir of a user: DATA_DIR/mail/DOMAIN/LOCAL (caller frees). */
char *deliver_maildir_path(const char *data_dir, const char *address);

/* A unique Maildir file name for a message of size bytes:
   "SECS.M<usec>P<pid>Q<n>.HOST,S=<size>" (the size is the exact number of
   octets, lines end in CRLF as received). Caller frees. */
char *deliver_unique_name(uint64_t size);

/* Hard-links the already fsynced file src (relative to src_dirfd, which
   may be AT_FDCWD) into MAILDIR/new/ under a unique name (creating the
   Maildir layout when missing; copying, fsynced, where the file system
   cannot link: fs_link_or_copy_at()) and returns that name.  The directory
   is not fsynced: call deliver_sync_dirs() once for all directories
   touched in a batch.  Messages are delivered through delivery/delivery.h,
   which calls this. */
int deliver_link(const char *maildir, int src_dirfd, const char *src, uint64_t size, char **name_r,
		 char **error_r);

/* fsyncs MAILDIR/new for each maildir (duplicates are synced once). */
int deliver_sync_dirs(const char *const *maildirs, int count, char **error_r);

/* Current usage of a Maildir in bytes (sum of the S= sizes, or stat() for
   files without one), all folders included. */
int deliver_usage(const char *maildir, uint64_t *bytes_r);
#endif
