/* The per-message DKIM checker (src/trust/dkim_check.c): signatures made
   with dkim_sign() on both algorithms checked as the body streams in any
   pieces, key answers of every kind (found, several records, none, failed,
   never), the bounds against hostile messages (signature count, shared
   lookups, keys too costly to verify) and the Authentication-Results it
   writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "lib/xalloc.h"
#include "mime/base64.h"
#include "trust/dkim_check.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char header[] = "From: Joe <joe@football.example.com>\r\n"
			     "To: Suzie <suzie@shopping.example.net>\r\n"
			     "Subject: Is dinner ready?\r\n"
			     "Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
			     "\r\n";
static const char body[] = "Hi.\r\n\r\nWe lost the game.  Are you  hungry yet?\r\n\r\nJoe.\r\n\r\n";

static EVP_PKEY *rsa_key, *ed_key;

static int setup(void **state)
{
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return rsa_key != NULL && ed_key != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ed_key);
	return 0;
}

/* Appends a DKIM-Signature of domain/selector with key over the message
   (header + body) to out. */
static void sign(struct buf *out, EVP_PKEY *key, const char *domain, const char *selector, const char *hdr,
		 const char *bdy)
{
	unsigned char bh[32];
	struct dkim_body_hash *h = dkim_body_hash_new(DKIM_CANON_RELAXED);
	dkim_body_hash_update(h, bdy, strlen(bdy));
	dkim_body_hash_final(h, bh);
	dkim_body_hash_free(&h);
	struct dkim_sign_params p = {domain, selector, key, 1528637909};
	const char *error;
	assert_int_equal(dkim_sign(out, &p, hdr, strlen(hdr), bh, &error), 0);
}

static char *record_of(EVP_PKEY *key)
{
	struct buf r = BUF_INIT;
	const char *error;
	assert_int_equal(dkim_key_record(&r, key, &error), 0);
	return buf_steal(&r);
}

/* Runs a checker over hdr and bdy (fed step bytes at a time); every key
   gets answer(i) as its TXT records.  Returns the checker, finished. */
typedef void answer_fn(struct dkim_check *c, size_t i);
static struct dkim_check *check(const char *hdr, const char *bdy, size_t step, answer_fn *answer)
{
	struct dkim_check *c = dkim_check_new((int64_t)time(NULL));
	dkim_check_header(c, hdr, strlen(hdr));
	for (size_t i = 0; answer != NULL && i < dkim_check_key_count(c); i++)
		answer(c, i);
	for (size_t i = 0; i < strlen(bdy); i += step)
		dkim_check_body(c, bdy + i, strlen(bdy) - i < step ? strlen(bdy) - i : step);
	dkim_check_finish(c);
	return c;
}

static void answer_keys(struct dkim_check *c, size_t i)
{
	const char *name = dkim_check_key_name(c, i);
	char *record = record_of(strncmp(name, "ed", 2) == 0 ? ed_key : rsa_key);
	/* a record of another kind first: the key record is picked */
	const char *records[] = {"v=spf1 -all", record};
	size_t lens[] = {11, strlen(record)};
	dkim_check_key(c, i, DKIM_KEY_FOUND, records, lens, 2);
	free(record);
}

static void answer_none(struct dkim_check *c, size_t i)
{
	dkim_check_key(c, i, DKIM_KEY_NONE, NULL, NULL, 0);
}

static void answer_tempfail(struct dkim_check *c, size_t i)
{
	dkim_check_key(c, i, DKIM_KEY_TEMPFAIL, NULL, NULL, 0);
}

static void answer_junk(struct dkim_check *c, size_t i)
{
	const char *records[] = {"not a key", "v=DKIM1; p=\0hidden"};
	size_t lens[] = {9, 19};
	dkim_check_key(c, i, DKIM_KEY_FOUND, records, lens, 2);
}

/* "rsa" over "ed": two signatures, the Ed25519 one on top. */
static char *signed_header(void)
{
	struct buf m = BUF_INIT;
	sign(&m, rsa_key, "football.example.com", "rsa1", header, body);
	buf_append_str(&m, header);
	char *once = buf_steal(&m);
	sign(&m, ed_key, "football.example.com", "ed1", once, body);
	buf_append_str(&m, once);
	free(once);
	return buf_steal(&m);
}

static void test_pass_both_algorithms(void **state)
{
	char *hdr = signed_header();
	for (size_t step = 1; step <= strlen(body); step += 13) {
		struct dkim_check *c = check(hdr, body, step, answer_keys);
		assert_int_equal(dkim_check_key_count(c), 2);
		assert_string_equal(dkim_check_key_name(c, 0), "ed1._domainkey.football.example.com");
		assert_string_equal(dkim_check_key_name(c, 1), "rsa1._domainkey.football.example.com");
		size_t n;
		unsigned int unchecked;
		const struct dkim_check_result *r = dkim_check_results(c, &n, &unchecked);
		assert_int_equal(n, 2);
		assert_int_equal(unchecked, 0);
		assert_int_equal(r[0].result, DKIM_PASS);
		assert_null(r[0].reason);
		assert_string_equal(r[0].alg, "ed25519-sha256");
		assert_string_equal(r[0].selector, "ed1");
		assert_string_equal(r[0].domain, "football.example.com");
		assert_null(r[0].auid); /* no i= in the signature */
		assert_int_equal(strlen(r[0].b), 8);
		assert_int_equal(r[1].result, DKIM_PASS);
		assert_string_equal(r[1].alg, "rsa-sha256");
		/* header.b tells them apart: the start of each b= */
		const char *b = strstr(strstr(hdr, "a=rsa-sha256"), " b=") + 3;
		assert_memory_equal(r[1].b, b, 8);
		assert_string_not_equal(r[0].b, r[1].b);
		dkim_check_free(&c);
		assert_null(c);
	}
	free(hdr);
}

static void test_fail_and_errors(void **state)
{
	char *hdr = signed_header();
	size_t n;
	/* one body byte changed: both fail on the body hash */
	char *changed = xstrdup(body);
	strstr(changed, "hungry")[0] = 'H';
	struct dkim_check *c = check(hdr, changed, 7, answer_keys);
	const struct dkim_check_result *r = dkim_check_results(c, &n, NULL);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].result, DKIM_FAIL);
	assert_string_equal(r[0].reason, "body hash did not verify");
	assert_int_equal(r[1].result, DKIM_FAIL);
	dkim_check_free(&c);
	free(changed);
	/* one signed header changed */
	char *hdr2 = xstrdup(hdr);
	strstr(hdr2, "Subject: Is")[9] = 'i';
	c = check(hdr2, body, 100, answer_keys);
	r = dkim_check_results(c, &n, NULL);
	assert_int_equal(r[0].result, DKIM_FAIL);
	assert_string_equal(r[0].reason, "signature did not verify");
	dkim_check_free(&c);
	free(hdr2);

	static const struct {
		answer_fn *answer;
		enum dkim_result result;
		const char *reason;
	} cases[] = {
	    {answer_none, DKIM_PERMERROR, "no key record"},
	    {answer_tempfail, DKIM_TEMPERROR, "key lookup failed"},
	    {NULL, DKIM_TEMPERROR, "key lookup timed out"},
	    {answer_junk, DKIM_PERMERROR, NULL},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		c = check(hdr, body, 100, cases[i].answer);
		r = dkim_check_results(c, &n, NULL);
		assert_int_equal(n, 2);
		assert_int_equal(r[0].result, cases[i].result);
		assert_int_equal(r[1].result, cases[i].result);
		if (cases[i].reason != NULL)
			assert_string_equal(r[0].reason, cases[i].reason);
		dkim_check_free(&c);
	}
	free(hdr);
}

static void test_no_signature(void **state)
{
	struct dkim_check *c = check(header, body, 100, NULL);
	size_t n;
	unsigned int unchecked;
	dkim_check_results(c, &n, &unchecked);
	assert_int_equal(n, 0);
	assert_int_equal(unchecked, 0);
	assert_int_equal(dkim_check_key_count(c), 0);
	struct buf ar = BUF_INIT;
	dkim_check_authres(c, &ar, "mx.example.org");
	assert_string_equal(ar.data, "Authentication-Results: mx.example.org;\r\n\tdkim=none\r\n");
	buf_free(&ar);
	dkim_check_free(&c);
}

/* Twenty signatures of two keys: the first 8 from the top are checked,
   with 2 lookups; the rest are counted. */
static void test_bounded(void **state)
{
	struct buf m = BUF_INIT;
	buf_append_str(&m, header);
	for (int i = 0; i < 20; i++) {
		struct buf next = BUF_INIT;
		sign(&next, i % 2 ? ed_key : rsa_key, "football.example.com", i % 2 ? "ed1" : "rsa1", m.data,
		     body);
		buf_append(&next, m.data, m.len);
		buf_free(&m);
		m = next;
	}
	struct dkim_check *c = check(m.data, body, 4096, answer_keys);
	assert_int_equal(dkim_check_key_count(c), 2);
	size_t n;
	unsigned int unchecked;
	const struct dkim_check_result *r = dkim_check_results(c, &n, &unchecked);
	assert_int_equal(n, DKIM_CHECK_MAX_SIGNATURES);
	assert_int_equal(unchecked, 20 - DKIM_CHECK_MAX_SIGNATURES);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(r[i].result, DKIM_PASS);
	struct buf ar = BUF_INIT;
	dkim_check_authres(c, &ar, "mx.example.org");
	assert_non_null(strstr(ar.data, ";\r\n\tdkim=policy reason=\"12 more signatures not checked\"\r\n"));
	buf_free(&ar);
	dkim_check_free(&c);
	buf_free(&m);
}

/* Broken signatures are reported with what can be read of them, and need
   no lookup. */
static void test_broken_signatures(void **state)
{
	const char *hdr =
	    "DKIM-Signature: v=1; a=rsa-sha1; d=Example.COM; s=sel; h=from; bh=x; b=abc def/ghij\r\n"
	    "DKIM-Signature: v=1; a=rsa-sha256; d=ex ample.com; s=sel; h=from; bh=x; b=x\r\n"
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=a\\b; h=from; "
	    "bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=AAAA\r\n"
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=to; "
	    "bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=AAAA\r\n"
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from; l=10; "
	    "bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=AAAA\r\n"
	    "DKIM-Signature: no tags at all\r\n"
	    "From: a@example.com\r\n\r\n";
	struct dkim_check *c = check(hdr, "", 1, NULL);
	assert_int_equal(dkim_check_key_count(c), 0);
	size_t n;
	const struct dkim_check_result *r = dkim_check_results(c, &n, NULL);
	assert_int_equal(n, 6);
	assert_int_equal(r[0].result, DKIM_NEUTRAL);
	assert_string_equal(r[0].reason, "unsupported algorithm");
	assert_string_equal(r[0].domain, "example.com");
	assert_string_equal(r[0].alg, "rsa-sha1");
	assert_string_equal(r[0].b, "abcdef/g"); /* whitespace skipped */
	assert_null(r[1].domain);                /* not a domain name: not reported */
	assert_string_equal(r[2].reason, "d= or s= is not a domain name");
	assert_null(r[2].selector);
	assert_string_equal(r[3].reason, "From is not signed");
	assert_int_equal(r[4].result, DKIM_POLICY);
	assert_null(r[5].domain);
	assert_int_equal(r[5].result, DKIM_NEUTRAL);
	dkim_check_free(&c);
}

/* A public RSA key from n and e, as a key record. */
static char *rsa_record(const BIGNUM *n, const BIGNUM *e)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *key = NULL;
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);
	char *record = record_of(key);
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return record;
}

static char *given_record;

static void answer_given(struct dkim_check *c, size_t i)
{
	const char *records[] = {given_record};
	size_t lens[] = {strlen(given_record)};
	dkim_check_key(c, i, DKIM_KEY_FOUND, records, lens, 1);
}

/* Keys that would cost more to verify than real ones are refused before
   any arithmetic: a modulus above 8192 bits, a huge public exponent. */
static void test_costly_keys(void **state)
{
	struct buf m = BUF_INIT;
	sign(&m, rsa_key, "example.com", "sel", header, body);
	buf_append_str(&m, header);
	BIGNUM *n = NULL, *e = BN_new(), *big = BN_new();
	assert_int_equal(EVP_PKEY_get_bn_param(rsa_key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	/* the real modulus with e = 2^40 + 1 */
	BN_set_bit(e, 40);
	BN_set_bit(e, 0);
	given_record = rsa_record(n, e);
	struct dkim_check *c = check(m.data, body, 100, answer_given);
	size_t count;
	const struct dkim_check_result *r = dkim_check_results(c, &count, NULL);
	assert_int_equal(r[0].result, DKIM_POLICY);
	assert_string_equal(r[0].reason, "the RSA key is too large to verify");
	dkim_check_free(&c);
	free(given_record);
	/* a 10000-bit modulus with e = 65537 */
	BN_set_word(e, 65537);
	BN_rand(big, 10000, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD);
	given_record = rsa_record(big, e);
	c = check(m.data, body, 100, answer_given);
	r = dkim_check_results(c, &count, NULL);
	assert_int_equal(r[0].result, DKIM_POLICY);
	dkim_check_free(&c);
	free(given_record);
	BN_free(n);
	BN_free(e);
	BN_free(big);
	buf_free(&m);
}

/* DER length octets for n (long form for 128 and more). */
static void der_len(struct buf *out, size_t n)
{
	if (n < 128) {
		buf_append_char(out, (char)n);
		return;
	}
	buf_append_char(out, (char)0x82);
	buf_append_char(out, (char)(n >> 8));
	buf_append_char(out, (char)(n & 0xff));
}

/* "v=DKIM1; p=..." of a SubjectPublicKeyInfo built around the PKCS#1 key
   of rsa_key: with the algorithm's NULL parameters or without, with the
   given OID's last octet, unused bits and trailing octets. */
static char *spki_record(bool null_params, unsigned char oid_last, unsigned char unused, size_t trailing)
{
	unsigned char *pkcs1 = NULL;
	int klen = i2d_PublicKey(rsa_key, &pkcs1);
	const unsigned char oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, oid_last};
	struct buf alg = BUF_INIT, bits = BUF_INIT, seq = BUF_INIT, spki = BUF_INIT, rec = BUF_INIT;
	buf_append(&alg, "\x06\x09", 2);
	buf_append(&alg, oid, sizeof(oid));
	if (null_params)
		buf_append(&alg, "\x05\x00", 2);
	buf_append_char(&seq, 0x30);
	der_len(&seq, alg.len);
	buf_append(&seq, alg.data, alg.len);
	buf_append_char(&bits, 0x03);
	der_len(&bits, (size_t)klen + 1);
	buf_append_char(&bits, (char)unused);
	buf_append(&bits, pkcs1, (size_t)klen);
	buf_append(&seq, bits.data, bits.len);
	buf_append_char(&spki, 0x30);
	der_len(&spki, seq.len);
	buf_append(&spki, seq.data, seq.len);
	for (size_t i = 0; i < trailing; i++)
		buf_append_char(&spki, 0);
	buf_append_str(&rec, "v=DKIM1; p=");
	base64_encode(&rec, spki.data, spki.len);
	OPENSSL_free(pkcs1);
	buf_free(&alg);
	buf_free(&bits);
	buf_free(&seq);
	buf_free(&spki);
	return buf_steal(&rec);
}

/* The RSA key is read from the usual SubjectPublicKeyInfo, with or
   without NULL parameters, and from a bare PKCS#1 RSAPublicKey; anything
   else in the wrapper is refused. */
static void test_rsa_key_encodings(void **state)
{
	struct buf m = BUF_INIT;
	sign(&m, rsa_key, "example.com", "sel", header, body);
	buf_append_str(&m, header);
	unsigned char *pkcs1 = NULL;
	int klen = i2d_PublicKey(rsa_key, &pkcs1);
	struct buf bare = BUF_INIT;
	buf_append_str(&bare, "v=DKIM1; k=rsa; p=");
	base64_encode(&bare, pkcs1, (size_t)klen);
	OPENSSL_free(pkcs1);
	struct {
		char *record;
		enum dkim_result result;
	} cases[] = {
	    {record_of(rsa_key), DKIM_PASS},
	    {spki_record(true, 0x01, 0, 0), DKIM_PASS},
	    {spki_record(false, 0x01, 0, 0), DKIM_PASS},
	    {buf_steal(&bare), DKIM_PASS},
	    {spki_record(true, 0x0a, 0, 0), DKIM_PERMERROR}, /* RSASSA-PSS */
	    {spki_record(true, 0x01, 1, 0), DKIM_PERMERROR}, /* not whole octets */
	    {spki_record(true, 0x01, 0, 1), DKIM_PERMERROR}, /* trailing octet */
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		given_record = cases[i].record;
		struct dkim_check *c = check(m.data, body, 100, answer_given);
		size_t n;
		const struct dkim_check_result *r = dkim_check_results(c, &n, NULL);
		if (r[0].result != cases[i].result)
			fail_msg("case %zu: %s (%s)", i, dkim_result_name(r[0].result), r[0].reason);
		dkim_check_free(&c);
		free(cases[i].record);
	}
	buf_free(&m);
}

static void test_authres(void **state)
{
	char *hdr = signed_header();
	struct dkim_check *c = check(hdr, body, 100, answer_keys);
	struct buf ar = BUF_INIT;
	dkim_check_authres(c, &ar, "mx.example.org");
	size_t n;
	const struct dkim_check_result *r = dkim_check_results(c, &n, NULL);
	/* b= values are quoted when they hold tspecials: '/' or '=' */
	char b[2][16];
	for (int i = 0; i < 2; i++)
		snprintf(b[i], sizeof(b[i]), strpbrk(r[i].b, "/=") != NULL ? "\"%s\"" : "%s", r[i].b);
	struct buf want = BUF_INIT;
	buf_printf(&want,
		   "Authentication-Results: mx.example.org;\r\n"
		   "\tdkim=pass header.d=football.example.com header.s=ed1 header.a=ed25519-sha256\r\n"
		   "\theader.b=%s;\r\n"
		   "\tdkim=pass header.d=football.example.com header.s=rsa1 header.a=rsa-sha256\r\n"
		   "\theader.b=%s\r\n",
		   b[0], b[1]);
	const char *w = want.data;
	assert_string_equal(ar.data, w);
	buf_free(&want);
	buf_free(&ar);
	dkim_check_free(&c);
	free(hdr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pass_both_algorithms), cmocka_unit_test(test_fail_and_errors),
	    cmocka_unit_test(test_no_signature),         cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_broken_signatures),    cmocka_unit_test(test_costly_keys),
	    cmocka_unit_test(test_rsa_key_encodings),    cmocka_unit_test(test_authres),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
