/* FETCH items of extensions, loaded for a slice of messages at a time as
   ENVELOPE is: EMAILID and THREADID (RFC 8474).

   EMAILID comes from the store.  THREADID is derived from the thread's
   root message ID: the first ID of References, else of In-Reply-To, else
   the message's own Message-ID (a message that starts a thread is its
   root); a message without any is a thread of its own, named after its
   EMAILID.  Messages of one thread so share a THREADID in every mailbox,
   across restarts, without anything stored for it. */
#include "imap/imap_private.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct imap_fetch_ext {
	uint32_t *uids; /* ascending */
	uint32_t count;
	char **emailid; /* by position, NULL when unknown */
	char **threadid;
};

/* ---- EMAILID ---- */

static int emailid_cb(void *ctx, uint32_t uid, const char *emailid)
{
	struct imap_fetch_ext *ext = ctx;
	uint32_t lo = 0, hi = ext->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (ext->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ext->count && ext->uids[lo] == uid && ext->emailid[lo] == NULL)
		ext->emailid[lo] = xstrdup(emailid);
	return 0;
}

static void load_emailids(struct imap_session *s, struct imap_fetch_ext *ext)
{
	char *error = NULL;
	ext->emailid = xcalloc(ext->count, sizeof(char *));
	if (store_msg_emailids(s->view->mbox->smbox, ext->uids[0], ext->uids[ext->count - 1], emailid_cb, ext,
			       &error) < 0) {
		log_error("imap emailid read failed session=%s: %s", s->core.id, error);
		free(error);
	}
}

/* ---- THREADID ---- */

/* The first message ID "<...>" of a header value, whitespace inside
   dropped (RFC 5322 3.6.4 msg-id, CFWS of obsolete forms). */
static bool first_msgid(void *ctx, const char *v, size_t len)
{
	struct buf *id = ctx;
	const char *lt = memchr(v, '<', len);
	const char *gt = lt != NULL ? memchr(lt, '>', len - (size_t)(lt - v)) : NULL;
	if (gt == NULL)
		return false;
	for (const char *p = lt; p <= gt; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			buf_append_char(id, *p);
	if (id->len > 2)
		return true;
	buf_reset(id);
	return false;
}

static char *threadid_of(const char *header, size_t len, const char *emailid)
{
	static const char *const roots[] = {"References", "In-Reply-To", "Message-ID"};
	struct buf id = BUF_INIT;
	for (size_t i = 0; i < N_ELEMENTS(roots) && id.len == 0; i++)
		imap_header_each(header, len, roots[i], first_msgid, &id);
	if (id.len == 0 && emailid != NULL)
		buf_printf(&id, "emailid:%s", emailid);
	char *r = NULL;
	if (id.len > 0) {
		r = xmalloc(2 + 2 * 12);
		hash_digest_id(r, 'T', id.data, id.len, 12);
	}
	buf_free(&id);
	return r;
}

static void load_threadids(struct imap_session *s, struct imap_fetch_ext *ext)
{
	struct imap_header_run run;
	ext->threadid = xcalloc(ext->count, sizeof(char *));
	imap_header_run_load(&run, s->view->mbox, ext->uids, ext->count);
	for (uint32_t i = 0; i < ext->count; i++) {
		const char *data;
		size_t len;
		if (imap_header_run_get(&run, i, &data, &len))
			ext->threadid[i] = threadid_of(data, len, ext->emailid[i]);
	}
	imap_header_run_done(&run);
}

/* ---- the slice ---- */

struct imap_fetch_ext *imap_fetch_ext_load(struct imap_session *s, const struct imap_fetch_atts *atts,
					   const uint32_t *seqs, uint32_t count)
{
	if (!(atts->items & (IMAP_FETCH_EMAILID | IMAP_FETCH_THREADID)) || count == 0)
		return NULL;
	struct imap_fetch_ext *ext = xcalloc(1, sizeof(*ext));
	ext->count = count;
	ext->uids = xmalloc(count * sizeof(*ext->uids));
	for (uint32_t i = 0; i < count; i++)
		ext->uids[i] = imap_view_uid(s->view, seqs[i]);
	/* a message without thread headers is named by its EMAILID */
	load_emailids(s, ext);
	if (atts->items & IMAP_FETCH_THREADID)
		load_threadids(s, ext);
	return ext;
}

void imap_fetch_ext_append(struct buf *out, const struct imap_fetch_ext *ext, unsigned int items, uint32_t i,
			   const char **sep)
{
	if (ext == NULL)
		return;
	/* EMAILID has no NIL (RFC 8474 7): left out for a message the
	   index no longer lists */
	if ((items & IMAP_FETCH_EMAILID) && ext->emailid[i] != NULL) {
		buf_printf(out, "%sEMAILID (%s)", *sep, ext->emailid[i]);
		*sep = " ";
	}
	if (items & IMAP_FETCH_THREADID) {
		if (ext->threadid[i] != NULL)
			buf_printf(out, "%sTHREADID (%s)", *sep, ext->threadid[i]);
		else
			buf_printf(out, "%sTHREADID NIL", *sep);
		*sep = " ";
	}
}

void imap_fetch_ext_free(struct imap_fetch_ext **extp)
{
	struct imap_fetch_ext *ext = *extp;
	if (ext == NULL)
		return;
	*extp = NULL;
	for (uint32_t i = 0; i < ext->count; i++) {
		free(ext->emailid[i]);
		if (ext->threadid != NULL)
			free(ext->threadid[i]);
	}
	free(ext->emailid);
	free(ext->threadid);
	free(ext->uids);
	free(ext);
}
