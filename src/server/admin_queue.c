/* The spool as the admin pages see it (admin_private.h): a snapshot
   walked at most every 2 s (queue size, oldest message, deferred
   recipients by destination domain, the first messages), the queue list
   and message pages, and the actions, which go through the same queue
   API as `postoffice queue` (markers the runner watches). */
#include "server/admin_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/spool.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SNAPSHOT_MS 2000
#define DOMAINS_MAX 1000 /* distinct domains listed; the rest are "(other)" */
#define HEADER_MAX 65536 /* of a message shown */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void admin_queue_free(struct admin_queue **qp)
{
	struct admin_queue *q = *qp;
	if (q == NULL)
		return;
	for (size_t i = 0; i < q->nitems; i++) {
		free(q->items[i].id);
		free(q->items[i].sender);
		free(q->items[i].first_rcpt);
		free(q->items[i].last_reply);
	}
	for (size_t i = 0; i < q->ndomains; i++) {
		free(q->domains[i].domain);
		free(q->domains[i].last_error);
	}
	free(q->items);
	free(q->domains);
	free(q);
	*qp = NULL;
}

struct walk {
	struct admin_queue *q;
	char *qdir;
};

static void domain_note(struct admin_queue *q, const char *address, const struct queue_entry_rcpt *r)
{
	const char *at = strrchr(address, '@');
	char *domain = xstrdup(at != NULL ? at + 1 : address);
	for (char *p = domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	size_t i = 0;
	while (i < q->ndomains && strcmp(q->domains[i].domain, domain) != 0)
		i++;
	if (i == q->ndomains && q->ndomains == DOMAINS_MAX) {
		free(domain);
		domain = xstrdup("(other)");
		i = 0;
		while (i < q->ndomains && strcmp(q->domains[i].domain, domain) != 0)
			i++;
	}
	if (i == q->ndomains) {
		q->domains = xreallocarray(q->domains, q->ndomains + 1, sizeof(*q->domains));
		memset(&q->domains[i], 0, sizeof(q->domains[i]));
		q->domains[i].domain = domain;
		q->ndomains++;
	} else {
		free(domain);
	}
	struct admin_queue_domain *d = &q->domains[i];
	d->rcpts++;
	if (r->last_reply != NULL && (d->last_error == NULL || r->last_attempt >= d->last_attempt)) {
		free(d->last_error);
		d->last_error = xstrdup(r->last_reply);
		d->last_attempt = r->last_attempt;
	}
}

static int walk_cb(void *ctx, const struct queue_entry *e)
{
	struct walk *w = ctx;
	struct admin_queue *q = w->q;
	q->messages++;
	q->held += e->held;
	if (q->oldest == 0 || e->created < q->oldest)
		q->oldest = e->created;
	struct admin_queue_item it = {0};
	const struct queue_entry_rcpt *last = NULL;
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct queue_entry_rcpt *r = &e->rcpts[i];
		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		it.pending++;
		if (r->attempts == 0)
			continue;
		it.deferred++;
		domain_note(q, r->address, r);
		if (last == NULL || r->last_attempt >= last->last_attempt)
			last = r;
	}
	if (q->nitems >= ADMIN_QUEUE_ITEMS)
		return 0;
	it.id = xstrdup(e->id);
	it.sender = xstrdup(e->sender);
	it.first_rcpt = xstrdup(e->nrcpts > 0 ? e->rcpts[0].address : "");
	it.nrcpts = e->nrcpts;
	it.created = e->created;
	it.held = e->held;
	it.last_reply = last != NULL && last->last_reply != NULL ? xstrdup(last->last_reply) : NULL;
	char *path = queue_path(w->qdir, e->id, "msg");
	struct stat st;
	it.size = stat(path, &st) == 0 ? (int64_t)st.st_size - (int64_t)e->offset : -1;
	free(path);
	q->items = xreallocarray(q->items, q->nitems + 1, sizeof(*q->items));
	q->items[q->nitems++] = it;
	return 0;
}

static int by_rcpts(const void *a, const void *b)
{
	const struct admin_queue_domain *x = a, *y = b;
	return x->rcpts < y->rcpts ? 1 : x->rcpts > y->rcpts ? -1 : strcmp(x->domain, y->domain);
}

/* Blocking: reads every envelope.  Fine in this process (see admin.h),
   and at most every SNAPSHOT_MS. */
const struct admin_queue *admin_queue_get(struct admin *a)
{
	int64_t now = now_ms();
	if (a->queue != NULL && now - a->queue->taken_ms < SNAPSHOT_MS)
		return a->queue;
	admin_queue_free(&a->queue);
	struct walk w = {xcalloc(1, sizeof(struct admin_queue)), queue_dir(a->cfg->data_dir)};
	char *error = NULL;
	if (queue_walk(a->cfg->data_dir, walk_cb, &w, &error) < 0) {
		log_error("admin queue walk error=\"%s\"", error);
		free(error);
		w.q->failed = true;
	}
	free(w.qdir);
	if (w.q->ndomains > 1)
		qsort(w.q->domains, w.q->ndomains, sizeof(*w.q->domains), by_rcpts);
	w.q->taken_ms = now;
	a->queue = w.q;
	return a->queue;
}

/* ---- pages ---- */

static void time_cell(struct buf *out, int64_t t)
{
	if (t <= 0) {
		buf_append_str(out, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	char text[32];
	gmtime_r(&tt, &tm);
	strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm);
	buf_append_str(out, text);
}

static void action_buttons(struct buf *out, const struct admin_request *r, const char *id, bool held)
{
	char *action = xasprintf("/queue/%s/flush", id);
	html_button_form(out, r, action, "Flush", NULL);
	free(action);
	action = xasprintf("/queue/%s/%s", id, held ? "release" : "hold");
	html_button_form(out, r, action, held ? "Release" : "Hold", NULL);
	free(action);
	action = xasprintf("/queue/%s/delete", id);
	html_button_form(out, r, action, "Delete", "danger");
	free(action);
}

void admin_queue_list_page(struct admin_request *r)
{
	const struct admin_queue *q = admin_queue_get(r->a);
	struct buf page = BUF_INIT;
	int64_t now = (int64_t)time(NULL);
	html_begin(&page, r, "Queue", 0);
	buf_printf(&page, "<section class=\"wide\"><h2>Queue: %zu message%s, %zu held", q->messages,
		   q->messages == 1 ? "" : "s", q->held);
	if (q->oldest > 0) {
		buf_append_str(&page, ", oldest ");
		html_duration(&page, now - q->oldest);
	}
	buf_append_str(&page, "</h2><p>");
	html_button_form(&page, r, "/queue/flush", "Flush all (retry now)", NULL);
	buf_append_str(&page, "</p><table id=\"queue\"><tr><th>Id</th><th>Age</th><th class=\"num\">Size</th>"
			      "<th>From</th><th>To</th><th>State</th><th>Last reply</th><th></th></tr>");
	for (size_t i = 0; i < q->nitems; i++) {
		const struct admin_queue_item *it = &q->items[i];
		buf_append_str(&page, "<tr class=\"msg\" data-id=\"");
		html_escape(&page, it->id);
		buf_append_str(&page, "\"><td><a href=\"/queue/");
		html_escape(&page, it->id);
		buf_append_str(&page, "\">");
		html_escape(&page, it->id);
		buf_append_str(&page, "</a></td><td>");
		html_duration(&page, now - it->created);
		buf_append_str(&page, "</td><td class=\"num\">");
		html_size(&page, it->size > 0 ? (uint64_t)it->size : 0);
		buf_append_str(&page, "</td><td>&lt;");
		html_escape(&page, it->sender);
		buf_append_str(&page, "&gt;</td><td>");
		html_escape(&page, it->first_rcpt);
		if (it->nrcpts > 1)
			buf_printf(&page, " and %zu more", it->nrcpts - 1);
		buf_append_str(&page, "</td><td class=\"state\">");
		if (it->held)
			buf_append_str(&page, "<span class=\"held\">held</span> ");
		buf_printf(&page, "%zu pending, %zu deferred</td><td>", it->pending, it->deferred);
		html_escape(&page, it->last_reply);
		buf_append_str(&page, "</td><td>");
		action_buttons(&page, r, it->id, it->held);
		buf_append_str(&page, "</td></tr>");
	}
	buf_append_str(&page, "</table>");
	if (q->messages > q->nitems)
		buf_printf(&page, "<p class=\"note\">The first %zu of %zu messages.</p>", q->nitems,
			   q->messages);
	buf_append_str(&page, "</section>");
	html_end(&page);
	admin_reply_html(r, 200, &page, NULL);
	buf_free(&page);
}

static void kv_row(struct buf *out, const char *key, const char *value)
{
	buf_append_str(out, "<tr><td>");
	html_escape(out, key);
	buf_append_str(out, "</td><td>");
	html_escape(out, value != NULL ? value : "-");
	buf_append_str(out, "</td></tr>");
}

/* The header block of ID.msg (up to the blank line, at most HEADER_MAX). */
static void read_header(const char *qdir, const struct queue_entry *e, struct buf *out)
{
	int fd;
	char *error = NULL;
	if (queue_msg_open(qdir, e->id, &fd, &error) != 1) {
		free(error);
		return;
	}
	char *data = xmalloc(HEADER_MAX);
	ssize_t n = pread(fd, data, HEADER_MAX, (off_t)e->offset);
	close(fd);
	if (n > 0) {
		const char *end = memmem(data, (size_t)n, "\r\n\r\n", 4);
		buf_append(out, data, end != NULL ? (size_t)(end - data) + 2 : (size_t)n);
	}
	free(data);
}

static void envelope_table(struct buf *page, const struct queue_entry *e)
{
	char *sender = xasprintf("<%s>", e->sender);
	buf_append_str(page, "<table class=\"kv\" id=\"envelope\">");
	kv_row(page, "From", sender);
	free(sender);
	buf_append_str(page, "<tr><td>Queued</td><td>");
	time_cell(page, e->created);
	buf_append_str(page, "</td></tr>");
	kv_row(page, "Held", e->held ? "yes" : "no");
	kv_row(page, "ENVID", e->envid);
	kv_row(page, "RET", queue_ret_name(e->ret));
	kv_row(page, "Body", queue_body_name(e->body));
	kv_row(page, "SMTPUTF8", e->smtputf8 ? "yes" : "no");
	kv_row(page, "Client", e->client_ip);
	kv_row(page, "HELO", e->helo);
	kv_row(page, "Authenticated as", e->auth_user);
	buf_append_str(page,
		       "</table><h2>Recipients</h2><table id=\"recipients\"><tr><th>Address</th>"
		       "<th>State</th><th class=\"num\">Attempts</th><th>Next attempt</th><th>Last reply</th>"
		       "</tr>");
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct queue_entry_rcpt *rc = &e->rcpts[i];
		buf_append_str(page, "<tr><td>");
		html_escape(page, rc->address);
		buf_append_str(page, "</td><td>");
		html_escape(page, queue_rcpt_state_name(rc->state));
		buf_printf(page, "</td><td class=\"num\">%d</td><td>", rc->attempts);
		if (rc->state == QUEUE_RCPT_PENDING)
			time_cell(page, rc->next_attempt);
		buf_append_str(page, "</td><td>");
		html_escape(page, rc->last_reply);
		if (rc->remote_mta != NULL) {
			buf_append_str(page, " (");
			html_escape(page, rc->remote_mta);
			buf_append_str(page, ")");
		}
		buf_append_str(page, "</td></tr>");
	}
	buf_append_str(page, "</table>");
}

static void message_page(struct admin_request *r, const char *id)
{
	char *qdir = queue_dir(r->a->cfg->data_dir);
	struct queue_entry e;
	char *error = NULL;
	int rc = queue_entry_load(qdir, id, &e, &error);
	if (rc != 0) {
		if (rc < 0)
			log_error("admin queue show id=%s error=\"%s\"", id, error);
		free(error);
		free(qdir);
		admin_reply_error(r, 404, "No such message in the queue");
		return;
	}
	struct buf header = BUF_INIT, page = BUF_INIT;
	read_header(qdir, &e, &header);
	html_begin(&page, r, e.id, 0);
	buf_append_str(&page, "<section class=\"wide\"><h2>Message ");
	html_escape(&page, e.id);
	buf_append_str(&page, "</h2><p>");
	action_buttons(&page, r, e.id, e.held);
	buf_append_str(&page, "</p>");
	envelope_table(&page, &e);
	buf_append_str(&page, "<h2>Header</h2><pre id=\"header\">");
	html_escape_n(&page, header.data != NULL ? header.data : "", header.len);
	buf_append_str(&page, "</pre></section>");
	html_end(&page);
	admin_reply_html(r, 200, &page, NULL);
	buf_free(&page);
	buf_free(&header);
	queue_entry_free(&e);
	free(qdir);
}

/* POST /queue/ID/ACTION: what `postoffice queue ACTION ID` does. */
static void message_action(struct admin_request *r, const char *id, const char *action)
{
	const char *data_dir = r->a->cfg->data_dir;
	char *error = NULL;
	int rc;
	if (!strcmp(action, "flush"))
		rc = queue_flush(data_dir, id, &error);
	else if (!strcmp(action, "delete"))
		rc = queue_delete(data_dir, id, &error);
	else if (!strcmp(action, "hold") || !strcmp(action, "release"))
		rc = queue_hold(data_dir, id, !strcmp(action, "hold"), &error);
	else {
		admin_reply_error(r, 404, "Not found");
		return;
	}
	admin_queue_free(&r->a->queue);
	if (rc < 0) {
		log_error("admin queue action=%s id=%s error=\"%s\"", action, id, error);
		free(error);
		admin_reply_error(r, 500, "The queue action failed (see the log)");
		return;
	}
	/* flush answers 1 when the runner is not running: it is done at
	   its start. */
	if (rc > 0 && strcmp(action, "flush") != 0) {
		admin_reply_error(r, 404, "No such message in the queue");
		return;
	}
	log_info("admin queue action=%s id=%s user=%s ip=%s", action, id, r->session->user, r->ip);
	char *location = !strcmp(action, "delete") ? xstrdup("/queue") : xasprintf("/queue/%s", id);
	admin_reply_redirect(r, location, NULL);
	free(location);
}

void admin_queue_route(struct admin_request *r, const char *rest)
{
	if (!strcmp(rest, "flush") && r->post) {
		char *error = NULL;
		if (queue_flush(r->a->cfg->data_dir, NULL, &error) < 0) {
			log_error("admin queue action=flush-all error=\"%s\"", error);
			free(error);
		} else {
			log_info("admin queue action=flush-all user=%s ip=%s", r->session->user, r->ip);
		}
		admin_queue_free(&r->a->queue);
		admin_reply_redirect(r, "/queue", NULL);
		return;
	}
	const char *slash = strchr(rest, '/');
	char *id = slash != NULL ? xstrndup(rest, (size_t)(slash - rest)) : xstrdup(rest);
	if (!queue_id_valid(id) || (slash == NULL) == r->post || (slash != NULL && strchr(slash + 1, '/'))) {
		admin_reply_error(r, 404, "Not found");
	} else if (slash == NULL) {
		message_page(r, id);
	} else {
		message_action(r, id, slash + 1);
	}
	free(id);
}
