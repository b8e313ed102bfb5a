/* Walking the MIME tree and reading a part's content. */
#include "mime/tree.h"
#include "mime/base64.h"
#include "mime/charset.h"
#include "mime/mime_private.h"
#include "mime/qp.h"
#include "lib/xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct mime_part *mime_part_next(const struct mime_part *part)
{
	if (part->children != NULL)
		return part->children;
	while (part != NULL && part->next == NULL)
		part = part->parent;
	return part != NULL ? part->next : NULL;
}

static const struct mime_part *child_at(const struct mime_part *part, unsigned long n)
{
	const struct mime_part *c = part->children;
	while (c != NULL && c->index != n)
		c = c->next;
	return c;
}

const struct mime_part *mime_part_find(const struct mime_message *msg, const char *section)
{
	const struct mime_part *scope = msg->root, *p = scope;
	const char *s = section;
	while (*s != '\0') {
		char *end;
		if (*s < '1' || *s > '9')
			return NULL;
		unsigned long n = strtoul(s, &end, 10);
		if (*end != '\0' && *end != '.')
			return NULL;
		if (scope == NULL)
			return NULL;
		if (scope->flags & MIME_PART_MULTIPART)
			p = child_at(scope, n);
		else
			p = n == 1 ? scope : NULL;
		if (p == NULL)
			return NULL;
		/* Numbers after an encapsulated message go into it; after a
		   nested multipart into its parts (RFC 3501 6.4.5). */
		if (p->flags & MIME_PART_MESSAGE)
			scope = p->children;
		else if (p->flags & MIME_PART_MULTIPART)
			scope = p;
		else
			scope = NULL;
		s = *end == '.' ? end + 1 : end;
		if (*end == '.' && *s == '\0')
			return NULL;
	}
	return p;
}

void mime_part_section(const struct mime_part *part, struct buf *out)
{
	const struct mime_part *parent = part->parent;
	if (parent == NULL)
		return;
	if (parent->flags & MIME_PART_MESSAGE) {
		/* The encapsulated message has the number of its part's body
		   ("1" when that part is a non-multipart root). */
		mime_part_body_section(parent, out);
		return;
	}
	size_t before = out->len;
	mime_part_section(parent, out);
	if (out->len > before)
		buf_append_char(out, '.');
	buf_printf(out, "%u", part->index);
}

void mime_part_body_section(const struct mime_part *part, struct buf *out)
{
	size_t before = out->len;
	mime_part_section(part, out);
	int is_message_entity = part->parent == NULL || (part->parent->flags & MIME_PART_MESSAGE);
	if (is_message_entity && !(part->flags & MIME_PART_MULTIPART))
		buf_append_str(out, out->len > before ? ".1" : "1");
}

void mime_part_decode(const struct mime_message *msg, const struct mime_part *part, struct buf *out)
{
	const char *body = part->data + part->body.offset;
	size_t len = part->body.size;
	if (part->flags & MIME_PART_MULTIPART) {
		buf_append(out, body, len);
		return;
	}
	switch (part->encoding) {
	case MIME_ENC_BASE64:
		base64_decode_lenient(out, body, len);
		break;
	case MIME_ENC_QP:
		qp_decode(out, body, len);
		break;
	default:
		buf_append(out, body, len);
		break;
	}
}

void mime_part_write_header_cte(struct buf *out, const struct mime_part *part, const char *cte)
{
	const struct mime_headers *h = part->headers;
	for (unsigned int i = 0; i < h->count; i++) {
		const struct mime_header_field *f = &h->fields[i];
		if (f->name_len == 25 && strncasecmp(f->name, "Content-Transfer-Encoding", 25) == 0)
			continue;
		buf_append(out, f->name, f->size);
		/* a last field without its line end (a header with no body) */
		if (f->size == 0 || f->name[f->size - 1] != '\n')
			buf_append_str(out, "\r\n");
	}
	buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", cte);
}

static bool holds_binary(const struct mime_part *p)
{
	/* a header cut by the parser's limits could not be written back whole */
	if (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE | MIME_PART_DECODED) ||
	    (p->headers->flags & MIME_HEADERS_TRUNCATED))
		return false;
	if (p->encoding == MIME_ENC_BINARY)
		return true;
	return (p->encoding == MIME_ENC_7BIT || p->encoding == MIME_ENC_8BIT) &&
	       memchr(p->data + p->body.offset, '\0', p->body.size) != NULL;
}

unsigned int mime_message_encode_binary(const struct mime_message *msg, struct buf *out)
{
	size_t done = 0, start = out->len;
	unsigned int n = 0;
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p)) {
		if (!holds_binary(p) || p->header.offset < done)
			continue;
		buf_append(out, msg->data + done, p->header.offset - done);
		mime_part_write_header_cte(out, p, "base64");
		base64_encode_lines(out, p->data + p->body.offset, p->body.size);
		done = p->body.offset + p->body.size;
		/* the line end before the next boundary follows: no second one */
		if (done < msg->size && p->body.size > 0)
			buf_truncate(out, out->len - 2);
		n++;
	}
	if (n == 0) {
		buf_truncate(out, start);
		return 0;
	}
	buf_append(out, msg->data + done, msg->size - done);
	return n;
}

const char *mime_part_charset(const struct mime_part *part)
{
	return mime_param_get(&part->ct.params, "charset");
}

void mime_part_decode_text(const struct mime_message *msg, const struct mime_part *part, struct buf *out)
{
	struct buf raw = BUF_INIT;
	mime_part_decode(msg, part, &raw);
	const char *cs = mime_part_charset(part);
	if (mime_charset_to_utf8(out, cs, buf_cstr(&raw), raw.len) < 0)
		mime_utf8_sanitize(out, buf_cstr(&raw), raw.len);
	buf_free(&raw);
}

int mime_part_disposition(struct pool *pool, const struct mime_part *part, struct mime_disposition *d_r)
{
	const struct mime_header_field *f = mime_headers_find(part->headers, "Content-Disposition");
	memset(d_r, 0, sizeof(*d_r));
	if (f == NULL)
		return -1;
	return mime_disposition_parse(pool, f->value, f->value_len, d_r);
}

const char *mime_part_filename(struct pool *pool, const struct mime_part *part)
{
	struct mime_disposition d;
	const char *name = NULL;
	if (mime_part_disposition(pool, part, &d) == 0 || d.params.count > 0)
		name = mime_param_get(&d.params, "filename");
	if (name == NULL || *name == '\0')
		name = mime_param_get(&part->ct.params, "name");
	return name != NULL && *name != '\0' ? name : NULL;
}

int mime_part_is_attachment(struct pool *pool, const struct mime_part *part)
{
	if (part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))
		return 0;
	struct mime_disposition d;
	int has = mime_part_disposition(pool, part, &d) == 0;
	if (has && !strcmp(d.type, "attachment"))
		return 1;
	if (has && !strcmp(d.type, "inline"))
		return 0;
	return mime_part_filename(pool, part) != NULL && strcmp(part->ct.type, "text") != 0;
}
