#ifndef LIB_PG_SHARED_H
#define LIB_PG_SHARED_H
/* A connection of lib/pg.h shared by the threads of a process (job
   threads of the limits that nodes share: auth/auth_penalty_pg.h,
   session/session_registry.h): one statement at a time under a mutex,
   opened only on a database whose schema has the tables it needs. */
#include <libpq-fe.h>

struct pg_shared;

/* Connects to conninfo and checks that the schema is at least at
   min_version (lib/pg_schema.c); `what` names what that version brought,
   for the error.  NULL with *error_r (caller frees). */
struct pg_shared *pg_shared_open(const char *conninfo, int min_version, const char *what, char **error_r);
void pg_shared_close(struct pg_shared **shared);

/* pg_query() under the lock.  NULL with *error_r ("postgresql: ...",
   caller frees). */
PGresult *pg_shared_query(struct pg_shared *shared, const char *sql, int n, const char *const *values,
			  char **error_r);
#endif
