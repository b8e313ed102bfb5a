/* Unit tests of the limits that the nodes of a cluster share in
   PostgreSQL: the failed-login counters (auth/auth_penalty_pg.h) run side
   by side with the shared-memory table (auth/auth_penalty.h) on a long
   pseudo-random script of logins, and must give the same verdicts, delays
   and lockouts at every step (windows, lockouts, checks in flight, trusted
   pairs); IPv6 clients counted by their /64; expiry of run-out rows;
   failures counted from two connections at once, none lost.  The table of
   live sessions (session/session_registry.h): a cap over two "nodes",
   release, expiry of a process that stops renewing, renewal, and two
   connections taking slots at once never passing the cap.  Needs a
   server: see tests/unit/pg_test.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/auth_penalty_pg.h"
#include "lib/pg.h"
#include "lib/pg_schema.h"
#include "session/session_registry.h"
#include "pg_test.h"

#include <pthread.h>
#include <time.h>

#define T0 ((int64_t)1700000000000) /* an arbitrary start, in ms */

static const struct auth_penalty_policy policy = {
    .ip_failures = 4,
    .account_failures = 6,
    .window_ms = 10 * 1000,
    .lockout_ms = 30 * 1000,
    .base_delay_ms = 100,
    .max_delay_ms = 1500,
};

struct fixture {
	char *conninfo;
	struct pg_conn *conn; /* for looking at the tables */
	struct auth_penalty_pg *pg;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->conninfo = pg_test_database_create();
	char *error = NULL;
	int applied;
	f->conn = pg_connect(f->conninfo, &error);
	if (f->conn == NULL || pg_schema_migrate(f->conn, &applied, &error) < 0)
		fail_msg("database: %s", error);
	f->pg = auth_penalty_pg_open(f->conninfo, &error);
	if (f->pg == NULL)
		fail_msg("auth_penalty_pg_open: %s", error);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	auth_penalty_pg_close(&f->pg);
	pg_close(&f->conn);
	pg_test_database_drop(f->conninfo);
	free(f);
	return 0;
}

static long long query_number(struct fixture *f, const char *sql)
{
	char *error = NULL;
	PGresult *res = pg_query(f->conn, sql, 0, NULL, &error);
	if (res == NULL)
		fail_msg("%s: %s", sql, error);
	long long n = pg_value_int64(res, 0, 0);
	PQclear(res);
	return n;
}

static enum auth_penalty_verdict pg_check(struct auth_penalty_pg *pg, const char *ip, const char *account,
					  int64_t now, int *delay_r)
{
	enum auth_penalty_verdict verdict;
	int delay;
	char *error = NULL;
	if (auth_penalty_pg_check(pg, &policy, ip, account, now, &verdict, delay_r ? delay_r : &delay,
				  &error) < 0)
		fail_msg("check: %s", error);
	return verdict;
}

static int pg_record(struct auth_penalty_pg *pg, const char *ip, const char *account, bool success,
		     int64_t now)
{
	char *error = NULL;
	int locked = auth_penalty_pg_record(pg, &policy, ip, account, success, now, &error);
	if (locked < 0)
		fail_msg("record: %s", error);
	return locked;
}

/* ---- the same as the shared-memory table ---- */

struct inflight {
	int ip, account;
};

static uint32_t rnd(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return (*state >> 8) & 0xffffff;
}

static void test_same_as_local_table(void **state)
{
	struct fixture *f = *state;
	static const char *const ips[] = {"192.0.2.1", "192.0.2.2", "2001:db8:1:2::5"};
	static const char *const accounts[] = {"alice@example.org", "bob@example.org", "nobody@example.org"};
	char *error = NULL;
	struct auth_penalty *local = auth_penalty_create(1024, &error);
	assert_non_null(local);
	struct inflight flying[8];
	int nflying = 0, refusals = 0, lockouts = 0, successes = 0;
	uint32_t seed = 16;
	int64_t now = T0;
	for (int step = 0; step < 600; step++) {
		now += rnd(&seed) % 3000;
		uint32_t op = rnd(&seed) % 10;
		if (op < 6 && nflying < (int)N_ELEMENTS(flying)) {
			/* a login starts: both must agree whether it may */
			int i = (int)(rnd(&seed) % 3), a = (int)(rnd(&seed) % 3);
			int local_delay, pg_delay;
			enum auth_penalty_verdict lv =
			    auth_penalty_check(local, &policy, ips[i], accounts[a], now, &local_delay);
			enum auth_penalty_verdict pv = pg_check(f->pg, ips[i], accounts[a], now, &pg_delay);
			if (lv != pv || local_delay != pg_delay)
				fail_msg("step %d: check %s %s: local %d/%d ms, postgresql %d/%d ms", step,
					 ips[i], accounts[a], lv, local_delay, pv, pg_delay);
			if (lv == AUTH_PENALTY_ALLOW)
				flying[nflying++] = (struct inflight){i, a};
			else
				refusals++;
		} else if (nflying > 0) {
			/* one in flight ends: mostly failures, the owners' right
			   passwords from their own addresses now and then */
			int k = (int)(rnd(&seed) % (uint32_t)nflying);
			struct inflight l = flying[k];
			flying[k] = flying[--nflying];
			bool success = l.ip == l.account && rnd(&seed) % 4 == 0;
			int lr =
			    auth_penalty_record(local, &policy, ips[l.ip], accounts[l.account], success, now);
			int pr = pg_record(f->pg, ips[l.ip], accounts[l.account], success, now);
			if (lr != pr)
				fail_msg("step %d: record %s %s success=%d: local %d, postgresql %d", step,
					 ips[l.ip], accounts[l.account], success, lr, pr);
			lockouts += lr != 0;
			successes += success;
		}
	}
	/* The script went through what matters. */
	print_message("  %d refusals, %d lockouts, %d successes\n", refusals, lockouts, successes);
	assert_true(refusals > 20);
	assert_true(lockouts > 5);
	assert_true(successes > 5);
	auth_penalty_destroy(&local);
}

/* ---- plain cases ---- */

static void test_lockout_window_and_ipv6_prefix(void **state)
{
	struct fixture *f = *state;
	int64_t now = T0;
	/* Three failures from one /64 under different addresses ... */
	const char *ips[] = {"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:ffff::3"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pg_check(f->pg, ips[i], "alice@example.org", now, NULL), AUTH_PENALTY_ALLOW);
		assert_int_equal(pg_record(f->pg, ips[i], "alice@example.org", false, now), 0);
		now += 1000;
	}
	/* ... a quiet window starts the count over ... */
	now += policy.window_ms;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pg_check(f->pg, ips[i], "bob@example.org", now, NULL), AUTH_PENALTY_ALLOW);
		assert_int_equal(pg_record(f->pg, ips[i], "bob@example.org", false, now), 0);
		now += 1000;
	}
	/* ... and the fourth in a window locks the whole /64, not the next. */
	assert_int_equal(pg_check(f->pg, "2001:db8:0:1::9", "carol@example.org", now, NULL),
			 AUTH_PENALTY_ALLOW);
	assert_int_equal(pg_record(f->pg, "2001:db8:0:1::9", "carol@example.org", false, now),
			 AUTH_PENALTY_LOCKED_IP);
	assert_int_equal(pg_check(f->pg, "2001:db8:0:1::a", "dave@example.org", now + 1, NULL),
			 AUTH_PENALTY_REFUSE_IP);
	assert_int_equal(pg_check(f->pg, "2001:db8:0:2::1", "dave@example.org", now + 1, NULL),
			 AUTH_PENALTY_ALLOW);
	assert_int_equal(query_number(f, "SELECT count(*) FROM auth_failures WHERE scope = 0 "
					 "AND name = '2001:db8:0:1::/64' AND failures = 3"),
			 1);
	/* The lockout ends; the database's own clock is used without now. */
	assert_int_equal(
	    pg_check(f->pg, "2001:db8:0:1::a", "dave@example.org", now + policy.lockout_ms, NULL),
	    AUTH_PENALTY_ALLOW);
	assert_int_equal(pg_check(f->pg, "198.51.100.1", "erin@example.org", AUTH_PENALTY_PG_NOW, NULL),
			 AUTH_PENALTY_ALLOW);
	assert_int_equal(query_number(f, "SELECT count(*) FROM auth_failures WHERE name = '198.51.100.1' "
					 "AND abs(pending_ms - po_now_ms()) < 60000"),
			 1);
}

static void test_expire(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	int64_t now = T0;
	for (int i = 0; i < 4; i++) {
		pg_check(f->pg, "192.0.2.7", "alice@example.org", now, NULL);
		pg_record(f->pg, "192.0.2.7", "alice@example.org", false, now);
	}
	pg_check(f->pg, "192.0.2.8", "bob@example.org", now, NULL);
	pg_record(f->pg, "192.0.2.8", "bob@example.org", true, now);
	assert_int_equal(query_number(f, "SELECT count(*) FROM auth_failures"), 4);
	assert_int_equal(query_number(f, "SELECT count(*) FROM auth_trusted"), 1);
	/* A moment later the rows of the good login are as good as none
	   (their check ended, nothing failed): they go. */
	assert_int_equal(auth_penalty_pg_expire(f->pg, now + 1000, 100, &error), 2);
	/* After the window, alice's count goes; the lockout of 192.0.2.7 stays. */
	assert_int_equal(auth_penalty_pg_expire(f->pg, now + policy.window_ms + 1, 100, &error), 1);
	assert_int_equal(query_number(f, "SELECT count(*) FROM auth_failures WHERE name = '192.0.2.7'"), 1);
	assert_int_equal(pg_check(f->pg, "192.0.2.7", "x@example.org", now + policy.window_ms + 2, NULL),
			 AUTH_PENALTY_REFUSE_IP);
	/* A window after the lockout, nothing; the trusted pair lasts 30 days. */
	int64_t later = now + policy.lockout_ms + policy.window_ms + 1;
	assert_int_equal(auth_penalty_pg_expire(f->pg, later, 100, &error), 2);
	assert_int_equal(query_number(f, "SELECT count(*) FROM auth_failures"), 0);
	assert_int_equal(auth_penalty_pg_expire(f->pg, now + (int64_t)31 * 86400 * 1000, 100, &error), 1);
	/* The batch bound holds. */
	for (int i = 0; i < 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i);
		pg_check(f->pg, ip, "alice@example.org", later, NULL);
		pg_record(f->pg, ip, "alice@example.org", false, later);
	}
	assert_int_equal(auth_penalty_pg_expire(f->pg, later + policy.window_ms + 1, 4, &error), 4);
}

/* ---- two connections at once ---- */

struct hammer {
	const char *conninfo;
	int64_t now;
	int rounds;
	const char *ip;
};

static const struct auth_penalty_policy wide = {
    .ip_failures = 100000,
    .account_failures = 100000,
    .window_ms = 3600 * 1000,
    .lockout_ms = 1000,
    .base_delay_ms = 0,
    .max_delay_ms = 0,
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	char *error = NULL;
	struct auth_penalty_pg *pg = auth_penalty_pg_open(h->conninfo, &error);
	if (pg == NULL)
		return error;
	for (int i = 0; i < h->rounds; i++) {
		enum auth_penalty_verdict v;
		int delay;
		if (auth_penalty_pg_check(pg, &wide, h->ip, "alice@example.org", h->now + i, &v, &delay,
					  &error) < 0 ||
		    auth_penalty_pg_record(pg, &wide, h->ip, "alice@example.org", false, h->now + i, &error) <
			0)
			break;
	}
	auth_penalty_pg_close(&pg);
	return error;
}

static void test_concurrent_connections(void **state)
{
	struct fixture *f = *state;
	struct hammer h[2] = {{f->conninfo, T0, 150, "192.0.2.10"}, {f->conninfo, T0, 150, "192.0.2.11"}};
	pthread_t th[2];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, hammer_run, &h[i]);
	for (int i = 0; i < 2; i++) {
		void *error;
		pthread_join(th[i], &error);
		if (error != NULL)
			fail_msg("thread %d: %s", i, (char *)error);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("  300 failed logins (check + record) on one account from two connections: "
		      "%.0f ms, %.2f ms per login and connection\n",
		      ms, ms / 150);
	/* Every failure on the shared account counted once, every check in
	   flight given back. */
	assert_int_equal(query_number(f, "SELECT failures FROM auth_failures WHERE scope = 1"), 300);
	assert_int_equal(query_number(f, "SELECT sum(pending) FROM auth_failures"), 0);
	assert_int_equal(query_number(f, "SELECT sum(failures) FROM auth_failures WHERE scope = 0"), 300);
}

/* ---- live sessions ---- */

static struct session_registry *registry(struct fixture *f, int64_t ttl_ms)
{
	char *error = NULL;
	struct session_registry *reg = session_registry_open(f->conninfo, ttl_ms, &error);
	if (reg == NULL)
		fail_msg("session_registry_open: %s", error);
	return reg;
}

static int acquire(struct session_registry *reg, const char *user, int max, int64_t *slot_r)
{
	char *error = NULL;
	int64_t slot;
	int rc = session_registry_acquire(reg, "imap", user, max, slot_r != NULL ? slot_r : &slot, &error);
	if (rc < 0)
		fail_msg("acquire: %s", error);
	return rc;
}

static void test_sessions_cap_over_nodes(void **state)
{
	struct fixture *f = *state;
	struct session_registry *a = registry(f, 60000), *b = registry(f, 60000), *c = registry(f, 60000);
	char *error = NULL;
	int64_t slot;
	assert_int_equal(acquire(a, "alice@example.org", 3, &slot), 1);
	assert_int_equal(acquire(a, "alice@example.org", 3, NULL), 1);
	assert_int_equal(acquire(b, "alice@example.org", 3, NULL), 1);
	assert_int_equal(acquire(c, "alice@example.org", 3, NULL), 0);
	assert_int_equal(acquire(c, "bob@example.org", 3, NULL), 1);
	assert_int_equal(session_registry_count(c, "imap", "alice@example.org", &error), 3);
	assert_int_equal(session_registry_release(a, slot, &error), 0);
	assert_int_equal(acquire(c, "alice@example.org", 3, NULL), 1);
	assert_int_equal(acquire(c, "alice@example.org", 3, NULL), 0);
	/* A node that stops deletes its rows. */
	session_registry_close(&b);
	assert_int_equal(session_registry_count(c, "imap", "alice@example.org", &error), 2);
	assert_int_equal(acquire(c, "alice@example.org", 3, NULL), 1);
	/* No registry (local mode): admitted, nothing to give back. */
	assert_int_equal(session_registry_acquire(NULL, "imap", "alice@example.org", 1, &slot, &error), 1);
	assert_int_equal(slot, 0);
	session_registry_close(&a);
	session_registry_close(&c);
}

static void test_sessions_expire_unless_renewed(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	struct session_registry *dead = registry(f, 400), *alive = registry(f, 400),
				*other = registry(f, 60000);
	assert_int_equal(acquire(dead, "alice@example.org", 2, NULL), 1);
	assert_int_equal(acquire(alive, "alice@example.org", 2, NULL), 1);
	assert_int_equal(acquire(other, "alice@example.org", 2, NULL), 0);
	/* Past the ttl: the renewed one still counts, the other does not. */
	for (int i = 0; i < 3; i++) {
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
		assert_int_equal(session_registry_renew(alive, &error), 1);
	}
	assert_int_equal(session_registry_count(other, "imap", "alice@example.org", &error), 1);
	assert_int_equal(acquire(other, "alice@example.org", 2, NULL), 1);
	assert_int_equal(acquire(other, "alice@example.org", 2, NULL), 0);
	/* The dead one's row is gone (deleted by that login). */
	assert_int_equal(query_number(f, "SELECT count(*) FROM live_sessions"), 2);
	session_registry_close(&dead);
	session_registry_close(&alive);
	session_registry_close(&other);
}

struct racer {
	const char *conninfo;
	struct session_registry *reg; /* kept open for the count: closing deletes its rows */
	int admitted;
	char *error;
};

static void *racer_run(void *arg)
{
	struct racer *r = arg;
	r->reg = session_registry_open(r->conninfo, 60000, &r->error);
	for (int i = 0; r->reg != NULL && i < 20; i++) {
		int64_t slot;
		int rc = session_registry_acquire(r->reg, "imap", "race@example.org", 5, &slot, &r->error);
		if (rc < 0)
			break;
		r->admitted += rc;
	}
	return r;
}

static void test_sessions_racing_connections(void **state)
{
	struct fixture *f = *state;
	struct racer r[2] = {{f->conninfo, NULL, 0, NULL}, {f->conninfo, NULL, 0, NULL}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, racer_run, &r[i]);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (r[i].error != NULL)
			fail_msg("racer %d: %s", i, r[i].error);
	}
	assert_int_equal(r[0].admitted + r[1].admitted, 5);
	assert_int_equal(
	    query_number(f, "SELECT count(*) FROM live_sessions WHERE username = 'race@example.org'"), 5);
	for (int i = 0; i < 2; i++)
		session_registry_close(&r[i].reg);
	assert_int_equal(query_number(f, "SELECT count(*) FROM live_sessions"), 0);
}

int main(void)
{
	int avail = pg_test_available("limits in postgresql");
	if (avail <= 0)
		return avail < 0;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_same_as_local_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lockout_window_and_ipv6_prefix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_connections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sessions_cap_over_nodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sessions_expire_unless_renewed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sessions_racing_connections, setup, teardown),
	};
	return cmocka_run_group_tests_name("limits in postgresql", tests, NULL, NULL);
}
