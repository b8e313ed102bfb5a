/* RFC 5322 header block parsing (section 2.2). */
#include "mime/header.h"
#include "mime/mime_private.h"
#include "mime/rfc2047.h"
#include "lib/xalloc.h"

#include <stdlib.h>

const struct mime_limits mime_default_limits = {
    .max_depth = 100,
    .max_parts = 10000,
    .max_header_count = 1000,
    .max_field_size = 64 * 1024,
    .max_header_size = 1024 * 1024,
};

void mime_limits_resolve(struct mime_limits *dst, const struct mime_limits *src)
{
	const struct mime_limits *d = &mime_default_limits;
	if (src == NULL)
		src = d;
	dst->max_depth = src->max_depth ? src->max_depth : d->max_depth;
	dst->max_parts = src->max_parts ? src->max_parts : d->max_parts;
	dst->max_header_count = src->max_header_count ? src->max_header_count : d->max_header_count;
	dst->max_field_size = src->max_field_size ? src->max_field_size : d->max_field_size;
	dst->max_header_size = src->max_header_size ? src->max_header_size : d->max_header_size;
}

int mime_header_name_valid(const char *name, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 33 || c > 126 || c == ':')
			return 0;
	}
	return 1;
}

/* Length of the field name at line (up to the colon, allowing the obsolete
   whitespace before it, RFC 5322 4.5), or 0 when the line is no field.
   *colon_r is the offset of the colon. */
static size_t field_name_len(const char *line, size_t len, size_t *colon_r)
{
	size_t i = 0;
	while (i < len && (unsigned char)line[i] > 32 && (unsigned char)line[i] < 127 && line[i] != ':')
		i++;
	size_t name_len = i;
	while (i < len && mime_is_wsp((unsigned char)line[i]))
		i++;
	if (name_len == 0 || i >= len || line[i] != ':')
		return 0;
	*colon_r = i;
	return name_len;
}

struct header_scan {
	struct pool *pool;
	struct mime_headers *h;
	struct mime_limits limits;
	unsigned int cap;
	struct mime_header_field *cur; /* field being extended, or NULL */
};

static void scan_add_field(struct header_scan *s, const char *data, size_t pos, size_t name_len, size_t colon)
{
	struct mime_headers *h = s->h;
	s->cur = NULL;
	if (h->count >= s->limits.max_header_count || pos >= s->limits.max_header_size) {
		h->flags |= MIME_HEADERS_TRUNCATED;
		return;
	}
	if (h->count == s->cap) {
		unsigned int cap = s->cap ? s->cap * 2 : 16;
		struct mime_header_field *f = pool_alloc(s->pool, cap * sizeof(*f));
		if (h->count > 0)
			memcpy(f, h->fields, h->count * sizeof(*f));
		h->fields = f;
		s->cap = cap;
	}
	struct mime_header_field *f = &h->fields[h->count++];
	f->name = data + pos;
	f->name_len = name_len;
	f->offset = pos;
	f->value = data + pos + colon + 1;
	s->cur = f;
}

/* Ends the current field at line end le (offset after the LF or at end). */
static void scan_end_line(struct header_scan *s, const char *data, size_t le)
{
	struct mime_header_field *f = s->cur;
	if (f == NULL)
		return;
	f->size = le - f->offset;
	if (f->size > s->limits.max_field_size) {
		/* Too long to be anything but an attack: drop it. */
		s->h->count--;
		s->h->flags |= MIME_HEADERS_TRUNCATED;
		s->cur = NULL;
		return;
	}
	const char *v = f->value, *e = data + le;
	if (e > v && e[-1] == '\n')
		e--;
	if (e > v && e[-1] == '\r')
		e--;
	while (v < e && mime_is_wsp((unsigned char)*v))
		v++;
	f->value = v;
	f->value_len = (size_t)(e - v);
}

static struct mime_headers *headers_scan(struct header_scan *s, const char *data, size_t len,
					 mime_boundary_check_fn *check, void *ctx)
{
	struct mime_headers *h = s->h;
	size_t pos = 0;
	while (pos < len) {
		const char *line = data + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t le = nl ? (size_t)(nl - data) + 1 : len;
		size_t llen = le - pos;
		if (line[0] == '\n' || (line[0] == '\r' && llen >= 2 && line[1] == '\n')) {
			pos = le;
			h->lines++;
			h->bare_lf += line[0] == '\n';
			h->size = pos;
			return h;
		}
		if (check != NULL && llen >= 2 && line[0] == '-' && line[1] == '-' && check(ctx, line, llen))
			break;
		size_t colon, name_len;
		if (mime_is_wsp((unsigned char)line[0])) {
			/* Continuation of the field before (RFC 5322 2.2.3). */
		} else if ((name_len = field_name_len(line, llen, &colon)) > 0) {
			scan_add_field(s, data, pos, name_len, colon);
		} else {
			/* Neither a field nor a continuation (an mbox "From "
			   line, junk): it stays in the block, which only an
			   empty line ends (RFC 5322 2.1), as Dovecot and Cyrus
			   read it. */
			s->cur = NULL;
		}
		scan_end_line(s, data, le);
		if (nl != NULL) {
			h->lines++;
			h->bare_lf += nl == data || nl[-1] != '\r';
		}
		pos = le;
	}
	h->flags |= MIME_HEADERS_NO_END;
	h->size = pos;
	return h;
}

struct mime_headers *mime_headers_parse_bounded(struct pool *pool, const char *data, size_t len,
						const struct mime_limits *limits,
						mime_boundary_check_fn *check, void *ctx)
{
	struct header_scan s = {.pool = pool};
	mime_limits_resolve(&s.limits, limits);
	s.h = pool_alloc(pool, sizeof(*s.h));
	headers_scan(&s, data, len, check, ctx);
	if (mime_has_8bit(data, s.h->size))
		s.h->flags |= MIME_HEADERS_8BIT;
	if (memchr(data, '\0', s.h->size) != NULL)
		s.h->flags |= MIME_HEADERS_NUL;
	return s.h;
}

struct mime_headers *mime_headers_parse(struct pool *pool, const char *data, size_t len,
					const struct mime_limits *limits)
{
	return mime_headers_parse_bounded(pool, data, len, limits, NULL, NULL);
}

const struct mime_header_field *mime_headers_find(const struct mime_headers *h, const char *name)
{
	for (unsigned int i = 0; i < h->count; i++)
		if (mime_name_eq(h->fields[i].name, h->fields[i].name_len, name))
			return &h->fields[i];
	return NULL;
}

const struct mime_header_field *mime_headers_find_last(const struct mime_headers *h, const char *name)
{
	for (unsigned int i = h->count; i > 0; i--)
		if (mime_name_eq(h->fields[i - 1].name, h->fields[i - 1].name_len, name))
			return &h->fields[i - 1];
	return NULL;
}

unsigned int mime_headers_count(const struct mime_headers *h, const char *name)
{
	unsigned int n = 0;
	for (unsigned int i = 0; i < h->count; i++)
		n += mime_name_eq(h->fields[i].name, h->fields[i].name_len, name);
	return n;
}

void mime_header_unfold(struct buf *out, const char *value, size_t len)
{
	const char *s = value, *end = value + len;
	while (s < end && mime_is_space((unsigned char)*s))
		s++;
	while (end > s && mime_is_space((unsigned char)end[-1]))
		end--;
	buf_reserve(out, (size_t)(end - s));
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		size_t n = (size_t)(e - s);
		if (nl != NULL && n > 0 && e[-1] == '\r')
			n--;
		buf_append(out, s, n);
		s = nl ? nl + 1 : end;
	}
}

const char *mime_headers_get(struct pool *pool, const struct mime_headers *h, const char *name)
{
	const struct mime_header_field *f = mime_headers_find(h, name);
	if (f == NULL)
		return NULL;
	struct buf b = BUF_INIT;
	mime_header_unfold(&b, f->value, f->value_len);
	char *s = pool_strndup(pool, buf_cstr(&b), b.len);
	buf_free(&b);
	return s;
}

const char *mime_headers_get_utf8(struct pool *pool, const struct mime_headers *h, const char *name)
{
	const struct mime_header_field *f = mime_headers_find(h, name);
	if (f == NULL)
		return NULL;
	struct buf b = BUF_INIT, d = BUF_INIT;
	mime_header_unfold(&b, f->value, f->value_len);
	mime_2047_decode(&d, b.data, b.len);
	char *s = pool_strndup(pool, buf_cstr(&d), d.len);
	buf_free(&b);
	buf_free(&d);
	return s;
}
