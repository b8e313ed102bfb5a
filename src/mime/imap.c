/* IMAP ENVELOPE and BODYSTRUCTURE (RFC 3501 7.4.2 and 9). */
#include "mime/imap.h"
#include "mime/address.h"
#include "mime/mime_private.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"

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

/* The unfolded value of a header, NULL when absent. */
static const char *hvalue(struct buf *tmp, const struct mime_headers *h, const char *name)
{
	const struct mime_header_field *f = mime_headers_find(h, name);
	if (f == NULL)
		return NULL;
	buf_reset(tmp);
	mime_header_unfold(tmp, f->value, f->value_len);
	return buf_cstr(tmp);
}

static void envelope_string(struct buf *out, const struct mime_headers *h, const char *name,
			    unsigned int flags)
{
	struct buf tmp = BUF_INIT;
	const char *v = hvalue(&tmp, h, name);
	if (v != NULL)
		mime_imap_quote(out, v, tmp.len, flags);
	else
		buf_append_str(out, "NIL");
	buf_free(&tmp);
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
	nstr(out, a->name, flags);
	buf_append_char(out, ' ');
	nstr(out, a->route, flags);
	buf_append_char(out, ' ');
	/* A NIL host means a group (RFC 3501 7.4.2): fill in like Dovecot. */
	nstr(out, a->local[0] != '\0' ? a->local : "MISSING_MAILBOX", flags);
	buf_append_char(out, ' ');
	nstr(out, a->domain != NULL && a->domain[0] != '\0' ? a->domain : "MISSING_DOMAIN", flags);
	buf_append_char(out, ')');
}

/* Appends the address list; returns 0 when it was NIL (absent/empty). */
static int envelope_addresses(struct buf *out, const struct mime_headers *h, const char *name,
			      unsigned int flags)
{
	const struct mime_header_field *f = mime_headers_find(h, name);
	if (f == NULL)
		return 0;
	struct pool *pool = pool_create(1024);
	struct mime_address *list = mime_address_parse(pool, f->value, f->value_len);
	if (list != NULL) {
		buf_append_char(out, '(');
		for (const struct mime_address *a = list; a != NULL; a = a->next)
			envelope_address(out, a, flags);
		buf_append_char(out, ')');
	}
	pool_destroy(&pool);
	return list != NULL;
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

/* body-fld-param: ("name" "value" ...) or NIL. */
static void body_params(struct buf *out, const struct mime_params *ps, unsigned int flags)
{
	if (ps->count == 0) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_char(out, '(');
	for (unsigned int i = 0; i < ps->count; i++) {
		if (i > 0)
			buf_append_char(out, ' ');
		nstr(out, ps->items[i].imap_name, flags);
		buf_append_char(out, ' ');
		nstr(out, ps->items[i].imap_value, flags);
	}
	buf_append_char(out, ')');
}

static void header_nstring(struct buf *out, const struct mime_part *part, const char *name,
			   unsigned int flags)
{
	envelope_string(out, part->headers, name, flags);
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
	body_params(out, &d.params, flags);
	buf_append_char(out, ')');
}

/* body-fld-lang: one string, a list of strings, or NIL. */
static void body_language(struct buf *out, const struct mime_part *part, unsigned int flags)
{
	struct buf tmp = BUF_INIT, list = BUF_INIT;
	const char *v = hvalue(&tmp, part->headers, "Content-Language");
	unsigned int n = 0;
	while (v != NULL && *v != '\0') {
		while (*v == ',' || mime_is_space((unsigned char)*v))
			v++;
		const char *e = v;
		while (*e != '\0' && *e != ',' && !mime_is_space((unsigned char)*e))
			e++;
		if (e > v) {
			if (n++ > 0)
				buf_append_char(&list, ' ');
			mime_imap_quote(&list, v, (size_t)(e - v), flags);
		}
		v = e;
	}
	if (n == 0)
		buf_append_str(out, "NIL");
	else if (n == 1)
		buf_append(out, list.data, list.len);
	else
		buf_printf(out, "(%s)", buf_cstr(&list));
	buf_free(&tmp);
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

static void body_multipart(struct buf *out, struct pool *pool, const struct mime_message *msg,
			   const struct mime_part *part, int ext, unsigned int flags)
{
	buf_append_char(out, '(');
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		body_structure(out, pool, msg, c, ext, flags);
	/* The grammar needs at least one body (RFC 3501 9, body-type-mpart). */
	if (part->children == NULL)
		buf_printf(out, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0%s)",
			   ext ? " NIL NIL NIL NIL" : "");
	buf_append_char(out, ' ');
	nstr(out, part->ct.subtype, flags);
	if (ext) {
		buf_append_char(out, ' ');
		body_params(out, &part->ct.params, flags);
		body_ext_common(out, pool, part, flags);
	}
	buf_append_char(out, ')');
}

/* body-fields: params id desc encoding octets */
static void body_fields(struct buf *out, const struct mime_part *part, unsigned int flags)
{
	if (mime_headers_find(part->headers, "Content-Type") == NULL && !strcmp(part->ct.type, "text"))
		buf_append_str(out, "(\"charset\" \"us-ascii\")");
	else
		body_params(out, &part->ct.params, flags);
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
