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
		run->data[i] = xmalloc(len + 1);
		memcpy(run->data[i], data, len);
		run->data[i][len] = '\0';
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
		free(run->data[i]);
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
