/* DKIM canonicalization (RFC 6376 3.4) and the streaming body hash. */
#include "trust/dkim.h"
#include "lib/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static EVP_MD *sha256;

static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (sha256 == NULL)
		abort();
}

const EVP_MD *dkim_sha256(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, sha256_fetch);
	return sha256;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

void dkim_canon_header(struct buf *out, enum dkim_canon canon, const char *field, size_t len)
{
	/* the final line end is the caller's or ours, never part of it */
	while (len > 0 && (field[len - 1] == '\n' || field[len - 1] == '\r'))
		len--;
	if (canon == DKIM_CANON_SIMPLE) {
		buf_append(out, field, len);
		buf_append(out, "\r\n", 2);
		return;
	}
	const char *colon = memchr(field, ':', len);
	size_t name_len = colon != NULL ? (size_t)(colon - field) : len;
	while (name_len > 0 && is_wsp(field[name_len - 1]))
		name_len--;
	buf_reserve(out, len + 3);
	for (size_t i = 0; i < name_len; i++) {
		char c = field[i];
		buf_append_char(out, c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
	}
	buf_append_char(out, ':');
	if (colon != NULL) {
		/* 3.4.2: unfold (CRLF removed), whitespace runs become one
		   space, none at the start or the end of the value */
		bool space = false, started = false;
		for (const char *p = colon + 1; p < field + len; p++) {
			if (*p == '\r' || *p == '\n')
				continue;
			if (is_wsp(*p)) {
				space = started;
				continue;
			}
			if (space)
				buf_append_char(out, ' ');
			space = false;
			started = true;
			buf_append_char(out, *p);
		}
	}
	buf_append(out, "\r\n", 2);
}

/* ---- the body hash ---- */

struct dkim_body_hash {
	EVP_MD_CTX *sha;
	enum dkim_canon canon;
	size_t empty_lines; /* held back: dropped if nothing follows */
	bool line_data;     /* the current line has data (after canonicalization) */
	bool space;         /* relaxed: whitespace held back in the current line */
	bool cr;            /* a CR held back: a line end if LF follows */
	bool any;           /* something was hashed */
	/* output is batched so that hashing runs over blocks */
	size_t n;
	unsigned char out[4096];
};

struct dkim_body_hash *dkim_body_hash_new(enum dkim_canon canon)
{
	struct dkim_body_hash *bh = xcalloc(1, sizeof(*bh));
	bh->sha = EVP_MD_CTX_new();
	if (bh->sha == NULL || EVP_DigestInit_ex(bh->sha, dkim_sha256(), NULL) != 1)
		abort(); /* out of memory, as xalloc does */
	bh->canon = canon;
	return bh;
}

static void emit(struct dkim_body_hash *bh, const void *data, size_t len)
{
	if (bh->n + len > sizeof(bh->out)) {
		EVP_DigestUpdate(bh->sha, bh->out, bh->n);
		bh->n = 0;
	}
	if (len > sizeof(bh->out)) {
		EVP_DigestUpdate(bh->sha, data, len);
		return;
	}
	memcpy(bh->out + bh->n, data, len);
	bh->n += len;
}

/* A byte of line content (not a line end). */
static void content(struct dkim_body_hash *bh, char c)
{
	if (bh->canon == DKIM_CANON_RELAXED && is_wsp(c)) {
		bh->space = true;
		return;
	}
	if (!bh->line_data) {
		for (; bh->empty_lines > 0; bh->empty_lines--)
			emit(bh, "\r\n", 2);
		bh->line_data = true;
	}
	if (bh->space) {
		emit(bh, " ", 1);
		bh->space = false;
	}
	emit(bh, &c, 1);
	bh->any = true;
}

static void line_end(struct dkim_body_hash *bh)
{
	/* the line end of a line with data is held like an empty line: it
	   goes out before the next data, or once at the very end */
	bh->empty_lines++;
	bh->line_data = false;
	bh->space = false;
}

/* The bytes that end a run of line content: line ends, and in relaxed
   canonicalization whitespace (one table lookup per byte). */
static const bool run_stop[2][256] = {
    [DKIM_CANON_SIMPLE] = {['\r'] = true, ['\n'] = true},
    [DKIM_CANON_RELAXED] = {['\r'] = true, ['\n'] = true, [' '] = true, ['\t'] = true},
};

/* The end of the run of line content at p: up to a line end, or (relaxed)
   whitespace.  In relaxed text a single space between two words is
   already canonical and stays inside the run, so that a usual line goes
   out in one piece. */
static const char *run_end(const struct dkim_body_hash *bh, const char *p, const char *end)
{
	const bool *stop = run_stop[bh->canon];
	for (;;) {
		while (p < end && !stop[(unsigned char)*p])
			p++;
		if (bh->canon == DKIM_CANON_SIMPLE || p + 1 >= end || *p != ' ' || stop[(unsigned char)p[1]])
			return p;
		p++;
	}
}

void dkim_body_hash_update(struct dkim_body_hash *bh, const void *data, size_t len)
{
	const char *p = data, *end = p + len;
	while (p < end) {
		char c = *p;
		if (bh->cr) {
			bh->cr = false;
			if (c == '\n') {
				line_end(bh);
				p++;
				continue;
			}
			content(bh, '\r'); /* a bare CR is line content */
		}
		if (c == '\r' || c == '\n' || (bh->canon == DKIM_CANON_RELAXED && is_wsp(c))) {
			if (c == '\r')
				bh->cr = true;
			else if (c == '\n')
				line_end(bh);
			else
				bh->space = true;
			p++;
			continue;
		}
		/* content: what was held back goes first, then the run */
		content(bh, c);
		const char *q = run_end(bh, p + 1, end);
		emit(bh, p + 1, (size_t)(q - p - 1));
		p = q;
	}
}

void dkim_body_hash_final(struct dkim_body_hash *bh, unsigned char digest[32])
{
	if (bh->cr) {
		bh->cr = false;
		content(bh, '\r');
	}
	/* 3.4.3: an empty body is one CRLF, a body without a final CRLF gets
	   one; 3.4.4: an empty body stays empty */
	if (bh->any || bh->canon == DKIM_CANON_SIMPLE)
		emit(bh, "\r\n", 2);
	EVP_DigestUpdate(bh->sha, bh->out, bh->n);
	bh->n = 0;
	unsigned int n = 32;
	EVP_DigestFinal_ex(bh->sha, digest, &n);
}

void dkim_body_hash_free(struct dkim_body_hash **bh)
{
	if (*bh != NULL)
		EVP_MD_CTX_free((*bh)->sha);
	free(*bh);
	*bh = NULL;
}
