#ifndef TESTS_UNIT_PG_TEST_H
#define TESTS_UNIT_PG_TEST_H
/* PostgreSQL for the backend contract tests.

   tests/run starts one private server (tests/integration/pgserver.py)
   before the unit tests and exports
     PO_TEST_PG_CONNINFO   the conninfo of its database "postgres"
     PO_TEST_PG_REQUIRED=1 a postgresql case without PO_TEST_PG_CONNINFO
			   fails instead of being skipped
   Each test makes a database of its own (pg_test_database_create) and
   drops it (pg_test_database_drop), so runs of the normal and sanitizer
   builds, or two test programs, never share one.  A developer running one
   test binary without those variables sees the postgresql cases skipped,
   with the reason printed.  To run them by hand:
     python3 tests/integration/pgserver.py start /tmp/pg   (prints the conninfo)
     PO_TEST_PG_CONNINFO='...' build/tests/test_backend_userdb
     python3 tests/integration/pgserver.py stop /tmp/pg */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/xalloc.h"

/* 1 when PostgreSQL cases can run; 0 when they are skipped (reason
   printed); -1 when they must run and cannot (printed: the caller counts
   a failure). */
static inline int pg_test_available(const char *what)
{
	if (getenv("PO_TEST_PG_CONNINFO") != NULL && getenv("PO_TEST_PG_CONNINFO")[0] != '\0')
		return 1;
	if (getenv("PO_TEST_PG_REQUIRED") != NULL) {
		printf("[  FAILED  ] 1 test(s): %s: PO_TEST_PG_REQUIRED is set but PO_TEST_PG_CONNINFO is "
		       "not (tests/run could not start PostgreSQL?)\n",
		       what);
		return -1;
	}
	printf("[ SKIPPED  ] %s: PO_TEST_PG_CONNINFO is not set (see tests/unit/pg_test.h)\n", what);
	return 0;
}

/* Runs one statement on the server's database "postgres" and returns the
   first value of its result as a number (0 without rows); aborts the test
   program when it fails. */
static inline long long pg_test_admin(const char *sql)
{
	PGconn *c = PQconnectdb(getenv("PO_TEST_PG_CONNINFO"));
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg_test: connect: %s", PQerrorMessage(c));
		abort();
	}
	PGresult *res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pg_test: %s: %s", sql, PQerrorMessage(c));
		abort();
	}
	long long value = PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	PQfinish(c);
	return value;
}

/* Creates an empty database; returns its conninfo (free it with
   pg_test_database_drop). */
static inline char *pg_test_database_create(void)
{
	static unsigned counter;
	char *name = xasprintf("t_%ld_%u", (long)getpid(), counter++);
	char *sql = xasprintf("CREATE DATABASE %s", name);
	pg_test_admin(sql);
	free(sql);
	/* A later keyword wins in a conninfo string. */
	char *conninfo = xasprintf("%s dbname=%s", getenv("PO_TEST_PG_CONNINFO"), name);
	free(name);
	return conninfo;
}

/* Drops the database of conninfo (closing its connections) and frees
   conninfo. */
static inline void pg_test_database_drop(char *conninfo)
{
	const char *name = strrchr(conninfo, '=') + 1;
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	pg_test_admin(sql);
	free(sql);
	free(conninfo);
}
#endif
