#ifndef AUTH_USERDB_BACKEND_H
#define AUTH_USERDB_BACKEND_H
/* What a user database backend implements: storage of domains, users and
   alias rows, nothing more.  The policy of userdb.h (normal forms,
   password hashing and verification, messages, alias resolution,
   catch-alls, postmaster, the sender check) lives once in userdb.c and
   userdb_alias.c above this table, so every backend resolves alike.
   Engines never include this header.  The backends are "local" (SQLite,
   DATA_DIR/users.db, userdb_local*.c) and "postgresql" (userdb_pg.c), in
   userdb.c's registry.

   Every name an operation receives is already in the normal form of
   userdb.h: domains as lowercase A-labels, addresses "local@domain", alias
   sources "local@domain" or "@domain", alias targets as userdb_alias_add()
   stores them.  Operations are safe to call from several threads on one
   handle (the local backend serialises them). */
#include "auth/userdb.h"
#include "lib/strlist.h"

struct userdb_backend;

/* The part of a handle the dispatchers read; a backend's handle embeds it
   as its first member. */
struct userdb {
	const struct userdb_backend *be;
};

struct userdb_backend {
	const char *name;
	/* Operations are network round trips (userdb_lookups_block()). */
	bool lookups_block;

	/* location: what the backend opens (local: the database file).  With
	   create the storage is made when missing.  The backend sets the
	   returned handle's be.  NULL with *error_r. */
	struct userdb *(*open)(const char *location, bool create, char **error_r);
	void (*close)(struct userdb *db);

	/* ---- domains ---- */
	/* 1 added, 0 already there, -1 error. */
	int (*domain_add)(struct userdb *db, const char *domain, char **error_r);
	/* 1 yes, 0 no, -1 error (logged). */
	int (*domain_exists)(struct userdb *db, const char *domain);
	/* The users of the domain and the alias rows whose source is in it. */
	int (*domain_usage)(struct userdb *db, const char *domain, unsigned *users_r, unsigned *aliases_r,
			    char **error_r);
	/* Removes the domain, its users, its alias rows and the alias rows
	   whose target is one of its users, all at once.  0 or -1. */
	int (*domain_del)(struct userdb *db, const char *domain, char **error_r);
	/* In name order; cb's non-zero return stops the walk. */
	int (*domain_list)(struct userdb *db,
			   int (*cb)(void *ctx, const char *domain, unsigned users, int64_t created),
			   void *ctx, char **error_r);

	/* ---- users ---- */
	/* 1 added, 0 the address exists, -1 error.  The caller has checked
	   that the domain exists. */
	int (*user_add)(struct userdb *db, const char *address, const char *hash, uint64_t quota,
			char **error_r);
	/* 1 found (*user_r filled, freed with userdb_user_free), 0 not found,
	   -1 error (logged). */
	int (*user_lookup)(struct userdb *db, const char *address, struct userdb_user *user_r);
	/* 1 changed, 0 no such user, -1 error. */
	int (*user_set_password)(struct userdb *db, const char *address, const char *hash, char **error_r);
	int (*user_set_quota)(struct userdb *db, const char *address, uint64_t quota, char **error_r);
	/* Removes the user and every alias row whose target is the user, at
	   once: 1 removed, 0 no such user, -1 error. */
	int (*user_del)(struct userdb *db, const char *address, char **error_r);
	/* Of domain, or all when NULL, in address order (domain, local). */
	int (*user_list)(struct userdb *db, const char *domain,
			 int (*cb)(void *ctx, const struct userdb_user *user), void *ctx, char **error_r);
	/* The first user by creation order of domain (of all domains when
	   NULL): 1 with *address_r (caller frees), 0 none, -1 error (logged). */
	int (*user_first)(struct userdb *db, const char *domain, char **address_r);

	/* ---- alias rows ---- */
	/* domain is the source's domain.  1 added, 0 the pair exists, -1. */
	int (*alias_add)(struct userdb *db, const char *source, const char *domain, const char *target,
			 char **error_r);
	/* Removes (source, target), target compared without case, or every
	   row of source when target is NULL: 1 removed, 0 none, -1 error. */
	int (*alias_del)(struct userdb *db, const char *source, const char *target, char **error_r);
	/* Rows of domain (or all) ordered by source, target. */
	int (*alias_list)(struct userdb *db, const char *domain,
			  int (*cb)(void *ctx, const char *source, const char *target), void *ctx,
			  char **error_r);
	/* Appends the targets of source, in the order they were added.  0 or
	   -1 (logged). */
	int (*alias_targets)(struct userdb *db, const char *source, struct strlist *targets);
};

/* The backends, by name (userdb.c keeps the registry). */
extern const struct userdb_backend userdb_backend_local;
/* "postgresql" (userdb_pg.c): location is a libpq conninfo; create
   applies the pending schema migrations (lib/pg_schema.h), without it the
   user tables must exist (postoffice db init). */
extern const struct userdb_backend userdb_backend_pg;

/* The backend called name, or NULL. */
const struct userdb_backend *userdb_backend_find(const char *name);
#endif
