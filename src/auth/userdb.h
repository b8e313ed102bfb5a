#ifndef AUTH_USERDB_H
#define AUTH_USERDB_H
/* The user database: local domains, users (address, yescrypt hash, quota)
   and aliases.  Protocol engines only see this interface.  The policy
   below (normal forms, hashing, resolution) is implemented once, above a
   table of storage operations (userdb_backend.h) chosen when the database
   is opened: the backend "local" keeps it in SQLite (DATA_DIR/users.db,
   WAL mode), "postgresql" in PostgreSQL ([storage] backend).

   Names: domains are stored in lowercase A-label form (IDN U-labels are
   converted with libidn2); local parts are folded to lowercase.  RFC 5321
   section 2.4 says a local part MAY be case-sensitive, but every mainstream
   server (Postfix, Dovecot, Exim) folds them, and users expect
   "John@x" and "john@x" to be one mailbox, so we fold too (ASCII letters
   only; UTF-8 local parts, RFC 6531, are kept as they are).  Remote alias
   targets keep their local part's case: the remote server decides.  An address is
   always "local@domain" in that normal form.

   A handle is not thread-safe: use one per thread (each worker process opens
   its own).  Returned strings are heap-allocated and owned by the caller as
   each prototype says. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct userdb;

struct userdb_user {
	char *address; /* "local@domain", normalised */
	char *local;
	char *domain;        /* A-label, lowercase */
	char *password_hash; /* crypt(3) string, "$y$..." */
	uint64_t quota;      /* bytes; 0 = unlimited */
	int64_t created;     /* unix time */
};

/* The result of userdb_resolve(). */
struct userdb_targets {
	char **users; /* local user addresses, deduplicated */
	size_t users_count;
	char **remote; /* alias targets outside the local domains */
	size_t remote_count;
};

struct userdb_alias {
	char *source; /* "local@domain" or "@domain" (catch-all) */
	char *target;
};

/* Opens the database at path with the default backend.  With create, the
   file and schema are made when missing (and an older schema is migrated);
   without it a missing file is an error.  Returns NULL with *error_r set
   (caller frees). */
#define USERDB_BACKEND_DEFAULT "local"
struct userdb *userdb_open(const char *path, bool create, char **error_r);
/* The same with the backend called backend ("local"); location is what
   that backend opens (local: the SQLite file).  An unknown backend is an
   error. */
struct userdb *userdb_open_backend(const char *backend, const char *location, bool create, char **error_r);
/* The user database of the configuration's [storage] backend: local
   opens the SQLite file local_path, postgresql [postgresql] conninfo.
   Otherwise as userdb_open_backend(). */
struct config;
struct userdb *userdb_open_config(const struct config *cfg, const char *local_path, bool create,
				  char **error_r);
/* The name of the database's backend. */
const char *userdb_backend_name(const struct userdb *db);
/* True when the database's operations may wait on the network (a round
   trip each, up to a connect timeout when the server is unreachable):
   engines then call them on job threads (lib/jobs.h), never on an event
   loop.  False for the local SQLite file, whose reads are cheap enough for
   the loop. */
bool userdb_lookups_block(const struct userdb *db);
void userdb_close(struct userdb **db);

/* Normalises an address "Local@Domain" into "local@a-label-domain".
   Returns a new string, or NULL with *error_r (static text) when the
   address is malformed (no '@', empty part, bad IDN, too long). */
char *userdb_normalize_address(const char *address, const char **error_r);
/* Normalises a domain (lowercase, U-label → A-label).  NULL on error. */
char *userdb_normalize_domain(const char *domain, const char **error_r);

/* Domains.  add: 0, or -1 (exists, invalid).  del refuses while users or
   aliases of the domain exist unless force, which removes them too. */
int userdb_domain_add(struct userdb *db, const char *domain, char **error_r);
int userdb_domain_del(struct userdb *db, const char *domain, bool force, char **error_r);
/* 1 yes, 0 no, -1 error. */
int userdb_domain_exists(struct userdb *db, const char *domain);
/* Calls cb for every domain in name order with its user count; a non-zero
   return from cb stops the walk.  0 or -1. */
int userdb_domain_list(struct userdb *db,
		       int (*cb)(void *ctx, const char *domain, unsigned users, int64_t created), void *ctx,
		       char **error_r);

/* Users.  user_add hashes password (yescrypt) and needs the domain to exist;
   quota in bytes, 0 = unlimited.  All return 0 or -1 with *error_r. */
int userdb_user_add(struct userdb *db, const char *address, const char *password, uint64_t quota,
		    char **error_r);
/* Same as user_add with an existing crypt(3) hash (import, tests). */
int userdb_user_add_hash(struct userdb *db, const char *address, const char *hash, uint64_t quota,
			 char **error_r);
int userdb_user_passwd(struct userdb *db, const char *address, const char *password, char **error_r);
/* Removes the user and every alias row whose target is the user. */
int userdb_user_del(struct userdb *db, const char *address, char **error_r);
int userdb_user_set_quota(struct userdb *db, const char *address, uint64_t quota, char **error_r);
/* Looks a user up by address: 1 found (fills *user_r, free with
   userdb_user_free), 0 not found, -1 error (logged). */
int userdb_user_lookup(struct userdb *db, const char *address, struct userdb_user *user_r);
void userdb_user_free(struct userdb_user *user);
/* Calls cb for every user (of domain, or all when domain is NULL) in address
   order; cb's non-zero return stops the walk.  0 or -1. */
int userdb_user_list(struct userdb *db, const char *domain,
		     int (*cb)(void *ctx, const struct userdb_user *user), void *ctx, char **error_r);

/* Authenticates: 1 when the user exists and password matches (*address_r
   gets the normalised address, caller frees), 0 when not, -1 on error.
   Costs one yescrypt verification whether or not the user exists.  Blocking:
   run it on a jobs.h thread with its own handle or copy the hash first. */
int userdb_authenticate(struct userdb *db, const char *address, const char *password, char **address_r);

/* Aliases.  source is "local@domain" or "@domain"; its domain must be local.
   target is any address; a source may have several targets (one row each).
   add of an existing (source, target) pair fails.  del with target NULL
   removes every row of source.  0 or -1. */
int userdb_alias_add(struct userdb *db, const char *source, const char *target, char **error_r);
int userdb_alias_del(struct userdb *db, const char *source, const char *target, char **error_r);
/* Calls cb for every alias row (of domain, or all) ordered by source, target. */
int userdb_alias_list(struct userdb *db, const char *domain,
		      int (*cb)(void *ctx, const char *source, const char *target), void *ctx,
		      char **error_r);
/* The targets of one source as an array (caller frees with
   userdb_strings_free).  Returns the count, or -1. */
int userdb_alias_targets(struct userdb *db, const char *source, char ***targets_r);
void userdb_strings_free(char **strings, size_t count);

/* Resolves a recipient address to local users, following aliases
   (recursively, depth limit USERDB_ALIAS_MAX_DEPTH, loops ignored), the
   domain catch-all ("@domain", used only when the address is neither a user
   nor an alias) and postmaster (RFC 5321 section 4.5.1: postmaster@ every
   local domain, and bare "postmaster", always resolve: to the address
   postmaster when non-empty, else the domain's first user by creation
   order; an explicit postmaster alias or user wins).
   Returns 1 = local domain and resolved (targets_r filled: local user
   addresses, deduplicated; remote alias targets in targets_r->remote),
   0 = local domain but no such user (550 5.1.1), 2 = not a local domain,
   -1 error (malformed address or database failure).  Free targets_r with
   userdb_targets_free() after 1 (it is zeroed otherwise). */
#define USERDB_ALIAS_MAX_DEPTH 10
int userdb_resolve(struct userdb *db, const char *address, const char *postmaster,
		   struct userdb_targets *targets_r);
void userdb_targets_free(struct userdb_targets *targets);

/* 1 when auth_user may use from_address as MAIL FROM: the user's own
   address, or any address whose mail reaches the user, i.e. whose
   userdb_resolve() (without a configured postmaster) lists the user: an
   alias naming the user directly or through other aliases, the domain
   catch-all for addresses that are neither users nor aliases, and
   postmaster@ for the domain's first user.  The null path ("" or "<>") is
   allowed.  0 otherwise (also for a malformed address), -1 when the
   database failed (no answer either way). */
int userdb_sender_allowed(struct userdb *db, const char *auth_user, const char *from_address);
#endif
