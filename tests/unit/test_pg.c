/* Unit tests of the PostgreSQL connection layer (lib/pg.h) and the schema
   migrations (lib/pg_schema.h): SQLSTATE classes, statements and their
   cache, transactions, a connection killed by the server outside and
   inside a transaction, notifications sent after the commit, a server
   that is not there, and migrating an empty database.  Needs a server: see tests/unit/pg_test.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/pg.h"
#include "lib/pg_schema.h"
#include "pg_test.h"

#include "lib/buf.h"

#include <poll.h>
#include <time.h>

struct fixture {
	char *conninfo;
	struct pg_conn *conn;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->conninfo = pg_test_database_create();
	char *error = NULL;
	f->conn = pg_connect(f->conninfo, &error);
	if (f->conn == NULL)
		fail_msg("pg_connect: %s", error);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pg_close(&f->conn);
	pg_test_database_drop(f->conninfo);
	free(f);
	return 0;
}

static void test_sqlstate_classes(void **state)
{
	/* connection, rollback, resources, shutdown: temporary */
	const char *temporary[] = {"08006", "08001", "40001", "40P01", "53300",
				   "53100", "57P01", "57P02", "57P03"};
	const char *permanent[] = {"23505", "42P01", "42601", "3D000", "28P01", "57014", "", "5"};
	for (size_t i = 0; i < N_ELEMENTS(temporary); i++)
		assert_true(pg_sqlstate_temporary(temporary[i]));
	for (size_t i = 0; i < N_ELEMENTS(permanent); i++)
		assert_false(pg_sqlstate_temporary(permanent[i]));
	assert_false(pg_sqlstate_temporary(NULL));
}

/* The backend pid of the connection. */
static long long backend_pid(struct pg_conn *conn)
{
	PGresult *res = pg_query(conn, "SELECT pg_backend_pid()", 0, NULL, NULL);
	assert_non_null(res);
	long long pid = pg_value_int64(res, 0, 0);
	PQclear(res);
	return pid;
}

/* Ends the server process of conn as an administrator's
   pg_terminate_backend() does (57P01), and waits until it is gone. */
static void kill_backend(struct pg_conn *conn)
{
	long long pid = backend_pid(conn);
	char *sql = xasprintf("SELECT pg_terminate_backend(%lld)", pid);
	pg_test_admin(sql);
	free(sql);
	sql = xasprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %lld", pid);
	for (int i = 0; i < 200 && pg_test_admin(sql) > 0; i++)
		usleep(10000);
	assert_int_equal(pg_test_admin(sql), 0);
	free(sql);
}

static void test_statements(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	assert_int_equal(
	    pg_exec_script(f->conn, "CREATE TABLE t (k text PRIMARY KEY, n bigint); CREATE INDEX ON t (n)",
			   &error),
	    0);
	const char *sql = "INSERT INTO t (k, n) VALUES ($1, $2)";
	const char *row1[] = {"a", "1"}, *row2[] = {"b", NULL};
	PGresult *res = pg_query(f->conn, sql, 2, row1, &error);
	assert_non_null(res);
	assert_int_equal(pg_changes(res), 1);
	PQclear(res);
	res = pg_query(f->conn, sql, 2, row2, &error);
	assert_non_null(res);
	PQclear(res);
	/* A duplicate key: permanent, and named. */
	assert_null(pg_query(f->conn, sql, 2, row1, &error));
	assert_non_null(strstr(error, "duplicate key"));
	free(error);
	error = NULL;
	assert_true(pg_error_is(f->conn, PG_SQLSTATE_UNIQUE_VIOLATION));
	assert_false(pg_error_temporary(f->conn));
	/* Prepared once: the server lists one statement for the INSERT. */
	res = pg_query(f->conn, "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'INSERT%'",
		       0, NULL, &error);
	assert_int_equal(pg_value_int64(res, 0, 0), 1);
	PQclear(res);
	res = pg_query(f->conn, "SELECT k, n FROM t ORDER BY k", 0, NULL, &error);
	assert_int_equal(PQntuples(res), 2);
	assert_string_equal(pg_value(res, 1, 0), "b");
	assert_string_equal(pg_value(res, 1, 1), ""); /* NULL */
	assert_int_equal(pg_value_int64(res, 0, 1), 1);
	PQclear(res);
	/* A syntax error is permanent. */
	assert_null(pg_query(f->conn, "SELEC 1", 0, NULL, &error));
	assert_string_equal(pg_error_sqlstate(f->conn), "42601");
	assert_false(pg_error_temporary(f->conn));
	free(error);
}

static void test_transactions(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	assert_int_equal(pg_exec_script(f->conn, "CREATE TABLE t (k text PRIMARY KEY)", &error), 0);
	const char *a[] = {"a"}, *b[] = {"b"};
	const char *ins = "INSERT INTO t VALUES ($1)";
	assert_int_equal(pg_begin(f->conn, &error), 0);
	assert_true(pg_in_transaction(f->conn));
	PQclear(pg_query(f->conn, ins, 1, a, &error));
	pg_rollback(f->conn);
	assert_false(pg_in_transaction(f->conn));
	assert_int_equal(pg_begin(f->conn, &error), 0);
	PQclear(pg_query(f->conn, ins, 1, b, &error));
	assert_int_equal(pg_commit(f->conn, &error), 0);
	/* A commit after a failed statement rolls back and says so. */
	assert_int_equal(pg_begin(f->conn, &error), 0);
	PQclear(pg_query(f->conn, ins, 1, a, &error));
	assert_null(pg_query(f->conn, ins, 1, b, &error));
	free(error);
	error = NULL;
	assert_int_equal(pg_commit(f->conn, &error), -1);
	assert_non_null(strstr(error, "rolled back"));
	free(error);
	error = NULL;
	PGresult *res = pg_query(f->conn, "SELECT string_agg(k, ',' ORDER BY k) FROM t", 0, NULL, &error);
	assert_string_equal(pg_value(res, 0, 0), "b");
	PQclear(res);
}

/* The notifications that reach listener within ms milliseconds, as
   "channel,channel," in arrival order (caller frees). */
static char *notifications(PGconn *listener, int ms)
{
	struct buf out = BUF_INIT;
	buf_append_str(&out, "");
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		PQconsumeInput(listener);
		PGnotify *n;
		while ((n = PQnotifies(listener)) != NULL) {
			buf_printf(&out, "%s,", n->relname);
			PQfreemem(n);
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long left =
		    ms - ((now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0)
			return buf_steal(&out);
		struct pollfd p = {.fd = PQsocket(listener), .events = POLLIN};
		poll(&p, 1, (int)(left < 50 ? left : 50));
	}
}

/* pg_notify_after_commit(): each channel once, after the COMMIT (none
   while the transaction is open, none after a rollback), sent by the
   same connection. */
static void test_notify_after_commit(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	PGconn *listener = PQconnectdb(f->conninfo);
	assert_int_equal(PQstatus(listener), CONNECTION_OK);
	PQclear(PQexec(listener, "LISTEN po_t1"));
	PQclear(PQexec(listener, "LISTEN po_t2"));
	assert_int_equal(pg_exec_script(f->conn, "CREATE TABLE t (k text PRIMARY KEY)", &error), 0);
	const char *a[] = {"a"};
	assert_int_equal(pg_begin(f->conn, &error), 0);
	PQclear(pg_query(f->conn, "INSERT INTO t VALUES ($1)", 1, a, &error));
	pg_notify_after_commit(f->conn, "po_t1");
	pg_notify_after_commit(f->conn, "po_t2");
	pg_notify_after_commit(f->conn, "po_t1");
	char *got = notifications(listener, 200);
	assert_string_equal(got, "");
	free(got);
	assert_int_equal(pg_commit(f->conn, &error), 0);
	got = notifications(listener, 500);
	assert_string_equal(got, "po_t1,po_t2,");
	free(got);
	/* the connection is usable afterwards, outside a transaction */
	assert_false(pg_in_transaction(f->conn));
	PGresult *res = pg_query(f->conn, "SELECT count(*) FROM t", 0, NULL, &error);
	assert_non_null(res);
	assert_string_equal(pg_value(res, 0, 0), "1");
	PQclear(res);
	/* rolled back: nothing, then nothing left over for the next commit */
	assert_int_equal(pg_begin(f->conn, &error), 0);
	pg_notify_after_commit(f->conn, "po_t1");
	pg_rollback(f->conn);
	assert_int_equal(pg_begin(f->conn, &error), 0);
	assert_int_equal(pg_commit(f->conn, &error), 0);
	got = notifications(listener, 300);
	assert_string_equal(got, "");
	free(got);
	PQfinish(listener);
}

static void test_reconnect(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	long long first = backend_pid(f->conn);
	/* Outside a transaction: the statement is sent again on a new
	   connection. */
	kill_backend(f->conn);
	long long second = backend_pid(f->conn);
	assert_true(second != first);
	/* Inside one: the call fails, temporary, and the transaction is
	   gone. */
	assert_int_equal(pg_begin(f->conn, &error), 0);
	kill_backend(f->conn);
	assert_null(pg_query(f->conn, "SELECT 1", 0, NULL, &error));
	assert_true(pg_error_temporary(f->conn));
	free(error);
	error = NULL;
	pg_rollback(f->conn);
	/* The next calls reconnect, at most once a PG_RECONNECT_INTERVAL_MS:
	   within twice that, one succeeds. */
	PGresult *res = NULL;
	for (int i = 0; i < 2 * PG_RECONNECT_INTERVAL_MS / 10 && res == NULL; i++) {
		res = pg_query(f->conn, "SELECT 1", 0, NULL, NULL);
		if (res == NULL) {
			assert_true(pg_error_temporary(f->conn));
			usleep(10000);
		}
	}
	assert_non_null(res);
	PQclear(res);
}

static void test_unreachable(void **state)
{
	char *error = NULL;
	/* Port 1 on loopback: refused at once. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_null(pg_connect("host=127.0.0.1 port=1 dbname=x", &error));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_non_null(strstr(error, "refused"));
	assert_null(strchr(error, '\n'));
	free(error);
	assert_true(t1.tv_sec - t0.tv_sec < PG_CONNECT_TIMEOUT_S);
	error = NULL;
	assert_null(pg_connect("host=127.0.0.1 port=notaport", &error));
	assert_non_null(error);
	free(error);
}

static void test_migrations(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	int version = -1, applied = -1;
	assert_int_equal(pg_schema_current(f->conn, &version, &error), 0);
	assert_int_equal(version, 0);
	size_t n;
	const struct pg_migration *m = pg_schema_migrations(&n);
	assert_true(n >= 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(m[i].version, (int)i + 1);
	assert_int_equal(pg_schema_latest(), m[n - 1].version);
	assert_int_equal(pg_schema_migrate(f->conn, &applied, &error), 0);
	assert_int_equal(applied, (int)n);
	assert_int_equal(pg_schema_current(f->conn, &version, &error), 0);
	assert_int_equal(version, pg_schema_latest());
	/* Again: nothing to do. */
	assert_int_equal(pg_schema_migrate(f->conn, &applied, &error), 0);
	assert_int_equal(applied, 0);
	PGresult *res = pg_query(f->conn, "SELECT count(*) FROM schema_version", 0, NULL, &error);
	assert_int_equal(pg_value_int64(res, 0, 0), (long long)n);
	PQclear(res);
	/* A database newer than the program is refused. */
	char *sql = xasprintf("INSERT INTO schema_version (version, description) VALUES (%d, 'future')",
			      pg_schema_latest() + 1);
	assert_int_equal(pg_exec_script(f->conn, sql, &error), 0);
	free(sql);
	assert_int_equal(pg_schema_migrate(f->conn, &applied, &error), -1);
	assert_non_null(strstr(error, "newer than this program"));
	free(error);
}

int main(void)
{
	const struct CMUnitTest pure[] = {cmocka_unit_test(test_sqlstate_classes)};
	int failed = cmocka_run_group_tests_name("pg", pure, NULL, NULL);
	int avail = pg_test_available("pg with a server");
	if (avail < 0)
		return failed + 1;
	if (avail == 0)
		return failed;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_statements, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_after_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
	    cmocka_unit_test(test_unreachable),
	    cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
	};
	return failed + cmocka_run_group_tests_name("pg with a server", tests, NULL, NULL);
}
