#ifndef RELAY_RUNNER_TLS_H
#define RELAY_RUNNER_TLS_H
/* The transport security of the queue runner's deliveries to MX hosts,
   one floor below runner_deliver.c, which asks before it connects and
   applies the answers to each session:
   - the MTA-STS policy of a destination domain (RFC 8461): the TXT record
     _mta-sts.DOMAIN on every ask, the cached policy while its id stays and
     max_age has not passed, else a fetch (relay/mta_sts_fetch.h) from
     mta-sts.DOMAIN resolved by our resolver; policies are cached in memory
     and in DATA_DIR/mta-sts/DOMAIN (one file each, written on the job
     threads), so they survive restarts (5.1);
   - the DANE state of an MX host (RFC 7672): its TLSA records at
     _PORT._tcp.HOST, used only when the resolver's answer carries AD.
   Callbacks run from the loop, never inside the call that asks. */
#include "dns/dns.h"
#include "lib/config.h"
#include "lib/tls.h"
#include "relay/mta_sts.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct runner_tls;

/* Loads the policies cached in DATA_DIR/mta-sts (made when missing).  dns
   must outlive it.  NULL with *error_r (caller frees). */
struct runner_tls *runner_tls_new(struct event_base *base, const struct config *cfg, struct dns_resolver *dns,
				  char **error_r);
/* After dns_resolver_free(dns) (which cancels its lookups): fetches still
   running are cancelled; every callback still owed is called with
   cancelled set. */
void runner_tls_free(struct runner_tls **rt);

/* policy: the domain's MTA-STS policy, NULL when it has none (or
   cancelled); valid during the call only. */
typedef void runner_tls_sts_callback(void *ctx, bool cancelled, const struct mta_sts_policy *policy);
/* The policy that applies to mail for domain now.  Asks for the TXT
   record; without a valid one a cached policy still applies until it
   expires (5.1); with one whose id differs from the cached policy's (or
   without a fresh cached policy) it fetches the policy, and when that
   fails keeps using the cached one while it lasts, or goes on as if the
   domain had no policy (3.3), trying the fetch again for the same id only
   after MTA_STS_RETRY_SECONDS. */
void runner_tls_sts(struct runner_tls *rt, const char *domain, runner_tls_sts_callback *cb, void *ctx);
#define MTA_STS_RETRY_SECONDS 300

enum runner_tls_dane {
	RUNNER_DANE_NONE,    /* no secure TLSA records: DANE does not apply */
	RUNNER_DANE_VERIFY,  /* secure usable records: TLS required and
				authenticated by them (RFC 7672 2.2) */
	RUNNER_DANE_ENCRYPT, /* secure records, none usable: TLS required,
				unauthenticated (3.1.3) */
	RUNNER_DANE_FAILED,  /* the TLSA lookup failed while the host's
				addresses are secure: the host must not be
				used (2.2) */
};
/* recs (RUNNER_DANE_VERIFY: every record, usable or not) are valid during
   the call only; error says why for RUNNER_DANE_FAILED. */
typedef void runner_tls_dane_callback(void *ctx, bool cancelled, enum runner_tls_dane dane,
				      const struct tls_tlsa *recs, size_t count, const char *error);
/* The DANE state of MX host host serving SMTP on port. */
void runner_tls_dane(struct runner_tls *rt, const char *host, int port, runner_tls_dane_callback *cb,
		     void *ctx);
#endif
