/* `postoffice fetch`: a POP3 client (RFC 1939; CAPA RFC 2449, STLS RFC
   2595, AUTH PLAIN RFC 5034) that downloads into a local Maildir or mbox.
   The connection is cli/pop3_client.h (the io object and the project's
   resolver) on an event loop of its own; the steps of the session follow
   one another through the reply callbacks, one command at a time.  A
   message is deleted on the server only after it is on stable storage
   here.  With --keep, the UIDLs already fetched are kept in a state file so
   that a rerun fetches only new mail; a session that breaks after messages
   were stored records theirs there too (the server keeps them until QUIT),
   so that the rerun neither loses nor repeats one. */
#include "cli/cli.h"
#include "cli/fetch.h"
#include "cli/pop3_client.h"
#include "delivery/delivery.h"
#include "auth/sasl.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/strlist.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/event.h>

#define FETCH_TIMEOUT 120

static void fetch_usage(FILE *out)
{
	fprintf(out,
		"usage: postoffice fetch --server HOST:PORT --user USER (--maildir DIR | --mbox FILE)\n"
		"                        [--protocol pop3|imap] [--starttls | --tls | --plain] [--keep]\n"
		"                        [--password-file F] [--mailbox NAME] [--idle]\n\n"
		"Downloads mail over POP3 (the default) or IMAP into a local Maildir (new/)\n"
		"or mbox file.  POP3 logs in with AUTH PLAIN when CAPA offers SASL PLAIN\n"
		"(RFC 5034), else USER/PASS; IMAP with AUTHENTICATE PLAIN when offered, else\n"
		"LOGIN.  A message is deleted on the server only once it is on disk here.\n\n"
		"  --server HOST:PORT  the server (POP3: port 110, or 995 with --tls; IMAP: 143,\n"
		"                      or 993 with --tls); HOST is resolved through the [dns]\n"
		"                      resolver of the configuration\n"
		"  --protocol P        pop3 (the default) or imap\n"
		"  --starttls          upgrade with STLS or STARTTLS (the default); --tls:\n"
		"                      implicit TLS (POP3S, IMAPS)\n"
		"  --plain             no TLS at all (only sensible on loopback)\n"
		"  --insecure          do not verify the server's certificate (never checked\n"
		"                      for loopback addresses)\n"
		"  --user USER         the login name, usually the address\n"
		"  --password-file F   the password's file (first line); else it is prompted\n"
		"  --maildir DIR       deliver into DIR/new (created when missing)\n"
		"  --mbox FILE         append to FILE in mboxrd format\n"
		"  --keep              leave the messages on the server; what was fetched is kept\n"
		"                      in the state file (POP3: UIDLs; IMAP: UIDVALIDITY and the\n"
		"                      last UID) so that a rerun fetches only new ones\n"
		"  --state FILE        the state file (default: DIR/.postoffice-fetch-USER or\n"
		"                      FILE.postoffice-fetch-USER; IMAP adds -imap-MAILBOX)\n"
		"  --mailbox NAME      IMAP: the mailbox to fetch from (default INBOX)\n"
		"  --idle              IMAP: stay connected and fetch new mail as it arrives\n"
		"                      (IDLE, else NOOP every %d s) until SIGINT or SIGTERM\n",
		IMAP_FETCH_POLL);
}

/* ---- UIDL state ---- */

static void state_load(struct strlist *st, const char *path)
{
	char *data = NULL, *error = NULL;
	if (fs_read_file(path, &data, NULL, &error) < 0) {
		free(error);
		return;
	}
	for (char *save = NULL, *tok = strtok_r(data, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
		strlist_add(st, tok);
	free(data);
}

static int state_save(const struct strlist *st, const char *path)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < st->count; i++)
		buf_printf(&b, "%s\n", st->items[i]);
	char *error = NULL;
	int rc = fs_write_file_durable(path, b.data ? b.data : "", b.len, 0600, &error);
	if (rc < 0) {
		fetch_fail("%s", error);
		free(error);
	}
	buf_free(&b);
	return rc;
}

/* ---- the session ---- */

struct server_msg {
	unsigned n;
	char *uidl;
};

/* What CAPA (RFC 2449) announced; all false when the server has no CAPA. */
struct pop3_caps {
	bool stls, sasl_plain;
};

struct fetch {
	const struct fetch_opts *o;
	const char *password;
	struct event_base *base;
	struct pop3_client *client;
	char *sasl; /* the AUTH PLAIN response, while it may be asked for */
	struct server_msg *msgs;
	size_t count, next; /* next: the message to look at */
	struct strlist seen, still;
	struct strlist stored; /* stored here and DELEted: gone from the server only after QUIT */
	bool had_state, local_error, quit_ok, finished;
	size_t fetched, deleted;
	uint64_t bytes;
	int rc;
};

static void fetch_finish(struct fetch *f, int rc)
{
	progress_end(f->o->progress);
	f->rc = rc;
	f->finished = true;
	event_base_loopbreak(f->base);
}

static void fetch_failed(struct pop3_client *c, const char *error, void *ctx)
{
	fetch_fail("%s", error);
	fetch_finish(ctx, -1);
}

/* A -ERR (or any unexpected reply) ends the session without QUIT: the
   server then deletes nothing (RFC 1939 section 6). */
static void fetch_refused(struct fetch *f, const char *what, const struct pop3_client_reply *r)
{
	fetch_fail("%s: %s", what, r->line);
	fetch_finish(f, -1);
}

static void capa_parse(const char *text, struct pop3_caps *caps)
{
	char *copy = xstrdup(text);
	for (char *save = NULL, *l = strtok_r(copy, "\r\n", &save); l != NULL;
	     l = strtok_r(NULL, "\r\n", &save)) {
		char *save2 = NULL, *tag = strtok_r(l, " ", &save2);
		if (tag == NULL)
			continue;
		if (!strcasecmp(tag, "STLS"))
			caps->stls = true;
		else if (!strcasecmp(tag, "SASL"))
			for (char *m = strtok_r(NULL, " ", &save2); m != NULL;
			     m = strtok_r(NULL, " ", &save2))
				caps->sasl_plain |= !strcasecmp(m, "PLAIN");
	}
	free(copy);
}

static void fetch_parse_uidls(struct fetch *f, char *text)
{
	size_t cap = 64;
	f->msgs = xmalloc(cap * sizeof(*f->msgs));
	for (char *save = NULL, *tok = strtok_r(text, "\r\n", &save); tok != NULL;
	     tok = strtok_r(NULL, "\r\n", &save)) {
		char id[128];
		unsigned n;
		if (sscanf(tok, "%u %127s", &n, id) != 2)
			continue;
		if (f->count == cap) {
			cap *= 2;
			f->msgs = xreallocarray(f->msgs, cap, sizeof(*f->msgs));
		}
		f->msgs[f->count].n = n;
		f->msgs[f->count].uidl = xstrdup(id);
		f->count++;
	}
}

static void fetch_next(struct fetch *f);

static void on_quit(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	struct fetch *f = ctx;
	f->quit_ok = r->ok;
	if (!r->ok)
		fetch_fail("QUIT: %s", r->line);
	if (f->local_error) {
		/* QUIT still commits the deletions of the messages stored
		   before the failure, so a rerun does not fetch them twice. */
		fetch_fail("stopped after %zu messages; the rest stay on the server", f->fetched);
		fetch_finish(f, -1);
		return;
	}
	if (r->ok)
		printf("fetched %zu messages (%llu bytes), deleted %zu on the server\n", f->fetched,
		       (unsigned long long)f->bytes, f->deleted);
	fetch_finish(f, r->ok ? 0 : -1);
}

static void fetch_quit(struct fetch *f)
{
	pop3_client_command(f->client, false, on_quit, "QUIT");
}

static void on_dele(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	struct fetch *f = ctx;
	if (!r->ok) {
		fetch_refused(f, "DELE", r);
		return;
	}
	/* Safe: the message is on stable storage here, and the server
	   deletes only after QUIT. */
	f->deleted++;
	f->next++;
	fetch_next(f);
}

static void on_retr(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	struct fetch *f = ctx;
	const struct fetch_opts *o = f->o;
	const struct server_msg *m = &f->msgs[f->next];
	if (!r->ok) {
		fetch_refused(f, "RETR", r);
		return;
	}
	if (fetch_store(o, r->body, r->body_len) < 0) {
		f->local_error = true;
		fetch_quit(f);
		return;
	}
	f->fetched++;
	f->bytes += r->body_len;
	if (o->keep) {
		/* Remember it at once: an interrupted run does not fetch it twice. */
		strlist_add(&f->still, m->uidl);
		strlist_add(&f->seen, m->uidl);
		if (state_save(&f->seen, o->state) < 0) {
			fetch_finish(f, -1);
			return;
		}
		f->next++;
		fetch_next(f);
		return;
	}
	strlist_add(&f->stored, m->uidl);
	pop3_client_command(c, false, on_dele, "DELE %u", m->n);
}

/* The messages in turn: new ones are retrieved, those an earlier run
   stored are deleted (or kept with --keep); then QUIT. */
static void fetch_next(struct fetch *f)
{
	const struct fetch_opts *o = f->o;
	for (; f->next < f->count; f->next++) {
		const struct server_msg *m = &f->msgs[f->next];
		if (!strlist_contains(&f->seen, m->uidl)) {
			pop3_client_command(f->client, true, on_retr, "RETR %u", m->n);
			return;
		}
		/* Stored here by an earlier run. */
		if (!o->keep) {
			pop3_client_command(f->client, false, on_dele, "DELE %u", m->n);
			return;
		}
		strlist_add(&f->still, m->uidl);
	}
	/* Forget what left the server. */
	if ((o->keep || f->had_state) && state_save(&f->still, o->state) < 0) {
		fetch_finish(f, -1);
		return;
	}
	fetch_quit(f);
}

static void on_uidl(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	struct fetch *f = ctx;
	if (!r->ok) {
		fetch_refused(f, "UIDL", r);
		return;
	}
	char *text = xstrndup(r->body, r->body_len);
	fetch_parse_uidls(f, text);
	free(text);
	state_load(&f->seen, f->o->state);
	f->had_state = f->seen.count > 0;
	size_t fresh = 0;
	for (size_t i = 0; i < f->count; i++)
		fresh += !strlist_contains(&f->seen, f->msgs[i].uidl);
	progress_start(f->o->progress, fresh);
	fetch_next(f);
}

static void fetch_uidl(struct fetch *f)
{
	pop3_client_command(f->client, true, on_uidl, "UIDL");
}

static void on_pass(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	if (!r->ok)
		fetch_refused(ctx, "login failed", r);
	else
		fetch_uidl(ctx);
}

static void on_user(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	struct fetch *f = ctx;
	if (!r->ok)
		fetch_refused(f, "USER refused", r);
	else
		pop3_client_command(c, false, on_pass, "PASS %s", f->password);
}

static bool is_challenge(const struct pop3_client_reply *r)
{
	return r->line[0] == '+' && r->line[1] != 'O';
}

static void on_auth_cancelled(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	fetch_fail("login failed: unexpected challenge to AUTH PLAIN");
	fetch_finish(ctx, -1);
}

static void on_auth(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	struct fetch *f = ctx;
	explicit_bzero(f->sasl, strlen(f->sasl));
	if (is_challenge(r)) {
		/* Another challenge: PLAIN has only one step.  "*" cancels
		   (RFC 5034 section 4), and the server answers -ERR. */
		pop3_client_command(c, false, on_auth_cancelled, "*");
	} else if (!r->ok) {
		fetch_fail("login failed (AUTH PLAIN as %s): %s", f->o->user, r->line);
		fetch_finish(f, -1);
	} else {
		fetch_uidl(f);
	}
}

static void on_auth_ready(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	struct fetch *f = ctx;
	if (is_challenge(r))
		pop3_client_command(c, false, on_auth, "%s", f->sasl);
	else
		on_auth(c, r, ctx);
}

/* AUTH PLAIN (RFC 5034, RFC 4616).  The initial response goes on the
   command line unless that would pass 255 octets (RFC 5034 section 4). */
static void fetch_auth_plain(struct fetch *f)
{
	f->sasl = sasl_client_plain(f->o->user, f->password);
	if (strlen("AUTH PLAIN \r\n") + strlen(f->sasl) <= 255)
		pop3_client_command(f->client, false, on_auth, "AUTH PLAIN %s", f->sasl);
	else
		pop3_client_command(f->client, false, on_auth_ready, "AUTH PLAIN");
}

static void on_capa(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	struct fetch *f = ctx;
	struct pop3_caps caps = {0};
	if (r->ok)
		capa_parse(r->body, &caps);
	if (caps.sasl_plain)
		fetch_auth_plain(f);
	else
		pop3_client_command(c, false, on_user, "USER %s", f->o->user);
}

/* Capabilities are asked after TLS: those before it do not count (RFC
   2595 section 4). */
static void fetch_capa(struct pop3_client *c, void *ctx)
{
	pop3_client_command(c, true, on_capa, "CAPA");
}

static void on_stls(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	if (!r->ok)
		fetch_refused(ctx, "the server refused STLS (--tls for POP3S, --plain for none)", r);
	else
		pop3_client_start_tls(c, fetch_capa);
}

static void on_greeting(struct pop3_client *c, const struct pop3_client_reply *r, void *ctx)
{
	struct fetch *f = ctx;
	if (!r->ok)
		fetch_refused(f, "greeting", r);
	else if (!f->o->tls && !f->o->plain)
		pop3_client_command(c, false, on_stls, "STLS");
	else
		fetch_capa(c, f);
}

/* Runs the session on a loop of its own; 0 when everything went well. */
static int fetch_run(const struct config *cfg, const struct fetch_opts *o, const char *password)
{
	struct fetch f = {.o = o, .password = password, .rc = -1};
	struct client_conn_settings set = fetch_conn_settings(cfg, o, FETCH_TIMEOUT);
	f.base = event_base_new();
	if (f.base == NULL)
		return fetch_fail("event_base_new() failed");
	f.client = pop3_client_connect(f.base, &set, on_greeting, fetch_failed, &f);
	/* Bounded: every step has a timeout. */
	event_base_dispatch(f.base);
	if (!f.finished)
		fetch_fail("the session with %s:%d ended unexpectedly", o->host, o->port);
	pop3_client_free(&f.client);
	event_base_free(f.base);
	if (f.rc < 0 && !f.quit_ok && f.stored.count > 0) {
		/* The server still has what was stored here: a rerun
		   deletes it there instead of fetching it again. */
		for (size_t i = 0; i < f.stored.count; i++)
			strlist_add(&f.seen, f.stored.items[i]);
		state_save(&f.seen, o->state);
	}
	if (f.sasl != NULL) {
		explicit_bzero(f.sasl, strlen(f.sasl));
		free(f.sasl);
	}
	for (size_t i = 0; i < f.count; i++)
		free(f.msgs[i].uidl);
	free(f.msgs);
	strlist_free(&f.seen);
	strlist_free(&f.still);
	strlist_free(&f.stored);
	return f.rc;
}

/* A port number, or a service name of /etc/services ("pop3s", "imaps"). */
static int fetch_port(const char *arg, const struct fetch_opts *o)
{
	if (arg[0] == '\0')
		return o->imap ? (o->tls ? 993 : 143) : (o->tls ? 995 : 110);
	char *end;
	errno = 0;
	long n = strtol(arg, &end, 10);
	if (errno == 0 && *end == '\0' && end != arg)
		return n >= 1 && n <= 65535 ? (int)n : -1;
	const struct servent *se = getservbyname(arg, "tcp");
	return se != NULL ? ntohs((uint16_t)se->s_port) : -1;
}

static int parse_server(const char *arg, struct fetch_opts *o)
{
	const char *colon = strrchr(arg, ':');
	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');
		if (close == NULL)
			return -1;
		o->host = xstrndup(arg + 1, (size_t)(close - arg - 1));
		o->port_arg = xstrdup(close[1] == ':' ? close + 2 : "");
	} else if (colon != NULL) {
		o->host = xstrndup(arg, (size_t)(colon - arg));
		o->port_arg = xstrdup(colon + 1);
	} else {
		o->host = xstrdup(arg);
		o->port_arg = xstrdup("");
	}
	o->port = fetch_port(o->port_arg, o);
	return o->host[0] && o->port > 0 ? 0 : -1;
}

static int fetch_prepare(struct fetch_opts *o, char **state_alloc)
{
	char *error = NULL;
	if (o->maildir != NULL) {
		static const char *const subs[] = {"cur", "new", "tmp"};
		for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
			char *p = xasprintf("%s/%s", o->maildir, subs[i]);
			int rc = fs_mkdir_p(p, 0700, &error);
			free(p);
			if (rc < 0) {
				fetch_fail("%s", error);
				free(error);
				return -1;
			}
		}
	}
	if (o->state == NULL) {
		struct buf b = BUF_INIT;
		if (o->maildir != NULL)
			buf_printf(&b, "%s/.postoffice-fetch-%s", o->maildir, o->user);
		else
			buf_printf(&b, "%s.postoffice-fetch-%s", o->mbox, o->user);
		/* One state per mailbox; the name kept to letters and digits. */
		if (o->imap)
			buf_append_str(&b, "-imap-");
		for (const char *p = o->imap ? o->mailbox : ""; *p != '\0'; p++)
			buf_append_char(&b, isalnum((unsigned char)*p) ? *p : '_');
		*state_alloc = buf_steal(&b);
		o->state = *state_alloc;
	}
	return 0;
}

static char *fetch_password(const struct fetch_opts *o)
{
	if (o->password_file == NULL)
		return cli_read_password("password: ", 0);
	char *data = NULL, *error = NULL;
	if (fs_read_file(o->password_file, &data, NULL, &error) < 0) {
		fetch_fail("%s", error);
		free(error);
		return NULL;
	}
	data[strcspn(data, "\r\n")] = '\0';
	return data;
}

static int fetch_cmd(struct config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"user", required_argument, NULL, 'u'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"maildir", required_argument, NULL, 'd'},
	    {"mbox", required_argument, NULL, 'm'},
	    {"state", required_argument, NULL, 'S'},
	    {"keep", no_argument, NULL, 'k'},
	    {"tls", no_argument, NULL, 'T'},
	    {"starttls", no_argument, NULL, 't'},
	    {"plain", no_argument, NULL, 'P'},
	    {"insecure", no_argument, NULL, 'i'},
	    {"protocol", required_argument, NULL, 'r'},
	    {"mailbox", required_argument, NULL, 'b'},
	    {"idle", no_argument, NULL, 'I'},
	    {NULL, 0, NULL, 0},
	};
	struct fetch_opts o = {0};
	struct progress progress = {0};
	o.progress = &progress;
	const char *server = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'p':
			o.password_file = optarg;
			break;
		case 'd':
			o.maildir = optarg;
			break;
		case 'm':
			o.mbox = optarg;
			break;
		case 'S':
			o.state = optarg;
			break;
		case 'k':
			o.keep = true;
			break;
		case 'T':
			o.tls = true;
			break;
		case 't':
			o.starttls = true;
			break;
		case 'P':
			o.plain = true;
			break;
		case 'i':
			o.insecure = true;
			break;
		case 'r':
			if (strcmp(optarg, "imap") != 0 && strcmp(optarg, "pop3") != 0) {
				fetch_fail("--protocol is pop3 or imap");
				return 2;
			}
			o.imap = strcmp(optarg, "imap") == 0;
			break;
		case 'b':
			o.mailbox = optarg;
			break;
		case 'I':
			o.idle = true;
			break;
		default:
			fetch_usage(stderr);
			return 2;
		}
	}
	if (server == NULL || o.user == NULL || (o.maildir == NULL) == (o.mbox == NULL) || optind != argc ||
	    (o.tls + o.starttls + o.plain) > 1 || (!o.imap && (o.mailbox != NULL || o.idle))) {
		fetch_usage(stderr);
		return 2;
	}
	for (const char *p = o.user; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			fetch_fail("--user must not hold control characters");
			return 2;
		}
	}
	if (parse_server(server, &o) < 0) {
		fetch_fail("bad --server %s (HOST:PORT)", server);
		free(o.host);
		free(o.port_arg);
		return 2;
	}
	if (o.imap && o.mailbox == NULL)
		o.mailbox = "INBOX";
	char *state_alloc = NULL;
	char *password = NULL;
	int rc = fetch_prepare(&o, &state_alloc);
	if (rc == 0 && (password = fetch_password(&o)) == NULL)
		rc = -1;
	if (rc == 0) {
		/* A server that closes while a command is being written must
		   end in an error message, not in a silent death. */
		signal(SIGPIPE, SIG_IGN);
		rc = o.imap ? fetch_imap_run(cfg, &o, password) : fetch_run(cfg, &o, password);
	}
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	free(state_alloc);
	free(o.host);
	free(o.port_arg);
	return rc == 0 ? 0 : 1;
}

const struct cli_command cmd_fetch = {
    "fetch",
    "--server HOST:PORT --user USER (--maildir DIR | --mbox FILE) [--protocol imap] [--keep]",
    "download mail over POP3 or IMAP into a Maildir or mbox",
    fetch_cmd,
    fetch_usage,
};
