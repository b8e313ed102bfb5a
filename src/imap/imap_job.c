/* Store work off the event loop: whatever writes the index (STORE, COPY,
   MOVE, EXPUNGE, CLOSE, APPEND, syncs and \Recent for SELECT and NOOP,
   STATUS, the folder commands, the \Seen of FETCH, cache fills) runs on a
   jobs.h thread while every other session of the worker goes on: the loop
   never waits for the index's write lock, which another process may hold.

   A job never touches the shared per-user handle the loop reads from
   (store.h: a handle is not thread-safe).  It gets a store handle of its
   own from the user's spare list (or opens one on the thread), with the
   mailboxes it opened last, so that a run of STOREs does not reopen (and
   resync) the mailbox each time.  The session is busy until the job's
   done callback has run in the loop: its input waits, which keeps RFC 3501
   7.4.1 ordering, and a session whose connection ended meanwhile is freed
   only then. */
#include "imap/imap_private.h"
#include "lib/jobs.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

/* Handles kept per user: more than the job threads would never be used. */
#define JOB_SPARE_MAX 8
#define JOB_MAILBOXES 4

struct imap_job_store {
	struct imap_job_store *next;
	struct store *store;
	unsigned int folders_gen;                    /* user->folders_gen its mailboxes belong to */
	struct store_mailbox *mboxes[JOB_MAILBOXES]; /* most recently used first */
};

static void handle_forget_mailboxes(struct imap_job_store *h)
{
	for (int i = 0; i < JOB_MAILBOXES; i++)
		store_mailbox_close(&h->mboxes[i]);
}

static void handle_put(struct imap_user *user, struct imap_job_store **hp);

static void handle_free_work(void *arg)
{
	struct imap_job_store *h = arg;
	handle_forget_mailboxes(h);
	store_close(&h->store);
	free(h);
}

/* Closing the last handle of an index checkpoints it (writes, fsyncs):
   on a job thread. */
static void handle_free(struct imap_job_store **hp)
{
	struct imap_job_store *h = *hp;
	*hp = NULL;
	if (h != NULL)
		jobs_submit(handle_free_work, NULL, h);
}

void imap_job_store_close(struct store **store)
{
	if (*store == NULL)
		return;
	struct imap_job_store *h = xcalloc(1, sizeof(*h));
	h->store = *store;
	*store = NULL;
	handle_free(&h);
}

void imap_job_store_give(struct imap_user *user, struct store **store)
{
	if (*store == NULL)
		return;
	struct imap_job_store *h = xcalloc(1, sizeof(*h));
	h->store = *store;
	h->folders_gen = user->folders_gen;
	*store = NULL;
	handle_put(user, &h);
}

/* Takes a spare handle (in the loop); its mailboxes are dropped when a
   folder was deleted or renamed since they were opened. */
static struct imap_job_store *handle_take(struct imap_user *user)
{
	struct imap_job_store *h = user->spare;
	if (h == NULL) {
		h = xcalloc(1, sizeof(*h));
		h->folders_gen = user->folders_gen;
		return h;
	}
	user->spare = h->next;
	user->nspare--;
	h->next = NULL;
	if (h->folders_gen != user->folders_gen) {
		handle_forget_mailboxes(h);
		h->folders_gen = user->folders_gen;
	}
	return h;
}

static void handle_put(struct imap_user *user, struct imap_job_store **hp)
{
	struct imap_job_store *h = *hp;
	*hp = NULL;
	if (h->store == NULL || user->nspare >= JOB_SPARE_MAX) {
		handle_free(&h);
		return;
	}
	if (h->folders_gen != user->folders_gen) {
		handle_forget_mailboxes(h);
		h->folders_gen = user->folders_gen;
	}
	h->next = user->spare;
	user->spare = h;
	user->nspare++;
}

void imap_job_user_free(struct imap_user *user)
{
	while (user->spare != NULL) {
		struct imap_job_store *h = user->spare;
		user->spare = h->next;
		handle_free(&h);
	}
	user->nspare = 0;
}

void imap_job_forget_mailboxes(struct imap_user *user)
{
	user->folders_gen++;
}

int imap_job_mailbox(struct imap_job *job, const char *name, struct store_mailbox **mbox_r)
{
	struct imap_job_store *h = job->handle;
	int i;
	for (i = 0; i < JOB_MAILBOXES && h->mboxes[i] != NULL; i++)
		if (strcmp(store_mailbox_name(h->mboxes[i]), name) == 0)
			break;
	struct store_mailbox *m;
	int opened = 1;
	if (i < JOB_MAILBOXES && h->mboxes[i] != NULL) {
		m = h->mboxes[i];
	} else {
		opened = 2;
		int r = store_mailbox_open(h->store, name, &m, &job->error);
		if (r <= 0)
			return r;
		i = JOB_MAILBOXES - 1;
		store_mailbox_close(&h->mboxes[i]);
	}
	/* most recently used first */
	memmove(&h->mboxes[1], &h->mboxes[0], (size_t)i * sizeof(h->mboxes[0]));
	h->mboxes[0] = m;
	*mbox_r = m;
	return opened;
}

int imap_job_selected_mailbox(struct imap_job *job, const char *name, struct store_mailbox **mbox_r)
{
	int r = imap_job_mailbox(job, name, mbox_r);
	if (r == 0)
		job->error = xasprintf("mailbox %s is gone", name);
	return r > 0 ? 1 : -1;
}

struct store *imap_job_store(const struct imap_job *job)
{
	return job->handle->store;
}

static void job_work(void *arg)
{
	struct imap_job *job = arg;
	if (job->handle->store == NULL)
		job->handle->store = store_open_another(job->user->store, &job->error);
	if (job->handle->store != NULL)
		job->work(job);
}

static void job_submit(struct imap_job *job);

static void job_done(void *arg)
{
	struct imap_job *job = arg;
	struct imap_session *s = job->s;
	struct imap_user *user = job->user;
	handle_put(user, &job->handle);
	job->done(job); /* frees job */
	/* the user's next job: one at a time (see imap_job_start) */
	struct imap_job *next = user->jobs_waiting;
	user->job_running = next != NULL;
	if (next != NULL) {
		user->jobs_waiting = next->next;
		if (user->jobs_waiting == NULL)
			user->jobs_waiting_tail = &user->jobs_waiting;
		job_submit(next);
	}
	imap_user_unref(&user);
	if (s != NULL)
		imap_command_done(s);
}

static void job_submit(struct imap_job *job)
{
	job->handle = handle_take(job->user);
	jobs_submit(job_work, job_done, job);
}

void imap_job_start(struct imap_user *user, struct imap_session *s, struct imap_job *job, imap_job_fn *work,
		    imap_job_fn *done)
{
	job->s = s;
	job->user = user;
	user->refs++;
	job->work = work;
	job->done = done;
	job->next = NULL;
	if (s != NULL)
		s->core.busy = true;
	/* Jobs of one user run one after the other: they all write the same
	   index, whose write lock would otherwise make them wait in SQLite's
	   busy handler (which sleeps) instead of here in order. */
	if (user->job_running) {
		if (user->jobs_waiting_tail == NULL)
			user->jobs_waiting_tail = &user->jobs_waiting;
		*user->jobs_waiting_tail = job;
		user->jobs_waiting_tail = &job->next;
		return;
	}
	user->job_running = true;
	job_submit(job);
}
