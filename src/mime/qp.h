#ifndef MIME_QP_H
#define MIME_QP_H
/* Quoted-printable (RFC 2045 section 6.7). */
#include "lib/buf.h"
#include <stddef.h>

/* Appends the quoted-printable encoding of text in to out: lines at most
   76 characters with soft breaks, CRLF line endings (bare LF and CRLF in
   the input both become CRLF), trailing whitespace and '=' escaped, and a
   leading '.' or "From " escaped so the result survives SMTP and mbox. */
void qp_encode(struct buf *out, const void *in, size_t len);
/* Like qp_encode() for binary data: CR and LF are encoded as =0D =0A. */
void qp_encode_binary(struct buf *out, const void *in, size_t len);
/* Tolerant decoding: "=XX" (either case) is decoded, "=" at the end of a
   line (followed by optional whitespace) is a soft break, any other '='
   is kept literally, and trailing whitespace on lines is removed.  Line
   endings are kept as they are in the input. */
void qp_decode(struct buf *out, const char *in, size_t len);
/* True when text of len bytes needs an encoding to travel as 7bit:
   8-bit bytes, NUL, a bare CR, or a line over 998 octets. */
int qp_needs_encoding(const void *in, size_t len);
#endif
