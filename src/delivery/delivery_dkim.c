/* The DKIM signer, a delivery filter (see delivery_dkim.h). */
#include "delivery/delivery_dkim.h"
#include "delivery/delivery_hold.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/header.h"
#include "trust/dkim_keys.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SIGNERS 4

struct signer {
	struct delivery_filter f;
	struct dkim_keyring *kr;
	int *signed_r;
	/* the message, held until finish(); pass: given up, passing */
	struct delivery_hold hold;
	bool pass;
	struct dkim_body_hash *bh; /* the body's, as it passes */
};

/* Gives up signing: what was held goes on, and everything after it. */
static int pass_through(struct signer *s, char **error_r)
{
	s->pass = true;
	int rc = delivery_filter_output(&s->f, s->hold.header.data, s->hold.header.len, error_r);
	buf_free(&s->hold.header);
	return rc;
}

static int signer_write(struct delivery_filter *f, const void *data, size_t len, char **error_r)
{
	struct signer *s = (struct signer *)f;
	const char *p = data;
	if (!s->pass && s->hold.state == DELIVERY_HOLD_HEADER) {
		size_t n = delivery_hold_header(&s->hold, p, len);
		p += n;
		len -= n;
		if (s->hold.state == DELIVERY_HOLD_OVERSIZE && pass_through(s, error_r) < 0)
			return -1;
	}
	if (s->pass)
		return delivery_filter_output(f, p, len, error_r);
	if (len == 0)
		return 0;
	dkim_body_hash_update(s->bh, p, len);
	return delivery_hold_body(&s->hold, f, p, len, error_r);
}

/* The domain of the first From: address, lowercased; NULL when none. */
static char *from_domain(const struct signer *s)
{
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, s->hold.header.data, s->hold.header.len, NULL);
	const struct mime_header_field *from = mime_headers_find(h, "From");
	char *domain = NULL;
	if (from != NULL && mime_headers_count(h, "From") == 1) {
		struct mime_address *a = mime_address_parse(pool, from->value, from->value_len);
		while (a != NULL && (a->flags & MIME_ADDR_GROUP_START) != 0)
			a = a->next;
		if (a != NULL && a->domain != NULL && dkim_name_valid(a->domain)) {
			domain = xstrdup(a->domain);
			for (char *c = domain; *c != '\0'; c++)
				*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		}
	}
	pool_destroy(&pool);
	return domain;
}

static int signer_finish(struct delivery_filter *f, char **error_r)
{
	struct signer *s = (struct signer *)f;
	if (s->pass)
		return 0;
	unsigned char digest[32];
	dkim_body_hash_final(s->bh, digest);
	char *domain = from_domain(s);
	const struct dkim_key *keys[MAX_SIGNERS];
	size_t nkeys = domain != NULL ? dkim_keyring_signers(s->kr, domain, keys, MAX_SIGNERS) : 0;
	struct buf sigs = BUF_INIT;
	int nsigned = 0;
	for (size_t i = 0; i < nkeys; i++) {
		struct dkim_sign_params params = {keys[i]->domain, keys[i]->selector, keys[i]->key,
						  time(NULL)};
		const char *why = NULL;
		if (dkim_sign(&sigs, &params, s->hold.header.data, s->hold.header.len, digest, &why) < 0)
			log_error("dkim sign domain=%s selector=%s error=\"%s\"", keys[i]->domain,
				  keys[i]->selector, why);
		else
			nsigned++;
	}
	free(domain);
	int rc = delivery_filter_output(f, sigs.data, sigs.len, error_r);
	buf_free(&sigs);
	if (rc == 0)
		rc = pass_through(s, error_r);
	if (rc == 0)
		rc = delivery_hold_release(&s->hold, f, error_r);
	if (rc == 0 && s->signed_r != NULL)
		*s->signed_r = nsigned;
	return rc;
}

static void signer_free(struct delivery_filter *f)
{
	struct signer *s = (struct signer *)f;
	delivery_hold_free(&s->hold);
	dkim_body_hash_free(&s->bh);
	dkim_keyring_unref(&s->kr);
	free(s);
}

struct delivery_filter *delivery_dkim_signer(struct dkim_keyring *kr, int *signed_r)
{
	struct signer *s = xcalloc(1, sizeof(*s));
	s->f.name = "dkim-sign";
	s->f.write = signer_write;
	s->f.finish = signer_finish;
	s->f.free = signer_free;
	s->kr = dkim_keyring_ref(kr);
	s->signed_r = signed_r;
	delivery_hold_init(&s->hold);
	s->bh = dkim_body_hash_new(DKIM_CANON_RELAXED);
	if (signed_r != NULL)
		*signed_r = 0;
	return &s->f;
}

int delivery_sign_local(struct delivery *d, const char *data_dir, char **error_r)
{
	char *dir = xasprintf("%s/" DKIM_KEY_DIR, data_dir);
	struct dkim_keyring *kr = dkim_keyring_load(dir, error_r);
	free(dir);
	/* the keys that could be read sign all the same */
	int rc = *error_r != NULL ? -1 : 0;
	if (kr->count > 0)
		delivery_add_filter(d, delivery_dkim_signer(kr, NULL));
	dkim_keyring_unref(&kr);
	return rc;
}
