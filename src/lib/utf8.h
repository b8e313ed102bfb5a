#ifndef LIB_UTF8_H
#define LIB_UTF8_H
/* Byte-level text checks shared by every protocol: 8-bit detection and
   UTF-8 validation (RFC 3629). */
#include <stdbool.h>
#include <stddef.h>

/* True when some byte of data has the high bit set, i.e. the text is not
   US-ASCII (it needs 8BITMIME or SMTPUTF8, RFC 6152 and RFC 6531). */
bool utf8_has_8bit(const void *data, size_t len);
/* True when data is valid UTF-8 (RFC 3629 section 3: no overlong forms,
   surrogates or values above U+10FFFF).  NUL bytes are valid; callers
   that forbid them check for them. */
bool utf8_valid(const void *data, size_t len);
/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is invalid
   or longer than avail (avail >= 1). */
size_t utf8_seq_len(const unsigned char *s, size_t avail);
#endif
