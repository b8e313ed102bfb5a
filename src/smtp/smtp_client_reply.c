/* SMTP client: reply parsing (RFC 5321 4.2, RFC 3463 enhanced codes),
   EHLO keywords, and the data transformations before sending. */
#include "smtp/smtp_client.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/base64.h"
#include "mime/header.h"
#include "mime/qp.h"
#include "mime/tree.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SMTP_CLIENT_REPLY_TEXT_MAX (64 * 1024)

void smtp_client_reply_parser_init(struct smtp_client_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
}

void smtp_client_reply_parser_deinit(struct smtp_client_reply_parser *p)
{
	buf_free(&p->text);
	memset(p, 0, sizeof(*p));
}

static void parser_reset(struct smtp_client_reply_parser *p)
{
	buf_reset(&p->text);
	p->code = 0;
	p->lines = 0;
	p->enhanced[0] = '\0';
}

/* Length of an enhanced status code "c.s.d" at text (RFC 3463 section 2:
   class 2, 4 or 5, subject 1-3 digits, detail 1-3 digits), followed by a
   space or the end, or 0. */
static size_t enhanced_len(const char *text, size_t len, int code)
{
	if (len < 5 || text[0] != '0' + code / 100 || text[1] != '.')
		return 0;
	size_t i = 2, digits = 0;
	while (i < len && isdigit((unsigned char)text[i]) && digits < 4)
		i++, digits++;
	if (digits == 0 || digits > 3 || i >= len || text[i] != '.')
		return 0;
	i++;
	digits = 0;
	while (i < len && isdigit((unsigned char)text[i]) && digits < 4)
		i++, digits++;
	if (digits == 0 || digits > 3 || (i < len && text[i] != ' '))
		return 0;
	return i;
}

int smtp_client_reply_feed(struct smtp_client_reply_parser *p, const char *line, size_t len,
			   struct smtp_client_reply *reply_r, const char **error_r)
{
	if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || line[0] < '2' || line[0] > '5' ||
	    (len > 3 && line[3] != ' ' && line[3] != '-')) {
		*error_r = "malformed reply line";
		parser_reset(p);
		return -1;
	}
	int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (p->lines > 0 && code != p->code) {
		*error_r = "reply lines with different codes";
		parser_reset(p);
		return -1;
	}
	if (p->lines >= SMTP_CLIENT_REPLY_LINES_MAX || len > SMTP_CLIENT_LINE_MAX) {
		*error_r = "reply too long";
		parser_reset(p);
		return -1;
	}
	bool last = len == 3 || line[3] == ' ';
	const char *text = len > 4 ? line + 4 : "";
	size_t tlen = len > 4 ? len - 4 : 0;
	size_t elen = enhanced_len(text, tlen, code);
	if (elen > 0 && elen < sizeof(p->enhanced)) {
		if (p->lines == 0) {
			memcpy(p->enhanced, text, elen);
			p->enhanced[elen] = '\0';
		}
		text += elen;
		tlen -= elen;
		while (tlen > 0 && *text == ' ')
			text++, tlen--;
	}
	if (p->lines > 0)
		buf_append_char(&p->text, '\n');
	if (p->text.len + tlen < SMTP_CLIENT_REPLY_TEXT_MAX)
		buf_append(&p->text, text, tlen);
	p->code = code;
	p->lines++;
	if (!last)
		return 0;
	reply_r->code = p->code;
	memcpy(reply_r->enhanced, p->enhanced, sizeof(reply_r->enhanced));
	reply_r->text = xstrdup(buf_cstr(&p->text));
	parser_reset(p);
	return 1;
}

void smtp_client_reply_free(struct smtp_client_reply *reply)
{
	free(reply->text);
	reply->text = NULL;
}

char *smtp_client_reply_string(const struct smtp_client_reply *reply)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%d", reply->code);
	if (reply->enhanced[0] != '\0')
		buf_printf(&b, " %s", reply->enhanced);
	const char *t = reply->text != NULL ? reply->text : "";
	if (*t != '\0')
		buf_append_char(&b, ' ');
	for (; *t != '\0'; t++) {
		unsigned char c = (unsigned char)*t;
		if (c == '\n')
			buf_append_char(&b, ' ');
		else if (c < 0x20 || c == 0x7f)
			buf_append_char(&b, '?');
		else
			buf_append_char(&b, (char)c);
	}
	return buf_steal(&b);
}

/* ---- EHLO ---- */

static const struct {
	const char *name;
	unsigned flag;
} ehlo_keywords[] = {
    {"STARTTLS", SMTP_CAP_STARTTLS},
    {"PIPELINING", SMTP_CAP_PIPELINING},
    {"SIZE", SMTP_CAP_SIZE},
    {"8BITMIME", SMTP_CAP_8BITMIME},
    {"SMTPUTF8", SMTP_CAP_SMTPUTF8},
    {"DSN", SMTP_CAP_DSN},
    {"AUTH", SMTP_CAP_AUTH},
    {"CHUNKING", SMTP_CAP_CHUNKING},
    {"BINARYMIME", SMTP_CAP_BINARYMIME},
    {"ENHANCEDSTATUSCODES", SMTP_CAP_ENHANCEDSTATUSCODES},
};

static void parse_auth_mechs(const char *p, struct smtp_client_caps *caps)
{
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == 5 && !strncasecmp(p, "PLAIN", 5))
			caps->flags |= SMTP_CAP_AUTH_PLAIN;
		else if (n == 5 && !strncasecmp(p, "LOGIN", 5))
			caps->flags |= SMTP_CAP_AUTH_LOGIN;
		p += n;
	}
}

static void parse_ehlo_line(const char *line, size_t len, struct smtp_client_caps *caps)
{
	char tmp[512];
	if (len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	memcpy(tmp, line, len);
	tmp[len] = '\0';
	size_t kw = strcspn(tmp, " =");
	for (size_t i = 0; i < N_ELEMENTS(ehlo_keywords); i++) {
		if (strlen(ehlo_keywords[i].name) != kw || strncasecmp(tmp, ehlo_keywords[i].name, kw) != 0)
			continue;
		caps->flags |= ehlo_keywords[i].flag;
		const char *args = tmp + kw + (tmp[kw] != '\0');
		if (ehlo_keywords[i].flag == SMTP_CAP_SIZE) {
			char *end;
			unsigned long long v = strtoull(args, &end, 10);
			caps->size = end != args ? (uint64_t)v : 0;
		} else if (ehlo_keywords[i].flag == SMTP_CAP_AUTH) {
			/* "AUTH PLAIN LOGIN" and the old "AUTH=PLAIN LOGIN" */
			parse_auth_mechs(args, caps);
		}
	}
}

void smtp_client_parse_ehlo(const char *text, struct smtp_client_caps *caps_r)
{
	memset(caps_r, 0, sizeof(*caps_r));
	const char *p = strchr(text, '\n');
	while (p != NULL) {
		p++;
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		parse_ehlo_line(p, len, caps_r);
		p = end;
	}
}

/* ---- data ---- */

void smtp_client_dot_stuff(struct buf *out, const char *data, size_t len)
{
	buf_reserve(out, len + len / 64 + 8);
	size_t start = 0;
	bool line_start = true;
	for (size_t i = 0; i < len; i++) {
		if (line_start && data[i] == '.') {
			buf_append(out, data + start, i - start);
			buf_append_char(out, '.');
			start = i;
		}
		line_start = data[i] == '\n';
	}
	buf_append(out, data + start, len - start);
	if (len > 0 && !(len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n')) {
		if (data[len - 1] == '\r')
			buf_append_char(out, '\n');
		else
			buf_append_str(out, "\r\n");
	}
	buf_append_str(out, ".\r\n");
}

void smtp_client_xtext(struct buf *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
			buf_printf(out, "+%02X", *p);
		else
			buf_append_char(out, (char)*p);
	}
}

/* Writes the header block of a part without its Content-Transfer-Encoding
   fields, then the new one and the blank line. */
static int rewrite_header(struct buf *out, const char *data, size_t len, const char *cte)
{
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, data, len, NULL);
	if (h->flags & (MIME_HEADERS_8BIT | MIME_HEADERS_TRUNCATED)) {
		pool_destroy(&pool);
		return -1;
	}
	for (unsigned i = 0; i < h->count; i++) {
		const struct mime_header_field *f = &h->fields[i];
		if (f->name_len == 25 && !strncasecmp(f->name, "Content-Transfer-Encoding", 25))
			continue;
		buf_append(out, data + f->offset, f->size);
		if (f->size < 2 || data[f->offset + f->size - 1] != '\n')
			buf_append_str(out, "\r\n");
	}
	buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", cte);
	pool_destroy(&pool);
	return 0;
}

int smtp_client_downgrade_8bit(const char *data, size_t len, struct buf *out, const char **error_r)
{
	struct mime_message *msg = mime_message_parse(data, len, NULL);
	size_t pos = 0;
	int rc = 0;
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p)) {
		if (utf8_has_8bit(data + p->header.offset, p->header.size)) {
			*error_r = "8-bit header text cannot be converted to 7 bits";
			rc = -1;
			break;
		}
		if ((p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) != 0 || p->header.offset < pos)
			continue;
		if (p->encoding != MIME_ENC_7BIT && p->encoding != MIME_ENC_8BIT &&
		    p->encoding != MIME_ENC_BINARY)
			continue;
		const char *body = data + p->body.offset;
		if (!utf8_has_8bit(body, p->body.size) && memchr(body, '\0', p->body.size) == NULL)
			continue;
		buf_append(out, data + pos, p->header.offset - pos);
		bool text = !strcmp(p->ct.type, "text") && p->encoding != MIME_ENC_BINARY;
		if (rewrite_header(out, data + p->header.offset, p->header.size,
				   text ? "quoted-printable" : "base64") < 0) {
			*error_r = "malformed header in an 8-bit part";
			rc = -1;
			break;
		}
		if (text)
			qp_encode(out, body, p->body.size);
		else
			base64_encode_lines(out, body, p->body.size);
		pos = p->body.offset + p->body.size;
	}
	if (rc == 0) {
		buf_append(out, data + pos, len - pos);
		if (utf8_has_8bit(out->data, out->len)) {
			*error_r = "8-bit text outside any convertible part";
			rc = -1;
		}
	}
	mime_message_free(&msg);
	return rc;
}
