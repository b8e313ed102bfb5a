#ifndef MIME_ADDRESS_H
#define MIME_ADDRESS_H
/* RFC 5322 address lists (section 3.4, obsolete forms of section 4.4):
   mailboxes with display names, quoted strings, comments, groups, source
   routes and missing domains.  The result is a flat list in which a group
   is a GROUP_START entry, its members, and a GROUP_END entry (the shape of
   IMAP ENVELOPE address lists, RFC 3501 7.4.2). */
#include "lib/buf.h"
#include <stddef.h>

struct pool;

enum mime_address_flags {
	MIME_ADDR_GROUP_START = 1 << 0, /* name is the group's display name */
	MIME_ADDR_GROUP_END = 1 << 1,
	MIME_ADDR_NO_DOMAIN = 1 << 2, /* "user" alone, or "<>" */
	MIME_ADDR_QUOTED = 1 << 3,    /* local part was a quoted string */
	MIME_ADDR_INVALID = 1 << 4,   /* repaired from broken syntax */
};

struct mime_address {
	struct mime_address *next;
	/* Display name with quotes and comments removed but RFC 2047 words
	   kept (IMAP ENVELOPE wants it so); NULL when none.  A comment after
	   the address is used when there is no phrase. */
	const char *name;
	const char *route;  /* obsolete "@a,@b", NULL when none */
	const char *local;  /* local part, unquoted; "" when missing */
	const char *domain; /* NULL when missing */
	unsigned int flags; /* enum mime_address_flags */
};

/* Parses a raw (possibly folded) address list value.  Never fails: broken
   input gives the addresses a lenient reader would see.  Returns NULL for
   an empty list. */
struct mime_address *mime_address_parse(struct pool *pool, const char *value, size_t len);
/* Appends "local@domain" (the local part quoted when RFC 5322 needs it). */
void mime_address_format_spec(struct buf *out, const struct mime_address *addr);
/* The display name decoded to UTF-8 (RFC 2047), NULL when none. */
const char *mime_address_name_utf8(struct pool *pool, const struct mime_address *addr);
/* True when local is a dot-atom (no quoting needed). */
int mime_local_is_dot_atom(const char *local, size_t len);
#endif
