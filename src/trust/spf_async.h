#ifndef TRUST_SPF_ASYNC_H
#define TRUST_SPF_ASYNC_H
/* Runs an SPF evaluation (spf.h) to its end on an event loop: the lookups
   it asks for go to the c-ares resolver, all of one round at once, and the
   evaluation starts over when the last answer of the round is in.  No
   session waits on another's lookups. */
#include "trust/spf.h"

struct dns_resolver;
struct event_base;
struct spf_async;

/* Called once, from the loop, when the result is known (spf_result()). */
typedef void spf_done_callback(void *ctx, struct spf *spf);

/* Starts evaluating spf (which stays the caller's).  The evaluation ends
   with temperror when it is not done within timeout_ms (RFC 7208 4.6.4:
   at least 20 s). */
struct spf_async *spf_async_start(struct event_base *base, struct dns_resolver *r, struct spf *spf,
				  int timeout_ms, spf_done_callback *cb, void *ctx);
/* Frees a, after its callback or before (then the callback is not called;
   lookups in flight end quietly). */
void spf_async_free(struct spf_async **a);
#endif
