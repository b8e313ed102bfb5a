/* Charset conversion (RFC 2046 section 4.1.2) via iconv(3). */
#include "mime/charset.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <iconv.h>
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
	{ "iso-8859-1", "WINDOWS-1252" },
	{ "latin1", "WINDOWS-1252" },
	{ "us-ascii", "WINDOWS-1252" },
	{ "ascii", "WINDOWS-1252" },
	{ "ks_c_5601-1987", "CP949" },
	{ "gb2312", "GB18030" },
	{ "gbk", "GB18030" },
	{ "x-gbk", "GB18030" },
	{ "utf8", "UTF-8" },
	{ "x-unknown", "WINDOWS-1252" },
	{ "unknown-8bit", "WINDOWS-1252" },
	{ "x-user-defined", "WINDOWS-1252" },
	{ "cp1252", "WINDOWS-1252" },
	{ "shift-jis", "SHIFT_JIS" },
	{ "x-sjis", "SHIFT_JIS" },
	{ "iso-2022-jp-3", "ISO-2022-JP" },
};

int mime_charset_is_utf8(const char *charset)
{
	return charset == NULL || *charset == '\0' || !strcasecmp(charset, "utf-8") ||
	       !strcasecmp(charset, "utf8") || !strcasecmp(charset, "us-ascii") ||
	       !strcasecmp(charset, "ascii");
}

size_t mime_utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t min, cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2; min = 0x80; cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3; min = 0x800; cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4; min = 0x10000; cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int mime_utf8_valid(const void *in, size_t len)
{
	const unsigned char *s = in, *end = s + len;
	while (s < end) {
		/* Skip ASCII eight bytes at a time. */
		while (end - s >= 8) {
			uint64_t w;
			memcpy(&w, s, 8);
			if (w & 0x8080808080808080ULL)
				break;
			s += 8;
		}
		if (s >= end)
			break;
		size_t n = mime_utf8_seq_len(s, (size_t)(end - s));
		if (n == 0)
			return 0;
		s += n;
	}
	return 1;
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
		size_t n = mime_utf8_seq_len(s, (size_t)(end - s));
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

static int charset_iconv(struct buf *out, const char *name, const unsigned char *in, size_t len)
{
	iconv_t cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return -1;
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
		/* EILSEQ or EINVAL (truncated input): replace one byte. */
		append_replacement(out);
		src++;
		left--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	/* Flush any shift state (ISO-2022-JP). */
	buf_reserve(out, 16);
	char *dst = out->data + out->len;
	size_t room = out->cap - out->len - 1;
	iconv(cd, NULL, NULL, &dst, &room);
	out->len = (size_t)(dst - out->data);
	out->data[out->len] = '\0';
	iconv_close(cd);
	/* glibc converts UTF-8 under another name ("utf-8//", "UTF8x") without
	   refusing every invalid sequence: 5-byte forms pass through. */
	if (!mime_utf8_valid(out->data + start, out->len - start)) {
		size_t n = out->len - start;
		unsigned char *copy = xmalloc(n);
		memcpy(copy, out->data + start, n);
		buf_truncate(out, start);
		utf8_append_replacing(out, copy, n);
		free(copy);
	}
	return 0;
}

int mime_charset_to_utf8(struct buf *out, const char *charset, const void *in, size_t len)
{
	const unsigned char *s = in;
	if (charset == NULL || *charset == '\0')
		charset = "us-ascii";
	/* Declared UTF-8 or ASCII that is valid UTF-8 is copied as is. */
	if (mime_charset_is_utf8(charset) && mime_utf8_valid(s, len)) {
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
	if (mime_utf8_valid(in, len)) {
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
