/* Sender Policy Framework, RFC 7208 (see spf.h): check_host() of section
   4 over a cache of DNS answers, restarted whenever answers arrive. */
#include "trust/spf.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SPF_MAX_DNS_TERMS 10 /* 4.6.4 */
#define SPF_MAX_VOID 2
#define SPF_MAX_NAMES 10 /* MX hosts per mx, PTR names per ptr */
#define SPF_MAX_DOMAIN 253

/* Internal outcomes of an evaluation step besides a result: answers
   needed, or a macro's syntax error. */
#define PENDING (-1)
#define SYNTAX (-2)

struct answer {
	enum spf_rr_type type;
	char *name;
	enum spf_dns_status status;
	char **rrs;
	size_t n;
};

struct spf {
	int family; /* 4 or 6 */
	unsigned char ip[16];
	char *local, *sender_domain, *helo, *receiver;
	const char *domain; /* the identity checked: sender_domain or helo */

	struct answer *answers;
	size_t nanswers;
	struct spf_lookup *pending;
	size_t npending;

	/* per run */
	int dns_terms, voids;
	const char *problem;     /* static text for permerror/temperror */
	char *exp_spec, *exp_of; /* exp= of the record that said fail, its domain */

	bool done;
	enum spf_result result;
	char *explanation;
};

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = {"none",     "neutral",   "pass",     "fail",
					    "softfail", "temperror", "permerror"};
	return names[r];
}

static void lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
}

/* ---- the answer cache ---- */

/* A name a query can carry: labels of 1 to 63 octets, 253 in all. */
static bool dns_name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;
	if (len == 0 || len > SPF_MAX_DOMAIN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.')
			label++;
		else if (label == 0 || label > 63)
			return false;
		else
			label = 0;
	}
	return label > 0 && label <= 63;
}

static const struct answer *find_answer(const struct spf *spf, enum spf_rr_type type, const char *name)
{
	for (size_t i = 0; i < spf->nanswers; i++)
		if (spf->answers[i].type == type && !strcmp(spf->answers[i].name, name))
			return &spf->answers[i];
	return NULL;
}

/* The name as the cache keeps it: lowercase, without a final dot. */
static char *cache_key(const char *name)
{
	char *key = xstrdup(name);
	lower(key);
	size_t len = strlen(key);
	if (len > 0 && key[len - 1] == '.')
		key[len - 1] = '\0';
	return key;
}

/* The answer for (type, name), or NULL after noting it as needed. */
static const struct answer *lookup(struct spf *spf, enum spf_rr_type type, const char *name)
{
	char *key = cache_key(name);
	const struct answer *a = find_answer(spf, type, key);
	if (a != NULL) {
		free(key);
		return a;
	}
	if (!dns_name_ok(key)) {
		/* a name no DNS query can carry (an empty or long label, often
		   made by a macro) does not exist (4.3, by analogy) */
		spf_answer(spf, type, key, SPF_DNS_NXDOMAIN, NULL, 0);
		a = find_answer(spf, type, key);
		free(key);
		return a;
	}
	for (size_t i = 0; i < spf->npending; i++) {
		if (spf->pending[i].type == type && !strcmp(spf->pending[i].name, key)) {
			free(key);
			return NULL;
		}
	}
	spf->pending = xreallocarray(spf->pending, spf->npending + 1, sizeof(*spf->pending));
	spf->pending[spf->npending++] = (struct spf_lookup){type, key};
	return NULL;
}

void spf_answer(struct spf *spf, enum spf_rr_type type, const char *name, enum spf_dns_status status,
		const char *const *rrs, size_t n)
{
	char *key = cache_key(name);
	if (find_answer(spf, type, key) != NULL) {
		free(key);
		return;
	}
	spf->answers = xreallocarray(spf->answers, spf->nanswers + 1, sizeof(*spf->answers));
	struct answer *a = &spf->answers[spf->nanswers++];
	*a = (struct answer){type, key, status, NULL, 0};
	if (status == SPF_DNS_OK && n > 0) {
		a->rrs = xcalloc(n, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			a->rrs[i] = xstrdup(rrs[i]);
		a->n = n;
	}
	for (size_t i = 0; i < spf->npending; i++) {
		if (spf->pending[i].type == type && !strcmp(spf->pending[i].name, key)) {
			free((char *)spf->pending[i].name);
			spf->pending[i] = spf->pending[--spf->npending];
			break;
		}
	}
}

size_t spf_pending(struct spf *spf, const struct spf_lookup **out)
{
	*out = spf->pending;
	return spf->npending;
}

/* ---- names and addresses ---- */

/* 4.3: a domain is checked only when it is a multi-label name with labels
   of 1 to 63 octets (a final dot allowed) of printable characters. */
static bool domain_ok(const char *d)
{
	char *copy = xstrdup(d);
	size_t len = strlen(copy);
	if (len > 0 && copy[len - 1] == '.')
		copy[--len] = '\0';
	bool ok = dns_name_ok(copy) && strchr(copy, '.') != NULL;
	for (size_t i = 0; ok && i < len; i++)
		ok = (unsigned char)copy[i] > ' ' && copy[i] != 0x7f;
	free(copy);
	return ok;
}

/* The reverse name of the client address (PTR lookups). */
static char *reverse_name(const struct spf *spf)
{
	struct buf b = BUF_INIT;
	if (spf->family == 4) {
		buf_printf(&b, "%u.%u.%u.%u.in-addr.arpa", spf->ip[3], spf->ip[2], spf->ip[1], spf->ip[0]);
	} else {
		for (int i = 15; i >= 0; i--)
			buf_printf(&b, "%x.%x.", spf->ip[i] & 15, spf->ip[i] >> 4);
		buf_append_str(&b, "ip6.arpa");
	}
	return buf_steal(&b);
}

/* True when address a (of the client's family) is in the client's
   network of cidr bits. */
static bool addr_match_bin(const struct spf *spf, const unsigned char *a, int cidr)
{
	int full = cidr / 8, rest = cidr % 8;
	if (memcmp(a, spf->ip, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (spf->ip[full] & mask);
}

/* The same for a textual address (an A or AAAA answer). */
static bool addr_match(const struct spf *spf, const char *rr, int cidr)
{
	unsigned char a[16];
	return inet_pton(spf->family == 4 ? AF_INET : AF_INET6, rr, a) == 1 && addr_match_bin(spf, a, cidr);
}

/* The addresses of name in the client's family: 1 some matched within
   cidr, 0 none, PENDING, or -2 for a DNS error (*void_r for none at
   all). */
static int name_matches(struct spf *spf, const char *name, int cidr, bool *void_r)
{
	const struct answer *a = lookup(spf, spf->family == 4 ? SPF_RR_A : SPF_RR_AAAA, name);
	if (a == NULL)
		return PENDING;
	if (a->status == SPF_DNS_TEMPFAIL)
		return -2;
	if (void_r != NULL)
		*void_r = a->n == 0;
	for (size_t i = 0; i < a->n; i++)
		if (addr_match(spf, a->rrs[i], cidr))
			return 1;
	return 0;
}

/* Counts a void lookup; false past the limit. */
static bool count_void(struct spf *spf)
{
	if (++spf->voids > SPF_MAX_VOID) {
		spf->problem = "more than 2 void lookups";
		return false;
	}
	return true;
}

/* 5.5: the validated names of the client address (PTR names whose
   addresses include it), at most SPF_MAX_NAMES tried.  Fills names_r (at
   most SPF_MAX_NAMES, pointing into the cache); returns the count, or
   PENDING.  DNS errors give no names. */
static int validated_names(struct spf *spf, const char **names_r)
{
	char *rev = reverse_name(spf);
	const struct answer *ptr = lookup(spf, SPF_RR_PTR, rev);
	free(rev);
	if (ptr == NULL)
		return PENDING;
	int n = 0;
	bool pending = false;
	for (size_t i = 0; i < ptr->n && i < SPF_MAX_NAMES; i++) {
		int m = name_matches(spf, ptr->rrs[i], spf->family == 4 ? 32 : 128, NULL);
		if (m == PENDING)
			pending = true;
		else if (m == 1)
			names_r[n++] = ptr->rrs[i];
	}
	return pending ? PENDING : n;
}

static bool name_within(const char *name, const char *domain)
{
	size_t nl = strlen(name), dl = strlen(domain);
	while (nl > 0 && name[nl - 1] == '.')
		nl--;
	while (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (nl == dl)
		return strncasecmp(name, domain, nl) == 0;
	return nl > dl && name[nl - dl - 1] == '.' && strncasecmp(name + nl - dl, domain, dl) == 0;
}

/* ---- macros (7) ---- */

static bool is_delimiter(char c)
{
	return strchr(".-+,/_=", c) != NULL && c != '\0';
}

/* The value of a macro letter, into out; PENDING for %{p} without its
   answers, SYNTAX for a letter not allowed here. */
static int macro_value(struct spf *spf, char letter, const char *domain, bool for_exp, struct buf *out)
{
	char ip[INET6_ADDRSTRLEN];
	switch (letter) {
	case 's':
		buf_printf(out, "%s@%s", spf->local, spf->sender_domain);
		return 0;
	case 'l':
		buf_append_str(out, spf->local);
		return 0;
	case 'o':
		buf_append_str(out, spf->sender_domain);
		return 0;
	case 'd':
		buf_append_str(out, domain);
		return 0;
	case 'i':
		if (spf->family == 4) {
			buf_printf(out, "%u.%u.%u.%u", spf->ip[0], spf->ip[1], spf->ip[2], spf->ip[3]);
		} else {
			for (int i = 0; i < 16; i++)
				buf_printf(out, "%s%X.%X", i ? "." : "", spf->ip[i] >> 4, spf->ip[i] & 15);
		}
		return 0;
	case 'p': {
		const char *names[SPF_MAX_NAMES];
		int n = validated_names(spf, names);
		if (n == PENDING)
			return PENDING;
		const char *best = NULL;
		for (int i = 0; i < n && best == NULL; i++)
			if (name_within(names[i], domain))
				best = names[i];
		buf_append_str(out, best != NULL ? best : n > 0 ? names[0] : "unknown");
		return 0;
	}
	case 'v':
		buf_append_str(out, spf->family == 4 ? "in-addr" : "ip6");
		return 0;
	case 'h':
		buf_append_str(out, spf->helo);
		return 0;
	case 'c':
		if (!for_exp)
			return SYNTAX;
		inet_ntop(spf->family == 4 ? AF_INET : AF_INET6, spf->ip, ip, sizeof(ip));
		buf_append_str(out, ip);
		return 0;
	case 'r':
		if (!for_exp)
			return SYNTAX;
		buf_append_str(out, spf->receiver);
		return 0;
	case 't':
		if (!for_exp)
			return SYNTAX;
		buf_printf(out, "%lld", (long long)time(NULL));
		return 0;
	default:
		return SYNTAX;
	}
}

/* Splits value on the delimiters, reverses when asked, keeps the rightmost
   digits parts (0: all) and joins them with dots. */
static void transform(struct buf *out, const char *value, size_t len, unsigned digits, bool reverse,
		      const char *delims, size_t ndelims)
{
	const char *parts[128 * 2];
	size_t lens[N_ELEMENTS(parts)], n = 0, start = 0;
	for (size_t i = 0; i <= len && n < N_ELEMENTS(parts); i++) {
		if (i < len && memchr(delims, value[i], ndelims) == NULL)
			continue;
		parts[n] = value + start;
		lens[n++] = i - start;
		start = i + 1;
	}
	if (reverse) {
		for (size_t i = 0; i < n / 2; i++) {
			const char *p = parts[i];
			size_t l = lens[i];
			parts[i] = parts[n - 1 - i];
			lens[i] = lens[n - 1 - i];
			parts[n - 1 - i] = p;
			lens[n - 1 - i] = l;
		}
	}
	size_t first = digits > 0 && digits < n ? n - digits : 0;
	for (size_t i = first; i < n; i++) {
		if (i > first)
			buf_append_char(out, '.');
		buf_append(out, parts[i], lens[i]);
	}
}

/* 7.3: uppercase letters escape their value as URIs do (RFC 3986). */
static void url_escape(struct buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c) != NULL)
			buf_append_char(out, (char)c);
		else
			buf_printf(out, "%%%02X", c);
	}
}

/* Expands into out: 0, SYNTAX, or PENDING. */
static int expand(struct spf *spf, const char *text, size_t len, const char *domain, bool for_exp,
		  struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (c != '%') {
			/* macro-literal: %x21-24 / %x26-7E; an explanation may
			   have spaces */
			if ((c < 0x21 || c > 0x7e) && !(for_exp && c == ' '))
				return SYNTAX;
			buf_append_char(out, c);
			continue;
		}
		if (++i >= len)
			return SYNTAX;
		if (text[i] == '%' || text[i] == '_' || text[i] == '-') {
			buf_append_str(out, text[i] == '%' ? "%" : text[i] == '_' ? " " : "%20");
			continue;
		}
		if (text[i] != '{' || ++i >= len)
			return SYNTAX;
		char letter = text[i++];
		bool upper = letter >= 'A' && letter <= 'Z';
		if (upper)
			letter = (char)(letter + 32);
		unsigned digits = 0;
		bool has_digits = false;
		while (i < len && text[i] >= '0' && text[i] <= '9') {
			digits = digits * 10 + (unsigned)(text[i++] - '0');
			has_digits = true;
			if (digits > 1000)
				return SYNTAX;
		}
		if (has_digits && digits == 0)
			return SYNTAX;
		bool reverse = false;
		if (i < len && (text[i] == 'r' || text[i] == 'R')) {
			reverse = true;
			i++;
		}
		size_t dstart = i;
		while (i < len && is_delimiter(text[i]))
			i++;
		if (i >= len || text[i] != '}')
			return SYNTAX;
		struct buf value = BUF_INIT;
		int rc = macro_value(spf, letter, domain, for_exp, &value);
		if (rc == 0) {
			struct buf t = BUF_INIT;
			transform(&t, value.data != NULL ? value.data : "", value.len, digits, reverse,
				  i > dstart ? text + dstart : ".", i > dstart ? i - dstart : 1);
			if (upper)
				url_escape(out, t.data != NULL ? t.data : "", t.len);
			else
				buf_append(out, t.data, t.len);
			buf_free(&t);
		}
		buf_free(&value);
		if (rc != 0)
			return rc == PENDING ? PENDING : SYNTAX;
	}
	return 0;
}

char *spf_expand(struct spf *spf, const char *text, size_t len, const char *domain, bool for_exp)
{
	struct buf out = BUF_INIT;
	if (expand(spf, text, len, domain, for_exp, &out) != 0) {
		buf_free(&out);
		return NULL;
	}
	buf_append(&out, "", 0);
	return out.data != NULL ? buf_steal(&out) : xstrdup("");
}

/* The expanded target of a domain-spec (or the current domain when the
   term has none), shortened from the left to 253 octets (7.3).  NULL with
   PENDING in *rc_r, or on an error (*rc_r = SPF_PERMERROR). */
static char *target(struct spf *spf, const char *spec, size_t len, const char *domain, int *rc_r)
{
	if (spec == NULL)
		return xstrdup(domain);
	struct buf out = BUF_INIT;
	int rc = expand(spf, spec, len, domain, false, &out);
	if (rc != 0) {
		buf_free(&out);
		*rc_r = rc == PENDING ? PENDING : SPF_PERMERROR;
		spf->problem = "bad macro";
		return NULL;
	}
	buf_append(&out, "", 0);
	char *t = buf_steal(&out);
	char *p = t;
	while (strlen(p) > SPF_MAX_DOMAIN) {
		char *dot = strchr(p, '.');
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (p != t)
		memmove(t, p, strlen(p) + 1);
	return t;
}

/* ---- the record (4.5, 4.6) ---- */

enum mech { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

struct term {
	bool modifier;
	char qualifier; /* '+', '-', '~', '?' */
	enum mech mech;
	const char *spec; /* domain-spec or address, NULL when absent */
	size_t spec_len;
	int cidr4, cidr6;
	unsigned char addr[16]; /* ip4/ip6 */
	/* modifiers */
	const char *name, *value;
	size_t name_len, value_len;
};

#define MAX_TERMS 256

struct record {
	struct term terms[MAX_TERMS];
	size_t count;
	const struct term *redirect, *exp;
};

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* macro-string syntax (no expansion): '%' only in the forms of 7.1, the
   rest macro-literals. */
static bool macro_syntax_ok(const char *s, size_t len, bool for_exp)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			if (s[i] < 0x21 || s[i] > 0x7e)
				return false;
			continue;
		}
		if (++i >= len)
			return false;
		if (s[i] == '%' || s[i] == '_' || s[i] == '-')
			continue;
		if (s[i] != '{' || ++i >= len)
			return false;
		char l = (char)(s[i] | 0x20);
		if (strchr(for_exp ? "slodiphcrtv" : "slodiphv", l) == NULL || l == '\0')
			return false;
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i < len && (s[i] == 'r' || s[i] == 'R'))
			i++;
		while (i < len && is_delimiter(s[i]))
			i++;
		if (i >= len || s[i] != '}')
			return false;
	}
	return true;
}

/* domain-spec = macro-string domain-end: it ends with a macro or with
   "." toplabel ["."], a toplabel not all digits (4.6.1, 7.1). */
static bool domain_spec_ok(const char *s, size_t len)
{
	if (len == 0 || !macro_syntax_ok(s, len, false))
		return false;
	if (s[len - 1] == '}')
		return true;
	if (s[len - 1] == '.')
		len--;
	size_t start = len;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == 0 || start == len)
		return false;
	bool alpha = false;
	for (size_t i = start; i < len; i++) {
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
		alpha = alpha || !(s[i] >= '0' && s[i] <= '9');
	}
	return alpha && s[start] != '-' && s[len - 1] != '-';
}

/* "/N" with 0 <= N <= max and no leading zero. */
static bool parse_cidr(const char *s, size_t len, int max, int *out)
{
	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return false;
	int v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Takes a dual-cidr-length ("/N", "//N", "/N//M") from the end of s,
   shortening *len; the digits must follow a slash to count. */
static bool split_dual_cidr(const char *s, size_t *len, int *cidr4, int *cidr6)
{
	size_t l = *len, d = l;
	while (d > 0 && is_digit(s[d - 1]))
		d--;
	if (d < l && d >= 2 && s[d - 1] == '/' && s[d - 2] == '/') {
		if (!parse_cidr(s + d, l - d, 128, cidr6))
			return false;
		l = d - 2;
		d = l;
		while (d > 0 && is_digit(s[d - 1]))
			d--;
	}
	if (d < l && d >= 1 && s[d - 1] == '/') {
		if (!parse_cidr(s + d, l - d, 32, cidr4))
			return false;
		l = d - 1;
	}
	*len = l;
	return true;
}

static bool parse_term(struct record *r, const char *s, size_t len)
{
	struct term *t = &r->terms[r->count];
	memset(t, 0, sizeof(*t));
	/* a modifier: name "=" macro-string, name = ALPHA *(ALPHA / DIGIT /
	   "-" / "_" / ".") */
	size_t n = 0;
	if (len > 0 && ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z')) {
		while (n < len && (is_alnum(s[n]) || s[n] == '-' || s[n] == '_' || s[n] == '.'))
			n++;
	}
	if (n > 0 && n < len && s[n] == '=') {
		t->modifier = true;
		t->name = s;
		t->name_len = n;
		t->value = s + n + 1;
		t->value_len = len - n - 1;
		bool redirect = n == 8 && !strncasecmp(s, "redirect", 8);
		bool exp = n == 3 && !strncasecmp(s, "exp", 3);
		if (redirect || exp) {
			const struct term **slot = redirect ? &r->redirect : &r->exp;
			if (*slot != NULL || !domain_spec_ok(t->value, t->value_len))
				return false; /* 6: at most once each */
			*slot = t;
		} else if (!macro_syntax_ok(t->value, t->value_len, false)) {
			return false;
		}
		r->count++;
		return true;
	}
	t->qualifier = '+';
	if (len > 0 && strchr("+-~?", s[0]) != NULL) {
		t->qualifier = s[0];
		s++;
		len--;
	}
	static const struct {
		const char *name;
		enum mech mech;
	} mechs[] = {{"all", M_ALL}, {"include", M_INCLUDE}, {"a", M_A},     {"mx", M_MX},
		     {"ptr", M_PTR}, {"ip4", M_IP4},         {"ip6", M_IP6}, {"exists", M_EXISTS}};
	n = 0;
	while (n < len && s[n] != ':' && s[n] != '/')
		n++;
	size_t m = 0;
	while (m < N_ELEMENTS(mechs) && (strlen(mechs[m].name) != n || strncasecmp(mechs[m].name, s, n) != 0))
		m++;
	if (m == N_ELEMENTS(mechs))
		return false;
	t->mech = mechs[m].mech;
	bool colon = n < len && s[n] == ':';
	t->spec = colon ? s + n + 1 : n < len ? s + n : NULL;
	t->spec_len = colon ? len - n - 1 : len - n;
	switch (t->mech) {
	case M_ALL:
		if (n != len)
			return false;
		break;
	case M_INCLUDE:
	case M_EXISTS:
		if (!colon || !domain_spec_ok(t->spec, t->spec_len))
			return false;
		break;
	case M_PTR:
		if (n != len && (!colon || !domain_spec_ok(t->spec, t->spec_len)))
			return false;
		if (!colon)
			t->spec = NULL;
		break;
	case M_A:
	case M_MX:
		/* [":" domain-spec] [dual-cidr-length] */
		t->cidr4 = 32;
		t->cidr6 = 128;
		if (t->spec != NULL && !split_dual_cidr(t->spec, &t->spec_len, &t->cidr4, &t->cidr6))
			return false;
		if (colon ? !domain_spec_ok(t->spec, t->spec_len) : t->spec != NULL && t->spec_len != 0)
			return false;
		if (!colon)
			t->spec = NULL;
		break;
	case M_IP4:
	case M_IP6: {
		if (!colon)
			return false;
		char addr[INET6_ADDRSTRLEN + 8];
		const char *slash = memchr(t->spec, '/', t->spec_len);
		size_t alen = slash != NULL ? (size_t)(slash - t->spec) : t->spec_len;
		int max = t->mech == M_IP4 ? 32 : 128;
		int cidr = max;
		if (alen == 0 || alen >= sizeof(addr) ||
		    (slash != NULL && !parse_cidr(slash + 1, t->spec_len - alen - 1, max, &cidr)))
			return false;
		memcpy(addr, t->spec, alen);
		addr[alen] = '\0';
		if (inet_pton(t->mech == M_IP4 ? AF_INET : AF_INET6, addr, t->addr) != 1)
			return false;
		if (t->mech == M_IP4)
			t->cidr4 = cidr;
		else
			t->cidr6 = cidr;
		break;
	}
	}
	r->count++;
	return true;
}

/* Parses the record after "v=spf1"; false on any syntax error (4.6: the
   whole record is then permerror, whatever comes first). */
static bool parse_record(struct record *r, const char *text)
{
	r->count = 0;
	r->redirect = r->exp = NULL;
	const char *p = text + 6;
	while (*p != '\0') {
		if (*p != ' ')
			return false;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		const char *end = p;
		while (*end != '\0' && *end != ' ')
			end++;
		if (r->count == MAX_TERMS || !parse_term(r, p, (size_t)(end - p)))
			return false;
		p = end;
	}
	return true;
}

/* ---- check_host() (4) ---- */

static int check_host(struct spf *spf, const char *domain, int depth);

/* Counts a term that queries DNS (4.6.4). */
static bool count_term(struct spf *spf)
{
	if (++spf->dns_terms > SPF_MAX_DNS_TERMS) {
		spf->problem = "more than 10 DNS lookups";
		return false;
	}
	return true;
}

/* What a mechanism or a record lookup gives besides 1 (match), 0 (no
   match) and PENDING: a final result r of the whole evaluation, as
   RESULT(r). */
#define RESULT(r) (100 + (r))

/* A DNS error in a mechanism: temperror (5). */
static int dns_error(struct spf *spf)
{
	spf->problem = "DNS error";
	return RESULT(SPF_TEMPERROR);
}

static int qualifier_result(char q)
{
	switch (q) {
	case '-':
		return SPF_FAIL;
	case '~':
		return SPF_SOFTFAIL;
	case '?':
		return SPF_NEUTRAL;
	default:
		return SPF_PASS;
	}
}

static int mech_match(struct spf *spf, const struct term *t, const char *domain, int depth)
{
	int rc = 0;
	char *name = NULL;
	switch (t->mech) {
	case M_ALL:
		return 1;
	case M_IP4:
		return spf->family == 4 && addr_match_bin(spf, t->addr, t->cidr4);
	case M_IP6:
		return spf->family == 6 && addr_match_bin(spf, t->addr, t->cidr6);
	default:
		break;
	}
	if (!count_term(spf))
		return RESULT(SPF_PERMERROR);
	name = target(spf, t->spec, t->spec_len, domain, &rc);
	if (name == NULL)
		return rc == PENDING ? PENDING : RESULT(SPF_PERMERROR);
	int ret = 0;
	switch (t->mech) {
	case M_INCLUDE: {
		int r = check_host(spf, name, depth + 1);
		if (r == PENDING)
			ret = PENDING;
		else if (r == SPF_PASS)
			ret = 1;
		else if (r == SPF_TEMPERROR)
			ret = RESULT(SPF_TEMPERROR);
		else if (r == SPF_PERMERROR || r == SPF_NONE) {
			if (r == SPF_NONE)
				spf->problem = "include of a domain without SPF record";
			ret = RESULT(SPF_PERMERROR);
		}
		break;
	}
	case M_A: {
		bool is_void = false;
		int m = name_matches(spf, name, spf->family == 4 ? t->cidr4 : t->cidr6, &is_void);
		if (m == -2)
			ret = dns_error(spf);
		else if (m == PENDING || m == 1)
			ret = m;
		else if (is_void && !count_void(spf))
			ret = RESULT(SPF_PERMERROR);
		break;
	}
	case M_MX: {
		const struct answer *mx = lookup(spf, SPF_RR_MX, name);
		if (mx == NULL) {
			ret = PENDING;
		} else if (mx->status == SPF_DNS_TEMPFAIL) {
			ret = dns_error(spf);
		} else if (mx->n == 0) {
			ret = count_void(spf) ? 0 : RESULT(SPF_PERMERROR);
		} else if (mx->n > SPF_MAX_NAMES) {
			spf->problem = "more than 10 MX hosts";
			ret = RESULT(SPF_PERMERROR);
		} else {
			bool pending = false;
			for (size_t i = 0; i < mx->n && ret == 0; i++) {
				if (mx->rrs[i][0] == '\0' || !strcmp(mx->rrs[i], "."))
					continue; /* null MX */
				int m = name_matches(spf, mx->rrs[i], spf->family == 4 ? t->cidr4 : t->cidr6,
						     NULL);
				if (m == PENDING)
					pending = true;
				else if (m == -2)
					ret = dns_error(spf);
				else if (m == 1)
					ret = 1;
			}
			if (ret == 0 && pending)
				ret = PENDING;
		}
		break;
	}
	case M_PTR: {
		const char *names[SPF_MAX_NAMES];
		int n = validated_names(spf, names);
		if (n == PENDING)
			ret = PENDING;
		for (int i = 0; i < n && ret == 0; i++)
			if (name_within(names[i], name))
				ret = 1;
		break;
	}
	case M_EXISTS: {
		/* always an A query, whatever the client's family (5.7) */
		const struct answer *a = lookup(spf, SPF_RR_A, name);
		if (a == NULL)
			ret = PENDING;
		else if (a->status == SPF_DNS_TEMPFAIL)
			ret = dns_error(spf);
		else if (a->n > 0)
			ret = 1;
		else if (!count_void(spf))
			ret = RESULT(SPF_PERMERROR);
		break;
	}
	default:
		break;
	}
	free(name);
	return ret;
}

/* The explanation of a fail (6.2): the TXT record at the exp= target,
   expanded.  Failures give none.  PENDING while the TXT is unknown. */
static int explain(struct spf *spf)
{
	if (spf->exp_spec == NULL)
		return 0;
	int rc = 0;
	char *name = target(spf, spf->exp_spec, strlen(spf->exp_spec), spf->exp_of, &rc);
	if (name == NULL)
		return rc == PENDING ? PENDING : 0;
	const struct answer *txt = domain_ok(name) ? lookup(spf, SPF_RR_TXT, name) : NULL;
	int ret = 0;
	if (txt == NULL && domain_ok(name))
		ret = PENDING;
	else if (txt != NULL && txt->status == SPF_DNS_OK && txt->n == 1) {
		struct buf out = BUF_INIT;
		rc = expand(spf, txt->rrs[0], strlen(txt->rrs[0]), spf->exp_of, true, &out);
		if (rc == PENDING) {
			ret = PENDING;
		} else if (rc == 0) {
			buf_append(&out, "", 0);
			spf->explanation = buf_steal(&out);
		}
		buf_free(&out);
	}
	free(name);
	return ret;
}

static void set_exp(struct spf *spf, const struct record *r, const char *domain)
{
	free(spf->exp_spec);
	free(spf->exp_of);
	spf->exp_spec = r->exp != NULL ? xstrndup(r->exp->value, r->exp->value_len) : NULL;
	spf->exp_of = r->exp != NULL ? xstrdup(domain) : NULL;
}

/* The SPF record of domain: 1 with *record_r (a string of the cache), 0
   for none, or a result (RESULT()) or PENDING. */
static int find_record(struct spf *spf, const char *domain, const char **record_r)
{
	const struct answer *txt = lookup(spf, SPF_RR_TXT, domain);
	if (txt == NULL)
		return PENDING;
	if (txt->status == SPF_DNS_TEMPFAIL) {
		spf->problem = "DNS error looking up the SPF record";
		return RESULT(SPF_TEMPERROR);
	}
	const char *found = NULL;
	for (size_t i = 0; i < txt->n; i++) {
		const char *t = txt->rrs[i];
		/* 4.5: "v=spf1" alone or followed by a space, any case */
		if (strncasecmp(t, "v=spf1", 6) != 0 || (t[6] != '\0' && t[6] != ' '))
			continue;
		if (found != NULL) {
			spf->problem = "more than one SPF record";
			return RESULT(SPF_PERMERROR);
		}
		found = t;
	}
	*record_r = found;
	return found != NULL;
}

static int check_host(struct spf *spf, const char *domain, int depth)
{
	if (!domain_ok(domain))
		return SPF_NONE;
	const char *text;
	int rc = find_record(spf, domain, &text);
	if (rc == PENDING)
		return PENDING;
	if (rc >= RESULT(0))
		return rc - RESULT(0);
	if (rc == 0)
		return SPF_NONE;
	struct record *r = xmalloc(sizeof(*r));
	int ret = -2;
	if (!parse_record(r, text)) {
		spf->problem = "syntax error in the SPF record";
		ret = SPF_PERMERROR;
	}
	for (size_t i = 0; ret == -2 && i < r->count; i++) {
		const struct term *t = &r->terms[i];
		if (t->modifier)
			continue;
		int m = mech_match(spf, t, domain, depth);
		if (m == PENDING || m >= RESULT(0))
			ret = m == PENDING ? PENDING : m - RESULT(0);
		else if (m == 1) {
			ret = qualifier_result(t->qualifier);
			if (ret == SPF_FAIL)
				set_exp(spf, r, domain);
		}
	}
	if (ret == -2 && r->redirect != NULL) {
		/* 6.1: only when no mechanism matched (an "all" always does) */
		char *name = NULL;
		if (!count_term(spf))
			ret = SPF_PERMERROR;
		else if ((name = target(spf, r->redirect->value, r->redirect->value_len, domain, &rc)) ==
			 NULL)
			ret = rc == PENDING ? PENDING : SPF_PERMERROR;
		else {
			ret = check_host(spf, name, depth + 1);
			if (ret == SPF_NONE) {
				spf->problem = "redirect to a domain without SPF record";
				ret = SPF_PERMERROR;
			}
		}
		free(name);
	}
	free(r);
	return ret == -2 ? SPF_NEUTRAL : ret;
}

struct spf *spf_new(const char *ip, const char *mail_from, const char *helo, const char *receiver)
{
	struct spf *spf = xcalloc(1, sizeof(*spf));
	if (inet_pton(AF_INET, ip, spf->ip) == 1) {
		spf->family = 4;
	} else if (inet_pton(AF_INET6, ip, spf->ip) == 1) {
		spf->family = 6;
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(spf->ip, mapped, 12) == 0) {
			memmove(spf->ip, spf->ip + 12, 4);
			spf->family = 4;
		}
	} else {
		free(spf);
		return NULL;
	}
	spf->helo = xstrdup(helo != NULL ? helo : "");
	spf->receiver = xstrdup(receiver != NULL && *receiver != '\0' ? receiver : "unknown");
	/* 4.3: no local part: "postmaster"; the null sender: the HELO name */
	const char *at = mail_from != NULL ? strrchr(mail_from, '@') : NULL;
	if (mail_from == NULL || *mail_from == '\0' || at == NULL) {
		spf->local = xstrdup("postmaster");
		spf->sender_domain =
		    xstrdup(mail_from != NULL && *mail_from != '\0' && at == NULL ? mail_from : spf->helo);
	} else {
		spf->local =
		    at == mail_from ? xstrdup("postmaster") : xstrndup(mail_from, (size_t)(at - mail_from));
		spf->sender_domain = xstrdup(at + 1);
	}
	spf->domain = spf->sender_domain;
	return spf;
}

bool spf_run(struct spf *spf)
{
	if (spf->done)
		return true;
	for (size_t i = 0; i < spf->npending; i++)
		free((char *)spf->pending[i].name);
	spf->npending = 0;
	spf->dns_terms = spf->voids = 0;
	spf->problem = NULL;
	free(spf->exp_spec);
	free(spf->exp_of);
	spf->exp_spec = spf->exp_of = NULL;
	int r = check_host(spf, spf->domain, 0);
	if (r == SPF_FAIL && explain(spf) == PENDING)
		r = PENDING;
	if (r == PENDING && spf->npending > 0)
		return false;
	if (r == PENDING) { /* nothing to wait for: a bug, not a verdict */
		r = SPF_TEMPERROR;
		spf->problem = "evaluation stalled";
	}
	spf->result = (enum spf_result)r;
	spf->done = true;
	return true;
}

enum spf_result spf_result(const struct spf *spf, const char **detail_r)
{
	if (detail_r != NULL)
		*detail_r = spf->result == SPF_FAIL                                        ? spf->explanation
			    : spf->result == SPF_PERMERROR || spf->result == SPF_TEMPERROR ? spf->problem
											   : NULL;
	return spf->result;
}

const char *spf_domain(const struct spf *spf)
{
	return spf->domain;
}

void spf_free(struct spf **spfp)
{
	struct spf *spf = *spfp;
	if (spf == NULL)
		return;
	for (size_t i = 0; i < spf->nanswers; i++) {
		free(spf->answers[i].name);
		for (size_t j = 0; j < spf->answers[i].n; j++)
			free(spf->answers[i].rrs[j]);
		free(spf->answers[i].rrs);
	}
	free(spf->answers);
	for (size_t i = 0; i < spf->npending; i++)
		free((char *)spf->pending[i].name);
	free(spf->pending);
	free(spf->local);
	free(spf->sender_domain);
	free(spf->helo);
	free(spf->receiver);
	free(spf->exp_spec);
	free(spf->exp_of);
	free(spf->explanation);
	free(spf);
	*spfp = NULL;
}
