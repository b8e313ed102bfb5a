/* DKIM: canonicalization (RFC 6376 3.4, with its example of 3.4.5), the
   tag-list parser, and signatures made and checked with both algorithms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "lib/xalloc.h"
#include "mime/base64.h"
#include "trust/dkim.h"

#include <openssl/evp.h>
#include <string.h>
#include <time.h>

static char *canon_header(enum dkim_canon c, const char *field)
{
	struct buf out = BUF_INIT;
	dkim_canon_header(&out, c, field, strlen(field));
	return buf_steal(&out);
}

static void test_canon_header(void **state)
{
	(void)state;
	static const struct {
		enum dkim_canon canon;
		const char *in, *out;
	} cases[] = {
	    /* RFC 6376 3.4.5 */
	    {DKIM_CANON_RELAXED, "A: X\r\n", "a:X\r\n"},
	    {DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n"},
	    {DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  \r\n", "B : Y\t\r\n\tZ  \r\n"},
	    /* no value at all, and whitespace only */
	    {DKIM_CANON_RELAXED, "Subject:\r\n", "subject:\r\n"},
	    {DKIM_CANON_RELAXED, "SUBJECT:   \t \r\n", "subject:\r\n"},
	    /* a bare LF folding line unfolds as well */
	    {DKIM_CANON_RELAXED, "To: a@b,\n  c@d\n", "to:a@b, c@d\r\n"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *s = canon_header(cases[i].canon, cases[i].in);
		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

/* The canonical body, found by hashing and comparing with the hash of the
   expected text; fed in pieces of every size to exercise the held state. */
static void check_body(enum dkim_canon c, const char *body, const char *expected)
{
	unsigned char want[32], got[32];
	unsigned int n = 32;
	EVP_Digest(expected, strlen(expected), want, &n, EVP_sha256(), NULL);
	size_t len = strlen(body);
	for (size_t step = 1; step <= len + 1; step++) {
		struct dkim_body_hash *bh = dkim_body_hash_new(c);
		for (size_t i = 0; i < len; i += step)
			dkim_body_hash_update(bh, body + i, len - i < step ? len - i : step);
		dkim_body_hash_final(bh, got);
		dkim_body_hash_free(&bh);
		if (memcmp(want, got, 32) != 0)
			fail_msg("body %s, canon %d, step %zu: not \"%s\"", body, c, step, expected);
	}
}

static void test_canon_body(void **state)
{
	(void)state;
	/* RFC 6376 3.4.5 */
	check_body(DKIM_CANON_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n");
	check_body(DKIM_CANON_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n");
	/* empty bodies: simple is one CRLF, relaxed nothing (3.4.3, 3.4.4) */
	check_body(DKIM_CANON_SIMPLE, "", "\r\n");
	check_body(DKIM_CANON_RELAXED, "", "");
	check_body(DKIM_CANON_SIMPLE, "\r\n\r\n", "\r\n");
	check_body(DKIM_CANON_RELAXED, "\r\n \t\r\n", "");
	/* a missing final CRLF is added */
	check_body(DKIM_CANON_SIMPLE, "abc", "abc\r\n");
	check_body(DKIM_CANON_RELAXED, "abc  ", "abc\r\n");
	/* empty lines inside are kept, bare LF ends lines, a lone CR is data */
	check_body(DKIM_CANON_RELAXED, "a\n\n \nb\n", "a\r\n\r\n\r\nb\r\n");
	check_body(DKIM_CANON_SIMPLE, "a\rb\r\n\r", "a\rb\r\n\r\r\n");
	check_body(DKIM_CANON_RELAXED, "a\r \r\n", "a\r\r\n");
}

static void test_tags(void **state)
{
	(void)state;
	struct dkim_tags t;
	const char *error;
	const char *text = " v=1; a = rsa-sha256 ;\r\n\th=from:\r\n to; b=ab\r\n cd;";
	assert_int_equal(dkim_tags_parse(&t, text, strlen(text), &error), 0);
	assert_int_equal(t.count, 4);
	const struct dkim_tag *a = dkim_tags_get(&t, "a");
	assert_non_null(a);
	assert_int_equal(a->value_len, 10);
	assert_memory_equal(a->value, "rsa-sha256", 10);
	const struct dkim_tag *b = dkim_tags_get(&t, "b");
	assert_int_equal(b->value_len, 7);   /* "ab\r\n cd" */
	assert_null(dkim_tags_get(&t, "A")); /* names are case-sensitive */
	/* an empty value is a value */
	assert_int_equal(dkim_tags_parse(&t, "p=", 2, &error), 0);
	assert_int_equal(t.tag[0].value_len, 0);

	static const char *const bad[] = {
	    "",           /* no tag */
	    ";",          /* empty spec */
	    "a=1;;b=2",   /* empty spec inside */
	    "1a=2",       /* name starts with a digit */
	    "a",          /* no '=' */
	    "a=1; a=2",   /* duplicate */
	    "a=\x01",     /* control character */
	    "a=\xc3\xa9", /* 8-bit */
	    "a-b=1",      /* '-' in a name */
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		if (dkim_tags_parse(&t, bad[i], strlen(bad[i]), &error) == 0)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_non_null(error);
	}
	struct buf many = BUF_INIT;
	for (int i = 0; i <= DKIM_MAX_TAGS; i++)
		buf_printf(&many, "t%d=x;", i);
	assert_int_equal(dkim_tags_parse(&t, many.data, many.len, &error), -1);
	buf_free(&many);
}

static const char message[] = "From: Joe SixPack <joe@football.example.com>\r\n"
			      "To: Suzie Q <suzie@shopping.example.net>\r\n"
			      "Subject: Is dinner ready?\r\n"
			      "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
			      "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
			      "X-Unsigned: anything\r\n"
			      "\r\n"
			      "Hi.\r\n"
			      "\r\n"
			      "We lost the game.  Are you hungry yet?\r\n"
			      "\r\n"
			      "Joe.\r\n";

static void body_hash(enum dkim_canon c, const char *msg, unsigned char out[32])
{
	const char *body = strstr(msg, "\r\n\r\n") + 4;
	struct dkim_body_hash *bh = dkim_body_hash_new(c);
	dkim_body_hash_update(bh, body, strlen(body));
	dkim_body_hash_final(bh, out);
	dkim_body_hash_free(&bh);
}

/* Signs msg, then verifies the signed message (the signature field on top)
   after edit() had a chance to change it; returns the verdict. */
static enum dkim_result sign_and_verify(EVP_PKEY *key, const char *msg, void (*edit)(struct buf *m))
{
	unsigned char bh[32];
	body_hash(DKIM_CANON_RELAXED, msg, bh);
	struct dkim_sign_params p = {"football.example.com", "brisbane", key, 1528637909};
	struct buf signed_msg = BUF_INIT;
	const char *error = NULL;
	size_t header_len = (size_t)(strstr(msg, "\r\n\r\n") + 4 - msg);
	assert_int_equal(dkim_sign(&signed_msg, &p, msg, header_len, bh, &error), 0);
	size_t sig_len = signed_msg.len;
	/* the field is folded into lines of at most 78 characters */
	for (const char *l = signed_msg.data; l < signed_msg.data + sig_len;) {
		const char *e = strstr(l, "\r\n");
		assert_true(e - l <= 78);
		l = e + 2;
	}
	buf_append_str(&signed_msg, msg);
	if (edit != NULL)
		edit(&signed_msg);
	char *copy = xstrdup(buf_cstr(&signed_msg));
	char *sep = strstr(copy, "\r\n\r\n");
	sig_len = (size_t)(strstr(copy, "\r\nFrom:") + 2 - copy);

	struct dkim_signature sig;
	enum dkim_result r = dkim_signature_parse(&sig, copy, sig_len, time(NULL), &error);
	assert_int_equal(r, DKIM_PASS);
	assert_string_equal(sig.domain, "football.example.com");
	assert_string_equal(sig.selector, "brisbane");
	assert_int_equal(sig.timestamp, 1528637909);
	struct buf record = BUF_INIT;
	assert_int_equal(dkim_key_record(&record, key, &error), 0);
	body_hash(sig.body_canon, copy, bh);
	r = dkim_verify(&sig, copy, (size_t)(sep + 4 - copy), bh, buf_cstr(&record), &error);
	dkim_signature_free(&sig);
	buf_free(&record);
	buf_free(&signed_msg);
	free(copy);
	return r;
}

static void change_body(struct buf *m)
{
	char *p = strstr(m->data, "hungry");
	p[0] = 'H';
}

static void change_subject(struct buf *m)
{
	char *p = strstr(m->data, "Subject: Is");
	p[9] = 'i';
}

static void change_unsigned(struct buf *m)
{
	char *p = strstr(m->data, "X-Unsigned: anything");
	p[12] = 'A';
}

static void refold_signed(struct buf *m)
{
	/* relaxed: "Subject: Is dinner ready?" -> "Subject:  Is\r\n dinner ready?" */
	char *p = strstr(m->data, "Subject: Is dinner");
	struct buf n = BUF_INIT;
	buf_append(&n, m->data, (size_t)(p - m->data));
	buf_append_str(&n, "Subject:  Is\r\n dinner");
	buf_append_str(&n, p + strlen("Subject: Is dinner"));
	buf_free(m);
	*m = n;
}

static void add_from(struct buf *m)
{
	/* a second From below the signature: From is over-signed */
	char *p = strstr(m->data, "\r\nFrom:") + 2;
	struct buf n = BUF_INIT;
	buf_append(&n, m->data, (size_t)(p - m->data));
	buf_append_str(&n, "From: Evil <evil@example.org>\r\n");
	buf_append_str(&n, p);
	buf_free(m);
	*m = n;
}

static void test_sign_verify(void **state)
{
	(void)state;
	EVP_PKEY *keys[] = {EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
			    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")};
	for (size_t i = 0; i < N_ELEMENTS(keys); i++) {
		assert_non_null(keys[i]);
		assert_int_equal(sign_and_verify(keys[i], message, NULL), DKIM_PASS);
		assert_int_equal(sign_and_verify(keys[i], message, change_unsigned), DKIM_PASS);
		assert_int_equal(sign_and_verify(keys[i], message, refold_signed), DKIM_PASS);
		assert_int_equal(sign_and_verify(keys[i], message, change_body), DKIM_FAIL);
		assert_int_equal(sign_and_verify(keys[i], message, change_subject), DKIM_FAIL);
		assert_int_equal(sign_and_verify(keys[i], message, add_from), DKIM_FAIL);
		EVP_PKEY_free(keys[i]);
	}
}

static void test_key_records(void **state)
{
	(void)state;
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct buf r = BUF_INIT;
	const char *error;
	assert_int_equal(dkim_key_record(&r, ed, &error), 0);
	/* RFC 8463 4: the raw 32-byte key, 44 base64 characters */
	assert_int_equal(strncmp(r.data, "v=DKIM1; k=ed25519; p=", 22), 0);
	assert_int_equal(r.len, 22 + 44);
	buf_free(&r);
	EVP_PKEY_free(ed);

	/* verdicts from broken or refusing key records */
	static const char sig_text[] = "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; "
				       "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA";
	struct dkim_signature sig;
	assert_int_equal(dkim_signature_parse(&sig, sig_text, strlen(sig_text), 0, &error), DKIM_PASS);
	unsigned char bh[32] = {0};
	static const struct {
		const char *record;
		enum dkim_result r;
	} cases[] = {
	    {NULL, DKIM_PERMERROR},
	    {"v=DKIM1; p=", DKIM_PERMERROR},                /* revoked */
	    {"v=DKIM1; k=ed25519; p=AAAA", DKIM_PERMERROR}, /* type mismatch */
	    {"p=AAAA; v=DKIM1", DKIM_PERMERROR},            /* v= not first */
	    {"v=DKIM1; h=sha1; p=AAAA", DKIM_PERMERROR},
	    {"v=DKIM1; s=other; p=AAAA", DKIM_PERMERROR},
	    {"v=DKIM1; p=!!!", DKIM_PERMERROR},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		enum dkim_result got =
		    dkim_verify(&sig, "From: a@example.com\r\n\r\n", 24, bh, cases[i].record, &error);
		if (got != cases[i].r)
			fail_msg("record %s: %s, not %s", cases[i].record ? cases[i].record : "(none)",
				 dkim_result_name(got), dkim_result_name(cases[i].r));
	}
	/* a 512-bit RSA key verifies nothing (RFC 8301 3.2) */
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	assert_non_null(small);
	assert_int_equal(dkim_key_record(&r, small, &error), 0);
	assert_int_equal(dkim_verify(&sig, "From: a@example.com\r\n\r\n", 24, bh, buf_cstr(&r), &error),
			 DKIM_POLICY);
	buf_free(&r);
	EVP_PKEY_free(small);
	dkim_signature_free(&sig);
}

static void test_signature_parse(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		enum dkim_result r;
	} cases[] = {
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=From:To; bh=%s; b=AAAA", DKIM_PASS},
	    {"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed; d=example.com; s=s; h=from; bh=%s; b=AAAA",
	     DKIM_PASS},
	    {"DKIM-Signature: v=1; a=rsa-sha1; d=example.com; s=s; h=from; bh=%s; b=AAAA", DKIM_NEUTRAL},
	    {"DKIM-Signature: v=2; a=rsa-sha256; d=example.com; s=s; h=from; bh=%s; b=AAAA", DKIM_NEUTRAL},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=to; bh=%s; b=AAAA", DKIM_NEUTRAL},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", DKIM_NEUTRAL},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=%s", DKIM_NEUTRAL},
	    {"DKIM-Signature: v=1; a=rsa-sha256; c=fancy/simple; d=example.com; s=s; h=from; bh=%s; b=AAAA",
	     DKIM_NEUTRAL},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; i=joe@other.com; bh=%s; b=AAAA",
	     DKIM_NEUTRAL},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; i=joe@sub.example.com; bh=%s; "
	     "b=AAAA",
	     DKIM_PASS},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; l=10; bh=%s; b=AAAA",
	     DKIM_POLICY},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; t=100; x=200; bh=%s; b=AAAA",
	     DKIM_POLICY}, /* expired */
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; t=300; x=200; bh=%s; b=AAAA",
	     DKIM_NEUTRAL},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from;; bh=%s; b=AAAA", DKIM_NEUTRAL},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *text = xasprintf(cases[i].text, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
		struct dkim_signature sig;
		const char *error = NULL;
		enum dkim_result r = dkim_signature_parse(&sig, text, strlen(text), 1000, &error);
		if (r != cases[i].r)
			fail_msg("%s: %s (%s)", text, dkim_result_name(r), error ? error : "");
		if (r == DKIM_PASS) {
			assert_true(sig.nheaders >= 1);
			assert_string_equal(sig.headers[0], "from");
			dkim_signature_free(&sig);
		}
		free(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_canon_header), cmocka_unit_test(test_canon_body),
	    cmocka_unit_test(test_tags),         cmocka_unit_test(test_sign_verify),
	    cmocka_unit_test(test_key_records),  cmocka_unit_test(test_signature_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
