/* Reading a message for FETCH, SEARCH and SORT: the file is read whole
   (with bare LF turned into CRLF, so every size and offset is what the
   client sees) and parsed into a MIME tree only when a command needs it. */
#include "imap/imap_private.h"
#include "lib/xalloc.h"
#include "mime/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *lf_to_crlf(char *data, size_t *size)
{
	size_t bare = 0;
	for (size_t i = 0; i < *size; i++)
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			bare++;
	if (bare == 0)
		return data;
	char *out = xmalloc(*size + bare + 1);
	size_t o = 0;
	for (size_t i = 0; i < *size; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = data[i];
	}
	out[o] = '\0';
	free(data);
	*size = o;
	return out;
}

int imap_message_read(struct imap_mbox *mbox, uint32_t uid, struct imap_message *msg_r,
		      char **error_r)
{
	memset(msg_r, 0, sizeof(*msg_r));
	int fd;
	int r = store_msg_open_uid(mbox->smbox, uid, &fd, error_r);
	if (r <= 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat() failed: %s", strerror(errno));
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size, got = 0;
	char *data = xmalloc(size + 1);
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0) {
				*error_r = xasprintf("read() failed: %s", strerror(errno));
				free(data);
				close(fd);
				return -1;
			}
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	data[got] = '\0';
	msg_r->size = got;
	msg_r->data = lf_to_crlf(data, &msg_r->size);
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
