#ifndef MIME_PARAM_H
#define MIME_PARAM_H
/* Content-Type (RFC 2045 section 5) and Content-Disposition (RFC 2183)
   values with their parameters, including RFC 2231 continuations and
   charsets. */
#include <stddef.h>

struct pool;

struct mime_param {
	const char *name;  /* lowercase, without RFC 2231 "*N*" */
	const char *value; /* UTF-8: continuations joined, RFC 2231
			      charset converted, RFC 2047 words decoded */
	/* The parameter as IMAP BODYSTRUCTURE shows it: continuations joined
	   but not decoded; an RFC 2231 value keeps its charset'lang'%XX form
	   under the name "name*". */
	const char *imap_name;
	const char *imap_value;
	unsigned int rfc2231; /* value came from RFC 2231 syntax */
};

struct mime_params {
	struct mime_param *items;
	unsigned int count;
};

struct mime_content_type {
	const char *type;    /* lowercase; "text" when absent or invalid */
	const char *subtype; /* lowercase; "plain" when absent or invalid */
	struct mime_params params;
};

struct mime_disposition {
	const char *type; /* lowercase: "inline", "attachment", ... */
	struct mime_params params;
};

/* Parses a raw (folded) Content-Type value.  Returns 0, or -1 when the
   type/subtype is missing or invalid: then type/subtype are "text/plain"
   (RFC 2045 5.2) and the parameters are parsed anyway. */
int mime_content_type_parse(struct pool *pool, const char *value, size_t len, struct mime_content_type *ct_r);
/* Parses a raw Content-Disposition value.  Returns 0 or -1 (no type). */
int mime_disposition_parse(struct pool *pool, const char *value, size_t len, struct mime_disposition *d_r);
/* Parses "; name=value" parameters starting anywhere in value. */
void mime_params_parse(struct pool *pool, const char *value, size_t len, struct mime_params *params_r);
/* The decoded value of parameter name (lowercase), NULL when absent.  An
   RFC 2231 value wins over a plain one of the same name. */
const char *mime_param_get(const struct mime_params *params, const char *name);
#endif
