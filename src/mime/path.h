#ifndef MIME_PATH_H
#define MIME_PATH_H
/* RFC 5321 paths (section 4.1.2) as MAIL FROM and RCPT TO carry them,
   with RFC 6531 (SMTPUTF8) local parts and domains, and conversion of
   internationalised domains (libidn2). */
#include "lib/buf.h"
#include <stddef.h>

struct pool;

enum mime_path_parse_flags {
	MIME_PATH_ALLOW_UTF8 = 1 << 0,       /* SMTPUTF8 was given */
	MIME_PATH_ALLOW_NULL = 1 << 1,       /* "<>" (MAIL FROM) */
	MIME_PATH_ALLOW_POSTMASTER = 1 << 2, /* "<Postmaster>" (RCPT TO, 4.1.1.3) */
	MIME_PATH_ALLOW_NO_ANGLE = 1 << 3,   /* lenient: user@domain without <> */
};

enum mime_path_flags {
	MIME_PATH_NULL = 1 << 0,       /* "<>" */
	MIME_PATH_QUOTED = 1 << 1,     /* the local part was a quoted string */
	MIME_PATH_HAS_ROUTE = 1 << 2,  /* source route given (to be ignored
					  or refused, RFC 5321 4.1.1.3, C.) */
	MIME_PATH_LITERAL = 1 << 3,    /* domain is an address literal */
	MIME_PATH_UTF8 = 1 << 4,       /* non-ASCII local part or domain */
	MIME_PATH_POSTMASTER = 1 << 5, /* "<Postmaster>" without domain */
};

struct mime_path {
	const char *local;  /* unquoted ("" for the null path) */
	const char *domain; /* as written, literals with brackets; NULL for
			       the null path and Postmaster */
	const char *route;  /* "@a,@b" or NULL */
	unsigned int flags; /* enum mime_path_flags */
};

/* RFC 5321 4.5.3.1 limits. */
#define MIME_PATH_MAX_LOCAL 64
#define MIME_PATH_MAX_DOMAIN 255
#define MIME_PATH_MAX_PATH 256

/* Parses a path at in (len bytes; it starts at '<', or at the address with
   MIME_PATH_ALLOW_NO_ANGLE).  On success returns 0, fills path_r (strings
   in pool) and sets *consumed_r to the bytes used (parameters follow).
   Returns -1 with a static *error_r on a syntax error or limit. */
int mime_path_parse(struct pool *pool, const char *in, size_t len, unsigned int flags,
		    struct mime_path *path_r, size_t *consumed_r, const char **error_r);
/* Checks an envelope address as the spool and the SMTP client keep it,
   without angle brackets ("local@domain", "" for the null sender): 0 when
   "<" address ">" is a valid Path under flags (MIME_PATH_ALLOW_NULL allows
   ""), -1 with a static *error_r otherwise, e.g. for a line break or a ">"
   in it.  This is what makes "MAIL FROM:<%s>" one command line. */
int mime_path_check_address(const char *address, unsigned int flags, const char **error_r);
/* Appends "<local@domain>" with the local part quoted when needed (the
   route is not written). */
void mime_path_format(struct buf *out, const struct mime_path *path);
/* The A-label (ASCII, IDNA 2008) form of a domain.  ASCII domains are
   returned lowercased as they are.  Returns 0 or -1 with *error_r. */
int mime_domain_to_ascii(struct pool *pool, const char *domain, const char **ascii_r, const char **error_r);
/* The U-label (UTF-8) form of a domain with "xn--" labels. */
int mime_domain_to_utf8(struct pool *pool, const char *domain, const char **utf8_r, const char **error_r);
#endif
