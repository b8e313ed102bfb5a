#ifndef LIB_JSON_H
#define LIB_JSON_H
/* JSON output for the commands' --json modes. */
#include "lib/buf.h"

/* Appends s (len bytes) as a JSON string, or null when s is NULL.  Quotes,
   backslashes and control characters are escaped; other bytes pass as they
   are, so callers pass valid UTF-8. */
void json_append_string(struct buf *out, const char *s, size_t len);
/* The same for a NUL-terminated string (or NULL). */
void json_append_cstr(struct buf *out, const char *s);
#endif
