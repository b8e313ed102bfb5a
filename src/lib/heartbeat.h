#ifndef LIB_HEARTBEAT_H
#define LIB_HEARTBEAT_H
/* Liveness of an event loop, seen from another process.  The supervisor
   maps a table of slots shared with its children before it forks them;
   each child's loop stamps its slot once a second from a timer, so a loop
   stuck in one callback (an endless loop, a blocking call) stops stamping
   and the supervisor can tell how long it has been silent. */
#include <stdint.h>

struct event_base;
struct event;

struct heartbeat {
	int64_t beat_ms; /* CLOCK_MONOTONIC milliseconds of the last stamp */
};

/* A table of n zeroed slots in memory shared with children forked later. */
struct heartbeat *heartbeat_table_create(unsigned n);
void heartbeat_table_destroy(struct heartbeat **table, unsigned n);

/* Stamps hb now (the parent does it before forking, so a child starts
   fresh). */
void heartbeat_stamp(struct heartbeat *hb);
/* Milliseconds since hb was last stamped. */
int64_t heartbeat_silence_ms(const struct heartbeat *hb);

/* Stamps hb now and every second from base's loop; event_free() the
   returned timer to stop. */
struct event *heartbeat_start(struct event_base *base, struct heartbeat *hb);
#endif
