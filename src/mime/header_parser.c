/* Incremental header parsing for input that arrives in chunks. */
#include "mime/header.h"
#include "mime/mime_private.h"
#include "lib/xalloc.h"

#include <stdlib.h>

struct mime_header_parser {
	struct mime_limits limits;
	struct buf data;
	size_t line_start; /* offset of the incomplete line in data */
	size_t field_size; /* bytes of the current field so far */
	unsigned int fields;
	int done;
};

struct mime_header_parser *mime_header_parser_create(const struct mime_limits *limits)
{
	struct mime_header_parser *p = xcalloc(1, sizeof(*p));
	mime_limits_resolve(&p->limits, limits);
	return p;
}

/* Accounts for the complete line at the end of data.  Returns 1 when it is
   the blank line ending the block, 0 to go on, -1 on a limit. */
static int parser_line(struct mime_header_parser *p, const char **error_r)
{
	const char *line = p->data.data + p->line_start;
	size_t llen = p->data.len - p->line_start;
	p->line_start = p->data.len;
	if (line[0] == '\n' || (llen == 2 && line[0] == '\r'))
		return 1;
	if (mime_is_wsp((unsigned char)line[0])) {
		p->field_size += llen;
	} else {
		p->field_size = llen;
		if (++p->fields > p->limits.max_header_count) {
			*error_r = "too many header fields";
			return -1;
		}
	}
	if (p->field_size > p->limits.max_field_size) {
		*error_r = "header field too long";
		return -1;
	}
	return 0;
}

int mime_header_parser_feed(struct mime_header_parser *p, const void *data, size_t len, size_t *used_r,
			    const char **error_r)
{
	const char *s = data;
	size_t i = 0;
	*used_r = 0;
	if (p->done)
		return 1;
	while (i < len) {
		const char *nl = memchr(s + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (s + i)) + 1 : len - i;
		buf_append(&p->data, s + i, n);
		i += n;
		*used_r = i;
		if (p->data.len > p->limits.max_header_size) {
			*error_r = "header too large";
			return -1;
		}
		if (nl == NULL) {
			if (p->field_size + (p->data.len - p->line_start) > p->limits.max_field_size) {
				*error_r = "header field too long";
				return -1;
			}
			break;
		}
		int r = parser_line(p, error_r);
		if (r != 0) {
			p->done = r > 0;
			return r;
		}
	}
	return 0;
}

struct mime_headers *mime_header_parser_finish(struct mime_header_parser *p, struct pool *pool)
{
	return mime_headers_parse(pool, buf_cstr(&p->data), p->data.len, &p->limits);
}

const char *mime_header_parser_data(const struct mime_header_parser *p, size_t *len_r)
{
	*len_r = p->data.len;
	return buf_cstr(&p->data);
}

void mime_header_parser_destroy(struct mime_header_parser **pp)
{
	struct mime_header_parser *p = *pp;
	if (p == NULL)
		return;
	buf_free(&p->data);
	free(p);
	*pp = NULL;
}
