/* RFC 5322 address list parsing, lenient like mainstream readers. */
#include "mime/address.h"
#include "mime/mime_private.h"
#include "mime/rfc2047.h"
#include "lib/xalloc.h"

#include <string.h>

enum tok_type { TOK_END, TOK_ATOM, TOK_QUOTED, TOK_LITERAL, TOK_SPECIAL };

struct lexer {
	const char *s, *end;
	struct buf text;    /* the token's text (unquoted) */
	struct buf comment; /* the last comment's text */
	int space_before;   /* whitespace or comment before the token */
	char special;
};

static int is_special(unsigned char c)
{
	return strchr("()<>[]:;@\\,.\"", c) != NULL && c != '\0';
}

static void lex_comment(struct lexer *lx)
{
	int depth = 0;
	buf_reset(&lx->comment);
	while (lx->s < lx->end) {
		char c = *lx->s++;
		if (c == '\\' && lx->s < lx->end) {
			buf_append_char(&lx->comment, *lx->s++);
			continue;
		}
		if (c == '(' && depth++ == 0)
			continue;
		if (c == ')' && --depth == 0)
			break;
		if (c != '\r' && c != '\n')
			buf_append_char(&lx->comment, c);
	}
}

static void lex_skip_cfws(struct lexer *lx)
{
	lx->space_before = 0;
	while (lx->s < lx->end) {
		unsigned char c = (unsigned char)*lx->s;
		if (mime_is_space(c)) {
			lx->s++;
			lx->space_before = 1;
		} else if (c == '(') {
			lex_comment(lx);
			lx->space_before = 1;
		} else {
			break;
		}
	}
}

/* Reads up to the closing delimiter (unterminated: to the end). */
static void lex_delimited(struct lexer *lx, char close, int keep_delims)
{
	if (keep_delims)
		buf_append_char(&lx->text, lx->s[-1]);
	while (lx->s < lx->end) {
		char c = *lx->s++;
		if (c == close) {
			if (keep_delims)
				buf_append_char(&lx->text, c);
			return;
		}
		if (c == '\\' && lx->s < lx->end)
			c = *lx->s++;
		else if (c == '\r' || c == '\n')
			continue;
		buf_append_char(&lx->text, c);
	}
}

static enum tok_type lex_next(struct lexer *lx)
{
	lex_skip_cfws(lx);
	buf_reset(&lx->text);
	if (lx->s >= lx->end)
		return TOK_END;
	unsigned char c = (unsigned char)*lx->s++;
	if (c == '"') {
		lex_delimited(lx, '"', 0);
		return TOK_QUOTED;
	}
	if (c == '[') {
		lex_delimited(lx, ']', 1);
		return TOK_LITERAL;
	}
	if (is_special(c) || c < 32) {
		lx->special = (char)c;
		return TOK_SPECIAL;
	}
	const char *start = lx->s - 1;
	while (lx->s < lx->end && !is_special((unsigned char)*lx->s) &&
	       !mime_is_space((unsigned char)*lx->s) && (unsigned char)*lx->s >= 32)
		lx->s++;
	buf_append(&lx->text, start, (size_t)(lx->s - start));
	return TOK_ATOM;
}

static int lex_peek_special(struct lexer *lx, char c)
{
	const char *save = lx->s;
	int sb = lx->space_before;
	lex_skip_cfws(lx);
	int r = lx->s < lx->end && *lx->s == c;
	if (!r) {
		lx->s = save;
		lx->space_before = sb;
	}
	return r;
}

struct aparser {
	struct pool *pool;
	struct lexer lx;
	struct mime_address *head, **tail;
	int in_group;
	unsigned int count;
};

#define MAX_ADDRESSES 10000

static const char *pstr(struct aparser *ap, const struct buf *b)
{
	return pool_strndup(ap->pool, buf_cstr(b), b->len);
}

static struct mime_address *emit(struct aparser *ap, unsigned int flags)
{
	struct mime_address *a = pool_alloc(ap->pool, sizeof(*a));
	a->local = "";
	a->flags = flags;
	if (ap->count++ < MAX_ADDRESSES) {
		*ap->tail = a;
		ap->tail = &a->next;
	}
	return a;
}

/* Reads tokens with their start position so one can be put back. */
static enum tok_type next_tok(struct aparser *ap, const char **start_r)
{
	*start_r = ap->lx.s;
	return lex_next(&ap->lx);
}

/* Domain after '@': atoms, dots and literals.  Stops before anything
   else. */
static void parse_domain(struct aparser *ap, struct buf *domain)
{
	const char *start;
	int want_dot = 0;
	for (;;) {
		enum tok_type t = next_tok(ap, &start);
		if (!want_dot && (t == TOK_ATOM || t == TOK_LITERAL)) {
			buf_append(domain, ap->lx.text.data, ap->lx.text.len);
			want_dot = 1;
		} else if (t == TOK_SPECIAL && ap->lx.special == '.') {
			buf_append_char(domain, '.');
			want_dot = 0;
		} else {
			ap->lx.s = start;
			return;
		}
	}
}

/* Words and dots forming a phrase or a local part; stops before the first
   other token.  Returns the number of words. */
static int parse_words(struct aparser *ap, struct buf *phrase, struct buf *local, int *quoted_r)
{
	const char *start;
	int words = 0;
	for (;;) {
		enum tok_type t = next_tok(ap, &start);
		if (t == TOK_ATOM || t == TOK_QUOTED || t == TOK_LITERAL) {
			if (phrase->len > 0 && ap->lx.space_before)
				buf_append_char(phrase, ' ');
			buf_append(phrase, ap->lx.text.data, ap->lx.text.len);
			buf_append(local, ap->lx.text.data, ap->lx.text.len);
			*quoted_r |= t == TOK_QUOTED;
			words++;
		} else if (t == TOK_SPECIAL && ap->lx.special == '.') {
			buf_append_char(phrase, '.');
			buf_append_char(local, '.');
		} else {
			ap->lx.s = start;
			return words;
		}
	}
}

/* "@a,@b:" of an obsolete route (RFC 5322 4.4); the leading '@' is
   already read. */
static const char *parse_route(struct aparser *ap)
{
	struct buf route = BUF_INIT;
	const char *start;
	for (;;) {
		buf_append_char(&route, '@');
		parse_domain(ap, &route);
		enum tok_type t = next_tok(ap, &start);
		while (t == TOK_SPECIAL && ap->lx.special == ',')
			t = next_tok(ap, &start);
		if (t == TOK_SPECIAL && ap->lx.special == '@') {
			buf_append_char(&route, ',');
			continue;
		}
		if (!(t == TOK_SPECIAL && ap->lx.special == ':'))
			ap->lx.s = start;
		break;
	}
	const char *r = pstr(ap, &route);
	buf_free(&route);
	return r;
}

/* After '<': [route] local@domain '>'. */
static void parse_angle(struct aparser *ap, struct mime_address *a)
{
	struct buf phrase = BUF_INIT, local = BUF_INIT, domain = BUF_INIT;
	const char *start;
	int quoted = 0;
	if (lex_peek_special(&ap->lx, '@')) {
		ap->lx.s++;
		a->route = parse_route(ap);
	}
	parse_words(ap, &phrase, &local, &quoted);
	a->local = pstr(ap, &local);
	if (quoted)
		a->flags |= MIME_ADDR_QUOTED;
	enum tok_type t = next_tok(ap, &start);
	if (t == TOK_SPECIAL && ap->lx.special == '@') {
		parse_domain(ap, &domain);
		a->domain = pstr(ap, &domain);
		t = next_tok(ap, &start);
	} else {
		a->flags |= MIME_ADDR_NO_DOMAIN;
	}
	if (!(t == TOK_SPECIAL && ap->lx.special == '>')) {
		a->flags |= MIME_ADDR_INVALID;
		ap->lx.s = start;
	}
	buf_free(&phrase);
	buf_free(&local);
	buf_free(&domain);
}

/* Skips junk up to the next ',' (consumed) or ';' / end (not consumed). */
static void skip_to_separator(struct aparser *ap, struct mime_address *a)
{
	const char *start;
	for (;;) {
		enum tok_type t = next_tok(ap, &start);
		if (t == TOK_END || (t == TOK_SPECIAL && ap->lx.special == ';')) {
			ap->lx.s = start;
			return;
		}
		if (t == TOK_SPECIAL && ap->lx.special == ',')
			return;
		if (a != NULL)
			a->flags |= MIME_ADDR_INVALID;
	}
}

static void parse_addr_spec(struct aparser *ap, const struct buf *local, int quoted)
{
	struct buf domain = BUF_INIT;
	struct mime_address *a = emit(ap, quoted ? MIME_ADDR_QUOTED : 0);
	a->local = pstr(ap, local);
	parse_domain(ap, &domain);
	a->domain = pstr(ap, &domain);
	/* "user@host (Real Name)": the comment is the name. */
	buf_reset(&ap->lx.comment);
	lex_skip_cfws(&ap->lx);
	if (ap->lx.comment.len > 0)
		a->name = pstr(ap, &ap->lx.comment);
	skip_to_separator(ap, a);
	buf_free(&domain);
}

/* One mailbox, group start, or group end.  Returns 0 at the end. */
static int parse_one(struct aparser *ap)
{
	struct buf phrase = BUF_INIT, local = BUF_INIT;
	int quoted = 0;
	const char *start;
	int words = parse_words(ap, &phrase, &local, &quoted);
	enum tok_type t = next_tok(ap, &start);
	char sp = t == TOK_SPECIAL ? ap->lx.special : 0;
	struct mime_address *a;
	if (words > 1 && (t == TOK_END || sp == ',' || sp == ';') && memchr(phrase.data, ' ', phrase.len)) {
		/* Words with no address ("Undisclosed recipients"): a
		   display name without mailbox, as Dovecot reads it. */
		a = emit(ap, MIME_ADDR_NO_DOMAIN | MIME_ADDR_INVALID);
		a->name = pstr(ap, &phrase);
	} else if (words > 0 && (t == TOK_END || sp == ',' || sp == ';')) {
		a = emit(ap, MIME_ADDR_NO_DOMAIN | (quoted ? MIME_ADDR_QUOTED : 0));
		a->local = pstr(ap, &local);
	}
	if (sp == ';' && ap->in_group) {
		emit(ap, MIME_ADDR_GROUP_END);
		ap->in_group = 0;
	} else if (sp == ':' && !ap->in_group) {
		a = emit(ap, MIME_ADDR_GROUP_START);
		a->name = pstr(ap, &phrase);
		ap->in_group = 1;
	} else if (sp == '<') {
		a = emit(ap, 0);
		if (words > 0)
			a->name = pstr(ap, &phrase);
		parse_angle(ap, a);
		skip_to_separator(ap, a);
	} else if (sp == '@') {
		parse_addr_spec(ap, &local, quoted);
	}
	buf_free(&phrase);
	buf_free(&local);
	return t != TOK_END;
}

struct mime_address *mime_address_parse(struct pool *pool, const char *value, size_t len)
{
	struct aparser ap = {.pool = pool};
	ap.lx.s = value;
	ap.lx.end = value + len;
	ap.tail = &ap.head;
	while (parse_one(&ap))
		;
	if (ap.in_group)
		emit(&ap, MIME_ADDR_GROUP_END);
	buf_free(&ap.lx.text);
	buf_free(&ap.lx.comment);
	return ap.head;
}

int mime_local_is_dot_atom(const char *local, size_t len)
{
	if (len == 0 || local[0] == '.' || local[len - 1] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];
		if (c == '.' && i + 1 < len && local[i + 1] == '.')
			return 0;
		if (c <= 32 || c == 127 || (is_special(c) && c != '.'))
			return 0;
	}
	return 1;
}

void mime_address_format_spec(struct buf *out, const struct mime_address *addr)
{
	size_t n = strlen(addr->local);
	if (mime_local_is_dot_atom(addr->local, n)) {
		buf_append(out, addr->local, n);
	} else {
		buf_append_char(out, '"');
		for (size_t i = 0; i < n; i++) {
			if (addr->local[i] == '"' || addr->local[i] == '\\')
				buf_append_char(out, '\\');
			buf_append_char(out, addr->local[i]);
		}
		buf_append_char(out, '"');
	}
	if (addr->domain != NULL) {
		buf_append_char(out, '@');
		buf_append_str(out, addr->domain);
	}
}

const char *mime_address_name_utf8(struct pool *pool, const struct mime_address *addr)
{
	if (addr->name == NULL)
		return NULL;
	struct buf b = BUF_INIT;
	mime_2047_decode(&b, addr->name, strlen(addr->name));
	const char *r = pool_strndup(pool, buf_cstr(&b), b.len);
	buf_free(&b);
	return r;
}
