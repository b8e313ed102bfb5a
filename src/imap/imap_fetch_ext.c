/* FETCH items of extensions, loaded for a slice of messages at a time as
   ENVELOPE is: EMAILID and THREADID (RFC 8474), PREVIEW (RFC 8970).

   EMAILID comes from the store.  THREADID is derived from the thread's
   root message ID: the first ID of References, else of In-Reply-To, else
   the message's own Message-ID (a message that starts a thread is its
   root); a message without any is a thread of its own, named after its
   EMAILID.  Messages of one thread so share a THREADID in every mailbox,
   across restarts, without anything stored for it.

   PREVIEW is kept in the index cache once made (src/mime/preview.h); a
   PREVIEW (LAZY) gets what the cache has, else NIL (RFC 8970 3.1: the
   client asks again without LAZY when it wants it made). */
#include "imap/imap_private.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/imap.h"
#include "mime/preview.h"
#include "mime/tree.h"
#include "store/store_imap_extra.h"

#include <stdlib.h>
#include <string.h>

struct imap_fetch_ext {
	uint32_t *uids; /* ascending */
	uint32_t count;
	char **emailid; /* by position, NULL when unknown */
	char **threadid;
	char **preview;
	unsigned int quote_flags; /* mime_imap_quote() for PREVIEW */
};

/* ---- EMAILID ---- */

/* Stores text as the value of uid's position in values. */
static void ext_set(const struct imap_fetch_ext *ext, char **values, uint32_t uid, const char *text,
		    size_t len)
{
	uint32_t lo = imap_uid_position(ext->uids, ext->count, uid);
	if (lo < ext->count && ext->uids[lo] == uid && values[lo] == NULL)
		values[lo] = xmemdup(text, len + 1);
}

static int emailid_cb(void *ctx, uint32_t uid, const char *emailid)
{
	struct imap_fetch_ext *ext = ctx;
	ext_set(ext, ext->emailid, uid, emailid, strlen(emailid));
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

/* ---- PREVIEW ---- */

static int preview_cb(void *ctx, uint32_t uid, const char *text, size_t len)
{
	struct imap_fetch_ext *ext = ctx;
	ext_set(ext, ext->preview, uid, text, len);
	return 0;
}

static char *preview_make(struct imap_mbox *mbox, uint32_t uid)
{
	struct imap_message msg;
	char *error = NULL;
	if (imap_message_read(mbox, uid, &msg, &error) <= 0) {
		if (error != NULL)
			log_error("imap preview read failed mailbox=%s uid=%u: %s", mbox->name, uid, error);
		free(error);
		return NULL;
	}
	struct buf out = BUF_INIT;
	mime_preview(&out, imap_message_mime(&msg), MIME_PREVIEW_CHARS);
	imap_message_free(&msg);
	return buf_steal(&out); /* "" when the message has no text */
}

/* The cached previews of the slice; without lazy the missing ones are
   made and cached (by a job, in one transaction: imap_cache.c). */
static void load_previews(struct imap_session *s, struct imap_fetch_ext *ext, bool lazy)
{
	struct imap_mbox *mbox = s->view->mbox;
	char *error = NULL;
	ext->preview = xcalloc(ext->count, sizeof(char *));
	if (store_cache_get_range(mbox->smbox, ext->uids[0], ext->uids[ext->count - 1], STORE_CACHE_PREVIEW,
				  preview_cb, ext, &error) < 0) {
		log_error("imap cache read failed session=%s: %s", s->core.id, error);
		free(error);
		error = NULL;
	}
	for (uint32_t i = 0; i < ext->count && !lazy; i++) {
		if (ext->preview[i] != NULL || (ext->preview[i] = preview_make(mbox, ext->uids[i])) == NULL)
			continue;
		imap_cache_fill_add(mbox, ext->uids[i], IMAP_CACHE_PREVIEW, ext->preview[i],
				    strlen(ext->preview[i]));
	}
	imap_cache_fill_flush(mbox);
}

/* ---- the slice ---- */

struct imap_fetch_ext *imap_fetch_ext_load(struct imap_session *s, const struct imap_fetch_atts *atts,
					   const uint32_t *seqs, uint32_t count)
{
	if (!(atts->items & (IMAP_FETCH_EMAILID | IMAP_FETCH_THREADID | IMAP_FETCH_PREVIEW)) || count == 0)
		return NULL;
	struct imap_fetch_ext *ext = xcalloc(1, sizeof(*ext));
	ext->count = count;
	/* one more: imap_header_run_load() copies count + 1 */
	ext->uids = xcalloc(count + 1, sizeof(*ext->uids));
	for (uint32_t i = 0; i < count; i++)
		ext->uids[i] = imap_view_uid(s->view, seqs[i]);
	ext->quote_flags = (s->enabled & IMAP_ENABLED_UTF8) ? MIME_IMAP_UTF8 : 0;
	/* a message without thread headers is named by its EMAILID */
	if (atts->items & (IMAP_FETCH_EMAILID | IMAP_FETCH_THREADID))
		load_emailids(s, ext);
	if (atts->items & IMAP_FETCH_THREADID)
		load_threadids(s, ext);
	if (atts->items & IMAP_FETCH_PREVIEW)
		load_previews(s, ext, atts->preview_lazy);
	return ext;
}

void imap_fetch_ext_append(struct buf *out, const struct imap_fetch_ext *ext, unsigned int items, uint32_t i,
			   const char **sep)
{
	if (ext == NULL)
		return;
	/* EMAILID has no NIL (RFC 8474 7): left out for a message the
	   index no longer lists */
	if ((items & IMAP_FETCH_EMAILID) && ext->emailid != NULL && ext->emailid[i] != NULL) {
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
	/* nstring (RFC 8970 6): UTF-8 in a quoted string only with
	   UTF8=ACCEPT, else a literal */
	if (items & IMAP_FETCH_PREVIEW) {
		const char *p = ext->preview[i];
		buf_printf(out, "%sPREVIEW ", *sep);
		mime_imap_nstring(out, p, p != NULL ? strlen(p) : 0, ext->quote_flags);
		*sep = " ";
	}
}

const char *imap_fetch_ext_id(const struct imap_fetch_ext *ext, unsigned int item, uint32_t i)
{
	char **ids = ext == NULL ? NULL : item == IMAP_FETCH_EMAILID ? ext->emailid : ext->threadid;
	return ids != NULL ? ids[i] : NULL;
}

void imap_fetch_ext_free(struct imap_fetch_ext **extp)
{
	struct imap_fetch_ext *ext = *extp;
	if (ext == NULL)
		return;
	*extp = NULL;
	char **values[] = {ext->emailid, ext->threadid, ext->preview};
	for (size_t k = 0; k < N_ELEMENTS(values); k++) {
		for (uint32_t i = 0; values[k] != NULL && i < ext->count; i++)
			free(values[k][i]);
		free(values[k]);
	}
	free(ext->uids);
	free(ext);
}
