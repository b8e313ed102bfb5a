#ifndef MIME_HEADER_H
#define MIME_HEADER_H
/* RFC 5322 header blocks (section 2.2, folding 2.2.3; RFC 6532 UTF-8 and
   raw 8-bit text is kept as it is).  Fields point into the caller's buffer:
   parsing copies nothing, so the buffer must outlive the result. */
#include "lib/buf.h"
#include <stddef.h>

struct pool;

/* Hard limits for parsing.  A limit of 0 means the default. */
struct mime_limits {
	unsigned int max_depth;        /* MIME nesting (default 100) */
	unsigned int max_parts;        /* parts in a message (default 10000) */
	unsigned int max_header_count; /* fields per header block (default 1000) */
	size_t max_field_size;         /* one field, folded (default 64 KiB) */
	size_t max_header_size;        /* one header block (default 1 MiB) */
};
extern const struct mime_limits mime_default_limits;

struct mime_header_field {
	const char *name; /* not NUL-terminated */
	size_t name_len;
	const char *value; /* raw and folded, after the colon and leading
			      whitespace, without the final line end */
	size_t value_len;
	size_t offset; /* of the field in the parsed buffer */
	size_t size;   /* of the field including its line end */
};

enum mime_headers_flags {
	MIME_HEADERS_8BIT = 1 << 0,      /* a byte >= 0x80 appears */
	MIME_HEADERS_NO_END = 1 << 1,    /* ended without a blank line */
	MIME_HEADERS_TRUNCATED = 1 << 2, /* a limit dropped fields */
	MIME_HEADERS_NUL = 1 << 3,       /* a NUL byte appears */
};

struct mime_headers {
	struct mime_header_field *fields;
	unsigned int count;
	unsigned int flags; /* enum mime_headers_flags */
	size_t size;        /* bytes of the block including the blank line */
	size_t lines;       /* line ends in the block */
	size_t bare_lf;     /* LF not preceded by CR (size as CRLF: size + bare_lf) */
};

/* Parses the header block at data (len bytes) into the pool.  The block
   ends after the first empty line (RFC 5322 2.1), or at len; a line that is
   neither a field nor a continuation stays in the block and is no field.
   Never fails: limits drop fields and set MIME_HEADERS_TRUNCATED. */
struct mime_headers *mime_headers_parse(struct pool *pool, const char *data, size_t len,
					const struct mime_limits *limits);

/* Returns the first (or last, when last is set) field named name (case
   insensitive), NULL when absent. */
const struct mime_header_field *mime_headers_find(const struct mime_headers *h, const char *name);
const struct mime_header_field *mime_headers_find_last(const struct mime_headers *h, const char *name);
/* Number of fields named name. */
unsigned int mime_headers_count(const struct mime_headers *h, const char *name);
/* The unfolded value of the first field named name (CRLF before whitespace
   removed, RFC 5322 2.2.3, surrounding whitespace trimmed), NUL-terminated
   in the pool; NULL when absent. */
const char *mime_headers_get(struct pool *pool, const struct mime_headers *h, const char *name);
/* The same decoded for display: unfolded, RFC 2047 encoded words decoded,
   raw 8-bit text made valid UTF-8.  NULL when absent. */
const char *mime_headers_get_utf8(struct pool *pool, const struct mime_headers *h, const char *name);

/* Unfolds a raw value into out (appends) and trims surrounding whitespace. */
void mime_header_unfold(struct buf *out, const char *value, size_t len);
/* True when name is a valid field name: printable ASCII except ':' (RFC
   5322 section 3.6.8). */
int mime_header_name_valid(const char *name, size_t len);

/* Incremental parsing for data that arrives in chunks (SMTP DATA): the
   parser copies the header block and enforces the limits strictly. */
struct mime_header_parser;
struct mime_header_parser *mime_header_parser_create(const struct mime_limits *limits);
/* Feeds a chunk.  Returns 1 when the header block is complete (*used_r is
   the number of bytes of this chunk that belong to it), 0 when more input
   is needed (all of it was used), -1 when a limit was exceeded (*error_r is
   static text).  Call mime_header_parser_finish() at end of input. */
int mime_header_parser_feed(struct mime_header_parser *p, const void *data, size_t len, size_t *used_r,
			    const char **error_r);
/* Parses what was collected (after feed returned 1, or at end of input).
   The result lives in pool and points into the parser's copy, which stays
   valid until mime_header_parser_destroy(). */
struct mime_headers *mime_header_parser_finish(struct mime_header_parser *p, struct pool *pool);
/* The raw header block collected so far. */
const char *mime_header_parser_data(const struct mime_header_parser *p, size_t *len_r);
void mime_header_parser_destroy(struct mime_header_parser **p);
#endif
