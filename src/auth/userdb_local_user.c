/* The user database backend "local" (SQLite): users and alias rows.  Every
   operation takes the handle's lock: the cached statements are shared. */
#include "auth/userdb_local_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- users ---- */

static char *column_dup(sqlite3_stmt *stmt, int col)
{
	const unsigned char *text = sqlite3_column_text(stmt, col);
	return xstrdup(text != NULL ? (const char *)text : "");
}

static void user_from_row(sqlite3_stmt *stmt, struct userdb_user *user_r)
{
	user_r->address = column_dup(stmt, 0);
	user_r->local = column_dup(stmt, 1);
	user_r->domain = column_dup(stmt, 2);
	user_r->password_hash = column_dup(stmt, 3);
	sqlite3_int64 quota = sqlite3_column_int64(stmt, 4);
	user_r->quota = quota > 0 ? (uint64_t)quota : 0;
	user_r->created = sqlite3_column_int64(stmt, 5);
}

static sqlite3_int64 quota_column(uint64_t quota)
{
	return (sqlite3_int64)(quota > INT64_MAX ? INT64_MAX : quota);
}

int userdb_local_user_lookup(struct userdb *base, const char *address, struct userdb_user *user_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	memset(user_r, 0, sizeof(*user_r));
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, STMT_USER_LOOKUP);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW)
			user_from_row(stmt, user_r);
		else if (rc != SQLITE_DONE)
			log_error("userdb user lookup failed path=%s error=%s", db->path,
				  sqlite3_errmsg(db->db));
		sqlite3_reset(stmt);
	}
	userdb_local_unlock(db);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int userdb_local_user_add(struct userdb *base, const char *address, const char *hash, uint64_t quota,
			  char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	const char *domain = userdb_address_domain(address);
	userdb_local_lock(db);
	int ret = -1;
	sqlite3_stmt *stmt = userdb_local_stmt(db, STMT_USER_ADD);
	if (stmt == NULL) {
		userdb_local_error(db, "add user", error_r);
	} else {
		sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, address, (int)(domain - 1 - address), SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 4, hash, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 5, quota_column(quota));
		sqlite3_bind_int64(stmt, 6, (sqlite3_int64)time(NULL));
		if (userdb_local_exec_stmt(db, stmt) == 0)
			ret = 1;
		else if (sqlite3_extended_errcode(db->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
			ret = 0;
		else
			userdb_local_error(db, "add user", error_r);
	}
	userdb_local_unlock(db);
	return ret;
}

/* Runs an UPDATE of one user (?1 address, ?2 value): 1 changed, 0 no such
   user, -1 error. */
static int user_update(struct userdb *base, enum userdb_stmt id, const char *address, const char *text,
		       sqlite3_int64 number, char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	int ret = -1;
	sqlite3_stmt *stmt = userdb_local_stmt(db, id);
	if (stmt == NULL) {
		userdb_local_error(db, "update user", error_r);
	} else {
		sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
		if (text != NULL)
			sqlite3_bind_text(stmt, 2, text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(stmt, 2, number);
		if (userdb_local_exec_stmt(db, stmt) < 0)
			userdb_local_error(db, "update user", error_r);
		else
			ret = sqlite3_changes(db->db) > 0 ? 1 : 0;
	}
	userdb_local_unlock(db);
	return ret;
}

int userdb_local_user_set_password(struct userdb *db, const char *address, const char *hash, char **error_r)
{
	return user_update(db, STMT_USER_PASSWD, address, hash, 0, error_r);
}

int userdb_local_user_set_quota(struct userdb *db, const char *address, uint64_t quota, char **error_r)
{
	return user_update(db, STMT_USER_QUOTA, address, NULL, quota_column(quota), error_r);
}

static int user_del_locked(struct userdb_local *db, const char *address, char **error_r)
{
	if (userdb_local_begin(db, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = userdb_local_stmt(db, STMT_USER_DEL);
	if (stmt == NULL)
		goto fail;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	if (userdb_local_exec_stmt(db, stmt) < 0)
		goto fail;
	if (sqlite3_changes(db->db) == 0) {
		userdb_local_rollback(db);
		return 0;
	}
	stmt = userdb_local_stmt(db, STMT_USER_DEL_ALIAS_TARGETS);
	if (stmt == NULL)
		goto fail;
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	if (userdb_local_exec_stmt(db, stmt) < 0)
		goto fail;
	return userdb_local_commit(db, error_r) < 0 ? -1 : 1;
fail:
	userdb_local_error(db, "delete user", error_r);
	userdb_local_rollback(db);
	return -1;
}

int userdb_local_user_del(struct userdb *base, const char *address, char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	int ret = user_del_locked(db, address, error_r);
	userdb_local_unlock(db);
	return ret;
}

int userdb_local_user_list(struct userdb *base, const char *domain,
			   int (*cb)(void *ctx, const struct userdb_user *user), void *ctx, char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, domain != NULL ? STMT_USER_LIST_DOMAIN : STMT_USER_LIST);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		if (domain != NULL)
			sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			struct userdb_user user;
			user_from_row(stmt, &user);
			int stop = cb(ctx, &user);
			userdb_user_free(&user);
			if (stop != 0) {
				rc = SQLITE_DONE;
				break;
			}
		}
		sqlite3_reset(stmt);
	}
	int ret = rc == SQLITE_DONE ? 0 : userdb_local_error(db, "list users", error_r);
	userdb_local_unlock(db);
	return ret;
}

int userdb_local_user_first(struct userdb *base, const char *domain, char **address_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, domain != NULL ? STMT_DOMAIN_FIRST_USER : STMT_FIRST_USER);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		if (domain != NULL)
			sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW)
			*address_r = column_dup(stmt, 0);
		else if (rc != SQLITE_DONE)
			log_error("userdb first user lookup failed path=%s error=%s", db->path,
				  sqlite3_errmsg(db->db));
		sqlite3_reset(stmt);
	}
	userdb_local_unlock(db);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* ---- alias rows ---- */

int userdb_local_alias_add(struct userdb *base, const char *source, const char *domain, const char *target,
			   char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, STMT_ALIAS_ADD);
	int ret = -1;
	if (stmt == NULL) {
		userdb_local_error(db, "add alias", error_r);
	} else {
		sqlite3_bind_text(stmt, 1, source, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, target, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, domain, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 4, (sqlite3_int64)time(NULL));
		if (userdb_local_exec_stmt(db, stmt) == 0)
			ret = 1;
		else if (sqlite3_extended_errcode(db->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
			ret = 0;
		else
			userdb_local_error(db, "add alias", error_r);
	}
	userdb_local_unlock(db);
	return ret;
}

int userdb_local_alias_del(struct userdb *base, const char *source, const char *target, char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, target != NULL ? STMT_ALIAS_DEL : STMT_ALIAS_DEL_SOURCE);
	int ret = -1;
	if (stmt == NULL) {
		userdb_local_error(db, "delete alias", error_r);
	} else {
		sqlite3_bind_text(stmt, 1, source, -1, SQLITE_STATIC);
		if (target != NULL)
			sqlite3_bind_text(stmt, 2, target, -1, SQLITE_STATIC);
		if (userdb_local_exec_stmt(db, stmt) < 0)
			userdb_local_error(db, "delete alias", error_r);
		else
			ret = sqlite3_changes(db->db) > 0 ? 1 : 0;
	}
	userdb_local_unlock(db);
	return ret;
}

int userdb_local_alias_list(struct userdb *base, const char *domain,
			    int (*cb)(void *ctx, const char *source, const char *target), void *ctx,
			    char **error_r)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, domain != NULL ? STMT_ALIAS_LIST_DOMAIN : STMT_ALIAS_LIST);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		if (domain != NULL)
			sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			if (cb(ctx, (const char *)sqlite3_column_text(stmt, 0),
			       (const char *)sqlite3_column_text(stmt, 1)) != 0) {
				rc = SQLITE_DONE;
				break;
			}
		}
		sqlite3_reset(stmt);
	}
	int ret = rc == SQLITE_DONE ? 0 : userdb_local_error(db, "list aliases", error_r);
	userdb_local_unlock(db);
	return ret;
}

int userdb_local_alias_targets(struct userdb *base, const char *source, struct strlist *targets)
{
	struct userdb_local *db = userdb_local_cast(base);
	userdb_local_lock(db);
	sqlite3_stmt *stmt = userdb_local_stmt(db, STMT_ALIAS_TARGETS);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		sqlite3_bind_text(stmt, 1, source, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
			strlist_add(targets, (const char *)sqlite3_column_text(stmt, 0));
		sqlite3_reset(stmt);
	}
	if (rc != SQLITE_DONE)
		log_error("userdb alias lookup failed path=%s error=%s", db->path, sqlite3_errmsg(db->db));
	userdb_local_unlock(db);
	return rc == SQLITE_DONE ? 0 : -1;
}
