/* Header blocks of many messages at once, for SEARCH on header fields,
   SORT, THREAD and FETCH of header sections.

   The index keeps each message's header block beside its ENVELOPE and
   BODYSTRUCTURE (store_imap_extra.h), so a SEARCH HEADER over 10,000
   messages is one range query instead of 10,000 file reads.  A block that
   is not cached yet is read from the head of its file only (up to the
   blank line) and written back once the run is over, by a job
   (imap_cache.c). */
#include "imap/imap_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/header.h"
#include "store/store_imap_extra.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Blocks larger than this stay in their files only. */
#define IMAP_HEADER_CACHE_MAX (64 * 1024)

static uint32_t run_index(const struct imap_header_run *run, uint32_t uid)
{
	/* rows come in ascending UID order: usually the next one */
	if (run->fill_next < run->count && run->uids[run->fill_next] == uid)
		return run->fill_next;
	return imap_uid_position(run->uids, run->count, uid);
}

uint32_t imap_uid_position(const uint32_t *uids, uint32_t count, uint32_t uid)
{
	uint32_t lo = 0, hi = count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int run_fill(void *ctx, uint32_t uid, const char *data, size_t len)
{
	struct imap_header_run *run = ctx;
	uint32_t i = run_index(run, uid);
	if (i < run->count && run->uids[i] == uid && run->data[i] == NULL) {
		/* zeroed: NUL-terminated */
		run->data[i] = pool_alloc(run->pool, len + 1);
		memcpy(run->data[i], data, len);
		run->len[i] = len;
		run->fill_next = i + 1;
	}
	return 0;
}

void imap_header_run_load(struct imap_header_run *run, struct imap_mbox *mbox, const uint32_t *uids,
			  uint32_t count)
{
	memset(run, 0, sizeof(*run));
	run->mbox = mbox;
	run->count = count;
	run->uids = xmemdup(uids, (count + 1) * sizeof(*uids));
	run->data = xcalloc(count + 1, sizeof(*run->data));
	run->len = xcalloc(count + 1, sizeof(*run->len));
	run->tried = xcalloc(count + 1, sizeof(*run->tried));
	run->store = xcalloc(count + 1, sizeof(*run->store));
	run->pool = pool_create(64 * 1024);
	if (count == 0)
		return;
	char *error = NULL;
	if (store_cache_get_header_range(mbox->smbox, uids[0], uids[count - 1], run_fill, run, &error) < 0) {
		log_error("imap header-cache read failed mailbox=%s: %s", mbox->name, error);
		free(error);
	}
}

bool imap_header_run_get(struct imap_header_run *run, uint32_t i, const char **data_r, size_t *len_r)
{
	if (run->data[i] == NULL && !run->tried[i]) {
		char *error = NULL;
		run->tried[i] = true;
		int r =
		    imap_message_read_header(run->mbox, run->uids[i], &run->data[i], &run->len[i], &error);
		if (r < 0) {
			log_error("imap header read failed mailbox=%s uid=%u: %s", run->mbox->name,
				  run->uids[i], error);
			free(error);
		}
		run->store[i] = r > 0;
	}
	if (run->data[i] == NULL)
		return false;
	*data_r = run->data[i];
	*len_r = run->len[i];
	return true;
}

void imap_header_run_done(struct imap_header_run *run)
{
	for (uint32_t i = 0; i < run->count; i++)
		if (run->store[i])
			imap_header_cache_store(run->mbox, run->uids[i], run->data[i], run->len[i]);
	if (run->mbox != NULL)
		imap_cache_fill_flush(run->mbox);
	for (uint32_t i = 0; i < run->count; i++)
		if (run->tried[i])
			free(run->data[i]); /* read from the file, not in the pool */
	pool_destroy(&run->pool);
	free(run->data);
	free(run->len);
	free(run->tried);
	free(run->store);
	free(run->uids);
	memset(run, 0, sizeof(*run));
}

void imap_header_cache_store(struct imap_mbox *mbox, uint32_t uid, const char *data, size_t len)
{
	if (len <= IMAP_HEADER_CACHE_MAX)
		imap_cache_fill_add(mbox, uid, IMAP_CACHE_HEADER, data, len);
}

/* ---- HEADER.FIELDS ---- */

void imap_header_names_init(struct imap_header_names *names_r, struct pool *pool, const char *const *fields,
			    unsigned int count)
{
	size_t *lens = pool_alloc(pool, (count + 1) * sizeof(*lens));
	char **lower = pool_alloc(pool, (count + 1) * sizeof(*lower));
	uint64_t mask = 0;
	for (unsigned int i = 0; i < count; i++) {
		lens[i] = strlen(fields[i]);
		lower[i] = pool_strdup(pool, fields[i]);
		for (char *c = lower[i]; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (lens[i] < 64)
			mask |= 1ULL << lens[i];
	}
	names_r->count = count;
	names_r->len_mask = mask;
	names_r->lens = lens;
	names_r->lower = (const char *const *)lower;
}

static bool names_have(const struct imap_header_names *names, const char *name, size_t len)
{
	if (len < 64 && !(names->len_mask & (1ULL << len)))
		return false;
	for (unsigned int i = 0; i < names->count; i++) {
		if (names->lens[i] != len)
			continue;
		const char *w = names->lower[i];
		size_t k = 0;
		while (k < len && (char)tolower((unsigned char)name[k]) == w[k])
			k++;
		if (k == len)
			return true;
	}
	return false;
}

/* The length of the field name at line: printable ASCII up to the colon,
   with the obsolete whitespace before it (RFC 5322 4.5.8); 0 when the line
   is no field.  As mime_headers_parse() sees it. */
static size_t field_name_len(const char *line, const char *end)
{
	const char *p = line;
	while (p < end && (unsigned char)*p > 32 && (unsigned char)*p < 127 && *p != ':')
		p++;
	size_t n = (size_t)(p - line);
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return n > 0 && p < end && *p == ':' ? n : 0;
}

void imap_header_filter(struct buf *out, const char *data, size_t len, const struct imap_header_names *names,
			bool not )
{
	const struct mime_limits *lim = &mime_default_limits;
	const char *p = data, *end = data + len;
	unsigned int kept = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl + 1 : end;
		if (*p == '\n' || (*p == '\r' && le - p == 2 && nl != NULL))
			break; /* the blank line */
		if (*p == ' ' || *p == '\t') {
			p = le; /* continuation of no field we keep */
			continue;
		}
		size_t name_len = field_name_len(p, le);
		if (name_len == 0) {
			if (p == data && le - p >= 5 && memcmp(p, "From ", 5) == 0) {
				p = le; /* an mbox separator */
				continue;
			}
			break; /* the body starts here */
		}
		/* the field and its continuation lines */
		const char *fe = le;
		while (fe < end && (*fe == ' ' || *fe == '\t')) {
			const char *n2 = memchr(fe, '\n', (size_t)(end - fe));
			fe = n2 != NULL ? n2 + 1 : end;
		}
		/* mime_headers_parse() drops fields past its limits */
		bool fits = kept < lim->max_header_count && (size_t)(p - data) < lim->max_header_size &&
			    (size_t)(fe - p) <= lim->max_field_size;
		if (fits) {
			kept++;
			if (names_have(names, p, name_len) != not )
				buf_append(out, p, (size_t)(fe - p));
		}
		p = fe;
	}
	buf_append(out, "\r\n", 2);
}

/* ---- reading raw header blocks ---- */

/* The length of the field starting at p (up to the end of its last
   continuation line, line end included). */
static size_t field_len(const char *p, const char *end)
{
	const char *q = p;
	for (;;) {
		const char *lf = memchr(q, '\n', (size_t)(end - q));
		if (lf == NULL)
			return (size_t)(end - p);
		q = lf + 1;
		if (q >= end || (*q != ' ' && *q != '\t'))
			return (size_t)(q - p);
	}
}

bool imap_header_each(const char *data, size_t len, const char *name,
		      bool (*cb)(void *ctx, const char *value, size_t value_len), void *ctx)
{
	size_t nlen = strlen(name);
	if (nlen == 0)
		return false;
	const char *p = data, *end = data + len;
	char c0 = (char)tolower((unsigned char)name[0]);
	while (p < end) {
		size_t flen = field_len(p, end);
		if (flen == 0)
			break;
		if (flen > nlen && (char)tolower((unsigned char)*p) == c0 &&
		    strncasecmp(p, name, nlen) == 0) {
			/* "Name:" or the obsolete "Name :" (RFC 5322 4.5.8) */
			const char *c = p + nlen;
			while (c < p + flen && (*c == ' ' || *c == '\t'))
				c++;
			if (c < p + flen && *c == ':') {
				const char *v = c + 1, *ve = p + flen;
				while (v < ve && (*v == ' ' || *v == '\t'))
					v++;
				while (ve > v && (ve[-1] == '\n' || ve[-1] == '\r'))
					ve--;
				if (cb(ctx, v, (size_t)(ve - v)))
					return true;
			}
		}
		p += flen;
	}
	return false;
}

bool imap_contains_nocase(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
	if (needle_len == 0)
		return true;
	if (needle_len > hay_len)
		return false;
	unsigned char lo = (unsigned char)tolower((unsigned char)needle[0]);
	unsigned char up = (unsigned char)toupper((unsigned char)needle[0]);
	int second = needle_len > 1 ? tolower((unsigned char)needle[1]) : -1;
	const char *last = hay + hay_len - needle_len;
	for (const char *p = hay; p <= last;) {
		/* jump to the next byte equal to the first needle byte in
		   either case */
		const char *a = memchr(p, lo, (size_t)(last - p) + 1);
		const char *b = lo != up ? memchr(p, up, (size_t)((a != NULL ? a : last + 1) - p)) : NULL;
		const char *c = b != NULL ? b : a;
		if (c == NULL)
			return false;
		if ((second < 0 || tolower((unsigned char)c[1]) == second) &&
		    strncasecmp(c + 1, needle + 1, needle_len - 1) == 0)
			return true;
		p = c + 1;
	}
	return false;
}
