/* Authentication-Results (RFC 8601): the writer and the authserv-id
   reader (see authres.h). */
#include "trust/authres.h"

#include <string.h>
#include <strings.h>

/* RFC 2045 5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or
   tspecials> */
static bool is_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void authres_append_value(struct buf *out, const char *value)
{
	bool token = value[0] != '\0';
	for (const char *p = value; token && *p != '\0'; p++)
		token = is_token_char((unsigned char)*p);
	if (token) {
		buf_append_str(out, value);
		return;
	}
	buf_append_char(out, '"');
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		if (*p < 0x20 || *p >= 0x7f)
			continue;
		if (*p == '"' || *p == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, (char)*p);
	}
	buf_append_char(out, '"');
}

/* RFC 8601 2.2: pvalue = [CFWS] ( value / [ [ local-part ] "@" ]
   domain-name ) [CFWS]: "@example.com" and "user@example.com" (a dot-atom
   local part, RFC 5322 3.2.3) go unquoted, as the RFC's examples show. */
static bool is_pvalue_address(const char *value)
{
	const char *at = strrchr(value, '@');
	if (at == NULL || at[1] == '\0')
		return false;
	for (const char *p = value; p < at; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("!#$%&'*+-/=?^_`{|}~.", *p) != NULL))
			return false;
	for (const char *p = at + 1; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '.'))
			return false;
	return true;
}

/* Appends one item (text, len bytes, starting with its separating space
   or not), folding before it when the line would grow too long. */
static void put_item(struct authres_writer *w, const char *text, size_t len)
{
	if (w->col + len > AUTHRES_FOLD_WIDTH && w->col > 1 && text[0] == ' ') {
		buf_append(w->out, "\r\n\t", 3);
		w->col = 1;
		text++; /* the tab replaces the space */
		len--;
	}
	buf_append(w->out, text, len);
	w->col += len;
}

void authres_begin(struct authres_writer *w, struct buf *out, const char *authserv_id)
{
	w->out = out;
	w->results = 0;
	size_t start = out->len;
	buf_append_str(out, "Authentication-Results: ");
	authres_append_value(out, authserv_id);
	w->col = out->len - start;
}

void authres_result(struct authres_writer *w, const char *method, const char *result, const char *reason)
{
	struct buf item = BUF_INIT;
	buf_printf(&item, " %s=%s", method, result);
	buf_append(w->out, ";\r\n\t", 4);
	w->col = 1;
	put_item(w, item.data + 1, item.len - 1);
	if (reason != NULL) {
		buf_reset(&item);
		buf_append_str(&item, " reason=");
		authres_append_value(&item, reason);
		put_item(w, item.data, item.len);
	}
	buf_free(&item);
	w->results++;
}

void authres_property(struct authres_writer *w, const char *ptype, const char *property, const char *value)
{
	struct buf item = BUF_INIT;
	buf_printf(&item, " %s.%s=", ptype, property);
	if (is_pvalue_address(value))
		buf_append_str(&item, value);
	else
		authres_append_value(&item, value);
	put_item(w, item.data, item.len);
	buf_free(&item);
}

void authres_end(struct authres_writer *w)
{
	if (w->results == 0)
		buf_append_str(w->out, "; none");
	buf_append(w->out, "\r\n", 2);
}

/* Skips folding whitespace and comments (RFC 5322 3.2.2 CFWS; comments
   nest and may hold quoted-pairs).  Returns the position after them, or
   end inside an unclosed comment. */
static const char *skip_cfws(const char *p, const char *end)
{
	unsigned int depth = 0;
	for (; p < end; p++) {
		if (depth > 0 && *p == '\\') {
			if (++p == end)
				return end;
		} else if (*p == '(') {
			depth++;
		} else if (depth > 0 && *p == ')') {
			depth--;
		} else if (depth == 0 && !is_fws(*p)) {
			return p;
		}
	}
	return end;
}

int authres_parse_id(const char *value, size_t len, struct buf *id_r)
{
	const char *end = value + len, *p = skip_cfws(value, end);
	if (p == end)
		return -1;
	if (*p != '"') {
		const char *start = p;
		while (p < end && is_token_char((unsigned char)*p))
			p++;
		if (p == start)
			return -1;
		buf_append(id_r, start, (size_t)(p - start));
		return 0;
	}
	size_t start_len = id_r->len;
	for (p++; p < end; p++) {
		if (*p == '"')
			return 0;
		if (*p == '\\' && ++p == end)
			break;
		if (*p != '\r' && *p != '\n') /* folding inside the quotes */
			buf_append_char(id_r, *p);
	}
	buf_truncate(id_r, start_len); /* unclosed */
	return -1;
}

bool authres_field_is_ours(const char *name, size_t name_len, const char *value, size_t value_len,
			   const char *authserv_id)
{
	static const char field[] = "Authentication-Results";
	if (name_len != sizeof(field) - 1 || strncasecmp(name, field, name_len) != 0)
		return false;
	struct buf id = BUF_INIT;
	bool ours = authres_parse_id(value, value_len, &id) == 0 && id.len == strlen(authserv_id) &&
		    strncasecmp(id.data, authserv_id, id.len) == 0;
	buf_free(&id);
	return ours;
}
