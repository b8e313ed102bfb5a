/* `postoffice sendmail` (also a symlink named sendmail): the interface
   every Unix program expects.  The message is submitted to the local
   server's SMTP listener; when the server is down, or it will not take a
   recipient (relaying needs AUTH there), the message is written into the
   queue directly and durably, where the queue runner picks it up. */
#include "cli/cli.h"
#include "delivery/delivery.h"
#include "delivery/delivery_dkim.h"
#include "lib/buf.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/compose.h"
#include "mime/header.h"
#include "mime/path.h"
#include "queue/spool.h"
#include "smtp/smtp_client.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_NOUSER 67
#define EX_TEMPFAIL 75

static void sendmail_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: sendmail [-t] [-i] [-f SENDER] [-F NAME] [-oi] [-bm] [--] [RECIPIENT...] < message\n\n"
	    "Sends the message on standard input, as sendmail(8) does.\n\n"
	    "  -t         also send to the To, Cc and Bcc addresses of the header\n"
	    "             (Bcc is removed)\n"
	    "  -i, -oi    a line with a single dot does not end the message\n"
	    "  -f SENDER  envelope sender (default: LOGIN@HOSTNAME)\n"
	    "  -F NAME    full name for a From field that the message lacks\n"
	    "  -bm        read mail and deliver it (the default)\n"
	    "Other -o options and -v are accepted and ignored.\n"
	    "Addresses are local@domain or <local@domain> (RFC 5321); a bad one is\n"
	    "refused and nothing is sent: exit 64, or 65 for one in the header (-t).\n");
}

struct sendmail_opts {
	bool extract, ignore_dots;
	const char *sender, *fullname;
	char **rcpts;
	size_t nrcpts;
};

static void push(struct pool *pool, struct sendmail_opts *o, const char *addr)
{
	o->rcpts = xreallocarray(o->rcpts, o->nrcpts + 1, sizeof(char *));
	o->rcpts[o->nrcpts++] = pool_strdup(pool, addr);
}

static int parse_args(struct pool *pool, int argc, char **argv, struct sendmail_opts *o)
{
	static const char *const with_arg = "fFrNBRVXCOhqoL";
	bool only_rcpts = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_rcpts || a[0] != '-' || a[1] == '\0') {
			push(pool, o, a);
			continue;
		}
		if (!strcmp(a, "--")) {
			only_rcpts = true;
			continue;
		}
		char opt = a[1];
		if (opt == 't' && a[2] == '\0')
			o->extract = true;
		else if ((opt == 'i' && a[2] == '\0') || !strcmp(a, "-oi"))
			o->ignore_dots = true;
		else if (!strcmp(a, "-bm") || !strcmp(a, "-v") || opt == 'o' || !strcmp(a, "-U"))
			; /* accepted and ignored (-oem, -odb, ...) */
		else if (strchr(with_arg, opt) != NULL && opt != 'o') {
			const char *val = a[2] != '\0' ? a + 2 : i + 1 < argc ? argv[++i] : NULL;
			if (val == NULL) {
				fprintf(stderr, "sendmail: option -%c needs a value\n", opt);
				return -1;
			}
			if (opt == 'f' || opt == 'r')
				o->sender = val;
			else if (opt == 'F')
				o->fullname = val;
		} else {
			fprintf(stderr, "sendmail: unsupported option %s\n", a);
			return -1;
		}
	}
	return 0;
}

/* Reads the message, ending lines with CRLF; without -i a line "." ends it. */
static void read_message(bool ignore_dots, struct buf *out)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool first = true;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		size_t len = (size_t)n;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (!ignore_dots && len == 1 && line[0] == '.')
			break;
		if (first && len >= 5 && !strncmp(line, "From ", 5)) {
			first = false;
			continue; /* an mbox separator line */
		}
		first = false;
		buf_append(out, line, len);
		buf_append_str(out, "\r\n");
	}
	free(line);
}

/* Collects -t recipients, drops Bcc and adds From/Date/Message-ID when
   missing.  Returns the new message in out. */
static void prepare_header(struct pool *pool, struct sendmail_opts *o, const struct buf *in, struct buf *out)
{
	struct mime_headers *h = mime_headers_parse(pool, in->data != NULL ? in->data : "", in->len, NULL);
	struct buf added = BUF_INIT;
	if (mime_headers_find(h, "From") == NULL) {
		/* -F is a full name, not a phrase: quote it (RFC 5322 3.2.4)
		   so that "Doe, John" stays one name; the header writer
		   re-encodes it as it needs. */
		struct buf from = BUF_INIT;
		if (o->fullname != NULL && o->fullname[0] != '\0') {
			buf_append_char(&from, '"');
			for (const char *p = o->fullname; *p != '\0'; p++) {
				if (*p == '"' || *p == '\\')
					buf_append_char(&from, '\\');
				if ((unsigned char)*p >= 0x20 && *p != 0x7f)
					buf_append_char(&from, *p);
			}
			buf_printf(&from, "\" <%s>", o->sender);
		} else {
			buf_append_str(&from, o->sender);
		}
		mime_header_write(&added, "From", buf_cstr(&from));
		buf_free(&from);
	}
	if (mime_headers_find(h, "Date") == NULL) {
		buf_append_str(&added, "Date: ");
		mime_date_format(&added, time(NULL));
		buf_append_str(&added, "\r\n");
	}
	if (mime_headers_find(h, "Message-ID") == NULL) {
		const char *at = strrchr(o->sender, '@');
		buf_append_str(&added, "Message-ID: ");
		mime_message_id_generate(&added, at != NULL ? at + 1 : "localhost");
		buf_append_str(&added, "\r\n");
	}
	buf_append(out, added.data, added.len);
	buf_free(&added);
	size_t pos = 0;
	for (unsigned i = 0; i < h->count; i++) {
		const struct mime_header_field *f = &h->fields[i];
		bool bcc = f->name_len == 3 && !strncasecmp(f->name, "Bcc", 3);
		bool to = (f->name_len == 2 && !strncasecmp(f->name, "To", 2)) ||
			  (f->name_len == 2 && !strncasecmp(f->name, "Cc", 2));
		if (o->extract && (bcc || to)) {
			char *value = xstrndup(f->value, f->value_len);
			for (struct mime_address *a = mime_address_parse(pool, value, f->value_len);
			     a != NULL; a = a->next) {
				if (a->flags & (MIME_ADDR_GROUP_START | MIME_ADDR_GROUP_END) ||
				    a->domain == NULL)
					continue;
				struct buf spec = BUF_INIT;
				mime_address_format_spec(&spec, a);
				push(pool, o, spec.data);
				buf_free(&spec);
			}
			free(value);
		}
		buf_append(out, in->data + pos, f->offset - pos);
		pos = f->offset + f->size;
		if (!bcc)
			buf_append(out, in->data + f->offset, f->size);
	}
	buf_append(out, in->data + pos, in->len - pos);
	if (h->count == 0 || (h->flags & MIME_HEADERS_NO_END)) {
		/* No header at all (or no blank line): keep the body a body. */
		if (h->count == 0 && in->len > 0) {
			buf_truncate(out, out->len - in->len);
			buf_append_str(out, "\r\n");
			buf_append(out, in->data, in->len);
		}
	}
}

/* An envelope address from the command line or the header: RFC 5321 Path
   syntax (RFC 6531 with UTF-8), with or without the angle brackets.
   Returns it as the spool and the SMTP client keep it ("local@domain", ""
   for "<>" as sender), or NULL with a static *error_r: a line break, a
   ">" or a space in it would otherwise reach the SMTP session. */
static const char *envelope_address(struct pool *pool, const char *arg, bool sender, const char **error_r)
{
	unsigned flags = MIME_PATH_ALLOW_UTF8 | MIME_PATH_ALLOW_NO_ANGLE |
			 (sender ? MIME_PATH_ALLOW_NULL : MIME_PATH_ALLOW_POSTMASTER);
	size_t len = strlen(arg), used;
	struct mime_path p;
	if (mime_path_parse(pool, arg, len, flags, &p, &used, error_r) < 0)
		return NULL;
	if (used != len) {
		*error_r = "invalid character in address";
		return NULL;
	}
	if (p.flags & MIME_PATH_NULL)
		return "";
	if (p.flags & MIME_PATH_POSTMASTER)
		return p.local;
	struct mime_address a = {.local = p.local, .domain = p.domain};
	struct buf b = BUF_INIT;
	mime_address_format_spec(&b, &a);
	const char *out = pool_strdup(pool, buf_cstr(&b));
	buf_free(&b);
	return out;
}

/* Replaces the sender (when check_sender) and recipients from index first
   on by their envelope form; prints the first bad one. */
static int check_addresses(struct pool *pool, struct sendmail_opts *o, bool check_sender, size_t first,
			   const char *where)
{
	const char *error;
	char shown[256];
	if (check_sender) {
		const char *sender = envelope_address(pool, o->sender, true, &error);
		if (sender == NULL) {
			fprintf(stderr, "sendmail: invalid sender address '%s': %s\n",
				log_printable(shown, sizeof(shown), o->sender, strlen(o->sender)), error);
			return -1;
		}
		o->sender = sender;
	}
	for (size_t i = first; i < o->nrcpts; i++) {
		const char *rcpt = envelope_address(pool, o->rcpts[i], false, &error);
		if (rcpt == NULL) {
			fprintf(stderr, "sendmail: invalid recipient address%s '%s': %s\n", where,
				log_printable(shown, sizeof(shown), o->rcpts[i], strlen(o->rcpts[i])), error);
			return -1;
		}
		o->rcpts[i] = (char *)rcpt;
	}
	return 0;
}

static char *default_sender(const struct config *cfg)
{
	struct passwd *pw = getpwuid(getuid());
	return xasprintf("%s@%s", pw != NULL ? pw->pw_name : "nobody", cfg->hostname);
}

/* Into the spool through delivery/delivery.h, for the queue runner. */
static int spool(const struct config *cfg, const struct sendmail_opts *o, char **rcpts, size_t n,
		 const struct buf *msg)
{
	/* Run as root: the files belong to the server user, like the spool. */
	struct passwd *pw = geteuid() == 0 ? getpwnam(cfg->user) : NULL;
	if (pw != NULL)
		queue_set_owner(pw->pw_uid, pw->pw_gid);
	char id[ID_SIZE];
	id_new(id);
	struct delivery_settings set = {
	    .data_dir = cfg->data_dir,
	    .id = id,
	    .return_path = o->sender,
	    .mode = 0640,
	    .set_owner = pw != NULL,
	    .uid = pw != NULL ? pw->pw_uid : (uid_t)-1,
	    .gid = pw != NULL ? pw->pw_gid : (gid_t)-1,
	};
	char *error = NULL;
	struct delivery *d = delivery_begin(&set, &error);
	if (d == NULL) {
		fprintf(stderr, "sendmail: the message could not be queued: %s\n", error);
		free(error);
		return -1;
	}
	if (delivery_sign_local(d, cfg->data_dir, &error) < 0) {
		fprintf(stderr, "sendmail: DKIM keys: %s\n", error);
		free(error);
		error = NULL;
	}
	struct buf data = BUF_INIT;
	buf_printf(&data, "Received: (from uid %ld) by %s (postoffice sendmail) id %s;\r\n\t", (long)getuid(),
		   cfg->hostname, id);
	mime_date_format(&data, time(NULL));
	buf_append_str(&data, "\r\n");
	buf_append(&data, msg->data, msg->len);
	delivery_append(d, data.data, data.len);
	struct queue_rcpt *qr = xcalloc(n, sizeof(*qr));
	bool utf8 = utf8_has_8bit(o->sender, strlen(o->sender));
	for (size_t i = 0; i < n; i++) {
		qr[i].address = rcpts[i];
		utf8 |= utf8_has_8bit(rcpts[i], strlen(rcpts[i]));
	}
	struct queue_envelope env = {
	    .sender = o->sender,
	    .body = utf8_has_8bit(msg->data, msg->len) ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT,
	    .smtputf8 = utf8,
	    .client_ip = "127.0.0.1",
	    .helo = "localhost",
	    .rcpts = qr,
	    .nrcpts = n,
	};
	delivery_set_remote(d, &env);
	int rc = delivery_commit(d, &error);
	if (rc < 0) {
		fprintf(stderr, "sendmail: the message could not be queued: %s\n", error);
		free(error);
	} else {
		fprintf(stderr, "sendmail: queued as %s\n", id);
	}
	delivery_free(&d);
	free(qr);
	buf_free(&data);
	return rc;
}

/* Submits over SMTP to the local listener.  Recipients the server would not
   take for a temporary reason or because relaying needs AUTH are returned
   for the spool.  Returns 0, or an exit code for refused recipients. */
static int submit(const struct config *cfg, const struct sendmail_opts *o, const struct buf *msg,
		  char ***spool_r, size_t *nspool_r)
{
	const struct listen_addr *l = &cfg->smtp_listen;
	*spool_r = NULL;
	*nspool_r = 0;
	if (!l->enabled || l->port <= 0) {
		*spool_r = xmemdup(o->rcpts, o->nrcpts * sizeof(char *));
		*nspool_r = o->nrcpts;
		return 0;
	}
	const char *host = l->host == NULL || l->host[0] == '\0' || !strcmp(l->host, "0.0.0.0") ? "127.0.0.1"
			   : !strcmp(l->host, "::")                                             ? "::1"
												: l->host;
	struct smtp_client_settings set = {
	    .helo_name = "localhost",
	    .tls = TLS_POLICY_NONE,
	    .peer_name = "the local server",
	    .connect_timeout = 10,
	    .command_timeout = 60,
	    .data_timeout = 120,
	};
	struct smtp_client_rcpt *cr = xcalloc(o->nrcpts, sizeof(*cr));
	for (size_t i = 0; i < o->nrcpts; i++) {
		cr[i].address = o->rcpts[i];
		/* Not delivered until the server says so: when the session
		   fails before the transaction (server down, greeting or EHLO
		   refused) the client never sets these, and every recipient
		   must go to the spool. */
		cr[i].status = SMTP_CLIENT_TEMPFAIL;
	}
	struct smtp_client_msg m = {
	    .sender = o->sender,
	    .body = utf8_has_8bit(msg->data, msg->len) ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT,
	    .rcpts = cr,
	    .nrcpts = o->nrcpts,
	    .data = msg->data,
	    .size = msg->len,
	};
	char *reply = NULL, *error = NULL;
	int rc = 0;
	if (smtp_client_submit_sync(host, l->port, cfg->dns_resolver, &set, &m, &reply, &error) < 0) {
		/* No recipient got an answer from the server (it cannot be
		   resolved, is down, ...): say why before spooling. */
		bool answered = false;
		for (size_t i = 0; i < o->nrcpts; i++)
			answered |= cr[i].remote;
		if (!answered)
			fprintf(stderr, "sendmail: not submitted via %s:%d: %s\n", host, l->port,
				error != NULL ? error : "failed");
		for (size_t i = 0; i < o->nrcpts; i++) {
			const struct smtp_client_rcpt *r = &cr[i];
			if (r->status == SMTP_CLIENT_OK)
				continue;
			bool relay = r->status == SMTP_CLIENT_PERMFAIL && !strcmp(r->enhanced, "5.7.1");
			if (r->status == SMTP_CLIENT_TEMPFAIL || relay || !r->remote) {
				*spool_r = xreallocarray(*spool_r, *nspool_r + 1, sizeof(char *));
				(*spool_r)[(*nspool_r)++] = o->rcpts[i];
			} else {
				fprintf(stderr, "sendmail: <%s> refused: %s\n", r->address,
					r->reply ? r->reply : "?");
				rc = EX_NOUSER;
			}
		}
	}
	smtp_client_msg_clear(&m);
	free(cr);
	free(reply);
	free(error);
	return rc;
}

static int sendmail_run(struct config *cfg, int argc, char **argv)
{
	struct pool *pool = pool_create(4096);
	struct sendmail_opts o;
	memset(&o, 0, sizeof(o));
	char *sender = NULL;
	int rc = EX_USAGE;
	struct buf raw = BUF_INIT, msg = BUF_INIT;
	if (parse_args(pool, argc, argv, &o) < 0) {
		sendmail_usage(stderr);
		goto out;
	}
	if (o.sender == NULL || o.sender[0] == '\0')
		o.sender = sender = default_sender(cfg);
	/* Bad command-line addresses are refused before the message is read:
	   the caller still has it.  Addresses from the header (-t) can only be
	   checked after; a bad one fails the whole message, which is then
	   neither submitted nor spooled. */
	size_t nargs = o.nrcpts;
	if (check_addresses(pool, &o, true, 0, "") < 0) {
		rc = EX_USAGE;
		goto out;
	}
	read_message(o.ignore_dots, &raw);
	prepare_header(pool, &o, &raw, &msg);
	if (o.nrcpts == 0) {
		fprintf(stderr, "sendmail: no recipients%s\n",
			o.extract ? " in the header" : " (use -t to read them from the header)");
		rc = EX_USAGE;
		goto out;
	}
	if (check_addresses(pool, &o, false, nargs, " in the header") < 0) {
		fprintf(stderr, "sendmail: the message was not sent\n");
		rc = EX_DATAERR;
		goto out;
	}
	char **spool_rcpts = NULL;
	size_t nspool = 0;
	rc = submit(cfg, &o, &msg, &spool_rcpts, &nspool);
	if (nspool > 0 && spool(cfg, &o, spool_rcpts, nspool, &msg) < 0)
		rc = EX_TEMPFAIL;
	free(spool_rcpts);
out:
	buf_free(&raw);
	buf_free(&msg);
	free(sender);
	free(o.rcpts);
	pool_destroy(&pool);
	return rc;
}

const struct cli_command cmd_sendmail = {
    .name = "sendmail",
    .synopsis = "[-t] [-i] [-f SENDER] [-F NAME] [RECIPIENT...] < message",
    .summary = "sendmail-compatible submission of a message on standard input",
    .run = sendmail_run,
    .usage = sendmail_usage,
};
