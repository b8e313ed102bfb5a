#ifndef SESSION_SESSION_H
#define SESSION_SESSION_H
/* What every protocol session shares, written once: the service context a
   session is given at its start (event loop, configuration, TLS, user
   database, password-guessing table, connection accounting, draining), and
   the session skeleton: accept, connection limits, implicit TLS, the io
   callback, busy/dead/reap around jobs, a delayed reply (failed logins),
   draining and teardown.  A protocol embeds struct session first in its
   own session struct and fills a struct session_ops; the worker process
   (src/server) makes the context and hands accepted connections to the
   protocols' start functions.  Flow control lives in the io object. */
#include "lib/id.h"
#include "lib/io.h"

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/ssl.h>
#include <time.h>

struct config;
struct event;
struct event_base;
struct userdb;
struct auth_penalty;
struct session_registry;
struct dns_resolver;
struct dkim_key_cache;
struct session;
struct proxy_reader;

enum service {
	SERVICE_SMTP,        /* inbound, port 25 role */
	SERVICE_SUBMISSION,  /* STARTTLS + AUTH */
	SERVICE_SUBMISSIONS, /* implicit TLS + AUTH */
	SERVICE_POP3,
	SERVICE_POP3S,
	SERVICE_IMAP,
	SERVICE_IMAPS,
	SERVICE_COUNT
};

/* "smtp", "submission", ... */
const char *service_name(enum service s);

/* An accepted connection, as handed to a protocol's start function. */
struct conn_info {
	int fd;
	enum service service;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct sockaddr_storage local;
	char ip[INET6_ADDRSTRLEN]; /* peer address as text */
	int port;
	char local_ip[INET6_ADDRSTRLEN];
	int local_port;
	bool loopback;     /* peer is 127.0.0.0/8 or ::1 */
	bool implicit_tls; /* SUBMISSIONS, POP3S, IMAPS */
	/* The load balancer, when a PROXY header (lib/proxy_proto.h) gave
	   the addresses above; "" otherwise. */
	char proxy_ip[INET6_ADDRSTRLEN];
};

/* Sets the peer (peer, ip, port, loopback) or the local end (local,
   local_ip, local_port) of conn from an AF_INET or AF_INET6 address; an
   IPv4-mapped IPv6 address is written as IPv4. */
void conn_info_set_peer(struct conn_info *conn, const struct sockaddr *sa, socklen_t len);
void conn_info_set_local(struct conn_info *conn, const struct sockaddr *sa, socklen_t len);

/* The service context: one per worker process, given to every session. */
struct service_ctx {
	struct event_base *base;
	const struct config *cfg;
	SSL_CTX *tls;        /* server context; NULL when TLS is unavailable */
	SSL_CTX *tls_client; /* for outgoing connections */
	struct userdb *userdb;
	struct auth_penalty *auth_penalty; /* shared by every worker */
	bool draining;                     /* SIGTERM: finish sessions, accept no more */
	int connections;                   /* counted (see service_init) */
	/* Called when the last counted connection of a draining context ends. */
	void (*drained)(struct service_ctx *ctx);
	struct session *sessions; /* every session, for draining */
	struct ip_count **ip_table;
	/* the DKIM signing keys (DATA_DIR/dkim), loaded on first use and
	   again when keys were added or removed: see service_dkim_keys() */
	struct dkim_keyring *dkim;
	time_t dkim_checked;
	/* the [dns] resolver on this loop (DKIM key lookups), made on first
	   use: see service_resolver() */
	struct dns_resolver *resolver;
	bool resolver_failed;
	/* the DKIM key records found lately (trust/dkim_lookup.h) */
	struct dkim_key_cache *dkim_key_cache;
	/* the live sessions of all nodes (session_registry.h); NULL: local */
	struct session_registry *registry;
};

void service_init(struct service_ctx *ctx);
/* Connection accounting: false when the total or per-IP limit is reached.
   session_start() does this for every session. */
bool service_conn_acquire(struct service_ctx *ctx, const struct conn_info *conn);
void service_conn_release(struct service_ctx *ctx, const struct conn_info *conn);
void service_deinit(struct service_ctx *ctx);
/* The DKIM signing keys: loaded on the first call, and again when the key
   directory changed (checked at most once a second), so that `postoffice
   dkim keygen` needs no restart.  NULL when there are none.  The caller
   takes a reference for as long as it signs with them
   (trust/dkim_keys.h). */
struct dkim_keyring *service_dkim_keys(struct service_ctx *ctx);
/* The asynchronous resolver of the [dns] resolver option on the context's
   loop (dns/dns.h), shared by every session of the worker (each lookup is
   its own: none waits on another's), with an answer cache of
   SERVICE_DNS_CACHE_SLOTS answers (dns_resolver_cache()).  Made on the
   first call; NULL when it cannot be (logged once). */
#define SERVICE_DNS_CACHE_SLOTS 1024
struct dns_resolver *service_resolver(struct service_ctx *ctx);
/* The worker's cache of DKIM key records, made on the first call. */
struct dkim_key_cache *service_dkim_key_cache(struct service_ctx *ctx);
/* SIGTERM: every session's drain() is called once; sessions between
   commands close with their protocol's goodbye, the others finish first. */
void service_drain(struct service_ctx *ctx);
/* True when plain-text passwords may be used on this connection
   ([auth] plaintext_auth, TLS, loopback). */
bool service_plaintext_auth_allowed(const struct service_ctx *ctx, const struct conn_info *conn,
				    bool tls_active);

/* Why a session is refused or closed by the skeleton. */
enum session_bye {
	SESSION_BYE_DRAINING,        /* server shutting down */
	SESSION_BYE_TOO_MANY,        /* connection limits */
	SESSION_BYE_TIMEOUT,         /* idle too long */
	SESSION_BYE_TOO_MANY_ERRORS, /* session_error() counted [limits] max_errors */
};

struct session_ops {
	const char *protocol;                     /* "smtp", "pop3", "imap": the log's first word */
	int (*timeout)(const struct config *cfg); /* idle timeout in seconds */
	void (*greet)(struct session *s);         /* after connect, or the TLS handshake */
	/* After every TLS handshake (implicit or STARTTLS), before greet(). */
	void (*tls_ready)(struct session *s);
	void (*input)(struct session *s);   /* IO_EVENT_INPUT: run what is buffered */
	void (*drained)(struct session *s); /* IO_EVENT_DRAINED (optional) */
	/* Writes the protocol's goodbye for why (session_close() follows). */
	void (*bye)(struct session *s, enum session_bye why);
	/* A draining context: close the session if it is between commands. */
	void (*drain)(struct session *s);
	/* The connection ended (reason as logged); the protocol logs it with
	   its own fields. */
	void (*ended)(struct session *s, const char *reason);
	/* Frees the protocol's own fields (not the struct). */
	void (*free)(struct session *s);
	/* EOF or an error in a state worth a word in the log ("eof-in-data"),
	   or NULL for plain "eof" / "io-error". */
	const char *(*eof_reason)(struct session *s);
	/* Idle timeout in a state where no goodbye can be said (a response
	   being streamed, a handshake): true ends the session without one. */
	bool (*timeout_silent)(struct session *s);
};

struct session {
	const struct session_ops *ops;
	struct service_ctx *ctx;
	struct session *next, **pprev; /* in ctx->sessions */
	struct conn_info conn;
	char id[ID_SIZE];
	struct io *io;
	bool acquired;      /* counted in the connection limits */
	bool tls;           /* TLS is active */
	bool tls_handshake; /* a TLS handshake is running (for the metrics) */
	bool busy;          /* waiting on a job or a timer: input is held */
	bool dead;          /* connection gone while busy: free when idle */
	bool closing;       /* goodbye sent, closing after the flush */
	int errors;         /* session_error() */
	struct event *delay;
	void (*delay_done)(struct session *s);
	/* Reading the PROXY header of a proxy_protocol listener: the session
	   has not begun (no greeting, not counted in the limits). */
	struct proxy_reader *proxy;
};

/* Starts a session for conn: s is the protocol's zeroed allocation, with
   struct session first.  Counts the connection, starts implicit TLS or
   greets; refuses with ops->bye() when draining or over the limits.  On a
   listener with proxy_protocol = yes, first the peer must be in [server]
   proxy_trusted and send a PROXY header within [server] proxy_timeout,
   else the connection is closed without a word (and logged); the header's
   client address then replaces the peer in conn for everything after. */
void session_start(struct session *s, const struct session_ops *ops, struct service_ctx *ctx,
		   const struct conn_info *conn);
/* Stops reading, sends what is queued, then ends the session. */
void session_close(struct session *s);
/* Counts a client mistake; at [limits] max_errors the session says
   SESSION_BYE_TOO_MANY_ERRORS and closes.  Returns true when it did. */
bool session_error(struct session *s);
/* The connection is over: the session is freed now, or when the job it
   waits on returns (session_resume/session_reap). */
void session_end(struct session *s, const char *reason);
/* Waiting on a job: input is held until session_resume(). */
void session_busy(struct session *s);
/* The job returned: frees a session whose connection ended meanwhile
   (returns false), else takes input again (true). */
bool session_resume(struct session *s);
/* For a job's completion that must not resume input yet: frees the
   session and returns true when its connection ended meanwhile. */
bool session_reap(struct session *s);
/* Holds the session (busy, input paused) for delay_ms, then calls done
   (after a failed login), which decides what comes next (usually a reply
   and session_resume()). */
void session_delay(struct session *s, int delay_ms, void (*done)(struct session *s));
/* STARTTLS: starts the handshake (the greeting is not repeated; plain text
   buffered before it is dropped and its length returned); -1 when TLS is
   unavailable. */
int session_start_tls(struct session *s);

/* The protocol's struct from its embedded session. */
#define SESSION_OF(ptr, type) ((type *)(void *)(ptr))
#endif
