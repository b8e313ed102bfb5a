/* What `postoffice fetch` shares between its POP3 session (cmd_fetch.c)
   and its IMAP session (fetch_imap.c): error output, the connection
   settings and the local storage of a message (cli/fetch.h). */
#include "cli/fetch.h"
#include "delivery/delivery.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int fetch_fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "postoffice fetch: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return -1;
}

static bool fetch_is_loopback(const char *host)
{
	return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

struct client_conn_settings fetch_conn_settings(const struct config *cfg, const struct fetch_opts *o,
						int timeout)
{
	return (struct client_conn_settings){
	    .host = o->host,
	    .port = o->port,
	    .dns_server = cfg->dns_resolver,
	    .implicit_tls = o->tls,
	    .verify = !o->insecure && !fetch_is_loopback(o->host),
	    .timeout = timeout,
	};
}

/* ---- local storage ---- */

/* Into DIR/new through delivery/delivery.h: written in DIR/tmp,
   fdatasynced, linked into new/ and new/ fsynced. */
static int deliver_maildir_file(const char *dir, const char *data, size_t len)
{
	char *tmp = xasprintf("%s/tmp", dir);
	struct delivery_settings set = {.tmp_dir = tmp, .mode = 0600};
	char *error = NULL;
	struct delivery *d = delivery_begin(&set, &error);
	int rc = -1;
	if (d != NULL) {
		delivery_append(d, data, len);
		delivery_add_maildir(d, dir);
		rc = delivery_commit(d, &error);
		delivery_free(&d);
	}
	if (rc < 0) {
		fetch_fail("%s", error);
		free(error);
	}
	free(tmp);
	return rc;
}

/* The envelope sender for the mbox "From " line: the Return-Path.  data
   is NUL-terminated. */
static char *mbox_sender(const char *data)
{
	const char *p = data;
	if (strncasecmp(p, "Return-Path:", 12) == 0) {
		const char *lt = strchr(p, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		const char *eol = strchr(p, '\n');
		if (gt != NULL && gt - lt > 1 && (eol == NULL || gt < eol))
			return xstrndup(lt + 1, (size_t)(gt - lt - 1));
	}
	return xstrdup("MAILER-DAEMON");
}

/* mboxrd: LF line ends, ">" before lines matching ^>*From . */
static int deliver_mbox_file(const char *path, const char *data, size_t size)
{
	struct buf out = BUF_INIT;
	char *sender = mbox_sender(data);
	time_t now = time(NULL);
	char date[64];
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", gmtime(&now));
	buf_printf(&out, "From %s %s\n", sender, date);
	free(sender);
	const char *p = data, *end = data + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		const char *q = p;
		while (q < stop && *q == '>')
			q++;
		if ((size_t)(stop - q) >= 5 && memcmp(q, "From ", 5) == 0)
			buf_append_char(&out, '>');
		size_t len = (size_t)(stop - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		buf_append(&out, p, len);
		buf_append_char(&out, '\n');
		p = nl ? nl + 1 : end;
	}
	buf_append_char(&out, '\n');
	char *error = NULL;
	int rc = fs_append_durable(path, out.data, out.len, 0600, &error);
	if (rc < 0) {
		fetch_fail("%s", error);
		free(error);
	}
	buf_free(&out);
	return rc;
}

int fetch_store(const struct fetch_opts *o, const char *data, size_t len)
{
	int rc =
	    o->maildir ? deliver_maildir_file(o->maildir, data, len) : deliver_mbox_file(o->mbox, data, len);
	if (rc == 0 && o->progress != NULL)
		progress_add(o->progress, len);
	return rc;
}
