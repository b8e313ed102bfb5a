/* The TLS that a destination's MTA-STS policy and DANE records ask for
   (see transport.h). */
#include "relay/transport.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

static void transport_policy_clear_dane(struct transport_policy *p)
{
	for (size_t i = 0; i < p->ntlsa; i++)
		free(p->tlsa[i].data);
	free(p->tlsa);
	p->tlsa = NULL;
	p->ntlsa = 0;
	p->dane = RUNNER_DANE_NONE;
}

void transport_policy_clear(struct transport_policy *p)
{
	transport_policy_clear_dane(p);
	mta_sts_policy_clear(&p->sts);
	memset(p, 0, sizeof(*p));
}

void transport_policy_set_sts(struct transport_policy *p, const struct mta_sts_policy *policy)
{
	mta_sts_policy_clear(&p->sts);
	p->has_sts = policy != NULL && policy->mode != MTA_STS_MODE_NONE;
	if (p->has_sts)
		mta_sts_policy_copy(&p->sts, policy);
}

void transport_policy_set_dane(struct transport_policy *p, enum runner_tls_dane dane,
			       const struct tls_tlsa *recs, size_t n)
{
	transport_policy_clear_dane(p);
	p->plain_retry = false;
	p->dane = dane;
	if (dane != RUNNER_DANE_VERIFY)
		return;
	p->tlsa = xcalloc(n, sizeof(*p->tlsa));
	for (size_t i = 0; i < n; i++) {
		p->tlsa[i] = recs[i];
		p->tlsa[i].data = xmalloc(recs[i].len + 1);
		memcpy(p->tlsa[i].data, recs[i].data, recs[i].len);
	}
	p->ntlsa = n;
}

char *transport_policy_refuse_host(const struct transport_policy *p, const char *domain, const char *host)
{
	if (!p->has_sts || p->dane == RUNNER_DANE_VERIFY || mta_sts_policy_match(&p->sts, host))
		return NULL;
	if (p->sts.mode != MTA_STS_MODE_ENFORCE) {
		log_warn("mta-sts violation domain=%s mode=testing host=%s error=mx not in policy", domain,
			 host);
		return NULL;
	}
	log_info("mta-sts refused domain=%s host=%s reason=mx-not-in-policy", domain, host);
	return xasprintf("451 4.7.5 MTA-STS: MX host %s is not in the policy of %s", host, domain);
}

void transport_policy_settings(const struct transport_policy *p, const char *ca_file,
			       struct smtp_client_settings *set)
{
	set->tls = p->base;
	set->tls_check = false;
	set->tls_ca_file = NULL;
	set->tlsa = NULL;
	set->ntlsa = 0;
	bool sts = p->mx && p->has_sts;
	if (p->mx && p->dane == RUNNER_DANE_VERIFY) {
		set->tls = TLS_POLICY_ENCRYPT;
		set->tlsa = p->tlsa;
		set->ntlsa = p->ntlsa;
	} else if (sts && p->sts.mode == MTA_STS_MODE_ENFORCE) {
		set->tls = TLS_POLICY_VERIFY;
		set->tls_ca_file = ca_file;
	} else if (p->mx && p->dane == RUNNER_DANE_ENCRYPT) {
		if (set->tls < TLS_POLICY_ENCRYPT)
			set->tls = TLS_POLICY_ENCRYPT;
	} else if (sts && p->sts.mode == MTA_STS_MODE_TESTING && set->tls != TLS_POLICY_NONE) {
		set->tls_check = true;
		set->tls_ca_file = ca_file;
	}
	if (p->plain_retry)
		set->tls = TLS_POLICY_NONE;
}

const char *transport_policy_name(const struct transport_policy *p, const struct smtp_client_settings *set)
{
	if (set->ntlsa > 0)
		return "DANE";
	if (set->tls == TLS_POLICY_VERIFY && p->mx && p->has_sts && p->sts.mode == MTA_STS_MODE_ENFORCE)
		return "MTA-STS";
	if (p->mx && p->dane == RUNNER_DANE_ENCRYPT)
		return "DANE";
	return NULL;
}

bool transport_policy_fallback(struct transport_policy *p, const struct smtp_client_settings *set,
			       const struct smtp_client_result *res)
{
	/* set->tls is may only when no policy asked for more */
	if (!res->tls_failed || set->tls != TLS_POLICY_MAY || p->plain_retry)
		return false;
	p->plain_retry = true;
	return true;
}

void transport_policy_log(const struct smtp_client_settings *set, struct smtp_client *client,
			  const char *domain, const char *peer, const char *host)
{
	const char *error = smtp_client_tls_verify_error(client);
	if (smtp_client_is_tls(client)) {
		const char *auth = set->ntlsa > 0 ? "dane"
				   : set->tls == TLS_POLICY_VERIFY || (set->tls_check && error == NULL)
				       ? "pkix"
				       : "none";
		log_info("queue tls domain=%s peer=%s auth=%s", domain, peer, auth);
	}
	if (set->tls_check && error != NULL)
		log_warn("mta-sts violation domain=%s mode=testing host=%s error=%s", domain, host, error);
}
