/* Unit tests for src/auth/password.c: yescrypt hashing and verification,
   including from several threads at once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/password.h"
#include "lib/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_hash_and_verify(void **state)
{
	char *hash = NULL;
	assert_int_equal(password_hash("correct horse", &hash), 0);
	assert_non_null(hash);
	assert_memory_equal(hash, "$y$", 3);
	assert_int_equal(password_verify("correct horse", hash), 1);
	assert_int_equal(password_verify("correct horsE", hash), 0);
	assert_int_equal(password_verify("correct hors", hash), 0);
	assert_int_equal(password_verify("", hash), 0);

	/* A fresh salt every time. */
	char *again = NULL;
	assert_int_equal(password_hash("correct horse", &again), 0);
	assert_string_not_equal(hash, again);
	assert_int_equal(password_verify("correct horse", again), 1);
	free(hash);
	free(again);
}

static void test_utf8_and_long(void **state)
{
	char *hash = NULL;
	assert_int_equal(password_hash("p\xc3\xa4ssw\xc3\xb6rd \xe2\x82\xac", &hash), 0);
	assert_int_equal(password_verify("p\xc3\xa4ssw\xc3\xb6rd \xe2\x82\xac", hash), 1);
	assert_int_equal(password_verify("passwrd ", hash), 0);
	free(hash);

	char *longpw = xmalloc(PASSWORD_MAX_LEN + 1);
	memset(longpw, 'x', PASSWORD_MAX_LEN);
	longpw[PASSWORD_MAX_LEN] = '\0';
	assert_int_equal(password_hash(longpw, &hash), 0);
	assert_int_equal(password_verify(longpw, hash), 1);
	longpw[PASSWORD_MAX_LEN - 1] = 'y';
	assert_int_equal(password_verify(longpw, hash), 0);
	free(hash);
	free(longpw);

	/* One byte more than libcrypt takes: cannot be hashed, never verifies. */
	longpw = xmalloc(PASSWORD_MAX_LEN + 2);
	memset(longpw, 'x', PASSWORD_MAX_LEN + 1);
	longpw[PASSWORD_MAX_LEN + 1] = '\0';
	hash = NULL;
	assert_int_equal(password_hash(longpw, &hash), -1);
	assert_null(hash);
	assert_int_equal(password_verify(longpw, NULL), 0);
	free(longpw);
}

static void test_bad_hashes(void **state)
{
	static const char *const bad[] = {
	    "", "*", "!", "*0", "$y$", "$y$j9T$", "not a hash", "$1$", "$6$$", "x",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		if (password_verify("", bad[i]) != 0 || password_verify("x", bad[i]) != 0)
			fail_msg("hash '%s' verified", bad[i]);
	assert_int_equal(password_verify("anything", NULL), 0);
}

/* Other crypt(3) schemes still verify (imported hashes). */
static void test_other_schemes(void **state)
{
	/* SHA-512 crypt of "password" with salt "saltsalt". */
	const char *sha512 = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/"
			     "jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/";
	assert_int_equal(password_verify("password", sha512), 1);
	assert_int_equal(password_verify("Password", sha512), 0);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A missing user (NULL hash) costs about what a real verification costs. */
static void test_dummy_costs_the_same(void **state)
{
	char *hash = NULL;
	assert_int_equal(password_hash("pw", &hash), 0);
	(void)password_verify("warm", NULL); /* makes the dummy hash */
	double t0 = now();
	for (int i = 0; i < 3; i++)
		(void)password_verify("wrong", hash);
	double real = now() - t0;
	t0 = now();
	for (int i = 0; i < 3; i++)
		(void)password_verify("wrong", NULL);
	double dummy = now() - t0;
	free(hash);
	if (dummy < real / 3 || dummy > real * 3)
		fail_msg("dummy verification %.4fs vs real %.4fs", dummy, real);
}

struct thread_arg {
	const char *password;
	const char *hash;
	int ok;
};

static void *verify_thread(void *p)
{
	struct thread_arg *arg = p;
	arg->ok = 1;
	for (int i = 0; i < 3; i++) {
		arg->ok &= password_verify(arg->password, arg->hash) == 1;
		arg->ok &= password_verify("wrong", arg->hash) == 0;
		arg->ok &= password_verify(arg->password, NULL) == 0;
	}
	return NULL;
}

static void test_threads(void **state)
{
	enum { N = 4 };
	static const char *const passwords[N] = {"one", "two", "three", "four"};
	char *hashes[N];
	struct thread_arg args[N];
	pthread_t threads[N];
	for (int i = 0; i < N; i++) {
		assert_int_equal(password_hash(passwords[i], &hashes[i]), 0);
		args[i] = (struct thread_arg){passwords[i], hashes[i], 0};
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, verify_thread, &args[i]), 0);
	for (int i = 0; i < N; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(args[i].ok, 1);
		free(hashes[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_and_verify),      cmocka_unit_test(test_utf8_and_long),
	    cmocka_unit_test(test_bad_hashes),           cmocka_unit_test(test_other_schemes),
	    cmocka_unit_test(test_dummy_costs_the_same), cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
