/* libFuzzer target for the SMTP client's reply parser and EHLO keyword
   parser (src/smtp/smtp_client_reply.c).  The input is split at '\n' into
   reply lines (a CR before it is removed, as io_read_line does); every
   complete reply is also fed to the EHLO parser and formatted. */
#include "smtp/smtp_client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_client_reply_parser p;
	smtp_client_reply_parser_init(&p);
	const char *s = (const char *)data;
	size_t start = 0;
	for (size_t i = 0; i <= size; i++) {
		if (i < size && s[i] != '\n')
			continue;
		size_t len = i - start;
		if (len > 0 && s[start + len - 1] == '\r')
			len--;
		struct smtp_client_reply r;
		const char *error = NULL;
		int rc = smtp_client_reply_feed(&p, s + start, len, &r, &error);
		if (rc < 0 && error == NULL)
			abort();
		if (rc == 1) {
			if (r.code < 200 || r.code > 599 || r.text == NULL)
				abort();
			struct smtp_client_caps caps;
			smtp_client_parse_ehlo(r.text, &caps);
			char *one = smtp_client_reply_string(&r);
			if (strchr(one, '\n') != NULL || strchr(one, '\r') != NULL)
				abort();
			free(one);
			smtp_client_reply_free(&r);
		}
		start = i + 1;
	}
	smtp_client_reply_parser_deinit(&p);
	return 0;
}
