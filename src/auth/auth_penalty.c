/* The shared penalty table (see auth_penalty.h for the policy).  Every
   operation takes the lock once and looks at one bucket per region it
   needs: a fixed amount of work, whatever is in the table. */
#include "auth/auth_penalty_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/random.h>

/* ---- keys ---- */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND(v0, v1, v2, v3)                                                                             \
	do {                                                                                                 \
		v0 += v1;                                                                                    \
		v1 = ROTL64(v1, 13);                                                                         \
		v1 ^= v0;                                                                                    \
		v0 = ROTL64(v0, 32);                                                                         \
		v2 += v3;                                                                                    \
		v3 = ROTL64(v3, 16);                                                                         \
		v3 ^= v2;                                                                                    \
		v0 += v3;                                                                                    \
		v3 = ROTL64(v3, 21);                                                                         \
		v3 ^= v0;                                                                                    \
		v2 += v1;                                                                                    \
		v1 = ROTL64(v1, 17);                                                                         \
		v1 ^= v2;                                                                                    \
		v2 = ROTL64(v2, 32);                                                                         \
	} while (0)

/* SipHash-2-4 (Aumasson and Bernstein): keys chosen by clients (account
   names, IPs) cannot be aimed at one bucket without the table's key. */
static uint64_t siphash24(const uint64_t key[2], const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
	size_t full = len & ~(size_t)7;
	for (size_t i = 0; i < full; i += 8) {
		uint64_t m = 0;
		for (int j = 0; j < 8; j++)
			m |= (uint64_t)in[i + (size_t)j] << (8 * j);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t i = 0; i < len - full; i++)
		b |= (uint64_t)in[full + i] << (8 * i);
	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

struct penalty_keys {
	uint64_t ip, account, pair;
};

/* The bytes that identify a client: an IPv4 address, or the /64 of an IPv6
   one (a single host usually has a whole /64 to hop around in). */
static size_t ip_bytes(const char *ip, uint8_t out[16])
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		memcpy(out, &a4, 4);
		return 4;
	}
	if (inet_pton(AF_INET6, ip, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(out, a6.s6_addr + 12, 4);
			return 4;
		}
		memcpy(out, a6.s6_addr, 8);
		return 8;
	}
	size_t n = strnlen(ip, 16);
	memcpy(out, ip, n);
	return n;
}

static uint64_t nonzero(uint64_t key)
{
	return key == 0 ? 1 : key;
}

static void keys_make(const struct auth_penalty *t, const char *ip, const char *account,
		      struct penalty_keys *k)
{
	uint8_t pair[8 + 16];
	size_t n = ip_bytes(ip, pair + 8);
	k->ip = nonzero(siphash24(t->hash_key, pair + 8, n));
	k->account = nonzero(siphash24(t->hash_key, account, strlen(account)));
	memcpy(pair, &k->account, 8);
	k->pair = nonzero(siphash24(t->hash_key, pair, 8 + n));
}

/* ---- slots ---- */

static bool counter_live(const struct auth_penalty_slot *e, const struct auth_penalty_policy *p, int64_t now)
{
	return e->locked_until_ms > now ||
	       (e->pending > 0 && now - e->pending_ms < AUTH_PENALTY_PENDING_TIMEOUT_MS) ||
	       (e->failures > 0 && now - e->last_ms < p->window_ms);
}

/* How much a slot is worth keeping: free and expired slots least, then
   counters by failures, lockouts most; the older the less within a level. */
static int64_t slot_worth(const struct auth_penalty_slot *e, enum auth_penalty_region r,
			  const struct auth_penalty_policy *p, int64_t now)
{
	if (e->key == 0)
		return INT64_MIN;
	int64_t level, recent = e->last_ms > e->pending_ms ? e->last_ms : e->pending_ms;
	if (r == AUTH_PENALTY_REGION_TRUST) {
		if (now - e->last_ms >= AUTH_PENALTY_TRUST_MS)
			return INT64_MIN + 1;
		level = 1;
	} else if (!counter_live(e, p, now)) {
		return INT64_MIN + 1;
	} else {
		level = e->locked_until_ms > now ? 0x20000 : 1 + (int64_t)e->failures;
	}
	const int64_t recent_max = ((int64_t)1 << 44) - 1; /* 557 years of milliseconds */
	recent = recent < 0 ? 0 : recent > recent_max ? recent_max : recent;
	return level << 44 | recent;
}

/* The slot of key in its region, or (with create) a fresh one in place of
   the bucket's least useful slot; NULL when absent and not created. */
static struct auth_penalty_slot *slot_get(struct auth_penalty *t, enum auth_penalty_region r, uint64_t key,
					  bool create, const struct auth_penalty_policy *p, int64_t now)
{
	struct auth_penalty_slot *bucket =
	    &t->slots[t->first[r] + (size_t)(key % t->buckets[r]) * AUTH_PENALTY_WAYS];
	struct auth_penalty_slot *victim = &bucket[0];
	int64_t victim_worth = INT64_MAX;
	for (int i = 0; i < AUTH_PENALTY_WAYS; i++) {
		if (bucket[i].key == key)
			return &bucket[i];
		int64_t w = slot_worth(&bucket[i], r, p, now);
		if (w < victim_worth) {
			victim = &bucket[i];
			victim_worth = w;
		}
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->key = key;
	return victim;
}

/* Forgets what has aged out: checks in flight for too long, and failures
   a quiet window ago (the window runs from the end of a lockout). */
static void counter_refresh(struct auth_penalty_slot *e, const struct auth_penalty_policy *p, int64_t now)
{
	if (e == NULL)
		return;
	if (e->pending > 0 && now - e->pending_ms >= AUTH_PENALTY_PENDING_TIMEOUT_MS)
		e->pending = 0;
	if (e->failures > 0 && now - e->last_ms >= p->window_ms)
		e->failures = 0;
}

static void pending_add(struct auth_penalty_slot *e, int64_t now)
{
	if (e == NULL)
		return;
	if (e->pending < UINT16_MAX)
		e->pending++;
	e->pending_ms = now;
}

static void pending_done(struct auth_penalty_slot *e)
{
	if (e != NULL && e->pending > 0)
		e->pending--;
}

/* True when the counter is at its limit: locked, or its failures and the
   checks in flight reach the threshold.  Checks in flight count only once
   a failure is on record: a burst of good logins with none (a webmail
   front end or many users behind one NAT address, a client opening
   several connections for a new account) is never refused. */
static bool counter_full(const struct auth_penalty_slot *e, int threshold, bool count_pending, int64_t now)
{
	if (e == NULL || threshold <= 0)
		return false;
	int used = e->failures + (count_pending && e->failures > 0 ? e->pending : 0);
	return e->locked_until_ms > now || used >= threshold;
}

/* Counts a failure; returns true when it starts a lockout.  A locked
   counter keeps threshold - 1 failures, and its window starts at the end
   of the lockout: the next failure within a window after it locks again. */
static bool counter_fail(struct auth_penalty_slot *e, int threshold, const struct auth_penalty_policy *p,
			 int64_t now)
{
	if (e->failures < UINT16_MAX)
		e->failures++;
	if (e->last_ms < now)
		e->last_ms = now;
	if (threshold <= 0 || e->failures < threshold)
		return false;
	bool fresh = e->locked_until_ms <= now;
	if (fresh)
		e->locked_until_ms = now + p->lockout_ms;
	e->failures = (uint16_t)(threshold - 1);
	e->last_ms = e->locked_until_ms;
	return fresh;
}

static bool pair_trusted(struct auth_penalty *t, uint64_t key, const struct auth_penalty_policy *p,
			 int64_t now)
{
	const struct auth_penalty_slot *e = slot_get(t, AUTH_PENALTY_REGION_TRUST, key, false, p, now);
	return e != NULL && now - e->last_ms < AUTH_PENALTY_TRUST_MS;
}

/* The failure delay of the attempt-th failure from an IP: the base delay,
   doubled for each failure past the free ones, at most max_delay. */
static int failure_delay(const struct auth_penalty_policy *p, int attempt)
{
	int64_t delay = p->base_delay_ms;
	for (int i = AUTH_PENALTY_FREE_FAILURES; i < attempt && delay > 0 && delay < p->max_delay_ms; i++)
		delay *= 2;
	if (delay > p->max_delay_ms)
		delay = p->max_delay_ms > p->base_delay_ms ? p->max_delay_ms : p->base_delay_ms;
	return (int)delay;
}

/* ---- locking ---- */

static bool table_lock(struct auth_penalty *t)
{
	int rc = pthread_mutex_lock(&t->lock);
	if (rc == EOWNERDEAD) {
		/* A worker died holding the lock.  Every slot is valid whatever
		   its fields hold, so a half-done update costs one count. */
		pthread_mutex_consistent(&t->lock);
		log_warn("auth-penalty lock recovered from a process that died holding it");
		return true;
	}
	if (rc != 0) {
		log_error("auth-penalty pthread_mutex_lock() failed: %s", strerror(rc));
		return false;
	}
	return true;
}

static void table_unlock(struct auth_penalty *t)
{
	pthread_mutex_unlock(&t->lock);
}

/* ---- the interface ---- */

struct auth_penalty *auth_penalty_create(unsigned int entries, char **error_r)
{
	if (entries < AUTH_PENALTY_MIN_ENTRIES)
		entries = AUTH_PENALTY_MIN_ENTRIES;
	unsigned int nbuckets = entries / AUTH_PENALTY_WAYS;
	unsigned int buckets[AUTH_PENALTY_REGION_COUNT] = {nbuckets / 2, nbuckets / 4, 0};
	buckets[AUTH_PENALTY_REGION_TRUST] = nbuckets - buckets[0] - buckets[1];
	size_t slots = (size_t)nbuckets * AUTH_PENALTY_WAYS;
	size_t size = sizeof(struct auth_penalty) + slots * sizeof(struct auth_penalty_slot);
	struct auth_penalty *t = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED) {
		*error_r = xasprintf("mmap(%zu bytes) failed: %s", size, strerror(errno));
		return NULL;
	}
	/* The mapping starts zeroed: every slot free. */
	t->map_size = size;
	t->slots_count = slots;
	size_t first = 0;
	for (int r = 0; r < AUTH_PENALTY_REGION_COUNT; r++) {
		t->buckets[r] = buckets[r];
		t->first[r] = first;
		first += (size_t)buckets[r] * AUTH_PENALTY_WAYS;
	}
	if (getrandom(t->hash_key, sizeof(t->hash_key), 0) != (ssize_t)sizeof(t->hash_key)) {
		*error_r = xasprintf("getrandom() failed: %s", strerror(errno));
		munmap(t, size);
		return NULL;
	}
	pthread_mutexattr_t attr;
	int rc = pthread_mutexattr_init(&attr);
	if (rc == 0)
		rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (rc == 0)
		rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (rc == 0)
		rc = pthread_mutex_init(&t->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (rc != 0) {
		*error_r = xasprintf("pthread_mutex_init() failed: %s", strerror(rc));
		munmap(t, size);
		return NULL;
	}
	return t;
}

void auth_penalty_destroy(struct auth_penalty **table)
{
	struct auth_penalty *t = *table;
	*table = NULL;
	if (t != NULL)
		munmap(t, t->map_size);
}

int64_t auth_penalty_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *auth_penalty_verdict_name(enum auth_penalty_verdict verdict)
{
	switch (verdict) {
	case AUTH_PENALTY_ALLOW:
		return "allow";
	case AUTH_PENALTY_REFUSE_IP:
		return "ip-locked";
	case AUTH_PENALTY_REFUSE_ACCOUNT:
		return "account-locked";
	case AUTH_PENALTY_UNAVAILABLE:
		return "userdb-unavailable";
	}
	return "?";
}

enum auth_penalty_verdict auth_penalty_check(struct auth_penalty *t, const struct auth_penalty_policy *p,
					     const char *ip, const char *account, int64_t now,
					     int *delay_ms_r)
{
	struct penalty_keys k;
	keys_make(t, ip, account, &k);
	*delay_ms_r = failure_delay(p, 1);
	if (!table_lock(t))
		return AUTH_PENALTY_ALLOW;
	/* A trusted pair's checks in flight do not count (the owner's client
	   opening many connections at once), and it ignores account lockouts. */
	bool trusted = pair_trusted(t, k.pair, p, now);
	struct auth_penalty_slot *ipe = slot_get(t, AUTH_PENALTY_REGION_IP, k.ip, !trusted, p, now);
	struct auth_penalty_slot *acct =
	    trusted ? NULL : slot_get(t, AUTH_PENALTY_REGION_ACCOUNT, k.account, true, p, now);
	counter_refresh(ipe, p, now);
	counter_refresh(acct, p, now);
	enum auth_penalty_verdict verdict = AUTH_PENALTY_ALLOW;
	if (counter_full(ipe, p->ip_failures, !trusted, now))
		verdict = AUTH_PENALTY_REFUSE_IP;
	else if (counter_full(acct, p->account_failures, true, now))
		verdict = AUTH_PENALTY_REFUSE_ACCOUNT;
	if (ipe != NULL)
		*delay_ms_r = failure_delay(p, ipe->failures + ipe->pending + 1);
	if (verdict == AUTH_PENALTY_ALLOW && !trusted) {
		pending_add(ipe, now);
		pending_add(acct, now);
	}
	table_unlock(t);
	return verdict;
}

int auth_penalty_record(struct auth_penalty *t, const struct auth_penalty_policy *p, const char *ip,
			const char *account, bool success, int64_t now)
{
	struct penalty_keys k;
	keys_make(t, ip, account, &k);
	if (!table_lock(t))
		return 0;
	int locked = 0;
	bool trusted = pair_trusted(t, k.pair, p, now);
	struct auth_penalty_slot *ipe = slot_get(t, AUTH_PENALTY_REGION_IP, k.ip, !success, p, now);
	struct auth_penalty_slot *acct =
	    slot_get(t, AUTH_PENALTY_REGION_ACCOUNT, k.account, !success, p, now);
	counter_refresh(ipe, p, now);
	counter_refresh(acct, p, now);
	if (!trusted) {
		pending_done(ipe);
		pending_done(acct);
	}
	if (success) {
		/* The IP's count goes; a lockout that a parallel failure just
		   started stays.  The account's count stays: the attack on it
		   may go on from elsewhere. */
		if (ipe != NULL)
			ipe->failures = 0;
		struct auth_penalty_slot *pair = slot_get(t, AUTH_PENALTY_REGION_TRUST, k.pair, true, p, now);
		pair->last_ms = now;
	} else {
		if (counter_fail(ipe, p->ip_failures, p, now))
			locked |= AUTH_PENALTY_LOCKED_IP;
		if (counter_fail(acct, p->account_failures, p, now))
			locked |= AUTH_PENALTY_LOCKED_ACCOUNT;
	}
	table_unlock(t);
	return locked;
}

void auth_penalty_cancel(struct auth_penalty *t, const struct auth_penalty_policy *p, const char *ip,
			 const char *account, int64_t now)
{
	struct penalty_keys k;
	keys_make(t, ip, account, &k);
	if (!table_lock(t))
		return;
	if (!pair_trusted(t, k.pair, p, now)) {
		pending_done(slot_get(t, AUTH_PENALTY_REGION_IP, k.ip, false, p, now));
		pending_done(slot_get(t, AUTH_PENALTY_REGION_ACCOUNT, k.account, false, p, now));
	}
	table_unlock(t);
}

int auth_penalty_delay(const struct auth_penalty_policy *p, int used)
{
	return failure_delay(p, used + 1);
}

void auth_penalty_ip_key(const char *ip, char out[AUTH_PENALTY_IP_KEY_MAX])
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		inet_ntop(AF_INET, &a4, out, AUTH_PENALTY_IP_KEY_MAX);
	} else if (inet_pton(AF_INET6, ip, &a6) == 1 && IN6_IS_ADDR_V4MAPPED(&a6)) {
		inet_ntop(AF_INET, a6.s6_addr + 12, out, AUTH_PENALTY_IP_KEY_MAX);
	} else if (inet_pton(AF_INET6, ip, &a6) == 1) {
		memset(a6.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a6, out, AUTH_PENALTY_IP_KEY_MAX - 4);
		strcat(out, "/64");
	} else {
		snprintf(out, AUTH_PENALTY_IP_KEY_MAX, "%.16s", ip);
	}
}
