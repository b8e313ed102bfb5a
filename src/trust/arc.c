/* Authenticated Received Chain validation (RFC 8617 5.2): see arc.h. */
#include "trust/arc.h"
#include "lib/xalloc.h"
#include "mime/header.h"
#include "trust/dkim_private.h"

#include <string.h>
#include <strings.h>

const char *arc_result_name(enum arc_result r)
{
	static const char *const names[] = {"none", "pass", "fail"};
	return names[r];
}

static bool name_is(const struct mime_header_field *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

/* The instance of an ARC field: the i= tag (4.2.1), 1..50; 0 when bad. */
static int instance_of(const char *value, size_t len, bool aar)
{
	struct dkim_tags tags;
	const char *error;
	if (aar) {
		/* "i=N; authserv-id; results": only the tag before the first ';'
		   follows the tag syntax */
		const char *semi = memchr(value, ';', len);
		len = semi != NULL ? (size_t)(semi - value) : len;
	}
	if (dkim_tags_parse(&tags, value, len, &error) < 0)
		return 0;
	const struct dkim_tag *i = dkim_tags_get(&tags, "i");
	if (i == NULL || i->value_len == 0 || i->value_len > 2)
		return 0;
	int n = 0;
	for (size_t k = 0; k < i->value_len; k++) {
		if (i->value[k] < '0' || i->value[k] > '9')
			return 0;
		n = n * 10 + (i->value[k] - '0');
	}
	return n >= 1 && n <= ARC_MAX_INSTANCES ? n : 0;
}

static int broken(struct arc_chain *c, const char *why, const char **why_r)
{
	arc_chain_free(c);
	*why_r = why;
	return -1;
}

/* The seal of instance i: a=, b=, cv=, d=, s= (4.1.3); checks cv against
   the instance (5.2 steps 3-4). */
static int parse_seal(struct arc_chain *c, int i, const char **why_r)
{
	const struct arc_set *set = &c->sets[i];
	const char *colon = memchr(set->as, ':', set->as_len);
	struct dkim_tags tags;
	const char *error;
	if (colon == NULL ||
	    dkim_tags_parse(&tags, colon + 1, set->as_len - (size_t)(colon + 1 - set->as), &error) < 0) {
		*why_r = "ARC-Seal does not parse";
		return -1;
	}
	const struct dkim_tag *a = dkim_tags_get(&tags, "a"), *b = dkim_tags_get(&tags, "b"),
			      *cv = dkim_tags_get(&tags, "cv"), *d = dkim_tags_get(&tags, "d"),
			      *s = dkim_tags_get(&tags, "s"), *h = dkim_tags_get(&tags, "h");
	if (a == NULL || b == NULL || cv == NULL || d == NULL || s == NULL || d->value_len == 0 ||
	    s->value_len == 0) {
		*why_r = "ARC-Seal lacks a required tag";
		return -1;
	}
	if (h != NULL) { /* 4.1.3: a seal names no header fields */
		*why_r = "ARC-Seal with h=";
		return -1;
	}
	if (a->value_len == 10 && !strncasecmp(a->value, "rsa-sha256", 10))
		c->seal_alg[i] = DKIM_ALG_RSA_SHA256;
	else if (a->value_len == 14 && !strncasecmp(a->value, "ed25519-sha256", 14))
		c->seal_alg[i] = DKIM_ALG_ED25519_SHA256;
	else {
		*why_r = "ARC-Seal with an unsupported algorithm";
		return -1;
	}
	bool none = cv->value_len == 4 && !strncasecmp(cv->value, "none", 4);
	bool pass = cv->value_len == 4 && !strncasecmp(cv->value, "pass", 4);
	if (!none && !pass) {
		*why_r = cv->value_len == 4 && !strncasecmp(cv->value, "fail", 4)
			     ? "a hop found the chain broken"
			     : "bad cv=";
		return -1;
	}
	if ((i == 1) != none) {
		*why_r = i == 1 ? "the first seal must say cv=none" : "a later seal must say cv=pass";
		return -1;
	}
	c->seal_domain[i] = xstrndup(d->value, d->value_len);
	for (char *p = c->seal_domain[i]; *p != '\0'; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	c->seal_selector[i] = xstrndup(s->value, s->value_len);
	if (dkim_tag_base64(b, &c->seal_b[i]) < 0 || c->seal_b[i].len == 0) {
		*why_r = "ARC-Seal with a bad b=";
		return -1;
	}
	return 0;
}

int arc_chain_parse(struct arc_chain *c, const char *header, size_t len, int64_t now, const char **why_r)
{
	memset(c, 0, sizeof(*c));
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, header, len, NULL);
	bool any = false, bad = false, dup = false;
	for (unsigned int k = 0; k < h->count; k++) {
		const struct mime_header_field *f = &h->fields[k];
		bool aar = name_is(f, "ARC-Authentication-Results"),
		     ams = name_is(f, "ARC-Message-Signature"), as = name_is(f, "ARC-Seal");
		if (!aar && !ams && !as)
			continue;
		any = true;
		int i = instance_of(f->value, f->value_len, aar);
		if (i == 0) {
			bad = true;
			continue;
		}
		struct arc_set *set = &c->sets[i];
		const char **slot = aar ? &set->aar : ams ? &set->ams : &set->as;
		size_t *slot_len = aar ? &set->aar_len : ams ? &set->ams_len : &set->as_len;
		if (*slot != NULL)
			dup = true;
		*slot = header + f->offset;
		*slot_len = f->size;
		if (i > c->n)
			c->n = i;
	}
	pool_destroy(&pool);
	if (!any)
		return 0;
	if (bad)
		return broken(c, "an ARC field without a valid instance", why_r);
	if (dup)
		return broken(c, "two ARC fields of one kind for one instance", why_r);
	/* 5.2 step 2: every instance up to the newest has its three fields */
	for (int i = 1; i <= c->n; i++)
		if (c->sets[i].aar == NULL || c->sets[i].ams == NULL || c->sets[i].as == NULL)
			return broken(c, "an ARC set is incomplete", why_r);
	for (int i = 1; i <= c->n; i++)
		if (parse_seal(c, i, why_r) < 0)
			return broken(c, *why_r, why_r);
	const char *error = NULL;
	if (dkim_signature_parse_as(&c->ams, c->sets[c->n].ams, c->sets[c->n].ams_len, now, true, &error) !=
	    DKIM_PASS)
		return broken(c, "the newest ARC-Message-Signature does not parse", why_r);
	const char *aar1 = memchr(c->sets[1].aar, ';', c->sets[1].aar_len);
	if (aar1 != NULL) {
		c->aar_of_1 = aar1 + 1;
		c->aar_of_1_len = c->sets[1].aar_len - (size_t)(aar1 + 1 - c->sets[1].aar);
	}
	return 1;
}

void arc_chain_free(struct arc_chain *c)
{
	dkim_signature_free(&c->ams);
	for (int i = 0; i <= ARC_MAX_INSTANCES; i++) {
		free(c->seal_domain[i]);
		free(c->seal_selector[i]);
		buf_free(&c->seal_b[i]);
	}
	memset(c, 0, sizeof(*c));
}

size_t arc_chain_key_names(const struct arc_chain *c, char **names, size_t max)
{
	size_t n = 0;
	for (int i = 0; i <= c->n && n < max; i++) {
		char *name = i == 0 ? xasprintf("%s._domainkey.%s", c->ams.selector, c->ams.domain)
				    : xasprintf("%s._domainkey.%s", c->seal_selector[i], c->seal_domain[i]);
		bool seen = false;
		for (size_t k = 0; k < n && !seen; k++)
			seen = strcasecmp(names[k], name) == 0;
		if (seen)
			free(name);
		else
			names[n++] = name;
	}
	return n;
}

enum dkim_canon arc_chain_body_canon(const struct arc_chain *c)
{
	return c->ams.body_canon;
}

/* 5.1.1: the seal of instance i signs the ARC sets 1..i, each as AAR, AMS,
   AS in relaxed canonical form, the last seal with b= emptied. */
static int verify_seal(const struct arc_chain *c, int i, const char *(*key)(void *ctx, const char *name),
		       void *ctx, const char **why_r)
{
	struct buf input = BUF_INIT;
	for (int k = 1; k <= i; k++) {
		dkim_canon_header(&input, DKIM_CANON_RELAXED, c->sets[k].aar, c->sets[k].aar_len);
		dkim_canon_header(&input, DKIM_CANON_RELAXED, c->sets[k].ams, c->sets[k].ams_len);
		if (k < i)
			dkim_canon_header(&input, DKIM_CANON_RELAXED, c->sets[k].as, c->sets[k].as_len);
		else
			dkim_canon_unsigned(&input, DKIM_CANON_RELAXED, c->sets[k].as, c->sets[k].as_len);
	}
	char *name = xasprintf("%s._domainkey.%s", c->seal_selector[i], c->seal_domain[i]);
	struct dkim_signature who = {.alg = c->seal_alg[i], .domain = c->seal_domain[i]};
	char *auid = xasprintf("@%s", c->seal_domain[i]);
	who.auid = auid;
	enum dkim_result r;
	const char *record = key(ctx, name);
	EVP_PKEY *pk = record != NULL ? dkim_record_key(&who, record, &r, why_r) : NULL;
	if (record == NULL)
		*why_r = "no key record for an ARC-Seal";
	int rc = pk != NULL && dkim_pkey_verify(pk, c->seal_alg[i], &input, &c->seal_b[i]) == 0 ? 0 : -1;
	if (pk != NULL && rc < 0)
		*why_r = "an ARC-Seal does not verify";
	EVP_PKEY_free(pk);
	free(auid);
	free(name);
	buf_free(&input);
	return rc;
}

enum arc_result arc_chain_verify(const struct arc_chain *c, const char *header, size_t len,
				 const unsigned char body_hash[32],
				 const char *(*key)(void *ctx, const char *name), void *ctx,
				 const char **why_r)
{
	/* 5.2 step 5: the newest message signature, as DKIM verifies one */
	char *name = xasprintf("%s._domainkey.%s", c->ams.selector, c->ams.domain);
	const char *record = key(ctx, name);
	free(name);
	if (dkim_verify(&c->ams, header, len, body_hash, record, why_r) != DKIM_PASS)
		return ARC_FAIL;
	/* step 6: every seal, newest first */
	for (int i = c->n; i >= 1; i--)
		if (verify_seal(c, i, key, ctx, why_r) < 0)
			return ARC_FAIL;
	return ARC_PASS;
}
