/* Charset conversion (RFC 2046 section 4.1.2) via iconv(3). */
#include "mime/charset.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Labels that are wrong or unknown to iconv but common in mail.  Latin-1
   labelled text is read as its superset Windows-1252, as browsers and
   mail clients do. */
static const struct {
	const char *label, *name;
} charset_aliases[] = {
    {"iso-8859-1", "WINDOWS-1252"},
    {"latin1", "WINDOWS-1252"},
    {"us-ascii", "WINDOWS-1252"},
    {"ascii", "WINDOWS-1252"},
    {"ks_c_5601-1987", "CP949"},
    {"gb2312", "GB18030"},
    {"gbk", "GB18030"},
    {"x-gbk", "GB18030"},
    {"utf8", "UTF-8"},
    {"x-unknown", "WINDOWS-1252"},
    {"unknown-8bit", "WINDOWS-1252"},
    {"x-user-defined", "WINDOWS-1252"},
    {"cp1252", "WINDOWS-1252"},
    {"shift-jis", "SHIFT_JIS"},
    {"x-sjis", "SHIFT_JIS"},
    {"iso-2022-jp-3", "ISO-2022-JP"},
};

int mime_charset_is_utf8(const char *charset)
{
	return charset == NULL || *charset == '\0' || !strcasecmp(charset, "utf-8") ||
	       !strcasecmp(charset, "utf8") || !strcasecmp(charset, "us-ascii") ||
	       !strcasecmp(charset, "ascii");
}

static const char *charset_resolve(const char *charset)
{
	for (size_t i = 0; i < sizeof(charset_aliases) / sizeof(charset_aliases[0]); i++)
		if (!strcasecmp(charset, charset_aliases[i].label))
			return charset_aliases[i].name;
	return charset;
}

static void append_replacement(struct buf *out)
{
	buf_append(out, "\xef\xbf\xbd", 3);
}

/* Appends UTF-8 text with invalid sequences replaced by U+FFFD. */
static void utf8_append_replacing(struct buf *out, const unsigned char *s, size_t len)
{
	const unsigned char *end = s + len, *run = s;
	while (s < end) {
		size_t n = utf8_seq_len(s, (size_t)(end - s));
		if (n > 0) {
			s += n;
			continue;
		}
		buf_append(out, run, (size_t)(s - run));
		append_replacement(out);
		run = ++s;
	}
	buf_append(out, run, (size_t)(s - run));
}

/* Converts in through cd onto out.  An invalid or truncated sequence
   becomes U+FFFD when replace is set; otherwise it fails the conversion:
   -1, with out as it was. */
static int charset_run(iconv_t cd, struct buf *out, const unsigned char *in, size_t len, bool replace)
{
	size_t start = out->len;
	char *src = (char *)in;
	size_t left = len;
	while (left > 0) {
		buf_reserve(out, left * 2 + 16);
		char *dst = out->data + out->len;
		size_t room = out->cap - out->len - 1;
		size_t r = iconv(cd, &src, &left, &dst, &room);
		out->len = (size_t)(dst - out->data);
		if (r != (size_t)-1)
			break;
		if (errno == E2BIG)
			continue;
		if (!replace) {
			out->len = start;
			out->data[start] = '\0';
			return -1;
		}
		/* EILSEQ or EINVAL (truncated input): replace one byte. */
		append_replacement(out);
		src++;
		left--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	/* Flush any shift state (ISO-2022-JP; the closing "-" of UTF-7). */
	buf_reserve(out, 16);
	char *dst = out->data + out->len;
	size_t room = out->cap - out->len - 1;
	iconv(cd, NULL, NULL, &dst, &room);
	out->len = (size_t)(dst - out->data);
	out->data[out->len] = '\0';
	return 0;
}

static int charset_iconv(struct buf *out, const char *name, const unsigned char *in, size_t len)
{
	iconv_t cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return -1;
	size_t start = out->len;
	charset_run(cd, out, in, len, true);
	iconv_close(cd);
	/* glibc converts UTF-8 under another name ("utf-8//", "UTF8x") without
	   refusing every invalid sequence: 5-byte forms pass through. */
	if (!utf8_valid(out->data + start, out->len - start)) {
		size_t n = out->len - start;
		unsigned char *copy = xmalloc(n);
		memcpy(copy, out->data + start, n);
		buf_truncate(out, start);
		utf8_append_replacing(out, copy, n);
		free(copy);
	}
	return 0;
}

int mime_charset_convert(struct buf *out, const char *to, const char *from, const void *in, size_t len)
{
	iconv_t cd = iconv_open(to, from);
	if (cd == (iconv_t)-1)
		return -1;
	int rc = charset_run(cd, out, in, len, false);
	iconv_close(cd);
	return rc;
}

int mime_charset_to_utf8(struct buf *out, const char *charset, const void *in, size_t len)
{
	const unsigned char *s = in;
	if (charset == NULL || *charset == '\0')
		charset = "us-ascii";
	/* Declared UTF-8 or ASCII that is valid UTF-8 is copied as is. */
	if (mime_charset_is_utf8(charset) && utf8_valid(s, len)) {
		buf_append(out, s, len);
		return 0;
	}
	if (!strcasecmp(charset, "utf-8") || !strcasecmp(charset, "utf8")) {
		utf8_append_replacing(out, s, len);
		return 0;
	}
	return charset_iconv(out, charset_resolve(charset), s, len);
}

void mime_utf8_sanitize(struct buf *out, const void *in, size_t len)
{
	if (utf8_valid(in, len)) {
		buf_append(out, in, len);
		return;
	}
	if (charset_iconv(out, "WINDOWS-1252", in, len) < 0)
		utf8_append_replacing(out, in, len);
}

int mime_charset_known(const char *charset)
{
	if (mime_charset_is_utf8(charset))
		return 1;
	iconv_t cd = iconv_open("UTF-8", charset_resolve(charset));
	if (cd == (iconv_t)-1)
		return 0;
	iconv_close(cd);
	return 1;
}
