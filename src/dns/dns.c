/* c-ares lookups on a libevent loop: c-ares tells us which sockets it
   watches (sock_state_cb); we keep one event per socket and one timer. */
#include "dns/dns.h"
#include "dns/dns_private.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
	struct dns_sock *next;
};

/* A cached answer on its way to the callback (from the loop). */
struct cached_delivery {
	struct dns_resolver *r;
	struct event *ev;
	ares_callback cb;
	void *arg;
	int status;
	unsigned char *abuf;
	int alen;
	struct cached_delivery *prev, *next;
};

struct dns_resolver {
	struct event_base *base;
	ares_channel channel;
	struct event *timer;
	struct dns_sock *socks;
	bool freeing;
	struct dns_cache *cache; /* NULL: off */
	struct cached_delivery *deliveries;
};

struct dns_query {
	struct dns_resolver *r;
	dns_mx_callback *mx_cb;
	dns_addr_callback *addr_cb;
	dns_txt_callback *txt_cb;
	void *ctx;
	bool cancelled; /* dns_cancel(): free without calling back */
	bool starting;  /* inside ares_query(), which may fail at once */
	int early_status;
	int port;
	struct dns_addr literal;
};

static void dns_rearm(struct dns_resolver *r)
{
	if (r->freeing)
		return;
	struct timeval maxtv = {60, 0}, tv;
	struct timeval *t = ares_timeout(r->channel, &maxtv, &tv);
	evtimer_add(r->timer, t);
}

static void dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	ares_process_fd(r->channel, (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	dns_rearm(r);
}

static void dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm(r);
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver *r = data;
	struct dns_sock **pp = &r->socks;
	while (*pp != NULL && (*pp)->fd != fd)
		pp = &(*pp)->next;
	struct dns_sock *s = *pp;
	if (s != NULL) {
		event_free(s->ev);
		if (!readable && !writable) {
			*pp = s->next;
			free(s);
			return;
		}
	} else {
		if (!readable && !writable)
			return;
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->next = r->socks;
		r->socks = s;
	}
	short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	s->ev = event_new(r->base, fd, what, dns_sock_cb, r);
	event_add(s->ev, NULL);
}

struct dns_resolver *dns_resolver_new(struct event_base *base, const char *server, char **error_r)
{
	static bool lib_init;
	if (!lib_init) {
		ares_library_init(ARES_LIB_INIT_ALL);
		lib_init = true;
	}
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	r->base = base;
	struct ares_options opts;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = r;
	opts.timeout = 2000;
	opts.tries = 3;
	int rc = ares_init_options(&r->channel, &opts,
				   ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		*error_r = xasprintf("ares_init_options() failed: %s", ares_strerror(rc));
		free(r);
		return NULL;
	}
	if (server != NULL && server[0] != '\0') {
		rc = ares_set_servers_ports_csv(r->channel, server);
		if (rc != ARES_SUCCESS) {
			*error_r = xasprintf("DNS resolver '%s' is invalid: %s", server, ares_strerror(rc));
			ares_destroy(r->channel);
			free(r);
			return NULL;
		}
	}
	r->timer = evtimer_new(base, dns_timer_cb, r);
	return r;
}

void dns_resolver_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;
	if (r == NULL)
		return;
	*rp = NULL;
	r->freeing = true;
	ares_destroy(r->channel); /* calls pending callbacks with ARES_EDESTRUCTION */
	/* cached answers not delivered yet go the same way */
	while (r->deliveries != NULL) {
		struct cached_delivery *d = r->deliveries;
		r->deliveries = d->next;
		d->cb(d->arg, ARES_EDESTRUCTION, 0, NULL, 0);
		event_free(d->ev);
		free(d->abuf);
		free(d);
	}
	dns_cache_free(&r->cache);
	while (r->socks != NULL) {
		struct dns_sock *s = r->socks;
		r->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	event_free(r->timer);
	free(r);
}

static enum dns_status map_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENODATA:
		return DNS_NODATA;
	case ARES_ENOTFOUND:
		return DNS_NXDOMAIN;
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		return DNS_CANCELLED;
	default:
		return DNS_TEMPFAIL;
	}
}

/* ---- the answer cache ---- */

void dns_resolver_cache(struct dns_resolver *r, size_t slots)
{
	if (r->cache == NULL)
		r->cache = dns_cache_new(slots);
}

static void deliver_cached(evutil_socket_t fd, short what, void *arg)
{
	struct cached_delivery *d = arg;
	struct dns_resolver *r = d->r;
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		r->deliveries = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	d->cb(d->arg, d->status, 0, d->abuf, d->alen);
	event_free(d->ev);
	free(d->abuf);
	free(d);
}

/* A query whose answer goes into the cache on its way to the caller. */
struct fill {
	struct dns_resolver *r;
	ares_callback cb;
	void *arg;
	char *name;
	int type;
};

static void fill_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct fill *f = arg;
	/* answers, and the names and records that do not exist */
	if (!f->r->freeing && (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND))
		dns_cache_put(f->r->cache, f->name, f->type, status, abuf, alen);
	f->cb(f->arg, status, timeouts, abuf, alen);
	free(f->name);
	free(f);
}

/* ares_query() through the cache when r has one. */
static void query(struct dns_resolver *r, const char *name, int type, ares_callback cb, void *arg)
{
	if (r->cache == NULL) {
		ares_query(r->channel, name, ns_c_in, type, cb, arg);
		return;
	}
	struct cached_delivery *d = xcalloc(1, sizeof(*d));
	if (dns_cache_get(r->cache, name, type, &d->status, &d->abuf, &d->alen)) {
		d->r = r;
		d->cb = cb;
		d->arg = arg;
		d->ev = event_new(r->base, -1, 0, deliver_cached, d);
		d->next = r->deliveries;
		if (d->next != NULL)
			d->next->prev = d;
		r->deliveries = d;
		event_active(d->ev, 0, 0);
		return;
	}
	free(d);
	struct fill *f = xcalloc(1, sizeof(*f));
	*f = (struct fill){r, cb, arg, xstrdup(name), type};
	ares_query(r->channel, name, ns_c_in, type, fill_done, f);
}

int dns_mx_parse(const unsigned char *abuf, int alen, struct dns_mx **mx_r, size_t *count_r)
{
	struct ares_mx_reply *reply = NULL;
	*mx_r = NULL;
	*count_r = 0;
	int status = ares_parse_mx_reply(abuf, alen, &reply);
	if (status != ARES_SUCCESS)
		return status;
	size_t n = 0;
	for (struct ares_mx_reply *p = reply; p != NULL; p = p->next)
		n++;
	if (n == 0) {
		ares_free_data(reply);
		return ARES_ENODATA;
	}
	struct dns_mx *mx = xcalloc(n + 1, sizeof(*mx));
	n = 0;
	for (struct ares_mx_reply *p = reply; p != NULL; p = p->next, n++) {
		/* "." arrives as "" or "."; both mean the null MX. */
		mx[n].host = xstrdup(!strcmp(p->host, ".") ? "" : p->host);
		mx[n].pref = p->priority;
	}
	ares_free_data(reply);
	*mx_r = mx;
	*count_r = n;
	return ARES_SUCCESS;
}

void dns_mx_free(struct dns_mx *mx, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(mx[i].host);
	free(mx);
}

static void mx_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns_mx *mx = NULL;
	size_t n = 0;
	if (status == ARES_SUCCESS)
		status = dns_mx_parse(abuf, alen, &mx, &n);
	q->mx_cb(q->ctx, map_status(status), mx, n, status == ARES_SUCCESS ? NULL : ares_strerror(status));
	dns_mx_free(mx, n);
	free(q);
}

void dns_lookup_mx(struct dns_resolver *r, const char *domain, dns_mx_callback *cb, void *ctx)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->mx_cb = cb;
	q->ctx = ctx;
	ares_query(r->channel, domain, ns_c_in, ns_t_mx, mx_done, q);
	dns_rearm(r);
}

int dns_txt_parse(const unsigned char *abuf, int alen, struct dns_txt **txt_r, size_t *count_r)
{
	struct ares_txt_ext *reply = NULL;
	*txt_r = NULL;
	*count_r = 0;
	int status = ares_parse_txt_reply_ext(abuf, alen, &reply);
	if (status != ARES_SUCCESS)
		return status;
	size_t n = 0;
	for (struct ares_txt_ext *p = reply; p != NULL; p = p->next)
		n += p == reply || p->record_start;
	if (reply == NULL) {
		ares_free_data(reply);
		return ARES_ENODATA;
	}
	/* a record is its first string and the strings after it up to the
	   next record's start (RFC 6376 3.6.2.2: concatenated, no space) */
	struct dns_txt *txt = xcalloc(n + 1, sizeof(*txt));
	struct buf text = BUF_INIT;
	n = 0;
	for (struct ares_txt_ext *p = reply; p != NULL; p = p->next) {
		buf_append(&text, p->txt, p->length);
		if (p->next == NULL || p->next->record_start) {
			txt[n].len = text.len;
			txt[n].text = text.data != NULL ? buf_steal(&text) : xstrdup("");
			n++;
		}
	}
	ares_free_data(reply);
	/* the smallest TTL of the TXT records (c-ares' parser does not
	   report TTLs); 0 when the answer cannot be walked */
	uint32_t ttl = 0;
	if (!dns_answer_ttl(abuf, alen, ns_t_txt, &ttl))
		ttl = 0;
	for (size_t i = 0; i < n; i++)
		txt[i].ttl = ttl;
	*txt_r = txt;
	*count_r = n;
	return ARES_SUCCESS;
}

void dns_txt_free(struct dns_txt *txt, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(txt[i].text);
	free(txt);
}

static void txt_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	if (q->starting) {
		/* a bad name, no server: reported from the loop, so that the
		   handle outlives dns_lookup_txt() */
		q->early_status = status;
		return;
	}
	struct dns_txt *txt = NULL;
	size_t n = 0;
	if (!q->cancelled) {
		if (status == ARES_SUCCESS)
			status = dns_txt_parse(abuf, alen, &txt, &n);
		q->txt_cb(q->ctx, map_status(status), txt, n,
			  status == ARES_SUCCESS ? NULL : ares_strerror(status));
	}
	dns_txt_free(txt, n);
	free(q);
}

static void txt_early_done(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	txt_done(q, q->early_status, 0, NULL, 0);
}

struct dns_query *dns_lookup_txt(struct dns_resolver *r, const char *name, dns_txt_callback *cb, void *ctx)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->txt_cb = cb;
	q->ctx = ctx;
	q->starting = true;
	q->early_status = -1;
	query(r, name, ns_t_txt, txt_done, q);
	q->starting = false;
	if (q->early_status >= 0)
		event_base_once(r->base, -1, EV_TIMEOUT, txt_early_done, q, NULL);
	else
		dns_rearm(r);
	return q;
}

void dns_cancel(struct dns_query **qp)
{
	if (*qp != NULL)
		(*qp)->cancelled = true;
	*qp = NULL;
}

void dns_send_raw(struct dns_resolver *r, const unsigned char *query, int len, ares_callback cb, void *arg)
{
	ares_send(r->channel, query, len, cb, arg);
	dns_rearm(r);
}

struct event_base *dns_resolver_base(const struct dns_resolver *r)
{
	return r->base;
}

static void addr_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_query *q = arg;
	struct dns_addr *addrs = NULL;
	size_t n = 0;
	if (status == ARES_SUCCESS && res != NULL) {
		for (struct ares_addrinfo_node *p = res->nodes; p != NULL; p = p->ai_next)
			n++;
		addrs = xcalloc(n + 1, sizeof(*addrs));
		n = 0;
		for (struct ares_addrinfo_node *p = res->nodes; p != NULL; p = p->ai_next) {
			if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) ||
			    (size_t)p->ai_addrlen > sizeof(addrs[n].sa))
				continue;
			memcpy(&addrs[n].sa, p->ai_addr, (size_t)p->ai_addrlen);
			addrs[n].len = (socklen_t)p->ai_addrlen;
			if (p->ai_family == AF_INET)
				((struct sockaddr_in *)&addrs[n].sa)->sin_port = htons((uint16_t)q->port);
			else
				((struct sockaddr_in6 *)&addrs[n].sa)->sin6_port = htons((uint16_t)q->port);
			n++;
		}
		if (n == 0)
			status = ARES_ENODATA;
	}
	if (res != NULL)
		ares_freeaddrinfo(res);
	q->addr_cb(q->ctx, map_status(status), addrs, n,
		   status == ARES_SUCCESS ? NULL : ares_strerror(status));
	free(addrs);
	free(q);
}

static void literal_done(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	q->addr_cb(q->ctx, DNS_OK, &q->literal, 1, NULL);
	free(q);
}

static bool parse_literal(const char *host, int port, struct dns_addr *out)
{
	char tmp[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(host);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(tmp)) {
		memcpy(tmp, host + 1, len - 2);
		tmp[len - 2] = '\0';
		host = tmp;
	}
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
		return true;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
		return true;
	}
	return false;
}

void dns_lookup_addr(struct dns_resolver *r, const char *host, int port, dns_addr_callback *cb, void *ctx)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->addr_cb = cb;
	q->ctx = ctx;
	q->port = port;
	if (parse_literal(host, port, &q->literal)) {
		event_base_once(r->base, -1, EV_TIMEOUT, literal_done, q, NULL);
		return;
	}
	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	ares_getaddrinfo(r->channel, host, NULL, &hints, addr_done, q);
	dns_rearm(r);
}

/* ---- records as text ---- */

struct rr_query {
	enum dns_rr_type type;
	dns_rr_callback *cb;
	void *ctx;
};

static void rr_append(char ***rrs, size_t *n, char *text)
{
	*rrs = xreallocarray(*rrs, *n + 1, sizeof(char *));
	(*rrs)[(*n)++] = text;
}

int dns_rr_parse(enum dns_rr_type type, const unsigned char *abuf, int alen, char ***rrs_r, size_t *count_r)
{
	char **rrs = NULL;
	size_t n = 0;
	int status;
	*rrs_r = NULL;
	*count_r = 0;
	if (type == DNS_RR_A || type == DNS_RR_AAAA) {
		struct hostent *he = NULL;
		struct ares_addrttl ttl4[64];
		struct ares_addr6ttl ttl6[64];
		int count = 64;
		status = type == DNS_RR_A ? ares_parse_a_reply(abuf, alen, &he, ttl4, &count)
					  : ares_parse_aaaa_reply(abuf, alen, &he, ttl6, &count);
		if (he != NULL)
			ares_free_hostent(he);
		for (int i = 0; status == ARES_SUCCESS && i < count; i++) {
			char text[INET6_ADDRSTRLEN];
			inet_ntop(type == DNS_RR_A ? AF_INET : AF_INET6,
				  type == DNS_RR_A ? (const void *)&ttl4[i].ipaddr
						   : (const void *)&ttl6[i].ip6addr,
				  text, sizeof(text));
			rr_append(&rrs, &n, xstrdup(text));
		}
	} else if (type == DNS_RR_MX) {
		struct dns_mx *mx;
		status = dns_mx_parse(abuf, alen, &mx, &n);
		if (status == ARES_SUCCESS) {
			rrs = xcalloc(n, sizeof(char *));
			for (size_t i = 0; i < n; i++)
				rrs[i] = xstrdup(mx[i].host);
			dns_mx_free(mx, n);
		}
	} else if (type == DNS_RR_PTR) {
		struct hostent *he = NULL;
		status = ares_parse_ptr_reply(abuf, alen, NULL, 0, AF_INET, &he);
		for (char **a = he != NULL ? he->h_aliases : NULL; a != NULL && *a != NULL; a++)
			rr_append(&rrs, &n, xstrdup(*a));
		if (he != NULL && n == 0 && he->h_name != NULL)
			rr_append(&rrs, &n, xstrdup(he->h_name));
		if (he != NULL)
			ares_free_hostent(he);
	} else {
		struct dns_txt *txt;
		size_t count;
		status = dns_txt_parse(abuf, alen, &txt, &count);
		for (size_t i = 0; i < count; i++) {
			/* a NUL cannot travel in the C string: it becomes DEL, which
			   no record syntax here allows */
			for (size_t k = 0; k < txt[i].len; k++)
				if (txt[i].text[k] == '\0')
					txt[i].text[k] = '\x7f';
			rr_append(&rrs, &n, txt[i].text);
			txt[i].text = NULL;
		}
		dns_txt_free(txt, count);
	}
	if (status == ARES_SUCCESS && n == 0)
		status = ARES_ENODATA;
	if (status != ARES_SUCCESS) {
		dns_rr_free(rrs, n);
		return status;
	}
	*rrs_r = rrs;
	*count_r = n;
	return ARES_SUCCESS;
}

void dns_rr_free(char **rrs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(rrs[i]);
	free(rrs);
}

static void rr_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct rr_query *q = arg;
	char **rrs = NULL;
	size_t n = 0;
	if (status == ARES_SUCCESS)
		status = dns_rr_parse(q->type, abuf, alen, &rrs, &n);
	q->cb(q->ctx, map_status(status), rrs, n, status == ARES_SUCCESS ? NULL : ares_strerror(status));
	dns_rr_free(rrs, n);
	free(q);
}

void dns_lookup_rr(struct dns_resolver *r, enum dns_rr_type type, const char *name, dns_rr_callback *cb,
		   void *ctx)
{
	static const int types[] = {ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_txt, ns_t_ptr};
	struct rr_query *q = xcalloc(1, sizeof(*q));
	q->type = type;
	q->cb = cb;
	q->ctx = ctx;
	query(r, name, types[type], rr_done, q);
	dns_rearm(r);
}

/* ---- pure helpers ---- */

static int mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	bool xnull = x->host[0] == '\0', ynull = y->host[0] == '\0';
	if (xnull != ynull)
		return xnull ? 1 : -1;
	return x->pref < y->pref ? -1 : x->pref > y->pref ? 1 : 0;
}

void dns_mx_sort(struct dns_mx *mx, size_t count, size_t (*rnd)(void *ctx, size_t n), void *rnd_ctx)
{
	if (count < 2)
		return;
	qsort(mx, count, sizeof(*mx), mx_cmp);
	/* Fisher-Yates within each run of equal preference (RFC 5321 5.1:
	   "the sender-SMTP MUST randomize them to spread the load"). */
	for (size_t start = 0; start < count;) {
		size_t end = start + 1;
		while (end < count && mx_cmp(&mx[start], &mx[end]) == 0)
			end++;
		for (size_t i = end - start; i > 1; i--) {
			size_t j = rnd(rnd_ctx, i);
			if (j >= i)
				j = i - 1;
			struct dns_mx t = mx[start + i - 1];
			mx[start + i - 1] = mx[start + j];
			mx[start + j] = t;
		}
		start = end;
	}
}

bool dns_mx_is_null(const struct dns_mx *mx, size_t count)
{
	if (count == 0)
		return false;
	for (size_t i = 0; i < count; i++)
		if (mx[i].host[0] != '\0')
			return false;
	return true;
}

const char *dns_addr_string(const struct dns_addr *addr, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (addr->sa.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr->sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		port = ntohs(sin->sin_port);
		snprintf(out, size, "%s:%d", ip, port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addr->sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		port = ntohs(sin6->sin6_port);
		snprintf(out, size, "[%s]:%d", ip, port);
	}
	return out;
}
