/* Unit tests for the retry schedule (src/relay/schedule.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "relay/schedule.h"
#include "lib/config.h"

#include <stdlib.h>

static void test_default_schedule(void **state)
{
	/* [queue] retry's default, as the configuration parses it */
	struct config cfg;
	char *error = NULL;
	assert_int_equal(config_load(&cfg, NULL, &error), 0);
	struct queue_schedule s;
	queue_schedule_init(&s, cfg.queue_retry.seconds, cfg.queue_retry.count, cfg.queue_lifetime);
	config_free(&cfg);
	static const int expect[] = {300, 600, 1200, 2400, 3600, 7200, 14400, 14400, 14400};
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
	static const int delays[] = {10, 20, 40};
	queue_schedule_init(&s, delays, 3, 100);
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

/* No delays: RFC 5321 4.5.4.1's 30 minutes.  ([queue] retry values that
   are not durations are refused by the configuration: test_config.c.) */
static void test_empty_schedule(void **state)
{
	struct queue_schedule s;
	queue_schedule_init(&s, NULL, 0, 100);
	assert_int_equal(queue_schedule_delay(&s, 1), 1800);
	assert_int_equal(queue_schedule_delay(&s, 3), 1800);
	queue_schedule_deinit(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_schedule),
	    cmocka_unit_test(test_next_attempt),
	    cmocka_unit_test(test_empty_schedule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
