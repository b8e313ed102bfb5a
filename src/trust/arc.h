#ifndef TRUST_ARC_H
#define TRUST_ARC_H
/* Authenticated Received Chain (RFC 8617): validating the ARC sets a
   message collected on its way through mailing lists and forwarders, so
   that the authentication results the first hops saw survive the changes
   the later ones made.  No DNS here: the caller fetches the key records
   arc_chain_key_names() lists (as for DKIM) and hands them to
   arc_chain_verify(). */
#include "trust/dkim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARC_MAX_INSTANCES 50 /* RFC 8617 4.2.1 */

enum arc_result { ARC_NONE, ARC_PASS, ARC_FAIL };
/* "none", "pass", "fail" (RFC 8617 4.4). */
const char *arc_result_name(enum arc_result r);

struct arc_set {
	const char *aar, *ams, *as; /* the raw fields (name included) */
	size_t aar_len, ams_len, as_len;
};

struct arc_chain {
	struct arc_set sets[ARC_MAX_INSTANCES + 1]; /* by instance, 1..n */
	int n;
	struct dkim_signature ams; /* AMS(n), parsed */
	enum dkim_alg seal_alg[ARC_MAX_INSTANCES + 1];
	char *seal_domain[ARC_MAX_INSTANCES + 1], *seal_selector[ARC_MAX_INSTANCES + 1];
	struct buf seal_b[ARC_MAX_INSTANCES + 1];
	const char *aar_of_1; /* the first hop's results (after "i=1;") */
	size_t aar_of_1_len;
};

/* Finds and checks the structure of the ARC sets in a header block (5.2
   steps 1-4): 0 when there are none (arc=none), 1 when the chain can be
   verified (keys needed), -1 when it is broken (arc=fail, *why_r static
   text: a missing or repeated field of an instance, more than 50, a cv= that
   breaks the rules, a signature that does not parse).  The chain points
   into header, which must outlive it; free it with arc_chain_free() unless
   0 was returned. */
int arc_chain_parse(struct arc_chain *c, const char *header, size_t len, int64_t now, const char **why_r);
void arc_chain_free(struct arc_chain *c);

/* The key records verification needs: "SELECTOR._domainkey.DOMAIN" of the
   newest message signature and of every seal, each once.  Fills names
   (caller frees each) and returns the number. */
size_t arc_chain_key_names(const struct arc_chain *c, char **names, size_t max);
/* The body canonicalization of the newest message signature, for the body
   hash arc_chain_verify() takes. */
enum dkim_canon arc_chain_body_canon(const struct arc_chain *c);

/* Verifies the newest message signature and every seal (5.2 steps 5-6)
   with the key records key(ctx, name) gives (NULL: none).  ARC_PASS or
   ARC_FAIL with *why_r. */
enum arc_result arc_chain_verify(const struct arc_chain *c, const char *header, size_t len,
				 const unsigned char body_hash[32],
				 const char *(*key)(void *ctx, const char *name), void *ctx,
				 const char **why_r);
#endif
