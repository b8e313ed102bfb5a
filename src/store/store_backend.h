#ifndef STORE_STORE_BACKEND_H
#define STORE_STORE_BACKEND_H
/* What a store backend implements: one table of operations, the shape of
   Dovecot's mail_storage and mailbox vfuncs.  Engines never include this
   header; they call store.h, whose functions (store.c) are thin
   dispatchers through the table of the handle.  Today's backend is
   "local" (Maildir++ plus a per-user SQLite index, store_local_*.c); a
   backend for several nodes (PostgreSQL index, shared message storage)
   adds a table beside it and an entry in store.c's registry.

   A backend's handles embed the base structs below as their first member
   and downcast them (see store_local_private.h).  Each operation has the
   contract of the store.h function of the same name; the dispatcher adds
   nothing but the call, except where noted. */
#include "store/store.h"
#include "store/store_imap_extra.h"

struct store_backend;

/* The part of a store handle the dispatchers read. */
struct store {
	const struct store_backend *be;
};

/* The part of a mailbox handle the dispatchers read.  The backend's
   mailbox_open fills it; its mailbox_close frees name and objectid. */
struct store_mailbox {
	struct store *store;
	char *name; /* canonical: "INBOX" or the folder name */
	uint32_t uidvalidity;
	char *objectid; /* MAILBOXID (RFC 8474) */
};

struct store_backend {
	const char *name;
	/* Operations are network round trips (store_user_lookups_block()). */
	bool lookups_block;

	/* ---- the user's store ---- */
	/* location: what the backend opens (local: the Maildir root).  The
	   backend sets the returned handle's be. */
	struct store *(*open)(const char *location, char **error_r);
	void (*close)(struct store *store);
	const char *(*path)(const struct store *store);
	int (*quota_usage)(struct store *store, uint64_t *bytes_r, uint64_t *messages_r, char **error_r);

	int (*maildrop_lock)(struct store *store, char **error_r);
	void (*maildrop_unlock)(struct store *store);

	/* ---- users' stores, by address (conf's backend is this one) ---- */
	/* The location open() takes for the store of address (local:
	   DATA_DIR/mail/DOMAIN/LOCAL).  Caller frees. */
	char *(*user_location)(const struct store_config *conf, const char *address);
	int (*user_create)(const struct store_config *conf, const char *address, uid_t uid, gid_t gid,
			   char **error_r);
	int (*user_purge)(const struct store_config *conf, const char *address, char **error_r);
	/* store_user_usage() of the store at location. */
	int (*usage)(const char *location, uint64_t *bytes_r, char **error_r);

	/* ---- delivery (store_delivery_commit) ---- */
	/* deliver() copies the octets into storage of its own and has them on
	   stable storage there before it returns, so that the source file
	   need not be synced first (postgresql; the local backend links the
	   file into the Maildirs: false). */
	bool deliver_copies;
	/* Delivers the file src (fsynced unless deliver_copies) (relative to src_dirfd) of size octets
	   into the folder (NULL: the INBOX; else one of
	   maildir_default_folders, made when missing) of each store of
	   locations[0..count) (distinct), durably before it returns.
	   made_r[i] (zeroed by the caller) gets the backend's note of the copy
	   in locations[i], for undeliver(); on failure the copies already made
	   keep their notes. */
	int (*deliver)(const char *const *locations, size_t count, const char *folder, int src_dirfd,
		       const char *src, uint64_t size, char **made_r, char **error_r);
	/* Takes back the copy noted made in folder of the store at location. */
	int (*undeliver)(const char *location, const char *folder, const char *made, char **error_r);

	/* ---- folders and subscriptions ---- */
	int (*folder_create)(struct store *store, const char *name, bool *exists_r, char **error_r);
	int (*folder_delete)(struct store *store, const char *name, char **error_r);
	int (*folder_rename)(struct store *store, const char *from, const char *to, char **error_r);
	int (*folder_list)(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx,
			   char **error_r);
	int (*subscribe)(struct store *store, const char *name, bool subscribe, char **error_r);
	int (*subscription_list)(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx,
				 char **error_r);

	/* ---- mailboxes ---- */
	int (*mailbox_open)(struct store *store, const char *name, struct store_mailbox **mbox_r,
			    char **error_r);
	int (*mailbox_open_indexed)(struct store *store, const char *name, struct store_mailbox **mbox_r,
				    char **error_r);
	void (*mailbox_close)(struct store_mailbox *mbox);
	int (*mailbox_sync)(struct store_mailbox *mbox, bool force, char **error_r);
	int (*mailbox_status)(struct store_mailbox *mbox, struct store_status *status_r, char **error_r);
	int (*mailbox_counters)(struct store_mailbox *mbox, uint32_t *uidnext_r, uint64_t *modseq_r,
				char **error_r);
	int (*mailbox_list)(struct store_mailbox *mbox, struct store_msg_list *list_r, char **error_r);
	int (*mailbox_changed_since)(struct store_mailbox *mbox, uint64_t modseq,
				     struct store_msg_list *list_r, char **error_r);
	int (*mailbox_expunged_since)(struct store_mailbox *mbox, uint64_t modseq, uint32_t **uids_r,
				      size_t *count_r, char **error_r);
	int (*mailbox_take_recent)(struct store_mailbox *mbox, uint32_t *first_recent_r, char **error_r);
	/* A pollable fd that becomes readable on changes (store_watch_open). */
	int (*watch_open)(struct store_mailbox *mbox, char **error_r);

	/* ---- messages ---- */
	int (*msg_open)(struct store_mailbox *mbox, const struct store_msg *msg, int *fd_r, char **error_r);
	int (*msg_open_uid)(struct store_mailbox *mbox, uint32_t uid, int *fd_r, char **error_r);
	int (*msg_set_flags)(struct store_mailbox *mbox, const uint32_t *uids, size_t count,
			     enum store_flag_op op, uint32_t flags, const char *keywords,
			     uint64_t unchanged_since, uint32_t **failed_r, size_t *failed_count_r,
			     char **error_r);
	int (*mailbox_flags_pending)(struct store_mailbox *mbox, char **error_r);
	int (*mailbox_flush_flags)(struct store_mailbox *mbox, char **error_r);
	int (*msg_expunge)(struct store_mailbox *mbox, const uint32_t *uids, size_t count, char **error_r);
	/* store_msg_append() is msg_append_many() of one message. */
	int (*msg_append_many)(struct store_mailbox *mbox, const struct store_append *msgs, size_t count,
			       uint32_t *first_uid_r, char **error_r);
	/* NULL: the backend cannot import (store_mailbox_import() says so).
	   imp was checked by the dispatcher (name, counters, UID order). */
	int (*mailbox_import)(struct store *store, const struct store_import *imp, char **error_r);
	int (*msg_emailids)(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
			    int (*cb)(void *ctx, uint32_t uid, const char *emailid), void *ctx,
			    char **error_r);
	/* src and dest belong to one store handle (the dispatcher checks);
	   the copies keep their sources' EMAILIDs. */
	int (*msg_copy)(struct store_mailbox *src, const uint32_t *uids, size_t count,
			struct store_mailbox *dest, bool move, uint32_t **dest_uids_r, char **error_r);

	/* ---- the IMAP server's cache ---- */
	int (*cache_prepare)(struct store *store, char **error_r);
	int (*cache_get)(struct store_mailbox *mbox, uint32_t uid, enum store_cache_field field,
			 char **text_r, char **error_r);
	int (*cache_set)(struct store_mailbox *mbox, uint32_t uid, enum store_cache_field field,
			 const char *text, char **error_r);
	int (*cache_get_range)(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
			       enum store_cache_field field,
			       int (*cb)(void *ctx, uint32_t uid, const char *text, size_t len), void *ctx,
			       char **error_r);
	int (*cache_set_header)(struct store_mailbox *mbox, uint32_t uid, const void *data, size_t len,
				char **error_r);
	int (*cache_get_header_range)(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
				      int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
				      void *ctx, char **error_r);
	int (*cache_set_sortkey)(struct store_mailbox *mbox, uint32_t uid, const void *data, size_t len,
				 char **error_r);
	int (*cache_get_sortkey_range)(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
				       int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len),
				       void *ctx, char **error_r);
	int (*cache_begin)(struct store_mailbox *mbox, char **error_r);
	int (*cache_commit)(struct store_mailbox *mbox, char **error_r);
};

/* The backends, by name (store.c keeps the registry). */
extern const struct store_backend store_backend_local;
extern const struct store_backend store_backend_pg; /* "postgresql" (store_pg*.c) */

/* The backend called name, or NULL. */
const struct store_backend *store_backend_find(const char *name);

/* ---- what the backends share (store.c) ---- */
struct buf;
/* The keywords of a message that had old after a flag change op with
   keywords (space-separated names that compare without case; NULL: the
   call names none, and ADD and REMOVE keep old).  Returns old, or the new
   set written into out. */
const char *store_keywords_apply(struct buf *out, enum store_flag_op op, const char *old,
				 const char *keywords);
/* RENAME of INBOX through the store's own operations (RFC 3501 6.3.5):
   the folder to is made and INBOX's messages move there. */
int store_folder_rename_inbox(struct store *store, const char *to, char **error_r);
/* The system flags of a message that had old after op with flags. */
uint32_t store_flags_apply(uint32_t old, enum store_flag_op op, uint32_t flags);
#endif
