/* Fuzzes RFC 5322 date-time parsing (mime_date_parse in src/mime/date.c).
   Checks that an accepted date has a zone offset of at most 99:59 and
   that, formatted again with mime_date_format (in UTC), it parses back to
   the same instant with a zero offset. */
#include "lib/buf.h"
#include "mime/compose.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	time_t t;
	int tz;
	if (mime_date_parse((const char *)data, size, &t, &tz) < 0)
		return 0;
	if (tz < -(99 * 60 + 59) || tz > 99 * 60 + 59)
		abort();
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL)
		abort();
	/* mime_date_format writes four-digit years. */
	if (tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
		return 0;
	struct buf out = BUF_INIT;
	mime_date_format(&out, t);
	time_t t2;
	int tz2;
	if (mime_date_parse(out.data, out.len, &t2, &tz2) < 0 || t2 != t || tz2 != 0)
		abort();
	buf_free(&out);
	return 0;
}
