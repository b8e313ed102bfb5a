#ifndef QUEUE_SPOOL_H
#define QUEUE_SPOOL_H
/* The spool.  Its storage is a backend (queue_backend.h) chosen for the
   whole process by queue_backend_select(); every function below that reads
   or writes the spool dispatches to it.  The backend "local" (the default,
   queue_local.c) keeps the spool on disk, DATA_DIR/queue/:
     ID.msg    the message (hard link of the file delivery/ wrote);
	       its content starts `offset` bytes in, after a Return-Path
	       line meant for local delivery
     ID.env    the envelope and per-recipient state, a small text file
	       rewritten atomically and durably on every change
     ID.hold   present while the message is held
     ID.flush  asks the runner to retry the message now (removed by it)
     ID.lease  who holds the message's lease and until when (flock()ed
	       while it is read and changed)
     flush-all asks the runner to retry every message now (removed by it)
     runner.pid  the queue runner's pid, written by the runner (the runner
	       also flushes everything on SIGUSR1, but the commands never
	       signal it: the server's user can write this file)
   The server's user owns the directory; commands run as root open it
   without following links and create files with O_EXCL | O_NOFOLLOW.
   Reads and writes here are blocking. */
#include "lib/buf.h"
#include "queue/queue.h"

#include <stdbool.h>
#include <stdint.h>

#define QUEUE_FLUSH_ALL "flush-all"
#define QUEUE_RUNNER_PID "runner.pid"

enum queue_rcpt_state { QUEUE_RCPT_PENDING, QUEUE_RCPT_DELIVERED, QUEUE_RCPT_BOUNCED };

struct queue_entry_rcpt {
	char *address;
	char *orcpt;     /* "rfc822;x@y" (xtext-decoded) or NULL */
	unsigned notify; /* enum smtp_notify bits */
	enum queue_rcpt_state state;
	int attempts;
	int64_t next_attempt; /* unix time */
	int64_t last_attempt; /* 0: never */
	bool delay_notified;  /* a "delayed" DSN was sent */
	char *remote_mta;     /* host that gave last_reply, or NULL */
	char *last_reply;     /* "451 4.7.1 text" (one line) or NULL */
};

struct queue_entry {
	char *id;
	int64_t created;
	uint64_t offset;
	char *sender; /* "" = null sender */
	char *envid;  /* xtext-decoded, or NULL */
	enum smtp_ret ret;
	enum smtp_body body;
	bool smtputf8;
	char *auth_user, *client_ip, *helo; /* or NULL */
	struct queue_entry_rcpt *rcpts;
	size_t nrcpts;
	bool held; /* from ID.hold, not stored in ID.env */
};

/* The name of the default backend, and the process's choice: 0, or -1
   with *error_r for an unknown name.  Call it before any other function
   here (normally never: "local" needs no choice). */
#define QUEUE_BACKEND_DEFAULT "local"
int queue_backend_select(const char *name, char **error_r);
/* The same with the backend's location: the conninfo of "postgresql"
   (which connects on first use, one connection per thread), ignored by
   "local".  0, or -1 with *error_r (unknown name, or no conninfo). */
int queue_backend_open(const char *name, const char *location, char **error_r);
/* The backend of [storage] backend ("postgresql" with [postgresql]
   conninfo, else "local"): what serve, the queue runner and the commands
   call once after loading the configuration. */
struct config;
int queue_backend_open_config(const struct config *cfg, char **error_r);
const char *queue_backend_name(void);
/* True when the spool is shared by several nodes (every backend but
   "local"): the runner then claims due messages with queue_claim() at a
   short interval instead of watching DATA_DIR/queue. */
bool queue_backend_shared(void);

/* The local backend's layout, which the runner and the CLI still read
   directly: DATA_DIR/queue (caller frees). */
char *queue_dir(const char *data_dir);
/* QDIR/ID.SUFFIX (caller frees). */
char *queue_path(const char *qdir, const char *id, const char *suffix);
/* True for the spool's id syntax: 1-40 letters and digits. */
bool queue_id_valid(const char *id);

/* Fills e from env (copies every string). */
void queue_entry_from_envelope(struct queue_entry *e, const char *id, uint64_t offset,
			       const struct queue_envelope *env, int64_t now);
/* The ID.env text of e. */
void queue_entry_serialize(const struct queue_entry *e, struct buf *out);
/* Parses ID.env text.  0, or -1 with *error_r (caller frees). */
int queue_entry_parse(struct queue_entry *e, const char *text, size_t len, char **error_r);
void queue_entry_free(struct queue_entry *e);
/* The earliest next attempt of a pending recipient (when the message is
   due); INT64_MAX when none is pending. */
int64_t queue_entry_due(const struct queue_entry *e);
/* Adds a recipient (copies the strings), pending and due now. */
struct queue_entry_rcpt *queue_entry_add_rcpt(struct queue_entry *e, const char *address, const char *orcpt,
					      unsigned notify);

/* Loads QDIR/ID.env (and the hold marker).  0, 1 when the entry does not
   exist (any more), -1 with *error_r. */
int queue_entry_load(const char *qdir, const char *id, struct queue_entry *e, char **error_r);
/* Writes QDIR/ID.env durably (tmp + fsync + rename + fsync dir).  When
   only_if_exists is set and ID.env was removed meanwhile (queue delete),
   nothing is written and 1 is returned.  With a holder (a runner that
   leased the message; NULL for commands), nothing is written and 2 is
   returned unless the lease is still holder's: a runner whose lease ran
   out and was taken over never overwrites the new holder's state (checked
   in the same atomic step as the write). */
int queue_entry_save(const char *qdir, const struct queue_entry *e, bool only_if_exists, const char *holder,
		     char **error_r);
/* Removes ID.env, then ID.msg, the markers and the lease (no fsync: a
   message that comes back after a crash is delivered again, never lost):
   the message is complete (delivered, or bounced with its DSN queued). */
void queue_entry_remove(const char *qdir, const char *id);

/* Leases (claims) the message for holder (a node or runner name) until
   now + seconds, so that several runners on one spool never deliver it
   twice: 1 when holder has the lease now (it was free, expired, or
   already holder's: renewed), 0 when another holder's lease runs past
   now, 2 when there is no such message, -1 with *error_r. */
int queue_entry_lease(const char *qdir, const char *id, const char *holder, int64_t now, unsigned seconds,
		      char **error_r);
/* Claims up to max due messages for holder until now + seconds: messages
   not held, with a pending recipient due at or before now, whose lease is
   free or ran out (queue_entry_lease() for each), the earliest due first.
   Holders claiming at once never get the same message.  0 with *ids_r
   (the caller frees each id and the array; NULL when none) and *count_r,
   or -1 with *error_r. */
int queue_claim(const char *qdir, const char *holder, int64_t now, unsigned seconds, size_t max,
		char ***ids_r, size_t *count_r, char **error_r);
/* Gives holder's lease back: 1 released, 0 not held by holder (expired
   and taken by another, or never taken), -1 with *error_r. */
int queue_entry_release(const char *qdir, const char *id, const char *holder, char **error_r);
/* Opens the message (ID.msg) for reading: 1 with *fd_r (the caller closes
   it; its content starts at the entry's offset), 0 when there is no such
   message, -1 with *error_r. */
int queue_msg_open(const char *qdir, const char *id, int *fd_r, char **error_r);

/* Puts the entry e into the spool as it is (the move of a spool from one
   backend to another): its id, creation time, envelope, held flag and
   every recipient's state (attempts, next and last attempt, last reply),
   with the message file src (relative to src_dirfd, which may be
   AT_FDCWD; its content starts e->offset bytes in), durably as
   queue_enqueue() writes.  The runner is not woken: the entry is due when
   its recipients' next attempts say.  0; 1 when the spool has a message
   with that id already (nothing is changed); -1 with *error_r, also when
   the backend cannot import (the local one: its spool is what the others
   import from). */
int queue_entry_import(const char *data_dir, const struct queue_entry *e, int src_dirfd, const char *src,
		       char **error_r);

/* Whether a queue runner of the local spool in data_dir seems to run
   (DATA_DIR/queue/runner.pid names a live process): a server on that data
   directory in local mode runs.  No signal is sent to the process, whose
   pid the server's user can write. */
bool queue_runner_running(const char *data_dir);

/* Files the spool writes from now on get this owner before they are
   renamed into place, and so does the spool directory when it is made (a
   command run as root writes for the server user, so the runner can read
   what inotify reports at once).  -1: unchanged. */
void queue_set_owner(uid_t uid, gid_t gid);

/* Calls cb for every entry in the spool, ordered by creation time.  A
   non-zero return from cb stops the walk.  0 or -1. */
int queue_walk(const char *data_dir, int (*cb)(void *ctx, const struct queue_entry *e), void *ctx,
	       char **error_r);

/* Control (the CLI).  Each returns 0, 1 when there is no such message, or
   -1 with *error_r. */
int queue_hold(const char *data_dir, const char *id, bool hold, char **error_r);
int queue_delete(const char *data_dir, const char *id, char **error_r);
/* Asks the runner to retry id now, or every message when id is NULL, by
   creating ID.flush or QUEUE_FLUSH_ALL, which the runner watches.  1 when
   the runner is not running (the request then waits for its next start). */
int queue_flush(const char *data_dir, const char *id, char **error_r);

/* Names for display and the envelope file. */
const char *queue_rcpt_state_name(enum queue_rcpt_state state);
const char *queue_ret_name(enum smtp_ret ret);
const char *queue_body_name(enum smtp_body body);
/* "SUCCESS,FAILURE" / "NEVER" / "" for the default, into a static buffer. */
const char *queue_notify_string(unsigned notify);
#endif
