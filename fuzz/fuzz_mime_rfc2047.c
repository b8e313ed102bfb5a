/* Fuzzes RFC 2047 encoded words (src/mime/rfc2047.c).  Checks that
   - decoding any input gives valid UTF-8 (rfc2047.h promises it);
   - encoding UTF-8 text (the input when it is valid UTF-8, else its
     decoding) gives 7-bit printable header text folded with CRLF SP,
     encoded words of at most 75 characters and lines of at most 78
     characters unless a line holds one word that cannot be split;
   - unfolding and decoding the encoding gives the text back: trimmed,
     runs of whitespace between plain words written as one space, and a
     quoted display name unquoted. */
#include "lib/utf8.h"
#include "lib/buf.h"
#include "mime/charset.h"
#include "mime/header.h"
#include "mime/rfc2047.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* As the encoder decides it (rfc2047.h): non-ASCII, controls, or text
   that looks like an encoded word. */
static int needs_encoding(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 0x80 || s[i] < 0x20 || s[i] == 0x7f)
			return 1;
		if (s[i] == '=' && i + 1 < n && s[i + 1] == '?')
			return 1;
	}
	return 0;
}

static int needs_quotes(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '\0' && strchr("()<>[]:;@\\,.\"", s[i]) != NULL)
			return 1;
	return 0;
}

/* The text the decoder should give back for unstructured text: words
   that need no encoding are separated by one space; the whitespace
   inside a run of words that are encoded together is kept. */
static void expected_text(struct buf *want, const unsigned char *s, size_t n)
{
	const unsigned char *end = s + n;
	int prev_enc = -1; /* -1: no word yet */
	while (s < end) {
		const unsigned char *ws = s;
		while (s < end && is_space(*s))
			s++;
		if (s == end)
			break;
		const unsigned char *w = s;
		while (s < end && !is_space(*s))
			s++;
		int enc = needs_encoding(w, (size_t)(s - w));
		if (prev_enc == 1 && enc)
			buf_append(want, ws, (size_t)(w - ws));
		else if (prev_enc >= 0)
			buf_append_char(want, ' ');
		buf_append(want, w, (size_t)(s - w));
		prev_enc = enc;
	}
}

/* Checks the encoder's output shape; returns nothing, aborts on error. */
static void check_encoded(const struct buf *e, size_t col, int quoted)
{
	size_t line_start = 0, line_col = col;
	for (size_t i = 0; i <= e->len; i++) {
		unsigned char c = i < e->len ? (unsigned char)e->data[i] : '\r';
		if (c == '\r') {
			if (i < e->len &&
			    (i + 2 >= e->len || e->data[i + 1] != '\n' || e->data[i + 2] != ' '))
				abort();
			size_t len = line_col + (i - line_start);
			/* A longer line holds a single word: no space after
			   the fold's own. */
			if (len > 78 && !quoted &&
			    memchr(e->data + line_start + (line_start > 0), ' ',
				   i - line_start - (line_start > 0)) != NULL)
				abort();
			line_start = i + 2;
			line_col = 0;
			i++;
		} else if (c < 0x20 || c >= 0x7f) {
			abort();
		}
	}
	for (const char *p = e->data; p != NULL && (p = strstr(p, "=?")) != NULL;) {
		if (strncmp(p, "=?UTF-8?Q?", 10) != 0 && strncmp(p, "=?UTF-8?B?", 10) != 0)
			abort();
		const char *q = strstr(p + 10, "?=");
		if (q == NULL || q + 2 - p > 75)
			abort();
		p = q + 2;
	}
}

static void check_encode(const unsigned char *s, size_t n, size_t col, int phrase)
{
	struct buf e = BUF_INIT, unfolded = BUF_INIT, d = BUF_INIT, want = BUF_INIT;
	mime_2047_encode(&e, (const char *)s, n, col, phrase);
	while (n > 0 && is_space(*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_space(s[n - 1]))
		n--;
	int quoted = phrase && !needs_encoding(s, n) && needs_quotes(s, n);
	check_encoded(&e, col, quoted);
	mime_header_unfold(&unfolded, buf_cstr(&e), e.len);
	if (phrase && needs_encoding(s, n)) {
		buf_append(&want, s, n);
	} else if (quoted) {
		/* A quoted string: unquote it instead of decoding. */
		buf_append(&want, s, n);
		const char *q = buf_cstr(&unfolded);
		if (unfolded.len < 2 || q[0] != '"' || q[unfolded.len - 1] != '"')
			abort();
		for (size_t i = 1; i + 1 < unfolded.len; i++) {
			if (q[i] == '\\')
				i++;
			buf_append_char(&d, q[i]);
		}
	} else {
		expected_text(&want, s, n);
	}
	if (d.len == 0)
		mime_2047_decode(&d, buf_cstr(&unfolded), unfolded.len);
	if (d.len != want.len || memcmp(buf_cstr(&d), buf_cstr(&want), want.len) != 0)
		abort();
	buf_free(&e);
	buf_free(&unfolded);
	buf_free(&d);
	buf_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	struct buf d = BUF_INIT;
	mime_2047_decode(&d, (const char *)data, size);
	if (!utf8_valid(buf_cstr(&d), d.len))
		abort();
	const unsigned char *text = data;
	size_t len = size;
	if (!utf8_valid(data, size)) {
		text = (const unsigned char *)buf_cstr(&d);
		len = d.len;
	}
	size_t cols[2] = {9, size % 70};
	for (int i = 0; i < 2; i++)
		for (int phrase = 0; phrase <= 1; phrase++)
			check_encode(text, len, cols[i], phrase);
	buf_free(&d);
	return 0;
}
