/* Unit tests for the DATA/BDAT scanner (src/smtp/smtp_data.c): every case
   is fed whole, byte by byte and in random splits (fixed seeds), and must
   give the same result each way. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtp/smtp_data.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_LIMIT UINT64_MAX

struct scan_result {
	struct buf out;
	bool done;
	size_t consumed; /* bytes of input used (all of it unless done) */
	bool bare_lf, bare_cr, too_big;
	uint64_t size;
};

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

/* Feeds in[0..len) to a fresh scanner in the given chunking; BDAT mode
   (dot_mode false) ends with smtp_data_scan_finish(). */
static void scan(const char *in, size_t len, bool dot_mode, bool normalize, uint64_t max, enum split split,
		 unsigned seed, struct scan_result *r)
{
	struct smtp_data_scanner s;
	smtp_data_scanner_init(&s, dot_mode, normalize, max);
	memset(r, 0, sizeof(*r));
	srandom(seed);
	size_t pos = 0;
	while (pos < len && !r->done) {
		size_t n = len - pos;
		if (split == SPLIT_BYTES)
			n = 1;
		else if (split == SPLIT_RANDOM)
			n = 1 + (size_t)random() % n;
		size_t used = smtp_data_scan(&s, in + pos, n, &r->out, &r->done);
		assert_true(used <= n);
		if (!r->done)
			assert_int_equal(used, n);
		pos += used;
		/* An empty chunk changes nothing. */
		bool done0 = true;
		if (!r->done)
			assert_int_equal(smtp_data_scan(&s, in + pos, 0, &r->out, &done0), 0);
		assert_false(done0 && !r->done);
	}
	if (!dot_mode)
		smtp_data_scan_finish(&s, &r->out);
	r->consumed = pos;
	r->bare_lf = s.bare_lf;
	r->bare_cr = s.bare_cr;
	r->size = s.size;
	r->too_big = smtp_data_too_big(&s);
}

static void escape(struct buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r')
			buf_append_str(b, "<CR>");
		else if (c == '\n')
			buf_append_str(b, "<LF>");
		else if (c < 32 || c >= 127)
			buf_printf(b, "<%02x>", c);
		else
			buf_append_char(b, (char)c);
	}
}

/* Printable form; four rotating buffers so one message can show several. */
static const char *show(const char *s, size_t len)
{
	static struct buf bufs[4];
	static unsigned next;
	struct buf *b = &bufs[next++ % 4];
	buf_reset(b);
	escape(b, s, len);
	return buf_cstr(b);
}

/* Runs every chunking and checks that they agree with each other and with
   the expected output, rest (NULL: not done) and flags. */
static void check_case(const char *what, const char *in, size_t len, bool dot_mode, bool normalize,
		       const char *expect, size_t expect_len, const char *rest, bool bare_lf, bool bare_cr)
{
	for (int k = 0; k < 2 + 20; k++) {
		enum split split = k == 0 ? SPLIT_WHOLE : k == 1 ? SPLIT_BYTES : SPLIT_RANDOM;
		struct scan_result r;
		scan(in, len, dot_mode, normalize, NO_LIMIT, split, 1000 + (unsigned)k, &r);
		if (r.out.len != expect_len || memcmp(buf_cstr(&r.out), expect, expect_len) != 0) {
			fail_msg("%s <%s> (%s, split %d): got <%s> expected <%s>", what, show(in, len),
				 normalize ? "normalize" : "reject", k, show(r.out.data, r.out.len),
				 show(expect, expect_len));
		}
		if (rest == NULL) {
			if (r.done)
				fail_msg("%s <%s> split %d: ended at %zu", what, show(in, len), k,
					 r.consumed);
		} else {
			if (!r.done)
				fail_msg("%s <%s> split %d: did not end", what, show(in, len), k);
			size_t rlen = strlen(rest);
			assert_int_equal(len - r.consumed, rlen);
			assert_memory_equal(in + r.consumed, rest, rlen);
		}
		if (r.bare_lf != bare_lf || r.bare_cr != bare_cr)
			fail_msg("%s <%s> split %d: bare_lf=%d bare_cr=%d", what, show(in, len), k, r.bare_lf,
				 r.bare_cr);
		assert_int_equal(r.size, r.out.len);
		assert_false(r.too_big);
		buf_free(&r.out);
	}
}

/* expect: reject-mode output; nexpect: normalize-mode output. */
struct data_case {
	const char *in, *expect, *nexpect, *rest;
	bool lf, cr;
};

#define DONE(x) x
#define MORE NULL

static const struct data_case data_cases[] = {
    /* the end of data, and only <CRLF>.<CRLF> */
    {".\r\n", "", "", DONE(""), false, false},
    {"a\r\n.\r\n", "a\r\n", "a\r\n", DONE(""), false, false},
    {"Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n", DONE(""),
     false, false},
    {"\r\n.\r\n", "\r\n", "\r\n", DONE(""), false, false},
    {"a\r\n.\r\nMAIL FROM:<x@y>\r\n", "a\r\n", "a\r\n", DONE("MAIL FROM:<x@y>\r\n"), false, false},
    {"a\r\n.\r\n.\r\n", "a\r\n", "a\r\n", DONE(".\r\n"), false, false},
    {".\r\n.\r\n", "", "", DONE(".\r\n"), false, false},
    {"", "", "", MORE, false, false},
    {"a", "a", "a", MORE, false, false},
    {"a\r\n", "a\r\n", "a\r\n", MORE, false, false},
    {"a\r\n.", "a\r\n", "a\r\n", MORE, false, false}, /* the dot waits */
    {"a\r\n.\r", "a\r\n", "a\r\n", MORE, false, false},
    {"a\r", "a", "a", MORE, false, false}, /* the CR waits */
    {".", "", "", MORE, false, false},
    /* a final line without CRLF: the dot is not at a line start */
    {"last line.\r\n", "last line.\r\n", "last line.\r\n", MORE, false, false},
    {"last line.\r\n.\r\n", "last line.\r\n", "last line.\r\n", DONE(""), false, false},
    {"x.\r\n", "x.\r\n", "x.\r\n", MORE, false, false},
    {"a\r\n .\r\n", "a\r\n .\r\n", "a\r\n .\r\n", MORE, false, false},
    {"a\r\n. \r\n.\r\n", "a\r\n \r\n", "a\r\n \r\n", DONE(""), false, false},
    /* dot-unstuffing (RFC 5321 4.5.2) */
    {"..\r\n.\r\n", ".\r\n", ".\r\n", DONE(""), false, false},
    {"..a\r\n.\r\n", ".a\r\n", ".a\r\n", DONE(""), false, false},
    {"a\r\n..\r\n.\r\n", "a\r\n.\r\n", "a\r\n.\r\n", DONE(""), false, false},
    {"a\r\n...\r\n.\r\n", "a\r\n..\r\n", "a\r\n..\r\n", DONE(""), false, false},
    {"a\r\n..\r\n..\r\n.\r\n", "a\r\n.\r\n.\r\n", "a\r\n.\r\n.\r\n", DONE(""), false, false},
    {"a\r\n.b\r\n.\r\n", "a\r\nb\r\n", "a\r\nb\r\n", DONE(""), false, false},
    {"a.\r\n.b.\r\n.\r\n", "a.\r\nb.\r\n", "a.\r\nb.\r\n", DONE(""), false, false},
    {"..\r\n", ".\r\n", ".\r\n", MORE, false, false},
    {"a..b\r\n.\r\n", "a..b\r\n", "a..b\r\n", DONE(""), false, false},
    /* smuggling: <LF>.<LF>, <CR>.<CR>, <LF>.<CRLF>, <CR>.<CRLF> never end the data */
    {"a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", "a\r\n.\r\nb\r\n", DONE(""), true, false},
    {"a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", "a\r\n.\r\nb\r\n", DONE(""), false, true},
    {"a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", "a\r\n.\r\nb\r\n", DONE(""), true, false},
    {"a\r.\r\nb\r\n.\r\n", "a\r.\r\nb\r\n", "a\r\n.\r\nb\r\n", DONE(""), false, true},
    {"a\r\n.\nb\r\n.\r\n", "a\r\n.\nb\r\n", "a\r\n.\r\nb\r\n", DONE(""), true, false},
    {"a\r\n.\rb\r\n.\r\n", "a\r\n.\rb\r\n", "a\r\n.\r\nb\r\n", DONE(""), false, true},
    {"a\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n",
     "a\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n",
     "a\r\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n", MORE, true, false},
    {"a\r.\rMAIL FROM:<e@x>\r\n", "a\r.\rMAIL FROM:<e@x>\r\n", "a\r\n.\r\nMAIL FROM:<e@x>\r\n", MORE, false,
     true},
    {"a\n.\r\nMAIL FROM:<e@x>\r\n", "a\n.\r\nMAIL FROM:<e@x>\r\n", "a\r\n.\r\nMAIL FROM:<e@x>\r\n", MORE,
     true, false},
    {"a\r.\r\nMAIL FROM:<e@x>\r\n", "a\r.\r\nMAIL FROM:<e@x>\r\n", "a\r\n.\r\nMAIL FROM:<e@x>\r\n", MORE,
     false, true},
    {"\n.\n", "\n.\n", "\r\n.\r\n", MORE, true, false},
    {"\r.\r", "\r", "\r\n", MORE, false, true}, /* ".<CR>" waits */
    {".\n", ".\n", ".\r\n", MORE, true, false},
    {"\n.\r\n", "\n.\r\n", "\r\n.\r\n", MORE, true, false},
    {"\r.\r\n", "\r.\r\n", "\r\n.\r\n", MORE, false, true},
    {".\rx", ".\rx", ".\r\nx", MORE, false, true},
    {"a\n\n.\n\n", "a\n\n.\n\n", "a\r\n\r\n.\r\n\r\n", MORE, true, false},
    /* after a smuggling attempt, the real end still ends the data */
    {"a\n.\r\n.\r\n", "a\n.\r\n", "a\r\n.\r\n", DONE(""), true, false},
    {"a\r.\r\n.\r\n", "a\r.\r\n", "a\r\n.\r\n", DONE(""), false, true},
    {"\n.\r\n.\r\nQUIT\r\n", "\n.\r\n", "\r\n.\r\n", DONE("QUIT\r\n"), true, false},
    {"a\n\r\n.\r\n", "a\n\r\n", "a\r\n\r\n", DONE(""), true, false},
    {"a\r\r\n.\r\n", "a\r\r\n", "a\r\n\r\n", DONE(""), false, true},
    {"a\r\n.\r\r\n.\r\n", "a\r\n.\r\r\n", "a\r\n.\r\n\r\n", DONE(""), false, true},
    {"a\n..\r\n.\r\n", "a\n.\r\n", "a\r\n.\r\n", DONE(""), true, false},
    {"a\n..\n.\r\n", "a\n.\n.\r\n", "a\r\n.\r\n.\r\n", MORE, true, false},
    {"a\nb\r\n.\r\n", "a\nb\r\n", "a\r\nb\r\n", DONE(""), true, false},
    {"a\rb\r\n.\r\n", "a\rb\r\n", "a\r\nb\r\n", DONE(""), false, true},
    {"a\n\rb\r\n.\r\n", "a\n\rb\r\n", "a\r\n\r\nb\r\n", DONE(""), true, true},
};

static void test_data_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(data_cases); i++) {
		const struct data_case *c = &data_cases[i];
		size_t len = strlen(c->in);
		check_case("reject", c->in, len, true, false, c->expect, strlen(c->expect), c->rest, c->lf,
			   c->cr);
		check_case("normalize", c->in, len, true, true, c->nexpect, strlen(c->nexpect), c->rest,
			   c->lf, c->cr);
	}
	/* binary content, NUL bytes included, passes through */
	static const char bin[] = "\0\xff\x80\0.\r\n..\0\r\n.\r\nX";
	static const char bin_out[] = "\0\xff\x80\0.\r\n.\0\r\n";
	for (int normalize = 0; normalize < 2; normalize++)
		check_case("binary", bin, sizeof(bin) - 1, true, normalize, bin_out, sizeof(bin_out) - 1, "X",
			   false, false);
}

/* BDAT chunks (RFC 3030): no dot handling, no end; a trailing bare CR is
   only known to be bare at the end of the message. */
static const struct data_case bdat_cases[] = {
    {"", "", "", MORE, false, false},
    {"a\r\nb\r\n", "a\r\nb\r\n", "a\r\nb\r\n", MORE, false, false},
    {"a\r\n.\r\nb", "a\r\n.\r\nb", "a\r\n.\r\nb", MORE, false, false},
    {".\r\n", ".\r\n", ".\r\n", MORE, false, false},
    {"..x\r\n..\r\n.", "..x\r\n..\r\n.", "..x\r\n..\r\n.", MORE, false, false},
    {"a\nb", "a\nb", "a\r\nb", MORE, true, false},
    {"a\rb", "a\rb", "a\r\nb", MORE, false, true},
    {"abc\r", "abc\r", "abc\r\n", MORE, false, true},
    {"abc\r\r", "abc\r\r", "abc\r\n\r\n", MORE, false, true},
    {"abc\n", "abc\n", "abc\r\n", MORE, true, false},
    {"a\n.\nb", "a\n.\nb", "a\r\n.\r\nb", MORE, true, false},
    {"a\r.\r", "a\r.\r", "a\r\n.\r\n", MORE, false, true},
    {"\r\n", "\r\n", "\r\n", MORE, false, false},
    {"\n\r", "\n\r", "\r\n\r\n", MORE, true, true},
};

static void test_bdat_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(bdat_cases); i++) {
		const struct data_case *c = &bdat_cases[i];
		size_t len = strlen(c->in);
		check_case("bdat", c->in, len, false, false, c->expect, strlen(c->expect), c->rest, c->lf,
			   c->cr);
		check_case("bdat", c->in, len, false, true, c->nexpect, strlen(c->nexpect), c->rest, c->lf,
			   c->cr);
	}
}

/* A CR at the end of one BDAT chunk and LF at the start of the next make
   one CRLF; the message ends only at LAST. */
static void test_bdat_chunks(void **state)
{
	struct smtp_data_scanner s;
	struct buf out = BUF_INIT;
	bool done;
	smtp_data_scanner_init(&s, false, false, NO_LIMIT);
	assert_int_equal(smtp_data_scan(&s, "line one\r", 9, &out, &done), 9);
	assert_false(done);
	assert_int_equal(smtp_data_scan(&s, "\nline two\r", 10, &out, &done), 10);
	assert_false(done);
	smtp_data_scan_finish(&s, &out);
	assert_string_equal(out.data, "line one\r\nline two\r");
	assert_false(s.bare_lf);
	assert_true(s.bare_cr);
	/* finish on a clean state adds nothing */
	buf_reset(&out);
	smtp_data_scanner_init(&s, false, true, NO_LIMIT);
	smtp_data_scan(&s, "x\r\n", 3, &out, &done);
	smtp_data_scan_finish(&s, &out);
	smtp_data_scan_finish(&s, &out);
	assert_string_equal(out.data, "x\r\n");
	assert_false(s.bare_cr || s.bare_lf);
	buf_free(&out);
}

/* max_size: everything is counted, nothing past the limit is kept, and the
   kept part is a prefix of the message. */
static void test_size_limit(void **state)
{
	static const struct {
		const char *in;
		uint64_t max;
		uint64_t size;
		bool too_big;
	} cases[] = {
	    {"0123456789\r\n.\r\n", 12, 12, false},
	    {"0123456789\r\n.\r\n", 11, 12, true},
	    {"0123456789\r\n.\r\n", 10, 12, true},
	    {"0123456789\r\n.\r\n", 0, 12, true},
	    {".\r\n", 0, 0, false},
	    {"..\r\n..\r\n.\r\n", 6, 6, false},
	    {"..\r\n..\r\n.\r\n", 5, 6, true},
	    {"abc\r\ndefgh\r\n.\r\nQUIT\r\n", 5, 12, true},
	    {"a\nb\r\n.\r\n", 5, 5, false},
	    {"a\nb\r\n.\r\n", 4, 5, true},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const char *in = cases[i].in;
		size_t len = strlen(in);
		struct scan_result full;
		scan(in, len, true, false, NO_LIMIT, SPLIT_WHOLE, 0, &full);
		for (int k = 0; k < 12; k++) {
			struct scan_result r;
			scan(in, len, true, false, cases[i].max,
			     k == 0   ? SPLIT_WHOLE
			     : k == 1 ? SPLIT_BYTES
				      : SPLIT_RANDOM,
			     (unsigned)k, &r);
			assert_true(r.done);
			assert_int_equal(r.consumed, full.consumed);
			assert_int_equal(r.size, cases[i].size);
			assert_int_equal(r.too_big, cases[i].too_big);
			assert_true(r.out.len <= cases[i].max);
			assert_true(r.out.len <= full.out.len);
			if (r.out.len > 0)
				assert_memory_equal(r.out.data, full.out.data, r.out.len);
			if (!r.too_big)
				assert_int_equal(r.out.len, full.out.len);
			buf_free(&r.out);
		}
		buf_free(&full.out);
	}
	/* A large message over a small limit keeps little and counts it all. */
	struct buf big = BUF_INIT;
	for (int i = 0; i < 10000; i++)
		buf_append_str(&big, i % 7 ? "0123456789012345678901234567890123456789\r\n" : "..dotted\r\n");
	buf_append_str(&big, ".\r\n");
	struct scan_result r;
	scan(big.data, big.len, true, false, 1000, SPLIT_RANDOM, 7, &r);
	assert_true(r.done);
	assert_true(r.too_big);
	assert_true(r.out.len <= 1000);
	assert_true(r.size > 300000);
	buf_free(&r.out);
	buf_free(&big);
}

/* The specification as a simple model: the data ends at the first
   "\r\n.\r\n" in "\r\n" + input; the content is everything before that dot
   with a dot at a line start (after CR, LF, or at the start) removed when
   a character other than CR or LF follows; bare LF and CR are recorded;
   normalize turns each into CRLF. */
static void model(const char *in, size_t len, bool normalize, struct buf *out, size_t *end_r, bool *lf_r,
		  bool *cr_r)
{
	*end_r = SIZE_MAX;
	for (size_t i = 0; i + 3 <= len; i++) {
		bool crlf_before = i == 0 || (i >= 2 && in[i - 2] == '\r' && in[i - 1] == '\n');
		if (crlf_before && in[i] == '.' && in[i + 1] == '\r' && in[i + 2] == '\n') {
			*end_r = i;
			break;
		}
	}
	*lf_r = *cr_r = false;
	if (*end_r == SIZE_MAX)
		return;
	size_t n = *end_r;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		bool line_start = i == 0 || in[i - 1] == '\r' || in[i - 1] == '\n';
		if (c == '.' && line_start && in[i + 1] != '\r' && in[i + 1] != '\n')
			continue;
		if (c == '\n' && (i == 0 || in[i - 1] != '\r')) {
			*lf_r = true;
			buf_append_str(out, normalize ? "\r\n" : "\n");
		} else if (c == '\r' && in[i + 1] != '\n') {
			*cr_r = true;
			buf_append_str(out, normalize ? "\r\n" : "\r");
		} else {
			buf_append_char(out, c);
		}
	}
}

static void test_random_against_model(void **state)
{
	static const char alphabet[] = "..\r\r\n\nab";
	char in[48];
	srandom(20240601);
	for (int n = 0; n < 30000; n++) {
		size_t len = (size_t)random() % sizeof(in);
		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[random() % (long)(sizeof(alphabet) - 1)];
		bool normalize = n % 2;
		struct buf expect = BUF_INIT;
		size_t end;
		bool lf, cr;
		model(in, len, normalize, &expect, &end, &lf, &cr);
		struct scan_result r[3];
		for (int k = 0; k < 3; k++)
			scan(in, len, true, normalize, NO_LIMIT, (enum split)k, (unsigned)n, &r[k]);
		for (int k = 0; k < 3; k++) {
			if (r[k].done != (end != SIZE_MAX) || (r[k].done && r[k].consumed != end + 3))
				fail_msg("<%s> split %d: done=%d consumed=%zu, model end=%zu", show(in, len),
					 k, r[k].done, r[k].consumed, end);
			if (k > 0 && (r[k].out.len != r[0].out.len ||
				      memcmp(buf_cstr(&r[k].out), buf_cstr(&r[0].out), r[0].out.len) != 0 ||
				      r[k].bare_lf != r[0].bare_lf || r[k].bare_cr != r[0].bare_cr))
				fail_msg("<%s>: split %d differs from whole", show(in, len), k);
		}
		if (r[0].done) {
			if (r[0].out.len != expect.len ||
			    memcmp(buf_cstr(&r[0].out), buf_cstr(&expect), expect.len) != 0) {
				fail_msg("<%s> %s: got <%s> model <%s>", show(in, len),
					 normalize ? "normalize" : "reject",
					 show(r[0].out.data, r[0].out.len), show(expect.data, expect.len));
			}
			assert_int_equal(r[0].bare_lf, lf);
			assert_int_equal(r[0].bare_cr, cr);
		}
		for (int k = 0; k < 3; k++)
			buf_free(&r[k].out);
		buf_free(&expect);
	}
}

/* A realistic message fed in every chunk size from 1 to 64. */
static void test_every_chunk_size(void **state)
{
	struct buf msg = BUF_INIT, expect = BUF_INIT;
	for (int i = 0; i < 200; i++) {
		buf_printf(&msg, "%sline %d of the body\r\n", i % 5 == 0 ? ".." : "", i);
		buf_printf(&expect, "%sline %d of the body\r\n", i % 5 == 0 ? "." : "", i);
	}
	buf_append_str(&msg, ".\r\nQUIT\r\n");
	for (size_t chunk = 1; chunk <= 64; chunk++) {
		struct smtp_data_scanner s;
		struct buf out = BUF_INIT;
		bool done = false;
		size_t pos = 0;
		smtp_data_scanner_init(&s, true, false, NO_LIMIT);
		while (pos < msg.len && !done) {
			size_t n = msg.len - pos < chunk ? msg.len - pos : chunk;
			pos += smtp_data_scan(&s, msg.data + pos, n, &out, &done);
		}
		assert_true(done);
		assert_string_equal(msg.data + pos, "QUIT\r\n");
		assert_int_equal(out.len, expect.len);
		assert_memory_equal(out.data, expect.data, expect.len);
		assert_false(s.bare_lf || s.bare_cr);
		buf_free(&out);
	}
	buf_free(&msg);
	buf_free(&expect);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_data_table),           cmocka_unit_test(test_bdat_table),
	    cmocka_unit_test(test_bdat_chunks),          cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_random_against_model), cmocka_unit_test(test_every_chunk_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
