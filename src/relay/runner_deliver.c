/* The queue runner's deliveries (see runner_deliver.h): routing (RFC 5321
   5.1: [routes], the relayhost, else MX records in preference order with
   A/AAAA fallback), the transport security of MX delivery (MTA-STS and
   DANE, relay/runner_tls.h), outbound SMTP sessions reused for every
   message waiting for the same domain, and local delivery for recipients
   in our own domains. */
#include "relay/runner_deliver.h"
#include "auth/userdb.h"
#include "delivery/delivery.h"
#include "dns/dns.h"
#include "lib/fsutil.h"
#include "lib/id.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xalloc.h"
#include "queue/spool.h"
#include "relay/runner_claim.h"
#include "relay/runner_tls.h"
#include "relay/transport.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#define CONN_IDLE_SECONDS 2
#define LOCAL_CHECK_SECONDS 30

struct qconn;

/* A destination: the jobs waiting for it and its connections. */
struct qdomain {
	char *name;
	struct qdomain *next;
	struct runner_deliver_job *head, *tail;
	size_t njobs;
	int nconn;
	struct qconn *idle; /* connections waiting for work */
	int local;          /* -1 unknown, 0 remote, 1 local */
	int64_t local_checked;
};

struct runner_deliver {
	struct event_base *base;
	const struct config *cfg;
	const struct runner_deliver_ops *ops;
	void *ctx;
	char *qdir;
	struct dns_resolver *dns;
	struct runner_tls *tls;
	struct userdb *userdb;
	char *userdb_path;
	struct qdomain *domains;
	int nconn;
	struct qconn *conns;
	int local_pending;
	bool stopping;
};

struct qconn {
	struct runner_deliver *rd;
	struct qdomain *d;
	struct qconn *next, *idle_next;
	struct smtp_client *client;
	struct runner_deliver_job *job;
	struct smtp_client_settings set;
	char **hosts;
	size_t nhosts, hi;
	struct dns_addr *addrs;
	size_t naddrs, ai;
	int port;
	char peer[320];
	char *user, *password;
	char *last_error;
	bool connected_once;
	bool resolving, dead, idle;
	struct event *idle_timer;
	struct transport_policy tp; /* MTA-STS and DANE (relay/transport.h) */
};

static void conn_next_host(struct qconn *c);
static void conn_next_job(struct qconn *c);
static void conn_try_addr(struct qconn *c);

/* ---- jobs ---- */

struct runner_deliver_job *runner_deliver_job_new(void *msg, const char *id, const char *domain, size_t n)
{
	struct runner_deliver_job *job = xcalloc(1, sizeof(*job));
	job->msg = msg;
	job->id = xstrdup(id);
	job->domain = xstrdup(domain);
	job->n = n;
	job->started_ns = metrics_now_ns();
	job->idx = xcalloc(n + 1, sizeof(*job->idx));
	job->rcpts = xcalloc(n + 1, sizeof(*job->rcpts));
	for (size_t k = 0; k < n; k++)
		job->rcpts[k].status = SMTP_CLIENT_TEMPFAIL;
	return job;
}

void runner_deliver_job_free(struct runner_deliver_job *job)
{
	job->cmsg.rcpts = job->rcpts;
	job->cmsg.nrcpts = job->n;
	smtp_client_msg_clear(&job->cmsg);
	if (job->forward != NULL)
		for (size_t k = 0; k < job->n; k++)
			userdb_strings_free(job->forward[k].addresses, job->forward[k].count);
	free(job->forward);
	free(job->rcpts);
	free(job->idx);
	free(job->remote_mta);
	free(job->domain);
	free(job->id);
	free(job);
}

static void job_fail(struct runner_deliver *rd, struct runner_deliver_job *job,
		     enum smtp_client_status status, const char *reply, const char *enhanced)
{
	for (size_t k = 0; k < job->n; k++) {
		struct smtp_client_rcpt *r = &job->rcpts[k];
		free(r->reply);
		r->reply = xstrdup(reply);
		r->status = status;
		snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
		r->remote = false;
	}
	rd->ops->job_done(rd->ctx, job);
}

static struct runner_deliver_job *domain_pop(struct qdomain *d)
{
	struct runner_deliver_job *job = d->head;
	if (job != NULL) {
		d->head = job->next;
		if (d->head == NULL)
			d->tail = NULL;
		job->next = NULL;
		d->njobs--;
	}
	return job;
}

/* Every job waiting for d meets the same fate (a dead destination). */
static void domain_fail_all(struct runner_deliver *rd, struct qdomain *d, enum smtp_client_status status,
			    const char *reply, const char *enhanced)
{
	struct runner_deliver_job *job;
	while ((job = domain_pop(d)) != NULL)
		job_fail(rd, job, status, reply, enhanced);
}

static struct qdomain *domain_get(struct runner_deliver *rd, const char *name)
{
	for (struct qdomain *d = rd->domains; d != NULL; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	struct qdomain *d = xcalloc(1, sizeof(*d));
	d->name = xstrdup(name);
	d->local = -1;
	d->next = rd->domains;
	rd->domains = d;
	return d;
}

static void domain_kick(struct runner_deliver *rd, struct qdomain *d);

/* A connection ended: another domain may use its place. */
static void kick_all(struct runner_deliver *rd)
{
	for (struct qdomain *d = rd->domains; d != NULL; d = d->next)
		if (d->njobs > 0)
			domain_kick(rd, d);
}

/* ---- connections ---- */

static void conn_unlink(struct qconn *c)
{
	struct qconn **pp = &c->rd->conns;
	while (*pp != NULL && *pp != c)
		pp = &(*pp)->next;
	if (*pp == c)
		*pp = c->next;
	struct qconn **ip = &c->d->idle;
	while (*ip != NULL && *ip != c)
		ip = &(*ip)->idle_next;
	if (*ip == c)
		*ip = c->idle_next;
}

static void conn_destroy(struct qconn *c)
{
	transport_policy_clear(&c->tp);
	for (size_t i = 0; i < c->nhosts; i++)
		free(c->hosts[i]);
	free(c->hosts);
	free(c->addrs);
	free(c->user);
	free(c->password);
	free(c->last_error);
	free(c);
}

/* Ends a connection: its job (if any) must have been handed back. */
static void conn_end(struct qconn *c)
{
	struct runner_deliver *rd = c->rd;
	conn_unlink(c);
	c->d->nconn--;
	rd->nconn--;
	if (c->idle_timer != NULL)
		event_free(c->idle_timer);
	c->idle_timer = NULL;
	smtp_client_quit(&c->client);
	if (c->resolving)
		c->dead = true; /* freed when the lookup reports */
	else
		conn_destroy(c);
	if (!rd->stopping)
		kick_all(rd);
}

static void conn_set_error(struct qconn *c, const char *reply)
{
	free(c->last_error);
	c->last_error = xstrdup(reply);
}

/* No host took the session: the job is deferred; when nothing could be
   reached at all, so is every job waiting for the domain. */
static void conn_exhausted(struct qconn *c)
{
	const char *reply = c->last_error != NULL ? c->last_error : "451 4.4.1 no usable host";
	if (c->job != NULL) {
		struct runner_deliver_job *job = c->job;
		c->job = NULL;
		job_fail(c->rd, job, SMTP_CLIENT_TEMPFAIL, reply, "4.4.1");
	}
	if (!c->connected_once)
		domain_fail_all(c->rd, c->d, SMTP_CLIENT_TEMPFAIL, reply, "4.4.1");
	conn_end(c);
}

static void conn_route_fail(struct qconn *c, enum smtp_client_status status, const char *reply,
			    const char *enhanced)
{
	if (c->job != NULL) {
		struct runner_deliver_job *job = c->job;
		c->job = NULL;
		job_fail(c->rd, job, status, reply, enhanced);
	}
	domain_fail_all(c->rd, c->d, status, reply, enhanced);
	conn_end(c);
}

/* A lookup of c's reported: false when c must not go on (it ended
   meanwhile, and is freed now, or the lookup was cancelled). */
static bool conn_lookup_done(struct qconn *c, bool cancelled)
{
	c->resolving = false;
	if (c->dead) {
		conn_destroy(c);
		return false;
	}
	return !cancelled;
}

static void conn_set_hosts(struct qconn *c, char **hosts, size_t n)
{
	for (size_t i = 0; i < c->nhosts; i++)
		free(c->hosts[i]);
	free(c->hosts);
	c->hosts = hosts;
	c->nhosts = n;
	c->hi = 0;
}

static size_t rnd(void *ctx, size_t n)
{
	return (size_t)random() % n;
}

static void mx_cb(void *ctx, enum dns_status status, struct dns_mx *mx, size_t n, const char *error)
{
	struct qconn *c = ctx;
	if (!conn_lookup_done(c, status == DNS_CANCELLED))
		return;
	char *reply = NULL;
	const char *domain = c->d->name;
	if (status == DNS_OK && dns_mx_is_null(mx, n)) {
		/* RFC 7505 section 3: fail at once with 556 5.1.10. */
		reply = xasprintf("556 5.1.10 domain %s accepts no mail (null MX)", domain);
		conn_route_fail(c, SMTP_CLIENT_PERMFAIL, reply, "5.1.10");
	} else if (status == DNS_OK) {
		dns_mx_sort(mx, n, rnd, NULL);
		/* RFC 5321 5.1: when we are one of the MX hosts, only those of
		   lower preference value may be used. */
		size_t keep = n;
		for (size_t i = 0; i < n; i++) {
			if (!strcasecmp(mx[i].host, c->rd->cfg->hostname)) {
				keep = i;
				while (keep > 0 && mx[keep - 1].pref == mx[i].pref)
					keep--;
				break;
			}
		}
		char **hosts = xcalloc(n + 1, sizeof(char *));
		size_t nh = 0;
		for (size_t i = 0; i < keep; i++)
			if (mx[i].host[0] != '\0')
				hosts[nh++] = xstrdup(mx[i].host);
		if (nh == 0) {
			free(hosts);
			reply = xasprintf("554 5.4.6 mail for %s loops back to myself", domain);
			conn_route_fail(c, SMTP_CLIENT_PERMFAIL, reply, "5.4.6");
		} else {
			conn_set_hosts(c, hosts, nh);
			conn_next_host(c);
		}
	} else if (status == DNS_NODATA) {
		/* RFC 5321 5.1: no MX, the domain itself is the implicit MX. */
		char **hosts = xcalloc(1, sizeof(char *));
		hosts[0] = xstrdup(domain);
		conn_set_hosts(c, hosts, 1);
		conn_next_host(c);
	} else if (status == DNS_NXDOMAIN) {
		reply = xasprintf("550 5.1.2 domain %s not found", domain);
		conn_route_fail(c, SMTP_CLIENT_PERMFAIL, reply, "5.1.2");
	} else {
		reply =
		    xasprintf("451 4.4.3 MX lookup for %s failed: %s", domain, error != NULL ? error : "?");
		conn_route_fail(c, SMTP_CLIENT_TEMPFAIL, reply, "4.4.3");
	}
	free(reply);
}

static bool addr_is_loopback(const struct dns_addr *a)
{
	if (a->sa.ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
}

/* True when a is our own SMTP listener (RFC 5321 5.1 loop avoidance). */
static bool addr_is_self(const struct config *cfg, const struct dns_addr *a)
{
	const struct listen_addr *l = &cfg->smtp_listen;
	if (!l->enabled || l->port <= 0)
		return false;
	int port = a->sa.ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)&a->sa)->sin_port)
					      : ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
	if (port != l->port)
		return false;
	const char *h = l->host != NULL ? l->host : "";
	if (h[0] == '\0' || !strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !strcmp(h, "*"))
		return addr_is_loopback(a);
	char ip[INET6_ADDRSTRLEN] = "";
	if (a->sa.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->sa)->sin_addr, ip, sizeof(ip));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->sa)->sin6_addr, ip, sizeof(ip));
	return !strcmp(ip, h);
}

static void addr_cb(void *ctx, enum dns_status status, const struct dns_addr *addrs, size_t n,
		    const char *error)
{
	struct qconn *c = ctx;
	if (!conn_lookup_done(c, status == DNS_CANCELLED))
		return;
	const char *host = c->hosts[c->hi];
	free(c->addrs);
	c->addrs = xcalloc(n + 1, sizeof(*c->addrs));
	c->naddrs = 0;
	c->ai = 0;
	c->tp.plain_retry = false;
	bool self = false;
	for (size_t i = 0; i < n; i++) {
		if (addr_is_self(c->rd->cfg, &addrs[i]))
			self = true;
		else
			c->addrs[c->naddrs++] = addrs[i];
	}
	if (status != DNS_OK) {
		char *reply = xasprintf("451 4.4.3 host %s not found: %s", host, error != NULL ? error : "?");
		conn_set_error(c, reply);
		free(reply);
	} else if (c->naddrs == 0 && self) {
		char *reply = xasprintf("554 5.4.6 mail for %s loops back to myself (%s)", c->d->name, host);
		conn_route_fail(c, SMTP_CLIENT_PERMFAIL, reply, "5.4.6");
		free(reply);
		return;
	}
	conn_try_addr(c);
}

/* The next host after one its policies exclude (reply says why). */
static void conn_skip_host(struct qconn *c, const char *reply)
{
	conn_set_error(c, reply);
	c->hi++;
	conn_next_host(c);
}

/* Resolves the current host once its policies allow it. */
static void conn_resolve_host(struct qconn *c)
{
	const char *host = c->hosts[c->hi];
	char *reply = transport_policy_refuse_host(&c->tp, c->d->name, host);
	if (reply != NULL) {
		conn_skip_host(c, reply);
		free(reply);
		return;
	}
	c->resolving = true;
	dns_lookup_addr(c->rd->dns, host, c->port, addr_cb, c);
}

static void dane_cb(void *ctx, bool cancelled, enum runner_tls_dane dane, const struct tls_tlsa *recs,
		    size_t n, const char *error)
{
	struct qconn *c = ctx;
	if (!conn_lookup_done(c, cancelled))
		return;
	if (dane == RUNNER_DANE_FAILED) {
		char *reply = xasprintf("451 4.7.5 DANE: %s: %s", c->hosts[c->hi], error);
		conn_skip_host(c, reply);
		free(reply);
		return;
	}
	transport_policy_set_dane(&c->tp, dane, recs, n);
	conn_resolve_host(c);
}

static void conn_next_host(struct qconn *c)
{
	if (c->hi >= c->nhosts) {
		conn_exhausted(c);
		return;
	}
	transport_policy_set_dane(&c->tp, RUNNER_DANE_NONE, NULL, 0);
	if (c->tp.mx && c->rd->cfg->relay_dane) {
		c->resolving = true;
		runner_tls_dane(c->rd->tls, c->hosts[c->hi], c->port, dane_cb, c);
		return;
	}
	conn_resolve_host(c);
}

static void conn_send(struct qconn *c);

static void conn_ready_cb(struct smtp_client *client, const struct smtp_client_result *res, void *ctx)
{
	struct qconn *c = ctx;
	if (res->status == SMTP_CLIENT_OK) {
		c->connected_once = true;
		transport_policy_log(&c->set, c->client, c->d->name, c->peer, c->hosts[c->hi]);
		conn_send(c);
		return;
	}
	log_info("queue connect domain=%s peer=%s error=%s", c->d->name, c->peer,
		 res->reply != NULL ? res->reply : "?");
	const char *reply = res->reply != NULL ? res->reply : "451 4.4.1 session failed";
	const char *policy = transport_policy_name(&c->tp, &c->set);
	char *text = policy != NULL ? xasprintf("%s: %s", policy, reply) : xstrdup(reply);
	conn_set_error(c, text);
	free(text);
	smtp_client_free(&c->client);
	/* outbound_tls = may, and no policy asks for TLS: a server whose
	   STARTTLS handshake fails gets one more session in plain text. */
	if (transport_policy_fallback(&c->tp, &c->set, res)) {
		log_info("queue tls-fallback domain=%s peer=%s", c->d->name, c->peer);
		conn_try_addr(c);
		return;
	}
	c->tp.plain_retry = false;
	c->ai++;
	conn_try_addr(c);
}

static void conn_try_addr(struct qconn *c)
{
	if (c->ai >= c->naddrs) {
		c->hi++;
		conn_next_host(c);
		return;
	}
	char addr[96];
	const char *host = c->hosts[c->hi];
	snprintf(c->peer, sizeof(c->peer), "%s[%s]", host,
		 dns_addr_string(&c->addrs[c->ai], addr, sizeof(addr)));
	c->set.peer_name = c->peer;
	c->set.tls_name = host;
	const char *ca = c->rd->cfg->relay_mta_sts_ca;
	transport_policy_settings(&c->tp, ca != NULL && ca[0] != '\0' ? ca : NULL, &c->set);
	c->client = smtp_client_connect(c->rd->base, (const struct sockaddr *)&c->addrs[c->ai].sa,
					c->addrs[c->ai].len, &c->set, conn_ready_cb, c);
}

/* Moves the recipients that got a 4xx into a new job (for the next MX). */
static struct runner_deliver_job *job_split_temp(struct runner_deliver_job *job)
{
	size_t ntemp = 0;
	for (size_t k = 0; k < job->n; k++)
		if (job->rcpts[k].status == SMTP_CLIENT_TEMPFAIL)
			ntemp++;
	if (ntemp == 0)
		return NULL;
	struct runner_deliver_job *sub = runner_deliver_job_new(job->msg, job->id, job->domain, ntemp);
	sub->cmsg = job->cmsg; /* the envelope: conn_send() sets the rest */
	size_t keep = 0, moved = 0;
	for (size_t k = 0; k < job->n; k++) {
		struct smtp_client_rcpt *r = &job->rcpts[k];
		if (r->status == SMTP_CLIENT_TEMPFAIL) {
			sub->idx[moved] = job->idx[k];
			sub->rcpts[moved].address = r->address;
			sub->rcpts[moved].orcpt = r->orcpt;
			sub->rcpts[moved].notify = r->notify;
			moved++;
			free(r->reply);
		} else {
			job->idx[keep] = job->idx[k];
			job->rcpts[keep++] = *r;
		}
	}
	job->n = keep;
	return sub;
}

static void conn_sent_cb(struct smtp_client *client, const struct smtp_client_result *res, void *ctx)
{
	struct qconn *c = ctx;
	struct runner_deliver *rd = c->rd;
	struct runner_deliver_job *job = c->job;
	c->job = NULL;
	free(job->remote_mta);
	job->remote_mta = xstrdup(c->hosts[c->hi]);
	struct runner_deliver_job *retry = NULL;
	if (c->hi + 1 < c->nhosts && rd->cfg->relayhost.host == NULL)
		retry = job_split_temp(job); /* "each MX tried in turn on 4xx" */
	if (job->n > 0)
		rd->ops->job_done(rd->ctx, job);
	else
		runner_deliver_job_free(job);
	if (retry != NULL) {
		c->job = retry;
		smtp_client_quit(&c->client);
		c->hi++;
		conn_next_host(c);
		return;
	}
	conn_next_job(c);
}

static void conn_send(struct qconn *c)
{
	struct runner_deliver *rd = c->rd;
	struct runner_deliver_job *job = c->job;
	size_t size = 0;
	const char *data = rd->ops->message_data(rd->ctx, job->msg, &size);
	if (data == NULL) {
		c->job = NULL;
		job_fail(rd, job, SMTP_CLIENT_TEMPFAIL, "451 4.3.0 cannot read the queued message", "4.3.0");
		conn_next_job(c);
		return;
	}
	job->cmsg.rcpts = job->rcpts;
	job->cmsg.nrcpts = job->n;
	job->cmsg.data = data;
	job->cmsg.size = size;
	job->cmsg.converted_8bit = false;
	job->cmsg.dsn_relayed = false;
	smtp_client_send(c->client, &job->cmsg, conn_sent_cb, c);
}

static void idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_end(arg);
}

static void conn_next_job(struct qconn *c)
{
	if (c->rd->stopping) {
		conn_end(c);
		return;
	}
	c->job = domain_pop(c->d);
	if (c->job == NULL) {
		if (!smtp_client_usable(c->client)) {
			conn_end(c);
			return;
		}
		/* Keep the session a moment for messages still arriving. */
		c->idle = true;
		c->idle_next = c->d->idle;
		c->d->idle = c;
		if (c->idle_timer == NULL)
			c->idle_timer = evtimer_new(c->rd->base, idle_timeout_cb, c);
		struct timeval tv = {CONN_IDLE_SECONDS, 0};
		evtimer_add(c->idle_timer, &tv);
		return;
	}
	if (smtp_client_usable(c->client)) {
		conn_send(c);
		return;
	}
	/* The session ended: start again from the first host. */
	smtp_client_free(&c->client);
	c->hi = 0;
	free(c->last_error);
	c->last_error = NULL;
	if (c->nhosts == 0) {
		conn_exhausted(c);
		return;
	}
	conn_next_host(c);
}

/* The domain's MTA-STS policy is known: now its MX hosts. */
static void sts_cb(void *ctx, bool cancelled, const struct mta_sts_policy *policy)
{
	struct qconn *c = ctx;
	if (!conn_lookup_done(c, cancelled))
		return;
	transport_policy_set_sts(&c->tp, policy);
	c->resolving = true;
	dns_lookup_mx(c->rd->dns, c->d->name, mx_cb, c);
}

static void conn_route(struct qconn *c)
{
	const struct config *cfg = c->rd->cfg;
	const char *domain = c->d->name;
	const struct route *route = config_route(cfg, domain);
	c->set.helo_name = cfg->hostname;
	c->set.tls = (enum tls_policy)cfg->outbound_tls;
	if (route != NULL || cfg->relayhost.host != NULL) {
		char **hosts = xcalloc(1, sizeof(char *));
		if (route != NULL) {
			hosts[0] = xstrdup(route->host);
			c->port = route->port;
		} else {
			hosts[0] = xstrdup(cfg->relayhost.host);
			c->port = cfg->relayhost.port;
			c->set.tls = (enum tls_policy)cfg->relay_tls;
			c->set.implicit_tls = cfg->relay_implicit_tls != 0;
			if (cfg->relay_user != NULL && cfg->relay_user[0] != '\0') {
				c->user = xstrdup(cfg->relay_user);
				c->password = xstrdup(cfg->relay_password != NULL ? cfg->relay_password : "");
				c->set.user = c->user;
				c->set.password = c->password;
			}
		}
		c->tp.base = c->set.tls;
		conn_set_hosts(c, hosts, 1);
		conn_next_host(c);
		return;
	}
	c->port = cfg->relay_mx_port > 0 ? cfg->relay_mx_port : 25;
	c->tp.base = c->set.tls;
	c->tp.mx = true;
	c->resolving = true;
	if (cfg->relay_mta_sts)
		runner_tls_sts(c->rd->tls, domain, sts_cb, c);
	else
		dns_lookup_mx(c->rd->dns, domain, mx_cb, c);
}

static void conn_new(struct runner_deliver *rd, struct qdomain *d)
{
	struct qconn *c = xcalloc(1, sizeof(*c));
	c->rd = rd;
	c->d = d;
	c->job = domain_pop(d);
	c->next = rd->conns;
	rd->conns = c;
	d->nconn++;
	rd->nconn++;
	conn_route(c);
}

static void domain_kick(struct runner_deliver *rd, struct qdomain *d)
{
	const struct config *cfg = rd->cfg;
	while (d->head != NULL && !rd->stopping) {
		if (d->idle != NULL) {
			struct qconn *c = d->idle;
			d->idle = c->idle_next;
			c->idle = false;
			evtimer_del(c->idle_timer);
			conn_next_job(c);
			continue;
		}
		if (d->nconn >= cfg->queue_max_per_domain || rd->nconn >= cfg->queue_max_connections)
			break;
		conn_new(rd, d);
	}
}

void runner_deliver_stop(struct runner_deliver *rd)
{
	rd->stopping = true;
	while (rd->conns != NULL) {
		struct qconn *c = rd->conns;
		smtp_client_free(&c->client);
		if (c->job != NULL) {
			/* Abandoned: the recipients stay pending on disk. */
			runner_deliver_job_free(c->job);
			c->job = NULL;
		}
		conn_end(c);
	}
	for (struct qdomain *d = rd->domains; d != NULL; d = d->next) {
		struct runner_deliver_job *job;
		while ((job = domain_pop(d)) != NULL)
			runner_deliver_job_free(job);
	}
}

/* ---- local delivery ---- */

static int domain_is_local(struct runner_deliver *rd, struct qdomain *d)
{
	int64_t now = (int64_t)time(NULL);
	if (d->local >= 0 && now - d->local_checked < LOCAL_CHECK_SECONDS)
		return d->local;
	if (d->name[0] == '\0') {
		d->local = 1; /* a bare local part such as "postmaster" */
		return 1;
	}
	if (rd->userdb == NULL) {
		char *error = NULL;
		struct stat st;
		if (rd->cfg->storage_backend != STORAGE_LOCAL || stat(rd->userdb_path, &st) == 0)
			rd->userdb = userdb_open_config(rd->cfg, rd->userdb_path, false, &error);
		free(error);
	}
	int exists = rd->userdb != NULL ? userdb_domain_exists(rd->userdb, d->name) : -1;
	/* A PostgreSQL user database that does not answer: taken for local,
	   unremembered, so that local_work() defers the recipients (451)
	   instead of sending a local domain's mail to its MX. */
	if (exists < 0 && rd->cfg->storage_backend != STORAGE_LOCAL)
		return 1;
	d->local = exists == 1;
	d->local_checked = now;
	return d->local;
}

struct local_task {
	struct runner_deliver *rd;
	struct runner_deliver_job *job;
	char *msg_path;
};

/* One recipient's local users: one delivery of the queued file, so that
   each recipient is delivered to all its users' stores or to none (a
   failure takes back its copies, and the retry makes no duplicate). */
static int local_deliver_rcpt(const struct config *cfg, const char *msg_path,
			      const struct userdb_targets *targets, char **error_r)
{
	if (targets->users_count == 0)
		return 0;
	struct delivery *d = delivery_begin_file(msg_path, error_r);
	if (d == NULL)
		return -1;
	struct store_config store_conf;
	store_config_init(&store_conf, cfg);
	for (size_t u = 0; u < targets->users_count; u++)
		delivery_add_user(d, &store_conf, targets->users[u]);
	int rc = delivery_commit(d, error_r);
	delivery_free(&d);
	return rc;
}

/* A shared spool's message is no file: it is copied, durably, into
   DATA_DIR/tmp for delivery_begin_file() (the copy is linked into the
   Maildirs, and removed by the caller).  The path, or NULL (logged). */
static char *local_message_copy(const struct config *cfg, const char *qdir, const char *id)
{
	char *error = NULL, *path = NULL, *map = NULL;
	size_t size = 0;
	int dirfd = -1;
	int rc = runner_map_message(qdir, id, &map, &size, &error);
	if (rc == 0 && (dirfd = fs_open_dir_beneath(cfg->data_dir, "tmp", true, 0750, (uid_t)-1, (gid_t)-1,
						    &error)) >= 0) {
		char name[ID_SIZE];
		id_new(name);
		char *dir = xasprintf("%s/tmp", cfg->data_dir);
		if (fs_write_file_durable_at(dirfd, dir, name, map != NULL ? map : "", size, 0640, (uid_t)-1,
					     (gid_t)-1, &error) == 0)
			path = xasprintf("%s/%s", dir, name);
		free(dir);
		close(dirfd);
	}
	if (path == NULL)
		log_error("queue local copy id=%s error=\"%s\"", id, rc > 0 ? "no such message" : error);
	if (map != NULL)
		munmap(map, size);
	free(error);
	return path;
}

static void local_work(void *arg)
{
	struct local_task *t = arg;
	struct runner_deliver_job *job = t->job;
	const struct config *cfg = t->rd->cfg;
	char *error = NULL;
	bool copy = t->msg_path == NULL;
	if (copy)
		t->msg_path = local_message_copy(cfg, t->rd->qdir, job->id);
	struct userdb *db = userdb_open_config(cfg, t->rd->userdb_path, false, &error);
	struct stat st;
	bool have_file = t->msg_path != NULL && stat(t->msg_path, &st) == 0;
	for (size_t k = 0; k < job->n; k++) {
		struct smtp_client_rcpt *cr = &job->rcpts[k];
		struct userdb_targets targets;
		memset(&targets, 0, sizeof(targets));
		int rc =
		    db != NULL && have_file ? userdb_resolve(db, cr->address, cfg->postmaster, &targets) : -1;
		cr->remote = false;
		if (rc == 0) {
			cr->status = SMTP_CLIENT_PERMFAIL;
			cr->reply = xstrdup("550 5.1.1 no such user here");
			continue;
		}
		if (rc != 1) {
			cr->status = SMTP_CLIENT_TEMPFAIL;
			cr->reply = xasprintf("451 4.3.0 local delivery failed: %s",
					      db == NULL   ? (error != NULL ? error : "no user database")
					      : !have_file ? "message file missing"
					      : rc == 2    ? "domain is not local"
							   : "user database error");
			continue;
		}
		char *derr = NULL;
		if (local_deliver_rcpt(cfg, t->msg_path, &targets, &derr) < 0) {
			cr->status = SMTP_CLIENT_TEMPFAIL;
			cr->reply = xasprintf("451 4.3.0 local delivery failed: %s", derr);
			free(derr);
		} else {
			cr->status = SMTP_CLIENT_OK;
			cr->reply = xstrdup("250 2.0.0 delivered to mailbox");
		}
		job->forward[k].addresses = targets.remote;
		job->forward[k].count = targets.remote_count;
		targets.remote = NULL;
		targets.remote_count = 0;
		userdb_targets_free(&targets);
	}
	free(error);
	if (db != NULL)
		userdb_close(&db);
	if (copy && t->msg_path != NULL)
		unlink(t->msg_path);
}

static void local_done(void *arg)
{
	struct local_task *t = arg;
	struct runner_deliver *rd = t->rd;
	rd->local_pending--;
	rd->ops->job_done(rd->ctx, t->job);
	free(t->msg_path);
	free(t);
}

static void local_job(struct runner_deliver *rd, struct runner_deliver_job *job)
{
	job->local = true;
	job->forward = xcalloc(job->n, sizeof(*job->forward));
	struct local_task *t = xcalloc(1, sizeof(*t));
	t->rd = rd;
	t->job = job;
	t->msg_path = queue_backend_shared() ? NULL : queue_path(rd->qdir, job->id, "msg");
	rd->local_pending++;
	jobs_submit(local_work, local_done, t);
}

/* ---- the unit ---- */

void runner_deliver_submit(struct runner_deliver *rd, struct runner_deliver_job *job)
{
	struct qdomain *d = domain_get(rd, job->domain);
	if (domain_is_local(rd, d)) {
		local_job(rd, job);
		return;
	}
	if (d->tail != NULL)
		d->tail->next = job;
	else
		d->head = job;
	d->tail = job;
	d->njobs++;
	domain_kick(rd, d);
}

int runner_deliver_pending(const struct runner_deliver *rd)
{
	return rd->local_pending;
}

struct runner_deliver *runner_deliver_new(struct event_base *base, const struct config *cfg,
					  const struct runner_deliver_ops *ops, void *ctx, char **error_r)
{
	struct dns_resolver *dns = dns_resolver_new(base, cfg->dns_resolver, error_r);
	if (dns == NULL)
		return NULL;
	struct runner_deliver *rd = xcalloc(1, sizeof(*rd));
	rd->base = base;
	rd->cfg = cfg;
	rd->ops = ops;
	rd->ctx = ctx;
	rd->dns = dns;
	rd->tls = runner_tls_new(base, cfg, dns, error_r);
	if (rd->tls == NULL) {
		dns_resolver_free(&rd->dns);
		free(rd);
		return NULL;
	}
	rd->qdir = queue_dir(cfg->data_dir);
	rd->userdb_path = xasprintf("%s/users.db", cfg->data_dir);
	return rd;
}

void runner_deliver_free(struct runner_deliver **rdp)
{
	struct runner_deliver *rd = *rdp;
	if (rd == NULL)
		return;
	*rdp = NULL;
	/* Lookups still running report DNS_CANCELLED to their (dead)
	   connections, which are freed then. */
	dns_resolver_free(&rd->dns);
	runner_tls_free(&rd->tls);
	while (rd->domains != NULL) {
		struct qdomain *d = rd->domains;
		rd->domains = d->next;
		free(d->name);
		free(d);
	}
	if (rd->userdb != NULL)
		userdb_close(&rd->userdb);
	free(rd->userdb_path);
	free(rd->qdir);
	free(rd);
}
