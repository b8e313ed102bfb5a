/* Fuzzes preview text (RFC 8970): a message's preview and the text pass
   on the raw input as plain text and as HTML, checking that the result is
   valid UTF-8 of at most the budget's characters, without control
   characters and without a space at either end. */
#include "lib/buf.h"
#include "lib/utf8.h"
#include "mime/preview.h"
#include "mime/tree.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct buf *out, size_t max)
{
	const char *d = buf_cstr(out);
	if (!utf8_valid(d, out->len) || memchr(d, '\0', out->len) != NULL)
		__builtin_trap();
	size_t chars = 0;
	for (size_t i = 0; i < out->len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c < 0x20 || c == 0x7f)
			__builtin_trap();
		chars += (c & 0xc0) != 0x80;
	}
	if (chars > max || (out->len > 0 && (d[0] == ' ' || d[out->len - 1] == ' ')))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits lim = {.max_depth = 20, .max_parts = 200};
	struct mime_message *msg = mime_message_parse(data, size, &lim);
	struct buf out = BUF_INIT;
	mime_preview(&out, msg, MIME_PREVIEW_CHARS);
	check(&out, MIME_PREVIEW_CHARS);
	mime_message_free(&msg);
	size_t max = size > 0 ? data[0] % 40 : 0;
	for (int html = 0; html < 2; html++) {
		buf_reset(&out);
		mime_preview_text(&out, (const char *)data, size, html, max);
		check(&out, max);
	}
	buf_free(&out);
	return 0;
}
