#ifndef STORE_STORE_PG_PRIVATE_H
#define STORE_STORE_PG_PRIVATE_H
/* Internals of the store backend "postgresql" (the tables of version 2 of
   lib/pg_schema.c), shared by its files store_pg*.c.

   A store's location is "ADDRESS CONNINFO": the user's address (the row
   of mail_stores) and the database it lives in.  Handles take their
   connection from a per-process pool by conninfo (store_pg.c), so opening
   a handle (every login, every IMAP job handle) costs no new connection.
   Each operation holds the handle's lock around its statements and reads
   results whole before calling callbacks, which may call the store again.

   Errors: a temporary failure of PostgreSQL (down, restarting, too many
   connections, a deadlock) comes back with the prefix STORE_ERROR_BUSY,
   which the engines answer as they answer a busy index (IMAP
   NO [UNAVAILABLE]; SMTP 451 for any failed delivery). */
#include "store/store_backend.h"
#include "lib/buf.h"
#include "lib/pg.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct store_pg_pool;

struct store_pg {
	struct store store; /* the interface's part: first */
	char *location;     /* "ADDRESS CONNINFO" */
	char *address;
	struct store_pg_pool *pool;
	struct pg_conn *conn;
	pthread_mutex_t lock;     /* one operation at a time on conn */
	int64_t id;               /* mail_stores.id */
	bool cache_tx;            /* inside store_cache_begin() ... commit() */
	struct pg_conn *maildrop; /* holds the maildrop lock, or NULL */
};

struct store_pg_mailbox {
	struct store_mailbox box; /* the interface's part: first */
	struct store_pg *store;
	int64_t id; /* mail_mailboxes.id */
};

/* store_pg.c */
struct store_pg *store_pg_cast(struct store *store);
struct store_pg_mailbox *store_pg_mailbox_cast(struct store_mailbox *box);
/* Splits a location into address and conninfo (caller frees both); -1
   with *error_r when it has no conninfo. */
int store_pg_location_parse(const char *location, char **address_r, char **conninfo_r, char **error_r);
/* A connection of the pool of conninfo (the schema brought up to date on
   the first one of the process); NULL with *error_r. */
struct pg_conn *store_pg_conn_get(const char *conninfo, struct store_pg_pool **pool_r, char **error_r);
/* Gives conn back to its pool (or closes it); *conn becomes NULL. */
void store_pg_conn_put(struct store_pg_pool *pool, struct pg_conn **conn);
/* The error text of the last failed call on conn, "postgresql: what:
   error", with the prefix STORE_ERROR_BUSY when it is temporary.  Frees
   error. */
char *store_pg_error(struct pg_conn *conn, const char *what, char *error);
/* Runs one statement on conn; NULL with *error_r (store_pg_error). */
PGresult *store_pg_run(struct pg_conn *conn, const char *what, const char *sql, int n,
		       const char *const *values, char **error_r);
/* The same with binary parameters and result format (pg_query_params). */
PGresult *store_pg_run_bin(struct pg_conn *conn, const char *what, const char *sql, int n,
			   const char *const *values, const int *lengths, const int *formats,
			   int result_format, char **error_r);
/* store_pg_run() of a statement whose result is not needed: 0 or -1. */
int store_pg_exec(struct pg_conn *conn, const char *what, const char *sql, int n, const char *const *values,
		  char **error_r);
/* Runs fn(store, ctx) in a transaction on the handle's connection, under
   its lock, committed when fn returns >= 0 (its result is returned),
   rolled back when it returns -1; tried again (3 times at most) when
   PostgreSQL broke it off for a deadlock or serialization failure.
   Inside store_cache_begin() the call joins that transaction. */
int store_pg_tx(struct store_pg *store, int (*fn)(struct store_pg *store, void *ctx, char **error_r),
		void *ctx, char **error_r);
/* The same on a bare connection (no handle). */
int store_pg_conn_tx(struct pg_conn *conn, int (*fn)(struct pg_conn *conn, void *ctx, char **error_r),
		     void *ctx, char **error_r);
/* Wakes the watchers of mailbox id: a NOTIFY sent right after the
   transaction commits (pg_notify_after_commit(), which says why not
   inside it).  Always 0. */
int store_pg_notify(struct pg_conn *conn, int64_t mailbox, char **error_r);
/* Number formatting for statement parameters. */
#define STORE_PG_INT_MAX 24
const char *store_pg_int(char out[STORE_PG_INT_MAX], long long value);
/* Appends s to b as an element of an array literal ("...", escaped). */
void store_pg_array_text(struct buf *b, const char *s);
/* "{"a","b"}": a text[] parameter of items[0..count) (caller frees). */
char *store_pg_text_array(const char *const *items, size_t count);
/* "{1,2,3}": a bigint[] parameter of uids[0..count) (caller frees). */
char *store_pg_uid_array(const uint32_t *uids, size_t count);
/* The store id of address, made when missing with its INBOX (and, with
   folders_too, the default folders, as the local backend's first
   delivery makes them). */
int store_pg_store_ensure(struct pg_conn *conn, const char *address, bool folders_too, int64_t *id_r,
			  char **error_r);

/* ---- the operations (store_backend.h), by file; store_pg.c holds the
   table ---- */

/* store_pg.c */
struct store *store_pg_open(const char *location, char **error_r);
void store_pg_close(struct store *store);
const char *store_pg_path(const struct store *store);

/* store_pg_folder.c */
int store_pg_quota_usage(struct store *store, uint64_t *bytes_r, uint64_t *messages_r, char **error_r);
int store_pg_folder_create(struct store *store, const char *name, bool *exists_r, char **error_r);
int store_pg_folder_delete(struct store *store, const char *name, char **error_r);
int store_pg_folder_rename(struct store *store, const char *from, const char *to, char **error_r);
int store_pg_folder_list(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx,
			 char **error_r);
int store_pg_subscribe(struct store *store, const char *name, bool subscribe, char **error_r);
int store_pg_subscription_list(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx,
			       char **error_r);

/* store_pg_mail.c */
int store_pg_mailbox_open(struct store *store, const char *name, struct store_mailbox **mbox_r,
			  char **error_r);
int store_pg_mailbox_open_indexed(struct store *store, const char *name, struct store_mailbox **mbox_r,
				  char **error_r);
void store_pg_mailbox_close(struct store_mailbox *box);
int store_pg_mailbox_sync(struct store_mailbox *box, bool force, char **error_r);
int store_pg_mailbox_status(struct store_mailbox *box, struct store_status *status_r, char **error_r);
int store_pg_mailbox_counters(struct store_mailbox *box, uint32_t *uidnext_r, uint64_t *modseq_r,
			      char **error_r);
int store_pg_mailbox_list(struct store_mailbox *box, struct store_msg_list *list_r, char **error_r);
int store_pg_mailbox_changed_since(struct store_mailbox *box, uint64_t modseq, struct store_msg_list *list_r,
				   char **error_r);
int store_pg_mailbox_expunged_since(struct store_mailbox *box, uint64_t modseq, uint32_t **uids_r,
				    size_t *count_r, char **error_r);
int store_pg_mailbox_take_recent(struct store_mailbox *box, uint32_t *first_recent_r, char **error_r);
int store_pg_msg_open(struct store_mailbox *box, const struct store_msg *msg, int *fd_r, char **error_r);
int store_pg_msg_open_uid(struct store_mailbox *box, uint32_t uid, int *fd_r, char **error_r);
int store_pg_msg_emailids(struct store_mailbox *box, uint32_t lo, uint32_t hi,
			  int (*cb)(void *ctx, uint32_t uid, const char *emailid), void *ctx, char **error_r);

/* store_pg_write.c */
int store_pg_msg_set_flags(struct store_mailbox *box, const uint32_t *uids, size_t count,
			   enum store_flag_op op, uint32_t flags, const char *keywords,
			   uint64_t unchanged_since, uint32_t **failed_r, size_t *failed_count_r,
			   char **error_r);
int store_pg_mailbox_flags_pending(struct store_mailbox *box, char **error_r);
int store_pg_mailbox_flush_flags(struct store_mailbox *box, char **error_r);
int store_pg_msg_expunge(struct store_mailbox *box, const uint32_t *uids, size_t count, char **error_r);
/* The expunge of uids[0..count) of mailbox inside a transaction on conn:
   the number expunged, or -1. */
int store_pg_expunge_tx(struct pg_conn *conn, int64_t mailbox, const uint32_t *uids, size_t count,
			char **error_r);
int store_pg_msg_append_many(struct store_mailbox *box, const struct store_append *msgs, size_t count,
			     uint32_t *first_uid_r, char **error_r);
int store_pg_msg_copy(struct store_mailbox *src, const uint32_t *uids, size_t count,
		      struct store_mailbox *dest, bool move, uint32_t **dest_uids_r, char **error_r);
/* One message row (mail_messages) as store_pg_msg_insert() writes it. */
struct store_pg_row {
	uint32_t uid;
	uint32_t flags;
	const char *keywords; /* NULL: none */
	int64_t internaldate; /* 0: now */
	uint64_t modseq;
	const char *emailid;   /* NULL: a new one */
	const char *stable_id; /* NULL: UIDVALIDITY.UID */
};
/* Stores data[0..len) (store_pg_body_put()) and lists it in mailbox as
   row, inside a transaction on conn that locked the mailbox.  0 or -1. */
int store_pg_msg_insert(struct pg_conn *conn, int64_t mailbox, const struct store_pg_row *row,
			const void *data, size_t len, char **error_r);
/* Stores the octets data[0..len) once (mail_bodies, keyed by their
   SHA-256, locked for this transaction) and gives the key in hash_r. */
#define STORE_PG_HASH_LEN 32
int store_pg_body_put(struct pg_conn *conn, const void *data, size_t len,
		      unsigned char hash_r[STORE_PG_HASH_LEN], char **error_r);
/* The key of data[0..len) in mail_bodies (SHA-256), computed here rather
   than by the database: -1 with *error_r. */
int store_pg_body_hash(const void *data, size_t len, unsigned char hash_r[STORE_PG_HASH_LEN], char **error_r);

/* store_pg_import.c */
int store_pg_mailbox_import(struct store *store, const struct store_import *imp, char **error_r);

/* store_pg_cache.c */
int store_pg_cache_prepare(struct store *store, char **error_r);
int store_pg_cache_get(struct store_mailbox *box, uint32_t uid, enum store_cache_field field, char **text_r,
		       char **error_r);
int store_pg_cache_set(struct store_mailbox *box, uint32_t uid, enum store_cache_field field,
		       const char *text, char **error_r);
int store_pg_cache_get_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
			     enum store_cache_field field,
			     int (*cb)(void *ctx, uint32_t uid, const char *text, size_t len), void *ctx,
			     char **error_r);
int store_pg_cache_set_header(struct store_mailbox *box, uint32_t uid, const void *data, size_t len,
			      char **error_r);
int store_pg_cache_get_header_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
				    int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
				    void *ctx, char **error_r);
int store_pg_cache_set_sortkey(struct store_mailbox *box, uint32_t uid, const void *data, size_t len,
			       char **error_r);
int store_pg_cache_get_sortkey_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
				     int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
				     void *ctx, char **error_r);
int store_pg_cache_begin(struct store_mailbox *box, char **error_r);
int store_pg_cache_commit(struct store_mailbox *box, char **error_r);

/* store_pg_watch.c */
int store_pg_watch_open(struct store_mailbox *box, char **error_r);
int store_pg_maildrop_lock(struct store *store, char **error_r);
void store_pg_maildrop_unlock(struct store *store);

/* store_pg_user.c */
char *store_pg_user_location(const struct store_config *conf, const char *address);
int store_pg_user_create(const struct store_config *conf, const char *address, uid_t uid, gid_t gid,
			 char **error_r);
int store_pg_user_purge(const struct store_config *conf, const char *address, char **error_r);
int store_pg_usage(const char *location, uint64_t *bytes_r, char **error_r);
int store_pg_deliver(const char *const *locations, size_t count, const char *folder, int src_dirfd,
		     const char *src, uint64_t size, char **made_r, char **error_r);
int store_pg_undeliver(const char *location, const char *folder, const char *made, char **error_r);
#endif
