#ifndef IMAP_IMAP_PRIVATE_H
#define IMAP_IMAP_PRIVATE_H
/* Internals of the IMAP server shared by its files.

   Memory: a session holds only what is its own (state, tag of a running
   command, its view of the selected mailbox).  Everything per user and per
   mailbox is shared by all sessions of the worker: one store handle per
   user (struct imap_user), one open mailbox per (user, mailbox) with its
   inotify watch and its message table (struct imap_mbox).  A session's
   view is a reference to an immutable-prefix UID vector plus a count, so
   10,000 sessions on one mailbox share one vector. */
#include "imap/imap_parse.h"
#include "imap/imap_sortkey.h"
#include "lib/config.h"
#include "lib/buf.h"
#include "lib/strlist.h"
#include "session/session.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct io;
struct event;
struct sasl_server;

#define IMAP_SEPARATOR "."
/* Output is produced in slices: a command that writes a lot (FETCH of
   10,000 messages) stops at this much pending output and continues when
   the client has read it. */
#define IMAP_OUTPUT_HIGH (256 * 1024)
#define IMAP_MAX_BAD_COMMANDS 20
/* Distinct keywords a mailbox may have (Cyrus allows 128): FLAGS lists
   them all and is sent again when one is added, so the count is bounded;
   a STORE or APPEND that would add more gets NO [LIMIT] and
   PERMANENTFLAGS drops \* at the limit (RFC 3501 7.1). */
#define IMAP_MAX_KEYWORDS 200
/* RFC 3501 5.4: at least 30 minutes, and RFC 2177: while IDLE too. */
#define IMAP_MIN_TIMEOUT (30 * 60)
#define IMAP_PREAUTH_TIMEOUT 60
/* Before authentication only LOGIN, AUTHENTICATE and ID carry arguments
   worth the name, and small ones: a command with all its literals is held
   to IMAP_PREAUTH_MAX_COMMAND, so that a client without an account cannot
   make the worker buffer megabytes.  The largest is an ID of RFC 2971's
   maximal size (30 pairs of a 30-octet field and a 1024-octet value: about
   31.8 KiB quoted); a literal is held to IMAP_PREAUTH_MAX_LITERAL (a
   password or a SASL response). */
#define IMAP_PREAUTH_MAX_COMMAND (40 * 1024)
#define IMAP_PREAUTH_MAX_LITERAL 8192

enum imap_state { IMAP_STATE_NOAUTH, IMAP_STATE_AUTH, IMAP_STATE_SELECTED, IMAP_STATE_LOGOUT };

enum imap_enabled {
	IMAP_ENABLED_CONDSTORE = 1 << 0,
	IMAP_ENABLED_QRESYNC = 1 << 1,
	IMAP_ENABLED_IMAP4REV2 = 1 << 2,
	IMAP_ENABLED_UTF8 = 1 << 3,
};

/* ---- shared per-user and per-mailbox state ---- */

struct imap_user {
	struct imap_user *next;
	char *address;
	struct store *store;
	struct event_base *base; /* of the sessions' loop (mailbox watches) */
	uint64_t quota;          /* bytes, 0 = unlimited */
	int refs;
	int sessions;
	/* store handles of job threads not in use by a job (imap_job.c) */
	struct imap_job_store *spare;
	int nspare;
	unsigned int folders_gen; /* bumped when a folder is deleted or renamed */
	bool job_running;         /* jobs run one at a time per user */
	struct imap_job *jobs_waiting, **jobs_waiting_tail;
};

/* One message of the shared table. */
struct imap_msg {
	uint32_t uid;
	uint32_t flags; /* enum store_flag */
	uint64_t size;
	uint64_t modseq;
	int64_t internaldate;
	char *keywords; /* NULL: none */
	char *locator;  /* the store's file handle (store_msg_open) */
	bool bare_lf;   /* the file's size is not the size sent */
	/* SORT and THREAD: its keys once loaded or built (imap_sort.c), else
	   NULL (a message never changes under its UID) */
	struct imap_sortkey *sortkey;
};

/* A UID vector whose prefix [0, count) never changes once written: views
   hold a reference and their own count; appends write past every view's
   count; an expunge makes a new vector. */
struct imap_uidvec {
	int refs;
	uint32_t count, cap;
	uint32_t uids[];
};

struct imap_mbox {
	struct imap_mbox *next;
	struct imap_user *user;
	char *name;
	struct store_mailbox *smbox;
	int refs;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	/* every keyword a message of the table has had (at most
	   IMAP_MAX_KEYWORDS: FLAGS lists them all, and a new one is
	   refused beyond it), in the order first
	   seen (compared case-insensitively); keywords_gen counts additions */
	struct strlist keywords;
	unsigned int keywords_gen;
	struct imap_msg *msgs; /* ascending UID; same order as vec */
	uint32_t count, alloc;
	struct imap_uidvec *vec;
	int watch_fd;
	struct event *watch_ev;
	unsigned int watch_paused;   /* imap_mbox_watch_pause() calls */
	struct event *flush_ev;      /* imap_mbox_flush_later() */
	bool dirty;                  /* the Maildir changed: sync (a job) */
	bool syncing, sync_again;    /* a sync job runs; another is wanted */
	struct imap_session *idlers; /* sessions in IDLE on this mailbox */
	/* \Recent (RFC 3501 2.3.2) is taken from the store by jobs only (it
	   writes the index): the UIDs this worker's jobs took that no view
	   has claimed yet (ascending, disjoint; imap_view_take_recent) */
	struct imap_uid_range *recent_pool;
	uint32_t recent_pool_count;
	int rw_views; /* read-write views: sync jobs take \Recent for them */
	/* cache writes waiting for their job (imap_cache.c) */
	struct imap_cache_fill *fill;
	bool filling; /* the job runs */
	/* SORT: bumped when a message gets its keys; the ranks of text i
	   are those of generation sortkey_ranked[i] (imap_sort.c) */
	unsigned int sortkey_gen, sortkey_ranked[IMAP_SORTKEY_TEXTS];
};

/* Ranges of \Recent UIDs a mailbox keeps for its views (imap_mbox). */
#define IMAP_RECENT_POOL_MAX 32

/* UIDs lo <= uid < hi. */
struct imap_uid_range {
	uint32_t lo, hi;
};

/* A session's view of its selected mailbox. */
struct imap_view {
	struct imap_mbox *mbox;
	struct imap_uidvec *vec;
	uint32_t count; /* messages the client knows of */
	/* The UIDs that are \Recent in this session (RFC 3501 2.3.2): the
	   ranges it took from the store (ascending, disjoint); a read-only
	   view takes none and has the store's recent ones as of EXAMINE. */
	struct imap_uid_range *recent;
	uint32_t recent_count, recent_alloc;
	uint32_t recent_taken; /* UIDs below this were offered to the view */
	uint32_t recent_reported;
	uint64_t modseq_reported;  /* flag changes up to here were sent */
	unsigned int keywords_gen; /* the mailbox's keywords_gen last sent in FLAGS */
	bool readonly;
};

/* ---- the session ---- */

struct imap_session;
/* A command that continues once output drains (returns 1 done, 0 more). */
typedef int imap_continue_fn(struct imap_session *s);

struct imap_session {
	struct session core; /* first: the shared skeleton */
	struct imap_parser *parser;
	enum imap_state state;
	unsigned int enabled; /* enum imap_enabled */
	bool compressed, logout;
	bool in_command; /* between a command and its tagged reply */
	int bad_commands, auth_failures;
	bool auth_refused;     /* the delayed reply is a penalty refusal */
	bool auth_unavailable; /* ... because the user database failed */
	struct imap_user *user;
	int64_t registry_slot; /* among the user's sessions on all nodes; 0: none */
	struct imap_view *view;
	/* a command in progress that waits on a job, IDLE, SASL or output */
	char *tag;
	const char *cmd_name;
	struct sasl_server *sasl;
	bool idling;
	struct imap_session *idle_next;
	struct imap_session **idle_pprev; /* the pointer to us in the list */
	imap_continue_fn *cont;
	void *cont_ctx;
	/* SEARCHRES (RFC 5182) */
	uint32_t *saved;
	uint32_t saved_count;
};

/* A command: its name, the states it is allowed in, its handler.  Handlers
   answer with imap_tagged() (or start something that does later) and
   return 0; -1 means "BAD" with the error in *error_r. */
#define IMAP_IN_NOAUTH (1 << IMAP_STATE_NOAUTH)
#define IMAP_IN_AUTH (1 << IMAP_STATE_AUTH)
#define IMAP_IN_SELECTED (1 << IMAP_STATE_SELECTED)
#define IMAP_IN_ANY (IMAP_IN_NOAUTH | IMAP_IN_AUTH | IMAP_IN_SELECTED)

struct imap_cmd_ctx {
	struct imap_session *s;
	const struct imap_command *cmd;
	const struct imap_arg *args;
	unsigned int count;
	bool uid; /* UID FETCH / SEARCH / STORE / COPY / MOVE / EXPUNGE */
	/* set with a -1 return: the command was well-formed and is refused,
	   so the reply is NO, not BAD */
	bool refuse;
	struct pool *pool;
};

typedef int imap_cmd_fn(struct imap_cmd_ctx *c, const char **error_r);

struct imap_cmd_def {
	const char *name;
	unsigned int states;
	imap_cmd_fn *fn;
	bool uid_ok;     /* may follow "UID" */
	bool no_expunge; /* RFC 3501 7.4.1: FETCH, STORE, SEARCH */
};

/* imap_session.c */
void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void imap_untagged(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The tagged reply for an internal failure: logs error (and frees it).
   A store error for a busy index (STORE_ERROR_BUSY) gets NO [UNAVAILABLE]. */
void imap_internal_error(struct imap_session *s, const char *what, char *error);
/* Ends a command that finished later (job, IDLE, streaming): reads the
   next one. */
void imap_command_done(struct imap_session *s);
void imap_session_close(struct imap_session *s, const char *bye);
const char *imap_capabilities(const struct imap_session *s);
/* Parses a mailbox argument (imap_mailbox_parse, UTF-8 when enabled):
   0 with *name_r, else -1 with *error_r, and c->refuse set when the name
   is well-formed but no mailbox can have it. */
int imap_cmd_mailbox(struct imap_cmd_ctx *c, const struct imap_arg *arg, const char **name_r,
		     const char **error_r);
/* Writes an astring (quoted or literal). */
void imap_append_astring(struct buf *out, const char *s);
/* Writes a mailbox name as the session reads them: as it is (modified
   UTF-7), or in UTF-8 once UTF8=ACCEPT is enabled (RFC 6855 3). */
void imap_append_mailbox(const struct imap_session *s, struct buf *out, const char *name);
void imap_write_buf(struct imap_session *s, struct buf *b);

/* imap_auth.c */
int imap_cmd_capability(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_starttls(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_login(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_authenticate(struct imap_cmd_ctx *c, const char **error_r);
/* Feeds a SASL response line; returns true when it was consumed. */
void imap_auth_input(struct imap_session *s, const char *line, size_t len);
int imap_cmd_id(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_enable(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_namespace(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_compress(struct imap_cmd_ctx *c, const char **error_r);
void imap_user_unref(struct imap_user **user);

/* imap_mailbox.c */
int imap_cmd_select(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_create(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_delete(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_rename(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_subscribe(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_list(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_status(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_noop(struct imap_cmd_ctx *c, const char **error_r);
/* SPECIAL-USE attribute of a mailbox name, or NULL. */
const char *imap_special_use(const char *name);

struct imap_job;

/* imap_view.c */
/* \Recent UIDs [lo, hi) a job took from the store for this worker's
   read-write views (want: set before the job starts). */
struct imap_recent_take {
	bool want;
	uint32_t lo, hi;
};
/* Opens (or shares) a mailbox; 1, 0 when it does not exist, -1 error. */
int imap_mbox_get(struct imap_user *user, const char *name, struct imap_mbox **mbox_r, char **error_r);
void imap_mbox_unref(struct imap_mbox **mbox);
/* The mailbox when some session has it open (no reference taken), else NULL. */
struct imap_mbox *imap_mbox_find_open(const struct imap_user *user, const char *name);
/* Reads what changed in the index into the table (reads only: changes
   made through the store, by any session or process, are there at once).
   When the Maildir changed (inotify, or marked dirty), a sync job is
   started too; what it finds is read in and sent to IDLE sessions when it
   is done. */
int imap_mbox_refresh(struct imap_mbox *mbox, char **error_r);
/* The Maildir changed behind the store's back: sync at the next refresh. */
void imap_mbox_mark_dirty(struct imap_mbox *mbox);
/* A job of this worker is about to rename many of the mailbox's files
   (imap_flush.c): the watch is taken off until the matching resume, since each
   rename would queue two events and wake the loop.  Resume puts it back
   and marks the mailbox dirty, so that what others changed meanwhile is
   still found. */
void imap_mbox_watch_pause(struct imap_mbox *mbox);
void imap_mbox_watch_resume(struct imap_mbox *mbox);
/* On a job thread: syncs the job handle's mailbox name with the Maildir
   (work of NOOP, SELECT and the sync job), then takes its \Recent
   messages when take->want (take may be NULL); errors in job->error. */
void imap_mbox_sync_work(struct imap_job *job, const char *name, struct imap_recent_take *take);
/* On a job thread: takes the \Recent messages of m when take->want (jobs
   that add messages to a mailbox a read-write view has: APPEND, COPY). */
void imap_mbox_take_recent_work(struct store_mailbox *m, struct imap_recent_take *take);
/* In the loop, when the job is done: what it took goes to the mailbox's
   views (imap_view_take_recent). */
void imap_mbox_recent_add(struct imap_mbox *mbox, const struct imap_recent_take *take);
const struct imap_msg *imap_mbox_find(const struct imap_mbox *mbox, uint32_t uid);
/* The same, for filling the message's caches (sortkey). */
struct imap_msg *imap_mbox_find_mutable(struct imap_mbox *mbox, uint32_t uid);
struct imap_view *imap_view_new(struct imap_mbox *mbox, bool readonly);
void imap_view_free(struct imap_view **view);
/* True when setting f's keywords on a message of mbox keeps the mailbox
   within IMAP_MAX_KEYWORDS distinct keywords. */
bool imap_mbox_keywords_fit(const struct imap_mbox *mbox, const struct imap_flags *f);
/* Leaves the selected state: frees the view and the saved search result. */
void imap_deselect(struct imap_session *s);
/* Sends FLAGS and OK [PERMANENTFLAGS] with the system flags and the
   mailbox's keywords: always with force (SELECT), else only when keywords
   were added since the session last heard them.  Called before any FETCH
   FLAGS goes out, since a client learns keywords from FLAGS (RFC 3501
   7.2.6). */
void imap_view_send_flags(struct imap_session *s, bool force);
/* A CONDSTORE enabling command (RFC 7162 3.1: FETCH MODSEQ or
   CHANGEDSINCE, SEARCH MODSEQ, STORE UNCHANGEDSINCE): the first one with a
   mailbox selected also sends OK [HIGHESTMODSEQ]. */
void imap_enable_condstore(struct imap_session *s);
/* Sends what changed since the client last heard (EXISTS, RECENT, FETCH
   FLAGS, and EXPUNGE/VANISHED when allowed). */
void imap_view_update(struct imap_session *s, bool allow_expunge);
/* The same without FETCH FLAGS for the sequence numbers skip[0..nskip)
   (ascending): a FETCH sends their flags itself. */
void imap_view_update_skip(struct imap_session *s, bool allow_expunge, const uint32_t *skip, uint32_t nskip);
/* True when uid is \Recent in this session. */
bool imap_view_recent(const struct imap_view *v, uint32_t uid);
/* A read-write view takes the \Recent flag of its messages that it has
   not been offered yet (RFC 3501 2.3.2), from what jobs took for the
   mailbox (reads and writes nothing in the index: a message no job took
   before it is reported is \Recent for no session). */
void imap_view_take_recent(struct imap_session *s);
/* How many of the view's messages are \Recent in this session. */
uint32_t imap_view_count_recent(const struct imap_view *v);
/* Adds [lo, hi) to the view's recent UIDs (above the ones it has). */
void imap_view_add_recent(struct imap_view *v, uint32_t lo, uint32_t hi);
static inline uint32_t imap_view_uid(const struct imap_view *v, uint32_t seq)
{
	return v->vec->uids[seq - 1];
}
/* Sequence number of uid in the view, 0 when absent. */
uint32_t imap_view_seq(const struct imap_view *v, uint32_t uid);
/* Resolves a sequence set (or UID set with uid) into the view's sequence
   numbers, ascending, deduplicated.  Returns the count; -1 with *error_r
   when a sequence number is out of range. */
int imap_view_resolve(struct imap_session *s, const struct imap_seqset *set, bool uid, uint32_t **seqs_r,
		      const char **error_r);
/* "(\Seen \Answered kw)" */
void imap_append_flags(struct buf *out, uint32_t flags, const char *keywords, bool recent);
uint32_t imap_flags_to_store(unsigned int imap_flags);
/* Appends uids as a compact set "1:3,7" */
void imap_append_uidset(struct buf *out, const uint32_t *uids, size_t count);
/* Sends "* VANISHED (EARLIER) uid-set" (RFC 7162 3.2.5.1) when count > 0. */
void imap_send_vanished_earlier(struct imap_session *s, const uint32_t *uids, size_t count);

/* imap_flush.c */
/* Flags changed in the mailbox: the files whose info letters are to follow
   are renamed in one job once it has had no change for a moment (store.h,
   store_mailbox_flush_flags()).  Keeps the mailbox open until then. */
void imap_mbox_flush_later(struct imap_mbox *mbox);

/* imap_fetch.c */
/* "dd-Mon-yyyy hh:mm:ss +0000" in quotes */
void imap_append_internaldate(struct buf *out, int64_t t);
int imap_cmd_fetch(struct imap_cmd_ctx *c, const char **error_r);

/* imap_fetch_ext.c: EMAILID and THREADID (RFC 8474) and PREVIEW (RFC
   8970) of a slice of FETCH's messages (seqs[0..count), ascending), read
   at once. */
struct imap_fetch_ext;
/* NULL when atts asks for none of them. */
struct imap_fetch_ext *imap_fetch_ext_load(struct imap_session *s, const struct imap_fetch_atts *atts,
					   const uint32_t *seqs, uint32_t count);
/* Appends the items of the slice's i-th message, each after *sep (then
   " "). */
void imap_fetch_ext_append(struct buf *out, const struct imap_fetch_ext *ext, unsigned int items, uint32_t i,
			   const char **sep);
/* The EMAILID or THREADID (item) of the slice's i-th message, NULL when
   unknown (or not loaded). */
const char *imap_fetch_ext_id(const struct imap_fetch_ext *ext, unsigned int item, uint32_t i);
void imap_fetch_ext_free(struct imap_fetch_ext **ext);

/* imap_search.c */
int imap_cmd_search(struct imap_cmd_ctx *c, const char **error_r);
/* Evaluates key on every message of the view; *seqs_r ascending. */
int imap_search_run(struct imap_session *s, const struct imap_search_key *key, uint32_t **seqs_r,
		    uint32_t *count_r, char **error_r);

/* imap_store.c */
int imap_cmd_store(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_copy(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_expunge(struct imap_cmd_ctx *c, const char **error_r);
/* CLOSE (expunges silently, RFC 3501 6.4.2) and UNSELECT. */
int imap_cmd_close(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_append(struct imap_cmd_ctx *c, const char **error_r);

/* imap_job.c: store work on a job thread (lib/jobs.h), for commands that
   rename or write files or write the index (the loop only reads it).  The job works on a
   store handle of its own (job->handle: never the shared one the loop
   reads), opened on the thread and kept with its mailboxes for the user's
   later jobs.  The session is busy from imap_job_start() until done has
   run in the loop.  work runs on the thread and touches nothing but the
   job (copy what it needs before starting); done runs in the loop, applies
   the results to shared state, answers unless job->s->dead, and frees the
   job.  The job struct is embedded first in the command's own struct. */
struct imap_job_store;
struct imap_job;
typedef void imap_job_fn(struct imap_job *job);
struct imap_job {
	struct imap_job *next;  /* waiting for the user's running job */
	struct imap_session *s; /* NULL: no session waits (mailbox sync) */
	struct imap_user *user;
	struct imap_job_store *handle;
	imap_job_fn *work, *done;
	char *error; /* set on failure (also when the store did
			not open: work was not called) */
};
/* Jobs of one user run one at a time, in order. */
void imap_job_start(struct imap_user *user, struct imap_session *s, struct imap_job *job, imap_job_fn *work,
		    imap_job_fn *done);
/* On the job thread: the job's own handle of mailbox name.  1 with
   *mbox_r (owned by the handle), 2 the same when the handle opened it just
   now (and so synced it), 0 when it does not exist, -1 with job->error. */
int imap_job_mailbox(struct imap_job *job, const char *name, struct store_mailbox **mbox_r);
/* The same for a mailbox that must exist (a session's selected one): 1,
   or -1 with job->error (also "mailbox NAME is gone"). */
int imap_job_selected_mailbox(struct imap_job *job, const char *name, struct store_mailbox **mbox_r);
/* On the job thread: the job's own store handle. */
struct store *imap_job_store(const struct imap_job *job);
/* Folders were deleted or renamed: mailbox handles kept by jobs are
   dropped before their next use. */
void imap_job_forget_mailboxes(struct imap_user *user);
/* Closes the spare handles of a user being freed. */
void imap_job_user_free(struct imap_user *user);
/* Closes a store handle on a job thread (closing the last handle of an
   index checkpoints it: writes). */
void imap_job_store_close(struct store **store);
/* Keeps a handle of the user's store (opened by a job) for its jobs, or
   closes it when enough are kept. */
void imap_job_store_give(struct imap_user *user, struct store **store);

/* imap_cache.c: what reads in the loop found missing from the index cache
   (ENVELOPE, BODYSTRUCTURE, PREVIEW, header blocks, SORT/THREAD keys, built
   from message files) is collected per mailbox and written by one job of
   the user's: the loop never writes the index.  The cache is an optimisation: a write that
   fails, or is dropped when too much waits (IMAP_CACHE_FILL_MAX bytes),
   is built again when next wanted. */
#define IMAP_CACHE_FILL_MAX (16 * 1024 * 1024)
enum imap_cache_item {
	IMAP_CACHE_ENVELOPE,
	IMAP_CACHE_BODYSTRUCTURE,
	IMAP_CACHE_PREVIEW,
	IMAP_CACHE_HEADER,
	IMAP_CACHE_SORTKEY,
};
struct imap_cache_fill;
/* Copies data[0..len) to write as the item of uid. */
void imap_cache_fill_add(struct imap_mbox *mbox, uint32_t uid, enum imap_cache_item item, const char *data,
			 size_t len);
/* Starts the job that writes what was added (when one runs, the next
   starts when it is done). */
void imap_cache_fill_flush(struct imap_mbox *mbox);
/* Drops what waits (the mailbox is freed). */
void imap_cache_fill_free(struct imap_mbox *mbox);

/* imap_idle.c */
int imap_cmd_idle(struct imap_cmd_ctx *c, const char **error_r);
void imap_idle_input(struct imap_session *s, const char *line, size_t len);
void imap_idle_notify(struct imap_mbox *mbox);
void imap_idle_stop(struct imap_session *s);

/* imap_sort.c, imap_thread.c */
int imap_cmd_sort(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_thread(struct imap_cmd_ctx *c, const char **error_r);

/* imap_quota.c */
int imap_cmd_getquota(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_getquotaroot(struct imap_cmd_ctx *c, const char **error_r);
int imap_cmd_setquota(struct imap_cmd_ctx *c, const char **error_r);
/* 0 when adding bytes keeps the user within quota, else -1. */
int imap_quota_check(struct imap_session *s, uint64_t bytes);

/* imap_message.c: reading messages for FETCH, SEARCH and SORT. */
struct imap_message {
	char *data;
	size_t size;
	struct mime_message *mime; /* parsed on demand */
};
/* Opens the file of uid: by the locator in the mailbox table (no index
   lookup), else by UID.  1 with *fd_r, 0 when gone, -1 error. */
int imap_message_open(struct imap_mbox *mbox, uint32_t uid, int *fd_r, char **error_r);
/* Reads the message file of uid.  1, 0 when gone, -1 error. */
int imap_message_read(struct imap_mbox *mbox, uint32_t uid, struct imap_message *msg_r, char **error_r);
/* Bare LF made CRLF in place: the len bytes at base + gap (gap >= len)
   are written from base on with every bare LF made CRLF.  The writing
   never reaches the bytes still to be read: it starts gap bytes behind
   them and gains one byte a bare LF, of which there are at most len.
   Returns the converted length (at most 2 * len). */
size_t imap_crlf_convert(char *base, size_t gap, size_t len);
struct mime_message *imap_message_mime(struct imap_message *msg);
void imap_message_free(struct imap_message *msg);
/* Reads only the header block of uid (with its blank line, bare LF as
   CRLF): the file's head up to the first empty line, IMAP_HEADER_READ
   bytes at a time, IMAP_HEADER_MAX at most.  1 with *data_r (caller
   frees), 0 when gone, -1 error. */
#define IMAP_HEADER_READ 4096
#define IMAP_HEADER_MAX (1024 * 1024)
int imap_message_read_header(struct imap_mbox *mbox, uint32_t uid, char **data_r, size_t *len_r,
			     char **error_r);

/* imap_headers.c: the header blocks of a run of messages (SEARCH, SORT,
   THREAD, FETCH of header sections) from the index cache; a block that is
   not cached is read from the file's head and written back (by a job:
   imap_cache.c) when the run ends. */
struct imap_header_run {
	struct imap_mbox *mbox;
	uint32_t *uids; /* ascending */
	uint32_t count;
	char **data; /* NULL: not cached (yet); cached ones are in pool */
	size_t *len;
	struct pool *pool;
	bool *tried; /* the file was read (or is gone): data[i] is malloc'd */
	bool *store; /* read from the file: write back */
	uint32_t fill_next;
};
/* Loads the cached blocks of uids[0..count) (ascending). */
void imap_header_run_load(struct imap_header_run *run, struct imap_mbox *mbox, const uint32_t *uids,
			  uint32_t count);
/* The header block of the i-th message; false when the message is gone. */
bool imap_header_run_get(struct imap_header_run *run, uint32_t i, const char **data_r, size_t *len_r);
/* Writes back what was read from files (imap_cache_fill_add), frees the
   run. */
void imap_header_run_done(struct imap_header_run *run);
/* Caches the header block of a message read whole (FETCH): added to the
   mailbox's cache fill, written at the next imap_cache_fill_flush(). */
void imap_header_cache_store(struct imap_mbox *mbox, uint32_t uid, const char *data, size_t len);
/* The field names of a HEADER.FIELDS[.NOT] section, prepared once per
   command for imap_header_filter(). */
struct imap_header_names {
	unsigned int count;
	uint64_t len_mask; /* bit n: some name has n bytes (n < 64) */
	const size_t *lens;
	const char *const *lower; /* ASCII lowercase */
};
void imap_header_names_init(struct imap_header_names *names_r, struct pool *pool, const char *const *fields,
			    unsigned int count);
/* Appends the fields of a header block that are (or, with not, are not)
   named in names, each whole with its continuation lines, then the blank
   line (RFC 3501 6.4.5 HEADER.FIELDS[.NOT]).  Fields are those that
   mime_headers_parse() finds, within its default limits. */
void imap_header_filter(struct buf *out, const char *data, size_t len, const struct imap_header_names *names,
			bool not );
/* Finds header fields by name in a raw block: calls cb with each raw
   (folded) value until it returns true; returns whether one did. */
bool imap_header_each(const char *data, size_t len, const char *name,
		      bool (*cb)(void *ctx, const char *value, size_t value_len), void *ctx);
/* The position of uid in uids[0..count) (ascending), or where it would
   go. */
uint32_t imap_uid_position(const uint32_t *uids, uint32_t count, uint32_t uid);
/* Case-insensitive (ASCII) search of needle in hay. */
bool imap_contains_nocase(const char *hay, size_t hay_len, const char *needle, size_t needle_len);
#endif
