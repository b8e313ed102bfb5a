#ifndef QUEUE_QUEUE_BACKEND_H
#define QUEUE_QUEUE_BACKEND_H
/* What a queue backend implements: the storage of spooled messages and
   their envelopes, in the shape of OpenSMTPD's queue_backend.  Engines
   never include this header: they call spool.h and queue.h, whose
   functions (queue.c) dispatch to the process's backend, chosen by name
   with queue_backend_select() ("local" when nothing is chosen: spool files
   in DATA_DIR/queue, queue_local.c) or "postgresql" (queue_pg.c: the
   spool of several nodes in the database, leased per message).  Another
   backend adds a table beside them and an entry in queue.c's registry.

   Each operation has the contract of the spool.h / queue.h function of the
   same name (queue_ prefixed); its arguments were checked by the
   dispatcher as noted there (ids valid, recipients present). */
#include "queue/spool.h"

struct queue_backend {
	const char *name;
	/* Takes the location (queue_backend_open()); NULL: none needed. */
	int (*open)(const char *location, char **error_r);

	/* ---- enqueue ---- */
	/* enqueue() copies the octets into storage of its own, durably, so
	   that the source file need not be synced first (postgresql; the
	   local backend links the file into the spool: false). */
	bool enqueue_copies;
	int (*enqueue)(const char *data_dir, const char *id, int src_dirfd, const char *src,
		       off_t data_offset, const struct queue_envelope *env, char **error_r);

	/* NULL: the backend cannot import (queue_entry_import() says so). */
	int (*entry_import)(const char *data_dir, const struct queue_entry *e, int src_dirfd, const char *src,
			    char **error_r);

	/* ---- list ---- */
	int (*walk)(const char *data_dir, int (*cb)(void *ctx, const struct queue_entry *e), void *ctx,
		    char **error_r);

	/* ---- one entry: load, record attempts (save), complete (remove) ---- */
	int (*entry_load)(const char *qdir, const char *id, struct queue_entry *e, char **error_r);
	int (*entry_save)(const char *qdir, const struct queue_entry *e, bool only_if_exists,
			  const char *holder, char **error_r);
	void (*entry_remove)(const char *qdir, const char *id);
	int (*entry_lease)(const char *qdir, const char *id, const char *holder, int64_t now,
			   unsigned seconds, char **error_r);
	int (*claim)(const char *qdir, const char *holder, int64_t now, unsigned seconds, size_t max,
		     char ***ids_r, size_t *count_r, char **error_r);
	int (*entry_release)(const char *qdir, const char *id, const char *holder, char **error_r);
	int (*msg_open)(const char *qdir, const char *id, int *fd_r, char **error_r);

	/* ---- control ---- */
	int (*hold)(const char *data_dir, const char *id, bool hold, char **error_r);
	int (*delete)(const char *data_dir, const char *id, char **error_r);
	int (*flush)(const char *data_dir, const char *id, char **error_r);
};

/* The backends, by name (queue.c keeps the registry). */
extern const struct queue_backend queue_backend_local;
extern const struct queue_backend queue_backend_pg;

/* The backend called name, or NULL. */
const struct queue_backend *queue_backend_find(const char *name);
#endif
