/* SORT and UID SORT (RFC 5256 section 3), with the base-subject rules of
   section 2.1 shared with THREAD.  The keys come from the header blocks
   cached in the index (imap_headers.c), not from the message files. */
#include "imap/imap_sort.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/compose.h"
#include "mime/tree.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- keys ---- */

/* RFC 5256 3: the addr-mailbox of the first address.  A group comes first
   as its start marker, whose mailbox is the group name (RFC 3501 7.4.2). */
static char *first_mailbox(struct pool *pool, const struct mime_headers *h, const char *name)
{
	const char *v = mime_headers_get(pool, h, name);
	if (v == NULL)
		return xstrdup("");
	struct mime_address *a = mime_address_parse(pool, v, strlen(v));
	const char *mailbox = a == NULL                            ? ""
			      : (a->flags & MIME_ADDR_GROUP_START) ? (a->name != NULL ? a->name : "")
								   : a->local;
	char *r = xstrdup(mailbox);
	for (char *p = r; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return r;
}

static char *header_dup(struct pool *pool, const struct mime_headers *h, const char *name)
{
	const char *v = mime_headers_get(pool, h, name);
	return v != NULL ? xstrdup(v) : NULL;
}

void imap_sort_keys_from_header(struct imap_sort_keys *k, const struct imap_msg *m, uint32_t seq,
				const char *header, size_t header_len)
{
	memset(k, 0, sizeof(*k));
	k->seq = seq;
	k->uid = m->uid;
	k->size = m->size;
	k->arrival = m->internaldate;
	k->date = k->arrival;
	if (header == NULL) {
		k->subject = xstrdup("");
		k->from = xstrdup("");
		k->to = xstrdup("");
		k->cc = xstrdup("");
		return;
	}
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, header, header_len, NULL);
	const char *d = mime_headers_get(pool, h, "Date");
	time_t t;
	int tz;
	/* RFC 5256 2.2: the sent date, else the internal date */
	if (d != NULL && mime_date_parse(d, strlen(d), &t, &tz) == 0)
		k->date = (int64_t)t;
	if (m->base_subject != NULL) {
		k->subject = xstrdup(m->base_subject);
		k->subject_reply = m->subject_reply;
	} else {
		k->subject = imap_base_subject(mime_headers_get_utf8(pool, h, "Subject"), &k->subject_reply);
	}
	k->from = first_mailbox(pool, h, "From");
	k->to = first_mailbox(pool, h, "To");
	k->cc = first_mailbox(pool, h, "Cc");
	k->message_id = header_dup(pool, h, "Message-ID");
	k->references = header_dup(pool, h, "References");
	k->in_reply_to = header_dup(pool, h, "In-Reply-To");
	pool_destroy(&pool);
}

struct imap_sort_keys *imap_sort_keys_load_all(struct imap_session *s, const uint32_t *seqs, uint32_t n)
{
	struct imap_view *v = s->view;
	struct imap_sort_keys *keys = xcalloc(n + 1, sizeof(*keys));
	uint32_t *uids = xmalloc((n + 1) * sizeof(*uids));
	for (uint32_t i = 0; i < n; i++)
		uids[i] = imap_view_uid(v, seqs[i]);
	struct imap_header_run run;
	imap_header_run_load(&run, v->mbox, uids, n);
	for (uint32_t i = 0; i < n; i++) {
		struct imap_msg *m = imap_mbox_find_mutable(v->mbox, uids[i]);
		struct imap_msg gone = {.uid = uids[i]};
		const char *h = NULL;
		size_t hlen = 0;
		if (m == NULL || !imap_header_run_get(&run, i, &h, &hlen))
			h = NULL;
		imap_sort_keys_from_header(&keys[i], m != NULL ? m : &gone, seqs[i], h, hlen);
		/* kept in the shared table for the next SORT or THREAD of any
		   session (a later change stores sort keys in the index) */
		if (m != NULL && h != NULL && m->base_subject == NULL) {
			m->base_subject = xstrdup(keys[i].subject);
			m->subject_reply = keys[i].subject_reply;
		}
	}
	imap_header_run_done(&run);
	free(uids);
	return keys;
}

void imap_sort_keys_free(struct imap_sort_keys *k)
{
	free(k->subject);
	free(k->from);
	free(k->to);
	free(k->cc);
	free(k->message_id);
	free(k->references);
	free(k->in_reply_to);
}

enum sort_key { SK_ARRIVAL, SK_CC, SK_DATE, SK_FROM, SK_SIZE, SK_SUBJECT, SK_TO };

struct sort_crit {
	enum sort_key key;
	bool reverse;
};

static struct sort_crit crits[16];
static unsigned int ncrits;

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

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int sort_cmp(const void *pa, const void *pb)
{
	const struct imap_sort_keys *a = pa, *b = pb;
	for (unsigned int i = 0; i < ncrits; i++) {
		int r = 0;
		switch (crits[i].key) {
		case SK_ARRIVAL:
			r = cmp_i64(a->arrival, b->arrival);
			break;
		case SK_DATE:
			r = cmp_i64(a->date, b->date);
			break;
		case SK_SIZE:
			r = cmp_i64((int64_t)a->size, (int64_t)b->size);
			break;
		case SK_CC:
			r = strcmp(a->cc, b->cc);
			break;
		case SK_FROM:
			r = strcmp(a->from, b->from);
			break;
		case SK_TO:
			r = strcmp(a->to, b->to);
			break;
		case SK_SUBJECT:
			r = imap_casemap_cmp(a->subject, b->subject);
			break;
		}
		if (r != 0)
			return crits[i].reverse ? -r : r;
	}
	/* RFC 5256 3: ties are broken by sequence number */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int parse_criteria(const struct imap_arg *list, const char **error_r)
{
	static const struct {
		const char *name;
		enum sort_key key;
	} names[] = {
	    {"ARRIVAL", SK_ARRIVAL}, {"CC", SK_CC},           {"DATE", SK_DATE}, {"FROM", SK_FROM},
	    {"SIZE", SK_SIZE},       {"SUBJECT", SK_SUBJECT}, {"TO", SK_TO},     {"DISPLAYFROM", SK_FROM},
	    {"DISPLAYTO", SK_TO}};
	ncrits = 0;
	bool reverse = false;
	if (list->type != IMAP_ARG_LIST || list->count == 0 || list->count > N_ELEMENTS(crits)) {
		*error_r = "SORT needs a list of criteria";
		return -1;
	}
	for (unsigned int i = 0; i < list->count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_atom_equals(a, "REVERSE") && !reverse) {
			reverse = true;
			continue;
		}
		size_t k;
		for (k = 0; k < N_ELEMENTS(names); k++)
			if (imap_arg_atom_equals(a, names[k].name))
				break;
		if (k == N_ELEMENTS(names)) {
			*error_r = "Unknown sort criterion";
			return -1;
		}
		crits[ncrits].key = names[k].key;
		crits[ncrits++].reverse = reverse;
		reverse = false;
	}
	if (reverse) {
		*error_r = "REVERSE must precede a criterion";
		return -1;
	}
	return 0;
}

int imap_sort_search(struct imap_cmd_ctx *c, const struct imap_arg *args, unsigned int count,
		     uint32_t **seqs_r, uint32_t *n_r, const char **error_r)
{
	const char *charset = count > 0 ? imap_arg_astring(&args[0]) : NULL;
	if (charset == NULL || count < 2) {
		*error_r = "A charset and search keys are needed";
		return -1;
	}
	if (strcasecmp(charset, "UTF-8") != 0 && strcasecmp(charset, "US-ASCII") != 0) {
		imap_tagged(c->s, "NO", "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset");
		return 1;
	}
	struct imap_search_key *key;
	bool modseq;
	if (imap_search_parse_keys(c->pool, args + 1, count - 1, &key, &modseq, error_r) < 0)
		return -1;
	char *error = NULL;
	if (imap_search_run(c->s, key, seqs_r, n_r, &error) < 0) {
		imap_internal_error(c->s, "search", error);
		return 1;
	}
	return 0;
}

int imap_cmd_sort(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	if (c->count < 3) {
		*error_r = "SORT needs criteria, a charset and search keys";
		return -1;
	}
	if (parse_criteria(&c->args[0], error_r) < 0)
		return -1;
	uint32_t *seqs, n;
	int r = imap_sort_search(c, c->args + 1, c->count - 1, &seqs, &n, error_r);
	if (r != 0)
		return r < 0 ? -1 : 0;
	struct imap_sort_keys *keys = imap_sort_keys_load_all(s, seqs, n);
	qsort(keys, n, sizeof(*keys), sort_cmp);
	struct buf out = BUF_INIT;
	buf_append_str(&out, "* SORT");
	for (uint32_t i = 0; i < n; i++) {
		buf_printf(&out, " %u", c->uid ? keys[i].uid : keys[i].seq);
		imap_sort_keys_free(&keys[i]);
	}
	buf_append_str(&out, "\r\n");
	imap_write_buf(s, &out);
	buf_free(&out);
	free(keys);
	free(seqs);
	imap_tagged(s, "OK", "%sSORT completed", c->uid ? "UID " : "");
	return 0;
}
