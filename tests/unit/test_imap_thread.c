/* Unit tests for RFC 5256: base-subject extraction (section 2.1, in
   src/imap/imap_sortkey.c) and the THREAD algorithms REFERENCES and
   ORDEREDSUBJECT (section 4, src/imap/imap_thread.c) over keys built by
   imap_sortkey_build(). */
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
#include <time.h>
#include <unistd.h>

/* Inputs crafted against the old code made it run for minutes or forever:
   a watchdog turns that into a failure, and the time each case took is
   checked against a bound far above what linear work needs. */
#define WATCHDOG_SECONDS 60

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = xmalloc(hl + ul * n + tl + 1);
	memcpy(s, head, hl);
	for (size_t i = 0; i < n; i++)
		memcpy(s + hl + i * ul, unit, ul);
	memcpy(s + hl + ul * n, tail, tl + 1);
	return s;
}

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
	    /* runs of blobs: a subj-refwd can only follow the whole run */
	    {"[a][b][c] x", "x", false},
	    {"[a][b][c]", "[c]", false},
	    {"[a] [b] [c]  ", "[c]", false},
	    {"[a][b]re[c]: x", "x", true},
	    {"[a][b] re [c] x", "re [c] x", false},
	    {"[a][b][c", "[c", false},
	    {"[a][b[c]] x", "[b[c]] x", false},
	    {"[][] Re: [] Fwd[]: x", "x", true},
	    {"[]", "[]", false},
	    {"[fwd: [a][b] x]", "x", true},
	    {"[fwd: [a][b]]", "[b]", true},
	    {"[a] [fwd: x]", "x", true},
	    {"re: [a] [fwd: re: [b] x (fwd)]", "x", true},
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

static void test_base_subject_crafted(void **state)
{
	/* Each of these took the old extraction time quadratic in its
	   length (32,000 "[]" and an "x": 1.2 s). */
	enum { N = 200000 };
	static const struct {
		const char *head, *unit, *tail, *out;
		bool reply;
	} cases[] = {
	    {"", "[]", "x", "x", false},      {"", "[]", "", "[]", false},
	    {"", "[a] ", "Re: x", "x", true}, {"", "[a]", "re [b", "re [b", false},
	    {"", "[", "x", NULL, false},      {"", "Re: ", "x", "x", true},
	    {"", "[fwd: ", "x", NULL, true},  {"x", "(fwd) ", "", "x", true},
	    {"", "re [a][", "", NULL, false},
	};
	alarm(WATCHDOG_SECONDS);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *in = repeat(cases[i].head, cases[i].unit, N, cases[i].tail);
		bool reply;
		double t0 = cpu_seconds();
		char *out = imap_base_subject(in, &reply);
		double spent = cpu_seconds() - t0;
		if (spent > 0.5)
			fail_msg("base subject of %d x \"%s\": %.2f s", N, cases[i].unit, spent);
		if (cases[i].out != NULL && (strcmp(out, cases[i].out) != 0 || reply != cases[i].reply))
			fail_msg("base subject of %d x \"%s\": \"%.20s\" reply=%d", N, cases[i].unit, out,
				 reply);
		free(out);
		free(in);
	}
	alarm(0);
}

/* ---- threads ---- */

struct tmsg {
	int64_t date;
	const char *subject, *id, *refs, *irt;
};

/* Keys of raw fields; date set as the owner sets it. */
static struct imap_sort_msg *make_msgs(const struct tmsg *m, uint32_t n)
{
	struct imap_sort_msg *msgs = xcalloc(n + 1, sizeof(*msgs));
	for (uint32_t i = 0; i < n; i++) {
		struct imap_sortkey_fields f = {.subject = m[i].subject,
						.message_id = m[i].id,
						.references = m[i].refs,
						.in_reply_to = m[i].irt};
		struct imap_sortkey *k = imap_sortkey_build(&f);
		k->date = m[i].date;
		msgs[i].seq = i + 1;
		msgs[i].uid = 100 + i + 1;
		msgs[i].arrival = m[i].date;
		msgs[i].key = k;
	}
	return msgs;
}

static void free_msgs(struct imap_sort_msg *msgs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free((void *)msgs[i].key);
	free(msgs);
}

static void check_thread(const struct tmsg *m, uint32_t n, bool refs, const char *want)
{
	struct imap_sort_msg *msgs = make_msgs(m, n);
	struct buf out = BUF_INIT;
	if (refs)
		imap_thread_references(msgs, n, false, &out);
	else
		imap_thread_orderedsubject(msgs, n, false, &out);
	if (strcmp(buf_cstr(&out), want) != 0)
		fail_msg("thread: got \"%s\", want \"%s\"", buf_cstr(&out), want);
	buf_free(&out);
	free_msgs(msgs, n);
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

/* RFC 5256 sorts with i;ascii-casemap (RFC 4790 9.2): letters compare as
   upper case, so "_" and "[" sort after them. */
static void test_casemap_collation(void **state)
{
	assert_int_equal(imap_casemap_cmp("abc", "ABC"), 0);
	assert_true(imap_casemap_cmp("a", "_") < 0);
	assert_true(imap_casemap_cmp("x", "[xyz]") < 0);
	assert_true(imap_casemap_cmp("[xyz]", "_") < 0);
	assert_true(imap_casemap_cmp("", "a") < 0);
	assert_true(imap_casemap_cmp("b", "a") > 0);
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
	struct imap_sort_msg *msgs = make_msgs(m, 2 * N);
	struct buf out = BUF_INIT;
	imap_thread_references(msgs, 2 * N, false, &out);
	size_t numbers = 0;
	for (const char *p = buf_cstr(&out); *p; p++)
		if (*p >= '0' && *p <= '9' && (p[1] < '0' || p[1] > '9'))
			numbers++;
	assert_int_equal(numbers, 2 * N);
	assert_true(strncmp(buf_cstr(&out), "(1 2 3 4 ", 9) == 0);
	buf_free(&out);
	free_msgs(msgs, 2 * N);
	free(m);
	free(ids);
	free(refs);
}

/* Threads messages whose IDs (not subjects) are the test's to free, for
   the big cases: the threading (not the key building) within max_seconds
   of CPU time. */
static void thread_owned(struct tmsg *m, uint32_t n, const char *want, double max_seconds)
{
	struct imap_sort_msg *msgs = make_msgs(m, n);
	for (uint32_t i = 0; i < n; i++) {
		free((char *)m[i].id);
		free((char *)m[i].refs);
		free((char *)m[i].irt);
	}
	free(m);
	struct buf out = BUF_INIT;
	double t0 = cpu_seconds();
	imap_thread_references(msgs, n, false, &out);
	double spent = cpu_seconds() - t0;
	if (spent > max_seconds)
		fail_msg("THREAD of %u messages: %.2f s", n, spent);
	if (want != NULL && strcmp(buf_cstr(&out), want) != 0)
		fail_msg("thread: got \"%.200s\", want \"%s\"", buf_cstr(&out), want);
	/* every message appears once, parentheses balance */
	size_t numbers = 0;
	long depth = 0;
	for (const char *p = buf_cstr(&out); *p; p++) {
		if (*p >= '0' && *p <= '9' && (p[1] < '0' || p[1] > '9'))
			numbers++;
		depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
		assert_true(depth >= 0);
	}
	assert_int_equal(depth, 0);
	assert_int_equal(numbers, n);
	buf_free(&out);
	free_msgs(msgs, n);
}

static char *numbered(const char *fmt, uint32_t i)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), fmt, i);
	return xstrdup(tmp);
}

static void test_references_many_ids(void **state)
{
	alarm(WATCHDOG_SECONDS);
	/* More IDs in References than the old fixed table (max(64, 4 x
	   messages) slots) held: it filled up and the lookup never ended. */
	CHECK_REFS("(1)", {1, "s", "<a@x>",
			   "<r0@x> <r1@x> <r2@x> <r3@x> <r4@x> <r5@x> <r6@x> <r7@x> <r8@x> <r9@x> "
			   "<r10@x> <r11@x> <r12@x> <r13@x> <r14@x> <r15@x> <r16@x> <r17@x> <r18@x> "
			   "<r19@x> <r20@x> <r21@x> <r22@x> <r23@x> <r24@x> <r25@x> <r26@x> <r27@x> "
			   "<r28@x> <r29@x> <r30@x> <r31@x> <r32@x> <r33@x> <r34@x> <r35@x> <r36@x> "
			   "<r37@x> <r38@x> <r39@x> <r40@x> <r41@x> <r42@x> <r43@x> <r44@x> <r45@x> "
			   "<r46@x> <r47@x> <r48@x> <r49@x> <r50@x> <r51@x> <r52@x> <r53@x> <r54@x> "
			   "<r55@x> <r56@x> <r57@x> <r58@x> <r59@x> <r60@x> <r61@x> <r62@x> <r63@x> "
			   "<r64@x> <r65@x> <r66@x> <r67@x> <r68@x> <r69@x>",
			   NULL});
	/* 200,000 IDs: a chain of placeholders that deep (the old code
	   recursed once per level and overflowed the stack; the MIME parser
	   keeps a field to 64 KiB, but a chain of replies is as deep as the
	   mailbox is big); the message it ends in is found, and a second
	   message under the chain too */
	enum { DEEP = 200000 };
	struct buf refs = BUF_INIT;
	for (uint32_t i = 0; i < DEEP; i++)
		buf_printf(&refs, "<c%u@x> ", i);
	struct tmsg *keys = xcalloc(4, sizeof(*keys));
	keys[0].date = 3;
	keys[0].id = xstrdup("<a@x>");
	keys[0].refs = buf_steal(&refs);
	keys[1].date = 1;
	keys[1].id = numbered("<c%u@x>", DEEP - 1);
	keys[1].refs = numbered("<c%u@x>", DEEP - 2);
	keys[2].date = 2;
	keys[2].id = xstrdup("<b@x>");
	keys[2].refs = numbered("<c%u@x>", DEEP / 2);
	thread_owned(keys, 3, "((2 1)(3))", 2.0);
	/* one header of "<" and a ">": scanning for IDs restarted at each "<"
	   and looked for the ">" again */
	keys = xcalloc(2, sizeof(*keys));
	keys[0].id = xstrdup("<a@x>");
	keys[0].refs = repeat("", "<", 1000000, ">");
	thread_owned(keys, 1, "(1)", 1.0);
	alarm(0);
}

static void test_references_crafted_mailbox(void **state)
{
	enum { N = 100000 };
	alarm(WATCHDOG_SECONDS);
	/* N replies to one missing message: appending each to a list of
	   siblings cost the length of that list */
	struct tmsg *keys = xcalloc(N + 1, sizeof(*keys));
	for (uint32_t i = 0; i < N; i++) {
		keys[i].date = i;
		keys[i].id = numbered("<m%u@x>", i);
		keys[i].refs = xstrdup("<p@x>");
	}
	thread_owned(keys, N, NULL, 1.5);
	/* N messages of one subject: gathered under one dummy */
	keys = xcalloc(N + 1, sizeof(*keys));
	for (uint32_t i = 0; i < N; i++) {
		keys[i].date = i;
		keys[i].id = numbered("<m%u@x>", i);
		keys[i].subject = i % 2 ? "Re: same" : "same";
	}
	thread_owned(keys, N, NULL, 1.5);
	/* a chain of 100,000 placeholders, N / 10 messages under its end */
	keys = xcalloc(N / 10 + 2, sizeof(*keys));
	struct buf refs = BUF_INIT;
	for (uint32_t i = 0; i < 100000; i++)
		buf_printf(&refs, "<c%u@x> ", i);
	keys[0].id = xstrdup("<top@x>");
	keys[0].refs = buf_steal(&refs);
	for (uint32_t i = 1; i <= N / 10; i++) {
		keys[i].date = i;
		keys[i].id = numbered("<m%u@x>", i);
		keys[i].refs = xstrdup("<c99999@x>");
	}
	thread_owned(keys, N / 10 + 1, NULL, 1.5);
	/* a tree 50,000 levels deep with a branch at every level: output
	   nested that deep */
	keys = xcalloc(N + 1, sizeof(*keys));
	for (uint32_t i = 0; i < N; i++) {
		keys[i].date = i;
		keys[i].id = numbered("<m%u@x>", i);
		if (i >= 2)
			keys[i].irt = numbered("<m%u@x>", (i / 2 - 1) * 2);
	}
	thread_owned(keys, N, NULL, 1.5);
	alarm(0);
}

static void test_orderedsubject_many(void **state)
{
	enum { N = 100000 };
	alarm(WATCHDOG_SECONDS);
	struct tmsg *m = xcalloc(N + 1, sizeof(*m));
	for (uint32_t i = 0; i < N; i++) {
		m[i].date = i;
		m[i].subject = "same";
	}
	struct imap_sort_msg *msgs = make_msgs(m, N);
	for (uint32_t i = 0; i < N; i++)
		msgs[i].uid = i + 1;
	struct buf out = BUF_INIT;
	double t0 = cpu_seconds();
	imap_thread_orderedsubject(msgs, N, false, &out);
	assert_true(cpu_seconds() - t0 < 1.5);
	assert_true(strncmp(buf_cstr(&out), "(1 (2)(3)(4)", 12) == 0);
	buf_free(&out);
	free_msgs(msgs, N);
	free(m);
	alarm(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base_subject),        cmocka_unit_test(test_base_subject_crafted),
	    cmocka_unit_test(test_references_links),    cmocka_unit_test(test_references_dummies),
	    cmocka_unit_test(test_references_subjects), cmocka_unit_test(test_references_rfc_example),
	    cmocka_unit_test(test_orderedsubject),      cmocka_unit_test(test_thread_big),
	    cmocka_unit_test(test_references_many_ids), cmocka_unit_test(test_references_crafted_mailbox),
	    cmocka_unit_test(test_orderedsubject_many), cmocka_unit_test(test_casemap_collation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
