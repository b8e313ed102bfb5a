/* Fuzzes the base64 codec (src/mime/base64.c).  Checks that
   - the encoding of any input decodes back to it through the strict and
     the lenient decoder, with and without line breaks, and has the length
     BASE64_ENCODED_LEN promises;
   - base64_encode_lines writes lines of 76 characters (the last may be
     shorter) ending in CRLF;
   - input the strict decoder accepts is canonical: encoding what it
     decoded gives the input again; what it rejects leaves out unchanged;
   - the lenient decoder never writes more than 3 bytes per 4 input. */
#include "lib/buf.h"
#include "mime/base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_equal(const struct buf *b, const void *p, size_t n)
{
	if (b->len != n || memcmp(buf_cstr(b), p, n) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	struct buf e = BUF_INIT, l = BUF_INIT, d = BUF_INIT;
	base64_encode(&e, data, size);
	if (e.len != BASE64_ENCODED_LEN(size))
		abort();
	if (base64_decode_strict(&d, e.data, e.len) < 0)
		abort();
	check_equal(&d, data, size);
	buf_reset(&d);
	base64_decode_lenient(&d, buf_cstr(&e), e.len);
	check_equal(&d, data, size);
	buf_reset(&d);

	base64_encode_lines(&l, data, size);
	for (size_t i = 0; i < l.len; i += 78) {
		size_t n = l.len - i < 78 ? l.len - i : 78;
		if (n < 6 || l.data[i + n - 2] != '\r' || l.data[i + n - 1] != '\n' ||
		    (n < 78 && i + n != l.len) || memchr(l.data + i, '\r', n - 2) != NULL)
			abort();
	}
	base64_decode_lenient(&d, buf_cstr(&l), l.len);
	check_equal(&d, data, size);
	buf_reset(&d);

	/* The input as base64. */
	buf_append_str(&d, "x");
	if (base64_decode_strict(&d, (const char *)data, size) == 0) {
		struct buf again = BUF_INIT;
		base64_encode(&again, d.data + 1, d.len - 1);
		check_equal(&again, data, size);
		buf_free(&again);
	} else {
		check_equal(&d, "x", 1);
	}
	buf_reset(&d);
	base64_decode_lenient(&d, (const char *)data, size);
	if (d.len > size / 4 * 3 + 2)
		abort();
	buf_free(&e);
	buf_free(&l);
	buf_free(&d);
	return 0;
}
