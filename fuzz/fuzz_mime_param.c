/* Fuzzes MIME header parameters (src/mime/param.c): Content-Type and
   Content-Disposition values and bare parameter lists, with RFC 2231
   continuations and charsets and RFC 2047 words.  Checks that
   - type, subtype and parameter names are lowercase tokens;
   - every decoded value is valid UTF-8 (param.h promises UTF-8);
   - mime_param_get finds every parameter, preferring RFC 2231 values;
   - the hard limit on parameters holds. */
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/charset.h"
#include "mime/param.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A lowercase RFC 2045 token; a parameter name may be empty ("*0=x"). */
static void check_token(const char *s, int may_be_empty)
{
	if (s == NULL || (*s == '\0' && !may_be_empty))
		abort();
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 32 || c >= 127 || (c >= 'A' && c <= 'Z') || strchr("()<>@,;:\\\"/[]?=", c) != NULL)
			abort();
	}
}

static void check_params(const struct mime_params *params)
{
	if (params->count > 1000)
		abort();
	for (unsigned int i = 0; i < params->count; i++) {
		const struct mime_param *p = &params->items[i];
		check_token(p->name, 1);
		if (p->value == NULL || p->imap_name == NULL || p->imap_value == NULL)
			abort();
		if (!utf8_valid(p->value, strlen(p->value)))
			abort();
		/* The first RFC 2231 value of the name, else the first one. */
		const char *want = NULL;
		for (unsigned int j = 0; j < params->count; j++) {
			if (strcmp(params->items[j].name, p->name) != 0)
				continue;
			if (params->items[j].rfc2231) {
				want = params->items[j].value;
				break;
			}
			if (want == NULL)
				want = params->items[j].value;
		}
		if (mime_param_get(params, p->name) != want)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	struct pool *pool = pool_create(4096);
	const char *s = (const char *)data;
	struct mime_content_type ct;
	int rc = mime_content_type_parse(pool, s, size, &ct);
	check_token(ct.type, 0);
	check_token(ct.subtype, 0);
	if (rc < 0 && (strcmp(ct.type, "text") != 0 || strcmp(ct.subtype, "plain") != 0))
		abort();
	check_params(&ct.params);

	struct mime_disposition d;
	rc = mime_disposition_parse(pool, s, size, &d);
	if (rc == 0)
		check_token(d.type, 0);
	else if (d.type != NULL)
		abort();
	check_params(&d.params);

	struct mime_params params;
	mime_params_parse(pool, s, size, &params);
	check_params(&params);
	pool_destroy(&pool);
	return 0;
}
