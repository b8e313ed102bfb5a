#ifndef LIB_LOG_H
#define LIB_LOG_H
/* One line per event on stderr: "TIME postoffice[PID]: LEVEL: text".  By
   convention text is an event name followed by key=value fields, e.g.
   log_info("smtp connect session=%s ip=%s", id, ip).  Untrusted text must go
   through log_printable() first. */
#include <stddef.h>
#include <sys/types.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_init(const char *role, enum log_level min_level);
void log_set_role(const char *role);
/* Where lines go ([server] log): "stderr" (the default; under systemd,
   which announces itself with JOURNAL_STREAM, lines start with the
   journal's "<N>" priority instead of the time), "syslog" (facility mail),
   or a file, appended to, created with mode 0640 and owned by uid:gid
   unless uid is (uid_t)-1.  A file replaces stderr, so that whatever else
   writes there lands in it too.  -1 with *error_r (caller frees). */
int log_open(const char *where, uid_t uid, gid_t gid, char **error_r);
/* Opens the log file again by its name (after logrotate moved it away);
   nothing for stderr and syslog.  SIGUSR2 calls it in every process. */
void log_reopen(void);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs and exits(1). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A broken invariant: logs with the function name and aborts. */
#define log_panic(...) log_panic_at(__func__, __VA_ARGS__)
void log_panic_at(const char *func, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Copies at most max bytes of untrusted text into dst (size dstsize),
   replacing control and non-ASCII bytes with \xNN and quoting nothing else.
   Always NUL-terminates; returns dst. */
char *log_printable(char *dst, size_t dstsize, const char *src, size_t srclen);
#endif
