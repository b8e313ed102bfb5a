#ifndef TRUST_DKIM_LOOKUP_H
#define TRUST_DKIM_LOOKUP_H
/* The key lookups of one message's DKIM check (dkim_check.h) through the
   asynchronous resolver (dns/dns.h): each key's TXT records go into the
   check as they arrive, on the event loop.  Every message has lookups of
   its own: none waits on another's.  The keys found are kept, read
   (dkim_pubkey_parse()), for the next messages in a cache of the loop
   (their DNS TTL, at most DKIM_KEY_CACHE_TTL): a lookup and reading the
   key cost as much CPU as the rest of the check of a message, and most
   mail comes from a few signers. */
#include <stdbool.h>

struct dkim_check;
struct dkim_key_cache;
struct dkim_lookups;
struct dns_resolver;
struct event_base;

/* Names kept (a table of this many slots, a name's slot chosen by a keyed
   hash: a new name takes the place of the one there), and for how long at
   most. */
#define DKIM_KEY_CACHE_SLOTS 1024
#define DKIM_KEY_CACHE_TTL 3600

/* A cache for the lookups of one loop.  Not thread-safe: the loop's. */
struct dkim_key_cache *dkim_key_cache_new(void);
void dkim_key_cache_free(struct dkim_key_cache **cache);

/* Starts a TXT lookup for each key name of c that cache (may be NULL)
   does not hold; the cached ones go into c at once.  r NULL (no
   resolver): every key not cached is a temperror at once.  c must outlive
   the lookups, cache too. */
struct dkim_lookups *dkim_lookups_start(struct dns_resolver *r, struct dkim_key_cache *cache,
					struct dkim_check *c);
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
