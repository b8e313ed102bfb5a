/* MTA-STS policy fetches on libcurl's multi interface (see
   mta_sts_fetch.h).  curl tells us which sockets to watch (socket
   callback) and when to call it back (timer callback); libevent watches
   them and hands each event to curl_multi_socket_action, the pattern of
   curl's hiperfifo example. */
#include "relay/mta_sts_fetch.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "relay/mta_sts.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <event2/event.h>

struct fetch_sock {
	struct mta_sts_fetcher *f;
	curl_socket_t fd;
	struct event *ev;
	struct fetch_sock *next;
};

struct fetch {
	struct mta_sts_fetcher *f;
	CURL *easy;
	struct curl_slist *resolve;
	struct buf body;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
	struct event *failed; /* reports a fetch that could not start */
	mta_sts_fetch_callback *cb;
	void *ctx;
	struct fetch *next;
};

struct mta_sts_fetcher {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	int port;
	char *ca_file;
	struct fetch *fetches;
	struct fetch_sock *socks;
};

/* ---- curl on the loop ---- */

static void fetch_check_done(struct mta_sts_fetcher *f);

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mta_sts_fetcher *f = arg;
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(f->multi, fd, action, &running);
	fetch_check_done(f);
}

static void sock_forget(struct mta_sts_fetcher *f, struct fetch_sock *s)
{
	struct fetch_sock **pp = &f->socks;
	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	event_free(s->ev);
	free(s);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct mta_sts_fetcher *f = userp;
	struct fetch_sock *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			sock_forget(f, s);
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->f = f;
		s->fd = fd;
		s->next = f->socks;
		f->socks = s;
		curl_multi_assign(f->multi, fd, s);
	} else {
		event_free(s->ev);
	}
	short kind =
	    EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	s->ev = event_new(f->base, fd, kind, sock_event_cb, f);
	event_add(s->ev, NULL);
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct mta_sts_fetcher *f = userp;
	if (timeout_ms < 0) {
		evtimer_del(f->timer);
		return 0;
	}
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	evtimer_add(f->timer, &tv);
	return 0;
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mta_sts_fetcher *f = arg;
	int running;
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	fetch_check_done(f);
}

/* ---- fetches ---- */

static void fetch_free(struct fetch *t)
{
	struct fetch **pp = &t->f->fetches;
	while (*pp != NULL && *pp != t)
		pp = &(*pp)->next;
	if (*pp == t)
		*pp = t->next;
	curl_multi_remove_handle(t->f->multi, t->easy);
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->resolve);
	if (t->failed != NULL)
		event_free(t->failed);
	buf_free(&t->body);
	free(t);
}

/* 3.2: "policies ... MUST be served with the text/plain media type";
   parameters (charset) may follow. */
static bool media_type_ok(const char *type)
{
	if (type == NULL || strncasecmp(type, "text/plain", 10) != 0)
		return false;
	return type[10] == '\0' || type[10] == ';' || type[10] == ' ' || type[10] == '\t';
}

static void fetch_finish(struct fetch *t, CURLcode rc)
{
	char *error = NULL;
	long code = 0;
	char *type = NULL;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &type);
	if (t->too_big)
		error = xasprintf("policy larger than %d bytes", MTA_STS_POLICY_SIZE_MAX);
	else if (rc != CURLE_OK)
		error = xstrdup(t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(rc));
	else if (code != 200) /* 3.3: a redirect (3xx) is not followed either */
		error = xasprintf("HTTP status %ld", code);
	else if (!media_type_ok(type))
		error = xasprintf("media type %s, not text/plain", type != NULL ? type : "missing");
	t->cb(t->ctx, error == NULL ? MTA_STS_FETCH_OK : MTA_STS_FETCH_FAILED, t->body.data, t->body.len,
	      error);
	free(error);
	fetch_free(t);
}

static void fetch_check_done(struct mta_sts_fetcher *f)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct fetch *t = NULL;
		CURLcode rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		fetch_finish(t, rc);
	}
}

static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct fetch *t = arg;
	size_t len = size * n;
	if (t->body.len + len > MTA_STS_POLICY_SIZE_MAX) {
		t->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	buf_append(&t->body, data, len);
	return len;
}

static void fetch_failed_cb(evutil_socket_t fd, short what, void *arg)
{
	fetch_finish(arg, CURLE_URL_MALFORMAT);
}

/* A host name fit for the URL: letters, digits, '-', '.' and '_'. */
static bool domain_ok(const char *d)
{
	if (d[0] == '\0' || strlen(d) > 253)
		return false;
	for (const char *p = d; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return false;
	return true;
}

/* "mta-sts.DOMAIN:PORT:ADDR,ADDR" for CURLOPT_RESOLVE. */
static char *resolve_entry(const char *host, int port, const struct dns_addr *addrs, size_t n)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s:%d:", host, port);
	for (size_t i = 0; i < n; i++) {
		char ip[INET6_ADDRSTRLEN] = "";
		if (addrs[i].sa.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((const struct sockaddr_in *)&addrs[i].sa)->sin_addr, ip,
				  sizeof(ip));
			buf_printf(&b, "%s%s", i > 0 ? "," : "", ip);
		} else {
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&addrs[i].sa)->sin6_addr, ip,
				  sizeof(ip));
			buf_printf(&b, "%s[%s]", i > 0 ? "," : "", ip);
		}
	}
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

static void fetch_setopt(struct fetch *t, const char *url)
{
	struct mta_sts_fetcher *f = t->f;
	CURL *e = t->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_RESOLVE, t->resolve);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROXY, ""); /* no proxy from the environment */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (f->ca_file != NULL) {
		curl_easy_setopt(e, CURLOPT_CAINFO, f->ca_file);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)MTA_STS_FETCH_TIMEOUT);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE, (long)MTA_STS_POLICY_SIZE_MAX);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "postoffice (MTA-STS)");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
}

void mta_sts_fetch(struct mta_sts_fetcher *f, const char *domain, const struct dns_addr *addrs, size_t n,
		   mta_sts_fetch_callback *cb, void *ctx)
{
	struct fetch *t = xcalloc(1, sizeof(*t));
	t->f = f;
	t->cb = cb;
	t->ctx = ctx;
	t->easy = curl_easy_init();
	t->next = f->fetches;
	f->fetches = t;
	if (t->easy == NULL || !domain_ok(domain) || n == 0) {
		snprintf(t->errbuf, sizeof(t->errbuf), "%s",
			 t->easy == NULL ? "curl_easy_init() failed"
			 : n == 0        ? "no address for the policy host"
					 : "domain unfit for a URL");
		t->failed = evtimer_new(f->base, fetch_failed_cb, t);
		struct timeval now = {0, 0};
		evtimer_add(t->failed, &now);
		return;
	}
	char *host = xasprintf("mta-sts.%s", domain);
	char *entry = resolve_entry(host, f->port, addrs, n);
	t->resolve = curl_slist_append(NULL, entry);
	char *url = f->port == 443 ? xasprintf("https://%s/.well-known/mta-sts.txt", host)
				   : xasprintf("https://%s:%d/.well-known/mta-sts.txt", host, f->port);
	fetch_setopt(t, url);
	curl_multi_add_handle(f->multi, t->easy);
	free(url);
	free(entry);
	free(host);
}

struct mta_sts_fetcher *mta_sts_fetcher_new(struct event_base *base, int port, const char *ca_file,
					    char **error_r)
{
	static bool global_init;
	if (!global_init) {
		/* Once, before the job threads start (not thread-safe). */
		CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
		if (rc != CURLE_OK) {
			*error_r = xasprintf("curl_global_init() failed: %s", curl_easy_strerror(rc));
			return NULL;
		}
		global_init = true;
	}
	struct mta_sts_fetcher *f = xcalloc(1, sizeof(*f));
	f->multi = curl_multi_init();
	if (f->multi == NULL) {
		*error_r = xstrdup("curl_multi_init() failed");
		free(f);
		return NULL;
	}
	f->base = base;
	f->port = port;
	f->ca_file = ca_file != NULL && ca_file[0] != '\0' ? xstrdup(ca_file) : NULL;
	f->timer = evtimer_new(base, timer_event_cb, f);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	return f;
}

void mta_sts_fetcher_free(struct mta_sts_fetcher **fp)
{
	struct mta_sts_fetcher *f = *fp;
	if (f == NULL)
		return;
	*fp = NULL;
	while (f->fetches != NULL) {
		struct fetch *t = f->fetches;
		t->cb(t->ctx, MTA_STS_FETCH_CANCELLED, NULL, 0, "cancelled");
		fetch_free(t);
	}
	curl_multi_cleanup(f->multi);
	while (f->socks != NULL) {
		struct fetch_sock *s = f->socks;
		f->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	event_free(f->timer);
	free(f->ca_file);
	free(f);
}
