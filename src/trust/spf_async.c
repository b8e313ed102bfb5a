/* SPF on an event loop (see spf_async.h). */
#include "trust/spf_async.h"
#include "dns/dns.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <event2/event.h>

struct spf_async {
	struct dns_resolver *r;
	struct spf *spf;
	spf_done_callback *cb;
	void *ctx;
	struct event *timer, *step_ev;
	int inflight;
	bool cancelled, finished;
};

struct lookup_ctx {
	struct spf_async *a;
	enum spf_rr_type type;
	char *name;
};

static void release(struct spf_async *a)
{
	if (a->inflight > 0)
		return; /* the last answer frees it */
	event_free(a->timer);
	event_free(a->step_ev);
	free(a);
}

static void finish(struct spf_async *a)
{
	a->finished = true;
	evtimer_del(a->timer);
	a->cb(a->ctx, a->spf);
}

static void rr_cb(void *arg, enum dns_status status, char **rrs, size_t count, const char *error)
{
	struct lookup_ctx *l = arg;
	struct spf_async *a = l->a;
	a->inflight--;
	if (!a->cancelled && !a->finished) {
		enum spf_dns_status st = status == DNS_OK || status == DNS_NODATA ? SPF_DNS_OK
					 : status == DNS_NXDOMAIN                 ? SPF_DNS_NXDOMAIN
										  : SPF_DNS_TEMPFAIL;
		spf_answer(a->spf, l->type, l->name, st, (const char *const *)rrs,
			   status == DNS_OK ? count : 0);
		if (a->inflight == 0)
			event_active(a->step_ev, 0, 0);
	}
	free(l->name);
	free(l);
	if (a->cancelled)
		release(a);
}

static void step(evutil_socket_t fd, short what, void *arg)
{
	struct spf_async *a = arg;
	if (spf_run(a->spf)) {
		finish(a);
		return;
	}
	static const enum dns_rr_type types[] = {
	    [SPF_RR_TXT] = DNS_RR_TXT, [SPF_RR_A] = DNS_RR_A,     [SPF_RR_AAAA] = DNS_RR_AAAA,
	    [SPF_RR_MX] = DNS_RR_MX,   [SPF_RR_PTR] = DNS_RR_PTR,
	};
	const struct spf_lookup *pending;
	size_t n = spf_pending(a->spf, &pending);
	/* the answers may come back inside dns_lookup_rr (a cache): count
	   them all in flight first */
	a->inflight += (int)n;
	struct lookup_ctx **ls = xcalloc(n + 1, sizeof(*ls));
	for (size_t i = 0; i < n; i++) {
		ls[i] = xcalloc(1, sizeof(**ls));
		*ls[i] = (struct lookup_ctx){a, pending[i].type, xstrdup(pending[i].name)};
	}
	for (size_t i = 0; i < n; i++)
		dns_lookup_rr(a->r, types[ls[i]->type], ls[i]->name, rr_cb, ls[i]);
	free(ls);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spf_async *a = arg;
	/* the answers still missing count as DNS errors */
	const struct spf_lookup *pending;
	size_t n;
	while ((n = spf_pending(a->spf, &pending)) > 0)
		spf_answer(a->spf, pending[0].type, pending[0].name, SPF_DNS_TEMPFAIL, NULL, 0);
	/* each run adds at most the lookups of one step, and every answer is
	   final: this ends (spf_run() never stalls without pending lookups) */
	while (!spf_run(a->spf))
		while ((n = spf_pending(a->spf, &pending)) > 0)
			spf_answer(a->spf, pending[0].type, pending[0].name, SPF_DNS_TEMPFAIL, NULL, 0);
	finish(a);
}

struct spf_async *spf_async_start(struct event_base *base, struct dns_resolver *r, struct spf *spf,
				  int timeout_ms, spf_done_callback *cb, void *ctx)
{
	struct spf_async *a = xcalloc(1, sizeof(*a));
	a->r = r;
	a->spf = spf;
	a->cb = cb;
	a->ctx = ctx;
	a->timer = evtimer_new(base, timeout_cb, a);
	a->step_ev = event_new(base, -1, 0, step, a);
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	evtimer_add(a->timer, &tv);
	event_active(a->step_ev, 0, 0);
	return a;
}

void spf_async_free(struct spf_async **ap)
{
	struct spf_async *a = *ap;
	if (a == NULL)
		return;
	*ap = NULL;
	a->cancelled = true;
	evtimer_del(a->timer);
	event_del(a->step_ev);
	release(a);
}
