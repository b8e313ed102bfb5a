#ifndef DNS_DNS_PRIVATE_H
#define DNS_DNS_PRIVATE_H
/* What the lookups of other files in src/dns (dns_tlsa.c) need of the
   resolver's channel. */
#include "dns/dns.h"

#include <ares.h>

/* Sends a query the caller built (ares_create_query) on r's channel, with
   the servers, retries and timeouts of every other lookup.  cb gets the
   raw answer from the loop: ARES_SUCCESS for any answer whose RCODE is not
   SERVFAIL, NOTIMP or REFUSED (c-ares tries the next server on those and
   reports ARES_ESERVFAIL, ...), ARES_EDESTRUCTION when r is freed. */
void dns_send_raw(struct dns_resolver *r, const unsigned char *query, int len, ares_callback cb, void *arg);
/* The loop r runs on. */
struct event_base *dns_resolver_base(const struct dns_resolver *r);
#endif
