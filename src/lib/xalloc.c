#include "lib/xalloc.h"
#include "lib/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t size)
{
	log_fatal("out of memory allocating %zu bytes", size);
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

void *xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		oom(SIZE_MAX);
	return xrealloc(ptr, nmemb * size);
}

char *xstrdup(const char *s)
{
	return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *xmemdup(const void *src, size_t n)
{
	void *p = xmalloc(n);
	if (n > 0)
		memcpy(p, src, n);
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		oom(strlen(fmt));
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

/* Pool: a list of chunks; allocations are carved from the newest one.
   Requests larger than a quarter chunk get a chunk of their own. */
struct pool_chunk {
	struct pool_chunk *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

struct pool {
	struct pool_chunk *chunks;
	size_t chunk_size;
};

static struct pool_chunk *chunk_new(size_t size)
{
	struct pool_chunk *c = xmalloc(sizeof(*c) + size);
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

struct pool *pool_create(size_t chunk_size)
{
	struct pool *pool = xmalloc(sizeof(*pool));
	pool->chunk_size = chunk_size < 256 ? 256 : chunk_size;
	pool->chunks = chunk_new(pool->chunk_size);
	return pool;
}

void *pool_alloc(struct pool *pool, size_t size)
{
	size_t need = (size + 15) & ~(size_t)15;
	if (need < size)
		oom(size);
	struct pool_chunk *c = pool->chunks;
	if (c->size - c->used < need) {
		if (need > pool->chunk_size / 4) {
			/* Big block: its own chunk, linked behind the current one
			   so the current chunk keeps serving small requests. */
			struct pool_chunk *big = chunk_new(need);
			big->used = need;
			big->next = c->next;
			c->next = big;
			memset(big->data, 0, need);
			return big->data;
		}
		c = chunk_new(pool->chunk_size);
		c->next = pool->chunks;
		pool->chunks = c;
	}
	void *p = c->data + c->used;
	c->used += need;
	memset(p, 0, need);
	return p;
}

char *pool_strdup(struct pool *pool, const char *s)
{
	return pool_memdup(pool, s, strlen(s) + 1);
}

char *pool_strndup(struct pool *pool, const char *s, size_t n)
{
	char *p = pool_alloc(pool, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void *pool_memdup(struct pool *pool, const void *src, size_t n)
{
	void *p = pool_alloc(pool, n);
	if (n > 0)
		memcpy(p, src, n);
	return p;
}

char *pool_printf(struct pool *pool, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *tmp = xvasprintf(fmt, ap);
	va_end(ap);
	char *s = pool_strdup(pool, tmp);
	free(tmp);
	return s;
}

void pool_clear(struct pool *pool)
{
	struct pool_chunk *c = pool->chunks, *keep = NULL;
	while (c != NULL) {
		struct pool_chunk *next = c->next;
		if (next == NULL && c->size == pool->chunk_size) {
			keep = c;
			break;
		}
		free(c);
		c = next;
	}
	if (keep == NULL)
		keep = chunk_new(pool->chunk_size);
	keep->used = 0;
	keep->next = NULL;
	pool->chunks = keep;
}

void pool_destroy(struct pool **poolp)
{
	struct pool *pool = *poolp;
	if (pool == NULL)
		return;
	struct pool_chunk *c = pool->chunks;
	while (c != NULL) {
		struct pool_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(pool);
	*poolp = NULL;
}
