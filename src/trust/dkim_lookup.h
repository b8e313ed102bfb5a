#ifndef TRUST_DKIM_LOOKUP_H
#define TRUST_DKIM_LOOKUP_H
/* The key lookups of one message's DKIM check (dkim_check.h) through the
   asynchronous resolver (dns/dns.h): each key's TXT records go into the
   check as they arrive, on the event loop.  Every message has lookups of
   its own: none waits on another's. */
#include <stdbool.h>

struct dkim_check;
struct dkim_lookups;
struct dns_resolver;
struct event_base;

/* Starts a TXT lookup for each key name of c.  r NULL (no resolver): every
   key is a temperror at once.  c must outlive the lookups. */
struct dkim_lookups *dkim_lookups_start(struct dns_resolver *r, struct dkim_check *c);
/* True when every lookup has been answered. */
bool dkim_lookups_done(const struct dkim_lookups *l);
/* Calls done(ctx) once every lookup has been answered, or after timeout_ms:
   the lookups still running are then cancelled and count as temperror.
   Called at once when all are answered already, else from the loop.  l may
   be freed inside done.  Once per l. */
void dkim_lookups_wait(struct dkim_lookups *l, struct event_base *base, int timeout_ms,
		       void (*done)(void *ctx), void *ctx);
/* Cancels the lookups still running (their keys stay unanswered) and frees
   l. */
void dkim_lookups_free(struct dkim_lookups **l);
#endif
