/* The session skeleton and the service context (session.h). */
#include "session/session.h"
#include "dns/dns.h"
#include "lib/config.h"
#include "lib/hash.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/netlist.h"
#include "lib/proxy_reader.h"
#include "lib/xalloc.h"
#include "trust/dkim_keys.h"
#include "trust/dkim_lookup.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

static const char *const service_names[SERVICE_COUNT] = {
    "smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps",
};

const char *service_name(enum service s)
{
	return s < SERVICE_COUNT ? service_names[s] : "?";
}

/* ---- addresses ---- */

static void sockaddr_text(const struct sockaddr *sa, socklen_t len, struct sockaddr_storage *copy_r, char *ip,
			  size_t iplen, int *port_r)
{
	memset(copy_r, 0, sizeof(*copy_r));
	memcpy(copy_r, sa, len < sizeof(*copy_r) ? len : sizeof(*copy_r));
	ip[0] = '\0';
	*port_r = 0;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, (socklen_t)iplen);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)iplen);
		*port_r = ntohs(s6->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, (socklen_t)iplen);
		*port_r = ntohs(s4->sin_port);
	}
}

void conn_info_set_peer(struct conn_info *conn, const struct sockaddr *sa, socklen_t len)
{
	sockaddr_text(sa, len, &conn->peer, conn->ip, sizeof(conn->ip), &conn->port);
	conn->peer_len = len;
	conn->loopback = !strncmp(conn->ip, "127.", 4) || !strcmp(conn->ip, "::1");
}

void conn_info_set_local(struct conn_info *conn, const struct sockaddr *sa, socklen_t len)
{
	sockaddr_text(sa, len, &conn->local, conn->local_ip, sizeof(conn->local_ip), &conn->local_port);
}

/* ---- connection accounting ---- */

/* Connections per client IP: a small chained hash table.  Clients choose
   their addresses (an IPv6 /64 holds plenty), so the hash is keyed: none
   can crowd its connections into one chain. */
struct ip_count {
	struct ip_count *next;
	int count;
	char ip[INET6_ADDRSTRLEN];
};
#define IP_BUCKETS 1024

void service_init(struct service_ctx *ctx)
{
	ctx->ip_table = xcalloc(IP_BUCKETS, sizeof(*ctx->ip_table));
}

void service_deinit(struct service_ctx *ctx)
{
	for (size_t i = 0; ctx->ip_table != NULL && i < IP_BUCKETS; i++)
		while (ctx->ip_table[i] != NULL) {
			struct ip_count *dead = ctx->ip_table[i];
			ctx->ip_table[i] = dead->next;
			free(dead);
		}
	free(ctx->ip_table);
	ctx->ip_table = NULL;
	dkim_keyring_unref(&ctx->dkim);
	dns_resolver_free(&ctx->resolver); /* first: its lookups may fill the cache */
	dkim_key_cache_free(&ctx->dkim_key_cache);
}

struct dkim_key_cache *service_dkim_key_cache(struct service_ctx *ctx)
{
	if (ctx->dkim_key_cache == NULL)
		ctx->dkim_key_cache = dkim_key_cache_new();
	return ctx->dkim_key_cache;
}

struct dns_resolver *service_resolver(struct service_ctx *ctx)
{
	if (ctx->resolver != NULL || ctx->resolver_failed)
		return ctx->resolver;
	char *error = NULL;
	ctx->resolver = dns_resolver_new(ctx->base, ctx->cfg->dns_resolver, &error);
	/* the inbound checks ask for the same few records again and again */
	if (ctx->resolver != NULL)
		dns_resolver_cache(ctx->resolver, SERVICE_DNS_CACHE_SLOTS);
	if (ctx->resolver == NULL) {
		log_error("dns resolver error=\"%s\"", error);
		free(error);
		ctx->resolver_failed = true;
	}
	return ctx->resolver;
}

struct dkim_keyring *service_dkim_keys(struct service_ctx *ctx)
{
	time_t now = time(NULL);
	if (ctx->dkim_checked == now)
		return ctx->dkim != NULL && ctx->dkim->count > 0 ? ctx->dkim : NULL;
	ctx->dkim_checked = now;
	char *dir = xasprintf("%s/" DKIM_KEY_DIR, ctx->cfg->data_dir);
	if (ctx->dkim == NULL || dkim_keyring_changed(ctx->dkim, dir)) {
		char *error = NULL;
		dkim_keyring_unref(&ctx->dkim);
		ctx->dkim = dkim_keyring_load(dir, &error);
		if (error != NULL)
			log_error("dkim keys error=\"%s\"", error);
		else if (ctx->dkim->count > 0)
			log_info("dkim keys loaded count=%zu", ctx->dkim->count);
		free(error);
	}
	free(dir);
	return ctx->dkim->count > 0 ? ctx->dkim : NULL;
}

static struct ip_count **ip_slot(struct service_ctx *ctx, const char *ip)
{
	struct ip_count **slot = &ctx->ip_table[hash_str(ip) % IP_BUCKETS];
	while (*slot != NULL && strcmp((*slot)->ip, ip) != 0)
		slot = &(*slot)->next;
	return slot;
}

bool service_conn_acquire(struct service_ctx *ctx, const struct conn_info *conn)
{
	if (ctx->connections >= ctx->cfg->max_connections)
		return false;
	struct ip_count **slot = ip_slot(ctx, conn->ip);
	if (*slot != NULL && (*slot)->count >= ctx->cfg->max_connections_per_ip)
		return false;
	if (*slot == NULL) {
		*slot = xcalloc(1, sizeof(**slot));
		snprintf((*slot)->ip, sizeof((*slot)->ip), "%s", conn->ip);
	}
	(*slot)->count++;
	ctx->connections++;
	return true;
}

void service_conn_release(struct service_ctx *ctx, const struct conn_info *conn)
{
	struct ip_count **slot = ip_slot(ctx, conn->ip);
	if (*slot == NULL)
		log_panic("release of an unknown connection from %s", conn->ip);
	if (--(*slot)->count == 0) {
		struct ip_count *dead = *slot;
		*slot = dead->next;
		free(dead);
	}
	ctx->connections--;
	if (ctx->draining && ctx->connections == 0 && ctx->drained != NULL)
		ctx->drained(ctx);
}

bool service_plaintext_auth_allowed(const struct service_ctx *ctx, const struct conn_info *conn,
				    bool tls_active)
{
	if (tls_active)
		return true;
	switch (ctx->cfg->plaintext_auth) {
	case PLAINTEXT_AUTH_YES:
		return true;
	case PLAINTEXT_AUTH_LOOPBACK:
		return conn->loopback;
	default:
		return false;
	}
}

static void session_free(struct session *s);

/* ---- the session list ---- */

static void session_link(struct session *s)
{
	struct service_ctx *ctx = s->ctx;
	s->next = ctx->sessions;
	if (ctx->sessions != NULL)
		ctx->sessions->pprev = &s->next;
	s->pprev = &ctx->sessions;
	ctx->sessions = s;
}

static void session_unlink(struct session *s)
{
	if (s->pprev == NULL)
		return;
	*s->pprev = s->next;
	if (s->next != NULL)
		s->next->pprev = s->pprev;
	s->next = NULL;
	s->pprev = NULL;
}

void service_drain(struct service_ctx *ctx)
{
	ctx->draining = true;
	/* A drain() may end its session: take the next one first. */
	for (struct session *s = ctx->sessions, *next; s != NULL; s = next) {
		next = s->next;
		if (s->proxy != NULL) {
			/* not begun: nothing to finish, nobody greeted */
			log_info("%s proxy-reject session=%s ip=%s reason=draining", s->ops->protocol, s->id,
				 s->conn.ip);
			session_free(s);
			continue;
		}
		s->ops->drain(s);
	}
}

/* ---- the skeleton ---- */

static void session_free(struct session *s)
{
	session_unlink(s);
	proxy_reader_free(&s->proxy);
	if (s->acquired) {
		service_conn_release(s->ctx, &s->conn);
		metrics_session_open(s->conn.service, -1);
	}
	s->ops->free(s);
	if (s->delay != NULL)
		event_free(s->delay);
	io_free(&s->io);
	free(s);
}

void session_end(struct session *s, const char *reason)
{
	/* The connection ended (or timed out) before the handshake did. */
	if (s->tls_handshake) {
		s->tls_handshake = false;
		metrics_tls(s->conn.service, false);
	}
	s->ops->ended(s, reason);
	if (s->busy) {
		s->dead = true;
		io_pause_input(s->io);
		return;
	}
	session_free(s);
}

bool session_reap(struct session *s)
{
	if (!s->dead)
		return false;
	session_free(s);
	return true;
}

void session_busy(struct session *s)
{
	s->busy = true;
	io_pause_input(s->io);
}

bool session_resume(struct session *s)
{
	s->busy = false;
	if (session_reap(s))
		return false;
	io_resume_input(s->io);
	io_kick_input(s->io);
	return true;
}

void session_close(struct session *s)
{
	if (s->closing)
		return;
	s->closing = true;
	io_close_after_flush(s->io);
}

bool session_error(struct session *s)
{
	if (++s->errors < s->ctx->cfg->max_errors)
		return false;
	log_info("%s disconnect session=%s reason=too-many-errors errors=%d", s->ops->protocol, s->id,
		 s->errors);
	s->ops->bye(s, SESSION_BYE_TOO_MANY_ERRORS);
	session_close(s);
	return true;
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	s->delay_done(s);
}

void session_delay(struct session *s, int delay_ms, void (*done)(struct session *s))
{
	session_busy(s);
	s->delay_done = done;
	if (s->delay == NULL)
		s->delay = evtimer_new(s->ctx->base, delay_cb, s);
	struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
	evtimer_add(s->delay, &tv);
}

int session_start_tls(struct session *s)
{
	if (s->ctx->tls == NULL)
		return -1;
	int rc = io_start_tls_server(s->io, s->ctx->tls);
	s->tls_handshake = rc >= 0;
	return rc;
}

static void tls_done(struct session *s)
{
	s->tls = true;
	s->tls_handshake = false;
	metrics_tls(s->conn.service, true);
	log_info("%s tls session=%s version=%s cipher=%s", s->ops->protocol, s->id, io_tls_version(s->io),
		 io_tls_cipher(s->io));
	if (s->ops->tls_ready != NULL)
		s->ops->tls_ready(s);
	if (s->conn.implicit_tls)
		s->ops->greet(s);
	io_kick_input(s->io);
}

static void session_io(struct io *io, enum io_event ev, void *arg)
{
	struct session *s = arg;
	switch (ev) {
	case IO_EVENT_INPUT:
		s->ops->input(s);
		break;
	case IO_EVENT_DRAINED:
		if (s->ops->drained != NULL)
			s->ops->drained(s);
		break;
	case IO_EVENT_TLS_DONE:
		tls_done(s);
		break;
	case IO_EVENT_TIMEOUT:
		/* A session waiting on a job is not idle. */
		if (s->busy)
			break;
		if (s->closing || (s->ops->timeout_silent != NULL && s->ops->timeout_silent(s))) {
			session_end(s, "timeout");
			break;
		}
		log_info("%s timeout session=%s", s->ops->protocol, s->id);
		s->ops->bye(s, SESSION_BYE_TIMEOUT);
		session_close(s);
		break;
	case IO_EVENT_CLOSED:
		session_end(s, "quit");
		break;
	case IO_EVENT_EOF:
	case IO_EVENT_ERROR: {
		const char *reason = s->ops->eof_reason != NULL ? s->ops->eof_reason(s) : NULL;
		if (ev == IO_EVENT_ERROR) {
			char why[200];
			log_info("%s io-error session=%s error=\"%s\"", s->ops->protocol, s->id,
				 log_printable(why, sizeof(why), io_error(io), strlen(io_error(io))));
			if (reason == NULL)
				reason = s->tls || !s->conn.implicit_tls ? "io-error" : "tls-failed";
		}
		session_end(s, reason != NULL ? reason : "eof");
		break;
	}
	case IO_EVENT_CONNECTED:
		break;
	}
}

/* The session proper, once the peer is known. */
static void session_begin(struct session *s)
{
	const struct session_ops *ops = s->ops;
	struct service_ctx *ctx = s->ctx;
	const struct conn_info *conn = &s->conn;
	if (conn->proxy_ip[0] != '\0')
		log_info("%s connect session=%s service=%s ip=%s port=%d proxy=%s", ops->protocol, s->id,
			 service_name(conn->service), conn->ip, conn->port, conn->proxy_ip);
	else
		log_info("%s connect session=%s service=%s ip=%s port=%d", ops->protocol, s->id,
			 service_name(conn->service), conn->ip, conn->port);
	metrics_connection(conn->service);
	if (ctx->draining) {
		ops->bye(s, SESSION_BYE_DRAINING);
		session_close(s);
		return;
	}
	if (!service_conn_acquire(ctx, conn)) {
		log_info("%s reject session=%s reason=too-many-connections ip=%s", ops->protocol, s->id,
			 conn->ip);
		metrics_reject(METRICS_REJECT_CONNECTIONS, conn->ip, service_name(conn->service));
		ops->bye(s, SESSION_BYE_TOO_MANY);
		session_close(s);
		return;
	}
	s->acquired = true;
	metrics_session_open(conn->service, 1);
	if (conn->implicit_tls) {
		if (session_start_tls(s) < 0) {
			log_error("%s tls unavailable session=%s", ops->protocol, s->id);
			session_end(s, "tls-unavailable");
		}
		return;
	}
	ops->greet(s);
}

/* ---- the PROXY protocol (lib/proxy_proto.h) ---- */

static bool service_proxy_protocol(const struct config *cfg, enum service service)
{
	const int on[SERVICE_COUNT] = {
	    [SERVICE_SMTP] = cfg->smtp_proxy_protocol,
	    [SERVICE_SUBMISSION] = cfg->submission_proxy_protocol,
	    [SERVICE_SUBMISSIONS] = cfg->submissions_proxy_protocol,
	    [SERVICE_POP3] = cfg->pop3_proxy_protocol,
	    [SERVICE_POP3S] = cfg->pop3s_proxy_protocol,
	    [SERVICE_IMAP] = cfg->imap_proxy_protocol,
	    [SERVICE_IMAPS] = cfg->imaps_proxy_protocol,
	};
	return service < SERVICE_COUNT && on[service];
}

/* A connection that never became a session: logged, closed unanswered. */
static void session_proxy_reject(struct session *s, const char *reason, const char *error)
{
	char why[200];
	if (error != NULL)
		log_info("%s proxy-reject session=%s ip=%s port=%d reason=%s error=\"%s\"", s->ops->protocol,
			 s->id, s->conn.ip, s->conn.port, reason,
			 log_printable(why, sizeof(why), error, strlen(error)));
	else
		log_info("%s proxy-reject session=%s ip=%s port=%d reason=%s", s->ops->protocol, s->id,
			 s->conn.ip, s->conn.port, reason);
	session_free(s);
}

static void session_proxy_done(const struct proxy_proto_header *hdr, const char *error, void *arg)
{
	struct session *s = arg;
	if (hdr == NULL) {
		session_proxy_reject(s, "header", error); /* error lives in the reader */
		return;
	}
	proxy_reader_free(&s->proxy);
	/* LOCAL (the balancer's health check) and v1 UNKNOWN keep the
	   connection's own addresses. */
	if (hdr->proxied) {
		snprintf(s->conn.proxy_ip, sizeof(s->conn.proxy_ip), "%s", s->conn.ip);
		conn_info_set_peer(&s->conn, (const struct sockaddr *)&hdr->src, hdr->src_len);
		conn_info_set_local(&s->conn, (const struct sockaddr *)&hdr->dst, hdr->dst_len);
	}
	io_resume_input(s->io);
	session_begin(s);
}

/* The header comes first, before any greeting and before the TLS
   handshake of implicit TLS; the io does not read until it is taken. */
static void session_proxy_start(struct session *s)
{
	const struct config *cfg = s->ctx->cfg;
	if (!netlist_match(&cfg->proxy_trusted, (const struct sockaddr *)&s->conn.peer)) {
		session_proxy_reject(s, "untrusted", NULL);
		return;
	}
	io_pause_input(s->io);
	s->proxy = proxy_reader_new(s->ctx->base, s->conn.fd, cfg->proxy_timeout, session_proxy_done, s);
}

void session_start(struct session *s, const struct session_ops *ops, struct service_ctx *ctx,
		   const struct conn_info *conn)
{
	s->ops = ops;
	s->ctx = ctx;
	s->conn = *conn;
	session_link(s);
	id_new(s->id);
	s->io = io_new(ctx->base, conn->fd, session_io, s);
	io_set_timeout(s->io, ops->timeout(ctx->cfg));
	if (service_proxy_protocol(ctx->cfg, conn->service))
		session_proxy_start(s);
	else
		session_begin(s);
}
