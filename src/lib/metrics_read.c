/* Reading the shared metrics region (metrics.h): sums over the slots,
   command names, rejects, the top tables and the history.  Only the admin
   process reads; what others write meanwhile is seen a moment later. */
#include "lib/metrics.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

static uint64_t load_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void metrics_read(const struct metrics *m, struct metrics_totals *t)
{
	memset(t, 0, sizeof(*t));
	uint64_t *sum = (uint64_t *)&t->n;
	for (unsigned k = 0; k < m->nslots; k++) {
		const struct metrics_slot *s = &m->slots[k];
		const uint64_t *add = (const uint64_t *)&s->n;
		for (size_t i = 0; i < sizeof(s->n) / sizeof(uint64_t); i++)
			sum[i] += load_u64(&add[i]);
		for (size_t i = 0; i < METRICS_SERVICES; i++)
			t->sessions_open[i] += __atomic_load_n(&s->sessions_open[i], __ATOMIC_RELAXED);
		int32_t process = s->process;
		if (process > 0 && process <= METRICS_PROCESS_ADMIN)
			t->jobs_queued[process] += __atomic_load_n(&s->jobs_queued, __ATOMIC_RELAXED);
	}
	/* A gauge read between a decrement and its increment elsewhere. */
	for (size_t i = 0; i < METRICS_SERVICES; i++)
		if (t->sessions_open[i] < 0)
			t->sessions_open[i] = 0;
	for (size_t i = 0; i <= METRICS_PROCESS_ADMIN; i++)
		if (t->jobs_queued[i] < 0)
			t->jobs_queued[i] = 0;
}

void metrics_read_commands(const struct metrics *m, enum metrics_proto proto,
			   void (*cb)(void *ctx, const char *name, uint64_t count), void *ctx)
{
	const size_t other = METRICS_COMMANDS - 1;
	uint32_t n = __atomic_load_n(&m->names[proto].count, __ATOMIC_ACQUIRE);
	if (n > other)
		n = other;
	uint64_t counts[METRICS_COMMANDS] = {0};
	for (unsigned k = 0; k < m->nslots; k++)
		for (size_t i = 0; i < METRICS_COMMANDS; i++)
			counts[i] += load_u64(&m->slots[k].commands[proto][i]);
	bool done[METRICS_COMMANDS] = {false};
	for (uint32_t i = 0; i < n; i++) {
		const struct metrics_command_name *e = &m->names[proto].e[i];
		if (done[i] || __atomic_load_n(&e->key, __ATOMIC_ACQUIRE) == NULL)
			continue;
		uint64_t sum = counts[i];
		/* The same name registered twice (two processes at once). */
		for (uint32_t j = i + 1; j < n; j++)
			if (!done[j] &&
			    __atomic_load_n(&m->names[proto].e[j].key, __ATOMIC_ACQUIRE) != NULL &&
			    strcmp(m->names[proto].e[j].name, e->name) == 0) {
				sum += counts[j];
				done[j] = true;
			}
		cb(ctx, e->name, sum);
	}
	cb(ctx, "other", counts[other]);
}

size_t metrics_read_rejects(const struct metrics *m, struct metrics_reject_entry *out, size_t max)
{
	uint64_t next = __atomic_load_n(&m->rejects.next, __ATOMIC_ACQUIRE);
	size_t got = 0;
	for (uint64_t k = 0; k < METRICS_REJECTS && k < next && got < max; k++) {
		const struct metrics_reject_entry *e = &m->rejects.e[(next - 1 - k) % METRICS_REJECTS];
		uint32_t s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		memcpy(&out[got], e, sizeof(*e));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != s1 || out[got].time == 0)
			continue;
		out[got].ip[sizeof(out[got].ip) - 1] = '\0';
		out[got].detail[sizeof(out[got].detail) - 1] = '\0';
		got++;
	}
	return got;
}

/* ---- top tables ---- */

static bool read_table(const struct metrics_top_table *t, struct metrics_top_table *copy)
{
	/* A few tries: the writer holds the table for a few instructions. */
	for (int tries = 0; tries < 100; tries++) {
		uint32_t s1 = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		memcpy(copy, t, sizeof(*copy));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&t->seq, __ATOMIC_RELAXED) == s1)
			return true;
	}
	return false;
}

static int by_bytes(const void *a, const void *b)
{
	const struct metrics_top_entry *x = a, *y = b;
	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : strcmp(x->address, y->address);
}

size_t metrics_read_top(const struct metrics *m, enum metrics_top top, struct metrics_top_entry *out,
			size_t max)
{
	size_t cap = (size_t)m->nslots * METRICS_TOP_ENTRIES, n = 0;
	struct metrics_top_entry *all = xcalloc(cap > 0 ? cap : 1, sizeof(*all));
	struct metrics_top_table copy;
	for (unsigned k = 0; k < m->nslots; k++) {
		if (!read_table(&m->slots[k].top[top], &copy))
			continue;
		for (uint32_t i = 0; i < copy.used && i < METRICS_TOP_ENTRIES; i++) {
			struct metrics_top_entry *e = &copy.e[i];
			e->address[sizeof(e->address) - 1] = '\0';
			size_t j = 0;
			while (j < n && strcmp(all[j].address, e->address) != 0)
				j++;
			if (j == n)
				all[n++] = *e;
			else {
				all[j].bytes += e->bytes;
				all[j].messages += e->messages;
			}
		}
	}
	qsort(all, n, sizeof(*all), by_bytes);
	if (n > max)
		n = max;
	memcpy(out, all, n * sizeof(*out));
	free(all);
	return n;
}

/* ---- history ---- */

void metrics_history_append(struct metrics *m, const struct metrics_sample *s)
{
	m->history.s[m->history.next] = *s;
	m->history.next = (m->history.next + 1) % METRICS_HISTORY;
	if (m->history.count < METRICS_HISTORY)
		m->history.count++;
}

size_t metrics_history_read(const struct metrics *m, struct metrics_sample *out, size_t max)
{
	size_t n = m->history.count < max ? m->history.count : max;
	size_t start = (m->history.next + METRICS_HISTORY - n) % METRICS_HISTORY;
	for (size_t i = 0; i < n; i++)
		out[i] = m->history.s[(start + i) % METRICS_HISTORY];
	return n;
}
