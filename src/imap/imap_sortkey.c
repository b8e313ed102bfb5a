/* SORT and THREAD keys of one message (RFC 5256, RFC 5957): built from
   the header block once, encoded as the index's sort-key record and
   decoded from it.  The record: a format byte, a flags byte, the sent
   date (8 bytes, little-endian), the number of reference IDs (4 bytes,
   little-endian), then NUL-terminated strings: the six texts of enum
   imap_sortkey_text, the message ID ("" for none) and the reference IDs.
   A change to what goes in (base-subject rules, address choice) bumps
   IMAP_SORTKEY_FORMAT: records of another format are built again. */
#include "imap/imap_sortkey.h"
#include "lib/buf.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/compose.h"
#include "mime/header.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMAP_SORTKEY_FORMAT 1
#define RECORD_HEAD 14 /* format, flags, date, nrefs */
#define FLAG_HAS_DATE 0x01
#define FLAG_REPLY 0x02

const struct imap_sortkey imap_sortkey_empty = {
    .text = {"", "", "", "", "", ""},
    .refs = "",
};

/* ---- base subject (RFC 5256 2.1) ---- */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP, BLOBCHAR = any CHAR but "[" and "]".
   Returns the length matched at p, 0 when none. */
static size_t match_blob(const char *p)
{
	if (*p != '[')
		return 0;
	size_t i = 1;
	while (p[i] != '\0' && p[i] != '[' && p[i] != ']')
		i++;
	if (p[i] != ']')
		return 0;
	i++;
	while (is_wsp(p[i]))
		i++;
	return i;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static size_t match_refwd(const char *p)
{
	size_t i;
	if (strncasecmp(p, "re", 2) == 0)
		i = 2;
	else if (strncasecmp(p, "fwd", 3) == 0)
		i = 3;
	else if (strncasecmp(p, "fw", 2) == 0)
		i = 2;
	else
		return 0;
	while (is_wsp(p[i]))
		i++;
	i += match_blob(p + i);
	return p[i] == ':' ? i + 1 : 0;
}

/* Steps (3) to (5) on s[start..len), which does not end in WSP (step 2
   removed it): removes subj-leaders (*subj-blob subj-refwd, or one WSP)
   and a leading subj-blob that non-WSP text follows, as long as either
   matches; returns the new start and sets *reply when a subj-refwd went.

   Taken literally, each pass looks for a subj-refwd after every blob of a
   run "[a][b][c]..." and then removes just the first blob: quadratic in
   the number of blobs.  But a subj-refwd can only start where the run
   ends (inside it the next character is "["), so each run is scanned
   once: followed by a subj-refwd, run and refwd are one leader; if not,
   step (4) removes every blob of the run but a last one that ends the
   text. */
static size_t strip_leaders(const char *s, size_t start, size_t len, bool *reply)
{
	for (;;) {
		if (start < len && is_wsp(s[start])) {
			start++;
			continue;
		}
		size_t end = start, last = start, n;
		while ((n = match_blob(s + end)) > 0) {
			last = end;
			end += n;
		}
		n = match_refwd(s + end);
		if (n > 0) {
			*reply = true;
			start = end + n;
			continue;
		}
		size_t next = end < len ? end : last;
		if (next == start)
			return start;
		start = next;
	}
}

char *imap_base_subject(const char *subject, bool *is_reply_r)
{
	/* (1) decoded by the caller; tabs and line ends become spaces,
	   runs of spaces become one */
	struct buf b = BUF_INIT;
	bool reply = false;
	for (const char *p = subject != NULL ? subject : ""; *p; p++) {
		char c = *p == '\t' || *p == '\r' || *p == '\n' ? ' ' : *p;
		if (c == ' ' && b.len > 0 && b.data[b.len - 1] == ' ')
			continue;
		buf_append_char(&b, c);
	}
	char *s = buf_steal(&b);
	if (s == NULL)
		s = xstrdup("");
	size_t start = 0, len = strlen(s);
	for (;;) {
		/* (2) subj-trailer = "(fwd)" / WSP, as often as it matches */
		for (;;) {
			if (len > start && is_wsp(s[len - 1])) {
				len--;
			} else if (len - start >= 5 && strncasecmp(s + len - 5, "(fwd)", 5) == 0) {
				len -= 5;
				reply = true;
			} else {
				break;
			}
		}
		s[len] = '\0';
		/* (3) leaders and (4) a leading blob when text follows it,
		   (5) until neither matches */
		start = strip_leaders(s, start, len, &reply);
		/* (6) "[fwd:" ... "]" around the rest: remove, back to (2) */
		if (len - start >= 6 && strncasecmp(s + start, "[fwd:", 5) == 0 && s[len - 1] == ']') {
			start += 5;
			len--;
			s[len] = '\0';
			reply = true;
			continue;
		}
		break;
	}
	memmove(s, s + start, len - start + 1);
	if (is_reply_r != NULL)
		*is_reply_r = reply;
	return s;
}

/* The i;ascii-casemap collation (RFC 5256 3, RFC 4790 9.2): a-z compare as
   A-Z, so "_" sorts after letters (it does not with tolower()). */
int imap_casemap_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = toupper((unsigned char)*a), y = toupper((unsigned char)*b);
		if (x != y || x == 0)
			return x - y;
	}
}

/* ---- building ---- */

/* Appends the next "<...>" message ID of *p (whitespace inside removed)
   and a NUL to out; false when there is none.  One pass over the text: a
   "<" before the closing ">" starts the ID again ("<<id>", an unclosed
   "<"), and "<>" is no ID. */
static bool next_msgid(const char **p, struct buf *out)
{
	const char *lt = NULL;
	for (const char *c = *p; c != NULL && *c != '\0'; c++) {
		if (*c == '<') {
			lt = c;
			continue;
		}
		if (*c != '>' || lt == NULL)
			continue;
		size_t start = out->len;
		for (const char *q = lt; q <= c; q++)
			if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
				buf_append_char(out, *q);
		lt = NULL;
		if (out->len - start > 2) {
			buf_append_char(out, '\0');
			*p = c + 1;
			return true;
		}
		buf_truncate(out, start);
	}
	*p = NULL;
	return false;
}

/* Appends the two texts of an address field (raw value, may be NULL):
   the addr-mailbox of its first address (RFC 5256 3), and what RFC 5957
   section 3 sorts on, the display name (decoded) or else the addr-spec.
   A group comes first as its start marker, whose mailbox and display
   name is the group name (RFC 3501 7.4.2).  Each ends in a NUL. */
static void first_address(struct pool *pool, const char *value, struct buf *mailbox, struct buf *display)
{
	struct mime_address *a = value != NULL ? mime_address_parse(pool, value, strlen(value)) : NULL;
	if (a != NULL) {
		bool group = a->flags & MIME_ADDR_GROUP_START;
		buf_append_str(mailbox, group ? (a->name != NULL ? a->name : "") : a->local);
		const char *name = mime_address_name_utf8(pool, a);
		if (name != NULL && *name != '\0')
			buf_append_str(display, name);
		else if (!group)
			mime_address_format_spec(display, a);
	}
	buf_append_char(mailbox, '\0');
	buf_append_char(display, '\0');
}

/* The keys over the strings data[0..len) (the record after its head);
   NULL when they are not IMAP_SORTKEY_TEXTS + 1 + nrefs NUL-terminated
   strings exactly. */
static struct imap_sortkey *key_new(const char *data, size_t len, uint32_t nrefs)
{
	if (nrefs > len) /* each ID takes a byte at least: no huge allocation */
		return NULL;
	struct imap_sortkey *k = xmalloc(sizeof(*k) + (size_t)nrefs * sizeof(uint64_t) + len + 1);
	memset(k, 0, sizeof(*k));
	char *copy = (char *)(k->storage + nrefs);
	memcpy(copy, data, len);
	copy[len] = '\0';
	k->data = copy;
	k->data_len = len;
	k->nrefs = nrefs;
	k->ref_hash = k->storage;
	const char *p = copy, *end = copy + len;
	for (uint64_t i = 0; i < IMAP_SORTKEY_TEXTS + 1 + (uint64_t)nrefs; i++) {
		const char *z = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
		if (z == NULL) {
			free(k);
			return NULL;
		}
		if (i < IMAP_SORTKEY_TEXTS)
			k->text[i] = p;
		else if (i == IMAP_SORTKEY_TEXTS)
			k->message_id = *p != '\0' ? p : NULL;
		else
			k->storage[i - IMAP_SORTKEY_TEXTS - 1] = hash_str(p);
		if (i == IMAP_SORTKEY_TEXTS + 1)
			k->refs = p;
		p = z + 1;
	}
	if (p != end) {
		free(k);
		return NULL;
	}
	if (nrefs == 0)
		k->refs = end;
	k->id_hash = k->message_id != NULL ? hash_str(k->message_id) : 0;
	k->subject_hash = hash_str_icase(k->text[IMAP_SORTKEY_SUBJECT]);
	return k;
}

struct imap_sortkey *imap_sortkey_build(const struct imap_sortkey_fields *f)
{
	struct pool *pool = pool_create(1024);
	struct buf texts = BUF_INIT, from = BUF_INIT, to = BUF_INIT, cc = BUF_INIT;
	bool reply = false;
	char *subject = imap_base_subject(f->subject, &reply);
	buf_append(&texts, subject, strlen(subject) + 1);
	free(subject);
	first_address(pool, f->from, &texts, &from);
	first_address(pool, f->to, &texts, &to);
	first_address(pool, f->cc, &texts, &cc); /* RFC 5957 has no DISPLAYCC */
	buf_append(&texts, from.data, from.len);
	buf_append(&texts, to.data, to.len);
	const char *p = f->message_id;
	if (!next_msgid(&p, &texts))
		buf_append_char(&texts, '\0');
	/* step 1 (B) of THREAD REFERENCES: In-Reply-To only when References
	   holds no valid ID, and then its first ID only */
	uint32_t nrefs = 0;
	for (p = f->references; next_msgid(&p, &texts);)
		nrefs++;
	p = f->in_reply_to;
	if (nrefs == 0 && next_msgid(&p, &texts))
		nrefs = 1;
	struct imap_sortkey *k = key_new(texts.data, texts.len, nrefs);
	if (k == NULL)
		log_panic("imap_sortkey_build: keys do not parse back");
	k->subject_reply = reply;
	time_t t;
	int tz;
	/* RFC 5256 2.2: the sent date; the owner falls back to INTERNALDATE */
	if (f->date != NULL && mime_date_parse(f->date, strlen(f->date), &t, &tz) == 0) {
		k->has_date = true;
		k->date = (int64_t)t;
	}
	buf_free(&texts);
	buf_free(&from);
	buf_free(&to);
	buf_free(&cc);
	pool_destroy(&pool);
	return k;
}

struct imap_sortkey *imap_sortkey_from_header(const char *header, size_t len)
{
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, header, len, NULL);
	struct imap_sortkey_fields f = {
	    .subject = mime_headers_get_utf8(pool, h, "Subject"),
	    .from = mime_headers_get(pool, h, "From"),
	    .to = mime_headers_get(pool, h, "To"),
	    .cc = mime_headers_get(pool, h, "Cc"),
	    .date = mime_headers_get(pool, h, "Date"),
	    .message_id = mime_headers_get(pool, h, "Message-ID"),
	    .references = mime_headers_get(pool, h, "References"),
	    .in_reply_to = mime_headers_get(pool, h, "In-Reply-To"),
	};
	struct imap_sortkey *k = imap_sortkey_build(&f);
	pool_destroy(&pool);
	return k;
}

/* ---- the index record ---- */

void imap_sortkey_encode(const struct imap_sortkey *key, struct buf *out)
{
	uint8_t head[RECORD_HEAD];
	uint64_t date = key->has_date ? (uint64_t)key->date : 0; /* else the owner's INTERNALDATE */
	head[0] = IMAP_SORTKEY_FORMAT;
	head[1] = (uint8_t)((key->has_date ? FLAG_HAS_DATE : 0) | (key->subject_reply ? FLAG_REPLY : 0));
	for (int i = 0; i < 8; i++)
		head[2 + i] = (uint8_t)(date >> (8 * i));
	for (int i = 0; i < 4; i++)
		head[10 + i] = (uint8_t)(key->nrefs >> (8 * i));
	buf_append(out, head, sizeof(head));
	buf_append(out, key->data, key->data_len);
}

struct imap_sortkey *imap_sortkey_decode(const void *data, size_t len)
{
	const uint8_t *p = data;
	if (len < RECORD_HEAD || p[0] != IMAP_SORTKEY_FORMAT || (p[1] & ~(FLAG_HAS_DATE | FLAG_REPLY)) != 0)
		return NULL;
	uint64_t date = 0;
	uint32_t nrefs = 0;
	for (int i = 0; i < 8; i++)
		date |= (uint64_t)p[2 + i] << (8 * i);
	for (int i = 0; i < 4; i++)
		nrefs |= (uint32_t)p[10 + i] << (8 * i);
	struct imap_sortkey *k = key_new((const char *)p + RECORD_HEAD, len - RECORD_HEAD, nrefs);
	if (k == NULL)
		return NULL;
	k->has_date = p[1] & FLAG_HAS_DATE;
	k->subject_reply = p[1] & FLAG_REPLY;
	k->date = k->has_date ? (int64_t)date : 0;
	return k;
}

void imap_sortkey_free(struct imap_sortkey **key)
{
	free(*key);
	*key = NULL;
}
