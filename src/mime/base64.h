#ifndef MIME_BASE64_H
#define MIME_BASE64_H
/* Base64 (RFC 4648 section 4; RFC 2045 section 6.8 for MIME bodies).  The
   encoder is strict; two decoders: a strict one for protocol use (SASL,
   RFC 4954) and a tolerant one for message bodies. */
#include "lib/buf.h"
#include <stddef.h>

/* Appends the base64 encoding of in (no line breaks) to out. */
void base64_encode(struct buf *out, const void *in, size_t len);
/* Appends base64 encoded text with CRLF every 76 characters (MIME bodies). */
void base64_encode_lines(struct buf *out, const void *in, size_t len);
/* Strict decoding (SASL): only the alphabet and correct padding, no spaces.
   Returns 0 or -1 on any invalid input. */
int base64_decode_strict(struct buf *out, const char *in, size_t len);
/* Tolerant decoding (MIME bodies): skips whitespace and junk, stops at '='. */
void base64_decode_lenient(struct buf *out, const char *in, size_t len);

/* Size of the encoding of len bytes without line breaks. */
#define BASE64_ENCODED_LEN(len) ((((len) + 2) / 3) * 4)
#endif
