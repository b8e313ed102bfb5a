/* MIME tree parsing: structure, offsets, sizes, broken input, limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/base64.h"
#include "mime/qp.h"
#include "mime/tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "section type/subtype flags size/vsize/lines" per part, "; "-joined. */
static void render(struct buf *out, const struct mime_message *msg)
{
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p)) {
		struct buf sec = BUF_INIT;
		mime_part_section(p, &sec);
		buf_printf(out, "%s%s %s/%s %x %zu/%zu/%zu", out->len ? "; " : "", sec.len ? sec.data : "-",
			   p->ct.type, p->ct.subtype, p->flags, p->body.size, p->body.vsize, p->body.lines);
		buf_free(&sec);
	}
}

static const struct {
	const char *name, *in, *out;
} tree_cases[] = {
    {"plain", "Subject: x\r\n\r\nhello\r\nworld\r\n", "- text/plain 0 14/14/2"},
    {"no final newline", "Subject: x\r\n\r\nhello", "- text/plain 0 5/5/0"},
    {"LF only", "Subject: x\n\nhello\nworld\n", "- text/plain 0 12/14/2"},
    {"no header", "\r\nbody\r\n", "- text/plain 0 6/6/1"},
    {"mixed",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\n\r\none\r\n--b\r\n"
     "Content-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\nepilogue\r\n",
     "- multipart/mixed 1 83/83/10; 1 text/plain 0 3/3/0; 2 text/html 0 10/10/0"},
    {"missing close", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n",
     "- multipart/mixed 5 24/24/6; 1 text/plain 0 3/3/0; 2 text/plain 0 5/5/1"},
    {"wrong boundary", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--c\r\n\r\none\r\n--c--\r\n",
     "- multipart/mixed 5 19/19/4"},
    {"no boundary param", "Content-Type: multipart/mixed\r\n\r\n--b\r\nx\r\n", "- text/plain 8 8/8/2"},
    {"nested, inner close missing",
     "Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\n"
     "Content-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\n\r\na\r\n--inner\r\n\r\nb\r\n"
     "--outer\r\n\r\nc\r\n--outer--\r\n",
     "- multipart/mixed 1 117/117/13; 1 multipart/alternative 5 26/26/5; 1.1 text/plain 0 1/1/0; "
     "1.2 text/plain 0 1/1/0; 2 text/plain 0 1/1/0"},
    {"message/rfc822",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
     "Subject: inner\r\nContent-Type: multipart/alternative; "
     "boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c\r\n\r\ny\r\n--c--\r\n"
     "--b--\r\n",
     "- multipart/mixed 1 138/138/14; 1 message/rfc822 2 92/92/9; 1 multipart/alternative 1 25/25/6; "
     "1.1 text/plain 0 1/1/0; 1.2 text/plain 0 1/1/0"},
    {"duplicate boundary",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/mixed; "
     "boundary=b\r\n\r\n"
     "--b\r\n\r\nx\r\n--b--\r\n--b\r\n\r\ny\r\n--b--\r\n",
     "- multipart/mixed 1 84/84/11; 1 multipart/mixed 1 15/15/3; 1.1 text/plain 0 1/1/0; 2 text/plain 0 "
     "1/1/0"},
    {"boundary prefix of another",
     "Content-Type: multipart/mixed; boundary=foo\r\n\r\n--foo\r\nContent-Type: multipart/mixed; "
     "boundary=foobar\r\n\r\n"
     "--foobar\r\n\r\nx\r\n--foobar--\r\n--foo--\r\n",
     "- multipart/mixed 1 93/93/8; 1 multipart/mixed 1 25/25/3; 1.1 text/plain 0 1/1/0"},
    {"boundary with padding, junk after close",
     "Content-Type: multipart/mixed; boundary=\"b b\"\r\n\r\n--b b  \r\n\r\nx\r\n--b b--  \t\r\n",
     "- multipart/mixed 1 26/26/4; 1 text/plain 0 1/1/0"},
    {"body part header cut by boundary",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n--b--\r\n",
     "- multipart/mixed 1 37/37/3; 1 text/html 0 0/0/0"},
    /* Only an empty line ends a header block (RFC 5322 2.1). */
    {"part without header",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nno header here\r\n--b--\r\n",
     "- multipart/mixed 1 28/28/3; 1 text/plain 0 0/0/0"},
    {"part starting with its body",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nno header here\r\n--b--\r\n",
     "- multipart/mixed 1 30/30/4; 1 text/plain 0 14/14/0"},
    /* A line need only start with the boundary (RFC 2046 5.1.1); the
       longest open boundary that matches wins. */
    {"boundary followed by junk",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b junk\r\n\r\none\r\n--bb\r\n\r\ntwo\r\n--b--x\r\n",
     "- multipart/mixed 1 38/38/7; 1 text/plain 0 3/3/0; 2 text/plain 0 3/3/0"},
    {"longest boundary wins",
     "Content-Type: multipart/mixed; boundary=abcdef\r\n\r\n--abcdef\r\n"
     "Content-Type: multipart/alternative; boundary=abc\r\n\r\n--abc\r\n\r\nin\r\n"
     "--abcdef\r\n\r\nout\r\n--abcdef--\r\n",
     "- multipart/mixed 1 105/105/10; 1 multipart/alternative 5 11/11/2; 1.1 text/plain 0 2/2/0; "
     "2 text/plain 0 3/3/0"},
    {"digest default",
     "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: a\r\n\r\nbody\r\n--d--\r\n",
     "- multipart/digest 1 34/34/6; 1 message/rfc822 2 18/18/2; 1 text/plain 0 4/4/0"},
    {"encoded message/rfc822 is a leaf",
     "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp4\r\n",
     "- message/rfc822 0 22/22/1"},
    {"invalid content-type", "Content-Type: garbage\r\n\r\nx", "- text/plain 20 1/1/0"},
    {"NUL bytes", "Subject: x\r\n\r\na\0b\r\n", "- text/plain 0 5/5/1"},
    {"empty", "", "- text/plain 0 0/0/0"},
    {"root is message/rfc822",
     "Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; "
     "boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
     "- message/rfc822 2 62/62/6; 1 multipart/mixed 1 17/17/4; 1.1 text/plain 0 1/1/0"},
};

static void test_tree_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(tree_cases); i++) {
		size_t len = strlen(tree_cases[i].in);
		if (!strcmp(tree_cases[i].name, "NUL bytes"))
			len = 19;
		struct mime_message *msg = mime_message_parse(tree_cases[i].in, len, NULL);
		struct buf out = BUF_INIT;
		render(&out, msg);
		if (strcmp(buf_cstr(&out), tree_cases[i].out) != 0)
			print_error("case '%s':\n  got  %s\n  want %s\n", tree_cases[i].name, buf_cstr(&out),
				    tree_cases[i].out);
		if (getenv("SHOWALL") == NULL)
			assert_string_equal(buf_cstr(&out), tree_cases[i].out);
		buf_free(&out);
		mime_message_free(&msg);
		assert_null(msg);
	}
}

static const char nested_msg[] =
    "From: a@b\r\nContent-Type: multipart/mixed; boundary=\"=_outer\"\r\n\r\n"
    "--=_outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n"
    "--alt\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
    "quoted-printable\r\n\r\n"
    "caf=E9 soft=\r\nbreak\r\n--alt\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--alt--\r\n"
    "--=_outer\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Transfer-Encoding: "
    "base64\r\n"
    "Content-Disposition: attachment; filename*=utf-8''%C3%A9.bin\r\n\r\nAAEC\r\nAwQ\r\n"
    "--=_outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
    "--=_outer--\r\n";

static void test_sections_and_offsets(void **state)
{
	struct mime_message *msg = mime_message_parse(nested_msg, sizeof(nested_msg) - 1, NULL);
	static const struct {
		const char *section, *type, *body;
	} cases[] = {
	    {"1", "multipart/alternative", NULL},
	    {"1.1", "text/plain", "caf=E9 soft=\r\nbreak"},
	    {"1.2", "text/html", "<b>x</b>"},
	    {"2", "application/octet-stream", "AAEC\r\nAwQ"},
	    {"3", "message/rfc822", "Subject: inner\r\n\r\ninner body"},
	    {"3.1", "text/plain", "inner body"},
	    {"4", NULL, NULL},
	    {"1.3", NULL, NULL},
	    {"0", NULL, NULL},
	    {"1.", NULL, NULL},
	    {"x", NULL, NULL},
	    {"2.1", NULL, NULL},
	    {"3.2", NULL, NULL},
	    {"3.1.1", NULL, NULL},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const struct mime_part *p = mime_part_find(msg, cases[i].section);
		if (cases[i].type == NULL) {
			assert_null(p);
			continue;
		}
		assert_non_null(p);
		char type[64];
		snprintf(type, sizeof(type), "%s/%s", p->ct.type, p->ct.subtype);
		assert_string_equal(type, cases[i].type);
		if (cases[i].body != NULL) {
			assert_int_equal(p->body.size, strlen(cases[i].body));
			assert_memory_equal(msg->data + p->body.offset, cases[i].body, p->body.size);
		}
		struct buf sec = BUF_INIT;
		mime_part_body_section(p, &sec);
		assert_string_equal(buf_cstr(&sec), cases[i].section);
		buf_free(&sec);
	}
	/* Header spans: the root header and the header of part 2. */
	assert_int_equal(msg->root->header.offset, 0);
	assert_memory_equal(msg->data + msg->root->header.size - 4, "\r\n\r\n", 4);
	const struct mime_part *att = mime_part_find(msg, "2");
	assert_memory_equal(msg->data + att->header.offset, "Content-Type: application", 25);
	assert_int_equal(att->header.offset + att->header.size, att->body.offset);
	assert_int_equal(att->header.lines, 4);
	mime_message_free(&msg);
}

static void test_decode(void **state)
{
	struct mime_message *msg = mime_message_parse(nested_msg, sizeof(nested_msg) - 1, NULL);
	struct pool *pool = pool_create(1024);
	struct buf b = BUF_INIT;
	mime_part_decode_text(msg, mime_part_find(msg, "1.1"), &b);
	assert_string_equal(buf_cstr(&b), "caf\xc3\xa9 softbreak");
	buf_reset(&b);
	const struct mime_part *att = mime_part_find(msg, "2");
	mime_part_decode(msg, att, &b); /* truncated base64: whole bytes kept */
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "\0\1\2\3\4", 5);
	assert_string_equal(mime_part_filename(pool, att), "\xc3\xa9.bin");
	assert_true(mime_part_is_attachment(pool, att));
	assert_false(mime_part_is_attachment(pool, mime_part_find(msg, "1.1")));
	assert_string_equal(mime_part_charset(mime_part_find(msg, "1.1")), "iso-8859-1");
	assert_int_equal(mime_part_find(msg, "1.1")->encoding, MIME_ENC_QP);
	assert_string_equal(mime_part_find(msg, "1.1")->encoding_name, "quoted-printable");
	/* Walk order visits every part once. */
	unsigned int n = 0;
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p))
		n++;
	assert_int_equal(n, msg->part_count);
	assert_int_equal(n, 7);
	buf_free(&b);
	pool_destroy(&pool);
	mime_message_free(&msg);
}

static void test_deep_nesting(void **state)
{
	struct buf m = BUF_INIT;
	/* (boundaries of one width: "b1" would open every "--b1..." line) */
	for (int i = 0; i < 1000; i++)
		buf_printf(&m, "Content-Type: multipart/mixed; boundary=b%03d\r\n\r\n--b%03d\r\n", i, i);
	buf_append_str(&m, "\r\nleaf\r\n");
	for (int i = 999; i >= 0; i--)
		buf_printf(&m, "--b%03d--\r\n", i);
	struct mime_message *msg = mime_message_parse(m.data, m.len, NULL);
	unsigned int depth = 0, limited = 0;
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p)) {
		depth = p->depth > depth ? p->depth : depth;
		limited += (p->flags & MIME_PART_LIMIT) != 0;
	}
	assert_int_equal(depth, 100);
	assert_int_equal(limited, 1);
	assert_int_equal(msg->root->body.offset + msg->root->body.size, m.len);
	mime_message_free(&msg);
	/* The same with a small custom limit. */
	struct mime_limits lim = {.max_depth = 5, .max_parts = 3};
	msg = mime_message_parse(m.data, m.len, &lim);
	assert_true(msg->part_count <= 3);
	mime_message_free(&msg);
	buf_free(&m);
}

static void test_many_parts(void **state)
{
	struct buf m = BUF_INIT;
	buf_append_str(&m, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (int i = 0; i < 20000; i++)
		buf_append_str(&m, "--b\r\n\r\nx\r\n");
	buf_append_str(&m, "--b--\r\n");
	struct mime_message *msg = mime_message_parse(m.data, m.len, NULL);
	assert_int_equal(msg->part_count, 10000);
	assert_true(msg->root->flags & MIME_PART_LIMIT);
	assert_int_equal(msg->root->body.offset + msg->root->body.size, m.len);
	mime_message_free(&msg);
	buf_free(&m);
}

/* A forwarded message that the forwarding client base64-encoded, holding
   a multipart with a base64 attachment. */
static const char encoded_fwd_head[] =
    "Content-Type: multipart/mixed; boundary=out\r\n\r\n"
    "--out\r\nContent-Type: text/plain\r\n\r\nsee the forward\r\n"
    "--out\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n";
static const char encoded_fwd_inner[] =
    "Subject: inner\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n"
    "--in\r\nContent-Type: text/plain\r\n\r\ninner text\r\n"
    "--in\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "AAECAwQ=\r\n--in--\r\n";

static void test_encoded_message(void **state)
{
	struct buf m = BUF_INIT, b = BUF_INIT;
	buf_append_str(&m, encoded_fwd_head);
	base64_encode_lines(&m, encoded_fwd_inner, sizeof(encoded_fwd_inner) - 1);
	buf_append_str(&m, "\r\n--out--\r\n");

	/* By default (IMAP) the encoded message is a leaf. */
	struct mime_message *msg = mime_message_parse(m.data, m.len, NULL);
	assert_int_equal(msg->part_count, 3);
	const struct mime_part *fwd = mime_part_find(msg, "2");
	assert_int_equal(fwd->flags, 0);
	mime_part_decode(msg, fwd, &b);
	assert_int_equal(b.len, sizeof(encoded_fwd_inner) - 1);
	assert_memory_equal(b.data, encoded_fwd_inner, b.len);
	mime_message_free(&msg);

	msg = mime_message_parse_flags(m.data, m.len, NULL, MIME_PARSE_DECODE_MESSAGES);
	struct buf r = BUF_INIT;
	render(&r, msg);
	assert_string_equal(
	    buf_cstr(&r),
	    "- multipart/mixed 1 425/425/14; 1 text/plain 0 15/15/0; 2 message/rfc822 2 288/288/4; "
	    "2 multipart/mixed 41 147/147/10; 2.1 text/plain 40 10/10/0; "
	    "2.2 application/octet-stream 40 8/8/0");
	fwd = mime_part_find(msg, "2");
	assert_true(fwd->flags & MIME_PART_MESSAGE);
	assert_ptr_equal(fwd->data, m.data);
	const struct mime_part *inner = fwd->children;
	assert_true(inner->flags & MIME_PART_DECODED);
	assert_int_equal(inner->data_size, sizeof(encoded_fwd_inner) - 1);
	assert_memory_equal(inner->data + inner->header.offset, "Subject: inner\r\n", 16);
	buf_reset(&b);
	mime_part_decode(msg, mime_part_find(msg, "2.1"), &b);
	assert_string_equal(buf_cstr(&b), "inner text");
	buf_reset(&b);
	mime_part_decode(msg, mime_part_find(msg, "2.2"), &b);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "\0\1\2\3\4", 5);
	/* The outer part still decodes to the whole inner message. */
	buf_reset(&b);
	mime_part_decode(msg, fwd, &b);
	assert_int_equal(b.len, sizeof(encoded_fwd_inner) - 1);
	buf_reset(&b);
	mime_part_decode(msg, mime_part_find(msg, "1"), &b);
	assert_string_equal(buf_cstr(&b), "see the forward");
	mime_message_free(&msg);
	buf_free(&r);
	buf_free(&m);
	buf_free(&b);
}

static void test_encoded_message_qp_nested(void **state)
{
	/* quoted-printable message/rfc822 (a one-part text message with a
	   soft break) inside a base64 one, as the root's body. */
	static const char inner[] = "Subject: deepest\r\nContent-Type: text/plain; charset=utf-8\r\n"
				    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
				    "caf=C3=A9 soft=\r\nbreak\r\n";
	struct buf qp_msg = BUF_INIT, m = BUF_INIT, b = BUF_INIT;
	buf_append_str(&qp_msg, "Subject: middle\r\nContent-Type: message/rfc822\r\n"
				"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	qp_encode(&qp_msg, inner, sizeof(inner) - 1);
	buf_append_str(
	    &m,
	    "Subject: outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: Base64\r\n\r\n");
	base64_encode_lines(&m, qp_msg.data, qp_msg.len);
	struct mime_message *msg = mime_message_parse_flags(m.data, m.len, NULL, MIME_PARSE_DECODE_MESSAGES);
	/* Root (message/rfc822), the middle message (its body, section 1),
	   the deepest message (1.1) whose text is 1.1.1. */
	assert_int_equal(msg->part_count, 3);
	const struct mime_part *leaf = mime_part_find(msg, "1.1.1");
	assert_non_null(leaf);
	assert_string_equal(leaf->ct.type, "text");
	assert_int_equal(leaf->depth, 2);
	mime_part_decode_text(msg, leaf, &b);
	assert_string_equal(buf_cstr(&b), "caf\xc3\xa9 softbreak\r\n");
	mime_message_free(&msg);
	buf_free(&qp_msg);
	buf_free(&m);
	buf_free(&b);
}

static void test_encoded_message_limits(void **state)
{
	/* Plain text is its own quoted-printable encoding: each level would
	   copy the rest of the message again.  The decode budget (four times
	   the message) and the depth limit stop it. */
	struct buf m = BUF_INIT;
	for (int i = 0; i < 300; i++)
		buf_append_str(
		    &m,
		    "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
	buf_append_str(&m, "leaf\r\n");
	struct mime_message *msg = mime_message_parse_flags(m.data, m.len, NULL, MIME_PARSE_DECODE_MESSAGES);
	unsigned int limited = 0, n = 0;
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p)) {
		limited += (p->flags & MIME_PART_LIMIT) != 0;
		n++;
	}
	assert_int_equal(limited, 1);
	assert_true(n > 2 && n < 100);
	mime_message_free(&msg);
	/* Depth: small nested base64 messages stop at max_depth. */
	struct buf cur = BUF_INIT, next = BUF_INIT;
	buf_append_str(&cur, "\r\nleaf\r\n");
	for (int i = 0; i < 12; i++) {
		buf_reset(&next);
		buf_append_str(&next,
			       "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n");
		base64_encode_lines(&next, cur.data, cur.len);
		buf_reset(&cur);
		buf_append(&cur, next.data, next.len);
	}
	struct mime_limits lim = {.max_depth = 5};
	msg = mime_message_parse_flags(cur.data, cur.len, &lim, MIME_PARSE_DECODE_MESSAGES);
	unsigned int depth = 0;
	for (const struct mime_part *p = msg->root; p != NULL; p = mime_part_next(p))
		depth = p->depth > depth ? p->depth : depth;
	assert_int_equal(depth, 5);
	mime_message_free(&msg);
	buf_free(&cur);
	buf_free(&next);
	buf_free(&m);
}

/* Parts holding binary data are re-encoded as base64 (RFC 3516 APPEND of
   literal8), their header naming it; the rest stays byte for byte. */
static void test_encode_binary(void **state)
{
	static const char in[] = "Content-Type: multipart/mixed; boundary=b\r\nX-A: 1\r\n\r\n--b\r\n"
				 "Content-Type: application/octet-stream\r\n"
				 "Content-Transfer-Encoding: binary\r\nX-B: 2\r\n\r\n"
				 "\0-\xe4\n\r\n\n\r\n--b\r\n"
				 "Content-Type: text/plain\r\n\r\nplain \0 nul\r\n--b\r\n"
				 "Content-Type: text/plain\r\n\r\nclean\r\n--b--\r\n";
	size_t len = sizeof(in) - 1;
	struct mime_message *msg = mime_message_parse(in, len, NULL);
	struct buf out = BUF_INIT;
	assert_int_equal(mime_message_encode_binary(msg, &out), 2);
	mime_message_free(&msg);
	static const char want[] = "Content-Type: multipart/mixed; boundary=b\r\nX-A: 1\r\n\r\n--b\r\n"
				   "Content-Type: application/octet-stream\r\nX-B: 2\r\n"
				   "Content-Transfer-Encoding: base64\r\n\r\nAC3kCg0KCg==\r\n--b\r\n"
				   "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
				   "cGxhaW4gACBudWw=\r\n--b\r\n"
				   "Content-Type: text/plain\r\n\r\nclean\r\n--b--\r\n";
	assert_int_equal(out.len, sizeof(want) - 1);
	assert_memory_equal(out.data, want, out.len);
	/* decoding gives the bytes back */
	msg = mime_message_parse(out.data, out.len, NULL);
	struct buf dec = BUF_INIT;
	mime_part_decode(msg, mime_part_find(msg, "1"), &dec);
	assert_int_equal(dec.len, 7);
	assert_memory_equal(dec.data, "\0-\xe4\n\r\n\n", 7);
	buf_free(&dec);
	mime_message_free(&msg);
	buf_free(&out);
	/* nothing binary: nothing written */
	static const char clean[] = "Subject: x\r\n\r\nhello\r\n";
	msg = mime_message_parse(clean, sizeof(clean) - 1, NULL);
	assert_int_equal(mime_message_encode_binary(msg, &out), 0);
	assert_int_equal(out.len, 0);
	mime_message_free(&msg);
	/* a single-part message: the body runs to the end */
	static const char one[] = "Content-Transfer-Encoding: binary\r\n\r\n\0\xff";
	msg = mime_message_parse(one, sizeof(one) - 1, NULL);
	assert_int_equal(mime_message_encode_binary(msg, &out), 1);
	assert_string_equal(buf_cstr(&out), "Content-Transfer-Encoding: base64\r\n\r\nAP8=\r\n");
	mime_message_free(&msg);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tree_table),
	    cmocka_unit_test(test_sections_and_offsets),
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_deep_nesting),
	    cmocka_unit_test(test_many_parts),
	    cmocka_unit_test(test_encoded_message),
	    cmocka_unit_test(test_encoded_message_qp_nested),
	    cmocka_unit_test(test_encoded_message_limits),
	    cmocka_unit_test(test_encode_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
