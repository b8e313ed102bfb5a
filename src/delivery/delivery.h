#ifndef DELIVERY_DELIVERY_H
#define DELIVERY_DELIVERY_H
/* The one way a message enters the system (as Postfix's cleanup): SMTP DATA
   and BDAT, `sendmail` spooling, bounces, the queue runner's local
   deliveries and `fetch` all go through here.

   The message is written once, to a temporary file (DATA_DIR/tmp/ID), and
   committed in this order:
     1. the file is fdatasynced;
     2. it is delivered into the INBOX of each local recipient's store
	(store.h: store_delivery_commit(); the local backend hard-links it
	into new/ of each Maildir, one write serving every recipient, and
	fsyncs those directories, each once);
     3. for remote recipients it is hard-linked into the queue with its
	envelope (queue_enqueue(), which fsyncs the spool directory).
   Only when delivery_commit() returns 0 is the message on stable storage
   for every recipient: the 2xx reply to DATA is sent after that, never
   before (RFC 5321 4.2.5; DESIGN.md: the 2xx is a promise).  A failure at
   any step takes back the copies already made, so the message is either
   accepted for all recipients or for none.

   Group commit: delivery_commit_async() runs the commit on the job pool
   (lib/jobs.h); the fsyncs of concurrent commits from several threads are
   merged by the file system's journal.

   Filters: what delivery_append() receives passes through the filters
   added with delivery_add_filter(), in order, before it reaches the file.
   This is where a signer or a verifier (DKIM) sits: it sees the message
   stream and may change it, hold it back and emit more at the end.

   Life cycle:
     d = delivery_begin(&set, &error);          the temporary file
     delivery_append(d, data, len)...           the message
     delivery_add_user(d, &store_conf, address)... local recipients
     delivery_set_remote(d, &envelope)          remote recipients
     delivery_commit(d, &error)                 blocking (a job thread),
       or delivery_commit_async(d, done, ctx)   from an event loop
     delivery_free(&d)                          the temporary name goes
   delivery_abort(&d) gives up on a message before it is committed.

   Not thread-safe: one thread uses a delivery at a time (the async commit
   hands it to a pool thread and back). */
#include "queue/queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct delivery;
struct store_config;

struct delivery_settings {
	/* DATA_DIR: the file goes into its tmp/ (made when missing), remote
	   recipients into its queue/.  May be NULL with tmp_dir and no
	   remote recipients (fetch). */
	const char *data_dir;
	/* The directory for the temporary file instead of DATA_DIR/tmp: the
	   Maildir's own tmp/ for fetch, so that the link stays on one file
	   system. */
	const char *tmp_dir;
	/* The file's name and the queue id (letters and digits); NULL: a new
	   queue id (id_new()). */
	const char *id;
	/* Not NULL: "Return-Path: <return_path>" is written first (RFC 5321
	   4.4; "" is the null sender).  Local copies keep the line; the queue's
	   copy of the message starts after it. */
	const char *return_path;
	/* The file's mode; 0 means 0640. */
	mode_t mode;
	/* Run as root for the server's user (`sendmail`): the file, and a
	   tmp/ made for it, belong to uid:gid. */
	bool set_owner;
	uid_t uid;
	gid_t gid;
};

/* Starts a message: creates the temporary file (O_EXCL | O_NOFOLLOW, never
   through an existing name, in a DATA_DIR/tmp opened without following a
   link: lib/fsutil.h) and writes the Return-Path line when asked.
   Returns the delivery, or NULL with *error_r (caller frees). */
struct delivery *delivery_begin(const struct delivery_settings *set, char **error_r);
/* Starts a delivery of a message already on stable storage (the queue
   runner's ID.msg): nothing can be appended, the commit only delivers it
   into users' stores (step 2), and the file is never removed here.  NULL with
   *error_r when path cannot be read. */
struct delivery *delivery_begin_file(const char *path, char **error_r);

/* The queue id (the temporary file's name). */
const char *delivery_id(const struct delivery *d);
/* The temporary file's directory (for a filter's own scratch file). */
int delivery_dirfd(const struct delivery *d);
/* Octets in the file so far (after the filters): the Return-Path line and
   everything appended.  Final once committed. */
uint64_t delivery_size(const struct delivery *d);

/* Appends len bytes of the message (through the filters).  Writes are
   batched (64 KiB).  -1 when this or an earlier write failed (the error is
   kept for delivery_error() and delivery_commit(), which then fails); the
   caller may keep appending and ignore the result until the end. */
int delivery_append(struct delivery *d, const void *data, size_t len);
/* The first error of delivery_append(), or NULL. */
const char *delivery_error(const struct delivery *d);

/* A local recipient: the message goes into the INBOX of the store of the
   user address in conf (store.h; made when missing).  The same user given
   twice gets one copy. */
void delivery_add_user(struct delivery *d, const struct store_config *conf, const char *address);
/* The local recipients get the message in folder (store.h:
   store_delivery_set_folder(); STORE_FOLDER_JUNK for quarantined mail)
   instead of the INBOX.  Before the local delivery: a filter's finish()
   may call it. */
void delivery_set_folder(struct delivery *d, const char *folder);
/* A Maildir that is no user's store (`fetch`): the message goes into
   MAILDIR/new (made when missing). */
void delivery_add_maildir(struct delivery *d, const char *maildir);
/* The remote recipients: the message is queued with this envelope (see
   queue_enqueue()).  env and all it points to must stay valid until the
   commit returns; settings.data_dir is needed. */
void delivery_set_remote(struct delivery *d, const struct queue_envelope *env);

/* Commits (see above).  Blocking: fsync.  0 once the message is on stable
   storage for every recipient; -1 with *error_r (caller frees) and nothing
   delivered anywhere.  Once per delivery. */
int delivery_commit(struct delivery *d, char **error_r);
/* Runs delivery_commit() on a job thread (lib/jobs.h) and then calls
   done(ctx, error) in the event loop: error is NULL on success, else the
   reason (freed after done returns).  d must not be used until then; done
   usually ends with delivery_free(). */
void delivery_commit_async(struct delivery *d, void (*done)(void *ctx, const char *error), void *ctx);

/* Gives up on a message not committed: the file and everything of it are
   removed.  A committed message cannot be taken back (that is a bug:
   aborts the process). */
void delivery_abort(struct delivery **d);
/* Frees d and removes the temporary name.  What a successful commit made
   stays; a message not (successfully) committed is gone. */
void delivery_free(struct delivery **d);

/* ---- filters ----
   A filter receives the message in pieces through write() and passes
   what it produces on with delivery_filter_output(); finish() comes once
   at the end of the message (inside the commit, on the commit's thread)
   and passes on whatever it still holds.  A filter that must see the
   whole message before it can emit anything (a DKIM signer adding its
   header) holds the message until finish(). */
struct delivery_filter {
	const char *name;
	/* 0, or -1 with *error_r (caller frees): the message then fails. */
	int (*write)(struct delivery_filter *f, const void *data, size_t len, char **error_r);
	int (*finish)(struct delivery_filter *f, char **error_r);
	/* Frees f (called by delivery_free()/delivery_abort()). */
	void (*free)(struct delivery_filter *f);
	/* Set by delivery_add_filter(). */
	struct delivery *delivery;
	struct delivery_filter *next;
};

/* Adds f (owned by d from now on) after the filters already there, before
   the first delivery_append(): filters see every appended byte, not the
   Return-Path line delivery_begin() writes. */
void delivery_add_filter(struct delivery *d, struct delivery_filter *f);
/* Passes data from f to the next filter or, after the last, to the file. */
int delivery_filter_output(struct delivery_filter *f, const void *data, size_t len, char **error_r);
#endif
