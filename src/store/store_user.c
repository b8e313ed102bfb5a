/* The store by user: the store configuration, opening a user's store,
   what is done to a user's store without a handle, and delivery into
   several stores at once (store.h).  Each dispatches to the backend
   that the configuration names (store_backend.h). */
#include "store/store_backend.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

void store_config_init(struct store_config *conf_r, const struct config *cfg)
{
	memset(conf_r, 0, sizeof(*conf_r));
	conf_r->backend = cfg->storage_backend == STORAGE_POSTGRESQL ? "postgresql" : STORE_BACKEND_DEFAULT;
	conf_r->data_dir = cfg->data_dir;
	conf_r->conninfo = cfg->pg_conninfo;
}

/* The backend conf names, or NULL with *error_r. */
static const struct store_backend *conf_backend(const struct store_config *conf, char **error_r)
{
	const char *name = conf->backend != NULL ? conf->backend : STORE_BACKEND_DEFAULT;
	const struct store_backend *be = store_backend_find(name);
	if (be == NULL)
		*error_r = xasprintf("unknown store backend '%s'", name);
	return be;
}

struct store *store_open_user(const struct store_config *conf, const char *address, char **error_r)
{
	const struct store_backend *be = conf_backend(conf, error_r);
	if (be == NULL)
		return NULL;
	char *location = be->user_location(conf, address);
	struct store *store = store_open_backend(be->name, location, error_r);
	free(location);
	return store;
}

struct store *store_open_another(const struct store *store, char **error_r)
{
	return store_open_backend(store->be->name, store->be->path(store), error_r);
}

char *store_user_location(const struct store_config *conf, const char *address)
{
	char *error = NULL;
	const struct store_backend *be = conf_backend(conf, &error);
	free(error);
	return be != NULL ? be->user_location(conf, address) : NULL;
}

int store_user_create(const struct store_config *conf, const char *address, uid_t uid, gid_t gid,
		      char **error_r)
{
	const struct store_backend *be = conf_backend(conf, error_r);
	return be != NULL ? be->user_create(conf, address, uid, gid, error_r) : -1;
}

int store_user_purge(const struct store_config *conf, const char *address, char **error_r)
{
	const struct store_backend *be = conf_backend(conf, error_r);
	return be != NULL ? be->user_purge(conf, address, error_r) : -1;
}

int store_user_usage(const struct store_config *conf, const char *address, uint64_t *bytes_r, char **error_r)
{
	*bytes_r = 0;
	const struct store_backend *be = conf_backend(conf, error_r);
	if (be == NULL)
		return -1;
	char *location = be->user_location(conf, address);
	int rc = be->usage(location, bytes_r, error_r);
	free(location);
	return rc;
}

bool store_user_lookups_block(const struct store_config *conf)
{
	char *error = NULL;
	const struct store_backend *be = conf_backend(conf, &error);
	free(error);
	return be != NULL && be->lookups_block;
}

/* ---- delivery ---- */

struct store_delivery_target {
	const struct store_backend *be;
	char *location;
	char *made; /* the backend's note of the copy, once made */
};

struct store_delivery {
	struct store_delivery_target *targets;
	size_t count;
	char *error;  /* the first target that could not be added */
	char *folder; /* NULL: the INBOX */
	bool commit_started;
};

struct store_delivery *store_delivery_new(void)
{
	return xcalloc(1, sizeof(struct store_delivery));
}

static void add_target(struct store_delivery *sd, const struct store_backend *be, char *location)
{
	for (size_t i = 0; i < sd->count; i++) {
		if (sd->targets[i].be == be && strcmp(sd->targets[i].location, location) == 0) {
			free(location);
			return;
		}
	}
	sd->targets = xreallocarray(sd->targets, sd->count + 1, sizeof(*sd->targets));
	sd->targets[sd->count++] = (struct store_delivery_target){be, location, NULL};
}

void store_delivery_add_user(struct store_delivery *sd, const struct store_config *conf, const char *address)
{
	char *error = NULL;
	const struct store_backend *be = conf_backend(conf, &error);
	if (be == NULL) {
		if (sd->error == NULL)
			sd->error = error;
		else
			free(error);
		return;
	}
	add_target(sd, be, be->user_location(conf, address));
}

void store_delivery_add_maildir(struct store_delivery *sd, const char *maildir)
{
	add_target(sd, &store_backend_local, xstrdup(maildir));
}

void store_delivery_set_folder(struct store_delivery *sd, const char *folder)
{
	if (sd->commit_started)
		log_panic("store delivery folder set after the commit");
	free(sd->folder);
	sd->folder = folder != NULL ? xstrdup(folder) : NULL;
}

size_t store_delivery_count(const struct store_delivery *sd)
{
	return sd->count;
}

bool store_delivery_needs_synced_source(const struct store_delivery *sd)
{
	bool all_copy = sd->count > 0;
	for (size_t i = 0; i < sd->count; i++)
		all_copy &= sd->targets[i].be->deliver_copies;
	return !all_copy;
}

/* The targets of be from first on, delivered in one call to the backend. */
static int commit_backend(struct store_delivery *sd, size_t first, int src_dirfd, const char *src,
			  uint64_t size, char **error_r)
{
	const struct store_backend *be = sd->targets[first].be;
	const char **locations = xcalloc(sd->count - first, sizeof(*locations));
	char **made = xcalloc(sd->count - first, sizeof(*made));
	size_t *index = xcalloc(sd->count - first, sizeof(*index));
	size_t n = 0;
	for (size_t i = first; i < sd->count; i++) {
		if (sd->targets[i].be == be) {
			index[n] = i;
			locations[n++] = sd->targets[i].location;
		}
	}
	int rc = be->deliver(locations, n, sd->folder, src_dirfd, src, size, made, error_r);
	for (size_t k = 0; k < n; k++)
		sd->targets[index[k]].made = made[k];
	free(index);
	free(made);
	free(locations);
	return rc;
}

int store_delivery_commit(struct store_delivery *sd, int src_dirfd, const char *src, uint64_t size,
			  char **error_r)
{
	if (sd->commit_started)
		log_panic("store delivery committed twice");
	sd->commit_started = true;
	if (sd->error != NULL) {
		*error_r = xstrdup(sd->error);
		return -1;
	}
	/* One call per backend (there is usually one), in the order added. */
	for (size_t i = 0; i < sd->count; i++) {
		bool done = false;
		for (size_t j = 0; j < i && !done; j++)
			done = sd->targets[j].be == sd->targets[i].be;
		if (!done && commit_backend(sd, i, src_dirfd, src, size, error_r) < 0)
			return -1;
	}
	return 0;
}

int store_delivery_revert(struct store_delivery *sd, char **error_r)
{
	int rc = 0;
	for (size_t i = 0; i < sd->count; i++) {
		struct store_delivery_target *t = &sd->targets[i];
		if (t->made == NULL)
			continue;
		char *error = NULL;
		if (t->be->undeliver(t->location, sd->folder, t->made, &error) < 0) {
			if (rc == 0)
				*error_r = error;
			else
				free(error);
			rc = -1;
		}
		free(t->made);
		t->made = NULL;
	}
	return rc;
}

void store_delivery_free(struct store_delivery **sdp)
{
	struct store_delivery *sd = *sdp;
	if (sd == NULL)
		return;
	*sdp = NULL;
	for (size_t i = 0; i < sd->count; i++) {
		free(sd->targets[i].location);
		free(sd->targets[i].made);
	}
	free(sd->targets);
	free(sd->error);
	free(sd->folder);
	free(sd);
}
