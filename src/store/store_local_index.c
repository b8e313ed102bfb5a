/* The local backend's per-user index, MAILDIR/index.db (SQLite, WAL), and
   its store handle. */
#include "store/store_local_private.h"
#include "lib/sqlite_vfs.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_SCHEMA_VERSION 1
#define STORE_UIDVALIDITY_FILE "index.uidvalidity"

/* Cache columns live in their own table so that the message rows stay small
   and a full listing reads few pages. */
static const char schema_sql[] = "CREATE TABLE mailbox("
				 " id INTEGER PRIMARY KEY,"
				 " name TEXT NOT NULL UNIQUE,"
				 " uidvalidity INTEGER NOT NULL,"
				 " uidnext INTEGER NOT NULL DEFAULT 1,"
				 " highestmodseq INTEGER NOT NULL DEFAULT 1,"
				 " first_recent INTEGER NOT NULL DEFAULT 1,"
				 " new_mtime INTEGER NOT NULL DEFAULT 0,"
				 " cur_mtime INTEGER NOT NULL DEFAULT 0);"
				 "CREATE TABLE message("
				 " mailbox INTEGER NOT NULL,"
				 " uid INTEGER NOT NULL,"
				 " base TEXT NOT NULL,"
				 " info TEXT NOT NULL,"
				 " size INTEGER NOT NULL,"
				 " psize INTEGER NOT NULL,"
				 " internaldate INTEGER NOT NULL,"
				 " flags INTEGER NOT NULL,"
				 " keywords TEXT NOT NULL DEFAULT '',"
				 " modseq INTEGER NOT NULL,"
				 " expunging INTEGER NOT NULL DEFAULT 0,"
				 " PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;"
				 "CREATE UNIQUE INDEX message_base ON message(mailbox, base);"
				 "CREATE INDEX message_modseq ON message(mailbox, modseq);"
				 "CREATE TABLE expunged("
				 " mailbox INTEGER NOT NULL,"
				 " uid INTEGER NOT NULL,"
				 " modseq INTEGER NOT NULL,"
				 " PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;"
				 "CREATE TABLE cache("
				 " mailbox INTEGER NOT NULL,"
				 " uid INTEGER NOT NULL,"
				 " envelope TEXT,"
				 " bodystructure TEXT,"
				 " PRIMARY KEY(mailbox, uid));"
				 "CREATE TABLE subscription(name TEXT PRIMARY KEY);";

/* Tables added since version 1, made when an index is opened (a no-op
   that takes no write lock once they exist): older indexes are upgraded
   in place, and every process that deletes messages finds them.  sortkey
   holds the SORT/THREAD keys of a message (store_cache_set_sortkey). */
static const char added_sql[] = "CREATE TABLE IF NOT EXISTS sortkey("
				" mailbox INTEGER NOT NULL,"
				" uid INTEGER NOT NULL,"
				" keys BLOB NOT NULL,"
				" PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;";

/* STORE_ERROR_BUSY when SQLite's code is: the write lock was not had
   within the busy timeout. */
static const char *busy_prefix(int code)
{
	return (code & 0xff) == SQLITE_BUSY ? STORE_ERROR_BUSY : "";
}

int store_local_db_error(struct store_local *store, const char *what, char **error_r)
{
	*error_r =
	    xasprintf("%s%s: %s (index %s/" STORE_INDEX_FILE ")", busy_prefix(sqlite3_errcode(store->db)),
		      what, sqlite3_errmsg(store->db), store->path);
	/* A statement that failed half-way keeps its read transaction (and
	   its old snapshot) until it is reset: the handle's next write would
	   fail at once, without waiting for the lock (a busy index). */
	for (size_t i = 0; i < STORE_STMT_CACHE && store->stmts[i].sql != NULL; i++)
		if (sqlite3_stmt_busy(store->stmts[i].stmt))
			sqlite3_reset(store->stmts[i].stmt);
	return -1;
}

sqlite3_stmt *store_local_stmt(struct store_local *store, const char *sql)
{
	size_t i;
	for (i = 0; i < STORE_STMT_CACHE && store->stmts[i].sql != NULL; i++) {
		if (store->stmts[i].sql == sql) {
			sqlite3_stmt *st = store->stmts[i].stmt;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return st;
		}
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		log_panic("cannot prepare \"%s\": %s", sql, sqlite3_errmsg(store->db));
	if (i < STORE_STMT_CACHE) {
		store->stmts[i].sql = sql;
		store->stmts[i].stmt = st;
	} else {
		log_panic("statement cache full");
	}
	return st;
}

int store_local_exec(struct store_local *store, const char *sql, char **error_r)
{
	char *msg = NULL;
	int rc = sqlite3_exec(store->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		*error_r =
		    xasprintf("%s%s: %s (index %s)", busy_prefix(rc), sql, msg ? msg : "?", store->path);
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int store_local_begin(struct store_local *store, char **error_r)
{
	return store_local_exec(store, "BEGIN IMMEDIATE", error_r);
}

int store_local_commit(struct store_local *store, char **error_r)
{
	return store_local_exec(store, "COMMIT", error_r);
}

void store_local_rollback(struct store_local *store)
{
	if (!sqlite3_get_autocommit(store->db))
		sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
}

/* UIDVALIDITY must grow whenever UIDs may have changed (RFC 3501
   2.3.1.1), also when index.db is lost: the last value handed out is kept
   beside the index, so a recreated index never repeats one. */
uint32_t store_local_next_uidvalidity(struct store_local *store)
{
	char *path = xasprintf("%s/" STORE_UIDVALIDITY_FILE, store->path);
	uint32_t last = 0;
	char *data = NULL, *error = NULL;
	if (fs_read_file(path, &data, NULL, &error) == 0) {
		last = (uint32_t)strtoul(data, NULL, 10);
		free(data);
	} else {
		free(error);
		error = NULL;
	}
	uint32_t now = (uint32_t)time(NULL);
	uint32_t next = now > last ? now : last + 1;
	if (next == 0)
		next = 1;
	char text[16];
	int n = snprintf(text, sizeof(text), "%u\n", next);
	if (fs_write_file_durable(path, text, (size_t)n, 0600, &error) < 0) {
		log_warn("store uidvalidity-write-failed error=%s", error);
		free(error);
	}
	free(path);
	return next;
}

static bool name_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

char *store_local_mailbox_dir(struct store_local *store, const char *name)
{
	const char *error;
	if (store_name_check(name, &error) < 0)
		return NULL;
	if (name_is_inbox(name))
		return xstrdup(store->path);
	return xasprintf("%s/.%s", store->path, name);
}

static int maildir_layout(const char *dir, char **error_r)
{
	static const char *const subdirs[] = {"cur", "new", "tmp"};
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		char *path = xasprintf("%s/%s", dir, subdirs[i]);
		int rc = fs_mkdir_p(path, 0700, error_r);
		free(path);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int store_local_add_column(struct store_local *store, const char *exists_sql, const char *add_sql,
			   char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(store, exists_sql);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return store_local_db_error(store, "reading a table's columns", error_r);
	char *msg = NULL;
	if (sqlite3_exec(store->db, add_sql, NULL, NULL, &msg) != SQLITE_OK) {
		/* another process may have added it meanwhile */
		bool dup = msg != NULL && strstr(msg, "duplicate column") != NULL;
		if (!dup)
			*error_r = xasprintf("%s: %s (index %s)", add_sql, msg ? msg : "?", store->path);
		sqlite3_free(msg);
		return dup ? 0 : -1;
	}
	return 0;
}

static int store_schema_base(struct store_local *store, char **error_r)
{
	sqlite3_stmt *st = store_local_stmt(store, "PRAGMA user_version");
	int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_reset(st);
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (version < 0)
		return store_local_db_error(store, "reading the index version", error_r);
	if (version > STORE_SCHEMA_VERSION) {
		*error_r =
		    xasprintf("index %s/" STORE_INDEX_FILE " has newer schema %d", store->path, version);
		return -1;
	}
	if (store_local_begin(store, error_r) < 0)
		return -1;
	st = store_local_stmt(store, "PRAGMA user_version");
	version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_reset(st);
	if (version == 0) {
		char *sql = xasprintf("%s PRAGMA user_version=%d;", schema_sql, STORE_SCHEMA_VERSION);
		int rc = store_local_exec(store, sql, error_r);
		free(sql);
		if (rc < 0) {
			store_local_rollback(store);
			return -1;
		}
	}
	return store_local_commit(store, error_r);
}

static int store_schema(struct store_local *store, char **error_r)
{
	if (store_schema_base(store, error_r) < 0 || store_local_exec(store, added_sql, error_r) < 0)
		return -1;
	/* the count of files whose info letters wait for a rename
	   (store_local_flags.c) */
	return store_local_add_column(
	    store, "SELECT 1 FROM pragma_table_info('mailbox') WHERE name='pending_renames'",
	    "ALTER TABLE mailbox ADD COLUMN pending_renames INTEGER NOT NULL DEFAULT 0", error_r);
}

static void store_db_close(struct store_local *store)
{
	for (size_t i = 0; i < STORE_STMT_CACHE && store->stmts[i].sql != NULL; i++) {
		sqlite3_finalize(store->stmts[i].stmt);
		store->stmts[i].sql = NULL;
		store->stmts[i].stmt = NULL;
	}
	if (store->db != NULL)
		sqlite3_close(store->db);
	store->db = NULL;
}

/* A new index must not pick up the write-ahead log of a lost one.  The
   directory lock keeps two processes from creating it at once. */
static void store_prepare_new_index(struct store_local *store, const char *db_path)
{
	int dfd = open(store->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		flock(dfd, LOCK_EX);
	if (access(db_path, F_OK) < 0 && errno == ENOENT) {
		char *wal = xasprintf("%s-wal", db_path), *shm = xasprintf("%s-shm", db_path);
		unlink(wal);
		unlink(shm);
		free(wal);
		free(shm);
		int fd = open(db_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	if (dfd >= 0)
		close(dfd); /* releases the flock */
}

/* WAL, the schema and its upgrades on the open index. */
static int store_db_setup(struct store_local *store, char **error_r)
{
	/* The index can be rebuilt from the Maildir, except for the UIDs, which
	   survive process crashes with synchronous=NORMAL in WAL mode. */
	if (store_local_exec(store, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", error_r) < 0)
		return -1;
	if (store_schema(store, error_r) < 0)
		return -1;
	return store_local_objectid_upgrade(store, error_r);
}

static int store_db_open(struct store_local *store, char **error_r)
{
	char *db_path = xasprintf("%s/" STORE_INDEX_FILE, store->path);
	if (access(db_path, F_OK) < 0)
		store_prepare_new_index(store, db_path);
	sqlite_vfs_init();
	int rc = sqlite3_open_v2(db_path, &store->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	free(db_path);
	if (rc != SQLITE_OK)
		return store_local_db_error(store, "opening the index", error_r);
	sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(store->db, 1);
	/* Two processes opening a new index at once (two logins of a new user)
	   can get SQLITE_BUSY at once, without the busy handler: switching to
	   WAL and upgrading a read lock to a write lock do not wait.  Bounded
	   retries (this runs on a job thread, or in a command). */
	for (int attempt = 0;; attempt++) {
		int rc2 = store_db_setup(store, error_r);
		if (rc2 == 0 || attempt >= 40 ||
		    strncmp(*error_r, STORE_ERROR_BUSY, strlen(STORE_ERROR_BUSY)) != 0)
			return rc2;
		free(*error_r);
		*error_r = NULL;
		struct timespec ts = {0, 25 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

struct store *store_local_open(const char *maildir, char **error_r)
{
	if (maildir_layout(maildir, error_r) < 0)
		return NULL;
	struct store_local *store = xcalloc(1, sizeof(*store));
	store->store.be = &store_backend_local;
	store->path = xstrdup(maildir);
	store->maildrop_fd = -1;
	if (store_db_open(store, error_r) == 0)
		return &store->store;
	/* Unreadable: keep it aside for inspection and start over (the
	   mailboxes get new UIDVALIDITYs). */
	int code = store->db != NULL ? sqlite3_errcode(store->db) & 0xff : SQLITE_ERROR;
	store_db_close(store);
	if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
		char *db_path = xasprintf("%s/" STORE_INDEX_FILE, maildir);
		char *aside = xasprintf("%s.corrupt.%ld", db_path, (long)time(NULL));
		log_error("store index-corrupt path=%s error=%s moved-to=%s", db_path, *error_r, aside);
		free(*error_r);
		*error_r = NULL;
		if (rename(db_path, aside) == 0 && store_db_open(store, error_r) == 0) {
			free(db_path);
			free(aside);
			return &store->store;
		}
		free(db_path);
		free(aside);
		store_db_close(store);
		if (*error_r == NULL)
			*error_r = xasprintf("cannot recreate the index in %s", maildir);
	}
	free(store->path);
	free(store);
	return NULL;
}

void store_local_close(struct store *base)
{
	struct store_local *store = store_local_cast(base);
	store_local_maildrop_unlock(base);
	store_db_close(store);
	free(store->path);
	free(store);
}

const char *store_local_path(const struct store *base)
{
	return ((const struct store_local *)base)->path;
}
