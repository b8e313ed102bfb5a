/* Mailbox commands: SELECT/EXAMINE (with CONDSTORE and QRESYNC, RFC 7162),
   CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST/LSUB with
   LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE
   (RFC 6154), STATUS, CLOSE, UNSELECT, CHECK and NOOP. */
#include "imap/imap_private.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/strlist.h"
#include "lib/xalloc.h"
#include "store/store_imap_extra.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Items of one STATUS command (there are 8 kinds). */
#define STATUS_ITEMS_MAX 32

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
   mail delivered before them is reported (RFC 3501 6.1.2), and take its
   \Recent messages for a read-write view. */
struct noop_job {
	struct imap_job job;
	char *name;
	struct imap_recent_take take;
};

static void noop_work(struct imap_job *job)
{
	struct noop_job *nj = (struct noop_job *)job;
	imap_mbox_sync_work(job, nj->name, &nj->take);
}

static void noop_done(struct imap_job *job)
{
	struct noop_job *nj = (struct noop_job *)job;
	struct imap_session *s = job->s;
	if (job->error != NULL)
		log_error("imap sync failed session=%s mailbox=%s: %s", s->core.id, nj->name, job->error);
	struct imap_mbox *m = imap_mbox_find_open(job->user, nj->name);
	if (m != NULL)
		imap_mbox_recent_add(m, &nj->take);
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
	nj->take.want = !s->view->readonly;
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
	/* the mailbox selected before, when it is this one again: kept open
	   (its table and watch) until the new view has it */
	struct imap_mbox *keep;
	/* results */
	bool missing;
	struct imap_recent_take take; /* SELECT: the UIDs taken */
	uint32_t messages, recent;    /* EXAMINE: the store's counts */
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
	imap_mbox_take_recent_work(m, &sj->take);
}

/* The view's \Recent messages: taken by the job (SELECT), or the store's
   recent ones, the last of the mailbox (EXAMINE). */
static void select_recent(struct imap_session *s, struct select_job *sj)
{
	struct imap_view *v = s->view;
	struct imap_mbox *m = v->mbox;
	if (sj->recent_error != NULL) {
		log_error("imap examine-status failed session=%s: %s", s->core.id, sj->recent_error);
		return;
	}
	if (!sj->examine) {
		imap_view_add_recent(v, sj->take.lo, sj->take.hi);
		v->recent_taken = sj->take.hi;
		/* and what jobs took for the worker since */
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
	imap_mbox_unref(&sj->keep);
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
	struct imap_mbox *keep = NULL;
	if (s->view != NULL) {
		if (strcmp(s->view->mbox->name, name) == 0) {
			keep = s->view->mbox;
			keep->refs++;
		}
		imap_deselect(s);
		/* RFC 7162 3.2.11 / RFC 9051 7.1: the old mailbox is closed */
		if (s->enabled & (IMAP_ENABLED_QRESYNC | IMAP_ENABLED_IMAP4REV2))
			imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	struct select_job *sj = xcalloc(1, sizeof(*sj));
	sj->keep = keep;
	sj->pool = pool_create(256);
	if (qresync != NULL && qresync_parse(sj->pool, qresync, &sj->qresync, error_r) < 0) {
		imap_mbox_unref(&sj->keep);
		pool_destroy(&sj->pool);
		free(sj);
		return -1;
	}
	sj->has_qresync = qresync != NULL;
	sj->name = xstrdup(name);
	sj->examine = examine;
	sj->take.want = !examine;
	imap_job_start(s->user, s, &sj->job, select_work, select_done);
	return 0;
}

/* ---- CREATE, DELETE, RENAME, SUBSCRIBE ---- */

/* They make, remove or rename directories and write the index: a job
   each; the checks that need the store run there too, in the order the
   replies had before. */
enum folder_op { FOLDER_CREATE, FOLDER_DELETE, FOLDER_RENAME, FOLDER_SUBSCRIBE, FOLDER_UNSUBSCRIBE };

struct folder_job {
	struct imap_job job;
	enum folder_op op;
	char *name, *to;
	/* results: a refusal (status NO) instead of the operation, with
	   its reason when it is [CANNOT]; CREATE: the new MAILBOXID */
	const char *refusal, *why;
	char *mailboxid;
};

/* On the job thread: 1 when the folder name exists, 0 when not, -1. */
static int job_folder_exists(struct imap_job *job, const char *name)
{
	struct store_mailbox *m;
	char *error = NULL;
	int r = store_mailbox_open(imap_job_store(job), name, &m, &error);
	if (r > 0)
		store_mailbox_close(&m);
	free(error);
	return r;
}

static void folder_work(struct imap_job *job)
{
	struct folder_job *fj = (struct folder_job *)job;
	struct store *store = imap_job_store(job);
	bool exists = false;
	switch (fj->op) {
	case FOLDER_CREATE:
		if (store_folder_create(store, fj->name, &exists, &job->error) < 0) {
			if (exists) {
				free(job->error);
				job->error = NULL;
				fj->refusal = "[ALREADYEXISTS] Mailbox already exists";
			}
			break;
		}
		/* RFC 8474 4.1: the new mailbox's MAILBOXID (opening it gives one) */
		struct store_mailbox *m;
		char *error = NULL;
		if (store_mailbox_open(store, fj->name, &m, &error) > 0) {
			fj->mailboxid = xstrdup(store_mailbox_objectid(m));
			store_mailbox_close(&m);
		}
		free(error);
		break;
	case FOLDER_DELETE:
		if (job_folder_exists(job, fj->name) <= 0)
			fj->refusal = "[NONEXISTENT] Mailbox does not exist";
		else
			store_folder_delete(store, fj->name, &job->error);
		break;
	case FOLDER_RENAME:
		if (job_folder_exists(job, fj->name) <= 0)
			fj->refusal = "[NONEXISTENT] Mailbox does not exist";
		else if (strcmp(fj->to, "INBOX") == 0 || job_folder_exists(job, fj->to) > 0)
			fj->refusal = "[ALREADYEXISTS] Target mailbox exists";
		else if (store_name_check(fj->to, &fj->why) < 0)
			fj->refusal = "[CANNOT]";
		else
			store_folder_rename(store, fj->name, fj->to, &job->error);
		break;
	case FOLDER_SUBSCRIBE:
	case FOLDER_UNSUBSCRIBE:
		store_subscribe(store, fj->name, fj->op == FOLDER_SUBSCRIBE, &job->error);
		break;
	}
}

static void folder_done(struct imap_job *job)
{
	struct folder_job *fj = (struct folder_job *)job;
	struct imap_session *s = job->s;
	static const char *const what[] = {"create", "delete", "rename", "subscribe", "unsubscribe"};
	if (fj->op == FOLDER_DELETE || fj->op == FOLDER_RENAME)
		imap_job_forget_mailboxes(job->user);
	if (s->core.dead) {
		/* nothing to answer */
	} else if (fj->refusal != NULL) {
		imap_tagged(s, "NO", "%s%s%s", fj->refusal, fj->why != NULL ? " " : "",
			    fj->why != NULL ? fj->why : "");
	} else {
		/* a deleted mailbox is selected no more (RFC 3501 6.3.4) */
		if (fj->op == FOLDER_DELETE && s->view != NULL && strcmp(s->view->mbox->name, fj->name) == 0)
			imap_deselect(s);
		if (job->error != NULL) {
			imap_internal_error(s, what[fj->op], job->error);
			job->error = NULL;
		} else if (fj->mailboxid != NULL) {
			imap_tagged(s, "OK", "[MAILBOXID (%s)] %s completed", fj->mailboxid, s->cmd_name);
		} else {
			imap_tagged(s, "OK", "%s completed", s->cmd_name);
		}
	}
	free(job->error);
	free(fj->mailboxid);
	free(fj->name);
	free(fj->to);
	free(fj);
}

static void folder_start(struct imap_cmd_ctx *c, enum folder_op op, const char *name, const char *to)
{
	struct folder_job *fj = xcalloc(1, sizeof(*fj));
	fj->op = op;
	fj->name = xstrdup(name);
	fj->to = to != NULL ? xstrdup(to) : NULL;
	imap_job_start(c->s->user, c->s, &fj->job, folder_work, folder_done);
}

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
	folder_start(c, FOLDER_CREATE, name, NULL);
	return 0;
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
	folder_start(c, FOLDER_DELETE, name, NULL);
	return 0;
}

int imap_cmd_rename(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *from, *to;
	if (c->count != 2 || imap_cmd_mailbox(c, &c->args[0], &from, error_r) < 0 ||
	    imap_cmd_mailbox(c, &c->args[1], &to, error_r) < 0) {
		if (c->count != 2)
			*error_r = "RENAME needs two mailbox names";
		return -1;
	}
	folder_start(c, FOLDER_RENAME, from, strip_separator(c, to));
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
	bool sub = strcmp(c->s->cmd_name, "SUBSCRIBE") == 0;
	folder_start(c, sub ? FOLDER_SUBSCRIBE : FOLDER_UNSUBSCRIBE, name, NULL);
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

struct status_job;
static struct status_job *status_job_new(const uint8_t *items, unsigned int nitems);
static void status_job_add(struct status_job *sj, const char *name, size_t at);
static void status_job_start(struct imap_session *s, struct status_job *sj, struct buf *out);
static int status_items_parse(const struct imap_arg *items, uint8_t *codes, unsigned int *count_r,
			      const char **error_r);

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
	const struct strlist *folders, *subs;
	/* names returned only as the parent of a selected one */
	struct strlist parents;
	bool utf8; /* UTF8=ACCEPT: patterns and names in UTF-8 */
	struct buf out;
	/* LIST-STATUS (RFC 5819): STATUS lines come from a job */
	struct status_job *status;
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
	bool subscribed = (l->opts & LIST_SUBSCRIBED) ? selected : strlist_contains(l->subs, name);
	bool exists = strlist_contains(l->folders, name);
	const char *special = imap_special_use(name);
	struct buf *out = &l->out;
	buf_printf(out, "* %s (", l->lsub ? "LSUB" : "LIST");
	size_t start = out->len;
	if (l->lsub) {
		if (!selected)
			buf_append_str(out, "\\Noselect");
	} else {
		if (!exists)
			buf_append_str(out, "\\NonExistent");
		else
			buf_append_str(out,
				       has_children(l->folders, name) ? "\\HasChildren" : "\\HasNoChildren");
		if ((l->opts & LIST_RET_SUBSCRIBED) && subscribed)
			buf_printf(out, "%s\\Subscribed", out->len > start ? " " : "");
		if (special != NULL)
			buf_printf(out, "%s%s", out->len > start ? " " : "", special);
	}
	buf_append_str(out, ") \"" IMAP_SEPARATOR "\" ");
	imap_append_mailbox(l->s, out, name);
	if (!l->lsub && strlist_contains(&l->parents, name))
		buf_printf(out, " (\"CHILDINFO\" (\"%s\"))",
			   (l->opts & LIST_SUBSCRIBED) ? "SUBSCRIBED" : "SPECIAL-USE");
	buf_append_str(out, "\r\n");
	if (l->status != NULL && exists)
		status_job_add(l->status, name, out->len);
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
	struct list_ctx l = {s,        c->pool, pats,         ref,  opts,     lsub,
			     &folders, &subs,   STRLIST_INIT, utf8, BUF_INIT, NULL};
	uint8_t codes[STATUS_ITEMS_MAX];
	unsigned int ncodes;
	const char *err;
	/* invalid STATUS items: no STATUS responses (RFC 5819 leaves it open) */
	if (status_items != NULL && status_items_parse(status_items, codes, &ncodes, &err) == 0)
		l.status = status_job_new(codes, ncodes);
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
	if (l.status != NULL) {
		status_job_start(s, l.status, &l.out);
		return 0;
	}
	imap_write_buf(s, &l.out);
	buf_free(&l.out);
	imap_tagged(s, "OK", "%s completed", s->cmd_name);
	return 0;
}

/* ---- STATUS ---- */

/* STATUS opens and syncs the mailbox (writes the index): a job, which
   also serves LIST-STATUS (RFC 5819) with the statuses of many. */
static const char *const status_names[] = {"MESSAGES",      "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN",
					   "HIGHESTMODSEQ", "SIZE",   "DELETED", "MAILBOXID"};
#define STATUS_MAILBOXID 8

/* The items of a STATUS list as indexes into status_names, in the order
   asked; 0, or -1 with *error_r. */
static int status_items_parse(const struct imap_arg *items, uint8_t *codes, unsigned int *count_r,
			      const char **error_r)
{
	if (items->type != IMAP_ARG_LIST || items->count == 0) {
		*error_r = "STATUS needs a list of items";
		return -1;
	}
	if (items->count > STATUS_ITEMS_MAX) {
		*error_r = "Too many STATUS items";
		return -1;
	}
	for (unsigned int i = 0; i < items->count; i++) {
		size_t k = 0;
		while (k < N_ELEMENTS(status_names) &&
		       !imap_arg_atom_equals(&items->list[i], status_names[k]))
			k++;
		if (k == N_ELEMENTS(status_names)) {
			*error_r = "Unknown STATUS item";
			return -1;
		}
		codes[i] = (uint8_t)k;
	}
	*count_r = items->count;
	return 0;
}

struct status_job {
	struct imap_job job;
	uint8_t items[STATUS_ITEMS_MAX];
	unsigned int nitems;
	struct strlist names;
	/* LIST: the LIST responses, each name's STATUS line goes at at[i];
	   STATUS: out is empty */
	struct buf out;
	size_t *at;
	bool list;
	/* results, by name: 1 found, 0 no such mailbox, -1 error */
	struct store_status *st;
	char **objectids;
	int *found;
	char **errors;
};

static struct status_job *status_job_new(const uint8_t *items, unsigned int nitems)
{
	struct status_job *sj = xcalloc(1, sizeof(*sj));
	memcpy(sj->items, items, nitems);
	sj->nitems = nitems;
	return sj;
}

static void status_job_add(struct status_job *sj, const char *name, size_t at)
{
	strlist_add(&sj->names, name);
	sj->at = xreallocarray(sj->at, sj->names.count, sizeof(*sj->at));
	sj->at[sj->names.count - 1] = at;
}

static void status_work(struct imap_job *job)
{
	struct status_job *sj = (struct status_job *)job;
	size_t n = sj->names.count;
	sj->st = xcalloc(n + 1, sizeof(*sj->st));
	sj->found = xcalloc(n + 1, sizeof(*sj->found));
	sj->errors = xcalloc(n + 1, sizeof(*sj->errors));
	sj->objectids = xcalloc(n + 1, sizeof(*sj->objectids));
	for (size_t i = 0; i < n; i++) {
		struct store_mailbox *m;
		/* a mailbox the handle had open is synced, as opening syncs */
		int r = imap_job_mailbox(job, sj->names.items[i], &m);
		if ((r == 1 && store_mailbox_sync(m, false, &job->error) < 0) ||
		    (r > 0 && store_mailbox_status(m, &sj->st[i], &job->error) < 0))
			r = -1;
		sj->found[i] = r < 0 ? -1 : r > 0;
		if (r > 0)
			sj->objectids[i] = xstrdup(store_mailbox_objectid(m));
		sj->errors[i] = job->error;
		job->error = NULL;
	}
}

static void status_write(struct imap_session *s, const struct status_job *sj, size_t k)
{
	const struct store_status *st = &sj->st[k];
	const uint64_t values[] = {st->messages, st->recent,        st->uidnext, st->uidvalidity,
				   st->unseen,   st->highestmodseq, st->size,    st->deleted};
	struct buf out = BUF_INIT;
	buf_append_str(&out, "* STATUS ");
	imap_append_mailbox(s, &out, sj->names.items[k]);
	buf_append_str(&out, " (");
	for (unsigned int i = 0; i < sj->nitems; i++) {
		const char *sep = i > 0 ? " " : "";
		if (sj->items[i] == STATUS_MAILBOXID) /* RFC 8474 4.3 */
			buf_printf(&out, "%sMAILBOXID (%s)", sep, sj->objectids[k]);
		else
			buf_printf(&out, "%s%s %llu", sep, status_names[sj->items[i]],
				   (unsigned long long)values[sj->items[i]]);
	}
	buf_append_str(&out, ")\r\n");
	imap_write_buf(s, &out);
	buf_free(&out);
}

static void status_job_free(struct status_job *sj)
{
	for (size_t i = 0; sj->errors != NULL && i < sj->names.count; i++) {
		free(sj->errors[i]);
		free(sj->objectids[i]);
	}
	free(sj->errors);
	free(sj->objectids);
	free(sj->found);
	free(sj->st);
	free(sj->at);
	buf_free(&sj->out);
	strlist_free(&sj->names);
	free(sj->job.error);
	free(sj);
}

static void status_done(struct imap_job *job)
{
	struct status_job *sj = (struct status_job *)job;
	struct imap_session *s = job->s;
	if (s->core.dead) {
		status_job_free(sj);
		return;
	}
	if (job->error != NULL) { /* the store did not open */
		imap_internal_error(s, sj->list ? "list" : "status", job->error);
		job->error = NULL;
		status_job_free(sj);
		return;
	}
	size_t written = 0;
	for (size_t i = 0; i < sj->names.count; i++) {
		if (sj->at[i] > written)
			io_write(s->core.io, sj->out.data + written, sj->at[i] - written);
		written = sj->at[i];
		if (sj->found[i] > 0) {
			status_write(s, sj, i);
		} else if (sj->list && sj->found[i] < 0) {
			log_error("imap status failed session=%s: %s", s->core.id, sj->errors[i]);
		} else if (!sj->list) {
			if (sj->found[i] < 0) {
				imap_internal_error(s, "status", sj->errors[i]);
				sj->errors[i] = NULL;
			} else {
				imap_tagged(s, "NO", "[NONEXISTENT] Mailbox does not exist");
			}
			status_job_free(sj);
			return;
		}
	}
	if (sj->out.len > written)
		io_write(s->core.io, sj->out.data + written, sj->out.len - written);
	imap_tagged(s, "OK", "%s completed", s->cmd_name);
	status_job_free(sj);
}

static void status_job_start(struct imap_session *s, struct status_job *sj, struct buf *out)
{
	if (out != NULL) {
		sj->out = *out;
		*out = (struct buf)BUF_INIT;
		sj->list = true;
	}
	imap_job_start(s->user, s, &sj->job, status_work, status_done);
}

int imap_cmd_status(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *name;
	if (c->count != 2 || imap_cmd_mailbox(c, &c->args[0], &name, error_r) < 0) {
		if (c->count != 2)
			*error_r = "STATUS needs a mailbox and items";
		return -1;
	}
	uint8_t codes[STATUS_ITEMS_MAX];
	unsigned int ncodes;
	if (status_items_parse(&c->args[1], codes, &ncodes, error_r) < 0)
		return -1;
	/* our own pending changes are in the index: nothing to flush */
	struct status_job *sj = status_job_new(codes, ncodes);
	status_job_add(sj, name, 0);
	status_job_start(c->s, sj, NULL);
	return 0;
}
