/* bench/dkim_verify_bench: the CPU cost of checking one inbound message's
   DKIM signature in-process, without DNS: what the verifier filter does
   (hold the header and body, dkim_check of the header, the body hash as
   it streams in 4 KiB pieces, the key, the verification, the
   Authentication-Results field, the header scanned again for forged
   fields), against the raw public-key operation alone (EVP_DigestVerify
   on the same input, with a key in use already, as `openssl speed` does).
   A 10 KB message signed relaxed/relaxed by dkim_sign(), for RSA-2048 and
   Ed25519; the key is either the one cached by an earlier message
   ("cached", the usual case) or read from its record for this message
   ("record", a cache miss, DNS excepted).  Prints the median of RUNS runs
   of ITER messages as
     ALG KEY total_us=... crypto_us=... overhead_us=...
   Not part of the test suite (bench/dkim runs it). */
#include "delivery/delivery_hold.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/header.h"
#include "trust/authres.h"
#include "trust/dkim_check.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef RUNS
#define RUNS 5
#endif
#ifndef ITER
#define ITER 2000
#endif

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* A 10 KB message as it reaches the verifier: our Received on top, the
   sender's signature, a usual header block, text lines. */
static void make_message(EVP_PKEY *key, struct buf *hdr, struct buf *body)
{
	struct buf h = BUF_INIT;
	buf_append_str(&h, "From: Alice Example <alice@sender.example>\r\n"
			   "To: Bob <bob@b.example>\r\n"
			   "Subject: The quarterly figures, as promised\r\n"
			   "Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
			   "Message-ID: <20261206100000.12345@sender.example>\r\n"
			   "MIME-Version: 1.0\r\n"
			   "Content-Type: text/plain; charset=utf-8\r\n"
			   "Content-Transfer-Encoding: 8bit\r\n"
			   "X-Mailer: bench\r\n\r\n");
	for (int i = 0; body->len < 10 * 1024; i++)
		buf_printf(body, "Line %d of the message body, with  some words and   spaces in it.\r\n", i);
	unsigned char bh[32];
	struct dkim_body_hash *b = dkim_body_hash_new(DKIM_CANON_RELAXED);
	dkim_body_hash_update(b, body->data, body->len);
	dkim_body_hash_final(b, bh);
	dkim_body_hash_free(&b);
	struct dkim_sign_params p = {"sender.example", "sel", key, 1796551200};
	const char *error;
	buf_append_str(hdr, "Received: from mx.sender.example ([192.0.2.1])\r\n"
			    "\tby mx.b.example (postoffice) with ESMTPS id HOU0ZDON7000BFT0001\r\n"
			    "\tfor <bob@b.example>;\r\n\tSun, 6 Dec 2026 10:00:01 +0000\r\n");
	if (dkim_sign(hdr, &p, h.data, h.len, bh, &error) < 0) {
		fprintf(stderr, "sign: %s\n", error);
		exit(1);
	}
	buf_append(hdr, h.data, h.len);
	buf_free(&h);
}

/* What the verifier filter does for one message (minus writing it on);
   cached NULL: the key is read from record. */
static void check_message(const struct buf *msg, const char *record, const struct dkim_pubkey *cached)
{
	struct delivery_hold hold;
	delivery_hold_init(&hold);
	struct dkim_check *c = dkim_check_new(1796551300);
	for (size_t off = 0; off < msg->len; off += 4096) {
		size_t len = msg->len - off < 4096 ? msg->len - off : 4096;
		const char *p = msg->data + off;
		if (hold.state == DELIVERY_HOLD_HEADER) {
			size_t n = delivery_hold_header(&hold, p, len);
			p += n;
			len -= n;
			if (hold.state == DELIVERY_HOLD_BODY) {
				dkim_check_header(c, hold.header.data, hold.header.len);
				for (size_t i = 0; i < dkim_check_key_count(c); i++) {
					size_t rl = strlen(record);
					if (cached != NULL)
						dkim_check_key_given(c, i, cached);
					else
						dkim_check_key(c, i, DKIM_KEY_FOUND, &record, &rl, 1);
				}
			}
		}
		if (len > 0) {
			dkim_check_body(c, p, len);
			buf_append(&hold.body, p, len); /* delivery_hold_body in memory */
		}
	}
	dkim_check_finish(c);
	size_t n;
	if (dkim_check_results(c, &n, NULL)[0].result != DKIM_PASS) {
		fprintf(stderr, "the signature does not verify\n");
		exit(1);
	}
	struct buf ar = BUF_INIT;
	dkim_check_authres(c, &ar, "mx.b.example");
	/* emit_header: every field looked at for a forged one */
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, hold.header.data, hold.header.len, NULL);
	for (unsigned int i = 0; i < h->count; i++)
		if (authres_field_is_ours(h->fields[i].name, h->fields[i].name_len, h->fields[i].value,
					  h->fields[i].value_len, "mx.b.example"))
			exit(1);
	pool_destroy(&pool);
	buf_free(&ar);
	dkim_check_free(&c);
	delivery_hold_free(&hold);
}

/* The public-key operation alone, on an input of the size the header hash
   has (what dkim_verify hands to EVP_DigestVerify). */
static void crypto_only(EVP_PKEY *key, const unsigned char *sig, size_t siglen, const unsigned char *data,
			size_t len, int ed)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char digest[32];
	unsigned int dl = 32;
	if (ed) { /* ed25519-sha256 signs the SHA-256 of the input */
		EVP_Digest(data, len, digest, &dl, EVP_sha256(), NULL);
		data = digest;
		len = dl;
	}
	EVP_DigestVerifyInit(ctx, NULL, ed ? NULL : EVP_sha256(), NULL, key);
	if (EVP_DigestVerify(ctx, sig, siglen, data, len) != 1) {
		fprintf(stderr, "raw verify failed\n");
		exit(1);
	}
	EVP_MD_CTX_free(ctx);
}

static double median_us(void (*fn)(void *), void *arg)
{
	double runs[RUNS];
	for (int r = 0; r < RUNS; r++) {
		double t0 = now_us();
		for (int i = 0; i < ITER; i++)
			fn(arg);
		runs[r] = (now_us() - t0) / ITER;
	}
	qsort(runs, RUNS, sizeof(double), cmp_double);
	return runs[RUNS / 2];
}

struct bench {
	struct buf msg;
	char *record;
	struct dkim_pubkey pk, *cached;
	EVP_PKEY *key;
	unsigned char sig[512], input[1024];
	size_t siglen;
	int ed;
};

static void run_check(void *arg)
{
	struct bench *b = arg;
	check_message(&b->msg, b->record, b->cached);
}

static void run_crypto(void *arg)
{
	struct bench *b = arg;
	crypto_only(b->key, b->sig, b->siglen, b->input, sizeof(b->input), b->ed);
}

int main(void)
{
	const char *names[] = {"rsa-sha256", "ed25519-sha256"};
	for (int ed = 0; ed < 2; ed++) {
		struct bench b = {.ed = ed};
		b.key = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
			   : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		struct buf body = BUF_INIT, rec = BUF_INIT;
		make_message(b.key, &b.msg, &body);
		buf_append(&b.msg, body.data, body.len);
		const char *error;
		dkim_key_record(&rec, b.key, &error);
		b.record = buf_steal(&rec);
		/* a signature over the raw input, for the crypto-only loop */
		memset(b.input, 'x', sizeof(b.input));
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		unsigned char digest[32];
		unsigned int dl = 32;
		const unsigned char *data = b.input;
		size_t len = sizeof(b.input);
		if (ed) {
			EVP_Digest(b.input, sizeof(b.input), digest, &dl, EVP_sha256(), NULL);
			data = digest;
			len = dl;
		}
		b.siglen = sizeof(b.sig);
		EVP_DigestSignInit(ctx, NULL, ed ? NULL : EVP_sha256(), NULL, b.key);
		EVP_DigestSign(ctx, b.sig, &b.siglen, data, len);
		EVP_MD_CTX_free(ctx);

		dkim_pubkey_parse(&b.pk, b.record, strlen(b.record));
		double crypto = median_us(run_crypto, &b);
		for (int cached = 1; cached >= 0; cached--) {
			b.cached = cached ? &b.pk : NULL;
			double total = median_us(run_check, &b);
			printf("%s %s message=%zu total_us=%.1f crypto_us=%.1f overhead_us=%.1f\n", names[ed],
			       cached ? "cached" : "record", b.msg.len, total, crypto, total - crypto);
		}
		dkim_pubkey_free(&b.pk);
		buf_free(&b.msg);
		buf_free(&body);
		free(b.record);
		EVP_PKEY_free(b.key);
	}
	return 0;
}
