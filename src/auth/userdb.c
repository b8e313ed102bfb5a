/* The user database interface: the registry of backends, and domains,
   users and authentication as userdb.h defines them (normal forms,
   password hashing, messages), dispatched to the handle's table of
   storage operations (userdb_backend.h).  Aliases and recipient
   resolution are in userdb_alias.c. */
#include "auth/userdb_backend.h"
#include "auth/userdb_private.h"
#include "auth/password.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

static const struct userdb_backend *const userdb_backends[] = {
    &userdb_backend_local,
    &userdb_backend_pg,
};

const struct userdb_backend *userdb_backend_find(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(userdb_backends); i++)
		if (strcmp(userdb_backends[i]->name, name) == 0)
			return userdb_backends[i];
	return NULL;
}

struct userdb *userdb_open_backend(const char *backend, const char *location, bool create, char **error_r)
{
	const struct userdb_backend *be = userdb_backend_find(backend);
	if (be == NULL) {
		*error_r = xasprintf("unknown user database backend '%s'", backend);
		return NULL;
	}
	struct userdb *db = be->open(location, create, error_r);
	if (db != NULL && db->be != be)
		log_panic("userdb backend %s: open did not set the handle's backend", be->name);
	return db;
}

struct userdb *userdb_open(const char *path, bool create, char **error_r)
{
	return userdb_open_backend(USERDB_BACKEND_DEFAULT, path, create, error_r);
}

struct userdb *userdb_open_config(const struct config *cfg, const char *local_path, bool create,
				  char **error_r)
{
	if (cfg->storage_backend == STORAGE_POSTGRESQL)
		return userdb_open_backend(userdb_backend_pg.name, cfg->pg_conninfo, create, error_r);
	return userdb_open_backend(userdb_backend_local.name, local_path, create, error_r);
}

void userdb_close(struct userdb **dbp)
{
	struct userdb *db = *dbp;
	if (db == NULL)
		return;
	*dbp = NULL;
	db->be->close(db);
}

const char *userdb_backend_name(const struct userdb *db)
{
	return db->be->name;
}

bool userdb_lookups_block(const struct userdb *db)
{
	return db->be->lookups_block;
}

/* ---- domains ---- */

/* Normalises a domain for a command: NULL with *error_r set when invalid. */
static char *domain_arg(const char *domain, char **error_r)
{
	const char *error;
	char *norm = userdb_normalize_domain(domain, &error);
	if (norm == NULL)
		*error_r = xasprintf("%s: %s", error, domain);
	return norm;
}

int userdb_domain_exists(struct userdb *db, const char *domain)
{
	const char *error;
	char *norm = userdb_normalize_domain(domain, &error);
	if (norm == NULL)
		return 0;
	int rc = db->be->domain_exists(db, norm);
	free(norm);
	return rc;
}

int userdb_domain_add(struct userdb *db, const char *domain, char **error_r)
{
	char *norm = domain_arg(domain, error_r);
	if (norm == NULL)
		return -1;
	int rc = db->be->domain_add(db, norm, error_r);
	if (rc == 0)
		*error_r = xasprintf("domain %s already exists", norm);
	free(norm);
	return rc > 0 ? 0 : -1;
}

static int domain_del_norm(struct userdb *db, const char *norm, bool force, char **error_r)
{
	int exists = db->be->domain_exists(db, norm);
	if (exists <= 0) {
		*error_r = exists == 0 ? xasprintf("domain %s does not exist", norm)
				       : xasprintf("domain %s: database error (see the log)", norm);
		return -1;
	}
	unsigned users, aliases;
	if (db->be->domain_usage(db, norm, &users, &aliases, error_r) < 0)
		return -1;
	if (users + aliases > 0 && !force) {
		*error_r = xasprintf("domain %s still has %u user%s and %u alias%s", norm, users,
				     users == 1 ? "" : "s", aliases, aliases == 1 ? "" : "es");
		return -1;
	}
	return db->be->domain_del(db, norm, error_r);
}

int userdb_domain_del(struct userdb *db, const char *domain, bool force, char **error_r)
{
	char *norm = domain_arg(domain, error_r);
	if (norm == NULL)
		return -1;
	int ret = domain_del_norm(db, norm, force, error_r);
	free(norm);
	return ret;
}

int userdb_domain_list(struct userdb *db,
		       int (*cb)(void *ctx, const char *domain, unsigned users, int64_t created), void *ctx,
		       char **error_r)
{
	return db->be->domain_list(db, cb, ctx, error_r);
}

/* ---- users ---- */

/* Normalises an address for a command: NULL with *error_r when invalid. */
static char *address_arg(const char *address, char **error_r)
{
	const char *error;
	char *norm = userdb_normalize_address(address, &error);
	if (norm == NULL)
		*error_r = xasprintf("%s: %s", error, address);
	return norm;
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

int userdb_user_lookup(struct userdb *db, const char *address, struct userdb_user *user_r)
{
	const char *error;
	memset(user_r, 0, sizeof(*user_r));
	char *norm = userdb_normalize_address(address, &error);
	if (norm == NULL)
		return 0;
	int rc = db->be->user_lookup(db, norm, user_r);
	free(norm);
	return rc;
}

static int user_add_norm(struct userdb *db, const char *norm, const char *hash, uint64_t quota,
			 char **error_r)
{
	const char *domain = userdb_address_domain(norm);
	int exists = db->be->domain_exists(db, domain);
	if (exists <= 0) {
		*error_r = exists == 0 ? xasprintf("domain %s does not exist: add it with "
						   "postoffice domain add %s",
						   domain, domain)
				       : xasprintf("domain %s: database error (see the log)", domain);
		return -1;
	}
	int rc = db->be->user_add(db, norm, hash, quota, error_r);
	if (rc == 0)
		*error_r = xasprintf("user %s already exists", norm);
	return rc > 0 ? 0 : -1;
}

int userdb_user_add_hash(struct userdb *db, const char *address, const char *hash, uint64_t quota,
			 char **error_r)
{
	char *norm = address_arg(address, error_r);
	if (norm == NULL)
		return -1;
	int ret = user_add_norm(db, norm, hash, quota, error_r);
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

int userdb_user_add(struct userdb *db, const char *address, const char *password, uint64_t quota,
		    char **error_r)
{
	char *hash;
	if (hash_arg(password, &hash, error_r) < 0)
		return -1;
	int ret = userdb_user_add_hash(db, address, hash, quota, error_r);
	free(hash);
	return ret;
}

/* The result of a backend operation on one user (1 done, 0 no such user). */
static int user_result(int rc, const char *norm, char **error_r)
{
	if (rc == 0)
		*error_r = xasprintf("user %s does not exist", norm);
	return rc > 0 ? 0 : -1;
}

int userdb_user_passwd(struct userdb *db, const char *address, const char *password, char **error_r)
{
	char *hash;
	if (hash_arg(password, &hash, error_r) < 0)
		return -1;
	char *norm = address_arg(address, error_r);
	int ret = -1;
	if (norm != NULL)
		ret = user_result(db->be->user_set_password(db, norm, hash, error_r), norm, error_r);
	free(norm);
	free(hash);
	return ret;
}

int userdb_user_set_quota(struct userdb *db, const char *address, uint64_t quota, char **error_r)
{
	char *norm = address_arg(address, error_r);
	if (norm == NULL)
		return -1;
	int ret = user_result(db->be->user_set_quota(db, norm, quota, error_r), norm, error_r);
	free(norm);
	return ret;
}

int userdb_user_del(struct userdb *db, const char *address, char **error_r)
{
	char *norm = address_arg(address, error_r);
	if (norm == NULL)
		return -1;
	int ret = user_result(db->be->user_del(db, norm, error_r), norm, error_r);
	free(norm);
	return ret;
}

int userdb_user_list(struct userdb *db, const char *domain,
		     int (*cb)(void *ctx, const struct userdb_user *user), void *ctx, char **error_r)
{
	char *norm = NULL;
	if (domain != NULL && (norm = domain_arg(domain, error_r)) == NULL)
		return -1;
	int ret = db->be->user_list(db, norm, cb, ctx, error_r);
	free(norm);
	return ret;
}

int userdb_authenticate(struct userdb *db, const char *address, const char *password, char **address_r)
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
