/* Cache fills off the event loop.  FETCH ENVELOPE/BODYSTRUCTURE/PREVIEW,
   FETCH of header sections, SEARCH on header fields, SORT and THREAD (their
   keys) read the index cache in the loop; what they had to build from
   message files is written back here, by a job of the user's
   (imap_job.c), so that the loop never waits for the index's write lock.
   Writes of one mailbox are collected while its job runs and go in the
   next one, one transaction each. */
#include "imap/imap_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/store_imap_extra.h"

#include <stdlib.h>
#include <string.h>

struct cache_write {
	uint32_t uid;
	enum imap_cache_item item;
	char *data; /* NUL-terminated */
	size_t len;
};

struct imap_cache_fill {
	struct cache_write *writes;
	size_t count, alloc;
	size_t bytes;
};

struct cache_job {
	struct imap_job job;
	struct imap_mbox *mbox; /* referenced; used in the loop only */
	char *name;
	uint32_t uidvalidity;
	struct imap_cache_fill *fill;
};

static void fill_free(struct imap_cache_fill **fillp)
{
	struct imap_cache_fill *fill = *fillp;
	*fillp = NULL;
	if (fill == NULL)
		return;
	for (size_t i = 0; i < fill->count; i++)
		free(fill->writes[i].data);
	free(fill->writes);
	free(fill);
}

void imap_cache_fill_add(struct imap_mbox *mbox, uint32_t uid, enum imap_cache_item item, const char *data,
			 size_t len)
{
	struct imap_cache_fill *fill = mbox->fill;
	if (fill == NULL)
		fill = mbox->fill = xcalloc(1, sizeof(*fill));
	if (fill->bytes + len > IMAP_CACHE_FILL_MAX)
		return; /* built again when next wanted */
	if (fill->count == fill->alloc) {
		fill->alloc = fill->alloc ? fill->alloc * 2 : 64;
		fill->writes = xreallocarray(fill->writes, fill->alloc, sizeof(*fill->writes));
	}
	struct cache_write *w = &fill->writes[fill->count++];
	w->uid = uid;
	w->item = item;
	w->data = xmalloc(len + 1);
	memcpy(w->data, data, len);
	w->data[len] = '\0';
	w->len = len;
	fill->bytes += len;
}

static void cache_work(struct imap_job *job)
{
	struct cache_job *cj = (struct cache_job *)job;
	struct store_mailbox *m;
	/* a mailbox deleted, or deleted and made again, since: not its UIDs */
	if (imap_job_mailbox(job, cj->name, &m) <= 0 || store_mailbox_uidvalidity(m) != cj->uidvalidity)
		return;
	if (store_cache_begin(m, &job->error) < 0)
		return;
	for (size_t i = 0; i < cj->fill->count && job->error == NULL; i++) {
		const struct cache_write *w = &cj->fill->writes[i];
		static const enum store_cache_field fields[] = {
		    [IMAP_CACHE_ENVELOPE] = STORE_CACHE_ENVELOPE,
		    [IMAP_CACHE_BODYSTRUCTURE] = STORE_CACHE_BODYSTRUCTURE,
		    [IMAP_CACHE_PREVIEW] = STORE_CACHE_PREVIEW,
		};
		if (w->item == IMAP_CACHE_HEADER)
			store_cache_set_header(m, w->uid, w->data, w->len, &job->error);
		else if (w->item == IMAP_CACHE_SORTKEY)
			store_cache_set_sortkey(m, w->uid, w->data, w->len, &job->error);
		else
			store_cache_set(m, w->uid, fields[w->item], w->data, &job->error);
	}
	/* what was written before a failure is kept */
	char *error = NULL;
	store_cache_commit(m, job->error == NULL ? &job->error : &error);
	free(error);
}

static void cache_done(struct imap_job *job)
{
	struct cache_job *cj = (struct cache_job *)job;
	struct imap_mbox *mbox = cj->mbox;
	if (job->error != NULL)
		log_warn("imap cache write failed mailbox=%s user=%s: %s", cj->name, job->user->address,
			 job->error);
	mbox->filling = false;
	imap_cache_fill_flush(mbox);
	free(job->error);
	fill_free(&cj->fill);
	free(cj->name);
	free(cj);
	imap_mbox_unref(&mbox);
}

void imap_cache_fill_flush(struct imap_mbox *mbox)
{
	if (mbox->filling || mbox->fill == NULL || mbox->fill->count == 0)
		return;
	struct cache_job *cj = xcalloc(1, sizeof(*cj));
	cj->mbox = mbox;
	mbox->refs++;
	cj->name = xstrdup(mbox->name);
	cj->uidvalidity = mbox->uidvalidity;
	cj->fill = mbox->fill;
	mbox->fill = NULL;
	mbox->filling = true;
	imap_job_start(mbox->user, NULL, &cj->job, cache_work, cache_done);
}

void imap_cache_fill_free(struct imap_mbox *mbox)
{
	fill_free(&mbox->fill);
}
