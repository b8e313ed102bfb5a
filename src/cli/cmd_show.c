/* `postoffice show`: the decoded headers and MIME tree of a message, as
   text or JSON, and extraction of its attachments. */
#include "cli/cli.h"
#include "lib/json.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/charset.h"
#include "mime/header.h"
#include "mime/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char *const shown_headers[][2] = {
    {"Subject", "subject"}, {"From", "from"}, {"To", "to"},
    {"Cc", "cc"},           {"Date", "date"}, {"Message-ID", "message_id"},
};

struct show_ctx {
	struct mime_message *msg;
	struct pool *pool;
	int json;
	const char *extract_dir;
	struct buf out;
	int failed;
};

static void show_usage(FILE *out)
{
	fprintf(out, "usage: postoffice show [--json] [--extract DIR] [FILE]\n\n"
		     "Prints a message's headers (decoded to UTF-8) and its MIME parts with\n"
		     "their IMAP part numbers, types, sizes and file names.  Reads standard\n"
		     "input when FILE is missing or \"-\".\n\n"
		     "  --json         print the same as JSON\n"
		     "  --extract DIR  write attachments (and named inline parts) into DIR;\n"
		     "                 names are made safe and never overwrite a file\n");
}

static int read_all(const char *path, struct buf *b)
{
	int fd = path == NULL || !strcmp(path, "-") ? 0 : open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "postoffice: open(%s) failed: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		buf_reserve(b, 65536);
		ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "postoffice: read(%s) failed: %s\n", path ? path : "stdin",
				strerror(errno));
			if (fd != 0)
				close(fd);
			return -1;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
	}
	b->data[b->len] = '\0';
	if (fd != 0)
		close(fd);
	return 0;
}

/* JSON string: invalid UTF-8 is repaired first (JSON must be UTF-8). */
static void json_str(struct buf *out, const char *s, size_t len)
{
	if (s == NULL) {
		buf_append_str(out, "null");
		return;
	}
	struct buf clean = BUF_INIT;
	mime_utf8_sanitize(&clean, s, len);
	json_append_string(out, buf_cstr(&clean), clean.len);
	buf_free(&clean);
}

static void json_cstr(struct buf *out, const char *s)
{
	json_str(out, s, s ? strlen(s) : 0);
}

/* Text for the terminal: control characters other than newline and tab
   become '?' so a message cannot drive the terminal. */
static void print_safe(struct buf *out, const char *s)
{
	struct buf clean = BUF_INIT;
	mime_utf8_sanitize(&clean, s, strlen(s));
	for (size_t i = 0; i < clean.len; i++) {
		unsigned char c = (unsigned char)clean.data[i];
		buf_append_char(out, (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c);
	}
	buf_free(&clean);
}

/* A file name that cannot leave DIR or hide: the last path component,
   without control characters, leading dots or spaces; "part-N" when
   nothing is left. */
static char *safe_filename(const char *name, const char *section)
{
	const char *base = name != NULL ? name : "";
	for (const char *p = base; *p != '\0'; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	struct buf b = BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)base; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			continue;
		if (b.len == 0 && (*p == '.' || *p == ' '))
			continue;
		buf_append_char(&b, (char)*p);
	}
	while (b.len > 0 && (b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '.'))
		b.len--;
	if (b.len > 200)
		b.len = 200; /* leave room for a suffix within NAME_MAX */
	if (b.len == 0)
		buf_printf(&b, "part-%s", section);
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

/* Creates DIR/name without overwriting: name, name-1.ext, name-2.ext... */
static int create_unique(const char *dir, const char *name, char **path_r)
{
	const char *dot = strrchr(name, '.');
	size_t stem = dot != NULL && dot != name ? (size_t)(dot - name) : strlen(name);
	const char *ext = name + stem;
	for (int i = 0; i < 10000; i++) {
		char *path = i == 0 ? xasprintf("%s/%s", dir, name)
				    : xasprintf("%s/%.*s-%d%s", dir, (int)stem, name, i, ext);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd >= 0) {
			*path_r = path;
			return fd;
		}
		int err = errno;
		free(path);
		if (err != EEXIST) {
			errno = err;
			return -1;
		}
	}
	errno = EEXIST;
	return -1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes the part into the extract directory; returns the path or NULL. */
static char *extract_part(struct show_ctx *ctx, const struct mime_part *part, const char *filename,
			  const char *section)
{
	char *name = safe_filename(filename, section);
	char *path = NULL;
	int fd = create_unique(ctx->extract_dir, name, &path);
	if (fd < 0) {
		fprintf(stderr, "postoffice: creating %s/%s failed: %s\n", ctx->extract_dir, name,
			strerror(errno));
		free(name);
		ctx->failed = 1;
		return NULL;
	}
	struct buf data = BUF_INIT;
	mime_part_decode(ctx->msg, part, &data);
	if (write_all(fd, data.data, data.len) < 0 || close(fd) < 0) {
		fprintf(stderr, "postoffice: write(%s) failed: %s\n", path, strerror(errno));
		ctx->failed = 1;
	}
	buf_free(&data);
	free(name);
	return path;
}

static int wants_extract(struct show_ctx *ctx, const struct mime_part *part, const char *filename)
{
	if (ctx->extract_dir == NULL || (part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)))
		return 0;
	return mime_part_is_attachment(ctx->pool, part) || filename != NULL;
}

struct part_info {
	struct buf section;
	const char *filename, *disposition, *content_id, *charset;
	struct buf decoded;
	int is_text_body;
	char *extracted;
};

/* The IMAP section (RFC 3501 6.4.5) a part is listed under.  Leaves get
   the number their content is fetched by ("1" for a one-part message).
   The entity inside a message/rfc822 part N has no number of its own (N
   is the whole encapsulated message): a multipart there is listed as
   N.TEXT, the section of its body, and a non-multipart as N.1. */
static void show_section(const struct mime_part *part, struct buf *out)
{
	const struct mime_part *parent = part->parent;
	if (!(part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))) {
		mime_part_body_section(part, out);
	} else if (parent != NULL && (parent->flags & MIME_PART_MESSAGE)) {
		if (part->flags & MIME_PART_MULTIPART) {
			mime_part_section(part, out);
			buf_append_str(out, ".TEXT");
		} else {
			mime_part_body_section(part, out);
		}
	} else {
		mime_part_section(part, out);
	}
}

static void part_info_read(struct show_ctx *ctx, const struct mime_part *part, struct part_info *pi)
{
	memset(pi, 0, sizeof(*pi));
	int container = (part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) != 0;
	show_section(part, &pi->section);
	pi->filename = mime_part_filename(ctx->pool, part);
	struct mime_disposition d;
	if (mime_part_disposition(ctx->pool, part, &d) == 0)
		pi->disposition = d.type;
	pi->content_id = mime_headers_get(ctx->pool, part->headers, "Content-ID");
	pi->charset = mime_part_charset(part);
	if (container)
		return;
	pi->is_text_body = !strcmp(part->ct.type, "text") && !mime_part_is_attachment(ctx->pool, part);
	if (pi->is_text_body)
		mime_part_decode_text(ctx->msg, part, &pi->decoded);
	else
		mime_part_decode(ctx->msg, part, &pi->decoded);
	if (wants_extract(ctx, part, pi->filename))
		pi->extracted = extract_part(ctx, part, pi->filename, buf_cstr(&pi->section));
}

static void part_info_free(struct part_info *pi)
{
	buf_free(&pi->section);
	buf_free(&pi->decoded);
	free(pi->extracted);
}

static void part_json(struct show_ctx *ctx, const struct mime_part *part, const struct part_info *pi)
{
	struct buf *o = &ctx->out;
	buf_append_str(o, "{\"section\": ");
	json_cstr(o, buf_cstr(&pi->section));
	buf_printf(o, ", \"depth\": %u, \"type\": \"%s/%s\"", part->depth, part->ct.type, part->ct.subtype);
	buf_append_str(o, ", \"charset\": ");
	json_cstr(o, pi->charset);
	buf_append_str(o, ", \"encoding\": ");
	json_cstr(o, part->encoding_name);
	buf_append_str(o, ", \"disposition\": ");
	json_cstr(o, pi->disposition);
	buf_append_str(o, ", \"filename\": ");
	json_cstr(o, pi->filename);
	buf_append_str(o, ", \"content_id\": ");
	json_cstr(o, pi->content_id);
	buf_printf(o, ", \"size\": %zu, \"lines\": %zu", part->body.size, part->body.lines);
	if (!(part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)))
		buf_printf(o, ", \"decoded_size\": %zu", pi->decoded.len);
	if (pi->is_text_body) {
		buf_append_str(o, ", \"text\": ");
		json_str(o, pi->decoded.data, pi->decoded.len);
	}
	if (pi->extracted != NULL) {
		buf_append_str(o, ", \"extracted\": ");
		json_cstr(o, pi->extracted);
	}
	buf_append_char(o, '}');
}

static void part_text(struct show_ctx *ctx, const struct mime_part *part, const struct part_info *pi)
{
	struct buf *o = &ctx->out;
	buf_printf(o, "  %-10s %*s%s/%s", pi->section.len ? pi->section.data : "-", (int)part->depth * 2, "",
		   part->ct.type, part->ct.subtype);
	if (pi->charset != NULL) {
		buf_append_str(o, "; charset=");
		print_safe(o, pi->charset);
	}
	if (!(part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)))
		buf_printf(o, "  %zu bytes", pi->decoded.len);
	if (pi->disposition != NULL) {
		buf_append_str(o, "  ");
		print_safe(o, pi->disposition);
	}
	if (pi->filename != NULL) {
		buf_append_str(o, "  \"");
		print_safe(o, pi->filename);
		buf_append_char(o, '"');
	}
	if (pi->extracted != NULL) {
		buf_append_str(o, "  -> ");
		print_safe(o, pi->extracted);
	}
	buf_append_char(o, '\n');
}

static void show_headers(struct show_ctx *ctx)
{
	struct buf *o = &ctx->out;
	const struct mime_headers *h = ctx->msg->root->headers;
	if (ctx->json)
		buf_append_str(o, "{\"headers\": {");
	for (size_t i = 0; i < N_ELEMENTS(shown_headers); i++) {
		const char *v = mime_headers_get_utf8(ctx->pool, h, shown_headers[i][0]);
		if (ctx->json) {
			buf_printf(o, "%s\"%s\": ", i ? ", " : "", shown_headers[i][1]);
			json_cstr(o, v);
		} else if (v != NULL) {
			buf_printf(o, "%s: ", shown_headers[i][0]);
			print_safe(o, v);
			buf_append_char(o, '\n');
		}
	}
	buf_append_str(o, ctx->json ? "}, \"parts\": [" : "\nparts:\n");
}

static void show_message(struct show_ctx *ctx)
{
	show_headers(ctx);
	const char *text = NULL, *html = NULL;
	struct buf first_text = BUF_INIT, first_html = BUF_INIT;
	int n = 0;
	for (const struct mime_part *p = ctx->msg->root; p != NULL; p = mime_part_next(p)) {
		struct part_info pi;
		part_info_read(ctx, p, &pi);
		if (ctx->json) {
			if (n++ > 0)
				buf_append_str(&ctx->out, ", ");
			part_json(ctx, p, &pi);
		} else {
			part_text(ctx, p, &pi);
		}
		if (pi.is_text_body && text == NULL && !strcmp(p->ct.subtype, "plain")) {
			buf_append(&first_text, pi.decoded.data, pi.decoded.len);
			text = buf_cstr(&first_text);
		}
		if (pi.is_text_body && html == NULL && !strcmp(p->ct.subtype, "html")) {
			buf_append(&first_html, pi.decoded.data, pi.decoded.len);
			html = buf_cstr(&first_html);
		}
		part_info_free(&pi);
	}
	if (ctx->json) {
		buf_append_str(&ctx->out, "], \"text\": ");
		json_str(&ctx->out, text, first_text.len);
		buf_append_str(&ctx->out, ", \"html\": ");
		json_str(&ctx->out, html, first_html.len);
		buf_append_str(&ctx->out, "}\n");
	}
	buf_free(&first_text);
	buf_free(&first_html);
}

static int show_run(struct config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"extract", required_argument, NULL, 'x'},
	    {NULL, 0, NULL, 0},
	};
	struct show_ctx ctx = {0};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jx:", longopts, NULL)) != -1) {
		if (c == 'j') {
			ctx.json = 1;
		} else if (c == 'x') {
			ctx.extract_dir = optarg;
		} else {
			show_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		show_usage(stderr);
		return EXIT_USAGE;
	}
	struct buf data = BUF_INIT;
	if (read_all(optind < argc ? argv[optind] : NULL, &data) < 0) {
		buf_free(&data);
		return 1;
	}
	/* Forwarded messages that were base64 or quoted-printable encoded
	   are shown inside too. */
	ctx.msg = mime_message_parse_flags(buf_cstr(&data), data.len, NULL, MIME_PARSE_DECODE_MESSAGES);
	ctx.pool = pool_create(4096);
	show_message(&ctx);
	fwrite(ctx.out.data, 1, ctx.out.len, stdout);
	buf_free(&ctx.out);
	pool_destroy(&ctx.pool);
	mime_message_free(&ctx.msg);
	buf_free(&data);
	return ctx.failed ? 1 : 0;
}

const struct cli_command cmd_show = {
    .name = "show",
    .synopsis = "[--json] [--extract DIR] [FILE]",
    .summary = "show a message's headers and MIME parts, extract attachments",
    .run = show_run,
    .usage = show_usage,
};
