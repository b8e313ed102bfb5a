/* DKIM signatures (RFC 6376 sections 3.5, 3.7, 5 and 6; RFC 8463): the
   header hash, signing, parsing and verifying one signature, key records. */
#include "trust/dkim.h"
#include "trust/dkim_private.h"
#include "lib/xalloc.h"
#include "mime/base64.h"
#include "mime/header.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>
#include <strings.h>

/* Generated signatures are folded to lines of this many characters. */
#define DKIM_FOLD_WIDTH 76

const char *const dkim_signed_fields[] = {
    "From",       "Reply-To",    "Subject",    "Date",         "To",           "Cc",
    "Message-ID", "In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    NULL,
};

const char *dkim_alg_name(enum dkim_alg alg)
{
	return alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

const char *dkim_result_name(enum dkim_result r)
{
	static const char *const names[] = {"pass", "fail", "neutral", "policy", "temperror", "permerror"};
	return names[r];
}

int dkim_key_alg(EVP_PKEY *key)
{
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		return DKIM_ALG_RSA_SHA256;
	case EVP_PKEY_ED25519:
		return DKIM_ALG_ED25519_SHA256;
	default:
		return -1;
	}
}

int dkim_key_record(struct buf *out, EVP_PKEY *key, const char **error_r)
{
	int alg = dkim_key_alg(key);
	unsigned char *der = NULL;
	int len;
	if (alg == DKIM_ALG_RSA_SHA256) {
		len = i2d_PUBKEY(key, &der);
	} else if (alg == DKIM_ALG_ED25519_SHA256) {
		size_t n = 32;
		der = OPENSSL_malloc(n);
		len = der != NULL && EVP_PKEY_get_raw_public_key(key, der, &n) == 1 ? (int)n : -1;
	} else {
		*error_r = "the key is neither RSA nor Ed25519";
		return -1;
	}
	if (len <= 0) {
		OPENSSL_free(der);
		*error_r = "the public key cannot be encoded";
		return -1;
	}
	buf_printf(out, "v=DKIM1; k=%s; p=", alg == DKIM_ALG_RSA_SHA256 ? "rsa" : "ed25519");
	base64_encode(out, der, (size_t)len);
	OPENSSL_free(der);
	return 0;
}

/* ---- the header hash input (3.7) ---- */

/* Appends the canonical fields named by names (bottom-up for repeated
   names, 5.4.2; an absent instance contributes nothing), then the signature
   field itself with the value of b= emptied and no final CRLF. */
static void header_hash_input(struct buf *out, enum dkim_canon canon, const char *header, size_t header_len,
			      char *const *names, size_t nnames, const char *sig_field, size_t sig_len)
{
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, header, header_len, NULL);
	/* fields already used, so that a name listed twice takes the next
	   instance up */
	bool *used = xcalloc(h->count + 1, sizeof(bool));
	for (size_t i = 0; i < nnames; i++) {
		size_t nlen = strlen(names[i]);
		for (unsigned int j = h->count; j-- > 0;) {
			const struct mime_header_field *f = &h->fields[j];
			if (used[j] || f->name_len != nlen || strncasecmp(f->name, names[i], nlen) != 0)
				continue;
			used[j] = true;
			dkim_canon_header(out, canon, header + f->offset, f->size);
			break;
		}
	}
	free(used);
	pool_destroy(&pool);

	dkim_canon_unsigned(out, canon, sig_field, sig_len);
}

void dkim_canon_unsigned(struct buf *out, enum dkim_canon canon, const char *field, size_t len)
{
	/* the signature with "b=" emptied: everything after the '=' of the
	   b tag up to the next ';' goes */
	struct buf sig = BUF_INIT;
	const char *colon = memchr(field, ':', len);
	const char *p = colon != NULL ? colon + 1 : field + len, *end = field + len;
	buf_append(&sig, field, (size_t)(p - field));
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *spec_end = semi != NULL ? semi : end;
		const char *q = p;
		while (q < spec_end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
			q++;
		const char *eq = memchr(q, '=', (size_t)(spec_end - q));
		bool is_b = eq != NULL && *q == 'b';
		for (const char *r = q + 1; is_b && r < eq; r++)
			is_b = *r == ' ' || *r == '\t' || *r == '\r' || *r == '\n';
		buf_append(&sig, p, is_b ? (size_t)(eq + 1 - p) : (size_t)(spec_end - p));
		if (semi != NULL)
			buf_append_char(&sig, ';');
		p = semi != NULL ? semi + 1 : end;
	}
	dkim_canon_header(out, canon, sig.data, sig.len);
	buf_truncate(out, out->len - 2); /* no CRLF after the signature (3.7) */
	buf_free(&sig);
}

/* What the key signs: rsa-sha256 signs the hash input with SHA-256
   (PKCS#1 v1.5), ed25519-sha256 signs the SHA-256 digest of the input with
   PureEdDSA (RFC 8463 3), so for it the digest replaces the input. */
static int signed_data(enum dkim_alg alg, const struct buf *input, unsigned char digest[32],
		       const unsigned char **data_r, size_t *len_r)
{
	*data_r = (const unsigned char *)input->data;
	*len_r = input->len;
	if (alg != DKIM_ALG_ED25519_SHA256)
		return 0;
	unsigned int n = 32;
	if (EVP_Digest(input->data, input->len, digest, &n, dkim_sha256(), NULL) != 1)
		return -1;
	*data_r = digest;
	*len_r = n;
	return 0;
}

static int pkey_sign(EVP_PKEY *key, enum dkim_alg alg, const struct buf *input, struct buf *sig_r)
{
	unsigned char digest[32];
	const unsigned char *data;
	size_t len, siglen = 0;
	if (signed_data(alg, input, digest, &data, &len) < 0)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok =
	    ctx != NULL &&
	    EVP_DigestSignInit(ctx, NULL, alg == DKIM_ALG_RSA_SHA256 ? EVP_sha256() : NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, NULL, &siglen, data, len) == 1;
	if (ok) {
		buf_reserve(sig_r, siglen);
		ok = EVP_DigestSign(ctx, (unsigned char *)sig_r->data + sig_r->len, &siglen, data, len) == 1;
		if (ok)
			sig_r->len += siglen;
	}
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

int dkim_pkey_verify(EVP_PKEY *key, enum dkim_alg alg, const struct buf *input, const struct buf *sig)
{
	unsigned char digest[32];
	const unsigned char *data;
	size_t len;
	if (signed_data(alg, input, digest, &data, &len) < 0)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx != NULL &&
		 EVP_DigestVerifyInit(ctx, NULL, alg == DKIM_ALG_RSA_SHA256 ? EVP_sha256() : NULL, NULL,
				      key) == 1 &&
		 EVP_DigestVerify(ctx, (const unsigned char *)sig->data, sig->len, data, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* ---- signing (5) ---- */

/* Appends text to the field being built, folding before it when the line
   would grow past DKIM_FOLD_WIDTH. */
static void fold_append(struct buf *out, size_t *col, const char *text, size_t len)
{
	if (*col + len > DKIM_FOLD_WIDTH && *col > 1) {
		buf_append(out, "\r\n\t", 3);
		*col = 1;
	}
	buf_append(out, text, len);
	*col += len;
}

int dkim_sign(struct buf *out, const struct dkim_sign_params *params, const char *header, size_t header_len,
	      const unsigned char body_hash[32], const char **error_r)
{
	int alg = dkim_key_alg(params->key);
	if (alg < 0) {
		*error_r = "the key is neither RSA nor Ed25519";
		return -1;
	}
	/* the signed fields: every instance present, From once more */
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, header, header_len, NULL);
	char *names[64];
	size_t nnames = 0;
	for (const char *const *f = dkim_signed_fields; *f != NULL; f++) {
		unsigned int n = mime_headers_count(h, *f);
		if (!strcasecmp(*f, "From"))
			n++;
		for (unsigned int i = 0; i < n && nnames < N_ELEMENTS(names); i++)
			names[nnames++] = (char *)*f;
	}
	pool_destroy(&pool);

	struct buf field = BUF_INIT, tmp = BUF_INIT;
	size_t col;
	buf_printf(&field, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed;", dkim_alg_name(alg));
	col = field.len;
	buf_printf(&tmp, " d=%s;", params->domain);
	fold_append(&field, &col, tmp.data, tmp.len);
	buf_reset(&tmp);
	buf_printf(&tmp, " s=%s;", params->selector);
	fold_append(&field, &col, tmp.data, tmp.len);
	buf_reset(&tmp);
	if (params->timestamp > 0) {
		buf_printf(&tmp, " t=%lld;", (long long)params->timestamp);
		fold_append(&field, &col, tmp.data, tmp.len);
	}
	for (size_t i = 0; i < nnames; i++) {
		buf_reset(&tmp);
		buf_printf(&tmp, "%s%s%s", i == 0 ? " h=" : "", names[i], i + 1 < nnames ? ":" : ";");
		for (char *c = tmp.data; *c != '\0'; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		fold_append(&field, &col, tmp.data, tmp.len);
	}
	buf_reset(&tmp);
	buf_append_str(&tmp, " bh=");
	base64_encode(&tmp, body_hash, 32);
	buf_append_char(&tmp, ';');
	fold_append(&field, &col, tmp.data, tmp.len);
	fold_append(&field, &col, " b=", 3);

	buf_reset(&tmp);
	header_hash_input(&tmp, DKIM_CANON_RELAXED, header, header_len, names, nnames, field.data, field.len);
	struct buf sig = BUF_INIT, b64 = BUF_INIT;
	int ret = 0;
	if (pkey_sign(params->key, alg, &tmp, &sig) < 0) {
		*error_r = "signing failed";
		ret = -1;
	} else {
		base64_encode(&b64, sig.data, sig.len);
		for (size_t i = 0; i < b64.len;) {
			size_t room = col < DKIM_FOLD_WIDTH ? DKIM_FOLD_WIDTH - col : 0;
			if (room == 0) {
				buf_append(&field, "\r\n\t", 3);
				col = 1;
				continue;
			}
			size_t n = b64.len - i < room ? b64.len - i : room;
			buf_append(&field, b64.data + i, n);
			col += n;
			i += n;
		}
		buf_append(&field, "\r\n", 2);
		buf_append(out, field.data, field.len);
	}
	buf_free(&sig);
	buf_free(&b64);
	buf_free(&tmp);
	buf_free(&field);
	return ret;
}

/* ---- verifying (6) ---- */

static char *tag_dup(const struct dkim_tag *t, bool lower)
{
	char *s = xstrndup(t->value, t->value_len);
	for (char *c = s; lower && *c != '\0'; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	return s;
}

/* base64 with folding whitespace inside (3.5: b=, bh=; 3.6.1: p=) */
int dkim_tag_base64(const struct dkim_tag *t, struct buf *out)
{
	struct buf clean = BUF_INIT;
	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			buf_append_char(&clean, c);
	}
	int ret = base64_decode_strict(out, clean.data != NULL ? clean.data : "", clean.len);
	buf_free(&clean);
	return ret;
}

static int tag_int(const struct dkim_tag *t, int64_t *v)
{
	if (t->value_len == 0 || t->value_len > 12)
		return -1;
	int64_t n = 0;
	for (size_t i = 0; i < t->value_len; i++) {
		if (t->value[i] < '0' || t->value[i] > '9')
			return -1;
		n = n * 10 + (t->value[i] - '0');
	}
	*v = n;
	return 0;
}

static bool domain_within(const char *sub, const char *domain)
{
	size_t sl = strlen(sub), dl = strlen(domain);
	if (sl == dl)
		return strcasecmp(sub, domain) == 0;
	return sl > dl && sub[sl - dl - 1] == '.' && strcasecmp(sub + sl - dl, domain) == 0;
}

void dkim_signature_free(struct dkim_signature *sig)
{
	free(sig->domain);
	free(sig->selector);
	free(sig->auid);
	for (size_t i = 0; i < sig->nheaders; i++)
		free(sig->headers[i]);
	free(sig->headers);
	buf_free(&sig->b);
	buf_free(&sig->bh);
	memset(sig, 0, sizeof(*sig));
}

static enum dkim_result sig_error(struct dkim_signature *sig, enum dkim_result r, const char *why,
				  const char **error_r)
{
	dkim_signature_free(sig);
	*error_r = why;
	return r;
}

enum dkim_result dkim_signature_parse(struct dkim_signature *sig, const char *field, size_t len, int64_t now,
				      const char **error_r)
{
	return dkim_signature_parse_as(sig, field, len, now, false, error_r);
}

enum dkim_result dkim_signature_parse_as(struct dkim_signature *sig, const char *field, size_t len,
					 int64_t now, bool arc, const char **error_r)
{
	memset(sig, 0, sizeof(*sig));
	sig->field = field;
	sig->field_len = len;
	sig->timestamp = sig->expiration = -1;
	const char *colon = memchr(field, ':', len);
	if (colon == NULL)
		return sig_error(sig, DKIM_NEUTRAL, "not a header field", error_r);
	struct dkim_tags tags;
	if (dkim_tags_parse(&tags, colon + 1, len - (size_t)(colon + 1 - field), error_r) < 0)
		return sig_error(sig, DKIM_NEUTRAL, *error_r, error_r);
	const struct dkim_tag *v = dkim_tags_get(&tags, "v"), *a = dkim_tags_get(&tags, "a"),
			      *b = dkim_tags_get(&tags, "b"), *bh = dkim_tags_get(&tags, "bh"),
			      *d = dkim_tags_get(&tags, "d"), *h = dkim_tags_get(&tags, "h"),
			      *s = dkim_tags_get(&tags, "s"), *c = dkim_tags_get(&tags, "c"),
			      *i = dkim_tags_get(&tags, "i"), *t = dkim_tags_get(&tags, "t"),
			      *x = dkim_tags_get(&tags, "x"), *q = dkim_tags_get(&tags, "q"),
			      *l = dkim_tags_get(&tags, "l");
	if ((v == NULL && !arc) || a == NULL || b == NULL || bh == NULL || d == NULL || h == NULL ||
	    s == NULL)
		return sig_error(sig, DKIM_NEUTRAL, "a required tag is missing", error_r);
	if (v != NULL && (v->value_len != 1 || v->value[0] != '1'))
		return sig_error(sig, DKIM_NEUTRAL, "unsupported version", error_r);
	if (a->value_len == 10 && !strncasecmp(a->value, "rsa-sha256", 10))
		sig->alg = DKIM_ALG_RSA_SHA256;
	else if (a->value_len == 14 && !strncasecmp(a->value, "ed25519-sha256", 14))
		sig->alg = DKIM_ALG_ED25519_SHA256;
	else /* rsa-sha1 is not to be trusted any more (RFC 8301 3.1) */
		return sig_error(sig, DKIM_NEUTRAL, "unsupported algorithm", error_r);
	sig->header_canon = sig->body_canon = DKIM_CANON_SIMPLE;
	if (c != NULL) {
		const char *slash = memchr(c->value, '/', c->value_len);
		size_t hl = slash != NULL ? (size_t)(slash - c->value) : c->value_len;
		const char *bv = slash != NULL ? slash + 1 : NULL;
		size_t bl = slash != NULL ? c->value_len - hl - 1 : 0;
		if (hl == 7 && !strncmp(c->value, "relaxed", 7))
			sig->header_canon = DKIM_CANON_RELAXED;
		else if (hl != 6 || strncmp(c->value, "simple", 6) != 0)
			return sig_error(sig, DKIM_NEUTRAL, "unknown canonicalization", error_r);
		if (bv != NULL && bl == 7 && !strncmp(bv, "relaxed", 7))
			sig->body_canon = DKIM_CANON_RELAXED;
		else if (bv != NULL && (bl != 6 || strncmp(bv, "simple", 6) != 0))
			return sig_error(sig, DKIM_NEUTRAL, "unknown canonicalization", error_r);
	}
	if (q != NULL && (q->value_len < 7 || strncasecmp(q->value, "dns/txt", 7) != 0))
		return sig_error(sig, DKIM_NEUTRAL, "unsupported query method", error_r);
	if (l != NULL) /* a length limit lets anyone append to the message */
		return sig_error(sig, DKIM_POLICY, "l= is not accepted", error_r);
	if (d->value_len == 0 || s->value_len == 0 || d->value_len > 253 || s->value_len > 253)
		return sig_error(sig, DKIM_NEUTRAL, "bad d= or s=", error_r);
	sig->domain = tag_dup(d, true);
	sig->selector = tag_dup(s, false);
	if (i != NULL && !arc) {
		sig->auid = tag_dup(i, false);
		const char *at = strrchr(sig->auid, '@');
		if (at == NULL || !domain_within(at + 1, sig->domain))
			return sig_error(sig, DKIM_NEUTRAL, "i= is not within d=", error_r);
	} else {
		sig->auid = xasprintf("@%s", sig->domain);
	}
	/* h=: names separated by ':' with folding whitespace around them */
	bool from = false;
	for (size_t k = 0, start = 0; k <= h->value_len; k++) {
		if (k < h->value_len && h->value[k] != ':')
			continue;
		const char *n = h->value + start;
		size_t nl = k - start;
		while (nl > 0 && strchr(" \t\r\n", n[0]) != NULL)
			n++, nl--;
		while (nl > 0 && strchr(" \t\r\n", n[nl - 1]) != NULL)
			nl--;
		start = k + 1;
		if (nl == 0 || !mime_header_name_valid(n, nl) || sig->nheaders >= 256)
			return sig_error(sig, DKIM_NEUTRAL, "bad h= list", error_r);
		sig->headers = xreallocarray(sig->headers, sig->nheaders + 1, sizeof(char *));
		struct dkim_tag one = {NULL, 0, n, nl};
		sig->headers[sig->nheaders++] = tag_dup(&one, true);
		from = from || (nl == 4 && !strncasecmp(n, "from", 4));
	}
	if (!from) /* 5.4: From must be signed */
		return sig_error(sig, DKIM_NEUTRAL, "From is not signed", error_r);
	if (dkim_tag_base64(b, &sig->b) < 0 || sig->b.len == 0 || dkim_tag_base64(bh, &sig->bh) < 0 ||
	    sig->bh.len != 32)
		return sig_error(sig, DKIM_NEUTRAL, "bad b= or bh=", error_r);
	if ((t != NULL && tag_int(t, &sig->timestamp) < 0) || (x != NULL && tag_int(x, &sig->expiration) < 0))
		return sig_error(sig, DKIM_NEUTRAL, "bad t= or x=", error_r);
	if (sig->expiration >= 0 && sig->timestamp >= 0 && sig->expiration < sig->timestamp)
		return sig_error(sig, DKIM_NEUTRAL, "x= before t=", error_r);
	if (sig->expiration >= 0 && sig->expiration < now)
		return sig_error(sig, DKIM_POLICY, "the signature has expired", error_r);
	return DKIM_PASS;
}

/* The checks of a key that need the signature: t=s (6.1.2: no subdomain
   in i=) and the key's type against a=. */
static enum dkim_result key_fits(const struct dkim_signature *sig, const struct dkim_pubkey *pk,
				 const char **error_r)
{
	if (pk->key == NULL) {
		*error_r = pk->error;
		return pk->result;
	}
	if (pk->strict) {
		const char *at = strrchr(sig->auid, '@');
		if (at == NULL || strcasecmp(at + 1, sig->domain) != 0) {
			*error_r = "t=s forbids a subdomain in i=";
			return DKIM_PERMERROR;
		}
	}
	if (pk->alg != sig->alg) {
		*error_r = "the key type does not match a=";
		return DKIM_PERMERROR;
	}
	return DKIM_PASS;
}

EVP_PKEY *dkim_record_key(const struct dkim_signature *sig, const char *record, enum dkim_result *r,
			  const char **error_r)
{
	struct dkim_pubkey pk;
	dkim_pubkey_parse(&pk, record, strlen(record));
	*r = key_fits(sig, &pk, error_r);
	if (*r != DKIM_PASS) {
		dkim_pubkey_free(&pk);
		return NULL;
	}
	return pk.key; /* the caller's reference now */
}

enum dkim_result dkim_verify_key(const struct dkim_signature *sig, const char *header, size_t header_len,
				 const unsigned char body_hash[32], const struct dkim_pubkey *pk,
				 const char **error_r)
{
	enum dkim_result r = key_fits(sig, pk, error_r);
	if (r != DKIM_PASS)
		return r;
	if (CRYPTO_memcmp(body_hash, sig->bh.data, 32) != 0) {
		*error_r = "body hash did not verify";
		return DKIM_FAIL;
	}
	struct buf input = BUF_INIT;
	header_hash_input(&input, sig->header_canon, header, header_len, sig->headers, sig->nheaders,
			  sig->field, sig->field_len);
	int ok = dkim_pkey_verify(pk->key, sig->alg, &input, &sig->b);
	buf_free(&input);
	if (ok < 0) {
		*error_r = "signature did not verify";
		return DKIM_FAIL;
	}
	return DKIM_PASS;
}

enum dkim_result dkim_verify(const struct dkim_signature *sig, const char *header, size_t header_len,
			     const unsigned char body_hash[32], const char *key_record, const char **error_r)
{
	if (key_record == NULL) {
		*error_r = "no key record";
		return DKIM_PERMERROR;
	}
	struct dkim_pubkey pk;
	dkim_pubkey_parse(&pk, key_record, strlen(key_record));
	enum dkim_result r = dkim_verify_key(sig, header, header_len, body_hash, &pk, error_r);
	dkim_pubkey_free(&pk);
	return r;
}
