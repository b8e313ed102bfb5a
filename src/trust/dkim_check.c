/* Verifying the DKIM signatures of one message (see dkim_check.h). */
#include "trust/dkim_check.h"
#include "lib/xalloc.h"
#include "mime/header.h"
#include "trust/authres.h"
#include "trust/dkim_keys.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* One DKIM-Signature field being evaluated. */
struct check_sig {
	struct dkim_check_result res;
	struct dkim_signature sig; /* parsed when pending */
	bool pending;              /* parsed, waiting for its key and body */
	size_t key;                /* index into keys */
};

struct check_key {
	char *name;
	bool answered;
	enum dkim_key_status status;
	struct dkim_pubkey pk; /* the record used (DKIM_KEY_FOUND) */
};

struct dkim_check {
	int64_t now;
	struct pool *pool; /* the reported tag values */
	const char *header;
	size_t header_len;
	struct check_sig sigs[DKIM_CHECK_MAX_SIGNATURES];
	size_t nsigs;
	unsigned int unchecked;
	struct check_key keys[DKIM_CHECK_MAX_SIGNATURES];
	size_t nkeys;
	/* body hashes by canonicalization (enum dkim_canon); NULL: unused */
	struct dkim_body_hash *bh[2];
	unsigned char digest[2][32];
	struct dkim_check_result results[DKIM_CHECK_MAX_SIGNATURES];
	bool finished;
};

struct dkim_check *dkim_check_new(int64_t now)
{
	struct dkim_check *c = xcalloc(1, sizeof(*c));
	c->now = now;
	c->pool = pool_create(1024);
	return c;
}

void dkim_check_free(struct dkim_check **cp)
{
	struct dkim_check *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	for (size_t i = 0; i < c->nsigs; i++)
		dkim_signature_free(&c->sigs[i].sig);
	for (size_t i = 0; i < c->nkeys; i++) {
		free(c->keys[i].name);
		dkim_pubkey_free(&c->keys[i].pk);
	}
	for (int i = 0; i < 2; i++)
		dkim_body_hash_free(&c->bh[i]);
	pool_destroy(&c->pool);
	free(c);
}

/* A tag's value for the report, NUL-terminated in the pool; NULL when
   absent or longer than max. */
static char *report_tag(struct dkim_check *c, const struct dkim_tags *tags, const char *name, size_t max)
{
	const struct dkim_tag *t = dkim_tags_get(tags, name);
	if (t == NULL || t->value_len == 0 || t->value_len > max)
		return NULL;
	return pool_strndup(c->pool, t->value, t->value_len);
}

/* What the report says of a signature, read from its tags whether or not
   it parses as a whole: d=, s=, i=, a= and the start of b=. */
static void report_tags(struct dkim_check *c, struct dkim_check_result *res, const char *value, size_t len)
{
	struct dkim_tags tags;
	const char *error;
	if (dkim_tags_parse(&tags, value, len, &error) < 0)
		return;
	char *d = report_tag(c, &tags, "d", 253);
	const char *s = report_tag(c, &tags, "s", 253);
	if (d != NULL && dkim_name_valid(d)) {
		for (char *p = d; *p != '\0'; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		res->domain = d;
	}
	if (s != NULL && dkim_name_valid(s))
		res->selector = s;
	res->auid = report_tag(c, &tags, "i", 256);
	res->alg = report_tag(c, &tags, "a", 32);
	const struct dkim_tag *b = dkim_tags_get(&tags, "b");
	size_t n = 0;
	for (size_t i = 0; b != NULL && i < b->value_len && n < 8; i++) {
		char ch = b->value[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '+' || ch == '/' || ch == '=')
			res->b[n++] = ch;
	}
	res->b[n] = '\0';
}

/* The key slot for sig's "s._domainkey.d", shared with earlier
   signatures; -1 when the name cannot be looked up. */
static int key_slot(struct dkim_check *c, const struct dkim_signature *sig)
{
	if (!dkim_name_valid(sig->selector) || !dkim_name_valid(sig->domain))
		return -1;
	char name[256];
	int n = snprintf(name, sizeof(name), "%s._domainkey.%s", sig->selector, sig->domain);
	if (n < 0 || n > 253)
		return -1;
	for (size_t i = 0; i < c->nkeys; i++)
		if (!strcasecmp(c->keys[i].name, name))
			return (int)i;
	c->keys[c->nkeys].name = xstrdup(name);
	return (int)c->nkeys++;
}

static void add_signature(struct dkim_check *c, const char *field, size_t len)
{
	struct check_sig *s = &c->sigs[c->nsigs++];
	const char *colon = memchr(field, ':', len);
	report_tags(c, &s->res, colon + 1, len - (size_t)(colon + 1 - field));
	s->res.result = dkim_signature_parse(&s->sig, field, len, c->now, &s->res.reason);
	if (s->res.result != DKIM_PASS)
		return;
	int key = key_slot(c, &s->sig);
	if (key < 0) {
		dkim_signature_free(&s->sig);
		s->res.result = DKIM_NEUTRAL;
		s->res.reason = "d= or s= is not a domain name";
		return;
	}
	s->key = (size_t)key;
	s->pending = true;
	if (c->bh[s->sig.body_canon] == NULL)
		c->bh[s->sig.body_canon] = dkim_body_hash_new(s->sig.body_canon);
}

void dkim_check_header(struct dkim_check *c, const char *header, size_t len)
{
	c->header = header;
	c->header_len = len;
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, header, len, NULL);
	for (unsigned int i = 0; i < h->count; i++) {
		const struct mime_header_field *f = &h->fields[i];
		if (f->name_len != 14 || strncasecmp(f->name, "DKIM-Signature", 14) != 0)
			continue;
		if (c->nsigs == DKIM_CHECK_MAX_SIGNATURES)
			c->unchecked++;
		else
			add_signature(c, header + f->offset, f->size);
	}
	pool_destroy(&pool);
}

size_t dkim_check_key_count(const struct dkim_check *c)
{
	return c->nkeys;
}

const char *dkim_check_key_name(const struct dkim_check *c, size_t i)
{
	return c->keys[i].name;
}

void dkim_check_key(struct dkim_check *c, size_t i, enum dkim_key_status status, const char *const *records,
		    const size_t *lens, size_t count)
{
	struct check_key *k = &c->keys[i];
	if (k->answered)
		return;
	k->answered = true;
	k->status = count > 0 ? status : status == DKIM_KEY_FOUND ? DKIM_KEY_NONE : status;
	if (k->status != DKIM_KEY_FOUND)
		return;
	/* the first record that gives a key; none does: the first's verdict */
	for (size_t r = 0; r < count && r < DKIM_CHECK_MAX_RECORDS; r++) {
		struct dkim_pubkey pk;
		dkim_pubkey_parse(&pk, records[r], lens[r]);
		if (r == 0 || pk.key != NULL) {
			dkim_pubkey_free(&k->pk);
			k->pk = pk;
		}
		if (k->pk.key != NULL)
			break;
	}
}

void dkim_check_key_given(struct dkim_check *c, size_t i, const struct dkim_pubkey *pk)
{
	struct check_key *k = &c->keys[i];
	if (k->answered)
		return;
	k->answered = true;
	k->status = DKIM_KEY_FOUND;
	dkim_pubkey_copy(&k->pk, pk);
}

const struct dkim_pubkey *dkim_check_key_found(const struct dkim_check *c, size_t i)
{
	const struct check_key *k = &c->keys[i];
	return k->answered && k->status == DKIM_KEY_FOUND && k->pk.key != NULL ? &k->pk : NULL;
}

void dkim_check_body(struct dkim_check *c, const void *data, size_t len)
{
	for (int i = 0; i < 2; i++)
		if (c->bh[i] != NULL)
			dkim_body_hash_update(c->bh[i], data, len);
}

static void verify_one(struct dkim_check *c, struct check_sig *s)
{
	const struct check_key *k = &c->keys[s->key];
	if (!k->answered || k->status == DKIM_KEY_TEMPFAIL) {
		s->res.result = DKIM_TEMPERROR;
		s->res.reason = k->answered ? "key lookup failed" : "key lookup timed out";
		return;
	}
	if (k->status == DKIM_KEY_NONE) {
		s->res.result = DKIM_PERMERROR;
		s->res.reason = "no key record";
		return;
	}
	s->res.result = dkim_verify_key(&s->sig, c->header, c->header_len, c->digest[s->sig.body_canon],
					&k->pk, &s->res.reason);
	if (s->res.result == DKIM_PASS)
		s->res.reason = NULL;
}

void dkim_check_finish(struct dkim_check *c)
{
	if (c->finished)
		return;
	c->finished = true;
	for (int i = 0; i < 2; i++)
		if (c->bh[i] != NULL)
			dkim_body_hash_final(c->bh[i], c->digest[i]);
	for (size_t i = 0; i < c->nsigs; i++) {
		struct check_sig *s = &c->sigs[i];
		if (s->pending)
			verify_one(c, s);
		s->pending = false;
		c->results[i] = s->res;
	}
}

const struct dkim_check_result *dkim_check_results(const struct dkim_check *c, size_t *count_r,
						   unsigned int *unchecked_r)
{
	*count_r = c->finished ? c->nsigs : 0;
	if (unchecked_r != NULL)
		*unchecked_r = c->unchecked;
	return c->results;
}

void dkim_check_authres_results(const struct dkim_check *c, struct authres_writer *w)
{
	size_t n;
	unsigned int unchecked;
	const struct dkim_check_result *r = dkim_check_results(c, &n, &unchecked);
	if (n == 0 && unchecked == 0)
		authres_result(w, "dkim", "none", NULL);
	for (size_t i = 0; i < n; i++) {
		authres_result(w, "dkim", dkim_result_name(r[i].result), r[i].reason);
		const char *props[][2] = {{"d", r[i].domain},
					  {"i", r[i].auid},
					  {"s", r[i].selector},
					  {"a", r[i].alg},
					  {"b", r[i].b}};
		for (size_t p = 0; p < N_ELEMENTS(props); p++)
			if (props[p][1] != NULL && props[p][1][0] != '\0')
				authres_property(w, "header", props[p][0], props[p][1]);
	}
	if (unchecked > 0) {
		char reason[64];
		snprintf(reason, sizeof(reason), "%u more signatures not checked", unchecked);
		authres_result(w, "dkim", "policy", reason);
	}
}

void dkim_check_authres(const struct dkim_check *c, struct buf *out, const char *authserv_id)
{
	struct authres_writer w;
	authres_begin(&w, out, authserv_id);
	dkim_check_authres_results(c, &w);
	authres_end(&w);
}
