#ifndef LIB_PG_SCHEMA_H
#define LIB_PG_SCHEMA_H
/* The PostgreSQL schema of every postgresql backend, as an ordered list of
   versioned migrations (pg_schema.c holds the list: a backend adds its
   tables by appending a version there, never by editing a released one).
   The database records what it has in the table schema_version (one row
   per applied version, with its description and time).  Each migration
   runs in a transaction of its own under an advisory lock, so nodes that
   migrate at once apply each version once and a failed one leaves the
   database at the version before it. */
#include "lib/pg.h"

#include <stddef.h>

struct pg_migration {
	int version; /* 1, 2, 3, ... in list order */
	const char *description;
	const char *sql; /* one script: several statements, no parameters */
};

/* The list, in order, and its length. */
const struct pg_migration *pg_schema_migrations(size_t *count_r);
/* The version the list ends at: what this program needs. */
int pg_schema_latest(void);

/* The database's version: 0 when it has no schema_version table (an empty
   database).  0, or -1 with *error_r (caller frees). */
int pg_schema_current(struct pg_conn *conn, int *version_r, char **error_r);
/* Applies the versions the database lacks, in order, each in its own
   transaction; *applied_r counts them (0: it was current).  A database
   newer than this program (a version above pg_schema_latest()) is an
   error.  0, or -1 with *error_r (caller frees; the versions applied
   before the failing one stay). */
int pg_schema_migrate(struct pg_conn *conn, int *applied_r, char **error_r);
#endif
