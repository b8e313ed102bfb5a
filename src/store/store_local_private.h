#ifndef STORE_STORE_LOCAL_PRIVATE_H
#define STORE_STORE_LOCAL_PRIVATE_H
/* Internals of the store backend "local" (Maildir++ plus a per-user SQLite
   index, MAILDIR/index.db), shared by its files store_local_*.c. */
#include "store/store_backend.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define STORE_STMT_CACHE 128

struct store_stmt_slot {
	const char *sql; /* the literal's address is the cache key */
	sqlite3_stmt *stmt;
};

struct store_local {
	struct store store; /* the interface's part: first */
	char *path;         /* the Maildir root */
	sqlite3 *db;
	struct store_stmt_slot stmts[STORE_STMT_CACHE];
	int maildrop_fd; /* MAILDIR/pop3.lock while locked, else -1 */
};

struct store_local_mailbox {
	struct store_mailbox box; /* the interface's part (name, uidvalidity): first */
	struct store_local *store;
	char *dir; /* Maildir directory of the mailbox */
	int64_t id;
	int cur_fd; /* MAILDIR/cur, for openat() without a path walk */
};

/* Downcasts of the interface's handles, which must be this backend's. */
struct store_local *store_local_cast(struct store *store);
struct store_local_mailbox *store_local_mailbox_cast(struct store_mailbox *box);

/* A parsed Maildir file name: BASE[:2,INFO]. */
struct store_local_fname {
	size_t base_len; /* bytes of the base name */
	uint32_t flags;  /* from the info part */
	bool has_info;   /* ":2," present */
	bool has_size;   /* ",S=" in the base */
	uint64_t size;   /* S= (physical octets) */
	bool has_vsize;
	uint64_t vsize; /* W= (octets with CRLF line ends) */
};

/* store_local_index.c */
/* A cached prepared statement for a string literal, reset and ready to bind. */
sqlite3_stmt *store_local_stmt(struct store_local *store, const char *sql);
/* Adds a column to an index made before it (add_sql) unless exists_sql
   finds it; 0 or -1 with *error_r.  Another process may do the same. */
int store_local_add_column(struct store_local *store, const char *exists_sql, const char *add_sql,
			   char **error_r);
/* Runs SQL without results; 0 or -1 with *error_r. */
int store_local_exec(struct store_local *store, const char *sql, char **error_r);
int store_local_begin(struct store_local *store, char **error_r); /* BEGIN IMMEDIATE */
int store_local_commit(struct store_local *store, char **error_r);
void store_local_rollback(struct store_local *store);
/* Sets *error_r to "what: sqlite message" and returns -1. */
int store_local_db_error(struct store_local *store, const char *what, char **error_r);
/* The next UIDVALIDITY for a new mailbox row (above any used before). */
uint32_t store_local_next_uidvalidity(struct store_local *store);
/* Directory of a mailbox name ("INBOX" or folder), caller frees; NULL when
   the name is invalid. */
char *store_local_mailbox_dir(struct store_local *store, const char *name);

/* store_local_maildir.c */
void store_local_fname_parse(const char *name, struct store_local_fname *fn_r);
/* Letters for flags in ASCII order, plus extra letters of old_info that we
   do not manage (Dovecot keyword letters).  Returns the new info (":2,..."),
   caller frees. */
char *store_local_info_build(uint32_t flags, const char *old_info);
/* The same into out: ":2," and at most 94 distinct printable letters. */
#define STORE_LOCAL_INFO_MAX (3 + 94 + 1)
void store_local_info_format(char out[STORE_LOCAL_INFO_MAX], uint32_t flags, const char *old_info);
/* Reads a file to count what it takes to send it with CRLF line ends. */
int store_local_file_vsize(int fd, uint64_t *psize_r, uint64_t *vsize_r);
/* A new unique base name "SECS.M<usec>P<pid>Q<n>.HOST,S=<psize>[,W=<vsize>]". */
char *store_local_unique_base(uint64_t psize, uint64_t vsize);

/* store_local_mail.c */
/* Reads the mailbox row: uidnext, highestmodseq. */
int store_local_counters(struct store_local_mailbox *mbox, uint32_t *uidnext_r, uint64_t *modseq_r,
			 char **error_r);
int store_local_set_counters(struct store_local_mailbox *mbox, uint32_t uidnext, uint64_t modseq,
			     char **error_r);
/* ---- the operations (store_backend.h), by file; store_local.c holds the
   table ---- */

/* store_local_index.c */
struct store *store_local_open(const char *maildir, char **error_r);
void store_local_close(struct store *store);
const char *store_local_path(const struct store *store);

/* store_local_folder.c */
int store_local_quota_usage(struct store *store, uint64_t *bytes_r, uint64_t *messages_r, char **error_r);
int store_local_folder_create(struct store *store, const char *name, bool *exists_r, char **error_r);
int store_local_folder_delete(struct store *store, const char *name, char **error_r);
int store_local_folder_rename(struct store *store, const char *from, const char *to, char **error_r);
int store_local_folder_list(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx,
			    char **error_r);
int store_local_subscribe(struct store *store, const char *name, bool subscribe, char **error_r);
int store_local_subscription_list(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx,
				  char **error_r);

/* store_local_sync.c */
int store_local_mailbox_open(struct store *store, const char *name, struct store_mailbox **mbox_r,
			     char **error_r);
int store_local_mailbox_open_indexed(struct store *store, const char *name, struct store_mailbox **mbox_r,
				     char **error_r);
void store_local_mailbox_close(struct store_mailbox *box);
int store_local_mailbox_sync(struct store_mailbox *box, bool force, char **error_r);

/* store_local_mail.c */
int store_local_mailbox_status(struct store_mailbox *box, struct store_status *status_r, char **error_r);
int store_local_mailbox_counters(struct store_mailbox *box, uint32_t *uidnext_r, uint64_t *modseq_r,
				 char **error_r);
int store_local_mailbox_list(struct store_mailbox *box, struct store_msg_list *list_r, char **error_r);
int store_local_mailbox_changed_since(struct store_mailbox *box, uint64_t modseq,
				      struct store_msg_list *list_r, char **error_r);
int store_local_mailbox_expunged_since(struct store_mailbox *box, uint64_t modseq, uint32_t **uids_r,
				       size_t *count_r, char **error_r);
int store_local_mailbox_take_recent(struct store_mailbox *box, uint32_t *first_recent_r, char **error_r);
int store_local_msg_open(struct store_mailbox *box, const struct store_msg *msg, int *fd_r, char **error_r);
int store_local_msg_open_uid(struct store_mailbox *box, uint32_t uid, int *fd_r, char **error_r);
int store_local_msg_expunge(struct store_mailbox *box, const uint32_t *uids, size_t count, char **error_r);

/* store_local_flags.c */
int store_local_msg_set_flags(struct store_mailbox *box, const uint32_t *uids, size_t count,
			      enum store_flag_op op, uint32_t flags, const char *keywords,
			      uint64_t unchanged_since, uint32_t **failed_r, size_t *failed_count_r,
			      char **error_r);
int store_local_mailbox_flags_pending(struct store_mailbox *box, char **error_r);
int store_local_mailbox_flush_flags(struct store_mailbox *box, char **error_r);

/* store_local_copy.c */
int store_local_msg_append_many(struct store_mailbox *box, const struct store_append *msgs, size_t count,
				uint32_t *first_uid_r, char **error_r);
int store_local_msg_copy(struct store_mailbox *src, const uint32_t *uids, size_t count,
			 struct store_mailbox *dest, bool move, uint32_t **dest_uids_r, char **error_r);

/* store_local_cache.c */
int store_local_cache_prepare(struct store *store, char **error_r);
int store_local_cache_get(struct store_mailbox *box, uint32_t uid, enum store_cache_field field,
			  char **text_r, char **error_r);
int store_local_cache_set(struct store_mailbox *box, uint32_t uid, enum store_cache_field field,
			  const char *text, char **error_r);
int store_local_cache_get_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
				enum store_cache_field field,
				int (*cb)(void *ctx, uint32_t uid, const char *text, size_t len), void *ctx,
				char **error_r);
int store_local_cache_set_header(struct store_mailbox *box, uint32_t uid, const void *data, size_t len,
				 char **error_r);
int store_local_cache_get_header_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
				       int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
				       void *ctx, char **error_r);
int store_local_cache_set_sortkey(struct store_mailbox *box, uint32_t uid, const void *data, size_t len,
				  char **error_r);
int store_local_cache_get_sortkey_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
					int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
					void *ctx, char **error_r);
int store_local_cache_begin(struct store_mailbox *box, char **error_r);
int store_local_cache_commit(struct store_mailbox *box, char **error_r);

/* store_local_objectid.c */
/* Adds the object id columns to an index made before them. */
int store_local_objectid_upgrade(struct store_local *store, char **error_r);
/* The MAILBOXID of the mailbox row id, given now when it has none; caller
   frees *objectid_r. */
int store_local_mailbox_objectid(struct store_local *store, int64_t id, char **objectid_r, char **error_r);
/* The same reading only: *objectid_r NULL when the row has none yet. */
int store_local_mailbox_objectid_read(struct store_local *store, int64_t id, char **objectid_r,
				      char **error_r);
/* The EMAILID of a message row: its emailid column, else derived from its
   base name. */
void store_local_emailid(const char *base, const char *emailid, char out[STORE_OBJECTID_MAX + 1]);
int store_local_msg_emailids(struct store_mailbox *box, uint32_t lo, uint32_t hi,
			     int (*cb)(void *ctx, uint32_t uid, const char *emailid), void *ctx,
			     char **error_r);

/* store_local_watch.c */
int store_local_watch_open(struct store_mailbox *box, char **error_r);
int store_local_maildrop_lock(struct store *store, char **error_r);
void store_local_maildrop_unlock(struct store *store);

/* store_local_user.c */
char *store_local_user_location(const struct store_config *conf, const char *address);
int store_local_user_create(const struct store_config *conf, const char *address, uid_t uid, gid_t gid,
			    char **error_r);
int store_local_user_purge(const struct store_config *conf, const char *address, char **error_r);
int store_local_usage(const char *maildir, uint64_t *bytes_r, char **error_r);

/* store_local_deliver.c */
int store_local_deliver(const char *const *locations, size_t count, const char *folder, int src_dirfd,
			const char *src, uint64_t size, char **made_r, char **error_r);
int store_local_undeliver(const char *location, const char *folder, const char *made, char **error_r);
#endif
