/* MIME header parameters: RFC 2045 section 5.1 syntax, RFC 2231
   continuations, charsets and languages, with the leniency real mail
   needs (unquoted values with spaces, RFC 2047 words inside quotes,
   unterminated quotes and comments). */
#include "mime/param.h"
#include "mime/charset.h"
#include "mime/mime_private.h"
#include "mime/rfc2047.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

/* One "name*N*=value" as written. */
struct raw_param {
	char *name;       /* lowercase base name */
	int section;      /* -1 without "*N" */
	int extended;     /* trailing '*': value is charset'lang'%XX */
	struct buf value; /* unquoted */
};

struct cursor {
	const char *s, *end;
};

void mime_skip_cfws(const char **sp, const char *end)
{
	const char *s = *sp;
	for (;;) {
		while (s < end && mime_is_space((unsigned char)*s))
			s++;
		if (s >= end || *s != '(')
			break;
		int depth = 0;
		while (s < end) {
			char ch = *s++;
			if (ch == '\\' && s < end)
				s++;
			else if (ch == '(')
				depth++;
			else if (ch == ')' && --depth == 0)
				break;
		}
	}
	*sp = s;
}

static void skip_cfws(struct cursor *c)
{
	mime_skip_cfws(&c->s, c->end);
}

static size_t token_len(const struct cursor *c)
{
	const char *p = c->s;
	while (p < c->end && mime_is_token_char((unsigned char)*p))
		p++;
	return (size_t)(p - c->s);
}

static char *lower_dup(struct pool *pool, const char *s, size_t n)
{
	char *d = pool_strndup(pool, s, n);
	for (size_t i = 0; i < n; i++)
		d[i] = (char)mime_lower((unsigned char)d[i]);
	return d;
}

/* Reads a quoted string (c->s at the quote) into out, dropping line ends
   (unfolding) and backslashes. */
static void read_quoted(struct cursor *c, struct buf *out)
{
	c->s++;
	while (c->s < c->end) {
		char ch = *c->s++;
		if (ch == '"')
			return;
		if (ch == '\\' && c->s < c->end)
			ch = *c->s++;
		else if (ch == '\r' || ch == '\n')
			continue;
		buf_append_char(out, ch);
	}
}

/* Reads an unquoted value: a token, or leniently everything up to the next
   ';' when the token is followed by more text (name=my file.pdf). */
static void read_unquoted(struct cursor *c, struct buf *out)
{
	const char *start = c->s;
	const char *p = c->s + token_len(c);
	const char *q = p;
	while (q < c->end && mime_is_space((unsigned char)*q))
		q++;
	if (q < c->end && *q != ';' && *q != '(') {
		p = memchr(q, ';', (size_t)(c->end - q));
		if (p == NULL)
			p = c->end;
		while (p > start && mime_is_space((unsigned char)p[-1]))
			p--;
	}
	for (const char *r = start; r < p; r++)
		if (*r != '\r' && *r != '\n')
			buf_append_char(out, *r);
	c->s = p;
}

/* Splits "name*N*" into the raw parameter fields. */
static void raw_name_split(struct pool *pool, const char *s, size_t n, struct raw_param *rp)
{
	rp->section = -1;
	rp->extended = 0;
	if (n > 0 && s[n - 1] == '*') {
		rp->extended = 1;
		n--;
	}
	const char *star = memchr(s, '*', n);
	if (star != NULL && star + 1 < s + n) {
		const char *d = star + 1;
		int sec = 0, ok = 1;
		for (; d < s + n; d++) {
			if (*d < '0' || *d > '9' || sec > 9999) {
				ok = 0;
				break;
			}
			sec = sec * 10 + (*d - '0');
		}
		if (ok) {
			rp->section = sec;
			n = (size_t)(star - s);
		}
	}
	rp->name = lower_dup(pool, s, n);
}

static int raw_params_read(struct pool *pool, struct cursor *c, struct raw_param **rps_r)
{
	int count = 0, cap = 0;
	struct raw_param *rps = NULL;
	for (;;) {
		/* Find the next ';' (junk before it is skipped). */
		while (c->s < c->end && *c->s != ';') {
			if (*c->s == '"') {
				struct buf junk = BUF_INIT;
				read_quoted(c, &junk);
				buf_free(&junk);
			} else if (*c->s == '(') {
				skip_cfws(c);
			} else {
				c->s++;
			}
		}
		if (c->s >= c->end)
			break;
		c->s++;
		skip_cfws(c);
		size_t n = token_len(c);
		if (n == 0)
			continue;
		const char *name = c->s;
		c->s += n;
		skip_cfws(c);
		if (c->s >= c->end || *c->s != '=')
			continue;
		c->s++;
		skip_cfws(c);
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			rps = xreallocarray(rps, (size_t)cap, sizeof(*rps));
		}
		struct raw_param *rp = &rps[count++];
		memset(rp, 0, sizeof(*rp));
		raw_name_split(pool, name, n, rp);
		if (c->s < c->end && *c->s == '"')
			read_quoted(c, &rp->value);
		else
			read_unquoted(c, &rp->value);
		if (count >= 1000)
			break; /* hard limit on parameters */
	}
	*rps_r = rps;
	return count;
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = mime_lower(ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static void percent_decode(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int h1, h2;
		if (s[i] == '%' && i + 2 < n && (h1 = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (h2 = hexval((unsigned char)s[i + 2])) >= 0) {
			buf_append_char(out, (char)(h1 << 4 | h2));
			i += 2;
		} else {
			buf_append_char(out, s[i]);
		}
	}
}

/* Splits an RFC 2231 initial value "charset'language'text": returns the
   offset of the text and copies the charset (NUL-terminated). */
static size_t ext_split(const struct buf *v, char *charset, size_t cs_size)
{
	charset[0] = '\0';
	if (v->len == 0)
		return 0;
	const char *q1 = memchr(v->data, '\'', v->len);
	const char *q2 = q1 ? memchr(q1 + 1, '\'', v->len - (size_t)(q1 + 1 - v->data)) : NULL;
	charset[0] = '\0';
	if (q2 == NULL)
		return 0;
	size_t n = (size_t)(q1 - v->data);
	if (n < cs_size) {
		memcpy(charset, v->data, n);
		charset[n] = '\0';
	}
	return (size_t)(q2 + 1 - v->data);
}

static const char *to_utf8(struct pool *pool, const char *charset, const struct buf *bytes)
{
	struct buf u = BUF_INIT;
	if (mime_charset_to_utf8(&u, charset, buf_cstr(bytes), bytes->len) < 0)
		mime_utf8_sanitize(&u, buf_cstr(bytes), bytes->len);
	const char *r = pool_strndup(pool, buf_cstr(&u), u.len);
	buf_free(&u);
	return r;
}

static void param_plain(struct pool *pool, struct mime_param *p, const char *name, const struct buf *v)
{
	struct buf u = BUF_INIT;
	mime_2047_decode(&u, buf_cstr(v), v->len);
	p->name = name;
	p->value = pool_strndup(pool, buf_cstr(&u), u.len);
	p->imap_name = name;
	p->imap_value = pool_strndup(pool, buf_cstr(v), v->len);
	buf_free(&u);
}

/* Joins RFC 2231 sections (sorted, starting at 0) into one parameter.
   The decoded value percent-decodes the extended sections and converts
   from the initial section's charset.  The IMAP view passes the sections
   through as written, joined (like Dovecot; not re-encoded): the name gets
   its '*' when any section is extended, and a value whose initial section
   is not extended gets an empty charset'language' prefix ("''"). */
static void param_sections(struct pool *pool, struct mime_param *p, struct raw_param **secs, int n)
{
	char charset[64] = "";
	struct buf bytes = BUF_INIT, imap = BUF_INIT;
	int any_extended = 0;
	for (int i = 0; i < n; i++)
		any_extended |= secs[i]->extended;
	if (any_extended && !secs[0]->extended)
		buf_append_str(&imap, "''");
	for (int i = 0; i < n; i++) {
		const struct buf *v = &secs[i]->value;
		const char *vd = buf_cstr(v);
		buf_append(&imap, vd, v->len);
		size_t off = i == 0 && secs[0]->extended ? ext_split(v, charset, sizeof(charset)) : 0;
		if (secs[i]->extended)
			percent_decode(&bytes, vd + off, v->len - off);
		else
			buf_append(&bytes, vd, v->len);
	}
	p->name = secs[0]->name;
	if (any_extended) {
		p->value = to_utf8(pool, charset, &bytes);
		p->imap_name = pool_printf(pool, "%s*", p->name);
		p->imap_value = pool_strndup(pool, buf_cstr(&imap), imap.len);
	} else {
		param_plain(pool, p, secs[0]->name, &bytes);
	}
	p->rfc2231 = 1;
	buf_free(&bytes);
	buf_free(&imap);
}

static int section_cmp(const void *a, const void *b)
{
	const struct raw_param *x = *(struct raw_param *const *)a, *y = *(struct raw_param *const *)b;
	return (x->section > y->section) - (x->section < y->section);
}

/* Merges the sections of rps[first]'s name into p; marks them used. */
static void param_merge(struct pool *pool, struct mime_param *p, struct raw_param *rps, int count, int first,
			char *used)
{
	struct raw_param *rp = &rps[first];
	used[first] = 1;
	if (rp->section < 0 && !rp->extended) {
		param_plain(pool, p, rp->name, &rp->value);
		return;
	}
	struct raw_param **secs = xcalloc((size_t)count, sizeof(*secs));
	int n = 0;
	secs[n++] = rp;
	if (rp->section < 0) {
		rp->section = 0; /* "name*=" alone is section 0 */
	} else {
		for (int j = first + 1; j < count; j++) {
			if (!used[j] && rps[j].section >= 0 && !strcmp(rps[j].name, rp->name)) {
				used[j] = 1;
				secs[n++] = &rps[j];
			}
		}
	}
	qsort(secs, (size_t)n, sizeof(*secs), section_cmp);
	/* Keep the run 0, 1, 2, ... up to the first gap or duplicate. */
	int keep = 0;
	while (keep < n && secs[keep]->section == keep)
		keep++;
	if (keep == 0)
		keep = 1;
	param_sections(pool, p, secs, keep);
	free(secs);
}

static void params_build(struct pool *pool, struct raw_param *rps, int count, struct mime_params *params_r)
{
	char *used = xcalloc((size_t)count + 1, 1);
	params_r->items = pool_alloc(pool, ((size_t)count + 1) * sizeof(struct mime_param));
	params_r->count = 0;
	for (int i = 0; i < count; i++)
		if (!used[i])
			param_merge(pool, &params_r->items[params_r->count++], rps, count, i, used);
	free(used);
}

static void params_parse_cursor(struct pool *pool, struct cursor *c, struct mime_params *params_r)
{
	struct raw_param *rps = NULL;
	int count = raw_params_read(pool, c, &rps);
	params_build(pool, rps, count, params_r);
	for (int i = 0; i < count; i++)
		buf_free(&rps[i].value);
	free(rps);
}

void mime_params_parse(struct pool *pool, const char *value, size_t len, struct mime_params *params_r)
{
	struct cursor c = {value, value + len};
	params_parse_cursor(pool, &c, params_r);
}

int mime_content_type_parse(struct pool *pool, const char *value, size_t len, struct mime_content_type *ct_r)
{
	struct cursor c = {value, value + len};
	int ret = -1;
	skip_cfws(&c);
	size_t n = token_len(&c);
	const char *type = c.s;
	c.s += n;
	skip_cfws(&c);
	if (n > 0 && c.s < c.end && *c.s == '/') {
		c.s++;
		skip_cfws(&c);
		size_t m = token_len(&c);
		if (m > 0) {
			ct_r->type = lower_dup(pool, type, n);
			ct_r->subtype = lower_dup(pool, c.s, m);
			c.s += m;
			ret = 0;
		}
	}
	if (ret < 0) {
		ct_r->type = "text";
		ct_r->subtype = "plain";
	}
	params_parse_cursor(pool, &c, &ct_r->params);
	return ret;
}

int mime_disposition_parse(struct pool *pool, const char *value, size_t len, struct mime_disposition *d_r)
{
	struct cursor c = {value, value + len};
	skip_cfws(&c);
	size_t n = token_len(&c);
	d_r->type = n > 0 ? lower_dup(pool, c.s, n) : NULL;
	c.s += n;
	params_parse_cursor(pool, &c, &d_r->params);
	return n > 0 ? 0 : -1;
}

const char *mime_param_get(const struct mime_params *params, const char *name)
{
	const char *plain = NULL;
	for (unsigned int i = 0; i < params->count; i++) {
		if (strcmp(params->items[i].name, name) != 0)
			continue;
		if (params->items[i].rfc2231)
			return params->items[i].value;
		if (plain == NULL)
			plain = params->items[i].value;
	}
	return plain;
}
