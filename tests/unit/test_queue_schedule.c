/* Unit tests for the retry schedule (src/queue/schedule.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "queue/schedule.h"

#include <stdlib.h>

static void test_default_schedule(void **state)
{
	struct queue_schedule s;
	char *error = NULL;
	assert_int_equal(queue_schedule_init(&s, "5m,10m,20m,40m,1h,2h,4h", 5 * 86400, &error), 0);
	static const int expect[] = { 300, 600, 1200, 2400, 3600, 7200, 14400, 14400, 14400 };
	for (int i = 0; i < 9; i++)
		assert_int_equal(queue_schedule_delay(&s, i + 1), expect[i]);
	/* attempts below 1 use the first delay */
	assert_int_equal(queue_schedule_delay(&s, 0), 300);
	/* exponential growth: each delay at least the previous one */
	for (int i = 2; i < 20; i++)
		assert_true(queue_schedule_delay(&s, i) >= queue_schedule_delay(&s, i - 1));
	queue_schedule_deinit(&s);
}

static void test_next_attempt(void **state)
{
	struct queue_schedule s;
	char *error = NULL;
	assert_int_equal(queue_schedule_init(&s, "10s, 20s ,40s", 100, &error), 0);
	int64_t created = 1000;
	assert_int_equal(queue_schedule_next(&s, created, 1, 1000), 1010);
	assert_int_equal(queue_schedule_next(&s, created, 2, 1010), 1030);
	assert_int_equal(queue_schedule_next(&s, created, 3, 1030), 1070);
	/* clamped to the deadline (created + lifetime) for one last attempt */
	assert_int_equal(queue_schedule_next(&s, created, 4, 1070), 1100);
	/* never in the past */
	assert_int_equal(queue_schedule_next(&s, created, 5, 1200), 1200);
	assert_false(queue_schedule_expired(&s, created, 1099));
	assert_true(queue_schedule_expired(&s, created, 1100));
	assert_true(queue_schedule_expired(&s, created, 5000));
	queue_schedule_deinit(&s);
}

static void test_bad_schedules(void **state)
{
	static const char *const bad[] = { "5x", "abc", "5m,,-3s", "0s", "5m,oops" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct queue_schedule s;
		char *error = NULL;
		assert_int_equal(queue_schedule_init(&s, bad[i], 100, &error), -1);
		assert_non_null(error);
		free(error);
	}
	/* empty: RFC 5321 4.5.4.1's 30 minutes */
	struct queue_schedule s;
	char *error = NULL;
	assert_int_equal(queue_schedule_init(&s, "", 100, &error), 0);
	assert_int_equal(queue_schedule_delay(&s, 3), 1800);
	queue_schedule_deinit(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_schedule),
		cmocka_unit_test(test_next_attempt),
		cmocka_unit_test(test_bad_schedules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
