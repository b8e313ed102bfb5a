#ifndef AUTH_AUTH_PENALTY_PG_H
#define AUTH_AUTH_PENALTY_PG_H
/* The failed-login counters of auth/auth_penalty.h kept in PostgreSQL, for
   the nodes of a cluster ([storage] backend = postgresql): the same policy
   (windows, growing delays, address and account lockouts, checks in flight,
   trusted pairs for 30 days) counted over every node, so that N failures
   spread over nodes A, B and C lock the address or the account as N on
   one node do.

   Tables auth_failures (scope 0: a client address, as
   auth_penalty_ip_key() names it; scope 1: an account) and auth_trusted of
   lib/pg_schema.c.  Each call is one statement, a function of the schema
   that locks the address's row, then the account's, and writes them back:
   calls from any number of nodes and threads at once count every failure
   and every check in flight once.  Times are the database's clock in
   milliseconds (one clock for all nodes) unless the caller gives its own
   (tests).

   Calls block (job threads); a handle serialises its calls (a mutex around
   each).  A failed call returns -1: callers fail open, as the local table
   does when its lock cannot be taken. */
#include "auth/auth_penalty.h"

#include <stdbool.h>
#include <stdint.h>

/* now_ms that asks for the database's clock */
#define AUTH_PENALTY_PG_NOW ((int64_t)-1)
/* How often (at most) auth_penalty_pg_record() deletes counters that have
   run out, and how many at a time. */
#define AUTH_PENALTY_PG_EXPIRE_INTERVAL_MS (60 * 1000)
#define AUTH_PENALTY_PG_EXPIRE_BATCH 1000

struct auth_penalty_pg;

/* Connects to conninfo; the schema must have the tables (version 2 of
   lib/pg_schema.c: postoffice db migrate).  NULL with *error_r (caller
   frees). */
struct auth_penalty_pg *auth_penalty_pg_open(const char *conninfo, char **error_r);
void auth_penalty_pg_close(struct auth_penalty_pg **pg);

/* As auth_penalty_check(): *verdict_r (ALLOW, REFUSE_IP or REFUSE_ACCOUNT)
   and *delay_ms_r.  ALLOW counts a check in flight (for an untrusted pair):
   follow it with auth_penalty_pg_record().  0, or -1 with *error_r. */
int auth_penalty_pg_check(struct auth_penalty_pg *pg, const struct auth_penalty_policy *policy,
			  const char *ip, const char *account, int64_t now_ms,
			  enum auth_penalty_verdict *verdict_r, int *delay_ms_r, char **error_r);
/* As auth_penalty_record(): the AUTH_PENALTY_LOCKED_* bits of the lockouts
   this failure started, or -1 with *error_r.  Now and then (see
   AUTH_PENALTY_PG_EXPIRE_INTERVAL_MS) it deletes run-out rows first. */
int auth_penalty_pg_record(struct auth_penalty_pg *pg, const struct auth_penalty_policy *policy,
			   const char *ip, const char *account, bool success, int64_t now_ms, char **error_r);
/* Deletes up to `limit` counters that are as good as none at now_ms, and
   trusted pairs older than 30 days.  Returns how many, or -1 with
   *error_r. */
int auth_penalty_pg_expire(struct auth_penalty_pg *pg, int64_t now_ms, int limit, char **error_r);
#endif
