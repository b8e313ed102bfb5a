#ifndef MIME_IMAP_H
#define MIME_IMAP_H
/* IMAP FETCH ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2,
   grammar in section 9) built from a parsed message. */
#include "lib/buf.h"
#include "mime/tree.h"
#include <stddef.h>

/* The version of what the builders below answer.  Bump it with any change
   of their output: indexes keep ENVELOPE and BODYSTRUCTURE texts, and a
   store drops the ones built by another version when it is opened
   (store_local_cache.c).  2: the classes of docs/imap.md, "BODYSTRUCTURE
   and ENVELOPE". */
#define MIME_IMAP_VERSION 2

enum mime_imap_flags {
	/* The client enabled UTF8=ACCEPT (RFC 6855): valid UTF-8 may go in
	   quoted strings instead of literals. */
	MIME_IMAP_UTF8 = 1 << 0,
};

/* Appends s as an IMAP string: a quoted string when every byte is a
   TEXT-CHAR (7-bit, no CR, LF or NUL), else a literal "{n}\r\n..."; NUL
   bytes are dropped since no string can carry them. */
void mime_imap_quote(struct buf *out, const char *s, size_t len, unsigned int flags);
/* Like mime_imap_quote() but NIL for NULL. */
void mime_imap_nstring(struct buf *out, const char *s, size_t len, unsigned int flags);
/* Appends the ENVELOPE of the message whose header is h. */
void mime_imap_envelope(struct buf *out, const struct mime_headers *h, unsigned int flags);
/* Appends the BODYSTRUCTURE (extended set) or BODY (unset) of part (the
   root for a whole message).  Sizes count line ends as CRLF. */
void mime_imap_bodystructure(struct buf *out, const struct mime_message *msg, const struct mime_part *part,
			     int extended, unsigned int flags);
#endif
