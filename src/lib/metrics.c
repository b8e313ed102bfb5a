/* The shared metrics region (metrics.h): slots, histograms, command names,
   the reject ring, the top tables and the history. */
#include "lib/metrics.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct metrics_slot *metrics_self;
/* The region metrics_self is in (for what is not per slot). */
static struct metrics *self_region;

#define MS 1000000LL
#define SEC 1000000000LL

/* Bucket bounds in nanoseconds: fsyncs take from 100 us (a cached
   journal) to seconds (a disk under load); acceptance includes the
   client's DATA; relay includes DNS, connecting, TLS and the remote
   host's answer. */
static const int64_t bounds[METRICS_HISTS][METRICS_BUCKETS - 1] = {
    [METRICS_HIST_FSYNC] = {MS / 10, MS / 4, MS / 2, MS, 5 * MS / 2, 5 * MS, 10 * MS, 25 * MS, 50 * MS,
			    100 * MS, 250 * MS, 500 * MS, SEC, 5 * SEC / 2},
    [METRICS_HIST_ACCEPT] = {MS, 5 * MS / 2, 5 * MS, 10 * MS, 25 * MS, 50 * MS, 100 * MS, 250 * MS, 500 * MS,
			     SEC, 5 * SEC / 2, 5 * SEC, 10 * SEC, 30 * SEC},
    [METRICS_HIST_RELAY] = {10 * MS, 25 * MS, 50 * MS, 100 * MS, 250 * MS, 500 * MS, SEC, 5 * SEC / 2,
			    5 * SEC, 10 * SEC, 30 * SEC, 60 * SEC, 120 * SEC, 300 * SEC},
};

static const char *const reject_names[METRICS_REJECT_COUNT] = {
    [METRICS_REJECT_AUTH_REQUIRED] = "auth_required",
    [METRICS_REJECT_SENDER] = "sender_not_owned",
    [METRICS_REJECT_SIZE] = "size",
    [METRICS_REJECT_RECIPIENTS] = "too_many_recipients",
    [METRICS_REJECT_UNKNOWN_USER] = "unknown_user",
    [METRICS_REJECT_RELAY_DENIED] = "relay_denied",
    [METRICS_REJECT_QUOTA] = "quota",
    [METRICS_REJECT_SMUGGLING] = "smuggling",
    [METRICS_REJECT_DMARC] = "dmarc",
    [METRICS_REJECT_SPF] = "spf",
    [METRICS_REJECT_CONNECTIONS] = "too_many_connections",
};

static size_t region_size(unsigned nslots)
{
	return sizeof(struct metrics) + (size_t)nslots * sizeof(struct metrics_slot);
}

struct metrics *metrics_create(unsigned nslots)
{
	size_t size = region_size(nslots);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		log_fatal("mmap() of %zu bytes of metrics failed: %s", size, strerror(errno));
	struct metrics *m = p;
	m->started = (int64_t)time(NULL);
	m->nslots = nslots;
	return m;
}

void metrics_destroy(struct metrics **m)
{
	if (*m == NULL)
		return;
	if (metrics_self != NULL && metrics_self >= (*m)->slots && metrics_self < (*m)->slots + (*m)->nslots)
		metrics_self = NULL;
	if (self_region == *m)
		self_region = NULL;
	munmap(*m, region_size((*m)->nslots));
	*m = NULL;
}

static void slot_clear_gauges(struct metrics_slot *s)
{
	for (size_t i = 0; i < METRICS_SERVICES; i++)
		__atomic_store_n(&s->sessions_open[i], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->jobs_queued, 0, __ATOMIC_RELAXED);
}

void metrics_attach(struct metrics *m, unsigned slot, enum metrics_process process)
{
	if (m == NULL || slot >= m->nslots)
		return;
	struct metrics_slot *s = &m->slots[slot];
	slot_clear_gauges(s);
	s->process = (int32_t)process;
	s->pid = (int32_t)getpid();
	metrics_self = s;
	self_region = m;
}

void metrics_slot_exited(struct metrics *m, unsigned slot)
{
	if (m == NULL || slot >= m->nslots)
		return;
	slot_clear_gauges(&m->slots[slot]);
	m->slots[slot].pid = 0;
}

const int64_t *metrics_hist_bounds(enum metrics_hist h)
{
	return bounds[h];
}

void metrics_observe(enum metrics_hist h, int64_t ns)
{
	if (metrics_self == NULL)
		return;
	if (ns < 0)
		ns = 0;
	size_t i = 0;
	while (i < METRICS_BUCKETS - 1 && ns > bounds[h][i])
		i++;
	struct metrics_histogram *hist = &metrics_self->n.hist[h];
	metrics_add_u64(&hist->buckets[i], 1);
	metrics_add_u64(&hist->sum_ns, (uint64_t)ns);
}

/* ---- command names ---- */

static size_t command_index(enum metrics_proto proto, const char *name)
{
	struct metrics *m = self_region;
	const size_t other = METRICS_COMMANDS - 1;
	if (m == NULL || name == NULL)
		return other;
	uint32_t n = __atomic_load_n(&m->names[proto].count, __ATOMIC_ACQUIRE);
	if (n > other)
		n = other;
	for (uint32_t i = 0; i < n; i++)
		if (__atomic_load_n(&m->names[proto].e[i].key, __ATOMIC_ACQUIRE) == name)
			return i;
	/* First use (in this process or in two at once: the duplicates are
	   merged by name when read). */
	uint32_t i = __atomic_fetch_add(&m->names[proto].count, 1, __ATOMIC_ACQ_REL);
	if (i >= other)
		return other;
	struct metrics_command_name *e = &m->names[proto].e[i];
	snprintf(e->name, sizeof(e->name), "%s", name);
	__atomic_store_n(&e->key, name, __ATOMIC_RELEASE);
	return i;
}

void metrics_command(enum metrics_proto proto, const char *name)
{
	if (metrics_self == NULL)
		return;
	metrics_add_u64(&metrics_self->commands[proto][command_index(proto, name)], 1);
}

/* ---- rejects ---- */

const char *metrics_reject_name(enum metrics_reject reason)
{
	return reason >= 0 && reason < METRICS_REJECT_COUNT ? reject_names[reason] : "other";
}

void metrics_reject(enum metrics_reject reason, const char *ip, const char *detail)
{
	if (metrics_self == NULL || reason < 0 || reason >= METRICS_REJECT_COUNT)
		return;
	metrics_add_u64(&metrics_self->n.rejects[reason], 1);
	struct metrics *m = self_region;
	if (m == NULL)
		return;
	uint64_t n = __atomic_fetch_add(&m->rejects.next, 1, __ATOMIC_RELAXED);
	struct metrics_reject_entry *e = &m->rejects.e[n % METRICS_REJECTS];
	uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
	/* Someone is writing this entry (the ring went round meanwhile):
	   this reject is counted but not listed. */
	if ((seq & 1) ||
	    !__atomic_compare_exchange_n(&e->seq, &seq, seq + 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	e->reason = (int32_t)reason;
	e->time = (int64_t)time(NULL);
	log_printable(e->ip, sizeof(e->ip), ip != NULL ? ip : "", ip != NULL ? strlen(ip) : 0);
	log_printable(e->detail, sizeof(e->detail), detail != NULL ? detail : "",
		      detail != NULL ? strlen(detail) : 0);
	__atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
}

/* ---- the biggest senders and recipients ---- */

static uint64_t address_hash(const char *s)
{
	/* FNV-1a: equal addresses must hash alike in every process (the
	   table only compares hashes before the text). */
	uint64_t h = 14695981039346656037ULL;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

void metrics_top_add(enum metrics_top top, const char *address, uint64_t bytes)
{
	if (metrics_self == NULL || address == NULL)
		return;
	if (*address == '\0')
		address = "<>";
	struct metrics_top_table *t = &metrics_self->top[top];
	uint64_t h = address_hash(address);
	struct metrics_top_entry *hit = NULL, *least = NULL;
	for (uint32_t i = 0; i < t->used; i++) {
		struct metrics_top_entry *e = &t->e[i];
		if (e->hash == h && strncmp(e->address, address, sizeof(e->address) - 1) == 0) {
			hit = e;
			break;
		}
		if (least == NULL || e->bytes < least->bytes)
			least = e;
	}
	/* A seqlock with one writer: odd while the entry changes. */
	__atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	if (hit == NULL) {
		if (t->used < METRICS_TOP_ENTRIES) {
			hit = &t->e[t->used++];
			hit->bytes = 0;
			hit->messages = 0;
		} else {
			/* Space-Saving: the newcomer takes the smallest entry's
			   place and count, so a frequent address can only be
			   overestimated, never missed. */
			hit = least;
		}
		hit->hash = h;
		snprintf(hit->address, sizeof(hit->address), "%s", address);
	}
	hit->bytes += bytes;
	hit->messages++;
	__atomic_store_n(&t->seq, t->seq + 1, __ATOMIC_RELEASE);
}
