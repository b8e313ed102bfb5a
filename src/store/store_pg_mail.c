/* The postgresql backend: opening mailboxes and reading them (lists,
   status, counters, expunges, \Recent, message octets, EMAILIDs).  The
   tables are the index: there is nothing to sync, and a change made on
   any node is seen by the next read. */
#include "store/store_pg_private.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Runs one read statement under the handle's lock. */
static PGresult *locked_run(struct store_pg *store, const char *what, const char *sql, int n,
			    const char *const *values, int result_format, char **error_r)
{
	pthread_mutex_lock(&store->lock);
	PGresult *res =
	    store_pg_run_bin(store->conn, what, sql, n, values, NULL, NULL, result_format, error_r);
	pthread_mutex_unlock(&store->lock);
	return res;
}

/* ---- opening ---- */

struct open_call {
	const char *name;
	bool indexed_only;
	int64_t id;
	uint32_t uidvalidity;
	char *objectid;
};

static int open_tx(struct store_pg *store, void *ctx, char **error_r)
{
	struct open_call *c = ctx;
	char sid[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(sid, store->id), c->name};
	if (strcmp(c->name, "INBOX") == 0 &&
	    store_pg_exec(store->conn, "opening INBOX", "SELECT mail_mailbox_ensure($1, $2)", 2, v, error_r) <
		0)
		return -1;
	/* A mailbox gets its MAILBOXID when it is first opened (reading
	   only, one never opened is not there yet, as in the local index). */
	PGresult *res = store_pg_run(
	    store->conn, "opening a mailbox",
	    c->indexed_only
		? "SELECT id, uidvalidity, mailboxid FROM mail_mailboxes WHERE store = $1 AND name = $2"
		: "UPDATE mail_mailboxes SET mailboxid = coalesce(mailboxid,"
		  " 'F' || substr(md5(random()::text || clock_timestamp()::text || id::text), 1, 24))"
		  " WHERE store = $1 AND name = $2 RETURNING id, uidvalidity, mailboxid",
	    2, v, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1 && !PQgetisnull(res, 0, 2);
	if (found) {
		c->id = pg_value_int64(res, 0, 0);
		c->uidvalidity = (uint32_t)pg_value_int64(res, 0, 1);
		c->objectid = xstrdup(pg_value(res, 0, 2));
	}
	PQclear(res);
	return found;
}

static int mailbox_open(struct store *base, const char *name, bool indexed_only,
			struct store_mailbox **mbox_r, char **error_r)
{
	struct store_pg *store = store_pg_cast(base);
	const char *err;
	if (store_name_check(name, &err) < 0)
		return 0;
	struct open_call c = {.name = strcasecmp(name, "INBOX") == 0 ? "INBOX" : name,
			      .indexed_only = indexed_only};
	int rc = store_pg_tx(store, open_tx, &c, error_r);
	if (rc <= 0)
		return rc;
	struct store_pg_mailbox *mbox = xcalloc(1, sizeof(*mbox));
	mbox->box.store = base;
	mbox->box.name = xstrdup(c.name);
	mbox->box.uidvalidity = c.uidvalidity;
	mbox->box.objectid = c.objectid;
	mbox->store = store;
	mbox->id = c.id;
	*mbox_r = &mbox->box;
	return 1;
}

int store_pg_mailbox_open(struct store *base, const char *name, struct store_mailbox **mbox_r, char **error_r)
{
	return mailbox_open(base, name, false, mbox_r, error_r);
}

int store_pg_mailbox_open_indexed(struct store *base, const char *name, struct store_mailbox **mbox_r,
				  char **error_r)
{
	return mailbox_open(base, name, true, mbox_r, error_r);
}

void store_pg_mailbox_close(struct store_mailbox *box)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	free(mbox->box.name);
	free(mbox->box.objectid);
	free(mbox);
}

int store_pg_mailbox_sync(struct store_mailbox *box, bool force, char **error_r)
{
	(void)store_pg_mailbox_cast(box);
	return 0;
}

/* ---- counters and status ---- */

int store_pg_mailbox_counters(struct store_mailbox *box, uint32_t *uidnext_r, uint64_t *modseq_r,
			      char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id)};
	PGresult *res =
	    locked_run(mbox->store, "reading a mailbox",
		       "SELECT uidnext, highestmodseq FROM mail_mailboxes WHERE id = $1", 1, v, 0, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = xasprintf("mailbox %s was deleted", box->name);
		return -1;
	}
	*uidnext_r = (uint32_t)pg_value_int64(res, 0, 0);
	*modseq_r = (uint64_t)pg_value_int64(res, 0, 1);
	PQclear(res);
	return 0;
}

int store_pg_mailbox_status(struct store_mailbox *box, struct store_status *status_r, char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	memset(status_r, 0, sizeof(*status_r));
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id)};
	PGresult *res = locked_run(mbox->store, "reading mailbox status",
				   "SELECT b.uidvalidity, b.uidnext, b.highestmodseq, count(m.uid),"
				   " coalesce(sum(m.size), 0), count(m.uid) FILTER (WHERE m.flags & 1 = 0),"
				   " count(m.uid) FILTER (WHERE m.uid >= b.first_recent),"
				   " count(m.uid) FILTER (WHERE m.flags & 8 <> 0)"
				   " FROM mail_mailboxes b LEFT JOIN mail_messages m ON m.mailbox = b.id"
				   " WHERE b.id = $1 GROUP BY b.id",
				   1, v, 0, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = xasprintf("mailbox %s was deleted", box->name);
		return -1;
	}
	status_r->uidvalidity = (uint32_t)pg_value_int64(res, 0, 0);
	status_r->uidnext = (uint32_t)pg_value_int64(res, 0, 1);
	status_r->highestmodseq = (uint64_t)pg_value_int64(res, 0, 2);
	status_r->messages = (uint32_t)pg_value_int64(res, 0, 3);
	status_r->size = (uint64_t)pg_value_int64(res, 0, 4);
	status_r->unseen = (uint32_t)pg_value_int64(res, 0, 5);
	status_r->recent = (uint32_t)pg_value_int64(res, 0, 6);
	status_r->deleted = (uint32_t)pg_value_int64(res, 0, 7);
	PQclear(res);
	return 0;
}

/* ---- lists ---- */

#define MSG_COLUMNS "uid, flags, size, psize, modseq, internaldate, keywords, stable_id"

static void list_read(struct store_pg_mailbox *mbox, PGresult *res, struct store_msg_list *list_r)
{
	memset(list_r, 0, sizeof(*list_r));
	list_r->pool = pool_create(64 * 1024);
	size_t count = (size_t)PQntuples(res);
	list_r->msgs = xcalloc(count + 1, sizeof(*list_r->msgs));
	list_r->count = count;
	for (size_t i = 0; i < count; i++) {
		struct store_msg *m = &list_r->msgs[i];
		int r = (int)i;
		m->uid = (uint32_t)pg_value_int64(res, r, 0);
		m->flags = (uint32_t)pg_value_int64(res, r, 1);
		m->size = (uint64_t)pg_value_int64(res, r, 2);
		m->bare_lf = (uint64_t)pg_value_int64(res, r, 3) != m->size;
		m->modseq = (uint64_t)pg_value_int64(res, r, 4);
		m->internaldate = pg_value_int64(res, r, 5);
		const char *kw = pg_value(res, r, 6);
		m->keywords = kw[0] != '\0' ? pool_strdup(list_r->pool, kw) : "";
		/* the stable id (POP3 UIDL): unique in the mailbox for life;
		   an imported message keeps the one it had */
		char loc[2 * STORE_PG_INT_MAX];
		snprintf(loc, sizeof(loc), "%u.%u", mbox->box.uidvalidity, m->uid);
		m->locator = pool_strdup(list_r->pool, PQgetisnull(res, r, 7) ? loc : pg_value(res, r, 7));
	}
}

static int list_run(struct store_pg_mailbox *mbox, const char *sql, uint64_t modseq,
		    struct store_msg_list *list_r, char **error_r)
{
	char id[STORE_PG_INT_MAX], ms[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id), store_pg_int(ms, (long long)modseq)};
	PGresult *res = locked_run(mbox->store, "listing messages", sql, 2, v, 0, error_r);
	if (res == NULL)
		return -1;
	list_read(mbox, res, list_r);
	PQclear(res);
	return 0;
}

int store_pg_mailbox_list(struct store_mailbox *box, struct store_msg_list *list_r, char **error_r)
{
	return list_run(store_pg_mailbox_cast(box),
			"SELECT " MSG_COLUMNS " FROM mail_messages WHERE mailbox = $1 AND $2::bigint >= 0"
			" ORDER BY uid",
			0, list_r, error_r);
}

int store_pg_mailbox_changed_since(struct store_mailbox *box, uint64_t modseq, struct store_msg_list *list_r,
				   char **error_r)
{
	return list_run(store_pg_mailbox_cast(box),
			"SELECT " MSG_COLUMNS " FROM mail_messages WHERE mailbox = $1 AND modseq > $2"
			" ORDER BY uid",
			modseq, list_r, error_r);
}

int store_pg_mailbox_expunged_since(struct store_mailbox *box, uint64_t modseq, uint32_t **uids_r,
				    size_t *count_r, char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	char id[STORE_PG_INT_MAX], ms[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id), store_pg_int(ms, (long long)modseq)};
	PGresult *res =
	    locked_run(mbox->store, "listing expunges",
		       "SELECT uid FROM mail_expunged WHERE mailbox = $1 AND modseq > $2 ORDER BY uid", 2, v,
		       0, error_r);
	if (res == NULL)
		return -1;
	size_t count = (size_t)PQntuples(res);
	uint32_t *uids = xcalloc(count + 1, sizeof(*uids));
	for (size_t i = 0; i < count; i++)
		uids[i] = (uint32_t)pg_value_int64(res, (int)i, 0);
	PQclear(res);
	*uids_r = uids;
	*count_r = count;
	return 0;
}

struct recent_call {
	int64_t id;
	uint32_t first;
};

static int recent_tx(struct store_pg *store, void *ctx, char **error_r)
{
	struct recent_call *c = ctx;
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, c->id)};
	PGresult *res =
	    store_pg_run(store->conn, "taking recent messages",
			 "SELECT first_recent FROM mail_mailboxes WHERE id = $1 FOR UPDATE", 1, v, error_r);
	if (res == NULL)
		return -1;
	c->first = PQntuples(res) == 1 ? (uint32_t)pg_value_int64(res, 0, 0) : 1;
	PQclear(res);
	return store_pg_exec(store->conn, "taking recent messages",
			     "UPDATE mail_mailboxes SET first_recent = uidnext WHERE id = $1", 1, v, error_r);
}

int store_pg_mailbox_take_recent(struct store_mailbox *box, uint32_t *first_recent_r, char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id)};
	/* nothing recent (the usual case): no write */
	PGresult *res =
	    locked_run(mbox->store, "reading a mailbox",
		       "SELECT first_recent, first_recent >= uidnext FROM mail_mailboxes WHERE id = $1", 1, v,
		       0, error_r);
	if (res == NULL)
		return -1;
	bool none = PQntuples(res) == 1 && strcmp(pg_value(res, 0, 1), "t") == 0;
	*first_recent_r = PQntuples(res) == 1 ? (uint32_t)pg_value_int64(res, 0, 0) : 1;
	PQclear(res);
	if (none)
		return 0;
	struct recent_call c = {mbox->id, 1};
	if (store_pg_tx(mbox->store, recent_tx, &c, error_r) < 0)
		return -1;
	*first_recent_r = c.first;
	return 0;
}

/* ---- message octets ---- */

int store_pg_msg_open_uid(struct store_mailbox *box, uint32_t uid, int *fd_r, char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	char id[STORE_PG_INT_MAX], u[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id), store_pg_int(u, uid)};
	PGresult *res = locked_run(mbox->store, "reading a message",
				   "SELECT b.data FROM mail_messages m JOIN mail_bodies b ON b.hash = m.body"
				   " WHERE m.mailbox = $1 AND m.uid = $2",
				   2, v, 1, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return 0;
	}
	int fd = fs_memfd_with("postoffice-message", PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
			       error_r);
	PQclear(res);
	if (fd < 0)
		return -1;
	*fd_r = fd;
	return 1;
}

int store_pg_msg_open(struct store_mailbox *box, const struct store_msg *msg, int *fd_r, char **error_r)
{
	return store_pg_msg_open_uid(box, msg->uid, fd_r, error_r);
}

int store_pg_msg_emailids(struct store_mailbox *box, uint32_t lo, uint32_t hi,
			  int (*cb)(void *ctx, uint32_t uid, const char *emailid), void *ctx, char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	char id[STORE_PG_INT_MAX], l[STORE_PG_INT_MAX], h[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mbox->id), store_pg_int(l, lo), store_pg_int(h, hi)};
	PGresult *res = locked_run(mbox->store, "reading email ids",
				   "SELECT uid, emailid FROM mail_messages WHERE mailbox = $1"
				   " AND uid BETWEEN $2 AND $3 ORDER BY uid",
				   3, v, 0, error_r);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (cb(ctx, (uint32_t)pg_value_int64(res, i, 0), pg_value(res, i, 1)) != 0)
			break;
	PQclear(res);
	return 0;
}
