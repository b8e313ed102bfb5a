/* `postoffice send`: composes a message (text, HTML, inline images,
   attachments) with the MIME composer and submits it with the SMTP client
   the relay uses, as msmtp and mutt do. */
#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/compose.h"
#include "mime/header.h"
#include "mime/path.h"
#include "smtp/smtp_client.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void send_usage(FILE *out)
{
	fprintf(out, "usage: postoffice send --from ADDR --to ADDR [options] [< body]\n\n"
		     "Composes a message and submits it over SMTP.  The text body comes from\n"
		     "--body FILE, or standard input when it is not a terminal.\n\n"
		     "  --from ADDR         sender (\"Name <a@b>\" or a@b); also the envelope sender\n"
		     "  --to, --cc ADDRS    recipients (repeatable, comma-separated lists allowed)\n"
		     "  --bcc ADDRS         recipients not shown in the header\n"
		     "  --subject TEXT      subject (UTF-8 is encoded as RFC 2047 needs)\n"
		     "  --body FILE         text body (\"-\" for standard input)\n"
		     "  --html FILE         HTML alternative\n"
		     "  --inline FILE       image for the HTML, which refers to it as cid:NAME\n"
		     "                      (NAME = the file's base name); repeatable\n"
		     "  --attach FILE       attachment; repeatable\n"
		     "  --header 'N: V'     extra header field; repeatable\n"
		     "  --server HOST:PORT  submission server (default: this server's submission\n"
		     "                      listener from the configuration); HOST is resolved\n"
		     "                      through the [dns] resolver of the configuration\n"
		     "  --starttls          require STARTTLS;  --tls: implicit TLS (port 465)\n"
		     "  --insecure          do not verify the server's certificate\n"
		     "  --user USER         authenticate (AUTH PLAIN/LOGIN)\n"
		     "  --password-file F   the password's file (first line); else it is prompted\n"
		     "  --dry-run           print the message instead of sending it\n");
}

struct send_opts {
	const char *from, *subject, *body, *html, *server, *user, *password_file;
	char **to, **cc, **bcc, **inlines, **attach, **headers;
	size_t nto, ncc, nbcc, ninlines, nattach, nheaders;
	bool starttls, tls, insecure, dry_run;
};

static void push(char ***list, size_t *n, const char *v)
{
	*list = xreallocarray(*list, *n + 1, sizeof(char *));
	(*list)[(*n)++] = (char *)v;
}

static int read_file(const char *path, struct buf *out)
{
	if (!strcmp(path, "-")) {
		char tmp[65536];
		ssize_t n;
		while ((n = read(STDIN_FILENO, tmp, sizeof(tmp))) > 0)
			buf_append(out, tmp, (size_t)n);
		return n < 0 ? -1 : 0;
	}
	char *data = NULL, *error = NULL;
	size_t len;
	if (fs_read_file(path, &data, &len, &error) < 0) {
		fprintf(stderr, "postoffice send: %s\n", error);
		free(error);
		return -1;
	}
	buf_append(out, data, len);
	free(data);
	return 0;
}

/* Text given on the command line, shown in an error. */
static const char *shown(const char *text)
{
	static char out[256];
	return log_printable(out, sizeof(out), text, strlen(text));
}

/* Appends the addr-specs of an address list to envelope, each checked as
   the SMTP client will send it (an RFC 5321 Path). */
static int add_addresses(struct pool *pool, const char *list, char ***env, size_t *n)
{
	int count = 0;
	for (struct mime_address *a = mime_address_parse(pool, list, strlen(list)); a != NULL; a = a->next) {
		if (a->flags & (MIME_ADDR_GROUP_START | MIME_ADDR_GROUP_END))
			continue;
		if (a->domain == NULL || a->local[0] == '\0') {
			fprintf(stderr, "postoffice send: '%s' is not an address\n", shown(list));
			return -1;
		}
		struct buf b = BUF_INIT;
		mime_address_format_spec(&b, a);
		const char *error;
		if (mime_path_check_address(buf_cstr(&b), MIME_PATH_ALLOW_UTF8, &error) < 0) {
			fprintf(stderr, "postoffice send: '%s' is not a valid address: %s\n", shown(list),
				error);
			buf_free(&b);
			return -1;
		}
		push(env, n, pool_strdup(pool, b.data));
		buf_free(&b);
		count++;
	}
	if (count == 0) {
		fprintf(stderr, "postoffice send: '%s' holds no address\n", shown(list));
		return -1;
	}
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s != NULL ? s + 1 : path;
}

/* The HTML refers to inline images as cid:FILENAME; the composer makes
   unique Content-IDs, so the references are rewritten. */
static void replace_all(struct buf *html, const char *from, const char *to)
{
	struct buf out = BUF_INIT;
	size_t flen = strlen(from);
	const char *p = html->data != NULL ? html->data : "";
	const char *end = p + html->len;
	while (p < end) {
		const char *hit = memmem(p, (size_t)(end - p), from, flen);
		if (hit == NULL) {
			buf_append(&out, p, (size_t)(end - p));
			break;
		}
		buf_append(&out, p, (size_t)(hit - p));
		buf_append_str(&out, to);
		p = hit + flen;
	}
	buf_free(html);
	*html = out;
}

/* Adds one field; prints the error (check_options() refused what the
   composer would refuse, so this is not expected to fail). */
static int add_header(struct mime_compose *c, const char *name, const char *value)
{
	const char *error;
	if (mime_compose_header(c, name, value, &error) == 0)
		return 0;
	fprintf(stderr, "postoffice send: header %s: %s\n", shown(name), error);
	return -1;
}

/* --header 'Name: value': the name (caller frees) and the value. */
static char *split_header(const char *arg, const char **value_r)
{
	const char *colon = strchr(arg, ':');
	if (colon == NULL)
		return NULL;
	const char *value = colon + 1;
	while (*value == ' ')
		value++;
	*value_r = value;
	return xstrndup(arg, (size_t)(colon - arg));
}

static int check_text(const char *option, const char *value)
{
	if (strpbrk(value, "\r\n") == NULL)
		return 0;
	fprintf(stderr, "postoffice send: %s '%s': line breaks are not allowed\n", option, shown(value));
	return -1;
}

/* Text that goes into the header or the SMTP envelope must not hold a
   line break (it would start another header field or SMTP command), and
   --header names must be field names (RFC 5322 3.6.8). */
static int check_options(const struct send_opts *o)
{
	int rc = check_text("--from", o->from);
	if (o->subject != NULL)
		rc |= check_text("--subject", o->subject);
	for (size_t i = 0; i < o->nto; i++)
		rc |= check_text("--to", o->to[i]);
	for (size_t i = 0; i < o->ncc; i++)
		rc |= check_text("--cc", o->cc[i]);
	for (size_t i = 0; i < o->nbcc; i++)
		rc |= check_text("--bcc", o->bcc[i]);
	for (size_t i = 0; i < o->nheaders && rc == 0; i++) {
		const char *value;
		char *name = split_header(o->headers[i], &value);
		if (name == NULL) {
			fprintf(stderr, "postoffice send: --header needs 'Name: value'\n");
			rc = -1;
		} else if (!mime_header_name_valid(name, strlen(name))) {
			fprintf(stderr,
				"postoffice send: --header '%s': invalid field name (printable ASCII "
				"without spaces or ':')\n",
				shown(name));
			rc = -1;
		} else {
			rc = check_text("--header", value);
		}
		free(name);
	}
	return rc;
}

static int compose(const struct send_opts *o, struct buf *msg)
{
	struct mime_compose *c = mime_compose_create();
	int rc = -1;
	if (add_header(c, "From", o->from) < 0)
		goto out;
	for (size_t i = 0; i < o->nto; i++)
		if (add_header(c, "To", o->to[i]) < 0)
			goto out;
	for (size_t i = 0; i < o->ncc; i++)
		if (add_header(c, "Cc", o->cc[i]) < 0)
			goto out;
	if (o->subject != NULL && add_header(c, "Subject", o->subject) < 0)
		goto out;
	for (size_t i = 0; i < o->nheaders; i++) {
		const char *value;
		char *name = split_header(o->headers[i], &value);
		int hrc = name != NULL ? add_header(c, name, value) : -1;
		free(name);
		if (hrc < 0)
			goto out;
	}
	struct buf body = BUF_INIT, html = BUF_INIT, file = BUF_INIT;
	if (o->body != NULL) {
		if (read_file(o->body, &body) < 0)
			goto out_bufs;
	} else if (!isatty(STDIN_FILENO) && read_file("-", &body) < 0) {
		goto out_bufs;
	}
	mime_compose_text(c, body.data != NULL ? body.data : "", body.len);
	if (o->html != NULL && read_file(o->html, &html) < 0)
		goto out_bufs;
	for (size_t i = 0; i < o->ninlines; i++) {
		buf_reset(&file);
		if (read_file(o->inlines[i], &file) < 0)
			goto out_bufs;
		const char *cid = mime_compose_inline(c, base_name(o->inlines[i]), NULL, file.data, file.len);
		char *from = xasprintf("cid:%s", base_name(o->inlines[i]));
		char *to = xasprintf("cid:%s", cid);
		replace_all(&html, from, to);
		free(from);
		free(to);
	}
	if (o->html != NULL)
		mime_compose_html(c, html.data != NULL ? html.data : "", html.len);
	for (size_t i = 0; i < o->nattach; i++) {
		buf_reset(&file);
		if (read_file(o->attach[i], &file) < 0)
			goto out_bufs;
		mime_compose_attach(c, base_name(o->attach[i]), NULL, file.data, file.len);
	}
	mime_compose_write(c, msg);
	rc = 0;
out_bufs:
	buf_free(&body);
	buf_free(&html);
	buf_free(&file);
out:
	mime_compose_destroy(&c);
	return rc;
}

static char *read_password(const struct send_opts *o)
{
	if (o->password_file == NULL)
		return cli_read_password("Password: ", 0);
	char *data = NULL, *error = NULL;
	size_t len;
	if (fs_read_file(o->password_file, &data, &len, &error) < 0) {
		fprintf(stderr, "postoffice send: %s\n", error);
		free(error);
		return NULL;
	}
	data[strcspn(data, "\r\n")] = '\0';
	return data;
}

static int parse_server(const struct config *cfg, const struct send_opts *o, char **host_r, int *port_r)
{
	struct listen_addr a;
	char *error = NULL;
	if (o->server == NULL) {
		const struct listen_addr *l = o->tls ? &cfg->submissions_listen : &cfg->submission_listen;
		*host_r =
		    xstrdup(l->host == NULL || l->host[0] == '\0' || !strcmp(l->host, "0.0.0.0") ? "127.0.0.1"
			    : !strcmp(l->host, "::")                                             ? "::1"
												 : l->host);
		*port_r = l->port > 0 ? l->port : o->tls ? 465 : 587;
		return 0;
	}
	if (config_parse_listen(o->server, &a, &error) < 0 || a.port <= 0) {
		fprintf(stderr, "postoffice send: --server must be HOST:PORT%s%s\n", error ? ": " : "",
			error ? error : "");
		free(error);
		free(a.host);
		return -1;
	}
	*host_r = a.host;
	*port_r = a.port;
	return 0;
}

static bool is_loopback_host(const char *h)
{
	return !strcmp(h, "localhost") || !strncmp(h, "127.", 4) || !strcmp(h, "::1");
}

static int send_message(const struct config *cfg, const struct send_opts *o, struct buf *msg, char **rcpts,
			size_t nrcpts, const char *sender)
{
	char *host = NULL;
	int port;
	if (parse_server(cfg, o, &host, &port) < 0)
		return 1;
	char *password = NULL;
	if (o->user != NULL && (password = read_password(o)) == NULL) {
		free(host);
		return 1;
	}
	struct smtp_client_settings set = {
	    .helo_name = cfg->hostname,
	    .tls = o->tls || o->starttls
		       ? (o->insecure || is_loopback_host(host) ? TLS_POLICY_ENCRYPT : TLS_POLICY_VERIFY)
		       : TLS_POLICY_MAY,
	    .implicit_tls = o->tls,
	    .tls_name = host,
	    .user = o->user,
	    .password = password,
	    .peer_name = host,
	    .connect_timeout = 30,
	    .command_timeout = 120,
	    .data_timeout = 300,
	};
	struct smtp_client_rcpt *cr = xcalloc(nrcpts, sizeof(*cr));
	bool utf8 = false;
	for (size_t i = 0; i < nrcpts; i++) {
		cr[i].address = rcpts[i];
		utf8 |= utf8_has_8bit(rcpts[i], strlen(rcpts[i]));
	}
	struct smtp_client_msg m = {
	    .sender = sender,
	    .body = utf8_has_8bit(msg->data, msg->len) ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT,
	    .smtputf8 = utf8 || utf8_has_8bit(sender, strlen(sender)),
	    .rcpts = cr,
	    .nrcpts = nrcpts,
	    .data = msg->data,
	    .size = msg->len,
	};
	char *reply = NULL, *error = NULL;
	int rc = smtp_client_submit_sync(host, port, cfg->dns_resolver, &set, &m, &reply, &error);
	if (rc == 0) {
		printf("%s\n", reply != NULL ? reply : "sent");
	} else {
		fprintf(stderr, "postoffice send: not sent via %s:%d: %s\n", host, port, error);
	}
	smtp_client_msg_clear(&m);
	free(cr);
	free(reply);
	free(error);
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	free(host);
	return rc == 0 ? 0 : 1;
}

static int send_run(struct config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"from", required_argument, NULL, 'f'},    {"to", required_argument, NULL, 't'},
	    {"cc", required_argument, NULL, 'c'},      {"bcc", required_argument, NULL, 'b'},
	    {"subject", required_argument, NULL, 's'}, {"body", required_argument, NULL, 'B'},
	    {"html", required_argument, NULL, 'H'},    {"inline", required_argument, NULL, 'i'},
	    {"attach", required_argument, NULL, 'a'},  {"header", required_argument, NULL, 'X'},
	    {"server", required_argument, NULL, 'S'},  {"starttls", no_argument, NULL, 'T'},
	    {"tls", no_argument, NULL, 'L'},           {"insecure", no_argument, NULL, 'k'},
	    {"user", required_argument, NULL, 'u'},    {"password-file", required_argument, NULL, 'p'},
	    {"dry-run", no_argument, NULL, 'n'},       {NULL, 0, NULL, 0},
	};
	struct send_opts o;
	memset(&o, 0, sizeof(o));
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			o.from = optarg;
			break;
		case 't':
			push(&o.to, &o.nto, optarg);
			break;
		case 'c':
			push(&o.cc, &o.ncc, optarg);
			break;
		case 'b':
			push(&o.bcc, &o.nbcc, optarg);
			break;
		case 's':
			o.subject = optarg;
			break;
		case 'B':
			o.body = optarg;
			break;
		case 'H':
			o.html = optarg;
			break;
		case 'i':
			push(&o.inlines, &o.ninlines, optarg);
			break;
		case 'a':
			push(&o.attach, &o.nattach, optarg);
			break;
		case 'X':
			push(&o.headers, &o.nheaders, optarg);
			break;
		case 'S':
			o.server = optarg;
			break;
		case 'T':
			o.starttls = true;
			break;
		case 'L':
			o.tls = true;
			break;
		case 'k':
			o.insecure = true;
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'p':
			o.password_file = optarg;
			break;
		case 'n':
			o.dry_run = true;
			break;
		default:
			send_usage(stderr);
			return 2;
		}
	}
	int rc = 2;
	struct pool *pool = pool_create(4096);
	char **rcpts = NULL, **senders = NULL;
	size_t nrcpts = 0, nsenders = 0;
	struct buf msg = BUF_INIT;
	if (optind < argc || o.from == NULL || o.nto + o.ncc + o.nbcc == 0) {
		fprintf(stderr, "postoffice send: %s\n",
			optind < argc ? "unexpected argument" : "--from and a recipient are needed");
		send_usage(stderr);
		goto out;
	}
	if (check_options(&o) < 0 || add_addresses(pool, o.from, &senders, &nsenders) < 0)
		goto out;
	for (size_t i = 0; i < o.nto; i++)
		if (add_addresses(pool, o.to[i], &rcpts, &nrcpts) < 0)
			goto out;
	for (size_t i = 0; i < o.ncc; i++)
		if (add_addresses(pool, o.cc[i], &rcpts, &nrcpts) < 0)
			goto out;
	for (size_t i = 0; i < o.nbcc; i++)
		if (add_addresses(pool, o.bcc[i], &rcpts, &nrcpts) < 0)
			goto out;
	rc = 1;
	if (compose(&o, &msg) < 0)
		goto out;
	if (o.dry_run) {
		fwrite(msg.data, 1, msg.len, stdout);
		rc = 0;
		goto out;
	}
	rc = send_message(cfg, &o, &msg, rcpts, nrcpts, senders[0]);
out:
	buf_free(&msg);
	free(rcpts);
	free(senders);
	free(o.to);
	free(o.cc);
	free(o.bcc);
	free(o.inlines);
	free(o.attach);
	free(o.headers);
	pool_destroy(&pool);
	return rc;
}

const struct cli_command cmd_send = {
    .name = "send",
    .synopsis = "--from ADDR --to ADDR [--subject S] [--attach F] [--server H:P] ...",
    .summary = "compose a message and submit it over SMTP",
    .run = send_run,
    .usage = send_usage,
};
