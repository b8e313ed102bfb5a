/* Fuzzes DMARC (src/trust/dmarc.c): the input as a policy record and as a
   domain name.  Checks that
   - a record that parses has valid policies and a pct of 0..100, and a
     record the parser calls no DMARC record does not start with v=DMARC1;
   - the organizational domain is a suffix of the (lowercased) domain and
     aligns with it in relaxed mode;
   - the verdict of a message that passed nothing is fail with the record's
     policy or a weaker one. */
#include "lib/xalloc.h"
#include "trust/dmarc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	struct dmarc_record r;
	const char *error = NULL;
	int rc = dmarc_record_parse(&r, text, &error);
	if (rc == 1) {
		if (r.p > DMARC_POLICY_REJECT || r.sp > DMARC_POLICY_REJECT || r.pct > 100)
			abort();
		struct dmarc_input in = {"example.com", SPF_FAIL, "example.com", NULL, 0};
		struct dmarc_verdict v;
		dmarc_evaluate(&r, "example.com", &in, (unsigned)size, &v);
		if (v.result != DMARC_FAIL || v.policy > v.requested || v.requested != r.p)
			abort();
	} else if (rc == -1 && error == NULL) {
		abort();
	}
	if (size > 0 && size < 300 && memchr(text, '.', strlen(text)) != NULL) {
		char *org = dmarc_org_domain(text);
		size_t ol = strlen(org), tl = strlen(text);
		while (tl > 0 && text[tl - 1] == '.')
			tl--;
		if (ol > tl)
			abort();
		if (!dmarc_aligned(text, org, false))
			abort();
		free(org);
	}
	free(text);
	return 0;
}
