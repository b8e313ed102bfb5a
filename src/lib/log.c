#include "lib/log.h"
#include "lib/log_syslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* Where lines go (log_open()). */
static enum { TO_STDERR, TO_JOURNAL, TO_SYSLOG, TO_FILE } target = TO_STDERR;
static int log_fd = STDERR_FILENO;
static char log_path[1024];
static uid_t log_uid = (uid_t)-1; /* the file's owner, for reopening */
static gid_t log_gid = (gid_t)-1;

int log_open(const char *where, uid_t uid, gid_t gid, char **error_r)
{
	if (where == NULL || where[0] == '\0' || !strcmp(where, "stderr")) {
		/* systemd says it reads stderr into the journal: the journal
		   keeps the time and takes the level from "<N>" */
		const char *js = getenv("JOURNAL_STREAM");
		target = js != NULL && js[0] != '\0' ? TO_JOURNAL : TO_STDERR;
		return 0;
	}
	if (!strcmp(where, "syslog")) {
		log_syslog_open();
		target = TO_SYSLOG;
		return 0;
	}
	int fd = open(where, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0 || (uid != (uid_t)-1 && fchown(fd, uid, gid) < 0)) {
		if (error_r != NULL) {
			char buf[1200];
			snprintf(buf, sizeof(buf), "cannot open the log file %s: %s", where, strerror(errno));
			*error_r = strdup(buf);
		}
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(log_path, sizeof(log_path), "%s", where);
	log_uid = uid;
	log_gid = gid;
	if (dup2(fd, STDERR_FILENO) >= 0) {
		/* stderr itself: what libraries write lands there too */
		close(fd);
		fd = STDERR_FILENO;
	}
	log_fd = fd;
	target = TO_FILE;
	return 0;
}

void log_reopen(void)
{
	if (target != TO_FILE)
		return;
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		log_error("log reopen path=%s error=\"%s\" (still writing to the old file)", log_path,
			  strerror(errno));
		return;
	}
	/* made by root (the supervisor reopens first): the server's user
	   must be able to open it after */
	if (log_uid != (uid_t)-1 && geteuid() == 0 && fchown(fd, log_uid, log_gid) < 0)
		log_error("log reopen path=%s chown error=\"%s\"", log_path, strerror(errno));
	/* the number stays: threads writing now go to the old or the new
	   file, never to a closed descriptor */
	dup2(fd, log_fd);
	close(fd);
}

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
	size_t n = 0;
	if (target == TO_JOURNAL) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", log_syslog_priority(level));
	} else if (target != TO_SYSLOG) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		struct tm tm;
		localtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld ", (long)tv.tv_usec / 1000);
	}
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s[%ld]: %s: ", log_role,
			      log_pid ? log_pid : (long)getpid(), level_names[level]);
	if (n < sizeof(line)) {
		int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (m > 0)
			n += (size_t)m;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (target == TO_SYSLOG) {
		log_syslog_write(level, line, n - 1);
	} else {
		/* One write() per line keeps lines from several processes whole. */
		ssize_t ignored = write(log_fd, line, n);
		(void)ignored;
	}
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
