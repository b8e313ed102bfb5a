/* Unit tests for src/auth/admin_account.c: names, parsing (comments,
   CRLF, bad lines), add/replace/remove, and the file written and read
   back through a directory descriptor without following a link. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/admin_account.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_names(void **state)
{
	assert_true(admin_account_name_valid("boss"));
	assert_true(admin_account_name_valid("ops.team-1_a@example.org"));
	assert_false(admin_account_name_valid(""));
	assert_false(admin_account_name_valid("a:b"));
	assert_false(admin_account_name_valid("a b"));
	assert_false(admin_account_name_valid("<script>"));
	char longname[ADMIN_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(admin_account_name_valid(longname));
	longname[ADMIN_NAME_MAX] = '\0';
	assert_true(admin_account_name_valid(longname));
}

static void test_parse(void **state)
{
	struct admin_accounts a = {0};
	char *error = NULL;
	const char *text = "# comment\r\nboss:$y$j9T$abc\r\n\nops:$y$j9T$def\nboss:$y$j9T$new";
	assert_int_equal(admin_accounts_parse(&a, text, strlen(text), &error), 0);
	assert_int_equal(a.count, 2);
	assert_string_equal(admin_accounts_find(&a, "boss")->hash, "$y$j9T$new");
	assert_string_equal(admin_accounts_find(&a, "ops")->hash, "$y$j9T$def");
	assert_null(admin_accounts_find(&a, "nobody"));
	admin_accounts_free(&a);
	static const char *const bad[] = {"boss\n", "bad name:$y$x\n", "boss:plain\n", ":$y$x\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&a, 0, sizeof(a));
		assert_int_equal(admin_accounts_parse(&a, bad[i], strlen(bad[i]), &error), -1);
		assert_non_null(strstr(error, "line 1"));
		free(error);
		error = NULL;
		assert_int_equal(a.count, 0);
	}
}

static void test_set_remove_save(void **state)
{
	char dir[] = "/tmp/po-admin-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	struct admin_accounts a = {0}, b;
	char *error = NULL;
	/* No file: no accounts. */
	assert_int_equal(admin_accounts_load(dirfd, &b, &error), 0);
	assert_int_equal(b.count, 0);
	assert_int_equal(admin_accounts_set(&a, "boss", "$y$1"), 0);
	assert_int_equal(admin_accounts_set(&a, "ops", "$y$2"), 0);
	assert_int_equal(admin_accounts_set(&a, "boss", "$y$3"), 1);
	assert_int_equal(admin_accounts_remove(&a, "ops"), 0);
	assert_int_equal(admin_accounts_remove(&a, "ops"), 1);
	assert_int_equal(admin_accounts_save(dirfd, dir, &a, (uid_t)-1, (gid_t)-1, &error), 0);
	struct stat st;
	assert_int_equal(fstatat(dirfd, ADMIN_ACCOUNTS_FILE, &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(admin_accounts_load(dirfd, &b, &error), 0);
	assert_int_equal(b.count, 1);
	assert_string_equal(b.v[0].name, "boss");
	assert_string_equal(b.v[0].hash, "$y$3");
	admin_accounts_free(&b);
	/* A link in its place is not followed. */
	assert_int_equal(unlinkat(dirfd, ADMIN_ACCOUNTS_FILE, 0), 0);
	assert_int_equal(symlinkat("/etc/passwd", dirfd, ADMIN_ACCOUNTS_FILE), 0);
	assert_int_equal(admin_accounts_load(dirfd, &b, &error), -1);
	free(error);
	unlinkat(dirfd, ADMIN_ACCOUNTS_FILE, 0);
	admin_accounts_free(&a);
	close(dirfd);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_set_remove_save),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
