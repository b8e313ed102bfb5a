/* The postgresql backend: the IMAP server's cache (ENVELOPE,
   BODYSTRUCTURE, PREVIEW, header blocks and sort keys), one row of
   mail_cache per message, which goes with the message (ON DELETE
   CASCADE from mail_messages). */
#include "store/store_pg_private.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

int store_pg_cache_prepare(struct store *store, char **error_r)
{
	(void)store_pg_cast(store);
	return 0;
}

/* The column of a text field. */
static const char *const field_get_sql[] = {
    [STORE_CACHE_ENVELOPE] = "SELECT envelope FROM mail_cache WHERE mailbox = $1 AND uid = $2",
    [STORE_CACHE_BODYSTRUCTURE] = "SELECT bodystructure FROM mail_cache WHERE mailbox = $1 AND uid = $2",
    [STORE_CACHE_PREVIEW] = "SELECT preview FROM mail_cache WHERE mailbox = $1 AND uid = $2",
};
static const char *const field_range_sql[] = {
    [STORE_CACHE_ENVELOPE] = "SELECT uid, envelope FROM mail_cache WHERE mailbox = $1"
			     " AND uid BETWEEN $2 AND $3 AND envelope IS NOT NULL ORDER BY uid",
    [STORE_CACHE_BODYSTRUCTURE] = "SELECT uid, bodystructure FROM mail_cache WHERE mailbox = $1"
				  " AND uid BETWEEN $2 AND $3 AND bodystructure IS NOT NULL ORDER BY uid",
    [STORE_CACHE_PREVIEW] = "SELECT uid, preview FROM mail_cache WHERE mailbox = $1"
			    " AND uid BETWEEN $2 AND $3 AND preview IS NOT NULL ORDER BY uid",
};
/* A row for a message expunged meanwhile is refused by the foreign key
   (23503): nothing to cache then. */
#define UPSERT(col)                                                                                          \
	"INSERT INTO mail_cache (mailbox, uid, " col ") VALUES ($1, $2, $3)"                                 \
	" ON CONFLICT (mailbox, uid) DO UPDATE SET " col " = EXCLUDED." col
static const char *const field_set_sql[] = {
    [STORE_CACHE_ENVELOPE] = UPSERT("envelope"),
    [STORE_CACHE_BODYSTRUCTURE] = UPSERT("bodystructure"),
    [STORE_CACHE_PREVIEW] = UPSERT("preview"),
};
static const char header_set_sql[] = UPSERT("header");
static const char sortkey_set_sql[] = UPSERT("sortkey");

int store_pg_cache_get(struct store_mailbox *box, uint32_t uid, enum store_cache_field field, char **text_r,
		       char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	char id[STORE_PG_INT_MAX], u[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id), store_pg_int(u, uid)};
	pthread_mutex_lock(&mbox->store->lock);
	PGresult *res =
	    store_pg_run(mbox->store->conn, "reading the cache", field_get_sql[field], 2, v, error_r);
	pthread_mutex_unlock(&mbox->store->lock);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
	if (found)
		*text_r = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return found;
}

/* Sets one column of uid's row: data[0..len) as text (binary false) or
   bytea. */
static int cache_put(struct store_pg_mailbox *mbox, const char *sql, uint32_t uid, const void *data,
		     size_t len, bool binary, char **error_r)
{
	char id[STORE_PG_INT_MAX], u[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id), store_pg_int(u, uid), len > 0 ? data : ""};
	const int l[] = {0, 0, (int)len}, f[] = {0, 0, binary ? 1 : 0};
	struct store_pg *store = mbox->store;
	pthread_mutex_lock(&store->lock);
	char *error = NULL;
	PGresult *res = pg_query_params(store->conn, sql, 3, v, l, f, 0, &error);
	int rc = 0;
	if (res == NULL && !pg_error_is(store->conn, "23503")) {
		*error_r = store_pg_error(store->conn, "writing the cache", error);
		rc = -1;
		/* the failure ended the cache's transaction */
		if (store->cache_tx) {
			pg_rollback(store->conn);
			store->cache_tx = false;
		}
	} else if (res == NULL) {
		free(error);
		/* inside a transaction the refusal aborted it: done with it */
		if (store->cache_tx) {
			pg_rollback(store->conn);
			store->cache_tx = false;
		}
	}
	pthread_mutex_unlock(&store->lock);
	PQclear(res);
	return rc;
}

int store_pg_cache_set(struct store_mailbox *box, uint32_t uid, enum store_cache_field field,
		       const char *text, char **error_r)
{
	return cache_put(store_pg_mailbox_cast(box), field_set_sql[field], uid, text, strlen(text), false,
			 error_r);
}

int store_pg_cache_set_header(struct store_mailbox *box, uint32_t uid, const void *data, size_t len,
			      char **error_r)
{
	return cache_put(store_pg_mailbox_cast(box), header_set_sql, uid, data, len, true, error_r);
}

int store_pg_cache_set_sortkey(struct store_mailbox *box, uint32_t uid, const void *data, size_t len,
			       char **error_r)
{
	return cache_put(store_pg_mailbox_cast(box), sortkey_set_sql, uid, data, len, true, error_r);
}

/* Reads rows (uid, value) of lo..hi (binary: bytea values) and calls cb
   with each, after the lock is given back. */
static int range_walk(struct store_pg_mailbox *mbox, const char *sql, uint32_t lo, uint32_t hi, bool binary,
		      int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len), void *ctx,
		      char **error_r)
{
	char id[STORE_PG_INT_MAX], l[STORE_PG_INT_MAX], h[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id), store_pg_int(l, lo), store_pg_int(h, hi)};
	pthread_mutex_lock(&mbox->store->lock);
	/* binary results give the uid as 8 bytes: ask for it as text */
	PGresult *res = store_pg_run_bin(mbox->store->conn, "reading the cache", sql, 3, v, NULL, NULL,
					 binary ? 1 : 0, error_r);
	pthread_mutex_unlock(&mbox->store->lock);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		uint32_t uid;
		if (binary) {
			const unsigned char *p = (const unsigned char *)PQgetvalue(res, i, 0);
			uint64_t n = 0;
			for (int k = 0; k < 8; k++)
				n = n << 8 | p[k];
			uid = (uint32_t)n;
		} else {
			uid = (uint32_t)pg_value_int64(res, i, 0);
		}
		if (cb(ctx, uid, PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1)) != 0)
			break;
	}
	PQclear(res);
	return 0;
}

int store_pg_cache_get_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
			     enum store_cache_field field,
			     int (*cb)(void *ctx, uint32_t uid, const char *text, size_t len), void *ctx,
			     char **error_r)
{
	return range_walk(store_pg_mailbox_cast(box), field_range_sql[field], lo, hi, false, cb, ctx,
			  error_r);
}

int store_pg_cache_get_header_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
				    int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
				    void *ctx, char **error_r)
{
	return range_walk(store_pg_mailbox_cast(box),
			  "SELECT uid, header FROM mail_cache WHERE mailbox = $1 AND uid BETWEEN $2 AND $3"
			  " AND header IS NOT NULL ORDER BY uid",
			  lo, hi, true, cb, ctx, error_r);
}

int store_pg_cache_get_sortkey_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
				     int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
				     void *ctx, char **error_r)
{
	return range_walk(store_pg_mailbox_cast(box),
			  "SELECT uid, sortkey FROM mail_cache WHERE mailbox = $1 AND uid BETWEEN $2 AND $3"
			  " AND sortkey IS NOT NULL ORDER BY uid",
			  lo, hi, true, cb, ctx, error_r);
}

int store_pg_cache_begin(struct store_mailbox *box, char **error_r)
{
	struct store_pg *store = store_pg_mailbox_cast(box)->store;
	pthread_mutex_lock(&store->lock);
	int rc = 0;
	if (!store->cache_tx) {
		char *error = NULL;
		rc = pg_begin(store->conn, &error);
		if (rc < 0)
			*error_r = store_pg_error(store->conn, "begin", error);
		store->cache_tx = rc == 0;
	}
	pthread_mutex_unlock(&store->lock);
	return rc;
}

int store_pg_cache_commit(struct store_mailbox *box, char **error_r)
{
	struct store_pg *store = store_pg_mailbox_cast(box)->store;
	pthread_mutex_lock(&store->lock);
	int rc = 0;
	if (store->cache_tx) {
		store->cache_tx = false;
		char *error = NULL;
		rc = pg_commit(store->conn, &error);
		if (rc < 0)
			*error_r = store_pg_error(store->conn, "commit", error);
	}
	pthread_mutex_unlock(&store->lock);
	return rc;
}
