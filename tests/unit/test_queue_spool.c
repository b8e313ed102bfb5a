/* Unit tests for the spool (src/queue/queue.c): the envelope format,
   enqueueing, walking and control. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "queue/spool.h"
#include "lib/buf.h"
#include "lib/id.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void make_entry(struct queue_entry *e)
{
	struct queue_rcpt rcpts[] = {
	    {"bob@b.test", "rfc822;bob@b.test", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE},
	    {"weird name%@b.test", NULL, SMTP_NOTIFY_NEVER},
	    {"\xc3\xbc@b.test", NULL, 0},
	};
	struct queue_envelope env = {
	    .sender = "alice@a.test",
	    .envid = "id with spaces\n%",
	    .ret = SMTP_RET_HDRS,
	    .body = SMTP_BODY_8BITMIME,
	    .smtputf8 = true,
	    .auth_user = "alice@a.test",
	    .client_ip = "127.0.0.1",
	    .helo = NULL,
	    .rcpts = rcpts,
	    .nrcpts = 3,
	};
	queue_entry_from_envelope(e, "ABC123", 37, &env, 1700000000);
	e->rcpts[0].state = QUEUE_RCPT_DELIVERED;
	e->rcpts[1].attempts = 3;
	e->rcpts[1].next_attempt = 1700000600;
	e->rcpts[1].last_attempt = 1700000300;
	e->rcpts[1].last_reply = xstrdup("451 4.7.1 greylisted, try later");
	e->rcpts[1].remote_mta = xstrdup("mx.b.test");
	e->rcpts[2].state = QUEUE_RCPT_BOUNCED;
	e->rcpts[2].delay_notified = true;
}

static void test_round_trip(void **state)
{
	struct queue_entry e, back;
	make_entry(&e);
	struct buf text = BUF_INIT;
	queue_entry_serialize(&e, &text);
	/* one field never spans lines */
	assert_null(strstr(text.data, "spaces\n"));
	char *error = NULL;
	assert_int_equal(queue_entry_parse(&back, text.data, text.len, &error), 0);
	assert_string_equal(back.id, "ABC123");
	assert_int_equal(back.created, 1700000000);
	assert_int_equal(back.offset, 37);
	assert_string_equal(back.sender, "alice@a.test");
	assert_string_equal(back.envid, "id with spaces\n%");
	assert_int_equal(back.ret, SMTP_RET_HDRS);
	assert_int_equal(back.body, SMTP_BODY_8BITMIME);
	assert_true(back.smtputf8);
	assert_null(back.helo);
	assert_int_equal(back.nrcpts, 3);
	assert_int_equal(back.rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_string_equal(back.rcpts[0].orcpt, "rfc822;bob@b.test");
	assert_int_equal(back.rcpts[0].notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
	assert_string_equal(back.rcpts[1].address, "weird name%@b.test");
	assert_int_equal(back.rcpts[1].attempts, 3);
	assert_int_equal(back.rcpts[1].next_attempt, 1700000600);
	assert_int_equal(back.rcpts[1].last_attempt, 1700000300);
	assert_string_equal(back.rcpts[1].last_reply, "451 4.7.1 greylisted, try later");
	assert_string_equal(back.rcpts[1].remote_mta, "mx.b.test");
	assert_string_equal(back.rcpts[2].address, "\xc3\xbc@b.test");
	assert_true(back.rcpts[2].delay_notified);
	/* serializing again gives the same bytes */
	struct buf again = BUF_INIT;
	queue_entry_serialize(&back, &again);
	assert_int_equal(again.len, text.len);
	assert_memory_equal(again.data, text.data, text.len);
	buf_free(&again);
	buf_free(&text);
	queue_entry_free(&e);
	queue_entry_free(&back);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "postoffice-queue 2\nid A\nsender =\nend\n",
	    "postoffice-queue 1\nid A\nsender =\n", /* truncated */
	    "postoffice-queue 1\nsender =\nend\n",  /* no id */
	    "postoffice-queue 1\nid A\nend\n",      /* no sender */
	    "postoffice-queue 1\nid A/B\nsender =\nend\n",
	    "postoffice-queue 1\nid A\nsender x\nend\n",
	    "postoffice-queue 1\nid A\nsender =%zz\nend\n",
	    "postoffice-queue 1\nid A\nsender =%00\nend\n",
	    "postoffice-queue 1\nid A\nsender =\nrcpt pending 0 0 0 0 0 =b\nend\n",
	    "postoffice-queue 1\nid A\nsender =\nrcpt lost 0 0 0 0 0 =b - - -\nend\n",
	    "postoffice-queue 1\nid A\nsender =\nrcpt pending x 0 0 0 0 =b - - -\nend\n",
	    "postoffice-queue 1\nid A\nsender =\nrcpt pending 0 0 0 99 0 =b - - -\nend\n",
	    "postoffice-queue 1\nid A\nsender =\nrcpt pending 0 0 0 0 0 - - - -\nend\n",
	    "postoffice-queue 1\nid A\nsender =\nret sometimes\nend\n",
	    "postoffice-queue 1\nid A\nsender =\nbody 9bit\nend\n",
	    "postoffice-queue 1\nid A\nid B\nsender =\nend\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct queue_entry e;
		char *error = NULL;
		assert_int_equal(queue_entry_parse(&e, bad[i], strlen(bad[i]), &error), -1);
		assert_non_null(error);
		free(error);
	}
	/* unknown keys (a newer version) are ignored */
	const char *ok =
	    "postoffice-queue 1\nid A\nsender =\nfuture 1\nrcpt pending 0 5 0 0 0 =b@c - - -\nend\n";
	struct queue_entry e;
	char *error = NULL;
	assert_int_equal(queue_entry_parse(&e, ok, strlen(ok), &error), 0);
	assert_string_equal(e.sender, "");
	assert_int_equal(e.rcpts[0].next_attempt, 5);
	queue_entry_free(&e);
}

static void test_ids(void **state)
{
	assert_true(queue_id_valid("Qabc123"));
	assert_false(queue_id_valid(""));
	assert_false(queue_id_valid("../x"));
	assert_false(queue_id_valid("a.env"));
	char a[ID_SIZE], b[ID_SIZE];
	id_new(a);
	id_new(b);
	assert_true(queue_id_valid(a));
	assert_true(queue_id_valid(b));
	assert_string_not_equal(a, b);
}

static int count_cb(void *ctx, const struct queue_entry *e)
{
	(*(int *)ctx)++;
	return 0;
}

/* Queues msg as id the way delivery/ does: a durable file linked into the
   spool (whose own name then goes). */
static int enqueue_text(const char *dir, const char *id, const char *msg, size_t len, off_t offset,
			const struct queue_envelope *env, char **error_r)
{
	char *src = xasprintf("%s/incoming-%s", dir, id);
	int rc = fs_write_file_durable(src, msg, len, 0640, error_r);
	if (rc == 0)
		rc = queue_enqueue(dir, id, AT_FDCWD, src, offset, env, error_r);
	unlink(src);
	free(src);
	return rc;
}

static void test_spool_ops(void **state)
{
	char dir[] = "/tmp/po-spool-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *error = NULL;
	struct queue_rcpt r = {"bob@b.test", NULL, 0};
	struct queue_envelope env = {.sender = "a@a.test", .rcpts = &r, .nrcpts = 1};
	const char *msg = "Return-Path: <a@a.test>\r\nSubject: x\r\n\r\nbody\r\n";
	assert_int_equal(enqueue_text(dir, "M1", msg, strlen(msg), 25, &env, &error), 0);
	/* queue_enqueue hard-links an existing file */
	char *src = xasprintf("%s/incoming", dir);
	assert_int_equal(fs_write_file_durable(src, msg, strlen(msg), 0600, &error), 0);
	assert_int_equal(queue_enqueue(dir, "M2", AT_FDCWD, src, 25, &env, &error), 0);
	struct stat st;
	assert_int_equal(stat(src, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	/* invalid input */
	assert_int_equal(queue_enqueue(dir, "bad/id", AT_FDCWD, src, 0, &env, &error), -1);
	free(error);
	error = NULL;
	struct queue_envelope none = {.sender = "", .nrcpts = 0};
	assert_int_equal(enqueue_text(dir, "M3", msg, 1, 0, &none, &error), -1);
	free(error);
	error = NULL;

	int n = 0;
	assert_int_equal(queue_walk(dir, count_cb, &n, &error), 0);
	assert_int_equal(n, 2);

	char *qdir = queue_dir(dir);
	struct queue_entry e;
	assert_int_equal(queue_entry_load(qdir, "M1", &e, &error), 0);
	assert_int_equal(e.offset, 25);
	assert_false(e.held);
	queue_entry_free(&e);
	assert_int_equal(queue_entry_load(qdir, "NOPE", &e, &error), 1);

	assert_int_equal(queue_hold(dir, "M1", true, &error), 0);
	assert_int_equal(queue_entry_load(qdir, "M1", &e, &error), 0);
	assert_true(e.held);
	queue_entry_free(&e);
	assert_int_equal(queue_hold(dir, "M1", false, &error), 0);
	assert_int_equal(queue_hold(dir, "NOPE", true, &error), 1);

	/* flush without a runner: 1, and the marker waits */
	assert_int_equal(queue_flush(dir, "M1", &error), 1);
	char *marker = queue_path(qdir, "M1", "flush");
	assert_int_equal(access(marker, F_OK), 0);
	free(marker);
	assert_int_equal(queue_flush(dir, NULL, &error), 1);

	/* save only_if_exists after a delete writes nothing */
	assert_int_equal(queue_entry_load(qdir, "M2", &e, &error), 0);
	assert_int_equal(queue_delete(dir, "M2", &error), 0);
	assert_int_equal(queue_entry_save(qdir, &e, true, NULL, &error), 1);
	queue_entry_free(&e);
	assert_int_equal(queue_delete(dir, "M2", &error), 1);
	n = 0;
	assert_int_equal(queue_walk(dir, count_cb, &n, &error), 0);
	assert_int_equal(n, 1);

	char *cmd = xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(qdir);
	free(src);
}

/* Root (sendmail, the queue commands) writes the spool for the server's
   user, who owns it: a link planted at a predictable temporary name, or in
   place of the spool directory, is never written through. */
static void test_spool_planted_links(void **state)
{
	char dir[] = "/tmp/po-spool-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *error = NULL;
	char *victim = xasprintf("%s/victim", dir);
	assert_int_equal(fs_write_file_durable(victim, "original\n", 9, 0644, &error), 0);
	char *qdir = queue_dir(dir);
	assert_int_equal(mkdir(qdir, 0750), 0);
	struct queue_rcpt r = {"bob@b.test", NULL, 0};
	struct queue_envelope env = {.sender = "a@a.test", .rcpts = &r, .nrcpts = 1};
	const char *msg = "Return-Path: <a@a.test>\r\n\r\nbody\r\n";
	/* (the message file itself is linked, never written, here: a link
	   planted where delivery/ writes it is test_delivery's) */
	static const char *const planted[] = {"M1.env.tmp.%ld"};
	for (size_t i = 0; i < N_ELEMENTS(planted); i++) {
		char *name = xasprintf(planted[i], (long)getpid());
		char *link = xasprintf("%s/%s", qdir, name);
		assert_int_equal(symlink(victim, link), 0);
		assert_int_equal(enqueue_text(dir, "M1", msg, strlen(msg), 23, &env, &error), -1);
		assert_non_null(strstr(error, name));
		free(error);
		error = NULL;
		/* nothing half-queued either */
		char *env_path = queue_path(qdir, "M1", "env"), *msg_path = queue_path(qdir, "M1", "msg");
		assert_int_equal(access(env_path, F_OK), -1);
		assert_int_equal(access(msg_path, F_OK), -1);
		assert_int_equal(unlink(link), 0);
		free(msg_path);
		free(env_path);
		free(link);
		free(name);
	}
	char *data = NULL;
	assert_int_equal(fs_read_file(victim, &data, NULL, &error), 0);
	assert_string_equal(data, "original\n");
	free(data);
	/* a marker planted as a link is replaced, not created through */
	assert_int_equal(enqueue_text(dir, "M1", msg, strlen(msg), 23, &env, &error), 0);
	char *made = xasprintf("%s/made", dir);
	char *hold = queue_path(qdir, "M1", "hold");
	assert_int_equal(symlink(made, hold), 0);
	assert_int_equal(queue_hold(dir, "M1", true, &error), 0);
	struct stat st;
	assert_int_equal(lstat(hold, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(access(made, F_OK), -1);
	/* a link in place of the spool directory is refused */
	char *moved = xasprintf("%s.moved", qdir);
	assert_int_equal(rename(qdir, moved), 0);
	assert_int_equal(symlink(moved, qdir), 0);
	assert_int_equal(enqueue_text(dir, "M2", msg, strlen(msg), 23, &env, &error), -1);
	assert_non_null(strstr(error, "symbolic link"));
	free(error);
	char *m2 = xasprintf("%s/M2.env", moved);
	assert_int_equal(access(m2, F_OK), -1);
	char *cmd = xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(m2);
	free(moved);
	free(hold);
	free(made);
	free(qdir);
	free(victim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),          cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_spool_planted_links), cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_spool_ops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
