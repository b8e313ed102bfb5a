#ifndef LIB_LOG_SYSLOG_H
#define LIB_LOG_SYSLOG_H
/* syslog(3) for log.c, apart because <syslog.h> defines LOG_INFO and
   friends, which log.h's levels are called too. */
#include <stddef.h>

void log_syslog_open(void);
/* level: log.h's enum log_level; journal_priority: the same as syslog's
   number (for the "<N>" prefix of lines journald reads). */
void log_syslog_write(int level, const char *line, size_t len);
int log_syslog_priority(int level);
#endif
