/* MTA-STS records, policies and MX patterns (RFC 8461; see mta_sts.h). */
#include "relay/mta_sts.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *mta_sts_mode_name(enum mta_sts_mode mode)
{
	switch (mode) {
	case MTA_STS_MODE_TESTING:
		return "testing";
	case MTA_STS_MODE_ENFORCE:
		return "enforce";
	case MTA_STS_MODE_NONE:
		break;
	}
	return "none";
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_wsp(const char *s)
{
	while (is_wsp(*s))
		s++;
	return s;
}

/* ---- the TXT record (3.1) ---- */

/* "v=STSv1" then *WSP ";": the record is meant as MTA-STS.  Returns the
   text after the ';', or NULL. */
static const char *txt_after_version(const char *text)
{
	if (strncmp(text, "v=STSv1", 7) != 0)
		return NULL;
	const char *p = skip_wsp(text + 7);
	return *p == ';' ? p + 1 : NULL;
}

/* sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."),
   the same for the policy's extension keys (3.2). */
static size_t ext_name_len(const char *s, size_t max)
{
	if (!isalnum((unsigned char)s[0]))
		return 0;
	size_t n = 1;
	while (n < max && (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '-' || s[n] == '.'))
		n++;
	return n <= 32 ? n : 0;
}

/* sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): no ';', '=' or space. */
static bool txt_ext_char(char c)
{
	return c >= 0x21 && c <= 0x7e && c != ';' && c != '=';
}

int mta_sts_txt_parse(const char *text, char id_r[MTA_STS_ID_MAX + 1], const char **error_r)
{
	const char *p = txt_after_version(text);
	if (p == NULL)
		return 0;
	id_r[0] = '\0';
	for (;;) {
		p = skip_wsp(p);
		if (*p == '\0')
			break;
		size_t nl = ext_name_len(p, strlen(p));
		if (nl == 0 || p[nl] != '=') {
			*error_r = "malformed field";
			return -1;
		}
		const char *v = p + nl + 1, *e = v;
		bool id = nl == 2 && !memcmp(p, "id", 2);
		while (id ? isalnum((unsigned char)*e) : txt_ext_char(*e))
			e++;
		if (e == v || (id && e - v > MTA_STS_ID_MAX)) {
			*error_r = id ? "id= is not 1 to 32 letters and digits" : "empty field value";
			return -1;
		}
		if (id && id_r[0] == '\0') {
			memcpy(id_r, v, (size_t)(e - v));
			id_r[e - v] = '\0';
		}
		p = skip_wsp(e);
		if (*p == ';')
			p++;
		else if (*p != '\0') {
			*error_r = id ? "id= is not 1 to 32 letters and digits" : "malformed field";
			return -1;
		}
	}
	if (id_r[0] == '\0') {
		*error_r = "no id=";
		return -1;
	}
	return 1;
}

int mta_sts_txt_select(char *const *records, size_t count, char id_r[MTA_STS_ID_MAX + 1],
		       const char **error_r)
{
	const char *only = NULL;
	size_t n = 0;
	*error_r = NULL;
	for (size_t i = 0; i < count; i++) {
		if (txt_after_version(records[i]) != NULL) {
			only = records[i];
			n++;
		}
	}
	if (n == 0)
		return 0;
	if (n > 1) {
		*error_r = "more than one v=STSv1 record";
		return 0;
	}
	return mta_sts_txt_parse(only, id_r, error_r) == 1 ? 1 : 0;
}

/* ---- the policy (3.2) ---- */

void mta_sts_policy_clear(struct mta_sts_policy *p)
{
	for (size_t i = 0; i < p->nmx; i++)
		free(p->mx[i]);
	free(p->mx);
	memset(p, 0, sizeof(*p));
}

void mta_sts_policy_copy(struct mta_sts_policy *dst, const struct mta_sts_policy *src)
{
	*dst = *src;
	dst->mx = xcalloc(src->nmx + 1, sizeof(char *));
	for (size_t i = 0; i < src->nmx; i++)
		dst->mx[i] = xstrdup(src->mx[i]);
}

/* A label: let-dig [ldh-str], 63 octets at most (RFC 5321 4.1.2). */
static size_t label_len(const char *s, size_t len)
{
	size_t n = 0;
	while (n < len && (isalnum((unsigned char)s[n]) || s[n] == '-'))
		n++;
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	return n;
}

/* sts-policy-mx-value = ["*."] Domain.  Returns the pattern in lowercase
   without a trailing dot (caller frees), or NULL. */
static char *mx_pattern(const char *v, size_t len)
{
	if (len > 0 && v[len - 1] == '.')
		len--;
	size_t start = len >= 2 && v[0] == '*' && v[1] == '.' ? 2 : 0;
	if (len - start > 253)
		return NULL;
	for (size_t i = start;;) {
		size_t n = label_len(v + i, len - i);
		if (n == 0)
			return NULL;
		i += n;
		if (i == len)
			break;
		if (v[i] != '.')
			return NULL;
		i++;
	}
	char *out = xstrndup(v, len);
	for (char *c = out; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	return out;
}

struct policy_fields {
	bool version, mode, max_age;
};

/* One "key: value" line (value without the WSP around it). */
static int policy_field(struct mta_sts_policy *p, struct policy_fields *seen, const char *key, size_t klen,
			const char *v, size_t vlen, const char **error_r)
{
#define KEY_IS(s) (klen == sizeof(s) - 1 && !memcmp(key, s, klen))
	if (KEY_IS("mx")) {
		if (p->nmx >= MTA_STS_MX_MAX) {
			*error_r = "too many mx fields";
			return -1;
		}
		char *pattern = mx_pattern(v, vlen);
		if (pattern == NULL) {
			*error_r = "malformed mx pattern";
			return -1;
		}
		p->mx = xreallocarray(p->mx, p->nmx + 2, sizeof(char *));
		p->mx[p->nmx++] = pattern;
		p->mx[p->nmx] = NULL;
	} else if (KEY_IS("version")) {
		if (!seen->version && (vlen != 5 || memcmp(v, "STSv1", 5) != 0)) {
			*error_r = "version is not STSv1";
			return -1;
		}
		seen->version = true;
	} else if (KEY_IS("mode")) {
		if (seen->mode)
			return 0;
		if (vlen == 7 && !memcmp(v, "enforce", 7))
			p->mode = MTA_STS_MODE_ENFORCE;
		else if (vlen == 7 && !memcmp(v, "testing", 7))
			p->mode = MTA_STS_MODE_TESTING;
		else if (vlen == 4 && !memcmp(v, "none", 4))
			p->mode = MTA_STS_MODE_NONE;
		else {
			*error_r = "mode is not enforce, testing or none";
			return -1;
		}
		seen->mode = true;
	} else if (KEY_IS("max_age")) {
		if (seen->max_age)
			return 0;
		uint64_t n = 0;
		for (size_t i = 0; i < vlen; i++) {
			if (!isdigit((unsigned char)v[i]) || i >= 10) {
				*error_r = "max_age is not 1 to 10 digits";
				return -1;
			}
			n = n * 10 + (uint64_t)(v[i] - '0');
		}
		p->max_age = n > MTA_STS_MAX_AGE_MAX ? MTA_STS_MAX_AGE_MAX : (uint32_t)n;
		seen->max_age = true;
	} else if (ext_name_len(key, klen) != klen) {
		*error_r = "malformed key";
		return -1;
	}
	return 0;
#undef KEY_IS
}

/* Splits one line into key and value; 0, or -1 when it is not a field. */
static int policy_line(const char *line, size_t len, const char **key_r, size_t *klen_r, const char **v_r,
		       size_t *vlen_r)
{
	const char *colon = memchr(line, ':', len);
	if (colon == NULL || colon == line)
		return -1;
	const char *v = colon + 1, *end = line + len;
	while (v < end && is_wsp(*v))
		v++;
	while (end > v && is_wsp(end[-1]))
		end--;
	for (const char *c = v; c < end; c++)
		if ((unsigned char)*c < 0x20 && *c != '\t')
			return -1;
	if (v == end)
		return -1;
	*key_r = line;
	*klen_r = (size_t)(colon - line);
	*v_r = v;
	*vlen_r = (size_t)(end - v);
	return 0;
}

int mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *p, const char **error_r)
{
	memset(p, 0, sizeof(*p));
	struct policy_fields seen = {false, false, false};
	if (len > MTA_STS_POLICY_SIZE_MAX) {
		*error_r = "policy too large";
		return -1;
	}
	if (len == 0) {
		*error_r = "empty policy";
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "NUL in policy";
		return -1;
	}
	size_t pos = 0;
	while (pos < len) {
		const char *line = text + pos;
		const char *lf = memchr(line, '\n', len - pos);
		size_t llen = lf != NULL ? (size_t)(lf - line) : len - pos;
		pos += llen + (lf != NULL);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			continue; /* blank lines (a final empty line) are not fields */
		const char *key, *v;
		size_t klen, vlen;
		if (policy_line(line, llen, &key, &klen, &v, &vlen) < 0) {
			*error_r = "line is not key: value";
			goto fail;
		}
		if (policy_field(p, &seen, key, klen, v, vlen, error_r) < 0)
			goto fail;
	}
	if (!seen.version || !seen.mode || !seen.max_age) {
		*error_r = !seen.version ? "no version" : !seen.mode ? "no mode" : "no max_age";
		goto fail;
	}
	if (p->mode != MTA_STS_MODE_NONE && p->nmx == 0) {
		*error_r = "no mx";
		goto fail;
	}
	return 0;
fail:
	mta_sts_policy_clear(p);
	return -1;
}

/* ---- MX patterns (4.1) ---- */

static size_t name_len(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

bool mta_sts_pattern_match(const char *pattern, const char *host)
{
	size_t plen = name_len(pattern), hlen = name_len(host);
	if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* the leftmost label of host, then exactly the rest */
		const char *dot = memchr(host, '.', hlen);
		if (dot == NULL || dot == host)
			return false;
		size_t rest = hlen - (size_t)(dot + 1 - host);
		return rest == plen - 2 && rest > 0 && !strncasecmp(dot + 1, pattern + 2, rest);
	}
	return plen == hlen && plen > 0 && !strncasecmp(pattern, host, plen);
}

bool mta_sts_policy_match(const struct mta_sts_policy *p, const char *host)
{
	for (size_t i = 0; i < p->nmx; i++)
		if (mta_sts_pattern_match(p->mx[i], host))
			return true;
	return false;
}

/* ---- the cache file ---- */

char *mta_sts_cache_format(const struct mta_sts_policy *p, size_t *len_r)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "id: %s\nfetched: %" PRId64 "\nversion: STSv1\nmode: %s\nmax_age: %" PRIu32 "\n",
		   p->id, p->fetched, mta_sts_mode_name(p->mode), p->max_age);
	for (size_t i = 0; i < p->nmx; i++)
		buf_printf(&b, "mx: %s\n", p->mx[i]);
	buf_append(&b, "", 0);
	*len_r = b.len;
	return buf_steal(&b);
}

/* One header line of the cache file: "NAME: value\n"; the value's start
   and length, or -1. */
static int cache_header(const char **pos, const char *end, const char *name, const char **v_r, size_t *len_r)
{
	size_t nlen = strlen(name);
	const char *lf = memchr(*pos, '\n', (size_t)(end - *pos));
	if (lf == NULL || (size_t)(lf - *pos) <= nlen + 2 || memcmp(*pos, name, nlen) != 0 ||
	    memcmp(*pos + nlen, ": ", 2) != 0)
		return -1;
	*v_r = *pos + nlen + 2;
	*len_r = (size_t)(lf - *v_r);
	*pos = lf + 1;
	return 0;
}

int mta_sts_cache_parse(const char *text, size_t len, struct mta_sts_policy *p, const char **error_r)
{
	const char *pos = text, *end = text + len, *id, *fetched;
	size_t idlen, flen;
	memset(p, 0, sizeof(*p));
	if (cache_header(&pos, end, "id", &id, &idlen) < 0 || idlen > MTA_STS_ID_MAX ||
	    cache_header(&pos, end, "fetched", &fetched, &flen) < 0 || flen == 0 || flen > 18) {
		*error_r = "malformed cache header";
		return -1;
	}
	int64_t when = 0;
	for (size_t i = 0; i < flen; i++) {
		if (!isdigit((unsigned char)fetched[i])) {
			*error_r = "malformed cache header";
			return -1;
		}
		when = when * 10 + (fetched[i] - '0');
	}
	for (size_t i = 0; i < idlen; i++) {
		if (!isalnum((unsigned char)id[i])) {
			*error_r = "malformed cache header";
			return -1;
		}
	}
	if (mta_sts_policy_parse(pos, (size_t)(end - pos), p, error_r) < 0)
		return -1;
	memcpy(p->id, id, idlen);
	p->id[idlen] = '\0';
	p->fetched = when;
	return 0;
}

bool mta_sts_policy_fresh(const struct mta_sts_policy *p, int64_t now)
{
	return now < p->fetched + (int64_t)p->max_age;
}
