/* Fuzzes what the server makes of a raw DNS answer to an MX query
   (dns_mx_parse in src/dns/dns.c, over c-ares' ares_parse_mx_reply), then
   orders the records as delivery does; and the same bytes as an answer to
   a TXT query (dns_txt_parse, over ares_parse_txt_reply_ext).  A and AAAA answers are parsed
   inside c-ares' getaddrinfo and never reach our code as bytes.  Checks
   that
   - success means at least one record, each with a host (NUL-terminated,
     "" only for the null MX);
   - a failure hands back nothing;
   - dns_mx_sort keeps the records, orders them by preference with null MX
     entries last, with any choice of the random function (taken from the
     input);
   - dns_mx_is_null is true exactly when every record is a null MX;
   - a TXT answer gives at least one record, each NUL-terminated after its
     len bytes, no longer than the answer; a failure hands back nothing. */
#include "dns/dns.h"

#include <ares.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct rnd_input {
	const uint8_t *data;
	size_t size, pos;
};

static size_t rnd_from_input(void *ctx, size_t n)
{
	struct rnd_input *r = ctx;
	if (r->size == 0)
		return 0;
	uint8_t b = r->data[r->pos++ % r->size];
	return b % (n + 1); /* n itself too: dns_mx_sort must clamp it */
}

static void check_txt(const uint8_t *data, size_t size)
{
	struct dns_txt *txt;
	size_t n;
	if (dns_txt_parse(data, (int)size, &txt, &n) != ARES_SUCCESS) {
		if (txt != NULL || n != 0)
			abort();
		return;
	}
	if (txt == NULL || n == 0)
		abort();
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (txt[i].text == NULL || txt[i].text[txt[i].len] != '\0')
			abort();
		total += txt[i].len;
	}
	if (total > size)
		abort();
	dns_txt_free(txt, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65535)
		return 0;
	check_txt(data, size);
	struct dns_mx *mx;
	size_t n;
	int status = dns_mx_parse(data, (int)size, &mx, &n);
	if (status != ARES_SUCCESS) {
		if (mx != NULL || n != 0)
			abort();
		return 0;
	}
	if (mx == NULL || n == 0)
		abort();
	size_t nulls = 0;
	unsigned long long pref_sum = 0;
	for (size_t i = 0; i < n; i++) {
		if (mx[i].host == NULL || mx[i].pref > 65535)
			abort();
		nulls += mx[i].host[0] == '\0';
		pref_sum += mx[i].pref;
	}
	if (dns_mx_is_null(mx, n) != (nulls == n))
		abort();
	struct rnd_input rnd = {data, size, 0};
	dns_mx_sort(mx, n, rnd_from_input, &rnd);
	size_t nulls2 = 0;
	unsigned long long pref_sum2 = 0;
	for (size_t i = 0; i < n; i++) {
		int is_null = mx[i].host[0] == '\0';
		nulls2 += is_null;
		pref_sum2 += mx[i].pref;
		if (i > 0) {
			int prev_null = mx[i - 1].host[0] == '\0';
			if (prev_null && !is_null)
				abort();
			if (prev_null == is_null && mx[i - 1].pref > mx[i].pref)
				abort();
		}
	}
	if (nulls2 != nulls || pref_sum2 != pref_sum)
		abort();
	dns_mx_free(mx, n);
	return 0;
}
