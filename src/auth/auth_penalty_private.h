#ifndef AUTH_AUTH_PENALTY_PRIVATE_H
#define AUTH_AUTH_PENALTY_PRIVATE_H
/* The shared table's layout, for auth_penalty.c and its unit test. */
#include "auth/auth_penalty.h"

#include <pthread.h>
#include <stddef.h>

#define AUTH_PENALTY_WAYS 8                                /* slots per bucket */
#define AUTH_PENALTY_FREE_FAILURES 3                       /* failures of an IP before delays grow */
#define AUTH_PENALTY_PENDING_TIMEOUT_MS (60 * 1000)        /* a check in flight longer died with its worker */
#define AUTH_PENALTY_TRUST_MS ((int64_t)30 * 86400 * 1000) /* how long a successful login trusts its pair */

enum auth_penalty_region {
	AUTH_PENALTY_REGION_IP,
	AUTH_PENALTY_REGION_ACCOUNT,
	AUTH_PENALTY_REGION_TRUST,
	AUTH_PENALTY_REGION_COUNT
};

struct auth_penalty_slot {
	uint64_t key;            /* keyed hash of the IP, account or pair; 0: free */
	int64_t last_ms;         /* counters: last failure or end of lockout; pairs: last success */
	int64_t locked_until_ms; /* counters only */
	int64_t pending_ms;      /* when the latest check in flight started */
	uint16_t failures;
	uint16_t pending; /* checks in flight that count against the limit */
};

struct auth_penalty {
	pthread_mutex_t lock; /* process-shared, robust */
	uint64_t hash_key[2]; /* SipHash key, random per table */
	size_t map_size;
	unsigned int buckets[AUTH_PENALTY_REGION_COUNT];
	size_t first[AUTH_PENALTY_REGION_COUNT]; /* index of each region's first slot */
	size_t slots_count;
	struct auth_penalty_slot slots[];
};
#endif
