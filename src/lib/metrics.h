#ifndef LIB_METRICS_H
#define LIB_METRICS_H
/* Counters, gauges and histograms of the whole server, shared by its
   processes.  The supervisor maps one region (MAP_SHARED | MAP_ANONYMOUS)
   before it forks; each child attaches to a slot of its own (the index of
   its heartbeat slot) and records into it with relaxed atomic adds: no
   lock, no contention between processes (a slot's counters are only
   touched by its process, whose job threads may add too), a few
   nanoseconds per event.  Whoever reads (the admin process:
   server/admin.h) sums the slots.  A slot outlives its process: counters
   stay monotonic when a child is restarted in it, and its gauges are
   zeroed when the child exits (metrics_slot_exited()).

   Besides the numbers the region keeps what the status page shows as
   text: command names per protocol (registered on first use, keyed by the
   command table's name pointer, which is the same in every process forked
   from the supervisor), a ring of recent rejects (several writers: an
   entry is claimed with a compare-and-swap and dropped when taken), the
   biggest senders and recipients by volume per slot (Space-Saving
   counters, one writer: the process's loop thread) and the per-minute
   history that the admin process samples.  Readers of text entries use
   the entries' sequence numbers and skip what changed under them.

   Without a region (command-line tools, unit tests) recording does
   nothing. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The services of session/session.h (enum service) in its order, then the
   queue runner's outgoing SMTP ("relay"), for TLS counters. */
#define METRICS_SERVICES 8
#define METRICS_SERVICE_RELAY 7

enum metrics_counter {
	METRICS_RECEIVED,        /* messages accepted (250 after DATA/BDAT) */
	METRICS_RECEIVED_BYTES,  /* their size */
	METRICS_RECEIVED_RCPTS,  /* their recipients */
	METRICS_DELIVERED_LOCAL, /* deliveries into local mailboxes */
	METRICS_RELAYED,         /* recipients accepted by another host */
	METRICS_DEFERRED,        /* recipient attempts that failed temporarily */
	METRICS_BOUNCED,         /* recipients given up (DSN or not) */
	METRICS_COUNTERS
};

/* Why a client's mail or connection was refused. */
enum metrics_reject {
	METRICS_REJECT_AUTH_REQUIRED,
	METRICS_REJECT_SENDER,       /* submission: sender not owned by the user */
	METRICS_REJECT_SIZE,         /* SIZE or the data over max_message_size */
	METRICS_REJECT_RECIPIENTS,   /* too many recipients */
	METRICS_REJECT_UNKNOWN_USER, /* no such local recipient */
	METRICS_REJECT_RELAY_DENIED, /* remote recipient without AUTH */
	METRICS_REJECT_QUOTA,        /* recipient over quota */
	METRICS_REJECT_SMUGGLING,    /* bare CR or LF in the data (RFC 5321 2.3.8) */
	METRICS_REJECT_DMARC,        /* inbound verification (trust/) */
	METRICS_REJECT_SPF,
	METRICS_REJECT_CONNECTIONS, /* connection limits */
	METRICS_REJECT_COUNT
};

enum metrics_auth_result {
	METRICS_AUTH_SUCCESS,
	METRICS_AUTH_FAILURE,
	METRICS_AUTH_REFUSED,
	METRICS_AUTH_RESULTS
};

enum metrics_hist {
	METRICS_HIST_FSYNC,  /* fsync()/fdatasync() */
	METRICS_HIST_ACCEPT, /* MAIL to the 250 after the data */
	METRICS_HIST_RELAY,  /* a queue runner job: submitted to its result */
	METRICS_HISTS
};
#define METRICS_BUCKETS 15 /* the last is +Inf */

enum metrics_proto { METRICS_PROTO_POP3, METRICS_PROTO_IMAP, METRICS_PROTOS };
#define METRICS_COMMANDS 64 /* names per protocol; the last counts "other" */
#define METRICS_COMMAND_NAME 24

enum metrics_top { METRICS_TOP_SENDERS, METRICS_TOP_RECIPIENTS, METRICS_TOPS };
#define METRICS_TOP_ENTRIES 16 /* per process slot */
#define METRICS_ADDRESS_MAX 96

#define METRICS_REJECTS 64
#define METRICS_HISTORY 61 /* per-minute samples: the last hour and its start */

enum metrics_process {
	METRICS_PROCESS_NONE,
	METRICS_PROCESS_WORKER,
	METRICS_PROCESS_RUNNER,
	METRICS_PROCESS_ADMIN
};

struct metrics_histogram {
	uint64_t buckets[METRICS_BUCKETS]; /* not cumulative */
	uint64_t sum_ns;
};

struct metrics_top_entry {
	uint64_t hash;
	uint64_t bytes;
	uint64_t messages;
	char address[METRICS_ADDRESS_MAX];
};

struct metrics_top_table {
	uint32_t seq; /* odd while written */
	uint32_t used;
	struct metrics_top_entry e[METRICS_TOP_ENTRIES];
};

/* What only grows: nothing but uint64_t, so that slots are summed as
   one array (metrics_read()). */
struct metrics_numbers {
	uint64_t counters[METRICS_COUNTERS];
	uint64_t connections[METRICS_SERVICES];
	uint64_t tls_ok[METRICS_SERVICES];
	uint64_t tls_failed[METRICS_SERVICES];
	uint64_t auth[METRICS_SERVICES][METRICS_AUTH_RESULTS];
	uint64_t rejects[METRICS_REJECT_COUNT];
	struct metrics_histogram hist[METRICS_HISTS];
};

/* One process's numbers. */
struct metrics_slot {
	struct metrics_numbers n;
	uint64_t commands[METRICS_PROTOS][METRICS_COMMANDS];
	/* gauges, zeroed when the process attaches and when it exits */
	int64_t sessions_open[METRICS_SERVICES];
	int64_t jobs_queued;
	int32_t process; /* enum metrics_process */
	int32_t pid;
	struct metrics_top_table top[METRICS_TOPS];
} __attribute__((aligned(64)));

struct metrics_command_name {
	const char *key; /* the command table's pointer; NULL until published */
	char name[METRICS_COMMAND_NAME];
};

struct metrics_reject_entry {
	uint32_t seq; /* odd while written */
	int32_t reason;
	int64_t time; /* unix seconds; 0: never written */
	char ip[48];
	char detail[128]; /* printable ASCII (log_printable()) */
};

/* Cumulative totals at the start of a minute (the admin process samples
   them; deltas between samples are rates). */
struct metrics_sample {
	int64_t minute; /* unix time / 60 */
	uint64_t received;
	uint64_t delivered; /* local deliveries + relayed */
	uint64_t connections[METRICS_SERVICES];
	int64_t queue_messages;
};

struct metrics {
	int64_t started; /* unix time the region was made (the server's start) */
	unsigned nslots;
	struct {
		uint32_t count; /* claimed entries (may exceed the array) */
		struct metrics_command_name e[METRICS_COMMANDS - 1];
	} names[METRICS_PROTOS];
	struct {
		uint64_t next;
		struct metrics_reject_entry e[METRICS_REJECTS];
	} rejects;
	struct {
		uint32_t count; /* samples written, at most METRICS_HISTORY */
		uint32_t next;  /* where the next goes */
		struct metrics_sample s[METRICS_HISTORY];
	} history;
	struct metrics_slot slots[];
};

/* The calling process's slot, or NULL (nothing is recorded). */
extern struct metrics_slot *metrics_self;

/* A region with nslots slots, shared with children forked afterwards.
   Aborts when it cannot be mapped (like the heartbeat table). */
struct metrics *metrics_create(unsigned nslots);
void metrics_destroy(struct metrics **m);
/* In a child right after fork: records into slot from now on (its gauges
   start at zero). */
void metrics_attach(struct metrics *m, unsigned slot, enum metrics_process process);
/* In the supervisor once the child in slot is gone: its gauges go. */
void metrics_slot_exited(struct metrics *m, unsigned slot);

/* CLOCK_MONOTONIC in nanoseconds, for durations. */
static inline int64_t metrics_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void metrics_add_u64(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static inline void metrics_count_n(enum metrics_counter c, uint64_t n)
{
	if (metrics_self != NULL)
		metrics_add_u64(&metrics_self->n.counters[c], n);
}

static inline void metrics_count(enum metrics_counter c)
{
	metrics_count_n(c, 1);
}

/* service: enum service, or METRICS_SERVICE_RELAY. */
static inline void metrics_connection(int service)
{
	if (metrics_self != NULL && service >= 0 && service < METRICS_SERVICES)
		metrics_add_u64(&metrics_self->n.connections[service], 1);
}

static inline void metrics_session_open(int service, int delta)
{
	if (metrics_self != NULL && service >= 0 && service < METRICS_SERVICES)
		__atomic_fetch_add(&metrics_self->sessions_open[service], delta, __ATOMIC_RELAXED);
}

/* A TLS handshake that completed (ok) or failed. */
static inline void metrics_tls(int service, bool ok)
{
	if (metrics_self != NULL && service >= 0 && service < METRICS_SERVICES)
		metrics_add_u64(ok ? &metrics_self->n.tls_ok[service] : &metrics_self->n.tls_failed[service],
				1);
}

static inline void metrics_auth(int service, enum metrics_auth_result result)
{
	if (metrics_self != NULL && service >= 0 && service < METRICS_SERVICES)
		metrics_add_u64(&metrics_self->n.auth[service][result], 1);
}

/* Jobs submitted to the pool and not yet taken by a thread. */
static inline void metrics_jobs_queued(int delta)
{
	if (metrics_self != NULL)
		__atomic_fetch_add(&metrics_self->jobs_queued, delta, __ATOMIC_RELAXED);
}

/* Adds one observation of ns nanoseconds to histogram h. */
void metrics_observe(enum metrics_hist h, int64_t ns);
/* The upper bounds of h's buckets in nanoseconds (METRICS_BUCKETS - 1 of
   them; the last bucket is +Inf). */
const int64_t *metrics_hist_bounds(enum metrics_hist h);

/* A command of proto: name is the command table's string (compared by
   pointer), NULL for an unknown command (counted as "other"). */
void metrics_command(enum metrics_proto proto, const char *name);

/* A refusal: counted, and kept in the ring of recent rejects with the
   client's ip and detail (untrusted: made printable here; both may be
   NULL). */
void metrics_reject(enum metrics_reject reason, const char *ip, const char *detail);
/* "relay_denied", ...: the label value. */
const char *metrics_reject_name(enum metrics_reject reason);

/* Adds bytes (one message) to address in the process's table of the
   biggest senders or recipients.  Call from one thread per process. */
void metrics_top_add(enum metrics_top top, const char *address, uint64_t bytes);

/* ---- reading (every slot summed) ---- */

struct metrics_totals {
	struct metrics_numbers n;
	int64_t sessions_open[METRICS_SERVICES];
	int64_t jobs_queued[METRICS_PROCESS_ADMIN + 1]; /* by enum metrics_process */
};
void metrics_read(const struct metrics *m, struct metrics_totals *t);

/* Calls cb for each command name of proto that has been counted, names
   merged, and last for "other". */
void metrics_read_commands(const struct metrics *m, enum metrics_proto proto,
			   void (*cb)(void *ctx, const char *name, uint64_t count), void *ctx);

/* Up to max recent rejects, newest first; returns how many. */
size_t metrics_read_rejects(const struct metrics *m, struct metrics_reject_entry *out, size_t max);

/* The biggest entries of every slot merged by address, biggest volume
   first; up to max.  Approximate: each process keeps its top entries
   only (Space-Saving: a newcomer inherits the smallest entry's count). */
size_t metrics_read_top(const struct metrics *m, enum metrics_top top, struct metrics_top_entry *out,
			size_t max);

/* The history: the admin process's sampler appends, the page reads
   oldest first (returns how many). */
void metrics_history_append(struct metrics *m, const struct metrics_sample *s);
size_t metrics_history_read(const struct metrics *m, struct metrics_sample *out, size_t max);
#endif
