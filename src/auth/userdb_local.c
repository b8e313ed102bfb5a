/* The user database backend "local" (SQLite, DATA_DIR/users.db): handle,
   schema and migrations, statement cache, domains, and the table of
   operations.  Users and alias rows are in userdb_local_user.c. */
#include "auth/userdb_local_private.h"
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

void userdb_local_lock(struct userdb_local *db)
{
	pthread_mutex_lock(&db->lock);
}

void userdb_local_unlock(struct userdb_local *db)
{
	pthread_mutex_unlock(&db->lock);
}

int userdb_local_error(struct userdb_local *db, const char *what, char **error_r)
{
	if (error_r != NULL)
		*error_r = xasprintf("%s: %s: %s", db->path, what, sqlite3_errmsg(db->db));
	return -1;
}

sqlite3_stmt *userdb_local_stmt(struct userdb_local *db, enum userdb_stmt id)
{
	sqlite3_stmt *stmt = db->stmts[id];
	if (stmt == NULL) {
		if (sqlite3_prepare_v3(db->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
		    SQLITE_OK) {
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

int userdb_local_exec_stmt(struct userdb_local *db, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

static int exec_id(struct userdb_local *db, enum userdb_stmt id)
{
	sqlite3_stmt *stmt = userdb_local_stmt(db, id);
	return stmt == NULL ? -1 : userdb_local_exec_stmt(db, stmt);
}

int userdb_local_begin(struct userdb_local *db, char **error_r)
{
	return exec_id(db, STMT_BEGIN) < 0 ? userdb_local_error(db, "begin", error_r) : 0;
}

int userdb_local_commit(struct userdb_local *db, char **error_r)
{
	if (exec_id(db, STMT_COMMIT) < 0) {
		userdb_local_error(db, "commit", error_r);
		userdb_local_rollback(db);
		return -1;
	}
	return 0;
}

void userdb_local_rollback(struct userdb_local *db)
{
	if (!sqlite3_get_autocommit(db->db))
		(void)exec_id(db, STMT_ROLLBACK);
}

static int schema_version(struct userdb_local *db, int *version_r)
{
	sqlite3_stmt *stmt;
	*version_r = 0;
	if (sqlite3_prepare_v2(db->db, "SELECT name FROM sqlite_master WHERE name = 'schema_version'", -1,
			       &stmt, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return -1;
	if (sqlite3_prepare_v2(db->db, "SELECT max(version) FROM schema_version", -1, &stmt, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		*version_r = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return 0;
}

/* Brings the schema to USERDB_SCHEMA_VERSION inside one write transaction,
   so concurrent openers (CLI and server) do not both migrate. */
static int schema_migrate(struct userdb_local *db, char **error_r)
{
	int version;
	if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return userdb_local_error(db, "begin", error_r);
	if (schema_version(db, &version) < 0)
		goto fail;
	if (version > USERDB_SCHEMA_VERSION) {
		sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
		*error_r = xasprintf("%s: schema version %d is newer than this program (%d)", db->path,
				     version, USERDB_SCHEMA_VERSION);
		return -1;
	}
	if (version == 0 && sqlite3_exec(db->db,
					 "CREATE TABLE schema_version (version INTEGER NOT NULL, "
					 "applied INTEGER NOT NULL)",
					 NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	for (; version < USERDB_SCHEMA_VERSION; version++) {
		char *sql = xasprintf("%s INSERT INTO schema_version VALUES (%d, %lld);",
				      schema_migrations[version], version + 1, (long long)time(NULL));
		int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
		free(sql);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	userdb_local_error(db, "schema", error_r);
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

static int configure(struct userdb_local *db, char **error_r)
{
	sqlite3_busy_timeout(db->db, USERDB_BUSY_TIMEOUT_MS);
	if (sqlite3_exec(db->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return userdb_local_error(db, "pragma", error_r);
	return 0;
}

static void local_free(struct userdb_local *db)
{
	for (size_t i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(db->stmts[i]);
	sqlite3_close(db->db);
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
}

static struct userdb *local_open(const char *path, bool create, char **error_r)
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
	struct userdb_local *db = xcalloc(1, sizeof(*db));
	db->base.be = &userdb_backend_local;
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
		local_free(db);
		return NULL;
	}
	if (configure(db, error_r) < 0 || schema_migrate(db, error_r) < 0) {
		local_free(db);
		return NULL;
	}
	return &db->base;
}

static void local_close(struct userdb *base)
{
	local_free(userdb_local_cast(base));
}

/* ---- domains ---- */

static int local_domain_exists(struct userdb *base, const char *domain)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, STMT_DOMAIN_EXISTS);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		log_error("userdb domain lookup failed path=%s error=%s", db->path, sqlite3_errmsg(db->db));
	userdb_local_unlock(db);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int local_domain_add(struct userdb *base, const char *domain, char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	int ret = -1;
	sqlite3_stmt *stmt = userdb_local_stmt(db, STMT_DOMAIN_ADD);
	if (stmt == NULL) {
		userdb_local_error(db, "add domain", error_r);
	} else {
		sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)time(NULL));
		if (userdb_local_exec_stmt(db, stmt) == 0)
			ret = 1;
		else if (sqlite3_extended_errcode(db->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
			ret = 0;
		else
			userdb_local_error(db, "add domain", error_r);
	}
	userdb_local_unlock(db);
	return ret;
}

static int local_domain_usage(struct userdb *base, const char *domain, unsigned *users_r, unsigned *aliases_r,
			      char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, STMT_DOMAIN_USER_COUNT);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			*users_r = (unsigned)sqlite3_column_int(stmt, 0);
			*aliases_r = (unsigned)sqlite3_column_int(stmt, 1);
		}
		sqlite3_reset(stmt);
	}
	int ret = rc == SQLITE_ROW ? 0 : userdb_local_error(db, "count domain users", error_r);
	userdb_local_unlock(db);
	return ret;
}

static int exec_bind1(struct userdb_local *db, enum userdb_stmt id, const char *arg)
{
	sqlite3_stmt *stmt = userdb_local_stmt(db, id);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_STATIC);
	return userdb_local_exec_stmt(db, stmt);
}

static int domain_del_locked(struct userdb_local *db, const char *domain, char **error_r)
{
	if (userdb_local_begin(db, error_r) < 0)
		return -1;
	if (exec_bind1(db, STMT_DOMAIN_DEL_ALIAS_TARGETS, domain) < 0 ||
	    exec_bind1(db, STMT_DOMAIN_DEL_ALIASES, domain) < 0 ||
	    exec_bind1(db, STMT_DOMAIN_DEL_USERS, domain) < 0 ||
	    exec_bind1(db, STMT_DOMAIN_DEL, domain) < 0) {
		userdb_local_error(db, "delete domain", error_r);
		userdb_local_rollback(db);
		return -1;
	}
	return userdb_local_commit(db, error_r);
}

static int local_domain_del(struct userdb *base, const char *domain, char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	int ret = domain_del_locked(db, domain, error_r);
	userdb_local_unlock(db);
	return ret;
}

static int local_domain_list(struct userdb *base,
			     int (*cb)(void *ctx, const char *domain, unsigned users, int64_t created),
			     void *ctx, char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, STMT_DOMAIN_LIST);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			if (cb(ctx, (const char *)sqlite3_column_text(stmt, 0),
			       (unsigned)sqlite3_column_int(stmt, 2), sqlite3_column_int64(stmt, 1)) != 0) {
				rc = SQLITE_DONE;
				break;
			}
		}
		sqlite3_reset(stmt);
	}
	int ret = rc == SQLITE_DONE ? 0 : userdb_local_error(db, "list domains", error_r);
	userdb_local_unlock(db);
	return ret;
}

/* ---- the table ---- */

const struct userdb_backend userdb_backend_local = {
    .name = "local",
    .open = local_open,
    .close = local_close,
    .domain_add = local_domain_add,
    .domain_exists = local_domain_exists,
    .domain_usage = local_domain_usage,
    .domain_del = local_domain_del,
    .domain_list = local_domain_list,
    .user_add = userdb_local_user_add,
    .user_lookup = userdb_local_user_lookup,
    .user_set_password = userdb_local_user_set_password,
    .user_set_quota = userdb_local_user_set_quota,
    .user_del = userdb_local_user_del,
    .user_list = userdb_local_user_list,
    .user_first = userdb_local_user_first,
    .alias_add = userdb_local_alias_add,
    .alias_del = userdb_local_alias_del,
    .alias_list = userdb_local_alias_list,
    .alias_targets = userdb_local_alias_targets,
};

struct userdb_local *userdb_local_cast(struct userdb *db)
{
	if (db->be != &userdb_backend_local)
		log_panic("userdb handle of backend %s given to the local backend", db->be->name);
	return (struct userdb_local *)db;
}
