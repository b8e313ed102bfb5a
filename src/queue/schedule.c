#include "queue/schedule.h"
#include "lib/config.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

int queue_schedule_init(struct queue_schedule *s, const char *retry, int lifetime, char **error_r)
{
	memset(s, 0, sizeof(*s));
	s->lifetime = lifetime;
	char *copy = xstrdup(retry != NULL ? retry : "");
	char *save = NULL;
	for (char *tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		int secs;
		if (config_parse_duration(tok, &secs) < 0 || secs < 1) {
			*error_r = xasprintf("[queue] retry: '%s' is not a duration", tok);
			free(copy);
			queue_schedule_deinit(s);
			return -1;
		}
		s->delays = xreallocarray(s->delays, s->count + 1, sizeof(int));
		s->delays[s->count++] = secs;
	}
	free(copy);
	if (s->count == 0) {
		/* RFC 5321 4.5.4.1 suggests 30 minutes. */
		s->delays = xmalloc(sizeof(int));
		s->delays[0] = 1800;
		s->count = 1;
	}
	return 0;
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
