/* TLSA lookups with the AD bit (see dns_tlsa.h).  c-ares 1.18 has no TLSA
   parser and ares_query cannot set AD: the query is built with
   ares_create_query, gets AD set, goes out through ares_send, and the
   answer is read here. */
#include "dns/dns_tlsa.h"
#include "dns/dns_private.h"
#include "lib/xalloc.h"

#include <arpa/nameser.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#define TYPE_TLSA 52
#define HEADER_SIZE 12
/* The second flags octet: RA Z AD CD and the RCODE (RFC 4035 3.2.3). */
#define FLAG_AD 0x20
#define RCODE_NXDOMAIN 3
/* A UDP payload that passes most paths unfragmented (EDNS0, RFC 6891). */
#define EDNS_UDP_SIZE 1232

struct secure_query {
	int qtype;
	dns_tlsa_callback *tlsa_cb;
	dns_secure_callback *secure_cb;
	void *ctx;
	int status; /* an ARES_ error found before the query was sent */
};

void dns_tlsa_free(struct tls_tlsa *recs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(recs[i].data);
	free(recs);
}

static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Skips a (possibly compressed) name at *pos; false when it is malformed. */
static bool skip_name(const unsigned char *abuf, int alen, int *pos)
{
	char *name = NULL;
	long enclen = 0;
	if (*pos >= alen || ares_expand_name(abuf + *pos, abuf, alen, &name, &enclen) != ARES_SUCCESS)
		return false;
	ares_free_string(name);
	*pos += (int)enclen;
	return true;
}

static void tlsa_add(struct tls_tlsa **recs, size_t *n, const unsigned char *rdata, unsigned rdlen)
{
	struct tls_tlsa *r;
	*recs = xreallocarray(*recs, *n + 1, sizeof(**recs));
	r = &(*recs)[(*n)++];
	r->usage = rdata[0];
	r->selector = rdata[1];
	r->mtype = rdata[2];
	r->len = rdlen - 3;
	r->data = xmalloc(r->len + 1); /* never 0 bytes */
	memcpy(r->data, rdata + 3, r->len);
}

/* The answer's status from its RCODE and the records of the type asked
   (found) and kept (a TLSA record too short to keep is none). */
static enum dns_status answer_status(unsigned rcode, size_t found, size_t kept, bool keeping)
{
	if (rcode == RCODE_NXDOMAIN)
		return DNS_NXDOMAIN;
	if (rcode != 0)
		return DNS_TEMPFAIL;
	if (found == 0 || (keeping && kept == 0))
		return DNS_NODATA;
	return DNS_OK;
}

enum dns_status dns_tlsa_parse(const unsigned char *abuf, int alen, int qtype, struct tls_tlsa **recs_r,
			       size_t *count_r, bool *secure_r)
{
	struct tls_tlsa *recs = NULL;
	size_t n = 0, found = 0;
	*count_r = 0;
	*secure_r = false;
	if (recs_r != NULL)
		*recs_r = NULL;
	if (alen < HEADER_SIZE)
		return DNS_TEMPFAIL;
	unsigned rcode = abuf[3] & 0x0f, qd = get16(abuf + 4), an = get16(abuf + 6);
	int pos = HEADER_SIZE;
	for (unsigned i = 0; i < qd; i++) {
		if (!skip_name(abuf, alen, &pos) || pos + 4 > alen)
			return DNS_TEMPFAIL;
		pos += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		if (!skip_name(abuf, alen, &pos) || pos + 10 > alen) {
			dns_tlsa_free(recs, n);
			return DNS_TEMPFAIL;
		}
		unsigned type = get16(abuf + pos), cls = get16(abuf + pos + 2), rdlen = get16(abuf + pos + 8);
		pos += 10;
		if (pos + (int)rdlen > alen) {
			dns_tlsa_free(recs, n);
			return DNS_TEMPFAIL;
		}
		/* a CNAME on the way is skipped: its target's records follow */
		if ((int)type == qtype && cls == ns_c_in) {
			found++;
			if (recs_r != NULL && qtype == TYPE_TLSA && rdlen >= 3 && n < DNS_TLSA_MAX)
				tlsa_add(&recs, &n, abuf + pos, rdlen);
		}
		pos += (int)rdlen;
	}
	*secure_r = (abuf[3] & FLAG_AD) != 0;
	enum dns_status st = answer_status(rcode, found, n, recs_r != NULL && qtype == TYPE_TLSA);
	if (st != DNS_OK) {
		/* records beside an error code are not believed */
		dns_tlsa_free(recs, n);
		return st;
	}
	if (recs_r != NULL) {
		*recs_r = recs;
		*count_r = n;
	} else {
		*count_r = found;
	}
	return DNS_OK;
}

static void secure_report(struct secure_query *q, enum dns_status status, bool secure,
			  const struct tls_tlsa *recs, size_t n, const char *error)
{
	if (q->tlsa_cb != NULL)
		q->tlsa_cb(q->ctx, status, secure, recs, n, error);
	else
		q->secure_cb(q->ctx, status, secure, error);
}

static void secure_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct secure_query *q = arg;
	struct tls_tlsa *recs = NULL;
	size_t n = 0;
	bool secure = false;
	enum dns_status st;
	const char *error = NULL;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		st = DNS_CANCELLED;
		error = ares_strerror(status);
	} else if (status != ARES_SUCCESS) {
		st = DNS_TEMPFAIL;
		error = ares_strerror(status);
	} else {
		st = dns_tlsa_parse(abuf, alen, q->qtype, q->tlsa_cb != NULL ? &recs : NULL, &n, &secure);
		if (st == DNS_TEMPFAIL)
			error = "malformed answer or server failure";
		else if (st == DNS_NXDOMAIN)
			error = "no such name";
		else if (st == DNS_NODATA)
			error = "no records";
	}
	secure_report(q, st, secure, recs, q->tlsa_cb != NULL ? n : 0, error);
	if (q->tlsa_cb != NULL)
		dns_tlsa_free(recs, n);
	free(q);
}

static void secure_failed(evutil_socket_t fd, short what, void *arg)
{
	struct secure_query *q = arg;
	secure_report(q, DNS_TEMPFAIL, false, NULL, 0, ares_strerror(q->status));
	free(q);
}

/* RFC 6840 5.7: "a validating resolver ... SHOULD set the AD bit in a
   response ... [when] the AD bit was set in the query" (no EDNS DO bit
   needed). */
static void secure_send(struct dns_resolver *r, const char *name, struct secure_query *q)
{
	unsigned char *buf = NULL;
	int len = 0;
	q->status = ares_create_query(name, ns_c_in, q->qtype, 0, 1, &buf, &len, EDNS_UDP_SIZE);
	if (q->status != ARES_SUCCESS) {
		event_base_once(dns_resolver_base(r), -1, EV_TIMEOUT, secure_failed, q, NULL);
		return;
	}
	buf[3] |= FLAG_AD;
	dns_send_raw(r, buf, len, secure_done, q);
	ares_free_string(buf);
}

void dns_lookup_tlsa(struct dns_resolver *r, const char *name, dns_tlsa_callback *cb, void *ctx)
{
	struct secure_query *q = xcalloc(1, sizeof(*q));
	q->qtype = TYPE_TLSA;
	q->tlsa_cb = cb;
	q->ctx = ctx;
	secure_send(r, name, q);
}

void dns_lookup_secure(struct dns_resolver *r, enum dns_rr_type type, const char *name,
		       dns_secure_callback *cb, void *ctx)
{
	struct secure_query *q = xcalloc(1, sizeof(*q));
	q->qtype = type == DNS_RR_AAAA ? ns_t_aaaa : ns_t_a;
	q->secure_cb = cb;
	q->ctx = ctx;
	secure_send(r, name, q);
}
