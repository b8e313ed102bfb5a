/* The postgresql backend's folders (rows of mail_mailboxes: a folder
   exists when its row does), subscriptions and quota usage. */
#include "store/store_pg_private.h"
#include "lib/strlist.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* Runs a statement whose first column lists names under the handle's
   lock, then calls cb with first (when not NULL) and each name: cb may
   call the store. */
static int names_walk(struct store_pg *store, const char *what, const char *sql, const char *first,
		      int (*cb)(void *ctx, const char *name), void *ctx, char **error_r)
{
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, store->id)};
	pthread_mutex_lock(&store->lock);
	PGresult *res = store_pg_run(store->conn, what, sql, 1, v, error_r);
	pthread_mutex_unlock(&store->lock);
	if (res == NULL)
		return -1;
	struct strlist l = STRLIST_INIT;
	for (int i = 0; i < PQntuples(res); i++)
		strlist_add(&l, pg_value(res, i, 0));
	PQclear(res);
	int stop = first != NULL ? cb(ctx, first) : 0;
	for (size_t i = 0; i < l.count && stop == 0; i++)
		stop = cb(ctx, l.items[i]);
	strlist_free(&l);
	return 0;
}

int store_pg_quota_usage(struct store *base, uint64_t *bytes_r, uint64_t *messages_r, char **error_r)
{
	struct store_pg *store = store_pg_cast(base);
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, store->id)};
	pthread_mutex_lock(&store->lock);
	PGresult *res = store_pg_run(store->conn, "reading quota usage",
				     "SELECT coalesce(sum(m.psize), 0), count(*) FROM mail_messages m"
				     " JOIN mail_mailboxes b ON b.id = m.mailbox WHERE b.store = $1",
				     1, v, error_r);
	pthread_mutex_unlock(&store->lock);
	if (res == NULL)
		return -1;
	*bytes_r = (uint64_t)pg_value_int64(res, 0, 0);
	*messages_r = (uint64_t)pg_value_int64(res, 0, 1);
	PQclear(res);
	return 0;
}

/* ---- create ---- */

struct create_call {
	const char *name;
	bool exists;
};

static int create_tx(struct store_pg *store, void *ctx, char **error_r)
{
	struct create_call *c = ctx;
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, store->id), c->name};
	PGresult *res =
	    store_pg_run(store->conn, "creating a mailbox",
			 "SELECT 1 FROM mail_mailboxes WHERE store = $1 AND name = $2", 2, v, error_r);
	if (res == NULL)
		return -1;
	c->exists = PQntuples(res) > 0;
	PQclear(res);
	if (c->exists) {
		*error_r = xasprintf("mailbox %s exists", c->name);
		return -1;
	}
	/* parents first, so that LIST shows the hierarchy */
	int rc = 0;
	for (const char *p = strchr(c->name, STORE_SEPARATOR); p != NULL && rc == 0;
	     p = strchr(p + 1, STORE_SEPARATOR)) {
		char *parent = xstrndup(c->name, (size_t)(p - c->name));
		const char *pv[] = {id, parent};
		rc = store_pg_exec(store->conn, "creating a mailbox", "SELECT mail_mailbox_ensure($1, $2)", 2,
				   pv, error_r);
		free(parent);
	}
	if (rc == 0)
		rc = store_pg_exec(store->conn, "creating a mailbox", "SELECT mail_mailbox_ensure($1, $2)", 2,
				   v, error_r);
	return rc;
}

int store_pg_folder_create(struct store *base, const char *name, bool *exists_r, char **error_r)
{
	struct store_pg *store = store_pg_cast(base);
	const char *err;
	*exists_r = false;
	if (is_inbox(name)) {
		*exists_r = true;
		*error_r = xstrdup("INBOX always exists");
		return -1;
	}
	if (store_name_check(name, &err) < 0) {
		*error_r = xstrdup(err);
		return -1;
	}
	struct create_call c = {name, false};
	int rc = store_pg_tx(store, create_tx, &c, error_r);
	*exists_r = c.exists;
	return rc < 0 ? -1 : 0;
}

/* ---- delete ---- */

static int delete_tx(struct store_pg *store, void *ctx, char **error_r)
{
	const char *name = ctx;
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, store->id), name};
	/* messages, expunges and cache go with the row (ON DELETE CASCADE),
	   and bodies no other message refers to */
	PGresult *res = store_pg_run(store->conn, "deleting a mailbox",
				     "DELETE FROM mail_mailboxes WHERE store = $1 AND name = $2 RETURNING id",
				     2, v, error_r);
	if (res == NULL)
		return -1;
	int64_t gone = PQntuples(res) == 1 ? pg_value_int64(res, 0, 0) : 0;
	PQclear(res);
	if (gone == 0) {
		*error_r = xstrdup("no such mailbox");
		return -1;
	}
	return store_pg_notify(store->conn, gone, error_r);
}

int store_pg_folder_delete(struct store *base, const char *name, char **error_r)
{
	struct store_pg *store = store_pg_cast(base);
	if (is_inbox(name)) {
		*error_r = xstrdup("INBOX cannot be deleted");
		return -1;
	}
	return store_pg_tx(store, delete_tx, (void *)name, error_r);
}

/* ---- rename ---- */

struct rename_call {
	const char *from, *to;
};

static int rename_tx(struct store_pg *store, void *ctx, char **error_r)
{
	struct rename_call *c = ctx;
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, store->id), c->from, c->to};
	PGresult *res =
	    store_pg_run(store->conn, "renaming a mailbox",
			 "SELECT count(*) FILTER (WHERE name = $2), count(*) FILTER (WHERE name = $3)"
			 " FROM mail_mailboxes WHERE store = $1 AND name IN ($2, $3)",
			 3, v, error_r);
	if (res == NULL)
		return -1;
	bool ok_from = pg_value_int64(res, 0, 0) > 0, exists_to = pg_value_int64(res, 0, 1) > 0;
	PQclear(res);
	if (!ok_from || exists_to) {
		*error_r = xstrdup(!ok_from ? "no such mailbox" : "target mailbox exists");
		return -1;
	}
	/* the children too; each row keeps its MAILBOXID */
	return store_pg_exec(store->conn, "renaming a mailbox",
			     "UPDATE mail_mailboxes SET name = $3 || substr(name, length($2) + 1)"
			     " WHERE store = $1 AND (name = $2 OR left(name, length($2) + 1) = $2 || '.')",
			     3, v, error_r);
}

int store_pg_folder_rename(struct store *base, const char *from, const char *to, char **error_r)
{
	struct store_pg *store = store_pg_cast(base);
	const char *err;
	if (store_name_check(to, &err) < 0 || is_inbox(to)) {
		*error_r = xstrdup(is_inbox(to) ? "cannot rename to INBOX" : err);
		return -1;
	}
	if (is_inbox(from))
		return store_folder_rename_inbox(base, to, error_r);
	struct rename_call c = {from, to};
	return store_pg_tx(store, rename_tx, &c, error_r);
}

int store_pg_folder_list(struct store *base, int (*cb)(void *ctx, const char *name), void *ctx,
			 char **error_r)
{
	return names_walk(
	    store_pg_cast(base), "listing mailboxes",
	    "SELECT name FROM mail_mailboxes WHERE store = $1 AND name <> 'INBOX' ORDER BY name", "INBOX", cb,
	    ctx, error_r);
}

/* ---- subscriptions ---- */

int store_pg_subscribe(struct store *base, const char *name, bool subscribe, char **error_r)
{
	struct store_pg *store = store_pg_cast(base);
	const char *err;
	if (store_name_check(name, &err) < 0) {
		*error_r = xstrdup(err);
		return -1;
	}
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, store->id), is_inbox(name) ? "INBOX" : name};
	pthread_mutex_lock(&store->lock);
	int rc = store_pg_exec(store->conn, "changing a subscription",
			       subscribe ? "INSERT INTO mail_subscriptions (store, name) VALUES ($1, $2)"
					   " ON CONFLICT DO NOTHING"
					 : "DELETE FROM mail_subscriptions WHERE store = $1 AND name = $2",
			       2, v, error_r);
	pthread_mutex_unlock(&store->lock);
	return rc;
}

int store_pg_subscription_list(struct store *base, int (*cb)(void *ctx, const char *name), void *ctx,
			       char **error_r)
{
	return names_walk(store_pg_cast(base), "listing subscriptions",
			  "SELECT name FROM mail_subscriptions WHERE store = $1 ORDER BY name", NULL, cb, ctx,
			  error_r);
}
