#ifndef RELAY_MTA_STS_FETCH_H
#define RELAY_MTA_STS_FETCH_H
/* Fetching MTA-STS policies over HTTPS (RFC 8461 3.3) with libcurl's multi
   interface, driven by the event loop (curl_multi_socket_action): the
   fetch never blocks the loop and needs no thread.  The policy host's
   addresses come from the caller (our own resolver) and are pinned with
   CURLOPT_RESOLVE, so curl resolves nothing.  The certificate must be
   valid for mta-sts.DOMAIN and chain to the system CA store (or the CA
   file given); redirects are not followed, only a 200 answer of type
   text/plain counts, the body is at most MTA_STS_POLICY_SIZE_MAX bytes and
   the whole fetch at most MTA_STS_FETCH_TIMEOUT seconds. */
#include "dns/dns.h"

#include <stddef.h>

/* 3.3 suggests one minute. */
#define MTA_STS_FETCH_TIMEOUT 60

struct event_base;
struct mta_sts_fetcher;

enum mta_sts_fetch_status { MTA_STS_FETCH_OK, MTA_STS_FETCH_FAILED, MTA_STS_FETCH_CANCELLED };

/* The body (not NUL-terminated) on MTA_STS_FETCH_OK; error says why
   otherwise.  Both are freed after the callback returns. */
typedef void mta_sts_fetch_callback(void *ctx, enum mta_sts_fetch_status status, const char *body, size_t len,
				    const char *error);

/* A fetcher on base for policy hosts listening on port (443) whose
   certificates are checked against the PEM file ca_file, or the system
   store when it is NULL or "".  NULL with *error_r (caller frees). */
struct mta_sts_fetcher *mta_sts_fetcher_new(struct event_base *base, int port, const char *ca_file,
					    char **error_r);
/* Fetches still running report MTA_STS_FETCH_CANCELLED first. */
void mta_sts_fetcher_free(struct mta_sts_fetcher **f);

/* GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt from the addresses
   addrs (their ports are ignored).  cb is called once, from the loop. */
void mta_sts_fetch(struct mta_sts_fetcher *f, const char *domain, const struct dns_addr *addrs, size_t n,
		   mta_sts_fetch_callback *cb, void *ctx);
#endif
