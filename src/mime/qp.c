/* Quoted-printable codec (RFC 2045 section 6.7). */
#include "mime/qp.h"

#include <stdint.h>
#include <string.h>

static const char hex_upper[] = "0123456789ABCDEF";

/* Hex digit value, or 16 for anything else. */
static const uint8_t hex_value[256] = {
    ['0'] = 0,  ['1'] = 1,  ['2'] = 2,  ['3'] = 3,  ['4'] = 4,  ['5'] = 5,  ['6'] = 6,  ['7'] = 7,
    ['8'] = 8,  ['9'] = 9,  ['A'] = 10, ['B'] = 11, ['C'] = 12, ['D'] = 13, ['E'] = 14, ['F'] = 15,
    ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
};

static int is_hex(uint8_t c)
{
	return hex_value[c] != 0 || c == '0';
}

/* Characters that are safe literally anywhere in a line: printable ASCII
   except '='.  Space and tab are safe except at the end of a line. */
static int qp_safe(uint8_t c)
{
	return (c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t';
}

struct qp_state {
	struct buf *out;
	size_t col;
};

/* Soft break before n more characters when the line, with its "=",
   would pass 76. */
static void qp_soft_break(struct qp_state *st, size_t n)
{
	if (st->col + n > 75) {
		buf_append(st->out, "=\r\n", 3);
		st->col = 0;
	}
}

static void qp_put(struct qp_state *st, const char *s, size_t n)
{
	qp_soft_break(st, n);
	buf_append(st->out, s, n);
	st->col += n;
}

static void qp_put_escaped(struct qp_state *st, uint8_t c)
{
	char e[3] = {'=', hex_upper[c >> 4], hex_upper[c & 15]};
	qp_put(st, e, 3);
}

static void qp_encode_common(struct buf *out, const uint8_t *s, size_t len, int binary)
{
	struct qp_state st = {out, 0};
	buf_reserve(out, len + len / 8 + 8);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		int eol = !binary && (c == '\n' || (c == '\r' && i + 1 < len && s[i + 1] == '\n'));
		if (eol) {
			if (c == '\r')
				i++;
			buf_append(out, "\r\n", 2);
			st.col = 0;
			continue;
		}
		int at_eol =
		    i + 1 == len ||
		    (!binary && (s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < len && s[i + 2] == '\n')));
		int escape = !qp_safe(c) || ((c == ' ' || c == '\t') && at_eol);
		/* The soft break comes first: the character may start a new
		   line.  A line starting with "." or "From " is escaped: SMTP
		   transparency and mbox "From " quoting. */
		qp_soft_break(&st, escape ? 3 : 1);
		if (st.col == 0 && (c == '.' || (c == 'F' && len - i >= 5 && !memcmp(s + i, "From ", 5))))
			escape = 1;
		if (escape)
			qp_put_escaped(&st, c);
		else
			qp_put(&st, (const char *)&s[i], 1);
	}
}

void qp_encode(struct buf *out, const void *in, size_t len)
{
	qp_encode_common(out, in, len, 0);
}

void qp_encode_binary(struct buf *out, const void *in, size_t len)
{
	qp_encode_common(out, in, len, 1);
}

/* Length of a line ending at s (CRLF or LF), 0 when s is not a line end. */
static size_t eol_len(const uint8_t *s, const uint8_t *end)
{
	if (s < end && *s == '\n')
		return 1;
	if (end - s >= 2 && s[0] == '\r' && s[1] == '\n')
		return 2;
	return 0;
}

/* Decodes one line [s, e) (without its line end) into d; returns the new
   end of output.  soft_r is set when the line ends with a soft break. */
static uint8_t *qp_decode_line(uint8_t *d, const uint8_t *s, const uint8_t *e, int *soft_r)
{
	/* Trailing whitespace was added in transport (RFC 2045 6.7 rule 3). */
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*soft_r = 0;
	while (s < e) {
		const uint8_t *eq = memchr(s, '=', (size_t)(e - s));
		size_t n = eq ? (size_t)(eq - s) : (size_t)(e - s);
		memcpy(d, s, n);
		d += n;
		s += n;
		if (eq == NULL)
			break;
		if (e - s >= 3 && is_hex(s[1]) && is_hex(s[2])) {
			*d++ = (uint8_t)(hex_value[s[1]] << 4 | hex_value[s[2]]);
			s += 3;
		} else if (s + 1 == e) {
			*soft_r = 1;
			s++;
		} else {
			/* Malformed escape: keep the '=' as mainstream
			   clients do (RFC 2045 6.7 note 1). */
			*d++ = '=';
			s++;
		}
	}
	return d;
}

void qp_decode(struct buf *out, const char *in, size_t len)
{
	buf_reserve(out, len);
	uint8_t *d = (uint8_t *)out->data + out->len;
	const uint8_t *s = (const uint8_t *)in, *end = s + len;
	while (s < end) {
		const uint8_t *nl = memchr(s, '\n', (size_t)(end - s));
		const uint8_t *e = nl ? nl : end;
		if (nl != NULL && e > s && e[-1] == '\r')
			e--;
		int soft;
		d = qp_decode_line(d, s, e, &soft);
		if (nl == NULL)
			break;
		size_t el = eol_len(e, end);
		if (!soft) {
			memcpy(d, e, el);
			d += el;
		}
		s = e + el;
	}
	out->len = (size_t)((char *)d - out->data);
	out->data[out->len] = '\0';
}

int qp_needs_encoding(const void *in, size_t len)
{
	const uint8_t *s = in;
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (c == '\n') {
			col = 0;
			continue;
		}
		if (c >= 0x80 || c == 0 || (c == '\r' && (i + 1 == len || s[i + 1] != '\n')))
			return 1;
		if (c != '\r' && ++col > 998)
			return 1;
	}
	return 0;
}
