/* Message composition: the part tree is chosen from what was added:
   mixed( alternative( text, related( html, inline... ) ), attachment... ),
   with every level left out when it would have one child. */
#include "mime/compose.h"
#include "mime/address.h"
#include "mime/base64.h"
#include "mime/header.h"
#include "mime/mime_private.h"
#include "mime/path.h"
#include "mime/qp.h"
#include "mime/rfc2047.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

struct compose_field {
	char *name, *value;
};

struct compose_file {
	char *filename, *content_type, *cid;
	char *data;
	size_t len;
};

struct mime_compose {
	struct compose_field *fields;
	size_t field_count;
	struct buf text, html;
	int has_text, has_html;
	struct compose_file *inlines, *attachments;
	size_t inline_count, attachment_count;
	char *domain;
	time_t date;
	int has_date;
	unsigned int boundary_seq;
	char token[17]; /* random hex shared by boundaries and ids */
};

static void random_hex(char *out, size_t n)
{
	unsigned char bytes[32];
	static const char hex[] = "0123456789abcdef";
	size_t nb = n / 2 < sizeof(bytes) ? n / 2 : sizeof(bytes);
	if (getrandom(bytes, nb, 0) != (ssize_t)nb) {
		/* Uniqueness, not secrecy, is needed here. */
		for (size_t i = 0; i < nb; i++)
			bytes[i] = (unsigned char)(rand() ^ getpid() ^ time(NULL));
	}
	for (size_t i = 0; i < nb; i++) {
		out[2 * i] = hex[bytes[i] >> 4];
		out[2 * i + 1] = hex[bytes[i] & 15];
	}
	out[2 * nb] = '\0';
}

struct mime_compose *mime_compose_create(void)
{
	struct mime_compose *c = xcalloc(1, sizeof(*c));
	random_hex(c->token, 16);
	return c;
}

static void files_free(struct compose_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(files[i].filename);
		free(files[i].content_type);
		free(files[i].cid);
		free(files[i].data);
	}
	free(files);
}

void mime_compose_destroy(struct mime_compose **cp)
{
	struct mime_compose *c = *cp;
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->field_count; i++) {
		free(c->fields[i].name);
		free(c->fields[i].value);
	}
	free(c->fields);
	buf_free(&c->text);
	buf_free(&c->html);
	files_free(c->inlines, c->inline_count);
	files_free(c->attachments, c->attachment_count);
	free(c->domain);
	free(c);
	*cp = NULL;
}

int mime_compose_header(struct mime_compose *c, const char *name, const char *value, const char **error_r)
{
	if (!mime_header_name_valid(name, strlen(name))) {
		*error_r = "invalid header field name (printable ASCII without spaces or ':')";
		return -1;
	}
	if (strpbrk(value, "\r\n") != NULL) {
		*error_r = "line break in a header field value";
		return -1;
	}
	c->fields = xreallocarray(c->fields, c->field_count + 1, sizeof(*c->fields));
	c->fields[c->field_count].name = xstrdup(name);
	c->fields[c->field_count].value = xstrdup(value);
	c->field_count++;
	return 0;
}

void mime_compose_text(struct mime_compose *c, const char *text, size_t len)
{
	buf_reset(&c->text);
	buf_append(&c->text, text, len);
	c->has_text = 1;
}

void mime_compose_html(struct mime_compose *c, const char *html, size_t len)
{
	buf_reset(&c->html);
	buf_append(&c->html, html, len);
	c->has_html = 1;
}

void mime_compose_set_domain(struct mime_compose *c, const char *domain)
{
	free(c->domain);
	c->domain = xstrdup(domain);
}

void mime_compose_set_date(struct mime_compose *c, time_t date)
{
	c->date = date;
	c->has_date = 1;
}

static const char *compose_field(const struct mime_compose *c, const char *name)
{
	for (size_t i = 0; i < c->field_count; i++)
		if (!strcasecmp(c->fields[i].name, name))
			return c->fields[i].value;
	return NULL;
}

/* The Message-ID domain: set, else From's, else the host name. */
static const char *compose_domain(struct mime_compose *c)
{
	if (c->domain != NULL)
		return c->domain;
	const char *from = compose_field(c, "From");
	if (from != NULL) {
		struct pool *pool = pool_create(1024);
		struct mime_address *a = mime_address_parse(pool, from, strlen(from));
		while (a != NULL && a->domain == NULL)
			a = a->next;
		const char *ascii, *error;
		if (a != NULL && a->domain[0] != '\0' &&
		    mime_domain_to_ascii(pool, a->domain, &ascii, &error) == 0)
			c->domain = xstrdup(ascii);
		pool_destroy(&pool);
	}
	if (c->domain == NULL) {
		char host[256];
		if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		c->domain = xstrdup(host);
	}
	return c->domain;
}

static struct compose_file *file_add(struct compose_file **files, size_t *count, const char *filename,
				     const char *content_type, const void *data, size_t len)
{
	*files = xreallocarray(*files, *count + 1, sizeof(**files));
	struct compose_file *f = &(*files)[(*count)++];
	memset(f, 0, sizeof(*f));
	f->filename = xstrdup(filename != NULL ? filename : "");
	f->content_type = xstrdup(content_type != NULL ? content_type : mime_type_from_filename(filename));
	f->data = xmalloc(len + 1);
	if (len > 0)
		memcpy(f->data, data, len);
	f->data[len] = '\0';
	f->len = len;
	return f;
}

const char *mime_compose_inline(struct mime_compose *c, const char *filename, const char *content_type,
				const void *data, size_t len)
{
	struct compose_file *f = file_add(&c->inlines, &c->inline_count, filename, content_type, data, len);
	f->cid = xasprintf("part%zu.%s@%s", c->inline_count, c->token, compose_domain(c));
	return f->cid;
}

void mime_compose_attach(struct mime_compose *c, const char *filename, const char *content_type,
			 const void *data, size_t len)
{
	file_add(&c->attachments, &c->attachment_count, filename, content_type, data, len);
}

void mime_message_id_generate(struct buf *out, const char *domain)
{
	char hex[33];
	random_hex(hex, 32);
	buf_printf(out, "<%ld.%s@%s>", (long)time(NULL), hex, domain);
}

/* ---- writing ---- */

static void next_boundary(struct mime_compose *c, char *b, size_t size)
{
	/* "=_" never appears in base64 or quoted-printable output. */
	snprintf(b, size, "=_po_%s_%u", c->token, ++c->boundary_seq);
}

/* Appends text with every line end made CRLF and a final CRLF. */
static void append_crlf_text(struct buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
			continue;
		if (s[i] == '\n' || s[i] == '\r')
			buf_append_str(out, "\r\n");
		else
			buf_append_char(out, s[i]);
	}
	if (len > 0 && s[len - 1] != '\n' && s[len - 1] != '\r')
		buf_append_str(out, "\r\n");
}

static size_t longest_line(const char *s, size_t len)
{
	size_t max = 0, cur = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' || s[i] == '\r')
			cur = 0;
		else if (++cur > max)
			max = cur;
	}
	return max;
}

static void write_text_part(struct buf *out, const char *subtype, const struct buf *text)
{
	const char *s = buf_cstr(text);
	int eight = mime_has_8bit(s, text->len);
	int qp = qp_needs_encoding(s, text->len) || longest_line(s, text->len) > 78;
	buf_printf(out, "Content-Type: text/%s; charset=%s\r\n", subtype, eight ? "utf-8" : "us-ascii");
	buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", qp ? "quoted-printable" : "7bit");
	if (qp) {
		qp_encode(out, s, text->len);
		if (out->len >= 2 && memcmp(out->data + out->len - 2, "\r\n", 2) != 0)
			buf_append_str(out, "\r\n");
	} else {
		append_crlf_text(out, s, text->len);
	}
}

static int plain_param_ok(const char *v)
{
	for (const char *p = v; *p != '\0'; p++)
		if ((unsigned char)*p < 32 || (unsigned char)*p >= 127 || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

/* ;\r\n pname*N*=... (RFC 2231): UTF-8, percent-encoded, split so the
   lines stay short. */
static void write_2231_param(struct buf *out, const char *pname, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf pct = BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("!#$&+-.^_`|~", *p) != NULL) {
			buf_append_char(&pct, (char)*p);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			buf_append(&pct, e, 3);
		}
	}
	if (pct.len + strlen(pname) + 12 <= 70) {
		buf_printf(out, ";\r\n %s*=utf-8''%s", pname, buf_cstr(&pct));
		buf_free(&pct);
		return;
	}
	size_t off = 0;
	for (unsigned int sec = 0; off < pct.len; sec++) {
		size_t n = pct.len - off > 50 ? 50 : pct.len - off;
		/* Do not split a %XX escape. */
		if (off + n < pct.len && n >= 2 && pct.data[off + n - 1] == '%')
			n -= 1;
		else if (off + n < pct.len && n >= 2 && pct.data[off + n - 2] == '%')
			n -= 2;
		buf_printf(out, ";\r\n %s*%u*=%s%.*s", pname, sec, sec == 0 ? "utf-8''" : "", (int)n,
			   pct.data + off);
		off += n;
	}
	buf_free(&pct);
}

static void write_name_params(struct buf *out, const char *pname, const char *name, int with_2047)
{
	if (plain_param_ok(name) && strlen(name) <= 60) {
		buf_printf(out, ";\r\n %s=\"%s\"", pname, name);
		return;
	}
	if (!with_2047) {
		write_2231_param(out, pname, name);
		return;
	}
	/* name="=?UTF-8?...?=": what old clients read (RFC 2047 does not
	   allow it in quotes, but Outlook writes and reads it). */
	struct buf enc = BUF_INIT;
	mime_2047_encode(&enc, name, strlen(name), strlen(pname) + 3, 0);
	buf_printf(out, ";\r\n %s=\"", pname);
	for (size_t i = 0; i < enc.len; i++) {
		if (enc.data[i] == '"' || enc.data[i] == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, enc.data[i]);
	}
	buf_append_char(out, '"');
	buf_free(&enc);
}

static void write_file_part(struct buf *out, const struct compose_file *f, int is_inline)
{
	buf_printf(out, "Content-Type: %s", f->content_type);
	if (f->filename[0] != '\0')
		write_name_params(out, "name", f->filename, 1);
	buf_printf(out, "\r\nContent-Disposition: %s", is_inline ? "inline" : "attachment");
	if (f->filename[0] != '\0')
		write_name_params(out, "filename", f->filename, 0);
	buf_append_str(out, "\r\n");
	if (f->cid != NULL)
		buf_printf(out, "Content-ID: <%s>\r\n", f->cid);
	buf_append_str(out, "Content-Transfer-Encoding: base64\r\n\r\n");
	base64_encode_lines(out, f->data, f->len);
}

/* "Content-Type: multipart/SUB; boundary=..." and the boundary back. */
static void multipart_begin(struct mime_compose *c, struct buf *out, const char *subtype, char *b,
			    size_t bsize, const char *extra)
{
	next_boundary(c, b, bsize);
	buf_printf(out, "Content-Type: multipart/%s;%s\r\n boundary=\"%s\"\r\n\r\n", subtype, extra, b);
}

static void write_related(struct mime_compose *c, struct buf *out)
{
	if (c->inline_count == 0) {
		write_text_part(out, "html", &c->html);
		return;
	}
	char b[64];
	multipart_begin(c, out, "related", b, sizeof(b), " type=\"text/html\";");
	buf_printf(out, "--%s\r\n", b);
	write_text_part(out, "html", &c->html);
	for (size_t i = 0; i < c->inline_count; i++) {
		buf_printf(out, "\r\n--%s\r\n", b);
		write_file_part(out, &c->inlines[i], 1);
	}
	buf_printf(out, "\r\n--%s--\r\n", b);
}

static void write_alternative(struct mime_compose *c, struct buf *out)
{
	if (!c->has_html) {
		write_text_part(out, "plain", &c->text);
		return;
	}
	if (!c->has_text) {
		write_related(c, out);
		return;
	}
	char b[64];
	multipart_begin(c, out, "alternative", b, sizeof(b), "");
	buf_printf(out, "--%s\r\n", b);
	write_text_part(out, "plain", &c->text);
	buf_printf(out, "\r\n--%s\r\n", b);
	write_related(c, out);
	buf_printf(out, "\r\n--%s--\r\n", b);
}

static void write_body(struct mime_compose *c, struct buf *out)
{
	if (c->attachment_count == 0) {
		write_alternative(c, out);
		return;
	}
	char b[64];
	multipart_begin(c, out, "mixed", b, sizeof(b), "");
	buf_printf(out, "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n", b);
	write_alternative(c, out);
	for (size_t i = 0; i < c->attachment_count; i++) {
		buf_printf(out, "\r\n--%s\r\n", b);
		write_file_part(out, &c->attachments[i], 0);
	}
	buf_printf(out, "\r\n--%s--\r\n", b);
}

void mime_compose_write(struct mime_compose *c, struct buf *out)
{
	if (compose_field(c, "Date") == NULL) {
		buf_append_str(out, "Date: ");
		mime_date_format(out, c->has_date ? c->date : time(NULL));
		buf_append_str(out, "\r\n");
	}
	for (size_t i = 0; i < c->field_count; i++)
		mime_header_write(out, c->fields[i].name, c->fields[i].value);
	if (compose_field(c, "Message-ID") == NULL) {
		buf_append_str(out, "Message-ID: ");
		mime_message_id_generate(out, compose_domain(c));
		buf_append_str(out, "\r\n");
	}
	if (compose_field(c, "MIME-Version") == NULL)
		buf_append_str(out, "MIME-Version: 1.0\r\n");
	write_body(c, out);
}
