/* `postoffice fetch --protocol imap`: an IMAP client (RFC 3501; STARTTLS
   6.2.1, SASL-IR RFC 4959, UIDPLUS RFC 4315, IDLE RFC 2177) that downloads
   one mailbox into a local Maildir or mbox, as the POP3 session does.  The
   connection is cli/imap_client.h on an event loop of its own; the steps
   follow one another through the response callbacks, one command at a time.

   The state file holds the mailbox's UIDVALIDITY and the highest UID stored
   here (UIDs grow, RFC 3501 2.3.1.1): a rerun fetches only UIDs above it,
   and a new UIDVALIDITY starts over.  Without --keep, a batch (the
   messages found at one look) is fetched and each message stored on stable
   storage; then the state is saved and only then are the stored messages
   marked \Deleted and expunged (UID EXPUNGE of just those with UIDPLUS).
   Messages stored by an interrupted run (UID not above the state's) are
   deleted without being fetched again.  With --idle, batches follow one
   another as mail arrives. */
#include "auth/sasl.h"
#include "cli/fetch.h"
#include "cli/imap_client.h"
#include "imap/imap_parse.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/event.h>

#define IMAP_FETCH_TIMEOUT 120
/* UIDs in one UID STORE / UID EXPUNGE command. */
#define IMAP_FETCH_SET_MAX 500
/* Messages listed in one batch. */
#define IMAP_FETCH_LIST_MAX (1u << 24)

struct imap_caps {
	bool known, starttls, logindisabled, auth_plain, sasl_ir, idle, uidplus;
};

struct uid_list {
	uint32_t *uids;
	size_t count, cap;
};

enum fetch_phase { PH_OTHER, PH_LIST, PH_FETCH };

struct fetch_imap {
	const struct fetch_opts *o;
	const char *password;
	struct event_base *base;
	struct imap_client *client;
	struct imap_caps caps;
	char *sasl; /* the AUTHENTICATE PLAIN response, while it may be asked for */
	bool sasl_sent, logged_in;
	char *mailbox; /* quoted, modified UTF-7 */
	uint32_t uidvalidity, exists;
	bool have_uidvalidity;
	uint32_t last_uid; /* the highest UID stored here */
	bool state_dirty;  /* last_uid is not saved yet */
	enum fetch_phase phase;
	struct uid_list list; /* this batch's messages */
	size_t next;
	struct uid_list del; /* stored here, to delete */
	size_t del_next, del_chunk;
	uint32_t want_uid;
	bool new_mail; /* EXISTS grew since the batch started */
	bool idling, done_sent, polling, stopping, logging_out, finished, local_error;
	struct event *timer, *sigint, *sigterm;
	size_t fetched, deleted;
	uint64_t bytes;
	int rc;
};

static void batch_start(struct fetch_imap *f);
static void batch_end(struct fetch_imap *f);

/* ---- helpers ---- */

static void uid_add(struct uid_list *l, uint32_t uid)
{
	if (l->count == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->uids = xreallocarray(l->uids, l->cap, sizeof(*l->uids));
	}
	l->uids[l->count++] = uid;
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void uid_sort_unique(struct uid_list *l)
{
	if (l->count == 0)
		return;
	qsort(l->uids, l->count, sizeof(*l->uids), uid_cmp);
	size_t n = 1;
	for (size_t i = 1; i < l->count; i++)
		if (l->uids[i] != l->uids[n - 1])
			l->uids[n++] = l->uids[i];
	l->count = n;
}

/* A quoted string (RFC 3501 9): -1 for what it cannot hold (8-bit, CR, LF). */
static int imap_quote(struct buf *b, const char *s)
{
	buf_append_char(b, '"');
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p >= 0x80 || *p == '\r' || *p == '\n')
			return -1;
		if (*p == '"' || *p == '\\')
			buf_append_char(b, '\\');
		buf_append_char(b, *p);
	}
	buf_append_char(b, '"');
	return 0;
}

static void fetch_finish(struct fetch_imap *f, int rc)
{
	if (f->finished)
		return;
	progress_end(f->o->progress);
	f->rc = rc;
	f->finished = true;
	event_base_loopbreak(f->base);
}

static void fetch_refused(struct fetch_imap *f, const char *what, const struct imap_response *r)
{
	fetch_fail("%s: %s %s", what, r->name, r->text);
	fetch_finish(f, -1);
}

/* ---- state: "UIDVALIDITY LAST-UID" ---- */

static int state_load(struct fetch_imap *f, uint32_t *uidvalidity_r, uint32_t *last_r)
{
	char *data = NULL, *error = NULL;
	*uidvalidity_r = 0;
	*last_r = 0;
	if (fs_read_file(f->o->state, &data, NULL, &error) < 0) {
		free(error);
		return 0; /* none yet */
	}
	unsigned v, last;
	char extra;
	int n = sscanf(data, "%u %u %c", &v, &last, &extra);
	free(data);
	if (n != 2)
		return fetch_fail("%s: not an IMAP state file (UIDVALIDITY LAST-UID)", f->o->state);
	*uidvalidity_r = v;
	*last_r = last;
	return 0;
}

static int state_save(struct fetch_imap *f)
{
	char line[32];
	int len = snprintf(line, sizeof(line), "%u %u\n", f->uidvalidity, f->last_uid);
	char *error = NULL;
	if (fs_write_file_durable(f->o->state, line, (size_t)len, 0600, &error) < 0) {
		fetch_fail("%s", error);
		free(error);
		return -1;
	}
	f->state_dirty = false;
	return 0;
}

/* ---- logout ---- */

static void print_summary(struct fetch_imap *f)
{
	printf("fetched %zu messages (%llu bytes), deleted %zu on the server\n", f->fetched,
	       (unsigned long long)f->bytes, f->deleted);
	fflush(stdout);
}

static void on_logout(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind != IMAP_RESPONSE_STATUS)
		return;
	if (f->local_error) {
		fetch_fail("stopped after %zu messages; the rest stay on the server", f->fetched);
		fetch_finish(f, -1);
		return;
	}
	print_summary(f);
	fetch_finish(f, 0);
}

static void fetch_logout(struct fetch_imap *f)
{
	f->logging_out = true;
	imap_client_command(f->client, on_logout, "LOGOUT");
}

/* ---- untagged responses ---- */

static void caps_parse(struct imap_caps *caps, const struct imap_value *args, size_t n)
{
	*caps = (struct imap_caps){.known = true};
	for (size_t i = 0; i < n; i++) {
		const char *a = args[i].data;
		if (args[i].type != IMAP_VALUE_ATOM)
			continue;
		caps->starttls |= !strcasecmp(a, "STARTTLS");
		caps->logindisabled |= !strcasecmp(a, "LOGINDISABLED");
		caps->auth_plain |= !strcasecmp(a, "AUTH=PLAIN");
		caps->sasl_ir |= !strcasecmp(a, "SASL-IR");
		caps->idle |= !strcasecmp(a, "IDLE");
		caps->uidplus |= !strcasecmp(a, "UIDPLUS");
	}
}

/* A response code "CAPABILITY a b c" (RFC 3501 7.1). */
static void caps_from_code(struct imap_caps *caps, const char *code)
{
	if (code == NULL || strncasecmp(code, "CAPABILITY ", 11) != 0)
		return;
	char *copy = xstrdup(code + 11);
	struct imap_value args[256];
	size_t n = 0;
	for (char *save = NULL, *w = strtok_r(copy, " ", &save); w != NULL && n < N_ELEMENTS(args);
	     w = strtok_r(NULL, " ", &save))
		args[n++] = (struct imap_value){.type = IMAP_VALUE_ATOM, .data = w, .len = strlen(w)};
	caps_parse(caps, args, n);
	free(copy);
}

static void fetch_got_body(struct fetch_imap *f, uint32_t uid, const struct imap_value *body)
{
	if (body->type != IMAP_VALUE_STRING)
		return; /* NIL: the message is gone */
	if (fetch_store(f->o, body->data, body->len) < 0) {
		f->local_error = true;
		return;
	}
	f->want_uid = 0; /* stored once, even if the server repeats it */
	f->fetched++;
	f->bytes += body->len;
	f->last_uid = uid;
	if (!f->o->keep) {
		f->state_dirty = true;
		uid_add(&f->del, uid);
	} else if (state_save(f) < 0) {
		/* Remembered at once with --keep: an interrupted run does not
		   fetch it twice. */
		f->local_error = true;
	}
}

static void on_fetch_data(struct fetch_imap *f, const struct imap_response *r)
{
	uint32_t uid;
	if (r->nargs != 1 || r->args[0].type != IMAP_VALUE_LIST) {
		fetch_fail("malformed FETCH response from the server");
		fetch_finish(f, -1);
		return;
	}
	if (imap_value_uint32(imap_value_item(&r->args[0], "UID"), &uid) < 0)
		return; /* an unsolicited flag change */
	if (f->phase == PH_LIST) {
		if (f->list.count >= IMAP_FETCH_LIST_MAX) {
			fetch_fail("the server listed more than %u messages", IMAP_FETCH_LIST_MAX);
			fetch_finish(f, -1);
			return;
		}
		uid_add(&f->list, uid);
	} else if (f->phase == PH_FETCH && uid == f->want_uid && !f->local_error) {
		const struct imap_value *body = imap_value_item(&r->args[0], "BODY[]");
		if (body != NULL)
			fetch_got_body(f, uid, body);
	}
}

static void fetch_idle_done(struct fetch_imap *f)
{
	if (f->idling && !f->done_sent) {
		f->done_sent = true;
		imap_client_continue(f->client, "DONE");
	}
}

static void on_untagged(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind == IMAP_RESPONSE_STATUS) {
		caps_from_code(&f->caps, r->code);
		if (r->code != NULL && strncasecmp(r->code, "UIDVALIDITY ", 12) == 0) {
			struct imap_value v = {
			    .type = IMAP_VALUE_ATOM, .data = r->code + 12, .len = strlen(r->code + 12)};
			f->have_uidvalidity = imap_value_uint32(&v, &f->uidvalidity) == 0;
		}
		return;
	}
	if (r->kind != IMAP_RESPONSE_DATA)
		return;
	if (!strcmp(r->name, "CAPABILITY")) {
		caps_parse(&f->caps, r->args, r->nargs);
	} else if (!strcmp(r->name, "EXISTS") && r->has_number) {
		bool more = r->number > f->exists;
		f->exists = r->number;
		f->new_mail |= more;
		if (more)
			fetch_idle_done(f); /* new mail: end IDLE and fetch it */
	} else if (!strcmp(r->name, "EXPUNGE") && r->has_number) {
		f->exists -= f->exists > 0;
	} else if (!strcmp(r->name, "FETCH") && r->has_number) {
		on_fetch_data(f, r);
	}
}

/* ---- waiting for mail (--idle) ---- */

static void on_noop(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind != IMAP_RESPONSE_STATUS)
		return;
	if (strcmp(r->name, "OK") != 0)
		fetch_refused(f, "NOOP", r);
	else if (f->stopping)
		fetch_logout(f);
	else
		batch_start(f);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch_imap *f = arg;
	if (f->idling) {
		fetch_idle_done(f); /* renew IDLE before the server's 30 minutes */
	} else if (f->polling) {
		f->polling = false;
		imap_client_command(f->client, on_noop, "NOOP");
	}
}

static void on_idle(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind == IMAP_RESPONSE_CONTINUE) {
		f->idling = true;
		if (f->stopping || f->new_mail)
			fetch_idle_done(f);
		return;
	}
	f->idling = false;
	evtimer_del(f->timer);
	imap_client_set_timeout(c, IMAP_FETCH_TIMEOUT);
	if (strcmp(r->name, "OK") != 0)
		fetch_refused(f, "IDLE", r);
	else if (f->stopping)
		fetch_logout(f);
	else
		batch_start(f);
}

static void fetch_wait_for_mail(struct fetch_imap *f)
{
	struct timeval tv = {f->caps.idle ? IMAP_FETCH_IDLE_RENEW : IMAP_FETCH_POLL, 0};
	evtimer_add(f->timer, &tv);
	if (!f->caps.idle) {
		f->polling = true;
		return;
	}
	f->done_sent = false;
	imap_client_set_timeout(f->client, IMAP_FETCH_IDLE_RENEW + IMAP_FETCH_TIMEOUT);
	imap_client_command(f->client, on_idle, "IDLE");
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct fetch_imap *f = arg;
	if (f->stopping) {
		fetch_fail("stopped by a second signal");
		fetch_finish(f, -1);
		return;
	}
	/* Stops after the message being fetched; a batch under way still
	   deletes what it stored. */
	f->stopping = true;
	if (f->idling) {
		fetch_idle_done(f);
	} else if (f->polling) {
		f->polling = false;
		evtimer_del(f->timer);
		fetch_logout(f);
	}
}

/* ---- deletion: UID STORE +FLAGS.SILENT (\Deleted), UID EXPUNGE ---- */

static void delete_next(struct fetch_imap *f);

/* The UIDs of the current chunk as a sequence set with ranges. */
static char *delete_set(struct fetch_imap *f)
{
	struct buf b = BUF_INIT;
	size_t end = f->del_next + IMAP_FETCH_SET_MAX;
	if (end > f->del.count)
		end = f->del.count;
	for (size_t i = f->del_next; i < end;) {
		size_t j = i;
		while (j + 1 < end && f->del.uids[j + 1] == f->del.uids[j] + 1)
			j++;
		buf_printf(&b, "%s%u", b.len ? "," : "", f->del.uids[i]);
		if (j > i)
			buf_printf(&b, ":%u", f->del.uids[j]);
		i = j + 1;
	}
	f->del_chunk = end - f->del_next;
	return buf_steal(&b);
}

static void on_expunge(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind != IMAP_RESPONSE_STATUS)
		return;
	if (strcmp(r->name, "OK") != 0) {
		fetch_refused(f, "EXPUNGE", r);
		return;
	}
	if (f->caps.uidplus) {
		f->deleted += f->del_chunk;
		f->del_next += f->del_chunk;
		delete_next(f);
		return;
	}
	f->deleted = f->del.count;
	f->del.count = 0;
	batch_end(f);
}

static void on_store(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind != IMAP_RESPONSE_STATUS)
		return;
	if (strcmp(r->name, "OK") != 0) {
		fetch_refused(f, "STORE", r);
		return;
	}
	if (f->caps.uidplus) {
		/* RFC 4315 2.1: only these, not what others marked \Deleted. */
		char *set = delete_set(f);
		imap_client_command(c, on_expunge, "UID EXPUNGE %s", set);
		free(set);
		return;
	}
	f->del_next += f->del_chunk;
	delete_next(f);
}

static void delete_next(struct fetch_imap *f)
{
	if (f->del_next < f->del.count) {
		char *set = delete_set(f);
		imap_client_command(f->client, on_store, "UID STORE %s +FLAGS.SILENT (\\Deleted)", set);
		free(set);
	} else if (!f->caps.uidplus && f->del.count > 0) {
		imap_client_command(f->client, on_expunge, "EXPUNGE");
	} else {
		f->del.count = 0;
		batch_end(f);
	}
}

/* The messages are on stable storage here: the state says so first, so
   that a session that breaks now does not fetch them again. */
static void delete_start(struct fetch_imap *f)
{
	f->phase = PH_OTHER;
	if (f->del.count == 0) {
		batch_end(f);
		return;
	}
	if (f->state_dirty && state_save(f) < 0)
		f->local_error = true;
	uid_sort_unique(&f->del);
	f->del_next = 0;
	delete_next(f);
}

/* ---- a batch: list, fetch each, delete ---- */

static void fetch_next(struct fetch_imap *f);

static void on_fetch(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind != IMAP_RESPONSE_STATUS)
		return;
	if (strcmp(r->name, "OK") != 0) {
		fetch_refused(f, "FETCH", r);
		return;
	}
	f->next++;
	fetch_next(f);
}

static void fetch_next(struct fetch_imap *f)
{
	const struct fetch_opts *o = f->o;
	f->phase = PH_FETCH;
	for (; f->next < f->list.count && !f->stopping && !f->local_error; f->next++) {
		uint32_t uid = f->list.uids[f->next];
		if (uid > f->last_uid) {
			f->want_uid = uid;
			imap_client_command(f->client, on_fetch, "UID FETCH %u (UID BODY.PEEK[])", uid);
			return;
		}
		/* Stored here by an earlier run. */
		if (!o->keep)
			uid_add(&f->del, uid);
	}
	delete_start(f);
}

static void on_list(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind != IMAP_RESPONSE_STATUS)
		return;
	if (strcmp(r->name, "OK") != 0) {
		fetch_refused(f, "UID FETCH", r);
		return;
	}
	uid_sort_unique(&f->list);
	f->next = 0;
	size_t fresh = 0;
	for (size_t i = 0; i < f->list.count; i++)
		fresh += f->list.uids[i] > f->last_uid;
	progress_start(f->o->progress, fresh);
	fetch_next(f);
}

static void batch_start(struct fetch_imap *f)
{
	f->list.count = 0;
	f->new_mail = false;
	if (f->exists == 0) {
		batch_end(f);
		return;
	}
	/* With --keep only what is above the state ("N:*" also names the
	   last message when N is above it: RFC 3501 6.4.8, filtered in
	   fetch_next); without, everything, to delete what a broken run
	   stored. */
	f->phase = PH_LIST;
	uint32_t first = f->o->keep && f->last_uid < UINT32_MAX ? f->last_uid + 1 : 1;
	imap_client_command(f->client, on_list, "UID FETCH %u:* (UID)", first);
}

static void batch_end(struct fetch_imap *f)
{
	progress_end(f->o->progress);
	f->phase = PH_OTHER;
	if (f->o->idle && !f->stopping && !f->local_error)
		fetch_wait_for_mail(f);
	else
		fetch_logout(f);
}

/* ---- login and SELECT ---- */

static void on_select(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind != IMAP_RESPONSE_STATUS)
		return;
	if (strcmp(r->name, "OK") != 0) {
		fetch_refused(f, "cannot open the mailbox", r);
		return;
	}
	if (!f->have_uidvalidity) {
		fetch_fail("the server sent no UIDVALIDITY for %s", f->o->mailbox);
		fetch_finish(f, -1);
		return;
	}
	uint32_t validity, last;
	if (state_load(f, &validity, &last) < 0) {
		fetch_finish(f, -1);
		return;
	}
	if (validity == f->uidvalidity) {
		f->last_uid = last;
	} else if (validity != 0) {
		/* RFC 3501 2.3.1.1: the UIDs of before mean nothing now. */
		printf("UIDVALIDITY of %s changed (%u, was %u): fetching it anew\n", f->o->mailbox,
		       f->uidvalidity, validity);
		f->last_uid = 0;
		if (state_save(f) < 0) {
			fetch_finish(f, -1);
			return;
		}
	}
	batch_start(f);
}

static void fetch_select(struct fetch_imap *f)
{
	/* EXAMINE with --keep: nothing changes on the server. */
	imap_client_command(f->client, on_select, "%s %s", f->o->keep ? "EXAMINE" : "SELECT", f->mailbox);
}

static void on_capability(struct imap_client *c, const struct imap_response *r, void *ctx);

static void fetch_capability(struct fetch_imap *f)
{
	imap_client_command(f->client, on_capability, "CAPABILITY");
}

static void wipe_sasl(struct fetch_imap *f)
{
	if (f->sasl != NULL) {
		explicit_bzero(f->sasl, strlen(f->sasl));
		free(f->sasl);
		f->sasl = NULL;
	}
}

static void on_login(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind == IMAP_RESPONSE_CONTINUE) {
		/* PLAIN has one step; a second challenge is cancelled with "*"
		   (RFC 3501 6.2.2), which the server answers with BAD. */
		if (f->sasl != NULL && !f->sasl_sent)
			imap_client_continue(c, "%s", f->sasl);
		else
			imap_client_continue(c, "*");
		f->sasl_sent = true;
		return;
	}
	wipe_sasl(f);
	if (strcmp(r->name, "OK") != 0) {
		fetch_fail("login failed (as %s): %s %s", f->o->user, r->name, r->text);
		fetch_finish(f, -1);
		return;
	}
	f->logged_in = true;
	/* The capabilities change with the login (RFC 3501 6.2.3). */
	f->caps.known = false;
	caps_from_code(&f->caps, r->code);
	if (f->caps.known)
		fetch_select(f);
	else
		fetch_capability(f);
}

static void fetch_login(struct fetch_imap *f)
{
	if (f->caps.logindisabled) {
		fetch_fail(
		    "the server does not allow a login without TLS (LOGINDISABLED): use --starttls or --tls");
		fetch_finish(f, -1);
		return;
	}
	if (f->caps.auth_plain) {
		f->sasl = sasl_client_plain(f->o->user, f->password);
		if (f->caps.sasl_ir)
			imap_client_command(f->client, on_login, "AUTHENTICATE PLAIN %s", f->sasl);
		else
			imap_client_command(f->client, on_login, "AUTHENTICATE PLAIN");
		return;
	}
	struct buf b = BUF_INIT;
	if (imap_quote(&b, f->o->user) < 0 || (buf_append_char(&b, ' '), imap_quote(&b, f->password)) < 0) {
		fetch_fail("LOGIN cannot send a user or password with 8-bit characters (the server offers no "
			   "AUTH=PLAIN)");
		fetch_finish(f, -1);
	} else {
		imap_client_command(f->client, on_login, "LOGIN %s", buf_cstr(&b));
	}
	explicit_bzero(b.data, b.len);
	buf_free(&b);
}

static void on_capability(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind != IMAP_RESPONSE_STATUS)
		return;
	if (strcmp(r->name, "OK") != 0)
		fetch_refused(f, "CAPABILITY", r);
	else if (f->logged_in)
		fetch_select(f);
	else
		fetch_login(f);
}

static void after_tls(struct imap_client *c, void *ctx)
{
	struct fetch_imap *f = ctx;
	/* Capabilities from before TLS do not count (RFC 3501 6.2.1). */
	f->caps = (struct imap_caps){0};
	fetch_capability(f);
}

static void on_starttls(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (r->kind != IMAP_RESPONSE_STATUS)
		return;
	if (strcmp(r->name, "OK") != 0)
		fetch_refused(f, "the server refused STARTTLS (--tls for IMAPS, --plain for none)", r);
	else
		imap_client_start_tls(c, after_tls);
}

static void on_greeting(struct imap_client *c, const struct imap_response *r, void *ctx)
{
	struct fetch_imap *f = ctx;
	bool starttls = !f->o->tls && !f->o->plain;
	if (!strcmp(r->name, "BYE") || (strcmp(r->name, "OK") != 0 && strcmp(r->name, "PREAUTH") != 0)) {
		fetch_refused(f, "greeting", r);
		return;
	}
	if (!strcmp(r->name, "PREAUTH")) {
		if (starttls) {
			fetch_fail(
			    "the server greeted with PREAUTH: no STARTTLS possible (--tls or --plain)");
			fetch_finish(f, -1);
			return;
		}
		f->logged_in = true;
	}
	caps_from_code(&f->caps, r->code);
	if (starttls)
		imap_client_command(c, on_starttls, "STARTTLS");
	else if (!f->caps.known)
		fetch_capability(f);
	else if (f->logged_in)
		fetch_select(f);
	else
		fetch_login(f);
}

static void fetch_failed(struct imap_client *c, const char *error, void *ctx)
{
	struct fetch_imap *f = ctx;
	if (f->logging_out && !f->local_error) {
		/* The server closed right after its BYE. */
		print_summary(f);
		fetch_finish(f, 0);
		return;
	}
	fetch_fail("%s", error);
	fetch_finish(f, -1);
}

/* The mailbox as IMAP spells it: modified UTF-7 (RFC 3501 5.1.3), quoted. */
static char *mailbox_arg(const char *name)
{
	struct pool *pool = pool_create(256);
	const char *utf7 = strcasecmp(name, "INBOX") == 0 ? "INBOX" : imap_utf8_to_utf7(pool, name);
	char *out = NULL;
	struct buf b = BUF_INIT;
	if (utf7 != NULL && imap_quote(&b, utf7) == 0)
		out = buf_steal(&b);
	buf_free(&b);
	pool_destroy(&pool);
	return out;
}

int fetch_imap_run(const struct config *cfg, const struct fetch_opts *o, const char *password)
{
	struct fetch_imap f = {.o = o, .password = password, .rc = -1};
	f.mailbox = mailbox_arg(o->mailbox);
	if (f.mailbox == NULL)
		return fetch_fail("--mailbox %s is not valid UTF-8 or holds control characters", o->mailbox);
	struct imap_client_settings set = {
	    .conn = fetch_conn_settings(cfg, o, IMAP_FETCH_TIMEOUT),
	    .literal_max = cfg->max_message_size,
	};
	f.base = event_base_new();
	if (f.base == NULL) {
		free(f.mailbox);
		return fetch_fail("event_base_new() failed");
	}
	f.timer = evtimer_new(f.base, timer_cb, &f);
	if (o->idle) {
		f.sigint = evsignal_new(f.base, SIGINT, signal_cb, &f);
		f.sigterm = evsignal_new(f.base, SIGTERM, signal_cb, &f);
		evsignal_add(f.sigint, NULL);
		evsignal_add(f.sigterm, NULL);
	}
	f.client = imap_client_connect(f.base, &set, on_greeting, on_untagged, fetch_failed, &f);
	/* Bounded: every step has a timeout. */
	event_base_dispatch(f.base);
	if (!f.finished)
		fetch_fail("the session with %s:%d ended unexpectedly", o->host, o->port);
	imap_client_free(&f.client);
	/* Stored here but not yet deleted there: a rerun deletes them
	   instead of fetching them again. */
	if (f.state_dirty)
		state_save(&f);
	event_free(f.timer);
	if (f.sigint != NULL) {
		event_free(f.sigint);
		event_free(f.sigterm);
	}
	event_base_free(f.base);
	wipe_sasl(&f);
	free(f.mailbox);
	free(f.list.uids);
	free(f.del.uids);
	return f.rc;
}
