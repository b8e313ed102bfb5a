#ifndef LIB_BUF_H
#define LIB_BUF_H
/* One growable, binary-safe byte buffer with an explicit length and one
   owner.  data is always NUL-terminated (not counted in len) so text can be
   passed to C string functions.  A pointer into data is invalidated by the
   next append. */
#include <stddef.h>
#include <stdarg.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                                                             \
	{                                                                                                    \
		NULL, 0, 0                                                                                   \
	}

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Removes the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_truncate(struct buf *b, size_t len);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Returns the text ("" when empty); never NULL. */
const char *buf_cstr(const struct buf *b);
/* Hands the data to the caller (who frees it) and empties the buffer. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);
#endif
