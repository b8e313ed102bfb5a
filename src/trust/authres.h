#ifndef TRUST_AUTHRES_H
#define TRUST_AUTHRES_H
/* Authentication-Results header fields (RFC 8601): writing ours (section
   2.2), and reading the authserv-id of one that came with a message, so
   that a field claiming to be ours, which can only be a forgery, is taken
   out before ours goes on top (section 5). */
#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Lines are folded before an item that would pass this column. */
#define AUTHRES_FOLD_WIDTH 78

struct authres_writer {
	struct buf *out;
	size_t col; /* column on the line being written */
	unsigned int results;
};

/* Starts "Authentication-Results: AUTHSERV-ID" in out (appends). */
void authres_begin(struct authres_writer *w, struct buf *out, const char *authserv_id);
/* A result (2.2 resinfo) on a line of its own: ";" then "method=result",
   and "reason=..." when reason is not NULL (2.2, 2.3). */
void authres_result(struct authres_writer *w, const char *method, const char *result, const char *reason);
/* A property of the last result: " ptype.property=value" (2.2 propspec),
   folded onto the next line when the line would grow too long.  value is
   written as authres_append_value() does, except that an address
   ("user@domain", "@domain") goes as it is (2.2 pvalue). */
void authres_property(struct authres_writer *w, const char *ptype, const char *property, const char *value);
/* Ends the field with CRLF; without any result it reads "; none" (2.2
   no-result: nothing was evaluated). */
void authres_end(struct authres_writer *w);

/* Appends value to out as RFC 2045 value (what 2.2 takes for authserv-id,
   reasons and property values): a token as it is, anything else as a
   quoted-string with '"' and '\' escaped.  Control characters and bytes
   outside ASCII are dropped (the field stays one clean line); an empty
   value is "". */
void authres_append_value(struct buf *out, const char *value);

/* Reads the authserv-id at the start of an Authentication-Results field's
   value (after the colon): comments and folding whitespace skipped, then a
   token or a quoted-string (unquoted into id_r, appended).  0, or -1 when
   the value does not start with one. */
int authres_parse_id(const char *value, size_t len, struct buf *id_r);
/* True when the field named name (name_len bytes) with raw value value is
   an Authentication-Results field whose authserv-id is authserv_id
   (compared without case: it is a host name). */
bool authres_field_is_ours(const char *name, size_t name_len, const char *value, size_t value_len,
			   const char *authserv_id);
#endif
