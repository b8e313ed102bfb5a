/* The DKIM signer, a delivery filter (see delivery_dkim.h). */
#include "delivery/delivery_dkim.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/header.h"
#include "trust/dkim_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIGNERS 4

struct signer {
	struct delivery_filter f;
	struct dkim_keyring *kr;
	int *signed_r;
	/* the header block, up to and including its empty line */
	struct buf header;
	enum { IN_HEADER, IN_BODY, PASS } state;
	bool line_start, cr_at_start;
	/* the body: hashed as it passes; held in memory, then in spill */
	struct dkim_body_hash *bh;
	struct buf body;
	int spill; /* -1 until the body outgrows DELIVERY_DKIM_HOLD */
};

static int hold_body(struct signer *s, const char *data, size_t len, char **error_r)
{
	dkim_body_hash_update(s->bh, data, len);
	if (s->spill < 0 && s->body.len + len <= DELIVERY_DKIM_HOLD) {
		buf_append(&s->body, data, len);
		return 0;
	}
	if (s->spill < 0) {
		s->spill = openat(delivery_dirfd(s->f.delivery), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (s->spill < 0) {
			*error_r = xasprintf("cannot make a scratch file: %s", strerror(errno));
			return -1;
		}
	}
	if (fs_write_all(s->spill, data, len) < 0) {
		*error_r = xasprintf("writing the scratch file: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Gives up signing: what was held goes on, and everything after it. */
static int pass_through(struct signer *s, char **error_r)
{
	s->state = PASS;
	int rc = delivery_filter_output(&s->f, s->header.data, s->header.len, error_r);
	buf_free(&s->header);
	return rc;
}

static int signer_write(struct delivery_filter *f, const void *data, size_t len, char **error_r)
{
	struct signer *s = (struct signer *)f;
	const char *p = data;
	if (s->state == IN_HEADER) {
		/* the header ends with its first empty line (or the message
		   starts with one: no header at all) */
		size_t i = 0;
		for (; i < len && s->state == IN_HEADER; i++) {
			char c = p[i];
			if (s->line_start && (c == '\n' || (c == '\r' && !s->cr_at_start))) {
				if (c == '\n')
					s->state = IN_BODY;
				else
					s->cr_at_start = true;
				continue;
			}
			s->cr_at_start = false;
			s->line_start = c == '\n';
		}
		buf_append(&s->header, p, i);
		if (s->header.len > mime_default_limits.max_header_size)
			return pass_through(s, error_r) < 0
				   ? -1
				   : delivery_filter_output(f, p + i, len - i, error_r);
		p += i;
		len -= i;
	}
	if (s->state == PASS)
		return delivery_filter_output(f, p, len, error_r);
	return len > 0 ? hold_body(s, p, len, error_r) : 0;
}

/* The domain of the first From: address, lowercased; NULL when none. */
static char *from_domain(const struct signer *s)
{
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, s->header.data, s->header.len, NULL);
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

/* Sends on what was held: the body from memory, then from the scratch
   file. */
static int release_body(struct signer *s, char **error_r)
{
	if (delivery_filter_output(&s->f, s->body.data, s->body.len, error_r) < 0)
		return -1;
	if (s->spill < 0)
		return 0;
	char chunk[65536];
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(s->spill, chunk, sizeof(chunk), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("reading the scratch file: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		if (delivery_filter_output(&s->f, chunk, (size_t)n, error_r) < 0)
			return -1;
		off += n;
	}
}

static int signer_finish(struct delivery_filter *f, char **error_r)
{
	struct signer *s = (struct signer *)f;
	if (s->state == PASS)
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
		if (dkim_sign(&sigs, &params, s->header.data, s->header.len, digest, &why) < 0)
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
		rc = release_body(s, error_r);
	if (rc == 0 && s->signed_r != NULL)
		*s->signed_r = nsigned;
	return rc;
}

static void signer_free(struct delivery_filter *f)
{
	struct signer *s = (struct signer *)f;
	buf_free(&s->header);
	buf_free(&s->body);
	dkim_body_hash_free(&s->bh);
	dkim_keyring_unref(&s->kr);
	if (s->spill >= 0)
		close(s->spill);
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
	s->state = IN_HEADER;
	s->line_start = true;
	s->bh = dkim_body_hash_new(DKIM_CANON_RELAXED);
	s->spill = -1;
	if (signed_r != NULL)
		*signed_r = 0;
	return &s->f;
}
