#ifndef MIME_CHARSET_H
#define MIME_CHARSET_H
/* Charset conversion to UTF-8 through iconv, with the aliases mail
   clients apply to mislabelled text. */
#include "lib/buf.h"
#include <stddef.h>

/* Appends in (in charset) to out as UTF-8.  Invalid sequences become
   U+FFFD.  Returns 0, or -1 when iconv does not know the charset (out is
   then unchanged).  NULL or "" charset means US-ASCII. */
int mime_charset_to_utf8(struct buf *out, const char *charset, const void *in, size_t len);
/* Appends in (in charset from) to out converted to charset to, both as
   iconv(3) names them (no aliases).  Strict: 0, or -1 with out unchanged
   when iconv does not know a charset or the input is invalid (or
   truncated) in from. */
int mime_charset_convert(struct buf *out, const char *to, const char *from, const void *in, size_t len);
/* True when iconv (or the alias table) knows the charset. */
int mime_charset_known(const char *charset);
/* True when the charset names UTF-8 or US-ASCII (no conversion needed
   beyond validation). */
int mime_charset_is_utf8(const char *charset);
/* Appends in to out with invalid UTF-8 sequences replaced: valid UTF-8
   passes through; otherwise the text is read as Windows-1252, the usual
   meaning of raw 8-bit header bytes (RFC 6532 section 3 allows UTF-8). */
void mime_utf8_sanitize(struct buf *out, const void *in, size_t len);
#endif
