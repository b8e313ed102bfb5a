#ifndef CLI_PROGRESS_H
#define CLI_PROGRESS_H
/* `fetch`'s progress line on a terminal: messages done of the total, bytes,
   rate and the time left, redrawn at most ten times a second on stderr.
   Nothing at all when stderr is not a terminal (a cron job's mail stays
   clean). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct progress {
	bool on;
	size_t total, done;
	uint64_t bytes;
	struct timespec start, drawn;
};

/* Starts counting toward total messages (again, for each IMAP batch). */
void progress_start(struct progress *p, size_t total);
/* One message of len bytes is stored. */
void progress_add(struct progress *p, size_t len);
/* The last line, ended. */
void progress_end(struct progress *p);
/* The line itself, into out (exposed for the tests). */
void progress_format(char *out, size_t size, size_t done, size_t total, uint64_t bytes, double seconds);
#endif
