#ifndef RELAY_TRANSPORT_H
#define RELAY_TRANSPORT_H
/* What the transport security policies of one destination ask of the
   SMTP sessions to its current host: the domain's MTA-STS policy (RFC
   8461) and the host's DANE state (RFC 7672), both found by
   relay/runner_tls.h, against outbound_tls.  No I/O: runner_deliver.c
   fills one per connection and asks it before it resolves a host, when it
   connects, and when a session fails. */
#include "lib/config.h"
#include "relay/mta_sts.h"
#include "relay/runner_tls.h"
#include "smtp/smtp_client.h"

#include <stdbool.h>
#include <stddef.h>

struct transport_policy {
	bool mx;              /* delivery to MX hosts: the policies apply (not to
				 [routes] or the relayhost) */
	enum tls_policy base; /* outbound_tls (relay tls for the relayhost) */
	bool has_sts;         /* the domain has an MTA-STS policy (mode testing
				 or enforce) */
	struct mta_sts_policy sts;
	enum runner_tls_dane dane; /* the current host's */
	struct tls_tlsa *tlsa;     /* RUNNER_DANE_VERIFY: its records */
	size_t ntlsa;
	bool plain_retry; /* the current address once more without STARTTLS */
};

/* Frees what p holds and zeroes it. */
void transport_policy_clear(struct transport_policy *p);
/* The domain's MTA-STS policy (copied), or none. */
void transport_policy_set_sts(struct transport_policy *p, const struct mta_sts_policy *policy);
/* The DANE state of the next host (records copied); forgets the last one's
   and the plain-text retry. */
void transport_policy_set_dane(struct transport_policy *p, enum runner_tls_dane dane,
			       const struct tls_tlsa *recs, size_t n);

/* RFC 8461 4.1 and 5: NULL when host may be used, else the deferral reply
   (caller frees): an MX host an enforce policy does not list, unless DANE
   authenticates it (RFC 8461 2).  In testing mode the violation is logged
   and host is used. */
char *transport_policy_refuse_host(const struct transport_policy *p, const char *domain, const char *host);
/* The TLS settings of a session to the current host (tls, tls_check,
   tls_ca_file, tlsa), strongest first: DANE with usable records, MTA-STS
   enforce (a certificate from ca_file or the system store valid for the MX
   name: RFC 8461 4.2), DANE without usable records (TLS, unauthenticated),
   MTA-STS testing (the certificate checked and logged only), else base.
   The plain-text retry sets none.  ca_file may be NULL. */
void transport_policy_settings(const struct transport_policy *p, const char *ca_file,
			       struct smtp_client_settings *set);
/* "DANE" or "MTA-STS" when one of them makes TLS mandatory for the
   session set was made for, else NULL. */
const char *transport_policy_name(const struct transport_policy *p, const struct smtp_client_settings *set);
/* After a session failed with res: true when it is worth one more
   session to the same address without STARTTLS (outbound_tls = may, no
   policy asks for TLS, the STARTTLS handshake failed, not retried yet).
   Sets plain_retry then. */
bool transport_policy_fallback(struct transport_policy *p, const struct smtp_client_settings *set,
			       const struct smtp_client_result *res);
/* Logs the TLS of a session that is ready ("queue tls ... auth=dane|pkix|
   none") and, in MTA-STS testing mode, what enforce mode would have
   refused. */
void transport_policy_log(const struct smtp_client_settings *set, struct smtp_client *client,
			  const char *domain, const char *peer, const char *host);
#endif
