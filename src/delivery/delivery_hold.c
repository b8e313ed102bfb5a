/* A message held by a filter (see delivery_hold.h). */
#include "delivery/delivery_hold.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "mime/header.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void delivery_hold_init(struct delivery_hold *h)
{
	memset(h, 0, sizeof(*h));
	h->state = DELIVERY_HOLD_HEADER;
	h->line_start = true;
	h->spill = -1;
}

size_t delivery_hold_header(struct delivery_hold *h, const void *data, size_t len)
{
	const char *p = data;
	size_t i = 0;
	for (; i < len && h->state == DELIVERY_HOLD_HEADER; i++) {
		char c = p[i];
		if (h->line_start && (c == '\n' || (c == '\r' && !h->cr_at_start))) {
			if (c == '\n')
				h->state = DELIVERY_HOLD_BODY;
			else
				h->cr_at_start = true;
			continue;
		}
		h->cr_at_start = false;
		h->line_start = c == '\n';
	}
	buf_append(&h->header, p, i);
	if (h->header.len > mime_default_limits.max_header_size)
		h->state = DELIVERY_HOLD_OVERSIZE;
	return i;
}

int delivery_hold_body(struct delivery_hold *h, struct delivery_filter *f, const void *data, size_t len,
		       char **error_r)
{
	if (h->spill < 0 && h->body.len + len <= DELIVERY_HOLD_MEMORY) {
		buf_append(&h->body, data, len);
		return 0;
	}
	if (h->spill < 0) {
		h->spill = openat(delivery_dirfd(f->delivery), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (h->spill < 0) {
			*error_r = xasprintf("cannot make a scratch file: %s", strerror(errno));
			return -1;
		}
	}
	if (fs_write_all(h->spill, data, len) < 0) {
		*error_r = xasprintf("writing the scratch file: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int delivery_hold_release(struct delivery_hold *h, struct delivery_filter *f, char **error_r)
{
	if (delivery_filter_output(f, h->body.data, h->body.len, error_r) < 0)
		return -1;
	if (h->spill < 0)
		return 0;
	char chunk[65536];
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(h->spill, chunk, sizeof(chunk), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("reading the scratch file: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		if (delivery_filter_output(f, chunk, (size_t)n, error_r) < 0)
			return -1;
		off += n;
	}
}

void delivery_hold_free(struct delivery_hold *h)
{
	buf_free(&h->header);
	buf_free(&h->body);
	if (h->spill >= 0)
		close(h->spill);
	h->spill = -1;
}
