/* Typed parsers for IMAP arguments: sequence sets, flags, STORE, APPEND,
   dates and mailbox names (RFC 3501 section 9, RFC 7162 3.1.3, RFC 5182,
   RFC 3502, RFC 6855). */
#include "imap/imap_parse.h"
#include "lib/buf.h"
#include "lib/utf8.h"
#include "lib/xalloc.h"
#include "mime/charset.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- sequence sets ---- */

static bool parse_seq_number(const char **sp, uint64_t *n_r)
{
	const char *s = *sp;
	if (*s == '*') {
		*n_r = IMAP_SEQ_STAR;
		*sp = s + 1;
		return true;
	}
	if (*s < '1' || *s > '9')
		return false;
	uint64_t n = 0;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX) /* nz-number fits 32 bits */
			return false;
		s++;
	}
	*n_r = n;
	*sp = s;
	return true;
}

int imap_seqset_parse(struct pool *pool, const char *s, struct imap_seqset **set_r, const char **error_r)
{
	struct imap_seqset *set = pool_alloc(pool, sizeof(*set));
	if (strcmp(s, "$") == 0) {
		set->saved = true;
		*set_r = set;
		return 0;
	}
	unsigned int alloc = 1;
	for (const char *c = s; *c; c++)
		if (*c == ',')
			alloc++;
	if (alloc > 100000) {
		*error_r = "Sequence set too long";
		return -1;
	}
	set->ranges = pool_alloc(pool, alloc * sizeof(*set->ranges));
	for (;;) {
		uint64_t lo, hi;
		if (!parse_seq_number(&s, &lo)) {
			*error_r = "Invalid sequence set";
			return -1;
		}
		hi = lo;
		if (*s == ':') {
			s++;
			if (!parse_seq_number(&s, &hi)) {
				*error_r = "Invalid sequence set";
				return -1;
			}
		}
		if (lo > hi) {
			uint64_t t = lo;
			lo = hi;
			hi = t;
		}
		set->ranges[set->count].lo = lo;
		set->ranges[set->count].hi = hi;
		set->count++;
		if (*s == '\0')
			break;
		if (*s != ',') {
			*error_r = "Invalid sequence set";
			return -1;
		}
		s++;
	}
	*set_r = set;
	return 0;
}

uint32_t imap_seq_resolve(uint64_t n, uint32_t max)
{
	return n == IMAP_SEQ_STAR ? max : (uint32_t)n;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max)
{
	for (unsigned int i = 0; i < set->count; i++) {
		uint32_t lo = imap_seq_resolve(set->ranges[i].lo, max),
			 hi = imap_seq_resolve(set->ranges[i].hi, max);
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (n >= lo && n <= hi)
			return true;
	}
	return false;
}

uint32_t imap_seqset_max(const struct imap_seqset *set, uint32_t max)
{
	uint32_t m = 0;
	for (unsigned int i = 0; i < set->count; i++) {
		uint32_t lo = imap_seq_resolve(set->ranges[i].lo, max),
			 hi = imap_seq_resolve(set->ranges[i].hi, max);
		if (lo > m)
			m = lo;
		if (hi > m)
			m = hi;
	}
	return m;
}

/* ---- flags ---- */

static const struct {
	const char *name;
	enum imap_flag flag;
} system_flags[] = {
    {"\\Seen", IMAP_FLAG_SEEN},       {"\\Answered", IMAP_FLAG_ANSWERED}, {"\\Flagged", IMAP_FLAG_FLAGGED},
    {"\\Deleted", IMAP_FLAG_DELETED}, {"\\Draft", IMAP_FLAG_DRAFT},       {"\\Recent", IMAP_FLAG_RECENT},
};

const char *imap_flag_name(enum imap_flag flag)
{
	for (size_t i = 0; i < N_ELEMENTS(system_flags); i++)
		if (system_flags[i].flag == flag)
			return system_flags[i].name;
	return "";
}

bool imap_keyword_valid(const char *s)
{
	if (*s == '\0' || strlen(s) > 255)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static int add_flag(struct pool *pool, const struct imap_arg *a, struct imap_flags *f, unsigned int *alloc,
		    const char **error_r)
{
	/* "NIL" is an atom like any other here: flag-keyword = atom (RFC 3501 9) */
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NIL) {
		*error_r = "Invalid flag";
		return -1;
	}
	if (a->str[0] == '\\') {
		for (size_t i = 0; i < N_ELEMENTS(system_flags); i++) {
			if (strcasecmp(a->str, system_flags[i].name) == 0) {
				if (system_flags[i].flag == IMAP_FLAG_RECENT) {
					*error_r = "\\Recent cannot be changed";
					return -1;
				}
				f->flags |= system_flags[i].flag;
				return 0;
			}
		}
		*error_r = "Unknown system flag";
		return -1;
	}
	if (!imap_keyword_valid(a->str)) {
		*error_r = "Invalid keyword";
		return -1;
	}
	for (unsigned int i = 0; i < f->keyword_count; i++)
		if (strcasecmp(f->keywords[i], a->str) == 0)
			return 0;
	if (f->keyword_count == *alloc) {
		unsigned int n = *alloc ? *alloc * 2 : 4;
		const char **nk = pool_alloc(pool, n * sizeof(*nk));
		if (f->keyword_count > 0)
			memcpy(nk, f->keywords, f->keyword_count * sizeof(*nk));
		f->keywords = nk;
		*alloc = n;
	}
	f->keywords[f->keyword_count++] = a->str;
	return 0;
}

int imap_flags_parse(struct pool *pool, const struct imap_arg *arg, bool allow_single,
		     struct imap_flags *flags_r, const char **error_r)
{
	unsigned int alloc = 0;
	memset(flags_r, 0, sizeof(*flags_r));
	if (arg->type != IMAP_ARG_LIST) {
		if (!allow_single) {
			*error_r = "Flag list expected";
			return -1;
		}
		return add_flag(pool, arg, flags_r, &alloc, error_r);
	}
	for (unsigned int i = 0; i < arg->count; i++)
		if (add_flag(pool, &arg->list[i], flags_r, &alloc, error_r) < 0)
			return -1;
	return 0;
}

/* ---- STORE ---- */

static int store_modifiers(const struct imap_arg *list, struct imap_store_args *st, const char **error_r)
{
	for (unsigned int i = 0; i < list->count; i += 2) {
		const struct imap_arg *name = &list->list[i];
		if (i + 1 >= list->count || name->type != IMAP_ARG_ATOM ||
		    list->list[i + 1].type != IMAP_ARG_ATOM) {
			*error_r = "Invalid STORE modifier";
			return -1;
		}
		if (strcasecmp(name->str, "UNCHANGEDSINCE") != 0) {
			*error_r = "Unknown STORE modifier";
			return -1;
		}
		if (st->has_unchangedsince ||
		    !imap_parse_number64(list->list[i + 1].str, &st->unchangedsince)) {
			*error_r = "Invalid UNCHANGEDSINCE";
			return -1;
		}
		st->has_unchangedsince = true;
	}
	return 0;
}

int imap_store_parse(struct pool *pool, const struct imap_arg *args, unsigned int count,
		     struct imap_store_args *st, const char **error_r)
{
	memset(st, 0, sizeof(*st));
	if (count < 3 || args[0].type != IMAP_ARG_ATOM) {
		*error_r = "STORE needs a sequence set, an item and flags";
		return -1;
	}
	if (imap_seqset_parse(pool, args[0].str, &st->set, error_r) < 0)
		return -1;
	unsigned int i = 1;
	if (args[i].type == IMAP_ARG_LIST) {
		if (store_modifiers(&args[i], st, error_r) < 0)
			return -1;
		i++;
	}
	if (i + 1 >= count + 0 || args[i].type != IMAP_ARG_ATOM) {
		*error_r = "STORE needs an item and flags";
		return -1;
	}
	const char *item = args[i].str;
	if (*item == '+') {
		st->op = IMAP_STORE_ADD;
		item++;
	} else if (*item == '-') {
		st->op = IMAP_STORE_REMOVE;
		item++;
	} else {
		st->op = IMAP_STORE_SET;
	}
	if (strcasecmp(item, "FLAGS.SILENT") == 0)
		st->silent = true;
	else if (strcasecmp(item, "FLAGS") != 0) {
		*error_r = "Unknown STORE item";
		return -1;
	}
	i++;
	if (args[i].type == IMAP_ARG_LIST) {
		if (i + 1 != count) {
			*error_r = "Extra arguments after flag list";
			return -1;
		}
		return imap_flags_parse(pool, &args[i], false, &st->flags, error_r);
	}
	/* flag *(SP flag) without parentheses */
	unsigned int alloc = 0;
	for (; i < count; i++)
		if (add_flag(pool, &args[i], &st->flags, &alloc, error_r) < 0)
			return -1;
	return 0;
}

/* ---- dates ---- */

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int days_in_month(int year, int mon)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return mon == 1 && leap ? 29 : d[mon];
}

/* Parses "d-Mon-yyyy" at s (day of one or two digits, or with a leading
   space when fixed) and returns the position after it, or NULL. */
static const char *parse_day_month_year(const char *s, int *day, int *mon, int *year)
{
	if (*s == ' ')
		s++;
	if (!isdigit((unsigned char)s[0]))
		return NULL;
	int d = s[0] - '0';
	s++;
	if (isdigit((unsigned char)s[0])) {
		d = d * 10 + s[0] - '0';
		s++;
	}
	if (*s++ != '-')
		return NULL;
	int m = -1;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s, months[i], 3) == 0)
			m = i;
	if (m < 0 || s[3] != '-')
		return NULL;
	s += 4;
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)s[i]))
			return NULL;
	int y = atoi(s); /* exactly four digits checked above */
	s += 4;
	if (y < 1900 || d < 1 || d > days_in_month(y, m))
		return NULL;
	*day = d;
	*mon = m;
	*year = y;
	return s;
}

static time_t utc_time(int year, int mon, int day, int h, int mi, int sec)
{
	struct tm tm = {
	    .tm_year = year - 1900, .tm_mon = mon, .tm_mday = day, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
	return timegm(&tm);
}

bool imap_parse_date(const char *s, time_t *date_r)
{
	int d, m, y;
	const char *end = parse_day_month_year(s, &d, &m, &y);
	if (end == NULL || *end != '\0')
		return false;
	*date_r = utc_time(y, m, d, 0, 0, 0);
	return true;
}

bool imap_parse_datetime(const char *s, time_t *time_r, int *tz_minutes_r)
{
	int d, m, y, h, mi, sec, tz;
	if (strlen(s) != 26 || (s[0] != ' ' && !isdigit((unsigned char)s[0])))
		return false;
	const char *p = parse_day_month_year(s, &d, &m, &y);
	if (p == NULL || p != s + 11 || *p != ' ')
		return false;
	p++;
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2] != ':' ||
	    !isdigit((unsigned char)p[3]) || !isdigit((unsigned char)p[4]) || p[5] != ':' ||
	    !isdigit((unsigned char)p[6]) || !isdigit((unsigned char)p[7]) || p[8] != ' ' ||
	    (p[9] != '+' && p[9] != '-'))
		return false;
	for (int i = 10; i < 14; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	h = (p[0] - '0') * 10 + p[1] - '0';
	mi = (p[3] - '0') * 10 + p[4] - '0';
	sec = (p[6] - '0') * 10 + p[7] - '0';
	int tzh = (p[10] - '0') * 10 + p[11] - '0', tzm = (p[12] - '0') * 10 + p[13] - '0';
	if (h > 23 || mi > 59 || sec > 60 || tzm > 59)
		return false;
	tz = tzh * 60 + tzm;
	if (p[9] == '-')
		tz = -tz;
	*time_r = utc_time(y, m, d, h, mi, sec) - (time_t)tz * 60;
	*tz_minutes_r = tz;
	return true;
}

/* ---- APPEND ---- */

/* append-data (RFC 3502 6, RFC 6855 4) at args[*i]. */
static int append_data(const struct imap_arg *args, unsigned int count, unsigned int *i,
		       struct imap_append_msg *m, const char **error_r)
{
	const struct imap_arg *a = &args[*i];
	if (imap_arg_atom_equals(a, "UTF8")) {
		const struct imap_arg *l = *i + 1 < count ? &args[*i + 1] : NULL;
		if (l == NULL || l->type != IMAP_ARG_LIST || l->count != 1 ||
		    l->list[0].type != IMAP_ARG_LITERAL || !l->list[0].literal8) {
			*error_r = "UTF8 needs a literal8 in parentheses";
			return -1;
		}
		a = &l->list[0];
		(*i)++;
	} else if (a->type != IMAP_ARG_LITERAL) {
		*error_r = "APPEND needs the message as a literal";
		return -1;
	}
	m->data = a->str;
	m->len = a->len;
	m->binary = a->literal8;
	(*i)++;
	return 0;
}

int imap_append_parse(struct pool *pool, const struct imap_arg *args, unsigned int count,
		      struct imap_append_msg **msgs_r, unsigned int *count_r, const char **error_r)
{
	/* every message takes at least one argument */
	struct imap_append_msg *msgs = pool_alloc(pool, (count + 1) * sizeof(*msgs));
	unsigned int n = 0, i = 0;
	while (i < count) {
		struct imap_append_msg *m = &msgs[n++];
		memset(m, 0, sizeof(*m));
		if (args[i].type == IMAP_ARG_LIST) {
			if (imap_flags_parse(pool, &args[i], false, &m->flags, error_r) < 0)
				return -1;
			i++;
		}
		if (i < count && args[i].type == IMAP_ARG_STRING) {
			int tz;
			if (!imap_parse_datetime(args[i].str, &m->date, &tz)) {
				*error_r = "Invalid date-time";
				return -1;
			}
			i++;
		}
		if (i == count) {
			*error_r = "APPEND needs the message as a literal";
			return -1;
		}
		if (append_data(args, count, &i, m, error_r) < 0)
			return -1;
	}
	if (n == 0) {
		*error_r = "APPEND needs the message as a literal";
		return -1;
	}
	*msgs_r = msgs;
	*count_r = n;
	return 0;
}

/* ---- modified UTF-7 (RFC 3501 5.1.3) ---- */

/* glibc's iconv knows modified UTF-7 as "UTF-7-IMAP".  Its decoder is
   lenient where RFC 3501 is strict (a run without its closing "-", printable
   US-ASCII in base64, adjacent runs), but the encoding is canonical: every
   name has exactly one spelling.  So a name is valid when it decodes and
   encodes back to itself. */
#define IMAP_UTF7 "UTF-7-IMAP"

char *imap_utf7_to_utf8(struct pool *pool, const char *name)
{
	size_t len = strlen(name);
	struct buf utf8 = BUF_INIT, utf7 = BUF_INIT;
	char *r = NULL;
	if (mime_charset_convert(&utf8, "UTF-8", IMAP_UTF7, name, len) == 0 &&
	    mime_charset_convert(&utf7, IMAP_UTF7, "UTF-8", utf8.data, utf8.len) == 0 && utf7.len == len &&
	    memcmp(utf7.data, name, len) == 0)
		r = pool_strndup(pool, buf_cstr(&utf8), utf8.len);
	buf_free(&utf8);
	buf_free(&utf7);
	return r;
}

char *imap_utf8_to_utf7(struct pool *pool, const char *name)
{
	/* Control characters are refused rather than encoded (they are no
	   part of a mailbox name). */
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return NULL;
	struct buf utf7 = BUF_INIT;
	char *r = NULL;
	if (mime_charset_convert(&utf7, IMAP_UTF7, "UTF-8", name, strlen(name)) == 0)
		r = pool_strndup(pool, buf_cstr(&utf7), utf7.len);
	buf_free(&utf7);
	return r;
}

int imap_mailbox_parse(struct pool *pool, const struct imap_arg *arg, bool utf8, const char **name_r,
		       const char **error_r)
{
	const char *s = imap_arg_astring(arg);
	if (s == NULL) {
		*error_r = "Invalid mailbox name";
		return -1;
	}
	if (strcasecmp(s, "INBOX") == 0) {
		*name_r = "INBOX";
		return 1;
	}
	const char *name = s;
	if (utf8) {
		if (!utf8_valid(s, strlen(s)) || (name = imap_utf8_to_utf7(pool, s)) == NULL) {
			*error_r = "Mailbox name is not valid UTF-8";
			return 0;
		}
	} else if (imap_utf7_to_utf8(pool, s) == NULL) {
		*error_r = "Mailbox name is not valid modified UTF-7";
		return 0;
	}
	/* "INBOX.sub" keeps INBOX's canonical case */
	if (strncasecmp(name, "INBOX", 5) == 0 && name[5] != '\0' &&
	    (name[5] < 'A' || name[5] > 'z' || (name[5] > 'Z' && name[5] < 'a'))) {
		char *c = pool_strdup(pool, name);
		memcpy(c, "INBOX", 5);
		name = c;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			*error_r = "Control characters in mailbox name";
			return 0;
		}
	}
	*name_r = name;
	return 1;
}
