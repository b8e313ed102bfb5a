/* Unit tests for src/lib/utf8.c: 8-bit detection and UTF-8 validation
   (RFC 3629), at every alignment of the eight-byte fast path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/utf8.h"

#include <stdio.h>
#include <string.h>

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *s;
	size_t len;
	bool valid;
} utf8_cases[] = {
    {"", 0, true},
    {"plain ascii", 11, true},
    {"a\0b", 3, true},              /* NUL is U+0000 */
    {"\xc3\xa9", 2, true},          /* U+00E9 */
    {"\xe2\x82\xac", 3, true},      /* U+20AC */
    {"\xef\xbf\xbf", 3, true},      /* U+FFFF */
    {"\xf0\x9f\x98\x80", 4, true},  /* U+1F600 */
    {"\xf4\x8f\xbf\xbf", 4, true},  /* U+10FFFF */
    {"\xc0\x80", 2, false},         /* overlong NUL */
    {"\xc1\xbf", 2, false},         /* overlong */
    {"\xe0\x9f\xbf", 3, false},     /* overlong */
    {"\xf0\x8f\xbf\xbf", 4, false}, /* overlong */
    {"\xed\xa0\x80", 3, false},     /* surrogate */
    {"\xed\xbf\xbf", 3, false},     /* surrogate */
    {"\xf4\x90\x80\x80", 4, false}, /* > U+10FFFF */
    {"\xf5\x80\x80\x80", 4, false},
    {"\xe2\x82", 2, false}, /* truncated */
    {"\x80", 1, false},     /* lone continuation */
    {"\xc3\x28", 2, false}, /* bad continuation */
    {"\xff", 1, false},
};

static void test_utf8_valid(void **state)
{
	/* Each case at offsets 0..9 behind ASCII, and followed by ASCII, so
	   that it falls inside, across and after an eight-byte word. */
	for (size_t i = 0; i < N_ELEMENTS(utf8_cases); i++) {
		for (size_t pad = 0; pad < 10; pad++) {
			char b[64];
			memset(b, 'x', pad);
			memcpy(b + pad, utf8_cases[i].s, utf8_cases[i].len);
			memset(b + pad + utf8_cases[i].len, 'y', 9);
			size_t len = pad + utf8_cases[i].len + (pad % 2 ? 9 : 0);
			if (utf8_valid(b, len) != utf8_cases[i].valid)
				fail_msg("case %zu at offset %zu: expected %d", i, pad, utf8_cases[i].valid);
		}
	}
}

static void test_utf8_seq_len(void **state)
{
	const unsigned char *s = (const unsigned char *)"\xf0\x9f\x98\x80";
	assert_int_equal(utf8_seq_len(s, 4), 4);
	assert_int_equal(utf8_seq_len(s, 3), 0); /* cut short */
	assert_int_equal(utf8_seq_len((const unsigned char *)"A", 1), 1);
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xc3\xa9", 2), 2);
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xed\xa0\x80", 3), 0);
}

static void test_utf8_has_8bit(void **state)
{
	char b[40];
	memset(b, 'a', sizeof(b));
	assert_false(utf8_has_8bit(b, sizeof(b)));
	assert_false(utf8_has_8bit(b, 0));
	for (size_t i = 0; i < sizeof(b); i++) {
		b[i] = (char)0x80;
		assert_true(utf8_has_8bit(b, sizeof(b)));
		assert_true(utf8_has_8bit(b + i, sizeof(b) - i));
		assert_false(utf8_has_8bit(b, i)); /* the byte just past the end */
		b[i] = 'a';
	}
	assert_false(utf8_has_8bit("\x7f\x01", 2));
	assert_true(utf8_has_8bit("\xff", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_utf8_seq_len),
	    cmocka_unit_test(test_utf8_has_8bit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
