/* The answer cache of a resolver (see dns_private.h). */
#include "dns/dns_private.h"
#include "lib/hash.h"
#include "lib/xalloc.h"

#include <arpa/nameser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct cache_entry {
	char *name; /* lowercase, no final dot */
	int type;
	int status;
	time_t expires; /* CLOCK_MONOTONIC seconds */
	unsigned char *abuf;
	int alen;
};

struct dns_cache {
	size_t slots;
	struct cache_entry *e;
};

static time_t monotonic_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static char *cache_key(const char *name)
{
	char *key = xstrdup(name);
	for (char *p = key; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	size_t n = strlen(key);
	if (n > 0 && key[n - 1] == '.')
		key[n - 1] = '\0';
	return key;
}

struct dns_cache *dns_cache_new(size_t slots)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));
	c->slots = slots > 0 ? slots : 1;
	c->e = xcalloc(c->slots, sizeof(*c->e));
	return c;
}

static void entry_clear(struct cache_entry *e)
{
	free(e->name);
	free(e->abuf);
	memset(e, 0, sizeof(*e));
}

void dns_cache_free(struct dns_cache **cp)
{
	struct dns_cache *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	for (size_t i = 0; i < c->slots; i++)
		entry_clear(&c->e[i]);
	free(c->e);
	free(c);
}

static struct cache_entry *slot(struct dns_cache *c, const char *key, int type)
{
	return &c->e[(hash_str(key) + (uint32_t)type * 0x9e3779b1u) % c->slots];
}

bool dns_cache_get(struct dns_cache *c, const char *name, int type, int *status_r, unsigned char **abuf_r,
		   int *alen_r)
{
	char *key = cache_key(name);
	struct cache_entry *e = slot(c, key, type);
	bool hit = e->name != NULL && e->type == type && strcmp(e->name, key) == 0;
	free(key);
	if (!hit)
		return false;
	if (e->expires <= monotonic_now()) {
		entry_clear(e);
		return false;
	}
	*status_r = e->status;
	*abuf_r = xmemdup(e->abuf, (size_t)e->alen);
	*alen_r = e->alen;
	return true;
}

/* The 16-bit and 32-bit numbers at p. */
static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The length of the (possibly compressed) name at p, or 0 when it runs
   past end. */
static size_t name_len(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *start = p;
	while (p < end) {
		if (*p == 0)
			return (size_t)(p + 1 - start);
		if ((*p & 0xc0) == 0xc0)
			return p + 2 <= end ? (size_t)(p + 2 - start) : 0;
		if ((*p & 0xc0) != 0)
			return 0;
		p += 1 + *p;
	}
	return 0;
}

bool dns_answer_ttl(const unsigned char *abuf, int alen, int type, uint32_t *ttl_r)
{
	if (abuf == NULL || alen < 12)
		return false;
	unsigned qd = get16(abuf + 4), an = get16(abuf + 6), ns = get16(abuf + 8);
	const unsigned char *p = abuf + 12, *end = abuf + alen;
	uint32_t ttl = UINT32_MAX;
	for (unsigned i = 0; i < qd + an + ns; i++) {
		size_t n = name_len(p, end);
		if (n == 0)
			return false;
		p += n;
		size_t fixed = i < qd ? 4 : 10; /* type, class (, TTL, length) */
		if ((size_t)(end - p) < fixed)
			return false;
		if (i >= qd) {
			unsigned rtype = get16(p), rdlen = get16(p + 8);
			uint32_t t = get32(p + 4);
			if ((size_t)(end - p) - fixed < rdlen)
				return false;
			const unsigned char *rdata = p + fixed;
			if (i < qd + an) {
				if ((type == 0 || (int)rtype == type) && t < ttl)
					ttl = t;
			} else if (an == 0 && rtype == ns_t_soa) {
				/* RFC 2308 5: a negative answer lives as long as
				   the SOA's TTL and its MINIMUM allow */
				size_t m1 = name_len(rdata, rdata + rdlen);
				size_t m2 = m1 > 0 ? name_len(rdata + m1, rdata + rdlen) : 0;
				if (m2 == 0 || m1 + m2 + 20 > rdlen)
					return false;
				uint32_t minimum = get32(rdata + m1 + m2 + 16);
				uint32_t neg = t < minimum ? t : minimum;
				if (neg < ttl)
					ttl = neg;
			}
			p += rdlen;
		}
		p += fixed;
	}
	if (ttl == UINT32_MAX)
		return false;
	*ttl_r = ttl;
	return true;
}

void dns_cache_put(struct dns_cache *c, const char *name, int type, int status, const unsigned char *abuf,
		   int alen)
{
	uint32_t ttl;
	if (alen <= 0 || alen > DNS_CACHE_MAX_ANSWER || !dns_answer_ttl(abuf, alen, type, &ttl) || ttl == 0)
		return;
	char *key = cache_key(name);
	struct cache_entry *e = slot(c, key, type);
	entry_clear(e);
	e->name = key;
	e->type = type;
	e->status = status;
	e->expires = monotonic_now() + (ttl < DNS_CACHE_MAX_TTL ? ttl : DNS_CACHE_MAX_TTL);
	e->abuf = xmemdup(abuf, (size_t)alen);
	e->alen = alen;
}
