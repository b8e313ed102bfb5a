/* Unit tests for src/lib/id.c: ids are letters and digits, unique, and
   sort by creation time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/id.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_IDS 20000

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_id_unique_and_ordered(void **state)
{
	char(*ids)[ID_SIZE] = calloc(N_IDS, ID_SIZE);
	assert_non_null(ids);
	for (int i = 0; i < N_IDS; i++) {
		id_new(ids[i]);
		size_t len = strlen(ids[i]);
		assert_true(len >= 19 && len < ID_SIZE);
		assert_int_equal(strspn(ids[i], "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"), len);
		/* made later, sorts later (same length until 2084) */
		if (i > 0)
			assert_true(strcmp(ids[i - 1], ids[i]) < 0);
	}
	qsort(ids, N_IDS, ID_SIZE, cmp_ids);
	for (int i = 1; i < N_IDS; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

/* Threads of one process (the queue runner's job threads) share the
   counter: no two of their ids are equal. */
#define N_THREADS 4
#define N_PER_THREAD 5000
static char thread_ids[N_THREADS * N_PER_THREAD][ID_SIZE];

static void *make_ids(void *arg)
{
	char(*out)[ID_SIZE] = arg;
	for (int i = 0; i < N_PER_THREAD; i++)
		id_new(out[i]);
	return NULL;
}

static void test_id_threads(void **state)
{
	pthread_t t[N_THREADS];
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, make_ids, thread_ids[i * N_PER_THREAD]), 0);
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(t[i], NULL);
	qsort(thread_ids, N_THREADS * N_PER_THREAD, ID_SIZE, cmp_ids);
	for (int i = 1; i < N_THREADS * N_PER_THREAD; i++)
		assert_string_not_equal(thread_ids[i - 1], thread_ids[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_id_unique_and_ordered),
	    cmocka_unit_test(test_id_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
