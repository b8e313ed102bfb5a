/* RFC 5322 section 3.3 dates (obsolete forms of 4.3 accepted). */
#include "mime/compose.h"
#include "mime/mime_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

static const char *const month_names[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};
static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

void mime_date_format(struct buf *out, time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	long off = tm.tm_gmtoff / 60;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	buf_printf(out, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld", day_names[tm.tm_wday], tm.tm_mday,
		   month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
		   off / 60, off % 60);
}

struct dcursor {
	const char *s, *end;
};

static void dskip(struct dcursor *c)
{
	while (c->s < c->end && (mime_is_space((unsigned char)*c->s) || *c->s == ',')) {
		c->s++;
	}
	if (c->s < c->end && *c->s == '(') {
		while (c->s < c->end && *c->s != ')')
			c->s++;
		if (c->s < c->end)
			c->s++;
		dskip(c);
	}
}

static int dnumber(struct dcursor *c, int max_digits, int *n_r)
{
	int n = 0, digits = 0;
	while (c->s < c->end && *c->s >= '0' && *c->s <= '9' && digits < max_digits) {
		n = n * 10 + (*c->s++ - '0');
		digits++;
	}
	*n_r = n;
	return digits;
}

static size_t dword(struct dcursor *c, char *w, size_t size)
{
	size_t n = 0;
	while (c->s < c->end && ((*c->s | 0x20) >= 'a' && (*c->s | 0x20) <= 'z')) {
		if (n + 1 < size)
			w[n++] = *c->s;
		c->s++;
	}
	w[n] = '\0';
	return n;
}

/* Zone: +hhmm / -hhmm or an obsolete name (RFC 5322 4.3). */
static int dzone(struct dcursor *c, int *minutes_r)
{
	static const struct {
		const char *name;
		int hours;
	} zones[] = {
	    {"UT", 0},   {"UTC", 0},  {"GMT", 0},  {"Z", 0},    {"EST", -5}, {"EDT", -4},
	    {"CST", -6}, {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7},
	};
	*minutes_r = 0;
	if (c->s < c->end && (*c->s == '+' || *c->s == '-')) {
		int sign = *c->s++ == '-' ? -1 : 1, n;
		/* hhmm: the minutes are 00-59 (RFC 5322 3.3). */
		if (dnumber(c, 4, &n) != 4 || n % 100 > 59)
			return -1;
		*minutes_r = sign * (n / 100 * 60 + n % 100);
		return 0;
	}
	char w[8];
	if (dword(c, w, sizeof(w)) == 0)
		return 0; /* missing zone: read as UTC */
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (!strcasecmp(w, zones[i].name))
			*minutes_r = zones[i].hours * 60;
	return 0;
}

int mime_date_parse(const char *s, size_t len, time_t *t_r, int *tz_offset_r)
{
	struct dcursor c = {s, s + len};
	struct tm tm = {0};
	char w[16];
	int day, year, h, m, sec = 0, zone;
	dskip(&c);
	if (c.s < c.end && !(*c.s >= '0' && *c.s <= '9'))
		dword(&c, w, sizeof(w)); /* day of week */
	dskip(&c);
	if (dnumber(&c, 2, &day) == 0)
		return -1;
	dskip(&c);
	dword(&c, w, sizeof(w));
	tm.tm_mon = -1;
	for (int i = 0; i < 12; i++)
		if (!strncasecmp(w, month_names[i], 3))
			tm.tm_mon = i;
	if (tm.tm_mon < 0)
		return -1;
	dskip(&c);
	int yd = dnumber(&c, 4, &year);
	if (yd == 0)
		return -1;
	if (yd <= 2)
		year += year < 50 ? 2000 : 1900;
	else if (yd == 3)
		year += 1900;
	dskip(&c);
	if (dnumber(&c, 2, &h) == 0 || c.s >= c.end || *c.s++ != ':' || dnumber(&c, 2, &m) == 0)
		return -1;
	if (c.s < c.end && *c.s == ':') {
		c.s++;
		dnumber(&c, 2, &sec);
	}
	dskip(&c);
	if (dzone(&c, &zone) < 0)
		return -1;
	if (day < 1 || day > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	tm.tm_mday = day;
	tm.tm_year = year - 1900;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*t_r = timegm(&tm) - (time_t)zone * 60;
	*tz_offset_r = zone;
	return 0;
}
