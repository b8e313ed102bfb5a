/* libFuzzer target for the DATA/BDAT scanner.  Byte 0 picks the mode (dot
   handling, normalize, a small size limit); bytes 1-2 the split point.  The
   rest is fed whole and in two pieces, which must agree; in DATA mode the
   end must be exactly the first <CRLF>.<CRLF> (the CRLF before the first
   line being implied). */
#include "smtp/smtp_data.h"
#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct run {
	struct buf out;
	bool done;
	size_t consumed;
	bool bare_lf, bare_cr;
	uint64_t size;
};

static void run(const char *in, size_t len, size_t split, bool dot, bool normalize, uint64_t max,
		struct run *r)
{
	struct smtp_data_scanner s;
	smtp_data_scanner_init(&s, dot, normalize, max);
	memset(r, 0, sizeof(*r));
	size_t pieces[2] = {split, len - split};
	size_t pos = 0;
	for (int i = 0; i < 2 && !r->done; i++) {
		size_t used = smtp_data_scan(&s, in + pos, pieces[i], &r->out, &r->done);
		if (used > pieces[i] || (!r->done && used != pieces[i]))
			__builtin_trap();
		pos += used;
	}
	if (!dot) {
		if (r->done)
			__builtin_trap(); /* BDAT never ends by itself */
		smtp_data_scan_finish(&s, &r->out);
	}
	r->consumed = pos;
	r->bare_lf = s.bare_lf;
	r->bare_cr = s.bare_cr;
	r->size = s.size;
	if (r->out.len > max || r->out.len > r->size || smtp_data_too_big(&s) != (s.size > max))
		__builtin_trap();
}

/* Index of the '.' of the first "\r\n.\r\n" in "\r\n" + in, or SIZE_MAX. */
static size_t find_end(const char *in, size_t len)
{
	for (size_t i = 0; i + 3 <= len; i++)
		if (in[i] == '.' && in[i + 1] == '\r' && in[i + 2] == '\n' &&
		    (i == 0 || (i >= 2 && in[i - 2] == '\r' && in[i - 1] == '\n')))
			return i;
	return SIZE_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	bool dot = !(data[0] & 1), normalize = data[0] & 2;
	uint64_t max = data[0] & 4 ? (uint64_t)(data[0] >> 3) * 8 : UINT64_MAX;
	const char *in = (const char *)data + 3;
	size_t len = size - 3;
	size_t split = len == 0 ? 0 : ((size_t)data[1] << 8 | data[2]) % (len + 1);

	struct run whole, two;
	run(in, len, len, dot, normalize, max, &whole);
	run(in, len, split, dot, normalize, max, &two);
	if (whole.done != two.done || whole.consumed != two.consumed || whole.bare_lf != two.bare_lf ||
	    whole.bare_cr != two.bare_cr || whole.size != two.size)
		__builtin_trap();
	/* Kept output may differ in where it stopped when over the limit. */
	if (whole.size <= max && (whole.out.len != two.out.len ||
				  memcmp(buf_cstr(&whole.out), buf_cstr(&two.out), whole.out.len) != 0))
		__builtin_trap();
	if (dot) {
		size_t end = find_end(in, len);
		if (whole.done != (end != SIZE_MAX) || (whole.done && whole.consumed != end + 3))
			__builtin_trap();
	}
	/* Normalized output holds CR only before LF and LF only after CR. */
	if (normalize && (whole.done || !dot) && whole.size <= max) {
		const char *o = whole.out.data;
		for (size_t i = 0; i < whole.out.len; i++) {
			if (o[i] == '\r' && (i + 1 == whole.out.len || o[i + 1] != '\n'))
				__builtin_trap();
			if (o[i] == '\n' && (i == 0 || o[i - 1] != '\r'))
				__builtin_trap();
		}
	}
	/* Only normalizing a bare line end makes the output longer than the
	   input. */
	if ((!normalize || (!whole.bare_lf && !whole.bare_cr)) && whole.size > whole.consumed)
		__builtin_trap();
	buf_free(&whole.out);
	buf_free(&two.out);
	return 0;
}
