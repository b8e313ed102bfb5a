/* Fuzzes ARC chain parsing (src/trust/arc.c): the input is a header block.
   Checks that a chain that parses has complete sets 1..n within 50, key
   names for each seal, and that verifying it without keys fails. */
#include "lib/xalloc.h"
#include "trust/arc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *no_key(void *ctx, const char *name)
{
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xmemdup(data, size);
	struct arc_chain c;
	const char *why = NULL;
	int rc = arc_chain_parse(&c, text, size, 1800000000, &why);
	if (rc == -1 && why == NULL)
		abort();
	if (rc == 1) {
		if (c.n < 1 || c.n > ARC_MAX_INSTANCES)
			abort();
		for (int i = 1; i <= c.n; i++)
			if (c.sets[i].aar == NULL || c.sets[i].ams == NULL || c.sets[i].as == NULL)
				abort();
		char *names[ARC_MAX_INSTANCES + 1];
		size_t n = arc_chain_key_names(&c, names, N_ELEMENTS(names));
		if (n == 0)
			abort();
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		unsigned char bh[32] = {0};
		if (arc_chain_verify(&c, text, size, bh, no_key, NULL, &why) != ARC_FAIL)
			abort();
		arc_chain_free(&c);
	}
	free(text);
	return 0;
}
