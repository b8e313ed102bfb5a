/* The postgresql backend: watching mailboxes (IMAP IDLE) and the POP3
   maildrop lock.

   Watching works across nodes with LISTEN/NOTIFY: every transaction that
   changes a mailbox is followed, once committed, by
   pg_notify('po_mbox_ID') (store_pg_notify()), which PostgreSQL delivers
   to every connection LISTENing on that channel, on any node.  A process keeps one listening connection per
   database, owned by a thread of its own (made on the first watch), which LISTENs on the channels of the
   mailboxes watched.  A watch is one end of a socket pair: the thread writes a byte to the other end when a
   notification for its mailbox comes (and to every watch after it connected again, since notifications sent
   meanwhile are lost), so the fd is readable, and store_watch_drain() empties it as it empties an inotify fd.
   The thread notices a watch closed by its owner (POLLHUP on its end), drops it, stops LISTENing when nobody
   watches a channel any more, and closes its connection when nothing is watched.

   The maildrop lock is a session advisory lock (pg_try_advisory_lock) on a
   connection of its own: exclusive across every node, dropped with the
   connection when the process dies. */
#include "store/store_pg_private.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How long store_watch_open() waits for the thread to LISTEN. */
#define WATCH_LISTEN_TIMEOUT_MS 2000
/* Between connection attempts while PostgreSQL is away. */
#define WATCH_RETRY_MS 1000
#define WATCH_CHANNEL_PREFIX "po_mbox_"

struct watcher {
	int fd; /* the thread's end */
	int64_t mailbox;
	struct watcher *next;
};

struct listener {
	char *conninfo;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct watcher *watchers;   /* under lock */
	uint64_t requested, served; /* registrations made, and LISTENed for */
	bool down;                  /* the last connection attempt failed */
	int wake[2];                /* pipe: a new watch, for the thread */
	struct listener *next;
};

static pthread_mutex_t listeners_lock = PTHREAD_MUTEX_INITIALIZER;
static struct listener *listeners;
static pid_t listeners_pid;

/* ---- the thread ---- */

struct listen_state {
	struct listener *l;
	PGconn *pg;
	int64_t *listened; /* channels LISTENed on pg */
	size_t nlistened;
	bool lost; /* the connection failed: notifications may have been missed */
};

static void watcher_signal(int fd)
{
	/* EAGAIN: readable already */
	(void)send(fd, "!", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void signal_all(struct listener *l)
{
	pthread_mutex_lock(&l->lock);
	for (struct watcher *w = l->watchers; w != NULL; w = w->next)
		watcher_signal(w->fd);
	pthread_mutex_unlock(&l->lock);
}

static bool pg_command(PGconn *pg, const char *sql)
{
	PGresult *res = PQexec(pg, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	return ok;
}

/* LISTENs on the channels of the watchers and UNLISTENs the others;
   false when the connection failed. */
static bool channels_update(struct listen_state *st)
{
	struct listener *l = st->l;
	pthread_mutex_lock(&l->lock);
	size_t n = 0;
	for (struct watcher *w = l->watchers; w != NULL; w = w->next)
		n++;
	int64_t *want = xcalloc(n + 1, sizeof(*want));
	size_t nwant = 0;
	for (struct watcher *w = l->watchers; w != NULL; w = w->next) {
		bool dup = false;
		for (size_t i = 0; i < nwant && !dup; i++)
			dup = want[i] == w->mailbox;
		if (!dup)
			want[nwant++] = w->mailbox;
	}
	uint64_t requested = l->requested;
	pthread_mutex_unlock(&l->lock);
	bool ok = true;
	char sql[64];
	for (size_t i = 0; i < nwant && ok; i++) {
		bool have = false;
		for (size_t k = 0; k < st->nlistened && !have; k++)
			have = st->listened[k] == want[i];
		if (have)
			continue;
		snprintf(sql, sizeof(sql), "LISTEN " WATCH_CHANNEL_PREFIX "%lld", (long long)want[i]);
		ok = pg_command(st->pg, sql);
	}
	for (size_t k = 0; k < st->nlistened && ok; k++) {
		bool keep = false;
		for (size_t i = 0; i < nwant && !keep; i++)
			keep = st->listened[k] == want[i];
		if (keep)
			continue;
		snprintf(sql, sizeof(sql), "UNLISTEN " WATCH_CHANNEL_PREFIX "%lld",
			 (long long)st->listened[k]);
		ok = pg_command(st->pg, sql);
	}
	if (ok) {
		free(st->listened);
		st->listened = want;
		st->nlistened = nwant;
		pthread_mutex_lock(&l->lock);
		if (l->served < requested)
			l->served = requested;
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->lock);
	} else {
		free(want);
	}
	return ok;
}

static void listen_disconnect(struct listen_state *st)
{
	if (st->pg != NULL)
		PQfinish(st->pg);
	st->pg = NULL;
	free(st->listened);
	st->listened = NULL;
	st->nlistened = 0;
}

static bool listen_connect(struct listen_state *st)
{
	const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *const values[] = {"5", "postoffice-watch", st->l->conninfo, NULL};
	st->pg = PQconnectdbParams(keys, values, 1);
	if (st->pg == NULL || PQstatus(st->pg) != CONNECTION_OK) {
		listen_disconnect(st);
		return false;
	}
	return true;
}

/* A notification on pg: wakes the watchers of its mailbox. */
static void notified(struct listener *l, const char *channel)
{
	size_t plen = strlen(WATCH_CHANNEL_PREFIX);
	if (strncmp(channel, WATCH_CHANNEL_PREFIX, plen) != 0)
		return;
	int64_t mailbox = strtoll(channel + plen, NULL, 10);
	pthread_mutex_lock(&l->lock);
	for (struct watcher *w = l->watchers; w != NULL; w = w->next)
		if (w->mailbox == mailbox)
			watcher_signal(w->fd);
	pthread_mutex_unlock(&l->lock);
}

/* Drops the watchers whose owner closed its end. */
static void watchers_reap(struct listener *l, const struct pollfd *pfds, size_t n)
{
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < n; i++) {
		if ((pfds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) == 0)
			continue;
		for (struct watcher **wp = &l->watchers; *wp != NULL; wp = &(*wp)->next) {
			if ((*wp)->fd == pfds[i].fd) {
				struct watcher *w = *wp;
				*wp = w->next;
				close(w->fd);
				free(w);
				break;
			}
		}
	}
	pthread_mutex_unlock(&l->lock);
}

static void *listen_thread(void *arg)
{
	struct listen_state st = {.l = arg};
	struct listener *l = st.l;
	for (;;) {
		pthread_mutex_lock(&l->lock);
		size_t n = 0;
		for (struct watcher *w = l->watchers; w != NULL; w = w->next)
			n++;
		struct pollfd *pfds = xcalloc(n + 2, sizeof(*pfds));
		size_t i = 0;
		for (struct watcher *w = l->watchers; w != NULL; w = w->next)
			pfds[i++] = (struct pollfd){.fd = w->fd, .events = 0};
		pthread_mutex_unlock(&l->lock);
		int timeout = -1;
		if (n == 0) {
			listen_disconnect(&st);
		} else if (st.pg == NULL) {
			bool up = listen_connect(&st);
			pthread_mutex_lock(&l->lock);
			l->down = !up;
			pthread_mutex_unlock(&l->lock);
			/* what changed while the connection was lost */
			if (up && st.lost)
				signal_all(l);
			st.lost = !up;
			if (!up)
				timeout = WATCH_RETRY_MS;
		}
		if (st.pg != NULL && !channels_update(&st)) {
			listen_disconnect(&st);
			st.lost = true;
			timeout = WATCH_RETRY_MS;
		}
		size_t npfds = n;
		pfds[npfds++] = (struct pollfd){.fd = l->wake[0], .events = POLLIN};
		if (st.pg != NULL)
			pfds[npfds++] = (struct pollfd){.fd = PQsocket(st.pg), .events = POLLIN};
		int rc = poll(pfds, npfds, timeout);
		if (rc > 0) {
			watchers_reap(l, pfds, n);
			if (pfds[n].revents & POLLIN) {
				char buf[64];
				while (read(l->wake[0], buf, sizeof(buf)) > 0)
					;
			}
			if (st.pg != NULL && (pfds[n + 1].revents & (POLLIN | POLLHUP | POLLERR))) {
				if (!PQconsumeInput(st.pg)) {
					log_warn("store postgresql watch connection lost: %s",
						 PQerrorMessage(st.pg));
					listen_disconnect(&st);
					st.lost = true;
				} else {
					PGnotify *nt;
					while ((nt = PQnotifies(st.pg)) != NULL) {
						notified(l, nt->relname);
						PQfreemem(nt);
					}
				}
			}
		}
		free(pfds);
	}
	return NULL;
}

/* The listener of conninfo, its thread started when new. */
static struct listener *listener_get(const char *conninfo, char **error_r)
{
	pthread_mutex_lock(&listeners_lock);
	if (listeners_pid != getpid()) {
		/* a child: the parent's threads are not here */
		listeners = NULL;
		listeners_pid = getpid();
	}
	struct listener *l;
	for (l = listeners; l != NULL; l = l->next)
		if (strcmp(l->conninfo, conninfo) == 0)
			break;
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->conninfo = xstrdup(conninfo);
		pthread_mutex_init(&l->lock, NULL);
		pthread_cond_init(&l->cond, NULL);
		pthread_t tid;
		int err = 0;
		if (pipe2(l->wake, O_NONBLOCK | O_CLOEXEC) < 0)
			err = errno;
		else
			err = pthread_create(&tid, NULL, listen_thread, l);
		if (err != 0) {
			*error_r = xasprintf("starting the watch thread failed: %s", strerror(err));
			pthread_mutex_unlock(&listeners_lock);
			return NULL; /* l leaks: this only fails when the process is in trouble */
		}
		pthread_detach(tid);
		l->next = listeners;
		listeners = l;
	}
	pthread_mutex_unlock(&listeners_lock);
	return l;
}

int store_pg_watch_open(struct store_mailbox *box, char **error_r)
{
	struct store_pg_mailbox *mbox = store_pg_mailbox_cast(box);
	char *address, *conninfo;
	if (store_pg_location_parse(mbox->store->location, &address, &conninfo, error_r) < 0)
		return -1;
	free(address);
	struct listener *l = listener_get(conninfo, error_r);
	free(conninfo);
	if (l == NULL)
		return -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		*error_r = xasprintf("socketpair() failed: %s", strerror(errno));
		return -1;
	}
	struct watcher *w = xcalloc(1, sizeof(*w));
	w->fd = sv[1];
	w->mailbox = mbox->id;
	pthread_mutex_lock(&l->lock);
	w->next = l->watchers;
	l->watchers = w;
	uint64_t ticket = ++l->requested;
	pthread_mutex_unlock(&l->lock);
	(void)!write(l->wake[1], "w", 1);
	/* Changes committed once the thread LISTENs reach the watch; while
	   PostgreSQL is away it does not, and the watch is signalled when
	   the thread connects again. */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WATCH_LISTEN_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&l->lock);
	while (l->served < ticket && !l->down)
		if (pthread_cond_timedwait(&l->cond, &l->lock, &deadline) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&l->lock);
	return sv[0];
}

/* ---- the maildrop lock ---- */

/* pg_try_advisory_lock(key, store id) key: "pop3". */
#define MAILDROP_LOCK_KEY "1886351411"

int store_pg_maildrop_lock(struct store *base, char **error_r)
{
	struct store_pg *store = store_pg_cast(base);
	if (store->maildrop != NULL)
		return 1;
	char *address, *conninfo;
	if (store_pg_location_parse(store->location, &address, &conninfo, error_r) < 0)
		return -1;
	free(address);
	struct store_pg_pool *pool;
	struct pg_conn *conn = store_pg_conn_get(conninfo, &pool, error_r);
	free(conninfo);
	if (conn == NULL)
		return -1;
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, store->id)};
	PGresult *res =
	    store_pg_run(conn, "locking the maildrop",
			 "SELECT pg_try_advisory_lock(" MAILDROP_LOCK_KEY ", ($1::bigint % 2147483647)::int)",
			 1, v, error_r);
	if (res == NULL) {
		store_pg_conn_put(pool, &conn);
		return -1;
	}
	bool taken = strcmp(pg_value(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!taken) {
		store_pg_conn_put(pool, &conn);
		return 0;
	}
	store->maildrop = conn;
	return 1;
}

void store_pg_maildrop_unlock(struct store *base)
{
	struct store_pg *store = store_pg_cast(base);
	if (store->maildrop == NULL)
		return;
	char id[STORE_PG_INT_MAX];
	const char *v[] = {store_pg_int(id, store->id)};
	char *error = NULL;
	PGresult *res = pg_query(
	    store->maildrop,
	    "SELECT pg_advisory_unlock(" MAILDROP_LOCK_KEY ", ($1::bigint % 2147483647)::int)", 1, v, &error);
	if (res == NULL) {
		/* the lock went with the connection, or goes with it now */
		log_warn("store postgresql maildrop unlock failed: %s", error);
		free(error);
		pg_close(&store->maildrop);
		return;
	}
	PQclear(res);
	store_pg_conn_put(store->pool, &store->maildrop);
}
