/* The postgresql backend's users' stores without a handle (a store is
   the row of mail_stores named by the address) and delivery: one
   transaction stores the message's octets once and lists them in the
   mailbox of every recipient, committed (durably: synchronous_commit)
   before it returns. */
#include "store/store_pg_private.h"
#include "store/maildir_create.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *store_pg_user_location(const struct store_config *conf, const char *address)
{
	return xasprintf("%s %s", address, conf->conninfo != NULL ? conf->conninfo : "");
}

/* A connection to the database of conf (or of location). */
static struct pg_conn *conf_conn(const char *conninfo, struct store_pg_pool **pool_r, char **error_r)
{
	if (conninfo == NULL || conninfo[0] == '\0') {
		*error_r = xstrdup("postgresql store: no conninfo ([postgresql] conninfo)");
		return NULL;
	}
	return store_pg_conn_get(conninfo, pool_r, error_r);
}

static int create_tx(struct pg_conn *conn, void *ctx, char **error_r)
{
	const char *address = ctx;
	int64_t id;
	if (store_pg_store_ensure(conn, address, true, &id, error_r) < 0)
		return -1;
	char sid[STORE_PG_INT_MAX];
	store_pg_int(sid, id);
	for (size_t i = 0; i < MAILDIR_DEFAULT_FOLDER_COUNT; i++) {
		const char *v[] = {sid, maildir_default_folders[i]};
		if (store_pg_exec(conn, "creating a mailbox", "SELECT mail_mailbox_ensure($1, $2)", 2, v,
				  error_r) < 0)
			return -1;
	}
	return 0;
}

int store_pg_user_create(const struct store_config *conf, const char *address, uid_t uid, gid_t gid,
			 char **error_r)
{
	struct store_pg_pool *pool;
	struct pg_conn *conn = conf_conn(conf->conninfo, &pool, error_r);
	if (conn == NULL)
		return -1;
	int rc = store_pg_conn_tx(conn, create_tx, (void *)address, error_r);
	store_pg_conn_put(pool, &conn);
	return rc;
}

int store_pg_user_purge(const struct store_config *conf, const char *address, char **error_r)
{
	struct store_pg_pool *pool;
	struct pg_conn *conn = conf_conn(conf->conninfo, &pool, error_r);
	if (conn == NULL)
		return -1;
	/* mailboxes, messages, subscriptions go with the row (ON DELETE
	   CASCADE), and the bodies nobody else refers to */
	int rc = store_pg_exec(conn, "removing a store", "DELETE FROM mail_stores WHERE address = $1", 1,
			       &address, error_r);
	store_pg_conn_put(pool, &conn);
	return rc;
}

int store_pg_usage(const char *location, uint64_t *bytes_r, char **error_r)
{
	*bytes_r = 0;
	char *address, *conninfo;
	if (store_pg_location_parse(location, &address, &conninfo, error_r) < 0)
		return -1;
	struct store_pg_pool *pool;
	struct pg_conn *conn = conf_conn(conninfo, &pool, error_r);
	free(conninfo);
	if (conn == NULL) {
		free(address);
		return -1;
	}
	const char *v[] = {address};
	PGresult *res = store_pg_run(conn, "reading usage",
				     "SELECT (SELECT coalesce(sum(m.psize), 0) FROM mail_messages m"
				     " JOIN mail_mailboxes b ON b.id = m.mailbox WHERE b.store = s.id)"
				     " FROM mail_stores s WHERE s.address = $1",
				     1, v, error_r);
	store_pg_conn_put(pool, &conn);
	free(address);
	if (res == NULL)
		return -1;
	int rc = PQntuples(res) == 1 ? 1 : 0;
	if (rc == 1)
		*bytes_r = (uint64_t)pg_value_int64(res, 0, 0);
	PQclear(res);
	return rc;
}

/* ---- delivery ---- */

/* Reads the file src of dirfd whole.  -1 with *error_r. */
static int read_source(int dirfd, const char *src, char **data_r, size_t *len_r, char **error_r)
{
	int fd = openat(dirfd, src, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		*error_r = xasprintf("open(%s) failed: %s", src, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t len = (size_t)st.st_size, done = 0;
	char *data = xmalloc(len + 1);
	while (done < len) {
		ssize_t n = read(fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r =
			    xasprintf("read(%s) failed: %s", src, n < 0 ? strerror(errno) : "short file");
			free(data);
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	close(fd);
	*data_r = data;
	*len_r = len;
	return 0;
}

struct deliver_call {
	char **addresses;
	size_t count;
	const char *folder;
	const char *data;
	size_t len;
	unsigned char hash[STORE_PG_HASH_LEN]; /* SHA-256 of data */
	uint64_t size;
	int64_t *mailboxes; /* by recipient */
	uint32_t *uids;
};

/* One statement (mail_deliver() of lib/pg_schema.c) between BEGIN and
   COMMIT: a round trip for the whole delivery, whatever the number of
   recipients. */
static int deliver_tx(struct pg_conn *conn, void *ctx, char **error_r)
{
	struct deliver_call *c = ctx;
	char *addresses = store_pg_text_array((const char *const *)c->addresses, c->count);
	char *folders = store_pg_text_array(maildir_default_folders, MAILDIR_DEFAULT_FOLDER_COUNT);
	char size[STORE_PG_INT_MAX], date[STORE_PG_INT_MAX];
	const char *v[] = {addresses,
			   folders,
			   c->folder != NULL ? c->folder : "INBOX",
			   (const char *)c->hash,
			   c->len > 0 ? c->data : "",
			   store_pg_int(size, (long long)c->size),
			   store_pg_int(date, (long long)time(NULL))};
	const int l[] = {0, 0, 0, STORE_PG_HASH_LEN, (int)c->len, 0, 0}, f[] = {0, 0, 0, 1, 1, 0, 0};
	PGresult *res =
	    store_pg_run_bin(conn, "delivering",
			     "SELECT r_idx, r_mailbox, r_uid FROM mail_deliver($1, $2, $3, $4, $5, $6, $7)",
			     7, v, l, f, 0, error_r);
	free(addresses);
	free(folders);
	if (res == NULL)
		return -1;
	memset(c->mailboxes, 0, c->count * sizeof(*c->mailboxes));
	for (int r = 0; r < PQntuples(res); r++) {
		long long i = pg_value_int64(res, r, 0) - 1;
		if (i >= 0 && (size_t)i < c->count) {
			c->mailboxes[i] = pg_value_int64(res, r, 1);
			c->uids[i] = (uint32_t)pg_value_int64(res, r, 2);
		}
	}
	PQclear(res);
	for (size_t i = 0; i < c->count; i++) {
		if (c->mailboxes[i] == 0) {
			*error_r = xasprintf("%spostgresql: delivering: the mailbox of %s was deleted",
					     STORE_ERROR_BUSY, c->addresses[i]);
			return -1;
		}
		store_pg_notify(conn, c->mailboxes[i], error_r);
	}
	return 0;
}

int store_pg_deliver(const char *const *locations, size_t count, const char *folder, int src_dirfd,
		     const char *src, uint64_t size, char **made_r, char **error_r)
{
	struct deliver_call c = {
	    .addresses = xcalloc(count + 1, sizeof(char *)),
	    .count = count,
	    .folder = folder,
	    .mailboxes = xcalloc(count + 1, sizeof(int64_t)),
	    .uids = xcalloc(count + 1, sizeof(uint32_t)),
	};
	char *conninfo = NULL, *data = NULL;
	int rc = 0;
	for (size_t i = 0; i < count && rc == 0; i++) {
		char *ci = NULL;
		rc = store_pg_location_parse(locations[i], &c.addresses[i], &ci, error_r);
		if (rc == 0 && conninfo != NULL && strcmp(ci, conninfo) != 0) {
			*error_r = xstrdup("postgresql delivery into stores of several databases");
			rc = -1;
		}
		if (conninfo == NULL)
			conninfo = ci;
		else
			free(ci);
	}
	if (rc == 0)
		rc = read_source(src_dirfd, src, &data, &c.len, error_r);
	struct store_pg_pool *pool = NULL;
	struct pg_conn *conn = NULL;
	if (rc == 0 && (conn = conf_conn(conninfo, &pool, error_r)) == NULL)
		rc = -1;
	if (rc == 0) {
		c.data = data;
		/* what the caller says it takes with CRLF line ends (the
		   file's are CRLF already: the same, unless told otherwise) */
		c.size = size >= c.len ? size : c.len;
		rc = store_pg_body_hash(data, c.len, c.hash, error_r);
	}
	if (rc == 0)
		rc = store_pg_conn_tx(conn, deliver_tx, &c, error_r);
	store_pg_conn_put(pool, &conn);
	for (size_t i = 0; i < count && rc == 0; i++)
		made_r[i] = xasprintf("%lld %u", (long long)c.mailboxes[i], c.uids[i]);
	for (size_t i = 0; i < count; i++)
		free(c.addresses[i]);
	free(c.addresses);
	free(c.mailboxes);
	free(c.uids);
	free(conninfo);
	free(data);
	return rc;
}

struct undeliver_call {
	int64_t mailbox;
	uint32_t uid;
};

static int undeliver_tx(struct pg_conn *conn, void *ctx, char **error_r)
{
	struct undeliver_call *c = ctx;
	return store_pg_expunge_tx(conn, c->mailbox, &c->uid, 1, error_r);
}

int store_pg_undeliver(const char *location, const char *folder, const char *made, char **error_r)
{
	struct undeliver_call c;
	long long mailbox;
	if (sscanf(made, "%lld %u", &mailbox, &c.uid) != 2) {
		*error_r = xasprintf("postgresql delivery note '%s' is not 'MAILBOX UID'", made);
		return -1;
	}
	c.mailbox = mailbox;
	char *address, *conninfo;
	if (store_pg_location_parse(location, &address, &conninfo, error_r) < 0)
		return -1;
	free(address);
	struct store_pg_pool *pool;
	struct pg_conn *conn = conf_conn(conninfo, &pool, error_r);
	free(conninfo);
	if (conn == NULL)
		return -1;
	/* a mailbox deleted meanwhile took the message along */
	int rc = store_pg_conn_tx(conn, undeliver_tx, &c, error_r);
	if (rc < 0 && strstr(*error_r, "was deleted") != NULL) {
		free(*error_r);
		*error_r = NULL;
		rc = 0;
	}
	store_pg_conn_put(pool, &conn);
	return rc < 0 ? -1 : 0;
}
