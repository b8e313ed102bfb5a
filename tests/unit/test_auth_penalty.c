/* Unit tests for src/auth/auth_penalty.c: IP and account thresholds, the
   window, lockout expiry, growing delays, checks in flight, trusted pairs,
   a table flooded with distinct keys (fast, and what matters survives),
   and two processes sharing one table, one of them dying with the lock.
   Time is a fake `now` in milliseconds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/auth_penalty_private.h"
#include "lib/xalloc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#define T0 ((int64_t)1000000) /* an arbitrary start: the monotonic clock's value does not matter */

static const struct auth_penalty_policy policy = {
    .ip_failures = 10,
    .account_failures = 30,
    .window_ms = 60 * 1000,
    .lockout_ms = 300 * 1000,
    .base_delay_ms = 2000,
    .max_delay_ms = 15000,
};

static struct auth_penalty *table_new(unsigned int entries)
{
	char *error = NULL;
	struct auth_penalty *t = auth_penalty_create(entries, &error);
	if (t == NULL)
		fail_msg("create: %s", error);
	return t;
}

static enum auth_penalty_verdict check(struct auth_penalty *t, const char *ip, const char *account,
				       int64_t now)
{
	int delay;
	return auth_penalty_check(t, &policy, ip, account, now, &delay);
}

/* One whole failed login: check (must be allowed) and record. */
static int fail_once(struct auth_penalty *t, const char *ip, const char *account, int64_t now)
{
	assert_int_equal(check(t, ip, account, now), AUTH_PENALTY_ALLOW);
	return auth_penalty_record(t, &policy, ip, account, false, now);
}

static void succeed_once(struct auth_penalty *t, const char *ip, const char *account, int64_t now)
{
	assert_int_equal(check(t, ip, account, now), AUTH_PENALTY_ALLOW);
	assert_int_equal(auth_penalty_record(t, &policy, ip, account, true, now), 0);
}

static void test_ip_threshold(void **state)
{
	struct auth_penalty *t = table_new(1024);
	int64_t now = T0;
	/* Nine failures on several accounts: still allowed. */
	for (int i = 0; i < 9; i++) {
		char account[32];
		snprintf(account, sizeof(account), "user%d@example.org", i);
		assert_int_equal(fail_once(t, "192.0.2.1", account, now += 1000), 0);
	}
	/* The tenth locks the IP, for every account, with any password. */
	assert_int_equal(fail_once(t, "192.0.2.1", "alice@example.org", now += 1000), AUTH_PENALTY_LOCKED_IP);
	assert_int_equal(check(t, "192.0.2.1", "alice@example.org", now), AUTH_PENALTY_REFUSE_IP);
	assert_int_equal(check(t, "192.0.2.1", "bob@example.org", now + 1000), AUTH_PENALTY_REFUSE_IP);
	assert_int_equal(check(t, "192.0.2.1", "bob@example.org", now + policy.lockout_ms - 1),
			 AUTH_PENALTY_REFUSE_IP);
	/* Another IP is not affected. */
	assert_int_equal(check(t, "192.0.2.2", "alice@example.org", now), AUTH_PENALTY_ALLOW);
	auth_penalty_record(t, &policy, "192.0.2.2", "alice@example.org", true, now);
	/* After the lockout: one attempt; a failure locks again at once. */
	now += policy.lockout_ms;
	assert_int_equal(fail_once(t, "192.0.2.1", "alice@example.org", now), AUTH_PENALTY_LOCKED_IP);
	assert_int_equal(check(t, "192.0.2.1", "alice@example.org", now + 1), AUTH_PENALTY_REFUSE_IP);
	/* A quiet window after that lockout, the count is gone. */
	now += policy.lockout_ms + policy.window_ms;
	for (int i = 0; i < 9; i++)
		assert_int_equal(fail_once(t, "192.0.2.1", "alice@example.org", now += 10), 0);
	assert_int_equal(fail_once(t, "192.0.2.1", "alice@example.org", now += 10), AUTH_PENALTY_LOCKED_IP);
	auth_penalty_destroy(&t);
	assert_null(t);
}

static void test_ipv6_by_prefix(void **state)
{
	struct auth_penalty *t = table_new(1024);
	int64_t now = T0;
	/* Ten addresses of one /64 are one client. */
	for (int i = 0; i < 10; i++) {
		char ip[64];
		snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", i + 1);
		fail_once(t, ip, "alice@example.org", now += 10);
	}
	assert_int_equal(check(t, "2001:db8:1:2:ffff::1", "alice@example.org", now), AUTH_PENALTY_REFUSE_IP);
	assert_int_equal(check(t, "2001:db8:1:3::1", "alice@example.org", now), AUTH_PENALTY_ALLOW);
	auth_penalty_destroy(&t);
}

static void test_window(void **state)
{
	struct auth_penalty *t = table_new(1024);
	int64_t now = T0;
	/* Failures closer than the window add up, however slow overall. */
	for (int i = 0; i < 9; i++)
		assert_int_equal(fail_once(t, "192.0.2.1", "alice@example.org", now += policy.window_ms - 1),
				 0);
	assert_int_equal(fail_once(t, "192.0.2.1", "alice@example.org", now += policy.window_ms - 1),
			 AUTH_PENALTY_LOCKED_IP);
	/* A window without failures starts the count over. */
	for (int i = 0; i < 9; i++)
		assert_int_equal(fail_once(t, "192.0.2.2", "alice@example.org", now += 1), 0);
	now += policy.window_ms;
	for (int i = 0; i < 9; i++)
		assert_int_equal(fail_once(t, "192.0.2.2", "alice@example.org", now += 1), 0);
	auth_penalty_destroy(&t);
}

static void test_success_resets_ip(void **state)
{
	struct auth_penalty *t = table_new(1024);
	int64_t now = T0;
	for (int i = 0; i < 9; i++)
		fail_once(t, "192.0.2.1", "alice@example.org", now += 1);
	succeed_once(t, "192.0.2.1", "alice@example.org", now += 1);
	for (int i = 0; i < 9; i++)
		assert_int_equal(fail_once(t, "192.0.2.1", "bob@example.org", now += 1), 0);
	assert_int_equal(fail_once(t, "192.0.2.1", "bob@example.org", now += 1), AUTH_PENALTY_LOCKED_IP);
	auth_penalty_destroy(&t);
}

static void test_delays(void **state)
{
	struct auth_penalty *t = table_new(1024);
	int64_t now = T0;
	static const int expect[] = {2000, 2000, 2000, 4000, 8000, 15000, 15000, 15000, 15000, 15000};
	for (size_t i = 0; i < N_ELEMENTS(expect); i++) {
		int delay = -1;
		assert_int_equal(
		    auth_penalty_check(t, &policy, "192.0.2.1", "alice@example.org", now, &delay),
		    AUTH_PENALTY_ALLOW);
		assert_int_equal(delay, expect[i]);
		auth_penalty_record(t, &policy, "192.0.2.1", "alice@example.org", false, now += 1);
	}
	/* A refusal is answered after the longest delay too. */
	int delay = -1;
	assert_int_equal(auth_penalty_check(t, &policy, "192.0.2.1", "alice@example.org", now, &delay),
			 AUTH_PENALTY_REFUSE_IP);
	assert_int_equal(delay, 15000);
	/* With no base delay there is none at all. */
	struct auth_penalty_policy nodelay = policy;
	nodelay.base_delay_ms = 0;
	for (int i = 0; i < 8; i++) {
		assert_int_equal(
		    auth_penalty_check(t, &nodelay, "192.0.2.2", "alice@example.org", now, &delay),
		    AUTH_PENALTY_ALLOW);
		assert_int_equal(delay, 0);
		auth_penalty_record(t, &nodelay, "192.0.2.2", "alice@example.org", false, now += 1);
	}
	auth_penalty_destroy(&t);
}

/* Checks still running count once a failure is on record: parallel
   connections get no more than the limit between them, and a check that
   never reports (its worker died) stops counting after a while. */
static void test_checks_in_flight(void **state)
{
	struct auth_penalty *t = table_new(1024);
	int64_t now = T0;
	/* Before any failure, a burst of logins (a webmail front end) is not
	   refused. */
	for (int i = 0; i < 30; i++)
		assert_int_equal(check(t, "192.0.2.9", "carol@example.org", now), AUTH_PENALTY_ALLOW);
	/* One failure on record: from now on the checks in flight count, and
	   nine more fill the limit of ten. */
	assert_int_equal(check(t, "192.0.2.1", "alice@example.org", now), AUTH_PENALTY_ALLOW);
	auth_penalty_record(t, &policy, "192.0.2.1", "alice@example.org", false, now);
	for (int i = 0; i < 9; i++)
		assert_int_equal(check(t, "192.0.2.1", "bob@example.org", now), AUTH_PENALTY_ALLOW);
	assert_int_equal(check(t, "192.0.2.1", "bob@example.org", now), AUTH_PENALTY_REFUSE_IP);
	/* One finishes (failure): its place is taken by the failure. */
	auth_penalty_record(t, &policy, "192.0.2.1", "bob@example.org", false, now);
	assert_int_equal(check(t, "192.0.2.1", "bob@example.org", now), AUTH_PENALTY_REFUSE_IP);
	/* Nothing else reports back: after the timeout the checks are
	   forgotten. */
	now += AUTH_PENALTY_PENDING_TIMEOUT_MS;
	assert_int_equal(check(t, "192.0.2.1", "bob@example.org", now), AUTH_PENALTY_ALLOW);
	auth_penalty_destroy(&t);
}

/* A trusted pair's checks in flight never count against the IP. */
static void test_trusted_checks_in_flight(void **state)
{
	struct auth_penalty *t = table_new(1024);
	int64_t now = T0;
	succeed_once(t, "192.0.2.1", "alice@example.org", now);
	assert_int_equal(check(t, "192.0.2.1", "mallory@example.org", now), AUTH_PENALTY_ALLOW);
	auth_penalty_record(t, &policy, "192.0.2.1", "mallory@example.org", false, now);
	for (int i = 0; i < 20; i++)
		assert_int_equal(check(t, "192.0.2.1", "alice@example.org", now), AUTH_PENALTY_ALLOW);
	auth_penalty_destroy(&t);
}

static void test_account_lockout_spares_trusted(void **state)
{
	struct auth_penalty *t = table_new(1024);
	int64_t now = T0;
	succeed_once(t, "198.51.100.7", "alice@example.org", now);
	/* 30 failures from 10 IPs, 3 each: no IP reaches its limit. */
	int locked = 0;
	for (int i = 0; i < 30; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i % 10);
		locked |= fail_once(t, ip, "alice@example.org", now += 100);
	}
	assert_int_equal(locked, AUTH_PENALTY_LOCKED_ACCOUNT);
	/* A new IP is refused for alice, even one that never failed ... */
	assert_int_equal(check(t, "203.0.113.99", "alice@example.org", now), AUTH_PENALTY_REFUSE_ACCOUNT);
	/* ... but not for bob, and alice's known IP is let in. */
	assert_int_equal(check(t, "203.0.113.99", "bob@example.org", now), AUTH_PENALTY_ALLOW);
	succeed_once(t, "198.51.100.7", "alice@example.org", now);
	/* After the lockout, the account is open again. */
	now += policy.lockout_ms;
	assert_int_equal(check(t, "203.0.113.98", "alice@example.org", now), AUTH_PENALTY_ALLOW);
	/* Trust ends after 30 days without a login. */
	now += AUTH_PENALTY_TRUST_MS;
	for (int i = 0; i < 30; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", 50 + i % 5);
		fail_once(t, ip, "alice@example.org", now += 1);
	}
	assert_int_equal(check(t, "198.51.100.7", "alice@example.org", now), AUTH_PENALTY_REFUSE_ACCOUNT);
	auth_penalty_destroy(&t);
}

static double seconds_since(const struct timespec *start)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - start->tv_sec) + (double)(ts.tv_nsec - start->tv_nsec) / 1e9;
}

/* Distinct IPs and account names, one failure each, as fast as possible;
   returns the seconds taken. */
static double flood(struct auth_penalty *t, int count, int64_t *now)
{
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 0; i < count; i++) {
		char ip[32], account[48];
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		snprintf(account, sizeof(account), "guess%d@example.org", i);
		int delay;
		if (auth_penalty_check(t, &policy, ip, account, *now, &delay) == AUTH_PENALTY_ALLOW)
			auth_penalty_record(t, &policy, ip, account, false, *now);
		*now += 1;
	}
	return seconds_since(&start);
}

/* A table flooded with many more distinct IPs and account names than it
   holds: every operation stays as fast as on an empty table, lockouts and
   trusted pairs survive, and new keys are still counted.  On the smallest
   table and on the default size (where a scan of the table per lookup
   would be far slower than the bound). */
static void test_table_full(void **state)
{
	static const unsigned int sizes[] = {AUTH_PENALTY_MIN_ENTRIES, 65536};
	for (size_t n = 0; n < N_ELEMENTS(sizes); n++) {
		struct auth_penalty *t = table_new(sizes[n]);
		int64_t now = T0;
		for (int i = 0; i < 10; i++)
			fail_once(t, "192.0.2.1", "x@example.org", now += 1);
		succeed_once(t, "198.51.100.7", "alice@example.org", now += 1);
		for (int i = 0; i < 30; i++) {
			char ip[32];
			snprintf(ip, sizeof(ip), "203.0.113.%d", i % 5);
			fail_once(t, ip, "alice@example.org", now += 1);
		}
		const int count = 200000;
		double secs = flood(t, count, &now);
		print_message("%u entries, %d flooding logins: %.0f ns per check+record\n", sizes[n], count,
			      secs * 1e9 / count);
		assert_true(secs < 4.0);

		/* The lockouts and the trusted pair are still there. */
		assert_int_equal(check(t, "192.0.2.1", "x@example.org", now), AUTH_PENALTY_REFUSE_IP);
		assert_int_equal(check(t, "203.0.113.99", "alice@example.org", now),
				 AUTH_PENALTY_REFUSE_ACCOUNT);
		assert_int_equal(check(t, "198.51.100.7", "alice@example.org", now), AUTH_PENALTY_ALLOW);
		/* A new attacker is still counted. */
		int locked = 0;
		for (int i = 0; i < 10; i++)
			locked |= fail_once(t, "192.0.2.200", "y@example.org", now += 1);
		assert_true(locked & AUTH_PENALTY_LOCKED_IP);
		auth_penalty_destroy(&t);
	}
}

/* Eviction takes the fewest failures first: a slot with many failures
   outlives a stream of one-failure keys through its bucket. */
static void test_eviction_order(void **state)
{
	struct auth_penalty *t = table_new(AUTH_PENALTY_MIN_ENTRIES);
	assert_int_equal(t->slots_count, AUTH_PENALTY_MIN_ENTRIES);
	int64_t now = T0;
	for (int i = 0; i < 8; i++)
		fail_once(t, "192.0.2.1", "x@example.org", now += 1);
	for (int i = 0; i < 5000; i++) {
		char ip[32], account[48];
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i >> 8, i & 255);
		snprintf(account, sizeof(account), "guess%d@example.org", i);
		fail_once(t, ip, account, now);
	}
	/* Still 8 failures: two more lock it. */
	fail_once(t, "192.0.2.1", "z@example.org", now += 1);
	assert_int_equal(fail_once(t, "192.0.2.1", "z@example.org", now += 1), AUTH_PENALTY_LOCKED_IP);
	auth_penalty_destroy(&t);
}

static void test_two_processes(void **state)
{
	struct auth_penalty *t = table_new(1024);
	int64_t now = T0;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = 0;
		for (int i = 0; i < 5; i++)
			rc |=
			    auth_penalty_record(t, &policy, "192.0.2.1", "alice@example.org", false, now + i);
		_exit(rc == 0 ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The parent's five failures add to the child's. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(fail_once(t, "192.0.2.1", "alice@example.org", now + 10 + i), 0);
	assert_int_equal(fail_once(t, "192.0.2.1", "alice@example.org", now + 20), AUTH_PENALTY_LOCKED_IP);

	/* A child sees the parent's lockout. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(check(t, "192.0.2.1", "bob@example.org", now + 30) == AUTH_PENALTY_REFUSE_IP ? 0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* A child killed while it holds the lock: the next locker recovers. */
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_mutex_lock(&t->lock);
		ssize_t n = write(ready[1], "x", 1);
		(void)n;
		pause();
		_exit(0);
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	alarm(10); /* a hang here is the bug */
	assert_int_equal(check(t, "192.0.2.1", "bob@example.org", now + 40), AUTH_PENALTY_REFUSE_IP);
	assert_int_equal(check(t, "192.0.2.9", "bob@example.org", now + 40), AUTH_PENALTY_ALLOW);
	assert_int_equal(check(t, "192.0.2.9", "bob@example.org", now + 40), AUTH_PENALTY_ALLOW);
	alarm(0);
	close(ready[0]);
	close(ready[1]);
	auth_penalty_destroy(&t);
}

static void test_thresholds_off(void **state)
{
	struct auth_penalty *t = table_new(1024);
	struct auth_penalty_policy off = policy;
	off.ip_failures = 0;
	off.account_failures = 0;
	int64_t now = T0;
	int delay;
	for (int i = 0; i < 100; i++) {
		assert_int_equal(auth_penalty_check(t, &off, "192.0.2.1", "alice@example.org", now, &delay),
				 AUTH_PENALTY_ALLOW);
		assert_int_equal(
		    auth_penalty_record(t, &off, "192.0.2.1", "alice@example.org", false, now += 1), 0);
	}
	assert_int_equal(delay, 15000);
	auth_penalty_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ip_threshold),
	    cmocka_unit_test(test_ipv6_by_prefix),
	    cmocka_unit_test(test_window),
	    cmocka_unit_test(test_success_resets_ip),
	    cmocka_unit_test(test_delays),
	    cmocka_unit_test(test_checks_in_flight),
	    cmocka_unit_test(test_trusted_checks_in_flight),
	    cmocka_unit_test(test_account_lockout_spares_trusted),
	    cmocka_unit_test(test_table_full),
	    cmocka_unit_test(test_eviction_order),
	    cmocka_unit_test(test_two_processes),
	    cmocka_unit_test(test_thresholds_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
