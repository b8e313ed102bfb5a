#ifndef QUEUE_SCHEDULE_H
#define QUEUE_SCHEDULE_H
/* Retry schedule (RFC 5321 4.5.4.1: at least 30 minutes between retries
   in general, with the first retry sooner; the [queue] retry option lists
   the delays, the last one repeating) and expiry ([queue] lifetime). */
#include <stddef.h>
#include <stdint.h>

struct queue_schedule {
	int *delays; /* seconds */
	size_t count;
	int lifetime; /* seconds */
};

/* Copies the delays ([queue] retry, parsed by the configuration; each at
   least 1 second).  No delays means RFC 5321's 30 minutes. */
void queue_schedule_init(struct queue_schedule *s, const int *delays, size_t count, int lifetime);
void queue_schedule_deinit(struct queue_schedule *s);
/* The delay after the attempts-th failed attempt (attempts >= 1). */
int queue_schedule_delay(const struct queue_schedule *s, int attempts);
/* When to try again after the attempts-th failure at now: now + delay, but
   no later than the expiry (one last attempt at the deadline). */
int64_t queue_schedule_next(const struct queue_schedule *s, int64_t created, int attempts, int64_t now);
/* True when a message created at created has outlived the lifetime. */
int queue_schedule_expired(const struct queue_schedule *s, int64_t created, int64_t now);
#endif
