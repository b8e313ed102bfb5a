#ifndef TRUST_SPF_H
#define TRUST_SPF_H
/* Sender Policy Framework (RFC 7208): check_host() for a client address,
   a MAIL FROM and a HELO name.

   No DNS here, and no waiting: the evaluation runs over the answers it has
   been given.  When it needs one it does not have, spf_run() returns the
   lookups it wants (spf_pending()); the caller resolves them however it
   likes (asynchronously, c-ares), hands each answer back with spf_answer()
   and calls spf_run() again, which starts over with everything known so
   far.  A record needs at most a few dozen lookups (the limits of 4.6.4),
   and a run is cheap, so starting over costs little and keeps the logic in
   the shape of the RFC's pseudo-code.

   The limits of 4.6.4 are enforced: 10 terms that query DNS (include, a,
   mx, ptr, exists, redirect), 2 void lookups, 10 MX hosts per mx, 10 PTR
   names per ptr or %{p}; more gives permerror. */
#include <stdbool.h>
#include <stddef.h>

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};
/* "none", "neutral", "pass", ... (RFC 8601 spelling). */
const char *spf_result_name(enum spf_result r);

enum spf_rr_type { SPF_RR_TXT, SPF_RR_A, SPF_RR_AAAA, SPF_RR_MX, SPF_RR_PTR };

enum spf_dns_status {
	SPF_DNS_OK,       /* records (possibly none: the same as NODATA) */
	SPF_DNS_NXDOMAIN, /* the name does not exist */
	SPF_DNS_TEMPFAIL, /* timeout, SERVFAIL: temperror */
};

/* One lookup the evaluation needs: the type and the name (lowercase, no
   final dot).  For PTR the name is the reverse name
   (4.3.2.1.in-addr.arpa / nibbles.ip6.arpa). */
struct spf_lookup {
	enum spf_rr_type type;
	const char *name;
};

struct spf;

/* A new evaluation for the client address ip (textual IPv4 or IPv6; an
   IPv4-mapped IPv6 address is taken as IPv4), the MAIL FROM address
   (without <>; "" for the null sender: the HELO identity is checked as
   postmaster@HELO, 2.4), the HELO/EHLO name, and receiver, our host name
   (for %{r}).  NULL when ip is not an address. */
struct spf *spf_new(const char *ip, const char *mail_from, const char *helo, const char *receiver);
void spf_free(struct spf **spf);

/* Evaluates.  true when the result is known (spf_result()); false when
   lookups are needed first (spf_pending()). */
bool spf_run(struct spf *spf);
/* The lookups the last spf_run() needed and that have not been answered:
 *out points to count entries, valid until the next call into spf. */
size_t spf_pending(struct spf *spf, const struct spf_lookup **out);
/* An answer: rrs are the records as text (TXT: the record's strings
   joined; A/AAAA: the address; MX: the exchange host; PTR: the host), n of
   them.  Answers for lookups not asked for are kept all the same. */
void spf_answer(struct spf *spf, enum spf_rr_type type, const char *name, enum spf_dns_status status,
		const char *const *rrs, size_t n);

/* The result once spf_run() returned true.  *detail_r (may be NULL) gets
   the explanation of a fail (the exp= text, 6.2, or NULL) or what went
   wrong for permerror/temperror; it lives as long as spf. */
enum spf_result spf_result(const struct spf *spf, const char **detail_r);
/* The domain that was checked: the MAIL FROM domain, or the HELO name. */
const char *spf_domain(const struct spf *spf);

/* Macro expansion (section 7) of text for the evaluation's identity with
   domain as %{d}, into a new string (caller frees); NULL on a syntax error.
   for_exp allows the c, r and t letters.  Exposed for the tests. */
char *spf_expand(struct spf *spf, const char *text, size_t len, const char *domain, bool for_exp);
#endif
