/* Fuzzes RFC 5322 address lists and RFC 5321 paths. */
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/address.h"
#include "mime/path.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pool *pool = pool_create(4096);
	const char *s = (const char *)data;
	struct buf out = BUF_INIT;
	for (const struct mime_address *a = mime_address_parse(pool, s, size); a != NULL; a = a->next) {
		mime_address_format_spec(&out, a);
		mime_address_name_utf8(pool, a);
	}
	static const unsigned int flag_sets[] = {
	    0,
	    MIME_PATH_ALLOW_UTF8 | MIME_PATH_ALLOW_NULL | MIME_PATH_ALLOW_POSTMASTER,
	    MIME_PATH_ALLOW_NO_ANGLE,
	};
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct mime_path path;
		size_t consumed;
		const char *error, *conv;
		if (mime_path_parse(pool, s, size, flag_sets[i], &path, &consumed, &error) == 0) {
			if (consumed > size)
				__builtin_trap();
			mime_path_format(&out, &path);
			if (path.domain != NULL && !(path.flags & MIME_PATH_LITERAL))
				mime_domain_to_ascii(pool, path.domain, &conv, &error);
		}
	}
	buf_free(&out);
	pool_destroy(&pool);
	return 0;
}
