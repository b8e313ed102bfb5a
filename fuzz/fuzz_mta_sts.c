/* Fuzzes MTA-STS text (src/relay/mta_sts.c): the input as a TXT record, as
   a policy file and as a cache file.  Checks that
   - a TXT record that parses has an id of 1 to 32 letters and digits, and
     a failure says why;
   - a policy that parses has a valid mode, a max_age of at most a year,
     at most MTA_STS_MX_MAX lowercase mx patterns (one at least unless the
     mode is none), each matching a host name of its own shape;
   - a parsed policy survives the cache file unchanged, and the cache file
     of what a cache file gave is the same text again. */
#include "lib/xalloc.h"
#include "relay/mta_sts.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_policy(const struct mta_sts_policy *p)
{
	if (p->mode > MTA_STS_MODE_ENFORCE || p->max_age > MTA_STS_MAX_AGE_MAX || p->nmx > MTA_STS_MX_MAX)
		abort();
	if (p->mode != MTA_STS_MODE_NONE && p->nmx == 0)
		abort();
	for (size_t i = 0; i < p->nmx; i++) {
		const char *m = p->mx[i];
		for (const char *c = m; *c != '\0'; c++)
			if (isupper((unsigned char)*c))
				abort();
		/* "*.rest" matches "x.rest"; a plain name matches itself */
		char *host = m[0] == '*' ? xasprintf("x%s", m + 1) : xstrdup(m);
		if (!mta_sts_pattern_match(m, host) || !mta_sts_policy_match(p, host))
			abort();
		free(host);
	}
}

static void same_policy(const struct mta_sts_policy *a, const struct mta_sts_policy *b)
{
	if (a->mode != b->mode || a->max_age != b->max_age || a->nmx != b->nmx || strcmp(a->id, b->id) != 0 ||
	    a->fetched != b->fetched)
		abort();
	for (size_t i = 0; i < a->nmx; i++)
		if (strcmp(a->mx[i], b->mx[i]) != 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	char id[MTA_STS_ID_MAX + 1];
	const char *error = NULL;
	int rc = mta_sts_txt_parse(text, id, &error);
	if (rc == 1) {
		size_t n = strlen(id);
		if (n == 0 || n > MTA_STS_ID_MAX)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)id[i]))
				abort();
	} else if (rc == -1 && error == NULL) {
		abort();
	}

	struct mta_sts_policy p, q, r;
	if (mta_sts_policy_parse((const char *)data, size, &p, &error) == 0) {
		check_policy(&p);
		memcpy(p.id, "fuzz", 5);
		p.fetched = 12345;
		size_t len;
		char *file = mta_sts_cache_format(&p, &len);
		if (mta_sts_cache_parse(file, len, &q, &error) < 0)
			abort();
		same_policy(&p, &q);
		mta_sts_policy_copy(&r, &q);
		same_policy(&q, &r);
		mta_sts_policy_clear(&q);
		mta_sts_policy_clear(&r);
		free(file);
		mta_sts_policy_clear(&p);
	} else if (error == NULL || p.mx != NULL || p.nmx != 0) {
		abort();
	}

	if (mta_sts_cache_parse((const char *)data, size, &p, &error) == 0) {
		check_policy(&p);
		size_t len, len2;
		char *file = mta_sts_cache_format(&p, &len);
		if (mta_sts_cache_parse(file, len, &q, &error) < 0)
			abort();
		same_policy(&p, &q);
		char *file2 = mta_sts_cache_format(&q, &len2);
		if (len != len2 || memcmp(file, file2, len) != 0)
			abort();
		free(file2);
		free(file);
		mta_sts_policy_clear(&q);
		mta_sts_policy_clear(&p);
	}
	free(text);
	return 0;
}
