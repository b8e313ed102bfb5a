#ifndef SERVER_WORKER_H
#define SERVER_WORKER_H
/* What every protocol session gets from the worker process it runs in: the
   event loop, the configuration, the TLS context, the user database, the
   shared table of failed logins, and connection accounting.  One worker process runs one libevent loop that
   serves SMTP, POP3 and IMAP connections together. */
#include "lib/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

struct auth_penalty;
struct event_base;
struct userdb;

enum service {
	SERVICE_SMTP,         /* inbound, port 25 role */
	SERVICE_SUBMISSION,   /* STARTTLS + AUTH */
	SERVICE_SUBMISSIONS,  /* implicit TLS + AUTH */
	SERVICE_POP3,
	SERVICE_POP3S,
	SERVICE_IMAP,
	SERVICE_IMAPS,
	SERVICE_COUNT
};

struct worker {
	struct event_base *base;
	const struct config *cfg;
	SSL_CTX *tls;              /* server context; NULL when TLS is unavailable */
	SSL_CTX *tls_client;       /* for outgoing connections */
	struct userdb *userdb;
	struct auth_penalty *auth_penalty;   /* failed logins across workers (auth/auth_penalty.h) */
	bool draining;             /* SIGTERM: finish sessions, accept no more */
	int connections;
};

/* "smtp", "submission", ... */
const char *service_name(enum service s);

/* The worker of this process (one per process). */
extern struct worker *worker;

/* An accepted connection, as handed to a protocol's session_start(). */
struct conn_info {
	int fd;
	enum service service;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct sockaddr_storage local;
	char ip[INET6_ADDRSTRLEN];  /* peer address as text */
	int port;
	char local_ip[INET6_ADDRSTRLEN];
	int local_port;
	bool loopback;              /* peer is 127.0.0.0/8 or ::1 */
	bool implicit_tls;          /* SUBMISSIONS, POP3S, IMAPS */
};

/* Session entry points, called by the worker for each accepted connection.
   The session owns conn->fd from then on and must call
   worker_conn_release(conn) exactly once when it ends. */
void smtp_session_start(const struct conn_info *conn);
void pop3_session_start(const struct conn_info *conn);
void imap_session_start(const struct conn_info *conn);

/* Connection accounting: returns false when the total or per-IP limit is
   reached (the session then sends its protocol's "too many connections"
   reply and closes). */
bool worker_conn_acquire(const struct conn_info *conn);
void worker_conn_release(const struct conn_info *conn);

/* Every session of a worker is registered, so that draining (SIGTERM) can
   reach them: each one's drain() is called once, and closes the session
   with its protocol's "shutting down" reply if it is between commands (the
   others close when their command or transaction is done).  Protocols
   embed the link in their session and find it with WORKER_SESSION_OF. */
struct worker_session {
	struct worker_session *next, **pprev;
	void (*drain)(struct worker_session *ws);
};
#define WORKER_SESSION_OF(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
void worker_session_add(struct worker_session *ws, void (*drain)(struct worker_session *ws));
void worker_session_remove(struct worker_session *ws);

/* True when plain-text passwords may be used on this connection
   ([auth] plaintext_auth, TLS, loopback). */
bool worker_plaintext_auth_allowed(const struct conn_info *conn, bool tls_active);
#endif
