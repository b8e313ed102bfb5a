/* What the store backend "postgresql" does beyond the contract tests
   (test_backend_store*.c): a message's octets are stored once whatever
   the number of recipients and copies, and removed with the last message
   that refers to them; writers on several connections get distinct,
   increasing UIDs and modseqs; a database that cannot be reached is a
   temporary error (STORE_ERROR_BUSY). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "pg_test.h"
#include "store_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
	char *dir;
	struct store_config conf;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test_store_pg.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	f->dir = xstrdup(tmpl);
	f->conf = (struct store_config){
	    .backend = "postgresql", .data_dir = f->dir, .conninfo = pg_test_database_create()};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	pg_test_database_drop((char *)f->conf.conninfo);
	free(f->dir);
	free(f);
	return 0;
}

/* The first value of sql on the test's database, as a number. */
static long long db_value(struct fixture *f, const char *sql)
{
	PGconn *c = PQconnectdb(f->conf.conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	long long v = PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	PQfinish(c);
	return v;
}

static struct store *open_user(struct fixture *f, const char *address)
{
	char *error = NULL;
	struct store *store = store_open_user(&f->conf, address, &error);
	if (store == NULL)
		fail_msg("store_open_user(%s): %s", address, error);
	return store;
}

static const char message[] = "Subject: once\r\n\r\nthe same octets for everyone\r\n";

/* One delivery to three users, a copy and a MOVE: one body row,
   referred to by every message row; gone with the last of them. */
static void test_body_stored_once(void **state)
{
	struct fixture *f = *state;
	char *src = xasprintf("%s/SRC", f->dir), *error = NULL;
	if (fs_write_file_durable(src, message, strlen(message), 0600, &error) < 0)
		fail_msg("%s", error);
	const char *users[] = {"a@example.org", "b@example.org", "c@example.org"};
	struct store_delivery *sd = store_delivery_new();
	for (size_t i = 0; i < 3; i++)
		store_delivery_add_user(sd, &f->conf, users[i]);
	if (store_delivery_commit(sd, AT_FDCWD, src, strlen(message), &error) < 0)
		fail_msg("store_delivery_commit: %s", error);
	store_delivery_free(&sd);
	assert_int_equal(db_value(f, "SELECT count(*) FROM mail_messages"), 3);
	assert_int_equal(db_value(f, "SELECT count(*) FROM mail_bodies"), 1);
	assert_int_equal(db_value(f, "SELECT refs FROM mail_bodies"), 3);
	assert_int_equal(db_value(f, "SELECT size FROM mail_bodies"), strlen(message));

	/* a's copy into Archive, and the same octets appended by b: still one */
	struct store *a = open_user(f, users[0]), *b = open_user(f, users[1]);
	struct store_mailbox *inbox_a = store_test_open_mailbox(a, "INBOX"),
			     *archive = store_test_open_mailbox(a, "Archive");
	uint32_t uid = 1, *dest = NULL;
	assert_int_equal(store_msg_copy(inbox_a, &uid, 1, archive, false, &dest, &error), 1);
	free(dest);
	struct store_mailbox *sent_b = store_test_open_mailbox(b, "Sent");
	uint32_t sent_uid = 0;
	assert_int_equal(store_msg_append(sent_b, message, strlen(message), 0, NULL, 0, &sent_uid, &error),
			 0);
	assert_int_equal(db_value(f, "SELECT count(*) FROM mail_messages"), 5);
	assert_int_equal(db_value(f, "SELECT count(*) FROM mail_bodies"), 1);
	assert_int_equal(db_value(f, "SELECT refs FROM mail_bodies"), 5);
	/* another message is another body */
	uint32_t other = 0;
	assert_int_equal(store_msg_append(sent_b, "x\r\n", 3, 0, NULL, 0, &other, &error), 0);
	assert_int_equal(db_value(f, "SELECT count(*) FROM mail_bodies"), 2);

	/* expunges, a MOVE, a deleted folder and a purged user: the body
	   stays while one row refers to it */
	assert_int_equal(store_msg_expunge(inbox_a, &uid, 1, &error), 1);
	struct store_mailbox *trash_a = store_test_open_mailbox(a, "Trash");
	uint32_t archived = 1;
	assert_int_equal(store_msg_copy(archive, &archived, 1, trash_a, true, &dest, &error), 1);
	free(dest);
	assert_int_equal(db_value(f, "SELECT refs FROM mail_bodies WHERE size > 3"), 4);
	store_mailbox_close(&trash_a);
	store_mailbox_close(&archive);
	assert_int_equal(store_folder_delete(a, "Trash", &error), 0);
	assert_int_equal(store_msg_expunge(sent_b, &sent_uid, 1, &error), 1);
	assert_int_equal(db_value(f, "SELECT refs FROM mail_bodies WHERE size > 3"), 2);
	assert_int_equal(store_user_purge(&f->conf, users[2], &error), 0);
	assert_int_equal(db_value(f, "SELECT refs FROM mail_bodies WHERE size > 3"), 1);
	struct store_mailbox *inbox_b = store_test_open_mailbox(b, "INBOX");
	assert_int_equal(store_msg_expunge(inbox_b, &uid, 1, &error), 1);
	assert_int_equal(db_value(f, "SELECT count(*) FROM mail_bodies WHERE size > 3"), 0);
	assert_int_equal(db_value(f, "SELECT count(*) FROM mail_bodies"), 1); /* "x" */
	store_mailbox_close(&inbox_b);
	store_mailbox_close(&sent_b);
	store_mailbox_close(&inbox_a);
	store_close(&a);
	store_close(&b);
	free(src);
}

#define WRITERS 2
#define APPENDS 40

struct writer {
	struct fixture *f;
	uint32_t uids[APPENDS];
	char *error;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	struct store *store = store_open_user(&w->f->conf, "a@example.org", &w->error);
	struct store_mailbox *inbox = NULL;
	if (store == NULL || store_mailbox_open(store, "INBOX", &inbox, &w->error) != 1) {
		store_close(&store);
		return NULL;
	}
	for (size_t i = 0; i < APPENDS && w->error == NULL; i++) {
		char body[64];
		snprintf(body, sizeof(body), "Subject: %p %zu\r\n\r\n", (void *)w, i);
		if (store_msg_append(inbox, body, strlen(body), 0, NULL, 0, &w->uids[i], &w->error) < 0)
			break;
		/* and a flag change between appends, from the same writer */
		if (i % 4 == 0)
			(void)store_msg_set_flags(inbox, &w->uids[i], 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
						  NULL, 0, NULL, NULL, &w->error);
	}
	store_mailbox_close(&inbox);
	store_close(&store);
	return NULL;
}

/* Two handles (two connections, as two nodes would have) append at once:
   every UID is given once, each writer sees its own increasing, and the
   modseqs follow the UIDs (a message listed later never has a lower
   modseq than one listed before it, flags aside). */
static void test_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	struct store *store = open_user(f, "a@example.org");
	struct writer w[WRITERS];
	pthread_t t[WRITERS];
	for (size_t i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.f = f};
		assert_int_equal(pthread_create(&t[i], NULL, writer_run, &w[i]), 0);
	}
	for (size_t i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		if (w[i].error != NULL)
			fail_msg("writer %zu: %s", i, w[i].error);
	}
	bool seen[WRITERS * APPENDS + 1] = {false};
	for (size_t i = 0; i < WRITERS; i++) {
		for (size_t k = 0; k < APPENDS; k++) {
			uint32_t uid = w[i].uids[k];
			assert_true(uid >= 1 && uid <= WRITERS * APPENDS);
			assert_false(seen[uid]);
			seen[uid] = true;
			if (k > 0)
				assert_true(uid > w[i].uids[k - 1]);
		}
	}
	/* modseqs of the appends (not changed since: no flag) ascend with
	   the UIDs, and no two changes share one */
	assert_int_equal(db_value(f,
				  "SELECT count(*) FROM (SELECT uid, modseq, lag(modseq) OVER (ORDER BY uid)"
				  " AS prev FROM mail_messages WHERE flags = 0) x WHERE modseq <= prev"),
			 0);
	assert_int_equal(db_value(f, "SELECT count(*) - count(DISTINCT modseq) FROM mail_messages"), 0);
	struct store_mailbox *inbox = store_test_open_mailbox(store, "INBOX");
	struct store_status st;
	char *error = NULL;
	assert_int_equal(store_mailbox_status(inbox, &st, &error), 0);
	assert_int_equal(st.messages, WRITERS * APPENDS);
	assert_int_equal(st.uidnext, WRITERS * APPENDS + 1);
	/* every append and every flag change took a modseq of its own */
	assert_int_equal(st.highestmodseq, 1 + WRITERS * (APPENDS + (APPENDS + 3) / 4));
	store_mailbox_close(&inbox);
	store_close(&store);
}

/* A database that cannot be reached: a temporary error, which the
   engines answer with 4xx / NO [UNAVAILABLE]. */
static void test_unreachable_is_temporary(void **state)
{
	struct fixture *f = *state;
	/* a port nobody listens on (the test's own server's port + 1 may be
	   anything: a closed unix socket directory is certain) */
	struct store_config down = f->conf;
	down.conninfo = "host=/nonexistent-socket-dir port=1 dbname=x connect_timeout=2";
	char *error = NULL;
	assert_null(store_open_user(&down, "a@example.org", &error));
	assert_non_null(error);
	assert_int_equal(strncmp(error, STORE_ERROR_BUSY, strlen(STORE_ERROR_BUSY)), 0);
	free(error);
	error = NULL;
	uint64_t bytes;
	assert_int_equal(store_user_usage(&down, "a@example.org", &bytes, &error), -1);
	assert_int_equal(strncmp(error, STORE_ERROR_BUSY, strlen(STORE_ERROR_BUSY)), 0);
	free(error);
}

int main(void)
{
	int avail = pg_test_available("store backend postgresql");
	if (avail <= 0)
		return avail < 0;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_body_stored_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unreachable_is_temporary, setup, teardown),
	};
	return cmocka_run_group_tests_name("store backend postgresql", tests, NULL, NULL);
}
