/* The user database: aliases, recipient resolution and the sender check,
   on the storage operations of the handle's backend (userdb_backend.h). */
#include "auth/userdb_backend.h"
#include "auth/userdb_private.h"
#include "lib/log.h"
#include "lib/strlist.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- string lists ---- */

/* Appends a copy of s unless present; returns true when added. */
static bool strlist_add_new(struct strlist *list, const char *s)
{
	if (strlist_contains(list, s))
		return false;
	strlist_add(list, s);
	return true;
}

void userdb_strings_free(char **strings, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(strings[i]);
	free(strings);
}

/* ---- alias sources and targets ---- */

/* Normalises an alias source: "local@domain" or "@domain".  The result's
   domain is returned in *domain_r (pointing into it). */
static char *source_norm(const char *source, const char **domain_r, const char **error_r)
{
	char *norm;
	if (source[0] == '@') {
		char *domain = userdb_normalize_domain(source + 1, error_r);
		if (domain == NULL)
			return NULL;
		norm = xasprintf("@%s", domain);
		free(domain);
	} else {
		norm = userdb_normalize_address(source, error_r);
		if (norm == NULL)
			return NULL;
	}
	*domain_r = userdb_address_domain(norm);
	return norm;
}

/* Normalises an alias target.  Local parts are folded only for local
   domains: a remote server may treat its local parts case-sensitively
   (RFC 5321 section 2.4), so a remote target keeps its case.  "@domain" is
   allowed for catch-all sources: the local part is kept, the domain
   replaced (domain-to-domain alias). */
static char *target_norm(struct userdb *db, const char *target, bool catchall, const char **error_r)
{
	const char *tmp;
	if (target[0] == '@') {
		if (!catchall) {
			*error_r = "a target \"@domain\" needs a catch-all source \"@domain\"";
			return NULL;
		}
		return source_norm(target, &tmp, error_r);
	}
	char *norm = userdb_normalize_address(target, error_r);
	if (norm == NULL)
		return NULL;
	const char *domain = userdb_address_domain(norm);
	int local = db->be->domain_exists(db, domain);
	if (local < 0) {
		free(norm);
		*error_r = "database error";
		return NULL;
	}
	if (local == 0)
		memcpy(norm, target, (size_t)(domain - norm - 1));
	return norm;
}

static int alias_add_norm(struct userdb *db, const char *source, const char *domain, const char *target,
			  char **error_r)
{
	int exists = db->be->domain_exists(db, domain);
	if (exists <= 0) {
		*error_r = exists == 0 ? xasprintf("domain %s does not exist: add it with "
						   "postoffice domain add %s",
						   domain, domain)
				       : xasprintf("domain %s: database error (see the log)", domain);
		return -1;
	}
	const char *error;
	char *norm = target_norm(db, target, source[0] == '@', &error);
	if (norm == NULL) {
		*error_r = xasprintf("%s: %s", error, target);
		return -1;
	}
	int rc = db->be->alias_add(db, source, domain, norm, error_r);
	if (rc == 0)
		*error_r = xasprintf("alias %s -> %s already exists", source, norm);
	free(norm);
	return rc > 0 ? 0 : -1;
}

int userdb_alias_add(struct userdb *db, const char *source, const char *target, char **error_r)
{
	const char *error, *domain;
	char *norm = source_norm(source, &domain, &error);
	if (norm == NULL) {
		*error_r = xasprintf("%s: %s", error, source);
		return -1;
	}
	int ret = alias_add_norm(db, norm, domain, target, error_r);
	free(norm);
	return ret;
}

static int alias_del_norm(struct userdb *db, const char *source, const char *target, char **error_r)
{
	const char *error;
	char *norm = NULL;
	if (target != NULL && (norm = target_norm(db, target, source[0] == '@', &error)) == NULL) {
		*error_r = xasprintf("%s: %s", error, target);
		return -1;
	}
	int rc = db->be->alias_del(db, source, norm, error_r);
	if (rc == 0)
		*error_r = norm != NULL ? xasprintf("alias %s -> %s does not exist", source, norm)
					: xasprintf("alias %s does not exist", source);
	free(norm);
	return rc > 0 ? 0 : -1;
}

int userdb_alias_del(struct userdb *db, const char *source, const char *target, char **error_r)
{
	const char *error, *domain;
	char *norm = source_norm(source, &domain, &error);
	if (norm == NULL) {
		*error_r = xasprintf("%s: %s", error, source);
		return -1;
	}
	int ret = alias_del_norm(db, norm, target, error_r);
	free(norm);
	return ret;
}

int userdb_alias_list(struct userdb *db, const char *domain,
		      int (*cb)(void *ctx, const char *source, const char *target), void *ctx, char **error_r)
{
	char *norm = NULL;
	const char *error;
	if (domain != NULL && (norm = userdb_normalize_domain(domain, &error)) == NULL) {
		*error_r = xasprintf("%s: %s", error, domain);
		return -1;
	}
	int ret = db->be->alias_list(db, norm, cb, ctx, error_r);
	free(norm);
	return ret;
}

int userdb_alias_targets(struct userdb *db, const char *source, char ***targets_r)
{
	const char *error, *domain;
	struct strlist list = STRLIST_INIT;
	*targets_r = NULL;
	char *norm = source_norm(source, &domain, &error);
	if (norm == NULL)
		return 0;
	int rc = db->be->alias_targets(db, norm, &list);
	free(norm);
	if (rc < 0) {
		strlist_free(&list);
		return -1;
	}
	*targets_r = list.items;
	return (int)list.count;
}

/* ---- resolution ---- */

struct resolve_ctx {
	struct userdb *db;
	const char *postmaster;
	struct strlist visited;
	struct strlist users;
	struct strlist remote;
	const char *local_domain; /* known to be ours: not looked up again */
	bool failed;
};

static void expand(struct resolve_ctx *ctx, const char *address, unsigned depth);

static int user_exists(struct resolve_ctx *ctx, const char *address)
{
	struct userdb_user user;
	int rc = userdb_user_lookup(ctx->db, address, &user);
	if (rc > 0)
		userdb_user_free(&user);
	return rc;
}

/* Expands each of targets; "@domain" targets (domain-to-domain aliases)
   take the local part of address. */
static void expand_list(struct resolve_ctx *ctx, const char *address, const struct strlist *targets,
			unsigned depth)
{
	const char *domain = userdb_address_domain(address);
	for (size_t i = 0; i < targets->count && !ctx->failed; i++) {
		const char *t = targets->items[i];
		if (t[0] == '@') {
			char *rewritten = xasprintf("%.*s%s", (int)(domain - 1 - address), address, t);
			expand(ctx, rewritten, depth + 1);
			free(rewritten);
		} else {
			expand(ctx, t, depth + 1);
		}
	}
}

/* RFC 5321 section 4.5.1: postmaster must be accepted.  Expands the
   configured address, else the domain's first user.  Returns true when
   something was added. */
static bool expand_postmaster(struct resolve_ctx *ctx, const char *domain, unsigned depth)
{
	size_t before = ctx->users.count + ctx->remote.count;
	if (ctx->postmaster != NULL && ctx->postmaster[0] != '\0') {
		expand(ctx, ctx->postmaster, depth + 1);
	} else {
		char *first = NULL;
		int rc = ctx->db->be->user_first(ctx->db, domain, &first);
		if (rc > 0)
			strlist_add_new(&ctx->users, first);
		ctx->failed |= rc < 0;
		free(first);
	}
	return ctx->users.count + ctx->remote.count > before;
}

/* Adds what address resolves to.  Order: an alias (exact source) replaces
   the address; else a user receives it; else postmaster; else the
   catch-all.  An alias that lists its own source (or reaches it again)
   delivers to the user of that name, if any: that is how "keep a copy and
   forward" is written, and it ends every loop. */
static void expand(struct resolve_ctx *ctx, const char *address, unsigned depth)
{
	const char *error;
	char *norm = userdb_normalize_address(address, &error);
	if (norm == NULL) {
		log_warn("userdb alias target invalid target=%s error=%s", address, error);
		return;
	}
	const char *domain = userdb_address_domain(norm);
	int local = ctx->local_domain != NULL && strcmp(domain, ctx->local_domain) == 0
			? 1
			: ctx->db->be->domain_exists(ctx->db, domain);
	if (local <= 0) {
		if (local < 0)
			ctx->failed = true;
		else {
			/* A remote server may treat local parts case-sensitively:
			   keep the original one, with the normalised domain. */
			memcpy(norm, address, (size_t)(domain - 1 - norm));
			strlist_add_new(&ctx->remote, norm);
		}
		free(norm);
		return;
	}
	if (!strlist_add_new(&ctx->visited, norm) || depth > USERDB_ALIAS_MAX_DEPTH) {
		if (depth > USERDB_ALIAS_MAX_DEPTH)
			log_warn("userdb alias too deep address=%s depth=%u", norm, depth);
		int rc = user_exists(ctx, norm);
		if (rc > 0)
			strlist_add_new(&ctx->users, norm);
		ctx->failed |= rc < 0;
		free(norm);
		return;
	}
	struct strlist targets = STRLIST_INIT;
	int rc;
	if (ctx->db->be->alias_targets(ctx->db, norm, &targets) < 0) {
		ctx->failed = true;
	} else if (targets.count > 0) {
		expand_list(ctx, norm, &targets, depth);
	} else if ((rc = user_exists(ctx, norm)) != 0) {
		if (rc > 0)
			strlist_add_new(&ctx->users, norm);
		ctx->failed |= rc < 0;
	} else if (strncmp(norm, "postmaster@", 11) != 0 || !expand_postmaster(ctx, domain, depth)) {
		char *catchall = xasprintf("@%s", domain);
		if (ctx->db->be->alias_targets(ctx->db, catchall, &targets) < 0)
			ctx->failed = true;
		else
			expand_list(ctx, norm, &targets, depth);
		free(catchall);
	}
	strlist_free(&targets);
	free(norm);
}

void userdb_targets_free(struct userdb_targets *targets)
{
	userdb_strings_free(targets->users, targets->users_count);
	userdb_strings_free(targets->remote, targets->remote_count);
	memset(targets, 0, sizeof(*targets));
}

static int resolve_address(struct resolve_ctx *ctx, const char *address)
{
	/* RFC 5321 section 4.5.1: "postmaster" without a domain is accepted
	   too; it goes where the postmaster of the first user's domain goes. */
	if (strcasecmp(address, "postmaster") == 0) {
		expand_postmaster(ctx, NULL, 0);
		return ctx->failed ? -1 : ctx->users.count + ctx->remote.count > 0 ? 1 : 0;
	}
	const char *error;
	char *norm = userdb_normalize_address(address, &error);
	if (norm == NULL) {
		/* A domain we cannot normalise (an address literal, say) is
		   not one of ours. */
		const char *at = strrchr(address, '@');
		char *domain = at == NULL ? NULL : userdb_normalize_domain(at + 1, &error);
		int local = domain == NULL ? 0 : ctx->db->be->domain_exists(ctx->db, domain);
		free(domain);
		return local < 0 ? -1 : local > 0 ? 0 : 2;
	}
	int local = ctx->db->be->domain_exists(ctx->db, userdb_address_domain(norm));
	if (local <= 0) {
		free(norm);
		return local < 0 ? -1 : 2;
	}
	/* one lookup of the domain per resolution (a round trip to the
	   database with backend postgresql) */
	ctx->local_domain = userdb_address_domain(norm);
	expand(ctx, norm, 0);
	free(norm);
	if (ctx->failed)
		return -1;
	return ctx->users.count + ctx->remote.count > 0 ? 1 : 0;
}

int userdb_resolve(struct userdb *db, const char *address, const char *postmaster,
		   struct userdb_targets *targets_r)
{
	struct resolve_ctx ctx = {.db = db, .postmaster = postmaster};
	memset(targets_r, 0, sizeof(*targets_r));
	int rc = resolve_address(&ctx, address);
	strlist_free(&ctx.visited);
	if (rc == 1) {
		targets_r->users = ctx.users.items;
		targets_r->users_count = ctx.users.count;
		targets_r->remote = ctx.remote.items;
		targets_r->remote_count = ctx.remote.count;
	} else {
		strlist_free(&ctx.users);
		strlist_free(&ctx.remote);
	}
	return rc;
}

int userdb_sender_allowed(struct userdb *db, const char *auth_user, const char *from_address)
{
	if (from_address[0] == '\0' || !strcmp(from_address, "<>"))
		return 1;
	const char *error;
	char *user = userdb_normalize_address(auth_user, &error);
	char *from = userdb_normalize_address(from_address, &error);
	int allowed = 0;
	if (user != NULL && from != NULL && !strcmp(user, from)) {
		allowed = 1;
	} else if (user != NULL && from != NULL) {
		/* Whatever mail to from_address reaches, the user may send as:
		   aliases, catch-all (only for addresses that are not users)
		   and postmaster. */
		struct userdb_targets targets;
		int rc = userdb_resolve(db, from, NULL, &targets);
		if (rc == 1) {
			for (size_t i = 0; i < targets.users_count && !allowed; i++)
				allowed = !strcmp(targets.users[i], user);
			userdb_targets_free(&targets);
		}
		if (rc < 0)
			allowed = -1;
	}
	free(user);
	free(from);
	return allowed;
}
