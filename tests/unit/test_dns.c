/* Unit tests for MX ordering and null MX (src/dns/dns.c), TXT answers
   parsed from raw bytes, and address lookups of IP literals through the
   event loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "dns/dns.h"
#include "dns/dns_private.h"
#include "lib/xalloc.h"

#include <ares.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

static size_t rnd_first(void *ctx, size_t n)
{
	return 0;
}

static size_t rnd_seq(void *ctx, size_t n)
{
	unsigned *state = ctx;
	*state = *state * 1103515245u + 12345u;
	return (*state >> 8) % n;
}

static void test_mx_sort_preference(void **state)
{
	struct dns_mx mx[] = {{"c", 30}, {"a", 10}, {"z", 50}, {"b", 20}, {"", 0}};
	dns_mx_sort(mx, 5, rnd_first, NULL);
	assert_string_equal(mx[0].host, "a");
	assert_string_equal(mx[1].host, "b");
	assert_string_equal(mx[2].host, "c");
	assert_string_equal(mx[3].host, "z");
	assert_string_equal(mx[4].host, ""); /* null MX last */
	assert_false(dns_mx_is_null(mx, 5));
}

/* Equal preferences are shuffled (RFC 5321 5.1); every order appears and
   the preference groups never mix. */
static void test_mx_sort_random_equal(void **state)
{
	unsigned seed = 1;
	int first_seen[3] = {0, 0, 0};
	for (int round = 0; round < 300; round++) {
		struct dns_mx mx[] = {{"x2", 20}, {"e0", 10}, {"e1", 10}, {"e2", 10}, {"x1", 20}};
		dns_mx_sort(mx, 5, rnd_seq, &seed);
		for (int i = 0; i < 3; i++)
			assert_int_equal(mx[i].pref, 10);
		for (int i = 3; i < 5; i++)
			assert_int_equal(mx[i].pref, 20);
		first_seen[mx[0].host[1] - '0']++;
	}
	for (int i = 0; i < 3; i++)
		assert_true(first_seen[i] > 50);
}

static void test_null_mx(void **state)
{
	struct dns_mx null1[] = {{"", 0}};
	assert_true(dns_mx_is_null(null1, 1));
	struct dns_mx mixed[] = {{"", 0}, {"mx.example", 10}};
	assert_false(dns_mx_is_null(mixed, 2));
	assert_false(dns_mx_is_null(NULL, 0));
	struct dns_mx one[] = {{"mx.example", 0}};
	assert_false(dns_mx_is_null(one, 1));
}

/* ---- raw answers ---- */

/* A response to "QNAME IN qtype": header, question, then the answers
   added with answer_txt (the owner name compressed to the question's). */
struct answer {
	unsigned char data[4096];
	size_t len;
	unsigned ancount;
};

static void answer_begin(struct answer *a, const char *qname, unsigned qtype, unsigned rcode)
{
	static const unsigned char header[] = {0x12, 0x34, 0x84, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
	memcpy(a->data, header, sizeof(header));
	a->data[3] |= (unsigned char)rcode;
	a->len = sizeof(header);
	a->ancount = 0;
	for (const char *p = qname; *p != '\0';) {
		const char *dot = strchr(p, '.');
		size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		a->data[a->len++] = (unsigned char)n;
		memcpy(a->data + a->len, p, n);
		a->len += n;
		p += n + (dot != NULL);
	}
	a->data[a->len++] = 0;
	unsigned char tail[] = {0, (unsigned char)qtype, 0, 1};
	memcpy(a->data + a->len, tail, 4);
	a->len += 4;
}

/* The TTL of the next record answer_txt adds. */
static unsigned char next_ttl = 60;

/* One record of type rtype whose character-strings are strings (NULL-
   terminated list). */
static void answer_txt(struct answer *a, unsigned rtype, const char *const *strings)
{
	unsigned char rr[] = {0xc0, 12, 0, (unsigned char)rtype, 0, 1, 0, 0, 0, next_ttl, 0, 0};
	size_t rdlen = 0;
	for (const char *const *s = strings; *s != NULL; s++)
		rdlen += 1 + strlen(*s);
	rr[10] = (unsigned char)(rdlen >> 8);
	rr[11] = (unsigned char)rdlen;
	memcpy(a->data + a->len, rr, sizeof(rr));
	a->len += sizeof(rr);
	for (const char *const *s = strings; *s != NULL; s++) {
		a->data[a->len++] = (unsigned char)strlen(*s);
		memcpy(a->data + a->len, *s, strlen(*s));
		a->len += strlen(*s);
	}
	a->ancount++;
	a->data[7] = (unsigned char)a->ancount;
}

/* An SOA record in the authority section (a negative answer's): TTL
   ttl, MINIMUM minimum. */
static void answer_soa(struct answer *a, unsigned ttl, unsigned minimum)
{
	unsigned char rr[] = {0xc0,
			      12,
			      0,
			      6,
			      0,
			      1,
			      (unsigned char)(ttl >> 24),
			      (unsigned char)(ttl >> 16),
			      (unsigned char)(ttl >> 8),
			      (unsigned char)ttl,
			      0,
			      2 + 2 + 20};
	memcpy(a->data + a->len, rr, sizeof(rr));
	a->len += sizeof(rr);
	/* MNAME and RNAME: the zone's name (pointer), then five numbers */
	unsigned char rdata[24] = {0xc0, 12, 0xc0, 12};
	for (int i = 0; i < 4; i++)
		rdata[23 - i] = (unsigned char)(minimum >> (8 * i));
	memcpy(a->data + a->len, rdata, sizeof(rdata));
	a->len += sizeof(rdata);
	a->data[9]++; /* NSCOUNT */
}

static void test_answer_ttl(void **state)
{
	struct answer a;
	uint32_t ttl = 0;
	answer_begin(&a, "example.com", 16, 0);
	next_ttl = 90;
	answer_txt(&a, 16, (const char *const[]){"a", NULL});
	next_ttl = 30;
	answer_txt(&a, 16, (const char *const[]){"b", NULL});
	next_ttl = 10;
	answer_txt(&a, 5, (const char *const[]){"c", NULL}); /* another type */
	next_ttl = 60;
	assert_true(dns_answer_ttl(a.data, (int)a.len, 16, &ttl));
	assert_int_equal(ttl, 30);
	assert_true(dns_answer_ttl(a.data, (int)a.len, 0, &ttl));
	assert_int_equal(ttl, 10);
	/* cut anywhere: no TTL, no read past the end */
	for (size_t cut = 0; cut < a.len; cut++) {
		unsigned char *copy = xmemdup(a.data, cut);
		uint32_t t = 0;
		if (dns_answer_ttl(copy, (int)cut, 16, &t))
			assert_true(t <= 90);
		free(copy);
	}
	/* negative answers: the SOA's TTL and MINIMUM, the smaller */
	answer_begin(&a, "none.example.com", 16, 3);
	answer_soa(&a, 300, 45);
	assert_true(dns_answer_ttl(a.data, (int)a.len, 16, &ttl));
	assert_int_equal(ttl, 45);
	answer_begin(&a, "none.example.com", 16, 3);
	answer_soa(&a, 20, 3600);
	assert_true(dns_answer_ttl(a.data, (int)a.len, 16, &ttl));
	assert_int_equal(ttl, 20);
	/* none: nothing to keep it by */
	answer_begin(&a, "none.example.com", 16, 3);
	assert_false(dns_answer_ttl(a.data, (int)a.len, 16, &ttl));
}

static void test_txt_parse(void **state)
{
	struct answer a;
	struct dns_txt *txt;
	size_t n;
	/* two records: three strings joined without a space, then one */
	answer_begin(&a, "sel._domainkey.example.com", 16, 0);
	next_ttl = 200;
	answer_txt(&a, 16, (const char *const[]){"v=DKIM1; k=rsa; ", "p=MIIB", "IjAN", NULL});
	next_ttl = 30;
	answer_txt(&a, 16, (const char *const[]){"second record", NULL});
	next_ttl = 5; /* not a TXT record: its TTL does not count */
	answer_txt(&a, 1, (const char *const[]){"abc", NULL});
	next_ttl = 60;
	assert_int_equal(dns_txt_parse(a.data, (int)a.len, &txt, &n), ARES_SUCCESS);
	assert_int_equal(n, 2);
	/* the smallest TTL of the TXT records */
	assert_int_equal(txt[0].ttl, 30);
	assert_int_equal(txt[1].ttl, 30);
	assert_string_equal(txt[0].text, "v=DKIM1; k=rsa; p=MIIBIjAN");
	assert_int_equal(txt[0].len, strlen("v=DKIM1; k=rsa; p=MIIBIjAN"));
	assert_string_equal(txt[1].text, "second record");
	dns_txt_free(txt, n);

	/* a record of one empty string, beside records of several */
	answer_begin(&a, "x.test", 16, 0);
	answer_txt(&a, 16, (const char *const[]){"a", "b", NULL});
	answer_txt(&a, 16, (const char *const[]){"", NULL});
	answer_txt(&a, 16, (const char *const[]){"c", "", "d", NULL});
	assert_int_equal(dns_txt_parse(a.data, (int)a.len, &txt, &n), ARES_SUCCESS);
	assert_int_equal(n, 3);
	assert_string_equal(txt[0].text, "ab");
	assert_string_equal(txt[1].text, "");
	assert_int_equal(txt[1].len, 0);
	assert_string_equal(txt[2].text, "cd");
	dns_txt_free(txt, n);

	/* a NUL inside a string is kept and counted */
	answer_begin(&a, "x.test", 16, 0);
	answer_txt(&a, 16, (const char *const[]){"ab", NULL});
	a.data[a.len - 1] = '\0';
	assert_int_equal(dns_txt_parse(a.data, (int)a.len, &txt, &n), ARES_SUCCESS);
	assert_int_equal(n, 1);
	assert_int_equal(txt[0].len, 2);
	assert_memory_equal(txt[0].text, "a\0", 3);
	dns_txt_free(txt, n);
}

static void test_txt_parse_errors(void **state)
{
	struct answer a;
	struct dns_txt *txt = (struct dns_txt *)&a;
	size_t n = 99;
	/* NODATA: no answer at all, or answers of another type only */
	answer_begin(&a, "x.test", 16, 0);
	assert_int_equal(dns_txt_parse(a.data, (int)a.len, &txt, &n), ARES_ENODATA);
	assert_null(txt);
	assert_int_equal(n, 0);
	answer_txt(&a, 1, (const char *const[]){"abc", NULL});
	assert_int_equal(dns_txt_parse(a.data, (int)a.len, &txt, &n), ARES_ENODATA);
	assert_null(txt);
	/* cut inside a record, a string longer than its record */
	answer_begin(&a, "x.test", 16, 0);
	answer_txt(&a, 16, (const char *const[]){"abcdef", NULL});
	assert_int_not_equal(dns_txt_parse(a.data, (int)a.len - 3, &txt, &n), ARES_SUCCESS);
	assert_null(txt);
	assert_int_equal(n, 0);
	a.data[a.len - 7] = 200;
	assert_int_not_equal(dns_txt_parse(a.data, (int)a.len, &txt, &n), ARES_SUCCESS);
	assert_null(txt);
	/* too short for a header */
	assert_int_not_equal(dns_txt_parse(a.data, 5, &txt, &n), ARES_SUCCESS);
	assert_null(txt);
}

struct lookup_result {
	enum dns_status status;
	char text[80];
	int calls;
};

static void addr_cb(void *ctx, enum dns_status status, const struct dns_addr *addrs, size_t n,
		    const char *error)
{
	struct lookup_result *r = ctx;
	r->calls++;
	r->status = status;
	if (n > 0)
		dns_addr_string(&addrs[0], r->text, sizeof(r->text));
}

static void test_literal_lookup(void **state)
{
	struct event_base *base = event_base_new();
	char *error = NULL;
	struct dns_resolver *r = dns_resolver_new(base, "127.0.0.1:1", &error);
	assert_non_null(r);
	struct lookup_result v4 = {0}, v6 = {0}, br = {0};
	dns_lookup_addr(r, "127.0.0.1", 2525, addr_cb, &v4);
	dns_lookup_addr(r, "::1", 25, addr_cb, &v6);
	dns_lookup_addr(r, "[::1]", 587, addr_cb, &br);
	assert_int_equal(v4.calls, 0); /* never from inside the call */
	event_base_dispatch(base);
	assert_int_equal(v4.calls, 1);
	assert_int_equal(v4.status, DNS_OK);
	assert_string_equal(v4.text, "127.0.0.1:2525");
	assert_string_equal(v6.text, "[::1]:25");
	assert_string_equal(br.text, "[::1]:587");
	dns_resolver_free(&r);
	assert_null(r);
	event_base_free(base);
}

struct txt_result {
	int calls;
	enum dns_status status;
	char text[100];
	size_t count;
};

static void rr_cb(void *ctx, enum dns_status status, char **rrs, size_t count, const char *error)
{
	(*(int *)ctx)++;
}

static void txt_cb(void *ctx, enum dns_status status, const struct dns_txt *txt, size_t n, const char *error)
{
	struct txt_result *r = ctx;
	r->calls++;
	r->status = status;
	r->count = n;
	if (n > 0)
		snprintf(r->text, sizeof(r->text), "%s", txt[0].text);
}

/* A responder on a loopback UDP socket, in the test's loop: names starting
   with "k" get one TXT record of two strings, "t" the same with TTL 1, "n"
   NXDOMAIN, "s" NXDOMAIN with an SOA (negative TTL 60), the rest NODATA.
   It counts the queries. */
static int responder_queries;

static void responder_cb(evutil_socket_t fd, short what, void *arg)
{
	unsigned char q[512];
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&peer, &plen);
	if (n < 17)
		return;
	struct answer a;
	char name[256] = "";
	size_t pos = 12, nl = 0;
	while (pos < (size_t)n && q[pos] != 0 && nl + q[pos] + 1 < sizeof(name)) {
		if (nl > 0)
			name[nl++] = '.';
		memcpy(name + nl, q + pos + 1, q[pos]);
		nl += q[pos];
		pos += 1 + q[pos];
	}
	name[nl] = '\0';
	responder_queries++;
	answer_begin(&a, name, 16, name[0] == 'n' || name[0] == 's' ? 3 : 0);
	next_ttl = name[0] == 't' ? 1 : 60;
	if (name[0] == 'k' || name[0] == 't')
		answer_txt(&a, 16, (const char *const[]){"v=DKIM1; ", "p=abc", NULL});
	if (name[0] == 's')
		answer_soa(&a, 60, 60);
	next_ttl = 60;
	memcpy(a.data, q, 2); /* the query's id */
	sendto(fd, a.data, a.len, 0, (struct sockaddr *)&peer, plen);
}

/* A loopback responder in base on a new socket: *fd_r, *ev_r, and the
   resolver asking it. */
static struct dns_resolver *responder_start(struct event_base *base, int *fd_r, struct event **ev_r)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sin);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &slen);
	*ev_r = event_new(base, fd, EV_READ | EV_PERSIST, responder_cb, NULL);
	event_add(*ev_r, NULL);
	char server[32], *error = NULL;
	snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(sin.sin_port));
	struct dns_resolver *r = dns_resolver_new(base, server, &error);
	assert_non_null(r);
	*fd_r = fd;
	return r;
}

/* Runs the loop turn by turn until *calls reaches want (5 s at most). */
static void run_until(struct event_base *base, const int *calls, int want)
{
	for (int i = 0; i < 500 && *calls < want; i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_int_equal(*calls, want);
}

static void test_txt_lookup_cached(void **state)
{
	struct event_base *base = event_base_new();
	int fd;
	struct event *ev;
	struct dns_resolver *r = responder_start(base, &fd, &ev);
	dns_resolver_cache(r, 64);
	responder_queries = 0;
	struct txt_result a = {0};
	dns_lookup_txt(r, "key.example.com", txt_cb, &a);
	run_until(base, &a.calls, 1);
	/* again, in another case: from the cache, from the loop, not asked */
	dns_lookup_txt(r, "KEY.example.com.", txt_cb, &a);
	assert_int_equal(a.calls, 1);
	run_until(base, &a.calls, 2);
	assert_int_equal(a.status, DNS_OK);
	assert_string_equal(a.text, "v=DKIM1; p=abc");
	assert_int_equal(responder_queries, 1);
	/* dns_lookup_rr() shares it */
	int rr_calls = 0;
	dns_lookup_rr(r, DNS_RR_TXT, "key.example.com", rr_cb, &rr_calls);
	run_until(base, &rr_calls, 1);
	assert_int_equal(responder_queries, 1);
	/* negative answers: with an SOA kept, without one asked again */
	struct txt_result nx = {0}, soa = {0};
	for (int i = 1; i <= 2; i++) {
		dns_lookup_txt(r, "nx.example.com", txt_cb, &nx);
		dns_lookup_txt(r, "soa.example.com", txt_cb, &soa);
		run_until(base, &nx.calls, i);
		run_until(base, &soa.calls, i);
		assert_int_equal(nx.status, DNS_NXDOMAIN);
		assert_int_equal(soa.status, DNS_NXDOMAIN);
	}
	assert_int_equal(responder_queries, 1 + 3);
	/* a TTL of 1 s: asked again once it has passed */
	struct txt_result t = {0};
	dns_lookup_txt(r, "ttl1.example.com", txt_cb, &t);
	run_until(base, &t.calls, 1);
	usleep(2100 * 1000);
	dns_lookup_txt(r, "ttl1.example.com", txt_cb, &t);
	run_until(base, &t.calls, 2);
	assert_int_equal(responder_queries, 1 + 3 + 2);
	/* a cached answer cancelled is not delivered; one pending when the
	   resolver goes is DNS_CANCELLED */
	struct txt_result dropped = {0}, pending = {0};
	struct dns_query *q = dns_lookup_txt(r, "key.example.com", txt_cb, &dropped);
	dns_cancel(&q);
	dns_lookup_txt(r, "key.example.com", txt_cb, &pending);
	dns_resolver_free(&r);
	assert_int_equal(pending.calls, 1);
	assert_int_equal(pending.status, DNS_CANCELLED);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(dropped.calls, 0);
	event_free(ev);
	close(fd);
	event_base_free(base);
}

static void test_txt_lookup(void **state)
{
	struct event_base *base = event_base_new();
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sin);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &slen);
	struct event *ev = event_new(base, fd, EV_READ | EV_PERSIST, responder_cb, NULL);
	event_add(ev, NULL);
	char server[32], *error = NULL;
	snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(sin.sin_port));
	struct dns_resolver *r = dns_resolver_new(base, server, &error);
	assert_non_null(r);

	struct txt_result key = {0}, nx = {0}, nodata = {0}, cancelled = {0}, bad = {0};
	struct dns_query *q1 = dns_lookup_txt(r, "key._domainkey.example.com", txt_cb, &key);
	dns_lookup_txt(r, "nx._domainkey.example.com", txt_cb, &nx);
	dns_lookup_txt(r, "empty._domainkey.example.com", txt_cb, &nodata);
	struct dns_query *q2 = dns_lookup_txt(r, "key2._domainkey.example.com", txt_cb, &cancelled);
	dns_lookup_txt(r, "bad..name", txt_cb, &bad); /* c-ares refuses it at once */
	assert_non_null(q1);
	assert_int_equal(bad.calls, 0); /* never from inside the call */
	dns_cancel(&q2);
	assert_null(q2);
	/* the resolver's timer stays armed: run the loop turn by turn (5 s
	   at most) */
	for (int i = 0; i < 500 && (key.calls == 0 || nx.calls == 0 || nodata.calls == 0 || bad.calls == 0);
	     i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_int_equal(key.calls, 1);
	assert_int_equal(key.status, DNS_OK);
	assert_int_equal(key.count, 1);
	assert_string_equal(key.text, "v=DKIM1; p=abc");
	assert_int_equal(nx.status, DNS_NXDOMAIN);
	assert_int_equal(nodata.status, DNS_NODATA);
	assert_int_equal(nodata.count, 0);
	assert_int_equal(bad.calls, 1);
	assert_int_equal(bad.status, DNS_TEMPFAIL);
	assert_int_equal(cancelled.calls, 0);

	/* pending when the resolver goes: DNS_CANCELLED, unless cancelled */
	struct txt_result pending = {0}, dropped = {0};
	event_del(ev);
	dns_lookup_txt(r, "key3.example.com", txt_cb, &pending);
	struct dns_query *q3 = dns_lookup_txt(r, "key4.example.com", txt_cb, &dropped);
	dns_cancel(&q3);
	dns_resolver_free(&r);
	assert_int_equal(pending.calls, 1);
	assert_int_equal(pending.status, DNS_CANCELLED);
	assert_int_equal(dropped.calls, 0);
	event_free(ev);
	close(fd);
	event_base_free(base);
}

static void test_bad_resolver(void **state)
{
	struct event_base *base = event_base_new();
	char *error = NULL;
	struct dns_resolver *r = dns_resolver_new(base, "not an address", &error);
	assert_null(r);
	assert_non_null(error);
	free(error);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mx_sort_preference),
	    cmocka_unit_test(test_mx_sort_random_equal),
	    cmocka_unit_test(test_null_mx),
	    cmocka_unit_test(test_txt_parse),
	    cmocka_unit_test(test_txt_parse_errors),
	    cmocka_unit_test(test_literal_lookup),
	    cmocka_unit_test(test_txt_lookup),
	    cmocka_unit_test(test_txt_lookup_cached),
	    cmocka_unit_test(test_answer_ttl),
	    cmocka_unit_test(test_bad_resolver),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
