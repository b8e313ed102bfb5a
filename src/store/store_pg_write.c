/* The postgresql backend: changing messages (flags, expunge, append,
   copy and move) and storing message octets once.

   Every change to a mailbox is one transaction that first locks the
   mailbox's row (SELECT ... FOR UPDATE, or the UPDATE of its counters):
   writers of one mailbox, on any node, take turns, so UIDs and modseqs
   are handed out in the order their transactions commit and a reader
   never sees modseq N+1 before N (a sequence would hand out numbers
   whose transactions may commit out of order, and a client that saw
   HIGHESTMODSEQ N+1 would miss the change N, RFC 7162 3.1.1).  Mailbox
   rows are locked before body rows, and several mailboxes in id order,
   so that writers do not deadlock (one that does anyway is tried again,
   store_pg_tx).  The mailbox's watchers (store_pg_watch.c) get a NOTIFY
   right after the transaction commits (store_pg_notify()). */
#include "store/store_pg_private.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A new EMAILID (RFC 8474): 'M' and 96 random bits. */
#define EMAILID_SQL "'M' || substr(md5(random()::text || clock_timestamp()::text), 1, 24)"

/* Locks the row of mailbox and reads its HIGHESTMODSEQ. */
static int mailbox_lock(struct pg_conn *conn, int64_t mailbox, uint64_t *modseq_r, char **error_r)
{
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mailbox)};
	PGresult *res =
	    store_pg_run(conn, "locking a mailbox",
			 "SELECT highestmodseq FROM mail_mailboxes WHERE id = $1 FOR UPDATE", 1, v, error_r);
	if (res == NULL)
		return -1;
	bool found = PQntuples(res) == 1;
	if (found)
		*modseq_r = (uint64_t)pg_value_int64(res, 0, 0);
	PQclear(res);
	if (!found)
		*error_r = xstrdup("the mailbox was deleted");
	return found ? 0 : -1;
}

/* Takes n UIDs and one modseq of the (locked) mailbox. */
static int mailbox_take(struct pg_conn *conn, int64_t mailbox, size_t n, uint32_t *first_uid_r,
			uint64_t *modseq_r, char **error_r)
{
	char id[STORE_PG_INT_MAX], count[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, mailbox), store_pg_int(count, (long long)n)};
	PGresult *res =
	    store_pg_run(conn, "updating a mailbox",
			 "UPDATE mail_mailboxes SET uidnext = uidnext + $2, highestmodseq = highestmodseq + 1"
			 " WHERE id = $1 RETURNING uidnext - $2, highestmodseq",
			 2, v, error_r);
	if (res == NULL)
		return -1;
	bool found = PQntuples(res) == 1;
	if (found) {
		*first_uid_r = (uint32_t)pg_value_int64(res, 0, 0);
		*modseq_r = (uint64_t)pg_value_int64(res, 0, 1);
	}
	PQclear(res);
	if (!found)
		*error_r = xstrdup("the mailbox was deleted");
	return found ? 0 : -1;
}

/* ---- bodies ---- */

int store_pg_body_hash(const void *data, size_t len, unsigned char hash_r[STORE_PG_HASH_LEN], char **error_r)
{
	unsigned int hlen = 0;
	if (EVP_Digest(data, len, hash_r, &hlen, EVP_sha256(), NULL) != 1 || hlen != STORE_PG_HASH_LEN) {
		*error_r = xstrdup("SHA-256 failed");
		return -1;
	}
	return 0;
}

int store_pg_body_put(struct pg_conn *conn, const void *data, size_t len,
		      unsigned char hash_r[STORE_PG_HASH_LEN], char **error_r)
{
	if (store_pg_body_hash(data, len, hash_r, error_r) < 0)
		return -1;
	/* Known already: lock it (an expunge of its last other reference
	   then waits for this transaction, which adds one) and send nothing. */
	const char *v1[] = {(const char *)hash_r};
	const int l1[] = {STORE_PG_HASH_LEN}, f1[] = {1};
	PGresult *res = store_pg_run_bin(conn, "storing a message",
					 "SELECT 1 FROM mail_bodies WHERE hash = $1 FOR UPDATE", 1, v1, l1,
					 f1, 0, error_r);
	if (res == NULL)
		return -1;
	bool known = PQntuples(res) == 1;
	PQclear(res);
	if (known)
		return 0;
	char size[STORE_PG_INT_MAX];
	const char *v[] = {(const char *)hash_r, store_pg_int(size, (long long)len), len > 0 ? data : ""};
	const int l[] = {STORE_PG_HASH_LEN, 0, (int)len}, f[] = {1, 0, 1};
	res = store_pg_run_bin(conn, "storing a message",
			       "INSERT INTO mail_bodies (hash, size, data) VALUES ($1, $2, $3)"
			       " ON CONFLICT (hash) DO UPDATE SET refs = mail_bodies.refs",
			       3, v, l, f, 0, error_r);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

/* Octets with CRLF line ends: len plus one for each bare LF. */
static uint64_t crlf_size(const char *data, size_t len)
{
	uint64_t n = len;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			n++;
	return n;
}

/* ---- append ---- */

int store_pg_msg_insert(struct pg_conn *conn, int64_t mailbox, const struct store_pg_row *row,
			const void *data, size_t len, char **error_r)
{
	unsigned char hash[STORE_PG_HASH_LEN];
	if (store_pg_body_put(conn, data, len, hash, error_r) < 0)
		return -1;
	char id[STORE_PG_INT_MAX], uid[STORE_PG_INT_MAX], flags[STORE_PG_INT_MAX], ms[STORE_PG_INT_MAX],
	    date[STORE_PG_INT_MAX], size[STORE_PG_INT_MAX], psize[STORE_PG_INT_MAX];
	const char *v[] = {
	    store_pg_int(id, mailbox),
	    store_pg_int(uid, (long long)row->uid),
	    store_pg_int(flags, row->flags & STORE_FLAGS_ALL),
	    row->keywords != NULL ? row->keywords : "",
	    store_pg_int(ms, (long long)row->modseq),
	    store_pg_int(date, row->internaldate != 0 ? row->internaldate : (long long)time(NULL)),
	    store_pg_int(size, (long long)crlf_size(data, len)),
	    store_pg_int(psize, (long long)len),
	    (const char *)hash,
	    row->emailid,
	    row->stable_id,
	};
	const int l[] = {0, 0, 0, 0, 0, 0, 0, 0, STORE_PG_HASH_LEN, 0, 0},
		  f[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
	PGresult *res = store_pg_run_bin(
	    conn, "appending a message",
	    "INSERT INTO mail_messages (mailbox, uid, flags, keywords, modseq, internaldate, size,"
	    " psize, body, emailid, stable_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
	    " coalesce($10, " EMAILID_SQL "), $11)",
	    11, v, l, f, 0, error_r);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

struct append_call {
	int64_t mailbox;
	const struct store_append *msgs;
	size_t count;
	uint32_t first_uid;
};

static int append_tx(struct store_pg *store, void *ctx, char **error_r)
{
	struct append_call *c = ctx;
	uint64_t modseq;
	if (mailbox_take(store->conn, c->mailbox, c->count, &c->first_uid, &modseq, error_r) < 0)
		return -1;
	for (size_t i = 0; i < c->count; i++) {
		const struct store_append *a = &c->msgs[i];
		struct store_pg_row row = {
		    c->first_uid + (uint32_t)i, a->flags, a->keywords, a->internaldate, modseq, NULL, NULL};
		if (store_pg_msg_insert(store->conn, c->mailbox, &row, a->data, a->len, error_r) < 0)
			return -1;
	}
	return store_pg_notify(store->conn, c->mailbox, error_r);
}

int store_pg_msg_append_many(struct store_mailbox *box, const struct store_append *msgs, size_t count,
			     uint32_t *first_uid_r, char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	struct append_call c = {mbox->id, msgs, count, 0};
	if (store_pg_tx(mbox->store, append_tx, &c, error_r) < 0)
		return -1;
	*first_uid_r = c.first_uid;
	return 0;
}

/* ---- flags ---- */

struct flags_call {
	int64_t mailbox;
	const uint32_t *uids;
	size_t count;
	enum store_flag_op op;
	uint32_t flags;
	const char *keywords;
	uint64_t unchanged_since;
	uint32_t *failed;
	size_t nfailed;
	int changed;
};

static int flags_tx(struct store_pg *store, void *ctx, char **error_r)
{
	struct flags_call *c = ctx;
	c->nfailed = 0;
	c->changed = 0;
	uint64_t highest;
	if (mailbox_lock(store->conn, c->mailbox, &highest, error_r) < 0)
		return -1;
	char id[STORE_PG_INT_MAX], ms[STORE_PG_INT_MAX];
	char *array = store_pg_uid_array(c->uids, c->count);
	const char *v[] = {store_pg_int(id, c->mailbox), array};
	PGresult *res = store_pg_run(store->conn, "reading flags",
				     "SELECT uid, flags, modseq, keywords FROM mail_messages"
				     " WHERE mailbox = $1 AND uid = ANY($2::bigint[]) ORDER BY uid",
				     2, v, error_r);
	free(array);
	if (res == NULL)
		return -1;
	struct buf uids = BUF_INIT, flags = BUF_INIT, kws = BUF_INIT, kw = BUF_INIT;
	buf_append_char(&uids, '{');
	buf_append_char(&flags, '{');
	buf_append_char(&kws, '{');
	for (int i = 0; i < PQntuples(res); i++) {
		uint32_t uid = (uint32_t)pg_value_int64(res, i, 0);
		uint32_t old = (uint32_t)pg_value_int64(res, i, 1);
		const char *old_kw = pg_value(res, i, 3);
		if (c->unchanged_since != 0 && (uint64_t)pg_value_int64(res, i, 2) > c->unchanged_since) {
			c->failed[c->nfailed++] = uid;
			continue;
		}
		uint32_t nflags = store_flags_apply(old, c->op, c->flags);
		const char *nkw = store_keywords_apply(&kw, c->op, old_kw, c->keywords);
		if (nflags == old && strcmp(nkw, old_kw) == 0)
			continue;
		const char *sep = c->changed++ > 0 ? "," : "";
		buf_printf(&uids, "%s%u", sep, uid);
		buf_printf(&flags, "%s%u", sep, nflags);
		buf_append_str(&kws, sep);
		store_pg_array_text(&kws, nkw);
	}
	PQclear(res);
	buf_append_char(&uids, '}');
	buf_append_char(&flags, '}');
	buf_append_char(&kws, '}');
	int rc = 0;
	if (c->changed > 0) {
		const char *u[] = {id, store_pg_int(ms, (long long)highest + 1), buf_cstr(&uids),
				   buf_cstr(&flags), buf_cstr(&kws)};
		rc = store_pg_exec(store->conn, "updating flags",
				   "UPDATE mail_messages m SET flags = u.f, keywords = u.k, modseq = $2"
				   " FROM unnest($3::bigint[], $4::int[], $5::text[]) AS u(uid, f, k)"
				   " WHERE m.mailbox = $1 AND m.uid = u.uid",
				   5, u, error_r);
		if (rc == 0)
			rc = store_pg_exec(store->conn, "updating a mailbox",
					   "UPDATE mail_mailboxes SET highestmodseq = $2 WHERE id = $1", 2, u,
					   error_r);
		if (rc == 0)
			rc = store_pg_notify(store->conn, c->mailbox, error_r);
	}
	buf_free(&uids);
	buf_free(&flags);
	buf_free(&kws);
	buf_free(&kw);
	return rc;
}

int store_pg_msg_set_flags(struct store_mailbox *box, const uint32_t *uids, size_t count,
			   enum store_flag_op op, uint32_t flags, const char *keywords,
			   uint64_t unchanged_since, uint32_t **failed_r, size_t *failed_count_r,
			   char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	struct flags_call c = {
	    .mailbox = mbox->id,
	    .uids = uids,
	    .count = count,
	    .op = op,
	    .flags = flags,
	    .keywords = keywords,
	    .unchanged_since = unchanged_since,
	    .failed = xcalloc(count + 1, sizeof(uint32_t)),
	};
	if (count > 0 && store_pg_tx(mbox->store, flags_tx, &c, error_r) < 0) {
		free(c.failed);
		return -1;
	}
	if (failed_r != NULL) {
		*failed_r = c.failed;
		*failed_count_r = c.nfailed;
	} else {
		free(c.failed);
	}
	return c.changed;
}

/* Flags live in the rows only: no file names to follow them. */
int store_pg_mailbox_flags_pending(struct store_mailbox *box, char **error_r)
{
	(void)store_pg_mailbox_cast(box);
	return 0;
}

int store_pg_mailbox_flush_flags(struct store_mailbox *box, char **error_r)
{
	(void)store_pg_mailbox_cast(box);
	return 0;
}

/* ---- expunge ---- */

int store_pg_expunge_tx(struct pg_conn *conn, int64_t mailbox, const uint32_t *uids, size_t count,
			char **error_r)
{
	uint64_t highest;
	if (mailbox_lock(conn, mailbox, &highest, error_r) < 0)
		return -1;
	char id[STORE_PG_INT_MAX], ms[STORE_PG_INT_MAX];
	char *array = store_pg_uid_array(uids, count);
	const char *v[] = {store_pg_int(id, mailbox), array, store_pg_int(ms, (long long)highest + 1)};
	/* the rows' cache goes with them (ON DELETE CASCADE), bodies no row
	   refers to any more too (trigger mail_messages_unref) */
	PGresult *res =
	    store_pg_run(conn, "expunging",
			 "WITH gone AS (DELETE FROM mail_messages WHERE mailbox = $1"
			 " AND uid = ANY($2::bigint[]) RETURNING uid)"
			 " INSERT INTO mail_expunged (mailbox, uid, modseq) SELECT $1, uid, $3 FROM gone"
			 " ON CONFLICT (mailbox, uid) DO UPDATE SET modseq = EXCLUDED.modseq",
			 3, v, error_r);
	free(array);
	if (res == NULL)
		return -1;
	int n = (int)pg_changes(res);
	PQclear(res);
	const char *u[] = {id, ms};
	if (n > 0 &&
	    (store_pg_exec(conn, "updating a mailbox",
			   "UPDATE mail_mailboxes SET highestmodseq = $2 WHERE id = $1", 2, u, error_r) < 0 ||
	     store_pg_notify(conn, mailbox, error_r) < 0))
		return -1;
	return n;
}

struct expunge_call {
	int64_t mailbox;
	const uint32_t *uids;
	size_t count;
};

static int expunge_tx(struct store_pg *store, void *ctx, char **error_r)
{
	struct expunge_call *c = ctx;
	return store_pg_expunge_tx(store->conn, c->mailbox, c->uids, c->count, error_r);
}

int store_pg_msg_expunge(struct store_mailbox *box, const uint32_t *uids, size_t count, char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	if (count == 0)
		return 0;
	struct expunge_call c = {mbox->id, uids, count};
	return store_pg_tx(mbox->store, expunge_tx, &c, error_r);
}

/* ---- copy and move ---- */

struct copy_call {
	int64_t src, dest;
	const uint32_t *uids;
	size_t count;
	bool move;
	uint32_t *dest_uids;
	int copied;
};

/* Which of c->uids exist (their rows locked against an expunge until
   the copies are made): *present_r (count entries). */
static int copy_sources(struct pg_conn *conn, struct copy_call *c, bool *present, char **error_r)
{
	char id[STORE_PG_INT_MAX];
	char *array = store_pg_uid_array(c->uids, c->count);
	const char *v[] = {store_pg_int(id, c->src), array};
	PGresult *res =
	    store_pg_run(conn, "reading messages to copy",
			 "SELECT uid FROM mail_messages WHERE mailbox = $1 AND uid = ANY($2::bigint[])"
			 " ORDER BY uid FOR SHARE",
			 2, v, error_r);
	free(array);
	if (res == NULL)
		return -1;
	for (size_t i = 0; i < c->count; i++) {
		present[i] = false;
		for (int r = 0; r < PQntuples(res) && !present[i]; r++)
			present[i] = (uint32_t)pg_value_int64(res, r, 0) == c->uids[i];
	}
	PQclear(res);
	return 0;
}

static int copy_tx(struct store_pg *store, void *ctx, char **error_r)
{
	struct copy_call *c = ctx;
	struct pg_conn *conn = store->conn;
	c->copied = 0;
	memset(c->dest_uids, 0, c->count * sizeof(*c->dest_uids));
	/* both mailboxes' rows, in id order */
	char a[STORE_PG_INT_MAX], b[STORE_PG_INT_MAX];
	const char *lv[] = {store_pg_int(a, c->src), store_pg_int(b, c->dest)};
	if (store_pg_exec(conn, "locking mailboxes",
			  "SELECT id FROM mail_mailboxes WHERE id IN ($1, $2) ORDER BY id FOR UPDATE", 2, lv,
			  error_r) < 0)
		return -1;
	bool *present = xcalloc(c->count + 1, sizeof(bool));
	int rc = copy_sources(conn, c, present, error_r);
	size_t n = 0;
	for (size_t i = 0; i < c->count && rc == 0; i++)
		n += present[i];
	uint32_t first = 0;
	uint64_t modseq = 0;
	if (rc == 0 && n > 0)
		rc = mailbox_take(conn, c->dest, n, &first, &modseq, error_r);
	struct buf srcs = BUF_INIT, dsts = BUF_INIT;
	buf_append_char(&srcs, '{');
	buf_append_char(&dsts, '{');
	for (size_t i = 0; i < c->count && rc == 0 && n > 0; i++) {
		if (!present[i])
			continue;
		c->dest_uids[i] = first + (uint32_t)c->copied;
		const char *sep = c->copied++ > 0 ? "," : "";
		buf_printf(&srcs, "%s%u", sep, c->uids[i]);
		buf_printf(&dsts, "%s%u", sep, c->dest_uids[i]);
	}
	buf_append_char(&srcs, '}');
	buf_append_char(&dsts, '}');
	char ms[STORE_PG_INT_MAX];
	const char *v[] = {b, store_pg_int(ms, (long long)modseq), buf_cstr(&srcs), buf_cstr(&dsts), a};
	if (rc == 0 && n > 0)
		rc = store_pg_exec(
		    conn, "copying messages",
		    "INSERT INTO mail_messages (mailbox, uid, flags, keywords, modseq, internaldate,"
		    " size, psize, body, emailid)"
		    " SELECT $1, u.dst, m.flags, m.keywords, $2, m.internaldate, m.size, m.psize,"
		    " m.body, m.emailid FROM unnest($3::bigint[], $4::bigint[]) AS u(src, dst)"
		    " JOIN mail_messages m ON m.mailbox = $5 AND m.uid = u.src",
		    5, v, error_r);
	if (rc == 0 && n > 0)
		rc = store_pg_exec(
		    conn, "copying the cache",
		    "INSERT INTO mail_cache (mailbox, uid, envelope, bodystructure, preview, header,"
		    " sortkey) SELECT $1, u.dst, c.envelope, c.bodystructure, c.preview, c.header,"
		    " c.sortkey FROM unnest($2::bigint[], $3::bigint[]) AS u(src, dst)"
		    " JOIN mail_cache c ON c.mailbox = $4 AND c.uid = u.src",
		    4, (const char *const[]){b, buf_cstr(&srcs), buf_cstr(&dsts), a}, error_r);
	if (rc == 0 && n > 0)
		rc = store_pg_notify(conn, c->dest, error_r);
	if (rc == 0 && n > 0 && c->move) {
		uint32_t *gone = xcalloc(n, sizeof(*gone));
		size_t k = 0;
		for (size_t i = 0; i < c->count; i++)
			if (present[i])
				gone[k++] = c->uids[i];
		rc = store_pg_expunge_tx(conn, c->src, gone, k, error_r) < 0 ? -1 : 0;
		free(gone);
	}
	buf_free(&srcs);
	buf_free(&dsts);
	free(present);
	return rc < 0 ? -1 : c->copied;
}

int store_pg_msg_copy(struct store_mailbox *src, const uint32_t *uids, size_t count,
		      struct store_mailbox *dest, bool move, uint32_t **dest_uids_r, char **error_r)
{
	struct store_pg_mailbox *from = store_pg_mailbox_cast(src), *to = store_pg_mailbox_cast(dest);
	struct copy_call c = {from->id, to->id, uids, count, move, xcalloc(count + 1, sizeof(uint32_t)), 0};
	int rc = count > 0 ? store_pg_tx(from->store, copy_tx, &c, error_r) : 0;
	if (rc < 0) {
		free(c.dest_uids);
		return -1;
	}
	if (dest_uids_r != NULL)
		*dest_uids_r = c.dest_uids;
	else
		free(c.dest_uids);
	return rc;
}
