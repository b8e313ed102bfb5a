/* Fuzzes the configuration parser (src/lib/config.c) through both of its
   readers: config_load_string() on the input as text and config_load() on
   the same bytes in a temporary file.  Checks that
   - a failure always comes with an error naming the file and line;
   - for input without NUL bytes both readers agree (same result, same
     error or same effective configuration);
   - the effective configuration of a successful load reads back to itself
     (what `postoffice check` prints is a valid file). */
#include "lib/config.h"
#include "lib/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char tmp_path[] = "/tmp/fuzz_config.XXXXXX";
static int tmp_fd = -1;

static void tmp_remove(void)
{
	unlink(tmp_path);
}

/* Writes data to the temporary file (created on first use). */
static void tmp_write(const uint8_t *data, size_t size)
{
	if (tmp_fd < 0) {
		tmp_fd = mkstemp(tmp_path);
		if (tmp_fd < 0)
			abort();
		atexit(tmp_remove);
	}
	if (ftruncate(tmp_fd, 0) < 0 || pwrite(tmp_fd, data, size, 0) != (ssize_t)size)
		abort();
}

static char *effective(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		abort();
	config_write_effective(cfg, f);
	fclose(f);
	return text;
}

/* An error reads "NAME:LINE: ...". */
static void check_error(const char *error, const char *name)
{
	size_t n = strlen(name);
	if (error == NULL || strncmp(error, name, n) != 0 || error[n] != ':' || error[n + 1] < '0' ||
	    error[n + 1] > '9')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	tmp_write(data, size); /* first: it names tmp_path */
	char *text = xstrndup((const char *)data, size);
	struct config cfg;
	char *error = NULL;
	int rc = config_load_string(&cfg, text, tmp_path, &error);
	if (rc < 0)
		check_error(error, tmp_path);
	else if (error != NULL)
		abort();
	char *eff = rc == 0 ? effective(&cfg) : NULL;

	/* The file reader. */
	struct config fcfg;
	char *ferror = NULL;
	int frc = config_load(&fcfg, tmp_path, &ferror);
	if (frc < 0)
		check_error(ferror, tmp_path);
	if (memchr(data, '\0', size) == NULL) {
		if (frc != rc || (rc < 0 && strcmp(error, ferror) != 0))
			abort();
		if (rc == 0) {
			char *feff = effective(&fcfg);
			if (strcmp(eff, feff) != 0)
				abort();
			free(feff);
		}
	}
	if (frc == 0)
		config_free(&fcfg);
	free(ferror);

	/* The effective configuration reads back to itself. */
	if (rc == 0) {
		struct config again;
		char *aerror = NULL;
		if (config_load_string(&again, eff, "effective", &aerror) < 0) {
			fprintf(stderr, "effective config does not parse: %s\n%s", aerror, eff);
			abort();
		}
		char *eff2 = effective(&again);
		if (strcmp(eff, eff2) != 0) {
			fprintf(stderr, "effective config changed:\n%s\n---\n%s", eff, eff2);
			abort();
		}
		free(eff2);
		config_free(&again);
		config_finish(&cfg);
		config_free(&cfg);
	}
	free(eff);
	free(error);
	free(text);
	return 0;
}
