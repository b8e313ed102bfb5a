#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

struct job {
	struct job *next;
	void (*work)(void *);
	void (*done)(void *);
	void *arg;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *todo, **todo_tail;
	struct job *finished;
	pthread_t *threads;
	int nthreads;
	int pending;
	bool stopping;
	int pipe[2];
	struct event *ev;
} jobs = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *jobs_thread(void *arg)
{
	pthread_mutex_lock(&jobs.lock);
	for (;;) {
		while (jobs.todo == NULL && !jobs.stopping)
			pthread_cond_wait(&jobs.cond, &jobs.lock);
		if (jobs.todo == NULL)
			break;
		struct job *job = jobs.todo;
		jobs.todo = job->next;
		if (jobs.todo == NULL)
			jobs.todo_tail = &jobs.todo;
		pthread_mutex_unlock(&jobs.lock);
		metrics_jobs_queued(-1);

		job->work(job->arg);

		pthread_mutex_lock(&jobs.lock);
		bool wake = jobs.finished == NULL;
		job->next = jobs.finished;
		jobs.finished = job;
		if (wake) {
			char c = 0;
			ssize_t ignored = write(jobs.pipe[1], &c, 1);
			(void)ignored;
		}
	}
	pthread_mutex_unlock(&jobs.lock);
	return NULL;
}

static void jobs_done_cb(evutil_socket_t fd, short what, void *arg)
{
	char tmp[64];
	while (read(fd, tmp, sizeof(tmp)) > 0)
		;
	pthread_mutex_lock(&jobs.lock);
	struct job *list = jobs.finished;
	jobs.finished = NULL;
	pthread_mutex_unlock(&jobs.lock);
	/* Oldest first: the list was built newest first. */
	struct job *rev = NULL;
	while (list != NULL) {
		struct job *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev != NULL) {
		struct job *next = rev->next;
		jobs.pending--;
		if (rev->done != NULL)
			rev->done(rev->arg);
		free(rev);
		rev = next;
	}
}

void jobs_init(struct event_base *base, int threads)
{
	if (pipe2(jobs.pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		log_fatal("pipe() failed: %s", strerror(errno));
	jobs.todo_tail = &jobs.todo;
	jobs.stopping = false;
	jobs.ev = event_new(base, jobs.pipe[0], EV_READ | EV_PERSIST, jobs_done_cb, NULL);
	event_add(jobs.ev, NULL);
	jobs.nthreads = threads;
	jobs.threads = xcalloc((size_t)threads, sizeof(pthread_t));
	for (int i = 0; i < threads; i++) {
		int err = pthread_create(&jobs.threads[i], NULL, jobs_thread, NULL);
		if (err != 0)
			log_fatal("pthread_create() failed: %s", strerror(err));
	}
}

void jobs_deinit(void)
{
	if (jobs.threads == NULL)
		return;
	pthread_mutex_lock(&jobs.lock);
	jobs.stopping = true;
	pthread_cond_broadcast(&jobs.cond);
	pthread_mutex_unlock(&jobs.lock);
	for (int i = 0; i < jobs.nthreads; i++)
		pthread_join(jobs.threads[i], NULL);
	/* Report what finished so callers can free their state. */
	jobs_done_cb(jobs.pipe[0], 0, NULL);
	free(jobs.threads);
	jobs.threads = NULL;
	event_free(jobs.ev);
	close(jobs.pipe[0]);
	close(jobs.pipe[1]);
}

void jobs_submit(void (*work)(void *), void (*done)(void *), void *arg)
{
	struct job *job = xmalloc(sizeof(*job));
	job->next = NULL;
	job->work = work;
	job->done = done;
	job->arg = arg;
	jobs.pending++;
	if (jobs.threads == NULL) {
		/* No pool (command-line tools): run inline. */
		work(arg);
		jobs.pending--;
		if (done != NULL)
			done(arg);
		free(job);
		return;
	}
	metrics_jobs_queued(1);
	pthread_mutex_lock(&jobs.lock);
	*jobs.todo_tail = job;
	jobs.todo_tail = &job->next;
	pthread_cond_signal(&jobs.cond);
	pthread_mutex_unlock(&jobs.lock);
}

int jobs_pending(void)
{
	return jobs.pending;
}
