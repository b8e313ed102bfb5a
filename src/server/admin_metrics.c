/* GET /metrics: the Prometheus text exposition format (version 0.0.4):
   HELP and TYPE before each family, counters named *_total, durations in
   seconds, sizes in bytes, label values escaped.  Label sets are bounded:
   services, reject reasons and auth results are fixed lists, commands
   are the command tables' names and "other", and destination domains
   the 10 with the most deferred recipients and "other". */
#include "server/admin_private.h"
#include "lib/version.h"
#include "session/session.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define TOP_DOMAINS 10

const char *admin_service_name(int service)
{
	return service == METRICS_SERVICE_RELAY ? "relay" : service_name((enum service)service);
}

static void family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and line feed escaped, and
   what is not printable ASCII made '?' (the values are our names and
   domains in A-label form: nothing is lost, and the output stays valid
   UTF-8 whatever comes). */
static void label_value(struct buf *out, const char *v)
{
	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '\\' || c == '"')
			buf_printf(out, "\\%c", c);
		else if (c == '\n')
			buf_append_str(out, "\\n");
		else
			buf_append_char(out, c < 0x20 || c >= 0x7f ? '?' : (char)c);
	}
}

static void sample1(struct buf *out, const char *name, const char *label, const char *value, double v)
{
	buf_append_str(out, name);
	if (label != NULL) {
		buf_printf(out, "{%s=\"", label);
		label_value(out, value);
		buf_append_str(out, "\"}");
	}
	buf_printf(out, " %.17g\n", v);
}

static void by_service(struct buf *out, const char *name, const char *type, const char *help,
		       const uint64_t *values, int nservices)
{
	family(out, name, type, help);
	for (int i = 0; i < nservices; i++)
		sample1(out, name, "service", admin_service_name(i), (double)values[i]);
}

static void histogram(struct buf *out, const char *name, const char *help, const struct metrics_histogram *h,
		      enum metrics_hist which)
{
	family(out, name, "histogram", help);
	const int64_t *bounds = metrics_hist_bounds(which);
	uint64_t cumulative = 0;
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		cumulative += h->buckets[i];
		if (i + 1 < METRICS_BUCKETS)
			buf_printf(out, "%s_bucket{le=\"%.9g\"} %llu\n", name, (double)bounds[i] / 1e9,
				   (unsigned long long)cumulative);
		else
			buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
				   (unsigned long long)cumulative);
	}
	buf_printf(out, "%s_sum %.9f\n%s_count %llu\n", name, (double)h->sum_ns / 1e9, name,
		   (unsigned long long)cumulative);
}

struct command_ctx {
	struct buf *out;
	const char *name;
};

static void command_cb(void *ctx, const char *command, uint64_t count)
{
	struct command_ctx *c = ctx;
	sample1(c->out, c->name, "command", command, (double)count);
}

static void commands(struct buf *out, const struct metrics *m, enum metrics_proto proto)
{
	const char *name =
	    proto == METRICS_PROTO_IMAP ? "postoffice_imap_commands_total" : "postoffice_pop3_commands_total";
	family(out, name, "counter",
	       proto == METRICS_PROTO_IMAP ? "IMAP commands by name (unknown ones as other)."
					   : "POP3 commands by name (unknown ones as other).");
	struct command_ctx c = {out, name};
	metrics_read_commands(m, proto, command_cb, &c);
}

static void queue_gauges(struct buf *out, const struct admin_queue *q)
{
	family(out, "postoffice_queue_messages", "gauge", "Messages in the queue.");
	sample1(out, "postoffice_queue_messages", NULL, NULL, (double)q->messages);
	family(out, "postoffice_queue_held_messages", "gauge", "Messages in the queue on hold.");
	sample1(out, "postoffice_queue_held_messages", NULL, NULL, (double)q->held);
	family(out, "postoffice_queue_oldest_message_age_seconds", "gauge",
	       "Age of the oldest message in the queue (0 when empty).");
	sample1(out, "postoffice_queue_oldest_message_age_seconds", NULL, NULL,
		q->oldest > 0 ? (double)((int64_t)time(NULL) - q->oldest) : 0);
	family(out, "postoffice_queue_deferred_recipients", "gauge",
	       "Recipients waiting for a retry, by destination domain (the 10 with the most, then other).");
	size_t other = 0;
	for (size_t i = 0; i < q->ndomains; i++) {
		if (i < TOP_DOMAINS && strcmp(q->domains[i].domain, "(other)") != 0)
			sample1(out, "postoffice_queue_deferred_recipients", "domain", q->domains[i].domain,
				(double)q->domains[i].rcpts);
		else
			other += q->domains[i].rcpts;
	}
	sample1(out, "postoffice_queue_deferred_recipients", "domain", "other", (double)other);
}

static const struct {
	enum metrics_counter c;
	const char *name, *help;
} counters[] = {
    {METRICS_RECEIVED, "postoffice_messages_received_total", "Messages accepted over SMTP."},
    {METRICS_RECEIVED_BYTES, "postoffice_received_bytes_total", "Size of the messages accepted."},
    {METRICS_RECEIVED_RCPTS, "postoffice_received_recipients_total", "Recipients of the messages accepted."},
    {METRICS_DELIVERED_LOCAL, "postoffice_delivered_local_total",
     "Deliveries into local mailboxes (per mailbox, at acceptance and by the queue runner)."},
    {METRICS_RELAYED, "postoffice_relayed_total", "Recipients accepted by another host."},
    {METRICS_DEFERRED, "postoffice_deferred_total", "Recipient delivery attempts that failed temporarily."},
    {METRICS_BOUNCED, "postoffice_bounced_total", "Recipients given up (failed permanently or expired)."},
};

static void auth_and_rejects(struct buf *out, const struct metrics_totals *t)
{
	static const char *const results[METRICS_AUTH_RESULTS] = {"success", "failure", "refused"};
	family(out, "postoffice_auth_attempts_total", "counter",
	       "Password checks by service and result (refused: locked out by the failed-login table).");
	for (int s = 0; s < METRICS_SERVICE_RELAY; s++)
		for (int k = 0; k < METRICS_AUTH_RESULTS; k++)
			buf_printf(out, "postoffice_auth_attempts_total{service=\"%s\",result=\"%s\"} %llu\n",
				   admin_service_name(s), results[k], (unsigned long long)t->n.auth[s][k]);
	family(out, "postoffice_rejected_total", "counter", "Commands or connections refused, by reason.");
	for (int i = 0; i < METRICS_REJECT_COUNT; i++)
		sample1(out, "postoffice_rejected_total", "reason",
			metrics_reject_name((enum metrics_reject)i), (double)t->n.rejects[i]);
}

void admin_metrics_render(struct admin *a, struct buf *out)
{
	struct metrics_totals t;
	metrics_read(a->metrics, &t);
	family(out, "postoffice_build_info", "gauge", "The running release.");
	sample1(out, "postoffice_build_info", "version", POSTOFFICE_VERSION, 1);
	family(out, "postoffice_start_time_seconds", "gauge", "When the server started (Unix time).");
	sample1(out, "postoffice_start_time_seconds", NULL, NULL, (double)a->metrics->started);
	by_service(out, "postoffice_connections_total", "counter",
		   "Connections accepted by service (relay: outgoing SMTP connections made).",
		   t.n.connections, METRICS_SERVICES);
	family(out, "postoffice_sessions_open", "gauge", "Sessions open now, by service.");
	for (int i = 0; i < METRICS_SERVICE_RELAY; i++)
		sample1(out, "postoffice_sessions_open", "service", admin_service_name(i),
			(double)t.sessions_open[i]);
	by_service(out, "postoffice_tls_handshakes_total", "counter", "TLS handshakes completed, by service.",
		   t.n.tls_ok, METRICS_SERVICES);
	by_service(out, "postoffice_tls_handshake_failures_total", "counter", "TLS handshakes that failed.",
		   t.n.tls_failed, METRICS_SERVICES);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		family(out, counters[i].name, "counter", counters[i].help);
		sample1(out, counters[i].name, NULL, NULL, (double)t.n.counters[counters[i].c]);
	}
	auth_and_rejects(out, &t);
	queue_gauges(out, admin_queue_get(a));
	static const char *const processes[] = {"", "worker", "queue_runner", "admin"};
	family(out, "postoffice_jobs_queued", "gauge",
	       "Jobs waiting for a thread of the pool, by process kind.");
	for (int p = METRICS_PROCESS_WORKER; p <= METRICS_PROCESS_ADMIN; p++)
		sample1(out, "postoffice_jobs_queued", "process", processes[p], (double)t.jobs_queued[p]);
	histogram(out, "postoffice_fsync_duration_seconds", "fsync() and fdatasync() calls.",
		  &t.n.hist[METRICS_HIST_FSYNC], METRICS_HIST_FSYNC);
	histogram(out, "postoffice_acceptance_duration_seconds",
		  "From MAIL to the 250 after the data (the message on stable storage).",
		  &t.n.hist[METRICS_HIST_ACCEPT], METRICS_HIST_ACCEPT);
	histogram(out, "postoffice_relay_delivery_duration_seconds",
		  "Queue runner deliveries to other hosts, from the attempt's start to its result.",
		  &t.n.hist[METRICS_HIST_RELAY], METRICS_HIST_RELAY);
	commands(out, a->metrics, METRICS_PROTO_POP3);
	commands(out, a->metrics, METRICS_PROTO_IMAP);
}
