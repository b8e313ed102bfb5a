#ifndef SERVER_ADMIN_PRIVATE_H
#define SERVER_ADMIN_PRIVATE_H
/* The admin process's parts (admin.h): admin.c (process, routing,
   replies), admin_login.c (sessions, cookies, CSRF, login), admin_html.c
   (escaping, page frame, forms), admin_status.c and admin_svg.c (the
   status page and its charts), admin_queue.c (the spool snapshot and the
   queue pages), admin_metrics.c (/metrics). */
#include "auth/admin_account.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/metrics.h"

#include <stdbool.h>
#include <stdint.h>
#include <openssl/ssl.h>

struct evhttp;
struct evhttp_request;
struct event;
struct event_base;
struct auth_penalty;

#define ADMIN_TOKEN_HEX 64 /* 32 random bytes */
#define ADMIN_SESSIONS 256
#define ADMIN_COOKIE "po_admin"

struct admin_session {
	char id[ADMIN_TOKEN_HEX + 1]; /* "" = free */
	char csrf[ADMIN_TOKEN_HEX + 1];
	char user[ADMIN_NAME_MAX + 1]; /* "" = before login (the login form's CSRF token) */
	int64_t created, used;         /* monotonic seconds */
};

/* What the status page lists of the spool (admin_queue.c). */
struct admin_queue_item {
	char *id, *sender, *first_rcpt;
	size_t nrcpts, pending, deferred;
	int64_t created, size;
	bool held;
	char *last_reply; /* of a deferred recipient, or NULL */
};

struct admin_queue_domain {
	char *domain;
	size_t rcpts; /* deferred recipients */
	char *last_error;
	int64_t last_attempt;
};

struct admin_queue {
	int64_t taken_ms;
	bool failed; /* the walk failed (logged); the numbers are what it saw */
	size_t messages, held;
	int64_t oldest;                 /* creation time of the oldest message, 0: none */
	struct admin_queue_item *items; /* the first ADMIN_QUEUE_ITEMS, oldest first */
	size_t nitems;
	struct admin_queue_domain *domains; /* most deferred recipients first */
	size_t ndomains;
};

struct admin {
	const struct config *cfg;
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *tls;
	struct metrics *metrics;
	struct auth_penalty *penalty;
	struct admin_session sessions[ADMIN_SESSIONS];
	struct admin_queue *queue; /* cached snapshot, or NULL */
	struct event *sampler;
};

/* One request being answered. */
struct admin_request {
	struct admin *a;
	struct evhttp_request *req;
	const char *path;
	bool post;
	char ip[64];
	struct admin_session *session; /* from the cookie, or NULL */
	struct buf body;               /* POST body (bounded) */
};

/* ---- admin.c ---- */
/* Sends an HTML page (status code, the page in html) and finishes the
   request; set_cookie, when not NULL, is a Set-Cookie value. */
void admin_reply_html(struct admin_request *r, int code, const struct buf *html, const char *set_cookie);
/* 303 See Other to location (a path of ours). */
void admin_reply_redirect(struct admin_request *r, const char *location, const char *set_cookie);
/* An error page with a short text. */
void admin_reply_error(struct admin_request *r, int code, const char *text);
void admin_request_free(struct admin_request *r);

/* ---- admin_login.c ---- */
/* The session named by the request's cookie (expired ones are dropped),
   or NULL.  A logged-in session whose account was removed is dropped. */
struct admin_session *admin_session_find(struct admin *a, struct evhttp_request *req);
bool admin_logged_in(const struct admin_request *r);
/* True when the POST body's csrf field is the session's token (checked
   in constant time); false for a missing session or token. */
bool admin_csrf_ok(const struct admin_request *r);
void admin_login_page(struct admin_request *r);
/* POST /login: answered later (the password check runs on a job
   thread); takes r. */
void admin_login_post(struct admin_request *r);
void admin_logout_post(struct admin_request *r);

/* ---- admin_html.c ---- */
/* Appends text with & < > " ' escaped, and bytes that are neither UTF-8
   text nor tab/CR/LF as \xNN. */
void html_escape(struct buf *out, const char *text);
void html_escape_n(struct buf *out, const char *text, size_t len);
/* The page's start: head (title, inline style, refresh seconds or 0),
   the header bar with the navigation (and the logout form when r is
   logged in). */
void html_begin(struct buf *out, const struct admin_request *r, const char *title, int refresh);
void html_end(struct buf *out);
/* A one-button POST form to action with the CSRF token. */
void html_button_form(struct buf *out, const struct admin_request *r, const char *action, const char *label,
		      const char *cls);
/* "3m 20s", "2h 5m", "4d 1h" */
void html_duration(struct buf *out, int64_t seconds);
/* "12.5 kB" */
void html_size(struct buf *out, uint64_t bytes);
/* The value of field name in an application/x-www-form-urlencoded body
   (decoded, caller frees), or NULL. */
char *form_field(const char *body, size_t len, const char *name);

/* ---- admin_status.c ---- */
void admin_status_page(struct admin_request *r);
/* The sampler: appends a per-minute sample to the history (metrics.h). */
void admin_history_sample(struct admin *a);

/* ---- admin_svg.c ---- */
struct svg_series {
	const char *name; /* legend */
	const char *cls;  /* CSS class of its marks */
	const double *values;
};
/* A bar chart width wide of n values per series, drawn in the rightmost
   of slots places (an axis of fixed length: left names its start while
   the data does not reach it); labels[i] are the tooltips, the last one
   under the right end.  Every mark carries data-value. */
void svg_bar_chart(struct buf *out, const char *id, const char *title, int width, size_t slots,
		   const char *left, const char *const *labels, const struct svg_series *series,
		   size_t nseries, size_t n);
/* A line chart of one series with a point per value. */
void svg_line_chart(struct buf *out, const char *id, const char *title, const char *const *labels,
		    const struct svg_series *series, size_t n);
/* Horizontal bars, one per label, sharing a scale up to max (0: the
   largest value); suffix follows each value ("%" or ""). */
void svg_hbars(struct buf *out, const char *id, const char *title, const char *const *labels,
	       const double *values, size_t n, double max, const char *suffix);

/* ---- admin_queue.c ---- */
#define ADMIN_QUEUE_ITEMS 500
/* The spool as of at most 2 s ago (walked now when older). */
const struct admin_queue *admin_queue_get(struct admin *a);
void admin_queue_free(struct admin_queue **q);
void admin_queue_list_page(struct admin_request *r);
/* GET /queue/ID and POST /queue/ID/ACTION, /queue/flush (rest is the
   path after "/queue/"). */
void admin_queue_route(struct admin_request *r, const char *rest);

/* ---- admin_metrics.c ---- */
void admin_metrics_render(struct admin *a, struct buf *out);
/* Sums of services for the page: inbound connections, TLS handshakes. */
const char *admin_service_name(int service);
#endif
