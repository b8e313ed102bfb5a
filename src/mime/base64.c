/* Base64 codec (RFC 4648 section 4, RFC 2045 section 6.8).  Decoding goes
   through a 256-entry table so the inner loop is a few loads per byte and
   never calls a function per byte. */
#include "mime/base64.h"

#include <stdint.h>
#include <string.h>

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63: value; B64_PAD (64): '='; B64_SKIP (65): anything else. */
enum { B64_PAD = 64, B64_SKIP = 65 };
static const uint8_t b64_table[256] = {
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 62, 65, 65, 65, 63, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 65, 65, 65, 64, 65, 65, 65, 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
    13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 65, 65, 65, 65, 65, 65, 26, 27, 28, 29, 30, 31, 32,
    33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65,
};

/* Encodes len bytes into dst (which has room for BASE64_ENCODED_LEN). */
static size_t b64_encode_raw(char *dst, const uint8_t *s, size_t len)
{
	char *d = dst;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		d[0] = b64_alphabet[v >> 18];
		d[1] = b64_alphabet[(v >> 12) & 63];
		d[2] = b64_alphabet[(v >> 6) & 63];
		d[3] = b64_alphabet[v & 63];
		d += 4;
	}
	if (i < len) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)s[i + 1] << 8;
		d[0] = b64_alphabet[v >> 18];
		d[1] = b64_alphabet[(v >> 12) & 63];
		d[2] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		d[3] = '=';
		d += 4;
	}
	return (size_t)(d - dst);
}

void base64_encode(struct buf *out, const void *in, size_t len)
{
	size_t n = BASE64_ENCODED_LEN(len);
	buf_reserve(out, n);
	out->len += b64_encode_raw(out->data + out->len, in, len);
	out->data[out->len] = '\0';
}

void base64_encode_lines(struct buf *out, const void *in, size_t len)
{
	const uint8_t *s = in;
	/* 57 input bytes make one 76-character line. */
	size_t lines = (len + 56) / 57;
	buf_reserve(out, BASE64_ENCODED_LEN(len) + 2 * lines);
	char *d = out->data + out->len;
	for (size_t off = 0; off < len; off += 57) {
		size_t n = len - off < 57 ? len - off : 57;
		d += b64_encode_raw(d, s + off, n);
		*d++ = '\r';
		*d++ = '\n';
	}
	out->len = (size_t)(d - out->data);
	out->data[out->len] = '\0';
}

int base64_decode_strict(struct buf *out, const char *in, size_t len)
{
	if (len % 4 != 0)
		return -1;
	size_t start = out->len;
	buf_reserve(out, len / 4 * 3);
	uint8_t *d = (uint8_t *)out->data + out->len;
	const uint8_t *s = (const uint8_t *)in;
	for (size_t i = 0; i < len; i += 4) {
		uint8_t a = b64_table[s[i]], b = b64_table[s[i + 1]];
		uint8_t c = b64_table[s[i + 2]], e = b64_table[s[i + 3]];
		if (a > 63 || b > 63)
			goto fail;
		int last = i + 4 == len;
		if (c == B64_PAD || e == B64_PAD) {
			/* Padding only in the final quantum, "xx==" or "xxx=",
			   and the unused bits must be zero (RFC 4648 3.5). */
			if (!last || e != B64_PAD || c == B64_SKIP)
				goto fail;
			if (c == B64_PAD) {
				if (b & 15)
					goto fail;
				*d++ = (uint8_t)(a << 2 | b >> 4);
			} else {
				if (c > 63 || (c & 3))
					goto fail;
				*d++ = (uint8_t)(a << 2 | b >> 4);
				*d++ = (uint8_t)(b << 4 | c >> 2);
			}
			break;
		}
		if (c > 63 || e > 63)
			goto fail;
		d[0] = (uint8_t)(a << 2 | b >> 4);
		d[1] = (uint8_t)(b << 4 | c >> 2);
		d[2] = (uint8_t)(c << 6 | e);
		d += 3;
	}
	out->len = (size_t)((char *)d - out->data);
	out->data[out->len] = '\0';
	return 0;
fail:
	out->len = start;
	out->data[start] = '\0';
	return -1;
}

void base64_decode_lenient(struct buf *out, const char *in, size_t len)
{
	buf_reserve(out, len / 4 * 3 + 3);
	uint8_t *d = (uint8_t *)out->data + out->len;
	const uint8_t *s = (const uint8_t *)in, *end = s + len;
	uint32_t acc = 0;
	int n = 0;
	/* Fast path: whole 76-character lines of clean alphabet. */
	while (s < end) {
		while (end - s >= 4 && n == 0) {
			uint8_t a = b64_table[s[0]], b = b64_table[s[1]];
			uint8_t c = b64_table[s[2]], e = b64_table[s[3]];
			if ((a | b | c | e) > 63)
				break;
			d[0] = (uint8_t)(a << 2 | b >> 4);
			d[1] = (uint8_t)(b << 4 | c >> 2);
			d[2] = (uint8_t)(c << 6 | e);
			d += 3;
			s += 4;
		}
		if (s >= end)
			break;
		uint8_t v = b64_table[*s++];
		if (v == B64_PAD)
			break;
		if (v == B64_SKIP)
			continue;
		acc = acc << 6 | v;
		if (++n == 4) {
			d[0] = (uint8_t)(acc >> 16);
			d[1] = (uint8_t)(acc >> 8);
			d[2] = (uint8_t)acc;
			d += 3;
			n = 0;
			acc = 0;
		}
	}
	/* A truncated final quantum still yields its whole bytes. */
	if (n == 2) {
		*d++ = (uint8_t)(acc >> 4);
	} else if (n == 3) {
		*d++ = (uint8_t)(acc >> 10);
		*d++ = (uint8_t)(acc >> 2);
	}
	out->len = (size_t)((char *)d - out->data);
	out->data[out->len] = '\0';
}
