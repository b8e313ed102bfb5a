/* SORT and UID SORT (RFC 5256 section 3), with the base-subject rules of
   section 2.1 shared with THREAD. */
#include "imap/imap_sort.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/compose.h"
#include "mime/tree.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 5256 2.1, simplified: decoded, lowercased, whitespace collapsed,
   then "re:", "fw:", "fwd:" and "[blob]" prefixes and "(fwd)" trailers
   removed until nothing changes. */
char *imap_base_subject(const char *subject)
{
	struct buf b = BUF_INIT;
	bool space = false;
	for (const char *p = subject != NULL ? subject : ""; *p; p++) {
		if (isspace((unsigned char)*p)) {
			space = b.len > 0;
			continue;
		}
		if (space)
			buf_append_char(&b, ' ');
		space = false;
		buf_append_char(&b, (char)tolower((unsigned char)*p));
	}
	char *s = buf_steal(&b);
	if (s == NULL)
		s = xstrdup("");
	bool changed = true;
	while (changed) {
		changed = false;
		size_t n = strlen(s);
		if (n >= 5 && strcmp(s + n - 5, "(fwd)") == 0) {
			s[n - 5] = '\0';
			while (n > 5 && s[strlen(s) - 1] == ' ')
				s[strlen(s) - 1] = '\0';
			changed = true;
		}
		char *p = s;
		while (*p == ' ')
			p++;
		if (*p == '[') {
			char *e = strchr(p, ']');
			if (e != NULL && e[1] != '\0') {
				p = e + 1;
				changed = true;
			}
		}
		static const char *const prefixes[] = { "re", "fwd", "fw" };
		for (size_t i = 0; i < N_ELEMENTS(prefixes); i++) {
			size_t pl = strlen(prefixes[i]);
			if (strncmp(p, prefixes[i], pl) == 0) {
				char *q = p + pl;
				while (*q == ' ')
					q++;
				if (*q == '[') {
					char *e = strchr(q, ']');
					if (e != NULL)
						q = e + 1;
				}
				if (*q == ':') {
					p = q + 1;
					changed = true;
					break;
				}
			}
		}
		while (*p == ' ')
			p++;
		if (p != s)
			memmove(s, p, strlen(p) + 1);
	}
	return s;
}

static char *first_mailbox(struct pool *pool, const struct mime_headers *h, const char *name)
{
	const char *v = mime_headers_get(pool, h, name);
	if (v == NULL)
		return xstrdup("");
	struct mime_address *a = mime_address_parse(pool, v, strlen(v));
	while (a != NULL && a->local == NULL)
		a = a->next;
	char *r = xstrdup(a != NULL && a->local != NULL ? a->local : "");
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

int imap_sort_keys_load(struct imap_session *s, uint32_t seq, struct imap_sort_keys *k)
{
	memset(k, 0, sizeof(*k));
	k->seq = seq;
	k->uid = imap_view_uid(s->view, seq);
	const struct imap_msg *m = imap_mbox_find(s->view->mbox, k->uid);
	if (m != NULL) {
		k->size = m->size;
		k->arrival = m->internaldate;
	}
	k->date = k->arrival;
	struct imap_message msg;
	char *error = NULL;
	if (imap_message_read(s->view->mbox, k->uid, &msg, &error) <= 0) {
		free(error);
		k->subject = xstrdup("");
		k->from = xstrdup("");
		k->to = xstrdup("");
		k->cc = xstrdup("");
		return 0;
	}
	/* only the header block is needed */
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, msg.data, msg.size, NULL);
	const char *d = mime_headers_get(pool, h, "Date");
	time_t t;
	int tz;
	if (d != NULL && mime_date_parse(d, strlen(d), &t, &tz) == 0)
		k->date = (int64_t)t;
	k->subject = imap_base_subject(mime_headers_get_utf8(pool, h, "Subject"));
	k->from = first_mailbox(pool, h, "From");
	k->to = first_mailbox(pool, h, "To");
	k->cc = first_mailbox(pool, h, "Cc");
	const char *mid = mime_headers_get(pool, h, "Message-ID");
	k->message_id = mid != NULL ? xstrdup(mid) : NULL;
	const char *refs = mime_headers_get(pool, h, "References");
	const char *irt = mime_headers_get(pool, h, "In-Reply-To");
	k->references = refs != NULL ? xstrdup(refs) : irt != NULL ? xstrdup(irt) : NULL;
	pool_destroy(&pool);
	imap_message_free(&msg);
	return 0;
}

void imap_sort_keys_free(struct imap_sort_keys *k)
{
	free(k->subject);
	free(k->from);
	free(k->to);
	free(k->cc);
	free(k->message_id);
	free(k->references);
}

enum sort_key { SK_ARRIVAL, SK_CC, SK_DATE, SK_FROM, SK_SIZE, SK_SUBJECT, SK_TO };

struct sort_crit {
	enum sort_key key;
	bool reverse;
};

static struct sort_crit crits[16];
static unsigned int ncrits;

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
		case SK_ARRIVAL: r = cmp_i64(a->arrival, b->arrival); break;
		case SK_DATE: r = cmp_i64(a->date, b->date); break;
		case SK_SIZE: r = cmp_i64((int64_t)a->size, (int64_t)b->size); break;
		case SK_CC: r = strcmp(a->cc, b->cc); break;
		case SK_FROM: r = strcmp(a->from, b->from); break;
		case SK_TO: r = strcmp(a->to, b->to); break;
		case SK_SUBJECT: r = strcmp(a->subject, b->subject); break;
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
	} names[] = { { "ARRIVAL", SK_ARRIVAL }, { "CC", SK_CC }, { "DATE", SK_DATE },
		      { "FROM", SK_FROM }, { "SIZE", SK_SIZE }, { "SUBJECT", SK_SUBJECT },
		      { "TO", SK_TO }, { "DISPLAYFROM", SK_FROM }, { "DISPLAYTO", SK_TO } };
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
	struct imap_sort_keys *keys = xcalloc(n + 1, sizeof(*keys));
	for (uint32_t i = 0; i < n; i++)
		imap_sort_keys_load(s, seqs[i], &keys[i]);
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
