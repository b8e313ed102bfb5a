/* Unit tests for the in-place bare-LF conversion of FETCH BODY[]
   (imap_crlf_convert in src/imap/imap_message.c): the result is the
   message with every LF not after a CR made CRLF (RFC 3501 4.3: literals
   are sent with CRLF line ends), also when the room before the input is as
   small as the contract allows (gap == len, where a conversion that
   overtook its input would corrupt it), checked against a byte-by-byte
   reference on fixed cases and on random mixes of LF, CR and text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap/imap_private.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

/* The reference: one byte at a time into a separate buffer. */
static size_t reference(const char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
	}
	return o;
}

/* Converts in with the smallest room the contract allows (exactly
   2 * len bytes, so that the sanitizer build sees any write past it) and
   compares with the reference. */
static void check(const char *in, size_t len)
{
	char *room = xmalloc(2 * len + 1);
	char *want = xmalloc(2 * len + 1);
	memcpy(room + len, in, len);
	size_t got = imap_crlf_convert(room, len, len);
	size_t n = reference(in, len, want);
	assert_int_equal(got, n);
	assert_memory_equal(room, want, n);
	free(room);
	free(want);
}

static void test_fixed(void **state)
{
	static const char *const cases[] = {
	    "",
	    "\n",
	    "\n\n\n\n",
	    "\r\n",
	    "\r",
	    "a\r",
	    "\r\r\n\n",
	    "\n\r\n\n",
	    "From: a\nSubject: b\n\nbody\n",
	    "From: a\r\nSubject: b\r\n\r\nbody\r\n",
	    "mixed\r\nline ends\nhere\r\n\nand no end",
	    "lone\rcr\r\r\nx",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(cases[i], strlen(cases[i]));
}

static void test_random(void **state)
{
	static const char alphabet[] = "\n\n\n\r\rab";
	char in[512];
	srand(13);
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(rand() % (int)sizeof(in));
		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
		check(in, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixed),
	    cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
