/* The import operations of the storage interfaces (what `postoffice
   migrate-to-postgresql` moves a local installation with), on the
   backends that implement them (postgresql) and the one that refuses
   them (local):
   - store_mailbox_import(): a mailbox keeps UIDVALIDITY, UIDNEXT,
     HIGHESTMODSEQ, MAILBOXID, and each message its UID, flags, keywords,
     internaldate, modseq, EMAILID, POP3 UIDL and octets; expunged UIDs are reported
     by VANISHED; nothing is \Recent; what comes later continues above
     the imported counters; a mailbox that was used is refused, a failed
     import leaves nothing, and malformed imports are refused;
   - queue_entry_import(): an entry keeps its creation time, envelope,
     per-recipient state and held flag; an existing id is not touched.
   The postgresql cases need a server (tests/unit/pg_test.h). */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "queue/spool.h"
#include "store/store.h"
#include "store/store_imap_extra.h"
#include "pg_test.h"
#include "store_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
	char *dir;
	char *conninfo;
	struct store *store;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test_backend_import.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	f->dir = xstrdup(tmpl);
	f->conninfo = pg_test_database_create();
	char *location = xasprintf("user@example.org %s", f->conninfo);
	char *error = NULL;
	f->store = store_open_backend("postgresql", location, &error);
	if (f->store == NULL)
		fail_msg("store_open_backend: %s", error);
	free(location);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(&f->store);
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	pg_test_database_drop(f->conninfo);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- mailboxes ---- */

static const char msg_crlf[] = "Subject: kept\r\n\r\nfirst\r\n";
static const char msg_lf[] = "Subject: bare\n\nsecond\n"; /* 3 bare LF */

struct source {
	const char *const *data;
	size_t fail_at; /* read fails for this index (SIZE_MAX: never) */
	size_t reads;
};

static int source_read(void *ctx, size_t i, const void **data_r, size_t *len_r, char **error_r)
{
	struct source *s = ctx;
	s->reads++;
	if (i == s->fail_at) {
		*error_r = xstrdup("the source broke");
		return -1;
	}
	*data_r = s->data[i];
	*len_r = strlen(s->data[i]);
	return 0;
}

static const struct store_import_msg two_msgs[] = {
    {2, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED, "Work $Important", 1600000000, 20, "Mkept1",
     "1700000000.M1P2.host"},
    {5, STORE_FLAG_DRAFT | STORE_FLAG_PASSED, NULL, 1500000000, 0, NULL, NULL},
};
static const char *const two_data[] = {msg_crlf, msg_lf};
static const uint32_t expunged[] = {3, 4};

/* A mailbox as an import describes it. */
static struct store_import import_of(const char *name, struct source *src)
{
	return (struct store_import){
	    .name = name,
	    .uidvalidity = 4000000000u,
	    .uidnext = 9,
	    .highestmodseq = 50,
	    .mailboxid = "Fkept-mailbox",
	    .msgs = two_msgs,
	    .count = 2,
	    .expunged = expunged,
	    .expunged_count = 2,
	    .read = source_read,
	    .ctx = src,
	};
}

static int emailid_cb(void *ctx, uint32_t uid, const char *emailid)
{
	if (uid == 2)
		*(char **)ctx = xstrdup(emailid);
	return 0;
}

/* What the import gave the mailbox: its counters and messages. */
static void check_imported(struct store_mailbox *mbox)
{
	char *error = NULL;
	struct store_status st;
	assert_int_equal(store_mailbox_status(mbox, &st, &error), 0);
	assert_int_equal(st.uidvalidity, 4000000000u);
	assert_int_equal(st.uidnext, 9);
	assert_int_equal(st.highestmodseq, 50);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.recent, 0);
	assert_string_equal(store_mailbox_objectid(mbox), "Fkept-mailbox");
	struct store_msg_list l;
	assert_int_equal(store_mailbox_list(mbox, &l, &error), 0);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.msgs[0].uid, 2);
	assert_int_equal(l.msgs[0].flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_string_equal(l.msgs[0].keywords, "Work $Important");
	assert_int_equal(l.msgs[0].internaldate, 1600000000);
	assert_int_equal(l.msgs[0].modseq, 20);
	assert_int_equal(l.msgs[0].size, strlen(msg_crlf));
	assert_int_equal(l.msgs[1].uid, 5);
	assert_int_equal(l.msgs[1].flags, STORE_FLAG_DRAFT | STORE_FLAG_PASSED);
	assert_string_equal(l.msgs[1].keywords, "");
	assert_int_equal(l.msgs[1].modseq, 50);               /* 0: HIGHESTMODSEQ */
	assert_int_equal(l.msgs[1].size, strlen(msg_lf) + 3); /* counted with CRLF */
	assert_true(l.msgs[1].bare_lf);
	/* the POP3 UIDL: kept, or made as for any message of the mailbox */
	char id[STORE_STABLE_ID_MAX + 1];
	store_msg_stable_id(&l.msgs[0], id);
	assert_string_equal(id, "1700000000.M1P2.host");
	store_msg_stable_id(&l.msgs[1], id);
	assert_string_equal(id, "4000000000.5");
	store_msg_list_free(&l);
	char *text = store_test_read_uid(mbox, 2);
	assert_string_equal(text, msg_crlf);
	free(text);
	text = store_test_read_uid(mbox, 5);
	assert_string_equal(text, msg_lf);
	free(text);
	char *emailid = NULL;
	assert_int_equal(store_msg_emailids(mbox, 1, 100, emailid_cb, &emailid, &error), 0);
	assert_string_equal(emailid, "Mkept1");
	free(emailid);
	uint32_t *uids;
	size_t n;
	assert_int_equal(store_mailbox_expunged_since(mbox, 49, &uids, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_int_equal(uids[0], 3);
	assert_int_equal(uids[1], 4);
	free(uids);
	assert_int_equal(store_mailbox_expunged_since(mbox, 50, &uids, &n, &error), 0);
	assert_int_equal(n, 0);
	free(uids);
}

static void test_import_keeps_everything(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	struct source src = {two_data, SIZE_MAX, 0};
	/* a new folder, and the INBOX that opening the store made */
	const char *names[] = {"Archive.2024", "INBOX"};
	for (size_t i = 0; i < 2; i++) {
		struct store_import imp = import_of(names[i], &src);
		if (store_mailbox_import(f->store, &imp, &error) < 0)
			fail_msg("store_mailbox_import(%s): %s", names[i], error);
		struct store_mailbox *mbox = store_test_open_mailbox(f->store, names[i]);
		check_imported(mbox);
		store_mailbox_close(&mbox);
	}
	/* what comes later continues above the imported counters */
	struct store_mailbox *mbox = store_test_open_mailbox(f->store, "INBOX");
	uint32_t uid;
	assert_int_equal(store_msg_append(mbox, msg_crlf, strlen(msg_crlf), 0, NULL, 0, &uid, &error), 0);
	assert_int_equal(uid, 9);
	struct store_status st;
	assert_int_equal(store_mailbox_status(mbox, &st, &error), 0);
	assert_int_equal(st.highestmodseq, 51);
	store_mailbox_close(&mbox);
	bool exists;
	assert_int_equal(store_folder_create(f->store, "Later", &exists, &error), 0);
	mbox = store_test_open_mailbox(f->store, "Later");
	assert_true(store_mailbox_uidvalidity(mbox) > 4000000000u);
	store_mailbox_close(&mbox);
}

static void test_import_refuses_used_mailbox(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	struct source src = {two_data, SIZE_MAX, 0};
	struct store_mailbox *mbox = store_test_open_mailbox(f->store, "INBOX");
	uint32_t uid;
	assert_int_equal(store_msg_append(mbox, msg_crlf, strlen(msg_crlf), 0, NULL, 0, &uid, &error), 0);
	/* held mail: refused, and the mailbox is as it was */
	struct store_import imp = import_of("INBOX", &src);
	assert_int_equal(store_mailbox_import(f->store, &imp, &error), -1);
	assert_non_null(strstr(error, "held mail already"));
	free(error);
	error = NULL;
	struct store_status st;
	assert_int_equal(store_mailbox_status(mbox, &st, &error), 0);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.uidnext, 2);
	/* empty again, but used: still refused */
	assert_int_equal(store_msg_expunge(mbox, &uid, 1, &error), 1);
	assert_int_equal(store_mailbox_import(f->store, &imp, &error), -1);
	free(error);
	store_mailbox_close(&mbox);
}

static void test_import_failure_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	struct source src = {two_data, 1, 0};
	struct store_import imp = import_of("Broken", &src);
	assert_int_equal(store_mailbox_import(f->store, &imp, &error), -1);
	assert_non_null(strstr(error, "the source broke"));
	free(error);
	error = NULL;
	struct store_mailbox *mbox = NULL;
	assert_int_equal(store_mailbox_open(f->store, "Broken", &mbox, &error), 0);
	/* and the mailbox can be imported afterwards */
	src.fail_at = SIZE_MAX;
	assert_int_equal(store_mailbox_import(f->store, &imp, &error), 0);
	mbox = store_test_open_mailbox(f->store, "Broken");
	check_imported(mbox);
	store_mailbox_close(&mbox);
}

static void test_import_checks_arguments(void **state)
{
	struct fixture *f = *state;
	struct source src = {two_data, SIZE_MAX, 0};
	static const struct store_import_msg unordered[] = {{5, 0, NULL, 1, 1, NULL, NULL},
							    {2, 0, NULL, 1, 1, NULL, NULL}};
	static const struct store_import_msg too_high[] = {{9, 0, NULL, 1, 1, NULL, NULL}};
	static const struct store_import_msg modseq_high[] = {{1, 0, NULL, 1, 51, NULL, NULL}};
	static const uint32_t expunged_high[] = {12};
	struct store_import bad[7];
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		bad[i] = import_of("Checked", &src);
	bad[0].uidvalidity = 0;
	bad[1].msgs = unordered;
	bad[2].msgs = too_high;
	bad[2].count = 1;
	bad[3].msgs = modseq_high;
	bad[3].count = 1;
	bad[4].expunged = expunged_high;
	bad[4].expunged_count = 1;
	bad[5].name = "a..b";
	bad[6].highestmodseq = 0;
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		char *error = NULL;
		assert_int_equal(store_mailbox_import(f->store, &bad[i], &error), -1);
		assert_non_null(error);
		free(error);
	}
	assert_int_equal(src.reads, 0);
}

/* ---- the queue ---- */

#define RETURN_PATH "Return-Path: <a@a.test>\r\n"
static const char queued[] = RETURN_PATH "Subject: q\r\n\r\nqueued\r\n";

/* An entry as a local spool holds it after some attempts. */
static void entry_make(struct queue_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->id = xstrdup("IMPORTED1");
	e->created = 1700000000;
	e->offset = sizeof(RETURN_PATH) - 1;
	e->sender = xstrdup("a@a.test");
	e->envid = xstrdup("ENV 1");
	e->ret = SMTP_RET_HDRS;
	e->body = SMTP_BODY_8BITMIME;
	e->auth_user = xstrdup("a@a.test");
	e->client_ip = xstrdup("192.0.2.1");
	e->held = true;
	struct queue_entry_rcpt *r =
	    queue_entry_add_rcpt(e, "bob@b.test", "rfc822;Bob@b.test", SMTP_NOTIFY_FAILURE);
	r->attempts = 3;
	r->next_attempt = 1700000900;
	r->last_attempt = 1700000300;
	r->delay_notified = true;
	r->remote_mta = xstrdup("mx.b.test");
	r->last_reply = xstrdup("451 4.7.1 try later");
	r = queue_entry_add_rcpt(e, "carol@c.test", NULL, SMTP_NOTIFY_DEFAULT);
	r->state = QUEUE_RCPT_DELIVERED;
	r->attempts = 1;
	r->last_attempt = 1700000100;
}

static void test_queue_import_keeps_state(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	char *path = xasprintf("%s/msg", f->dir);
	assert_int_equal(fs_write_file_durable(path, queued, strlen(queued), 0600, &error), 0);
	assert_int_equal(queue_backend_open("postgresql", f->conninfo, &error), 0);
	struct queue_entry e, copy;
	entry_make(&e);
	assert_int_equal(queue_entry_import(f->dir, &e, AT_FDCWD, path, &error), 0);
	assert_int_equal(queue_entry_load(NULL, e.id, &copy, &error), 0);
	struct buf a = BUF_INIT, b = BUF_INIT;
	queue_entry_serialize(&e, &a);
	queue_entry_serialize(&copy, &b);
	assert_string_equal(buf_cstr(&b), buf_cstr(&a));
	assert_true(copy.held);
	queue_entry_free(&copy);
	int fd;
	assert_int_equal(queue_msg_open(NULL, e.id, &fd, &error), 1);
	char data[256];
	ssize_t n = read(fd, data, sizeof(data) - 1);
	close(fd);
	assert_int_equal(n, (ssize_t)strlen(queued));
	data[n] = '\0';
	assert_string_equal(data, queued);
	/* an existing id is left alone */
	e.rcpts[0].attempts = 99;
	assert_int_equal(queue_entry_import(f->dir, &e, AT_FDCWD, path, &error), 1);
	assert_int_equal(queue_entry_load(NULL, e.id, &copy, &error), 0);
	assert_int_equal(copy.rcpts[0].attempts, 3);
	queue_entry_free(&copy);
	queue_entry_free(&e);
	buf_free(&a);
	buf_free(&b);
	free(path);
}

/* ---- the local backends refuse ---- */

static void test_local_refuses(void **state)
{
	char tmpl[] = "/tmp/test_backend_import.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char *maildir = xasprintf("%s/Maildir", tmpl), *error = NULL;
	struct store *store = store_open_backend("local", maildir, &error);
	assert_non_null(store);
	struct source src = {two_data, SIZE_MAX, 0};
	struct store_import imp = import_of("Sent", &src);
	assert_int_equal(store_mailbox_import(store, &imp, &error), -1);
	assert_non_null(strstr(error, "cannot import"));
	free(error);
	error = NULL;
	store_close(&store);
	assert_int_equal(queue_backend_select("local", &error), 0);
	struct queue_entry e;
	entry_make(&e);
	assert_int_equal(queue_entry_import(tmpl, &e, AT_FDCWD, maildir, &error), -1);
	assert_non_null(strstr(error, "cannot import"));
	free(error);
	queue_entry_free(&e);
	char *cmd = xasprintf("rm -rf '%s'", tmpl);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(maildir);
}

int main(void)
{
	const struct CMUnitTest local[] = {cmocka_unit_test(test_local_refuses)};
	int failed = cmocka_run_group_tests_name("import: local", local, NULL, NULL);
	int avail = pg_test_available("import: postgresql");
	if (avail <= 0)
		return failed + (avail < 0);
	const struct CMUnitTest pg[] = {
	    cmocka_unit_test_setup_teardown(test_import_keeps_everything, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_refuses_used_mailbox, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_failure_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_checks_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_import_keeps_state, setup, teardown),
	};
	return failed + cmocka_run_group_tests_name("import: postgresql", pg, NULL, NULL);
}
