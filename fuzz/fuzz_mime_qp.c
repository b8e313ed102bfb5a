/* Fuzzes the quoted-printable codec (src/mime/qp.c).  Checks that
   - decoding any input never grows it;
   - qp_encode gives 7-bit lines of at most 76 characters ending in CRLF,
     without trailing whitespace, never starting with "." or "From ", and
     decodes back to the input with its line ends made CRLF;
   - qp_encode_binary decodes back to the exact input;
   - qp_needs_encoding is false only for 7-bit text without NUL, bare CR
     or lines over 998 octets. */
#include "lib/buf.h"
#include "mime/qp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_lines(const struct buf *e)
{
	size_t start = 0;
	for (size_t i = 0; i <= e->len; i++) {
		if (i < e->len && e->data[i] != '\r' && e->data[i] != '\n') {
			unsigned char c = (unsigned char)e->data[i];
			if (c >= 0x7f || (c < 0x20 && c != '\t'))
				abort();
			continue;
		}
		if (i < e->len && (e->data[i] != '\r' || i + 1 >= e->len || e->data[i + 1] != '\n'))
			abort(); /* a bare CR or LF */
		const char *line = e->data + start;
		size_t len = i - start;
		if (len > 76)
			abort();
		if (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
			abort();
		if ((len > 0 && line[0] == '.') || (len >= 5 && !memcmp(line, "From ", 5)))
			abort();
		start = i + 2;
		i++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	struct buf d = BUF_INIT, e = BUF_INIT, back = BUF_INIT, want = BUF_INIT;
	qp_decode(&d, (const char *)data, size);
	if (d.len > size)
		abort();

	qp_encode(&e, data, size);
	check_lines(&e);
	qp_decode(&back, e.data, e.len);
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
			continue; /* the LF writes the CRLF */
		if (data[i] == '\n')
			buf_append_char(&want, '\r');
		buf_append_char(&want, (char)data[i]);
	}
	if (back.len != want.len || memcmp(buf_cstr(&back), buf_cstr(&want), want.len) != 0)
		abort();

	buf_reset(&e);
	buf_reset(&back);
	qp_encode_binary(&e, data, size);
	check_lines(&e);
	qp_decode(&back, e.data, e.len);
	if (back.len != size || memcmp(buf_cstr(&back), data, size) != 0)
		abort();

	if (!qp_needs_encoding(data, size)) {
		size_t col = 0;
		for (size_t i = 0; i < size; i++) {
			if (data[i] >= 0x80 || data[i] == 0 ||
			    (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n')))
				abort();
			col = data[i] == '\n' ? 0 : data[i] == '\r' ? col : col + 1;
			if (col > 998)
				abort();
		}
	}
	buf_free(&d);
	buf_free(&e);
	buf_free(&back);
	buf_free(&want);
	return 0;
}
