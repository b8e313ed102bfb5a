/* IMAP ENVELOPE and BODYSTRUCTURE (RFC 3501 7.4.2 and 9). */
#include "mime/imap.h"
#include "mime/address.h"
#include "mime/mime_private.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Longest string sent quoted; longer ones go as literals. */
#define QUOTED_MAX 4096

void mime_imap_quote(struct buf *out, const char *s, size_t len, unsigned int flags)
{
	int quoted = len <= QUOTED_MAX;
	int has_8bit = 0;
	for (size_t i = 0; i < len && quoted; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			quoted = 0;
		has_8bit |= c >= 0x80;
	}
	if (quoted && has_8bit && !((flags & MIME_IMAP_UTF8) && utf8_valid(s, len)))
		quoted = 0;
	if (quoted) {
		buf_reserve(out, len + 2);
		buf_append_char(out, '"');
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '"' || s[i] == '\\')
				buf_append_char(out, '\\');
			if (s[i] != '\0')
				buf_append_char(out, s[i]);
		}
		buf_append_char(out, '"');
		return;
	}
	size_t n = len;
	for (size_t i = 0; i < len; i++)
		n -= s[i] == '\0';
	buf_printf(out, "{%zu}\r\n", n);
	if (n == len) {
		buf_append(out, s, len);
		return;
	}
	for (size_t i = 0; i < len; i++)
		if (s[i] != '\0')
			buf_append_char(out, s[i]);
}

void mime_imap_nstring(struct buf *out, const char *s, size_t len, unsigned int flags)
{
	if (s == NULL)
		buf_append_str(out, "NIL");
	else
		mime_imap_quote(out, s, len, flags);
}

static void nstr(struct buf *out, const char *s, unsigned int flags)
{
	mime_imap_nstring(out, s, s ? strlen(s) : 0, flags);
}

/* Appends the unfolded value of the field (RFC 5322 2.2.3, surrounding
   whitespace trimmed) as a string, NIL for NULL. */
static void field_nstring(struct buf *out, const struct mime_header_field *f, unsigned int flags)
{
	if (f == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	struct buf tmp = BUF_INIT;
	mime_header_unfold(&tmp, f->value, f->value_len);
	mime_imap_quote(out, buf_cstr(&tmp), tmp.len, flags);
	buf_free(&tmp);
}

/* Date, Subject, In-Reply-To, Message-ID: RFC 5322 3.6 allows one of
   each; of several, the last counts, as in Dovecot and Cyrus. */
static void envelope_string(struct buf *out, const struct mime_headers *h, const char *name,
			    unsigned int flags)
{
	field_nstring(out, mime_headers_find_last(h, name), flags);
}

static void envelope_address(struct buf *out, const struct mime_address *a, unsigned int flags)
{
	buf_append_char(out, '(');
	if (a->flags & MIME_ADDR_GROUP_END) {
		buf_append_str(out, "NIL NIL NIL NIL)");
		return;
	}
	if (a->flags & MIME_ADDR_GROUP_START) {
		buf_append_str(out, "NIL NIL ");
		nstr(out, a->name != NULL ? a->name : "", flags);
		buf_append_str(out, " NIL)");
		return;
	}
	/* An empty display name ("" <a@b>) is none. */
	nstr(out, a->name != NULL && a->name[0] != '\0' ? a->name : NULL, flags);
	buf_append_char(out, ' ');
	nstr(out, a->route, flags);
	buf_append_char(out, ' ');
	/* A NIL host means a group (RFC 3501 7.4.2): fill in like Dovecot. */
	nstr(out, a->local[0] != '\0' ? a->local : "MISSING_MAILBOX", flags);
	buf_append_char(out, ' ');
	nstr(out, a->domain != NULL && a->domain[0] != '\0' ? a->domain : "MISSING_DOMAIN", flags);
	buf_append_char(out, ')');
}

/* Appends the addresses of every field named name as one list: repeated
   fields (two To: lines) are merged, as Dovecot does.  Returns 0, having
   appended nothing, when there is none (NIL: absent or empty). */
static int envelope_addresses(struct buf *out, const struct mime_headers *h, const char *name,
			      unsigned int flags)
{
	size_t start = out->len;
	struct pool *pool = NULL;
	for (unsigned int i = 0; i < h->count; i++) {
		const struct mime_header_field *f = &h->fields[i];
		if (!mime_name_eq(f->name, f->name_len, name))
			continue;
		if (pool == NULL)
			pool = pool_create(1024);
		for (const struct mime_address *a = mime_address_parse(pool, f->value, f->value_len);
		     a != NULL; a = a->next) {
			if (out->len == start)
				buf_append_char(out, '(');
			envelope_address(out, a, flags);
		}
	}
	pool_destroy(&pool);
	if (out->len == start)
		return 0;
	buf_append_char(out, ')');
	return 1;
}

void mime_imap_envelope(struct buf *out, const struct mime_headers *h, unsigned int flags)
{
	buf_append_char(out, '(');
	envelope_string(out, h, "Date", flags);
	buf_append_char(out, ' ');
	envelope_string(out, h, "Subject", flags);
	buf_append_char(out, ' ');
	size_t from_start = out->len;
	if (!envelope_addresses(out, h, "From", flags))
		buf_append_str(out, "NIL");
	char *from = xstrndup(out->data + from_start, out->len - from_start);
	/* Sender and Reply-To default to From (RFC 3501 7.4.2). */
	static const char *const defaulted[] = {"Sender", "Reply-To"};
	for (size_t i = 0; i < N_ELEMENTS(defaulted); i++) {
		buf_append_char(out, ' ');
		if (!envelope_addresses(out, h, defaulted[i], flags))
			buf_append_str(out, from);
	}
	free(from);
	static const char *const lists[] = {"To", "Cc", "Bcc"};
	for (size_t i = 0; i < N_ELEMENTS(lists); i++) {
		buf_append_char(out, ' ');
		if (!envelope_addresses(out, h, lists[i], flags))
			buf_append_str(out, "NIL");
	}
	buf_append_char(out, ' ');
	envelope_string(out, h, "In-Reply-To", flags);
	buf_append_char(out, ' ');
	envelope_string(out, h, "Message-ID", flags);
	buf_append_char(out, ')');
}

/* body-fld-param: ("name" "value" ...) or NIL; RFC 2231 parameters as
   written (param.h, imap_name).  With default_charset, ("charset"
   "us-ascii") follows them. */
static void body_params(struct buf *out, const struct mime_params *ps, bool default_charset,
			unsigned int flags)
{
	unsigned int n = ps != NULL ? ps->count : 0;
	if (n == 0 && !default_charset) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_char(out, '(');
	for (unsigned int i = 0; i < n; i++) {
		if (i > 0)
			buf_append_char(out, ' ');
		nstr(out, ps->items[i].imap_name, flags);
		buf_append_char(out, ' ');
		nstr(out, ps->items[i].imap_value, flags);
	}
	if (default_charset)
		buf_append_str(out, n > 0 ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
	buf_append_char(out, ')');
}

/* Content-ID, -Description, -MD5, -Location: the first field counts, as
   in Dovecot (RFC 2045 allows one). */
static void header_nstring(struct buf *out, const struct mime_part *part, const char *name,
			   unsigned int flags)
{
	field_nstring(out, mime_headers_find(part->headers, name), flags);
}

/* body-fld-dsp: ("type" params) or NIL. */
static void body_disposition(struct buf *out, struct pool *pool, const struct mime_part *part,
			     unsigned int flags)
{
	struct mime_disposition d;
	if (mime_part_disposition(pool, part, &d) < 0) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_char(out, '(');
	nstr(out, d.type, flags);
	buf_append_char(out, ' ');
	body_params(out, &d.params, false, flags);
	buf_append_char(out, ')');
}

static bool is_language_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Appends the tags of one Content-Language value (RFC 3282: letters,
   digits and '-', separated by commas, with comments and whitespace
   around) as space-separated strings, up to the first thing that is no
   tag, as Dovecot and Cyrus read it.  Returns their number. */
static unsigned int language_tags(struct buf *list, const char *v, size_t len, unsigned int flags)
{
	const char *s = v, *end = v + len;
	unsigned int n = 0;
	for (;;) {
		mime_skip_cfws(&s, end);
		const char *tag = s;
		while (s < end && is_language_char((unsigned char)*s))
			s++;
		if (s == tag)
			break;
		if (n++ > 0)
			buf_append_char(list, ' ');
		mime_imap_quote(list, tag, (size_t)(s - tag), flags);
		mime_skip_cfws(&s, end);
		if (s >= end || *s != ',')
			break;
		s++;
	}
	return n;
}

/* body-fld-lang: a list of strings (always a list, as Dovecot sends it),
   or NIL; from the first Content-Language field that holds a tag. */
static void body_language(struct buf *out, const struct mime_part *part, unsigned int flags)
{
	struct buf list = BUF_INIT;
	const struct mime_headers *h = part->headers;
	unsigned int n = 0;
	for (unsigned int i = 0; i < h->count && n == 0; i++)
		if (mime_name_eq(h->fields[i].name, h->fields[i].name_len, "Content-Language"))
			n = language_tags(&list, h->fields[i].value, h->fields[i].value_len, flags);
	if (n == 0)
		buf_append_str(out, "NIL");
	else
		buf_printf(out, "(%s)", buf_cstr(&list));
	buf_free(&list);
}

/* [SP dsp SP lang SP loc] after the type-specific extension. */
static void body_ext_common(struct buf *out, struct pool *pool, const struct mime_part *part,
			    unsigned int flags)
{
	buf_append_char(out, ' ');
	body_disposition(out, pool, part, flags);
	buf_append_char(out, ' ');
	body_language(out, part, flags);
	buf_append_char(out, ' ');
	header_nstring(out, part, "Content-Location", flags);
}

static void body_structure(struct buf *out, struct pool *pool, const struct mime_message *msg,
			   const struct mime_part *part, int ext, unsigned int flags);

/* An empty text/plain body, where the grammar wants a body that the
   message lacks. */
static void empty_text_body(struct buf *out, int ext)
{
	buf_printf(out, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0%s)",
		   ext ? " NIL NIL NIL NIL" : "");
}

static void body_multipart(struct buf *out, struct pool *pool, const struct mime_message *msg,
			   const struct mime_part *part, int ext, unsigned int flags)
{
	buf_append_char(out, '(');
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		body_structure(out, pool, msg, c, ext, flags);
	/* The grammar needs at least one body (RFC 3501 9, body-type-mpart). */
	if (part->children == NULL)
		empty_text_body(out, ext);
	buf_append_char(out, ' ');
	nstr(out, part->ct.subtype, flags);
	if (ext) {
		buf_append_char(out, ' ');
		body_params(out, &part->ct.params, false, flags);
		body_ext_common(out, pool, part, flags);
	}
	buf_append_char(out, ')');
}

/* body-fields: params id desc encoding octets.  A text part without a
   charset parameter gets RFC 2045 5.2's default, us-ascii, after its own
   parameters (as Dovecot and Cyrus send it); a multipart read as
   text/plain (no boundary, limits) has only that, the multipart's
   parameters being no text/plain ones. */
static void body_fields(struct buf *out, const struct mime_part *part, unsigned int flags)
{
	bool text = !strcmp(part->ct.type, "text");
	bool demoted = text && (part->flags & (MIME_PART_NO_BOUNDARY | MIME_PART_LIMIT));
	bool default_charset = text && (demoted || mime_part_charset(part) == NULL);
	body_params(out, demoted ? NULL : &part->ct.params, default_charset, flags);
	buf_append_char(out, ' ');
	header_nstring(out, part, "Content-ID", flags);
	buf_append_char(out, ' ');
	header_nstring(out, part, "Content-Description", flags);
	buf_append_char(out, ' ');
	const char *enc =
	    part->encoding_name != NULL && part->encoding_name[0] != '\0' ? part->encoding_name : "7bit";
	nstr(out, enc, flags);
	buf_printf(out, " %zu", part->body.vsize);
}

static void body_single(struct buf *out, struct pool *pool, const struct mime_message *msg,
			const struct mime_part *part, int ext, unsigned int flags)
{
	buf_append_char(out, '(');
	nstr(out, part->ct.type, flags);
	buf_append_char(out, ' ');
	nstr(out, part->ct.subtype, flags);
	buf_append_char(out, ' ');
	body_fields(out, part, flags);
	if (part->flags & MIME_PART_MESSAGE) {
		const struct mime_part *m = part->children;
		buf_append_char(out, ' ');
		mime_imap_envelope(out, m->headers, flags);
		buf_append_char(out, ' ');
		body_structure(out, pool, msg, m, ext, flags);
		buf_printf(out, " %zu", part->body.lines);
	} else if (!strcmp(part->ct.type, "message") && !strcmp(part->ct.subtype, "rfc822")) {
		/* Not parsed (encoded, which RFC 2046 5.2.1 forbids, or past
		   the depth limit), but the grammar wants an envelope and a
		   body (RFC 3501 9, body-type-msg): empty ones, which is what
		   Dovecot's parse of such a body mostly gives. */
		buf_append_str(out, " (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ");
		empty_text_body(out, ext);
		buf_printf(out, " %zu", part->body.lines);
	} else if (!strcmp(part->ct.type, "text")) {
		buf_printf(out, " %zu", part->body.lines);
	}
	if (ext) {
		buf_append_char(out, ' ');
		header_nstring(out, part, "Content-MD5", flags);
		body_ext_common(out, pool, part, flags);
	}
	buf_append_char(out, ')');
}

static void body_structure(struct buf *out, struct pool *pool, const struct mime_message *msg,
			   const struct mime_part *part, int ext, unsigned int flags)
{
	if (part->flags & MIME_PART_MULTIPART)
		body_multipart(out, pool, msg, part, ext, flags);
	else
		body_single(out, pool, msg, part, ext, flags);
}

void mime_imap_bodystructure(struct buf *out, const struct mime_message *msg, const struct mime_part *part,
			     int extended, unsigned int flags)
{
	struct pool *pool = pool_create(4096);
	body_structure(out, pool, msg, part != NULL ? part : msg->root, extended, flags);
	pool_destroy(&pool);
}
