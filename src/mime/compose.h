#ifndef MIME_COMPOSE_H
#define MIME_COMPOSE_H
/* Composing messages (RFC 5322, MIME): headers encoded with RFC 2047,
   text/plain, multipart/alternative with HTML, multipart/related inline
   images referenced by cid:, multipart/mixed attachments.  Output uses
   CRLF line endings and lines within 78 characters. */
#include "lib/buf.h"
#include <stddef.h>
#include <time.h>

struct mime_compose;

struct mime_compose *mime_compose_create(void);
void mime_compose_destroy(struct mime_compose **c);

/* Adds a header field (value in UTF-8).  From, To, Cc, Bcc, Reply-To and
   Sender are address lists: display names are encoded, internationalised
   domains become A-labels.  Other fields are unstructured text.  Date,
   Message-ID and MIME-Version are added by mime_compose_write() unless
   given here.  Bcc is written (the caller removes it before sending).
   Returns 0, or -1 with a static *error_r and nothing added when name is
   not a field name (RFC 5322 3.6.8: printable ASCII except ':') or value
   holds a CR or LF: the composer folds long values itself, and a line
   break given here would start another field. */
int mime_compose_header(struct mime_compose *c, const char *name, const char *value, const char **error_r);
/* The text/plain body (UTF-8, any line endings). */
void mime_compose_text(struct mime_compose *c, const char *text, size_t len);
/* An HTML alternative (UTF-8). */
void mime_compose_html(struct mime_compose *c, const char *html, size_t len);
/* Adds an inline part for the HTML and returns its Content-ID without
   brackets (the HTML refers to it as "cid:ID"); valid until destroy.
   content_type NULL: chosen from the file name. */
const char *mime_compose_inline(struct mime_compose *c, const char *filename, const char *content_type,
				const void *data, size_t len);
/* Adds an attachment (content_type NULL: chosen from the file name). */
void mime_compose_attach(struct mime_compose *c, const char *filename, const char *content_type,
			 const void *data, size_t len);
/* Domain for Message-ID and Content-IDs (default: the From domain, else
   the host name). */
void mime_compose_set_domain(struct mime_compose *c, const char *domain);
/* Date to write (default: now). */
void mime_compose_set_date(struct mime_compose *c, time_t date);
/* Appends the whole message to out. */
void mime_compose_write(struct mime_compose *c, struct buf *out);

/* Appends an RFC 5322 3.3 date-time in the local zone:
   "Wed, 25 Nov 2026 13:30:30 +0100". */
void mime_date_format(struct buf *out, time_t t);
/* Parses an RFC 5322 date-time (lenient: obsolete zones, missing day of
   week or seconds).  Returns 0 and sets *t_r (UTC) and *tz_offset_r
   (minutes east), or -1. */
int mime_date_parse(const char *s, size_t len, time_t *t_r, int *tz_offset_r);
/* Appends a new Message-ID "<unique@domain>" with the brackets. */
void mime_message_id_generate(struct buf *out, const char *domain);
/* A content type for the file name's extension (a small table);
   "application/octet-stream" when unknown. */
const char *mime_type_from_filename(const char *filename);
/* Appends a header field "Name: value" folded and encoded as
   mime_compose_header() does, ending with CRLF. */
void mime_header_write(struct buf *out, const char *name, const char *value);
#endif
