/* The TRANSACTION state (RFC 1939 section 5) and UPDATE (section 6).  The
   maildrop is the list taken at login; mail arriving later shows up in the
   next session.  RETR and TOP stream the file as the client drains, with
   byte-stuffing, so large messages are never held in memory. */
#include "pop3/pop3_private.h"
#include "lib/config.h"
#include "lib/io.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEND_CHUNK (64 * 1024)
/* Refill when the output falls below this; stop reading above it. */
#define SEND_LOW (64 * 1024)
#define SEND_HIGH (256 * 1024)

/* The message numbered n (1-based) when it exists and is not deleted. */
static const struct store_msg *lookup(struct pop3_session *s, uint32_t n)
{
	if (n == 0 || n > s->msgs.count) {
		pop3_reply_error(s, "There is no message %u", n);
		return NULL;
	}
	if (s->deleted[n - 1]) {
		pop3_reply_error(s, "Message %u is deleted", n);
		return NULL;
	}
	return &s->msgs.msgs[n - 1];
}

void pop3_cmd_stat(struct pop3_session *s, const struct pop3_command *cmd)
{
	pop3_reply(s, "+OK %zu %llu", s->msgs.count - s->ndeleted,
		   (unsigned long long)(s->total_size - s->deleted_size));
}

void pop3_cmd_list(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->has_msg) {
		const struct store_msg *m = lookup(s, cmd->msg);
		if (m != NULL)
			pop3_reply(s, "+OK %u %llu", cmd->msg, (unsigned long long)m->size);
		return;
	}
	io_printf(s->core.io, "+OK %zu messages (%llu octets)\r\n", s->msgs.count - s->ndeleted,
		  (unsigned long long)(s->total_size - s->deleted_size));
	for (size_t i = 0; i < s->msgs.count; i++)
		if (!s->deleted[i])
			io_printf(s->core.io, "%zu %llu\r\n", i + 1,
				  (unsigned long long)s->msgs.msgs[i].size);
	io_write(s->core.io, ".\r\n", 3);
}

void pop3_cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd)
{
	char id[STORE_STABLE_ID_MAX + 1];
	if (cmd->has_msg) {
		const struct store_msg *m = lookup(s, cmd->msg);
		if (m != NULL) {
			store_msg_stable_id(m, id);
			pop3_reply(s, "+OK %u %s", cmd->msg, id);
		}
		return;
	}
	io_write(s->core.io, "+OK\r\n", 5);
	for (size_t i = 0; i < s->msgs.count; i++) {
		if (s->deleted[i])
			continue;
		store_msg_stable_id(&s->msgs.msgs[i], id);
		io_printf(s->core.io, "%zu %s\r\n", i + 1, id);
	}
	io_write(s->core.io, ".\r\n", 3);
}

void pop3_cmd_dele(struct pop3_session *s, const struct pop3_command *cmd)
{
	const struct store_msg *m = lookup(s, cmd->msg);
	if (m == NULL)
		return;
	s->deleted[cmd->msg - 1] = true;
	s->ndeleted++;
	s->deleted_size += m->size;
	pop3_reply(s, "+OK Message %u deleted", cmd->msg);
}

void pop3_cmd_rset(struct pop3_session *s, const struct pop3_command *cmd)
{
	memset(s->deleted, 0, s->msgs.count * sizeof(bool));
	s->ndeleted = 0;
	s->deleted_size = 0;
	pop3_reply(s, "+OK %zu messages (%llu octets)", s->msgs.count, (unsigned long long)s->total_size);
}

/* ---- RETR and TOP ---- */

/* Fast path (RETR of a CRLF file): only lines that begin with '.' change
   (RFC 1939 section 3), so the chunk goes into the output buffer in one
   reservation, copied in runs between them.  The scan looks for '.' rather
   than for line ends: dots are the rarer byte (base64 has none), so
   memchr() runs long. */
static void send_stuffed(struct pop3_session *s, const char *p, size_t n)
{
	struct pop3_send *t = &s->send;
	const char *end = p + n;
	/* At most one extra dot per two bytes (".\n" lines). */
	char *start = io_output_reserve(s->core.io, n + n / 2 + 1);
	char *o = start;
	const char *run = p;
	for (const char *q = p; (q = memchr(q, '.', (size_t)(end - q))) != NULL; q++) {
		if (q == p ? !t->line_start : q[-1] != '\n')
			continue;
		/* Up to and including this dot, then the dot once more. */
		memcpy(o, run, (size_t)(q + 1 - run));
		o += q + 1 - run;
		*o++ = '.';
		run = q + 1;
	}
	memcpy(o, run, (size_t)(end - run));
	o += end - run;
	io_output_commit(s->core.io, (size_t)(o - start));
	t->prev = end[-1];
	t->line_start = t->prev == '\n';
}

/* Line by line: TOP (counting body lines) and files with bare LFs.
   Returns true when TOP has sent all it should. */
static bool send_lines(struct pop3_session *s, const char *p, size_t n)
{
	struct pop3_send *t = &s->send;
	const char *end = p + n;
	while (p < end) {
		if (t->line_start && *p == '.')
			io_write(s->core.io, ".", 1);
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			io_write(s->core.io, p, (size_t)(end - p));
			t->line_len += (size_t)(end - p);
			t->prev = end[-1];
			t->line_start = false;
			return false;
		}
		size_t seg = (size_t)(nl - p);
		char before = seg > 0 ? nl[-1] : t->prev;
		if (t->bare_lf && before != '\r') {
			io_write(s->core.io, p, seg);
			io_write(s->core.io, "\r\n", 2);
		} else {
			io_write(s->core.io, p, seg + 1);
		}
		size_t line_len = t->line_len + seg;
		bool empty = line_len == 0 || (line_len == 1 && before == '\r');
		t->line_len = 0;
		t->prev = '\n';
		t->line_start = true;
		p = nl + 1;
		if (!t->top)
			continue;
		if (!t->in_body) {
			if (empty) {
				t->in_body = true;
				if (t->lines_left == 0)
					return true;
			}
		} else if (--t->lines_left == 0) {
			return true;
		}
	}
	return false;
}

static void send_finish(struct pop3_session *s)
{
	struct pop3_send *t = &s->send;
	if (!t->line_start)
		io_write(s->core.io, "\r\n", 2);
	io_write(s->core.io, ".\r\n", 3);
	close(t->fd);
	t->fd = -1;
	t->active = false;
	io_want_drained(s->core.io, 0);
	s->retrieved++;
	s->retrieved_bytes += t->sent;
}

void pop3_send_pump(struct pop3_session *s)
{
	struct pop3_send *t = &s->send;
	while (t->active && io_output_length(s->core.io) < SEND_HIGH) {
		ssize_t n = read(t->fd, s->send_buf, SEND_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* "+OK" went out already: all we can do is hang up. */
			log_error("pop3 read-failed session=%s error=%s", s->core.id, strerror(errno));
			close(t->fd);
			t->fd = -1;
			t->active = false;
			pop3_session_close(s, NULL);
			return;
		}
		if (n == 0) {
			send_finish(s);
			return;
		}
		t->sent += (uint64_t)n;
		bool done = t->top || t->bare_lf ? send_lines(s, s->send_buf, (size_t)n)
						 : (send_stuffed(s, s->send_buf, (size_t)n), false);
		/* A short read of a regular file is its end: saves a read() per
		   message (most fit in one chunk). */
		if (done || n < SEND_CHUNK) {
			send_finish(s);
			return;
		}
	}
	if (t->active)
		io_want_drained(s->core.io, SEND_LOW);
}

void pop3_cmd_retr(struct pop3_session *s, const struct pop3_command *cmd)
{
	const struct store_msg *m = lookup(s, cmd->msg);
	if (m == NULL)
		return;
	int fd;
	char *error = NULL;
	int rc = store_msg_open(s->inbox, m, &fd, &error);
	if (rc <= 0) {
		if (rc < 0)
			log_error("pop3 open-failed session=%s uid=%u error=%s", s->core.id, m->uid, error);
		free(error);
		/* Gone: another program removed it during the session. */
		pop3_reply(s,
			   rc == 0 ? "-ERR Message %u was removed by another program"
				   : "-ERR [SYS/TEMP] Cannot read message %u",
			   cmd->msg);
		return;
	}
	struct pop3_send *t = &s->send;
	memset(t, 0, sizeof(*t));
	t->fd = fd;
	t->active = true;
	t->line_start = true;
	t->bare_lf = m->bare_lf;
	t->top = cmd->cmd == POP3_CMD_TOP;
	t->lines_left = cmd->lines;
	if (s->send_buf == NULL)
		s->send_buf = xmalloc(SEND_CHUNK);
	if (t->top) {
		io_write(s->core.io, "+OK\r\n", 5);
	} else {
		char status[48];
		int len =
		    snprintf(status, sizeof(status), "+OK %llu octets\r\n", (unsigned long long)m->size);
		io_write(s->core.io, status, (size_t)len);
	}
	pop3_send_pump(s);
}

/* ---- UPDATE ---- */

struct update_job {
	struct pop3_session *s;
	uint32_t *uids;
	size_t count;
	int expunged;
	char *error;
};

static void update_work(void *arg)
{
	struct update_job *job = arg;
	job->expunged = store_msg_expunge(job->s->inbox, job->uids, job->count, &job->error);
}

static void update_done(void *arg)
{
	struct update_job *job = arg;
	struct pop3_session *s = job->s;
	if (job->expunged < 0) {
		log_error("pop3 update-failed session=%s user=%s error=%s", s->core.id, s->address,
			  job->error);
	} else {
		log_info("pop3 update session=%s user=%s deleted=%d", s->core.id, s->address, job->expunged);
	}
	if (!s->core.dead) {
		if (job->expunged < 0)
			pop3_session_close(s, "-ERR [SYS/TEMP] Some deleted messages were not removed");
		else
			pop3_session_close(s, "+OK postoffice POP3 signing off");
	}
	free(job->uids);
	free(job->error);
	free(job);
	s->core.busy = false;
	session_reap(&s->core);
}

void pop3_update(struct pop3_session *s)
{
	s->state = POP3_ST_UPDATE;
	if (s->ndeleted == 0) {
		log_info("pop3 update session=%s user=%s deleted=0", s->core.id, s->address);
		pop3_session_close(s, "+OK postoffice POP3 signing off");
		return;
	}
	/* The deletion goes ahead even if the client vanishes meanwhile: QUIT
	   was received, so the session is in the UPDATE state. */
	struct update_job *job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->uids = xcalloc(s->ndeleted, sizeof(uint32_t));
	for (size_t i = 0; i < s->msgs.count; i++)
		if (s->deleted[i])
			job->uids[job->count++] = s->msgs.msgs[i].uid;
	session_busy(&s->core);
	jobs_submit(update_work, update_done, job);
}

void pop3_mail_free(struct pop3_session *s)
{
	if (s->send.fd >= 0)
		close(s->send.fd);
	s->send.fd = -1;
	s->send.active = false;
	free(s->send_buf);
	s->send_buf = NULL;
	store_msg_list_free(&s->msgs);
	free(s->deleted);
	s->deleted = NULL;
	store_mailbox_close(&s->inbox);
	store_close(&s->store); /* and its maildrop lock */
	free(s->address);
	s->address = NULL;
}
