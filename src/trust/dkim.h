#ifndef TRUST_DKIM_H
#define TRUST_DKIM_H
/* DomainKeys Identified Mail (RFC 6376) with the rsa-sha256 and
   ed25519-sha256 (RFC 8463) algorithms: canonicalization, the tag-list
   syntax of signatures and key records, signing and verifying one
   signature.  No DNS here: the verifier is given the key record's text, so
   that the caller looks it up however it likes (asynchronously). */
#include "lib/buf.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dkim_canon { DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED };
enum dkim_alg { DKIM_ALG_RSA_SHA256, DKIM_ALG_ED25519_SHA256 };

/* SHA-256, fetched once for the process: OpenSSL 3 looks an algorithm up
   again (under a lock) on every use of EVP_sha256(). */
const EVP_MD *dkim_sha256(void);

/* "rsa-sha256" / "ed25519-sha256". */
const char *dkim_alg_name(enum dkim_alg alg);

/* ---- canonicalization (RFC 6376 3.4) ---- */

/* Appends the canonical form of one raw header field (name, colon, value
   with its folding, with or without its final line end) and CRLF.
   relaxed (3.4.2): name lowercased, unfolded, runs of whitespace made one
   space, whitespace around the colon and at the end removed; simple
   (3.4.1): unchanged. */
void dkim_canon_header(struct buf *out, enum dkim_canon canon, const char *field, size_t len);

/* The body hash, computed as the body streams by (3.4.3, 3.4.4): empty
   lines at the end are dropped, a missing final CRLF is added; relaxed also
   drops whitespace at line ends and makes runs of it one space.  A bare LF
   ends a line as CRLF does.  l= (a length limit) is not supported: it lets
   anyone append to a signed message. */
struct dkim_body_hash;
struct dkim_body_hash *dkim_body_hash_new(enum dkim_canon canon);
void dkim_body_hash_update(struct dkim_body_hash *bh, const void *data, size_t len);
/* Ends the body and writes the SHA-256 digest (32 bytes). */
void dkim_body_hash_final(struct dkim_body_hash *bh, unsigned char digest[32]);
void dkim_body_hash_free(struct dkim_body_hash **bh);

/* ---- tag lists (3.2) ---- */

#define DKIM_MAX_TAGS 64
struct dkim_tag {
	const char *name; /* not NUL-terminated */
	size_t name_len;
	const char *value; /* not NUL-terminated, surrounding whitespace trimmed */
	size_t value_len;
};
struct dkim_tags {
	struct dkim_tag tag[DKIM_MAX_TAGS];
	unsigned int count;
};
/* Parses "tag=value; tag=value" (tag-list, 3.2: names are ALPHA *ALNUMPUNC,
   values any VCHAR but ';' with folding whitespace inside; a final ';' is
   allowed).  The result points into text.  -1 with *error_r (static text)
   on a syntax error, a duplicate tag (an error per 3.2) or too many tags. */
int dkim_tags_parse(struct dkim_tags *tags, const char *text, size_t len, const char **error_r);
/* The tag named name, or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *tags, const char *name);

/* ---- keys ---- */

/* The key record to publish at SELECTOR._domainkey.DOMAIN (3.6.1; RFC 8463
   section 4 for Ed25519, whose p= is the raw 32-byte key): "v=DKIM1;
   k=rsa; p=...".  Appends to out; -1 with *error_r (static) when the key
   is neither RSA nor Ed25519. */
int dkim_key_record(struct buf *out, EVP_PKEY *key, const char **error_r);
/* The algorithm for a private or public key; -1 when unsupported. */
int dkim_key_alg(EVP_PKEY *key);

/* ---- signing (5) ---- */

/* Header fields signed when present (5.4.1): each instance of a field is
   signed, and From once more (an absent instance signed as empty), so that
   nobody can add another From above the signature. */
extern const char *const dkim_signed_fields[];

struct dkim_sign_params {
	const char *domain;   /* d= */
	const char *selector; /* s= */
	EVP_PKEY *key;        /* RSA (2048 bits or more) or Ed25519 */
	int64_t timestamp;    /* t=, or 0 for none */
};

/* Signs a message whose header block is header (header_len bytes, up to
   and including the empty line or not) and whose body hash (relaxed) is
   body_hash: appends one "DKIM-Signature: ...\r\n" field (c=relaxed/relaxed)
   to out.  -1 with *error_r (static) when the key fails. */
int dkim_sign(struct buf *out, const struct dkim_sign_params *params, const char *header, size_t header_len,
	      const unsigned char body_hash[32], const char **error_r);

/* ---- verifying (6) ---- */

enum dkim_result {
	DKIM_PASS,
	DKIM_FAIL,      /* the signature or body hash does not verify */
	DKIM_NEUTRAL,   /* syntax errors, unsupported algorithm: not a verdict */
	DKIM_POLICY,    /* verifiable but refused: key too small, expired */
	DKIM_TEMPERROR, /* the key could not be fetched now */
	DKIM_PERMERROR, /* the key record is broken or revoked */
};
/* "pass", "fail", ... as Authentication-Results writes them (RFC 8601). */
const char *dkim_result_name(enum dkim_result r);

/* One DKIM-Signature of a message, parsed (6.1.1). */
struct dkim_signature {
	enum dkim_alg alg;
	enum dkim_canon header_canon, body_canon;
	char *domain;   /* d=, lowercased */
	char *selector; /* s= */
	char *auid;     /* i=, or "@" d= when absent */
	char **headers; /* h=, lowercased; count in nheaders */
	size_t nheaders;
	struct buf b;                  /* decoded b= */
	struct buf bh;                 /* decoded bh= */
	int64_t timestamp, expiration; /* t=, x=; -1 when absent */
	/* the field as it came, for the header hash */
	const char *field;
	size_t field_len;
};
/* Parses the raw field (name included, as dkim_canon_header takes it) into
   sig, which then points into field.  DKIM_PASS when it can be verified,
   else DKIM_NEUTRAL or DKIM_POLICY with *error_r (static text).  now is the
   current time for x=. */
enum dkim_result dkim_signature_parse(struct dkim_signature *sig, const char *field, size_t len, int64_t now,
				      const char **error_r);
void dkim_signature_free(struct dkim_signature *sig);

/* A key record (3.6.1; RFC 8463 4), read once: the key and what the record
   allows, checked as far as no signature is needed.  Reading it is most of
   the cost of a verification beside the crypto (OpenSSL builds the key),
   so a verifier keeps it for the next messages signed with it (see
   dkim_lookup.h); it never changes once read, and verifications on several
   threads may share it (OpenSSL allows concurrent use of one EVP_PKEY). */
struct dkim_pubkey {
	EVP_PKEY *key; /* NULL: the record cannot be used (result, error) */
	enum dkim_alg alg;
	bool strict;             /* t=s: no subdomain in i= */
	enum dkim_result result; /* DKIM_PASS with a key, else DKIM_PERMERROR or
				    DKIM_POLICY (key too small or too costly) */
	const char *error;       /* static text, when key is NULL */
};
/* Reads record (len bytes).  RSA keys below 1024 bits (RFC 8301 3.2), above
   DKIM_RSA_MAX_BITS or with a public exponent above 2^32 (a key that would
   cost more than real ones to verify) are DKIM_POLICY. */
#define DKIM_RSA_MAX_BITS 8192
void dkim_pubkey_parse(struct dkim_pubkey *pk, const char *record, size_t len);
/* Another reference to src's key. */
void dkim_pubkey_copy(struct dkim_pubkey *dst, const struct dkim_pubkey *src);
void dkim_pubkey_free(struct dkim_pubkey *pk);

/* Verifies sig with the key pk (the checks that need the signature: t=s,
   the key's type against a=), against the header block and the body hash
   as dkim_verify() does. */
enum dkim_result dkim_verify_key(const struct dkim_signature *sig, const char *header, size_t header_len,
				 const unsigned char body_hash[32], const struct dkim_pubkey *pk,
				 const char **error_r);

/* Verifies sig against the message's header block (header, header_len),
   the body hash computed with sig's body canonicalization, and the key
   record's text found at SELECTOR._domainkey.DOMAIN (NULL: none found,
   permerror): dkim_pubkey_parse() and dkim_verify_key().  *error_r
   (static) says why when not DKIM_PASS. */
enum dkim_result dkim_verify(const struct dkim_signature *sig, const char *header, size_t header_len,
			     const unsigned char body_hash[32], const char *key_record, const char **error_r);
#endif
