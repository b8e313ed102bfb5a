/* IDLE (RFC 2177): the client waits for "DONE" while the server sends
   untagged updates as soon as the mailbox's inotify watch fires (new mail
   delivered by SMTP arrives as EXISTS within a second, no polling). */
#include "imap/imap_private.h"
#include "lib/io.h"
#include "lib/xalloc.h"

#include <strings.h>

/* The idlers of a mailbox are a doubly linked list: 10,000 sessions in
   IDLE leave it in constant time each. */
static void idlers_remove(struct imap_session *s)
{
	if (s->idle_pprev == NULL)
		return;
	*s->idle_pprev = s->idle_next;
	if (s->idle_next != NULL)
		s->idle_next->idle_pprev = s->idle_pprev;
	s->idle_next = NULL;
	s->idle_pprev = NULL;
}

static void idlers_add(struct imap_session *s, struct imap_mbox *mbox)
{
	s->idle_next = mbox->idlers;
	if (s->idle_next != NULL)
		s->idle_next->idle_pprev = &s->idle_next;
	s->idle_pprev = &mbox->idlers;
	mbox->idlers = s;
}

int imap_cmd_idle(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	if (c->count > 0) {
		*error_r = "IDLE takes no arguments";
		return -1;
	}
	s->idling = true;
	if (s->view != NULL) {
		imap_view_update(s, true);
		idlers_add(s, s->view->mbox);
	}
	io_write_str(s->core.io, "+ idling\r\n");
	return 0;
}

void imap_idle_stop(struct imap_session *s)
{
	idlers_remove(s);
	s->idling = false;
}

void imap_idle_input(struct imap_session *s, const char *line, size_t len)
{
	imap_idle_stop(s);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_tagged(s, "OK", "IDLE terminated");
	else
		imap_tagged(s, "BAD", "Expected DONE");
}

void imap_idle_notify(struct imap_mbox *mbox)
{
	struct imap_session *next;
	for (struct imap_session *s = mbox->idlers; s != NULL; s = next) {
		next = s->idle_next;
		imap_view_update(s, true);
	}
}
