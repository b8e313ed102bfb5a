/* SipHash-1-3 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
   2012; one compression and three finalization rounds as in Python and
   Rust's hash tables) over bytes that are fed one at a time, so that a
   case-folding variant needs no copy of its input. */
#include "lib/hash.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

static uint64_t hash_key[2];
static pthread_once_t hash_key_once = PTHREAD_ONCE_INIT;

static void hash_key_init(void)
{
	if (getrandom(hash_key, sizeof(hash_key), 0) != (ssize_t)sizeof(hash_key)) {
		/* Without the entropy pool: still unknown from outside. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		hash_key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid();
		hash_key[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
	}
}

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

struct siphash {
	uint64_t v0, v1, v2, v3;
	uint64_t m; /* bytes of the current word, little-endian */
	size_t len;
};

static void sip_round(struct siphash *h)
{
	h->v0 += h->v1;
	h->v1 = ROTL(h->v1, 13);
	h->v1 ^= h->v0;
	h->v0 = ROTL(h->v0, 32);
	h->v2 += h->v3;
	h->v3 = ROTL(h->v3, 16);
	h->v3 ^= h->v2;
	h->v0 += h->v3;
	h->v3 = ROTL(h->v3, 21);
	h->v3 ^= h->v0;
	h->v2 += h->v1;
	h->v1 = ROTL(h->v1, 17);
	h->v1 ^= h->v2;
	h->v2 = ROTL(h->v2, 32);
}

static void sip_init(struct siphash *h)
{
	pthread_once(&hash_key_once, hash_key_init);
	h->v0 = hash_key[0] ^ 0x736f6d6570736575u;
	h->v1 = hash_key[1] ^ 0x646f72616e646f6du;
	h->v2 = hash_key[0] ^ 0x6c7967656e657261u;
	h->v3 = hash_key[1] ^ 0x7465646279746573u;
	h->m = 0;
	h->len = 0;
}

static void sip_word(struct siphash *h, uint64_t m)
{
	h->v3 ^= m;
	sip_round(h);
	h->v0 ^= m;
}

static inline void sip_byte(struct siphash *h, unsigned char c)
{
	h->m |= (uint64_t)c << (8 * (h->len & 7));
	if ((++h->len & 7) == 0) {
		sip_word(h, h->m);
		h->m = 0;
	}
}

static uint64_t sip_final(struct siphash *h)
{
	sip_word(h, h->m | (uint64_t)(h->len & 0xff) << 56);
	h->v2 ^= 0xff;
	sip_round(h);
	sip_round(h);
	sip_round(h);
	return h->v0 ^ h->v1 ^ h->v2 ^ h->v3;
}

uint64_t hash_mem(const void *data, size_t len)
{
	const unsigned char *p = data;
	struct siphash h;
	sip_init(&h);
	for (size_t i = 0; i < len; i++)
		sip_byte(&h, p[i]);
	return sip_final(&h);
}

uint64_t hash_str(const char *s)
{
	return hash_mem(s, strlen(s));
}

uint64_t hash_str_icase(const char *s)
{
	struct siphash h;
	sip_init(&h);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		sip_byte(&h, c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return sip_final(&h);
}

void hash_digest_id(char *out, char prefix, const void *data, size_t len, size_t bytes)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	if (bytes > sizeof(md))
		bytes = sizeof(md);
	out[0] = prefix;
	for (size_t i = 0; i < bytes; i++) {
		out[1 + 2 * i] = "0123456789abcdef"[md[i] >> 4];
		out[2 + 2 * i] = "0123456789abcdef"[md[i] & 15];
	}
	out[1 + 2 * bytes] = '\0';
}
