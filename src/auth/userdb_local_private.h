#ifndef AUTH_USERDB_LOCAL_PRIVATE_H
#define AUTH_USERDB_LOCAL_PRIVATE_H
/* Internals of the user database backend "local" (SQLite), shared by
   userdb_local.c (handle, schema, statements, domains) and
   userdb_local_user.c (users, alias rows). */
#include "auth/userdb_backend.h"
#include "auth/userdb_private.h"

#include <pthread.h>
#include <sqlite3.h>

/* Every statement the backend runs, prepared on first use and cached in
   the handle. */
enum userdb_stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_DOMAIN_ADD,
	STMT_DOMAIN_DEL,
	STMT_DOMAIN_EXISTS,
	STMT_DOMAIN_LIST,
	STMT_DOMAIN_USER_COUNT,
	STMT_DOMAIN_DEL_USERS,
	STMT_DOMAIN_DEL_ALIASES,
	STMT_DOMAIN_DEL_ALIAS_TARGETS,
	STMT_DOMAIN_FIRST_USER,
	STMT_FIRST_USER,
	STMT_USER_ADD,
	STMT_USER_DEL,
	STMT_USER_DEL_ALIAS_TARGETS,
	STMT_USER_PASSWD,
	STMT_USER_QUOTA,
	STMT_USER_LOOKUP,
	STMT_USER_LIST,
	STMT_USER_LIST_DOMAIN,
	STMT_ALIAS_ADD,
	STMT_ALIAS_EXISTS,
	STMT_ALIAS_DEL,
	STMT_ALIAS_DEL_SOURCE,
	STMT_ALIAS_TARGETS,
	STMT_ALIAS_LIST,
	STMT_ALIAS_LIST_DOMAIN,
	STMT_COUNT
};

struct userdb_local {
	struct userdb base; /* the interface's part: first */
	sqlite3 *db;
	char *path;
	/* One operation at a time: the cached statements are shared state.
	   Recursive because resolve() calls lookups that also lock. */
	pthread_mutex_t lock;
	sqlite3_stmt *stmts[STMT_COUNT];
};

/* Downcast of the interface's handle, which must be this backend's. */
struct userdb_local *userdb_local_cast(struct userdb *db);

/* Returns the cached, reset statement id (bindings cleared), or NULL with
   the error logged. */
sqlite3_stmt *userdb_local_stmt(struct userdb_local *db, enum userdb_stmt id);
/* Runs a statement without result rows to completion: 0 or -1. */
int userdb_local_exec_stmt(struct userdb_local *db, sqlite3_stmt *stmt);
/* Sets *error_r to "PATH: what: sqlite message" and returns -1. */
int userdb_local_error(struct userdb_local *db, const char *what, char **error_r);
void userdb_local_lock(struct userdb_local *db);
void userdb_local_unlock(struct userdb_local *db);
int userdb_local_begin(struct userdb_local *db, char **error_r);
int userdb_local_commit(struct userdb_local *db, char **error_r);
void userdb_local_rollback(struct userdb_local *db);

/* ---- the operations (userdb_backend.h); userdb_local.c holds the table ---- */

/* userdb_local_user.c */
int userdb_local_user_add(struct userdb *db, const char *address, const char *hash, uint64_t quota,
			  char **error_r);
int userdb_local_user_lookup(struct userdb *db, const char *address, struct userdb_user *user_r);
int userdb_local_user_set_password(struct userdb *db, const char *address, const char *hash, char **error_r);
int userdb_local_user_set_quota(struct userdb *db, const char *address, uint64_t quota, char **error_r);
int userdb_local_user_del(struct userdb *db, const char *address, char **error_r);
int userdb_local_user_list(struct userdb *db, const char *domain,
			   int (*cb)(void *ctx, const struct userdb_user *user), void *ctx, char **error_r);
int userdb_local_user_first(struct userdb *db, const char *domain, char **address_r);
int userdb_local_alias_add(struct userdb *db, const char *source, const char *domain, const char *target,
			   char **error_r);
int userdb_local_alias_del(struct userdb *db, const char *source, const char *target, char **error_r);
int userdb_local_alias_list(struct userdb *db, const char *domain,
			    int (*cb)(void *ctx, const char *source, const char *target), void *ctx,
			    char **error_r);
int userdb_local_alias_targets(struct userdb *db, const char *source, struct strlist *targets);
#endif
