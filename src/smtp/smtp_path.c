#include "smtp/smtp_path.h"
#include "mime/path.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

int smtp_path_parse(const char *text, bool mail, bool utf8, struct smtp_path *path_r, const char **error_r)
{
	memset(path_r, 0, sizeof(*path_r));
	struct pool *pool = pool_create(1024);
	struct buf in = BUF_INIT;
	buf_printf(&in, "<%s>", text);
	unsigned flags =
	    (utf8 ? MIME_PATH_ALLOW_UTF8 : 0) | (mail ? MIME_PATH_ALLOW_NULL : MIME_PATH_ALLOW_POSTMASTER);
	struct mime_path p;
	size_t consumed;
	int rc = mime_path_parse(pool, in.data, in.len, flags, &p, &consumed, error_r);
	if (rc == 0 && consumed != in.len) {
		*error_r = "unexpected text in the address";
		rc = -1;
	}
	if (rc == 0) {
		if (p.flags & MIME_PATH_NULL) {
			path_r->address = xstrdup("");
		} else if (p.flags & MIME_PATH_POSTMASTER) {
			path_r->address = xstrdup("postmaster");
		} else {
			const char *domain = p.domain;
			if (!(p.flags & MIME_PATH_LITERAL) &&
			    mime_domain_to_ascii(pool, p.domain, &domain, error_r) < 0) {
				rc = -1;
				goto out;
			}
			struct mime_path norm = p;
			norm.domain = domain;
			struct buf out = BUF_INIT;
			mime_path_format(&out, &norm);
			/* Drop the angle brackets mime_path_format writes. */
			path_r->address = xstrndup(out.data + 1, out.len - 2);
			buf_free(&out);
			path_r->literal = (p.flags & MIME_PATH_LITERAL) != 0;
			path_r->route = (p.flags & MIME_PATH_HAS_ROUTE) != 0;
			path_r->odd_local = path_r->address[0] == '"';
		}
	}
out:
	buf_free(&in);
	pool_destroy(&pool);
	return rc;
}

void smtp_path_free(struct smtp_path *path)
{
	free(path->address);
	path->address = NULL;
}
