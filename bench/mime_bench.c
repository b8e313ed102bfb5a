/* bench/mime_bench: parses every message given on the command line with
   postoffice's MIME parser, walks every part and decodes every body.
   Files are read into memory first; only parsing and decoding are timed.
   Prints the median of RUNS runs as "MBPS <value>". */
#include "lib/buf.h"
#include "mime/tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 3

struct file {
	char *data;
	size_t len;
};

static struct file read_file(const char *path)
{
	struct file f = { NULL, 0 };
	FILE *fp = fopen(path, "rb");
	if (fp == NULL) {
		perror(path);
		exit(1);
	}
	fseek(fp, 0, SEEK_END);
	f.len = (size_t)ftell(fp);
	fseek(fp, 0, SEEK_SET);
	f.data = malloc(f.len + 1);
	if (f.data == NULL || fread(f.data, 1, f.len, fp) != f.len) {
		perror(path);
		exit(1);
	}
	fclose(fp);
	return f;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct file *files = calloc((size_t)argc, sizeof(*files));
	size_t total = 0, decoded = 0, parts = 0;
	for (int i = 1; i < argc; i++) {
		files[i] = read_file(argv[i]);
		total += files[i].len;
	}
	double secs[RUNS];
	struct buf out = BUF_INIT;
	for (int r = 0; r < RUNS; r++) {
		double t0 = now();
		decoded = parts = 0;
		for (int i = 1; i < argc; i++) {
			struct mime_message *msg = mime_message_parse(files[i].data, files[i].len, NULL);
			for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p)) {
				parts++;
				if (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))
					continue;
				buf_reset(&out);
				mime_part_decode(msg, p, &out);
				decoded += out.len;
			}
			mime_message_free(&msg);
		}
		secs[r] = now() - t0;
	}
	qsort(secs, RUNS, sizeof(secs[0]), cmp_double);
	fprintf(stderr, "postoffice: %zu messages, %zu bytes, %zu parts, %zu decoded bytes\n", (size_t)argc - 1,
		total, parts, decoded);
	printf("MBPS %.1f\n", (double)total / 1e6 / secs[RUNS / 2]);
	buf_free(&out);
	for (int i = 1; i < argc; i++)
		free(files[i].data);
	free(files);
	return 0;
}
