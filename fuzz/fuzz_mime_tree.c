/* Fuzzes the MIME tree: parse (as IMAP does, and decoding encoded
   message/rfc822 parts as `show` does), walk, decode every part, section
   lookup, ENVELOPE and BODYSTRUCTURE, re-encoding binary parts, and checks
   the spans stay in the buffer they refer to. */
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/imap.h"
#include "mime/tree.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(const struct mime_span *s, size_t size)
{
	if (s->offset > size || s->size > size - s->offset || s->vsize < s->size)
		__builtin_trap();
}

static void check_message(const uint8_t *data, size_t size, unsigned int flags)
{
	struct mime_limits lim = {.max_depth = 20, .max_parts = 200};
	struct mime_message *msg = mime_message_parse_flags(data, size, &lim, flags);
	struct pool *pool = pool_create(4096);
	struct buf out = BUF_INIT;
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p)) {
		if (!(p->flags & MIME_PART_DECODED) && p->data != msg->data)
			__builtin_trap();
		check_span(&p->header, p->data_size);
		check_span(&p->body, p->data_size);
		if (p->header.offset + p->header.size != p->body.offset)
			__builtin_trap();
		buf_reset(&out);
		mime_part_decode(msg, p, &out);
		buf_reset(&out);
		mime_part_decode_text(msg, p, &out);
		mime_part_filename(pool, p);
		mime_part_is_attachment(pool, p);
		struct buf sec = BUF_INIT;
		mime_part_body_section(p, &sec);
		if (mime_part_find(msg, buf_cstr(&sec)) == NULL && p->parent != NULL &&
		    !(p->parent->flags & MIME_PART_MESSAGE))
			__builtin_trap();
		buf_free(&sec);
	}
	buf_reset(&out);
	if (mime_message_encode_binary(msg, &out) > 0) {
		/* what APPEND of a literal8 stores parses again, NUL-free */
		struct mime_message *again = mime_message_parse_flags(out.data, out.len, &lim, 0);
		mime_message_free(&again);
	}
	buf_reset(&out);
	mime_imap_envelope(&out, msg->root->headers, 0);
	mime_imap_bodystructure(&out, msg, NULL, 1, 0);
	mime_imap_bodystructure(&out, msg, NULL, 0, MIME_IMAP_UTF8);
	buf_free(&out);
	pool_destroy(&pool);
	mime_message_free(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_message(data, size, 0);
	check_message(data, size, MIME_PARSE_DECODE_MESSAGES);
	return 0;
}
