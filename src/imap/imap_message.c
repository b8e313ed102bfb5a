/* Reading a message for FETCH, SEARCH and SORT: the file is read whole
   (with bare LF turned into CRLF, so every size and offset is what the
   client sees) and parsed into a MIME tree only when a command needs it;
   or only its header block, read in small pieces up to the blank line. */
#include "imap/imap_private.h"
#include "lib/xalloc.h"
#include "mime/header.h"
#include "mime/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t count_bare_lf(const char *data, size_t size)
{
	size_t bare = 0;
	for (const char *p = data, *end = data + size; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		if (p == data || p[-1] != '\r')
			bare++;
	return bare;
}

/* Appends data to out with every bare LF made CRLF (one pass with
   memchr, the room reserved once). */
static void crlf_append(struct buf *out, const char *data, size_t len)
{
	buf_reserve(out, len + count_bare_lf(data, len));
	char *o = out->data + out->len;
	const char *p = data, *end = data + len;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n = lf != NULL ? (size_t)(lf - p) : (size_t)(end - p);
		memcpy(o, p, n);
		o += n;
		if (lf == NULL)
			break;
		if (lf == data || lf[-1] != '\r')
			*o++ = '\r';
		*o++ = '\n';
		p = lf + 1;
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}

size_t imap_crlf_convert(char *base, size_t gap, size_t len)
{
	char *o = base;
	const char *p = base + gap, *end = base + gap + len;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n = lf != NULL ? (size_t)(lf - p) : (size_t)(end - p);
		/* an LF right at p follows another LF, or starts the data */
		bool cr = lf != NULL && n > 0 && lf[-1] == '\r';
		memmove(o, p, n);
		o += n;
		if (lf == NULL)
			break;
		if (!cr)
			*o++ = '\r';
		*o++ = '\n';
		p = lf + 1;
	}
	return (size_t)(o - base);
}

/* Turns bare LF into CRLF (line by line with memchr: messages stored by
   postoffice have none, and finding that out must be cheap). */
static char *lf_to_crlf(char *data, size_t *size)
{
	if (count_bare_lf(data, *size) == 0)
		return data;
	struct buf out = BUF_INIT;
	crlf_append(&out, data, *size);
	free(data);
	*size = out.len;
	return buf_steal(&out);
}

/* Reads the file of uid as it is on disk into raw.  1, 0 when gone, -1
   error. */
static int read_raw(struct imap_mbox *mbox, uint32_t uid, struct buf *raw, char **error_r)
{
	int fd;
	int r = imap_message_open(mbox, uid, &fd, error_r);
	if (r <= 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat() failed: %s", strerror(errno));
		close(fd);
		return -1;
	}
	buf_reset(raw);
	buf_reserve(raw, (size_t)st.st_size + 1);
	for (;;) {
		ssize_t n = read(fd, raw->data + raw->len, (size_t)st.st_size - raw->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("read() failed: %s", strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		raw->len += (size_t)n;
		if (raw->len == (size_t)st.st_size)
			break;
	}
	close(fd);
	return 1;
}

int imap_message_open(struct imap_mbox *mbox, uint32_t uid, int *fd_r, char **error_r)
{
	const struct imap_msg *m = imap_mbox_find(mbox, uid);
	if (m == NULL || m->locator == NULL)
		return store_msg_open_uid(mbox->smbox, uid, fd_r, error_r);
	/* renamed by another program meanwhile: store_msg_open finds it again */
	struct store_msg sm = {.uid = uid, .locator = m->locator};
	return store_msg_open(mbox->smbox, &sm, fd_r, error_r);
}

int imap_message_read(struct imap_mbox *mbox, uint32_t uid, struct imap_message *msg_r, char **error_r)
{
	memset(msg_r, 0, sizeof(*msg_r));
	struct buf raw = BUF_INIT;
	int r = read_raw(mbox, uid, &raw, error_r);
	if (r <= 0) {
		buf_free(&raw);
		return r;
	}
	msg_r->size = raw.len;
	msg_r->data = lf_to_crlf(buf_steal(&raw), &msg_r->size);
	return 1;
}

/* The end of the header block in data[0..len): just past the first empty
   line (which may be the very first line), or 0 when none is there yet.
   Line ends before from were searched already. */
static size_t header_end(const char *data, size_t len, size_t from)
{
	if (len > 0 && data[0] == '\n')
		return 1;
	if (len > 1 && data[0] == '\r' && data[1] == '\n')
		return 2;
	const char *p = data + from;
	while ((p = memchr(p, '\n', len - (size_t)(p - data))) != NULL) {
		size_t i = (size_t)(p - data) + 1;
		if (i < len && data[i] == '\n')
			return i + 1;
		if (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n')
			return i + 2;
		p++;
	}
	return 0;
}

int imap_message_read_header(struct imap_mbox *mbox, uint32_t uid, char **data_r, size_t *len_r,
			     char **error_r)
{
	int fd;
	int r = imap_message_open(mbox, uid, &fd, error_r);
	if (r <= 0)
		return r;
	size_t got = 0, alloc = IMAP_HEADER_READ, end = 0;
	char *data = xmalloc(alloc + 1);
	for (;;) {
		ssize_t n = pread(fd, data + got, alloc - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("read() failed: %s", strerror(errno));
			free(data);
			close(fd);
			return -1;
		}
		size_t from = got > 3 ? got - 3 : 0;
		got += (size_t)n;
		if (n == 0 || (end = header_end(data, got, from)) > 0) {
			if (end == 0)
				end = got;
			break;
		}
		if (got == alloc) {
			if (alloc >= IMAP_HEADER_MAX) {
				end = got;
				break;
			}
			alloc *= 4;
			data = xrealloc(data, alloc + 1);
		}
	}
	close(fd);
	/* the header block as the MIME parser (and so BODY[HEADER]) sees it:
	   it may end before the blank line, at a line that is no field */
	struct pool *pool = pool_create(1024);
	const struct mime_headers *h = mime_headers_parse(pool, data, end, NULL);
	size_t size = h->size < end ? h->size : end;
	pool_destroy(&pool);
	data[size] = '\0';
	*len_r = size;
	*data_r = lf_to_crlf(data, len_r);
	return 1;
}

struct mime_message *imap_message_mime(struct imap_message *msg)
{
	if (msg->mime == NULL)
		msg->mime = mime_message_parse(msg->data, msg->size, NULL);
	return msg->mime;
}

void imap_message_free(struct imap_message *msg)
{
	if (msg->mime != NULL)
		mime_message_free(&msg->mime);
	free(msg->data);
	msg->data = NULL;
}
