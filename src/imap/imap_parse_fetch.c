/* FETCH attributes (RFC 3501 6.4.5 and section 9 fetch-att, RFC 3516
   BINARY, RFC 7162 CHANGEDSINCE/VANISHED, RFC 9051, RFC 8474 EMAILID and
   THREADID, RFC 8970 PREVIEW). */
#include "imap/imap_parse.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	unsigned int items;
} simple_atts[] = {
    {"ALL", IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE | IMAP_FETCH_ENVELOPE},
    {"FAST", IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE},
    {"FULL", IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE | IMAP_FETCH_ENVELOPE |
		 IMAP_FETCH_BODY},
    {"FLAGS", IMAP_FETCH_FLAGS},
    {"INTERNALDATE", IMAP_FETCH_INTERNALDATE},
    {"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE},
    {"ENVELOPE", IMAP_FETCH_ENVELOPE},
    {"BODY", IMAP_FETCH_BODY},
    {"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE},
    {"UID", IMAP_FETCH_UID},
    {"MODSEQ", IMAP_FETCH_MODSEQ},
    {"RFC822", IMAP_FETCH_RFC822},
    {"RFC822.HEADER", IMAP_FETCH_RFC822_HEADER},
    {"RFC822.TEXT", IMAP_FETCH_RFC822_TEXT},
    {"SAVEDATE", IMAP_FETCH_SAVEDATE},
    {"EMAILID", IMAP_FETCH_EMAILID},
    {"THREADID", IMAP_FETCH_THREADID},
};

/* Parses "(NAME NAME ...)" of HEADER.FIELDS into body. */
static int parse_field_list(struct pool *pool, const char *s, struct imap_fetch_body *body,
			    const char **end_r, const char **error_r)
{
	if (*s != '(') {
		*error_r = "Header field list expected";
		return -1;
	}
	s++;
	unsigned int alloc = 0;
	for (;;) {
		const char *start = s;
		bool quoted = false;
		if (*s == '"') {
			quoted = true;
			start = ++s;
			while (*s && *s != '"')
				s++;
		} else {
			while (*s && *s != ' ' && *s != ')')
				s++;
		}
		size_t n = (size_t)(s - start);
		if (n == 0 || (quoted && *s != '"')) {
			*error_r = "Invalid header field name";
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)start[i];
			if (c <= 0x20 || c >= 0x7f || c == ':') {
				*error_r = "Invalid header field name";
				return -1;
			}
		}
		if (body->field_count == alloc) {
			alloc = alloc ? alloc * 2 : 4;
			const char **nf = pool_alloc(pool, alloc * sizeof(*nf));
			if (body->field_count > 0)
				memcpy(nf, body->fields, body->field_count * sizeof(*nf));
			body->fields = nf;
		}
		body->fields[body->field_count++] = pool_strndup(pool, start, n);
		if (quoted)
			s++;
		if (*s == ')')
			break;
		if (*s != ' ' || s[1] == ' ' || s[1] == ')') {
			*error_r = "Invalid header field list";
			return -1;
		}
		s++;
	}
	*end_r = s + 1;
	return 0;
}

/* Parses the section text between "[" and "]". */
static int parse_section(struct pool *pool, const char *s, struct imap_fetch_body *body, const char **error_r)
{
	/* section-part: nz-number *("." nz-number) */
	while (isdigit((unsigned char)*s)) {
		if (*s == '0' || body->part_count == IMAP_SECTION_MAX_PARTS) {
			*error_r = "Invalid section part";
			return -1;
		}
		uint64_t n = 0;
		while (isdigit((unsigned char)*s)) {
			n = n * 10 + (uint64_t)(*s++ - '0');
			if (n > UINT32_MAX) {
				*error_r = "Invalid section part";
				return -1;
			}
		}
		body->parts[body->part_count++] = (uint32_t)n;
		if (*s == '\0')
			return 0;
		if (*s != '.') {
			*error_r = "Invalid section";
			return -1;
		}
		s++;
		if (!isdigit((unsigned char)*s))
			break;
	}
	if (*s == '\0') {
		if (body->part_count > 0) {
			*error_r = "Invalid section";
			return -1;
		}
		return 0;
	}
	if (body->binary) {
		*error_r = "BINARY takes only part numbers";
		return -1;
	}
	const char *end = NULL;
	if (strcasecmp(s, "HEADER") == 0) {
		body->spec = IMAP_SECTION_HEADER;
	} else if (strcasecmp(s, "TEXT") == 0) {
		body->spec = IMAP_SECTION_TEXT;
	} else if (strcasecmp(s, "MIME") == 0) {
		if (body->part_count == 0) {
			*error_r = "MIME needs a part number";
			return -1;
		}
		body->spec = IMAP_SECTION_MIME;
	} else if (strncasecmp(s, "HEADER.FIELDS.NOT ", 18) == 0) {
		body->spec = IMAP_SECTION_HEADER_FIELDS_NOT;
		if (parse_field_list(pool, s + 18, body, &end, error_r) < 0)
			return -1;
	} else if (strncasecmp(s, "HEADER.FIELDS ", 14) == 0) {
		body->spec = IMAP_SECTION_HEADER_FIELDS;
		if (parse_field_list(pool, s + 14, body, &end, error_r) < 0)
			return -1;
	} else {
		*error_r = "Unknown section";
		return -1;
	}
	if (end != NULL && *end != '\0') {
		*error_r = "Junk after header field list";
		return -1;
	}
	return 0;
}

/* Canonical section text for the response: upper-case keywords, the field
   names as the client gave them. */
static const char *section_text(struct pool *pool, const struct imap_fetch_body *b)
{
	static const char *const specs[] = {"",     "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT",
					    "TEXT", "MIME"};
	struct buf out = BUF_INIT;
	for (unsigned int i = 0; i < b->part_count; i++)
		buf_printf(&out, "%s%u", i ? "." : "", b->parts[i]);
	if (b->spec != IMAP_SECTION_ALL) {
		if (b->part_count > 0)
			buf_append_char(&out, '.');
		buf_append_str(&out, specs[b->spec]);
	}
	if (b->field_count > 0) {
		buf_append_str(&out, " (");
		for (unsigned int i = 0; i < b->field_count; i++) {
			if (i > 0)
				buf_append_char(&out, ' ');
			buf_append_str(&out, b->fields[i]);
		}
		buf_append_char(&out, ')');
	}
	const char *r = pool_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return r;
}

static int parse_partial(const char *s, struct imap_fetch_body *body, const char **error_r)
{
	/* "<" number "." nz-number ">" */
	char *end;
	if (!isdigit((unsigned char)s[1]))
		goto bad;
	unsigned long long off = strtoull(s + 1, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]) || end[1] == '0' || off > UINT32_MAX)
		goto bad;
	unsigned long long len = strtoull(end + 1, &end, 10);
	if (end[0] != '>' || end[1] != '\0' || len > UINT32_MAX || len == 0)
		goto bad;
	body->partial = true;
	body->offset = (uint32_t)off;
	body->length = (uint32_t)len;
	return 0;
bad:
	*error_r = "Invalid partial range";
	return -1;
}

static int parse_body_att(struct pool *pool, const char *s, struct imap_fetch_atts *atts,
			  const char **error_r)
{
	struct imap_fetch_body body;
	memset(&body, 0, sizeof(body));
	const char *bracket = strchr(s, '[');
	size_t nlen = (size_t)(bracket - s);
	if (nlen == 4 && strncasecmp(s, "BODY", 4) == 0) {
	} else if (nlen == 9 && strncasecmp(s, "BODY.PEEK", 9) == 0) {
		body.peek = true;
	} else if (nlen == 6 && strncasecmp(s, "BINARY", 6) == 0) {
		body.binary = true;
	} else if (nlen == 11 && strncasecmp(s, "BINARY.PEEK", 11) == 0) {
		body.binary = body.peek = true;
	} else if (nlen == 11 && strncasecmp(s, "BINARY.SIZE", 11) == 0) {
		body.binary = body.binary_size = body.peek = true;
	} else {
		*error_r = "Unknown FETCH attribute";
		return -1;
	}
	const char *close = strchr(bracket, ']');
	if (close == NULL) {
		*error_r = "Missing ]";
		return -1;
	}
	char *sec = pool_strndup(pool, bracket + 1, (size_t)(close - bracket - 1));
	if (parse_section(pool, sec, &body, error_r) < 0)
		return -1;
	if (close[1] == '<') {
		if (body.binary_size || parse_partial(close + 1, &body, error_r) < 0) {
			if (body.binary_size)
				*error_r = "BINARY.SIZE takes no partial range";
			return -1;
		}
	} else if (close[1] != '\0') {
		*error_r = "Junk after section";
		return -1;
	}
	body.section = section_text(pool, &body);
	if (atts->body_count >= 256) {
		*error_r = "Too many body sections";
		return -1;
	}
	struct imap_fetch_body *nb = pool_alloc(pool, (atts->body_count + 1) * sizeof(*nb));
	if (atts->body_count > 0)
		memcpy(nb, atts->bodies, atts->body_count * sizeof(*nb));
	nb[atts->body_count++] = body;
	atts->bodies = nb;
	return 0;
}

static int parse_att(struct pool *pool, const struct imap_arg *arg, bool macros, struct imap_fetch_atts *atts,
		     const char **error_r)
{
	if (arg->type != IMAP_ARG_ATOM) {
		*error_r = "Invalid FETCH attribute";
		return -1;
	}
	if (strchr(arg->str, '[') != NULL)
		return parse_body_att(pool, arg->str, atts, error_r);
	for (size_t i = 0; i < N_ELEMENTS(simple_atts); i++) {
		if (strcasecmp(arg->str, simple_atts[i].name) == 0) {
			if (i < 3 && !macros) {
				*error_r = "Macros cannot be used in a list";
				return -1;
			}
			atts->items |= simple_atts[i].items;
			return 0;
		}
	}
	*error_r = "Unknown FETCH attribute";
	return -1;
}

/* "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"] (RFC 8970 6) at
   att, next the argument after it (may be NULL): a list after PREVIEW that
   starts with LAZY is its modifiers (else it is FETCH's modifiers, or
   wrong).  1 with *used_r arguments read, 0 when att is not PREVIEW, -1
   with *error_r. */
static int parse_preview(const struct imap_arg *att, const struct imap_arg *next,
			 struct imap_fetch_atts *atts, unsigned int *used_r, const char **error_r)
{
	if (!imap_arg_atom_equals(att, "PREVIEW"))
		return 0;
	bool lazy = next != NULL && next->type == IMAP_ARG_LIST && next->count > 0 &&
		    imap_arg_atom_equals(&next->list[0], "LAZY");
	for (unsigned int i = 0; lazy && i < next->count; i++) {
		if (!imap_arg_atom_equals(&next->list[i], "LAZY")) {
			*error_r = "Unknown PREVIEW modifier";
			return -1;
		}
	}
	/* PREVIEW and PREVIEW (LAZY) together: the preview is wanted */
	atts->preview_lazy = (atts->items & IMAP_FETCH_PREVIEW) ? atts->preview_lazy && lazy : lazy;
	atts->items |= IMAP_FETCH_PREVIEW;
	*used_r = lazy ? 2 : 1;
	return 1;
}

/* One attribute at args[0] (with its PREVIEW modifiers in args[1]). */
static int parse_one_att(struct pool *pool, const struct imap_arg *args, unsigned int count, bool macros,
			 struct imap_fetch_atts *atts, unsigned int *used_r, const char **error_r)
{
	int r = parse_preview(&args[0], count > 1 ? &args[1] : NULL, atts, used_r, error_r);
	if (r != 0)
		return r < 0 ? -1 : 0;
	*used_r = 1;
	return parse_att(pool, &args[0], macros, atts, error_r);
}

static int parse_modifiers(const struct imap_arg *list, struct imap_fetch_atts *atts, const char **error_r)
{
	for (unsigned int i = 0; i < list->count; i++) {
		const struct imap_arg *m = &list->list[i];
		if (imap_arg_atom_equals(m, "CHANGEDSINCE")) {
			if (i + 1 >= list->count || list->list[i + 1].type != IMAP_ARG_ATOM ||
			    !imap_parse_number64(list->list[i + 1].str, &atts->changedsince) ||
			    atts->has_changedsince) {
				*error_r = "Invalid CHANGEDSINCE";
				return -1;
			}
			atts->has_changedsince = true;
			i++;
		} else if (imap_arg_atom_equals(m, "VANISHED")) {
			atts->vanished = true;
		} else {
			*error_r = "Unknown FETCH modifier";
			return -1;
		}
	}
	if (atts->vanished && !atts->has_changedsince) {
		*error_r = "VANISHED needs CHANGEDSINCE";
		return -1;
	}
	if (atts->has_changedsince)
		atts->items |= IMAP_FETCH_MODSEQ;
	return 0;
}

int imap_fetch_parse(struct pool *pool, const struct imap_arg *args, unsigned int count,
		     struct imap_fetch_atts *atts, const char **error_r)
{
	memset(atts, 0, sizeof(*atts));
	unsigned int used = 1;
	if (count < 1) {
		*error_r = "FETCH needs attributes";
		return -1;
	}
	if (args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *l = args[0].list;
		if (args[0].count == 0) {
			*error_r = "Empty FETCH attribute list";
			return -1;
		}
		for (unsigned int i = 0, n; i < args[0].count; i += n)
			if (parse_one_att(pool, l + i, args[0].count - i, false, atts, &n, error_r) < 0)
				return -1;
	} else if (parse_one_att(pool, args, count, true, atts, &used, error_r) < 0) {
		return -1;
	}
	if (count > used + 1) {
		*error_r = "Extra arguments after FETCH attributes";
		return -1;
	}
	if (count == used + 1) {
		if (args[used].type != IMAP_ARG_LIST) {
			*error_r = "FETCH modifiers must be a list";
			return -1;
		}
		return parse_modifiers(&args[used], atts, error_r);
	}
	return 0;
}

bool imap_fetch_sets_seen(const struct imap_fetch_atts *atts)
{
	if (atts->items & (IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_TEXT))
		return true;
	for (unsigned int i = 0; i < atts->body_count; i++)
		if (!atts->bodies[i].peek)
			return true;
	return false;
}
