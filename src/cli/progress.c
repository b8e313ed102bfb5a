/* fetch's progress line (see progress.h). */
#include "cli/progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* 1536 -> "1.5 KB" (powers of 1000, as transfer rates are given). */
static void human(char *out, size_t size, double v)
{
	static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
	size_t u = 0;
	while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		u++;
	}
	snprintf(out, size, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

void progress_format(char *out, size_t size, size_t done, size_t total, uint64_t bytes, double seconds)
{
	char b[32], rate[32], eta[32] = "--:--";
	human(b, sizeof(b), (double)bytes);
	human(rate, sizeof(rate), seconds > 0 ? (double)bytes / seconds : 0);
	if (done > 0 && total > done && seconds > 0) {
		long left = (long)(seconds / (double)done * (double)(total - done) + 0.5);
		snprintf(eta, sizeof(eta), "%ld:%02ld", left / 60, left % 60);
	} else if (total > 0 && done >= total) {
		snprintf(eta, sizeof(eta), "0:00");
	}
	int pct = total > 0 ? (int)(done * 100 / total) : 100;
	snprintf(out, size, "%zu/%zu messages (%d%%)  %s  %s/s  ETA %s", done, total, pct, b, rate, eta);
}

static void draw(struct progress *p, const struct timespec *now, bool last)
{
	char line[160];
	progress_format(line, sizeof(line), p->done, p->total, p->bytes, since(&p->start, now));
	/* \r and clear to the end of the line: one line, rewritten */
	fprintf(stderr, "\r%s\033[K%s", line, last ? "\n" : "");
	fflush(stderr);
	p->drawn = *now;
}

void progress_start(struct progress *p, size_t total)
{
	memset(p, 0, sizeof(*p));
	p->on = isatty(STDERR_FILENO) == 1 && total > 0;
	p->total = total;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	if (p->on)
		draw(p, &p->start, false);
}

void progress_add(struct progress *p, size_t len)
{
	p->done++;
	p->bytes += len;
	if (!p->on)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (since(&p->drawn, &now) >= 0.1)
		draw(p, &now, false);
}

void progress_end(struct progress *p)
{
	if (!p->on)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	draw(p, &now, true);
	p->on = false;
}
