/* Fuzzes RFC 5321 path parsing (src/mime/path.c) under every combination
   of parse flags.  Checks that an accepted path
   - stays inside the input and within the RFC 5321 4.5.3.1 limits;
   - formats (mime_path_format) to a path that parses back, with the same
     flags, to the same local part and domain;
   - with an internationalised domain converted to its A-label form (as
     smtp_path_parse normalises it), still formats to a valid path. */
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/path.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Limit errors are allowed when a reformatted path grows (A-labels are
   longer than U-labels); syntax errors are not. */
static int is_limit_error(const char *error)
{
	return strstr(error, "too long") != NULL;
}

static void check_path(struct pool *pool, const struct mime_path *p, unsigned int flags)
{
	if (p->local == NULL)
		abort();
	if (p->flags & MIME_PATH_NULL) {
		if (!(flags & MIME_PATH_ALLOW_NULL) || p->domain != NULL || p->local[0] != '\0')
			abort();
	} else if (p->flags & MIME_PATH_POSTMASTER) {
		if (!(flags & MIME_PATH_ALLOW_POSTMASTER) || p->domain != NULL)
			abort();
	} else {
		if (p->domain == NULL || strlen(p->local) > MIME_PATH_MAX_LOCAL ||
		    strlen(p->domain) > MIME_PATH_MAX_DOMAIN)
			abort();
	}
	if ((p->flags & MIME_PATH_UTF8) && !(flags & MIME_PATH_ALLOW_UTF8))
		abort();

	/* Format and parse again. */
	struct buf out = BUF_INIT;
	mime_path_format(&out, p);
	struct mime_path back;
	size_t consumed;
	const char *error;
	if (mime_path_parse(pool, out.data, out.len, flags, &back, &consumed, &error) < 0 ||
	    consumed != out.len || !same(back.local, p->local) || !same(back.domain, p->domain))
		abort();
	buf_free(&out);

	/* The A-label form, as the SMTP server normalises addresses. */
	if (p->domain == NULL || (p->flags & MIME_PATH_LITERAL))
		return;
	const char *ascii, *utf8;
	if (mime_domain_to_ascii(pool, p->domain, &ascii, &error) < 0)
		return;
	for (const char *c = ascii; *c != '\0'; c++)
		if ((unsigned char)*c >= 0x80 || (*c >= 'A' && *c <= 'Z'))
			abort();
	struct mime_path norm = *p;
	norm.domain = ascii;
	mime_path_format(&out, &norm);
	if (mime_path_parse(pool, out.data, out.len, flags, &back, &consumed, &error) < 0) {
		if (!is_limit_error(error))
			abort();
	} else if (!same(back.domain, ascii)) {
		abort();
	}
	buf_free(&out);
	mime_domain_to_utf8(pool, ascii, &utf8, &error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	struct pool *pool = pool_create(4096);
	const char *s = (const char *)data;
	for (unsigned int flags = 0; flags < 16; flags++) {
		struct mime_path path;
		size_t consumed;
		const char *error = NULL;
		if (mime_path_parse(pool, s, size, flags, &path, &consumed, &error) < 0) {
			if (error == NULL)
				abort();
			continue;
		}
		if (consumed == 0 || consumed > size || consumed > MIME_PATH_MAX_PATH)
			abort();
		check_path(pool, &path, flags);
	}
	pool_destroy(&pool);
	return 0;
}
