/* Shared open mailboxes and each session's view of its selected one.

   A mailbox opened by any session of this worker is opened once: one
   store handle, one inotify watch, one message table (UID, flags,
   keywords, size, modseq).  A change seen by the watch marks it dirty; the
   next session that looks resyncs it once for all (RFC 3501 5.2: the
   server reports changes; 7.4.1: never an EXPUNGE during FETCH, STORE or
   SEARCH, which is why a view keeps its own UID vector until it may
   report the expunge). */
#include "imap/imap_private.h"
#include "lib/io.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store_imap_extra.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <event2/event.h>

static struct imap_mbox *mboxes;

/* ---- UID vectors ---- */

static struct imap_uidvec *uidvec_new(uint32_t cap)
{
	if (cap < 16)
		cap = 16;
	struct imap_uidvec *v = xmalloc(sizeof(*v) + (size_t)cap * sizeof(uint32_t));
	v->refs = 1;
	v->count = 0;
	v->cap = cap;
	return v;
}

static void uidvec_unref(struct imap_uidvec **vp)
{
	if (*vp != NULL && --(*vp)->refs == 0)
		free(*vp);
	*vp = NULL;
}

static struct imap_uidvec *uidvec_ref(struct imap_uidvec *v)
{
	v->refs++;
	return v;
}

/* Makes mbox->vec hold exactly the UIDs of mbox->msgs: appended in place
   when only new UIDs were added (views see their own prefix), else a new
   vector. */
static void rebuild_vec(struct imap_mbox *mbox, bool expunged)
{
	struct imap_uidvec *v = mbox->vec;
	if (!expunged && v != NULL && mbox->count <= v->cap) {
		for (uint32_t i = v->count; i < mbox->count; i++)
			v->uids[i] = mbox->msgs[i].uid;
		v->count = mbox->count;
		return;
	}
	struct imap_uidvec *nv = uidvec_new(mbox->count + mbox->count / 2);
	for (uint32_t i = 0; i < mbox->count; i++)
		nv->uids[i] = mbox->msgs[i].uid;
	nv->count = mbox->count;
	uidvec_unref(&mbox->vec);
	mbox->vec = nv;
}

/* ---- the message table ---- */

/* Adds the keywords of a message (space-separated) that the mailbox has
   not had yet to its list. */
/* True when the mailbox has had the keyword of n bytes at k (keywords
   compare case-insensitively). */
static bool keyword_known(const struct imap_mbox *mbox, const char *k, size_t n)
{
	for (size_t i = 0; i < mbox->keywords.count; i++)
		if (strncasecmp(mbox->keywords.items[i], k, n) == 0 && mbox->keywords.items[i][n] == '\0')
			return true;
	return false;
}

static void keywords_note(struct imap_mbox *mbox, const char *keywords)
{
	const char *k = keywords;
	while (k != NULL && *k != '\0') {
		const char *e = strchr(k, ' ');
		size_t n = e != NULL ? (size_t)(e - k) : strlen(k);
		if (n > 0 && mbox->keywords.count < IMAP_MAX_KEYWORDS && !keyword_known(mbox, k, n)) {
			char *kw = xstrndup(k, n);
			strlist_add(&mbox->keywords, kw);
			free(kw);
			mbox->keywords_gen++;
		}
		k = e != NULL ? e + 1 : k + n;
	}
}

bool imap_mbox_keywords_fit(const struct imap_mbox *mbox, const struct imap_flags *f)
{
	size_t count = mbox->keywords.count;
	/* repeated new keywords in f count more than once: still bounded */
	for (unsigned int i = 0; i < f->keyword_count; i++)
		if (!keyword_known(mbox, f->keywords[i], strlen(f->keywords[i])))
			count++;
	return count <= IMAP_MAX_KEYWORDS;
}

static void msg_set(struct imap_mbox *mbox, struct imap_msg *m, const struct store_msg *sm)
{
	m->uid = sm->uid;
	m->flags = sm->flags;
	m->size = sm->size;
	m->modseq = sm->modseq;
	m->internaldate = sm->internaldate;
	m->bare_lf = sm->bare_lf;
	free(m->keywords);
	m->keywords = sm->keywords != NULL && sm->keywords[0] != '\0' ? xstrdup(sm->keywords) : NULL;
	keywords_note(mbox, m->keywords);
	if (m->locator == NULL || sm->locator == NULL || strcmp(m->locator, sm->locator) != 0) {
		free(m->locator);
		m->locator = sm->locator != NULL ? xstrdup(sm->locator) : NULL;
	}
}

static struct imap_msg *msg_find(const struct imap_mbox *mbox, uint32_t uid)
{
	uint32_t lo = 0, hi = mbox->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (mbox->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < mbox->count && mbox->msgs[lo].uid == uid ? &mbox->msgs[lo] : NULL;
}

const struct imap_msg *imap_mbox_find(const struct imap_mbox *mbox, uint32_t uid)
{
	return msg_find(mbox, uid);
}

struct imap_msg *imap_mbox_find_mutable(struct imap_mbox *mbox, uint32_t uid)
{
	return msg_find(mbox, uid);
}

static void msg_free(struct imap_msg *m)
{
	free(m->keywords);
	free(m->locator);
	imap_sortkey_free(&m->sortkey);
}

static void msgs_reserve(struct imap_mbox *mbox, uint32_t n)
{
	if (n <= mbox->alloc)
		return;
	uint32_t a = mbox->alloc ? mbox->alloc : 64;
	while (a < n)
		a *= 2;
	mbox->msgs = xreallocarray(mbox->msgs, a, sizeof(*mbox->msgs));
	memset(mbox->msgs + mbox->alloc, 0, (a - mbox->alloc) * sizeof(*mbox->msgs));
	mbox->alloc = a;
}

static int load_all(struct imap_mbox *mbox, char **error_r)
{
	struct store_msg_list list;
	if (store_mailbox_get_counters(mbox->smbox, &mbox->uidnext, &mbox->highestmodseq, error_r) < 0 ||
	    store_mailbox_list(mbox->smbox, &list, error_r) < 0)
		return -1;
	msgs_reserve(mbox, (uint32_t)list.count);
	for (size_t i = 0; i < list.count; i++)
		msg_set(mbox, &mbox->msgs[i], &list.msgs[i]);
	mbox->count = (uint32_t)list.count;
	store_msg_list_free(&list);
	rebuild_vec(mbox, true);
	return 0;
}

static void remove_uids(struct imap_mbox *mbox, const uint32_t *uids, size_t n, bool *removed_r)
{
	for (size_t i = 0; i < n; i++) {
		struct imap_msg *m = msg_find(mbox, uids[i]);
		if (m == NULL)
			continue;
		msg_free(m);
		size_t idx = (size_t)(m - mbox->msgs);
		memmove(m, m + 1, (mbox->count - idx - 1) * sizeof(*m));
		mbox->count--;
		memset(&mbox->msgs[mbox->count], 0, sizeof(*m));
		*removed_r = true;
	}
}

static int msg_cmp(const void *a, const void *b)
{
	const struct imap_msg *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Reads what changed in the index since the table was last read: cheap
   (the counters, then only changed and expunged rows), and only reads, so
   the loop never waits for the index's write lock.  1 changed, 0 not, -1. */
static int mbox_reload(struct imap_mbox *mbox, char **error_r)
{
	uint32_t uidnext;
	uint64_t modseq;
	if (store_mailbox_get_counters(mbox->smbox, &uidnext, &modseq, error_r) < 0)
		return -1;
	if (uidnext == mbox->uidnext && modseq == mbox->highestmodseq)
		return 0;
	struct store_msg_list list;
	uint32_t *gone = NULL;
	size_t gone_count = 0;
	if (store_mailbox_expunged_since(mbox->smbox, mbox->highestmodseq, &gone, &gone_count, error_r) < 0)
		return -1;
	if (store_mailbox_changed_since(mbox->smbox, mbox->highestmodseq, &list, error_r) < 0) {
		free(gone);
		return -1;
	}
	bool removed = false, unsorted = false;
	remove_uids(mbox, gone, gone_count, &removed);
	free(gone);
	for (size_t i = 0; i < list.count; i++) {
		struct imap_msg *m = msg_find(mbox, list.msgs[i].uid);
		if (m == NULL) {
			if (mbox->count > 0 && mbox->msgs[mbox->count - 1].uid > list.msgs[i].uid)
				unsorted = true;
			msgs_reserve(mbox, mbox->count + 1);
			m = &mbox->msgs[mbox->count++];
		}
		msg_set(mbox, m, &list.msgs[i]);
	}
	store_msg_list_free(&list);
	if (unsorted) {
		qsort(mbox->msgs, mbox->count, sizeof(*mbox->msgs), msg_cmp);
		removed = true;
	}
	mbox->uidnext = uidnext;
	mbox->highestmodseq = modseq;
	rebuild_vec(mbox, removed);
	return 1;
}

/* ---- syncing with the Maildir, on a job thread ---- */

struct sync_job {
	struct imap_job job;
	struct imap_mbox *mbox; /* referenced; used in the loop only */
	char *name;
	struct imap_recent_take take;
};

/* Takes the mailbox's \Recent messages from the store (a write, when
   there are any): [lo, hi) with hi its UIDNEXT, read first, so that what
   the take hands out beyond it (a message added meanwhile) is \Recent for
   no session rather than for two. */
void imap_mbox_take_recent_work(struct store_mailbox *m, struct imap_recent_take *take)
{
	if (!take->want)
		return;
	uint32_t first, end;
	uint64_t modseq;
	char *error = NULL;
	if (store_mailbox_get_counters(m, &end, &modseq, &error) < 0 ||
	    store_mailbox_take_recent(m, &first, &error) < 0) {
		log_error("imap take-recent failed mailbox=%s: %s", store_mailbox_name(m), error);
		free(error);
		return;
	}
	take->lo = first;
	take->hi = end;
}

void imap_mbox_sync_work(struct imap_job *job, const char *name, struct imap_recent_take *take)
{
	struct store_mailbox *m;
	/* a mailbox the handle just opened was synced by the opening */
	int r = imap_job_mailbox(job, name, &m);
	if (r == 1)
		store_mailbox_sync(m, false, &job->error);
	if (r > 0 && job->error == NULL && take != NULL)
		imap_mbox_take_recent_work(m, take);
}

void imap_mbox_recent_add(struct imap_mbox *mbox, const struct imap_recent_take *take)
{
	if (take->lo >= take->hi)
		return;
	struct imap_uid_range *last =
	    mbox->recent_pool_count > 0 ? &mbox->recent_pool[mbox->recent_pool_count - 1] : NULL;
	if (last != NULL && last->hi == take->lo) {
		last->hi = take->hi;
		return;
	}
	/* takes are disjoint and ascending; ranges no view claims (their
	   messages were expunged unseen) are dropped oldest first */
	if (mbox->recent_pool_count == IMAP_RECENT_POOL_MAX) {
		memmove(mbox->recent_pool, mbox->recent_pool + 1,
			(IMAP_RECENT_POOL_MAX - 1) * sizeof(*mbox->recent_pool));
		mbox->recent_pool_count--;
	}
	if (mbox->recent_pool == NULL)
		mbox->recent_pool = xcalloc(IMAP_RECENT_POOL_MAX, sizeof(*mbox->recent_pool));
	mbox->recent_pool[mbox->recent_pool_count].lo = take->lo;
	mbox->recent_pool[mbox->recent_pool_count].hi = take->hi;
	mbox->recent_pool_count++;
}

static void sync_work(struct imap_job *job)
{
	struct sync_job *sj = (struct sync_job *)job;
	imap_mbox_sync_work(job, sj->name, &sj->take);
}

static void mbox_sync_start(struct imap_mbox *mbox);

static void sync_done(struct imap_job *job)
{
	struct sync_job *sj = (struct sync_job *)job;
	struct imap_mbox *mbox = sj->mbox;
	mbox->syncing = false;
	if (job->error != NULL)
		log_error("imap sync failed mailbox=%s: %s", mbox->name, job->error);
	imap_mbox_recent_add(mbox, &sj->take);
	char *error = NULL;
	int r = mbox_reload(mbox, &error);
	if (r < 0) {
		log_error("imap reload failed mailbox=%s: %s", mbox->name, error);
		free(error);
	}
	if (mbox->sync_again) {
		mbox->sync_again = false;
		mbox_sync_start(mbox);
	}
	if (r > 0)
		imap_idle_notify(mbox);
	free(job->error);
	free(sj->name);
	free(sj);
	imap_mbox_unref(&mbox);
}

/* Syncs the mailbox with the Maildir on a job thread (store_mailbox_sync
   reads the directories and writes the index), at most one at a time per
   mailbox, and takes the \Recent messages for the read-write views; what
   it finds is read into the table when it is done. */
static void mbox_sync_start(struct imap_mbox *mbox)
{
	if (mbox->syncing) {
		mbox->sync_again = true;
		return;
	}
	mbox->syncing = true;
	mbox->refs++;
	struct sync_job *sj = xcalloc(1, sizeof(*sj));
	sj->mbox = mbox;
	sj->name = xstrdup(mbox->name);
	sj->take.want = mbox->rw_views > 0;
	imap_job_start(mbox->user, NULL, &sj->job, sync_work, sync_done);
}

void imap_mbox_mark_dirty(struct imap_mbox *mbox)
{
	mbox->dirty = true;
}

int imap_mbox_refresh(struct imap_mbox *mbox, char **error_r)
{
	if (mbox->watch_fd >= 0) {
		char ev[4096] __attribute__((aligned(8)));
		while (read(mbox->watch_fd, ev, sizeof(ev)) > 0)
			mbox->dirty = true;
	}
	if (mbox->dirty) {
		mbox->dirty = false;
		mbox_sync_start(mbox);
	}
	return mbox_reload(mbox, error_r) < 0 ? -1 : 0;
}

static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_mbox *mbox = arg;
	store_watch_drain(mbox->watch_fd);
	mbox->dirty = true;
	imap_idle_notify(mbox);
}

int imap_mbox_get(struct imap_user *user, const char *name, struct imap_mbox **mbox_r, char **error_r)
{
	for (struct imap_mbox *m = mboxes; m != NULL; m = m->next) {
		if (m->user == user && strcmp(m->name, name) == 0) {
			m->refs++;
			*mbox_r = m;
			return imap_mbox_refresh(m, error_r) < 0 ? -1 : 1;
		}
	}
	/* reads only: a job opened (and so indexed and synced) it before */
	struct store_mailbox *smbox;
	int r = store_mailbox_open_indexed(user->store, name, &smbox, error_r);
	if (r <= 0)
		return r;
	struct imap_mbox *m = xcalloc(1, sizeof(*m));
	m->user = user;
	user->refs++;
	m->name = xstrdup(name);
	m->smbox = smbox;
	m->refs = 1;
	m->uidvalidity = store_mailbox_uidvalidity(smbox);
	m->watch_fd = -1;
	if (load_all(m, error_r) < 0) {
		imap_mbox_unref(&m);
		return -1;
	}
	char *err = NULL;
	m->watch_fd = store_watch_open(smbox, &err);
	if (m->watch_fd < 0) {
		/* Without a watch, changes are still found at each command. */
		log_warn("imap watch-failed mailbox=%s: %s", name, err);
		free(err);
	} else {
		m->watch_ev = event_new(user->base, m->watch_fd, EV_READ | EV_PERSIST, watch_cb, m);
		event_add(m->watch_ev, NULL);
	}
	m->next = mboxes;
	mboxes = m;
	*mbox_r = m;
	return 1;
}

struct imap_mbox *imap_mbox_find_open(const struct imap_user *user, const char *name)
{
	for (struct imap_mbox *m = mboxes; m != NULL; m = m->next)
		if (m->user == user && strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

static void close_fd_work(void *arg)
{
	close((int)(intptr_t)arg);
}

void imap_mbox_unref(struct imap_mbox **mp)
{
	struct imap_mbox *m = *mp;
	*mp = NULL;
	if (m == NULL || --m->refs > 0)
		return;
	for (struct imap_mbox **p = &mboxes; *p != NULL; p = &(*p)->next) {
		if (*p == m) {
			*p = m->next;
			break;
		}
	}
	if (m->watch_ev != NULL)
		event_free(m->watch_ev);
	/* closing an inotify instance waits for the kernel (milliseconds) */
	if (m->watch_fd >= 0)
		jobs_submit(close_fd_work, NULL, (void *)(intptr_t)m->watch_fd);
	for (uint32_t i = 0; i < m->count; i++)
		msg_free(&m->msgs[i]);
	free(m->msgs);
	free(m->recent_pool);
	imap_cache_fill_free(m);
	strlist_free(&m->keywords);
	uidvec_unref(&m->vec);
	store_mailbox_close(&m->smbox);
	imap_user_unref(&m->user);
	free(m->name);
	free(m);
}

/* ---- views ---- */

struct imap_view *imap_view_new(struct imap_mbox *mbox, bool readonly)
{
	struct imap_view *v = xcalloc(1, sizeof(*v));
	v->mbox = mbox;
	v->vec = uidvec_ref(mbox->vec);
	v->count = mbox->count;
	v->readonly = readonly;
	v->modseq_reported = mbox->highestmodseq;
	v->keywords_gen = mbox->keywords_gen;
	if (!readonly)
		mbox->rw_views++;
	return v;
}

void imap_view_free(struct imap_view **vp)
{
	struct imap_view *v = *vp;
	if (v == NULL)
		return;
	if (!v->readonly)
		v->mbox->rw_views--;
	uidvec_unref(&v->vec);
	imap_mbox_unref(&v->mbox);
	free(v->recent);
	free(v);
	*vp = NULL;
}

bool imap_view_recent(const struct imap_view *v, uint32_t uid)
{
	uint32_t lo = 0, hi = v->recent_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v->recent[mid].hi <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->recent_count && v->recent[lo].lo <= uid;
}

uint32_t imap_view_count_recent(const struct imap_view *v)
{
	uint32_t n = 0;
	for (uint32_t i = 0; v->recent_count > 0 && i < v->count; i++)
		if (imap_view_recent(v, v->vec->uids[i]))
			n++;
	return n;
}

void imap_view_add_recent(struct imap_view *v, uint32_t lo, uint32_t hi)
{
	if (lo >= hi)
		return;
	struct imap_uid_range *last = v->recent_count > 0 ? &v->recent[v->recent_count - 1] : NULL;
	if (last != NULL && lo <= last->hi) {
		if (hi > last->hi)
			last->hi = hi;
		return;
	}
	if (v->recent_count == v->recent_alloc) {
		v->recent_alloc = v->recent_alloc ? v->recent_alloc * 2 : 4;
		v->recent = xreallocarray(v->recent, v->recent_alloc, sizeof(*v->recent));
	}
	v->recent[v->recent_count].lo = lo;
	v->recent[v->recent_count].hi = hi;
	v->recent_count++;
}

/* A read-write view takes the \Recent flag of messages it is about to
   report first (RFC 3501 2.3.2: the first session notified of a message
   sees it \Recent, later ones do not): the part of what jobs of this
   worker took from the store (the store's take is a write) among the
   UIDs it has not reported yet.  Another view of this worker, or of
   another process, never gets them too. */
void imap_view_take_recent(struct imap_session *s)
{
	struct imap_view *v = s->view;
	struct imap_mbox *m = v->mbox;
	if (v->readonly || v->count == 0 || imap_view_uid(v, v->count) < v->recent_taken)
		return;
	uint32_t lo = v->recent_taken, hi = imap_view_uid(v, v->count) + 1;
	struct imap_uid_range kept[IMAP_RECENT_POOL_MAX * 2];
	uint32_t nkept = 0;
	for (uint32_t i = 0; i < m->recent_pool_count; i++) {
		struct imap_uid_range r = m->recent_pool[i];
		uint32_t a = r.lo > lo ? r.lo : lo, b = r.hi < hi ? r.hi : hi;
		if (a >= b) {
			kept[nkept++] = r;
			continue;
		}
		imap_view_add_recent(v, a, b);
		/* what lies below (other views may not have heard of it) or
		   beyond the view stays */
		if (r.lo < a)
			kept[nkept++] = (struct imap_uid_range){r.lo, a};
		if (b < r.hi)
			kept[nkept++] = (struct imap_uid_range){b, r.hi};
	}
	if (nkept > IMAP_RECENT_POOL_MAX) {
		memmove(kept, kept + (nkept - IMAP_RECENT_POOL_MAX), IMAP_RECENT_POOL_MAX * sizeof(*kept));
		nkept = IMAP_RECENT_POOL_MAX;
	}
	if (nkept > 0)
		memcpy(m->recent_pool, kept, nkept * sizeof(*kept));
	m->recent_pool_count = nkept;
	v->recent_taken = hi;
}

uint32_t imap_view_seq(const struct imap_view *v, uint32_t uid)
{
	uint32_t lo = 0, hi = v->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v->vec->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->count && v->vec->uids[lo] == uid ? lo + 1 : 0;
}

void imap_append_uidset(struct buf *out, const uint32_t *uids, size_t count)
{
	for (size_t i = 0; i < count;) {
		size_t j = i;
		while (j + 1 < count && uids[j + 1] == uids[j] + 1)
			j++;
		if (i > 0)
			buf_append_char(out, ',');
		if (j > i)
			buf_printf(out, "%u:%u", uids[i], uids[j]);
		else
			buf_printf(out, "%u", uids[i]);
		i = j + 1;
	}
}

/* Reports expunges (allowed now): EXPUNGE per message or one VANISHED. */
static void report_expunges(struct imap_session *s)
{
	struct imap_view *v = s->view;
	struct imap_mbox *m = v->mbox;
	bool qresync = (s->enabled & IMAP_ENABLED_QRESYNC) != 0;
	uint32_t *gone = NULL;
	size_t ngone = 0, galloc = 0;
	uint32_t kept = 0, seq = 1, j = 0;
	struct buf out = BUF_INIT;
	for (uint32_t i = 0; i < v->count; i++) {
		uint32_t uid = v->vec->uids[i];
		while (j < m->count && m->msgs[j].uid < uid)
			j++;
		if (j < m->count && m->msgs[j].uid == uid) {
			kept++;
			seq++;
			continue;
		}
		if (qresync) {
			if (ngone == galloc) {
				galloc = galloc ? galloc * 2 : 64;
				gone = xreallocarray(gone, galloc, sizeof(*gone));
			}
			gone[ngone++] = uid;
		} else {
			buf_printf(&out, "* %u EXPUNGE\r\n", seq);
			if (out.len > 65536)
				imap_write_buf(s, &out);
		}
	}
	if (ngone > 0) {
		buf_append_str(&out, "* VANISHED ");
		imap_append_uidset(&out, gone, ngone);
		buf_append_str(&out, "\r\n");
	}
	imap_write_buf(s, &out);
	buf_free(&out);
	free(gone);
	/* the view now is the mailbox minus what arrived since (EXISTS below) */
	uidvec_unref(&v->vec);
	v->vec = uidvec_ref(m->vec);
	v->count = kept;
	/* kept messages are exactly the prefix of the new vector only when no
	   message arrived between them; UIDs are ascending so they are */
}

/* Without permission to expunge, new messages are added to a private copy
   of the view's vector (expunged ones stay until they may be reported). */
static void add_new_private(struct imap_view *v)
{
	struct imap_mbox *m = v->mbox;
	uint32_t last = v->count > 0 ? v->vec->uids[v->count - 1] : 0;
	uint32_t first_new = 0;
	while (first_new < m->count && m->msgs[first_new].uid <= last)
		first_new++;
	if (first_new >= m->count)
		return;
	uint32_t add = m->count - first_new;
	struct imap_uidvec *nv = uidvec_new(v->count + add);
	memcpy(nv->uids, v->vec->uids, v->count * sizeof(uint32_t));
	for (uint32_t i = 0; i < add; i++)
		nv->uids[v->count + i] = m->msgs[first_new + i].uid;
	nv->count = v->count + add;
	uidvec_unref(&v->vec);
	v->vec = nv;
}

void imap_enable_condstore(struct imap_session *s)
{
	if (s->enabled & IMAP_ENABLED_CONDSTORE)
		return;
	s->enabled |= IMAP_ENABLED_CONDSTORE;
	/* the flag changes reported so far: what the client is up to date with */
	if (s->view != NULL)
		imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
			      (unsigned long long)s->view->modseq_reported);
}

void imap_view_send_flags(struct imap_session *s, bool force)
{
	struct imap_view *v = s->view;
	struct imap_mbox *m = v->mbox;
	if (!force && v->keywords_gen == m->keywords_gen)
		return;
	struct buf out = BUF_INIT;
	buf_append_str(&out, "\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (size_t i = 0; i < m->keywords.count; i++)
		buf_printf(&out, " %s", m->keywords.items[i]);
	imap_untagged(s, "FLAGS (%s)", out.data);
	/* "\*": new keywords may be created, until the mailbox has
	   IMAP_MAX_KEYWORDS; a read-only mailbox keeps no flag changes (RFC
	   3501 7.1, the EXAMINE example of 6.3.2) */
	if (v->readonly)
		imap_untagged(s, "OK [PERMANENTFLAGS ()] No permanent flags permitted");
	else
		imap_untagged(s, "OK [PERMANENTFLAGS (%s%s)] Flags permitted", out.data,
			      m->keywords.count < IMAP_MAX_KEYWORDS ? " \\*" : "");
	buf_free(&out);
	v->keywords_gen = m->keywords_gen;
}

/* FETCH FLAGS for the first known messages whose flags changed (the
   others were just announced by EXISTS: the client asks for their flags),
   but for the sequence numbers skip[0..nskip) (ascending). */
static void report_flags(struct imap_session *s, uint32_t known, const uint32_t *skip, uint32_t nskip)
{
	struct imap_view *v = s->view;
	struct imap_mbox *m = v->mbox;
	struct buf out = BUF_INIT;
	uint32_t k = 0;
	for (uint32_t i = 0; i < known && i < v->count; i++) {
		while (k < nskip && skip[k] < i + 1)
			k++;
		if (k < nskip && skip[k] == i + 1)
			continue;
		const struct imap_msg *msg = msg_find(m, v->vec->uids[i]);
		if (msg == NULL || msg->modseq <= v->modseq_reported)
			continue;
		buf_printf(&out, "* %u FETCH (", i + 1);
		if (s->enabled & IMAP_ENABLED_QRESYNC)
			buf_printf(&out, "UID %u ", msg->uid);
		buf_append_str(&out, "FLAGS ");
		imap_append_flags(&out, msg->flags, msg->keywords, imap_view_recent(v, msg->uid));
		if (s->enabled & IMAP_ENABLED_CONDSTORE)
			buf_printf(&out, " MODSEQ (%llu)", (unsigned long long)msg->modseq);
		buf_append_str(&out, ")\r\n");
		if (out.len > 65536)
			imap_write_buf(s, &out);
	}
	imap_write_buf(s, &out);
	buf_free(&out);
	v->modseq_reported = m->highestmodseq;
}

void imap_view_update(struct imap_session *s, bool allow_expunge)
{
	imap_view_update_skip(s, allow_expunge, NULL, 0);
}

void imap_view_update_skip(struct imap_session *s, bool allow_expunge, const uint32_t *skip, uint32_t nskip)
{
	struct imap_view *v = s->view;
	if (v == NULL)
		return;
	struct imap_mbox *m = v->mbox;
	char *error = NULL;
	if (imap_mbox_refresh(m, &error) < 0) {
		log_error("imap sync failed session=%s mailbox=%s: %s", s->core.id, m->name, error);
		free(error);
	}
	if (v->vec != m->vec) {
		if (allow_expunge)
			report_expunges(s);
		else
			add_new_private(v);
	}
	uint32_t known = v->count;
	if (v->vec == m->vec)
		v->count = m->count;
	else if (v->vec->count > v->count)
		v->count = v->vec->count;
	if (v->count > known) {
		imap_view_take_recent(s);
		imap_untagged(s, "%u EXISTS", v->count);
		uint32_t recent = imap_view_count_recent(v);
		if (!(s->enabled & IMAP_ENABLED_IMAP4REV2) && recent != v->recent_reported)
			imap_untagged(s, "%u RECENT", recent);
		v->recent_reported = recent;
	}
	imap_view_send_flags(s, false);
	if (m->highestmodseq > v->modseq_reported)
		report_flags(s, known, skip, nskip);
}

/* ---- sets ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts and removes duplicates. */
static uint32_t uniq(uint32_t *a, uint32_t n)
{
	if (n == 0)
		return 0;
	qsort(a, n, sizeof(*a), cmp_u32);
	uint32_t k = 1;
	for (uint32_t i = 1; i < n; i++)
		if (a[i] != a[k - 1])
			a[k++] = a[i];
	return k;
}

/* Index of the first UID >= uid in the view. */
static uint32_t lower_bound(const struct imap_view *v, uint32_t uid)
{
	uint32_t lo = 0, hi = v->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v->vec->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int imap_view_resolve(struct imap_session *s, const struct imap_seqset *set, bool uid, uint32_t **seqs_r,
		      const char **error_r)
{
	const struct imap_view *v = s->view;
	uint32_t *out = NULL;
	size_t n = 0, alloc = 0;
	if (set->saved) {
		/* "$": the UIDs saved by SEARCH RETURN (SAVE) (RFC 5182) */
		out = xmalloc((s->saved_count + 1) * sizeof(*out));
		for (uint32_t i = 0; i < s->saved_count; i++) {
			uint32_t seq = imap_view_seq(v, s->saved[i]);
			if (seq > 0)
				out[n++] = seq;
		}
		*seqs_r = out;
		return (int)uniq(out, (uint32_t)n);
	}
	uint32_t max_uid = v->count > 0 ? v->vec->uids[v->count - 1] : 0;
	for (unsigned int r = 0; r < set->count; r++) {
		uint32_t lo, hi;
		uint32_t from, to; /* 0-based index range [from, to) */
		if (uid) {
			lo = imap_seq_resolve(set->ranges[r].lo, max_uid);
			hi = imap_seq_resolve(set->ranges[r].hi, max_uid);
			if (lo > hi) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
			from = lower_bound(v, lo);
			to = hi == UINT32_MAX ? v->count : lower_bound(v, hi + 1);
		} else {
			if (v->count == 0) {
				free(out);
				*error_r = "No messages in the mailbox";
				return -1;
			}
			lo = imap_seq_resolve(set->ranges[r].lo, v->count);
			hi = imap_seq_resolve(set->ranges[r].hi, v->count);
			if (lo > hi) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
			if (hi > v->count) {
				free(out);
				*error_r = "Invalid sequence number: beyond the last message";
				return -1;
			}
			from = lo - 1;
			to = hi;
		}
		if (to <= from)
			continue;
		if (n + (to - from) > alloc) {
			alloc = (n + (to - from)) * 2;
			out = xreallocarray(out, alloc, sizeof(*out));
		}
		for (uint32_t i = from; i < to; i++)
			out[n++] = i + 1;
	}
	if (out == NULL)
		out = xmalloc(sizeof(*out));
	*seqs_r = out;
	return (int)uniq(out, (uint32_t)n);
}

/* ---- flags ---- */

void imap_append_flags(struct buf *out, uint32_t flags, const char *keywords, bool recent)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
	    {STORE_FLAG_SEEN, "\\Seen"},       {STORE_FLAG_ANSWERED, "\\Answered"},
	    {STORE_FLAG_FLAGGED, "\\Flagged"}, {STORE_FLAG_DELETED, "\\Deleted"},
	    {STORE_FLAG_DRAFT, "\\Draft"},
	};
	bool first = true;
	buf_append_char(out, '(');
	for (size_t i = 0; i < N_ELEMENTS(names); i++) {
		if (flags & names[i].bit) {
			if (!first)
				buf_append_char(out, ' ');
			buf_append_str(out, names[i].name);
			first = false;
		}
	}
	if (recent) {
		if (!first)
			buf_append_char(out, ' ');
		buf_append_str(out, "\\Recent");
		first = false;
	}
	if (keywords != NULL && keywords[0] != '\0') {
		if (!first)
			buf_append_char(out, ' ');
		buf_append_str(out, keywords);
	}
	buf_append_char(out, ')');
}

uint32_t imap_flags_to_store(unsigned int f)
{
	uint32_t r = 0;
	if (f & IMAP_FLAG_SEEN)
		r |= STORE_FLAG_SEEN;
	if (f & IMAP_FLAG_ANSWERED)
		r |= STORE_FLAG_ANSWERED;
	if (f & IMAP_FLAG_FLAGGED)
		r |= STORE_FLAG_FLAGGED;
	if (f & IMAP_FLAG_DELETED)
		r |= STORE_FLAG_DELETED;
	if (f & IMAP_FLAG_DRAFT)
		r |= STORE_FLAG_DRAFT;
	return r;
}

void imap_send_vanished_earlier(struct imap_session *s, const uint32_t *uids, size_t count)
{
	if (count == 0)
		return;
	struct buf out = BUF_INIT;
	buf_append_str(&out, "* VANISHED (EARLIER) ");
	imap_append_uidset(&out, uids, count);
	buf_append_str(&out, "\r\n");
	imap_write_buf(s, &out);
	buf_free(&out);
}

void imap_deselect(struct imap_session *s)
{
	imap_view_free(&s->view);
	free(s->saved);
	s->saved = NULL;
	s->saved_count = 0;
	s->state = IMAP_STATE_AUTH;
}
