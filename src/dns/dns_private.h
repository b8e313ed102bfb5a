#ifndef DNS_DNS_PRIVATE_H
#define DNS_DNS_PRIVATE_H
/* What the lookups of other files in src/dns (dns_tlsa.c) need of the
   resolver's channel. */
#include "dns/dns.h"

#include <ares.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sends a query the caller built (ares_create_query) on r's channel, with
   the servers, retries and timeouts of every other lookup.  cb gets the
   raw answer from the loop: ARES_SUCCESS for any answer whose RCODE is not
   SERVFAIL, NOTIMP or REFUSED (c-ares tries the next server on those and
   reports ARES_ESERVFAIL, ...), ARES_EDESTRUCTION when r is freed. */
void dns_send_raw(struct dns_resolver *r, const unsigned char *query, int len, ares_callback cb, void *arg);
/* The loop r runs on. */
struct event_base *dns_resolver_base(const struct dns_resolver *r);

/* ---- the answer cache (dns_cache.c; see dns_resolver_cache()) ---- */
/* Answers larger than this are not kept; nor longer than this. */
#define DNS_CACHE_MAX_ANSWER 4096
#define DNS_CACHE_MAX_TTL 3600
struct dns_cache;
/* A table of slots answers (a name's slot chosen by its hash: a new
   answer takes the place of the one there). */
struct dns_cache *dns_cache_new(size_t slots);
void dns_cache_free(struct dns_cache **c);
/* A fresh answer for (name, type): true with its c-ares status and a copy
   of the raw answer (caller frees). */
bool dns_cache_get(struct dns_cache *c, const char *name, int type, int *status_r, unsigned char **abuf_r,
		   int *alen_r);
/* Keeps the raw answer for its TTL: the smallest TTL of the answer
   section's records of type (0: any), or for a negative answer the SOA's
   (RFC 2308 5); an answer without one (or TTL 0) is not kept. */
void dns_cache_put(struct dns_cache *c, const char *name, int type, int status, const unsigned char *abuf,
		   int alen);
/* That TTL; false when there is none or the answer cannot be walked. */
bool dns_answer_ttl(const unsigned char *abuf, int alen, int type, uint32_t *ttl_r);
#endif
