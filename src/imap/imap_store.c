/* Commands that change messages: STORE (RFC 3501 6.4.6, RFC 7162
   UNCHANGEDSINCE), COPY and MOVE (RFC 6851) with COPYUID, EXPUNGE and
   UID EXPUNGE (RFC 4315), APPEND with APPENDUID. */
#include "imap/imap_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

static bool readonly_refused(struct imap_session *s)
{
	if (!s->view->readonly)
		return false;
	imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only");
	return true;
}

static char *keywords_join(const struct imap_flags *f)
{
	if (f->keyword_count == 0)
		return NULL;
	struct buf b = BUF_INIT;
	for (unsigned int i = 0; i < f->keyword_count; i++)
		buf_printf(&b, "%s%s", i ? " " : "", f->keywords[i]);
	return buf_steal(&b);
}

static uint32_t *seqs_to_uids(const struct imap_view *v, const uint32_t *seqs, uint32_t n)
{
	uint32_t *uids = xmalloc((n + 1) * sizeof(*uids));
	for (uint32_t i = 0; i < n; i++)
		uids[i] = imap_view_uid(v, seqs[i]);
	return uids;
}

static bool in_sorted(const uint32_t *a, size_t n, uint32_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && a[lo] == x;
}

static void store_reply(struct imap_cmd_ctx *c, const struct imap_store_args *st, const uint32_t *seqs,
			uint32_t n, const uint32_t *failed, size_t nfailed)
{
	struct imap_session *s = c->s;
	struct imap_view *v = s->view;
	struct buf out = BUF_INIT;
	bool condstore = (s->enabled & IMAP_ENABLED_CONDSTORE) != 0;
	for (uint32_t i = 0; i < n && (!st->silent || condstore); i++) {
		uint32_t uid = imap_view_uid(v, seqs[i]);
		const struct imap_msg *m = imap_mbox_find(v->mbox, uid);
		if (m == NULL || in_sorted(failed, nfailed, uid))
			continue;
		/* .SILENT with CONDSTORE still reports the new MODSEQ of messages
		   another session changed meanwhile (RFC 7162 3.1.3); ours only
		   when not silent. */
		if (st->silent)
			continue;
		buf_printf(&out, "* %u FETCH (", seqs[i]);
		if (c->uid)
			buf_printf(&out, "UID %u ", uid);
		buf_append_str(&out, "FLAGS ");
		imap_append_flags(&out, m->flags, m->keywords, v->first_recent && uid >= v->first_recent);
		if (condstore)
			buf_printf(&out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
		buf_append_str(&out, ")\r\n");
		if (out.len > 65536)
			imap_write_buf(s, &out);
	}
	imap_write_buf(s, &out);
	if (nfailed > 0) {
		uint32_t *list = xmalloc(nfailed * sizeof(*list));
		size_t k = 0;
		for (size_t i = 0; i < nfailed; i++) {
			uint32_t seq = c->uid ? failed[i] : imap_view_seq(v, failed[i]);
			if (seq > 0)
				list[k++] = seq;
		}
		imap_append_uidset(&out, list, k);
		free(list);
		imap_tagged(s, "OK", "[MODIFIED %s] Conditional STORE failed", out.data);
	} else {
		imap_tagged(s, "OK", "%sSTORE completed", c->uid ? "UID " : "");
	}
	buf_free(&out);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int imap_cmd_store(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	struct imap_store_args st;
	uint32_t *seqs;
	if (imap_store_parse(c->pool, c->args, c->count, &st, error_r) < 0)
		return -1;
	int n = imap_view_resolve(s, st.set, c->uid, &seqs, error_r);
	if (n < 0)
		return -1;
	if (readonly_refused(s)) {
		free(seqs);
		return 0;
	}
	if (st.has_unchangedsince)
		s->enabled |= IMAP_ENABLED_CONDSTORE;
	/* report what others changed first, so our FETCH replies are ours */
	imap_view_update(s, false);
	uint32_t *uids = seqs_to_uids(s->view, seqs, (uint32_t)n);
	char *keywords = keywords_join(&st.flags);
	static const enum store_flag_op ops[] = { STORE_FLAGS_REPLACE, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };
	uint32_t *failed = NULL;
	size_t nfailed = 0;
	char *error = NULL;
	int r = n == 0 ? 0 : store_msg_set_flags(s->view->mbox->smbox, uids, (size_t)n, ops[st.op],
					       imap_flags_to_store(st.flags.flags), keywords,
					       st.has_unchangedsince ? st.unchangedsince : 0, &failed,
					       &nfailed, &error);
	free(keywords);
	free(uids);
	if (r < 0) {
		free(seqs);
		imap_internal_error(s, "store", error);
		return 0;
	}
	/* UNCHANGEDSINCE 0 can never hold (RFC 7162 3.1.3) */
	if (st.has_unchangedsince && st.unchangedsince == 0 && n > 0) {
		free(failed);
		failed = seqs_to_uids(s->view, seqs, (uint32_t)n);
		nfailed = (size_t)n;
	}
	if (nfailed > 1)
		qsort(failed, nfailed, sizeof(*failed), cmp_u32);
	imap_mbox_mark_dirty(s->view->mbox);
	if (imap_mbox_refresh(s->view->mbox, &error) < 0) {
		log_error("imap sync failed session=%s: %s", s->id, error);
		free(error);
	}
	s->view->modseq_reported = s->view->mbox->highestmodseq;
	store_reply(c, &st, seqs, (uint32_t)n, failed, nfailed);
	free(failed);
	free(seqs);
	return 0;
}

/* ---- COPY / MOVE ---- */

int imap_cmd_copy(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	bool move = strcmp(s->cmd_name, "MOVE") == 0;
	struct imap_seqset *set;
	const char *name;
	uint32_t *seqs;
	if (c->count != 2 || c->args[0].type != IMAP_ARG_ATOM) {
		*error_r = "COPY needs a sequence set and a mailbox";
		return -1;
	}
	if (imap_seqset_parse(c->pool, c->args[0].str, &set, error_r) < 0 ||
	    imap_mailbox_parse(c->pool, &c->args[1], (s->enabled & IMAP_ENABLED_UTF8) != 0, &name, error_r) < 0)
		return -1;
	int n = imap_view_resolve(s, set, c->uid, &seqs, error_r);
	if (n < 0)
		return -1;
	if (move && readonly_refused(s)) {
		free(seqs);
		return 0;
	}
	struct imap_mbox *dest;
	char *error = NULL;
	int r = imap_mbox_get(s->user, name, &dest, &error);
	if (r <= 0) {
		free(seqs);
		if (r < 0)
			imap_internal_error(s, "copy", error);
		else
			imap_tagged(s, "NO", "[TRYCREATE] Mailbox does not exist");
		return 0;
	}
	uint32_t *uids = seqs_to_uids(s->view, seqs, (uint32_t)n);
	uint64_t bytes = 0;
	for (int i = 0; i < n; i++) {
		const struct imap_msg *m = imap_mbox_find(s->view->mbox, uids[i]);
		bytes += m != NULL ? m->size : 0;
	}
	free(seqs);
	if (imap_quota_check(s, bytes) < 0) {
		free(uids);
		imap_mbox_unref(&dest);
		imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded");
		return 0;
	}
	uint32_t *dest_uids = NULL;
	int copied = n == 0 ? 0 : store_msg_copy(s->view->mbox->smbox, uids, (size_t)n, dest->smbox, move,
						&dest_uids, &error);
	if (copied < 0) {
		free(uids);
		imap_mbox_unref(&dest);
		imap_internal_error(s, move ? "move" : "copy", error);
		return 0;
	}
	imap_mbox_mark_dirty(dest);
	imap_mbox_mark_dirty(s->view->mbox);
	struct buf src_set = BUF_INIT, dst_set = BUF_INIT;
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		if (dest_uids[i] == 0)
			continue;
		buf_printf(&src_set, "%s%u", k ? "," : "", uids[i]);
		buf_printf(&dst_set, "%s%u", k ? "," : "", dest_uids[i]);
		k++;
	}
	char *code = k > 0 ? xasprintf("[COPYUID %u %s %s] ", dest->uidvalidity, src_set.data, dst_set.data)
			   : xstrdup("");
	if (move) {
		/* RFC 6851 4.3: COPYUID in an untagged OK, then the expunges */
		if (k > 0)
			imap_untagged(s, "OK %sMoved", code);
		imap_tagged(s, "OK", "%sMOVE completed", c->uid ? "UID " : "");
	} else {
		imap_tagged(s, "OK", "%s%sCOPY completed", code, c->uid ? "UID " : "");
	}
	free(code);
	buf_free(&src_set);
	buf_free(&dst_set);
	free(dest_uids);
	free(uids);
	imap_mbox_unref(&dest);
	return 0;
}

/* ---- EXPUNGE ---- */

int imap_expunge_deleted(struct imap_session *s, const struct imap_seqset *uidset, bool report,
			 char **error_r)
{
	struct imap_view *v = s->view;
	struct imap_mbox *m = v->mbox;
	if (imap_mbox_refresh(m, error_r) < 0)
		return -1;
	uint32_t *uids = xmalloc((m->count + 1) * sizeof(*uids));
	size_t n = 0;
	uint32_t max = v->count > 0 ? imap_view_uid(v, v->count) : 0;
	for (uint32_t i = 0; i < m->count; i++) {
		if (!(m->msgs[i].flags & STORE_FLAG_DELETED))
			continue;
		if (uidset != NULL && !imap_seqset_contains(uidset, m->msgs[i].uid, max))
			continue;
		uids[n++] = m->msgs[i].uid;
	}
	int r = n > 0 ? store_msg_expunge(m->smbox, uids, n, error_r) : 0;
	free(uids);
	if (r < 0)
		return -1;
	imap_mbox_mark_dirty(m);
	(void)report;
	return 0;
}

int imap_cmd_expunge(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	struct imap_seqset *set = NULL;
	if (c->uid ? c->count != 1 || c->args[0].type != IMAP_ARG_ATOM : c->count != 0) {
		*error_r = c->uid ? "UID EXPUNGE needs a UID set" : "EXPUNGE takes no arguments";
		return -1;
	}
	if (c->uid && imap_seqset_parse(c->pool, c->args[0].str, &set, error_r) < 0)
		return -1;
	if (readonly_refused(s))
		return 0;
	char *error = NULL;
	if (imap_expunge_deleted(s, set, true, &error) < 0) {
		imap_internal_error(s, "expunge", error);
		return 0;
	}
	imap_tagged(s, "OK", "%sEXPUNGE completed", c->uid ? "UID " : "");
	return 0;
}

/* ---- APPEND ---- */

int imap_cmd_append(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	const char *name;
	struct imap_flags flags = { 0 };
	time_t date = 0;
	int tz;
	unsigned int i = 1;
	if (c->count < 2 ||
	    imap_mailbox_parse(c->pool, &c->args[0], (s->enabled & IMAP_ENABLED_UTF8) != 0, &name, error_r) < 0) {
		if (c->count < 2)
			*error_r = "APPEND needs a mailbox and a message";
		return -1;
	}
	if (i < c->count && c->args[i].type == IMAP_ARG_LIST) {
		if (imap_flags_parse(c->pool, &c->args[i], false, &flags, error_r) < 0)
			return -1;
		i++;
	}
	if (i < c->count && c->args[i].type == IMAP_ARG_STRING) {
		if (!imap_parse_datetime(c->args[i].str, &date, &tz)) {
			*error_r = "Invalid date-time";
			return -1;
		}
		i++;
	}
	if (i + 1 != c->count || c->args[i].type != IMAP_ARG_LITERAL) {
		*error_r = i < c->count && c->args[i].type == IMAP_ARG_LITERAL
				   ? "MULTIAPPEND is not supported"
				   : "APPEND needs the message as a literal";
		return -1;
	}
	const struct imap_arg *lit = &c->args[i];
	if (lit->len == 0) {
		imap_tagged(s, "NO", "Empty message");
		return 0;
	}
	if (lit->len > worker->cfg->max_message_size) {
		imap_tagged(s, "NO", "[TOOBIG] Message too big");
		return 0;
	}
	if (imap_quota_check(s, lit->len) < 0) {
		imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded");
		return 0;
	}
	struct imap_mbox *dest;
	char *error = NULL;
	int r = imap_mbox_get(s->user, name, &dest, &error);
	if (r <= 0) {
		if (r < 0)
			imap_internal_error(s, "append", error);
		else
			imap_tagged(s, "NO", "[TRYCREATE] Mailbox does not exist");
		return 0;
	}
	char *keywords = keywords_join(&flags);
	uint32_t uid = 0;
	r = store_msg_append(dest->smbox, lit->str, lit->len, imap_flags_to_store(flags.flags), keywords,
			     (int64_t)date, &uid, &error);
	free(keywords);
	if (r < 0) {
		imap_mbox_unref(&dest);
		imap_internal_error(s, "append", error);
		return 0;
	}
	imap_mbox_mark_dirty(dest);
	uint32_t uidvalidity = dest->uidvalidity;
	imap_mbox_unref(&dest);
	imap_tagged(s, "OK", "[APPENDUID %u %u] APPEND completed", uidvalidity, uid);
	return 0;
}
