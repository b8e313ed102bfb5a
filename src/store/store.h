#ifndef STORE_STORE_H
#define STORE_STORE_H
/* The mail store of one user: Maildir++ folders plus a per-user index
   (MAILDIR/index.db, SQLite in WAL mode) that gives every message a stable
   UID, its flags, keywords, modseq (RFC 7162) and cached IMAP text.
   Engines, delivery and the CLI call only this interface and name a
   user's store by address (store_open_user()): no SQL and no file names
   leave src/store.  Every function here dispatches through the table of
   operations of the handle's backend (store_backend.h); the Maildir +
   SQLite implementation described below is the backend "local"
   (store_local_*.c), and a shared-storage backend can be added beside it.

   Mailboxes are named as IMAP names them: "INBOX" (any case) is the Maildir
   root; other names use '.' as the hierarchy separator and map to Maildir++
   directories ("Sent" -> MAILDIR/.Sent, "Archive.2024" ->
   MAILDIR/.Archive.2024).

   Message files keep their base name (everything before ":2,") for life;
   flag changes rename only the info part ":2,DFPRST", so mutt and Dovecot
   pointed at the same Maildir see the same flags.  The index row is keyed
   by that base name, which is why a rename never changes a UID.

   Concurrency: any number of processes (workers, other programs, SMTP
   delivery writing into new/) may work on one Maildir at once.  Every
   change to the index runs in one SQLite write transaction, so two syncs
   never give one file two UIDs.  A handle is not thread-safe, but it may be
   passed from one thread to another (open it on a job thread, use it in the
   event loop).

   All calls block on the disk; from the event loop, batch them or run them
   on a jobs.h thread.  Errors come back in *error_r (caller frees).

   A write waits for the index's write lock up to STORE_BUSY_TIMEOUT_MS
   (readers never wait for it: the index is in WAL mode).  When another
   writer holds it longer, the operation fails with an error that begins
   with STORE_ERROR_BUSY: a temporary failure, worth trying again. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct store_mailbox;

#define STORE_SEPARATOR '.'
#define STORE_INDEX_FILE "index.db"
#define STORE_BUSY_TIMEOUT_MS 10000
#define STORE_ERROR_BUSY "index busy: "

/* System flags (RFC 3501 section 2.3.2) and the Maildir info letter each
   maps to.  PASSED (Maildir "P", forwarded) has no IMAP system flag; it is
   kept so that it survives our renames. */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,     /* S */
	STORE_FLAG_ANSWERED = 1 << 1, /* R */
	STORE_FLAG_FLAGGED = 1 << 2,  /* F */
	STORE_FLAG_DELETED = 1 << 3,  /* T */
	STORE_FLAG_DRAFT = 1 << 4,    /* D */
	STORE_FLAG_PASSED = 1 << 5,   /* P */
};
#define STORE_FLAGS_ALL 0x3f

/* One message as listed.  Strings live in the list's memory. */
struct store_msg {
	uint32_t uid;
	uint32_t flags; /* enum store_flag bits */
	uint64_t size;  /* octets with CRLF line ends: what RETR and
			   RFC822.SIZE send */
	uint64_t modseq;
	int64_t internaldate; /* unix time: file mtime when first indexed */
	const char *keywords; /* space-separated IMAP keywords, "" for none */
	bool bare_lf;         /* the file has bare LF line ends: readers
				 must turn LF into CRLF to send size octets */
	const char *locator;  /* backend's handle for store_msg_open(); do
				 not interpret */
};

struct store_msg_list {
	struct store_msg *msgs; /* ascending UID */
	size_t count;
	struct pool *pool;
};

struct store_status {
	uint32_t messages;
	uint32_t unseen;
	uint32_t recent; /* UID >= the first recent UID */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint64_t size;    /* sum of message sizes */
	uint32_t deleted; /* messages with \Deleted */
};

/* ---- the user's store ---- */

/* Where users' stores live: the backend and what it needs to find the
   store of a user.  Engines name a store by user (address) and this; only
   src/store knows the layout behind it. */
#define STORE_BACKEND_DEFAULT "local"
struct store_config {
	const char *backend;  /* NULL: STORE_BACKEND_DEFAULT */
	const char *data_dir; /* local: a user's Maildir is DATA_DIR/mail/DOMAIN/LOCAL */
	const char *conninfo; /* postgresql: the database ([postgresql] conninfo) */
};
struct config;
/* The store configuration of the server's configuration; conf_r points
   into cfg. */
void store_config_init(struct store_config *conf_r, const struct config *cfg);

/* Opens the store of the user address ("local@domain", as userdb.h
   normalises it) in conf, as store_open_backend() opens a location: made
   when missing.  NULL with *error_r (also for an unknown backend). */
struct store *store_open_user(const struct store_config *conf, const char *address, char **error_r);
/* Opens a second handle on the store that store is a handle of, for
   another thread (IMAP jobs).  Reads only what never changes after the
   open, so another thread may be using store meanwhile. */
struct store *store_open_another(const struct store *store, char **error_r);
/* Where the store of address is, for messages to the administrator (local:
   the Maildir's path).  Caller frees; NULL for an unknown backend. */
char *store_user_location(const struct store_config *conf, const char *address);

/* Opens the store at maildir with the default backend (creating cur/ new/
   tmp/ and the index when missing).  An index that is missing or
   unreadable is recreated, and every mailbox then gets a new UIDVALIDITY
   (RFC 3501 section 2.3.1.1), higher than any used before in this
   Maildir.  Returns NULL with *error_r. */
struct store *store_open(const char *maildir, char **error_r);
/* The same with the backend called backend ("local"); location is what
   that backend opens (local: the Maildir root).  An unknown backend is an
   error. */
struct store *store_open_backend(const char *backend, const char *location, char **error_r);
void store_close(struct store **store);
/* The backend's location of the store (local: the Maildir root). */
const char *store_path(const struct store *store);
/* The name of the store's backend. */
const char *store_backend_name(const struct store *store);

/* ---- users' stores, without opening them (the CLI, SMTP's quota check) ---- */

/* Makes the store of address, with the standard folders (local: the
   Maildir++ layout with .Sent .Drafts .Trash .Junk .Archive; see
   maildir_create.h).  Run as root for the server's user: what is made
   belongs to uid:gid ((uid_t)-1: ownership kept) and no link below
   DATA_DIR is followed (lib/fsutil.h).  Idempotent.  0 or -1. */
int store_user_create(const struct store_config *conf, const char *address, uid_t uid, gid_t gid,
		      char **error_r);
/* Removes the store of address and all its mail, following no link.  0
   (also when there was none), or -1. */
int store_user_purge(const struct store_config *conf, const char *address, char **error_r);
/* What the mail of address takes, in bytes, all folders included, read
   without opening the index (local: the S= sizes of the file names, or
   stat() for files without one; messages just delivered count at once).
   1 with *bytes_r, 0 when the user has no store yet (*bytes_r 0), -1. */
int store_user_usage(const struct store_config *conf, const char *address, uint64_t *bytes_r, char **error_r);
/* True when the operations on users' stores of conf (store_user_usage(),
   store_open_user(), ...) may wait on the network: engines then call them
   on job threads (lib/jobs.h), never on an event loop.  False for the local
   backend and for an unknown one. */
bool store_user_lookups_block(const struct store_config *conf);

/* ---- delivery ----
   One complete message, already on stable storage, into the INBOX of
   several stores at once: the local backend hard-links the file into each
   Maildir's new/ (one data write serves every recipient; a copy where the
   file system cannot link; the Maildir is made on first delivery) and then
   fsyncs each new/ once.  The message is listed in INBOX at the next sync
   with the file's size.  Blocking: call on a job thread.  Messages enter
   through delivery/delivery.h, which calls this. */
struct store_delivery;

struct store_delivery *store_delivery_new(void);
/* The INBOX of the user address in conf.  A store added twice gets one
   copy. */
void store_delivery_add_user(struct store_delivery *sd, const struct store_config *conf, const char *address);
/* A Maildir that is no user's store (`fetch`): the local backend's store at
   maildir. */
void store_delivery_add_maildir(struct store_delivery *sd, const char *maildir);
/* The folder quarantined mail goes to (RFC 6154 \Junk). */
#define STORE_FOLDER_JUNK "Junk"
/* Every store gets the message in folder instead of the INBOX: one of
   maildir_default_folders ("Junk" for quarantined mail), made when
   missing.  NULL: the INBOX again.  Before the commit. */
void store_delivery_set_folder(struct store_delivery *sd, const char *folder);
/* The stores added (after duplicates are dropped). */
size_t store_delivery_count(const struct store_delivery *sd);
/* Whether the commit needs the file on stable storage before it starts:
   false when every store added keeps a copy of its own (the postgresql
   backend), true when one links the file (a Maildir) or none was added. */
bool store_delivery_needs_synced_source(const struct store_delivery *sd);
/* Delivers the file src (relative to src_dirfd, which may be AT_FDCWD) of
   size octets, fdatasynced by the caller when
   store_delivery_needs_synced_source() says so.  0 once the message is on stable
   storage in every store.  -1 with *error_r: the copies made before the
   failure stay until store_delivery_revert().  Once per delivery. */
int store_delivery_commit(struct store_delivery *sd, int src_dirfd, const char *src, uint64_t size,
			  char **error_r);
/* Takes back every copy the commit made (the message was not accepted
   after all).  Tries them all; 0, or -1 with the first failure. */
int store_delivery_revert(struct store_delivery *sd, char **error_r);
/* Frees sd; what a commit made stays unless reverted. */
void store_delivery_free(struct store_delivery **sd);

/* ---- mailboxes ---- */

/* Opens a mailbox (creating its index row on first sight) and syncs it.
   Returns 1 with *mbox_r, 0 when no such folder exists, -1 on error. */
int store_mailbox_open(struct store *store, const char *name, struct store_mailbox **mbox_r, char **error_r);
void store_mailbox_close(struct store_mailbox **mbox);
const char *store_mailbox_name(const struct store_mailbox *mbox);

/* Brings the index in line with the Maildir: files that appeared (in new/
   or cur/) get UIDs in delivery order, new/ files move to cur/ under the same
   base name, rows whose file is gone are dropped and recorded as expunged,
   info flags changed by other programs are taken over (with a new modseq:
   the flags whose letters they changed; the others keep the index's word,
   which may be ahead of the name, see store_msg_set_flags()).  Skips
   reading the directories when their mtimes show no change since the last
   sync (unless force).  Returns 0 or -1. */
int store_mailbox_sync(struct store_mailbox *mbox, bool force, char **error_r);

int store_mailbox_status(struct store_mailbox *mbox, struct store_status *status_r, char **error_r);

/* Every message, ascending UID.  Free with store_msg_list_free(). */
int store_mailbox_list(struct store_mailbox *mbox, struct store_msg_list *list_r, char **error_r);
/* Messages whose modseq is greater than modseq (CONDSTORE CHANGEDSINCE). */
int store_mailbox_changed_since(struct store_mailbox *mbox, uint64_t modseq, struct store_msg_list *list_r,
				char **error_r);
void store_msg_list_free(struct store_msg_list *list);
/* UIDs expunged with a modseq greater than modseq (QRESYNC VANISHED),
   ascending; caller frees *uids_r. */
int store_mailbox_expunged_since(struct store_mailbox *mbox, uint64_t modseq, uint32_t **uids_r,
				 size_t *count_r, char **error_r);
/* Returns the first UID that is \Recent for this session and moves the
   mailbox's recent mark to UIDNEXT, so that no other session sees them as
   recent (RFC 3501 section 2.3.2). */
int store_mailbox_take_recent(struct store_mailbox *mbox, uint32_t *first_recent_r, char **error_r);

/* ---- messages ---- */

/* Opens a message file for reading.  Returns 1 with *fd_r (the caller
   closes it), 0 when the message is gone (expunged by another session or
   program), -1 on error.  A file renamed by another program is found
   again. */
int store_msg_open(struct store_mailbox *mbox, const struct store_msg *msg, int *fd_r, char **error_r);
/* Same, by UID. */
int store_msg_open_uid(struct store_mailbox *mbox, uint32_t uid, int *fd_r, char **error_r);

/* A stable unique id of a message in its mailbox, derived from its Maildir
   base name, so it survives restarts, flag changes and even a lost index
   (POP3 UIDL, RFC 1939 section 7: 1-70 characters 0x21-0x7E).  out gets
   the NUL-terminated id. */
#define STORE_STABLE_ID_MAX 70
void store_msg_stable_id(const struct store_msg *msg, char out[STORE_STABLE_ID_MAX + 1]);

enum store_flag_op { STORE_FLAGS_REPLACE, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

/* Changes the flags (and keywords: space-separated, may be NULL) of the
   messages uids[0..count), in one index transaction: every changed message
   gets the mailbox's new highest modseq, and what the index says is what
   every reader of the store sees from then on.  The Maildir info letters
   (":2,FS") of the files follow at the next store_mailbox_flush_flags(),
   which whoever changes flags calls a moment later (the count of files
   waiting is in the index: a process that stopped first leaves them to the
   next one): a burst of changes renames each file once at most.  With unchanged_since non-zero (CONDSTORE),
   messages whose modseq is higher are left alone and reported in *failed_r (caller frees; may be NULL when
   not wanted).  Messages that are gone are skipped.  Returns the number of messages changed, or -1. */
int store_msg_set_flags(struct store_mailbox *mbox, const uint32_t *uids, size_t count, enum store_flag_op op,
			uint32_t flags, const char *keywords, uint64_t unchanged_since, uint32_t **failed_r,
			size_t *failed_count_r, char **error_r);
/* How many files of the mailbox may wait for a rename to the letters of
   their flags (an upper bound; 0: none), or -1. */
int store_mailbox_flags_pending(struct store_mailbox *mbox, char **error_r);
/* Renames the files whose info letters differ from their flags, in one
   index transaction (a file renamed or removed by another program
   meanwhile is left to the next sync).  Returns the number renamed, or -1. */
int store_mailbox_flush_flags(struct store_mailbox *mbox, char **error_r);

/* Removes messages: each row is marked, its file unlinked, then the row is
   deleted and its UID recorded as expunged with a new modseq.  A crash at
   any point leaves every other message alone; the next sync finishes a
   marked row.  Returns the number expunged, or -1. */
int store_msg_expunge(struct store_mailbox *mbox, const uint32_t *uids, size_t count, char **error_r);

/* Appends a message (data: exactly the octets to store, CRLF line ends)
   with flags, keywords (may be NULL) and internaldate (0: now): written to
   tmp/, fsynced, renamed into cur/ with its info flags, directory fsynced,
   then indexed.  *uid_r gets the new UID (UIDPLUS). */
int store_msg_append(struct store_mailbox *mbox, const void *data, size_t len, uint32_t flags,
		     const char *keywords, int64_t internaldate, uint32_t *uid_r, char **error_r);

/* One message of store_msg_append_many(). */
struct store_append {
	const void *data; /* exactly the octets to store, CRLF line ends */
	size_t len;
	uint32_t flags;
	const char *keywords; /* may be NULL */
	int64_t internaldate; /* 0: now */
};
/* Appends msgs[0..count) (count >= 1) as store_msg_append() appends one,
   atomically (RFC 3502 MULTIAPPEND): the files are written first, then one
   index transaction lists them all with consecutive UIDs from
   *first_uid_r; on any failure none of them is listed and the files
   written are removed. */
int store_msg_append_many(struct store_mailbox *mbox, const struct store_append *msgs, size_t count,
			  uint32_t *first_uid_r, char **error_r);

/* Copies messages to dest (hard links when possible, else copies), keeping
   flags, keywords and internaldate.  dest_uids_r (count entries, caller
   frees) get the new UIDs in the order of uids; a UID that is gone gets 0.
   With move, the sources are expunged afterwards (RFC 6851).  Returns the
   number copied, or -1. */
int store_msg_copy(struct store_mailbox *src, const uint32_t *uids, size_t count, struct store_mailbox *dest,
		   bool move, uint32_t **dest_uids_r, char **error_r);

/* ---- import (postoffice migrate-to-postgresql) ---- */

/* One message of store_mailbox_import(). */
struct store_import_msg {
	uint32_t uid;         /* ascending, 1 .. the import's uidnext - 1 */
	uint32_t flags;       /* enum store_flag bits */
	const char *keywords; /* space-separated IMAP keywords; NULL or "" for none */
	int64_t internaldate; /* unix time */
	uint64_t modseq;      /* 1 .. the import's highestmodseq; 0: highestmodseq */
	const char *emailid;  /* EMAILID (RFC 8474) to keep, or NULL for a new one */
	/* store_msg_stable_id() (POP3 UIDL) to keep, or NULL for a new one */
	const char *stable_id;
};

/* A mailbox as another store holds it (store_mailbox_import()). */
struct store_import {
	const char *name;       /* INBOX or a folder (store_name_check()) */
	uint32_t uidvalidity;   /* non-zero */
	uint32_t uidnext;       /* above every UID of msgs and expunged */
	uint64_t highestmodseq; /* >= 1 */
	const char *mailboxid;  /* MAILBOXID (RFC 8474) to keep, or NULL */
	const struct store_import_msg *msgs;
	size_t count;
	/* UIDs expunged, for QRESYNC's VANISHED (RFC 7162 3.2.10): recorded
	   with the modseq highestmodseq, which is at or above the one they
	   had, so that a client resynchronising from any older modseq hears
	   of them (at worst once more than needed). */
	const uint32_t *expunged;
	size_t expunged_count;
	/* The octets of msgs[i] as the source stores them (CRLF line ends,
	   or bare LF that readers send as CRLF), valid until the next call:
	   0, or -1 with *error_r, which ends the import.  Called for i in
	   ascending order, and again from 0 when the backend tries its
	   transaction again. */
	int (*read)(void *ctx, size_t i, const void **data_r, size_t *len_r, char **error_r);
	void *ctx;
};

/* Puts a whole mailbox of another store into store as it was there (the
   move of a store from one backend to another): the mailbox imp->name,
   made when missing and otherwise never used yet (no message, no
   expunged UID, UIDNEXT 1: as a store's first open or
   store_user_create() leaves it), gets exactly imp's UIDVALIDITY,
   UIDNEXT, HIGHESTMODSEQ and MAILBOXID, and every message its UID, flags,
   keywords, internaldate, modseq, EMAILID and stable id, its size computed from its
   octets as an append does.  So an IMAP client that knew the mailbox
   before sees the same mailbox (RFC 3501 2.3.1.1: same UIDVALIDITY and
   UIDs; RFC 7162 3.1: HIGHESTMODSEQ does not go backwards).  All in one
   transaction: on failure nothing of it is there.  No message is
   \Recent afterwards; mailboxes the store makes later get higher
   UIDVALIDITYs.  0, or -1 with *error_r: imp breaks the rules above, the
   mailbox was used already, or the backend cannot import (the local one:
   its mailboxes are Maildirs, which other tools fill). */
int store_mailbox_import(struct store *store, const struct store_import *imp, char **error_r);

/* ---- object ids (RFC 8474) ----
   Letters, digits, '-' and '_' (objectid, RFC 8474 7), at most
   STORE_OBJECTID_MAX of them. */
#define STORE_OBJECTID_MAX 64
/* The mailbox's MAILBOXID: given when the mailbox is first opened, kept
   by RENAME (also of a parent) and across restarts, new for a mailbox
   deleted and made again. */
const char *store_mailbox_objectid(const struct store_mailbox *mbox);
/* Calls cb with the EMAILID of every message with a UID in lo..hi,
   ascending: the same for the message's life (flag changes, restarts) and
   for its copies (COPY, MOVE).  cb's non-zero return stops the walk.  0 or
   -1. */
int store_msg_emailids(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
		       int (*cb)(void *ctx, uint32_t uid, const char *emailid), void *ctx, char **error_r);

/* The IMAP server's cache of ENVELOPE, BODYSTRUCTURE and PREVIEW (RFC
   8970) text; PREVIEW needs store_cache_prepare() first. */
enum store_cache_field { STORE_CACHE_ENVELOPE, STORE_CACHE_BODYSTRUCTURE, STORE_CACHE_PREVIEW };
/* 1 with *text_r (caller frees), 0 when not cached, -1 on error. */
int store_cache_get(struct store_mailbox *mbox, uint32_t uid, enum store_cache_field field, char **text_r,
		    char **error_r);
int store_cache_set(struct store_mailbox *mbox, uint32_t uid, enum store_cache_field field, const char *text,
		    char **error_r);

/* ---- folders ---- */

/* 0 when name is a valid mailbox name, else -1 with *error_r (static). */
int store_name_check(const char *name, const char **error_r);
/* Creates a folder (Maildir++ ".Name" with cur/ new/ tmp/); parents that
   do not exist are created too.  0, or -1 (exists: *exists_r true). */
int store_folder_create(struct store *store, const char *name, bool *exists_r, char **error_r);
/* Deletes a folder and its messages; INBOX cannot be deleted.  Children are
   left alone (RFC 3501 section 6.3.4). */
int store_folder_delete(struct store *store, const char *name, char **error_r);
/* Renames a folder and its children; renaming INBOX moves its messages to
   the new folder and leaves INBOX empty (RFC 3501 section 6.3.5). */
int store_folder_rename(struct store *store, const char *from, const char *to, char **error_r);
/* Calls cb for INBOX and every folder, in name order.  cb's non-zero return
   stops the walk. */
int store_folder_list(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx, char **error_r);

/* Subscriptions (LSUB): names, which need not exist. */
int store_subscribe(struct store *store, const char *name, bool subscribe, char **error_r);
int store_subscription_list(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx,
			    char **error_r);

/* Quota usage from the index: bytes and messages of every indexed folder. */
int store_quota_usage(struct store *store, uint64_t *bytes_r, uint64_t *messages_r, char **error_r);

/* ---- watching (IMAP IDLE) ---- */

/* An inotify fd that becomes readable when files appear in, leave or are
   renamed in the mailbox's new/ or cur/.  Add it to the event loop; call
   store_watch_drain() when readable, then store_mailbox_sync().  -1 on
   error. */
int store_watch_open(struct store_mailbox *mbox, char **error_r);
void store_watch_drain(int fd);

/* ---- POP3 maildrop lock (RFC 1939 section 8) ---- */

/* Takes the exclusive lock on the user's maildrop through this handle,
   without waiting: 1 taken (or already held by this handle), 0 when
   another handle (of any process) holds it, -1 on error.  Held until
   store_maildrop_unlock() or store_close(), and dropped when the process
   dies (local: flock on MAILDIR/pop3.lock). */
int store_maildrop_lock(struct store *store, char **error_r);
void store_maildrop_unlock(struct store *store);
#endif
