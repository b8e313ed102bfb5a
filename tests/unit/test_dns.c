/* Unit tests for MX ordering and null MX (src/dns/dns.c), and address
   lookups of IP literals through the event loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "dns/dns.h"

#include <stdlib.h>
#include <string.h>
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
	    cmocka_unit_test(test_literal_lookup),
	    cmocka_unit_test(test_bad_resolver),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
