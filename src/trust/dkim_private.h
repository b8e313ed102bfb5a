#ifndef TRUST_DKIM_PRIVATE_H
#define TRUST_DKIM_PRIVATE_H
/* Shared by the files of the DKIM module (dkim.c, dkim_pubkey.c) and the
   pieces of DKIM that ARC (arc.c, RFC 8617) builds on. */
#include "trust/dkim.h"

/* dkim_signature_parse(), or with arc for an ARC-Message-Signature: no v=,
   and i= is the instance, not an identity. */
enum dkim_result dkim_signature_parse_as(struct dkim_signature *sig, const char *field, size_t len,
					 int64_t now, bool arc, const char **error_r);
/* Appends the canonical form of a signature field with its b= value
   emptied and no final CRLF (RFC 6376 3.7, RFC 8617 5.1.1). */
void dkim_canon_unsigned(struct buf *out, enum dkim_canon canon, const char *field, size_t len);
/* The public key of a key record for sig's algorithm (sig->auid for t=s),
   or NULL with the verdict in *r and *error_r (dkim_pubkey_parse() and
   the checks of dkim_verify_key()). */
EVP_PKEY *dkim_record_key(const struct dkim_signature *sig, const char *record, enum dkim_result *r,
			  const char **error_r);
/* 0 when sig (decoded b=) signs input under key and alg. */
int dkim_pkey_verify(EVP_PKEY *key, enum dkim_alg alg, const struct buf *input, const struct buf *sig);
/* The base64 value of a tag with folding whitespace inside (3.5: b=, bh=;
   3.6.1: p=), decoded into out.  -1 when it is not base64. */
int dkim_tag_base64(const struct dkim_tag *t, struct buf *out);
#endif
