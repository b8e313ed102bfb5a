/* The SMTP server's metrics (lib/metrics.h), called by the transaction
   code one line at a time. */
#include "smtpd/smtp_private.h"
#include "lib/metrics.h"

void smtp_metrics_accepted(const struct smtp_session *s, const struct smtp_txn *t, uint64_t size)
{
	metrics_count(METRICS_RECEIVED);
	metrics_count_n(METRICS_RECEIVED_BYTES, size);
	metrics_count_n(METRICS_RECEIVED_RCPTS, (uint64_t)t->nrcpts);
	metrics_count_n(METRICS_DELIVERED_LOCAL, (uint64_t)t->nlocal);
	metrics_observe(METRICS_HIST_ACCEPT, metrics_now_ns() - t->mail_ns);
	metrics_top_add(METRICS_TOP_SENDERS, t->sender, size);
	for (int i = 0; i < t->nrcpts; i++)
		metrics_top_add(METRICS_TOP_RECIPIENTS, t->rcpts[i].address, size);
}

void smtp_metrics_reject(const struct smtp_session *s, enum metrics_reject reason, const char *what)
{
	metrics_reject(reason, s->core.conn.ip, what);
}
