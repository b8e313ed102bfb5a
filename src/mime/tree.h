#ifndef MIME_TREE_H
#define MIME_TREE_H
/* The MIME structure of a message (RFC 2045, RFC 2046): a tree of parts
   with the exact offset, size and line count of every header and body, as
   IMAP FETCH BODY[section] and BODYSTRUCTURE need them.  Parsing reads a
   memory buffer once (the caller reads or mmaps the file) and never fails:
   broken structure is repaired the way mainstream clients read it. */
#include "lib/buf.h"
#include "mime/header.h"
#include "mime/param.h"
#include <stddef.h>

struct pool;

enum mime_encoding {
	MIME_ENC_7BIT,
	MIME_ENC_8BIT,
	MIME_ENC_BINARY,
	MIME_ENC_BASE64,
	MIME_ENC_QP,
	MIME_ENC_UNKNOWN, /* x-uuencode and others: bodies left as they are */
};

/* A byte range of the message.  vsize is the size with every bare LF
   counted as CRLF, the size IMAP clients see. */
struct mime_span {
	size_t offset;
	size_t size;
	size_t vsize;
	size_t lines; /* line ends (a last line without one adds none) */
};

enum mime_part_flags {
	MIME_PART_MULTIPART = 1 << 0,   /* children are its body parts */
	MIME_PART_MESSAGE = 1 << 1,     /* message/rfc822: one child, the
					   encapsulated message */
	MIME_PART_NO_CLOSE = 1 << 2,    /* multipart ended without its close
					   delimiter (at the parent's end) */
	MIME_PART_NO_BOUNDARY = 1 << 3, /* multipart without a boundary
					   parameter: read as text/plain */
	MIME_PART_LIMIT = 1 << 4,       /* depth or part limit: not parsed
					   further, read as text/plain */
	MIME_PART_CT_INVALID = 1 << 5,  /* unparsable Content-Type */
	MIME_PART_DECODED = 1 << 6,     /* inside a base64 or quoted-printable
					   message/rfc822 that was decoded
					   (MIME_PARSE_DECODE_MESSAGES): the
					   spans refer to part->data, not to
					   the message's buffer */
};

enum mime_parse_flags {
	/* Parse inside a message/rfc822 part whose body is base64 or
	   quoted-printable (RFC 2046 5.2.1 forbids it, but forwarding
	   clients do it): the body is decoded into the tree's pool and the
	   encapsulated message parsed from there.  Off by default because
	   IMAP reads sections by their offsets in the file: such a part is
	   a leaf in the tree (and an empty message in BODYSTRUCTURE).  The
	   decoded bytes are limited to four times the message size (then
	   MIME_PART_LIMIT). */
	MIME_PARSE_DECODE_MESSAGES = 1 << 0,
};

/* Read-only for users of the tree. */
struct mime_part {
	struct mime_part *parent, *next, *children;
	unsigned int child_count;
	unsigned int index; /* 1-based among its siblings */
	unsigned int depth;
	unsigned int flags; /* enum mime_part_flags */
	struct mime_headers *headers;
	struct mime_content_type ct; /* defaults applied (RFC 2045 5.2,
					RFC 2046 5.1.5 for digests) */
	const char *boundary;        /* multipart only */
	enum mime_encoding encoding;
	const char *encoding_name; /* lowercase as written, NULL when
				      absent */
	struct mime_span header;   /* header block with its blank line */
	struct mime_span body;     /* without the line end that belongs
				      to the next boundary (RFC 2046 5.1.1) */
	const char *data;          /* the buffer the spans refer to: the
				      message's, or a decoded body */
	size_t data_size;
};

struct mime_message {
	struct pool *pool; /* owns the tree */
	const char *data;  /* the caller's buffer */
	size_t size;
	struct mime_part *root;
	unsigned int part_count;
};

/* Parses data (size bytes, which must outlive the result). */
struct mime_message *mime_message_parse(const void *data, size_t size, const struct mime_limits *limits);
/* The same with enum mime_parse_flags. */
struct mime_message *mime_message_parse_flags(const void *data, size_t size, const struct mime_limits *limits,
					      unsigned int flags);
void mime_message_free(struct mime_message **msg);

/* The part after part in depth-first order (NULL at the end). */
const struct mime_part *mime_part_next(const struct mime_part *part);
/* The part for an IMAP section number like "1.2.3" (RFC 3501 6.4.5), NULL
   when there is none.  "" is the root. */
const struct mime_part *mime_part_find(const struct mime_message *msg, const char *section);
/* Appends the IMAP section number of part to out ("" for the root; a
   non-multipart root or encapsulated message body is "1" / "N.1" for
   callers that want the body: see mime_part_body_section()). */
void mime_part_section(const struct mime_part *part, struct buf *out);
/* The section under which the part's content is fetched: like
   mime_part_section() but a root or encapsulated message that is not
   multipart gets its ".1"/"1". */
void mime_part_body_section(const struct mime_part *part, struct buf *out);

/* Appends the transfer-decoded body (base64, quoted-printable) to out;
   a multipart's body as it is. */
void mime_part_decode(const struct mime_message *msg, const struct mime_part *part, struct buf *out);
/* Appends the part's header block with its Content-Transfer-Encoding
   field(s) replaced by one naming cte, then the blank line (CRLF). */
void mime_part_write_header_cte(struct buf *out, const struct mime_part *part, const char *cte);
/* Re-encodes the leaf parts that hold binary data (Content-Transfer-
   Encoding: binary, or NUL bytes in a 7bit/8bit body) as base64, so that
   the message can be sent in IMAP literals, which hold no NUL (RFC 3516
   4.3: what a client appends as literal8).  Appends the new message to out
   and returns the number of parts re-encoded; 0 leaves out as it was. */
unsigned int mime_message_encode_binary(const struct mime_message *msg, struct buf *out);
/* Appends the decoded body of a text part converted to UTF-8 from its
   charset (unknown charsets: invalid bytes replaced). */
void mime_part_decode_text(const struct mime_message *msg, const struct mime_part *part, struct buf *out);
/* The charset parameter, or NULL. */
const char *mime_part_charset(const struct mime_part *part);
/* Parses the Content-Disposition; returns -1 when there is none. */
int mime_part_disposition(struct pool *pool, const struct mime_part *part, struct mime_disposition *d_r);
/* The file name (Content-Disposition filename, else Content-Type name),
   decoded to UTF-8; NULL when none.  Not sanitized. */
const char *mime_part_filename(struct pool *pool, const struct mime_part *part);
/* True for a leaf that a client would show as an attachment: disposition
   attachment, or a file name on a part that is not inline text. */
int mime_part_is_attachment(struct pool *pool, const struct mime_part *part);
/* The encoding for a Content-Transfer-Encoding value. */
enum mime_encoding mime_encoding_parse(const char *value, size_t len);
#endif
