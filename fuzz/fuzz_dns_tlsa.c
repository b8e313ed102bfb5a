/* Fuzzes what the server makes of a raw DNS answer to a TLSA or an A query
   sent with the AD bit (dns_tlsa_parse in src/dns/dns_tlsa.c).  Checks
   that
   - DNS_OK hands back 1 to DNS_TLSA_MAX records (TLSA) or a count of at
     least one (A), and any other status nothing;
   - each record's data lies within the answer (its length is less than
     the answer's) and can be read whole;
   - the secure flag is the AD bit of the header. */
#include "dns/dns_tlsa.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65535)
		return 0;
	struct tls_tlsa *recs = NULL;
	size_t n = 0;
	bool secure = false;
	enum dns_status st = dns_tlsa_parse(data, (int)size, 52, &recs, &n, &secure);
	if (st == DNS_OK) {
		if (n == 0 || n > DNS_TLSA_MAX || recs == NULL)
			abort();
		unsigned sum = 0;
		for (size_t i = 0; i < n; i++) {
			if (recs[i].len >= size)
				abort();
			for (size_t j = 0; j < recs[i].len; j++)
				sum += recs[i].data[j];
			(void)tls_tlsa_usable(&recs[i]);
		}
		(void)sum;
	} else if (recs != NULL || n != 0) {
		abort();
	}
	if (size >= 4 && st != DNS_TEMPFAIL && secure != ((data[3] & 0x20) != 0))
		abort();
	dns_tlsa_free(recs, n);
	st = dns_tlsa_parse(data, (int)size, 1, NULL, &n, &secure);
	if ((st == DNS_OK) != (n > 0))
		abort();
	return 0;
}
