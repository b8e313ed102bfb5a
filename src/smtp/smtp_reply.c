#include "smtp/smtp_reply.h"

#include <string.h>

void smtp_reply_format(struct buf *out, int code, const char *enh, const char *text)
{
	const char *p = text;
	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		buf_printf(out, "%03d%c", code, nl ? '-' : ' ');
		if (enh != NULL)
			buf_printf(out, "%s%s", enh, len > 0 ? " " : "");
		size_t start = out->len;
		buf_append(out, p, len);
		for (size_t i = start; i < out->len; i++) {
			unsigned char c = (unsigned char)out->data[i];
			if (c < 0x20 || c == 0x7f)
				out->data[i] = '?';
		}
		buf_append(out, "\r\n", 2);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}
