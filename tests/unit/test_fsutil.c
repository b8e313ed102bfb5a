/* Unit tests for src/lib/fsutil.c: the durable write and the helpers for
   root in a tree the server's user can write (links and files planted
   below the base are never followed, created through or chowned). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
	char dir[32];  /* the tree */
	char *outside; /* what planted links point to */
	char *victim;  /* a file there */
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/po-fsutil-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->outside = xasprintf("%s/outside", f->dir);
	f->victim = xasprintf("%s/victim", f->outside);
	char *tree = xasprintf("%s/tree", f->dir);
	mkdir(f->outside, 0755);
	mkdir(tree, 0755);
	free(tree);
	char *error = NULL;
	if (fs_write_file_durable(f->victim, "original\n", 9, 0644, &error) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf %s", f->dir);
	int rc = system(cmd);
	free(cmd);
	free(f->outside);
	free(f->victim);
	free(f);
	return rc == 0 ? 0 : -1;
}

static void assert_victim_intact(const struct fixture *f)
{
	char *data = NULL, *error = NULL;
	size_t len;
	assert_int_equal(fs_read_file(f->victim, &data, &len, &error), 0);
	assert_string_equal(data, "original\n");
	free(data);
}

static char *tree_path(const struct fixture *f, const char *rel)
{
	return xasprintf("%s/tree/%s", f->dir, rel);
}

/* The temporary name of a durable write is predictable: whatever sits
   there makes the write fail instead of being written through. */
static void test_durable_refuses_planted_tmp(void **state)
{
	struct fixture *f = *state;
	char *path = tree_path(f, "file");
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	char *error = NULL;
	assert_int_equal(symlink(f->victim, tmp), 0);
	assert_int_equal(fs_write_file_durable(path, "evil\n", 5, 0644, &error), -1);
	assert_non_null(strstr(error, "File exists"));
	free(error);
	error = NULL;
	assert_victim_intact(f);
	assert_int_equal(access(path, F_OK), -1);
	/* a planted file is not truncated or reused either */
	assert_int_equal(unlink(tmp), 0);
	assert_int_equal(fs_write_file_durable(tmp, "planted", 7, 0644, &error), 0);
	assert_int_equal(fs_write_file_durable(path, "evil\n", 5, 0644, &error), -1);
	free(error);
	error = NULL;
	char *data = NULL;
	assert_int_equal(fs_read_file(tmp, &data, NULL, &error), 0);
	assert_string_equal(data, "planted");
	free(data);
	/* with the name free, the write works and leaves no temporary file */
	assert_int_equal(unlink(tmp), 0);
	assert_int_equal(fs_write_file_durable(path, "good\n", 5, 0644, &error), 0);
	assert_int_equal(fs_read_file(path, &data, NULL, &error), 0);
	assert_string_equal(data, "good\n");
	assert_int_equal(access(tmp, F_OK), -1);
	free(data);
	free(tmp);
	free(path);
}

static void test_open_dir_beneath(void **state)
{
	struct fixture *f = *state;
	char *base = tree_path(f, "");
	char *error = NULL;
	/* made when missing, with the mode */
	int fd = fs_open_dir_beneath(base, "a/b", true, 0700, (uid_t)-1, (gid_t)-1, &error);
	assert_true(fd >= 0);
	close(fd);
	char *ab = tree_path(f, "a/b");
	struct stat st;
	assert_int_equal(stat(ab, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	/* missing without create: ENOENT */
	assert_int_equal(fs_open_dir_beneath(base, "a/nope", false, 0700, (uid_t)-1, (gid_t)-1, &error), -1);
	assert_int_equal(errno, ENOENT);
	free(error);
	error = NULL;
	/* a link anywhere below the base is refused, and nothing is made
	   behind it */
	char *link = tree_path(f, "a/link");
	assert_int_equal(symlink(f->outside, link), 0);
	assert_int_equal(fs_open_dir_beneath(base, "a/link/x", true, 0700, (uid_t)-1, (gid_t)-1, &error), -1);
	assert_non_null(strstr(error, "a/link is a symbolic link, not a directory"));
	free(error);
	error = NULL;
	assert_int_equal(fs_open_dir_beneath(base, "a/link", true, 0700, (uid_t)-1, (gid_t)-1, &error), -1);
	free(error);
	error = NULL;
	char *behind = xasprintf("%s/x", f->outside);
	assert_int_equal(access(behind, F_OK), -1);
	/* a file is not a directory */
	assert_int_equal(fs_open_dir_beneath(f->outside, "victim", false, 0700, (uid_t)-1, (gid_t)-1, &error),
			 -1);
	assert_non_null(strstr(error, "not a directory"));
	free(error);
	error = NULL;
	/* ".." is refused */
	assert_int_equal(fs_open_dir_beneath(base, "a/../a", false, 0700, (uid_t)-1, (gid_t)-1, &error), -1);
	free(error);
	/* the base itself is the caller's and is followed */
	fd = fs_open_dir_beneath(link, "", false, 0700, (uid_t)-1, (gid_t)-1, &error);
	assert_true(fd >= 0);
	close(fd);
	free(behind);
	free(link);
	free(ab);
	free(base);
}

static void test_create_at_refuses_existing(void **state)
{
	struct fixture *f = *state;
	char *base = tree_path(f, "");
	char *error = NULL;
	int dfd = open(base, O_RDONLY | O_DIRECTORY);
	char *target = xasprintf("%s/made", f->outside);
	assert_int_equal(symlinkat(target, dfd, "marker"), 0);
	assert_int_equal(fs_create_at(dfd, base, "marker", 0600, (uid_t)-1, (gid_t)-1, &error), -1);
	assert_int_equal(errno, EEXIST);
	free(error);
	assert_int_equal(access(target, F_OK), -1);
	int fd = fs_create_at(dfd, base, "fresh", 0600, (uid_t)-1, (gid_t)-1, &error);
	assert_true(fd >= 0);
	close(fd);
	close(dfd);
	free(target);
	free(base);
}

/* Root only: ownership changes stay inside the tree. */
static void test_chown_tree(void **state)
{
	struct fixture *f = *state;
	if (geteuid() != 0)
		skip();
	const uid_t uid = 54321;
	const gid_t gid = 54322;
	char *error = NULL;
	char *sub = tree_path(f, "d/e");
	char *file = tree_path(f, "d/e/file");
	char *symlinked = tree_path(f, "d/link");
	char *dirlink = tree_path(f, "d/dirlink");
	char *hard = tree_path(f, "d/hard");
	char *base = tree_path(f, "d");
	assert_int_equal(fs_mkdir_p(sub, 0755, &error), 0);
	assert_int_equal(fs_write_file_durable(file, "x", 1, 0644, &error), 0);
	assert_int_equal(symlink(f->victim, symlinked), 0);
	assert_int_equal(symlink(f->outside, dirlink), 0);
	assert_int_equal(link(f->victim, hard), 0);
	/* -1: the hard-linked file was left alone */
	assert_int_equal(fs_chown_tree(base, uid, gid, true), -1);
	struct stat st;
	assert_int_equal(lstat(file, &st), 0);
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_gid, gid);
	assert_int_equal(lstat(sub, &st), 0);
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(lstat(symlinked, &st), 0);
	assert_int_equal(st.st_uid, uid); /* the link itself */
	assert_int_equal(stat(f->victim, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(stat(f->outside, &st), 0);
	assert_int_equal(st.st_uid, 0);
	free(base);
	free(hard);
	free(dirlink);
	free(symlinked);
	free(file);
	free(sub);
}

static void test_remove_tree_follows_no_link(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	char *sub = tree_path(f, "r/s");
	char *base = tree_path(f, "");
	char *link = tree_path(f, "r/s/link");
	assert_int_equal(fs_mkdir_p(sub, 0755, &error), 0);
	assert_int_equal(symlink(f->outside, link), 0);
	int dfd = open(base, O_RDONLY | O_DIRECTORY);
	assert_int_equal(fs_remove_tree_at(dfd, base, "r", &error), 0);
	assert_int_equal(fs_remove_tree_at(dfd, base, "r", &error), 0); /* gone: fine */
	close(dfd);
	char *r = tree_path(f, "r");
	assert_int_equal(access(r, F_OK), -1);
	assert_victim_intact(f);
	free(r);
	free(link);
	free(base);
	free(sub);
}

/* A new file: never through an existing name; data, mtime and mode. */
static void test_write_new_file(void **state)
{
	struct fixture *f = *state;
	char *path = tree_path(f, "new"), *link = tree_path(f, "planted"), *error = NULL;
	assert_int_equal(fs_write_new_file(path, "data\n", 5, 0600, 1000000000, &error), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 5);
	assert_int_equal(st.st_mtime, 1000000000);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fs_write_new_file(path, "x", 1, 0600, 0, &error), -1);
	free(error);
	assert_int_equal(symlink(f->victim, link), 0);
	assert_int_equal(fs_write_new_file(link, "x", 1, 0600, 0, &error), -1);
	free(error);
	assert_victim_intact(f);
	free(path);
	free(link);
}

static void test_append_durable(void **state)
{
	struct fixture *f = *state;
	char *path = tree_path(f, "mbox"), *error = NULL, *data = NULL;
	assert_int_equal(fs_append_durable(path, "one\n", 4, 0600, &error), 0);
	assert_int_equal(fs_append_durable(path, "two\n", 4, 0600, &error), 0);
	assert_int_equal(fs_read_file(path, &data, NULL, &error), 0);
	assert_string_equal(data, "one\ntwo\n");
	free(data);
	char *missing = tree_path(f, "no/such/dir");
	assert_int_equal(fs_append_durable(missing, "x", 1, 0600, &error), -1);
	assert_non_null(strstr(error, "no/such/dir"));
	free(error);
	free(missing);
	free(path);
}

static void test_link_or_copy(void **state)
{
	struct fixture *f = *state;
	char *src = tree_path(f, "src"), *dest = tree_path(f, "dest"), *error = NULL;
	assert_int_equal(fs_write_file_durable(src, "message\n", 8, 0640, &error), 0);
	assert_int_equal(fs_link_or_copy_at(AT_FDCWD, src, AT_FDCWD, dest), 0);
	struct stat st;
	assert_int_equal(stat(src, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	/* an existing name is not replaced; a missing source is ENOENT */
	assert_int_equal(fs_link_or_copy_at(AT_FDCWD, src, AT_FDCWD, dest), -1);
	assert_int_equal(errno, EEXIST);
	char *gone = tree_path(f, "gone");
	assert_int_equal(fs_link_or_copy_at(AT_FDCWD, gone, AT_FDCWD, dest), -1);
	assert_int_equal(errno, ENOENT);
	free(gone);
	/* across file systems (/dev/shm is tmpfs): a copy, same bytes and mode */
	char shm[] = "/dev/shm/po-fsutil-XXXXXX";
	if (mkdtemp(shm) != NULL) {
		char *other = xasprintf("%s/copy", shm), *data = NULL;
		assert_int_equal(fs_link_or_copy_at(AT_FDCWD, src, AT_FDCWD, other), 0);
		assert_int_equal(fs_read_file(other, &data, NULL, &error), 0);
		assert_string_equal(data, "message\n");
		struct stat cst;
		assert_int_equal(stat(other, &cst), 0);
		assert_int_equal(cst.st_mode & 0777, 0640);
		if (cst.st_dev != st.st_dev)
			assert_int_equal(cst.st_nlink, 1);
		free(data);
		unlink(other);
		rmdir(shm);
		free(other);
	}
	free(src);
	free(dest);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_durable_refuses_planted_tmp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_dir_beneath, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_at_refuses_existing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chown_tree, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_tree_follows_no_link, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_new_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_durable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_link_or_copy, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
