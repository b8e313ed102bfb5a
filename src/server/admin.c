/* The admin process (admin.h): evhttp on the admin listener, routing,
   replies and the history sampler. */
#include "server/admin.h"
#include "server/admin_private.h"
#include "server/server.h"
#include "auth/auth_check.h"
#include "lib/heartbeat.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/xalloc.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

/* A login form or a queue action is a few hundred bytes. */
#define ADMIN_BODY_MAX 16384
#define ADMIN_HEADERS_MAX 16384
#define ADMIN_TIMEOUT 30
#define ADMIN_SAMPLE_SECONDS 5

static struct admin admin;

/* ---- replies ---- */

/* Every reply: no caching, no framing, no script at all (the page needs
   none), styles only inline, forms only to us. */
static void add_security_headers(struct evhttp_request *req, bool tls)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Content-Security-Policy",
			  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
			  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
	if (tls)
		evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
}

void admin_request_free(struct admin_request *r)
{
	buf_free(&r->body);
	free(r);
}

static void reply(struct admin_request *r, int code, const char *type, const void *data, size_t len,
		  const char *set_cookie, const char *location)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	add_security_headers(r->req, r->a->tls != NULL);
	if (type != NULL)
		evhttp_add_header(h, "Content-Type", type);
	if (set_cookie != NULL)
		evhttp_add_header(h, "Set-Cookie", set_cookie);
	if (location != NULL)
		evhttp_add_header(h, "Location", location);
	struct evbuffer *body = evbuffer_new();
	evbuffer_add(body, data, len);
	const char *reason = code == 200   ? "OK"
			     : code == 303 ? "See Other"
			     : code == 400 ? "Bad Request"
			     : code == 403 ? "Forbidden"
			     : code == 404 ? "Not Found"
			     : code == 405 ? "Method Not Allowed"
			     : code == 429 ? "Too Many Requests"
					   : "Error";
	evhttp_send_reply(r->req, code, reason, body);
	evbuffer_free(body);
	admin_request_free(r);
}

void admin_reply_html(struct admin_request *r, int code, const struct buf *html, const char *set_cookie)
{
	reply(r, code, "text/html; charset=utf-8", html->data, html->len, set_cookie, NULL);
}

void admin_reply_redirect(struct admin_request *r, const char *location, const char *set_cookie)
{
	reply(r, 303, "text/plain; charset=utf-8", "", 0, set_cookie, location);
}

void admin_reply_error(struct admin_request *r, int code, const char *text)
{
	struct buf page = BUF_INIT;
	html_begin(&page, r, text, 0);
	buf_append_str(&page, "<section><h2>");
	html_escape(&page, text);
	buf_append_str(&page, "</h2><p><a href=\"/\">Back to the status page</a></p></section>");
	html_end(&page);
	admin_reply_html(r, code, &page, NULL);
	buf_free(&page);
}

/* ---- routing ---- */

static void serve_metrics(struct admin_request *r)
{
	struct buf out = BUF_INIT;
	admin_metrics_render(r->a, &out);
	reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len, NULL, NULL);
	buf_free(&out);
}

static bool read_body(struct admin_request *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	if (len > ADMIN_BODY_MAX)
		return false;
	buf_reserve(&r->body, len + 1);
	evbuffer_remove(in, r->body.data, len);
	r->body.len = len;
	r->body.data[len] = '\0';
	return true;
}

/* Pages other than /metrics and the login need a login, except the
   status page itself with [admin] public_status. */
static void route(struct admin_request *r)
{
	const char *p = r->path;
	if (!strcmp(p, "/metrics") && !r->post) {
		serve_metrics(r);
	} else if (!strcmp(p, "/login")) {
		if (r->post)
			admin_login_post(r);
		else
			admin_login_page(r);
	} else if (!strcmp(p, "/logout") && r->post) {
		admin_logout_post(r);
	} else if (!strcmp(p, "/") && !r->post) {
		if (admin_logged_in(r) || r->a->cfg->admin_public_status)
			admin_status_page(r);
		else
			admin_reply_redirect(r, "/login", NULL);
	} else if (!strcmp(p, "/queue") || !strncmp(p, "/queue/", 7)) {
		if (!admin_logged_in(r)) {
			if (r->post)
				admin_reply_error(r, 403, "Log in first");
			else
				admin_reply_redirect(r, "/login", NULL);
		} else if (r->post && !admin_csrf_ok(r)) {
			log_info("admin refused ip=%s path=%s reason=csrf", r->ip, p);
			admin_reply_error(r, 403, "Missing or invalid CSRF token");
		} else if (!strcmp(p, "/queue")) {
			if (r->post)
				admin_reply_error(r, 405, "Method not allowed");
			else
				admin_queue_list_page(r);
		} else {
			admin_queue_route(r, p + 7);
		}
	} else {
		admin_reply_error(r, 404, "Not found");
	}
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	struct admin_request *r = xcalloc(1, sizeof(*r));
	r->a = a;
	r->req = req;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	r->post = cmd == EVHTTP_REQ_POST;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	r->path = path != NULL && *path != '\0' ? path : "/";
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *peer = NULL;
	ev_uint16_t port = 0;
	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &peer, &port);
	snprintf(r->ip, sizeof(r->ip), "%s", peer != NULL ? peer : "?");
	r->session = admin_session_find(a, req);
	if (r->post && !read_body(r)) {
		admin_reply_error(r, 400, "Request too large");
		return;
	}
	route(r);
}

/* HTTPS: each connection gets a TLS bufferevent on the server's
   certificate (as the mail listeners'). */
static struct bufferevent *tls_bev_cb(struct event_base *base, void *arg)
{
	struct admin *a = arg;
	SSL *ssl = SSL_new(a->tls);
	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

/* ---- process ---- */

static void sampler_cb(evutil_socket_t fd, short what, void *arg)
{
	admin_history_sample(arg);
}

static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
	log_info("admin stop");
	event_base_loopexit(arg, NULL);
}

static int admin_setup(struct admin *a, const struct listener *l)
{
	char *error = NULL;
	if (a->cfg->admin_tls) {
		a->tls = tls_server_ctx(a->cfg->tls_cert, a->cfg->tls_key, &error);
		if (a->tls == NULL) {
			log_error("admin tls unavailable error=\"%s\"", error);
			free(error);
			return -1;
		}
	}
	a->http = evhttp_new(a->base);
	if (a->http == NULL || evhttp_accept_socket_with_handle(a->http, l->fd) == NULL) {
		log_error("admin cannot serve %s", l->address);
		return -1;
	}
	evhttp_set_max_headers_size(a->http, ADMIN_HEADERS_MAX);
	evhttp_set_max_body_size(a->http, ADMIN_BODY_MAX);
	evhttp_set_timeout(a->http, ADMIN_TIMEOUT);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_gencb(a->http, request_cb, a);
	if (a->tls != NULL)
		evhttp_set_bevcb(a->http, tls_bev_cb, a);
	return 0;
}

int admin_run(const struct config *cfg, const struct listener *l, struct auth_penalty *penalty,
	      struct metrics *metrics, struct heartbeat *hb)
{
	struct admin *a = &admin;
	a->cfg = cfg;
	a->penalty = penalty;
	a->metrics = metrics;
	log_set_role("postoffice/admin");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	a->base = event_base_new();
	if (a->base == NULL)
		log_fatal("event_base_new() failed");
	jobs_init(a->base, 1);
	char *error = NULL;
	if (auth_check_cluster_open(cfg, &error) < 0) {
		log_error("admin: failed-login counters of the other nodes unavailable error=\"%s\"", error);
		free(error);
	}
	int rc = 1;
	if (admin_setup(a, l) == 0) {
		struct event *term = evsignal_new(a->base, SIGTERM, sigterm_cb, a->base);
		event_add(term, NULL);
		a->sampler = event_new(a->base, -1, EV_PERSIST, sampler_cb, a);
		struct timeval every = {ADMIN_SAMPLE_SECONDS, 0};
		event_add(a->sampler, &every);
		admin_history_sample(a);
		struct event *beat = heartbeat_start(a->base, hb);
		log_info("admin start address=%s tls=%s public_status=%s", l->address, a->tls ? "yes" : "no",
			 cfg->admin_public_status ? "yes" : "no");
		event_base_dispatch(a->base);
		event_free(beat);
		event_free(a->sampler);
		event_free(term);
		rc = 0;
	}
	jobs_deinit();
	auth_check_cluster_close();
	if (a->http != NULL)
		evhttp_free(a->http);
	admin_queue_free(&a->queue);
	if (a->tls != NULL)
		SSL_CTX_free(a->tls);
	event_base_free(a->base);
	return rc;
}
