/* Reading a PROXY header off a socket (proxy_reader.h). */
#include "lib/proxy_reader.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/event.h>

struct proxy_reader {
	int fd;
	struct event *read, *deadline;
	proxy_reader_callback *cb;
	void *ctx;
	char error[120];
	size_t have; /* header bytes taken from the socket so far */
	unsigned char buf[PROXY_PROTO_MAX];
};

static void finish(struct proxy_reader *r, const struct proxy_proto_header *hdr, const char *error)
{
	event_del(r->read);
	event_del(r->deadline);
	r->cb(hdr, error, r->ctx);
}

static void fail_errno(struct proxy_reader *r, const char *what)
{
	snprintf(r->error, sizeof(r->error), "%s failed: %s", what, strerror(errno));
	finish(r, NULL, r->error);
}

/* Looks at what arrived without taking it, then takes only the header's
   bytes: when the header is incomplete, everything looked at is header
   (proxy_proto_parse() says so), and so nothing is buffered twice and a
   partial header does not wake the loop again until more arrives. */
static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_reader *r = arg;
	ssize_t n = recv(r->fd, r->buf + r->have, sizeof(r->buf) - r->have, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			fail_errno(r, "recv()");
		return;
	}
	if (n == 0) {
		finish(r, NULL, "connection closed before the PROXY header ended");
		return;
	}
	struct proxy_proto_header hdr;
	size_t size;
	const char *error = NULL;
	int rc = proxy_proto_parse(r->buf, r->have + (size_t)n, &hdr, &size, &error);
	if (rc < 0) {
		finish(r, NULL, error);
		return;
	}
	size_t take = rc > 0 ? size - r->have : (size_t)n;
	if (recv(r->fd, r->buf + r->have, take, MSG_DONTWAIT) != (ssize_t)take) {
		fail_errno(r, "recv()");
		return;
	}
	r->have += take;
	if (rc > 0)
		finish(r, &hdr, NULL);
	else if (r->have == sizeof(r->buf))
		finish(r, NULL, "PROXY header too long"); /* the parser says so first */
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_reader *r = arg;
	snprintf(r->error, sizeof(r->error), "no complete PROXY header after %zu bytes", r->have);
	finish(r, NULL, r->error);
}

struct proxy_reader *proxy_reader_new(struct event_base *base, int fd, int timeout_seconds,
				      proxy_reader_callback *cb, void *ctx)
{
	struct proxy_reader *r = xcalloc(1, sizeof(*r));
	r->fd = fd;
	r->cb = cb;
	r->ctx = ctx;
	r->read = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, r);
	r->deadline = evtimer_new(base, deadline_cb, r);
	if (r->read == NULL || r->deadline == NULL)
		log_fatal("event_new() failed");
	struct timeval tv = {timeout_seconds, 0};
	event_add(r->read, NULL);
	evtimer_add(r->deadline, &tv);
	return r;
}

void proxy_reader_free(struct proxy_reader **reader)
{
	struct proxy_reader *r = *reader;
	if (r == NULL)
		return;
	*reader = NULL;
	event_free(r->read);
	event_free(r->deadline);
	free(r);
}
