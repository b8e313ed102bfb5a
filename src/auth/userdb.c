/* The user database, SQLite backend: handle, schema and migrations,
   statement cache, domains and users.  Aliases and recipient resolution
   are in userdb_alias.c. */
#include "auth/userdb_private.h"
#include "auth/password.h"
#include "lib/sqlite_vfs.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define USERDB_SCHEMA_VERSION 1
#define USERDB_BUSY_TIMEOUT_MS 5000

/* Index = enum userdb_stmt. */
static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_DOMAIN_ADD] = "INSERT INTO domains (name, created) VALUES (?1, ?2)",
	[STMT_DOMAIN_DEL] = "DELETE FROM domains WHERE name = ?1",
	[STMT_DOMAIN_EXISTS] = "SELECT 1 FROM domains WHERE name = ?1",
	[STMT_DOMAIN_LIST] = "SELECT d.name, d.created, (SELECT count(*) FROM users u "
			     "WHERE u.domain = d.name) FROM domains d ORDER BY d.name",
	[STMT_DOMAIN_USER_COUNT] = "SELECT (SELECT count(*) FROM users WHERE domain = ?1), "
				   "(SELECT count(*) FROM aliases WHERE domain = ?1)",
	[STMT_DOMAIN_DEL_USERS] = "DELETE FROM users WHERE domain = ?1",
	[STMT_DOMAIN_DEL_ALIASES] = "DELETE FROM aliases WHERE domain = ?1",
	[STMT_DOMAIN_DEL_ALIAS_TARGETS] = "DELETE FROM aliases WHERE target IN "
					  "(SELECT address FROM users WHERE domain = ?1)",
	[STMT_DOMAIN_FIRST_USER] = "SELECT address FROM users WHERE domain = ?1 "
				   "ORDER BY created, rowid LIMIT 1",
	[STMT_FIRST_USER] = "SELECT address FROM users ORDER BY created, rowid LIMIT 1",
	[STMT_USER_ADD] = "INSERT INTO users (address, local, domain, password, quota_bytes, "
			  "created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[STMT_USER_DEL] = "DELETE FROM users WHERE address = ?1",
	[STMT_USER_DEL_ALIAS_TARGETS] = "DELETE FROM aliases WHERE target = ?1",
	[STMT_USER_PASSWD] = "UPDATE users SET password = ?2 WHERE address = ?1",
	[STMT_USER_QUOTA] = "UPDATE users SET quota_bytes = ?2 WHERE address = ?1",
	[STMT_USER_LOOKUP] = "SELECT address, local, domain, password, quota_bytes, created "
			     "FROM users WHERE address = ?1",
	[STMT_USER_LIST] = "SELECT address, local, domain, password, quota_bytes, created "
			   "FROM users ORDER BY domain, local",
	[STMT_USER_LIST_DOMAIN] = "SELECT address, local, domain, password, quota_bytes, created "
				  "FROM users WHERE domain = ?1 ORDER BY local",
	[STMT_ALIAS_ADD] = "INSERT INTO aliases (source, target, domain, created) "
			   "VALUES (?1, ?2, ?3, ?4)",
	[STMT_ALIAS_EXISTS] = "SELECT 1 FROM aliases WHERE source = ?1 LIMIT 1",
	[STMT_ALIAS_DEL] = "DELETE FROM aliases WHERE source = ?1 AND target = ?2 COLLATE NOCASE",
	[STMT_ALIAS_DEL_SOURCE] = "DELETE FROM aliases WHERE source = ?1",
	[STMT_ALIAS_TARGETS] = "SELECT target FROM aliases WHERE source = ?1 ORDER BY rowid",
	[STMT_ALIAS_LIST] = "SELECT source, target FROM aliases ORDER BY domain, source, target",
	[STMT_ALIAS_LIST_DOMAIN] = "SELECT source, target FROM aliases WHERE domain = ?1 "
				   "ORDER BY source, target",
};

/* Migrations: schema_migrations[v] takes the schema from version v to v+1.
   Never edit a released step; append a new one. */
static const char *const schema_migrations[USERDB_SCHEMA_VERSION] = {
	"CREATE TABLE domains ("
	" name TEXT PRIMARY KEY NOT NULL,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE users ("
	" address TEXT PRIMARY KEY NOT NULL,"
	" local TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" password TEXT NOT NULL,"
	" quota_bytes INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL);"
	"CREATE INDEX users_domain ON users (domain, created);"
	"CREATE TABLE aliases ("
	" source TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" created INTEGER NOT NULL,"
	" PRIMARY KEY (source, target));"
	"CREATE INDEX aliases_domain ON aliases (domain);"
	"CREATE INDEX aliases_target ON aliases (target);",
};

void userdb_lock(struct userdb *db)
{
	pthread_mutex_lock(&db->lock);
}

void userdb_unlock(struct userdb *db)
{
	pthread_mutex_unlock(&db->lock);
}

int userdb_sql_error(struct userdb *db, const char *what, char **error_r)
{
	if (error_r != NULL)
		*error_r = xasprintf("%s: %s: %s", db->path, what, sqlite3_errmsg(db->db));
	return -1;
}

sqlite3_stmt *userdb_stmt(struct userdb *db, enum userdb_stmt id)
{
	sqlite3_stmt *stmt = db->stmts[id];
	if (stmt == NULL) {
		if (sqlite3_prepare_v3(db->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
				       &stmt, NULL) != SQLITE_OK) {
			log_error("userdb prepare failed path=%s error=%s sql=%s", db->path,
				  sqlite3_errmsg(db->db), stmt_sql[id]);
			return NULL;
		}
		db->stmts[id] = stmt;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

int userdb_exec_stmt(struct userdb *db, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

static int exec_id(struct userdb *db, enum userdb_stmt id)
{
	sqlite3_stmt *stmt = userdb_stmt(db, id);
	return stmt == NULL ? -1 : userdb_exec_stmt(db, stmt);
}

int userdb_begin(struct userdb *db, char **error_r)
{
	return exec_id(db, STMT_BEGIN) < 0 ? userdb_sql_error(db, "begin", error_r) : 0;
}

int userdb_commit(struct userdb *db, char **error_r)
{
	if (exec_id(db, STMT_COMMIT) < 0) {
		userdb_sql_error(db, "commit", error_r);
		userdb_rollback(db);
		return -1;
	}
	return 0;
}

void userdb_rollback(struct userdb *db)
{
	if (!sqlite3_get_autocommit(db->db))
		(void)exec_id(db, STMT_ROLLBACK);
}

static int schema_version(struct userdb *db, int *version_r)
{
	sqlite3_stmt *stmt;
	*version_r = 0;
	if (sqlite3_prepare_v2(db->db,
			       "SELECT name FROM sqlite_master WHERE name = 'schema_version'",
			       -1, &stmt, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return -1;
	if (sqlite3_prepare_v2(db->db, "SELECT max(version) FROM schema_version", -1, &stmt,
			       NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		*version_r = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return 0;
}

/* Brings the schema to USERDB_SCHEMA_VERSION inside one write transaction,
   so concurrent openers (CLI and server) do not both migrate. */
static int schema_migrate(struct userdb *db, char **error_r)
{
	int version;
	if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return userdb_sql_error(db, "begin", error_r);
	if (schema_version(db, &version) < 0)
		goto fail;
	if (version > USERDB_SCHEMA_VERSION) {
		sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
		*error_r = xasprintf("%s: schema version %d is newer than this program (%d)",
				     db->path, version, USERDB_SCHEMA_VERSION);
		return -1;
	}
	if (version == 0 &&
	    sqlite3_exec(db->db, "CREATE TABLE schema_version (version INTEGER NOT NULL, "
				 "applied INTEGER NOT NULL)",
			 NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	for (; version < USERDB_SCHEMA_VERSION; version++) {
		char *sql = xasprintf("%s INSERT INTO schema_version VALUES (%d, %lld);",
				      schema_migrations[version], version + 1,
				      (long long)time(NULL));
		int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
		free(sql);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	userdb_sql_error(db, "schema", error_r);
	sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* The database holds password hashes: create it readable by its owner
   only.  SQLite gives the -wal and -shm files the same mode.  O_EXCL |
   O_NOFOLLOW: root (the CLI, serve's preparation) creates it in a directory
   the server's user can write, so an existing entry, maybe a planted link,
   is never created through; SQLite then checks what it is. */
static int precreate(const char *path, char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EEXIST) {
		*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* The path SQLite opens: the directory resolved (the administrator's path
   may go through links), the file itself not, so that SQLITE_OPEN_NOFOLLOW
   refuses only a link in place of the database (SQLite also opens -wal and
   -shm with O_NOFOLLOW). */
static char *resolved_path(const char *path, char **error_r)
{
	char *copy = xstrdup(path);
	char *slash = strrchr(copy, '/');
	const char *name = slash != NULL ? slash + 1 : copy;
	if (slash != NULL)
		*slash = '\0';
	char *dir = realpath(slash == NULL ? "." : slash == copy ? "/" : copy, NULL);
	char *out = NULL;
	if (dir == NULL)
		*error_r = xasprintf("realpath(%s) failed: %s", path, strerror(errno));
	else
		out = xasprintf("%s/%s", strcmp(dir, "/") != 0 ? dir : "", name);
	free(dir);
	free(copy);
	return out;
}

static int configure(struct userdb *db, char **error_r)
{
	sqlite3_busy_timeout(db->db, USERDB_BUSY_TIMEOUT_MS);
	if (sqlite3_exec(db->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL,
			 NULL, NULL) != SQLITE_OK)
		return userdb_sql_error(db, "pragma", error_r);
	return 0;
}

struct userdb *userdb_open(const char *path, bool create, char **error_r)
{
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s is %s, not a regular file: refusing to open it", path,
				     S_ISLNK(st.st_mode) ? "a symbolic link" : "not a file");
		return NULL;
	}
	if (create && precreate(path, error_r) < 0)
		return NULL;
	/* A relative name stays relative (lib/sqlite_vfs.h): the server works
	   inside its data directory, whose parents it may not be allowed to
	   pass.  SQLite resolves no link in it, and lstat() above refused a
	   link as the file itself. */
	char *real = path[0] == '/' ? resolved_path(path, error_r) : xstrdup(path);
	if (real == NULL)
		return NULL;
	struct userdb *db = xcalloc(1, sizeof(*db));
	db->path = xstrdup(path);
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&db->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	sqlite_vfs_init();
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
	int rc = sqlite3_open_v2(real, &db->db, flags, NULL);
	free(real);
	if (rc != SQLITE_OK) {
		*error_r =
		    xasprintf("%s: %s", path, db->db != NULL ? sqlite3_errmsg(db->db) : "out of memory");
		userdb_close(&db);
		return NULL;
	}
	if (configure(db, error_r) < 0 || schema_migrate(db, error_r) < 0) {
		userdb_close(&db);
		return NULL;
	}
	return db;
}

void userdb_close(struct userdb **_db)
{
	struct userdb *db = *_db;
	if (db == NULL)
		return;
	*_db = NULL;
	for (size_t i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(db->stmts[i]);
	sqlite3_close(db->db);
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
}

/* ---- domains ---- */

int userdb_domain_exists_norm(struct userdb *db, const char *domain)
{
	sqlite3_stmt *stmt = userdb_stmt(db, STMT_DOMAIN_EXISTS);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	log_error("userdb domain lookup failed path=%s error=%s", db->path,
		  sqlite3_errmsg(db->db));
	return -1;
}

int userdb_domain_exists(struct userdb *db, const char *domain)
{
	const char *error;
	char *norm = userdb_normalize_domain(domain, &error);
	if (norm == NULL)
		return 0;
	userdb_lock(db);
	int rc = userdb_domain_exists_norm(db, norm);
	userdb_unlock(db);
	free(norm);
	return rc;
}

/* Normalises a domain for a command: NULL with *error_r set when invalid. */
static char *domain_arg(const char *domain, char **error_r)
{
	const char *error;
	char *norm = userdb_normalize_domain(domain, &error);
	if (norm == NULL)
		*error_r = xasprintf("%s: %s", error, domain);
	return norm;
}

int userdb_domain_add(struct userdb *db, const char *domain, char **error_r)
{
	char *norm = domain_arg(domain, error_r);
	if (norm == NULL)
		return -1;
	userdb_lock(db);
	int ret = -1;
	int exists = userdb_domain_exists_norm(db, norm);
	sqlite3_stmt *stmt = exists == 0 ? userdb_stmt(db, STMT_DOMAIN_ADD) : NULL;
	if (exists > 0) {
		*error_r = xasprintf("domain %s already exists", norm);
	} else if (stmt == NULL) {
		userdb_sql_error(db, "add domain", error_r);
	} else {
		sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)time(NULL));
		ret = userdb_exec_stmt(db, stmt) < 0 ? userdb_sql_error(db, "add domain", error_r)
						      : 0;
	}
	userdb_unlock(db);
	free(norm);
	return ret;
}

static int exec_bind1(struct userdb *db, enum userdb_stmt id, const char *arg)
{
	sqlite3_stmt *stmt = userdb_stmt(db, id);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_STATIC);
	return userdb_exec_stmt(db, stmt);
}

/* The users and aliases of a domain: 0 or -1. */
static int domain_counts(struct userdb *db, const char *domain, int *users_r, int *aliases_r)
{
	sqlite3_stmt *stmt = userdb_stmt(db, STMT_DOMAIN_USER_COUNT);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*users_r = sqlite3_column_int(stmt, 0);
		*aliases_r = sqlite3_column_int(stmt, 1);
	}
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int domain_del_locked(struct userdb *db, const char *norm, bool force, char **error_r)
{
	int exists = userdb_domain_exists_norm(db, norm);
	if (exists <= 0) {
		if (exists == 0)
			*error_r = xasprintf("domain %s does not exist", norm);
		return exists < 0 ? userdb_sql_error(db, "delete domain", error_r) : -1;
	}
	int users, aliases;
	if (domain_counts(db, norm, &users, &aliases) < 0)
		return userdb_sql_error(db, "delete domain", error_r);
	if (users + aliases > 0 && !force) {
		*error_r = xasprintf("domain %s still has %d user%s and %d alias%s", norm, users,
				     users == 1 ? "" : "s", aliases, aliases == 1 ? "" : "es");
		return -1;
	}
	if (userdb_begin(db, error_r) < 0)
		return -1;
	if (exec_bind1(db, STMT_DOMAIN_DEL_ALIAS_TARGETS, norm) < 0 ||
	    exec_bind1(db, STMT_DOMAIN_DEL_ALIASES, norm) < 0 ||
	    exec_bind1(db, STMT_DOMAIN_DEL_USERS, norm) < 0 ||
	    exec_bind1(db, STMT_DOMAIN_DEL, norm) < 0) {
		userdb_sql_error(db, "delete domain", error_r);
		userdb_rollback(db);
		return -1;
	}
	return userdb_commit(db, error_r);
}

int userdb_domain_del(struct userdb *db, const char *domain, bool force, char **error_r)
{
	char *norm = domain_arg(domain, error_r);
	if (norm == NULL)
		return -1;
	userdb_lock(db);
	int ret = domain_del_locked(db, norm, force, error_r);
	userdb_unlock(db);
	free(norm);
	return ret;
}

int userdb_domain_list(struct userdb *db,
		       int (*cb)(void *ctx, const char *domain, unsigned users, int64_t created),
		       void *ctx, char **error_r)
{
	userdb_lock(db);
	sqlite3_stmt *stmt = userdb_stmt(db, STMT_DOMAIN_LIST);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			if (cb(ctx, (const char *)sqlite3_column_text(stmt, 0),
			       (unsigned)sqlite3_column_int(stmt, 2),
			       sqlite3_column_int64(stmt, 1)) != 0) {
				rc = SQLITE_DONE;
				break;
			}
		}
		sqlite3_reset(stmt);
	}
	int ret = rc == SQLITE_DONE ? 0 : userdb_sql_error(db, "list domains", error_r);
	userdb_unlock(db);
	return ret;
}
