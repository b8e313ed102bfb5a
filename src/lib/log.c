#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static char log_role[32] = "postoffice";
static long log_pid; /* cached: set again by log_set_role() after fork */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *role, enum log_level level)
{
	min_level = level;
	log_set_role(role);
	const char *env = getenv("POSTOFFICE_DEBUG");
	if (env != NULL && *env != '\0' && *env != '0')
		min_level = LOG_DEBUG;
}

void log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
	log_pid = (long)getpid();
}

static void log_write(enum log_level level, const char *fmt, va_list ap)
{
	if (level < min_level)
		return;
	int saved = errno;
	char line[2048];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	localtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s[%ld]: %s: ", (long)tv.tv_usec / 1000,
			      log_role, log_pid ? log_pid : (long)getpid(), level_names[level]);
	if (n < sizeof(line)) {
		int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (m > 0)
			n += (size_t)m;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write() per line keeps lines from several processes whole. */
	ssize_t ignored = write(STDERR_FILENO, line, n);
	(void)ignored;
	errno = saved;
}

#define LOG_FN(name, level)                                                                                  \
	void name(const char *fmt, ...)                                                                      \
	{                                                                                                    \
		va_list ap;                                                                                  \
		va_start(ap, fmt);                                                                           \
		log_write(level, fmt, ap);                                                                   \
		va_end(ap);                                                                                  \
	}
LOG_FN(log_debug, LOG_DEBUG)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_warn, LOG_WARN)
LOG_FN(log_error, LOG_ERROR)

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_write(LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

void log_panic_at(const char *func, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("panic in %s(): %s", func, msg);
	abort();
}

char *log_printable(char *dst, size_t dstsize, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (dstsize == 0)
		return dst;
	for (size_t i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= dstsize)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstsize)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}
