#ifndef AUTH_USERDB_PRIVATE_H
#define AUTH_USERDB_PRIVATE_H
/* Internals shared by userdb.c (handle, schema, domains, users) and
   userdb_alias.c (aliases, resolution). */
#include "auth/userdb.h"

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

struct userdb {
	sqlite3 *db;
	char *path;
	/* One operation at a time: the cached statements are shared state.
	   Recursive because resolve() calls lookups that also lock. */
	pthread_mutex_t lock;
	sqlite3_stmt *stmts[STMT_COUNT];
};

/* Returns the cached, reset statement id (bindings cleared), or NULL with
   the error logged. */
sqlite3_stmt *userdb_stmt(struct userdb *db, enum userdb_stmt id);
/* Runs a statement without result rows to completion: 0 or -1. */
int userdb_exec_stmt(struct userdb *db, sqlite3_stmt *stmt);
/* Sets *error_r to "PATH: sqlite message" and returns -1. */
int userdb_sql_error(struct userdb *db, const char *what, char **error_r);
void userdb_lock(struct userdb *db);
void userdb_unlock(struct userdb *db);
int userdb_begin(struct userdb *db, char **error_r);
int userdb_commit(struct userdb *db, char **error_r);
void userdb_rollback(struct userdb *db);
/* domain_exists for an already normalised name, lock held. */
int userdb_domain_exists_norm(struct userdb *db, const char *domain);
/* Splits a normalised address at its last '@' (domain points into it). */
const char *userdb_address_domain(const char *address);
#endif
