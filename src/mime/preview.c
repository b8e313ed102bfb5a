/* Preview text (RFC 8970): part selection, decoding of a bounded prefix,
   an HTML-to-text pass and whitespace folding into a character budget. */
#include "mime/preview.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/charset.h"

#include <string.h>
#include <strings.h>

/* ---- the output: folded whitespace, no controls, a character budget ---- */

struct sink {
	struct buf *out;
	size_t chars, max;
	bool space; /* whitespace seen since the last character */
};

static bool sink_full(const struct sink *k)
{
	return k->chars >= k->max;
}

/* One character (a valid UTF-8 sequence of n bytes). */
static void sink_char(struct sink *k, const char *c, size_t n)
{
	unsigned char b0 = (unsigned char)c[0], b1 = n > 1 ? (unsigned char)c[1] : 0;
	/* whitespace: ASCII, NEL, NBSP, the line and paragraph separators */
	if ((n == 1 && (b0 == ' ' || (b0 >= '\t' && b0 <= '\r'))) ||
	    (n == 2 && b0 == 0xc2 && (b1 == 0x85 || b1 == 0xa0)) ||
	    (n == 3 && b0 == 0xe2 && b1 == 0x80 && ((unsigned char)c[2] & 0xfe) == 0xa8)) {
		k->space = true;
		return;
	}
	/* other controls (RFC 8970 3: no CTL), and the byte order mark */
	if ((n == 1 && (b0 < 0x20 || b0 == 0x7f)) || (n == 2 && b0 == 0xc2 && b1 < 0xa0) ||
	    (n == 3 && b0 == 0xef && b1 == 0xbb && (unsigned char)c[2] == 0xbf))
		return;
	if (sink_full(k))
		return;
	if (k->space && k->chars > 0) {
		/* no space at the end: it needs a character after it */
		if (k->chars + 2 > k->max) {
			k->chars = k->max;
			return;
		}
		buf_append_char(k->out, ' ');
		k->chars++;
	}
	k->space = false;
	buf_append(k->out, c, n);
	k->chars++;
}

/* Feeds UTF-8 text character by character; invalid bytes are dropped. */
static void sink_text(struct sink *k, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && !sink_full(k)) {
		size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (n == 0) {
			i++;
			continue;
		}
		sink_char(k, s + i, n);
		i += n;
	}
}

static void sink_codepoint(struct sink *k, unsigned long cp)
{
	char u[4];
	size_t n;
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	sink_char(k, u, n);
}

/* ---- HTML to text ---- */

/* A character reference at s ("&...;"): its length, 0 when it is none
   (the "&" is then text). */
static size_t html_entity(struct sink *k, const char *s, size_t len)
{
	static const struct {
		const char *name;
		unsigned long cp;
	} named[] = {{"amp", '&'},      {"lt", '<'},        {"gt", '>'},       {"quot", '"'},
		     {"apos", '\''},    {"nbsp", 0xa0},     {"shy", 0xad},     {"copy", 0xa9},
		     {"reg", 0xae},     {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
		     {"rsquo", 0x2019}, {"lsquo", 0x2018},  {"rdquo", 0x201d}, {"ldquo", 0x201c},
		     {"euro", 0x20ac},  {"zwnj", 0x200c}};
	const char *semi = memchr(s, ';', len < 12 ? len : 12);
	if (semi == NULL || semi == s + 1)
		return 0;
	const char *name = s + 1;
	size_t nlen = (size_t)(semi - name);
	unsigned long cp = 0;
	if (name[0] == '#') {
		bool hex = nlen > 1 && (name[1] == 'x' || name[1] == 'X');
		size_t i = hex ? 2 : 1;
		if (i == nlen)
			return 0;
		for (; i < nlen; i++) {
			char c = name[i];
			int d = c >= '0' && c <= '9'          ? c - '0'
				: hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
				: hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
							      : -1;
			if (d < 0)
				return 0;
			cp = cp * (hex ? 16 : 10) + (unsigned long)d;
		}
	} else {
		size_t i = 0;
		while (i < N_ELEMENTS(named) &&
		       (strlen(named[i].name) != nlen || strncmp(named[i].name, name, nlen)))
			i++;
		if (i == N_ELEMENTS(named))
			return 0;
		cp = named[i].cp;
	}
	if (cp != 0xad && cp != 0x200c) /* soft hyphen, zero-width non-joiner */
		sink_codepoint(k, cp);
	return (size_t)(semi - s) + 1;
}

/* The end of the tag at s ("<..."): after its ">" (quoted attribute values
   may hold one), or len. */
static size_t tag_end(const char *s, size_t len)
{
	char quote = 0;
	for (size_t i = 1; i < len; i++) {
		if (quote != 0) {
			if (s[i] == quote)
				quote = 0;
		} else if (s[i] == '"' || s[i] == '\'') {
			quote = s[i];
		} else if (s[i] == '>') {
			return i + 1;
		}
	}
	return len;
}

static bool name_is(const char *name, size_t n, const char *const *names)
{
	for (; *names != NULL; names++)
		if (strlen(*names) == n && strncasecmp(*names, name, n) == 0)
			return true;
	return false;
}

/* Where the element that starts a hidden block ends: after "</name ...>",
   or len. */
static size_t skip_element(const char *s, size_t len, const char *name, size_t nlen)
{
	for (size_t i = 0; i + 2 + nlen <= len; i++) {
		if (s[i] != '<' || s[i + 1] != '/' || strncasecmp(s + i + 2, name, nlen) != 0)
			continue;
		char after = i + 2 + nlen < len ? s[i + 2 + nlen] : '>';
		if (after == '>' || after == ' ' || after == '\t' || after == '\r' || after == '\n')
			return i + tag_end(s + i, len - i);
	}
	return len;
}

/* A markup construct at s ("<"): its length, 0 when the "<" is text. */
static size_t html_markup(struct sink *k, const char *s, size_t len)
{
	static const char *const hidden[] = {"head", "script", "style", "title", "template", NULL};
	static const char *const blocks[] = {"br", "p",  "div",   "li",         "tr",  "td", "th",
					     "h1", "h2", "h3",    "h4",         "h5",  "h6", "hr",
					     "ul", "ol", "table", "blockquote", "pre", NULL};
	if (len >= 4 && memcmp(s, "<!--", 4) == 0) {
		const char *end = memmem(s + 4, len - 4, "-->", 3);
		return end != NULL ? (size_t)(end - s) + 3 : len;
	}
	size_t i = 1;
	bool closing = i < len && s[i] == '/';
	if (closing)
		i++;
	size_t name = i;
	while (i < len &&
	       ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
		i++;
	if (i == name && !(i < len && s[i] == '!') && !(i < len && s[i] == '?'))
		return 0;
	size_t end = tag_end(s, len);
	if (!closing && name_is(s + name, i - name, hidden))
		return end + skip_element(s + end, len - end, s + name, i - name);
	if (name_is(s + name, i - name, blocks))
		k->space = true;
	return end;
}

static void html_text(struct sink *k, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && !sink_full(k)) {
		size_t n = 0;
		if (s[i] == '<')
			n = html_markup(k, s + i, len - i);
		else if (s[i] == '&')
			n = html_entity(k, s + i, len - i);
		if (n > 0) {
			i += n;
			continue;
		}
		n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (n > 0)
			sink_char(k, s + i, n);
		i += n > 0 ? n : 1;
	}
}

void mime_preview_text(struct buf *out, const char *text, size_t len, bool html, size_t max_chars)
{
	struct sink k = {out, 0, max_chars, false};
	if (html)
		html_text(&k, text, len);
	else
		sink_text(&k, text, len);
}

/* ---- the message ---- */

static bool is_text(const struct mime_part *p, const char *subtype, struct pool *pool)
{
	return !(p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) && strcmp(p->ct.type, "text") == 0 &&
	       strcmp(p->ct.subtype, subtype) == 0 && !mime_part_is_attachment(pool, p);
}

static const struct mime_part *preview_part(const struct mime_message *msg, struct pool *pool)
{
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p)) {
		if (is_text(p, "plain", pool))
			return p;
		if (!is_text(p, "html", pool))
			continue;
		const struct mime_part *parent = p->parent;
		if (parent != NULL && (parent->flags & MIME_PART_MULTIPART) &&
		    strcmp(parent->ct.subtype, "alternative") == 0)
			for (const struct mime_part *alt = parent->children; alt != NULL; alt = alt->next)
				if (is_text(alt, "plain", pool))
					return alt;
		return p;
	}
	return NULL;
}

/* The part's text in UTF-8, from at most MIME_PREVIEW_SCAN of its body. */
static void part_text(const struct mime_message *msg, const struct mime_part *part, struct buf *text)
{
	struct mime_part head = *part;
	bool cut = head.body.size > MIME_PREVIEW_SCAN;
	if (cut)
		head.body.size = MIME_PREVIEW_SCAN;
	struct buf raw = BUF_INIT;
	mime_part_decode(msg, &head, &raw);
	/* a prefix does not end in part of a UTF-8 character: the text would
	   not be valid UTF-8 and be read as Windows-1252 */
	size_t lead = raw.len;
	while (cut && lead > 0 && raw.len - lead < 4 && ((unsigned char)raw.data[lead - 1] & 0xc0) == 0x80)
		lead--;
	if (cut && lead > 0 &&
	    utf8_seq_len((const unsigned char *)raw.data + lead - 1, raw.len - lead + 1) == 0)
		buf_truncate(&raw, lead - 1);
	const char *cs = mime_part_charset(part);
	if (cs == NULL || mime_charset_to_utf8(text, cs, buf_cstr(&raw), raw.len) < 0)
		mime_utf8_sanitize(text, buf_cstr(&raw), raw.len);
	buf_free(&raw);
}

void mime_preview(struct buf *out, const struct mime_message *msg, size_t max_chars)
{
	struct pool *pool = pool_create(1024);
	const struct mime_part *part = preview_part(msg, pool);
	if (part != NULL) {
		struct buf text = BUF_INIT;
		part_text(msg, part, &text);
		mime_preview_text(out, buf_cstr(&text), text.len, strcmp(part->ct.subtype, "html") == 0,
				  max_chars);
		buf_free(&text);
	}
	pool_destroy(&pool);
}
