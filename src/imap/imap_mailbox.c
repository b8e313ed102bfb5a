/* Mailbox commands: SELECT/EXAMINE (with CONDSTORE and QRESYNC, RFC 7162),
   CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST/LSUB with
   LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE
   (RFC 6154), STATUS, CLOSE, UNSELECT, CHECK and NOOP. */
#include "imap/imap_private.h"
#include "lib/log.h"
#include "lib/strlist.h"
#include "lib/xalloc.h"
#include "store/store_imap_extra.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *imap_special_use(const char *name)
{
	static const struct {
		const char *name, *attr;
	} uses[] = {
	    {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},   {"Trash", "\\Trash"},
	    {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
	};
	for (size_t i = 0; i < N_ELEMENTS(uses); i++)
		if (strcmp(name, uses[i].name) == 0)
			return uses[i].attr;
	return NULL;
}

/* ---- NOOP, CHECK, CLOSE, UNSELECT ---- */

/* NOOP and CHECK sync the mailbox with the Maildir first (a job), so that
   mail delivered before them is reported (RFC 3501 6.1.2). */
struct noop_job {
	struct imap_job job;
	char *name;
};

static void noop_work(struct imap_job *job)
{
	imap_mbox_sync_work(job, ((struct noop_job *)job)->name);
}

static void noop_done(struct imap_job *job)
{
	struct noop_job *nj = (struct noop_job *)job;
	struct imap_session *s = job->s;
	if (job->error != NULL)
		log_error("imap sync failed session=%s mailbox=%s: %s", s->core.id, nj->name, job->error);
	if (!s->core.dead)
		imap_tagged(s, "OK", "%s completed", s->cmd_name);
	free(job->error);
	free(nj->name);
	free(nj);
}

int imap_cmd_noop(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	if (c->count > 0) {
		*error_r = "No arguments expected";
		return -1;
	}
	if (s->view == NULL) {
		imap_tagged(s, "OK", "%s completed", s->cmd_name);
		return 0;
	}
	struct noop_job *nj = xcalloc(1, sizeof(*nj));
	nj->name = xstrdup(s->view->mbox->name);
	imap_job_start(s->user, s, &nj->job, noop_work, noop_done);
	return 0;
}

/* ---- SELECT / EXAMINE ---- */

/* QRESYNC parameters (RFC 7162 3.2.5), parsed before the job. */
struct qresync_params {
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset *known; /* NULL: all */
};

static int qresync_parse(struct pool *pool, const struct imap_arg *q, struct qresync_params *p,
			 const char **error_r)
{
	if (q->type != IMAP_ARG_LIST || q->count < 2 || q->list[0].type != IMAP_ARG_ATOM ||
	    q->list[1].type != IMAP_ARG_ATOM || !imap_parse_nz_number(q->list[0].str, &p->uidvalidity) ||
	    !imap_parse_number64(q->list[1].str, &p->modseq)) {
		*error_r = "Invalid QRESYNC parameters";
		return -1;
	}
	p->known = NULL;
	if (q->count >= 3 && (q->list[2].type != IMAP_ARG_ATOM ||
			      imap_seqset_parse(pool, q->list[2].str, &p->known, error_r) < 0)) {
		if (q->list[2].type != IMAP_ARG_ATOM)
			*error_r = "Invalid known UIDs";
		return -1;
	}
	return 0;
}

/* Reports what changed since the client's modseq, expunges as VANISHED
   (EARLIER). */
static void select_qresync(struct imap_session *s, const struct qresync_params *q)
{
	struct imap_view *v = s->view;
	if (q->uidvalidity != v->mbox->uidvalidity)
		return;
	uint32_t *gone = NULL;
	size_t ngone = 0;
	char *error = NULL;
	if (store_mailbox_expunged_since(v->mbox->smbox, q->modseq, &gone, &ngone, &error) < 0) {
		log_error("imap qresync failed session=%s: %s", s->core.id, error);
		free(error);
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < ngone; i++)
		if (q->known == NULL || imap_seqset_contains(q->known, gone[i], UINT32_MAX - 1))
			gone[k++] = gone[i];
	imap_send_vanished_earlier(s, gone, k);
	free(gone);
	struct buf out = BUF_INIT;
	for (uint32_t i = 0; i < v->count; i++) {
		const struct imap_msg *m = imap_mbox_find(v->mbox, v->vec->uids[i]);
		if (m == NULL || m->modseq <= q->modseq)
			continue;
		buf_printf(&out, "* %u FETCH (UID %u FLAGS ", i + 1, m->uid);
		imap_append_flags(&out, m->flags, m->keywords, false);
		buf_printf(&out, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
		if (out.len > 65536)
			imap_write_buf(s, &out);
	}
	imap_write_buf(s, &out);
	buf_free(&out);
}

/* SELECT syncs the mailbox and takes its \Recent messages on a job thread
   (both write the index), then opens the shared table in the loop. */
struct select_job {
	struct imap_job job;
	char *name;
	bool examine, has_qresync;
	struct qresync_params qresync;
	struct pool *pool; /* of qresync.known */
	/* results */
	bool missing;
	uint32_t first_recent, recent_end; /* SELECT: the UIDs taken */
	uint32_t messages, recent;         /* EXAMINE: the store's counts */
	char *recent_error;
};

static void select_work(struct imap_job *job)
{
	struct select_job *sj = (struct select_job *)job;
	struct store_mailbox *m;
	int r = imap_job_mailbox(job, sj->name, &m);
	if (r == 0)
		sj->missing = true;
	if (r <= 0)
		return;
	if (r == 1 && store_mailbox_sync(m, false, &job->error) < 0)
		return;
	if (sj->examine) {
		/* EXAMINE takes no \Recent flag but sees them (RFC 3501 6.3.2) */
		struct store_status st;
		if (store_mailbox_status(m, &st, &sj->recent_error) == 0) {
			sj->messages = st.messages;
			sj->recent = st.recent;
		}
		return;
	}
	/* UIDNEXT first: what the take hands out beyond it (a message added
	   meanwhile) is left to the view's next take (imap_view_take_recent) */
	uint64_t modseq;
	if (store_mailbox_get_counters(m, &sj->recent_end, &modseq, &sj->recent_error) == 0 &&
	    store_mailbox_take_recent(m, &sj->first_recent, &sj->recent_error) < 0)
		sj->recent_end = 0;
}

/* The view's \Recent messages: taken by the job (SELECT), or the store's
   recent ones, the last of the mailbox (EXAMINE). */
static void select_recent(struct imap_session *s, struct select_job *sj)
{
	struct imap_view *v = s->view;
	struct imap_mbox *m = v->mbox;
	if (sj->recent_error != NULL) {
		log_error("imap take-recent failed session=%s: %s", s->core.id, sj->recent_error);
		return;
	}
	if (!sj->examine) {
		imap_view_add_recent(v, sj->first_recent, sj->recent_end);
		v->recent_taken = sj->recent_end;
		imap_view_take_recent(s);
	} else if (sj->recent > 0 && sj->recent <= sj->messages && sj->messages - sj->recent < m->count) {
		imap_view_add_recent(v, m->msgs[sj->messages - sj->recent].uid, UINT32_MAX);
	}
}

static void select_reply(struct imap_session *s, struct select_job *sj)
{
	struct imap_mbox *m;
	char *error = NULL;
	int r = imap_mbox_get(s->user, sj->name, &m, &error);
	if (r < 0) {
		imap_internal_error(s, "select", error);
		return;
	}
	if (r == 0) {
		imap_tagged(s, "NO", "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	struct imap_view *v = imap_view_new(m, sj->examine);
	s->view = v;
	s->state = IMAP_STATE_SELECTED;
	select_recent(s, sj);
	imap_view_send_flags(s, true);
	imap_untagged(s, "%u EXISTS", v->count);
	uint32_t recent = imap_view_count_recent(v), first_unseen = 0;
	for (uint32_t i = 0; i < v->count && first_unseen == 0; i++)
		if (!(m->msgs[i].flags & STORE_FLAG_SEEN))
			first_unseen = i + 1;
	v->recent_reported = recent;
	if (!(s->enabled & IMAP_ENABLED_IMAP4REV2)) {
		imap_untagged(s, "%u RECENT", recent);
		if (first_unseen > 0)
			imap_untagged(s, "OK [UNSEEN %u] First unseen", first_unseen);
	}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", m->uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", m->uidnext);
	imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)m->highestmodseq);
	imap_untagged(s, "OK [MAILBOXID (%s)] Ok", store_mailbox_objectid(m->smbox)); /* RFC 8474 4.2 */
	if (sj->has_qresync)
		select_qresync(s, &sj->qresync);
	imap_tagged(s, "OK", "[%s] %s completed", sj->examine ? "READ-ONLY" : "READ-WRITE", s->cmd_name);
}

static void select_done(struct imap_job *job)
{
	struct select_job *sj = (struct select_job *)job;
	struct imap_session *s = job->s;
	if (s->core.dead) {
		/* nothing to answer */
	} else if (job->error != NULL) {
		imap_internal_error(s, "select", job->error);
		job->error = NULL;
	} else if (sj->missing) {
		imap_tagged(s, "NO", "[NONEXISTENT] Mailbox does not exist");
	} else {
		select_reply(s, sj);
	}
	free(job->error);
	free(sj->recent_error);
	free(sj->name);
	pool_destroy(&sj->pool);
	free(sj);
}

int imap_cmd_select(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	bool examine = strcmp(s->cmd_name, "EXAMINE") == 0;
	const char *name;
	if (c->count < 1 || c->count > 2 || imap_cmd_mailbox(c, &c->args[0], &name, error_r) < 0) {
		if (c->count < 1 || c->count > 2)
			*error_r = "SELECT needs a mailbox name";
		return -1;
	}
	const struct imap_arg *qresync = NULL;
	if (c->count == 2) {
		const struct imap_arg *p = &c->args[1];
		if (p->type != IMAP_ARG_LIST) {
			*error_r = "SELECT parameters must be a list";
			return -1;
		}
		for (unsigned int i = 0; i < p->count; i++) {
			if (imap_arg_atom_equals(&p->list[i], "CONDSTORE")) {
				s->enabled |= IMAP_ENABLED_CONDSTORE;
			} else if (imap_arg_atom_equals(&p->list[i], "QRESYNC") && i + 1 < p->count) {
				if (!(s->enabled & IMAP_ENABLED_QRESYNC)) {
					*error_r = "QRESYNC is not enabled";
					return -1;
				}
				qresync = &p->list[++i];
			} else {
				*error_r = "Unknown SELECT parameter";
				return -1;
			}
		}
	}
	if (s->view != NULL) {
		imap_deselect(s);
		/* RFC 7162 3.2.11 / RFC 9051 7.1: the old mailbox is closed */
		if (s->enabled & (IMAP_ENABLED_QRESYNC | IMAP_ENABLED_IMAP4REV2))
			imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	struct select_job *sj = xcalloc(1, sizeof(*sj));
	sj->pool = pool_create(256);
	if (qresync != NULL && qresync_parse(sj->pool, qresync, &sj->qresync, error_r) < 0) {
		pool_destroy(&sj->pool);
		free(sj);
		return -1;
	}
	sj->has_qresync = qresync != NULL;
	sj->name = xstrdup(name);
	sj->examine = examine;
	imap_job_start(s->user, s, &sj->job, select_work, select_done);
	return 0;
}

/* ---- CREATE, DELETE, RENAME, SUBSCRIBE ---- */

static const char *strip_separator(struct imap_cmd_ctx *c, const char *name)
{
	size_t n = strlen(name);
	if (n > 1 && name[n - 1] == IMAP_SEPARATOR[0])
		return pool_strndup(c->pool, name, n - 1);
	return name;
}

int imap_cmd_create(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *name;
	if (c->count < 1 || c->count > 2 || imap_cmd_mailbox(c, &c->args[0], &name, error_r) < 0) {
		if (c->count < 1 || c->count > 2)
			*error_r = "CREATE needs a mailbox name";
		return -1;
	}
	name = strip_separator(c, name);
	if (c->count == 2) {
		/* RFC 6154 3: CREATE ... (USE (\Sent)) only for the names that
		   have that use already. */
		const struct imap_arg *p = &c->args[1];
		if (p->type != IMAP_ARG_LIST || p->count != 2 || !imap_arg_atom_equals(&p->list[0], "USE") ||
		    p->list[1].type != IMAP_ARG_LIST) {
			*error_r = "Invalid CREATE parameters";
			return -1;
		}
		const char *special = imap_special_use(name);
		for (unsigned int i = 0; i < p->list[1].count; i++) {
			const struct imap_arg *a = &p->list[1].list[i];
			if (special == NULL || a->type != IMAP_ARG_ATOM || strcasecmp(a->str, special) != 0) {
				imap_tagged(c->s, "NO", "[USEATTR] Special-use attributes are fixed by name");
				return 0;
			}
		}
	}
	const char *why;
	if (strcmp(name, "INBOX") == 0) {
		imap_tagged(c->s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return 0;
	}
	if (store_name_check(name, &why) < 0) {
		imap_tagged(c->s, "NO", "[CANNOT] %s", why);
		return 0;
	}
	bool exists = false;
	char *error = NULL;
	if (store_folder_create(c->s->user->store, name, &exists, &error) < 0) {
		if (exists) {
			free(error);
			imap_tagged(c->s, "NO", "[ALREADYEXISTS] Mailbox already exists");
			return 0;
		}
		imap_internal_error(c->s, "create", error);
		return 0;
	}
	/* RFC 8474 4.1: the new mailbox's MAILBOXID (opening it gives one) */
	struct store_mailbox *m;
	if (store_mailbox_open(c->s->user->store, name, &m, &error) > 0) {
		imap_tagged(c->s, "OK", "[MAILBOXID (%s)] CREATE completed", store_mailbox_objectid(m));
		store_mailbox_close(&m);
		return 0;
	}
	free(error);
	imap_tagged(c->s, "OK", "CREATE completed");
	return 0;
}

static int folder_exists(struct imap_session *s, const char *name)
{
	struct store_mailbox *m;
	char *error = NULL;
	int r = store_mailbox_open(s->user->store, name, &m, &error);
	if (r > 0)
		store_mailbox_close(&m);
	free(error);
	return r;
}

int imap_cmd_delete(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *name;
	if (c->count != 1 || imap_cmd_mailbox(c, &c->args[0], &name, error_r) < 0) {
		if (c->count != 1)
			*error_r = "DELETE needs a mailbox name";
		return -1;
	}
	if (strcmp(name, "INBOX") == 0) {
		imap_tagged(c->s, "NO", "INBOX cannot be deleted");
		return 0;
	}
	if (folder_exists(c->s, name) <= 0) {
		imap_tagged(c->s, "NO", "[NONEXISTENT] Mailbox does not exist");
		return 0;
	}
	if (c->s->view != NULL && strcmp(c->s->view->mbox->name, name) == 0)
		imap_deselect(c->s);
	char *error = NULL;
	int r = store_folder_delete(c->s->user->store, name, &error);
	imap_job_forget_mailboxes(c->s->user);
	if (r < 0) {
		imap_internal_error(c->s, "delete", error);
		return 0;
	}
	imap_tagged(c->s, "OK", "DELETE completed");
	return 0;
}

int imap_cmd_rename(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *from, *to, *why;
	if (c->count != 2 || imap_cmd_mailbox(c, &c->args[0], &from, error_r) < 0 ||
	    imap_cmd_mailbox(c, &c->args[1], &to, error_r) < 0) {
		if (c->count != 2)
			*error_r = "RENAME needs two mailbox names";
		return -1;
	}
	to = strip_separator(c, to);
	if (folder_exists(c->s, from) <= 0) {
		imap_tagged(c->s, "NO", "[NONEXISTENT] Mailbox does not exist");
		return 0;
	}
	if (strcmp(to, "INBOX") == 0 || folder_exists(c->s, to) > 0) {
		imap_tagged(c->s, "NO", "[ALREADYEXISTS] Target mailbox exists");
		return 0;
	}
	if (store_name_check(to, &why) < 0) {
		imap_tagged(c->s, "NO", "[CANNOT] %s", why);
		return 0;
	}
	char *error = NULL;
	int r = store_folder_rename(c->s->user->store, from, to, &error);
	imap_job_forget_mailboxes(c->s->user);
	if (r < 0) {
		imap_internal_error(c->s, "rename", error);
		return 0;
	}
	imap_tagged(c->s, "OK", "RENAME completed");
	return 0;
}

int imap_cmd_subscribe(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *name;
	if (c->count != 1 || imap_cmd_mailbox(c, &c->args[0], &name, error_r) < 0) {
		if (c->count != 1)
			*error_r = "A mailbox name is needed";
		return -1;
	}
	char *error = NULL;
	bool sub = strcmp(c->s->cmd_name, "SUBSCRIBE") == 0;
	if (store_subscribe(c->s->user->store, name, sub, &error) < 0) {
		imap_internal_error(c->s, "subscribe", error);
		return 0;
	}
	imap_tagged(c->s, "OK", "%s completed", c->s->cmd_name);
	return 0;
}

/* ---- LIST / LSUB ---- */

/* RFC 3501 6.3.8: "*" matches anything, "%" anything but the separator.
   Dynamic programming keeps patterns with many wildcards linear. */
static bool pattern_match(const char *pat, const char *name)
{
	size_t pl = strlen(pat), nl = strlen(name);
	if (pl > 1024 || nl > 1024)
		return false;
	bool *prev = xcalloc(nl + 1, sizeof(bool)), *cur = xcalloc(nl + 1, sizeof(bool));
	prev[0] = true;
	for (size_t j = 1; j <= nl; j++)
		prev[j] = false;
	for (size_t i = 1; i <= pl; i++) {
		char p = pat[i - 1];
		cur[0] = prev[0] && (p == '*' || p == '%');
		for (size_t j = 1; j <= nl; j++) {
			char n = name[j - 1];
			if (p == '*')
				cur[j] = prev[j] || cur[j - 1];
			else if (p == '%')
				cur[j] = prev[j] || (cur[j - 1] && n != IMAP_SEPARATOR[0]);
			else
				cur[j] = prev[j - 1] && p == n;
		}
		bool *t = prev;
		prev = cur;
		cur = t;
	}
	bool r = prev[nl];
	free(prev);
	free(cur);
	return r;
}

static bool has_children(const struct strlist *l, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < l->count; i++)
		if (strncmp(l->items[i], name, n) == 0 && l->items[i][n] == IMAP_SEPARATOR[0])
			return true;
	return false;
}

enum list_opts {
	LIST_SUBSCRIBED = 1 << 0, /* selection */
	LIST_RET_SUBSCRIBED = 1 << 1,
	LIST_RET_CHILDREN = 1 << 2,
	LIST_RET_SPECIAL = 1 << 3,
	LIST_SPECIAL_ONLY = 1 << 4, /* selection SPECIAL-USE */
	LIST_RECURSIVE = 1 << 5,
};

static void status_line(struct imap_session *s, const char *name, const struct imap_arg *items);

static bool pattern_any(const struct imap_arg *pats, const char *ref, const char *name, bool utf8,
			struct pool *pool)
{
	/* with UTF8=ACCEPT the patterns are UTF-8, and so are the names they
	   match (RFC 6855 3) */
	const char *utf8_name = utf8 ? imap_utf7_to_utf8(pool, name) : NULL;
	if (utf8_name != NULL)
		name = utf8_name;
	const struct imap_arg *list = pats->type == IMAP_ARG_LIST ? pats->list : pats;
	unsigned int n = pats->type == IMAP_ARG_LIST ? pats->count : 1;
	for (unsigned int i = 0; i < n; i++) {
		const char *p = list[i].str;
		char *full = pool_printf(pool, "%s%s", ref, p);
		if (strncasecmp(full, "INBOX", 5) == 0 && (full[5] == '\0' || full[5] == IMAP_SEPARATOR[0]))
			memcpy(full, "INBOX", 5);
		if (pattern_match(full, name))
			return true;
	}
	return false;
}

static int list_parse_selection(const struct imap_arg *a, unsigned int *opts, const char **error_r)
{
	for (unsigned int i = 0; i < a->count; i++) {
		const struct imap_arg *o = &a->list[i];
		if (imap_arg_atom_equals(o, "SUBSCRIBED"))
			*opts |= LIST_SUBSCRIBED | LIST_RET_SUBSCRIBED;
		else if (imap_arg_atom_equals(o, "SPECIAL-USE"))
			*opts |= LIST_SPECIAL_ONLY | LIST_RET_SPECIAL;
		else if (imap_arg_atom_equals(o, "RECURSIVEMATCH"))
			*opts |= LIST_RECURSIVE;
		else if (imap_arg_atom_equals(o, "REMOTE"))
			continue;
		else {
			*error_r = "Unknown LIST selection option";
			return -1;
		}
	}
	if ((*opts & LIST_RECURSIVE) && !(*opts & (LIST_SUBSCRIBED | LIST_SPECIAL_ONLY))) {
		*error_r = "RECURSIVEMATCH needs another selection option";
		return -1;
	}
	return 0;
}

static int list_parse_return(const struct imap_arg *a, unsigned int *opts, const struct imap_arg **status_r,
			     const char **error_r)
{
	for (unsigned int i = 0; i < a->count; i++) {
		const struct imap_arg *o = &a->list[i];
		if (imap_arg_atom_equals(o, "SUBSCRIBED"))
			*opts |= LIST_RET_SUBSCRIBED;
		else if (imap_arg_atom_equals(o, "CHILDREN"))
			*opts |= LIST_RET_CHILDREN;
		else if (imap_arg_atom_equals(o, "SPECIAL-USE"))
			*opts |= LIST_RET_SPECIAL;
		else if (imap_arg_atom_equals(o, "STATUS") && i + 1 < a->count &&
			 a->list[i + 1].type == IMAP_ARG_LIST)
			*status_r = &a->list[++i];
		else {
			*error_r = "Unknown LIST return option";
			return -1;
		}
	}
	return 0;
}

struct list_ctx {
	struct imap_session *s;
	struct pool *pool;
	const struct imap_arg *pats;
	const char *ref;
	unsigned int opts;
	bool lsub;
	const struct imap_arg *status_items;
	const struct strlist *folders, *subs;
	/* names returned only as the parent of a selected one */
	struct strlist parents;
	bool utf8; /* UTF8=ACCEPT: patterns and names in UTF-8 */
};

/* True when name meets the selection criteria (the pattern aside). */
static bool list_selected(const struct list_ctx *l, const char *name)
{
	return !(l->opts & LIST_SPECIAL_ONLY) || imap_special_use(name) != NULL;
}

/* The parents to return for selected names that are not returned
   themselves (they do not match the pattern): with RECURSIVEMATCH each
   ancestor that matches it, with CHILDINFO (RFC 9051 6.3.9.6: only when
   such a child is not returned itself); for LSUB each ancestor that
   matches, as \Noselect unless it is subscribed (RFC 3501 6.3.9: LSUB
   "%" returns "foo" for a subscribed "foo/bar"). */
static void list_parents(struct list_ctx *l, const struct strlist *names)
{
	if (!l->lsub && !(l->opts & LIST_RECURSIVE))
		return;
	for (size_t n = 0; n < names->count; n++) {
		const char *name = names->items[n];
		if (!list_selected(l, name) || pattern_any(l->pats, l->ref, name, l->utf8, l->pool))
			continue;
		for (const char *sep = strchr(name, IMAP_SEPARATOR[0]); sep != NULL;
		     sep = strchr(sep + 1, IMAP_SEPARATOR[0])) {
			char *parent = pool_strndup(l->pool, name, (size_t)(sep - name));
			if (!strlist_contains(&l->parents, parent) &&
			    pattern_any(l->pats, l->ref, parent, l->utf8, l->pool))
				strlist_add(&l->parents, parent);
		}
	}
}

/* One LIST or LSUB response; selected: name meets the criteria (else it
   is returned as a parent only). */
static void list_entry(struct list_ctx *l, const char *name, bool selected)
{
	struct imap_session *s = l->s;
	bool subscribed = (l->opts & LIST_SUBSCRIBED) ? selected : strlist_contains(l->subs, name);
	bool exists = strlist_contains(l->folders, name);
	const char *special = imap_special_use(name);
	struct buf out = BUF_INIT;
	buf_printf(&out, "* %s (", l->lsub ? "LSUB" : "LIST");
	size_t start = out.len;
	if (l->lsub) {
		if (!selected)
			buf_append_str(&out, "\\Noselect");
	} else {
		if (!exists)
			buf_append_str(&out, "\\NonExistent");
		else
			buf_append_str(&out,
				       has_children(l->folders, name) ? "\\HasChildren" : "\\HasNoChildren");
		if ((l->opts & LIST_RET_SUBSCRIBED) && subscribed)
			buf_printf(&out, "%s\\Subscribed", out.len > start ? " " : "");
		if (special != NULL)
			buf_printf(&out, "%s%s", out.len > start ? " " : "", special);
	}
	buf_append_str(&out, ") \"" IMAP_SEPARATOR "\" ");
	imap_append_mailbox(s, &out, name);
	if (!l->lsub && strlist_contains(&l->parents, name))
		buf_printf(&out, " (\"CHILDINFO\" (\"%s\"))",
			   (l->opts & LIST_SUBSCRIBED) ? "SUBSCRIBED" : "SPECIAL-USE");
	buf_append_str(&out, "\r\n");
	imap_write_buf(s, &out);
	buf_free(&out);
	if (l->status_items != NULL && exists)
		status_line(s, name, l->status_items);
}

int imap_cmd_list(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	bool lsub = strcmp(s->cmd_name, "LSUB") == 0;
	unsigned int opts = lsub ? LIST_SUBSCRIBED : 0, i = 0;
	const struct imap_arg *status_items = NULL;
	if (!lsub && i < c->count && c->args[i].type == IMAP_ARG_LIST) {
		if (list_parse_selection(&c->args[i], &opts, error_r) < 0)
			return -1;
		i++;
	}
	if (i + 2 > c->count) {
		*error_r = "LIST needs a reference and a pattern";
		return -1;
	}
	const char *ref = imap_arg_astring(&c->args[i]);
	const struct imap_arg *pats = &c->args[i + 1];
	i += 2;
	if (ref == NULL || (pats->type == IMAP_ARG_LIST && (lsub || pats->count == 0))) {
		*error_r = "Invalid LIST arguments";
		return -1;
	}
	const struct imap_arg *plist = pats->type == IMAP_ARG_LIST ? pats->list : pats;
	for (unsigned int k = 0; k < (pats->type == IMAP_ARG_LIST ? pats->count : 1); k++) {
		if (plist[k].type == IMAP_ARG_LIST) {
			*error_r = "Invalid LIST pattern";
			return -1;
		}
	}
	if (!lsub && i + 2 == c->count && imap_arg_atom_equals(&c->args[i], "RETURN") &&
	    c->args[i + 1].type == IMAP_ARG_LIST) {
		if (list_parse_return(&c->args[i + 1], &opts, &status_items, error_r) < 0)
			return -1;
		i += 2;
	}
	if (i != c->count) {
		*error_r = "Extra arguments to LIST";
		return -1;
	}
	/* LIST "" "": the hierarchy delimiter and root (RFC 3501 6.3.8) */
	if (pats->type != IMAP_ARG_LIST && pats->str[0] == '\0') {
		imap_untagged(s, "%s (\\Noselect) \"" IMAP_SEPARATOR "\" \"\"", lsub ? "LSUB" : "LIST");
		imap_tagged(s, "OK", "%s completed", s->cmd_name);
		return 0;
	}
	struct strlist folders = STRLIST_INIT, subs = STRLIST_INIT;
	char *error = NULL;
	if (store_folder_list(s->user->store, strlist_add_cb, &folders, &error) < 0 ||
	    ((opts & (LIST_SUBSCRIBED | LIST_RET_SUBSCRIBED)) &&
	     store_subscription_list(s->user->store, strlist_add_cb, &subs, &error) < 0)) {
		strlist_free(&folders);
		strlist_free(&subs);
		imap_internal_error(s, "list", error);
		return 0;
	}
	bool utf8 = (s->enabled & IMAP_ENABLED_UTF8) != 0;
	struct list_ctx l = {s,        c->pool, pats,         ref, opts, lsub, status_items,
			     &folders, &subs,   STRLIST_INIT, utf8};
	const struct strlist *names = (opts & LIST_SUBSCRIBED) ? &subs : &folders;
	list_parents(&l, names);
	for (size_t n = 0; n < names->count; n++)
		if (list_selected(&l, names->items[n]) &&
		    pattern_any(pats, ref, names->items[n], l.utf8, c->pool))
			list_entry(&l, names->items[n], true);
	for (size_t n = 0; n < l.parents.count; n++)
		if (!strlist_contains(names, l.parents.items[n]) || !list_selected(&l, l.parents.items[n]))
			list_entry(&l, l.parents.items[n], false);
	strlist_free(&l.parents);
	strlist_free(&folders);
	strlist_free(&subs);
	imap_tagged(s, "OK", "%s completed", s->cmd_name);
	return 0;
}

/* ---- STATUS ---- */

static int status_items_valid(const struct imap_arg *items, const char **error_r)
{
	static const char *const known[] = {"MESSAGES",      "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN",
					    "HIGHESTMODSEQ", "SIZE",   "DELETED", "MAILBOXID"};
	if (items->type != IMAP_ARG_LIST || items->count == 0) {
		*error_r = "STATUS needs a list of items";
		return -1;
	}
	for (unsigned int i = 0; i < items->count; i++) {
		bool ok = false;
		for (size_t k = 0; k < N_ELEMENTS(known); k++)
			if (imap_arg_atom_equals(&items->list[i], known[k]))
				ok = true;
		if (!ok) {
			*error_r = "Unknown STATUS item";
			return -1;
		}
	}
	return 0;
}

/* Writes "* STATUS name (...)"; returns 0, or -1 when the mailbox does not
   exist (nothing written). */
static int status_write(struct imap_session *s, const char *name, const struct imap_arg *items,
			char **error_r)
{
	struct store_mailbox *m;
	int r = store_mailbox_open(s->user->store, name, &m, error_r);
	if (r <= 0)
		return r == 0 ? 0 : -1;
	struct store_status st;
	if (store_mailbox_status(m, &st, error_r) < 0) {
		store_mailbox_close(&m);
		return -1;
	}
	char *objectid = xstrdup(store_mailbox_objectid(m));
	store_mailbox_close(&m);
	struct buf out = BUF_INIT;
	buf_append_str(&out, "* STATUS ");
	imap_append_mailbox(s, &out, name);
	buf_append_str(&out, " (");
	for (unsigned int i = 0; i < items->count; i++) {
		const char *it = items->list[i].str;
		unsigned long long val = 0;
		if (strcasecmp(it, "MAILBOXID") == 0) { /* RFC 8474 4.3 */
			buf_printf(&out, "%sMAILBOXID (%s)", i > 0 ? " " : "", objectid);
			continue;
		}
		if (strcasecmp(it, "MESSAGES") == 0)
			val = st.messages;
		else if (strcasecmp(it, "RECENT") == 0)
			val = st.recent;
		else if (strcasecmp(it, "UIDNEXT") == 0)
			val = st.uidnext;
		else if (strcasecmp(it, "UIDVALIDITY") == 0)
			val = st.uidvalidity;
		else if (strcasecmp(it, "UNSEEN") == 0)
			val = st.unseen;
		else if (strcasecmp(it, "HIGHESTMODSEQ") == 0)
			val = st.highestmodseq;
		else if (strcasecmp(it, "SIZE") == 0)
			val = st.size;
		else if (strcasecmp(it, "DELETED") == 0)
			val = st.deleted;
		buf_printf(&out, "%s%s %llu", i > 0 ? " " : "", items->list[i].str, val);
	}
	buf_append_str(&out, ")\r\n");
	imap_write_buf(s, &out);
	buf_free(&out);
	free(objectid);
	return 1;
}

static void status_line(struct imap_session *s, const char *name, const struct imap_arg *items)
{
	const char *err;
	char *error = NULL;
	if (status_items_valid(items, &err) < 0)
		return;
	if (status_write(s, name, items, &error) < 0) {
		log_error("imap status failed session=%s: %s", s->core.id, error);
		free(error);
	}
}

int imap_cmd_status(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *name;
	if (c->count != 2 || imap_cmd_mailbox(c, &c->args[0], &name, error_r) < 0) {
		if (c->count != 2)
			*error_r = "STATUS needs a mailbox and items";
		return -1;
	}
	if (status_items_valid(&c->args[1], error_r) < 0)
		return -1;
	/* our own pending changes are in the index: nothing to flush */
	char *error = NULL;
	int r = status_write(c->s, name, &c->args[1], &error);
	if (r < 0) {
		imap_internal_error(c->s, "status", error);
		return 0;
	}
	if (r == 0) {
		imap_tagged(c->s, "NO", "[NONEXISTENT] Mailbox does not exist");
		return 0;
	}
	imap_tagged(c->s, "OK", "STATUS completed");
	return 0;
}
