#ifndef LIB_XALLOC_H
#define LIB_XALLOC_H
/* Allocation that aborts on failure: callers never check for NULL. */
#include <stddef.h>
#include <stdarg.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array of nmemb elements of size bytes, checking for overflow. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* A pool hands out memory that lives until pool_destroy() frees it all at
   once: one per session, transaction or parsed message. */
struct pool;
struct pool *pool_create(size_t chunk_size);
void *pool_alloc(struct pool *pool, size_t size); /* zeroed, 16-aligned */
char *pool_strdup(struct pool *pool, const char *s);
char *pool_strndup(struct pool *pool, const char *s, size_t n);
void *pool_memdup(struct pool *pool, const void *p, size_t n);
char *pool_printf(struct pool *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees everything allocated so far but keeps the first chunk. */
void pool_clear(struct pool *pool);
void pool_destroy(struct pool **pool);

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#endif
