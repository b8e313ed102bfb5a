/* The tag-list syntax of DKIM signatures and key records (RFC 6376 3.2). */
#include "trust/dkim.h"

#include <string.h>

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnumpunc(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

int dkim_tags_parse(struct dkim_tags *tags, const char *text, size_t len, const char **error_r)
{
	const char *p = text, *end = text + len;
	tags->count = 0;
	for (;;) {
		while (p < end && is_fws(*p))
			p++;
		if (p == end) {
			/* "a=1;" ends with an empty spec: allowed once, at the
			   end; an empty list is no list */
			if (tags->count == 0) {
				*error_r = "empty tag list";
				return -1;
			}
			return 0;
		}
		const char *name = p;
		if (!is_alpha(*p)) {
			*error_r = "bad tag name";
			return -1;
		}
		while (p < end && is_alnumpunc(*p))
			p++;
		size_t name_len = (size_t)(p - name);
		while (p < end && is_fws(*p))
			p++;
		if (p == end || *p != '=') {
			*error_r = "tag without '='";
			return -1;
		}
		p++;
		while (p < end && is_fws(*p))
			p++;
		const char *value = p;
		while (p < end && *p != ';') {
			/* VALCHAR (%x21-3A / %x3C-7E) and folding whitespace */
			unsigned char c = (unsigned char)*p;
			if (!is_fws(*p) && (c < 0x21 || c > 0x7e)) {
				*error_r = "bad character in a tag value";
				return -1;
			}
			p++;
		}
		const char *vend = p;
		while (vend > value && is_fws(vend[-1]))
			vend--;
		for (unsigned int i = 0; i < tags->count; i++) {
			if (tags->tag[i].name_len == name_len && !memcmp(tags->tag[i].name, name, name_len)) {
				*error_r = "duplicate tag";
				return -1;
			}
		}
		if (tags->count == DKIM_MAX_TAGS) {
			*error_r = "too many tags";
			return -1;
		}
		tags->tag[tags->count++] = (struct dkim_tag){name, name_len, value, (size_t)(vend - value)};
		if (p == end)
			return 0;
		p++; /* ';' */
	}
}

const struct dkim_tag *dkim_tags_get(const struct dkim_tags *tags, const char *name)
{
	size_t len = strlen(name);
	for (unsigned int i = 0; i < tags->count; i++)
		if (tags->tag[i].name_len == len && !memcmp(tags->tag[i].name, name, len))
			return &tags->tag[i];
	return NULL;
}
