/* Unit tests for src/lib/metrics.c and metrics_read.c: counters summed
   over slots (and over processes sharing the region), gauges cleared when
   a slot's process exits, histogram buckets at their bounds, command
   names registered once and merged, the reject ring wrapping, the top
   tables (Space-Saving) and the history ring; and what recording costs,
   against the bound the metrics promise (a few hundred nanoseconds). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static struct metrics *m;

static int setup(void **state)
{
	m = metrics_create(4);
	metrics_attach(m, 0, METRICS_PROCESS_WORKER);
	return 0;
}

static int teardown(void **state)
{
	metrics_destroy(&m);
	assert_null(metrics_self);
	return 0;
}

static void test_counters_and_gauges(void **state)
{
	metrics_count(METRICS_RECEIVED);
	metrics_count_n(METRICS_RECEIVED_BYTES, 1000);
	metrics_connection(0);
	metrics_connection(METRICS_SERVICE_RELAY);
	metrics_connection(METRICS_SERVICES); /* out of range: ignored */
	metrics_session_open(3, 1);
	metrics_session_open(3, 1);
	metrics_jobs_queued(2);
	metrics_auth(5, METRICS_AUTH_FAILURE);
	metrics_tls(1, false);
	/* Another slot (another process) adds to the same totals. */
	metrics_attach(m, 2, METRICS_PROCESS_RUNNER);
	metrics_count(METRICS_RECEIVED);
	metrics_session_open(3, 1);
	metrics_jobs_queued(1);
	struct metrics_totals t;
	metrics_read(m, &t);
	assert_int_equal(t.n.counters[METRICS_RECEIVED], 2);
	assert_int_equal(t.n.counters[METRICS_RECEIVED_BYTES], 1000);
	assert_int_equal(t.n.connections[0], 1);
	assert_int_equal(t.n.connections[METRICS_SERVICE_RELAY], 1);
	assert_int_equal(t.sessions_open[3], 3);
	assert_int_equal(t.jobs_queued[METRICS_PROCESS_WORKER], 2);
	assert_int_equal(t.jobs_queued[METRICS_PROCESS_RUNNER], 1);
	assert_int_equal(t.n.auth[5][METRICS_AUTH_FAILURE], 1);
	assert_int_equal(t.n.tls_failed[1], 1);
	/* Slot 0's process exits: its gauges go, its counters stay. */
	metrics_slot_exited(m, 0);
	metrics_read(m, &t);
	assert_int_equal(t.sessions_open[3], 1);
	assert_int_equal(t.jobs_queued[METRICS_PROCESS_WORKER], 0);
	assert_int_equal(t.n.counters[METRICS_RECEIVED], 2);
	/* A process restarted in the slot starts its gauges at zero and keeps
	   adding to the counters. */
	metrics_attach(m, 0, METRICS_PROCESS_WORKER);
	metrics_count(METRICS_RECEIVED);
	metrics_read(m, &t);
	assert_int_equal(t.n.counters[METRICS_RECEIVED], 3);
}

static void test_shared_between_processes(void **state)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		metrics_attach(m, 1, METRICS_PROCESS_WORKER);
		for (int i = 0; i < 1000; i++)
			metrics_count(METRICS_RELAYED);
		metrics_command(METRICS_PROTO_IMAP, "FETCH");
		_exit(0);
	}
	for (int i = 0; i < 1000; i++)
		metrics_count(METRICS_RELAYED);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	struct metrics_totals t;
	metrics_read(m, &t);
	assert_int_equal(t.n.counters[METRICS_RELAYED], 2000);
}

static void test_histogram_buckets(void **state)
{
	const int64_t *b = metrics_hist_bounds(METRICS_HIST_FSYNC);
	metrics_observe(METRICS_HIST_FSYNC, b[0]);                       /* on a bound: that bucket (le) */
	metrics_observe(METRICS_HIST_FSYNC, b[0] + 1);                   /* just above: the next */
	metrics_observe(METRICS_HIST_FSYNC, -5);                         /* a clock step back: 0 */
	metrics_observe(METRICS_HIST_FSYNC, b[METRICS_BUCKETS - 2] + 1); /* +Inf */
	struct metrics_totals t;
	metrics_read(m, &t);
	const struct metrics_histogram *h = &t.n.hist[METRICS_HIST_FSYNC];
	assert_int_equal(h->buckets[0], 2);
	assert_int_equal(h->buckets[1], 1);
	assert_int_equal(h->buckets[METRICS_BUCKETS - 1], 1);
	assert_int_equal(h->sum_ns, (uint64_t)(2 * b[0] + 1 + b[METRICS_BUCKETS - 2] + 1));
	/* Bounds grow. */
	for (int k = 0; k < METRICS_HISTS; k++)
		for (int i = 1; i < METRICS_BUCKETS - 1; i++)
			assert_true(metrics_hist_bounds(k)[i] > metrics_hist_bounds(k)[i - 1]);
}

struct seen {
	char names[METRICS_COMMANDS][METRICS_COMMAND_NAME];
	uint64_t counts[METRICS_COMMANDS];
	int n;
};

static void command_cb(void *ctx, const char *name, uint64_t count)
{
	struct seen *s = ctx;
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->counts[s->n++] = count;
}

static uint64_t seen_count(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return s->counts[i];
	fail_msg("no command %s", name);
	return 0;
}

static void test_commands(void **state)
{
	static const char *const table[] = {"SELECT", "FETCH", "LOGOUT"};
	metrics_command(METRICS_PROTO_IMAP, table[0]);
	metrics_command(METRICS_PROTO_IMAP, table[1]);
	metrics_command(METRICS_PROTO_IMAP, table[1]);
	metrics_command(METRICS_PROTO_IMAP, NULL);
	metrics_command(METRICS_PROTO_POP3, "STAT");
	/* The same text at another address (another process's table before
	   a restart, say) is merged by name when read. */
	char copy[] = "FETCH";
	metrics_command(METRICS_PROTO_IMAP, copy);
	struct seen s = {.n = 0};
	metrics_read_commands(m, METRICS_PROTO_IMAP, command_cb, &s);
	assert_int_equal(seen_count(&s, "SELECT"), 1);
	assert_int_equal(seen_count(&s, "FETCH"), 3);
	assert_int_equal(seen_count(&s, "other"), 1);
	assert_int_equal(s.n, 3);
	/* More names than places: the rest count as other, nothing breaks. */
	static char many[100][16];
	for (int i = 0; i < 100; i++) {
		snprintf(many[i], sizeof(many[i]), "C%d", i);
		metrics_command(METRICS_PROTO_POP3, many[i]);
	}
	s.n = 0;
	metrics_read_commands(m, METRICS_PROTO_POP3, command_cb, &s);
	assert_int_equal(s.n, METRICS_COMMANDS);
	assert_int_equal(seen_count(&s, "STAT"), 1);
	assert_int_equal(seen_count(&s, "other"), 100 - (METRICS_COMMANDS - 2));
}

static void test_rejects(void **state)
{
	metrics_reject(METRICS_REJECT_UNKNOWN_USER, "192.0.2.1", "bob@example.org");
	metrics_reject(METRICS_REJECT_RELAY_DENIED, "192.0.2.2", "x\r\n<y>\xff");
	struct metrics_reject_entry out[METRICS_REJECTS];
	size_t n = metrics_read_rejects(m, out, METRICS_REJECTS);
	assert_int_equal(n, 2);
	/* Newest first; untrusted text made printable. */
	assert_int_equal(out[0].reason, METRICS_REJECT_RELAY_DENIED);
	assert_string_equal(out[0].detail, "x\\x0d\\x0a<y>\\xff");
	assert_string_equal(out[1].ip, "192.0.2.1");
	for (int i = 0; i < 3 * METRICS_REJECTS; i++)
		metrics_reject(METRICS_REJECT_SIZE, "192.0.2.3", "big");
	n = metrics_read_rejects(m, out, METRICS_REJECTS);
	assert_int_equal(n, METRICS_REJECTS);
	struct metrics_totals t;
	metrics_read(m, &t);
	assert_int_equal(t.n.rejects[METRICS_REJECT_SIZE], 3 * METRICS_REJECTS);
	assert_string_equal(metrics_reject_name(METRICS_REJECT_RELAY_DENIED), "relay_denied");
}

static void test_top(void **state)
{
	/* A heavy sender among many light ones is never lost (Space-Saving). */
	for (int i = 0; i < 200; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "light%d@example.org", i);
		metrics_top_add(METRICS_TOP_SENDERS, addr, 10);
		metrics_top_add(METRICS_TOP_SENDERS, "heavy@example.org", 100);
	}
	metrics_top_add(METRICS_TOP_SENDERS, "", 5); /* the null sender */
	/* The same address from another process is summed. */
	metrics_attach(m, 3, METRICS_PROCESS_WORKER);
	metrics_top_add(METRICS_TOP_SENDERS, "heavy@example.org", 7);
	metrics_top_add(METRICS_TOP_RECIPIENTS, "rcpt@example.org", 1);
	struct metrics_top_entry top[5];
	size_t n = metrics_read_top(m, METRICS_TOP_SENDERS, top, 5);
	assert_int_equal(n, 5);
	assert_string_equal(top[0].address, "heavy@example.org");
	assert_int_equal(top[0].bytes, 200 * 100 + 7);
	assert_int_equal(top[0].messages, 201);
	n = metrics_read_top(m, METRICS_TOP_RECIPIENTS, top, 5);
	assert_int_equal(n, 1);
	assert_string_equal(top[0].address, "rcpt@example.org");
}

static void test_history(void **state)
{
	struct metrics_sample s = {0}, out[METRICS_HISTORY];
	assert_int_equal(metrics_history_read(m, out, METRICS_HISTORY), 0);
	for (int i = 0; i < METRICS_HISTORY + 5; i++) {
		s.minute = 1000 + i;
		s.received = (uint64_t)i;
		metrics_history_append(m, &s);
	}
	size_t n = metrics_history_read(m, out, METRICS_HISTORY);
	assert_int_equal(n, METRICS_HISTORY);
	assert_int_equal(out[0].minute, 1005);
	assert_int_equal(out[n - 1].minute, 1000 + METRICS_HISTORY + 4);
	n = metrics_history_read(m, out, 2);
	assert_int_equal(out[1].minute, 1000 + METRICS_HISTORY + 4);
}

static double ns_per(void (*fn)(int), int n)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	fn(n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
}

static void count_loop(int n)
{
	for (int i = 0; i < n; i++)
		metrics_count(METRICS_RECEIVED);
}

static void observe_loop(int n)
{
	for (int i = 0; i < n; i++)
		metrics_observe(METRICS_HIST_ACCEPT, metrics_now_ns() - (int64_t)i);
}

static const char *const names[] = {"CAPABILITY", "NOOP",  "LOGOUT", "ID",     "STARTTLS", "LOGIN",
				    "SELECT",     "FETCH", "STORE",  "SEARCH", "UID",      "IDLE"};

static void command_loop(int n)
{
	for (int i = 0; i < n; i++)
		metrics_command(METRICS_PROTO_IMAP, names[i % 12]);
}

/* What an event costs: a counter, a histogram observation with its clock
   reading, a command by name.  The promise is a few hundred nanoseconds;
   the bound here (1 us) holds on a loaded machine and under the
   sanitizers. */
static void test_cost(void **state)
{
	const int n = 200000;
	double c = ns_per(count_loop, n), o = ns_per(observe_loop, n), k = ns_per(command_loop, n);
	printf("metrics cost: count %.1f ns, observe %.1f ns, command %.1f ns\n", c, o, k);
	assert_true(c < 1000);
	assert_true(o < 1000);
	assert_true(k < 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_counters_and_gauges, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shared_between_processes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_histogram_buckets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_top, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_history, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cost, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
