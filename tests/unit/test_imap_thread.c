/* Unit tests for RFC 5256: base-subject extraction (section 2.1) and the
   THREAD algorithms REFERENCES and ORDEREDSUBJECT (section 4), in
   src/imap/imap_sort.c and src/imap/imap_thread.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap/imap_sort.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_base_subject(void **state)
{
	static const struct {
		const char *in, *out;
		bool reply;
	} cases[] = {
	    {"hello", "hello", false},
	    {"Re: hello", "hello", true},
	    {"RE: Re: re: hello", "hello", true},
	    {"Re:hello", "hello", true},
	    {"Re :hello", "hello", true},
	    {"Fwd: hello", "hello", true},
	    {"FW: hello", "hello", true},
	    {"fw[list]: x", "x", true},
	    {"Re [2]: hello", "hello", true},
	    {"Re[2]: Re[3]: hello", "hello", true},
	    {"[list] Re: hello", "hello", true},
	    {"[a][b] Re: c", "c", true},
	    {"[list] hello", "hello", false},
	    {"Re: [a] [b] c", "c", true},
	    {"[list]", "[list]", false},
	    {"[list]   ", "[list]", false},
	    {"[a] [b]", "[b]", false},
	    {"hello (fwd)", "hello", true},
	    {"hello (fwd) (FWD)", "hello", true},
	    {"hello(fwd)", "hello", true},
	    {"[fwd: hello]", "hello", true},
	    {"[Fwd: Re: hello (fwd)]", "hello", true},
	    {"Re: [fwd: hello]", "hello", true},
	    {"[fwd: [fwd: hello]]", "hello", true},
	    {"[fwd: hello] x", "x", false},
	    {"  hello   world  ", "hello world", false},
	    {"\thello\t\tworld\r\n", "hello world", false},
	    {"Reply: x", "Reply: x", false},
	    {"Fwd", "Fwd", false},
	    {"re: ", "", true},
	    {"Re:", "", true},
	    {"", "", false},
	    {"Réponse: été", "Réponse: été", false},
	    {"Re: été", "été", true},
	    {"[PATCH 1/2] Re: fix", "fix", true},
	    {"(fwd)", "", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool reply = !cases[i].reply;
		char *s = imap_base_subject(cases[i].in, &reply);
		if (strcmp(s, cases[i].out) != 0 || reply != cases[i].reply)
			fail_msg("base subject of \"%s\": \"%s\" reply=%d, want \"%s\" reply=%d", cases[i].in,
				 s, reply, cases[i].out, cases[i].reply);
		free(s);
	}
	char *s = imap_base_subject(NULL, NULL);
	assert_string_equal(s, "");
	free(s);
}

/* ---- threads ---- */

struct tmsg {
	int64_t date;
	const char *subject, *id, *refs, *irt;
};

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static struct imap_sort_keys *make_keys(const struct tmsg *m, uint32_t n)
{
	struct imap_sort_keys *keys = xcalloc(n + 1, sizeof(*keys));
	for (uint32_t i = 0; i < n; i++) {
		keys[i].seq = i + 1;
		keys[i].uid = 100 + i + 1;
		keys[i].date = m[i].date;
		keys[i].arrival = m[i].date;
		keys[i].subject = imap_base_subject(m[i].subject, &keys[i].subject_reply);
		keys[i].message_id = dup_or_null(m[i].id);
		keys[i].references = dup_or_null(m[i].refs);
		keys[i].in_reply_to = dup_or_null(m[i].irt);
	}
	return keys;
}

static void check_thread(const struct tmsg *m, uint32_t n, bool refs, const char *want)
{
	struct imap_sort_keys *keys = make_keys(m, n);
	struct buf out = BUF_INIT;
	if (refs)
		imap_thread_references(keys, n, false, &out);
	else
		imap_thread_orderedsubject(keys, n, false, &out);
	if (strcmp(buf_cstr(&out), want) != 0)
		fail_msg("thread: got \"%s\", want \"%s\"", buf_cstr(&out), want);
	buf_free(&out);
	for (uint32_t i = 0; i < n; i++)
		imap_sort_keys_free(&keys[i]);
	free(keys);
}

#define CHECK_REFS(want, ...)                                                                                \
	do {                                                                                                 \
		const struct tmsg m_[] = {__VA_ARGS__};                                                      \
		check_thread(m_, sizeof(m_) / sizeof(m_[0]), true, want);                                    \
	} while (0)

static void test_references_links(void **state)
{
	/* a chain */
	CHECK_REFS("(1 2 3)", {1, "s", "<a@x>", NULL, NULL}, {2, "Re: s", "<b@x>", "<a@x>", NULL},
		   {3, "Re: s", "<c@x>", "<a@x> <b@x>", NULL});
	/* siblings, sorted by date whatever the order of arrival */
	CHECK_REFS("(1 (3)(2))", {1, "s", "<a@x>", NULL, NULL}, {5, "Re: s", "<b@x>", "<a@x>", NULL},
		   {3, "Re: s", "<c@x>", "<a@x>", NULL});
	/* In-Reply-To when there are no References; only its first ID */
	CHECK_REFS("(1 2)(3)", {1, "s", "<a@x>", NULL, NULL}, {2, "t", "<b@x>", NULL, "<a@x> <c@x>"},
		   {3, "u", "<c@x>", NULL, NULL});
	/* References without a valid ID: In-Reply-To instead */
	CHECK_REFS("(1 2)", {1, "s", "<a@x>", NULL, NULL}, {2, "t", "<b@x>", "junk", "<a@x>"});
	/* folded IDs with whitespace inside the brackets */
	CHECK_REFS("(1 2)", {1, "s", "<a@x>", NULL, NULL}, {2, "t", "<b@x>", "< a@x >", NULL});
	/* a chain never relinks a message that has a parent... */
	CHECK_REFS("(1 (2)(3))", {1, "s", "<a@x>", NULL, NULL}, {2, "t", "<b@x>", "<a@x>", NULL},
		   {3, "u", "<c@x>", "<b@x> <a@x>", NULL});
	/* ...but a message's own References override where others put it
	   (x was under p by message 1's chain; its own parent is q) */
	CHECK_REFS("(2 1)(3)", {1, "s", "<d@x>", "<p@x> <x@x>", NULL}, {2, "t", "<x@x>", "<q@x>", NULL},
		   {3, "u", "<y@x>", "<p@x>", NULL});
	/* a loop of references is not followed */
	CHECK_REFS("(2 1)", {1, "s", "<a@x>", "<b@x>", NULL}, {2, "t", "<b@x>", "<a@x>", NULL});
	/* a message that references itself has no parent */
	CHECK_REFS("(1)", {1, "s", "<a@x>", "<a@x>", NULL});
	/* duplicate Message-IDs: the second is a message of its own */
	CHECK_REFS("(1 3)(2)", {1, "s", "<a@x>", NULL, NULL}, {2, "t", "<a@x>", NULL, NULL},
		   {3, "u", "<c@x>", "<a@x>", NULL});
	/* no Message-ID at all */
	CHECK_REFS("(1)(2)", {1, "s", NULL, NULL, NULL}, {2, "t", NULL, NULL, NULL});
}

static void test_references_dummies(void **state)
{
	/* a missing parent with one child at the root: the child is the root */
	CHECK_REFS("(1)", {1, "s", "<b@x>", "<x@x>", NULL});
	/* a missing parent with two children stays as a dummy at the root */
	CHECK_REFS("((1)(2))", {1, "s", "<b@x>", "<x@x>", NULL}, {2, "t", "<c@x>", "<x@x>", NULL});
	/* a dummy below the root is replaced by its children */
	CHECK_REFS("((1)(2))", {1, "s", "<a@x>", "<x@x> <y@x>", NULL}, {2, "t", "<b@x>", "<x@x>", NULL});
	CHECK_REFS("(1 (2)(3))", {1, "s", "<a@x>", NULL, NULL}, {2, "t", "<b@x>", "<a@x> <m@x>", NULL},
		   {3, "u", "<c@x>", "<a@x> <m@x>", NULL});
	/* a root dummy sorts by its first child's date */
	CHECK_REFS("((2)(3))(1)", {9, "s", "<a@x>", NULL, NULL}, {2, "t", "<b@x>", "<x@x>", NULL},
		   {4, "u", "<c@x>", "<x@x>", NULL});
}

static void test_references_subjects(void **state)
{
	/* a reply without references joins the thread of its subject */
	CHECK_REFS("(1 2)", {1, "hello", "<a@x>", NULL, NULL}, {2, "Re: hello", "<b@x>", NULL, NULL});
	/* the reply came first: the original still becomes the parent */
	CHECK_REFS("(2 1)", {2, "Re: hello", "<b@x>", NULL, NULL}, {1, "hello", "<a@x>", NULL, NULL});
	/* two originals with one subject: a dummy over both */
	CHECK_REFS("((1)(2))", {1, "hello", "<a@x>", NULL, NULL}, {2, "hello", "<b@x>", NULL, NULL});
	/* two replies with one subject: a dummy over both */
	CHECK_REFS("((1)(2))", {1, "Re: hello", "<a@x>", NULL, NULL}, {2, "Fwd: hello", "<b@x>", NULL, NULL});
	/* a thread whose root is a dummy takes in others of its subject */
	CHECK_REFS("((1)(2)(3))", {1, "s", "<b@x>", "<x@x>", NULL}, {2, "s", "<c@x>", "<x@x>", NULL},
		   {3, "Re: s", "<d@x>", NULL, NULL});
	/* two dummies of one subject: their children become siblings */
	CHECK_REFS("((1)(2)(3)(4))", {1, "s", "<b@x>", "<x@x>", NULL}, {2, "s", "<c@x>", "<x@x>", NULL},
		   {3, "s", "<d@x>", "<y@x>", NULL}, {4, "s", "<e@x>", "<y@x>", NULL});
	/* empty subjects are never gathered */
	CHECK_REFS("(1)(2)", {1, "", "<a@x>", NULL, NULL}, {2, "Re:", "<b@x>", NULL, NULL});
	/* case and list tags do not matter */
	CHECK_REFS("(1 2)", {1, "[list] Hello", "<a@x>", NULL, NULL}, {2, "RE: hello", "<b@x>", NULL, NULL});
}

static void test_references_rfc_example(void **state)
{
	/* A discussion with a lost message (<m2>), a late reply and an
	   unrelated message in between. */
	CHECK_REFS(
	    "(1 (2 4)(3))(5)(6 7)", {10, "topic", "<m1@x>", NULL, NULL},
	    {20, "Re: topic", "<m3@x>", "<m1@x> <m2@x>", NULL}, {30, "Re: topic", "<m4@x>", "<m1@x>", NULL},
	    {40, "Re: topic", "<m5@x>", "<m1@x> <m2@x> <m3@x>", NULL}, {50, "other", "<o1@x>", NULL, NULL},
	    {60, "third", "<t1@x>", NULL, NULL}, {70, "Re: third", "<t2@x>", NULL, "<t1@x>"});
}

static void test_orderedsubject(void **state)
{
	const struct tmsg m[] = {
	    {3, "b", NULL, NULL, NULL}, {2, "a", NULL, NULL, NULL}, {4, "Re: a", NULL, NULL, NULL},
	    {1, "B", NULL, NULL, NULL}, {5, "b", NULL, NULL, NULL},
	};
	check_thread(m, 5, false, "(4 (1)(5))(2 3)");
	const struct tmsg one[] = {{1, "x", NULL, NULL, NULL}};
	check_thread(one, 1, false, "(1)");
	check_thread(one, 0, false, "");
}

static void test_thread_big(void **state)
{
	/* a 5,000-message chain and 5,000 siblings: no deep recursion in the
	   output, and every message appears once */
	enum { N = 5000 };
	struct tmsg *m = xcalloc(2 * N, sizeof(*m));
	char(*ids)[32] = xcalloc(2 * N, 32);
	char(*refs)[32] = xcalloc(2 * N, 32);
	for (int i = 0; i < 2 * N; i++) {
		snprintf(ids[i], 32, "<m%d@x>", i);
		m[i].date = i;
		m[i].subject = i < N ? "chain" : "flat";
		m[i].id = ids[i];
		if (i > 0 && i < N) {
			snprintf(refs[i], 32, "<m%d@x>", i - 1);
			m[i].irt = refs[i];
		} else if (i > N) {
			m[i].irt = ids[N];
		}
	}
	struct imap_sort_keys *keys = make_keys(m, 2 * N);
	struct buf out = BUF_INIT;
	imap_thread_references(keys, 2 * N, false, &out);
	size_t numbers = 0;
	for (const char *p = buf_cstr(&out); *p; p++)
		if (*p >= '0' && *p <= '9' && (p[1] < '0' || p[1] > '9'))
			numbers++;
	assert_int_equal(numbers, 2 * N);
	assert_true(strncmp(buf_cstr(&out), "(1 2 3 4 ", 9) == 0);
	buf_free(&out);
	for (int i = 0; i < 2 * N; i++)
		imap_sort_keys_free(&keys[i]);
	free(keys);
	free(m);
	free(ids);
	free(refs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base_subject),
	    cmocka_unit_test(test_references_links),
	    cmocka_unit_test(test_references_dummies),
	    cmocka_unit_test(test_references_subjects),
	    cmocka_unit_test(test_references_rfc_example),
	    cmocka_unit_test(test_orderedsubject),
	    cmocka_unit_test(test_thread_big),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
