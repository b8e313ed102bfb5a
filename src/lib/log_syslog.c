/* syslog(3) for log.c (see log_syslog.h). */
#include "lib/log_syslog.h"

#include <syslog.h>

static const int priorities[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};

void log_syslog_open(void)
{
	openlog("postoffice", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int log_syslog_priority(int level)
{
	return priorities[level];
}

void log_syslog_write(int level, const char *line, size_t len)
{
	syslog(priorities[level], "%.*s", (int)len, line);
}
