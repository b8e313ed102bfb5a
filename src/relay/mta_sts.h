#ifndef RELAY_MTA_STS_H
#define RELAY_MTA_STS_H
/* MTA-STS (RFC 8461) as text: the _mta-sts TXT record (3.1), the policy
   file (3.2), MX host patterns (4.1) and the form a policy is cached in.
   No network here: relay/runner_tls.h looks records up, fetches policies
   (relay/mta_sts_fetch.h) and keeps the cache. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 3.1: an id is 1 to 32 letters and digits. */
#define MTA_STS_ID_MAX 32
/* 3.2: max_age is at most 31557600 seconds (a year); a larger value is
   taken as that. */
#define MTA_STS_MAX_AGE_MAX 31557600u
/* Our bounds on what a policy may hold (the RFC sets none). */
#define MTA_STS_MX_MAX 64
#define MTA_STS_POLICY_SIZE_MAX 65536

enum mta_sts_mode { MTA_STS_MODE_NONE, MTA_STS_MODE_TESTING, MTA_STS_MODE_ENFORCE };
/* "none", "testing", "enforce". */
const char *mta_sts_mode_name(enum mta_sts_mode mode);

struct mta_sts_policy {
	enum mta_sts_mode mode;
	uint32_t max_age; /* seconds, at most MTA_STS_MAX_AGE_MAX */
	char **mx;        /* patterns: "mx.example.com" or "*.example.com", lowercase */
	size_t nmx;       /* at least one unless mode is none */
	/* The cache's: the TXT id the policy was fetched under and when. */
	char id[MTA_STS_ID_MAX + 1];
	int64_t fetched;
};

/* Parses one TXT record.  1 with the id (NUL-terminated) in id_r for a
   valid record; 0 for text that is no MTA-STS record (it does not start
   with "v=STSv1;"); -1 for an MTA-STS record that breaks the grammar of
   3.1 (no or a bad id=, a malformed extension field), *error_r static. */
int mta_sts_txt_parse(const char *text, char id_r[MTA_STS_ID_MAX + 1], const char **error_r);
/* 3.1: of the TXT records at _mta-sts.DOMAIN, those that do not start with
   "v=STSv1;" are discarded; unless exactly one remains and it is valid,
   the domain has no policy.  1 with its id, 0 without a usable record
   (*error_r static: why, or NULL when there is simply none). */
int mta_sts_txt_select(char *const *records, size_t count, char id_r[MTA_STS_ID_MAX + 1],
		       const char **error_r);

/* Parses a policy file (3.2: "key: value" lines ended by LF or CRLF;
   version STSv1, mode, max_age and, unless mode is none, one or more mx;
   other keys are ignored; of a repeated key other than mx the first
   counts).  0 with *p filled (free with mta_sts_policy_clear; id and
   fetched zero), -1 with *error_r (static) and *p empty.  len bounds the
   text, which may hold NUL bytes (they make it invalid). */
int mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *p, const char **error_r);
void mta_sts_policy_clear(struct mta_sts_policy *p);
/* A deep copy of src into *dst. */
void mta_sts_policy_copy(struct mta_sts_policy *dst, const struct mta_sts_policy *src);

/* 4.1: does the MX host name match pattern?  Names compare without case
   and without a trailing dot; "*." stands for exactly one leftmost label
   ("*.example.com" matches "mx.example.com", not "example.com" nor
   "a.mx.example.com"). */
bool mta_sts_pattern_match(const char *pattern, const char *host);
/* True when one of p's mx patterns matches host. */
bool mta_sts_policy_match(const struct mta_sts_policy *p, const char *host);

/* The cache file of a policy: "id: ID" and "fetched: SECONDS" lines, then
   the policy as a policy file.  The result is NUL-terminated (caller
   frees), *len_r its length. */
char *mta_sts_cache_format(const struct mta_sts_policy *p, size_t *len_r);
/* Reads what mta_sts_cache_format wrote: 0 with *p (its id and fetched
   included), -1 with *error_r (static). */
int mta_sts_cache_parse(const char *text, size_t len, struct mta_sts_policy *p, const char **error_r);
/* True while a policy fetched at p->fetched is still valid at now. */
bool mta_sts_policy_fresh(const struct mta_sts_policy *p, int64_t now);
#endif
