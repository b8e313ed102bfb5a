/* bench/gmime_bench: the same walk as mime_bench.c with GMime 3: parse
   each message from memory, visit every part (into message/rfc822 parts
   too) and decode every leaf's content.  Prints "MBPS <median>". */
#include <gmime/gmime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 3

static size_t decoded, parts;
static GMimeStream *sink;

static void visit(GMimeObject *parent, GMimeObject *part, gpointer user_data);

static void visit_message(GMimeMessage *message)
{
	GMimeObject *body = g_mime_message_get_mime_part(message);
	if (body == NULL)
		return;
	visit(NULL, body, NULL);
	if (GMIME_IS_MULTIPART(body))
		g_mime_multipart_foreach(GMIME_MULTIPART(body), visit, NULL);
}

static void visit(GMimeObject *parent, GMimeObject *part, gpointer user_data)
{
	parts++;
	if (GMIME_IS_MESSAGE_PART(part)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
		if (m != NULL)
			visit_message(m);
		return;
	}
	if (!GMIME_IS_PART(part))
		return;
	GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(part));
	if (content == NULL)
		return;
	g_mime_stream_reset(sink);
	g_byte_array_set_size(g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(sink)), 0);
	ssize_t n = g_mime_data_wrapper_write_to_stream(content, sink);
	if (n > 0)
		decoded += (size_t)n;
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
	g_mime_init();
	GByteArray **arrays = calloc((size_t)argc, sizeof(*arrays));
	size_t total = 0;
	for (int i = 1; i < argc; i++) {
		gchar *data;
		gsize len;
		if (!g_file_get_contents(argv[i], &data, &len, NULL)) {
			fprintf(stderr, "cannot read %s\n", argv[i]);
			return 1;
		}
		arrays[i] = g_byte_array_new_take((guint8 *)data, len);
		total += len;
	}
	sink = g_mime_stream_mem_new();
	double secs[RUNS];
	for (int r = 0; r < RUNS; r++) {
		double t0 = now();
		decoded = parts = 0;
		for (int i = 1; i < argc; i++) {
			GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(arrays[i]);
			g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
			GMimeParser *parser = g_mime_parser_new_with_stream(stream);
			GMimeMessage *message = g_mime_parser_construct_message(parser, NULL);
			if (message != NULL) {
				visit_message(message);
				g_object_unref(message);
			}
			g_object_unref(parser);
			g_object_unref(stream);
		}
		secs[r] = now() - t0;
	}
	qsort(secs, RUNS, sizeof(secs[0]), cmp_double);
	fprintf(stderr, "gmime: %d messages, %zu bytes, %zu parts, %zu decoded bytes\n", argc - 1, total, parts,
		decoded);
	printf("MBPS %.1f\n", (double)total / 1e6 / secs[RUNS / 2]);
	g_object_unref(sink);
	g_mime_shutdown();
	return 0;
}
