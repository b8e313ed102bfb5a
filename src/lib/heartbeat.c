#include "lib/heartbeat.h"
#include "lib/log.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <event2/event.h>

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct heartbeat *heartbeat_table_create(unsigned n)
{
	void *p = mmap(NULL, n * sizeof(struct heartbeat), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	if (p == MAP_FAILED)
		log_fatal("mmap() of %u heartbeat slots failed: %s", n, strerror(errno));
	return p;
}

void heartbeat_table_destroy(struct heartbeat **table, unsigned n)
{
	if (*table == NULL)
		return;
	munmap(*table, n * sizeof(struct heartbeat));
	*table = NULL;
}

void heartbeat_stamp(struct heartbeat *hb)
{
	__atomic_store_n(&hb->beat_ms, now_ms(), __ATOMIC_RELAXED);
}

int64_t heartbeat_silence_ms(const struct heartbeat *hb)
{
	return now_ms() - __atomic_load_n(&hb->beat_ms, __ATOMIC_RELAXED);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	heartbeat_stamp(arg);
}

struct event *heartbeat_start(struct event_base *base, struct heartbeat *hb)
{
	struct event *ev = event_new(base, -1, EV_PERSIST, heartbeat_cb, hb);
	if (ev == NULL)
		log_fatal("event_new() failed");
	struct timeval second = {1, 0};
	event_add(ev, &second);
	heartbeat_stamp(hb);
	return ev;
}
