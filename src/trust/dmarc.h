#ifndef TRUST_DMARC_H
#define TRUST_DMARC_H
/* DMARC (RFC 7489): policy records, organizational domains (the Public
   Suffix List through libpsl), identifier alignment, and the verdict for a
   message from the results of SPF and DKIM.  No DNS here: the caller
   fetches _dmarc.DOMAIN (dmarc_record_name()) and, when that gives no
   policy, _dmarc.ORGDOMAIN (6.6.3). */
#include "trust/spf.h"

#include <stdbool.h>
#include <stddef.h>

enum dmarc_policy { DMARC_POLICY_NONE, DMARC_POLICY_QUARANTINE, DMARC_POLICY_REJECT };
const char *dmarc_policy_name(enum dmarc_policy p);

struct dmarc_record {
	enum dmarc_policy p, sp; /* sp is p when the record has none */
	bool adkim_strict, aspf_strict;
	unsigned pct; /* 0..100 */
};

/* Parses the TXT record text (the tag-list syntax of DKIM, 6.3).  1 for a
   policy; 0 for a text that is not a DMARC record (no "v=DMARC1" first:
   ignored, 6.6.3); -1 for a DMARC record without a usable policy (a bad
   or missing p=, a bad sp=, adkim=, aspf= or pct=), with *error_r (static).
   As 6.6.3 asks, such a record with an rua= reporting address counts as
   p=none (returns 1).  Unknown tags are ignored. */
int dmarc_record_parse(struct dmarc_record *r, const char *text, const char **error_r);

/* The organizational domain of domain (3.2): its registrable domain by the
   Public Suffix List (the newest of libpsl's built-in list and Debian's
   /usr/share/publicsuffix), lowercase; domain itself (lowercased) when it
   is a public suffix or unknown.  Caller frees. */
char *dmarc_org_domain(const char *domain);
/* Identifier alignment (3.1): equal names in strict mode, the same
   organizational domain in relaxed mode. */
bool dmarc_aligned(const char *a, const char *b, bool strict);

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };
/* "none", "pass", ... as Authentication-Results writes them (RFC 7489
   11.2). */
const char *dmarc_result_name(enum dmarc_result r);

/* What the message showed. */
struct dmarc_input {
	const char *from_domain; /* RFC5322.From */
	enum spf_result spf;
	const char *spf_domain;          /* the domain SPF checked (MAIL FROM, or HELO) */
	const char *const *dkim_domains; /* d= of the signatures that passed */
	size_t ndkim;
};

struct dmarc_verdict {
	enum dmarc_result result;
	/* what to do: the record's p (or sp for a subdomain), NONE on pass,
	   NONE when pct sampled the message out */
	enum dmarc_policy policy;
	/* the policy the domain asked for, sampling aside */
	enum dmarc_policy requested;
	bool spf_aligned, dkim_aligned;
	bool sampled_out; /* failed, but pct left it alone */
};

/* The verdict (6.6.2, 6.6.4) under record r, found at _dmarc.RECORD_DOMAIN
   (the From domain itself or its organizational domain: then sp=
   applies to a From in a subdomain); rnd is a number 0..99 for pct. */
void dmarc_evaluate(const struct dmarc_record *r, const char *record_domain, const struct dmarc_input *in,
		    unsigned rnd, struct dmarc_verdict *v);

/* "_dmarc.DOMAIN" (caller frees). */
char *dmarc_record_name(const char *domain);
#endif
