/* The status page (GET /) and the per-minute history behind its charts
   (admin_private.h).  The history lives in the shared metrics region, so
   it survives a restart of this process and a reload; the sampler adds
   the totals once a minute, and a chart's bar for a minute is the
   difference of two samples (the last bar: now less the last sample). */
#include "server/admin_private.h"
#include "lib/version.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REFRESH_SECONDS 30
#define CHART_MINUTES 60
#define LIST_ROWS 10

static uint64_t delivered(const struct metrics_totals *t)
{
	return t->n.counters[METRICS_DELIVERED_LOCAL] + t->n.counters[METRICS_RELAYED];
}

void admin_history_sample(struct admin *a)
{
	int64_t minute = (int64_t)time(NULL) / 60;
	struct metrics_sample hist[METRICS_HISTORY];
	size_t n = metrics_history_read(a->metrics, hist, METRICS_HISTORY);
	if (n > 0 && hist[n - 1].minute == minute)
		return;
	struct metrics_totals t;
	metrics_read(a->metrics, &t);
	struct metrics_sample s = {
	    .minute = minute,
	    .received = t.n.counters[METRICS_RECEIVED],
	    .delivered = delivered(&t),
	    .queue_messages = (int64_t)admin_queue_get(a)->messages,
	};
	memcpy(s.connections, t.n.connections, sizeof(s.connections));
	metrics_history_append(a->metrics, &s);
}

static char *minute_label(int64_t minute, const char *suffix)
{
	time_t t = (time_t)(minute * 60);
	struct tm tm;
	gmtime_r(&t, &tm);
	return xasprintf("%02d:%02d%s", tm.tm_hour, tm.tm_min, suffix);
}

struct series_data {
	size_t n;
	char **labels;
	double *in, *out, *queue;
};

/* Per-minute rates from the samples, the minute under way last. */
static void build_series(struct admin *a, const struct metrics_totals *t, size_t queue_now,
			 struct series_data *d)
{
	struct metrics_sample hist[METRICS_HISTORY];
	size_t n = metrics_history_read(a->metrics, hist, METRICS_HISTORY);
	d->labels = xcalloc(n + 1, sizeof(char *));
	d->in = xcalloc(n + 1, sizeof(double));
	d->out = xcalloc(n + 1, sizeof(double));
	d->queue = xcalloc(n + 1, sizeof(double));
	for (size_t i = 0; i < n; i++) {
		bool last = i + 1 == n;
		uint64_t rin = last ? t->n.counters[METRICS_RECEIVED] : hist[i + 1].received;
		uint64_t rout = last ? delivered(t) : hist[i + 1].delivered;
		d->labels[i] = minute_label(hist[i].minute, last ? " UTC (now)" : " UTC");
		d->in[i] = (double)(rin - hist[i].received);
		d->out[i] = (double)(rout - hist[i].delivered);
		d->queue[i] = last ? (double)queue_now : (double)hist[i + 1].queue_messages;
	}
	if (n == 0) {
		d->labels[0] = xstrdup("now");
		d->in[0] = (double)t->n.counters[METRICS_RECEIVED];
		d->out[0] = (double)delivered(t);
		d->queue[0] = (double)queue_now;
		n = 1;
	}
	d->n = n;
}

static void series_free(struct series_data *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->labels[i]);
	free(d->labels);
	free(d->in);
	free(d->out);
	free(d->queue);
}

static void overview(struct buf *page, struct admin *a, const struct metrics_totals *t,
		     const struct admin_queue *q)
{
	int64_t now = (int64_t)time(NULL);
	int64_t open = 0;
	for (int i = 0; i < METRICS_SERVICE_RELAY; i++)
		open += t->sessions_open[i];
	buf_append_str(page, "<section><h2>Server</h2><table class=\"kv\" id=\"overview\">"
			     "<tr><td>Version</td><td>postoffice " POSTOFFICE_VERSION
			     "</td></tr><tr><td>Host</td><td>");
	html_escape(page, a->cfg->hostname);
	buf_append_str(page, "</td></tr><tr><td>Uptime</td><td id=\"uptime\">");
	html_duration(page, now - a->metrics->started);
	buf_printf(page, "</td></tr><tr><td>Sessions open</td><td>%lld</td></tr>", (long long)open);
	buf_printf(page, "<tr><td>Messages received</td><td>%llu (",
		   (unsigned long long)t->n.counters[METRICS_RECEIVED]);
	html_size(page, t->n.counters[METRICS_RECEIVED_BYTES]);
	buf_printf(page, ")</td></tr><tr><td>Delivered locally / relayed</td><td>%llu / %llu</td></tr>",
		   (unsigned long long)t->n.counters[METRICS_DELIVERED_LOCAL],
		   (unsigned long long)t->n.counters[METRICS_RELAYED]);
	buf_printf(page, "<tr><td>Deferred / bounced</td><td>%llu / %llu</td></tr>",
		   (unsigned long long)t->n.counters[METRICS_DEFERRED],
		   (unsigned long long)t->n.counters[METRICS_BOUNCED]);
	buf_printf(page, "<tr><td>Queue</td><td><a href=\"/queue\">%zu message%s</a>, %zu held", q->messages,
		   q->messages == 1 ? "" : "s", q->held);
	if (q->oldest > 0) {
		buf_append_str(page, ", oldest ");
		html_duration(page, now - q->oldest);
	}
	buf_append_str(page, "</td></tr></table></section>");
}

/* The share of connections with a completed handshake, in and out. */
static void tls_share(struct buf *page, const struct metrics_numbers *n)
{
	uint64_t conn[2] = {0, n->connections[METRICS_SERVICE_RELAY]};
	uint64_t ok[2] = {0, n->tls_ok[METRICS_SERVICE_RELAY]};
	uint64_t failed[2] = {0, n->tls_failed[METRICS_SERVICE_RELAY]};
	for (int i = 0; i < METRICS_SERVICE_RELAY; i++) {
		conn[0] += n->connections[i];
		ok[0] += n->tls_ok[i];
		failed[0] += n->tls_failed[i];
	}
	const char *labels[2] = {"inbound", "outbound"};
	double share[2];
	for (int i = 0; i < 2; i++) {
		share[i] = conn[i] > 0 ? 100.0 * (double)ok[i] / (double)conn[i] : 0;
		share[i] = share[i] > 100 ? 100 : (double)(int)(share[i] * 10) / 10;
	}
	buf_append_str(page, "</section><section><h2>TLS share of connections</h2>");
	svg_hbars(page, "chart-tls", "Connections that used TLS", labels, share, 2, 100, "%");
	buf_printf(
	    page,
	    "<p class=\"note\">%llu of %llu inbound connections and %llu of %llu outgoing ones completed "
	    "a TLS handshake; %llu inbound and %llu outgoing handshakes failed.</p></section>",
	    (unsigned long long)ok[0], (unsigned long long)conn[0], (unsigned long long)ok[1],
	    (unsigned long long)conn[1], (unsigned long long)failed[0], (unsigned long long)failed[1]);
}

static void charts(struct buf *page, struct admin *a, const struct metrics_totals *t,
		   const struct admin_queue *q)
{
	struct series_data d;
	build_series(a, t, q->messages, &d);
	size_t first = d.n > CHART_MINUTES ? d.n - CHART_MINUTES : 0, n = d.n - first;
	struct svg_series mail[2] = {
	    {"received", "s0", d.in + first},
	    {"delivered (local and relayed)", "s1", d.out + first},
	};
	buf_append_str(page, "<section class=\"wide\"><h2>Messages per minute, last hour</h2>");
	svg_bar_chart(page, "chart-messages", "Messages per minute in and out", 1240, CHART_MINUTES + 1,
		      "an hour ago", (const char *const *)d.labels + first, mail, 2, n);
	buf_append_str(page, "</section><section><h2>Queue size</h2>");
	struct svg_series queue = {"messages in the queue", "pt", d.queue + first};
	svg_line_chart(page, "chart-queue", "Messages in the queue over time",
		       (const char *const *)d.labels + first, &queue, n);
	series_free(&d);

	const char *labels[METRICS_SERVICES];
	double values[METRICS_SERVICES];
	char *owned[METRICS_SERVICES];
	for (int i = 0; i < METRICS_SERVICES; i++) {
		owned[i] = i == METRICS_SERVICE_RELAY ? xstrdup("relay (out)")
						      : xasprintf("%s (%lld open)", admin_service_name(i),
								  (long long)t->sessions_open[i]);
		labels[i] = owned[i];
		values[i] = (double)t->n.connections[i];
	}
	buf_append_str(page, "</section><section><h2>Connections by protocol since start</h2>");
	svg_hbars(page, "chart-connections", "Connections by protocol", labels, values, METRICS_SERVICES, 0,
		  "");
	for (int i = 0; i < METRICS_SERVICES; i++)
		free(owned[i]);

	tls_share(page, &t->n);
}

static void deferred_domains(struct buf *page, const struct admin_queue *q)
{
	buf_append_str(page, "<section><h2>Deferred mail by destination domain</h2><table id=\"deferred\">"
			     "<tr><th>Domain</th><th class=\"num\">Recipients</th><th>Last error</th></tr>");
	for (size_t i = 0; i < q->ndomains && i < 2 * LIST_ROWS; i++) {
		buf_append_str(page, "<tr><td>");
		html_escape(page, q->domains[i].domain);
		buf_printf(page, "</td><td class=\"num\">%zu</td><td>", q->domains[i].rcpts);
		html_escape(page, q->domains[i].last_error);
		buf_append_str(page, "</td></tr>");
	}
	if (q->ndomains == 0)
		buf_append_str(page, "<tr><td colspan=\"3\">Nothing deferred.</td></tr>");
	buf_append_str(page, "</table></section>");
}

static void recent_rejects(struct buf *page, struct admin *a)
{
	struct metrics_reject_entry rejects[2 * LIST_ROWS];
	size_t n = metrics_read_rejects(a->metrics, rejects, N_ELEMENTS(rejects));
	buf_append_str(page, "<section><h2>Recent rejects</h2><table id=\"rejects\"><tr><th>Time</th>"
			     "<th>Reason</th><th>Client</th><th>Detail</th></tr>");
	for (size_t i = 0; i < n; i++) {
		time_t tt = (time_t)rejects[i].time;
		struct tm tm;
		char when[32];
		gmtime_r(&tt, &tm);
		strftime(when, sizeof(when), "%H:%M:%S UTC", &tm);
		buf_printf(page, "<tr><td>%s</td><td>", when);
		html_escape(page, metrics_reject_name((enum metrics_reject)rejects[i].reason));
		buf_append_str(page, "</td><td>");
		html_escape(page, rejects[i].ip);
		buf_append_str(page, "</td><td>");
		html_escape(page, rejects[i].detail);
		buf_append_str(page, "</td></tr>");
	}
	if (n == 0)
		buf_append_str(page, "<tr><td colspan=\"4\">None since the start.</td></tr>");
	buf_append_str(page, "</table></section>");
}

static void top_table(struct buf *page, struct admin *a, enum metrics_top which)
{
	struct metrics_top_entry top[LIST_ROWS];
	size_t n = metrics_read_top(a->metrics, which, top, LIST_ROWS);
	bool senders = which == METRICS_TOP_SENDERS;
	buf_printf(page,
		   "<section><h2>Top %s by volume</h2><table id=\"top-%s\"><tr><th>Address</th>"
		   "<th class=\"num\">Messages</th><th class=\"num\">Volume</th></tr>",
		   senders ? "senders" : "recipients", senders ? "senders" : "recipients");
	for (size_t i = 0; i < n; i++) {
		buf_append_str(page, "<tr><td>");
		html_escape(page, top[i].address);
		buf_printf(page, "</td><td class=\"num\">%llu</td><td class=\"num\">",
			   (unsigned long long)top[i].messages);
		html_size(page, top[i].bytes);
		buf_append_str(page, "</td></tr>");
	}
	if (n == 0)
		buf_append_str(page, "<tr><td colspan=\"3\">No mail yet.</td></tr>");
	buf_append_str(page, "</table><p class=\"note\">Approximate: each process keeps its biggest "
			     "addresses.</p></section>");
}

void admin_status_page(struct admin_request *r)
{
	struct admin *a = r->a;
	struct metrics_totals t;
	metrics_read(a->metrics, &t);
	const struct admin_queue *q = admin_queue_get(a);
	struct buf page = BUF_INIT;
	html_begin(&page, r, "Status", REFRESH_SECONDS);
	overview(&page, a, &t, q);
	charts(&page, a, &t, q);
	deferred_domains(&page, q);
	recent_rejects(&page, a);
	top_table(&page, a, METRICS_TOP_SENDERS);
	top_table(&page, a, METRICS_TOP_RECIPIENTS);
	html_end(&page);
	admin_reply_html(r, 200, &page, NULL);
	buf_free(&page);
}
