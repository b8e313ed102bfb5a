#include "lib/json.h"

#include <string.h>

void json_append_string(struct buf *out, const char *s, size_t len)
{
	if (s == NULL) {
		buf_append_str(out, "null");
		return;
	}
	buf_append_char(out, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			buf_printf(out, "\\%c", c);
		else if (c == '\n')
			buf_append_str(out, "\\n");
		else if (c == '\r')
			buf_append_str(out, "\\r");
		else if (c == '\t')
			buf_append_str(out, "\\t");
		else if (c < 0x20 || c == 0x7f)
			buf_printf(out, "\\u%04x", c);
		else
			buf_append_char(out, (char)c);
	}
	buf_append_char(out, '"');
}

void json_append_cstr(struct buf *out, const char *s)
{
	json_append_string(out, s, s != NULL ? strlen(s) : 0);
}
