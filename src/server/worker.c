/* A worker process: one libevent loop serving every protocol. */
#include "server/server.h"
#include "imap/imap.h"
#include "pop3/pop3.h"
#include "smtpd/smtp_server.h"
#include "auth/auth_check.h"
#include "auth/userdb.h"
#include "lib/hash.h"
#include "lib/jobs.h"
#include "lib/heartbeat.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/xalloc.h"
#include "session/session_registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/listener.h>

/* The worker's service context, given to every session. */
static struct service_ctx svc;

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	const struct listener *lst = arg;
	struct conn_info conn;
	memset(&conn, 0, sizeof(conn));
	conn.fd = fd;
	conn.service = lst->service;
	conn_info_set_peer(&conn, sa, (socklen_t)salen);
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);
	if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0)
		conn_info_set_local(&conn, (struct sockaddr *)&local, ll);
	conn.implicit_tls = lst->service == SERVICE_SUBMISSIONS || lst->service == SERVICE_POP3S ||
			    lst->service == SERVICE_IMAPS;
	evutil_make_socket_closeonexec(fd);
	switch (lst->service) {
	case SERVICE_SMTP:
	case SERVICE_SUBMISSION:
	case SERVICE_SUBMISSIONS:
		smtp_session_start(&svc, &conn);
		break;
	case SERVICE_POP3:
	case SERVICE_POP3S:
		pop3_session_start(&svc, &conn);
		break;
	case SERVICE_IMAP:
	case SERVICE_IMAPS:
		imap_session_start(&svc, &conn);
		break;
	default:
		/* Protocols not built into this binary: refuse politely. */
		close(fd);
		break;
	}
}

static struct evconnlistener **evlisteners;
static struct event *drain_timeout;
static int nevlisteners;

static struct event *drain_check;

static void drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	if (svc.connections > 0)
		return;
	if (jobs_pending() == 0) {
		log_info("worker stop reason=drained");
		event_base_loopexit(svc.base, NULL);
		return;
	}
	/* jobs that no session waits for (syncs, cache fills, closing files)
	   tell nobody when they end: look again soon */
	struct timeval tv = {0, 20 * 1000};
	event_add(drain_check, &tv);
}

/* The last connection of a draining worker ended. */
static void drained(struct service_ctx *ctx)
{
	event_active(drain_check, 0, 0);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	log_warn("worker stop reason=drain-timeout connections=%d", svc.connections);
	event_base_loopexit(svc.base, NULL);
}

static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
	if (svc.draining)
		return;
	log_info("worker draining connections=%d", svc.connections);
	for (int i = 0; i < nevlisteners; i++)
		evconnlistener_disable(evlisteners[i]);
	drain_timeout = evtimer_new(svc.base, drain_timeout_cb, NULL);
	struct timeval tv = {30, 0};
	evtimer_add(drain_timeout, &tv);
	service_drain(&svc);
	event_active(drain_check, 0, 0);
}

static void sigusr2_cb(evutil_socket_t sig, short what, void *arg)
{
	log_reopen();
}

int worker_run(const struct config *cfg, const struct listener *listeners, int nlisteners,
	       struct auth_penalty *penalty, struct heartbeat *hb)
{
	struct service_ctx *w = &svc;
	w->cfg = cfg;
	w->auth_penalty = penalty;
	w->drained = drained;
	service_init(w);
	log_set_role("postoffice/worker");
	signal(SIGPIPE, SIG_IGN);
	w->base = event_base_new();
	if (w->base == NULL)
		log_fatal("event_base_new() failed");
	/* Two priorities: protocol work first, group commits after. */
	event_base_priority_init(w->base, 2);
	jobs_init(w->base, 8);

	char *error = NULL;
	w->tls = tls_server_ctx(cfg->tls_cert, cfg->tls_key, &error);
	if (w->tls == NULL) {
		log_error("tls unavailable error=\"%s\"", error);
		free(error);
		error = NULL;
	}
	w->tls_client = tls_client_ctx(false, &error);
	char *dbpath = xasprintf("%s/users.db", cfg->data_dir);
	w->userdb = userdb_open_config(cfg, dbpath, false, &error);
	free(dbpath);
	if (w->userdb == NULL)
		log_fatal("cannot open the user database: %s", error);
	/* [storage] backend = postgresql: limits counted over all nodes */
	free(error);
	error = NULL;
	if (auth_check_cluster_open(cfg, &error) < 0)
		log_fatal("cannot open the failed-login counters: %s", error);
	w->registry = session_registry_open_config(cfg, &error);
	if (w->registry == NULL && error != NULL)
		log_fatal("cannot open the table of live sessions: %s", error);
	session_registry_start(w->registry, w->base);

	evlisteners = xcalloc((size_t)nlisteners, sizeof(*evlisteners));
	/* Backlog 0: the supervisor already called listen() with its own
	   backlog; -1 would call listen() again and cut it to 128. */
	for (int i = 0; i < nlisteners; i++) {
		evlisteners[i] = evconnlistener_new(w->base, accept_cb, (void *)&listeners[i],
						    LEV_OPT_CLOSE_ON_EXEC, 0, listeners[i].fd);
		if (evlisteners[i] == NULL)
			log_fatal("evconnlistener_new() failed for %s", listeners[i].address);
		nevlisteners++;
	}
	drain_check = event_new(w->base, -1, 0, drain_check_cb, NULL);
	struct event *term = evsignal_new(w->base, SIGTERM, sigterm_cb, NULL);
	event_add(term, NULL);
	struct event *usr2 = evsignal_new(w->base, SIGUSR2, sigusr2_cb, NULL);
	event_add(usr2, NULL);
	/* Reloads are the supervisor's business: it starts new workers and
	   drains this one with SIGTERM. */
	signal(SIGHUP, SIG_IGN);
	struct event *beat = heartbeat_start(w->base, hb);
	log_info("worker start");
	event_base_dispatch(w->base);
	event_free(beat);

	for (int i = 0; i < nevlisteners; i++)
		evconnlistener_free(evlisteners[i]);
	free(evlisteners);
	jobs_deinit();
	session_registry_close(&w->registry);
	auth_check_cluster_close();
	event_free(term);
	event_free(usr2);
	if (drain_timeout != NULL)
		event_free(drain_timeout);
	event_free(drain_check);
	userdb_close(&w->userdb);
	service_deinit(w);
	if (w->tls != NULL)
		SSL_CTX_free(w->tls);
	if (w->tls_client != NULL)
		SSL_CTX_free(w->tls_client);
	event_base_free(w->base);
	return 0;
}
