/* Unit tests for the SORT and THREAD keys of a message
   (src/imap/imap_sortkey.c): what is built from a header block (RFC 5256
   sent date and base subject, first addresses, RFC 5957 display texts,
   message IDs for THREAD REFERENCES), and the index record they are kept
   as (encode, decode, and records that must not decode). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap/imap_sortkey.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct imap_sortkey *from_header(const char *header)
{
	return imap_sortkey_from_header(header, strlen(header));
}

/* The reference IDs as "a b c". */
static char *refs_text(const struct imap_sortkey *k)
{
	struct buf b = BUF_INIT;
	const char *r = k->refs;
	for (uint32_t i = 0; i < k->nrefs; i++, r += strlen(r) + 1) {
		if (i > 0)
			buf_append_char(&b, ' ');
		buf_append_str(&b, r);
	}
	char *s = buf_steal(&b);
	return s != NULL ? s : xstrdup("");
}

static void assert_texts(const struct imap_sortkey *k, const char *subject, const char *from, const char *to,
			 const char *cc, const char *displayfrom, const char *displayto)
{
	assert_string_equal(k->text[IMAP_SORTKEY_SUBJECT], subject);
	assert_string_equal(k->text[IMAP_SORTKEY_FROM], from);
	assert_string_equal(k->text[IMAP_SORTKEY_TO], to);
	assert_string_equal(k->text[IMAP_SORTKEY_CC], cc);
	assert_string_equal(k->text[IMAP_SORTKEY_DISPLAYFROM], displayfrom);
	assert_string_equal(k->text[IMAP_SORTKEY_DISPLAYTO], displayto);
}

static void test_full_header(void **state)
{
	struct imap_sortkey *k = from_header("From: \"Foo Bar\" <foo@example.org>, other@example.org\r\n"
					     "To: =?utf-8?q?J=C3=B6rg?= <Joerg@example.de>\r\n"
					     "Cc: Team: a@example.org, c@example.org;\r\n"
					     "Subject: =?utf-8?q?Re:_caf=C3=A9?= (fwd)\r\n"
					     "Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
					     "Message-ID: < id1@x >\r\n"
					     "References: <r1@x> junk\r\n <r2@x>\r\n"
					     "In-Reply-To: <irt@x>\r\n"
					     "\r\n");
	/* RFC 2047 decoded before the base subject (RFC 5256 2.1 step 1) */
	assert_texts(k, "caf\xc3\xa9", "foo", "Joerg", "Team", "Foo Bar", "J\xc3\xb6rg");
	assert_true(k->subject_reply);
	assert_true(k->has_date);
	assert_int_equal(k->date, 1704099600);
	assert_string_equal(k->message_id, "<id1@x>");
	char *refs = refs_text(k);
	assert_string_equal(refs, "<r1@x> <r2@x>");
	free(refs);
	imap_sortkey_free(&k);
	assert_null(k);
}

/* RFC 5256 2.2: no Date:, or one that does not parse, and the owner
   puts the INTERNALDATE in date. */
static void test_no_date(void **state)
{
	static const char *const headers[] = {
	    "Subject: x\r\n\r\n",
	    "Subject: x\r\nDate: yesterday, around noon\r\n\r\n",
	    "Subject: x\r\nDate: \r\n\r\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(headers); i++) {
		struct imap_sortkey *k = from_header(headers[i]);
		assert_false(k->has_date);
		assert_int_equal(k->date, 0);
		assert_false(k->subject_reply);
		imap_sortkey_free(&k);
	}
}

/* No From, To or Cc: empty texts, which sort first.  A mailbox without
   display name displays as its addr-spec, one without domain as its
   local part (RFC 5957 3); a group has its name for both. */
static void test_addresses(void **state)
{
	struct imap_sortkey *k = from_header("Subject: Re: Re: hello\r\n\r\n");
	assert_texts(k, "hello", "", "", "", "", "");
	assert_null(k->message_id);
	assert_int_equal(k->nrefs, 0);
	imap_sortkey_free(&k);
	k = from_header("From: b@c.d\r\nTo: d\r\nCc: \"\" <e@f.g>\r\n\r\n");
	assert_texts(k, "", "b", "d", "e", "b@c.d", "d");
	imap_sortkey_free(&k);
	k = from_header("From: empty:;\r\nTo: a: xx@xx.org, yy@yy.org;\r\n"
			"Cc: user2@domain2.org (foo bar)\r\n\r\n");
	assert_texts(k, "", "empty", "a", "user2", "empty", "a");
	imap_sortkey_free(&k);
	/* an 8-bit subject is made valid UTF-8 by the header reader */
	k = from_header("Subject: [list] Fwd: r\xc3\xa9sum\xc3\xa9\r\n\r\n");
	assert_string_equal(k->text[IMAP_SORTKEY_SUBJECT], "r\xc3\xa9sum\xc3\xa9");
	assert_true(k->subject_reply);
	imap_sortkey_free(&k);
}

/* THREAD REFERENCES step 1 (B): References when it holds a valid ID,
   else the first ID of In-Reply-To. */
static void test_message_ids(void **state)
{
	static const struct {
		struct imap_sortkey_fields f;
		const char *id, *refs;
	} cases[] = {
	    {{.message_id = "<a@x>", .references = "<p@x> <q@x>", .in_reply_to = "<q@x>"},
	     "<a@x>",
	     "<p@x> <q@x>"},
	    {{.message_id = "<a@x>", .references = "junk <>", .in_reply_to = "<i@x> <j@x>"},
	     "<a@x>",
	     "<i@x>"},
	    {{.message_id = "<a@x>", .in_reply_to = "Your message <i@x> of Monday"}, "<a@x>", "<i@x>"},
	    {{.message_id = "junk"}, NULL, ""},
	    {{.message_id = "<<b@x>", .references = "<r@x"}, "<b@x>", ""},
	    {{.message_id = "<\tb@x\r\n >"}, "<b@x>", ""},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct imap_sortkey *k = imap_sortkey_build(&cases[i].f);
		if (cases[i].id == NULL)
			assert_null(k->message_id);
		else
			assert_string_equal(k->message_id, cases[i].id);
		char *refs = refs_text(k);
		assert_string_equal(refs, cases[i].refs);
		free(refs);
		imap_sortkey_free(&k);
	}
}

static void assert_same_keys(const struct imap_sortkey *a, const struct imap_sortkey *b)
{
	for (int t = 0; t < IMAP_SORTKEY_TEXTS; t++)
		assert_string_equal(a->text[t], b->text[t]);
	assert_int_equal(a->has_date, b->has_date);
	assert_int_equal(a->date, b->date);
	assert_int_equal(a->subject_reply, b->subject_reply);
	if (a->message_id == NULL)
		assert_null(b->message_id);
	else
		assert_string_equal(a->message_id, b->message_id);
	char *ra = refs_text(a), *rb = refs_text(b);
	assert_string_equal(ra, rb);
	free(ra);
	free(rb);
}

/* Keys survive the index record; a record of another format, cut short,
   with bytes left over or with a count of IDs it does not hold does not
   decode (the keys are built again). */
static void test_record(void **state)
{
	static const char *const headers[] = {
	    "From: A <a@x>\r\nSubject: Re: s\r\nDate: Tue, 2 Jan 2024 00:00:00 -0800\r\n"
	    "Message-ID: <m@x>\r\nReferences: <p@x> <q@x>\r\n\r\n",
	    "Subject: x\r\n\r\n",
	    "\r\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(headers); i++) {
		struct imap_sortkey *k = from_header(headers[i]);
		struct buf rec = BUF_INIT;
		imap_sortkey_encode(k, &rec);
		struct imap_sortkey *d = imap_sortkey_decode(rec.data, rec.len);
		assert_non_null(d);
		assert_same_keys(k, d);
		imap_sortkey_free(&d);
		/* cut short anywhere */
		for (size_t len = 0; len < rec.len; len++)
			assert_null(imap_sortkey_decode(rec.data, len));
		/* one byte more */
		buf_append_char(&rec, 'x');
		assert_null(imap_sortkey_decode(rec.data, rec.len));
		buf_truncate(&rec, rec.len - 1);
		/* another format, unknown flags, one ID more than there is */
		for (size_t at = 0; at < 3; at++) {
			char *bad = xmemdup(rec.data, rec.len);
			if (at == 0)
				bad[0]++;
			else if (at == 1)
				bad[1] |= 0x40;
			else
				bad[10]++;
			assert_null(imap_sortkey_decode(bad, rec.len));
			free(bad);
		}
		buf_free(&rec);
		imap_sortkey_free(&k);
	}
	assert_string_equal(imap_sortkey_empty.text[IMAP_SORTKEY_SUBJECT], "");
	assert_string_equal(imap_sortkey_empty.text[IMAP_SORTKEY_DISPLAYTO], "");
	assert_int_equal(imap_sortkey_empty.nrefs, 0);
}

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A References of 1,000,000 "<" and a ">" is scanned once (restarting
   the search for ">" at each "<" was quadratic), and 200,000 IDs are
   kept in order. */
static void test_build_linear(void **state)
{
	enum { N = 1000000, IDS = 200000 };
	char *angles = xmalloc(N + 2);
	memset(angles, '<', N);
	angles[N] = '>';
	angles[N + 1] = '\0';
	struct imap_sortkey_fields f = {.references = angles};
	double t0 = cpu_seconds();
	struct imap_sortkey *k = imap_sortkey_build(&f);
	assert_true(cpu_seconds() - t0 < 1.0);
	assert_int_equal(k->nrefs, 0);
	imap_sortkey_free(&k);
	free(angles);
	struct buf refs = BUF_INIT;
	for (uint32_t i = 0; i < IDS; i++)
		buf_printf(&refs, "<c%u@x> ", i);
	f.references = buf_cstr(&refs);
	t0 = cpu_seconds();
	k = imap_sortkey_build(&f);
	assert_true(cpu_seconds() - t0 < 1.0);
	assert_int_equal(k->nrefs, IDS);
	const char *r = k->refs;
	for (uint32_t i = 0; i < IDS - 1; i++)
		r += strlen(r) + 1;
	assert_string_equal(r, "<c199999@x>");
	imap_sortkey_free(&k);
	buf_free(&refs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_header), cmocka_unit_test(test_no_date),
	    cmocka_unit_test(test_addresses),   cmocka_unit_test(test_message_ids),
	    cmocka_unit_test(test_record),      cmocka_unit_test(test_build_linear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
