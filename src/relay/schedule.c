#include "relay/schedule.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

void queue_schedule_init(struct queue_schedule *s, const int *delays, size_t count, int lifetime)
{
	memset(s, 0, sizeof(*s));
	s->lifetime = lifetime;
	if (count == 0) {
		/* RFC 5321 4.5.4.1 suggests 30 minutes. */
		static const int half_hour = 1800;
		delays = &half_hour;
		count = 1;
	}
	s->delays = xmemdup(delays, count * sizeof(*delays));
	s->count = count;
}

void queue_schedule_deinit(struct queue_schedule *s)
{
	free(s->delays);
	s->delays = NULL;
	s->count = 0;
}

int queue_schedule_delay(const struct queue_schedule *s, int attempts)
{
	size_t i = attempts < 1 ? 0 : (size_t)attempts - 1;
	if (i >= s->count)
		i = s->count - 1;
	return s->delays[i];
}

int64_t queue_schedule_next(const struct queue_schedule *s, int64_t created, int attempts, int64_t now)
{
	int64_t next = now + queue_schedule_delay(s, attempts);
	int64_t deadline = created + s->lifetime;
	if (next > deadline)
		next = deadline > now ? deadline : now;
	return next;
}

int queue_schedule_expired(const struct queue_schedule *s, int64_t created, int64_t now)
{
	return now >= created + s->lifetime;
}
