/* RFC 2047 encoded-word decoding and encoding. */
#include "mime/rfc2047.h"
#include "mime/base64.h"
#include "mime/charset.h"
#include "mime/mime_private.h"
#include "lib/utf8.h"

#include <stdint.h>
#include <string.h>

struct encoded_word {
	const char *charset;
	size_t charset_len;
	char encoding; /* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t total; /* length of "=?...?=" */
};

/* Parses an encoded word at s (which starts with "=?").  Returns 0 and
   fills w, or -1 when there is none. */
static int word_parse(const char *s, const char *end, struct encoded_word *w)
{
	const char *p = s + 2, *q;
	q = p;
	while (q < end && *q != '?' && !mime_is_space((unsigned char)*q))
		q++;
	if (q == p || end - q < 4 || *q != '?' || q[2] != '?')
		return -1;
	w->charset = p;
	w->charset_len = (size_t)(q - p);
	/* RFC 2231 section 5: charset*language. */
	const char *star = memchr(p, '*', w->charset_len);
	if (star != NULL)
		w->charset_len = (size_t)(star - p);
	char enc = (char)(q[1] & ~0x20);
	if (enc != 'B' && enc != 'Q')
		return -1;
	w->encoding = enc;
	w->text = q + 3;
	/* Find "?=": Q text with spaces is accepted (common breakage), but
	   not across another "=?". */
	const char *t = w->text;
	for (;;) {
		t = memchr(t, '?', (size_t)(end - t));
		if (t == NULL || t + 1 >= end)
			return -1;
		if (t[1] == '=')
			break;
		t++;
	}
	w->text_len = (size_t)(t - w->text);
	if (w->encoding == 'B' && memchr(w->text, ' ', w->text_len) != NULL)
		return -1;
	w->total = (size_t)(t + 2 - s);
	return 0;
}

static int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = mime_lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void q_decode(struct buf *out, const char *s, size_t len)
{
	buf_reserve(out, len);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int h1, h2;
		if (c == '_') {
			c = ' ';
		} else if (c == '=' && i + 2 < len && (h1 = hex_digit((unsigned char)s[i + 1])) >= 0 &&
			   (h2 = hex_digit((unsigned char)s[i + 2])) >= 0) {
			c = (char)(h1 << 4 | h2);
			i += 2;
		}
		out->data[out->len++] = c;
	}
	out->data[out->len] = '\0';
}

/* Decoded bytes of adjacent words in one charset, converted together. */
struct pending {
	struct buf bytes;
	char charset[64];
};

static void pending_flush(struct buf *out, struct pending *pd)
{
	if (pd->bytes.len == 0)
		return;
	if (mime_charset_to_utf8(out, pd->charset, pd->bytes.data, pd->bytes.len) < 0)
		mime_utf8_sanitize(out, pd->bytes.data, pd->bytes.len);
	buf_reset(&pd->bytes);
}

/* Decodes the word into pd; returns -1 when its charset is unknown. */
static int word_decode(struct buf *out, struct pending *pd, const struct encoded_word *w)
{
	char cs[64];
	if (w->charset_len >= sizeof(cs))
		return -1;
	memcpy(cs, w->charset, w->charset_len);
	cs[w->charset_len] = '\0';
	if (!mime_charset_known(cs))
		return -1;
	if (strcmp(cs, pd->charset) != 0) {
		pending_flush(out, pd);
		memcpy(pd->charset, cs, w->charset_len + 1);
	}
	if (w->encoding == 'B')
		base64_decode_lenient(&pd->bytes, w->text, w->text_len);
	else
		q_decode(&pd->bytes, w->text, w->text_len);
	return 0;
}

static void literal_append(struct buf *out, struct pending *pd, const char *s, size_t n)
{
	if (n == 0)
		return;
	pending_flush(out, pd);
	mime_utf8_sanitize(out, s, n);
}

void mime_2047_decode(struct buf *out, const char *in, size_t len)
{
	const char *s = in, *end = in + len, *lit = in;
	struct pending pd = {BUF_INIT, ""};
	int prev_word = 0; /* the last thing emitted was an encoded word */
	buf_reserve(out, len);
	while (s < end) {
		const char *eq = memchr(s, '=', (size_t)(end - s));
		struct encoded_word w;
		if (eq == NULL)
			break;
		if (eq + 1 >= end || eq[1] != '?' || word_parse(eq, end, &w) < 0) {
			s = eq + 1;
			continue;
		}
		/* Whitespace alone between two encoded words is dropped. */
		const char *p = lit;
		while (p < eq && mime_is_space((unsigned char)*p))
			p++;
		if (!(prev_word && p == eq))
			literal_append(out, &pd, lit, (size_t)(eq - lit));
		if (word_decode(out, &pd, &w) < 0) {
			/* Unknown charset: keep the word as it is. */
			literal_append(out, &pd, eq, w.total);
			prev_word = 0;
		} else {
			prev_word = 1;
		}
		s = lit = eq + w.total;
	}
	literal_append(out, &pd, lit, (size_t)(end - lit));
	pending_flush(out, &pd);
	buf_free(&pd.bytes);
	buf_reserve(out, 0);
	out->data[out->len] = '\0';
}

/* ---- encoding ---- */

#define MAX_LINE 78
#define WORD_PREFIX "=?UTF-8?"
#define WORD_OVERHEAD 12 /* "=?UTF-8?X?" + "?=" */
#define WORD_TEXT_MAX (75 - WORD_OVERHEAD)

struct folder {
	struct buf *out;
	size_t col;
	int first;
};

/* Emits one token, preceded by a space or by a fold when it would pass
   the line limit. */
static void fold_put(struct folder *f, const char *tok, size_t n)
{
	if (!f->first) {
		if (f->col + 1 + n > MAX_LINE) {
			buf_append(f->out, "\r\n ", 3);
			f->col = 1;
		} else {
			buf_append_char(f->out, ' ');
			f->col++;
		}
	}
	f->first = 0;
	buf_append(f->out, tok, n);
	f->col += n;
}

/* RFC 2047 5(3): the characters allowed as themselves in Q in a phrase. */
static int q_safe(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '!' ||
	       c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t q_len(const unsigned char *s, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += q_safe(s[i]) || s[i] == ' ' ? 1 : 3;
	return len;
}

static size_t char_len(const unsigned char *s, size_t avail)
{
	size_t n = utf8_seq_len(s, avail);
	return n ? n : 1;
}

static void word_emit(struct folder *f, const unsigned char *s, size_t n, int use_b)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf w = BUF_INIT;
	buf_append_str(&w, use_b ? WORD_PREFIX "B?" : WORD_PREFIX "Q?");
	if (use_b) {
		base64_encode(&w, s, n);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (s[i] == ' ') {
				buf_append_char(&w, '_');
			} else if (q_safe(s[i])) {
				buf_append_char(&w, (char)s[i]);
			} else {
				char e[3] = {'=', hex[s[i] >> 4], hex[s[i] & 15]};
				buf_append(&w, e, 3);
			}
		}
	}
	buf_append(&w, "?=", 2);
	fold_put(f, w.data, w.len);
	buf_free(&w);
}

/* Encodes text as a sequence of encoded words, split at characters. */
static void run_encode(struct folder *f, const unsigned char *s, size_t n)
{
	/* Q stays readable: it is used unless B is clearly shorter. */
	int use_b = q_len(s, n) * 5 > 4 * ((n + 2) / 3) * 6;
	size_t i = 0;
	while (i < n) {
		size_t start = i, enc = 0;
		/* The word fits on the current line when there is room. */
		size_t used = f->col + !f->first + WORD_OVERHEAD;
		size_t max = used + 8 < MAX_LINE ? MAX_LINE - used : WORD_TEXT_MAX;
		if (max > WORD_TEXT_MAX)
			max = WORD_TEXT_MAX;
		while (i < n) {
			size_t cl = char_len(s + i, n - i);
			size_t add = use_b ? 0 : q_len(s + i, cl);
			size_t next = use_b ? 4 * ((i + cl - start + 2) / 3) : enc + add;
			if (next > max && i > start)
				break;
			enc = next;
			i += cl;
		}
		word_emit(f, s + start, i - start, use_b);
	}
}

static int word_needs_encoding(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 0x80 || s[i] < 0x20 || s[i] == 0x7f)
			return 1;
		if (s[i] == '=' && i + 1 < n && s[i + 1] == '?')
			return 1;
	}
	return 0;
}

static int phrase_needs_quotes(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("()<>[]:;@\\,.\"", s[i]) != NULL && s[i] != '\0')
			return 1;
	return 0;
}

static void phrase_quote(struct folder *f, const char *s, size_t n)
{
	struct buf q = BUF_INIT;
	buf_append_char(&q, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append_char(&q, '\\');
		buf_append_char(&q, s[i]);
	}
	buf_append_char(&q, '"');
	fold_put(f, q.data, q.len);
	buf_free(&q);
}

void mime_2047_encode(struct buf *out, const char *utf8, size_t len, size_t col, int phrase)
{
	struct folder f = {out, col, 1};
	const unsigned char *s = (const unsigned char *)utf8, *end = s + len;
	while (s < end && mime_is_space(*s))
		s++;
	while (end > s && mime_is_space(end[-1]))
		end--;
	if (phrase) {
		if (word_needs_encoding(s, (size_t)(end - s)))
			run_encode(&f, s, (size_t)(end - s));
		else if (phrase_needs_quotes((const char *)s, (size_t)(end - s)))
			phrase_quote(&f, (const char *)s, (size_t)(end - s));
		else
			phrase = 0;
		if (phrase)
			return;
	}
	/* Unstructured text: ASCII words as they are; a run of words that
	   need encoding (with the spaces between them) as encoded words. */
	const unsigned char *run = NULL, *run_end = NULL;
	while (s < end) {
		const unsigned char *w = s;
		while (s < end && !mime_is_space(*s))
			s++;
		size_t n = (size_t)(s - w);
		if (word_needs_encoding(w, n)) {
			if (run == NULL)
				run = w;
			run_end = s;
		} else {
			if (run != NULL)
				run_encode(&f, run, (size_t)(run_end - run));
			run = NULL;
			fold_put(&f, (const char *)w, n);
		}
		while (s < end && mime_is_space(*s))
			s++;
	}
	if (run != NULL)
		run_encode(&f, run, (size_t)(run_end - run));
}
