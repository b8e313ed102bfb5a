#ifndef MIME_RFC2047_H
#define MIME_RFC2047_H
/* RFC 2047 encoded words in header text. */
#include "lib/buf.h"
#include <stddef.h>

/* Appends the header text in (unfolded) to out as UTF-8, decoding encoded
   words the way mainstream clients do: B and Q in any charset iconv knows;
   words glued to text or to each other without whitespace are decoded;
   whitespace between adjacent encoded words is dropped (RFC 2047 section
   6.2); adjacent words in one charset are joined before conversion so a
   character split across words survives; spaces inside Q text are kept;
   words in an unknown charset or malformed are left as they are.  Raw
   8-bit text that is not UTF-8 is read as Windows-1252. */
void mime_2047_decode(struct buf *out, const char *in, size_t len);

/* Appends utf8 to out as header text: ASCII words stay as they are,
   runs of words needing encoding (non-ASCII, control characters, or text
   that looks like an encoded word) become UTF-8 encoded words of at most
   75 characters (Q or B, whichever is shorter).  Lines are folded with
   CRLF SP at whitespace so they stay within 78 characters; col is the
   column where the text starts (after "Subject: ").  With phrase set the
   text is a display name (RFC 5322 3.2.5): all of it is encoded when any
   word needs it, and ASCII with specials is quoted. */
void mime_2047_encode(struct buf *out, const char *utf8, size_t len, size_t col, int phrase);
#endif
