/* Commands that change messages: STORE (RFC 3501 6.4.6, RFC 7162
   UNCHANGEDSINCE), COPY and MOVE (RFC 6851) with COPYUID, EXPUNGE and
   UID EXPUNGE (RFC 4315), APPEND with APPENDUID and MULTIAPPEND (RFC
   3502). */
#include "imap/imap_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/tree.h"
#include "store/store_imap_extra.h"

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

/* The untagged FETCHes and the tagged reply of a STORE. */
static void store_reply(struct imap_session *s, bool uid_cmd, bool silent, const uint32_t *seqs, uint32_t n,
			const uint32_t *failed, size_t nfailed)
{
	struct imap_view *v = s->view;
	struct buf out = BUF_INIT;
	bool condstore = (s->enabled & IMAP_ENABLED_CONDSTORE) != 0;
	imap_view_send_flags(s, false);
	for (uint32_t i = 0; i < n && (!silent || condstore); i++) {
		uint32_t uid = imap_view_uid(v, seqs[i]);
		const struct imap_msg *m = imap_mbox_find(v->mbox, uid);
		if (m == NULL || in_sorted(failed, nfailed, uid))
			continue;
		/* .SILENT with CONDSTORE still reports the new MODSEQ of messages
		   another session changed meanwhile (RFC 7162 3.1.3); ours only
		   when not silent. */
		if (silent)
			continue;
		buf_printf(&out, "* %u FETCH (", seqs[i]);
		if (uid_cmd)
			buf_printf(&out, "UID %u ", uid);
		buf_append_str(&out, "FLAGS ");
		imap_append_flags(&out, m->flags, m->keywords, imap_view_recent(v, uid));
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
			uint32_t seq = uid_cmd ? failed[i] : imap_view_seq(v, failed[i]);
			if (seq > 0)
				list[k++] = seq;
		}
		imap_append_uidset(&out, list, k);
		free(list);
		imap_tagged(s, "OK", "[MODIFIED %s] Conditional STORE failed", out.data);
	} else {
		imap_tagged(s, "OK", "%sSTORE completed", uid_cmd ? "UID " : "");
	}
	buf_free(&out);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Our changes are in the index: bring the shared table up to date. */
static void mbox_changed(struct imap_session *s, struct imap_mbox *mbox)
{
	char *error = NULL;
	if (imap_mbox_refresh(mbox, &error) < 0) {
		log_error("imap sync failed session=%s mailbox=%s: %s", s->core.id, mbox->name, error);
		free(error);
	}
}

/* ---- STORE ---- */

/* One transaction renames and updates at most this many messages, so that
   other writers of the index (the loop's syncs, other sessions' jobs, other
   processes) get the write lock in between. */
#define STORE_BATCH 250

struct store_job {
	struct imap_job job;
	char *mailbox;
	uint32_t *seqs, *uids;
	uint32_t count;
	enum store_flag_op op;
	uint32_t flags;
	char *keywords;
	uint64_t unchangedsince;
	bool has_unchangedsince, silent, uid;
	uint32_t *failed;
	size_t nfailed;
};

static void store_work(struct imap_job *job)
{
	struct store_job *sj = (struct store_job *)job;
	struct store_mailbox *m;
	int r = imap_job_mailbox(job, sj->mailbox, &m);
	if (r == 0)
		job->error = xasprintf("mailbox %s is gone", sj->mailbox);
	if (r <= 0)
		return;
	sj->failed = xmalloc((sj->count + 1) * sizeof(*sj->failed));
	for (uint32_t i = 0; i < sj->count; i += STORE_BATCH) {
		size_t n = sj->count - i < STORE_BATCH ? sj->count - i : STORE_BATCH;
		uint32_t *failed = NULL;
		size_t nfailed = 0;
		if (store_msg_set_flags(m, sj->uids + i, n, sj->op, sj->flags, sj->keywords,
					sj->has_unchangedsince ? sj->unchangedsince : 0, &failed, &nfailed,
					&job->error) < 0)
			return;
		memcpy(sj->failed + sj->nfailed, failed, nfailed * sizeof(*failed));
		sj->nfailed += nfailed;
		free(failed);
	}
}

static void store_job_free(struct store_job *sj)
{
	free(sj->job.error);
	free(sj->mailbox);
	free(sj->seqs);
	free(sj->uids);
	free(sj->keywords);
	free(sj->failed);
	free(sj);
}

static void store_done(struct imap_job *job)
{
	struct store_job *sj = (struct store_job *)job;
	struct imap_session *s = job->s;
	mbox_changed(s, s->view->mbox);
	if (s->core.dead) {
		store_job_free(sj);
		return;
	}
	if (job->error != NULL) {
		imap_internal_error(s, "store", job->error);
		job->error = NULL;
		store_job_free(sj);
		return;
	}
	/* UNCHANGEDSINCE 0 can never hold (RFC 7162 3.1.3) */
	if (sj->has_unchangedsince && sj->unchangedsince == 0 && sj->count > 0) {
		memcpy(sj->failed, sj->uids, sj->count * sizeof(*sj->uids));
		sj->nfailed = sj->count;
	}
	if (sj->nfailed > 1)
		qsort(sj->failed, sj->nfailed, sizeof(*sj->failed), cmp_u32);
	s->view->modseq_reported = s->view->mbox->highestmodseq;
	store_reply(s, sj->uid, sj->silent, sj->seqs, sj->count, sj->failed, sj->nfailed);
	store_job_free(sj);
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
		imap_enable_condstore(s);
	/* report what others changed first, so our FETCH replies are ours */
	imap_view_update(s, false);
	if (n == 0) {
		s->view->modseq_reported = s->view->mbox->highestmodseq;
		store_reply(s, c->uid, st.silent, seqs, 0, NULL, 0);
		free(seqs);
		return 0;
	}
	static const enum store_flag_op ops[] = {STORE_FLAGS_REPLACE, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE};
	if (ops[st.op] != STORE_FLAGS_REMOVE && !imap_mbox_keywords_fit(s->view->mbox, &st.flags)) {
		free(seqs);
		imap_tagged(s, "NO", "[LIMIT] Too many keywords in this mailbox");
		return 0;
	}
	struct store_job *sj = xcalloc(1, sizeof(*sj));
	sj->mailbox = xstrdup(s->view->mbox->name);
	sj->seqs = seqs;
	sj->uids = seqs_to_uids(s->view, seqs, (uint32_t)n);
	sj->count = (uint32_t)n;
	sj->op = ops[st.op];
	sj->flags = imap_flags_to_store(st.flags.flags);
	sj->keywords = keywords_join(&st.flags);
	sj->unchangedsince = st.unchangedsince;
	sj->has_unchangedsince = st.has_unchangedsince;
	sj->silent = st.silent;
	sj->uid = c->uid;
	imap_job_start(s->user, s, &sj->job, store_work, store_done);
	return 0;
}

/* ---- COPY / MOVE ---- */

struct copy_job {
	struct imap_job job;
	char *src, *dest;
	uint32_t *uids;
	uint32_t count;
	uint64_t bytes, quota;
	bool move, uid;
	/* results */
	bool missing, overquota;
	uint32_t *dest_uids;
	uint32_t uidvalidity;
	struct imap_recent_take take; /* of dest */
};

static bool job_over_quota(struct imap_job *job, uint64_t quota, uint64_t bytes)
{
	uint64_t used, msgs;
	char *error = NULL;
	if (quota == 0)
		return false;
	if (store_quota_usage(imap_job_store(job), &used, &msgs, &error) < 0) {
		free(error);
		return false; /* do not refuse mail on an index error */
	}
	return used + bytes > quota;
}

static void copy_work(struct imap_job *job)
{
	struct copy_job *cj = (struct copy_job *)job;
	struct store_mailbox *src, *dest;
	int r = imap_job_mailbox(job, cj->dest, &dest);
	if (r == 0)
		cj->missing = true;
	if (r <= 0)
		return;
	cj->uidvalidity = store_mailbox_uidvalidity(dest);
	if (job_over_quota(job, cj->quota, cj->bytes)) {
		cj->overquota = true;
		return;
	}
	/* dest stays open: the handle keeps JOB_MAILBOXES > 1 mailboxes */
	r = imap_job_mailbox(job, cj->src, &src);
	if (r == 0)
		job->error = xasprintf("mailbox %s is gone", cj->src);
	if (r <= 0)
		return;
	if (store_msg_copy(src, cj->uids, cj->count, dest, cj->move, &cj->dest_uids, &job->error) < 0)
		return;
	imap_mbox_take_recent_work(dest, &cj->take);
}

static void copy_job_free(struct copy_job *cj)
{
	free(cj->job.error);
	free(cj->src);
	free(cj->dest);
	free(cj->uids);
	free(cj->dest_uids);
	free(cj);
}

static void copy_reply(struct imap_session *s, struct copy_job *cj)
{
	struct buf src_set = BUF_INIT, dst_set = BUF_INIT;
	size_t k = 0;
	for (uint32_t i = 0; cj->dest_uids != NULL && i < cj->count; i++) {
		if (cj->dest_uids[i] == 0)
			continue;
		buf_printf(&src_set, "%s%u", k ? "," : "", cj->uids[i]);
		buf_printf(&dst_set, "%s%u", k ? "," : "", cj->dest_uids[i]);
		k++;
	}
	char *code = k > 0 ? xasprintf("[COPYUID %u %s %s] ", cj->uidvalidity, src_set.data, dst_set.data)
			   : xstrdup("");
	if (cj->move) {
		/* RFC 6851 4.3: COPYUID in an untagged OK, then the expunges */
		if (k > 0)
			imap_untagged(s, "OK %sMoved", code);
		imap_tagged(s, "OK", "%sMOVE completed", cj->uid ? "UID " : "");
	} else {
		imap_tagged(s, "OK", "%s%sCOPY completed", code, cj->uid ? "UID " : "");
	}
	free(code);
	buf_free(&src_set);
	buf_free(&dst_set);
}

static void copy_done(struct imap_job *job)
{
	struct copy_job *cj = (struct copy_job *)job;
	struct imap_session *s = job->s;
	bool copied = !cj->missing && !cj->overquota && job->error == NULL;
	if (copied) {
		/* the source's table is read again before the tagged reply */
		struct imap_mbox *dest = imap_mbox_find_open(job->user, cj->dest);
		if (dest != NULL) {
			imap_mbox_recent_add(dest, &cj->take);
			imap_idle_notify(dest);
		}
	}
	if (s->core.dead) {
		copy_job_free(cj);
		return;
	}
	if (job->error != NULL) {
		imap_internal_error(s, cj->move ? "move" : "copy", job->error);
		job->error = NULL;
	} else if (cj->missing) {
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox does not exist");
	} else if (cj->overquota) {
		imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded");
	} else {
		copy_reply(s, cj);
	}
	copy_job_free(cj);
}

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
	    imap_cmd_mailbox(c, &c->args[1], &name, error_r) < 0)
		return -1;
	int n = imap_view_resolve(s, set, c->uid, &seqs, error_r);
	if (n < 0)
		return -1;
	if (move && readonly_refused(s)) {
		free(seqs);
		return 0;
	}
	struct copy_job *cj = xcalloc(1, sizeof(*cj));
	cj->src = xstrdup(s->view->mbox->name);
	cj->dest = xstrdup(name);
	cj->uids = seqs_to_uids(s->view, seqs, (uint32_t)n);
	cj->count = (uint32_t)n;
	for (int i = 0; i < n; i++) {
		const struct imap_msg *m = imap_mbox_find(s->view->mbox, cj->uids[i]);
		cj->bytes += m != NULL ? m->size : 0;
	}
	free(seqs);
	cj->quota = s->user->quota;
	struct imap_mbox *dest = imap_mbox_find_open(s->user, name);
	cj->take.want = dest != NULL && dest->rw_views > 0;
	cj->move = move;
	cj->uid = c->uid;
	imap_job_start(s->user, s, &cj->job, copy_work, copy_done);
	return 0;
}

/* ---- EXPUNGE, CLOSE ---- */

struct expunge_job {
	struct imap_job job;
	char *mailbox;
	uint32_t *uids;
	size_t count;
	bool uid, close;
};

static void expunge_work(struct imap_job *job)
{
	struct expunge_job *ej = (struct expunge_job *)job;
	struct store_mailbox *m;
	int r = imap_job_mailbox(job, ej->mailbox, &m);
	if (r == 0)
		job->error = xasprintf("mailbox %s is gone", ej->mailbox);
	if (r > 0)
		store_msg_expunge(m, ej->uids, ej->count, &job->error);
}

static void close_done(struct imap_session *s)
{
	imap_deselect(s);
	imap_tagged(s, "OK", "%s completed", s->cmd_name);
}

static void expunge_done(struct imap_job *job)
{
	struct expunge_job *ej = (struct expunge_job *)job;
	struct imap_session *s = job->s;
	if (s->core.dead) {
		/* nothing to answer */
	} else if (job->error != NULL) {
		imap_internal_error(s, ej->close ? "close" : "expunge", job->error);
		job->error = NULL;
	} else if (ej->close) {
		close_done(s);
	} else {
		imap_tagged(s, "OK", "%sEXPUNGE completed", ej->uid ? "UID " : "");
	}
	free(job->error);
	free(ej->mailbox);
	free(ej->uids);
	free(ej);
}

/* Expunges the \Deleted messages (of uidset, when given) on a job thread;
   EXPUNGE or (with close) CLOSE answers when it is done.  Returns 1 when
   there is nothing to expunge (the caller answers), else 0 (a job runs, or
   an error was answered). */
static int expunge_start(struct imap_session *s, const struct imap_seqset *uidset, bool uid_cmd, bool close)
{
	struct imap_view *v = s->view;
	struct imap_mbox *m = v->mbox;
	char *error = NULL;
	if (imap_mbox_refresh(m, &error) < 0) {
		imap_internal_error(s, close ? "close" : "expunge", error);
		return 0;
	}
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
	if (n == 0) {
		free(uids);
		return 1;
	}
	struct expunge_job *ej = xcalloc(1, sizeof(*ej));
	ej->mailbox = xstrdup(m->name);
	ej->uids = uids;
	ej->count = n;
	ej->uid = uid_cmd;
	ej->close = close;
	imap_job_start(s->user, s, &ej->job, expunge_work, expunge_done);
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
	if (expunge_start(s, set, c->uid, false) > 0)
		imap_tagged(s, "OK", "%sEXPUNGE completed", c->uid ? "UID " : "");
	return 0;
}

int imap_cmd_close(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	if (c->count > 0) {
		*error_r = "No arguments expected";
		return -1;
	}
	/* CLOSE expunges silently (RFC 3501 6.4.2); UNSELECT does not. */
	if (strcmp(s->cmd_name, "CLOSE") == 0 && !s->view->readonly &&
	    expunge_start(s, NULL, false, true) == 0)
		return 0;
	close_done(s);
	return 0;
}

/* ---- APPEND ---- */

/* Messages of one APPEND (RFC 3502 MULTIAPPEND).  Their bytes together are
   held to the parser's command limit (the message size limit plus 1 MiB);
   their number to this, so that the job's own arrays stay small. */
#define IMAP_APPEND_MAX_MESSAGES 1000

struct append_msg {
	const char *data; /* in the job's pool, or owned */
	size_t len;
	char *owned; /* re-encoded binary message */
	uint32_t flags;
	char *keywords;
	int64_t date;
	bool binary; /* sent as literal8 (RFC 3516) */
};

struct append_job {
	struct imap_job job;
	char *mailbox;
	struct pool *pool; /* the command's arguments: the literals */
	struct append_msg *msgs;
	unsigned int count;
	/* results */
	bool missing;
	uint32_t first_uid, uidvalidity;
	struct imap_recent_take take;
};

/* Binary parts of a message appended as literal8 are stored re-encoded as
   base64: FETCH BODY[] sends literals, which hold no NUL, and BINARY[]
   decodes them back to the bytes the client sent (RFC 3516 4.3, as
   Dovecot does). */
static void append_encode_binary(struct append_msg *am)
{
	struct mime_message *mm = mime_message_parse(am->data, am->len, NULL);
	struct buf out = BUF_INIT;
	if (mime_message_encode_binary(mm, &out) > 0) {
		am->len = out.len;
		am->owned = buf_steal(&out);
		am->data = am->owned;
	}
	buf_free(&out);
	mime_message_free(&mm);
}

static void append_work(struct imap_job *job)
{
	struct append_job *aj = (struct append_job *)job;
	struct store_mailbox *m;
	int r = imap_job_mailbox(job, aj->mailbox, &m);
	if (r == 0)
		aj->missing = true;
	if (r <= 0)
		return;
	aj->uidvalidity = store_mailbox_uidvalidity(m);
	struct store_append *sa = xcalloc(aj->count, sizeof(*sa));
	for (unsigned int i = 0; i < aj->count; i++) {
		struct append_msg *am = &aj->msgs[i];
		if (am->binary)
			append_encode_binary(am);
		sa[i] = (struct store_append){am->data, am->len, am->flags, am->keywords, am->date};
	}
	/* all or none (RFC 3502 3) */
	if (store_msg_append_many(m, sa, aj->count, &aj->first_uid, &job->error) == 0)
		imap_mbox_take_recent_work(m, &aj->take);
	free(sa);
}

static void append_job_free(struct append_job *aj)
{
	for (unsigned int i = 0; i < aj->count; i++) {
		free(aj->msgs[i].owned);
		free(aj->msgs[i].keywords);
	}
	free(aj->msgs);
	free(aj->job.error);
	free(aj->mailbox);
	pool_destroy(&aj->pool);
	free(aj);
}

static void append_done(struct imap_job *job)
{
	struct append_job *aj = (struct append_job *)job;
	struct imap_session *s = job->s;
	if (!aj->missing && job->error == NULL) {
		struct imap_mbox *dest = imap_mbox_find_open(job->user, aj->mailbox);
		if (dest != NULL) {
			imap_mbox_recent_add(dest, &aj->take);
			imap_idle_notify(dest);
		}
	}
	if (s->core.dead) {
		/* nothing to answer */
	} else if (job->error != NULL) {
		imap_internal_error(s, "append", job->error);
		job->error = NULL;
	} else if (aj->missing) {
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox does not exist");
	} else if (aj->count == 1) {
		imap_tagged(s, "OK", "[APPENDUID %u %u] APPEND completed", aj->uidvalidity, aj->first_uid);
	} else {
		/* RFC 4315 3: a uid-set, the UIDs consecutive */
		imap_tagged(s, "OK", "[APPENDUID %u %u:%u] APPEND completed", aj->uidvalidity, aj->first_uid,
			    aj->first_uid + aj->count - 1);
	}
	append_job_free(aj);
}

/* Checks the messages before anything is written: NO (answered, 1) when
   one of them cannot be stored, so that none is (RFC 3502 3). */
static int append_refused(struct imap_session *s, const char *name, const struct imap_append_msg *msgs,
			  unsigned int count)
{
	if (count > IMAP_APPEND_MAX_MESSAGES) {
		imap_tagged(s, "NO", "[LIMIT] At most %d messages in one APPEND", IMAP_APPEND_MAX_MESSAGES);
		return 1;
	}
	uint64_t total = 0;
	struct imap_flags all = {0};
	for (unsigned int i = 0; i < count; i++) {
		if (msgs[i].len == 0) {
			imap_tagged(s, "NO", "Empty message");
			return 1;
		}
		if (msgs[i].len > s->core.ctx->cfg->max_message_size) {
			imap_tagged(s, "NO", "[TOOBIG] Message too big");
			return 1;
		}
		total += msgs[i].len;
		all.keyword_count += msgs[i].flags.keyword_count;
	}
	if (imap_quota_check(s, total) < 0) {
		imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded");
		return 1;
	}
	/* a mailbox that is open has its keyword list at hand; the messages'
	   keywords together (repeated ones count again: still bounded) */
	struct imap_mbox *open = imap_mbox_find_open(s->user, name);
	bool fit = true;
	if (open != NULL && all.keyword_count > 0) {
		all.keywords = xcalloc(all.keyword_count, sizeof(*all.keywords));
		for (unsigned int i = 0, k = 0; i < count; i++)
			for (unsigned int j = 0; j < msgs[i].flags.keyword_count; j++)
				all.keywords[k++] = msgs[i].flags.keywords[j];
		fit = imap_mbox_keywords_fit(open, &all);
		free(all.keywords);
	}
	if (!fit) {
		imap_tagged(s, "NO", "[LIMIT] Too many keywords in this mailbox");
		return 1;
	}
	return 0;
}

int imap_cmd_append(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	const char *name;
	struct imap_append_msg *msgs;
	unsigned int count;
	if (c->count < 2) {
		*error_r = "APPEND needs a mailbox and a message";
		return -1;
	}
	if (imap_cmd_mailbox(c, &c->args[0], &name, error_r) < 0 ||
	    imap_append_parse(c->pool, c->args + 1, c->count - 1, &msgs, &count, error_r) < 0)
		return -1;
	if (append_refused(s, name, msgs, count))
		return 0;
	struct append_job *aj = xcalloc(1, sizeof(*aj));
	aj->mailbox = xstrdup(name);
	/* the literals stay where the parser put them, in its pool, which the
	   job takes over */
	aj->pool = imap_parser_take_pool(s->parser);
	aj->msgs = xcalloc(count, sizeof(*aj->msgs));
	aj->count = count;
	for (unsigned int i = 0; i < count; i++) {
		struct append_msg *am = &aj->msgs[i];
		am->data = msgs[i].data;
		am->len = msgs[i].len;
		am->flags = imap_flags_to_store(msgs[i].flags.flags);
		am->keywords = keywords_join(&msgs[i].flags);
		am->date = (int64_t)msgs[i].date;
		am->binary = msgs[i].binary;
	}
	struct imap_mbox *open = imap_mbox_find_open(s->user, name);
	aj->take.want = open != NULL && open->rw_views > 0;
	imap_job_start(s->user, s, &aj->job, append_work, append_done);
	return 0;
}
