/* Key records (RFC 6376 3.6.1; RFC 8463 4 for Ed25519): read once into a
   struct dkim_pubkey that verifications may share (see dkim.h). */
#include "trust/dkim.h"
#include "trust/dkim_private.h"

#include <openssl/x509.h>
#include <string.h>

/* One DER element with tag at *p (before end): its contents and their
   length, *p moved past it; NULL when it is something else or does not
   fit. */
static const unsigned char *der_next(const unsigned char **p, const unsigned char *end, unsigned char tag,
				     size_t *len_r)
{
	const unsigned char *q = *p;
	if (end - q < 2 || q[0] != tag)
		return NULL;
	size_t len = q[1];
	q += 2;
	if (len & 0x80) { /* long form: a key record needs 3 octets at most */
		size_t n = len & 0x7f;
		if (n == 0 || n > 3 || (size_t)(end - q) < n)
			return NULL;
		for (len = 0; n > 0; n--)
			len = len << 8 | *q++;
	}
	if ((size_t)(end - q) < len)
		return NULL;
	*p = q + len;
	*len_r = len;
	return q;
}

/* Bits in a positive DER INTEGER's contents. */
static size_t integer_bits(const unsigned char *v, size_t len)
{
	while (len > 0 && v[0] == 0)
		v++, len--;
	if (len == 0)
		return 0;
	size_t bits = (len - 1) * 8;
	for (unsigned char top = v[0]; top != 0; top >>= 1)
		bits++;
	return bits;
}

static void refuse(struct dkim_pubkey *pk, enum dkim_result r, const char *why)
{
	pk->result = r;
	pk->error = why;
}

/* The key of an RSAPublicKey (RFC 8017 A.1.1), its sizes checked before
   OpenSSL does any work on it: a hostile record must not make verifying
   cost more than a real key does, so the modulus has DKIM_RSA_MAX_BITS at
   most (RFC 8301 3.2 asks verifiers for 4096) and the public exponent 32
   bits (65537 in practice; a large one makes a verification cost a
   private-key operation).  OpenSSL's PKCS#1 decoder then takes 1 us where
   the generic d2i_PUBKEY() of OpenSSL 3 takes some 100 us for a 2048-bit
   key: most of the cost of checking a message. */
static void rsa_public_key(struct dkim_pubkey *pk, const unsigned char *der, size_t len)
{
	const unsigned char *p = der, *end = der + len, *seq, *n, *e;
	size_t seq_len, n_len, e_len;
	if ((seq = der_next(&p, end, 0x30, &seq_len)) == NULL || p != end)
		return refuse(pk, DKIM_PERMERROR, "the key in p= cannot be read");
	p = seq;
	end = seq + seq_len;
	if ((n = der_next(&p, end, 0x02, &n_len)) == NULL || (e = der_next(&p, end, 0x02, &e_len)) == NULL ||
	    p != end)
		return refuse(pk, DKIM_PERMERROR, "the key in p= cannot be read");
	size_t bits = integer_bits(n, n_len);
	if (bits < 1024)
		return refuse(pk, DKIM_POLICY, "the RSA key is shorter than 1024 bits");
	if (bits > DKIM_RSA_MAX_BITS || integer_bits(e, e_len) > 32)
		return refuse(pk, DKIM_POLICY, "the RSA key is too large to verify");
	pk->key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &der, (long)len);
	if (pk->key == NULL)
		refuse(pk, DKIM_PERMERROR, "the key in p= cannot be read");
}

/* The RSAPublicKey inside a SubjectPublicKeyInfo (RFC 5280 4.1.2.7) of
   algorithm rsaEncryption (RFC 3279 2.3.1), the form key records use; NULL
   when der is not exactly that. */
static const unsigned char *spki_rsa(const unsigned char *der, size_t len, size_t *key_len_r)
{
	static const unsigned char rsa_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
	const unsigned char *p = der, *end = der + len, *spki, *alg, *oid, *bits;
	size_t n, alg_len, oid_len, bits_len;
	if ((spki = der_next(&p, end, 0x30, &n)) == NULL || p != end)
		return NULL;
	p = spki;
	end = spki + n;
	if ((alg = der_next(&p, end, 0x30, &alg_len)) == NULL ||
	    (bits = der_next(&p, end, 0x03, &bits_len)) == NULL || p != end)
		return NULL;
	const unsigned char *a = alg, *alg_end = alg + alg_len;
	if ((oid = der_next(&a, alg_end, 0x06, &oid_len)) == NULL || oid_len != sizeof(rsa_oid) ||
	    memcmp(oid, rsa_oid, oid_len) != 0)
		return NULL;
	/* parameters: NULL, or absent */
	if (a != alg_end && (der_next(&a, alg_end, 0x05, &n) == NULL || n != 0 || a != alg_end))
		return NULL;
	if (bits_len < 2 || bits[0] != 0) /* whole octets */
		return NULL;
	*key_len_r = bits_len - 1;
	return bits + 1;
}

/* The checks of a record that do not depend on a signature; NULL when it
   passes them, else why not. */
static const char *record_refusal(const struct dkim_tags *tags)
{
	const struct dkim_tag *v = dkim_tags_get(tags, "v"), *p = dkim_tags_get(tags, "p"),
			      *h = dkim_tags_get(tags, "h"), *s = dkim_tags_get(tags, "s");
	if (v != NULL && (v != &tags->tag[0] || v->value_len != 5 || strncmp(v->value, "DKIM1", 5) != 0))
		return "bad key record version";
	if (p == NULL || p->value_len == 0)
		return p == NULL ? "the key record has no p=" : "the key has been revoked";
	if (h != NULL) {
		/* h= lists acceptable hashes: sha256 must be among them */
		bool found = false;
		for (size_t i = 0; i + 6 <= h->value_len; i++)
			found = found || !strncmp(h->value + i, "sha256", 6);
		if (!found)
			return "the key does not allow sha256";
	}
	if (s != NULL) {
		bool email = false;
		for (size_t i = 0; i < s->value_len; i++)
			email = email || s->value[i] == '*' ||
				(i + 5 <= s->value_len && !strncmp(s->value + i, "email", 5));
		if (!email)
			return "the key is not for email";
	}
	return NULL;
}

void dkim_pubkey_parse(struct dkim_pubkey *pk, const char *record, size_t len)
{
	memset(pk, 0, sizeof(*pk));
	pk->result = DKIM_PERMERROR;
	struct dkim_tags tags;
	const char *error;
	if (memchr(record, '\0', len) != NULL)
		return refuse(pk, DKIM_PERMERROR, "the key record holds a NUL");
	if (dkim_tags_parse(&tags, record, len, &error) < 0)
		return refuse(pk, DKIM_PERMERROR, error);
	if ((error = record_refusal(&tags)) != NULL)
		return refuse(pk, DKIM_PERMERROR, error);
	const struct dkim_tag *k = dkim_tags_get(&tags, "k"), *t = dkim_tags_get(&tags, "t");
	bool ed = k != NULL && k->value_len == 7 && !strncmp(k->value, "ed25519", 7);
	bool rsa = k == NULL || (k->value_len == 3 && !strncmp(k->value, "rsa", 3));
	if (!ed && !rsa)
		return refuse(pk, DKIM_PERMERROR, "unknown key type");
	pk->alg = ed ? DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256;
	pk->strict = t != NULL && memchr(t->value, 's', t->value_len) != NULL;
	struct buf der = BUF_INIT;
	if (dkim_tag_base64(dkim_tags_get(&tags, "p"), &der) < 0) {
		refuse(pk, DKIM_PERMERROR, "the key in p= cannot be read");
	} else if (ed) {
		if (der.len == 32)
			pk->key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
							      (const unsigned char *)der.data, 32);
		if (pk->key == NULL)
			refuse(pk, DKIM_PERMERROR, "the key in p= cannot be read");
	} else {
		size_t key_len;
		const unsigned char *key = spki_rsa((const unsigned char *)der.data, der.len, &key_len);
		if (key == NULL) { /* some publish the PKCS#1 RSAPublicKey alone */
			key = (const unsigned char *)der.data;
			key_len = der.len;
		}
		rsa_public_key(pk, key, key_len);
	}
	buf_free(&der);
	if (pk->key != NULL) {
		pk->result = DKIM_PASS;
		pk->error = NULL;
	}
}

void dkim_pubkey_copy(struct dkim_pubkey *dst, const struct dkim_pubkey *src)
{
	*dst = *src;
	if (dst->key != NULL)
		EVP_PKEY_up_ref(dst->key);
}

void dkim_pubkey_free(struct dkim_pubkey *pk)
{
	EVP_PKEY_free(pk->key);
	memset(pk, 0, sizeof(*pk));
}
