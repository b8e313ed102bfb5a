/* A PostgreSQL connection shared by threads (pg_shared.h). */
#include "lib/pg_shared.h"
#include "lib/pg.h"
#include "lib/pg_schema.h"
#include "lib/xalloc.h"

#include <pthread.h>
#include <stdlib.h>

struct pg_shared {
	struct pg_conn *conn;
	pthread_mutex_t lock; /* one statement at a time on conn */
};

struct pg_shared *pg_shared_open(const char *conninfo, int min_version, const char *what, char **error_r)
{
	char *error = NULL;
	int version = 0;
	struct pg_conn *conn = pg_connect(conninfo, &error);
	if (conn == NULL || pg_schema_current(conn, &version, &error) < 0) {
		*error_r = xasprintf("postgresql: %s", error);
		free(error);
		pg_close(&conn);
		return NULL;
	}
	if (version < min_version) {
		*error_r =
		    xasprintf("postgresql: the database has schema version %d, without %s: run postoffice "
			      "db migrate",
			      version, what);
		pg_close(&conn);
		return NULL;
	}
	struct pg_shared *shared = xcalloc(1, sizeof(*shared));
	shared->conn = conn;
	pthread_mutex_init(&shared->lock, NULL);
	return shared;
}

void pg_shared_close(struct pg_shared **sharedp)
{
	struct pg_shared *shared = *sharedp;
	if (shared == NULL)
		return;
	*sharedp = NULL;
	pg_close(&shared->conn);
	pthread_mutex_destroy(&shared->lock);
	free(shared);
}

PGresult *pg_shared_query(struct pg_shared *shared, const char *sql, int n, const char *const *values,
			  char **error_r)
{
	char *error = NULL;
	pthread_mutex_lock(&shared->lock);
	PGresult *res = pg_query(shared->conn, sql, n, values, &error);
	pthread_mutex_unlock(&shared->lock);
	if (res == NULL) {
		*error_r = xasprintf("postgresql: %s", error);
		free(error);
	}
	return res;
}
