#ifndef LIB_JOBS_H
#define LIB_JOBS_H
/* A pool of threads for blocking work (fsync, password hashing) so that the
   event loop never waits on the disk or the CPU for one client.  Completion
   is reported back in the loop's thread.  Concurrent fsyncs from several
   threads are merged by the filesystem journal: this is the group commit. */
struct event_base;

void jobs_init(struct event_base *base, int threads);
void jobs_deinit(void);
/* Runs work(arg) on a pool thread, then done(arg) in the event loop. */
void jobs_submit(void (*work)(void *arg), void (*done)(void *arg), void *arg);
/* Jobs submitted and not yet completed. */
int jobs_pending(void);
#endif
