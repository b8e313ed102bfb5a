/* Fuzzes header parsing (one-shot and incremental), unfolding, RFC 2047
   decoding and Content-Type parameters. */
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/header.h"
#include "mime/param.h"
#include "mime/rfc2047.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pool *pool = pool_create(4096);
	struct mime_limits lim = {.max_header_count = 50, .max_field_size = 2000};
	struct mime_headers *h = mime_headers_parse(pool, (const char *)data, size, &lim);
	for (unsigned int i = 0; i < h->count; i++) {
		const struct mime_header_field *f = &h->fields[i];
		struct buf u = BUF_INIT, d = BUF_INIT;
		mime_header_unfold(&u, f->value, f->value_len);
		mime_2047_decode(&d, buf_cstr(&u), u.len);
		struct mime_content_type ct;
		mime_content_type_parse(pool, f->value, f->value_len, &ct);
		mime_param_get(&ct.params, "name");
		struct buf e = BUF_INIT;
		mime_2047_encode(&e, buf_cstr(&d), d.len, f->name_len + 2, i & 1);
		buf_free(&u);
		buf_free(&d);
		buf_free(&e);
	}
	/* The incremental parser in small chunks. */
	struct mime_header_parser *p = mime_header_parser_create(&lim);
	size_t off = 0, used;
	const char *error;
	int r = 0;
	while (off < size && r == 0) {
		size_t n = size - off < 7 ? size - off : 7;
		r = mime_header_parser_feed(p, data + off, n, &used, &error);
		off += used;
	}
	if (r >= 0)
		mime_header_parser_finish(p, pool);
	mime_header_parser_destroy(&p);
	pool_destroy(&pool);
	return 0;
}
