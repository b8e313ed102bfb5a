/* Contract tests of the store interface (store.h, store_imap_extra.h), run
   against every backend in the table below and only through the public
   dispatchers: UIDs (assignment, never reused, stable across reopen),
   UIDVALIDITY, flags, keywords, modseq (monotonic, CONDSTORE), expunge
   (with VANISHED), copy and move, MULTIAPPEND, quota accounting, folders and
   subscriptions, \Recent, opening for reading only, the IMAP cache, stable
   ids, object ids (RFC 8474) and watching.  A new
   backend passes when it is added to store_backends[] with a way to make
   an empty location. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"
#include "store/store_imap_extra.h"
#include "lib/xalloc.h"
#include "pg_test.h"
#include "store_test.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the backends under test ---- */

struct store_backend_case {
	const char *name;
	/* An empty store location below the scratch directory dir. */
	char *(*location)(const char *dir);
	/* Removes what location made and frees it (NULL: free()). */
	void (*drop)(char *location);
	bool needs_pg; /* a PostgreSQL server (pg_test.h) */
};

static char *local_location(const char *dir)
{
	return xasprintf("%s/Maildir", dir);
}

/* "ADDRESS CONNINFO" of a new database. */
static char *pg_location(const char *dir)
{
	char *conninfo = pg_test_database_create();
	char *location = xasprintf("user@example.org %s", conninfo);
	free(conninfo);
	return location;
}

static const struct store_backend_case store_backends[] = {
    {"local", local_location, NULL, false},
    {"postgresql", pg_location, pg_test_database_drop, true},
};

/* ---- fixture ---- */

struct fixture {
	const struct store_backend_case *be;
	char *dir;
	char *location;
	struct store *store;
	struct store_mailbox *inbox;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->be = *state;
	char tmpl[] = "/tmp/test_backend_store.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	f->dir = xstrdup(tmpl);
	f->location = f->be->location(f->dir);
	*state = f;
	return 0;
}

static void fixture_close(struct fixture *f)
{
	store_mailbox_close(&f->inbox);
	store_close(&f->store);
}

/* Opens the store and its INBOX. */
static void fixture_open(struct fixture *f)
{
	char *error = NULL;
	f->store = store_open_backend(f->be->name, f->location, &error);
	if (f->store == NULL)
		fail_msg("store_open_backend(%s): %s", f->be->name, error);
	if (store_mailbox_open(f->store, "INBOX", &f->inbox, &error) != 1)
		fail_msg("store_mailbox_open(INBOX): %s", error != NULL ? error : "missing");
}

static void fixture_reopen(struct fixture *f)
{
	fixture_close(f);
	fixture_open(f);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	fixture_close(f);
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	if (f->be->drop != NULL)
		f->be->drop(f->location);
	else
		free(f->location);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static const char msg_a[] = "Subject: a\r\n\r\nfirst\r\n";
static const char msg_b[] = "Subject: b\r\n\r\nsecond message\r\n";
static const char msg_c[] = "Subject: c\r\n\r\nthird\r\n.\r\n";

static uint32_t append(struct store_mailbox *mbox, const char *data, uint32_t flags, const char *keywords,
		       int64_t internaldate)
{
	char *error = NULL;
	uint32_t uid = 0;
	if (store_msg_append(mbox, data, strlen(data), flags, keywords, internaldate, &uid, &error) < 0)
		fail_msg("store_msg_append: %s", error);
	assert_true(uid > 0);
	return uid;
}

static struct store_mailbox *open_mailbox(struct fixture *f, const char *name)
{
	struct store_mailbox *mbox = NULL;
	char *error = NULL;
	if (store_mailbox_open(f->store, name, &mbox, &error) != 1)
		fail_msg("store_mailbox_open(%s): %s", name, error != NULL ? error : "missing");
	return mbox;
}

static void create_folder(struct fixture *f, const char *name)
{
	bool exists;
	char *error = NULL;
	if (store_folder_create(f->store, name, &exists, &error) < 0)
		fail_msg("store_folder_create(%s): %s", name, error);
}

static void list(struct store_mailbox *mbox, struct store_msg_list *l)
{
	char *error = NULL;
	if (store_mailbox_list(mbox, l, &error) < 0)
		fail_msg("store_mailbox_list: %s", error);
}

static void status(struct store_mailbox *mbox, struct store_status *st)
{
	char *error = NULL;
	if (store_mailbox_status(mbox, st, &error) < 0)
		fail_msg("store_mailbox_status: %s", error);
}

static const struct store_msg *find_uid(const struct store_msg_list *l, uint32_t uid)
{
	for (size_t i = 0; i < l->count; i++)
		if (l->msgs[i].uid == uid)
			return &l->msgs[i];
	return NULL;
}

static int set_flags(struct store_mailbox *mbox, uint32_t uid, enum store_flag_op op, uint32_t flags,
		     const char *keywords)
{
	char *error = NULL;
	int n = store_msg_set_flags(mbox, &uid, 1, op, flags, keywords, 0, NULL, NULL, &error);
	if (n < 0)
		fail_msg("store_msg_set_flags: %s", error);
	return n;
}

static uint64_t highestmodseq(struct store_mailbox *mbox)
{
	struct store_status st;
	status(mbox, &st);
	return st.highestmodseq;
}

/* ---- tests ---- */

static void test_open_by_name(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	assert_null(store_open_backend("no-such-backend", f->location, &error));
	assert_non_null(strstr(error, "no-such-backend"));
	free(error);
	fixture_open(f);
	assert_string_equal(store_backend_name(f->store), f->be->name);
	assert_string_equal(store_mailbox_name(f->inbox), "INBOX");
}

static void test_uid_assignment(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	assert_int_equal(append(f->inbox, msg_a, 0, NULL, 0), 1);
	assert_int_equal(append(f->inbox, msg_b, 0, NULL, 0), 2);
	assert_int_equal(append(f->inbox, msg_c, 0, NULL, 0), 3);
	struct store_msg_list l;
	list(f->inbox, &l);
	assert_int_equal(l.count, 3);
	const char *bodies[] = {msg_a, msg_b, msg_c};
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(l.msgs[i].uid, i + 1);
		assert_int_equal(l.msgs[i].size, strlen(bodies[i]));
		assert_false(l.msgs[i].bare_lf);
	}
	store_msg_list_free(&l);
	struct store_status st;
	status(f->inbox, &st);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.uidnext, 4);
	assert_int_equal(st.unseen, 3);
	assert_int_equal(st.size, strlen(msg_a) + strlen(msg_b) + strlen(msg_c));
	uint32_t uidnext;
	uint64_t modseq;
	char *error = NULL;
	assert_int_equal(store_mailbox_get_counters(f->inbox, &uidnext, &modseq, &error), 0);
	assert_int_equal(uidnext, 4);
	assert_int_equal(modseq, st.highestmodseq);
}

static void test_uid_stable_across_reopen(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	append(f->inbox, msg_a, 0, NULL, 0);
	append(f->inbox, msg_b, 0, NULL, 0);
	struct store_status before;
	status(f->inbox, &before);
	char id_before[STORE_STABLE_ID_MAX + 1];
	struct store_msg_list l;
	list(f->inbox, &l);
	store_msg_stable_id(&l.msgs[1], id_before);
	store_msg_list_free(&l);

	fixture_reopen(f);
	struct store_status after;
	status(f->inbox, &after);
	assert_int_equal(after.uidvalidity, before.uidvalidity);
	assert_int_equal(after.uidnext, before.uidnext);
	assert_int_equal(after.messages, 2);
	list(f->inbox, &l);
	assert_int_equal(l.msgs[0].uid, 1);
	assert_int_equal(l.msgs[1].uid, 2);
	char id_after[STORE_STABLE_ID_MAX + 1];
	store_msg_stable_id(&l.msgs[1], id_after);
	assert_string_equal(id_after, id_before);
	store_msg_list_free(&l);
	char *text = store_test_read_uid(f->inbox, 2);
	assert_string_equal(text, msg_b);
	free(text);
	/* A new message continues the sequence. */
	assert_int_equal(append(f->inbox, msg_c, 0, NULL, 0), 3);
}

static void test_uid_never_reused(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	append(f->inbox, msg_a, 0, NULL, 0);
	uint32_t uid = append(f->inbox, msg_b, 0, NULL, 0);
	char *error = NULL;
	assert_int_equal(store_msg_expunge(f->inbox, &uid, 1, &error), 1);
	fixture_reopen(f);
	assert_int_equal(append(f->inbox, msg_c, 0, NULL, 0), 3);
}

static void test_uidvalidity(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	create_folder(f, "Work");
	struct store_mailbox *work = open_mailbox(f, "Work");
	uint32_t inbox_uv = store_mailbox_uidvalidity(f->inbox);
	uint32_t work_uv = store_mailbox_uidvalidity(work);
	assert_true(inbox_uv > 0);
	assert_true(work_uv > 0);
	struct store_status st;
	status(work, &st);
	assert_int_equal(st.uidvalidity, work_uv);
	store_mailbox_close(&work);

	fixture_reopen(f);
	assert_int_equal(store_mailbox_uidvalidity(f->inbox), inbox_uv);
	work = open_mailbox(f, "Work");
	assert_int_equal(store_mailbox_uidvalidity(work), work_uv);
	store_mailbox_close(&work);

	/* A mailbox made again under an old name must not reuse its
	   UIDVALIDITY (RFC 3501 section 2.3.1.1). */
	char *error = NULL;
	assert_int_equal(store_folder_delete(f->store, "Work", &error), 0);
	create_folder(f, "Work");
	work = open_mailbox(f, "Work");
	assert_true(store_mailbox_uidvalidity(work) > work_uv);
	store_mailbox_close(&work);
}

static void test_flags(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	uint32_t uid = append(f->inbox, msg_a, STORE_FLAG_DRAFT, NULL, 0);
	append(f->inbox, msg_b, 0, NULL, 0);
	assert_int_equal(
	    set_flags(f->inbox, uid, STORE_FLAGS_ADD, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED, NULL), 1);
	/* Nothing to change: not counted. */
	assert_int_equal(set_flags(f->inbox, uid, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL), 0);
	struct store_msg_list l;
	list(f->inbox, &l);
	assert_int_equal(find_uid(&l, uid)->flags, STORE_FLAG_DRAFT | STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	store_msg_list_free(&l);
	struct store_status st;
	status(f->inbox, &st);
	assert_int_equal(st.unseen, 1);

	assert_int_equal(set_flags(f->inbox, uid, STORE_FLAGS_REMOVE, STORE_FLAG_DRAFT, NULL), 1);
	fixture_reopen(f);
	list(f->inbox, &l);
	assert_int_equal(find_uid(&l, uid)->flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	store_msg_list_free(&l);
	assert_int_equal(set_flags(f->inbox, uid, STORE_FLAGS_REPLACE, STORE_FLAG_DELETED, NULL), 1);
	list(f->inbox, &l);
	assert_int_equal(find_uid(&l, uid)->flags, STORE_FLAG_DELETED);
	store_msg_list_free(&l);
	status(f->inbox, &st);
	assert_int_equal(st.deleted, 1);
	assert_int_equal(st.unseen, 2);
}

static void test_keywords(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	uint32_t uid = append(f->inbox, msg_a, 0, "$Forwarded", 0);
	struct store_msg_list l;
	list(f->inbox, &l);
	assert_string_equal(find_uid(&l, uid)->keywords, "$Forwarded");
	store_msg_list_free(&l);
	assert_int_equal(set_flags(f->inbox, uid, STORE_FLAGS_ADD, 0, "Work $forwarded"), 1);
	list(f->inbox, &l);
	assert_string_equal(find_uid(&l, uid)->keywords, "$Forwarded Work");
	store_msg_list_free(&l);
	/* Names compare without case. */
	assert_int_equal(set_flags(f->inbox, uid, STORE_FLAGS_REMOVE, 0, "WORK"), 1);
	fixture_reopen(f);
	list(f->inbox, &l);
	assert_string_equal(find_uid(&l, uid)->keywords, "$Forwarded");
	store_msg_list_free(&l);
	assert_int_equal(set_flags(f->inbox, uid, STORE_FLAGS_REPLACE, STORE_FLAG_SEEN, NULL), 1);
	list(f->inbox, &l);
	assert_string_equal(find_uid(&l, uid)->keywords, "");
	assert_int_equal(find_uid(&l, uid)->flags, STORE_FLAG_SEEN);
	store_msg_list_free(&l);
}

static void test_modseq_monotonic(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	uint32_t a = append(f->inbox, msg_a, 0, NULL, 0);
	uint32_t b = append(f->inbox, msg_b, 0, NULL, 0);
	uint64_t m0 = highestmodseq(f->inbox);
	assert_true(m0 > 0);
	set_flags(f->inbox, a, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL);
	uint64_t m1 = highestmodseq(f->inbox);
	assert_true(m1 > m0);
	set_flags(f->inbox, b, STORE_FLAGS_ADD, 0, "Later");
	uint64_t m2 = highestmodseq(f->inbox);
	assert_true(m2 > m1);
	/* Each change carries the modseq it made. */
	struct store_msg_list l;
	list(f->inbox, &l);
	assert_int_equal(find_uid(&l, a)->modseq, m1);
	assert_int_equal(find_uid(&l, b)->modseq, m2);
	store_msg_list_free(&l);
	char *error = NULL;
	assert_int_equal(store_mailbox_changed_since(f->inbox, m1, &l, &error), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].uid, b);
	store_msg_list_free(&l);

	/* CONDSTORE: a message changed after unchanged_since is left alone
	   and reported. */
	uint32_t uids[] = {a, b};
	uint32_t *failed = NULL;
	size_t nfailed = 0;
	int n = store_msg_set_flags(f->inbox, uids, 2, STORE_FLAGS_ADD, STORE_FLAG_ANSWERED, NULL, m1,
				    &failed, &nfailed, &error);
	assert_int_equal(n, 1);
	assert_int_equal(nfailed, 1);
	assert_int_equal(failed[0], b);
	free(failed);
	uint64_t m3 = highestmodseq(f->inbox);
	assert_true(m3 > m2);
	fixture_reopen(f);
	assert_int_equal(highestmodseq(f->inbox), m3);
	append(f->inbox, msg_c, 0, NULL, 0);
	assert_true(highestmodseq(f->inbox) > m3);
}

static void test_expunge(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	uint32_t a = append(f->inbox, msg_a, 0, NULL, 0);
	uint32_t b = append(f->inbox, msg_b, 0, NULL, 0);
	uint32_t c = append(f->inbox, msg_c, 0, NULL, 0);
	uint64_t before = highestmodseq(f->inbox);
	char *error = NULL;
	uint32_t gone[] = {b, 99};
	assert_int_equal(store_msg_expunge(f->inbox, gone, 2, &error), 1);
	assert_true(highestmodseq(f->inbox) > before);
	struct store_msg_list l;
	list(f->inbox, &l);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.msgs[0].uid, a);
	assert_int_equal(l.msgs[1].uid, c);
	store_msg_list_free(&l);
	int fd;
	assert_int_equal(store_msg_open_uid(f->inbox, b, &fd, &error), 0);
	uint32_t *uids = NULL;
	size_t count = 0;
	assert_int_equal(store_mailbox_expunged_since(f->inbox, before, &uids, &count, &error), 0);
	assert_int_equal(count, 1);
	assert_int_equal(uids[0], b);
	free(uids);
	fixture_reopen(f);
	struct store_status st;
	status(f->inbox, &st);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.size, strlen(msg_a) + strlen(msg_c));
}

static void test_copy(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	create_folder(f, "Archive");
	struct store_mailbox *dest = open_mailbox(f, "Archive");
	uint32_t a = append(f->inbox, msg_a, STORE_FLAG_SEEN, "Work", 1700000000);
	uint32_t b = append(f->inbox, msg_b, 0, NULL, 1700000100);
	uint32_t uids[] = {b, 77, a};
	uint32_t *dest_uids = NULL;
	char *error = NULL;
	assert_int_equal(store_msg_copy(f->inbox, uids, 3, dest, false, &dest_uids, &error), 2);
	assert_int_equal(dest_uids[0], 1);
	assert_int_equal(dest_uids[1], 0); /* gone */
	assert_int_equal(dest_uids[2], 2);
	free(dest_uids);
	struct store_msg_list l;
	list(dest, &l);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.msgs[1].flags, STORE_FLAG_SEEN);
	assert_string_equal(l.msgs[1].keywords, "Work");
	assert_int_equal(l.msgs[1].internaldate, 1700000000);
	assert_int_equal(l.msgs[0].internaldate, 1700000100);
	store_msg_list_free(&l);
	char *text = store_test_read_uid(dest, 2);
	assert_string_equal(text, msg_a);
	free(text);
	/* The source is unchanged. */
	list(f->inbox, &l);
	assert_int_equal(l.count, 2);
	store_msg_list_free(&l);
	/* A copy is a message of its own: flags change apart. */
	set_flags(dest, 2, STORE_FLAGS_REPLACE, STORE_FLAG_FLAGGED, NULL);
	list(f->inbox, &l);
	assert_int_equal(find_uid(&l, a)->flags, STORE_FLAG_SEEN);
	store_msg_list_free(&l);
	store_mailbox_close(&dest);
}

static void test_move(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	create_folder(f, "Trash2");
	struct store_mailbox *dest = open_mailbox(f, "Trash2");
	append(f->inbox, msg_a, 0, NULL, 0);
	uint32_t b = append(f->inbox, msg_b, STORE_FLAG_ANSWERED, NULL, 0);
	uint64_t before = highestmodseq(f->inbox);
	uint32_t *dest_uids = NULL;
	char *error = NULL;
	assert_int_equal(store_msg_copy(f->inbox, &b, 1, dest, true, &dest_uids, &error), 1);
	assert_int_equal(dest_uids[0], 1);
	free(dest_uids);
	struct store_msg_list l;
	list(f->inbox, &l);
	assert_int_equal(l.count, 1);
	assert_null(find_uid(&l, b));
	store_msg_list_free(&l);
	uint32_t *vanished = NULL;
	size_t n = 0;
	assert_int_equal(store_mailbox_expunged_since(f->inbox, before, &vanished, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vanished[0], b);
	free(vanished);
	list(dest, &l);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].flags, STORE_FLAG_ANSWERED);
	store_msg_list_free(&l);
	char *text = store_test_read_uid(dest, 1);
	assert_string_equal(text, msg_b);
	free(text);
	store_mailbox_close(&dest);
}

/* MULTIAPPEND (RFC 3502): several messages in one call, consecutive UIDs,
   each with its own flags, keywords and date. */
static void test_append_many(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	append(f->inbox, msg_a, 0, NULL, 0);
	uint64_t before = highestmodseq(f->inbox);
	struct store_append msgs[] = {
	    {msg_b, strlen(msg_b), STORE_FLAG_SEEN, "Work", 1700000000},
	    {msg_c, strlen(msg_c), 0, NULL, 1700000100},
	    {msg_a, strlen(msg_a), STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT, "x y", 0},
	};
	uint32_t first = 0;
	char *error = NULL;
	if (store_msg_append_many(f->inbox, msgs, 3, &first, &error) < 0)
		fail_msg("store_msg_append_many: %s", error);
	assert_int_equal(first, 2);
	struct store_msg_list l;
	list(f->inbox, &l);
	assert_int_equal(l.count, 4);
	assert_int_equal(l.msgs[1].uid, 2);
	assert_int_equal(l.msgs[1].flags, STORE_FLAG_SEEN);
	assert_string_equal(l.msgs[1].keywords, "Work");
	assert_int_equal(l.msgs[1].internaldate, 1700000000);
	assert_int_equal(l.msgs[2].uid, 3);
	assert_int_equal(l.msgs[2].internaldate, 1700000100);
	assert_int_equal(l.msgs[3].uid, 4);
	assert_int_equal(l.msgs[3].flags, STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT);
	assert_string_equal(l.msgs[3].keywords, "x y");
	for (size_t i = 1; i < 4; i++)
		assert_true(l.msgs[i].modseq > before);
	store_msg_list_free(&l);
	char *text = store_test_read_uid(f->inbox, 3);
	assert_string_equal(text, msg_c);
	free(text);
	/* the UIDs survive a reopen */
	fixture_reopen(f);
	struct store_status st;
	status(f->inbox, &st);
	assert_int_equal(st.messages, 4);
	assert_int_equal(st.uidnext, 5);
}

static void test_quota_usage(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	uint64_t bytes = 99, messages = 99;
	char *error = NULL;
	assert_int_equal(store_quota_usage(f->store, &bytes, &messages, &error), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(messages, 0);
	create_folder(f, "Sent");
	struct store_mailbox *sent = open_mailbox(f, "Sent");
	uint32_t a = append(f->inbox, msg_a, 0, NULL, 0);
	append(f->inbox, msg_b, 0, NULL, 0);
	append(sent, msg_c, 0, NULL, 0);
	assert_int_equal(store_quota_usage(f->store, &bytes, &messages, &error), 0);
	assert_int_equal(bytes, strlen(msg_a) + strlen(msg_b) + strlen(msg_c));
	assert_int_equal(messages, 3);
	/* A copy counts again; an expunge gives the space back. */
	uint32_t *dest_uids = NULL;
	assert_int_equal(store_msg_copy(f->inbox, &a, 1, sent, false, &dest_uids, &error), 1);
	free(dest_uids);
	assert_int_equal(store_msg_expunge(f->inbox, &a, 1, &error), 1);
	assert_int_equal(store_quota_usage(f->store, &bytes, &messages, &error), 0);
	assert_int_equal(bytes, strlen(msg_a) + strlen(msg_b) + strlen(msg_c));
	assert_int_equal(messages, 3);
	store_mailbox_close(&sent);
	assert_int_equal(store_folder_delete(f->store, "Sent", &error), 0);
	assert_int_equal(store_quota_usage(f->store, &bytes, &messages, &error), 0);
	assert_int_equal(bytes, strlen(msg_b));
	assert_int_equal(messages, 1);
}

static void test_append_content(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	/* Bare LF: the size is what sending it with CRLF takes. */
	static const char lf[] = "Subject: lf\n\nline\n";
	uint32_t uid = append(f->inbox, lf, 0, NULL, 1600000000);
	struct store_msg_list l;
	list(f->inbox, &l);
	const struct store_msg *m = find_uid(&l, uid);
	assert_non_null(m);
	assert_int_equal(m->size, strlen(lf) + 3);
	assert_true(m->bare_lf);
	assert_int_equal(m->internaldate, 1600000000);
	int fd;
	char *error = NULL;
	assert_int_equal(store_msg_open(f->inbox, m, &fd, &error), 1);
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, strlen(lf));
	assert_memory_equal(buf, lf, strlen(lf));
	store_msg_list_free(&l);
}

#define NAMES_MAX 512

/* Collects names as "a;b;" into a NAMES_MAX buffer. */
static int collect(void *ctx, const char *name)
{
	char *out = ctx;
	size_t len = strlen(out);
	snprintf(out + len, NAMES_MAX - len, "%s;", name);
	return 0;
}

static void test_folders(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	char *error = NULL;
	bool exists = false;
	create_folder(f, "Projects.Alpha");
	assert_int_equal(store_folder_create(f->store, "Projects", &exists, &error), -1);
	assert_true(exists);
	free(error);
	error = NULL;
	assert_int_equal(store_folder_create(f->store, "inbox", &exists, &error), -1);
	assert_true(exists);
	free(error);
	error = NULL;
	char names[NAMES_MAX] = "";
	assert_int_equal(store_folder_list(f->store, collect, &names, &error), 0);
	assert_non_null(strstr(names, "INBOX;"));
	assert_non_null(strstr(names, "Projects;"));
	assert_non_null(strstr(names, "Projects.Alpha;"));

	/* Renaming takes the children along, with their messages. */
	struct store_mailbox *alpha = open_mailbox(f, "Projects.Alpha");
	append(alpha, msg_a, 0, NULL, 0);
	store_mailbox_close(&alpha);
	assert_int_equal(store_folder_rename(f->store, "Projects", "Old", &error), 0);
	names[0] = '\0';
	assert_int_equal(store_folder_list(f->store, collect, &names, &error), 0);
	assert_null(strstr(names, "Projects"));
	assert_non_null(strstr(names, "Old.Alpha;"));
	struct store_mailbox *old = NULL;
	assert_int_equal(store_mailbox_open(f->store, "Projects.Alpha", &old, &error), 0);
	old = open_mailbox(f, "Old.Alpha");
	struct store_status st;
	status(old, &st);
	assert_int_equal(st.messages, 1);
	store_mailbox_close(&old);

	/* Renaming INBOX moves its messages and leaves it empty. */
	append(f->inbox, msg_b, 0, NULL, 0);
	assert_int_equal(store_folder_rename(f->store, "INBOX", "Saved", &error), 0);
	assert_int_equal(store_mailbox_sync(f->inbox, true, &error), 0);
	status(f->inbox, &st);
	assert_int_equal(st.messages, 0);
	struct store_mailbox *saved = open_mailbox(f, "Saved");
	status(saved, &st);
	assert_int_equal(st.messages, 1);
	store_mailbox_close(&saved);

	assert_int_equal(store_folder_delete(f->store, "INBOX", &error), -1);
	free(error);
	error = NULL;
	assert_int_equal(store_folder_delete(f->store, "Old.Alpha", &error), 0);
	assert_int_equal(store_folder_delete(f->store, "Nope", &error), -1);
	free(error);
	error = NULL;
	const char *err;
	assert_int_equal(store_name_check("a..b", &err), -1);
	assert_int_equal(store_name_check("INBOX.x", &err), -1);
	assert_int_equal(store_name_check("Sent", &err), 0);
}

static void test_subscriptions(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	char *error = NULL;
	assert_int_equal(store_subscribe(f->store, "inbox", true, &error), 0);
	assert_int_equal(store_subscribe(f->store, "Not.Yet.There", true, &error), 0);
	assert_int_equal(store_subscribe(f->store, "Gone", true, &error), 0);
	assert_int_equal(store_subscribe(f->store, "Gone", false, &error), 0);
	fixture_reopen(f);
	char names[NAMES_MAX] = "";
	assert_int_equal(store_subscription_list(f->store, collect, &names, &error), 0);
	assert_string_equal(names, "INBOX;Not.Yet.There;");
}

static void test_recent(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	append(f->inbox, msg_a, 0, NULL, 0);
	append(f->inbox, msg_b, 0, NULL, 0);
	uint32_t first;
	char *error = NULL;
	assert_int_equal(store_mailbox_take_recent(f->inbox, &first, &error), 0);
	assert_int_equal(first, 1);
	/* Another session sees none of them as recent, only newer mail. */
	assert_int_equal(store_mailbox_take_recent(f->inbox, &first, &error), 0);
	assert_int_equal(first, 3);
	append(f->inbox, msg_c, 0, NULL, 0);
	struct store_status st;
	status(f->inbox, &st);
	assert_int_equal(st.recent, 1);
}

/* Opening for reading only (an event loop's open): a folder never opened
   has no index row yet and is not opened; once opened, it is, with its
   messages. */
static void test_open_indexed(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	create_folder(f, "Fresh");
	struct store_mailbox *m = NULL;
	char *error = NULL;
	assert_int_equal(store_mailbox_open_indexed(f->store, "Fresh", &m, &error), 0);
	assert_int_equal(store_mailbox_open_indexed(f->store, "Nope", &m, &error), 0);
	m = open_mailbox(f, "Fresh");
	uint32_t uid = append(m, msg_a, STORE_FLAG_SEEN, NULL, 0);
	store_mailbox_close(&m);
	assert_int_equal(store_mailbox_open_indexed(f->store, "Fresh", &m, &error), 1);
	assert_string_equal(store_mailbox_name(m), "Fresh");
	struct store_msg_list l;
	list(m, &l);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].uid, uid);
	assert_int_equal(l.msgs[0].flags, STORE_FLAG_SEEN);
	store_msg_list_free(&l);
	store_mailbox_close(&m);
	assert_int_equal(store_mailbox_open_indexed(f->store, "inbox", &m, &error), 1);
	assert_string_equal(store_mailbox_name(m), "INBOX");
	store_mailbox_close(&m);
}

static int cache_collect(void *ctx, uint32_t uid, const char *text, size_t len)
{
	char *out = ctx;
	size_t n = strlen(out);
	snprintf(out + n, 256 - n, "%u=%.*s;", uid, (int)len, text);
	return 0;
}

static void test_cache(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	char *error = NULL;
	assert_int_equal(store_cache_prepare(f->store, &error), 0);
	uint32_t a = append(f->inbox, msg_a, 0, NULL, 0);
	uint32_t b = append(f->inbox, msg_b, 0, NULL, 0);
	char *text = NULL;
	assert_int_equal(store_cache_get(f->inbox, a, STORE_CACHE_ENVELOPE, &text, &error), 0);
	assert_int_equal(store_cache_begin(f->inbox, &error), 0);
	assert_int_equal(store_cache_set(f->inbox, a, STORE_CACHE_ENVELOPE, "(env a)", &error), 0);
	assert_int_equal(store_cache_set(f->inbox, b, STORE_CACHE_ENVELOPE, "(env b)", &error), 0);
	assert_int_equal(store_cache_set(f->inbox, b, STORE_CACHE_BODYSTRUCTURE, "(bs b)", &error), 0);
	assert_int_equal(store_cache_set_header(f->inbox, a, "Subject: a\r\n\r\n", 14, &error), 0);
	assert_int_equal(store_cache_set(f->inbox, a, STORE_CACHE_PREVIEW, "first", &error), 0);
	assert_int_equal(store_cache_set(f->inbox, b, STORE_CACHE_PREVIEW, "", &error), 0);
	assert_int_equal(store_cache_commit(f->inbox, &error), 0);
	/* an empty preview is cached too: the message has no text */
	assert_int_equal(store_cache_get(f->inbox, b, STORE_CACHE_PREVIEW, &text, &error), 1);
	assert_string_equal(text, "");
	free(text);
	assert_int_equal(store_cache_get(f->inbox, b, STORE_CACHE_ENVELOPE, &text, &error), 1);
	assert_string_equal(text, "(env b)");
	free(text);
	assert_int_equal(store_cache_get(f->inbox, b, STORE_CACHE_BODYSTRUCTURE, &text, &error), 1);
	assert_string_equal(text, "(bs b)");
	free(text);
	char out[256] = "";
	assert_int_equal(
	    store_cache_get_range(f->inbox, 1, UINT32_MAX, STORE_CACHE_ENVELOPE, cache_collect, out, &error),
	    0);
	assert_string_equal(out, "1=(env a);2=(env b);");
	out[0] = '\0';
	assert_int_equal(
	    store_cache_get_range(f->inbox, 1, UINT32_MAX, STORE_CACHE_PREVIEW, cache_collect, out, &error),
	    0);
	assert_string_equal(out, "1=first;2=;");
	out[0] = '\0';
	assert_int_equal(store_cache_get_header_range(f->inbox, 1, 10, cache_collect, out, &error), 0);
	assert_string_equal(out, "1=Subject: a\r\n\r\n;");
	/* An expunged message takes its cache along. */
	assert_int_equal(store_msg_expunge(f->inbox, &a, 1, &error), 1);
	assert_int_equal(store_cache_get(f->inbox, a, STORE_CACHE_ENVELOPE, &text, &error), 0);
}

static int sortkey_len(void *ctx, uint32_t uid, const char *data, size_t len)
{
	*(size_t *)ctx = len;
	return 0;
}

/* Sort keys: opaque records, replaced by a second set, read back by UID
   range in UID order, and gone with the message or its folder (a folder
   made again under the same name starts without them). */
static void test_sortkeys(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	char *error = NULL;
	uint32_t a = append(f->inbox, msg_a, 0, NULL, 0);
	uint32_t b = append(f->inbox, msg_b, 0, NULL, 0);
	uint32_t c = append(f->inbox, msg_c, 0, NULL, 0);
	char out[256] = "";
	assert_int_equal(store_cache_get_sortkey_range(f->inbox, 1, UINT32_MAX, cache_collect, out, &error),
			 0);
	assert_string_equal(out, "");
	assert_int_equal(store_cache_begin(f->inbox, &error), 0);
	assert_int_equal(store_cache_set_sortkey(f->inbox, c, "k\0c", 4, &error), 0);
	assert_int_equal(store_cache_set_sortkey(f->inbox, a, "old", 3, &error), 0);
	assert_int_equal(store_cache_set_sortkey(f->inbox, a, "ka", 2, &error), 0);
	assert_int_equal(store_cache_commit(f->inbox, &error), 0);
	assert_int_equal(store_cache_set_sortkey(f->inbox, b, "kb", 2, &error), 0);
	assert_int_equal(store_cache_get_sortkey_range(f->inbox, 1, UINT32_MAX, cache_collect, out, &error),
			 0);
	assert_string_equal(out, "1=ka;2=kb;3=k;");
	out[0] = '\0';
	assert_int_equal(store_cache_get_sortkey_range(f->inbox, b, c, cache_collect, out, &error), 0);
	assert_string_equal(out, "2=kb;3=k;");
	/* the whole record comes back, NUL bytes included */
	out[0] = '\0';
	size_t len = 0;
	assert_int_equal(store_cache_get_sortkey_range(f->inbox, c, c, sortkey_len, &len, &error), 0);
	assert_int_equal(len, 4);
	/* An expunged message takes its keys along. */
	assert_int_equal(store_msg_expunge(f->inbox, &b, 1, &error), 1);
	assert_int_equal(store_cache_get_sortkey_range(f->inbox, 1, UINT32_MAX, cache_collect, out, &error),
			 0);
	assert_string_equal(out, "1=ka;3=k;");
	/* So does a deleted folder. */
	create_folder(f, "Work");
	struct store_mailbox *work = open_mailbox(f, "Work");
	uint32_t w = append(work, msg_a, 0, NULL, 0);
	assert_int_equal(store_cache_set_sortkey(work, w, "kw", 2, &error), 0);
	store_mailbox_close(&work);
	assert_int_equal(store_folder_delete(f->store, "Work", &error), 0);
	create_folder(f, "Work");
	work = open_mailbox(f, "Work");
	append(work, msg_a, 0, NULL, 0);
	out[0] = '\0';
	assert_int_equal(store_cache_get_sortkey_range(work, 1, UINT32_MAX, cache_collect, out, &error), 0);
	assert_string_equal(out, "");
	store_mailbox_close(&work);
}

static void test_stable_id(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	uint32_t a = append(f->inbox, msg_a, 0, NULL, 0);
	append(f->inbox, msg_b, 0, NULL, 0);
	struct store_msg_list l;
	list(f->inbox, &l);
	char id_a[STORE_STABLE_ID_MAX + 1], id_b[STORE_STABLE_ID_MAX + 1];
	store_msg_stable_id(&l.msgs[0], id_a);
	store_msg_stable_id(&l.msgs[1], id_b);
	store_msg_list_free(&l);
	assert_true(strlen(id_a) > 0 && strlen(id_a) <= STORE_STABLE_ID_MAX);
	assert_string_not_equal(id_a, id_b);
	for (const char *p = id_a; *p != '\0'; p++)
		assert_true(*p > 0x20 && *p < 0x7f); /* RFC 1939 section 7 */
	/* Flag changes keep it. */
	set_flags(f->inbox, a, STORE_FLAGS_ADD, STORE_FLAG_SEEN | STORE_FLAG_DELETED, NULL);
	list(f->inbox, &l);
	char again[STORE_STABLE_ID_MAX + 1];
	store_msg_stable_id(find_uid(&l, a), again);
	assert_string_equal(again, id_a);
	store_msg_list_free(&l);
}

/* ---- object ids (RFC 8474) ---- */

static void assert_objectid(const char *id)
{
	assert_non_null(id);
	size_t n = strlen(id);
	assert_true(n > 0 && n <= STORE_OBJECTID_MAX);
	for (size_t i = 0; i < n; i++)
		assert_true((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
			    (id[i] >= '0' && id[i] <= '9') || id[i] == '-' || id[i] == '_');
}

static char *mailboxid(struct fixture *f, const char *name)
{
	struct store_mailbox *m = open_mailbox(f, name);
	const char *id = store_mailbox_objectid(m);
	assert_objectid(id);
	char *r = xstrdup(id);
	store_mailbox_close(&m);
	return r;
}

static int emailid_cb(void *ctx, uint32_t uid, const char *emailid)
{
	char **ids = ctx;
	assert_true(uid < 16);
	assert_objectid(emailid);
	ids[uid] = xstrdup(emailid);
	return 0;
}

/* The EMAILIDs of UIDs 1..15 of mbox, by UID (NULL: no such message);
   free with ids_free(). */
static void emailids(struct store_mailbox *mbox, char *ids[16])
{
	char *error = NULL;
	memset(ids, 0, 16 * sizeof(*ids));
	if (store_msg_emailids(mbox, 1, 15, emailid_cb, ids, &error) < 0)
		fail_msg("store_msg_emailids: %s", error);
}

static void ids_free(char *ids[16])
{
	for (size_t i = 0; i < 16; i++)
		free(ids[i]);
}

static void test_mailboxid(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	create_folder(f, "Work");
	create_folder(f, "Work.Sub");
	char *inbox = mailboxid(f, "INBOX"), *work = mailboxid(f, "Work"), *sub = mailboxid(f, "Work.Sub");
	assert_string_not_equal(inbox, work);
	assert_string_not_equal(work, sub);
	/* stable across a reopen */
	fixture_reopen(f);
	assert_string_equal(store_mailbox_objectid(f->inbox), inbox);
	char *again = mailboxid(f, "Work");
	assert_string_equal(again, work);
	free(again);
	/* RENAME keeps it, for the children too */
	char *error = NULL;
	if (store_folder_rename(f->store, "Work", "Play", &error) < 0)
		fail_msg("store_folder_rename: %s", error);
	again = mailboxid(f, "Play");
	assert_string_equal(again, work);
	free(again);
	again = mailboxid(f, "Play.Sub");
	assert_string_equal(again, sub);
	free(again);
	/* a mailbox deleted and made again is another mailbox */
	if (store_folder_delete(f->store, "Play.Sub", &error) < 0)
		fail_msg("store_folder_delete: %s", error);
	create_folder(f, "Play.Sub");
	again = mailboxid(f, "Play.Sub");
	assert_string_not_equal(again, sub);
	free(again);
	free(inbox);
	free(work);
	free(sub);
}

static void test_emailid(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	uint32_t a = append(f->inbox, msg_a, 0, NULL, 0);
	uint32_t b = append(f->inbox, msg_b, 0, NULL, 0);
	uint32_t c = append(f->inbox, msg_a, 0, NULL, 0);
	char *ids[16], *again[16];
	emailids(f->inbox, ids);
	assert_string_not_equal(ids[a], ids[b]);
	assert_string_not_equal(ids[a], ids[c]); /* another message, if alike */
	assert_null(ids[c + 1]);
	/* flag changes and reopening keep them */
	set_flags(f->inbox, a, STORE_FLAGS_ADD, STORE_FLAG_SEEN, "kw");
	fixture_reopen(f);
	emailids(f->inbox, again);
	for (uint32_t u = a; u <= c; u++)
		assert_string_equal(again[u], ids[u]);
	ids_free(again);
	/* COPY and MOVE keep them, a copy's copy too */
	create_folder(f, "Copies");
	create_folder(f, "Moved");
	struct store_mailbox *copies = open_mailbox(f, "Copies"), *moved = open_mailbox(f, "Moved");
	uint32_t *dest = NULL;
	char *error = NULL;
	assert_int_equal(store_msg_copy(f->inbox, &a, 1, copies, false, &dest, &error), 1);
	uint32_t copy_a = dest[0];
	free(dest);
	assert_int_equal(store_msg_copy(f->inbox, &b, 1, moved, true, &dest, &error), 1);
	uint32_t moved_b = dest[0];
	free(dest);
	assert_int_equal(store_msg_copy(copies, &copy_a, 1, moved, false, &dest, &error), 1);
	uint32_t copy_copy_a = dest[0];
	free(dest);
	emailids(copies, again);
	assert_string_equal(again[copy_a], ids[a]);
	ids_free(again);
	emailids(moved, again);
	assert_string_equal(again[moved_b], ids[b]);
	assert_string_equal(again[copy_copy_a], ids[a]);
	ids_free(again);
	/* and so does a reopen */
	store_mailbox_close(&copies);
	store_mailbox_close(&moved);
	fixture_reopen(f);
	moved = open_mailbox(f, "Moved");
	emailids(moved, again);
	assert_string_equal(again[moved_b], ids[b]);
	ids_free(again);
	store_mailbox_close(&moved);
	ids_free(ids);
}

static void test_watch(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	char *error = NULL;
	int fd = store_watch_open(f->inbox, &error);
	if (fd < 0)
		fail_msg("store_watch_open: %s", error);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0);
	/* A change from another handle (another process, say) wakes it. */
	struct store *other = store_open_backend(f->be->name, f->location, &error);
	assert_non_null(other);
	struct store_mailbox *inbox2 = NULL;
	assert_int_equal(store_mailbox_open(other, "INBOX", &inbox2, &error), 1);
	append(inbox2, msg_a, 0, NULL, 0);
	assert_int_equal(poll(&p, 1, 5000), 1);
	store_watch_drain(fd);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(store_mailbox_sync(f->inbox, false, &error), 0);
	struct store_status st;
	status(f->inbox, &st);
	assert_int_equal(st.messages, 1);
	close(fd);
	store_mailbox_close(&inbox2);
	store_close(&other);
}

int main(void)
{
	int failed = 0;
	for (size_t i = 0; i < N_ELEMENTS(store_backends); i++) {
		void *be = (void *)&store_backends[i];
		char *name = xasprintf("store backend %s", store_backends[i].name);
		int avail = store_backends[i].needs_pg ? pg_test_available(name) : 1;
		if (avail <= 0) {
			failed += avail < 0;
			free(name);
			continue;
		}
#define T(f) cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, be)
		const struct CMUnitTest tests[] = {
		    T(test_open_by_name),
		    T(test_uid_assignment),
		    T(test_uid_stable_across_reopen),
		    T(test_uid_never_reused),
		    T(test_uidvalidity),
		    T(test_flags),
		    T(test_keywords),
		    T(test_modseq_monotonic),
		    T(test_expunge),
		    T(test_copy),
		    T(test_move),
		    T(test_append_many),
		    T(test_quota_usage),
		    T(test_append_content),
		    T(test_folders),
		    T(test_subscriptions),
		    T(test_recent),
		    T(test_open_indexed),
		    T(test_cache),
		    T(test_sortkeys),
		    T(test_stable_id),
		    T(test_mailboxid),
		    T(test_emailid),
		    T(test_watch),
		};
#undef T
		failed += cmocka_run_group_tests_name(name, tests, NULL, NULL);
		free(name);
	}
	return failed;
}
