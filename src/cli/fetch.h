#ifndef CLI_FETCH_H
#define CLI_FETCH_H
/* What `postoffice fetch` shares between its POP3 session (cmd_fetch.c)
   and its IMAP session (fetch_imap.c): the options, error output and the
   local storage of a message. */
#include "cli/client_conn.h"
#include "cli/progress.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

/* IMAP --idle: seconds between NOOPs when the server has no IDLE, and
   between two IDLE commands (RFC 2177 section 3: the server may log the
   client out after 30 minutes of inactivity). */
#define IMAP_FETCH_POLL 60
#define IMAP_FETCH_IDLE_RENEW (28 * 60)

struct fetch_opts {
	char *host, *port_arg;
	int port;
	const char *user, *password_file, *maildir, *mbox, *state;
	const char *mailbox; /* IMAP: the mailbox (UTF-8), INBOX by default */
	bool tls, starttls, plain, insecure, keep;
	bool imap;                 /* --protocol imap */
	bool idle;                 /* IMAP: stay and fetch as mail arrives */
	struct progress *progress; /* the line on a terminal (progress.h) */
};

/* Prints "postoffice fetch: " and the message to stderr; returns -1. */
int fetch_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The connection to the server of o: its host and port, the [dns]
   resolver of cfg, --tls, and the certificate checked unless --insecure or
   the host is a loopback one.  Refers to o's and cfg's strings. */
struct client_conn_settings fetch_conn_settings(const struct config *cfg, const struct fetch_opts *o,
						int timeout);
/* Stores one message on stable storage (the Maildir's new/ through
   delivery/delivery.h, or appended to the mbox and fsynced) before it
   returns 0 (and counts it in the progress line); -1 after printing why. */
int fetch_store(const struct fetch_opts *o, const char *data, size_t len);
/* The IMAP session (fetch_imap.c): 0 when everything went well. */
int fetch_imap_run(const struct config *cfg, const struct fetch_opts *o, const char *password);
#endif
