/* SEARCH and UID SEARCH (RFC 3501 6.4.4), ESEARCH results (RFC 4731),
   SEARCHRES (RFC 5182), MODSEQ (RFC 7162 3.1.5), OLDER/YOUNGER (RFC 5032),
   EMAILID/THREADID (RFC 8474 6).
   Keys on flags, sizes, dates and UIDs use the shared message table; keys
   on header fields use the header blocks cached in the index (read slice
   by slice, imap_headers.c); BODY and TEXT read the message file only when
   they are reached. */
#include "imap/imap_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/compose.h"
#include "mime/tree.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SEARCH_SLICE 256

struct search_msg {
	struct imap_session *s;
	uint32_t seq, uid;
	const struct imap_msg *m;
	struct imap_message msg;
	bool read, read_failed;
	uint64_t max_modseq;
	struct imap_header_run *headers;  /* NULL when no key needs them */
	uint32_t header_idx;              /* also the position in ids */
	const struct imap_fetch_ext *ids; /* EMAILID/THREADID keys */
};

static bool load(struct search_msg *sm)
{
	if (!sm->read) {
		char *error = NULL;
		sm->read = true;
		if (imap_message_read(sm->s->view->mbox, sm->uid, &sm->msg, &error) <= 0) {
			free(error);
			sm->read_failed = true;
		}
	}
	return !sm->read_failed;
}

/* The raw header block: from the message when it was read whole, else
   from the slice's cached headers. */
static bool get_header(struct search_msg *sm, const char **data_r, size_t *len_r)
{
	if (sm->read || sm->headers == NULL) {
		if (!load(sm))
			return false;
		struct mime_message *mm = imap_message_mime(&sm->msg);
		*data_r = sm->msg.data + mm->root->header.offset;
		*len_r = mm->root->header.size;
		return true;
	}
	return imap_header_run_get(sm->headers, sm->header_idx, data_r, len_r);
}

static time_t day_of(int64_t t)
{
	return (time_t)(t - ((t % 86400) + 86400) % 86400);
}

struct field_search {
	const char *name;
	const char *value;
	size_t value_len;
};

/* One field's value: decoded (RFC 2047) and unfolded, compared
   case-insensitively.  Plain ASCII values are searched as they are; the
   MIME library decodes the others. */
static bool field_contains(void *ctx, const char *raw, size_t len)
{
	const struct field_search *fs = ctx;
	if (fs->value_len == 0)
		return true;
	bool plain = true;
	for (size_t i = 0; i < len && plain; i++)
		plain = (unsigned char)raw[i] < 0x80 && raw[i] != '\0' &&
			!(raw[i] == '=' && i + 1 < len && raw[i + 1] == '?');
	if (plain) {
		/* unfolding removes the line ends before continuation lines */
		if (memchr(raw, '\n', len) == NULL)
			return imap_contains_nocase(raw, len, fs->value, fs->value_len);
		struct buf b = BUF_INIT;
		for (size_t i = 0; i < len; i++)
			if (raw[i] != '\r' && raw[i] != '\n')
				buf_append_char(&b, raw[i]);
		bool found = imap_contains_nocase(buf_cstr(&b), b.len, fs->value, fs->value_len);
		buf_free(&b);
		return found;
	}
	struct pool *pool = pool_create(1024);
	struct mime_header_field f = {
	    .name = fs->name, .name_len = strlen(fs->name), .value = raw, .value_len = len};
	struct mime_headers one = {.fields = &f, .count = 1};
	const char *text = mime_headers_get_utf8(pool, &one, fs->name);
	bool found = text != NULL && imap_contains_nocase(text, strlen(text), fs->value, fs->value_len);
	pool_destroy(&pool);
	return found;
}

/* True when contains (field_contains or address_contains) finds value in
   a field called name. */
static bool header_match(struct search_msg *sm, const char *name, const char *value,
			 bool (*contains)(void *ctx, const char *raw, size_t len))
{
	const char *h;
	size_t len;
	if (!get_header(sm, &h, &len))
		return false;
	struct field_search fs = {name, value, strlen(value)};
	return imap_header_each(h, len, name, contains, &fs);
}

/* One address field: the value is searched in the addresses as parsed
   and written out again ("Name <local@domain>", groups as "name: ...;"),
   display names decoded, comments and quoting gone, as Dovecot does: the
   address a user sees matches however the header spelled it. */
static bool address_contains(void *ctx, const char *raw, size_t len)
{
	const struct field_search *fs = ctx;
	if (fs->value_len == 0)
		return true;
	struct pool *pool = pool_create(1024);
	struct buf b = BUF_INIT;
	for (const struct mime_address *a = mime_address_parse(pool, raw, len); a != NULL; a = a->next) {
		const char *name = mime_address_name_utf8(pool, a);
		if (a->flags & MIME_ADDR_GROUP_END) {
			buf_append_str(&b, ";");
			continue;
		}
		if (b.len > 0)
			buf_append_str(&b, ", ");
		if (a->flags & MIME_ADDR_GROUP_START) {
			buf_printf(&b, "%s:", name != NULL ? name : "");
			continue;
		}
		if (name != NULL)
			buf_printf(&b, "%s <", name);
		mime_address_format_spec(&b, a);
		if (name != NULL)
			buf_append_char(&b, '>');
	}
	bool found = imap_contains_nocase(buf_cstr(&b), b.len, fs->value, fs->value_len);
	buf_free(&b);
	pool_destroy(&pool);
	return found;
}

/* A text part whose bytes are already the UTF-8 that decoding would give. */
static bool plain_text(const struct mime_part *p)
{
	if (p->encoding != MIME_ENC_7BIT && p->encoding != MIME_ENC_8BIT && p->encoding != MIME_ENC_BINARY)
		return false;
	const char *cs = mime_part_charset(p);
	return cs == NULL || strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "utf-8") == 0;
}

static bool body_match(struct search_msg *sm, const char *value, bool with_header)
{
	size_t vlen = strlen(value);
	if (with_header) {
		/* TEXT: the header first, often from the cache */
		const char *h;
		size_t hlen;
		if (get_header(sm, &h, &hlen) && imap_contains_nocase(h, hlen, value, vlen))
			return true;
	}
	if (!load(sm))
		return false;
	struct mime_message *mm = imap_message_mime(&sm->msg);
	for (const struct mime_part *p = mm->root; p != NULL; p = mime_part_next(p)) {
		if (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))
			continue;
		if (strcasecmp(p->ct.type, "text") != 0)
			continue;
		bool found;
		if (plain_text(p)) {
			/* 7bit/8bit ASCII or UTF-8: searched where it lies */
			found =
			    imap_contains_nocase(sm->msg.data + p->body.offset, p->body.size, value, vlen);
		} else {
			struct buf text = BUF_INIT;
			mime_part_decode_text(mm, p, &text);
			found = imap_contains_nocase(buf_cstr(&text), text.len, value, vlen);
			buf_free(&text);
		}
		if (found)
			return true;
	}
	return false;
}

struct date_search {
	time_t t;
	int tz;
	bool ok;
};

static bool date_value(void *ctx, const char *raw, size_t len)
{
	struct date_search *ds = ctx;
	struct buf b = BUF_INIT;
	mime_header_unfold(&b, raw, len);
	ds->ok = mime_date_parse(buf_cstr(&b), b.len, &ds->t, &ds->tz) == 0;
	buf_free(&b);
	return true; /* the first Date: field only */
}

static bool sent_date(struct search_msg *sm, time_t *day_r)
{
	const char *h;
	size_t len;
	if (!get_header(sm, &h, &len))
		return false;
	struct date_search ds = {0};
	imap_header_each(h, len, "Date", date_value, &ds);
	if (!ds.ok)
		return false;
	time_t t = ds.t;
	int tz = ds.tz;
	/* RFC 3501: the date of the Date: header, disregarding time and zone */
	*day_r = day_of((int64_t)t + tz * 60);
	return true;
}

static bool has_keyword(const char *keywords, const char *kw)
{
	size_t n = strlen(kw);
	for (const char *k = keywords; k != NULL && *k != '\0';) {
		const char *e = strchr(k, ' ');
		size_t len = e != NULL ? (size_t)(e - k) : strlen(k);
		if (len == n && strncasecmp(k, kw, n) == 0)
			return true;
		k = e != NULL ? e + 1 : k + len;
	}
	return false;
}

static bool eval(struct search_msg *sm, const struct imap_search_key *k)
{
	const struct imap_msg *m = sm->m;
	const struct imap_view *v = sm->s->view;
	bool recent = imap_view_recent(v, m->uid);
	time_t day;
	switch (k->type) {
	case IMAP_SK_ALL:
		return true;
	case IMAP_SK_AND:
		for (const struct imap_search_key *c = k->children; c != NULL; c = c->next)
			if (!eval(sm, c))
				return false;
		return true;
	case IMAP_SK_OR:
		return eval(sm, k->children) || eval(sm, k->children->next);
	case IMAP_SK_NOT:
		return !eval(sm, k->children);
	case IMAP_SK_SEQSET:
		if (k->set->saved) {
			for (uint32_t i = 0; i < sm->s->saved_count; i++)
				if (sm->s->saved[i] == m->uid)
					return true;
			return false;
		}
		return imap_seqset_contains(k->set, sm->seq, v->count);
	case IMAP_SK_UID:
		if (k->set->saved) {
			for (uint32_t i = 0; i < sm->s->saved_count; i++)
				if (sm->s->saved[i] == m->uid)
					return true;
			return false;
		}
		return imap_seqset_contains(k->set, m->uid, v->count > 0 ? imap_view_uid(v, v->count) : 0);
	case IMAP_SK_FLAG:
		return k->flag == IMAP_FLAG_RECENT ? recent : (m->flags & imap_flags_to_store(k->flag)) != 0;
	case IMAP_SK_UNFLAG:
		return k->flag == IMAP_FLAG_RECENT ? !recent : (m->flags & imap_flags_to_store(k->flag)) == 0;
	case IMAP_SK_NEW:
		return recent && !(m->flags & STORE_FLAG_SEEN);
	case IMAP_SK_OLD:
		return !recent;
	case IMAP_SK_KEYWORD:
		return has_keyword(m->keywords, k->value);
	case IMAP_SK_UNKEYWORD:
		return !has_keyword(m->keywords, k->value);
	case IMAP_SK_BEFORE:
		return day_of(m->internaldate) < k->date;
	case IMAP_SK_ON:
		return day_of(m->internaldate) == k->date;
	case IMAP_SK_SINCE:
		return day_of(m->internaldate) >= k->date;
	case IMAP_SK_SENTBEFORE:
		return sent_date(sm, &day) && day < k->date;
	case IMAP_SK_SENTON:
		return sent_date(sm, &day) && day == k->date;
	case IMAP_SK_SENTSINCE:
		return sent_date(sm, &day) && day >= k->date;
	case IMAP_SK_LARGER:
		return m->size > k->number;
	case IMAP_SK_SMALLER:
		return m->size < k->number;
	case IMAP_SK_HEADER:
		return header_match(sm, k->header, k->value, field_contains);
	case IMAP_SK_ADDRESS:
		return header_match(sm, k->header, k->value, address_contains);
	case IMAP_SK_BODY:
		return body_match(sm, k->value, false);
	case IMAP_SK_TEXT:
		return body_match(sm, k->value, true);
	case IMAP_SK_MODSEQ:
		if (m->modseq >= k->number) {
			if (m->modseq > sm->max_modseq)
				sm->max_modseq = m->modseq;
			return true;
		}
		return false;
	case IMAP_SK_OLDER:
		return (int64_t)time(NULL) - m->internaldate >= (int64_t)k->number;
	case IMAP_SK_YOUNGER:
		return (int64_t)time(NULL) - m->internaldate < (int64_t)k->number;
	case IMAP_SK_EMAILID:
	case IMAP_SK_THREADID: {
		const char *id = imap_fetch_ext_id(
		    sm->ids, k->type == IMAP_SK_EMAILID ? IMAP_FETCH_EMAILID : IMAP_FETCH_THREADID,
		    sm->header_idx);
		return id != NULL && strcmp(id, k->value) == 0;
	}
	}
	return false;
}

/* The object ids (enum imap_fetch_item) that keys compare. */
static unsigned int key_objectids(const struct imap_search_key *k)
{
	unsigned int items = 0;
	for (; k != NULL; k = k->next) {
		if (k->type == IMAP_SK_EMAILID)
			items |= IMAP_FETCH_EMAILID;
		else if (k->type == IMAP_SK_THREADID)
			items |= IMAP_FETCH_THREADID;
		items |= key_objectids(k->children);
	}
	return items;
}

/* True when a key reads header fields (slices then load cached headers). */
static bool key_needs_headers(const struct imap_search_key *k)
{
	for (; k != NULL; k = k->next) {
		switch (k->type) {
		case IMAP_SK_HEADER:
		case IMAP_SK_ADDRESS:
		case IMAP_SK_TEXT:
		case IMAP_SK_SENTBEFORE:
		case IMAP_SK_SENTON:
		case IMAP_SK_SENTSINCE:
			return true;
		default:
			if (key_needs_headers(k->children))
				return true;
		}
	}
	return false;
}

int imap_search_run(struct imap_session *s, const struct imap_search_key *key, uint32_t **seqs_r,
		    uint32_t *count_r, char **error_r)
{
	struct imap_view *v = s->view;
	uint32_t *out = xmalloc((v->count + 1) * sizeof(*out));
	uint32_t n = 0;
	bool headers = key_needs_headers(key);
	struct imap_fetch_atts ids_atts = {.items = key_objectids(key)};
	uint32_t *slice_seqs = xmalloc(SEARCH_SLICE * sizeof(*slice_seqs));
	const struct imap_mbox *mbox = v->mbox;
	uint32_t j = 0; /* the view's UIDs and the table both ascend */
	for (uint32_t first = 1; first <= v->count; first += SEARCH_SLICE) {
		uint32_t len = v->count - first + 1 < SEARCH_SLICE ? v->count - first + 1 : SEARCH_SLICE;
		struct imap_header_run run;
		if (headers)
			imap_header_run_load(&run, v->mbox, &v->vec->uids[first - 1], len);
		for (uint32_t i = 0; i < len; i++)
			slice_seqs[i] = first + i;
		struct imap_fetch_ext *ids = imap_fetch_ext_load(s, &ids_atts, slice_seqs, len);
		for (uint32_t i = 0; i < len; i++) {
			uint32_t seq = first + i;
			struct search_msg sm = {.s = s,
						.seq = seq,
						.uid = imap_view_uid(v, seq),
						.headers = headers ? &run : NULL,
						.header_idx = i,
						.ids = ids};
			while (j < mbox->count && mbox->msgs[j].uid < sm.uid)
				j++;
			if (j == mbox->count || mbox->msgs[j].uid != sm.uid)
				continue; /* expunged, not reported yet: matches nothing */
			sm.m = &mbox->msgs[j];
			if (eval(&sm, key))
				out[n++] = seq;
			if (sm.read)
				imap_message_free(&sm.msg);
		}
		if (headers)
			imap_header_run_done(&run);
		imap_fetch_ext_free(&ids);
	}
	free(slice_seqs);
	*seqs_r = out;
	*count_r = n;
	return 0;
}

static uint64_t seq_modseq(struct imap_session *s, uint32_t seq)
{
	const struct imap_msg *m = imap_mbox_find(s->view->mbox, imap_view_uid(s->view, seq));
	return m != NULL ? m->modseq : 0;
}

/* The MODSEQ result of a search with a MODSEQ key (seqs ascending): with
   RETURN (MIN) and/or (MAX) alone that of the message(s) returned (RFC 4731
   3.2), else the highest of all found (RFC 7162 3.1.5). */
static uint64_t found_modseq(struct imap_session *s, const struct imap_search_args *a, const uint32_t *seqs,
			     uint32_t n)
{
	uint64_t max = 0;
	unsigned int minmax = IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX;
	unsigned int others = IMAP_SEARCH_RETURN_ALL | IMAP_SEARCH_RETURN_COUNT;
	if (a->esearch && (a->returns & minmax) && !(a->returns & others)) {
		if (a->returns & IMAP_SEARCH_RETURN_MIN)
			max = seq_modseq(s, seqs[0]);
		if ((a->returns & IMAP_SEARCH_RETURN_MAX) && seq_modseq(s, seqs[n - 1]) > max)
			max = seq_modseq(s, seqs[n - 1]);
		return max;
	}
	for (uint32_t i = 0; i < n; i++)
		if (seq_modseq(s, seqs[i]) > max)
			max = seq_modseq(s, seqs[i]);
	return max;
}

static void send_results(struct imap_cmd_ctx *c, const struct imap_search_args *a, uint32_t *seqs, uint32_t n)
{
	struct imap_session *s = c->s;
	struct buf out = BUF_INIT;
	uint64_t modseq = a->uses_modseq && n > 0 ? found_modseq(s, a, seqs, n) : 0;
	for (uint32_t i = 0; c->uid && i < n; i++)
		seqs[i] = imap_view_uid(s->view, seqs[i]);
	if (a->returns & IMAP_SEARCH_RETURN_SAVE) {
		free(s->saved);
		s->saved = xmalloc((n + 1) * sizeof(uint32_t));
		for (uint32_t i = 0; i < n; i++)
			s->saved[i] = c->uid ? seqs[i] : imap_view_uid(s->view, seqs[i]);
		s->saved_count = n;
	}
	if (!a->esearch) {
		buf_append_str(&out, "* SEARCH");
		for (uint32_t i = 0; i < n; i++) {
			buf_printf(&out, " %u", seqs[i]);
			if (out.len > 65536)
				imap_write_buf(s, &out);
		}
		if (modseq > 0)
			buf_printf(&out, " (MODSEQ %llu)", (unsigned long long)modseq);
		buf_append_str(&out, "\r\n");
	} else if (a->returns != IMAP_SEARCH_RETURN_SAVE) {
		/* RFC 5182 2.1: SAVE alone gives no ESEARCH response */
		buf_append_str(&out, "* ESEARCH (TAG ");
		imap_append_astring(&out, s->tag);
		buf_append_char(&out, ')');
		if (c->uid)
			buf_append_str(&out, " UID");
		if ((a->returns & IMAP_SEARCH_RETURN_MIN) && n > 0)
			buf_printf(&out, " MIN %u", seqs[0]);
		if ((a->returns & IMAP_SEARCH_RETURN_MAX) && n > 0)
			buf_printf(&out, " MAX %u", seqs[n - 1]);
		if (a->returns & IMAP_SEARCH_RETURN_COUNT)
			buf_printf(&out, " COUNT %u", n);
		if ((a->returns & IMAP_SEARCH_RETURN_ALL) && n > 0) {
			buf_append_str(&out, " ALL ");
			imap_append_uidset(&out, seqs, n);
		}
		if (modseq > 0)
			buf_printf(&out, " MODSEQ %llu", (unsigned long long)modseq);
		buf_append_str(&out, "\r\n");
	}
	imap_write_buf(s, &out);
	buf_free(&out);
}

int imap_cmd_search(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	struct imap_search_args a;
	int r = imap_search_parse(c->pool, c->args, c->count, &a, error_r);
	if (r == -2) {
		imap_tagged(s, "NO", "%s", *error_r);
		return 0;
	}
	if (r < 0)
		return -1;
	if (a.uses_modseq)
		imap_enable_condstore(s);
	uint32_t *seqs, n;
	char *error = NULL;
	if (imap_search_run(s, a.key, &seqs, &n, &error) < 0) {
		imap_internal_error(s, "search", error);
		return 0;
	}
	send_results(c, &a, seqs, n);
	free(seqs);
	imap_tagged(s, "OK", "%sSEARCH completed", c->uid ? "UID " : "");
	return 0;
}
