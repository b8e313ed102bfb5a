/* Unit tests for src/delivery/delivery.c: one write serves several local
   users' Maildirs (through the local store backend) and the queue, the bytes arrive unchanged, an abort or a
   failure at any step leaves nothing behind, filters see the stream, and
   the async commit reports in the event loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "delivery/delivery.h"
#include "queue/spool.h"
#include "store/store.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/jobs.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/event.h>

struct fixture {
	char dir[32]; /* DATA_DIR */
	char *tmp;    /* DATA_DIR/tmp */
	char *qdir;   /* DATA_DIR/queue */
	struct buf msg;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/po-delivery-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->tmp = xasprintf("%s/tmp", f->dir);
	f->qdir = queue_dir(f->dir);
	/* A message bigger than one write batch, with every byte value. */
	buf_append_str(&f->msg, "Subject: test\r\n\r\n");
	for (int i = 0; i < 200000; i++)
		buf_append_char(&f->msg, (char)(i % 251));
	buf_append_str(&f->msg, "\r\nend\r\n");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f->tmp);
	free(f->qdir);
	buf_free(&f->msg);
	free(f);
	return 0;
}

/* Entries of dir (not . and ..); -1 when it does not exist. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* The one file in MAILDIR/new: its content, its name in *name_r. */
static char *only_message(const char *maildir, char **name_r, size_t *len_r)
{
	char *newdir = xasprintf("%s/new", maildir);
	assert_int_equal(count_entries(newdir), 1);
	DIR *d = opendir(newdir);
	struct dirent *de;
	char *path = NULL;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.') {
			path = xasprintf("%s/%s", newdir, de->d_name);
			*name_r = xstrdup(de->d_name);
		}
	}
	closedir(d);
	char *data, *error = NULL;
	assert_int_equal(fs_read_file(path, &data, len_r, &error), 0);
	free(path);
	free(newdir);
	return data;
}

/* Where the local store backend keeps user@example.org (store.h). */
static char *maildir_of(const struct fixture *f, const char *user)
{
	return xasprintf("%s/mail/example.org/%s", f->dir, user);
}

/* The local recipient user@example.org of DATA_DIR. */
static void add_user(const struct fixture *f, struct delivery *d, const char *user)
{
	struct store_config conf = {.data_dir = f->dir};
	char *address = xasprintf("%s@example.org", user);
	delivery_add_user(d, &conf, address);
	free(address);
}

/* Appends the fixture's message in uneven pieces. */
static void append_message(struct delivery *d, const struct buf *msg)
{
	size_t pos = 0, step = 1;
	while (pos < msg->len) {
		size_t n = step < msg->len - pos ? step : msg->len - pos;
		assert_int_equal(delivery_append(d, msg->data + pos, n), 0);
		pos += n;
		step = step * 3 + 7; /* 1, 10, 37, ... then pieces over 64 KiB */
	}
}

static void test_commit_local_and_remote(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	struct delivery_settings set = {.data_dir = f->dir, .id = "D1", .return_path = "a@a.test"};
	struct delivery *d = delivery_begin(&set, &error);
	assert_non_null(d);
	assert_string_equal(delivery_id(d), "D1");
	append_message(d, &f->msg);
	char *alice = maildir_of(f, "alice"), *bob = maildir_of(f, "bob");
	add_user(f, d, "alice");
	add_user(f, d, "bob");
	add_user(f, d, "alice"); /* one copy only */
	struct queue_rcpt rcpts[] = {{"carol@remote.test", "rfc822;carol@remote.test", 0}};
	struct queue_envelope env = {
	    .sender = "a@a.test", .client_ip = "192.0.2.1", .rcpts = rcpts, .nrcpts = 1};
	delivery_set_remote(d, &env);
	assert_int_equal(delivery_commit(d, &error), 0);

	const char *rp = "Return-Path: <a@a.test>\r\n";
	size_t rp_len = strlen(rp);
	uint64_t size = rp_len + f->msg.len;
	assert_int_equal(delivery_size(d), size);
	const char *users[] = {alice, bob};
	for (size_t i = 0; i < 2; i++) {
		char *name = NULL;
		size_t len;
		char *data = only_message(users[i], &name, &len);
		assert_int_equal(len, size);
		assert_memory_equal(data, rp, rp_len);
		assert_memory_equal(data + rp_len, f->msg.data, f->msg.len);
		char *s = xasprintf(",S=%llu", (unsigned long long)size);
		assert_non_null(strstr(name, s));
		free(s);
		free(name);
		free(data);
	}
	/* the queue holds the same file, its content after Return-Path */
	struct queue_entry e;
	assert_int_equal(queue_entry_load(f->qdir, "D1", &e, &error), 0);
	assert_int_equal(e.offset, rp_len);
	assert_int_equal(e.nrcpts, 1);
	assert_string_equal(e.rcpts[0].address, "carol@remote.test");
	assert_string_equal(e.client_ip, "192.0.2.1");
	queue_entry_free(&e);
	char *qmsg = queue_path(f->qdir, "D1", "msg");
	struct stat st;
	assert_int_equal(stat(qmsg, &st), 0);
	assert_int_equal(st.st_size, size);
	/* one inode: the temporary name, two Maildirs and the queue */
	assert_int_equal(st.st_nlink, 4);
	delivery_free(&d);
	assert_null(d);
	assert_int_equal(count_entries(f->tmp), 0);
	assert_int_equal(stat(qmsg, &st), 0);
	assert_int_equal(st.st_nlink, 3);
	free(qmsg);
	free(alice);
	free(bob);
}

static void test_abort_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	struct delivery_settings set = {.data_dir = f->dir, .return_path = ""};
	struct delivery *d = delivery_begin(&set, &error);
	assert_non_null(d);
	assert_true(queue_id_valid(delivery_id(d)));
	append_message(d, &f->msg);
	assert_int_equal(count_entries(f->tmp), 1);
	char *alice = maildir_of(f, "alice");
	add_user(f, d, "alice");
	struct queue_rcpt rcpt = {"carol@remote.test", NULL, 0};
	struct queue_envelope env = {.sender = "", .rcpts = &rcpt, .nrcpts = 1};
	delivery_set_remote(d, &env);
	delivery_abort(&d);
	assert_null(d);
	assert_int_equal(count_entries(f->tmp), 0);
	assert_int_equal(access(alice, F_OK), -1);
	assert_int_equal(count_entries(f->qdir), -1);
	free(alice);
}

/* A Maildir whose new/ cannot take the link (a file, not a directory:
   no permission bits, which root would pass). */
static char *broken_maildir(const struct fixture *f)
{
	char *maildir = maildir_of(f, "broken"), *error = NULL;
	assert_int_equal(fs_mkdir_p(maildir, 0700, &error), 0);
	char *newdir = xasprintf("%s/new", maildir);
	assert_int_equal(fs_write_file_durable(newdir, "x", 1, 0600, &error), 0);
	free(newdir);
	return maildir;
}

static void test_rollback_on_bad_maildir(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	struct delivery_settings set = {.data_dir = f->dir, .id = "D2", .return_path = "a@a.test"};
	struct delivery *d = delivery_begin(&set, &error);
	assert_non_null(d);
	append_message(d, &f->msg);
	char *alice = maildir_of(f, "alice"), *bob = maildir_of(f, "bob"), *broken = broken_maildir(f);
	add_user(f, d, "alice");
	add_user(f, d, "bob");
	add_user(f, d, "broken");
	struct queue_rcpt rcpt = {"carol@remote.test", NULL, 0};
	struct queue_envelope env = {.sender = "a@a.test", .rcpts = &rcpt, .nrcpts = 1};
	delivery_set_remote(d, &env);
	assert_int_equal(delivery_commit(d, &error), -1);
	assert_non_null(strstr(error, "broken"));
	free(error);
	error = NULL;
	/* the first two were linked, and taken back; nothing was queued */
	char *newdir = xasprintf("%s/new", alice);
	assert_int_equal(count_entries(newdir), 0);
	free(newdir);
	newdir = xasprintf("%s/new", bob);
	assert_int_equal(count_entries(newdir), 0);
	free(newdir);
	assert_int_equal(count_entries(f->qdir), -1);
	delivery_free(&d);
	assert_int_equal(count_entries(f->tmp), 0);
	free(alice);
	free(bob);
	free(broken);
}

static void test_rollback_on_queue_failure(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	/* the spool cannot be made: its name is taken by a file */
	assert_int_equal(fs_write_file_durable(f->qdir, "x", 1, 0600, &error), 0);
	struct delivery_settings set = {.data_dir = f->dir, .id = "D3", .return_path = "a@a.test"};
	struct delivery *d = delivery_begin(&set, &error);
	assert_non_null(d);
	append_message(d, &f->msg);
	char *alice = maildir_of(f, "alice");
	add_user(f, d, "alice");
	struct queue_rcpt rcpt = {"carol@remote.test", NULL, 0};
	struct queue_envelope env = {.sender = "a@a.test", .rcpts = &rcpt, .nrcpts = 1};
	delivery_set_remote(d, &env);
	assert_int_equal(delivery_commit(d, &error), -1);
	assert_non_null(strstr(error, "queue"));
	free(error);
	char *newdir = xasprintf("%s/new", alice);
	assert_int_equal(count_entries(newdir), 0);
	free(newdir);
	delivery_free(&d);
	assert_int_equal(count_entries(f->tmp), 0);
	free(alice);
}

/* Root writes DATA_DIR/tmp for the server's user (`sendmail`): a link
   planted at the file's name is not written through. */
static void test_planted_link_refused(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	char *victim = xasprintf("%s/victim", f->dir);
	assert_int_equal(fs_write_file_durable(victim, "original\n", 9, 0644, &error), 0);
	assert_int_equal(mkdir(f->tmp, 0750), 0);
	char *planted = xasprintf("%s/D4", f->tmp);
	assert_int_equal(symlink(victim, planted), 0);
	struct delivery_settings set = {.data_dir = f->dir, .id = "D4", .return_path = ""};
	assert_null(delivery_begin(&set, &error));
	assert_non_null(strstr(error, "D4"));
	free(error);
	error = NULL;
	char *data;
	assert_int_equal(fs_read_file(victim, &data, NULL, &error), 0);
	assert_string_equal(data, "original\n");
	free(data);
	/* nor is a link in place of tmp/ */
	assert_int_equal(unlink(planted), 0);
	assert_int_equal(rmdir(f->tmp), 0);
	assert_int_equal(symlink(f->dir, f->tmp), 0);
	assert_null(delivery_begin(&set, &error));
	assert_non_null(strstr(error, "symbolic link"));
	free(error);
	free(planted);
	free(victim);
}

/* An existing file (the queue runner's ID.msg): linked, never removed. */
static void test_existing_file(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	char *src = xasprintf("%s/Q1.msg", f->dir);
	assert_int_equal(fs_write_file_durable(src, f->msg.data, f->msg.len, 0640, &error), 0);
	struct delivery *d = delivery_begin_file(src, &error);
	assert_non_null(d);
	assert_int_equal(delivery_size(d), f->msg.len);
	char *alice = maildir_of(f, "alice");
	add_user(f, d, "alice");
	assert_int_equal(delivery_commit(d, &error), 0);
	delivery_free(&d);
	char *name;
	size_t len;
	char *data = only_message(alice, &name, &len);
	assert_int_equal(len, f->msg.len);
	assert_memory_equal(data, f->msg.data, len);
	assert_int_equal(access(src, F_OK), 0);
	assert_null(delivery_begin_file("/nonexistent/Q2.msg", &error));
	free(error);
	free(data);
	free(name);
	free(alice);
	free(src);
}

/* fetch: the file in the Maildir's own tmp/, no DATA_DIR. */
static void test_tmp_dir(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	char *maildir = xasprintf("%s/fetched", f->dir);
	char *tmp = xasprintf("%s/tmp", maildir);
	assert_int_equal(fs_mkdir_p(tmp, 0700, &error), 0);
	char *newdir = xasprintf("%s/new", maildir);
	assert_int_equal(fs_mkdir_p(newdir, 0700, &error), 0);
	struct delivery_settings set = {.tmp_dir = tmp, .mode = 0600};
	struct delivery *d = delivery_begin(&set, &error);
	assert_non_null(d);
	assert_int_equal(delivery_append(d, f->msg.data, f->msg.len), 0);
	delivery_add_maildir(d, maildir);
	assert_int_equal(delivery_commit(d, &error), 0);
	delivery_free(&d);
	assert_int_equal(count_entries(tmp), 0);
	char *name;
	size_t len;
	char *data = only_message(maildir, &name, &len);
	assert_int_equal(len, f->msg.len);
	assert_memory_equal(data, f->msg.data, len);
	char *path = xasprintf("%s/%s", newdir, name);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(path);
	free(data);
	free(name);
	free(newdir);
	free(tmp);
	free(maildir);
}

/* ---- filters ---- */

/* Upper-cases letters as they come. */
static int upper_write(struct delivery_filter *f, const void *data, size_t len, char **error_r)
{
	char *copy = xmemdup(data, len);
	for (size_t i = 0; i < len; i++)
		copy[i] = (char)toupper((unsigned char)copy[i]);
	int rc = delivery_filter_output(f, copy, len, error_r);
	free(copy);
	return rc;
}

/* Holds the message and emits a header before it at the end (the shape
   of a DKIM signer). */
struct hold_filter {
	struct delivery_filter f;
	struct buf held;
	bool fail;
};

static int hold_write(struct delivery_filter *f, const void *data, size_t len, char **error_r)
{
	struct hold_filter *h = (struct hold_filter *)f;
	buf_append(&h->held, data, len);
	return 0;
}

static int hold_finish(struct delivery_filter *f, char **error_r)
{
	struct hold_filter *h = (struct hold_filter *)f;
	if (h->fail) {
		*error_r = xstrdup("refused");
		return -1;
	}
	const char *header = "X-Held: yes\r\n";
	if (delivery_filter_output(f, header, strlen(header), error_r) < 0)
		return -1;
	return delivery_filter_output(f, h->held.data, h->held.len, error_r);
}

static void hold_free(struct delivery_filter *f)
{
	struct hold_filter *h = (struct hold_filter *)f;
	buf_free(&h->held);
	free(h);
}

static void upper_free(struct delivery_filter *f)
{
	free(f);
}

static void add_filters(struct delivery *d, bool fail)
{
	struct hold_filter *h = xcalloc(1, sizeof(*h));
	h->f = (struct delivery_filter){
	    .name = "hold", .write = hold_write, .finish = hold_finish, .free = hold_free};
	h->fail = fail;
	delivery_add_filter(d, &h->f);
	struct delivery_filter *u = xcalloc(1, sizeof(*u));
	*u = (struct delivery_filter){.name = "upper", .write = upper_write, .free = upper_free};
	delivery_add_filter(d, u);
}

static void test_filters(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	struct delivery_settings set = {.data_dir = f->dir, .return_path = "a@a.test"};
	struct delivery *d = delivery_begin(&set, &error);
	add_filters(d, false);
	const char *body = "Subject: hi\r\n\r\nbody\r\n";
	assert_int_equal(delivery_append(d, body, 5), 0);
	assert_int_equal(delivery_append(d, body + 5, strlen(body) - 5), 0);
	char *alice = maildir_of(f, "alice");
	add_user(f, d, "alice");
	assert_int_equal(delivery_commit(d, &error), 0);
	delivery_free(&d);
	char *name;
	size_t len;
	char *data = only_message(alice, &name, &len);
	/* the Return-Path line is not filtered; the rest went through both,
	   in order */
	const char *want = "Return-Path: <a@a.test>\r\nX-HELD: YES\r\nSUBJECT: HI\r\n\r\nBODY\r\n";
	assert_int_equal(len, strlen(want));
	assert_memory_equal(data, want, len);
	free(data);
	free(name);

	/* a filter's failure fails the message: nothing delivered */
	d = delivery_begin(&set, &error);
	add_filters(d, true);
	assert_int_equal(delivery_append(d, body, strlen(body)), 0);
	char *bob = maildir_of(f, "bob");
	add_user(f, d, "bob");
	assert_int_equal(delivery_commit(d, &error), -1);
	assert_non_null(strstr(error, "hold: refused"));
	free(error);
	delivery_free(&d);
	assert_int_equal(access(bob, F_OK), -1);
	assert_int_equal(count_entries(f->tmp), 0);
	free(bob);
	free(alice);
}

/* ---- the async commit ---- */

struct async_result {
	bool called;
	char *error;
	struct event_base *base;
};

static void async_done(void *ctx, const char *error)
{
	struct async_result *r = ctx;
	r->called = true;
	r->error = error != NULL ? xstrdup(error) : NULL;
	event_base_loopbreak(r->base);
}

static void test_commit_async(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	jobs_init(base, 2);
	char *error = NULL;
	struct delivery_settings set = {.data_dir = f->dir, .return_path = "a@a.test"};
	struct delivery *d = delivery_begin(&set, &error);
	append_message(d, &f->msg);
	char *alice = maildir_of(f, "alice");
	add_user(f, d, "alice");
	struct async_result r = {.base = base};
	delivery_commit_async(d, async_done, &r);
	struct timeval limit = {10, 0};
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	assert_true(r.called);
	assert_null(r.error);
	delivery_free(&d);
	char *name;
	size_t len;
	char *data = only_message(alice, &name, &len);
	assert_int_equal(len, strlen("Return-Path: <a@a.test>\r\n") + f->msg.len);
	free(data);
	free(name);
	free(alice);
	jobs_deinit();
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_commit_local_and_remote, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_on_bad_maildir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_on_queue_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_planted_link_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_existing_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tmp_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_async, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
