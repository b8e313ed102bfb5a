/* The queue runner (placeholder until the scheduler lands). */
#include "queue/queue.h"
#include "lib/config.h"
#include "lib/log.h"

#include <signal.h>
#include <event2/event.h>

static void on_term(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

int queue_runner_run(const struct config *cfg)
{
	struct event_base *base = event_base_new();
	struct event *term = evsignal_new(base, SIGTERM, on_term, base);
	event_add(term, NULL);
	event_base_dispatch(base);
	event_free(term);
	event_base_free(base);
	return 0;
}
