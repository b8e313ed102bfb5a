/* The store backend "postgresql": every user's mail in one PostgreSQL
   database (the tables of version 2 of lib/pg_schema.c), so that every
   node of a cluster serves every user.  This file holds the table of
   operations, the handles, the per-process pool of connections and the
   statement and transaction helpers the other store_pg*.c files share. */
#include "store/store_pg_private.h"
#include "store/maildir_create.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/pg_schema.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The first schema version with the mail tables. */
#define STORE_PG_SCHEMA_VERSION 2
/* Idle connections a process keeps per conninfo. */
#define STORE_PG_POOL_IDLE 8
/* Tries of a transaction that PostgreSQL broke off (deadlock,
   serialization failure). */
#define STORE_PG_TX_TRIES 3

const struct store_backend store_backend_pg = {
    .name = "postgresql",
    .lookups_block = true,

    .open = store_pg_open,
    .close = store_pg_close,
    .path = store_pg_path,
    .quota_usage = store_pg_quota_usage,
    .maildrop_lock = store_pg_maildrop_lock,
    .maildrop_unlock = store_pg_maildrop_unlock,

    .user_location = store_pg_user_location,
    .user_create = store_pg_user_create,
    .user_purge = store_pg_user_purge,
    .usage = store_pg_usage,

    .deliver_copies = true,
    .deliver = store_pg_deliver,
    .undeliver = store_pg_undeliver,

    .folder_create = store_pg_folder_create,
    .folder_delete = store_pg_folder_delete,
    .folder_rename = store_pg_folder_rename,
    .folder_list = store_pg_folder_list,
    .subscribe = store_pg_subscribe,
    .subscription_list = store_pg_subscription_list,

    .mailbox_open = store_pg_mailbox_open,
    .mailbox_open_indexed = store_pg_mailbox_open_indexed,
    .mailbox_close = store_pg_mailbox_close,
    .mailbox_sync = store_pg_mailbox_sync,
    .mailbox_status = store_pg_mailbox_status,
    .mailbox_counters = store_pg_mailbox_counters,
    .mailbox_list = store_pg_mailbox_list,
    .mailbox_changed_since = store_pg_mailbox_changed_since,
    .mailbox_expunged_since = store_pg_mailbox_expunged_since,
    .mailbox_take_recent = store_pg_mailbox_take_recent,
    .watch_open = store_pg_watch_open,

    .msg_open = store_pg_msg_open,
    .msg_open_uid = store_pg_msg_open_uid,
    .msg_set_flags = store_pg_msg_set_flags,
    .mailbox_flags_pending = store_pg_mailbox_flags_pending,
    .mailbox_flush_flags = store_pg_mailbox_flush_flags,
    .msg_expunge = store_pg_msg_expunge,
    .msg_append_many = store_pg_msg_append_many,
    .msg_emailids = store_pg_msg_emailids,
    .msg_copy = store_pg_msg_copy,
    .mailbox_import = store_pg_mailbox_import,

    .cache_prepare = store_pg_cache_prepare,
    .cache_get = store_pg_cache_get,
    .cache_set = store_pg_cache_set,
    .cache_get_range = store_pg_cache_get_range,
    .cache_set_header = store_pg_cache_set_header,
    .cache_get_header_range = store_pg_cache_get_header_range,
    .cache_set_sortkey = store_pg_cache_set_sortkey,
    .cache_get_sortkey_range = store_pg_cache_get_sortkey_range,
    .cache_begin = store_pg_cache_begin,
    .cache_commit = store_pg_cache_commit,
};

struct store_pg *store_pg_cast(struct store *store)
{
	if (store->be != &store_backend_pg)
		log_panic("store handle of backend %s given to the postgresql backend", store->be->name);
	return (struct store_pg *)store;
}

struct store_pg_mailbox *store_pg_mailbox_cast(struct store_mailbox *box)
{
	(void)store_pg_cast(box->store);
	return (struct store_pg_mailbox *)box;
}

int store_pg_location_parse(const char *location, char **address_r, char **conninfo_r, char **error_r)
{
	const char *sp = strchr(location, ' ');
	if (sp == NULL || sp == location || sp[1] == '\0') {
		*error_r = xasprintf("postgresql store location '%s' is not 'ADDRESS CONNINFO'", location);
		return -1;
	}
	*address_r = xstrndup(location, (size_t)(sp - location));
	*conninfo_r = xstrdup(sp + 1);
	return 0;
}

/* ---- the pool ---- */

struct store_pg_pool {
	char *conninfo;
	bool schema_ok; /* checked (migrated) by this process */
	struct pg_conn *idle[STORE_PG_POOL_IDLE];
	size_t nidle;
	struct store_pg_pool *next;
};

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_pg_pool *pools;
static pid_t pools_pid;

/* The pool of conninfo, made when missing; with pools_lock held.  A child
   process does not use its parent's connections (their sockets are
   shared): it forgets them without closing them. */
static struct store_pg_pool *pool_find(const char *conninfo)
{
	if (pools_pid != getpid()) {
		for (struct store_pg_pool *p = pools; p != NULL; p = p->next)
			p->nidle = 0;
		pools_pid = getpid();
	}
	struct store_pg_pool *p;
	for (p = pools; p != NULL; p = p->next)
		if (strcmp(p->conninfo, conninfo) == 0)
			return p;
	p = xcalloc(1, sizeof(*p));
	p->conninfo = xstrdup(conninfo);
	p->next = pools;
	pools = p;
	return p;
}

char *store_pg_error(struct pg_conn *conn, const char *what, char *error)
{
	bool temporary = conn == NULL || pg_error_temporary(conn);
	char *r = xasprintf("%spostgresql: %s: %s", temporary ? STORE_ERROR_BUSY : "", what,
			    error != NULL ? error : "unknown error");
	free(error);
	return r;
}

/* The schema of conn's database has the mail tables (migrated to the
   latest version when it is behind, as the first open of a local store
   makes its index). */
static int schema_check(struct pg_conn *conn, char **error_r)
{
	int version = 0, applied = 0;
	char *error = NULL;
	if (pg_schema_current(conn, &version, &error) < 0 ||
	    (version < pg_schema_latest() && pg_schema_migrate(conn, &applied, &error) < 0)) {
		*error_r = store_pg_error(conn, "schema", error);
		return -1;
	}
	return 0;
}

struct pg_conn *store_pg_conn_get(const char *conninfo, struct store_pg_pool **pool_r, char **error_r)
{
	pthread_mutex_lock(&pools_lock);
	struct store_pg_pool *pool = pool_find(conninfo);
	struct pg_conn *conn = pool->nidle > 0 ? pool->idle[--pool->nidle] : NULL;
	bool schema_ok = pool->schema_ok;
	pthread_mutex_unlock(&pools_lock);
	*pool_r = pool;
	if (conn == NULL) {
		char *error = NULL;
		conn = pg_connect(conninfo, &error);
		if (conn == NULL) {
			*error_r = store_pg_error(NULL, "connect", error);
			return NULL;
		}
	}
	if (!schema_ok) {
		if (schema_check(conn, error_r) < 0) {
			pg_close(&conn);
			return NULL;
		}
		pthread_mutex_lock(&pools_lock);
		pool->schema_ok = true;
		pthread_mutex_unlock(&pools_lock);
	}
	return conn;
}

void store_pg_conn_put(struct store_pg_pool *pool, struct pg_conn **connp)
{
	struct pg_conn *conn = *connp;
	if (conn == NULL)
		return;
	*connp = NULL;
	pg_rollback(conn);
	pthread_mutex_lock(&pools_lock);
	bool kept = pools_pid == getpid() && pool->nidle < STORE_PG_POOL_IDLE;
	if (kept)
		pool->idle[pool->nidle++] = conn;
	pthread_mutex_unlock(&pools_lock);
	if (!kept)
		pg_close(&conn);
}

/* ---- statements ---- */

PGresult *store_pg_run_bin(struct pg_conn *conn, const char *what, const char *sql, int n,
			   const char *const *values, const int *lengths, const int *formats,
			   int result_format, char **error_r)
{
	char *error = NULL;
	PGresult *res = pg_query_params(conn, sql, n, values, lengths, formats, result_format, &error);
	if (res == NULL)
		*error_r = store_pg_error(conn, what, error);
	return res;
}

PGresult *store_pg_run(struct pg_conn *conn, const char *what, const char *sql, int n,
		       const char *const *values, char **error_r)
{
	return store_pg_run_bin(conn, what, sql, n, values, NULL, NULL, 0, error_r);
}

int store_pg_exec(struct pg_conn *conn, const char *what, const char *sql, int n, const char *const *values,
		  char **error_r)
{
	PGresult *res = store_pg_run(conn, what, sql, n, values, error_r);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

const char *store_pg_int(char out[STORE_PG_INT_MAX], long long value)
{
	snprintf(out, STORE_PG_INT_MAX, "%lld", value);
	return out;
}

char *store_pg_uid_array(const uint32_t *uids, size_t count)
{
	struct buf b = BUF_INIT;
	buf_append_char(&b, '{');
	for (size_t i = 0; i < count; i++)
		buf_printf(&b, "%s%u", i > 0 ? "," : "", uids[i]);
	buf_append_char(&b, '}');
	return buf_steal(&b);
}

char *store_pg_text_array(const char *const *items, size_t count)
{
	struct buf b = BUF_INIT;
	buf_append_char(&b, '{');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			buf_append_char(&b, ',');
		store_pg_array_text(&b, items[i]);
	}
	buf_append_char(&b, '}');
	return buf_steal(&b);
}

void store_pg_array_text(struct buf *b, const char *s)
{
	buf_append_char(b, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			buf_append_char(b, '\\');
		buf_append_char(b, *s);
	}
	buf_append_char(b, '"');
}

int store_pg_notify(struct pg_conn *conn, int64_t mailbox, char **error_r)
{
	char channel[STORE_PG_INT_MAX + 16];
	snprintf(channel, sizeof(channel), "po_mbox_%lld", (long long)mailbox);
	pg_notify_after_commit(conn, channel);
	return 0;
}

/* ---- transactions ---- */

static bool tx_retryable(struct pg_conn *conn)
{
	return pg_error_is(conn, "40001") || pg_error_is(conn, "40P01");
}

int store_pg_conn_tx(struct pg_conn *conn, int (*fn)(struct pg_conn *conn, void *ctx, char **error_r),
		     void *ctx, char **error_r)
{
	for (int attempt = 1;; attempt++) {
		char *error = NULL;
		if (pg_begin(conn, &error) < 0) {
			*error_r = store_pg_error(conn, "begin", error);
			return -1;
		}
		int rc = fn(conn, ctx, error_r);
		if (rc >= 0 && pg_commit(conn, &error) < 0) {
			*error_r = store_pg_error(conn, "commit", error);
			rc = -1;
		} else if (rc < 0) {
			pg_rollback(conn);
		}
		if (rc >= 0 || attempt == STORE_PG_TX_TRIES || !tx_retryable(conn))
			return rc;
		log_debug("store postgresql transaction retried attempt=%d error=\"%s\"", attempt, *error_r);
		free(*error_r);
		*error_r = NULL;
	}
}

struct store_tx {
	struct store_pg *store;
	int (*fn)(struct store_pg *store, void *ctx, char **error_r);
	void *ctx;
};

static int store_tx_fn(struct pg_conn *conn, void *ctx, char **error_r)
{
	struct store_tx *t = ctx;
	return t->fn(t->store, t->ctx, error_r);
}

int store_pg_tx(struct store_pg *store, int (*fn)(struct store_pg *store, void *ctx, char **error_r),
		void *ctx, char **error_r)
{
	pthread_mutex_lock(&store->lock);
	int rc;
	if (store->cache_tx) {
		/* joins the cache's transaction; a failure ends it */
		rc = fn(store, ctx, error_r);
		if (rc < 0) {
			pg_rollback(store->conn);
			store->cache_tx = false;
		}
	} else {
		struct store_tx t = {store, fn, ctx};
		rc = store_pg_conn_tx(store->conn, store_tx_fn, &t, error_r);
	}
	pthread_mutex_unlock(&store->lock);
	return rc;
}

/* ---- handles ---- */

int store_pg_store_ensure(struct pg_conn *conn, const char *address, bool folders_too, int64_t *id_r,
			  char **error_r)
{
	char *folders =
	    store_pg_text_array(maildir_default_folders, folders_too ? MAILDIR_DEFAULT_FOLDER_COUNT : 0);
	const char *v[] = {address, folders};
	PGresult *res =
	    store_pg_run(conn, "opening a store", "SELECT mail_store_ensure($1, $2::text[])", 2, v, error_r);
	free(folders);
	if (res == NULL)
		return -1;
	*id_r = pg_value_int64(res, 0, 0);
	PQclear(res);
	return 0;
}

struct store *store_pg_open(const char *location, char **error_r)
{
	char *address, *conninfo;
	if (store_pg_location_parse(location, &address, &conninfo, error_r) < 0)
		return NULL;
	struct store_pg_pool *pool;
	struct pg_conn *conn = store_pg_conn_get(conninfo, &pool, error_r);
	free(conninfo);
	int64_t id = 0;
	if (conn == NULL || store_pg_store_ensure(conn, address, false, &id, error_r) < 0) {
		store_pg_conn_put(pool, &conn);
		free(address);
		return NULL;
	}
	struct store_pg *store = xcalloc(1, sizeof(*store));
	store->store.be = &store_backend_pg;
	store->location = xstrdup(location);
	store->address = address;
	store->pool = pool;
	store->conn = conn;
	store->id = id;
	pthread_mutex_init(&store->lock, NULL);
	return &store->store;
}

void store_pg_close(struct store *base)
{
	struct store_pg *store = store_pg_cast(base);
	store_pg_maildrop_unlock(base);
	store_pg_conn_put(store->pool, &store->conn);
	pthread_mutex_destroy(&store->lock);
	free(store->location);
	free(store->address);
	free(store);
}

const char *store_pg_path(const struct store *base)
{
	return ((const struct store_pg *)base)->location;
}
