#include "lib/id.h"

#include <time.h>
#include <unistd.h>

static const char id_digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Appends v in base 36 as exactly width digits (the low ones). */
static char *id_put(char *p, unsigned long long v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = id_digits[v % 36];
		v /= 36;
	}
	return p + width;
}

void id_new(char out[ID_SIZE])
{
	static unsigned counter;
	unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned long long usec =
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
	/* Time first, without leading zeros (10 digits from 1973 to 2084),
	   then the pid (5 digits: 36^5 is above Linux's pid_max of 2^22) and
	   the counter (4 digits; it would have to wrap within one
	   microsecond to repeat). */
	int width = 1;
	for (unsigned long long t = usec / 36; t > 0; t /= 36)
		width++;
	char *p = id_put(out, usec, width);
	p = id_put(p, (unsigned long long)getpid(), 5);
	p = id_put(p, n, 4);
	*p = '\0';
}
