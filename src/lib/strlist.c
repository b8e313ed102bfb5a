#include "lib/strlist.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

void strlist_add(struct strlist *l, const char *s)
{
	if (l->count == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->items = xreallocarray(l->items, l->cap, sizeof(*l->items));
	}
	l->items[l->count++] = xstrdup(s);
}

int strlist_add_cb(void *ctx, const char *s)
{
	strlist_add(ctx, s);
	return 0;
}

bool strlist_contains(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = l->cap = 0;
}
