#ifndef DNS_DNS_TLSA_H
#define DNS_DNS_TLSA_H
/* DNSSEC-aware lookups for DANE (RFC 7672): TLSA records and whether a
   host's addresses are secure.  The queries carry the AD bit (RFC 6840
   5.7), which asks a validating resolver to say in its answer's AD bit
   whether the data is DNSSEC-secure.  Nothing is validated here: the
   [dns] resolver must be a validating resolver we trust (on loopback).
   Callbacks run from the loop, as those of dns.h. */
#include "dns/dns.h"
#include "lib/tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Records kept of one answer; more are ignored. */
#define DNS_TLSA_MAX 32

typedef void dns_tlsa_callback(void *ctx, enum dns_status status, bool secure, const struct tls_tlsa *recs,
			       size_t count, const char *error);
/* TLSA records at name, e.g. "_25._tcp.mx.example.com" (RFC 7672 2.2.3):
   DNS_OK with at least one record (the array and the data are freed after
   the callback returns), DNS_NODATA, DNS_NXDOMAIN, DNS_TEMPFAIL (SERVFAIL,
   timeout, a malformed answer) or DNS_CANCELLED; secure is the answer's AD
   bit. */
void dns_lookup_tlsa(struct dns_resolver *r, const char *name, dns_tlsa_callback *cb, void *ctx);

typedef void dns_secure_callback(void *ctx, enum dns_status status, bool secure, const char *error);
/* Asks for the A or AAAA records of name only to learn whether they exist
   (status as above) and are secure. */
void dns_lookup_secure(struct dns_resolver *r, enum dns_rr_type type, const char *name,
		       dns_secure_callback *cb, void *ctx);

/* The parser behind both, on a raw answer: the status of the answer for
   records of type qtype (a DNS type number: 52 for TLSA), *secure_r its AD
   bit, and for TLSA the records (at most DNS_TLSA_MAX; free with
   dns_tlsa_free) in *recs_r and *count_r when recs_r is not NULL. */
enum dns_status dns_tlsa_parse(const unsigned char *abuf, int alen, int qtype, struct tls_tlsa **recs_r,
			       size_t *count_r, bool *secure_r);
void dns_tlsa_free(struct tls_tlsa *recs, size_t count);
#endif
