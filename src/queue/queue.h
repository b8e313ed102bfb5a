#ifndef QUEUE_QUEUE_H
#define QUEUE_QUEUE_H

/* The spool for remote delivery and bounces: DATA_DIR/queue/.
   One message = a hard-linked message file plus one envelope file holding
   per-recipient state, rewritten durably (tmp + fsync + rename + fsync dir)
   on every state change. */

#include "smtp/smtp_dsn.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct queue_rcpt {
	const char *address;
	const char *orcpt; /* "rfc822;x@y" or NULL */
	unsigned notify;   /* enum smtp_notify bits */
};

struct queue_envelope {
	const char *sender; /* "" for the null sender <> */
	const char *envid;  /* DSN ENVID or NULL */
	enum smtp_ret ret;
	enum smtp_body body;
	bool smtputf8;
	const char *auth_user; /* or NULL */
	const char *client_ip;
	const char *helo;
	const struct queue_rcpt *rcpts;
	size_t nrcpts;
};

/* Adds a message to the queue under the given id: hard-links (never
   copies) the already fsynced message file src (relative to src_dirfd,
   which may be AT_FDCWD; a symbolic link is not followed) into the spool,
   notes that its content starts data_offset bytes in (the bytes before are
   a Return-Path line meant for local delivery), writes the envelope
   durably (tmp + fsync + rename + fsync dir) and wakes the queue runner.
   Blocking; runs on a job thread.  Returns 0 or -1 with *error_r.
   Messages enter the queue through delivery/delivery.h, which calls this. */
int queue_enqueue(const char *data_dir, const char *id, int src_dirfd, const char *src, off_t data_offset,
		  const struct queue_envelope *env, char **error_r);
/* Whether queue_enqueue() needs src on stable storage before it starts:
   true for the local backend (it links the file), false for one that
   keeps a durable copy of its own (postgresql). */
bool queue_enqueue_needs_synced_source(void);

#endif
