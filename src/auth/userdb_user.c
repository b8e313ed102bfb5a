/* The user database: users (add, passwd, quota, delete, lookup, list) and
   authentication. */
#include "auth/userdb_private.h"
#include "auth/password.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Normalises an address for a command: NULL with *error_r when invalid. */
static char *address_arg(const char *address, char **error_r)
{
	const char *error;
	char *norm = userdb_normalize_address(address, &error);
	if (norm == NULL)
		*error_r = xasprintf("%s: %s", error, address);
	return norm;
}

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

void userdb_user_free(struct userdb_user *user)
{
	free(user->address);
	if (user->password_hash != NULL)
		explicit_bzero(user->password_hash, strlen(user->password_hash));
	free(user->local);
	free(user->domain);
	free(user->password_hash);
	memset(user, 0, sizeof(*user));
}

/* Lookup of a normalised address, lock held. */
static int lookup_norm(struct userdb *db, const char *norm, struct userdb_user *user_r)
{
	memset(user_r, 0, sizeof(*user_r));
	sqlite3_stmt *stmt = userdb_stmt(db, STMT_USER_LOOKUP);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		user_from_row(stmt, user_r);
	else if (rc != SQLITE_DONE)
		log_error("userdb user lookup failed path=%s error=%s", db->path,
			  sqlite3_errmsg(db->db));
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int userdb_user_lookup(struct userdb *db, const char *address, struct userdb_user *user_r)
{
	const char *error;
	memset(user_r, 0, sizeof(*user_r));
	char *norm = userdb_normalize_address(address, &error);
	if (norm == NULL)
		return 0;
	userdb_lock(db);
	int rc = lookup_norm(db, norm, user_r);
	userdb_unlock(db);
	free(norm);
	return rc;
}

static int user_insert(struct userdb *db, const char *norm, const char *hash, uint64_t quota,
		       char **error_r)
{
	const char *domain = userdb_address_domain(norm);
	int exists = userdb_domain_exists_norm(db, domain);
	if (exists <= 0) {
		if (exists == 0)
			*error_r = xasprintf("domain %s does not exist: add it with "
					     "postoffice domain add %s",
					     domain, domain);
		return exists < 0 ? userdb_sql_error(db, "add user", error_r) : -1;
	}
	struct userdb_user old;
	int found = lookup_norm(db, norm, &old);
	if (found != 0) {
		if (found > 0) {
			*error_r = xasprintf("user %s already exists", norm);
			userdb_user_free(&old);
		}
		return found < 0 ? userdb_sql_error(db, "add user", error_r) : -1;
	}
	sqlite3_stmt *stmt = userdb_stmt(db, STMT_USER_ADD);
	if (stmt == NULL)
		return userdb_sql_error(db, "add user", error_r);
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, norm, (int)(domain - 1 - norm), SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, (sqlite3_int64)(quota > INT64_MAX ? INT64_MAX : quota));
	sqlite3_bind_int64(stmt, 6, (sqlite3_int64)time(NULL));
	if (userdb_exec_stmt(db, stmt) < 0)
		return userdb_sql_error(db, "add user", error_r);
	return 0;
}

int userdb_user_add_hash(struct userdb *db, const char *address, const char *hash,
			 uint64_t quota, char **error_r)
{
	char *norm = address_arg(address, error_r);
	if (norm == NULL)
		return -1;
	userdb_lock(db);
	int ret = user_insert(db, norm, hash, quota, error_r);
	userdb_unlock(db);
	free(norm);
	return ret;
}

static int hash_arg(const char *password, char **hash_r, char **error_r)
{
	if (password[0] == '\0') {
		*error_r = xstrdup("the password is empty");
		return -1;
	}
	if (strlen(password) > PASSWORD_MAX_LEN) {
		*error_r = xasprintf("the password is longer than %d bytes", PASSWORD_MAX_LEN);
		return -1;
	}
	if (password_hash(password, hash_r) < 0) {
		*error_r = xstrdup("hashing the password failed (see the log)");
		return -1;
	}
	return 0;
}

int userdb_user_add(struct userdb *db, const char *address, const char *password,
		    uint64_t quota, char **error_r)
{
	char *hash;
	if (hash_arg(password, &hash, error_r) < 0)
		return -1;
	int ret = userdb_user_add_hash(db, address, hash, quota, error_r);
	free(hash);
	return ret;
}

/* Runs an UPDATE of one user (?1 address, ?2 value) and reports a missing
   user. */
static int user_update(struct userdb *db, enum userdb_stmt id, const char *address,
		       const char *text, sqlite3_int64 number, char **error_r)
{
	char *norm = address_arg(address, error_r);
	if (norm == NULL)
		return -1;
	userdb_lock(db);
	int ret = -1;
	sqlite3_stmt *stmt = userdb_stmt(db, id);
	if (stmt == NULL) {
		userdb_sql_error(db, "update user", error_r);
	} else {
		sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
		if (text != NULL)
			sqlite3_bind_text(stmt, 2, text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(stmt, 2, number);
		if (userdb_exec_stmt(db, stmt) < 0)
			userdb_sql_error(db, "update user", error_r);
		else if (sqlite3_changes(db->db) == 0)
			*error_r = xasprintf("user %s does not exist", norm);
		else
			ret = 0;
	}
	userdb_unlock(db);
	free(norm);
	return ret;
}

int userdb_user_passwd(struct userdb *db, const char *address, const char *password,
		       char **error_r)
{
	char *hash;
	if (hash_arg(password, &hash, error_r) < 0)
		return -1;
	int ret = user_update(db, STMT_USER_PASSWD, address, hash, 0, error_r);
	free(hash);
	return ret;
}

int userdb_user_set_quota(struct userdb *db, const char *address, uint64_t quota,
			  char **error_r)
{
	return user_update(db, STMT_USER_QUOTA, address, NULL,
			   (sqlite3_int64)(quota > INT64_MAX ? INT64_MAX : quota), error_r);
}

static int user_del_locked(struct userdb *db, const char *norm, char **error_r)
{
	if (userdb_begin(db, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = userdb_stmt(db, STMT_USER_DEL);
	if (stmt == NULL)
		goto fail;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	if (userdb_exec_stmt(db, stmt) < 0)
		goto fail;
	if (sqlite3_changes(db->db) == 0) {
		userdb_rollback(db);
		*error_r = xasprintf("user %s does not exist", norm);
		return -1;
	}
	stmt = userdb_stmt(db, STMT_USER_DEL_ALIAS_TARGETS);
	if (stmt == NULL)
		goto fail;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	if (userdb_exec_stmt(db, stmt) < 0)
		goto fail;
	return userdb_commit(db, error_r);
fail:
	userdb_sql_error(db, "delete user", error_r);
	userdb_rollback(db);
	return -1;
}

int userdb_user_del(struct userdb *db, const char *address, char **error_r)
{
	char *norm = address_arg(address, error_r);
	if (norm == NULL)
		return -1;
	userdb_lock(db);
	int ret = user_del_locked(db, norm, error_r);
	userdb_unlock(db);
	free(norm);
	return ret;
}

int userdb_user_list(struct userdb *db, const char *domain,
		     int (*cb)(void *ctx, const struct userdb_user *user), void *ctx,
		     char **error_r)
{
	char *norm = NULL;
	if (domain != NULL) {
		const char *error;
		if ((norm = userdb_normalize_domain(domain, &error)) == NULL) {
			*error_r = xasprintf("%s: %s", error, domain);
			return -1;
		}
	}
	userdb_lock(db);
	sqlite3_stmt *stmt = userdb_stmt(db, norm != NULL ? STMT_USER_LIST_DOMAIN : STMT_USER_LIST);
	int rc = SQLITE_ERROR;
	if (stmt != NULL) {
		if (norm != NULL)
			sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
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
	int ret = rc == SQLITE_DONE ? 0 : userdb_sql_error(db, "list users", error_r);
	userdb_unlock(db);
	free(norm);
	return ret;
}

int userdb_authenticate(struct userdb *db, const char *address, const char *password,
			char **address_r)
{
	struct userdb_user user;
	*address_r = NULL;
	int found = userdb_user_lookup(db, address, &user);
	if (found < 0)
		return -1;
	/* Verify against a dummy hash when the user is missing: the same cost
	   either way, so timing does not reveal which users exist. */
	int ok = password_verify(password, found > 0 ? user.password_hash : NULL);
	if (found > 0 && ok)
		*address_r = xstrdup(user.address);
	if (found > 0)
		userdb_user_free(&user);
	return found > 0 && ok ? 1 : 0;
}
