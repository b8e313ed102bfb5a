#ifndef RELAY_RUNNER_DELIVER_H
#define RELAY_RUNNER_DELIVER_H
/* The queue runner's delivery attempts, one floor below the runner
   (runner.c: the message table, scheduling, results and DSNs, signals).
   A job is some recipients of one message, all in one domain.  This unit
   delivers it: locally through delivery/ when the domain is one of ours,
   else to the domain's hosts (a [routes] entry, the relayhost, else the
   MX records in preference order with the A/AAAA fallback: RFC 5321 5.1)
   over SMTP sessions that serve every job waiting for the same domain.
   Delivery to MX hosts follows the domain's MTA-STS policy and each
   host's DANE records (relay/runner_tls.h); with outbound_tls = may and
   neither, a server whose STARTTLS handshake fails gets the message in
   plain text on a second connection.
   Each job comes back through ops->job_done with a result per recipient.
   It owns the waiting jobs, the connections, the DNS resolver and the
   local delivery tasks, and knows nothing of the message table: what it
   needs of a message is in the job, and its content comes from
   ops->message_data. */
#include "lib/config.h"
#include "smtp/smtp_client.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct runner_deliver;

/* Addresses in other domains that a recipient delivered locally also
   goes to (its aliases: RFC 3461 6.2.7.3). */
struct runner_deliver_forward {
	char **addresses;
	size_t count;
};

struct runner_deliver_job {
	/* Filled in by the caller (runner_deliver_job_new() makes the arrays): */
	void *msg;                      /* the caller's message: given back to ops->message_data */
	char *id;                       /* the queue id: a local delivery links queue/ID.msg */
	char *domain;                   /* the recipients' domain, lowercase; "" for a bare local part */
	size_t n;                       /* recipients */
	size_t *idx;                    /* the caller's numbers of the recipients, moved with them */
	struct smtp_client_rcpt *rcpts; /* address, orcpt and notify in; results out */
	struct smtp_client_msg cmsg;    /* sender, envid, ret, body and smtputf8 */
	/* Results besides rcpts[] (and cmsg.dsn_relayed): */
	bool local;                             /* delivered into local Maildirs */
	char *remote_mta;                       /* the host that answered, or NULL */
	struct runner_deliver_forward *forward; /* local: per recipient, or NULL */
	/* This unit's: */
	struct runner_deliver_job *next;
	int64_t started_ns; /* metrics_now_ns() when made */
};

struct runner_deliver_ops {
	/* A job is over: every recipient in job->rcpts[] has its result
	   (SMTP_CLIENT_TEMPFAIL when it could not be tried).  The callee owns
	   job and frees it with runner_deliver_job_free().  Recipients that
	   one MX host deferred are tried at the next one in a job of their
	   own, with the same msg: a job's recipients may come back in two or
	   more jobs. */
	void (*job_done)(void *ctx, struct runner_deliver_job *job);
	/* The content of msg to send (CRLF lines, not dot-stuffed), valid
	   until the last of msg's jobs is back; NULL when it cannot be read
	   (its jobs then fail with 451 4.3.0). */
	const char *(*message_data)(void *ctx, void *msg, size_t *size_r);
};

/* Makes the DNS resolver ([dns] resolver) on base.  cfg and ops must stay
   valid for its life.  NULL with *error_r (caller frees). */
struct runner_deliver *runner_deliver_new(struct event_base *base, const struct config *cfg,
					  const struct runner_deliver_ops *ops, void *ctx, char **error_r);
/* After runner_deliver_stop() and once runner_deliver_pending() is 0 (or
   the jobs pool is gone): frees the resolver, the domains and the user
   database. */
void runner_deliver_free(struct runner_deliver **rd);

/* A job for n recipients of msg (idx, rcpts zeroed, every status
   SMTP_CLIENT_TEMPFAIL). */
struct runner_deliver_job *runner_deliver_job_new(void *msg, const char *id, const char *domain, size_t n);
void runner_deliver_job_free(struct runner_deliver_job *job);

/* Starts delivering job; job_done may come before this returns (an idle
   session takes the job and its message cannot be read).  Not after
   runner_deliver_stop(). */
void runner_deliver_submit(struct runner_deliver *rd, struct runner_deliver_job *job);
/* Stops: every connection ends at once and the jobs waiting for one are
   freed without job_done (their recipients stay as the caller recorded
   them).  Local deliveries already running finish and come back. */
void runner_deliver_stop(struct runner_deliver *rd);
/* Local deliveries running on the job pool. */
int runner_deliver_pending(const struct runner_deliver *rd);
#endif
