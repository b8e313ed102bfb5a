/* RFC 5321 path parsing (section 4.1.2, limits 4.5.3.1) with RFC 6531
   UTF-8 addresses.  Strict: this is the boundary where the SMTP server
   turns text into a typed address. */
#include "mime/path.h"
#include "mime/address.h"
#include "mime/mime_private.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct pcursor {
	const char *s, *end;
	unsigned int flags; /* enum mime_path_parse_flags */
	int utf8_seen;
};

/* RFC 5322 atext (strchr() would find the NUL too). */
static int is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_let_dig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A UTF-8 sequence at c->s when allowed; returns its length or 0. */
static size_t utf8_at(struct pcursor *c)
{
	if (!(c->flags & MIME_PATH_ALLOW_UTF8) || (unsigned char)*c->s < 0x80)
		return 0;
	size_t n = utf8_seq_len((const unsigned char *)c->s, (size_t)(c->end - c->s));
	if (n > 0)
		c->utf8_seen = 1;
	return n;
}

/* Dot-string = Atom *("." Atom) */
static int parse_dot_string(struct pcursor *c, struct buf *out)
{
	int atom_len = 0;
	while (c->s < c->end) {
		size_t n;
		if (is_atext((unsigned char)*c->s)) {
			n = 1;
		} else if (*c->s == '.') {
			if (atom_len == 0)
				return -1;
			atom_len = -1;
			n = 1;
		} else if ((n = utf8_at(c)) == 0) {
			break;
		}
		buf_append(out, c->s, n);
		c->s += n;
		atom_len++;
	}
	return atom_len > 0 ? 0 : -1;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE */
static int parse_quoted(struct pcursor *c, struct buf *out)
{
	c->s++;
	while (c->s < c->end) {
		unsigned char ch = (unsigned char)*c->s;
		size_t n;
		if (ch == '"') {
			c->s++;
			return 0;
		}
		if (ch == '\\') {
			if (c->end - c->s < 2 || (unsigned char)c->s[1] < 32 || (unsigned char)c->s[1] > 126)
				return -1;
			buf_append_char(out, c->s[1]);
			c->s += 2;
		} else if (ch >= 32 && ch <= 126) {
			buf_append_char(out, (char)ch);
			c->s++;
		} else if ((n = utf8_at(c)) > 0) {
			buf_append(out, c->s, n);
			c->s += n;
		} else {
			return -1;
		}
	}
	return -1;
}

/* Address literal: IPv4, "IPv6:" address, or a general literal. */
static int parse_literal(struct pcursor *c, struct buf *out)
{
	const char *close = memchr(c->s, ']', (size_t)(c->end - c->s));
	if (close == NULL || close - c->s > 100)
		return -1;
	char lit[128];
	size_t n = (size_t)(close - c->s - 1);
	memcpy(lit, c->s + 1, n);
	lit[n] = '\0';
	/* The checks below read lit as a C string: a NUL would hide the
	   rest from them. */
	if (strlen(lit) != n)
		return -1;
	unsigned char addr[16];
	int ok;
	if (!strncasecmp(lit, "IPv6:", 5)) {
		ok = inet_pton(AF_INET6, lit + 5, addr) == 1;
	} else if (strchr(lit, ':') == NULL) {
		ok = inet_pton(AF_INET, lit, addr) == 1;
	} else {
		/* General-address-literal = Standardized-tag ":" 1*dcontent */
		const char *colon = strchr(lit, ':');
		ok = colon > lit && colon[1] != '\0';
		for (const char *p = lit; ok && p < colon; p++)
			ok = is_let_dig((unsigned char)*p) || *p == '-';
		for (const char *p = colon + 1; ok && *p != '\0'; p++)
			ok = (*p >= 33 && *p <= 90) || (*p >= 94 && *p <= 126);
	}
	if (!ok)
		return -1;
	buf_append(out, c->s, n + 2);
	c->s = close + 1;
	return 0;
}

/* Domain = sub-domain *("." sub-domain), labels of letters, digits and
   hyphens (U-labels with SMTPUTF8), or an address literal. */
static int parse_domain(struct pcursor *c, struct buf *out, int *literal_r)
{
	*literal_r = 0;
	if (c->s < c->end && *c->s == '[') {
		*literal_r = 1;
		return parse_literal(c, out);
	}
	size_t label = 0;
	char prev = 0;
	while (c->s < c->end) {
		unsigned char ch = (unsigned char)*c->s;
		size_t n = 1;
		if (ch == '.') {
			if (label == 0 || prev == '-')
				return -1;
			label = 0;
		} else if (is_let_dig(ch) || (ch == '-' && label > 0)) {
			label++;
		} else if ((n = utf8_at(c)) > 0) {
			label += n;
		} else {
			break;
		}
		if (label > 63)
			return -1;
		prev = (char)ch;
		buf_append(out, c->s, n);
		c->s += n;
	}
	return label > 0 && prev != '-' ? 0 : -1;
}

/* A-d-l = At-domain *( "," At-domain ) ":" */
static int parse_route(struct pcursor *c, struct buf *route)
{
	for (;;) {
		int lit;
		buf_append_char(route, *c->s++);
		if (parse_domain(c, route, &lit) < 0 || c->s >= c->end)
			return -1;
		if (*c->s == ':') {
			c->s++;
			return 0;
		}
		if (*c->s != ',' || c->end - c->s < 2 || c->s[1] != '@')
			return -1;
		buf_append_char(route, *c->s++);
	}
}

static int path_fail(const char **error_r, const char *error)
{
	*error_r = error;
	return -1;
}

/* Local-part and "@" Domain (or Postmaster alone). */
static int parse_mailbox(struct pool *pool, struct pcursor *c, struct mime_path *p, const char **error_r)
{
	struct buf local = BUF_INIT, domain = BUF_INIT;
	const char *start = c->s;
	int r = -1, lit = 0;
	if (c->s < c->end && *c->s == '"') {
		p->flags |= MIME_PATH_QUOTED;
		r = parse_quoted(c, &local);
	} else {
		r = parse_dot_string(c, &local);
	}
	if (r < 0) {
		*error_r = "invalid local part";
	} else if (c->s - start > MIME_PATH_MAX_LOCAL) {
		*error_r = "local part too long";
		r = -1;
	} else if (c->s < c->end && *c->s == '@') {
		c->s++;
		const char *dstart = c->s;
		if (parse_domain(c, &domain, &lit) < 0) {
			*error_r = "invalid domain";
			r = -1;
		} else if (c->s - dstart > MIME_PATH_MAX_DOMAIN) {
			*error_r = "domain too long";
			r = -1;
		}
	} else if ((c->flags & MIME_PATH_ALLOW_POSTMASTER) && !strcasecmp(buf_cstr(&local), "postmaster") &&
		   !(p->flags & MIME_PATH_QUOTED) && p->route == NULL) {
		p->flags |= MIME_PATH_POSTMASTER;
	} else {
		*error_r = "missing domain";
		r = -1;
	}
	if (r == 0) {
		p->local = pool_strndup(pool, buf_cstr(&local), local.len);
		if (domain.len > 0)
			p->domain = pool_strndup(pool, buf_cstr(&domain), domain.len);
		if (lit)
			p->flags |= MIME_PATH_LITERAL;
	}
	buf_free(&local);
	buf_free(&domain);
	return r;
}

int mime_path_parse(struct pool *pool, const char *in, size_t len, unsigned int flags,
		    struct mime_path *path_r, size_t *consumed_r, const char **error_r)
{
	struct pcursor c = {in, in + len, flags, 0};
	memset(path_r, 0, sizeof(*path_r));
	int angle = len > 0 && in[0] == '<';
	if (!angle && !(flags & MIME_PATH_ALLOW_NO_ANGLE))
		return path_fail(error_r, "path must be enclosed in <>");
	c.s += angle;
	if (angle && c.s < c.end && *c.s == '>') {
		if (!(flags & MIME_PATH_ALLOW_NULL))
			return path_fail(error_r, "null path not allowed here");
		path_r->local = "";
		path_r->flags = MIME_PATH_NULL;
		*consumed_r = 2;
		return 0;
	}
	if (c.s < c.end && *c.s == '@') {
		struct buf route = BUF_INIT;
		int r = parse_route(&c, &route);
		path_r->route = pool_strndup(pool, buf_cstr(&route), route.len);
		buf_free(&route);
		if (r < 0)
			return path_fail(error_r, "invalid source route");
		path_r->flags |= MIME_PATH_HAS_ROUTE;
	}
	if (parse_mailbox(pool, &c, path_r, error_r) < 0)
		return -1;
	if (angle) {
		if (c.s >= c.end || *c.s != '>')
			return path_fail(error_r, "invalid character in path");
		c.s++;
	} else if (c.s < c.end && *c.s != ' ') {
		return path_fail(error_r, "invalid character in path");
	}
	/* The limit counts the angle brackets. */
	if ((size_t)(c.s - in) + (angle ? 0 : 2) > MIME_PATH_MAX_PATH)
		return path_fail(error_r, "path too long");
	if (c.utf8_seen)
		path_r->flags |= MIME_PATH_UTF8;
	*consumed_r = (size_t)(c.s - in);
	return 0;
}

int mime_path_check_address(const char *address, unsigned int flags, const char **error_r)
{
	size_t len = strlen(address);
	if (len == 0) {
		if (flags & MIME_PATH_ALLOW_NULL)
			return 0;
		return path_fail(error_r, "empty address");
	}
	if (address[0] == '<')
		return path_fail(error_r, "address must not be enclosed in <>");
	struct pool *pool = pool_create(512);
	const char *path = pool_printf(pool, "<%s>", address);
	struct mime_path p;
	size_t used;
	flags &= ~(unsigned int)(MIME_PATH_ALLOW_NULL | MIME_PATH_ALLOW_NO_ANGLE);
	int rc = mime_path_parse(pool, path, len + 2, flags, &p, &used, error_r);
	if (rc == 0 && used != len + 2)
		rc = path_fail(error_r, "invalid character in path");
	pool_destroy(&pool);
	return rc;
}

void mime_path_format(struct buf *out, const struct mime_path *path)
{
	buf_append_char(out, '<');
	if (!(path->flags & MIME_PATH_NULL)) {
		struct mime_address a = {.local = path->local, .domain = path->domain};
		mime_address_format_spec(out, &a);
	}
	buf_append_char(out, '>');
}

/* RFC 1123 2.1 host name: labels of letters, digits and inner hyphens. */
static int domain_is_ldh(const char *d)
{
	size_t label = 0;
	char prev = '.';
	for (; *d != '\0'; d++) {
		if (*d == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
		} else if (is_let_dig((unsigned char)*d) || (*d == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
		prev = *d;
	}
	return label > 0 && prev != '-';
}

int mime_domain_to_ascii(struct pool *pool, const char *domain, const char **ascii_r, const char **error_r)
{
	if (!utf8_has_8bit(domain, strlen(domain)) || domain[0] == '[') {
		char *d = pool_strdup(pool, domain);
		for (char *p = d; *p != '\0'; p++)
			*p = (char)mime_lower((unsigned char)*p);
		*ascii_r = d;
		return 0;
	}
	char *out = NULL;
	int rc = idn2_to_ascii_8z(domain, &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK)
		rc = idn2_to_ascii_8z(domain, &out, IDN2_NFC_INPUT | IDN2_TRANSITIONAL);
	if (rc != IDN2_OK) {
		*error_r = idn2_strerror(rc);
		return -1;
	}
	/* UTS #46 maps some characters to ASCII that is not allowed in a host
	   name ("\xe2\x92\xac" becomes "(q)").  IDN2_USE_STD3_ASCII_RULES
	   would drop them instead, silently naming another domain. */
	if (!domain_is_ldh(out)) {
		idn2_free(out);
		*error_r = "domain maps to an invalid host name";
		return -1;
	}
	*ascii_r = pool_strdup(pool, out);
	idn2_free(out);
	return 0;
}

int mime_domain_to_utf8(struct pool *pool, const char *domain, const char **utf8_r, const char **error_r)
{
	char *out = NULL;
	int rc = idn2_to_unicode_8z8z(domain, &out, 0);
	if (rc != IDN2_OK) {
		*error_r = idn2_strerror(rc);
		return -1;
	}
	*utf8_r = pool_strdup(pool, out);
	idn2_free(out);
	return 0;
}
