#ifndef MIME_PRIVATE_H
#define MIME_PRIVATE_H
/* Internals shared by the files of src/mime; not for other modules. */
#include "mime/header.h"

#include <stdint.h>
#include <string.h>

/* Called for a header line that starts with "--": returns true when the
   line is a multipart boundary that ends the header block. */
typedef int mime_boundary_check_fn(void *ctx, const char *line, size_t len);

struct mime_headers *mime_headers_parse_bounded(struct pool *pool, const char *data, size_t len,
						const struct mime_limits *limits,
						mime_boundary_check_fn *check, void *ctx);
/* Limits with every 0 replaced by its default. */
void mime_limits_resolve(struct mime_limits *dst, const struct mime_limits *src);

static inline int mime_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static inline int mime_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline unsigned char mime_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Case-insensitive comparison of a counted string with a C string. */
static inline int mime_name_eq(const char *s, size_t len, const char *name)
{
	size_t i = 0;
	for (; i < len; i++)
		if (name[i] == '\0' || mime_lower((unsigned char)s[i]) != mime_lower((unsigned char)name[i]))
			return 0;
	return name[i] == '\0';
}

/* RFC 2045 5.1: a token is US-ASCII without space, controls and
   tspecials; 8-bit bytes end it too. */
static inline int mime_is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Advances *s over whitespace and (nested) comments (RFC 5322 3.2.2 CFWS)
   up to end; an unterminated comment runs to the end. */
void mime_skip_cfws(const char **s, const char *end);

/* True when any byte has the high bit set. */
static inline int mime_has_8bit(const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		if (w & 0x8080808080808080ULL)
			return 1;
	}
	for (; i < len; i++)
		if (s[i] & 0x80)
			return 1;
	return 0;
}
#endif
