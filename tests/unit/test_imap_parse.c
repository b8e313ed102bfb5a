/* Unit tests for the IMAP command parser (src/imap/imap_parse*.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap/imap_parse.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders an argument tree as text: atoms bare, strings "..", literals
   {..}, lists (..), NIL as NIL. */
static void dump_args(struct buf *out, const struct imap_arg *args, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		if (i > 0)
			buf_append_char(out, ' ');
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_append(out, a->str, a->len);
			break;
		case IMAP_ARG_NIL:
			buf_append_str(out, "NIL");
			break;
		case IMAP_ARG_STRING:
			buf_printf(out, "\"%s\"", a->str);
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(out, "%s{%.*s}", a->literal8 ? "~" : "", (int)a->len, a->str);
			break;
		case IMAP_ARG_LIST:
			buf_append_char(out, '(');
			dump_args(out, a->list, a->count);
			buf_append_char(out, ')');
			break;
		}
	}
}

/* Feeds input in chunks of chunk bytes (0: all at once), answering
   literal continuations, and returns the rendering of the first command
   or "BAD <tag> <error>".  *conts_r counts "+" continuations. */
static char *parse_chunked(const char *input, size_t len, size_t chunk, int *conts_r)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct buf out = BUF_INIT;
	size_t pos = 0;
	int conts = 0;
	while (pos < len) {
		size_t n = chunk == 0 || len - pos < chunk ? len - pos : chunk;
		size_t used;
		enum imap_parse_result r = imap_parser_feed(p, input + pos, n, &used);
		pos += used;
		if (r == IMAP_PARSE_LITERAL) {
			conts++;
			continue;
		}
		if (r == IMAP_PARSE_COMMAND) {
			const struct imap_command *c = imap_parser_command(p);
			buf_printf(&out, "%s %s", c->tag, c->name);
			if (c->count > 0) {
				buf_append_str(&out, " [");
				dump_args(&out, c->args, c->count);
				buf_append_char(&out, ']');
			}
			break;
		}
		if (r == IMAP_PARSE_ERROR) {
			buf_printf(&out, "BAD %s %s", imap_parser_tag(p), imap_parser_error(p));
			break;
		}
	}
	if (out.len == 0)
		buf_append_str(&out, "MORE");
	if (conts_r != NULL)
		*conts_r = conts;
	imap_parser_destroy(&p);
	return buf_steal(&out);
}

static const struct {
	const char *input, *expect;
} parse_cases[] = {
    /* every RFC 3501 / extension command shape */
    {"a1 CAPABILITY\r\n", "a1 CAPABILITY"},
    {"a2 noop\r\n", "a2 NOOP"},
    {"a3 LOGOUT\r\n", "a3 LOGOUT"},
    {"a STARTTLS\r\n", "a STARTTLS"},
    {"a AUTHENTICATE PLAIN\r\n", "a AUTHENTICATE [PLAIN]"},
    {"a AUTHENTICATE PLAIN AGpvZQBwdw==\r\n", "a AUTHENTICATE [PLAIN AGpvZQBwdw==]"},
    {"a LOGIN joe \"se\\\"cret\"\r\n", "a LOGIN [joe \"se\"cret\"]"},
    {"a LOGIN {3}\r\njoe {2}\r\npw\r\n", "a LOGIN [{joe} {pw}]"},
    {"a LOGIN {3+}\r\njoe {2+}\r\npw\r\n", "a LOGIN [{joe} {pw}]"},
    {"a SELECT INBOX\r\n", "a SELECT [INBOX]"},
    {"a SELECT INBOX (CONDSTORE)\r\n", "a SELECT [INBOX (CONDSTORE)]"},
    {"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
     "a SELECT [INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))]"},
    {"a EXAMINE \"Sent\"\r\n", "a EXAMINE [\"Sent\"]"},
    {"a CREATE foo.bar\r\n", "a CREATE [foo.bar]"},
    {"a CREATE Archive (USE (\\Archive))\r\n", "a CREATE [Archive (USE (\\Archive))]"},
    {"a DELETE foo\r\n", "a DELETE [foo]"},
    {"a RENAME foo bar\r\n", "a RENAME [foo bar]"},
    {"a SUBSCRIBE foo\r\n", "a SUBSCRIBE [foo]"},
    {"a UNSUBSCRIBE foo\r\n", "a UNSUBSCRIBE [foo]"},
    {"a LIST \"\" *\r\n", "a LIST [\"\" *]"},
    {"a LIST \"\" %.%\r\n", "a LIST [\"\" %.%]"},
    {"a LIST (SUBSCRIBED) \"\" (\"INBOX\" \"Sent*\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
     "a LIST [(SUBSCRIBED) \"\" (\"INBOX\" \"Sent*\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))]"},
    {"a LSUB \"\" *\r\n", "a LSUB [\"\" *]"},
    {"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)\r\n",
     "a STATUS [INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)]"},
    {"a APPEND INBOX (\\Seen) \" 1-Jan-2024 10:00:00 +0000\" {5}\r\nhello\r\n",
     "a APPEND [INBOX (\\Seen) \" 1-Jan-2024 10:00:00 +0000\" {hello}]"},
    {"a APPEND INBOX ~{3+}\r\na\0b\r\n", "a APPEND [INBOX ~{a}]"},
    /* MULTIAPPEND (RFC 3502), UTF8 (RFC 6855 4) */
    {"a APPEND INBOX (\\Seen) {1}\r\na (\\Flagged) \"1-Jan-2024 10:00:00 +0000\" {2+}\r\nbc {1+}\r\nd\r\n",
     "a APPEND [INBOX (\\Seen) {a} (\\Flagged) \"1-Jan-2024 10:00:00 +0000\" {bc} {d}]"},
    {"a APPEND INBOX UTF8 (~{2+}\r\nab) () UTF8 (~{1}\r\nd)\r\n",
     "a APPEND [INBOX UTF8 (~{ab}) () UTF8 (~{d})]"},
    {"a CHECK\r\n", "a CHECK"},
    {"a CLOSE\r\n", "a CLOSE"},
    {"a UNSELECT\r\n", "a UNSELECT"},
    {"a EXPUNGE\r\n", "a EXPUNGE"},
    {"a UID EXPUNGE 1:5\r\n", "a UID [EXPUNGE 1:5]"},
    {"a SEARCH CHARSET UTF-8 OR FROM x (SUBJECT {3}\r\nfoo UNSEEN)\r\n",
     "a SEARCH [CHARSET UTF-8 OR FROM x (SUBJECT {foo} UNSEEN)]"},
    {"a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n",
     "a FETCH [1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)]"},
    {"a FETCH 1 BODY[]\r\n", "a FETCH [1 BODY[]]"},
    {"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
     "a UID [FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)]"},
    {"a STORE 1:3 +FLAGS.SILENT (\\Seen \\Deleted)\r\n", "a STORE [1:3 +FLAGS.SILENT (\\Seen \\Deleted)]"},
    {"a STORE 1 (UNCHANGEDSINCE 5) FLAGS ()\r\n", "a STORE [1 (UNCHANGEDSINCE 5) FLAGS ()]"},
    {"a COPY 1:2 Trash\r\n", "a COPY [1:2 Trash]"},
    {"a MOVE 1 Trash\r\n", "a MOVE [1 Trash]"},
    {"a UID MOVE 4:2 Trash\r\n", "a UID [MOVE 4:2 Trash]"},
    {"a IDLE\r\n", "a IDLE"},
    {"a NAMESPACE\r\n", "a NAMESPACE"},
    {"a ID (\"name\" \"mutt\" \"version\" NIL)\r\n", "a ID [(\"name\" \"mutt\" \"version\" NIL)]"},
    {"a ID NIL\r\n", "a ID [NIL]"},
    {"a ENABLE CONDSTORE QRESYNC IMAP4rev2\r\n", "a ENABLE [CONDSTORE QRESYNC IMAP4rev2]"},
    {"a SORT (REVERSE DATE) UTF-8 ALL\r\n", "a SORT [(REVERSE DATE) UTF-8 ALL]"},
    {"a THREAD REFERENCES UTF-8 ALL\r\n", "a THREAD [REFERENCES UTF-8 ALL]"},
    {"a GETQUOTAROOT INBOX\r\n", "a GETQUOTAROOT [INBOX]"},
    {"a GETQUOTA \"\"\r\n", "a GETQUOTA [\"\"]"},
    {"a COMPRESS DEFLATE\r\n", "a COMPRESS [DEFLATE]"},
    {"a select \"&AMk-t&AOk-\"\r\n", "a SELECT [\"&AMk-t&AOk-\"]"},
    {"a NOOP\n", "a NOOP"},
    {"\r\n\r\na NOOP\r\n", "a NOOP"},
    {"a LOGIN \"\" \"\"\r\n", "a LOGIN [\"\" \"\"]"},
    {"a X (((a)))\r\n", "a X [(((a)))]"},
    {"a X ()\r\n", "a X [()]"},
    {"a X {0}\r\n\r\n", "a X [{}]"},
    {"a X \"{5}\"\r\n", "a X [\"{5}\"]"},
    {"a X foo}\r\n", "a X [foo}]"},
    /* "[" is an ATOM-CHAR; only a fetch item's section runs to its "]" */
    {"a SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}\r\n", "a SELECT [!#$&'+,-.0123456789:;<=>?@^_`|[}]"},
    {"a LIST \"\" a[b%*\r\n", "a LIST [\"\" a[b%*]"},
    {"a X x[y z]\r\n", "a X [x[y z]]"},
    {"a FETCH 1 (binary.peek[1] BODY.PEEK[HEADER.FIELDS (A B)])\r\n",
     "a FETCH [1 (binary.peek[1] BODY.PEEK[HEADER.FIELDS (A B)])]"},
    /* malformed input */
    {"\r\n", "MORE"},
    {"+ NOOP\r\n", "BAD * Invalid tag"},
    {"a\"b NOOP\r\n", "BAD * Invalid tag"},
    {"a* NOOP\r\n", "BAD * Invalid tag"},
    {"NOOP\r\n", "BAD NOOP Missing command"},
    {"a \r\n", "BAD a Invalid command name"},
    {"a  NOOP\r\n", "BAD a Invalid command name"},
    {"a NO(OP\r\n", "BAD a Invalid command name"},
    {"a NOOP \r\n", "BAD a Extra space"},
    {"a X (a\r\n", "BAD a Missing )"},
    {"a X a)\r\n", "BAD a Unexpected )"},
    {"a X (a))\r\n", "BAD a Unexpected )"},
    {"a X (a  b)\r\n", "BAD a Extra space"},
    {"a X \"abc\r\n", "BAD a Invalid quoted string"},
    {"a X \"a\\bc\"\r\n", "BAD a Invalid quoted string"},
    {"a X {-5}\r\n", "BAD a Invalid literal size"},
    {"a X {5a}\r\n", "BAD a Invalid literal size"},
    {"a X {99999999999}\r\n", "BAD a Invalid literal size"},
    {"a X {4294967295}\r\n", "BAD a Literal too big"},
    {"a X {100000}\r\n", "BAD a Literal too big"},
    {"a APPEND INBOX {4000000000}\r\n", "BAD a [TOOBIG] Literal too big"},
    {"a X {100000+}\r\n", "BAD a Literal too big"},
    {"a X a\0b\r\n", "BAD a NUL byte in command"},
    {"a X {3}\r\na\0b\r\n", "BAD a NUL byte in literal"},
    {"a X BODY[HEADER\r\n", "BAD a Missing ]"},
    {"a X (((((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))))\r\n",
     "BAD a Too deeply nested lists"},
    {"a X x{3}\r\n", "BAD a Missing space between arguments"},
};

static void test_parse_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(parse_cases); i++) {
		/* inputs hold NULs: use the real length */
		const char *in = parse_cases[i].input;
		size_t len = strlen(in);
		if (strstr(parse_cases[i].expect, "NUL") != NULL || strstr(in, "~{3+}") != NULL)
			len += strlen(in + len + 1) + 1;
		size_t chunks[] = {0, 1, 3};
		for (size_t c = 0; c < N_ELEMENTS(chunks); c++) {
			char *got = parse_chunked(in, len, chunks[c], NULL);
			if (strcmp(got, parse_cases[i].expect) != 0)
				fail_msg("case %zu chunk %zu: got <%s> expected <%s>", i, chunks[c], got,
					 parse_cases[i].expect);
			free(got);
		}
	}
}

static void test_sync_literal_continuations(void **state)
{
	int conts;
	const char *in = "a LOGIN {3}\r\njoe {2}\r\npw\r\n";
	char *got = parse_chunked(in, strlen(in), 0, &conts);
	assert_string_equal(got, "a LOGIN [{joe} {pw}]");
	assert_int_equal(conts, 2);
	free(got);
	in = "a LOGIN {3+}\r\njoe {2+}\r\npw\r\n";
	got = parse_chunked(in, strlen(in), 0, &conts);
	assert_int_equal(conts, 0);
	free(got);
}

/* The parser stops right after a command: what follows stays unread. */
static void test_stops_after_command(void **state)
{
	struct imap_parser *p = imap_parser_create(NULL);
	const char *in = "a AUTHENTICATE PLAIN\r\nAGpvZQBwdw==\r\nb NOOP\r\n";
	size_t used;
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_COMMAND);
	assert_int_equal(used, strlen("a AUTHENTICATE PLAIN\r\n"));
	assert_string_equal(imap_parser_command(p)->name, "AUTHENTICATE");
	in += used + strlen("AGpvZQBwdw==\r\n");
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_COMMAND);
	assert_string_equal(imap_parser_command(p)->tag, "b");
	assert_false(imap_parser_busy(p));
	imap_parser_destroy(&p);
}

static void test_long_line_skipped(void **state)
{
	struct imap_parse_limits lim = {.max_line = 100};
	struct imap_parser *p = imap_parser_create(&lim);
	struct buf in = BUF_INIT;
	buf_append_str(&in, "t1 NOOP ");
	for (int i = 0; i < 1000; i++)
		buf_append_str(&in, "xxxxxxxxxx");
	buf_append_str(&in, "\r\nt2 NOOP\r\n");
	size_t used, pos = 0;
	enum imap_parse_result r = imap_parser_feed(p, in.data, in.len, &used);
	assert_int_equal(r, IMAP_PARSE_ERROR);
	assert_string_equal(imap_parser_tag(p), "t1");
	assert_string_equal(imap_parser_error(p), "Command line too long");
	pos += used;
	r = imap_parser_feed(p, in.data + pos, in.len - pos, &used);
	assert_int_equal(r, IMAP_PARSE_COMMAND);
	assert_string_equal(imap_parser_command(p)->tag, "t2");
	/* an overlong line after a literal: the next command starts afresh */
	buf_reset(&in);
	buf_append_str(&in, "t3 X {3+}\r\nabc ");
	for (int i = 0; i < 1000; i++)
		buf_append_str(&in, "xxxxxxxxxx");
	buf_append_str(&in, "\r\nt4 NOOP\r\n");
	pos = 0;
	assert_int_equal(imap_parser_feed(p, in.data, in.len, &used), IMAP_PARSE_ERROR);
	assert_string_equal(imap_parser_tag(p), "t3");
	pos += used;
	r = imap_parser_feed(p, in.data + pos, in.len - pos, &used);
	assert_int_equal(r, IMAP_PARSE_COMMAND);
	assert_string_equal(imap_parser_command(p)->tag, "t4");
	buf_free(&in);
	imap_parser_destroy(&p);
}

/* A rejected non-synchronising literal is skipped, then parsing goes on. */
static void test_big_nonsync_literal_skipped(void **state)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct buf in = BUF_INIT;
	buf_append_str(&in, "t1 X {70000+}\r\n");
	for (int i = 0; i < 7000; i++)
		buf_append_str(&in, "yyyyyyyyyy");
	buf_append_str(&in, " tail\r\nt2 NOOP\r\n");
	size_t used, pos = 0;
	assert_int_equal(imap_parser_feed(p, in.data, in.len, &used), IMAP_PARSE_ERROR);
	assert_string_equal(imap_parser_tag(p), "t1");
	pos += used;
	enum imap_parse_result r;
	do {
		r = imap_parser_feed(p, in.data + pos, in.len - pos > 1000 ? 1000 : in.len - pos, &used);
		pos += used;
	} while (r == IMAP_PARSE_MORE && pos < in.len);
	assert_int_equal(r, IMAP_PARSE_COMMAND);
	assert_string_equal(imap_parser_command(p)->tag, "t2");
	assert_false(imap_parser_fatal(p));
	buf_free(&in);
	imap_parser_destroy(&p);
}

/* Limits as a session holds them before authentication: 8 KB for a whole
   command with its literals, and a non-synchronising literal beyond that
   is fatal (the data is on its way: BYE instead of reading it). */
static const struct imap_parse_limits preauth_limits = {
    .max_line = 8192,
    .max_literal = 8192,
    .max_append_literal = 8192,
    .max_command = 8192,
    .big_literal_fatal = true,
};

static void test_preauth_literals(void **state)
{
	struct imap_parser *p = imap_parser_create(&preauth_limits);
	size_t used;
	/* APPEND gets no more than any other command */
	const char *in = "a APPEND x {26000000+}\r\nxxxx";
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_ERROR);
	assert_true(imap_parser_fatal(p));
	imap_parser_destroy(&p);
	/* literals that fit one by one, but not together */
	p = imap_parser_create(&preauth_limits);
	struct buf b = BUF_INIT;
	buf_append_str(&b, "a LOGIN {4000+}\r\n");
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 400; j++)
			buf_append_str(&b, "yyyyyyyyyy");
		buf_append_str(&b, " {4000+}\r\n");
	}
	assert_int_equal(imap_parser_feed(p, b.data, b.len, &used), IMAP_PARSE_ERROR);
	assert_true(imap_parser_fatal(p));
	assert_true(used < 8192 + 100);
	buf_free(&b);
	imap_parser_destroy(&p);
	/* a synchronising one: refused before the client sends it, and the
	   session goes on */
	p = imap_parser_create(&preauth_limits);
	in = "a LOGIN {9000}\r\n";
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_ERROR);
	assert_false(imap_parser_fatal(p));
	assert_string_equal(imap_parser_tag(p), "a");
	in = "b LOGIN {3}\r\n";
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_LITERAL);
	in = "joe pw\r\n";
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_COMMAND);
	assert_string_equal(imap_parser_command(p)->tag, "b");
	/* after login: the full limits, from the next command on */
	assert_false(imap_parser_busy(p));
	imap_parser_set_limits(p, NULL);
	b = (struct buf)BUF_INIT;
	buf_append_str(&b, "c APPEND x {100000+}\r\n");
	for (int j = 0; j < 10000; j++)
		buf_append_str(&b, "zzzzzzzzzz");
	buf_append_str(&b, "\r\n");
	assert_int_equal(imap_parser_feed(p, b.data, b.len, &used), IMAP_PARSE_COMMAND);
	assert_int_equal(imap_parser_command(p)->args[1].len, 100000);
	buf_free(&b);
	imap_parser_destroy(&p);
	/* a command over the limits already, whose skipped line ends in a
	   non-synchronising literal */
	p = imap_parser_create(&preauth_limits);
	b = (struct buf)BUF_INIT;
	buf_append_str(&b, "a LOGIN ");
	for (int j = 0; j < 1000; j++)
		buf_append_str(&b, "xxxxxxxxxx");
	buf_append_str(&b, " {100000000+}\r\nxxxx");
	assert_int_equal(imap_parser_feed(p, b.data, b.len, &used), IMAP_PARSE_ERROR);
	assert_false(imap_parser_fatal(p));
	size_t pos = used;
	assert_int_equal(imap_parser_feed(p, b.data + pos, b.len - pos, &used), IMAP_PARSE_ERROR);
	assert_true(imap_parser_fatal(p));
	buf_free(&b);
	imap_parser_destroy(&p);
}

static void test_max_args(void **state)
{
	struct imap_parse_limits lim = {.max_args = 5};
	struct imap_parser *p = imap_parser_create(&lim);
	size_t used;
	const char *in = "a X 1 2 3 4 5 6\r\n";
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_ERROR);
	assert_string_equal(imap_parser_error(p), "Too many arguments");
	in = "b X 1 2 3 4 5\r\n";
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_COMMAND);
	imap_parser_destroy(&p);
}

/* The messages of one APPEND share the command's limit (RFC 3502): each
   literal is held to the APPEND limit, all of them together to the
   command limit, with a reply that says which. */
static void test_multiappend_limits(void **state)
{
	struct imap_parse_limits lim = {.max_append_literal = 100, .max_command = 250};
	struct imap_parser *p = imap_parser_create(&lim);
	struct buf in = BUF_INIT;
	buf_append_str(&in, "a APPEND x");
	for (int i = 0; i < 3; i++) {
		buf_append_str(&in, " {90+}\r\n");
		for (int j = 0; j < 9; j++)
			buf_append_str(&in, "0123456789");
	}
	buf_append_str(&in, "\r\nb NOOP\r\n");
	size_t used, pos = 0;
	enum imap_parse_result r = imap_parser_feed(p, in.data, in.len, &used);
	assert_int_equal(r, IMAP_PARSE_ERROR);
	assert_string_equal(imap_parser_error(p), "[LIMIT] The messages of one APPEND are too big together");
	assert_false(imap_parser_fatal(p));
	/* the rest of the command is skipped, the next one parses */
	pos += used;
	do {
		r = imap_parser_feed(p, in.data + pos, in.len - pos, &used);
		pos += used;
	} while (r == IMAP_PARSE_MORE && pos < in.len);
	assert_int_equal(r, IMAP_PARSE_COMMAND);
	assert_string_equal(imap_parser_command(p)->tag, "b");
	const char *big = "c APPEND x {101}\r\n";
	assert_int_equal(imap_parser_feed(p, big, strlen(big), &used), IMAP_PARSE_ERROR);
	assert_string_equal(imap_parser_error(p), "[TOOBIG] Literal too big");
	buf_free(&in);
	imap_parser_destroy(&p);
}

/* APPEND's literals can outlive the parser's next command: the caller
   takes the pool that holds them. */
static void test_take_pool(void **state)
{
	struct imap_parser *p = imap_parser_create(NULL);
	size_t used;
	const char *in = "a APPEND x {5+}\r\nhello\r\n";
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_COMMAND);
	const struct imap_arg *lit = &imap_parser_command(p)->args[1];
	struct pool *pool = imap_parser_take_pool(p);
	assert_non_null(pool);
	assert_null(imap_parser_take_pool(p));
	imap_parser_reset(p);
	in = "b NOOP\r\n";
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_COMMAND);
	assert_int_equal(lit->len, 5);
	assert_memory_equal(lit->str, "hello", 5);
	pool_destroy(&pool);
	imap_parser_destroy(&p);
}

/* ---- sequence sets ---- */

static void test_seqset(void **state)
{
	struct pool *pool = pool_create(1024);
	struct imap_seqset *set;
	const char *err;
	assert_int_equal(imap_seqset_parse(pool, "1:3,7,9:*,20:15", &set, &err), 0);
	assert_int_equal(set->count, 4);
	assert_true(imap_seqset_contains(set, 2, 50));
	assert_false(imap_seqset_contains(set, 5, 50));
	assert_true(imap_seqset_contains(set, 16, 50));
	assert_true(imap_seqset_contains(set, 50, 50));
	assert_int_equal(imap_seqset_max(set, 50), 50);
	assert_int_equal(imap_seqset_parse(pool, "*:4", &set, &err), 0);
	assert_true(imap_seqset_contains(set, 3, 3)); /* 3:4 with * = 3 */
	assert_true(imap_seqset_contains(set, 4, 10));
	/* 4294967295 is the largest nz-number, not "*" (RFC 3501 9) */
	assert_int_equal(imap_seqset_parse(pool, "7:4294967295", &set, &err), 0);
	assert_false(imap_seqset_contains(set, 6, 6));
	assert_true(imap_seqset_contains(set, 7, 6));
	assert_true(imap_seqset_contains(set, 4294967295u, 6));
	assert_int_equal(imap_seqset_max(set, 6), 4294967295u);
	assert_int_equal(imap_seqset_parse(pool, "7:*", &set, &err), 0);
	assert_true(imap_seqset_contains(set, 6, 6));
	assert_int_equal(imap_seqset_parse(pool, "$", &set, &err), 0);
	assert_true(set->saved);
	const char *bad[] = {"",  "0",     "1:0",        "1,", ",1",  "1::2",
			     "a", "1:*:3", "4294967296", "-1", "1 2", "*5"};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		if (imap_seqset_parse(pool, bad[i], &set, &err) == 0)
			fail_msg("seqset <%s> accepted", bad[i]);
	pool_destroy(&pool);
}

/* ---- flags and STORE ---- */

static struct imap_command *parse_one(struct imap_parser *p, const char *in)
{
	size_t used;
	if (imap_parser_feed(p, in, strlen(in), &used) != IMAP_PARSE_COMMAND)
		fail_msg("<%s> did not parse: %s", in, imap_parser_error(p));
	return (struct imap_command *)imap_parser_command(p);
}

static void test_store(void **state)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct pool *pool = pool_create(1024);
	struct imap_store_args st;
	const char *err;
	struct imap_command *c = parse_one(p, "a STORE 1:2 +FLAGS.SILENT (\\Seen foo \\deleted)\r\n");
	assert_int_equal(imap_store_parse(pool, c->args, c->count, &st, &err), 0);
	assert_int_equal(st.op, IMAP_STORE_ADD);
	assert_true(st.silent);
	assert_int_equal(st.flags.flags, IMAP_FLAG_SEEN | IMAP_FLAG_DELETED);
	assert_int_equal(st.flags.keyword_count, 1);
	assert_string_equal(st.flags.keywords[0], "foo");
	c = parse_one(p, "a STORE 1 (UNCHANGEDSINCE 42) -FLAGS \\Flagged\r\n");
	assert_int_equal(imap_store_parse(pool, c->args, c->count, &st, &err), 0);
	assert_int_equal(st.op, IMAP_STORE_REMOVE);
	assert_true(st.has_unchangedsince);
	assert_int_equal(st.unchangedsince, 42);
	assert_int_equal(st.flags.flags, IMAP_FLAG_FLAGGED);
	/* NIL is a keyword like any other atom (flag-keyword = atom) */
	c = parse_one(p, "a STORE 1 +FLAGS NIL\r\n");
	assert_int_equal(imap_store_parse(pool, c->args, c->count, &st, &err), 0);
	assert_int_equal(st.flags.keyword_count, 1);
	assert_string_equal(st.flags.keywords[0], "NIL");
	c = parse_one(p, "a STORE 1 FLAGS ()\r\n");
	assert_int_equal(imap_store_parse(pool, c->args, c->count, &st, &err), 0);
	assert_int_equal(st.op, IMAP_STORE_SET);
	assert_int_equal(st.flags.flags, 0);
	const char *bad[] = {
	    "a STORE 1 FLAGS (\\Recent)\r\n",
	    "a STORE 1 FLAGS (\\Bogus)\r\n",
	    "a STORE 1 XFLAGS (\\Seen)\r\n",
	    "a STORE 1 FLAGS\r\n",
	    "a STORE 0 FLAGS (\\Seen)\r\n",
	    "a STORE 1 FLAGS (\"x\")\r\n",
	    "a STORE 1 (UNCHANGEDSINCE x) FLAGS ()\r\n",
	    "a STORE 1 (FOO 1) FLAGS ()\r\n",
	    "a STORE 1 FLAGS (a]b)\r\n",
	    "a STORE 1 FLAGS (\\Seen) extra\r\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		c = parse_one(p, bad[i]);
		if (imap_store_parse(pool, c->args, c->count, &st, &err) == 0)
			fail_msg("<%s> accepted", bad[i]);
	}
	pool_destroy(&pool);
	imap_parser_destroy(&p);
}

/* ---- FETCH ---- */

static void test_fetch(void **state)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct pool *pool = pool_create(1024);
	struct imap_fetch_atts f;
	const char *err;
	struct imap_command *c = parse_one(p, "a FETCH 1 ALL\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_int_equal(f.items, IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE |
				      IMAP_FETCH_ENVELOPE);
	c = parse_one(p, "a FETCH 1 FULL\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_true(f.items & IMAP_FETCH_BODY);
	c = parse_one(p, "a FETCH 1 FAST\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_false(f.items & IMAP_FETCH_ENVELOPE);
	c = parse_one(p, "a FETCH 1 (UID RFC822.SIZE BODY.PEEK[1.2.HEADER.FIELDS.NOT (X-A \"X-B\")]<10.20> "
			 "BINARY[2] BINARY.SIZE[1] BODY[TEXT] BODY[3.MIME] RFC822 RFC822.HEADER RFC822.TEXT "
			 "BODYSTRUCTURE ENVELOPE INTERNALDATE MODSEQ BODY[])\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_int_equal(f.body_count, 6);
	assert_true(f.bodies[0].peek);
	assert_int_equal(f.bodies[0].part_count, 2);
	assert_int_equal(f.bodies[0].spec, IMAP_SECTION_HEADER_FIELDS_NOT);
	assert_int_equal(f.bodies[0].field_count, 2);
	assert_string_equal(f.bodies[0].fields[1], "X-B");
	assert_true(f.bodies[0].partial);
	assert_int_equal(f.bodies[0].offset, 10);
	assert_int_equal(f.bodies[0].length, 20);
	assert_string_equal(f.bodies[0].section, "1.2.HEADER.FIELDS.NOT (X-A X-B)");
	assert_true(f.bodies[1].binary);
	assert_false(f.bodies[1].peek);
	assert_true(f.bodies[2].binary_size);
	assert_int_equal(f.bodies[3].spec, IMAP_SECTION_TEXT);
	assert_int_equal(f.bodies[4].spec, IMAP_SECTION_MIME);
	assert_string_equal(f.bodies[4].section, "3.MIME");
	assert_string_equal(f.bodies[5].section, "");
	assert_true(imap_fetch_sets_seen(&f));
	c = parse_one(p, "a FETCH 1 (emailid THREADID)\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_int_equal(f.items, IMAP_FETCH_EMAILID | IMAP_FETCH_THREADID);
	/* PREVIEW (RFC 8970): LAZY only when every PREVIEW asked is lazy */
	c = parse_one(p, "a FETCH 1 (PREVIEW (LAZY) UID)\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_int_equal(f.items, IMAP_FETCH_PREVIEW | IMAP_FETCH_UID);
	assert_true(f.preview_lazy);
	c = parse_one(p, "a FETCH 1 (PREVIEW (LAZY) PREVIEW)\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_false(f.preview_lazy);
	c = parse_one(p, "a FETCH 1 PREVIEW\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_false(f.preview_lazy);
	c = parse_one(p, "a FETCH 1 preview (lazy)\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_true(f.preview_lazy);
	assert_false(f.has_changedsince);
	c = parse_one(p, "a FETCH 1 PREVIEW (LAZY) (CHANGEDSINCE 3)\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_true(f.preview_lazy);
	assert_int_equal(f.changedsince, 3);
	c = parse_one(p, "a FETCH 1 PREVIEW (CHANGEDSINCE 3)\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_false(f.preview_lazy);
	assert_true(f.has_changedsince);
	c = parse_one(p, "a FETCH 1 THREADID\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_int_equal(f.items, IMAP_FETCH_THREADID);
	c = parse_one(p, "a FETCH 1 (FLAGS BODY.PEEK[]) (CHANGEDSINCE 7 VANISHED)\r\n");
	assert_int_equal(imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err), 0);
	assert_false(imap_fetch_sets_seen(&f));
	assert_true(f.has_changedsince);
	assert_int_equal(f.changedsince, 7);
	assert_true(f.vanished);
	assert_true(f.items & IMAP_FETCH_MODSEQ);
	const char *bad[] = {
	    "a FETCH 1 (ALL)\r\n",
	    "a FETCH 1 BOGUS\r\n",
	    "a FETCH 1 BODY[0]\r\n",
	    "a FETCH 1 BODY[1.]\r\n",
	    "a FETCH 1 BODY[MIME]\r\n",
	    "a FETCH 1 BODY[HEADER.FIELDS]\r\n",
	    "a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
	    "a FETCH 1 BODY[]<1>\r\n",
	    "a FETCH 1 BODY[]<1.0>\r\n",
	    "a FETCH 1 BODY[]x\r\n",
	    "a FETCH 1 BINARY[HEADER]\r\n",
	    "a FETCH 1 BINARY.SIZE[1]<0.5>\r\n",
	    "a FETCH 1 ()\r\n",
	    "a FETCH 1 FLAGS (VANISHED)\r\n",
	    "a FETCH 1 FLAGS (CHANGEDSINCE x)\r\n",
	    "a FETCH 1 \"FLAGS\"\r\n",
	    "a FETCH 1 FLAGS FLAGS FLAGS\r\n",
	    "a FETCH 1 BODY[FOO]\r\n",
	    "a FETCH 1 BODY[HEADER.FIELDS (A:B)]\r\n",
	    "a FETCH 1 (PREVIEW (LAZY FOO))\r\n",
	    "a FETCH 1 (PREVIEW (FOO))\r\n",
	    "a FETCH 1 (PREVIEW ())\r\n",
	    "a FETCH 1 PREVIEW (LAZY) (CHANGEDSINCE 3) (X)\r\n",
	    "a FETCH 1 (UID (LAZY))\r\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		c = parse_one(p, bad[i]);
		if (imap_fetch_parse(pool, c->args + 1, c->count - 1, &f, &err) == 0)
			fail_msg("<%s> accepted", bad[i]);
	}
	pool_destroy(&pool);
	imap_parser_destroy(&p);
}

/* ---- APPEND ---- */

static void test_append(void **state)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct pool *pool = pool_create(1024);
	struct imap_append_msg *m;
	unsigned int n;
	const char *err;
	struct imap_command *c = parse_one(p, "a APPEND x {1+}\r\na\r\n");
	assert_int_equal(imap_append_parse(pool, c->args + 1, c->count - 1, &m, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(m[0].len, 1);
	assert_int_equal(m[0].date, 0);
	assert_false(m[0].binary);
	c = parse_one(p, "a APPEND x (\\Seen kw) \"02-Jan-2024 10:00:00 +0100\" {2+}\r\nab ~{1+}\r\nc"
			 " (\\Draft) UTF8 (~{3+}\r\ndef) \"01-Jan-2024 00:00:00 +0000\" {1+}\r\ng\r\n");
	assert_int_equal(imap_append_parse(pool, c->args + 1, c->count - 1, &m, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_int_equal(m[0].flags.flags, IMAP_FLAG_SEEN);
	assert_int_equal(m[0].flags.keyword_count, 1);
	assert_string_equal(m[0].flags.keywords[0], "kw");
	assert_int_equal(m[0].date, 1704186000);
	assert_memory_equal(m[0].data, "ab", 2);
	assert_true(m[1].binary);
	assert_int_equal(m[1].flags.flags, 0);
	assert_int_equal(m[2].flags.flags, IMAP_FLAG_DRAFT);
	assert_true(m[2].binary);
	assert_int_equal(m[2].len, 3);
	assert_memory_equal(m[2].data, "def", 3);
	assert_int_equal(m[3].date, 1704067200);
	const char *bad[] = {
	    "a APPEND x (\\Seen)\r\n",
	    "a APPEND x {1+}\r\na (\\Seen)\r\n",
	    "a APPEND x \"1-Jan-2024 10:00:00 +0000\"\r\n",
	    "a APPEND x \"yesterday\" {1+}\r\na\r\n",
	    "a APPEND x (\\Recent) {1+}\r\na\r\n",
	    "a APPEND x {1+}\r\na UTF8\r\n",
	    "a APPEND x UTF8 ({1+}\r\na)\r\n",
	    "a APPEND x UTF8 (~{1+}\r\na ~{1+}\r\nb)\r\n",
	    "a APPEND x UTF8 ~{1+}\r\na\r\n",
	    "a APPEND x {1+}\r\na \"x\"\r\n",
	    "a APPEND x (\\Seen) (\\Seen) {1+}\r\na\r\n",
	    "a APPEND x foo\r\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		c = parse_one(p, bad[i]);
		if (imap_append_parse(pool, c->args + 1, c->count - 1, &m, &n, &err) == 0)
			fail_msg("<%s> accepted", bad[i]);
	}
	c = parse_one(p, "a APPEND x\r\n");
	assert_int_equal(imap_append_parse(pool, c->args + 1, c->count - 1, &m, &n, &err), -1);
	pool_destroy(&pool);
	imap_parser_destroy(&p);
}

/* ---- SEARCH ---- */

static void dump_key(struct buf *out, const struct imap_search_key *k)
{
	static const char *const names[] = {
	    "ALL",    "AND",       "OR",      "NOT",       "SEQ",      "UID",  "FLAG",  "UNFLAG",
	    "NEW",    "OLD",       "KEYWORD", "UNKEYWORD", "BEFORE",   "ON",   "SINCE", "SENTBEFORE",
	    "SENTON", "SENTSINCE", "LARGER",  "SMALLER",   "HEADER",   "BODY", "TEXT",  "MODSEQ",
	    "OLDER",  "YOUNGER",   "ADDRESS", "EMAILID",   "THREADID",
	};
	buf_append_str(out, names[k->type]);
	if (k->header != NULL)
		buf_printf(out, ":%s", k->header);
	if (k->value != NULL)
		buf_printf(out, "=%s", k->value);
	if (k->flag != 0)
		buf_printf(out, "/%s", imap_flag_name(k->flag));
	if (k->type == IMAP_SK_LARGER || k->type == IMAP_SK_SMALLER || k->type == IMAP_SK_MODSEQ ||
	    k->type == IMAP_SK_OLDER || k->type == IMAP_SK_YOUNGER)
		buf_printf(out, "=%llu", (unsigned long long)k->number);
	if (k->date != 0)
		buf_printf(out, "@%lld", (long long)k->date);
	if (k->set != NULL)
		buf_printf(out, "#%u", k->set->count);
	if (k->children != NULL) {
		buf_append_char(out, '(');
		for (const struct imap_search_key *c = k->children; c != NULL; c = c->next) {
			if (c != k->children)
				buf_append_char(out, ' ');
			dump_key(out, c);
		}
		buf_append_char(out, ')');
	}
}

static const struct {
	const char *input, *expect;
} search_cases[] = {
    {"ALL", "AND(ALL)"},
    {"ANSWERED DELETED DRAFT FLAGGED SEEN RECENT",
     "AND(FLAG/\\Answered FLAG/\\Deleted FLAG/\\Draft FLAG/\\Flagged FLAG/\\Seen FLAG/\\Recent)"},
    {"UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN NEW OLD",
     "AND(UNFLAG/\\Answered UNFLAG/\\Deleted UNFLAG/\\Draft UNFLAG/\\Flagged UNFLAG/\\Seen NEW OLD)"},
    {"KEYWORD $Junk UNKEYWORD foo", "AND(KEYWORD=$Junk UNKEYWORD=foo)"},
    {"BEFORE 1-Feb-1994 ON \"01-Jan-1970\" SINCE 2-Jan-1970", "AND(BEFORE@760060800 ON SINCE@86400)"},
    {"SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000",
     "AND(SENTBEFORE@946684800 SENTON@946684800 SENTSINCE@946684800)"},
    {"LARGER 100 SMALLER 5000", "AND(LARGER=100 SMALLER=5000)"},
    {"BCC a CC b FROM c SUBJECT d TO e",
     "AND(ADDRESS:Bcc=a ADDRESS:Cc=b ADDRESS:From=c HEADER:Subject=d ADDRESS:To=e)"},
    {"HEADER X-Spam yes BODY \"hello world\" TEXT x", "AND(HEADER:X-Spam=yes BODY=hello world TEXT=x)"},
    {"NOT SEEN", "AND(NOT(FLAG/\\Seen))"},
    {"OR SEEN (FLAGGED DELETED)", "AND(OR(FLAG/\\Seen AND(FLAG/\\Flagged FLAG/\\Deleted)))"},
    {"1:3,5 UID 10:*", "AND(SEQ#2 UID#1)"},
    {"MODSEQ 720162338", "AND(MODSEQ=720162338)"},
    {"MODSEQ \"/flags/\\\\draft\" all 620162338", "AND(MODSEQ=620162338)"},
    {"OLDER 3600 YOUNGER 60", "AND(OLDER=3600 YOUNGER=60)"},
    {"$", "AND(SEQ#0)"},
    {"not not all", "AND(NOT(NOT(ALL)))"},
    {"EMAILID M6d99ac3275bb4e THREADID \"T64b_478-a\"", "AND(EMAILID=M6d99ac3275bb4e THREADID=T64b_478-a)"},
};

static void test_search(void **state)
{
	struct imap_parser *p = imap_parser_create(NULL);
	struct pool *pool = pool_create(1024);
	struct imap_search_args s;
	const char *err;
	for (size_t i = 0; i < N_ELEMENTS(search_cases); i++) {
		char *line = xasprintf("a SEARCH %s\r\n", search_cases[i].input);
		struct imap_command *c = parse_one(p, line);
		free(line);
		if (imap_search_parse(pool, c->args, c->count, &s, &err) != 0)
			fail_msg("search <%s>: %s", search_cases[i].input, err);
		struct buf out = BUF_INIT;
		dump_key(&out, s.key);
		if (strcmp(out.data, search_cases[i].expect) != 0)
			fail_msg("search <%s>: got %s expected %s", search_cases[i].input, out.data,
				 search_cases[i].expect);
		buf_free(&out);
	}
	struct imap_command *c = parse_one(p, "a SEARCH RETURN (MIN COUNT SAVE) CHARSET utf-8 ALL\r\n");
	assert_int_equal(imap_search_parse(pool, c->args, c->count, &s, &err), 0);
	assert_true(s.esearch);
	assert_int_equal(s.returns,
			 IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_COUNT | IMAP_SEARCH_RETURN_SAVE);
	assert_string_equal(s.charset, "utf-8");
	c = parse_one(p, "a SEARCH RETURN () ALL\r\n");
	assert_int_equal(imap_search_parse(pool, c->args, c->count, &s, &err), 0);
	assert_int_equal(s.returns, IMAP_SEARCH_RETURN_ALL);
	c = parse_one(p, "a SEARCH MODSEQ 5\r\n");
	assert_int_equal(imap_search_parse(pool, c->args, c->count, &s, &err), 0);
	assert_true(s.uses_modseq);
	c = parse_one(p, "a SEARCH CHARSET KOI8-R ALL\r\n");
	assert_int_equal(imap_search_parse(pool, c->args, c->count, &s, &err), -2);
	const char *bad[] = {
	    "",
	    "FROM",
	    "BOGUS",
	    "BEFORE 32-Jan-2000",
	    "BEFORE 1-Foo-2000",
	    "BEFORE 1-Jan-20",
	    "LARGER x",
	    "LARGER -1",
	    "NOT",
	    "OR SEEN",
	    "()",
	    "UID",
	    "UID x",
	    "KEYWORD \\Seen",
	    "RETURN (FOO) ALL",
	    "RETURN ALL",
	    "CHARSET",
	    "HEADER X",
	    "0:5",
	    "OLDER 0",
	    "MODSEQ x",
	    "EMAILID",
	    "EMAILID \"\"",
	    "EMAILID a.b",
	    "THREADID \"T 1\"",
	    "((((((((((((((((((((((((((((((((((((ALL))))))))))))))))))))))))))))))))))))",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		char *line = xasprintf("a SEARCH %s\r\n", bad[i]);
		size_t used;
		enum imap_parse_result r = imap_parser_feed(p, line, strlen(line), &used);
		free(line);
		if (r != IMAP_PARSE_COMMAND)
			continue;
		c = (struct imap_command *)imap_parser_command(p);
		if (imap_search_parse(pool, c->args, c->count, &s, &err) == 0)
			fail_msg("search <%s> accepted", bad[i]);
	}
	pool_destroy(&pool);
	imap_parser_destroy(&p);
}

/* ---- dates ---- */

static void test_dates(void **state)
{
	time_t t;
	int tz;
	assert_true(imap_parse_datetime(" 1-Jan-2024 10:00:00 +0100", &t, &tz));
	assert_int_equal(t, 1704099600);
	assert_int_equal(tz, 60);
	assert_true(imap_parse_datetime("17-Jul-1996 02:44:25 -0700", &t, &tz));
	assert_int_equal(t, 837596665);
	assert_false(imap_parse_datetime("17-Jul-1996 02:44:25", &t, &tz));
	assert_false(imap_parse_datetime("17-Jul-1996 25:44:25 -0700", &t, &tz));
	assert_false(imap_parse_datetime("1-Jan-2024 10:00:00 +0100", &t, &tz));
	assert_true(imap_parse_date("29-Feb-2024", &t));
	assert_false(imap_parse_date("29-Feb-2023", &t));
	assert_false(imap_parse_date("1-Jan-2024x", &t));
}

/* ---- mailbox names ---- */

static void test_utf7(void **state)
{
	struct pool *pool = pool_create(1024);
	static const struct {
		const char *utf7, *utf8;
	} cases[] = {
	    {"INBOX", "INBOX"},
	    {"&-", "&"},
	    {"Entw&APw-rfe", "Entw\xc3\xbcrfe"},
	    {"~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	     "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
	    {"&2D3eAA-", "\xf0\x9f\x98\x80"},
	    {"A&-B", "A&B"},
	    {"", ""},
	    {"&-&-", "&&"},
	    /* "&-" right after a run is '&', not a second run */
	    {"&Jjo-&-", "\xe2\x98\xba&"},
	    {"&-&Jjo-", "&\xe2\x98\xba"},
	    /* two non-BMP characters: two surrogate pairs in one run */
	    {"&2D3eANg93gE-", "\xf0\x9f\x98\x80\xf0\x9f\x98\x81"},
	    {"x&2D3eAACg-y", "x\xf0\x9f\x98\x80\xc2\xa0y"},
	    {"&2,,f,w-", "\xf4\x8f\xbf\xbf"}, /* U+10FFFF */
	    {"~-&AOQ-.", "~-\xc3\xa4."},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const char *utf8 = imap_utf7_to_utf8(pool, cases[i].utf7);
		const char *utf7 = imap_utf8_to_utf7(pool, cases[i].utf8);
		if (utf8 == NULL || strcmp(utf8, cases[i].utf8) != 0)
			fail_msg("utf7 <%s> decoded wrong", cases[i].utf7);
		if (utf7 == NULL || strcmp(utf7, cases[i].utf7) != 0)
			fail_msg("utf8 of <%s> encoded as <%s>", cases[i].utf7, utf7 ? utf7 : "NULL");
		/* round trips */
		assert_string_equal(imap_utf8_to_utf7(pool, utf8), cases[i].utf7);
		assert_string_equal(imap_utf7_to_utf8(pool, utf7), cases[i].utf8);
	}
	const char *bad7[] = {
	    "&",          /* run cut short */
	    "&Jjo",       /* run without its "-" at the end */
	    "&2D3eAA",    /* non-BMP run without its "-" */
	    "x&ZeVnLIqe", /* longer run without its "-" */
	    "&AGE-",      /* printable US-ASCII ('a') in base64 */
	    "&ACA-",      /* space in base64 */
	    "&Jjo-&Jjo-", /* adjacent runs not merged */
	    "&2D0-",      /* high surrogate alone */
	    "&3gA-",      /* low surrogate alone */
	    "&2D3YPQ-",   /* high surrogate followed by a high one */
	    "&Jj-",       /* bits left over */
	    "&AOQA-",     /* a base64 character too many */
	    "&AOQB-",     /* padding bits not zero */
	    "&Jjo.-",     /* not base64 inside a run */
	    "a\tb",       /* control character sent as itself */
	    "\x80",       /* 8-bit */
	};
	for (size_t i = 0; i < N_ELEMENTS(bad7); i++)
		if (imap_utf7_to_utf8(pool, bad7[i]) != NULL)
			fail_msg("utf7 <%s> accepted", bad7[i]);
	const char *bad8[] = {
	    "\xff",             /* not UTF-8 */
	    "\xc0\x80",         /* overlong */
	    "\xed\xa0\x80",     /* surrogate */
	    "\xf4\x90\x80\x80", /* above U+10FFFF */
	    "\xe2\x98",         /* truncated */
	    "a\x01b",           /* control characters */
	    "\x7f",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad8); i++)
		if (imap_utf8_to_utf7(pool, bad8[i]) != NULL)
			fail_msg("utf8 case %zu accepted", i);

	struct imap_parser *p = imap_parser_create(NULL);
	struct imap_command *c = parse_one(p, "a SELECT inbox\r\n");
	const char *name, *err;
	assert_int_equal(imap_mailbox_parse(pool, &c->args[0], false, &name, &err), 1);
	assert_string_equal(name, "INBOX");
	c = parse_one(p, "a SELECT Inbox.Sub\r\n");
	assert_int_equal(imap_mailbox_parse(pool, &c->args[0], false, &name, &err), 1);
	assert_string_equal(name, "INBOX.Sub");
	c = parse_one(p, "a SELECT \"Entw\xc3\xbcrfe\"\r\n");
	/* well-formed, but not modified UTF-7: NO, not BAD */
	assert_int_equal(imap_mailbox_parse(pool, &c->args[0], false, &name, &err), 0);
	assert_int_equal(imap_mailbox_parse(pool, &c->args[0], true, &name, &err), 1);
	assert_string_equal(name, "Entw&APw-rfe");
	c = parse_one(p, "a SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}\r\n");
	assert_int_equal(imap_mailbox_parse(pool, &c->args[0], false, &name, &err), 0);
	c = parse_one(p, "a SELECT (x)\r\n");
	assert_int_equal(imap_mailbox_parse(pool, &c->args[0], false, &name, &err), -1);
	c = parse_one(p, "a SELECT a%b\r\n");
	assert_int_equal(imap_mailbox_parse(pool, &c->args[0], false, &name, &err), -1);
	imap_parser_destroy(&p);
	pool_destroy(&pool);
}

static void test_tag_valid(void **state)
{
	assert_true(imap_tag_valid("A001", 4));
	assert_true(imap_tag_valid("a]b", 3));
	assert_false(imap_tag_valid("a+b", 3));
	assert_false(imap_tag_valid("a{b", 3));
	assert_false(imap_tag_valid("", 0));
	assert_false(imap_tag_valid("a\x01", 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_sync_literal_continuations),
	    cmocka_unit_test(test_stops_after_command),
	    cmocka_unit_test(test_long_line_skipped),
	    cmocka_unit_test(test_big_nonsync_literal_skipped),
	    cmocka_unit_test(test_preauth_literals),
	    cmocka_unit_test(test_max_args),
	    cmocka_unit_test(test_multiappend_limits),
	    cmocka_unit_test(test_take_pool),
	    cmocka_unit_test(test_seqset),
	    cmocka_unit_test(test_store),
	    cmocka_unit_test(test_fetch),
	    cmocka_unit_test(test_append),
	    cmocka_unit_test(test_search),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_utf7),
	    cmocka_unit_test(test_tag_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
