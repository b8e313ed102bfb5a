#ifndef LIB_PG_H
#define LIB_PG_H
/* A connection to PostgreSQL (libpq) for every PostgreSQL backend: connect
   from a conninfo string, parameterised statements (prepared once per
   connection and cached), transactions, and the classification of errors
   into temporary (try again later: the caller answers 4xx or
   NO [UNAVAILABLE]) and permanent.

   Calls block (callers run them on job threads, as they do SQLite).  A
   connection is used by one thread at a time: a backend whose handle is
   shared between threads serialises its calls (a mutex around each
   operation).

   A lost connection is reconnected by the next call, outside a
   transaction only, at most once per PG_RECONNECT_INTERVAL_MS (a call
   in between fails at once with a temporary error: no busy loop against
   a server that is down), each attempt bounded by connect_timeout
   (PG_CONNECT_TIMEOUT_S unless the conninfo sets it).  A statement run
   outside a transaction whose connection turns out lost when it is sent
   is sent once more on a new connection: a single statement that must not
   run twice (the old connection may have died after the server committed
   it, before the reply) belongs in pg_begin() ... pg_commit(), which is
   never retried.  Inside a transaction a lost connection fails the call;
   the caller rolls back (pg_rollback() then only forgets the transaction)
   and may retry the whole transaction. */
#include <libpq-fe.h>
#include <stdbool.h>

#define PG_CONNECT_TIMEOUT_S 5
#define PG_RECONNECT_INTERVAL_MS 1000
/* Parameters of one statement, at most. */
#define PG_PARAMS_MAX 16

struct pg_conn;

/* Connects with conninfo (libpq's "key=value ..." or a postgresql:// URI;
   connect_timeout defaults to PG_CONNECT_TIMEOUT_S).  NULL with *error_r
   (caller frees) when the conninfo is malformed or the first connection
   fails. */
struct pg_conn *pg_connect(const char *conninfo, char **error_r);
void pg_close(struct pg_conn **conn);

/* Runs sql with n text parameters ($1..$n; a NULL value is SQL NULL),
   prepared on first use on this connection and kept (the cache key is the
   text of sql).  Returns the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK;
   the caller PQclear()s it), or NULL with *error_r (caller frees; error_r
   may be NULL) and the error's class in pg_error_temporary(). */
PGresult *pg_query(struct pg_conn *conn, const char *sql, int n, const char *const *values, char **error_r);
/* The same with binary parameters: lengths[i] and formats[i] (0 text,
   1 binary) as PQexecParams takes them, and the result's format
   (0 text, 1 binary). */
PGresult *pg_query_params(struct pg_conn *conn, const char *sql, int n, const char *const *values,
			  const int *lengths, const int *formats, int result_format, char **error_r);
/* Runs sql (several statements separated by ';' allowed, no parameters,
   not prepared): a migration's script, SET commands.  0 or -1. */
int pg_exec_script(struct pg_conn *conn, const char *sql, char **error_r);

/* Transactions.  begin: 0 or -1.  commit: 0 when committed, -1 when not
   (rolled back, or unknown when the connection was lost: the error is then
   temporary).  rollback is harmless without a transaction. */
int pg_begin(struct pg_conn *conn, char **error_r);
int pg_commit(struct pg_conn *conn, char **error_r);
void pg_rollback(struct pg_conn *conn);
/* NOTIFY channel (empty payload) once the current transaction has
   committed: pg_commit() sends the channels queued (each once) in a
   statement of its own right after the COMMIT, without waiting for the
   WAL flush; a rollback drops them.  Not NOTIFY inside the transaction:
   PostgreSQL holds a database-wide lock from a notifying transaction's
   commit until its WAL is flushed, so writers that notify would commit
   one flush at a time (no group commit).  A listener may thus miss a
   notification when the process dies between the two. */
void pg_notify_after_commit(struct pg_conn *conn, const char *channel);
bool pg_in_transaction(const struct pg_conn *conn);

/* Of the last failed call on conn: true when trying again later may
   succeed (pg_sqlstate_temporary(), or the connection lost or not made). */
bool pg_error_temporary(const struct pg_conn *conn);
/* The SQLSTATE of the last failed call ("" when it had none, e.g. a lost
   connection). */
const char *pg_error_sqlstate(const struct pg_conn *conn);
/* True for the SQLSTATEs of a condition that passes: classes 08
   (connection exception), 40 (transaction rollback: serialization
   failure, deadlock), 53 (insufficient resources: too many connections,
   disk full), and 57P01..57P03 (admin shutdown, crash shutdown, cannot
   connect now).  Everything else (syntax, constraint, permission, missing
   database) is permanent. */
bool pg_sqlstate_temporary(const char *sqlstate);
/* SQLSTATE 23505: a unique constraint refused the row. */
#define PG_SQLSTATE_UNIQUE_VIOLATION "23505"
bool pg_error_is(const struct pg_conn *conn, const char *sqlstate);

/* Result helpers: the text value of a row's column ("" for NULL), and a
   column as a signed 64-bit number (0 for NULL or garbage). */
const char *pg_value(const PGresult *res, int row, int col);
long long pg_value_int64(const PGresult *res, int row, int col);
/* The rows a command changed (UPDATE, DELETE, INSERT). */
long long pg_changes(const PGresult *res);
#endif
