#ifndef QUEUE_RUNNER_PRIVATE_H
#define QUEUE_RUNNER_PRIVATE_H
/* The queue runner's internals, shared by runner.c (spool, scheduling,
   state changes) and runner_deliver.c (routes, connections, local
   delivery). */
#include "lib/config.h"
#include "relay/schedule.h"
#include "queue/spool.h"
#include "smtp/smtp_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event;
struct event_base;
struct dns_resolver;
struct userdb;

/* A message in memory. */
struct qmsg {
	struct queue_entry e;
	struct qmsg *hnext;       /* hash chain */
	struct qmsg *prev, *next; /* all messages */
	bool *busy;               /* per recipient: in a job now */
	size_t busy_cap;
	int inflight; /* jobs holding this message */
	bool saving, save_again, removed, deleted;
	bool checked; /* loop check done */
	/* the content, mapped while jobs use it */
	char *map;
	size_t map_size;
	struct buf dsn_failed, dsn_delayed, dsn_success; /* pending DSN rcpt indexes */
};

/* One transaction: recipients of one message for one domain. */
struct qjob {
	struct qmsg *m;
	size_t *idx;
	size_t n;
	struct qjob *next;
	struct smtp_client_rcpt *crcpts;
	struct smtp_client_msg cmsg;
	int hosts_tried;
	char *remote_mta; /* host that answered, for the DSN */
	bool local;       /* delivered into a local Maildir */
};

struct qconn;

struct qdomain {
	char *name;
	struct qdomain *next;
	struct qjob *head, *tail;
	size_t njobs;
	int nconn;
	struct qconn *idle; /* connections waiting for work */
	int local;          /* -1 unknown, 0 remote, 1 local */
	int64_t local_checked;
};

struct runner {
	const struct config *cfg;
	struct event_base *base;
	char *qdir;
	struct dns_resolver *dns;
	struct userdb *userdb;
	char *userdb_path;
	struct queue_schedule sched;
	struct qmsg **hash;
	size_t hash_size;
	struct qmsg *first, *last;
	size_t nmsgs;
	struct qdomain *domains;
	int nconn;
	struct qconn *conns;
	struct event *timer, *kick_ev, *sig_term, *sig_usr1, *sig_int, *inotify_ev, *stop_ev;
	int inotify_fd;
	int64_t wakeup;
	bool stopping;
	int saves_pending;
	int local_pending;
};

extern struct runner *runner;

/* runner.c */
void runner_job_done(struct qjob *job);
void runner_kick(void);
struct qdomain *runner_domain(const char *name);
void runner_message_release(struct qmsg *m);
const char *runner_message_data(struct qmsg *m, size_t *size_r);
char *runner_rcpt_domain(const char *address);

/* runner_deliver.c */
void deliver_domain_kick(struct qdomain *d);
void deliver_local_job(struct qjob *job);
void deliver_stop_all(void);
int deliver_is_local(struct qdomain *d);
void deliver_job_fail(struct qjob *job, enum smtp_client_status status, const char *reply,
		      const char *enhanced, const char *remote_mta);
void deliver_job_free(struct qjob *job);
#endif
