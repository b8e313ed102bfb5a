#ifndef SESSION_SESSION_REGISTRY_H
#define SESSION_SESSION_REGISTRY_H
/* The live sessions of users on every node of a cluster ([storage]
   backend = postgresql), so that a per-user cap ([imap]
   max_connections_per_user) holds across nodes: with a cap of 3, three
   sessions on nodes A and B together leave no room for a fourth on C.

   Table live_sessions of lib/pg_schema.c (version 2): one row per session
   (node name, pid, the process's random instance id, service, user,
   start, expiry).  A slot is taken by one statement that counts the
   user's sessions and adds one under an advisory lock of that user, so
   that logins on several nodes at once never pass the cap together.  Each
   process renews the expiry of its own rows every third of the ttl
   (session_registry_start()); the rows of a node that dies (kill -9, power,
   network) stop counting when their expiry passes, and are deleted by the
   next login of their user or any process's start.  A process that stops
   normally deletes its rows.

   With [storage] backend = local there is no registry (NULL): the calls
   below then admit every session and do nothing, and the engine's own
   count per worker is the only one, as before.

   acquire, release and renew block: run them on job threads (the handle
   serialises its calls).  Times are the database's clock. */
#include <stdbool.h>
#include <stdint.h>

struct config;
struct event_base;
struct session_registry;

/* Opens the registry with the [postgresql] settings of cfg, or returns
   NULL (and no error) with [storage] backend = local; NULL with *error_r
   (caller frees) on failure.  Deletes the rows that expired long ago. */
struct session_registry *session_registry_open_config(const struct config *cfg, char **error_r);
/* The same with a conninfo and a ttl in milliseconds (tests). */
struct session_registry *session_registry_open(const char *conninfo, int64_t ttl_ms, char **error_r);
/* Deletes this process's rows (best effort), stops the renewals. */
void session_registry_close(struct session_registry **reg);

/* Renews this process's rows every ttl/3 on base: each renewal runs as a
   job (lib/jobs.h), one at a time. */
void session_registry_start(struct session_registry *reg, struct event_base *base);

/* A slot for one more session of user on service when the user has fewer
   than max live ones on all nodes: 1 with *slot_r, 0 at the cap, -1 with
   *error_r (caller frees).  reg NULL: 1 with *slot_r = 0. */
int session_registry_acquire(struct session_registry *reg, const char *service, const char *user, int max,
			     int64_t *slot_r, char **error_r);
/* Gives a slot back (0 or reg NULL: nothing).  0, or -1 with *error_r. */
int session_registry_release(struct session_registry *reg, int64_t slot, char **error_r);
/* The same from the loop: a job does it; errors are logged. */
void session_registry_release_async(struct session_registry *reg, int64_t slot);
/* Extends the expiry of this process's rows by the ttl.  Returns how many
   it renewed, or -1 with *error_r. */
int session_registry_renew(struct session_registry *reg, char **error_r);
/* The user's live sessions on service, on all nodes; -1 with *error_r. */
int session_registry_count(struct session_registry *reg, const char *service, const char *user,
			   char **error_r);
#endif
