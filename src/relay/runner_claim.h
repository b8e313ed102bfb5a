#ifndef RELAY_RUNNER_CLAIM_H
#define RELAY_RUNNER_CLAIM_H
/* The queue runner's work on a shared spool (queue_backend_shared(): the
   "postgresql" backend, several nodes on one queue), done on a job thread
   at each poll: renew the leases of the messages the runner is delivering,
   claim due messages (queue_claim(): a lease each, never a message another
   node holds), and load each claimed message's entry and content, so that
   the event loop never waits for the database.  Nodes learn of each
   other's new messages by this poll (RUNNER_CLAIM_POLL_MS), not through a
   signal: a message enqueued on any node is claimed within one interval
   by whichever runner polls first. */
#include "queue/spool.h"

#include <stddef.h>

#define RUNNER_CLAIM_POLL_MS 500
/* At most this many messages claimed per poll. */
#define RUNNER_CLAIM_MAX 100

/* A claimed message: its entry and content (mapped; NULL when it could
   not be read: the runner reads it again when it needs it). */
struct runner_claimed {
	struct queue_entry e;
	char *map;
	size_t map_size;
};

struct runner_claim_task {
	/* in */
	const char *qdir;
	const char *holder;
	unsigned lease_time;
	size_t max;   /* to claim; 0: renew only */
	char **renew; /* ids whose leases are renewed */
	size_t nrenew;
	/* out: per renew id, queue_entry_lease()'s result */
	int *renewed;
	struct runner_claimed *claimed;
	size_t nclaimed;
};

/* Renews, claims and loads (blocking: a job thread). */
void runner_claim_work(struct runner_claim_task *t);
/* Frees the task and what is left in it (entries taken by the runner are
   zeroed by it). */
void runner_claim_task_free(struct runner_claim_task *t);

/* Maps the content of queued message id read-only: 0 with *map_r (NULL
   for an empty message) and *size_r, 1 when there is no such message, -1
   with *error_r. */
int runner_map_message(const char *qdir, const char *id, char **map_r, size_t *size_r, char **error_r);
#endif
