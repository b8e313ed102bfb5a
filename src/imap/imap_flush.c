/* The Maildir file names after flag changes.

   STORE (and FETCH setting \Seen) change flags in the index only; the
   letters of the files' info part follow in one batch once the mailbox has
   had no change for IMAP_FLUSH_DELAY_MS (store_mailbox_flush_flags(), on a
   job thread), so that a burst of changes renames each file once at most
   and a change undone within the delay (+FLAGS then -FLAGS) renames
   nothing.  The count of files waiting is in the index and a worker looks
   at it a moment after it opens the mailbox, so one that stopped first
   leaves nothing behind for long.  Syncs do not rename: the renames would
   make the watch ask for the next sync, and so on. */
#include "imap/imap_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#define IMAP_FLUSH_DELAY_MS 1000

struct flush_job {
	struct imap_job job;
	struct imap_mbox *mbox; /* referenced; used in the loop only */
	char *name;
	int renamed;
};

static void flush_work(struct imap_job *job)
{
	struct flush_job *fj = (struct flush_job *)job;
	struct store_mailbox *m;
	if (imap_job_mailbox(job, fj->name, &m) > 0)
		fj->renamed = store_mailbox_flush_flags(m, &job->error);
}

/* The table's file names of the renamed messages (a stale one costs an
   index lookup when the file is opened). */
static void reload_locators(struct imap_mbox *mbox)
{
	struct store_msg_list list;
	char *error = NULL;
	if (store_mailbox_list(mbox->smbox, &list, &error) < 0) {
		log_error("imap reload failed mailbox=%s: %s", mbox->name, error);
		free(error);
		return;
	}
	for (size_t i = 0; i < list.count; i++) {
		struct imap_msg *m = imap_mbox_find_mutable(mbox, list.msgs[i].uid);
		if (m == NULL || list.msgs[i].locator == NULL ||
		    (m->locator != NULL && strcmp(m->locator, list.msgs[i].locator) == 0))
			continue;
		free(m->locator);
		m->locator = xstrdup(list.msgs[i].locator);
	}
	store_msg_list_free(&list);
}

static void flush_done(struct imap_job *job)
{
	struct flush_job *fj = (struct flush_job *)job;
	struct imap_mbox *mbox = fj->mbox;
	imap_mbox_watch_resume(mbox);
	if (job->error != NULL)
		log_error("imap flags-flush failed mailbox=%s: %s", mbox->name, job->error);
	else if (fj->renamed > 0)
		reload_locators(mbox);
	free(job->error);
	free(fj->name);
	free(fj);
	imap_mbox_unref(&mbox);
}

static void flush_timer(evutil_socket_t fd, short what, void *arg)
{
	struct imap_mbox *mbox = arg;
	char *error = NULL;
	int pending = store_mailbox_flags_pending(mbox->smbox, &error);
	if (pending < 0) {
		log_error("imap flags-flush failed mailbox=%s: %s", mbox->name, error);
		free(error);
	}
	if (pending <= 0) {
		imap_mbox_unref(&mbox); /* the timer's reference */
		return;
	}
	/* the renames would wake the loop twice each through the watch */
	imap_mbox_watch_pause(mbox);
	struct flush_job *fj = xcalloc(1, sizeof(*fj));
	fj->mbox = mbox; /* takes over the timer's reference */
	fj->name = xstrdup(mbox->name);
	imap_job_start(mbox->user, NULL, &fj->job, flush_work, flush_done);
}

void imap_mbox_flush_later(struct imap_mbox *mbox)
{
	if (mbox->flush_ev == NULL)
		mbox->flush_ev = evtimer_new(mbox->user->base, flush_timer, mbox);
	if (!evtimer_pending(mbox->flush_ev, NULL))
		mbox->refs++; /* the mailbox stays open until the timer fires */
	struct timeval tv = {IMAP_FLUSH_DELAY_MS / 1000, (IMAP_FLUSH_DELAY_MS % 1000) * 1000};
	evtimer_add(mbox->flush_ev, &tv);
}
