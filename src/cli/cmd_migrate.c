/* postoffice migrate-to-postgresql: copies a local installation (the user
   database DATA_DIR/users.db, the Maildirs with their index, the spool
   DATA_DIR/queue) into an empty PostgreSQL database, through the storage
   interfaces only (userdb.h, store.h, spool.h; the mail and the queue
   enter with their import operations), verifies the copy and leaves the
   local data as it was.  The server must be stopped: a local server's
   queue runner writes DATA_DIR/queue/runner.pid, and a live pid there
   refuses the run.  The database must hold none of what is copied (no
   domain, no queued message, no store of a local user): a second run
   refuses and changes nothing.  Runs as the server's user, inside
   DATA_DIR, as the server does. */
#include "auth/userdb.h"
#include "cli/cli.h"
#include "cli/migrate.h"
#include "lib/buf.h"
#include "lib/strlist.h"
#include "lib/xalloc.h"
#include "queue/spool.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMMAND "migrate-to-postgresql"

static void migrate_usage(FILE *out)
{
	fprintf(out, "usage: postoffice [-c FILE] " COMMAND " [--conninfo CONNINFO]\n\n"
		     "Copies this machine's users, domains, aliases, mail (UIDVALIDITY, UIDs, flags,\n"
		     "keywords, dates, modseqs kept) and queue into the PostgreSQL database\n"
		     "([postgresql] conninfo, or --conninfo), which must hold none of them yet, and\n"
		     "verifies the copy.  Stop the server first.  The local data is left as it is:\n"
		     "afterwards set [storage] backend = postgresql and start the server.\n");
}

/* A user of the local database, in the order they are added to the new one. */
struct migrate_user {
	char *address, *hash;
	uint64_t quota;
	int64_t created;
	size_t rank; /* 0: the first user of all, 1: a domain's first, 2: others */
	size_t order;
};

/* A queued message of the local spool. */
struct migrate_entry {
	struct queue_entry e;
	unsigned char hash[MIGRATE_HASH_LEN]; /* of its message file */
};

struct migrate {
	const char *conninfo;
	struct userdb *from, *to;
	struct store_config local, pg;
	struct strlist domains;
	struct migrate_user *users;
	size_t nusers;
	struct strlist alias_sources, alias_targets;
	struct migrate_entry *entries;
	size_t nentries;
	struct migrate_count count;
};

static int fail(const char *what, char *error)
{
	fprintf(stderr, "postoffice " COMMAND ": %s: %s\n", what, error);
	free(error);
	return 1;
}

/* ---- before anything is written ---- */

/* Works inside DATA_DIR as [server] user, like the server: what the
   local backends open or write stays the server's. */
static int become_server(const struct config *cfg, char **error_r)
{
	if (chdir(cfg->data_dir) < 0) {
		*error_r = xasprintf("chdir(%s) failed: %s", cfg->data_dir, strerror(errno));
		return -1;
	}
	if (geteuid() != 0)
		return 0;
	struct cli_owner o = cli_server_owner(cfg);
	if (o.uid == (uid_t)-1 || o.uid == 0) {
		*error_r = xasprintf("[server] user '%s' does not exist or is root", cfg->user);
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setgid(o.gid) < 0 || setuid(o.uid) < 0) {
		*error_r = xasprintf("cannot become user %s: %s", cfg->user, strerror(errno));
		return -1;
	}
	return 0;
}

static int user_cb(void *ctx, const struct userdb_user *user)
{
	struct migrate *m = ctx;
	m->users = xreallocarray(m->users, m->nusers + 1, sizeof(*m->users));
	m->users[m->nusers] = (struct migrate_user){
	    xstrdup(user->address), xstrdup(user->password_hash), user->quota, user->created, 2, m->nusers};
	m->nusers++;
	return 0;
}

static int domain_cb(void *ctx, const char *domain, unsigned users, int64_t created)
{
	strlist_add(ctx, domain);
	return 0;
}

static int alias_cb(void *ctx, const char *source, const char *target)
{
	struct migrate *m = ctx;
	strlist_add(&m->alias_sources, source);
	strlist_add(&m->alias_targets, target);
	return 0;
}

/* The user postmaster resolves to without an alias or user of that name:
   the first user by creation order (userdb_resolve()). */
static void rank_first(struct migrate *m, const char *postmaster, size_t rank)
{
	struct userdb_targets t;
	if (userdb_resolve(m->from, postmaster, NULL, &t) != 1)
		return;
	for (size_t i = 0; i < m->nusers && t.users_count == 1; i++)
		if (!strcmp(m->users[i].address, t.users[0]) && m->users[i].rank > rank)
			m->users[i].rank = rank;
	userdb_targets_free(&t);
}

static int user_order(const void *a, const void *b)
{
	const struct migrate_user *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The local user database, users ordered so that the new database, which
   orders them by when they were added, gives postmaster the same first
   users (the creation times are not kept). */
static int read_userdb(struct migrate *m, char **error_r)
{
	if (userdb_domain_list(m->from, domain_cb, &m->domains, error_r) < 0 ||
	    userdb_user_list(m->from, NULL, user_cb, m, error_r) < 0 ||
	    userdb_alias_list(m->from, NULL, alias_cb, m, error_r) < 0)
		return -1;
	rank_first(m, "postmaster", 0);
	for (size_t i = 0; i < m->domains.count; i++) {
		char *pm = xasprintf("postmaster@%s", m->domains.items[i]);
		rank_first(m, pm, 1);
		free(pm);
	}
	if (m->nusers > 0)
		qsort(m->users, m->nusers, sizeof(*m->users), user_order);
	return 0;
}

static int queue_id_cb(void *ctx, const struct queue_entry *e)
{
	strlist_add(ctx, e->id);
	return 0;
}

/* The hash of the message file of the spool entry id. */
static int queue_msg_hash(const char *qdir, const char *id, unsigned char hash[MIGRATE_HASH_LEN],
			  char **error_r)
{
	int fd;
	char *data;
	size_t len;
	int rc = queue_msg_open(qdir, id, &fd, error_r);
	if (rc == 0)
		*error_r = xasprintf("queue message %s has no message file", id);
	if (rc <= 0 || migrate_read_fd(fd, "a queued message", &data, &len, error_r) < 0)
		return -1;
	rc = migrate_hash(data, len, hash);
	free(data);
	if (rc < 0)
		*error_r = xstrdup("SHA-256 failed");
	return rc;
}

/* The local spool: every entry with the hash of its message file. */
static int read_queue(struct migrate *m, char **error_r)
{
	struct strlist ids = STRLIST_INIT;
	char *qdir = queue_dir(".");
	int rc = queue_walk(".", queue_id_cb, &ids, error_r);
	m->entries = xcalloc(ids.count + 1, sizeof(*m->entries));
	for (size_t i = 0; i < ids.count && rc == 0; i++) {
		struct migrate_entry *me = &m->entries[m->nentries];
		rc = queue_entry_load(qdir, ids.items[i], &me->e, error_r);
		if (rc == 1) { /* completed meanwhile */
			rc = 0;
			continue;
		}
		if (rc == 0) {
			m->nentries++;
			rc = queue_msg_hash(qdir, ids.items[i], me->hash, error_r);
		}
	}
	free(qdir);
	strlist_free(&ids);
	return rc;
}

static int count_cb(void *ctx, const struct queue_entry *e)
{
	(*(size_t *)ctx)++;
	return 0;
}

/* Refuses a database that holds any of what would be copied. */
static int check_empty(struct migrate *m, char **error_r)
{
	struct strlist domains = STRLIST_INIT;
	size_t queued = 0;
	int rc = userdb_domain_list(m->to, domain_cb, &domains, error_r);
	if (rc == 0 && domains.count > 0) {
		*error_r = xasprintf("the database has %zu domains already (%s, ...)", domains.count,
				     domains.items[0]);
		rc = -1;
	}
	strlist_free(&domains);
	if (rc == 0 && (rc = queue_walk(".", count_cb, &queued, error_r)) == 0 && queued > 0) {
		*error_r = xasprintf("the database's queue holds %zu messages already", queued);
		rc = -1;
	}
	for (size_t i = 0; i < m->nusers && rc == 0; i++) {
		uint64_t bytes;
		int found = store_user_usage(&m->pg, m->users[i].address, &bytes, error_r);
		if (found > 0)
			*error_r =
			    xasprintf("the database has the mail store of %s already", m->users[i].address);
		rc = found != 0 ? -1 : 0;
	}
	return rc;
}

/* ---- the copy ---- */

static int copy_userdb(struct migrate *m, char **error_r)
{
	for (size_t i = 0; i < m->domains.count; i++)
		if (userdb_domain_add(m->to, m->domains.items[i], error_r) < 0)
			return -1;
	for (size_t i = 0; i < m->nusers; i++) {
		const struct migrate_user *u = &m->users[i];
		if (userdb_user_add_hash(m->to, u->address, u->hash, u->quota, error_r) < 0)
			return -1;
	}
	for (size_t i = 0; i < m->alias_sources.count; i++)
		if (userdb_alias_add(m->to, m->alias_sources.items[i], m->alias_targets.items[i], error_r) <
		    0)
			return -1;
	return 0;
}

/* 0 when postmaster resolves alike in both databases. */
static int verify_postmaster(struct migrate *m, const char *postmaster, char **error_r)
{
	struct userdb_targets a, b;
	int ra = userdb_resolve(m->from, postmaster, NULL, &a),
	    rb = userdb_resolve(m->to, postmaster, NULL, &b);
	bool same = ra == rb;
	for (size_t i = 0; same && ra == 1 && i < a.users_count; i++)
		same = a.users_count == b.users_count && !strcmp(a.users[i], b.users[i]);
	if (ra == 1)
		userdb_targets_free(&a);
	if (rb == 1)
		userdb_targets_free(&b);
	if (!same)
		*error_r = xasprintf("%s resolves differently in the copy", postmaster);
	return same ? 0 : -1;
}

static int verify_userdb(struct migrate *m, char **error_r)
{
	struct migrate copy = {0};
	int rc = userdb_domain_list(m->to, domain_cb, &copy.domains, error_r) < 0 ||
			 userdb_alias_list(m->to, NULL, alias_cb, &copy, error_r) < 0
		     ? -1
		     : 0;
	if (rc == 0 &&
	    (copy.domains.count != m->domains.count || copy.alias_sources.count != m->alias_sources.count)) {
		*error_r = xasprintf("the copy has %zu domains and %zu alias rows, the original %zu and %zu",
				     copy.domains.count, copy.alias_sources.count, m->domains.count,
				     m->alias_sources.count);
		rc = -1;
	}
	for (size_t i = 0; i < copy.alias_sources.count && rc == 0; i++) {
		if (strcmp(copy.alias_sources.items[i], m->alias_sources.items[i]) != 0 ||
		    strcmp(copy.alias_targets.items[i], m->alias_targets.items[i]) != 0) {
			*error_r = xasprintf("the copy's alias rows differ at %s", m->alias_sources.items[i]);
			rc = -1;
		}
	}
	for (size_t i = 0; i < m->nusers && rc == 0; i++) {
		struct userdb_user u;
		const struct migrate_user *mu = &m->users[i];
		rc = userdb_user_lookup(m->to, mu->address, &u) == 1 ? 0 : -1;
		if (rc == 0) {
			if (strcmp(u.password_hash, mu->hash) != 0 || u.quota != mu->quota)
				rc = -1;
			userdb_user_free(&u);
		}
		if (rc < 0)
			*error_r = xasprintf("user %s differs in the copy", mu->address);
	}
	if (rc == 0)
		rc = verify_postmaster(m, "postmaster", error_r);
	for (size_t i = 0; i < m->domains.count && rc == 0; i++) {
		char *pm = xasprintf("postmaster@%s", m->domains.items[i]);
		rc = verify_postmaster(m, pm, error_r);
		free(pm);
	}
	strlist_free(&copy.domains);
	strlist_free(&copy.alias_sources);
	strlist_free(&copy.alias_targets);
	return rc;
}

/* 0 when the database's entry id is e with the same message. */
static int verify_entry(const char *qdir, const struct migrate_entry *me, char **error_r)
{
	struct queue_entry copy;
	int rc = queue_entry_load(qdir, me->e.id, &copy, error_r);
	if (rc != 0) {
		if (rc > 0)
			*error_r = xasprintf("queue message %s is missing in the copy", me->e.id);
		return -1;
	}
	struct buf a = BUF_INIT, b = BUF_INIT;
	queue_entry_serialize(&me->e, &a);
	queue_entry_serialize(&copy, &b);
	bool same = a.len == b.len && memcmp(a.data, b.data, a.len) == 0 && copy.held == me->e.held;
	queue_entry_free(&copy);
	buf_free(&a);
	buf_free(&b);
	unsigned char hash[MIGRATE_HASH_LEN];
	if (!same || queue_msg_hash(qdir, me->e.id, hash, error_r) < 0 ||
	    memcmp(hash, me->hash, MIGRATE_HASH_LEN) != 0) {
		if (*error_r == NULL)
			*error_r = xasprintf("queue message %s differs in the copy", me->e.id);
		return -1;
	}
	return 0;
}

/* One spool entry into the database's queue, then read back. */
static int copy_entry(const struct migrate_entry *me, char **error_r)
{
	char *qdir = queue_dir(".");
	char *path = queue_path(qdir, me->e.id, "msg");
	int rc = queue_entry_import(".", &me->e, AT_FDCWD, path, error_r);
	if (rc == 1)
		*error_r = xasprintf("queue message %s exists in the database already", me->e.id);
	if (rc == 0)
		rc = verify_entry(qdir, me, error_r);
	free(path);
	free(qdir);
	return rc != 0 ? -1 : 0;
}

static int copy_all(struct migrate *m, const char **what_r, char **error_r)
{
	*what_r = "users";
	if (copy_userdb(m, error_r) < 0 || verify_userdb(m, error_r) < 0)
		return -1;
	printf("%zu domains, %zu users, %zu aliases: copied and verified\n", m->domains.count, m->nusers,
	       m->alias_sources.count);
	for (size_t i = 0; i < m->nusers; i++) {
		struct migrate_count before = m->count;
		*what_r = m->users[i].address;
		if (migrate_store_user(&m->local, &m->pg, m->users[i].address, &m->count, error_r) < 0)
			return -1;
		printf("user %s: %u mailboxes, %llu messages, %llu bytes: copied and verified\n",
		       m->users[i].address, m->count.mailboxes - before.mailboxes,
		       (unsigned long long)(m->count.messages - before.messages),
		       (unsigned long long)(m->count.bytes - before.bytes));
		fflush(stdout);
	}
	*what_r = "queue";
	for (size_t i = 0; i < m->nentries; i++)
		if (copy_entry(&m->entries[i], error_r) < 0)
			return -1;
	printf("queue: %zu messages: copied and verified\n", m->nentries);
	return 0;
}

/* ---- the command ---- */

static void migrate_free(struct migrate *m)
{
	userdb_close(&m->from);
	userdb_close(&m->to);
	strlist_free(&m->domains);
	strlist_free(&m->alias_sources);
	strlist_free(&m->alias_targets);
	for (size_t i = 0; i < m->nusers; i++) {
		free(m->users[i].address);
		free(m->users[i].hash);
	}
	free(m->users);
	for (size_t i = 0; i < m->nentries; i++)
		queue_entry_free(&m->entries[i].e);
	free(m->entries);
}

/* Everything read and checked before the first write: 0, or 1 with the
   message printed. */
static int migrate_prepare(struct config *cfg, struct migrate *m)
{
	char *error = NULL;
	if (become_server(cfg, &error) < 0)
		return fail("cannot start", error);
	if (queue_runner_running("."))
		return fail("refused", xasprintf("the server runs (%s/queue/" QUEUE_RUNNER_PID
						 " names a live process): stop it "
						 "first",
						 cfg->data_dir));
	m->local = (struct store_config){"local", ".", NULL};
	m->pg = (struct store_config){"postgresql", NULL, m->conninfo};
	/* the spool read first is the local one, whatever the configuration
	   says already */
	if ((m->from = userdb_open_backend("local", "users.db", false, &error)) == NULL ||
	    queue_backend_select("local", &error) < 0)
		return fail("the local installation", error);
	if (read_userdb(m, &error) < 0 || read_queue(m, &error) < 0)
		return fail("reading the local installation", error);
	if ((m->to = userdb_open_backend("postgresql", m->conninfo, true, &error)) == NULL ||
	    queue_backend_open("postgresql", m->conninfo, &error) < 0)
		return fail("the database", error);
	if (check_empty(m, &error) < 0)
		return fail(
		    "refused",
		    xasprintf("%s: nothing was changed (" COMMAND " fills an empty database)", error));
	return 0;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static int migrate_run(struct config *cfg, int argc, char **argv)
{
	struct migrate m = {.conninfo = cfg->pg_conninfo};
	if (cli_wants_help(argc, argv)) {
		migrate_usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--conninfo") && i + 1 < argc) {
			m.conninfo = argv[++i];
		} else if (!strncmp(argv[i], "--conninfo=", 11)) {
			m.conninfo = argv[i] + 11;
		} else {
			migrate_usage(stderr);
			return 2;
		}
	}
	if (m.conninfo == NULL || m.conninfo[0] == '\0') {
		fprintf(stderr, "postoffice " COMMAND
				": no database: set [postgresql] conninfo or pass --conninfo\n");
		return 1;
	}
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	printf("copying %s into the database\n", cfg->data_dir);
	int rc = migrate_prepare(cfg, &m);
	const char *what = NULL;
	char *error = NULL;
	if (rc == 0 && copy_all(&m, &what, &error) < 0) {
		fprintf(
		    stderr,
		    "postoffice " COMMAND ": %s: %s\nThe local data is unchanged; the database holds part of "
		    "the copy: empty it (drop the database, create it, postoffice db init) and run again.\n",
		    what, error);
		free(error);
		rc = 1;
	} else if (rc == 0) {
		double s = seconds_since(&start);
		printf("done in %.2f s: %zu users, %u mailboxes, %llu messages (%llu bytes, %.0f "
		       "messages/s), %zu "
		       "queued\nThe local data is unchanged.  Now set [storage] backend = postgresql and "
		       "[postgresql] conninfo, and start the server.\n",
		       s, m.nusers, m.count.mailboxes, (unsigned long long)m.count.messages,
		       (unsigned long long)m.count.bytes, s > 0 ? (double)m.count.messages / s : 0.0,
		       m.nentries);
	}
	migrate_free(&m);
	return rc;
}

const struct cli_command cmd_migrate = {
    COMMAND,     "[--conninfo CONNINFO]", "copy this machine's users, mail and queue into PostgreSQL",
    migrate_run, migrate_usage,
};
