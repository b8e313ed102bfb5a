#ifndef DNS_DNS_H
#define DNS_DNS_H
/* Asynchronous MX, TXT and address lookups with c-ares, driven by a
   libevent loop.  Callbacks run from the loop (never from inside the lookup
   call). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns_resolver;
struct dns_query;

enum dns_status {
	DNS_OK,
	DNS_NODATA,   /* the name exists but has no record of the type */
	DNS_NXDOMAIN, /* the name does not exist */
	DNS_TEMPFAIL, /* timeout, SERVFAIL, refused, ... */
	DNS_CANCELLED /* the resolver was freed; the callback must not use it */
};

struct dns_mx {
	char *host; /* "" for the null MX "." (RFC 7505) */
	unsigned pref;
};

/* One TXT record: its character-strings concatenated (RFC 6376 3.6.2.2,
   RFC 7208 3.3), NUL-terminated; len counts the text, which may itself
   hold NUL bytes. */
struct dns_txt {
	char *text;
	size_t len;
	uint32_t ttl; /* seconds: the smallest TTL of the answer's TXT records */
};

struct dns_addr {
	struct sockaddr_storage sa;
	socklen_t len;
};

typedef void dns_mx_callback(void *ctx, enum dns_status status, struct dns_mx *mx, size_t count,
			     const char *error);
typedef void dns_txt_callback(void *ctx, enum dns_status status, const struct dns_txt *txt, size_t count,
			      const char *error);
typedef void dns_addr_callback(void *ctx, enum dns_status status, const struct dns_addr *addrs, size_t count,
			       const char *error);

/* server is "host:port", "[v6]:port", "host" or "" for /etc/resolv.conf.
   Returns NULL with *error_r (caller frees). */
struct dns_resolver *dns_resolver_new(struct event_base *base, const char *server, char **error_r);
/* Pending callbacks are called with DNS_CANCELLED. */
void dns_resolver_free(struct dns_resolver **r);
/* Keeps the answers of TXT lookups and of dns_lookup_rr() in memory for
   their TTL (at most an hour; negative answers as long as their SOA
   says), in a table of slots answers, as a local caching resolver would,
   but without the round trip: the checks of inbound mail look up the same
   few SPF and DMARC records for most messages.  A cached answer is still
   delivered from the loop, never inside the lookup call.  Off by default
   (the queue runner's lookups, MX and MTA-STS, are not cached here). */
void dns_resolver_cache(struct dns_resolver *r, size_t slots);

/* MX records of domain, unsorted (see dns_mx_sort).  The array and its
   strings are freed after the callback returns. */
void dns_lookup_mx(struct dns_resolver *r, const char *domain, dns_mx_callback *cb, void *ctx);
/* TXT records of name, in the order of the answer, with the status
   conventions of dns_lookup_mx (NXDOMAIN, NODATA, TEMPFAIL).  The records
   are freed after the callback returns.  Returns a handle for
   dns_cancel(), valid until the callback has been called. */
struct dns_query *dns_lookup_txt(struct dns_resolver *r, const char *name, dns_txt_callback *cb, void *ctx);
/* The callback of a lookup that has not called it yet never will (its
   memory is freed when c-ares is done with the query); *q is set to
   NULL. */
void dns_cancel(struct dns_query **q);
/* IPv6 and IPv4 addresses of host (an IP literal is returned as it is);
   port is set in every address. */
void dns_lookup_addr(struct dns_resolver *r, const char *host, int port, dns_addr_callback *cb, void *ctx);

/* Records of one type as text, for the checks of message authentication
   (SPF, DKIM keys, DMARC): TXT as each record's strings joined (RFC 7208
   3.3, RFC 6376 3.6.2.2), A and AAAA as addresses, MX and PTR as host
   names (an MX's preference is dropped).  DNS_OK has at least one record;
   the array and its strings are freed after the callback returns. */
enum dns_rr_type { DNS_RR_A, DNS_RR_AAAA, DNS_RR_MX, DNS_RR_TXT, DNS_RR_PTR };
typedef void dns_rr_callback(void *ctx, enum dns_status status, char **rrs, size_t count, const char *error);
void dns_lookup_rr(struct dns_resolver *r, enum dns_rr_type type, const char *name, dns_rr_callback *cb,
		   void *ctx);
/* The parser behind it, on a raw answer (as dns_mx_parse). */
int dns_rr_parse(enum dns_rr_type type, const unsigned char *abuf, int alen, char ***rrs_r, size_t *count_r);
void dns_rr_free(char **rrs, size_t count);

/* Turns a raw DNS answer to an MX query (abuf, alen bytes) into records
   (what dns_lookup_mx hands its callback).  Returns ARES_SUCCESS with
   *mx_r and *count_r (at least one record; free with dns_mx_free), or
   another ARES_ status (ARES_ENODATA for an answer without MX records,
   ARES_EBADRESP for a malformed one) with *mx_r NULL and *count_r 0. */
int dns_mx_parse(const unsigned char *abuf, int alen, struct dns_mx **mx_r, size_t *count_r);
void dns_mx_free(struct dns_mx *mx, size_t count);
/* The same for an answer to a TXT query: *txt_r holds one entry per
   record (its strings concatenated), free with dns_txt_free. */
int dns_txt_parse(const unsigned char *abuf, int alen, struct dns_txt **txt_r, size_t *count_r);
void dns_txt_free(struct dns_txt *txt, size_t count);

/* RFC 5321 section 5.1: orders mx by preference, shuffling records of equal
   preference with rnd (returns 0..n-1 for n).  Null MX entries (host "")
   are moved last. */
void dns_mx_sort(struct dns_mx *mx, size_t count, size_t (*rnd)(void *ctx, size_t n), void *rnd_ctx);
/* RFC 7505: true when the records say "this domain accepts no mail": a
   single MX with an empty host (".").  A null MX mixed with real ones is
   ignored (the real ones are used). */
bool dns_mx_is_null(const struct dns_mx *mx, size_t count);
/* "127.0.0.1:25" / "[::1]:25" of an address, into out. */
const char *dns_addr_string(const struct dns_addr *addr, char *out, size_t size);
#endif
