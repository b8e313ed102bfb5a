#ifndef TRUST_DKIM_CHECK_H
#define TRUST_DKIM_CHECK_H
/* Verifying every DKIM signature of one message (RFC 6376 section 6) while
   it passes by: the signatures are parsed as soon as the header block is
   complete, so that the caller can start the key lookups while the body
   still streams; the body hashes are computed as it streams; the key
   records are taken whenever they arrive; at the end each signature gets
   one result, written as one Authentication-Results field (RFC 8601).  No
   DNS here (see dkim_lookup.h).

     c = dkim_check_new(now);
     dkim_check_header(c, header, len);   the header block, once complete
     for each i < dkim_check_key_count(c): look up the TXT records of
       dkim_check_key_name(c, i) and hand them to dkim_check_key()
     dkim_check_body(c, data, len)...     the body, in any pieces
     dkim_check_finish(c);                verifies (the crypto: not on a loop)
     dkim_check_results(c, ...), dkim_check_authres(c, out, id)
     dkim_check_free(&c);

   Bounded for a hostile message: the first DKIM_CHECK_MAX_SIGNATURES
   signatures from the top (the latest hops) are evaluated, more are only
   counted and reported as not checked; a key lookup is shared by the
   signatures that name the same d= and s=; at most two body hashes are
   computed, one per body canonicalization in use.  Not thread-safe: one
   thread at a time (the caller may hand it from the loop to the commit
   thread between calls). */
#include "lib/buf.h"
#include "trust/dkim.h"

#include <stddef.h>
#include <stdint.h>

#define DKIM_CHECK_MAX_SIGNATURES 8

struct dkim_check;

/* One signature's verdict.  The strings belong to the checker; a tag
   that is absent or unusable (not a DNS name for d= and s=) is NULL. */
struct dkim_check_result {
	enum dkim_result result;
	const char *domain;   /* d=, lowercase */
	const char *selector; /* s= */
	const char *auid;     /* i= as written */
	const char *alg;      /* a= as written */
	char b[9];            /* the first 8 characters of b= (RFC 6008), or "" */
	const char *reason;   /* static text; NULL on pass */
};

enum dkim_key_status {
	DKIM_KEY_FOUND,    /* TXT records (dkim_check_key picks one) */
	DKIM_KEY_NONE,     /* NXDOMAIN or no TXT record: permerror */
	DKIM_KEY_TEMPFAIL, /* no answer now: temperror */
};

/* now: the current time, for x= (expiration). */
struct dkim_check *dkim_check_new(int64_t now);
void dkim_check_free(struct dkim_check **c);

/* The header block (len bytes, with or without its empty line): parses
   its DKIM-Signature fields.  Once per message.  header must stay
   unchanged until dkim_check_free(): the header hashes are computed from
   it at the end. */
void dkim_check_header(struct dkim_check *c, const char *header, size_t len);
/* The key lookups the signatures need: "SELECTOR._domainkey.DOMAIN"
   (3.6.2.1), each name once. */
size_t dkim_check_key_count(const struct dkim_check *c);
const char *dkim_check_key_name(const struct dkim_check *c, size_t i);
/* The answer for key i: its TXT records (each as the strings joined,
   records[k] of lens[k] bytes) when status is DKIM_KEY_FOUND, read at once
   (dkim_pubkey_parse(), on the caller's thread: the loop's, which can keep
   the key for later messages).  Several records: the first of the first
   DKIM_CHECK_MAX_RECORDS that gives a key is used (6.1.2 leaves the choice
   to the verifier).  A key never given counts as temperror. */
#define DKIM_CHECK_MAX_RECORDS 4
void dkim_check_key(struct dkim_check *c, size_t i, enum dkim_key_status status, const char *const *records,
		    const size_t *lens, size_t count);
/* The answer for key i is a key read before (a cache's), shared. */
void dkim_check_key_given(struct dkim_check *c, size_t i, const struct dkim_pubkey *pk);
/* The usable key found for key i, or NULL. */
const struct dkim_pubkey *dkim_check_key_found(const struct dkim_check *c, size_t i);

/* The next piece of the body. */
void dkim_check_body(struct dkim_check *c, const void *data, size_t len);
/* Ends the body and verifies every signature.  Once. */
void dkim_check_finish(struct dkim_check *c);

/* The results, top signature first (valid after dkim_check_finish, until
   free); *unchecked_r (may be NULL) is the number of signatures past
   DKIM_CHECK_MAX_SIGNATURES. */
const struct dkim_check_result *dkim_check_results(const struct dkim_check *c, size_t *count_r,
						   unsigned int *unchecked_r);
/* Appends one Authentication-Results field (RFC 8601 2.2, with the
   properties of RFC 6008) for authserv_id: "dkim=none" without any
   signature, else one "dkim=RESULT" per signature with header.d, header.i,
   header.s, header.a and header.b, and one "dkim=policy" for the
   signatures not checked. */
void dkim_check_authres(const struct dkim_check *c, struct buf *out, const char *authserv_id);
/* The same results written into a field being written (trust/authres.h). */
struct authres_writer;
void dkim_check_authres_results(const struct dkim_check *c, struct authres_writer *w);
#endif
