/* The answers of DNSSEC-aware lookups (src/dns/dns_tlsa.c): TLSA records,
   the AD bit, NXDOMAIN/NODATA, CNAMEs on the way, malformed answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dns/dns_tlsa.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <string.h>

#define T_A 1
#define T_CNAME 5
#define T_TLSA 52

static const char qname[] = "\x03_25\x04_tcp\x02mx\x07"
			    "example";

/* A response header and the question: flags2 holds RA/AD/RCODE. */
static void answer_start(struct buf *b, unsigned char flags2, unsigned ancount, int qtype)
{
	const unsigned char hdr[] = {0x12, 0x34, 0x81, flags2, 0, 1, 0, (unsigned char)ancount, 0, 0, 0, 0};
	buf_append(b, hdr, sizeof(hdr));
	buf_append(b, qname, sizeof(qname)); /* with its final 0 */
	const unsigned char tail[] = {0, (unsigned char)qtype, 0, 1};
	buf_append(b, tail, sizeof(tail));
}

/* One answer record owned by the question's name (a pointer to offset 12). */
static void answer_rr(struct buf *b, int type, const void *rdata, size_t len)
{
	const unsigned char rr[] = {0xc0, 0x0c, 0, (unsigned char)type, 0, 1, 0, 0,
				    0,    60,   0, (unsigned char)len};
	buf_append(b, rr, sizeof(rr));
	buf_append(b, rdata, len);
}

static void tlsa_rdata(unsigned char *out, uint8_t usage, uint8_t sel, uint8_t mt, unsigned char fill)
{
	out[0] = usage;
	out[1] = sel;
	out[2] = mt;
	memset(out + 3, fill, 32);
}

/* An answer of one TLSA 3 1 1 record, its digest all fill. */
static void one_record(struct buf *b, unsigned char flags2, unsigned char fill)
{
	unsigned char r[35];
	tlsa_rdata(r, 3, 1, 1, fill);
	answer_start(b, flags2, 1, T_TLSA);
	answer_rr(b, T_TLSA, r, sizeof(r));
}

struct parsed {
	struct tls_tlsa *recs;
	size_t n;
	bool secure;
};

/* The first len bytes of b parsed for qtype (TLSA records kept). */
static enum dns_status parse(const struct buf *b, size_t len, int qtype, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	return dns_tlsa_parse((const unsigned char *)b->data, (int)len, qtype,
			      qtype == T_TLSA ? &p->recs : NULL, &p->n, &p->secure);
}

static void test_secure_records(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	unsigned char r1[35], r2[35];
	tlsa_rdata(r1, 3, 1, 1, 0xaa);
	tlsa_rdata(r2, 2, 0, 1, 0xbb);
	answer_start(&b, 0xa0, 2, T_TLSA); /* RA AD, NOERROR */
	answer_rr(&b, T_TLSA, r1, sizeof(r1));
	answer_rr(&b, T_TLSA, r2, sizeof(r2));
	struct parsed p;
	assert_int_equal(parse(&b, b.len, T_TLSA, &p), DNS_OK);
	assert_true(p.secure);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.recs[0].usage, 3);
	assert_int_equal(p.recs[0].selector, 1);
	assert_int_equal(p.recs[0].mtype, 1);
	assert_int_equal(p.recs[0].len, 32);
	assert_int_equal(p.recs[0].data[31], 0xaa);
	assert_true(tls_tlsa_usable(&p.recs[0]));
	assert_int_equal(p.recs[1].usage, 2);
	assert_int_equal(p.recs[1].data[0], 0xbb);
	dns_tlsa_free(p.recs, p.n);
	/* the same without AD: records, but not secure */
	b.data[3] = (char)0x80;
	assert_int_equal(parse(&b, b.len, T_TLSA, &p), DNS_OK);
	assert_false(p.secure);
	assert_int_equal(p.n, 2);
	dns_tlsa_free(p.recs, p.n);
	buf_free(&b);
}

static void test_denials(void **state)
{
	(void)state;
	static const struct {
		unsigned char flags2;
		enum dns_status status;
		bool secure;
	} cases[] = {
	    {0xa3, DNS_NXDOMAIN, true},  /* AD, NXDOMAIN: a secure denial */
	    {0x80, DNS_NODATA, false},   /* NOERROR, nothing */
	    {0x82, DNS_TEMPFAIL, false}, /* SERVFAIL */
	};
	struct buf b = BUF_INIT;
	struct parsed p;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		buf_reset(&b);
		answer_start(&b, cases[i].flags2, 0, T_TLSA);
		assert_int_equal(parse(&b, b.len, T_TLSA, &p), cases[i].status);
		assert_int_equal(p.secure, cases[i].secure);
		assert_null(p.recs);
	}
	/* records beside an error code are dropped (found by fuzz_dns_tlsa:
	   they leaked) */
	buf_reset(&b);
	one_record(&b, 0xa3, 0x22);
	assert_int_equal(parse(&b, b.len, T_TLSA, &p), DNS_NXDOMAIN);
	assert_null(p.recs);
	assert_int_equal(p.n, 0);
	/* a TLSA record too short to hold its three fields is no record */
	buf_reset(&b);
	answer_start(&b, 0xa0, 1, T_TLSA);
	answer_rr(&b, T_TLSA, "\x03\x01", 2);
	assert_int_equal(parse(&b, b.len, T_TLSA, &p), DNS_NODATA);
	buf_free(&b);
}

static void test_cname_and_addresses(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	struct parsed p;
	unsigned char r1[35];
	tlsa_rdata(r1, 3, 1, 1, 0x11);
	answer_start(&b, 0xa0, 2, T_TLSA);
	answer_rr(&b, T_CNAME, "\x01x\x00", 3);
	answer_rr(&b, T_TLSA, r1, sizeof(r1));
	assert_int_equal(parse(&b, b.len, T_TLSA, &p), DNS_OK);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.recs[0].data[0], 0x11);
	dns_tlsa_free(p.recs, p.n);
	/* an address answer: only counted */
	buf_reset(&b);
	answer_start(&b, 0xa0, 2, T_A);
	answer_rr(&b, T_A, "\x7f\x00\x00\x01", 4);
	answer_rr(&b, T_A, "\x7f\x00\x00\x02", 4);
	assert_int_equal(parse(&b, b.len, T_A, &p), DNS_OK);
	assert_int_equal(p.n, 2);
	assert_true(p.secure);
	buf_free(&b);
}

static void test_malformed(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	struct parsed p;
	one_record(&b, 0xa0, 0x11);
	/* every truncation of a good answer is refused */
	for (size_t len = 0; len < b.len; len++) {
		assert_int_equal(parse(&b, len, T_TLSA, &p), DNS_TEMPFAIL);
		assert_null(p.recs);
	}
	/* more answers announced than present */
	b.data[7] = 2;
	assert_int_equal(parse(&b, b.len, T_TLSA, &p), DNS_TEMPFAIL);
	/* a compression pointer that loops */
	buf_reset(&b);
	const unsigned char loop[] = {0, 0, 0x81, 0xa0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 52, 0, 1};
	buf_append(&b, loop, sizeof(loop));
	assert_int_equal(parse(&b, b.len, T_TLSA, &p), DNS_TEMPFAIL);
	buf_free(&b);
}

static void test_usable(void **state)
{
	(void)state;
	static unsigned char d[64];
	static const struct {
		struct tls_tlsa r;
		bool usable;
	} cases[] = {
	    {{3, 1, 1, d, 32}, true},  {{2, 0, 2, d, 64}, true},  {{3, 0, 0, d, 10}, true},
	    {{1, 1, 1, d, 32}, false}, /* PKIX-EE: RFC 7672 3.1.3 */
	    {{0, 1, 1, d, 32}, false}, {{3, 2, 1, d, 32}, false}, {{3, 1, 3, d, 32}, false},
	    {{3, 1, 1, d, 31}, false}, {{3, 1, 2, d, 32}, false}, {{3, 1, 0, d, 0}, false},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (tls_tlsa_usable(&cases[i].r) != cases[i].usable)
			fail_msg("case %zu", i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secure_records),
	    cmocka_unit_test(test_denials),
	    cmocka_unit_test(test_cname_and_addresses),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_usable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
