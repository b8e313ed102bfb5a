/* Fuzzes SPF (src/trust/spf.c): the input is the SPF record of every
   domain asked for (so include and redirect recurse into it), and a macro
   string.  The fake DNS answers A/AAAA by a hash of the name, MX and PTR
   with a host.  Checks that
   - the evaluation ends: a bounded number of rounds, each asking for
     something (the limits of RFC 7208 4.6.4 hold);
   - the result is one of the seven and permerror/temperror say why. */
#include "lib/xalloc.h"
#include "trust/spf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FNV-1a: the fake DNS must answer the same way in every run (the
   library's hash is seeded at random). */
static unsigned fnv(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	struct spf *spf = spf_new(size % 2 ? "2001:db8::1" : "192.0.2.3", "user@example.com",
				  "helo.example.org", "mx.example.net");
	int rounds = 0;
	while (!spf_run(spf)) {
		/* 10 terms, each at most 10 hosts or names and their addresses,
		   an explanation: far below this */
		if (++rounds > 300)
			abort();
		const struct spf_lookup *pending;
		size_t n = spf_pending(spf, &pending);
		if (n == 0)
			abort();
		while ((n = spf_pending(spf, &pending)) > 0) {
			char *name = xstrdup(pending[0].name);
			enum spf_rr_type type = pending[0].type;
			const char *rr;
			unsigned h = fnv(name);
			switch (type) {
			case SPF_RR_TXT:
				rr = text;
				break;
			case SPF_RR_A:
				rr = h % 3 == 0 ? "192.0.2.3" : h % 3 == 1 ? "198.51.100.7" : NULL;
				break;
			case SPF_RR_AAAA:
				rr = h % 2 ? "2001:db8::1" : NULL;
				break;
			default:
				rr = "mx.example.com";
				break;
			}
			if (h % 17 == 0)
				spf_answer(spf, type, name, SPF_DNS_TEMPFAIL, NULL, 0);
			else
				spf_answer(spf, type, name, rr != NULL ? SPF_DNS_OK : SPF_DNS_NXDOMAIN, &rr,
					   rr != NULL ? 1 : 0);
			free(name);
		}
	}
	const char *detail;
	enum spf_result r = spf_result(spf, &detail);
	if ((int)r < SPF_NONE || r > SPF_PERMERROR)
		abort();
	if ((r == SPF_PERMERROR || r == SPF_TEMPERROR) && detail == NULL)
		abort();
	free(spf_expand(spf, text, strlen(text), "example.com", size % 3 == 0));
	spf_free(&spf);
	free(text);
	return 0;
}
