/* SORT and UID SORT (RFC 5256 section 3, RFC 5957 DISPLAYFROM and
   DISPLAYTO).

   Each message's keys (imap_sortkey.h) are built once, from its header
   block, and kept in the index; a SORT or THREAD reads those it lacks in
   one range query into the mailbox's shared table, where later commands
   of every session find them.  Texts are compared as ranks, their place
   among the texts of every keyed message of the mailbox, worked out once
   after keys were added: a sort then compares integers only. */
#include "imap/imap_sort.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store_imap_extra.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- keys ---- */

/* The messages that have no keys in the table yet. */
struct key_load {
	struct imap_mbox *mbox;
	struct imap_sort_msg *msgs;
	uint32_t *missing;       /* indexes into msgs, ascending UID */
	struct imap_msg **table; /* their entries in the shared table */
	uint32_t count, next;
};

static void key_attach(struct key_load *l, uint32_t j, struct imap_sortkey *key)
{
	/* RFC 5256 2.2: no valid Date: field, the INTERNALDATE */
	if (!key->has_date)
		key->date = l->table[j]->internaldate;
	l->table[j]->sortkey = key;
	l->msgs[l->missing[j]].key = key;
	l->mbox->sortkey_gen++;
}

static int key_row(void *ctx, uint32_t uid, const char *data, size_t len)
{
	struct key_load *l = ctx;
	while (l->next < l->count && l->msgs[l->missing[l->next]].uid < uid)
		l->next++;
	if (l->next == l->count)
		return 1;
	if (l->msgs[l->missing[l->next]].uid != uid)
		return 0;
	/* a record of another format: built again below */
	struct imap_sortkey *key = imap_sortkey_decode(data, len);
	if (key != NULL)
		key_attach(l, l->next, key);
	return 0;
}

/* Writes the records of uids[0..n) to the index: record i is
   recs[ends[i - 1]..ends[i]) (ends[-1] = 0), none when empty.  The one
   place SORT and THREAD write: a job does, in one transaction
   (imap_cache.c). */
static void keys_write(struct imap_mbox *mbox, const uint32_t *uids, const char *recs, const size_t *ends,
		       uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		size_t start = i > 0 ? ends[i - 1] : 0;
		if (ends[i] > start)
			imap_cache_fill_add(mbox, uids[i], IMAP_CACHE_SORTKEY, recs + start, ends[i] - start);
	}
	imap_cache_fill_flush(mbox);
}

/* Builds the keys of the messages still without from their header blocks
   (cached, else read from the files) and writes them to the index. */
static void keys_build(struct key_load *l)
{
	uint32_t n = 0;
	for (uint32_t j = 0; j < l->count; j++) {
		if (l->table[j]->sortkey == NULL) {
			l->table[n] = l->table[j];
			l->missing[n++] = l->missing[j];
		}
	}
	if (n == 0)
		return;
	l->count = n;
	/* imap_header_run_load() copies one UID past the end */
	uint32_t *uids = xmalloc(((size_t)n + 1) * sizeof(*uids));
	size_t *ends = xmalloc((size_t)n * sizeof(*ends));
	struct buf recs = BUF_INIT;
	for (uint32_t j = 0; j < n; j++)
		uids[j] = l->msgs[l->missing[j]].uid;
	struct imap_header_run run;
	imap_header_run_load(&run, l->mbox, uids, n);
	for (uint32_t j = 0; j < n; j++) {
		const char *h;
		size_t hlen;
		/* gone: no keys, the empty ones this time */
		if (imap_header_run_get(&run, j, &h, &hlen)) {
			struct imap_sortkey *key = imap_sortkey_from_header(h, hlen);
			imap_sortkey_encode(key, &recs);
			key_attach(l, j, key);
		}
		ends[j] = recs.len;
	}
	imap_header_run_done(&run);
	keys_write(l->mbox, uids, recs.data, ends, n);
	buf_free(&recs);
	free(ends);
	free(uids);
}

struct imap_sort_msg *imap_sort_msgs_load(struct imap_session *s, const uint32_t *seqs, uint32_t n)
{
	struct imap_view *v = s->view;
	struct key_load l = {.mbox = v->mbox};
	l.msgs = xcalloc(n + 1, sizeof(*l.msgs));
	l.missing = xmalloc((n + 1) * sizeof(*l.missing));
	l.table = xmalloc((n + 1) * sizeof(*l.table));
	struct imap_mbox *mbox = v->mbox;
	uint32_t j = 0; /* the view's UIDs and the table both ascend */
	for (uint32_t i = 0; i < n; i++) {
		struct imap_sort_msg *sm = &l.msgs[i];
		sm->seq = seqs[i];
		sm->uid = imap_view_uid(v, seqs[i]);
		while (j < mbox->count && mbox->msgs[j].uid < sm->uid)
			j++;
		if (j == mbox->count || mbox->msgs[j].uid != sm->uid)
			continue; /* expunged meanwhile: empty keys */
		struct imap_msg *m = &mbox->msgs[j];
		sm->size = m->size;
		sm->arrival = m->internaldate;
		sm->key = m->sortkey;
		if (m->sortkey == NULL) {
			l.table[l.count] = m;
			l.missing[l.count++] = i;
		}
	}
	if (l.count > 0) {
		char *error = NULL;
		uint32_t lo = l.msgs[l.missing[0]].uid, hi = l.msgs[l.missing[l.count - 1]].uid;
		if (store_cache_get_sortkey_range(mbox->smbox, lo, hi, key_row, &l, &error) < 0) {
			log_error("imap sort-key read failed mailbox=%s: %s", mbox->name, error);
			free(error);
		}
		keys_build(&l);
	}
	for (uint32_t i = 0; i < n; i++)
		if (l.msgs[i].key == NULL)
			l.msgs[i].key = &imap_sortkey_empty;
	free(l.missing);
	free(l.table);
	return l.msgs;
}

/* ---- ranks ---- */

static int cmp_text(const void *pa, const void *pb, void *ctx)
{
	const struct imap_sortkey *a = *(struct imap_sortkey *const *)pa;
	const struct imap_sortkey *b = *(struct imap_sortkey *const *)pb;
	enum imap_sortkey_text t = *(const enum imap_sortkey_text *)ctx;
	return imap_casemap_cmp(a->text[t], b->text[t]);
}

/* Ranks text t of every keyed message of mbox (unless done since keys
   were last added): equal texts (i;ascii-casemap) get one rank, "" (the
   rank of the empty keys) 0, the others 1, 2, ... in order.  Keys that
   leave with their message take their rank along; the others keep their
   order. */
static void rank_texts(struct imap_mbox *mbox, enum imap_sortkey_text t)
{
	if (mbox->sortkey_ranked[t] == mbox->sortkey_gen)
		return;
	struct imap_sortkey **keys = xmalloc(((size_t)mbox->count + 1) * sizeof(*keys));
	uint32_t n = 0;
	for (uint32_t i = 0; i < mbox->count; i++)
		if (mbox->msgs[i].sortkey != NULL)
			keys[n++] = mbox->msgs[i].sortkey;
	qsort_r(keys, n, sizeof(*keys), cmp_text, &t);
	uint32_t rank = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i == 0 ? keys[i]->text[t][0] != '\0'
			   : imap_casemap_cmp(keys[i]->text[t], keys[i - 1]->text[t]) != 0)
			rank++;
		keys[i]->rank[t] = rank;
	}
	free(keys);
	mbox->sortkey_ranked[t] = mbox->sortkey_gen;
}

/* ---- sorting ---- */

enum sort_key { SK_ARRIVAL, SK_DATE, SK_SIZE, SK_TEXT };

struct sort_crit {
	enum sort_key key;
	enum imap_sortkey_text text; /* SK_TEXT */
	bool reverse;
};

struct sort_ctx {
	struct sort_crit crits[16];
	unsigned int ncrits;
};

/* One message's value for a criterion, as an unsigned number in sort
   order (REVERSE: inverted). */
static uint64_t crit_value(const struct sort_crit *c, const struct imap_sort_msg *m)
{
	uint64_t v = 0;
	switch (c->key) {
	case SK_ARRIVAL:
		v = (uint64_t)m->arrival ^ (UINT64_C(1) << 63);
		break;
	case SK_DATE:
		v = (uint64_t)m->key->date ^ (UINT64_C(1) << 63);
		break;
	case SK_SIZE:
		v = m->size;
		break;
	case SK_TEXT:
		v = m->key->rank[c->text];
		break;
	}
	return c->reverse ? ~v : v;
}

/* What the sort moves: a criterion's value and the message's index. */
struct sort_item {
	uint64_t value;
	uint32_t i;
};

/* Sorts items[0..n) by value, keeping the order of equal ones (LSD radix
   sort, a byte a pass; a byte that all items share costs no pass): no
   comparator calls, which took half the time of a SORT with qsort(). */
static void radix_sort(struct sort_item *items, uint32_t n)
{
	if (n < 2)
		return;
	uint32_t(*count)[256] = xcalloc(8, sizeof(*count));
	for (uint32_t i = 0; i < n; i++)
		for (unsigned int b = 0; b < 8; b++)
			count[b][(items[i].value >> (8 * b)) & 0xff]++;
	struct sort_item *tmp = xmalloc((size_t)n * sizeof(*tmp)), *src = items, *dst = tmp;
	for (unsigned int b = 0; b < 8; b++) {
		if (count[b][(items[0].value >> (8 * b)) & 0xff] == n)
			continue;
		uint32_t at = 0;
		for (unsigned int d = 0; d < 256; d++) {
			uint32_t c = count[b][d];
			count[b][d] = at;
			at += c;
		}
		for (uint32_t i = 0; i < n; i++)
			dst[count[b][(src[i].value >> (8 * b)) & 0xff]++] = src[i];
		struct sort_item *t = src;
		src = dst;
		dst = t;
	}
	if (src != items)
		memcpy(items, src, (size_t)n * sizeof(*items));
	free(tmp);
	free(count);
}

/* Sorts msgs[0..n) (in sequence order) by every criterion into items:
   a stable sort by each criterion from the last to the first leaves them
   in the order of the first, ties in the order of the next, and so on,
   the last ties in sequence order (RFC 5256 3). */
static struct sort_item *sort_msgs(const struct imap_sort_msg *msgs, uint32_t n, const struct sort_ctx *sc)
{
	struct sort_item *items = xmalloc(((size_t)n + 1) * sizeof(*items));
	for (uint32_t i = 0; i < n; i++)
		items[i].i = i;
	for (unsigned int k = sc->ncrits; k-- > 0;) {
		for (uint32_t i = 0; i < n; i++)
			items[i].value = crit_value(&sc->crits[k], &msgs[items[i].i]);
		radix_sort(items, n);
	}
	return items;
}

static int parse_criteria(struct sort_ctx *sc, const struct imap_arg *list, const char **error_r)
{
	static const struct {
		const char *name;
		enum sort_key key;
		enum imap_sortkey_text text;
	} names[] = {
	    {"ARRIVAL", SK_ARRIVAL, 0},
	    {"CC", SK_TEXT, IMAP_SORTKEY_CC},
	    {"DATE", SK_DATE, 0},
	    {"FROM", SK_TEXT, IMAP_SORTKEY_FROM},
	    {"SIZE", SK_SIZE, 0},
	    {"SUBJECT", SK_TEXT, IMAP_SORTKEY_SUBJECT},
	    {"TO", SK_TEXT, IMAP_SORTKEY_TO},
	    {"DISPLAYFROM", SK_TEXT, IMAP_SORTKEY_DISPLAYFROM},
	    {"DISPLAYTO", SK_TEXT, IMAP_SORTKEY_DISPLAYTO},
	};
	sc->ncrits = 0;
	bool reverse = false;
	if (list->type != IMAP_ARG_LIST || list->count == 0 || list->count > N_ELEMENTS(sc->crits)) {
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
		struct sort_crit *c = &sc->crits[sc->ncrits++];
		c->key = names[k].key;
		c->text = names[k].text;
		c->reverse = reverse;
		reverse = false;
	}
	if (reverse) {
		*error_r = "REVERSE must precede a criterion";
		return -1;
	}
	return 0;
}

void imap_sort_append_number(struct buf *out, uint32_t n)
{
	char tmp[10];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0);
	buf_append(out, tmp + i, sizeof(tmp) - i);
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
	struct sort_ctx sc;
	if (parse_criteria(&sc, &c->args[0], error_r) < 0)
		return -1;
	uint32_t *seqs, n;
	int r = imap_sort_search(c, c->args + 1, c->count - 1, &seqs, &n, error_r);
	if (r != 0)
		return r < 0 ? -1 : 0;
	struct imap_sort_msg *msgs = imap_sort_msgs_load(s, seqs, n);
	for (unsigned int k = 0; k < sc.ncrits; k++)
		if (sc.crits[k].key == SK_TEXT)
			rank_texts(s->view->mbox, sc.crits[k].text);
	struct sort_item *items = sort_msgs(msgs, n, &sc);
	struct buf out = BUF_INIT;
	buf_reserve(&out, (size_t)n * 11 + 16);
	buf_append_str(&out, "* SORT");
	for (uint32_t i = 0; i < n; i++) {
		buf_append_char(&out, ' ');
		const struct imap_sort_msg *m = &msgs[items[i].i];
		imap_sort_append_number(&out, c->uid ? m->uid : m->seq);
	}
	buf_append_str(&out, "\r\n");
	imap_write_buf(s, &out);
	buf_free(&out);
	free(items);
	free(msgs);
	free(seqs);
	imap_tagged(s, "OK", "%sSORT completed", c->uid ? "UID " : "");
	return 0;
}
