#ifndef LIB_STRLIST_H
#define LIB_STRLIST_H
/* A growable list of owned strings. */
#include <stdbool.h>
#include <stddef.h>

struct strlist {
	char **items;
	size_t count, cap;
};

#define STRLIST_INIT                                                                                         \
	{                                                                                                    \
		NULL, 0, 0                                                                                   \
	}

/* Appends a copy of s. */
void strlist_add(struct strlist *l, const char *s);
/* The same, shaped as a listing callback (ctx is the strlist); returns 0. */
int strlist_add_cb(void *ctx, const char *s);
bool strlist_contains(const struct strlist *l, const char *s);
void strlist_free(struct strlist *l);
#endif
