/* SEARCH and UID SEARCH (RFC 3501 6.4.4), ESEARCH results (RFC 4731),
   SEARCHRES (RFC 5182), MODSEQ (RFC 7162 3.1.5), OLDER/YOUNGER (RFC 5032).
   Keys on flags, sizes, dates and UIDs use the shared message table; keys
   on headers and text read the message only when they are reached. */
#include "imap/imap_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/compose.h"
#include "mime/tree.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct search_msg {
	struct imap_session *s;
	uint32_t seq, uid;
	const struct imap_msg *m;
	struct imap_message msg;
	bool read, read_failed;
	uint64_t max_modseq;
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

static time_t day_of(int64_t t)
{
	return (time_t)(t - ((t % 86400) + 86400) % 86400);
}

static bool header_match(struct search_msg *sm, const char *name, const char *value)
{
	if (!load(sm))
		return false;
	struct mime_message *mm = imap_message_mime(&sm->msg);
	const struct mime_headers *h = mm->root->headers;
	struct pool *pool = pool_create(1024);
	bool found = false;
	for (unsigned int i = 0; i < h->count && !found; i++) {
		const struct mime_header_field *f = &h->fields[i];
		if (strlen(name) != f->name_len || strncasecmp(f->name, name, f->name_len) != 0)
			continue;
		if (*value == '\0') {
			found = true;
			break;
		}
		/* decoded (RFC 2047) and unfolded, compared case-insensitively */
		struct mime_headers one = { .fields = (struct mime_header_field *)f, .count = 1 };
		char *nm = pool_strndup(pool, f->name, f->name_len);
		const char *text = mime_headers_get_utf8(pool, &one, nm);
		found = text != NULL && strcasestr(text, value) != NULL;
	}
	pool_destroy(&pool);
	return found;
}

static bool body_match(struct search_msg *sm, const char *value, bool with_header)
{
	if (!load(sm))
		return false;
	struct mime_message *mm = imap_message_mime(&sm->msg);
	if (with_header) {
		struct buf h = BUF_INIT;
		buf_append(&h, sm->msg.data + mm->root->header.offset, mm->root->header.size);
		bool found = strcasestr(buf_cstr(&h), value) != NULL;
		buf_free(&h);
		if (found)
			return true;
	}
	for (const struct mime_part *p = mm->root; p != NULL; p = mime_part_next(p)) {
		if (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))
			continue;
		struct buf text = BUF_INIT;
		if (strcasecmp(p->ct.type, "text") == 0)
			mime_part_decode_text(mm, p, &text);
		else
			continue;
		bool found = strcasestr(buf_cstr(&text), value) != NULL;
		buf_free(&text);
		if (found)
			return true;
	}
	return false;
}

static bool sent_date(struct search_msg *sm, time_t *day_r)
{
	if (!load(sm))
		return false;
	struct mime_message *mm = imap_message_mime(&sm->msg);
	struct pool *pool = pool_create(512);
	const char *d = mime_headers_get(pool, mm->root->headers, "Date");
	time_t t;
	int tz;
	bool ok = d != NULL && mime_date_parse(d, strlen(d), &t, &tz) == 0;
	pool_destroy(&pool);
	if (!ok)
		return false;
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
	bool recent = v->first_recent > 0 && m->uid >= v->first_recent;
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
		return header_match(sm, k->header, k->value);
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
	}
	return false;
}

int imap_search_run(struct imap_session *s, const struct imap_search_key *key, uint32_t **seqs_r,
		    uint32_t *count_r, char **error_r)
{
	struct imap_view *v = s->view;
	uint32_t *out = xmalloc((v->count + 1) * sizeof(*out));
	uint32_t n = 0;
	uint64_t max_modseq = 0;
	for (uint32_t seq = 1; seq <= v->count; seq++) {
		struct search_msg sm = { .s = s, .seq = seq, .uid = imap_view_uid(v, seq) };
		sm.m = imap_mbox_find(v->mbox, sm.uid);
		if (sm.m == NULL)
			continue;   /* expunged, not reported yet: matches nothing */
		if (eval(&sm, key)) {
			out[n++] = seq;
			if (sm.m->modseq > max_modseq)
				max_modseq = sm.m->modseq;
		}
		if (sm.read)
			imap_message_free(&sm.msg);
	}
	*seqs_r = out;
	*count_r = n;
	return 0;
}

/* Highest modseq of the found messages (RFC 7162 3.1.5). */
static uint64_t found_modseq(struct imap_session *s, const uint32_t *seqs, uint32_t n)
{
	uint64_t max = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct imap_msg *m = imap_mbox_find(s->view->mbox, imap_view_uid(s->view, seqs[i]));
		if (m != NULL && m->modseq > max)
			max = m->modseq;
	}
	return max;
}

static void send_results(struct imap_cmd_ctx *c, const struct imap_search_args *a, uint32_t *seqs,
			 uint32_t n)
{
	struct imap_session *s = c->s;
	struct buf out = BUF_INIT;
	for (uint32_t i = 0; c->uid && i < n; i++)
		seqs[i] = imap_view_uid(s->view, seqs[i]);
	uint64_t modseq = a->uses_modseq && n > 0 ? found_modseq(s, seqs, 0) : 0;
	if (a->uses_modseq && n > 0) {
		for (uint32_t i = 0; i < n; i++) {
			uint32_t uid = c->uid ? seqs[i] : imap_view_uid(s->view, seqs[i]);
			const struct imap_msg *m = imap_mbox_find(s->view->mbox, uid);
			if (m != NULL && m->modseq > modseq)
				modseq = m->modseq;
		}
	}
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
		s->enabled |= IMAP_ENABLED_CONDSTORE;
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
