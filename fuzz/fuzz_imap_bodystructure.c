/* Fuzzes what the IMAP server builds from a message it stores: the input
   is parsed as a message with the MIME library (as imap_fetch.c does,
   bare LF turned into CRLF first), and its ENVELOPE, BODYSTRUCTURE and
   BODY are built; each must be exactly one well-formed IMAP value (RFC
   3501 section 9: balanced lists, quoted strings without CR, LF or NUL,
   literals of their announced size).  The header-block readers of SEARCH,
   SORT and THREAD run on the same header: field lookup, base subject,
   sort keys and a one-message thread. */
#include "imap/imap_sort.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/imap.h"
#include "mime/tree.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns the position after one value at pos, or SIZE_MAX when it is not
   well formed. */
static size_t walk_value(const char *s, size_t len, size_t pos, unsigned int depth)
{
	if (pos >= len || depth > 200)
		return SIZE_MAX;
	char c = s[pos];
	if (c == '"') {
		for (pos++; pos < len; pos++) {
			if (s[pos] == '"')
				return pos + 1;
			if (s[pos] == '\\') {
				if (pos + 1 >= len || (s[pos + 1] != '"' && s[pos + 1] != '\\'))
					return SIZE_MAX;
				pos++;
			} else if (s[pos] == '\r' || s[pos] == '\n' || s[pos] == '\0') {
				return SIZE_MAX;
			}
		}
		return SIZE_MAX;
	}
	if (c == '{') {
		size_t n = 0, i = pos + 1;
		if (i >= len || s[i] < '0' || s[i] > '9')
			return SIZE_MAX;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			n = n * 10 + (size_t)(s[i++] - '0');
		if (i + 3 > len || s[i] != '}' || s[i + 1] != '\r' || s[i + 2] != '\n' || n > len - (i + 3))
			return SIZE_MAX;
		return i + 3 + n;
	}
	if (c == '(') {
		pos++;
		bool first = true;
		while (pos < len && s[pos] != ')') {
			if (!first && s[pos] == ' ')
				pos++;
			else if (!first && s[pos] != '(') /* "(part)(part)" in multiparts */
				return SIZE_MAX;
			pos = walk_value(s, len, pos, depth + 1);
			if (pos == SIZE_MAX)
				return SIZE_MAX;
			first = false;
		}
		return pos < len ? pos + 1 : SIZE_MAX;
	}
	size_t start = pos;
	while (pos < len && s[pos] > ' ' && s[pos] < 0x7f && strchr("()\"{", s[pos]) == NULL)
		pos++;
	return pos > start ? pos : SIZE_MAX;
}

static void check_one_value(const struct buf *b)
{
	if (walk_value(b->data, b->len, 0, 0) != b->len)
		__builtin_trap();
}

static bool count_field(void *ctx, const char *value, size_t len)
{
	(*(size_t *)ctx) += len;
	return false;
}

static char *lf_to_crlf(const uint8_t *data, size_t size, size_t *len_r)
{
	char *out = xmalloc(size * 2 + 1);
	size_t o = 0;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = (char)data[i];
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	char *text = lf_to_crlf(data, size, &len);
	struct mime_message *msg = mime_message_parse(text, len, NULL);
	struct buf out = BUF_INIT;
	for (unsigned int flags = 0; flags <= MIME_IMAP_UTF8; flags += MIME_IMAP_UTF8) {
		buf_reset(&out);
		mime_imap_envelope(&out, msg->root->headers, flags);
		check_one_value(&out);
		buf_reset(&out);
		mime_imap_bodystructure(&out, msg, msg->root, 1, flags);
		check_one_value(&out);
		buf_reset(&out);
		mime_imap_bodystructure(&out, msg, msg->root, 0, flags);
		check_one_value(&out);
	}
	buf_free(&out);

	/* the header block as SEARCH, SORT and THREAD read it */
	const char *header = text + msg->root->header.offset;
	size_t header_len = msg->root->header.size;
	if (msg->root->header.offset + header_len > len)
		__builtin_trap();
	static const char *const names[] = {"Subject", "From", "Date", "References", "X"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t total = 0;
		imap_header_each(header, header_len, names[i], count_field, &total);
		if (total > header_len)
			__builtin_trap();
	}
	struct imap_sortkey *k = imap_sortkey_from_header(header, header_len);
	bool reply;
	char *again = imap_base_subject(k->text[IMAP_SORTKEY_SUBJECT], &reply);
	/* the base subject is a fixed point */
	if (strcmp(again, k->text[IMAP_SORTKEY_SUBJECT]) != 0 || reply)
		__builtin_trap();
	free(again);
	/* the record survives its encoding */
	struct buf rec = BUF_INIT;
	imap_sortkey_encode(k, &rec);
	struct imap_sortkey *back = imap_sortkey_decode(rec.data, rec.len);
	if (back == NULL || strcmp(back->text[IMAP_SORTKEY_FROM], k->text[IMAP_SORTKEY_FROM]) != 0)
		__builtin_trap();
	imap_sortkey_free(&back);
	buf_free(&rec);
	struct imap_sort_msg m = {.seq = 1, .uid = 1, .size = len, .key = k};
	struct buf threads = BUF_INIT;
	imap_thread_references(&m, 1, false, &threads);
	if (strcmp(buf_cstr(&threads), "(1)") != 0)
		__builtin_trap();
	buf_free(&threads);
	imap_sortkey_free(&k);
	mime_message_free(&msg);
	free(text);
	return 0;
}
