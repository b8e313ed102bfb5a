#ifndef AUTH_AUTH_CHECK_H
#define AUTH_AUTH_CHECK_H
/* A credential check split for the event loop: auth_check_prepare() runs in
   the loop (copies, no lookup), auth_check_penalty() asks the shared
   penalty table (auth/auth_penalty.h) whether the password may be checked
   at all, auth_check_verify() runs on a job thread (lib/jobs.h: the user
   lookup, which is a network round trip with PostgreSQL, then the yescrypt
   check, against a dummy hash for unknown users so that timing does not
   tell which users exist, then the outcome goes to the penalty table), and
   auth_check_clear() wipes the password.  Protocol engines embed the struct
   in their job.

   The penalty table counts an account by the normal form of the name given
   (userdb_normalize_address(), or the name as given when it has none),
   which is the address the lookup finds for an existing user: so the table
   is asked on the loop before the lookup, with the same name for known and
   unknown users.

   With [storage] backend = postgresql the machine's table is the first
   filter and the counters of all nodes (auth/auth_penalty_pg.h) the
   second: auth_check_verify() asks them before the password check (one
   round trip, on the job thread; a refusal there skips the check) and
   records the outcome in both (one more).  The event loop makes no round
   trip of its own for them.  Which counters a process uses is chosen
   once, at its start, by auth_check_cluster_open(). */
#include "auth/auth_penalty.h"

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

struct config;
struct userdb;

struct auth_check {
	char *user; /* the normalised address, or the name as given when it has none */
	char *password;
	struct userdb *db; /* the lookup auth_check_verify() still has to do; NULL: done */
	char *hash;        /* NULL: no such user (or unavailable) */
	bool unavailable;  /* the lookup failed: no answer either way */
	uint64_t quota;
	bool ok; /* set by auth_check_verify() */
	/* set by auth_check_penalty() */
	struct auth_penalty *penalty; /* NULL: no table, nothing recorded */
	struct auth_penalty_policy policy;
	char *account; /* the table's name for the account */
	char ip[INET6_ADDRSTRLEN];
	enum auth_penalty_verdict verdict;
	int delay_ms; /* wait this long before answering a failure or refusal */
};

/* Copies user (in its normal form) and password for a check against db,
   whose lookup auth_check_verify() does.  No database access. */
void auth_check_prepare(struct auth_check *check, struct userdb *db, const char *user, const char *password);
/* Asks the penalty table (NULL: none) about this login from ip, with the
   policy of cfg's [limits].  Returns 0 when the password may be checked
   (auth_check_verify() then records the outcome), or -1 when the table
   refuses (check->verdict says why): do not verify, answer a temporary
   failure after check->delay_ms.  Sets check->delay_ms either way. */
int auth_check_penalty(struct auth_check *check, struct auth_penalty *table, const struct config *cfg,
		       const char *ip);
/* On a job thread: looks the user up (auth_check_prepare()'s db; db
   handles are safe to share between threads), then checks the password;
   returns and sets check->ok.  When the lookup fails (a database down) it
   returns false unchecked with check->verdict AUTH_PENALTY_UNAVAILABLE and
   records nothing (the check in flight no longer counts): the client gets
   a temporary failure, never "wrong password".  When the counters of all
   nodes refuse the login it returns false without checking the password,
   with check->verdict REFUSE_* and check->delay_ms set.  Either way
   auth_check_refused() is true: answer a temporary failure, as for a
   refusal of auth_check_penalty(). */
bool auth_check_verify(struct auth_check *check);
/* True when the login was refused unchecked, by auth_check_penalty() or by
   auth_check_verify(). */
bool auth_check_refused(const struct auth_check *check);
/* Chooses this process's counters beyond the machine: those in PostgreSQL
   with [storage] backend = postgresql, none with local (then nothing
   changes).  Call it once before the first login; 0, or -1 with *error_r
   (caller frees). */
int auth_check_cluster_open(const struct config *cfg, char **error_r);
void auth_check_cluster_close(void);
void auth_check_clear(struct auth_check *check);
#endif
