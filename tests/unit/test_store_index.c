/* Unit tests for src/store: UID assignment and stability, reindexing,
   files from other programs, flags <-> Maildir info, expunge (also after a
   crash), concurrent delivery during sync, modseq, append/copy/move,
   folders, watching, and the warm-open speed (the POP3 lock is in the
   contract suite, test_backend_store_user.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"
#include "store/store_imap_extra.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/test_store.XXXXXX";
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	return xstrdup(dir);
}

static void rm_rf(const char *path)
{
	char *cmd = xasprintf("rm -rf '%s'", path);
	int rc = system(cmd);
	(void)rc;
	free(cmd);
}

/* Delivers like SMTP does: tmp/ then rename into new/. */
static char *deliver(const char *maildir, const char *name, const char *body)
{
	char *tmp = xasprintf("%s/tmp/%s", maildir, name);
	char *dst = xasprintf("%s/new/%s", maildir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	assert_int_equal(rename(tmp, dst), 0);
	free(tmp);
	return dst;
}

static char *msg_name(unsigned secs, unsigned n, const char *body)
{
	return xasprintf("%u.M%06uP1Q%u.test,S=%zu", secs, n, n, strlen(body));
}

static const char body1[] = "Return-Path: <a@b>\r\nSubject: one\r\n\r\nhello\r\n";
static const char body2[] = "Return-Path: <a@b>\r\nSubject: two\r\n\r\n.dot line\r\nbye\r\n";
static const char body3[] = "Return-Path: <a@b>\r\nSubject: three\r\n\r\nthird\r\n";

struct fixture {
	char *dir;
	struct store *store;
	struct store_mailbox *inbox;
};

static void open_inbox(struct fixture *f)
{
	char *error = NULL;
	f->store = store_open(f->dir, &error);
	if (f->store == NULL)
		fail_msg("store_open: %s", error);
	int rc = store_mailbox_open(f->store, "INBOX", &f->inbox, &error);
	if (rc != 1)
		fail_msg("store_mailbox_open: %d %s", rc, error ? error : "");
}

static void close_inbox(struct fixture *f)
{
	store_mailbox_close(&f->inbox);
	store_close(&f->store);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = make_tmpdir();
	char *error = NULL;
	struct store *s = store_open(f->dir, &error); /* makes cur/ new/ tmp/ */
	assert_non_null(s);
	store_close(&s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	close_inbox(f);
	rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void list(struct fixture *f, struct store_msg_list *l)
{
	char *error = NULL;
	if (store_mailbox_list(f->inbox, l, &error) < 0)
		fail_msg("list: %s", error);
}

static uint32_t status_uidvalidity(struct fixture *f)
{
	struct store_status st;
	char *error = NULL;
	assert_int_equal(store_mailbox_status(f->inbox, &st, &error), 0);
	return st.uidvalidity;
}

static size_t count_dir(const char *maildir, const char *sub)
{
	char *path = xasprintf("%s/%s", maildir, sub);
	DIR *d = opendir(path);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	free(path);
	return n;
}

static void deliver_three(struct fixture *f)
{
	/* Delivered out of name order: UIDs follow delivery time. */
	char *n3 = msg_name(1700000003, 3, body3), *n1 = msg_name(1700000001, 1, body1),
	     *n2 = msg_name(1700000002, 2, body2);
	free(deliver(f->dir, n3, body3));
	free(deliver(f->dir, n1, body1));
	free(deliver(f->dir, n2, body2));
	free(n1);
	free(n2);
	free(n3);
}

static void test_uid_assignment(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.count, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(l.msgs[i].uid, i + 1);
		assert_false(l.msgs[i].bare_lf);
		assert_int_equal(l.msgs[i].flags, 0);
	}
	assert_int_equal(l.msgs[0].size, strlen(body1));
	assert_int_equal(l.msgs[1].size, strlen(body2));
	assert_int_equal(l.msgs[2].size, strlen(body3));
	/* Moved to cur/ with the same base name and an empty info part. */
	assert_int_equal(count_dir(f->dir, "new"), 0);
	assert_int_equal(count_dir(f->dir, "cur"), 3);
	char *path = xasprintf("%s/cur/1700000001.M000001P1Q1.test,S=%zu:2,", f->dir, strlen(body1));
	assert_int_equal(access(path, F_OK), 0);
	free(path);
	/* Reading through the store gives the exact bytes. */
	int fd;
	char *error = NULL, buf[256];
	assert_int_equal(store_msg_open(f->inbox, &l.msgs[1], &fd, &error), 1);
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, strlen(body2));
	assert_memory_equal(buf, body2, strlen(body2));
	struct store_status st;
	assert_int_equal(store_mailbox_status(f->inbox, &st, &error), 0);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.uidnext, 4);
	assert_int_equal(st.unseen, 3);
	assert_int_equal(st.size, strlen(body1) + strlen(body2) + strlen(body3));
	store_msg_list_free(&l);
}

static void test_stable_across_reopen(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	uint32_t uv = status_uidvalidity(f);
	close_inbox(f);
	char *n4 = msg_name(1700000000, 4, body1); /* older name, delivered later */
	free(deliver(f->dir, n4, body1));
	free(n4);
	open_inbox(f);
	assert_int_equal(status_uidvalidity(f), uv);
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.count, 4);
	assert_int_equal(l.msgs[3].uid, 4);
	assert_int_equal(l.msgs[0].size, strlen(body1)); /* uid 1 still message 1 */
	assert_int_equal(l.msgs[2].size, strlen(body3));
	store_msg_list_free(&l);
	/* A forced resync with no change keeps everything. */
	char *error = NULL;
	assert_int_equal(store_mailbox_sync(f->inbox, true, &error), 0);
	list(f, &l);
	assert_int_equal(l.count, 4);
	assert_int_equal(l.msgs[3].uid, 4);
	store_msg_list_free(&l);
}

static void test_reindex_new_uidvalidity(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	uint32_t uv = status_uidvalidity(f);
	close_inbox(f);
	char *db = xasprintf("%s/%s", f->dir, STORE_INDEX_FILE);
	assert_int_equal(unlink(db), 0);
	char *wal = xasprintf("%s-wal", db), *shm = xasprintf("%s-shm", db);
	unlink(wal);
	unlink(shm);
	open_inbox(f);
	assert_true(status_uidvalidity(f) > uv);
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.count, 3);
	store_msg_list_free(&l);
	close_inbox(f);
	/* A garbage index is set aside and rebuilt. */
	FILE *fp = fopen(db, "w");
	fputs("this is not a database, really not, it is just text...............", fp);
	for (int i = 0; i < 100; i++)
		fputs("junk junk junk junk junk junk junk junk junk junk\n", fp);
	fclose(fp);
	unlink(wal);
	unlink(shm);
	open_inbox(f);
	list(f, &l);
	assert_int_equal(l.count, 3);
	store_msg_list_free(&l);
	free(db);
	free(wal);
	free(shm);
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void test_foreign_files(void **state)
{
	struct fixture *f = *state;
	open_inbox(f);
	/* mutt-style: LF line ends, no S=, straight into cur/ with flags. */
	static const char lf[] = "From: x@y\nSubject: lf\n\nbody\n";
	char *p = xasprintf("%s/cur/1600000000.12345_1.host:2,RS", f->dir);
	write_file(p, lf);
	free(p);
	/* A wrong S= is not trusted. */
	p = xasprintf("%s/new/1600000001.x.host,S=9999", f->dir);
	write_file(p, body1);
	free(p);
	/* Dot files and editor leftovers are ignored. */
	p = xasprintf("%s/cur/.hidden", f->dir);
	write_file(p, "x");
	free(p);
	char *error = NULL;
	assert_int_equal(store_mailbox_sync(f->inbox, true, &error), 0);
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.msgs[0].uid, 1);
	assert_true(l.msgs[0].bare_lf);
	assert_int_equal(l.msgs[0].size, strlen(lf) + 4); /* four LFs become CRLF */
	assert_int_equal(l.msgs[0].flags, STORE_FLAG_ANSWERED | STORE_FLAG_SEEN);
	assert_false(l.msgs[1].bare_lf);
	assert_int_equal(l.msgs[1].size, strlen(body1));
	store_msg_list_free(&l);
}

static char *find_file(const char *maildir, const char *prefix)
{
	char *path = xasprintf("%s/cur", maildir);
	DIR *d = opendir(path);
	free(path);
	struct dirent *de;
	char *found = NULL;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			found = xstrdup(de->d_name);
	closedir(d);
	return found;
}

static void test_flags_info(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	char *error = NULL;
	struct store_status st;
	store_mailbox_status(f->inbox, &st, &error);
	uint64_t m0 = st.highestmodseq;
	uint32_t uid = 2;
	assert_int_equal(store_msg_set_flags(f->inbox, &uid, 1, STORE_FLAGS_ADD,
					     STORE_FLAG_SEEN | STORE_FLAG_FLAGGED, "$Junk work", 0, NULL,
					     NULL, &error),
			 1);
	char *name = find_file(f->dir, "1700000002.");
	assert_non_null(name);
	assert_non_null(strstr(name, ":2,FS"));
	assert_string_equal(strstr(name, ":2,"), ":2,FS");
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.msgs[1].flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	assert_string_equal(l.msgs[1].keywords, "$Junk work");
	assert_int_equal(l.msgs[1].modseq, m0 + 1);
	assert_true(l.msgs[0].modseq <= m0);
	store_msg_list_free(&l);
	/* Same flags again: nothing changes, no new modseq. */
	assert_int_equal(store_msg_set_flags(f->inbox, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0,
					     NULL, NULL, &error),
			 0);
	/* Remove one flag and one keyword. */
	assert_int_equal(store_msg_set_flags(f->inbox, &uid, 1, STORE_FLAGS_REMOVE, STORE_FLAG_FLAGGED,
					     "WORK", 0, NULL, NULL, &error),
			 1);
	free(name);
	name = find_file(f->dir, "1700000002.");
	assert_string_equal(strstr(name, ":2,"), ":2,S");
	/* Another program (mutt) renames for flags: the index takes them over,
	   the UID stays, modseq grows; unknown letters survive our renames. */
	char *from = xasprintf("%s/cur/%s", f->dir, name);
	char *base = xstrndup(name, (size_t)(strstr(name, ":2,") - name));
	char *to = xasprintf("%s/cur/%s:2,RSTa", f->dir, base);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(store_mailbox_sync(f->inbox, true, &error), 0);
	list(f, &l);
	assert_int_equal(l.count, 3);
	assert_int_equal(l.msgs[1].uid, 2);
	assert_int_equal(l.msgs[1].flags, STORE_FLAG_ANSWERED | STORE_FLAG_SEEN | STORE_FLAG_DELETED);
	assert_int_equal(l.msgs[1].modseq, m0 + 3);
	assert_string_equal(l.msgs[1].keywords, "$Junk");
	store_msg_list_free(&l);
	assert_int_equal(store_msg_set_flags(f->inbox, &uid, 1, STORE_FLAGS_REPLACE, STORE_FLAG_DRAFT, NULL,
					     0, NULL, NULL, &error),
			 1);
	free(name);
	name = find_file(f->dir, base);
	assert_string_equal(strstr(name, ":2,"), ":2,Da");
	/* CONDSTORE UNCHANGEDSINCE: a stale modseq fails. */
	uint32_t *failed = NULL;
	size_t nfailed = 0;
	assert_int_equal(store_msg_set_flags(f->inbox, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, m0,
					     &failed, &nfailed, &error),
			 0);
	assert_int_equal(nfailed, 1);
	assert_int_equal(failed[0], 2);
	free(failed);
	/* Messages opened by their old locator are found again. */
	list(f, &l);
	int fd;
	struct store_msg stale = l.msgs[1];
	stale.locator = "no-such-name:2,";
	assert_int_equal(store_msg_open(f->inbox, &stale, &fd, &error), 1);
	close(fd);
	store_msg_list_free(&l);
	free(name);
	free(from);
	free(to);
	free(base);
}

static void test_expunge(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	char *error = NULL;
	struct store_status st;
	store_mailbox_status(f->inbox, &st, &error);
	uint64_t m0 = st.highestmodseq;
	uint32_t uids[] = {1, 3, 77};
	assert_int_equal(store_msg_expunge(f->inbox, uids, 3, &error), 2);
	assert_int_equal(count_dir(f->dir, "cur"), 1);
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].uid, 2);
	store_msg_list_free(&l);
	uint32_t *gone;
	size_t ngone;
	assert_int_equal(store_mailbox_expunged_since(f->inbox, m0, &gone, &ngone, &error), 0);
	assert_int_equal(ngone, 2);
	assert_int_equal(gone[0], 1);
	assert_int_equal(gone[1], 3);
	free(gone);
	/* A file removed by another program is recorded as expunged too. */
	char *name = find_file(f->dir, "1700000002.");
	char *path = xasprintf("%s/cur/%s", f->dir, name);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_mailbox_sync(f->inbox, false, &error), 0);
	list(f, &l);
	assert_int_equal(l.count, 0);
	store_msg_list_free(&l);
	assert_int_equal(store_mailbox_expunged_since(f->inbox, m0, &gone, &ngone, &error), 0);
	assert_int_equal(ngone, 3);
	free(gone);
	/* UIDs are never reused. */
	char *n = msg_name(1700000009, 9, body1);
	free(deliver(f->dir, n, body1));
	assert_int_equal(store_mailbox_sync(f->inbox, false, &error), 0);
	list(f, &l);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].uid, 4);
	store_msg_list_free(&l);
	free(n);
	free(name);
	free(path);
}

/* Runs one SQL statement on the index from outside the store (as an
   older postoffice would have left it). */
static void index_exec(const char *maildir, const char *sql)
{
	char *path = xasprintf("%s/index.db", maildir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
	free(path);
}

/* A crash after the row was marked and before the file was unlinked: the
   next session must not show the message, and must finish the job. */
static void test_expunge_crash(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	close_inbox(f);
	index_exec(f->dir, "UPDATE message SET expunging=1 WHERE uid=2;"
			   "UPDATE mailbox SET cur_mtime=0");
	open_inbox(f);
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.msgs[0].uid, 1);
	assert_int_equal(l.msgs[1].uid, 3);
	store_msg_list_free(&l);
	assert_int_equal(count_dir(f->dir, "cur"), 2);
}

static int sortkey_uids(void *ctx, uint32_t uid, const char *data, size_t len)
{
	char *out = ctx;
	size_t n = strlen(out);
	snprintf(out + n, 64 - n, "%u;", uid);
	return 0;
}

/* An index made before the sortkey table gets it in place when opened,
   and a message whose expunge was cut short takes its sort keys along
   when the next sync finishes the job. */
static void test_sortkey_table(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	close_inbox(f);
	index_exec(f->dir, "DROP TABLE sortkey");
	open_inbox(f);
	char *error = NULL;
	assert_int_equal(store_cache_set_sortkey(f->inbox, 2, "k2", 2, &error), 0);
	assert_int_equal(store_cache_set_sortkey(f->inbox, 3, "k3", 2, &error), 0);
	close_inbox(f);
	index_exec(f->dir, "UPDATE message SET expunging=1 WHERE uid=2; UPDATE mailbox SET cur_mtime=0");
	open_inbox(f);
	char uids[64] = "";
	assert_int_equal(store_cache_get_sortkey_range(f->inbox, 1, UINT32_MAX, sortkey_uids, uids, &error),
			 0);
	assert_string_equal(uids, "3;");
}

/* SMTP keeps delivering into new/ while other processes sync: every message
   gets exactly one UID, none is lost. */
#define CONCURRENT_MSGS 300
static void test_concurrent_delivery(void **state)
{
	struct fixture *f = *state;
	open_inbox(f);
	close_inbox(f);
	pid_t pids[3];
	for (int c = 0; c < 3; c++) {
		pids[c] = fork();
		assert_true(pids[c] >= 0);
		if (pids[c] == 0) {
			if (c == 0) {
				for (unsigned i = 0; i < CONCURRENT_MSGS; i++) {
					char *n = msg_name(1700000000 + i, i, body1);
					free(deliver(f->dir, n, body1));
					free(n);
					if (i % 16 == 0)
						usleep(1000);
				}
				_exit(0);
			}
			/* Two syncing sessions in other processes. */
			char *error = NULL;
			struct store *s = store_open(f->dir, &error);
			struct store_mailbox *m = NULL;
			if (s == NULL || store_mailbox_open(s, "INBOX", &m, &error) != 1)
				_exit(2);
			for (int k = 0; k < 200; k++) {
				if (store_mailbox_sync(m, k % 2 == 0, &error) < 0)
					_exit(3);
				usleep(500);
			}
			store_mailbox_close(&m);
			store_close(&s);
			_exit(0);
		}
	}
	/* And this process syncs too. */
	open_inbox(f);
	char *error = NULL;
	for (int k = 0; k < 100; k++) {
		assert_int_equal(store_mailbox_sync(f->inbox, false, &error), 0);
		usleep(700);
	}
	for (int c = 0; c < 3; c++) {
		int status;
		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(store_mailbox_sync(f->inbox, true, &error), 0);
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.count, CONCURRENT_MSGS);
	for (size_t i = 0; i < l.count; i++)
		assert_int_equal(l.msgs[i].uid, i + 1); /* unique, no gaps */
	store_msg_list_free(&l);
	assert_int_equal(count_dir(f->dir, "new"), 0);
	assert_int_equal(count_dir(f->dir, "cur"), CONCURRENT_MSGS);
	struct store_status st;
	assert_int_equal(store_mailbox_status(f->inbox, &st, &error), 0);
	assert_int_equal(st.uidnext, CONCURRENT_MSGS + 1);
}

static void test_modseq(void **state)
{
	struct fixture *f = *state;
	open_inbox(f);
	char *error = NULL;
	struct store_status st;
	store_mailbox_status(f->inbox, &st, &error);
	uint64_t m = st.highestmodseq;
	deliver_three(f);
	assert_int_equal(store_mailbox_sync(f->inbox, true, &error), 0);
	store_mailbox_status(f->inbox, &st, &error);
	assert_int_equal(st.highestmodseq, m + 1); /* one sync, one modseq */
	uint32_t uid = 1;
	store_msg_set_flags(f->inbox, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, NULL, NULL, &error);
	store_mailbox_status(f->inbox, &st, &error);
	assert_int_equal(st.highestmodseq, m + 2);
	assert_int_equal(st.unseen, 2);
	struct store_msg_list l;
	assert_int_equal(store_mailbox_changed_since(f->inbox, m + 1, &l, &error), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].uid, 1);
	store_msg_list_free(&l);
	uid = 3;
	store_msg_expunge(f->inbox, &uid, 1, &error);
	store_mailbox_status(f->inbox, &st, &error);
	assert_int_equal(st.highestmodseq, m + 3);
	/* Recent: the first taker gets all, the next none. */
	uint32_t first;
	assert_int_equal(store_mailbox_take_recent(f->inbox, &first, &error), 0);
	assert_int_equal(first, 1);
	assert_int_equal(store_mailbox_take_recent(f->inbox, &first, &error), 0);
	assert_int_equal(first, 4);
}

static void test_append_copy_move(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	char *error = NULL;
	bool exists;
	assert_int_equal(store_folder_create(f->store, "Archive.2024", &exists, &error), 0);
	assert_int_equal(store_folder_create(f->store, "Archive.2024", &exists, &error), -1);
	assert_true(exists);
	free(error);
	error = NULL;
	struct store_mailbox *arch;
	assert_int_equal(store_mailbox_open(f->store, "Archive.2024", &arch, &error), 1);
	uint32_t uid = 0;
	assert_int_equal(store_msg_append(arch, body2, strlen(body2), STORE_FLAG_SEEN, "$label1", 1600000000,
					  &uid, &error),
			 0);
	assert_int_equal(uid, 1);
	uint32_t uids[] = {1, 2, 99};
	uint32_t *dest = NULL;
	assert_int_equal(store_msg_copy(f->inbox, uids, 3, arch, false, &dest, &error), 2);
	assert_int_equal(dest[0], 2);
	assert_int_equal(dest[1], 3);
	assert_int_equal(dest[2], 0);
	free(dest);
	assert_int_equal(store_msg_copy(f->inbox, &uids[1], 1, arch, true, &dest, &error), 1);
	assert_int_equal(dest[0], 4);
	free(dest);
	struct store_msg_list l;
	assert_int_equal(store_mailbox_list(arch, &l, &error), 0);
	assert_int_equal(l.count, 4);
	assert_int_equal(l.msgs[0].internaldate, 1600000000);
	assert_int_equal(l.msgs[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(l.msgs[0].keywords, "$label1");
	assert_int_equal(l.msgs[3].size, strlen(body2));
	store_msg_list_free(&l);
	list(f, &l);
	assert_int_equal(l.count, 2); /* uid 2 moved away */
	store_msg_list_free(&l);
	/* The files are visible to other programs, and a resync keeps UIDs. */
	char *sub = xasprintf("%s/.Archive.2024", f->dir);
	assert_int_equal(count_dir(sub, "cur"), 4);
	assert_int_equal(store_mailbox_sync(arch, true, &error), 0);
	assert_int_equal(store_mailbox_list(arch, &l, &error), 0);
	assert_int_equal(l.count, 4);
	assert_int_equal(l.msgs[3].uid, 4);
	store_msg_list_free(&l);
	/* Cache round trip. */
	char *text = NULL;
	assert_int_equal(store_cache_get(arch, 1, STORE_CACHE_ENVELOPE, &text, &error), 0);
	assert_int_equal(store_cache_set(arch, 1, STORE_CACHE_ENVELOPE, "(NIL \"two\")", &error), 0);
	assert_int_equal(store_cache_set(arch, 1, STORE_CACHE_BODYSTRUCTURE, "(\"text\")", &error), 0);
	assert_int_equal(store_cache_get(arch, 1, STORE_CACHE_ENVELOPE, &text, &error), 1);
	assert_string_equal(text, "(NIL \"two\")");
	free(text);
	store_mailbox_close(&arch);
	uint64_t bytes, msgs;
	assert_int_equal(store_quota_usage(f->store, &bytes, &msgs, &error), 0);
	assert_int_equal(msgs, 6);
	free(sub);
}

static int cache_has(struct fixture *f, uint32_t uid, enum store_cache_field field)
{
	char *text = NULL, *error = NULL;
	int rc = store_cache_get(f->inbox, uid, field, &text, &error);
	assert_true(rc >= 0);
	free(text);
	return rc;
}

static int header_count(void *ctx, uint32_t uid, const char *data, size_t len)
{
	(*(int *)ctx)++;
	return 0;
}

/* Cached ENVELOPE and BODYSTRUCTURE texts built by another version of the
   builder (MIME_IMAP_VERSION) are dropped on the first open; the texts of
   this version and the cached header blocks stay. */
static void test_cache_version(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	char *error = NULL;
	assert_int_equal(store_cache_prepare(f->store, &error), 0);
	struct store_msg_list l;
	list(f, &l);
	store_msg_list_free(&l);
	for (uint32_t uid = 1; uid <= 3; uid++) {
		assert_int_equal(store_cache_set(f->inbox, uid, STORE_CACHE_ENVELOPE, "(env)", &error), 0);
		assert_int_equal(store_cache_set(f->inbox, uid, STORE_CACHE_BODYSTRUCTURE, "(bs)", &error),
				 0);
		assert_int_equal(store_cache_set_header(f->inbox, uid, "Subject: x\r\n\r\n", 14, &error), 0);
	}
	close_inbox(f);

	/* Reopened by the same version: kept. */
	open_inbox(f);
	assert_int_equal(store_cache_prepare(f->store, &error), 0);
	assert_int_equal(cache_has(f, 2, STORE_CACHE_ENVELOPE), 1);
	assert_int_equal(cache_has(f, 2, STORE_CACHE_BODYSTRUCTURE), 1);
	close_inbox(f);

	/* Left by an older builder (an index from before the version was
	   kept has no row at all): dropped, the header blocks kept. */
	index_exec(f->dir, "DELETE FROM cache_meta");
	open_inbox(f);
	assert_int_equal(store_cache_prepare(f->store, &error), 0);
	for (uint32_t uid = 1; uid <= 3; uid++) {
		assert_int_equal(cache_has(f, uid, STORE_CACHE_ENVELOPE), 0);
		assert_int_equal(cache_has(f, uid, STORE_CACHE_BODYSTRUCTURE), 0);
	}
	int headers = 0;
	assert_int_equal(store_cache_get_header_range(f->inbox, 1, 3, header_count, &headers, &error), 0);
	assert_int_equal(headers, 3);
	/* Built again, they stay: the drop happens once. */
	assert_int_equal(store_cache_set(f->inbox, 1, STORE_CACHE_ENVELOPE, "(env2)", &error), 0);
	close_inbox(f);
	index_exec(f->dir, "UPDATE cache_meta SET value=value");
	open_inbox(f);
	assert_int_equal(store_cache_prepare(f->store, &error), 0);
	assert_int_equal(cache_has(f, 1, STORE_CACHE_ENVELOPE), 1);

	/* A newer builder's texts (a downgrade) are dropped too. */
	close_inbox(f);
	index_exec(f->dir, "UPDATE cache_meta SET value=value+1");
	open_inbox(f);
	assert_int_equal(store_cache_prepare(f->store, &error), 0);
	assert_int_equal(cache_has(f, 1, STORE_CACHE_ENVELOPE), 0);
}

/* MULTIAPPEND is all or none (RFC 3502 3): when the index refuses the
   second row, the first is not listed either, no file stays in cur/ or
   tmp/, and no UID was used up. */
static void test_append_many_atomic(void **state)
{
	struct fixture *f = *state;
	open_inbox(f);
	index_exec(f->dir, "CREATE TRIGGER fail_second BEFORE INSERT ON message"
			   " WHEN (SELECT count(*) FROM message) >= 1"
			   " BEGIN SELECT RAISE(ABORT, 'injected'); END");
	struct store_append msgs[] = {
	    {body1, strlen(body1), 0, NULL, 0},
	    {body2, strlen(body2), STORE_FLAG_SEEN, NULL, 0},
	    {body3, strlen(body3), 0, NULL, 0},
	};
	uint32_t first = 0;
	char *error = NULL;
	assert_int_equal(store_msg_append_many(f->inbox, msgs, 3, &first, &error), -1);
	assert_non_null(strstr(error, "injected"));
	free(error);
	error = NULL;
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.count, 0);
	store_msg_list_free(&l);
	assert_int_equal(count_dir(f->dir, "cur"), 0);
	assert_int_equal(count_dir(f->dir, "tmp"), 0);
	/* a sync finds nothing left behind either */
	assert_int_equal(store_mailbox_sync(f->inbox, true, &error), 0);
	list(f, &l);
	assert_int_equal(l.count, 0);
	store_msg_list_free(&l);
	index_exec(f->dir, "DROP TRIGGER fail_second");
	assert_int_equal(store_msg_append_many(f->inbox, msgs, 3, &first, &error), 0);
	assert_int_equal(first, 1);
	assert_int_equal(count_dir(f->dir, "cur"), 3);
}

static int first_emailid(void *ctx, uint32_t uid, const char *emailid)
{
	strcpy(ctx, emailid);
	return 1;
}

/* An index made before the object ids gets their columns when it is
   opened: its mailboxes get MAILBOXIDs, its messages EMAILIDs derived from
   their files, the same after a reopen. */
static void test_objectid_upgrade(void **state)
{
	struct fixture *f = *state;
	deliver_three(f);
	open_inbox(f);
	close_inbox(f);
	index_exec(f->dir, "ALTER TABLE message DROP COLUMN emailid;"
			   "ALTER TABLE mailbox DROP COLUMN mailboxid");
	open_inbox(f);
	char *error = NULL;
	char id[STORE_OBJECTID_MAX + 1] = "", again[STORE_OBJECTID_MAX + 1] = "";
	assert_int_equal(store_msg_emailids(f->inbox, 1, 3, first_emailid, id, &error), 0);
	assert_true(id[0] == 'M' && strlen(id) > 1);
	char *mailboxid = xstrdup(store_mailbox_objectid(f->inbox));
	assert_true(mailboxid[0] == 'F' && strlen(mailboxid) > 1);
	close_inbox(f);
	open_inbox(f);
	assert_int_equal(store_msg_emailids(f->inbox, 1, 3, first_emailid, again, &error), 0);
	assert_string_equal(again, id);
	assert_string_equal(store_mailbox_objectid(f->inbox), mailboxid);
	free(mailboxid);
}

static int collect(void *ctx, const char *name)
{
	char *out = ctx;
	strcat(out, name);
	strcat(out, ";");
	return 0;
}

static void test_folders(void **state)
{
	struct fixture *f = *state;
	open_inbox(f);
	char *error = NULL;
	bool exists;
	assert_int_equal(store_folder_create(f->store, "Sent", &exists, &error), 0);
	assert_int_equal(store_folder_create(f->store, "Work.Projects.X", &exists, &error), 0);
	assert_int_equal(store_folder_create(f->store, "bad/name", &exists, &error), -1);
	free(error);
	error = NULL;
	assert_int_equal(store_folder_create(f->store, "a..b", &exists, &error), -1);
	free(error);
	error = NULL;
	char names[512] = "";
	assert_int_equal(store_folder_list(f->store, collect, names, &error), 0);
	assert_string_equal(names, "INBOX;Sent;Work;Work.Projects;Work.Projects.X;");
	struct store_mailbox *m;
	assert_int_equal(store_mailbox_open(f->store, "Work.Projects", &m, &error), 1);
	uint32_t uid;
	assert_int_equal(store_msg_append(m, body1, strlen(body1), 0, NULL, 0, &uid, &error), 0);
	struct store_status st;
	store_mailbox_status(m, &st, &error);
	uint32_t uv = st.uidvalidity;
	store_mailbox_close(&m);
	assert_int_equal(store_folder_rename(f->store, "Work", "Job", &error), 0);
	names[0] = '\0';
	store_folder_list(f->store, collect, names, &error);
	assert_string_equal(names, "INBOX;Job;Job.Projects;Job.Projects.X;Sent;");
	assert_int_equal(store_mailbox_open(f->store, "Job.Projects", &m, &error), 1);
	store_mailbox_status(m, &st, &error);
	assert_int_equal(st.uidvalidity, uv);
	assert_int_equal(st.messages, 1);
	store_mailbox_close(&m);
	assert_int_equal(store_mailbox_open(f->store, "Work", &m, &error), 0);
	assert_int_equal(store_folder_delete(f->store, "Job.Projects", &error), 0);
	assert_int_equal(store_folder_delete(f->store, "INBOX", &error), -1);
	free(error);
	error = NULL;
	names[0] = '\0';
	store_folder_list(f->store, collect, names, &error);
	assert_string_equal(names, "INBOX;Job;Job.Projects.X;Sent;");
	/* A recreated folder gets a new UIDVALIDITY. */
	assert_int_equal(store_folder_create(f->store, "Job.Projects", &exists, &error), 0);
	assert_int_equal(store_mailbox_open(f->store, "Job.Projects", &m, &error), 1);
	store_mailbox_status(m, &st, &error);
	assert_true(st.uidvalidity > uv);
	assert_int_equal(st.messages, 0);
	store_mailbox_close(&m);
	/* Subscriptions need not exist. */
	assert_int_equal(store_subscribe(f->store, "Sent", true, &error), 0);
	assert_int_equal(store_subscribe(f->store, "Gone", true, &error), 0);
	assert_int_equal(store_subscribe(f->store, "inbox", true, &error), 0);
	assert_int_equal(store_subscribe(f->store, "Gone", false, &error), 0);
	names[0] = '\0';
	store_subscription_list(f->store, collect, names, &error);
	assert_string_equal(names, "INBOX;Sent;");
	/* Renaming INBOX moves its messages. */
	deliver_three(f);
	assert_int_equal(store_mailbox_sync(f->inbox, false, &error), 0);
	assert_int_equal(store_folder_rename(f->store, "INBOX", "Old", &error), 0);
	struct store_msg_list l;
	list(f, &l);
	assert_int_equal(l.count, 0);
	store_msg_list_free(&l);
	assert_int_equal(store_mailbox_open(f->store, "Old", &m, &error), 1);
	store_mailbox_status(m, &st, &error);
	assert_int_equal(st.messages, 3);
	store_mailbox_close(&m);
}

static void test_watch(void **state)
{
	struct fixture *f = *state;
	open_inbox(f);
	char *error = NULL;
	int fd = store_watch_open(f->inbox, &error);
	assert_true(fd >= 0);
	struct pollfd p = {fd, POLLIN, 0};
	assert_int_equal(poll(&p, 1, 0), 0);
	deliver_three(f);
	assert_int_equal(poll(&p, 1, 1000), 1);
	store_watch_drain(fd);
	p.revents = 0;
	assert_int_equal(poll(&p, 1, 0), 0);
	close(fd);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* 10,000 messages: indexing once, then warm opens that skip readdir. */
static void test_warm_open_speed(void **state)
{
	struct fixture *f = *state;
	char body[2048];
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	for (unsigned i = 0; i < 10000; i++) {
		char *n = xasprintf("%s/cur/%u.M%06uP1Q%u.test,S=%zu:2,", f->dir, 1700000000 + i, i, i,
				    strlen(body));
		int fd = open(n, O_WRONLY | O_CREAT, 0600);
		assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
		close(fd);
		free(n);
	}
	/* Directory mtimes must be older than the margin to be trusted. */
	char *cur = xasprintf("%s/cur", f->dir), *nw = xasprintf("%s/new", f->dir);
	struct timespec old[2] = {{time(NULL) - 10, 0}, {time(NULL) - 10, 0}};
	utimensat(AT_FDCWD, cur, old, 0);
	utimensat(AT_FDCWD, nw, old, 0);
	double t0 = now_ms();
	open_inbox(f);
	double t1 = now_ms();
	close_inbox(f);
	double best = 1e9;
	for (int k = 0; k < 5; k++) {
		double a = now_ms();
		open_inbox(f);
		struct store_msg_list l;
		list(f, &l);
		assert_int_equal(l.count, 10000);
		uint64_t total = 0;
		for (size_t i = 0; i < l.count; i++)
			total += l.msgs[i].size;
		assert_int_equal(total, 10000 * strlen(body));
		store_msg_list_free(&l);
		close_inbox(f);
		double b = now_ms();
		if (b - a < best)
			best = b - a;
	}
	print_message("store: first index of 10000 messages %.1f ms, warm open+sync+list %.2f ms\n", t1 - t0,
		      best);
	/* Generous bound: sanitizer builds are several times slower. */
	assert_true(best < 100.0);
	open_inbox(f);
	free(cur);
	free(nw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_uid_assignment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stable_across_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reindex_new_uidvalidity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags_info, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expunge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expunge_crash, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sortkey_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_delivery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modseq, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_copy_move, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_many_atomic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_objectid_upgrade, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_warm_open_speed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
