/* Contract tests of the store by user (store.h: store_open_user, the
   users' stores without a handle, delivery, the maildrop lock), run
   against every backend in the table below and only through the public
   functions: a store is named by a configuration and an address, delivery
   reaches several users at once (each listed in INBOX with the message's
   size), can be taken back and fails whole, usage counts what was
   delivered, and the maildrop lock excludes every other handle.  A new
   backend passes when it is added to store_backends[] with a way to make
   an empty configuration. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "pg_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the backends under test ---- */

struct store_backend_case {
	const char *name;
	/* A configuration with no users' stores yet, below the scratch
	   directory dir (which outlives it). */
	struct store_config (*config)(const char *dir);
	bool needs_pg; /* a PostgreSQL server (pg_test.h); conf.conninfo is its database */
	bool copies;   /* delivery keeps a durable copy of its own (the source
			  need not be synced) */
};

static struct store_config local_config(const char *dir)
{
	return (struct store_config){.backend = "local", .data_dir = dir};
}

/* A new database; teardown drops it. */
static struct store_config pg_config(const char *dir)
{
	return (struct store_config){
	    .backend = "postgresql", .data_dir = dir, .conninfo = pg_test_database_create()};
}

static const struct store_backend_case store_backends[] = {
    {"local", local_config, false, false},
    {"postgresql", pg_config, true, true},
};

/* ---- fixture ---- */

struct fixture {
	const struct store_backend_case *be;
	char *dir;
	struct store_config conf;
	char *src;     /* a message file, fsynced: dir/SRC */
	uint64_t size; /* its octets */
};

static const char message[] = "Return-Path: <a@a.test>\r\nSubject: hello\r\n\r\nbody\r\n";

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->be = *state;
	char tmpl[] = "/tmp/test_backend_store_user.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	f->dir = xstrdup(tmpl);
	f->conf = f->be->config(f->dir);
	f->src = xasprintf("%s/SRC", f->dir);
	f->size = strlen(message);
	char *error = NULL;
	if (fs_write_file_durable(f->src, message, f->size, 0600, &error) < 0)
		fail_msg("%s", error);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	if (f->be->needs_pg)
		pg_test_database_drop((char *)f->conf.conninfo);
	free(f->src);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static struct store *open_user(struct fixture *f, const char *address)
{
	char *error = NULL;
	struct store *store = store_open_user(&f->conf, address, &error);
	if (store == NULL)
		fail_msg("store_open_user(%s): %s", address, error);
	return store;
}

/* The INBOX listing of address, through a handle of its own. */
static void inbox_list(struct fixture *f, const char *address, struct store_msg_list *list_r)
{
	struct store *store = open_user(f, address);
	struct store_mailbox *inbox = NULL;
	char *error = NULL;
	if (store_mailbox_open(store, "INBOX", &inbox, &error) != 1)
		fail_msg("INBOX of %s: %s", address, error != NULL ? error : "missing");
	if (store_mailbox_list(inbox, list_r, &error) < 0)
		fail_msg("store_mailbox_list: %s", error);
	store_mailbox_close(&inbox);
	store_close(&store);
}

static size_t inbox_count(struct fixture *f, const char *address)
{
	struct store_msg_list l;
	inbox_list(f, address, &l);
	size_t n = l.count;
	store_msg_list_free(&l);
	return n;
}

/* Delivers f's message to users[0..n) in one delivery. */
static struct store_delivery *deliver(struct fixture *f, const char *const *users, size_t n)
{
	struct store_delivery *sd = store_delivery_new();
	for (size_t i = 0; i < n; i++)
		store_delivery_add_user(sd, &f->conf, users[i]);
	char *error = NULL;
	if (store_delivery_commit(sd, AT_FDCWD, f->src, f->size, &error) < 0)
		fail_msg("store_delivery_commit: %s", error);
	return sd;
}

/* The content of the only message of address's INBOX. */
static char *only_message(struct fixture *f, const char *address, uint64_t *size_r)
{
	struct store *store = open_user(f, address);
	struct store_mailbox *inbox = NULL;
	char *error = NULL;
	assert_int_equal(store_mailbox_open(store, "INBOX", &inbox, &error), 1);
	struct store_msg_list l;
	assert_int_equal(store_mailbox_list(inbox, &l, &error), 0);
	assert_int_equal(l.count, 1);
	*size_r = l.msgs[0].size;
	int fd;
	assert_int_equal(store_msg_open(inbox, &l.msgs[0], &fd, &error), 1);
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	store_msg_list_free(&l);
	store_mailbox_close(&inbox);
	store_close(&store);
	return xstrdup(buf);
}

static uint64_t usage(struct fixture *f, const char *address, int want_rc)
{
	uint64_t bytes = 1;
	char *error = NULL;
	int rc = store_user_usage(&f->conf, address, &bytes, &error);
	if (rc < 0)
		fail_msg("store_user_usage(%s): %s", address, error);
	assert_int_equal(rc, want_rc);
	return bytes;
}

/* ---- tests ---- */

static void test_open_user(void **state)
{
	struct fixture *f = *state;
	struct store *a = open_user(f, "alice@example.org");
	assert_string_equal(store_backend_name(a), f->be->name);
	/* a second handle on the same store sees what the first wrote */
	struct store *again = open_user(f, "alice@example.org");
	struct store *another = NULL;
	char *error = NULL;
	assert_non_null(another = store_open_another(a, &error));
	assert_string_equal(store_backend_name(another), f->be->name);
	struct store_mailbox *inbox = NULL;
	assert_int_equal(store_mailbox_open(a, "INBOX", &inbox, &error), 1);
	uint32_t uid = 0;
	assert_int_equal(store_msg_append(inbox, message, f->size, 0, NULL, 0, &uid, &error), 0);
	store_mailbox_close(&inbox);
	struct store *const handles[] = {again, another};
	for (size_t i = 0; i < 2; i++) {
		struct store_status st;
		assert_int_equal(store_mailbox_open(handles[i], "INBOX", &inbox, &error), 1);
		assert_int_equal(store_mailbox_status(inbox, &st, &error), 0);
		assert_int_equal(st.messages, 1);
		store_mailbox_close(&inbox);
	}
	/* another user's store is another store */
	assert_int_equal(inbox_count(f, "bob@example.org"), 0);
	char *la = store_user_location(&f->conf, "alice@example.org");
	char *lb = store_user_location(&f->conf, "bob@example.org");
	assert_non_null(la);
	assert_non_null(lb);
	assert_string_not_equal(la, lb);
	free(la);
	free(lb);
	store_close(&another);
	store_close(&again);
	store_close(&a);
	/* a configuration naming no backend is an error, not a crash */
	struct store_config bad = {.backend = "no-such-backend", .data_dir = f->dir};
	assert_null(store_open_user(&bad, "alice@example.org", &error));
	assert_non_null(strstr(error, "no-such-backend"));
	free(error);
	assert_null(store_user_location(&bad, "alice@example.org"));
}

static void test_deliver_to_several_users(void **state)
{
	struct fixture *f = *state;
	/* one store already open and synced, one made by the delivery */
	struct store_msg_list l;
	inbox_list(f, "alice@example.org", &l);
	assert_int_equal(l.count, 0);
	store_msg_list_free(&l);
	const char *users[] = {"alice@example.org", "bob@example.org", "carol@example.org",
			       "alice@example.org"};
	struct store_delivery *sd = store_delivery_new();
	for (size_t i = 0; i < 4; i++)
		store_delivery_add_user(sd, &f->conf, users[i]);
	assert_int_equal(store_delivery_count(sd), 3); /* alice once */
	char *error = NULL;
	assert_int_equal(store_delivery_commit(sd, AT_FDCWD, f->src, f->size, &error), 0);
	store_delivery_free(&sd);
	assert_null(sd);
	for (size_t i = 0; i < 3; i++) {
		uint64_t size = 0;
		char *data = only_message(f, users[i], &size);
		assert_int_equal(size, f->size);
		assert_string_equal(data, message);
		free(data);
	}
	assert_int_equal(inbox_count(f, "dave@example.org"), 0);
	/* the source is the caller's: still there */
	assert_int_equal(access(f->src, F_OK), 0);
}

/* Whether the caller must sync the source first: not when every store
   keeps a copy of its own; always with a Maildir (the local backend links
   the file) or with no store at all. */
static void test_deliver_needs_synced_source(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *sd = store_delivery_new();
	assert_true(store_delivery_needs_synced_source(sd));
	store_delivery_add_user(sd, &f->conf, "alice@example.org");
	store_delivery_add_user(sd, &f->conf, "bob@example.org");
	assert_int_equal(store_delivery_needs_synced_source(sd), !f->be->copies);
	char *maildir = xasprintf("%s/Maildir", f->dir);
	store_delivery_add_maildir(sd, maildir);
	assert_true(store_delivery_needs_synced_source(sd));
	free(maildir);
	store_delivery_free(&sd);
}

static void test_deliver_twice(void **state)
{
	struct fixture *f = *state;
	const char *user = "alice@example.org";
	for (int i = 0; i < 2; i++) {
		struct store_delivery *sd = deliver(f, &user, 1);
		store_delivery_free(&sd);
	}
	struct store_msg_list l;
	inbox_list(f, user, &l);
	assert_int_equal(l.count, 2);
	assert_true(l.msgs[0].uid < l.msgs[1].uid);
	char id0[STORE_STABLE_ID_MAX + 1], id1[STORE_STABLE_ID_MAX + 1];
	store_msg_stable_id(&l.msgs[0], id0);
	store_msg_stable_id(&l.msgs[1], id1);
	assert_string_not_equal(id0, id1);
	assert_int_equal(l.msgs[0].size, f->size);
	assert_int_equal(l.msgs[1].size, f->size);
	store_msg_list_free(&l);
}

static void test_deliver_revert(void **state)
{
	struct fixture *f = *state;
	const char *users[] = {"alice@example.org", "bob@example.org"};
	struct store_delivery *sd = deliver(f, users, 2);
	assert_int_equal(inbox_count(f, users[0]), 1);
	char *error = NULL;
	assert_int_equal(store_delivery_revert(sd, &error), 0);
	store_delivery_free(&sd);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(inbox_count(f, users[i]), 0);
		assert_int_equal(usage(f, users[i], 1), 0);
	}
	/* a revert after an undelivered commit takes back nothing */
	sd = store_delivery_new();
	assert_int_equal(store_delivery_revert(sd, &error), 0);
	store_delivery_free(&sd);
}

static size_t folder_count(struct fixture *f, const char *address, const char *folder)
{
	struct store *store = open_user(f, address);
	struct store_mailbox *mbox = NULL;
	char *error = NULL;
	if (store_mailbox_open(store, folder, &mbox, &error) != 1)
		fail_msg("%s of %s: %s", folder, address, error != NULL ? error : "missing");
	struct store_status st;
	assert_int_equal(store_mailbox_status(mbox, &st, &error), 0);
	store_mailbox_close(&mbox);
	store_close(&store);
	return st.messages;
}

/* Quarantined mail goes into Junk: of a new store, and of a store whose
   Junk folder was deleted; a revert takes it back from there. */
static void test_deliver_into_folder(void **state)
{
	struct fixture *f = *state;
	const char *users[] = {"alice@example.org", "bob@example.org"};
	char *error = NULL;
	assert_int_equal(store_user_create(&f->conf, users[1], (uid_t)-1, (gid_t)-1, &error), 0);
	struct store *bob = open_user(f, users[1]);
	if (store_folder_delete(bob, "Junk", &error) < 0)
		fail_msg("store_folder_delete: %s", error);
	store_close(&bob);
	struct store_delivery *sd = store_delivery_new();
	for (size_t i = 0; i < 2; i++)
		store_delivery_add_user(sd, &f->conf, users[i]);
	store_delivery_set_folder(sd, "Junk");
	assert_int_equal(store_delivery_commit(sd, AT_FDCWD, f->src, f->size, &error), 0);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(folder_count(f, users[i], "Junk"), 1);
		assert_int_equal(inbox_count(f, users[i]), 0);
	}
	assert_int_equal(store_delivery_revert(sd, &error), 0);
	store_delivery_free(&sd);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(folder_count(f, users[i], "Junk"), 0);
}

static void test_deliver_failure_delivers_nothing(void **state)
{
	struct fixture *f = *state;
	const char *users[] = {"alice@example.org", "bob@example.org"};
	struct store_delivery *sd = store_delivery_new();
	for (size_t i = 0; i < 2; i++)
		store_delivery_add_user(sd, &f->conf, users[i]);
	char *error = NULL;
	char *missing = xasprintf("%s/no-such-file", f->dir);
	assert_int_equal(store_delivery_commit(sd, AT_FDCWD, missing, f->size, &error), -1);
	assert_non_null(error);
	free(error);
	error = NULL;
	assert_int_equal(store_delivery_revert(sd, &error), 0);
	store_delivery_free(&sd);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(inbox_count(f, users[i]), 0);
	/* an unknown backend fails the commit, naming it */
	struct store_config bad = {.backend = "no-such-backend", .data_dir = f->dir};
	sd = store_delivery_new();
	store_delivery_add_user(sd, &f->conf, users[0]);
	store_delivery_add_user(sd, &bad, users[1]);
	assert_int_equal(store_delivery_commit(sd, AT_FDCWD, f->src, f->size, &error), -1);
	assert_non_null(strstr(error, "no-such-backend"));
	free(error);
	store_delivery_free(&sd);
	assert_int_equal(inbox_count(f, users[0]), 0);
	free(missing);
}

static void test_usage_counts_delivered_mail(void **state)
{
	struct fixture *f = *state;
	const char *user = "alice@example.org";
	/* no store yet */
	assert_int_equal(usage(f, user, 0), 0);
	char *error = NULL;
	assert_int_equal(store_user_create(&f->conf, user, (uid_t)-1, (gid_t)-1, &error), 0);
	assert_int_equal(usage(f, user, 1), 0);
	/* counted at once, before any sync */
	struct store_delivery *sd = deliver(f, &user, 1);
	store_delivery_free(&sd);
	assert_int_equal(usage(f, user, 1), f->size);
	sd = deliver(f, &user, 1);
	store_delivery_free(&sd);
	assert_int_equal(usage(f, user, 1), 2 * f->size);
	/* still after the sync moved them; other folders count too */
	struct store *store = open_user(f, user);
	struct store_mailbox *sent = NULL;
	assert_int_equal(store_mailbox_open(store, "Sent", &sent, &error), 1);
	uint32_t uid;
	assert_int_equal(store_msg_append(sent, "x\r\n", 3, 0, NULL, 0, &uid, &error), 0);
	store_mailbox_close(&sent);
	store_close(&store);
	assert_int_equal(inbox_count(f, user), 2);
	assert_int_equal(usage(f, user, 1), 2 * f->size + 3);
	/* and only the user's own */
	assert_int_equal(usage(f, "bob@example.org", 0), 0);
}

static int collect_folder(void *ctx, const char *name)
{
	char *names = ctx;
	strcat(names, name);
	strcat(names, " ");
	return 0;
}

static void test_user_create_and_purge(void **state)
{
	struct fixture *f = *state;
	const char *user = "alice@example.org";
	char *error = NULL;
	assert_int_equal(store_user_create(&f->conf, user, (uid_t)-1, (gid_t)-1, &error), 0);
	assert_int_equal(store_user_create(&f->conf, user, (uid_t)-1, (gid_t)-1, &error), 0);
	struct store *store = open_user(f, user);
	char names[256] = "";
	assert_int_equal(store_folder_list(store, collect_folder, names, &error), 0);
	store_close(&store);
	static const char *const standard[] = {"INBOX ", "Sent ", "Drafts ", "Trash ", "Junk ", "Archive "};
	for (size_t i = 0; i < 6; i++)
		if (strstr(names, standard[i]) == NULL)
			fail_msg("folder %snot in %s", standard[i], names);
	struct store_delivery *sd = deliver(f, &user, 1);
	store_delivery_free(&sd);
	assert_int_equal(store_user_purge(&f->conf, user, &error), 0);
	assert_int_equal(usage(f, user, 0), 0);
	/* nothing there: not an error */
	assert_int_equal(store_user_purge(&f->conf, user, &error), 0);
	assert_int_equal(store_user_purge(&f->conf, "nobody@nowhere.test", &error), 0);
	/* the user's mail went with it */
	assert_int_equal(inbox_count(f, user), 0);
}

/* 1 when a new handle in a child process can take address's lock; 0 when
   the lock is held (exit 1); 2 when the child could not even ask (exit 2:
   no store, an error; printed). */
static int child_lock(struct fixture *f, const char *address)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *error = NULL;
		struct store *store = store_open_user(&f->conf, address, &error);
		int rc = store != NULL ? store_maildrop_lock(store, &error) : -1;
		if (rc < 0)
			fprintf(stderr, "child_lock: %s\n", error != NULL ? error : "?");
		_exit(rc == 1 ? 0 : rc == 0 ? 1 : 2);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status) == 0 ? 1 : WEXITSTATUS(status) == 1 ? 0 : 2;
}

/* child_lock(), asked again (2 s at most) while the child could not ask:
   a database that has just ended other sessions (a test's DROP DATABASE
   ... WITH (FORCE)) may refuse a connection for a moment. */
static int child_can_lock(struct fixture *f, const char *address)
{
	int rc = child_lock(f, address);
	for (int i = 0; i < 20 && rc == 2; i++) {
		usleep(100 * 1000);
		rc = child_lock(f, address);
	}
	assert_int_not_equal(rc, 2);
	return rc;
}

static void test_maildrop_lock(void **state)
{
	struct fixture *f = *state;
	const char *user = "alice@example.org";
	struct store *one = open_user(f, user), *two = open_user(f, user);
	char *error = NULL;
	assert_int_equal(store_maildrop_lock(one, &error), 1);
	assert_int_equal(store_maildrop_lock(one, &error), 1); /* held already */
	assert_int_equal(store_maildrop_lock(two, &error), 0); /* same process */
	assert_false(child_can_lock(f, user));
	/* another user's maildrop is another lock */
	struct store *bob = open_user(f, "bob@example.org");
	assert_int_equal(store_maildrop_lock(bob, &error), 1);
	store_close(&bob);
	/* unlock, and close, release it */
	store_maildrop_unlock(one);
	assert_int_equal(store_maildrop_lock(two, &error), 1);
	assert_int_equal(store_maildrop_lock(one, &error), 0);
	store_close(&two);
	assert_true(child_can_lock(f, user)); /* and the child's exit freed it */
	assert_int_equal(store_maildrop_lock(one, &error), 1);
	store_maildrop_unlock(one);
	store_maildrop_unlock(one); /* unlocking twice is harmless */
	store_close(&one);
}

int main(void)
{
	int failed = 0;
	for (size_t i = 0; i < N_ELEMENTS(store_backends); i++) {
		void *be = (void *)&store_backends[i];
		char *name = xasprintf("store backend %s: users", store_backends[i].name);
		int avail = store_backends[i].needs_pg ? pg_test_available(name) : 1;
		if (avail <= 0) {
			failed += avail < 0;
			free(name);
			continue;
		}
#define T(f) cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, be)
		const struct CMUnitTest tests[] = {
		    T(test_open_user),
		    T(test_deliver_to_several_users),
		    T(test_deliver_needs_synced_source),
		    T(test_deliver_twice),
		    T(test_deliver_revert),
		    T(test_deliver_into_folder),
		    T(test_deliver_failure_delivers_nothing),
		    T(test_usage_counts_delivered_mail),
		    T(test_user_create_and_purge),
		    T(test_maildrop_lock),
		};
#undef T
		failed += cmocka_run_group_tests_name(name, tests, NULL, NULL);
		free(name);
	}
	return failed;
}
