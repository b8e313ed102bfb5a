/* The key lookups of a DKIM check (see dkim_lookup.h). */
#include "trust/dkim_lookup.h"
#include "dns/dns.h"
#include "lib/hash.h"
#include "lib/xalloc.h"
#include "trust/dkim_check.h"

#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/event.h>

/* One cached answer: the key it gave. */
struct cache_entry {
	char *name;
	time_t expires; /* CLOCK_MONOTONIC seconds */
	struct dkim_pubkey pk;
};

struct dkim_key_cache {
	struct cache_entry slots[DKIM_KEY_CACHE_SLOTS];
};

struct lookup {
	struct dkim_lookups *l;
	size_t index; /* the check's key */
	struct dns_query *q;
};

struct dkim_lookups {
	struct dkim_check *check;
	struct dkim_key_cache *cache;
	struct lookup *lookups;
	size_t count, pending;
	struct event *timer;
	void (*done)(void *ctx);
	void *done_ctx;
};

static time_t monotonic_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

struct dkim_key_cache *dkim_key_cache_new(void)
{
	return xcalloc(1, sizeof(struct dkim_key_cache));
}

static void entry_clear(struct cache_entry *e)
{
	free(e->name);
	dkim_pubkey_free(&e->pk);
	memset(e, 0, sizeof(*e));
}

void dkim_key_cache_free(struct dkim_key_cache **cachep)
{
	struct dkim_key_cache *cache = *cachep;
	if (cache == NULL)
		return;
	*cachep = NULL;
	for (size_t i = 0; i < DKIM_KEY_CACHE_SLOTS; i++)
		entry_clear(&cache->slots[i]);
	free(cache);
}

static struct cache_entry *cache_slot(struct dkim_key_cache *cache, const char *name)
{
	return &cache->slots[hash_str_icase(name) % DKIM_KEY_CACHE_SLOTS];
}

/* Hands the cached answer for key i of c to c; false when there is none
   (or it has expired). */
static bool cache_get(struct dkim_key_cache *cache, struct dkim_check *c, size_t i)
{
	const char *name = dkim_check_key_name(c, i);
	struct cache_entry *e = cache_slot(cache, name);
	if (e->name == NULL || strcasecmp(e->name, name) != 0)
		return false;
	if (e->expires <= monotonic_now()) {
		entry_clear(e);
		return false;
	}
	dkim_check_key_given(c, i, &e->pk);
	return true;
}

/* Keeps the key found for key i of c (for the answer's TTL, at most
   DKIM_KEY_CACHE_TTL), in place of what its slot held. */
static void cache_put(struct dkim_key_cache *cache, const struct dkim_check *c, size_t i, uint32_t ttl)
{
	const struct dkim_pubkey *pk = dkim_check_key_found(c, i);
	if (pk == NULL || ttl == 0)
		return;
	const char *name = dkim_check_key_name(c, i);
	struct cache_entry *e = cache_slot(cache, name);
	entry_clear(e);
	e->name = xstrdup(name);
	e->expires = monotonic_now() + (ttl < DKIM_KEY_CACHE_TTL ? ttl : DKIM_KEY_CACHE_TTL);
	dkim_pubkey_copy(&e->pk, pk);
}

static void call_done(struct dkim_lookups *l)
{
	void (*done)(void *ctx) = l->done;
	l->done = NULL;
	if (l->timer != NULL)
		event_del(l->timer);
	if (done != NULL)
		done(l->done_ctx); /* last: it may free l */
}

static void txt_answer(void *ctx, enum dns_status status, const struct dns_txt *txt, size_t count,
		       const char *error)
{
	struct lookup *k = ctx;
	struct dkim_lookups *l = k->l;
	k->q = NULL;
	if (status == DNS_OK) {
		const char **records = xcalloc(count + 1, sizeof(*records));
		size_t *lens = xcalloc(count + 1, sizeof(*lens));
		for (size_t i = 0; i < count; i++) {
			records[i] = txt[i].text;
			lens[i] = txt[i].len;
		}
		dkim_check_key(l->check, k->index, DKIM_KEY_FOUND, records, lens, count);
		free(records);
		free(lens);
		if (l->cache != NULL && count > 0)
			cache_put(l->cache, l->check, k->index, txt[0].ttl);
	} else {
		/* 6.1.2: no key is a permanent failure, a failed query a
		   temporary one (as is a resolver going away) */
		bool none = status == DNS_NXDOMAIN || status == DNS_NODATA;
		dkim_check_key(l->check, k->index, none ? DKIM_KEY_NONE : DKIM_KEY_TEMPFAIL, NULL, NULL, 0);
	}
	/* the resolver going away (the process ends): nobody to call */
	if (--l->pending == 0 && status != DNS_CANCELLED)
		call_done(l);
}

struct dkim_lookups *dkim_lookups_start(struct dns_resolver *r, struct dkim_key_cache *cache,
					struct dkim_check *c)
{
	struct dkim_lookups *l = xcalloc(1, sizeof(*l));
	l->check = c;
	l->cache = cache;
	l->count = dkim_check_key_count(c);
	l->lookups = xcalloc(l->count + 1, sizeof(*l->lookups));
	for (size_t i = 0; i < l->count; i++) {
		struct lookup *k = &l->lookups[i];
		k->l = l;
		k->index = i;
		if (cache != NULL && cache_get(cache, c, i))
			continue;
		if (r == NULL) {
			dkim_check_key(c, i, DKIM_KEY_TEMPFAIL, NULL, NULL, 0);
			continue;
		}
		l->pending++;
		k->q = dns_lookup_txt(r, dkim_check_key_name(c, i), txt_answer, k);
	}
	return l;
}

bool dkim_lookups_done(const struct dkim_lookups *l)
{
	return l->pending == 0;
}

static void timed_out(evutil_socket_t fd, short what, void *arg)
{
	struct dkim_lookups *l = arg;
	for (size_t i = 0; i < l->count; i++)
		dns_cancel(&l->lookups[i].q);
	l->pending = 0;
	call_done(l);
}

void dkim_lookups_wait(struct dkim_lookups *l, struct event_base *base, int timeout_ms,
		       void (*done)(void *ctx), void *ctx)
{
	l->done = done;
	l->done_ctx = ctx;
	if (l->pending == 0) {
		call_done(l);
		return;
	}
	l->timer = evtimer_new(base, timed_out, l);
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	evtimer_add(l->timer, &tv);
}

void dkim_lookups_free(struct dkim_lookups **lp)
{
	struct dkim_lookups *l = *lp;
	if (l == NULL)
		return;
	*lp = NULL;
	for (size_t i = 0; i < l->count; i++)
		dns_cancel(&l->lookups[i].q);
	if (l->timer != NULL)
		event_free(l->timer);
	free(l->lookups);
	free(l);
}
