/* The incremental IMAP command collector and tokeniser (RFC 3501 section
   9, RFC 7888 LITERAL+, RFC 3516 literal8).

   Collecting: bytes are appended to one buffer.  When a line ends in a
   literal announcement "{n}" / "{n+}" / "~{n}" outside a quoted string, the
   next n bytes are appended raw right after the "}" and their position is
   recorded; a line without an announcement ends the command.  Tokenising
   then walks that buffer once, turning it into the argument tree, and
   accepts a "{" only at a recorded announcement, so literal data can never
   be mistaken for syntax. */
#include "imap/imap_parse.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Beyond this a client that keeps sending a rejected non-synchronising
   literal is cut off instead of having its bytes skipped (RFC 7888 4). */
#define IMAP_SKIP_MAX ((uint64_t)256 * 1024 * 1024)

struct imap_literal_pos {
	size_t announce; /* offset of "{" (or "~") */
	size_t data;     /* offset of the first data byte */
	size_t len;
};

enum collect_state { COLLECT_LINE, COLLECT_LITERAL, COLLECT_SKIP_LINE, COLLECT_SKIP_LITERAL };

struct imap_parser {
	struct imap_parse_limits limits;
	enum collect_state state;
	struct buf text;   /* the command so far */
	size_t line_start; /* offset of the current line in text */
	size_t literal_left;
	struct imap_literal_pos *literals;
	unsigned int literal_count, literal_alloc;
	bool has_nul;
	/* skipping after an error */
	uint64_t skip_left;
	char skip_tail[24]; /* end of the skipped line */
	size_t skip_tail_len;
	bool fatal;
	/* results */
	struct pool *pool;
	struct imap_command cmd;
	char tag[64];
	const char *error;
	const char *pending_error; /* reported once the skipped line ends */
};

static const struct imap_parse_limits default_limits = {
    .max_line = 64 * 1024,
    .max_literal = 64 * 1024,
    .max_append_literal = 64 * 1024 * 1024,
    .max_command = 0,
    .max_depth = 32,
    .max_args = 10000,
};

void imap_parser_set_limits(struct imap_parser *p, const struct imap_parse_limits *limits)
{
	p->limits = limits != NULL ? *limits : default_limits;
	if (p->limits.max_line == 0)
		p->limits.max_line = default_limits.max_line;
	if (p->limits.max_literal == 0)
		p->limits.max_literal = default_limits.max_literal;
	if (p->limits.max_append_literal == 0)
		p->limits.max_append_literal = default_limits.max_append_literal;
	if (p->limits.max_command == 0)
		p->limits.max_command = p->limits.max_append_literal + 1024 * 1024;
	if (p->limits.max_depth == 0)
		p->limits.max_depth = default_limits.max_depth;
	if (p->limits.max_args == 0)
		p->limits.max_args = default_limits.max_args;
}

struct imap_parser *imap_parser_create(const struct imap_parse_limits *limits)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));
	imap_parser_set_limits(p, limits);
	strcpy(p->tag, "*");
	return p;
}

void imap_parser_reset(struct imap_parser *p)
{
	/* An idle connection keeps no command buffer at all. */
	buf_free(&p->text);
	if (p->literal_alloc > 16) {
		free(p->literals);
		p->literals = NULL;
		p->literal_alloc = 0;
	}
	p->literal_count = 0;
	p->line_start = 0;
	p->has_nul = false;
	pool_destroy(&p->pool);
	memset(&p->cmd, 0, sizeof(p->cmd));
	if (p->state == COLLECT_LINE || p->state == COLLECT_LITERAL)
		p->state = COLLECT_LINE;
}

struct pool *imap_parser_take_pool(struct imap_parser *p)
{
	struct pool *pool = p->pool;
	p->pool = NULL;
	return pool;
}

void imap_parser_destroy(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;
	if (p == NULL)
		return;
	buf_free(&p->text);
	free(p->literals);
	pool_destroy(&p->pool);
	free(p);
	*pp = NULL;
}

const struct imap_command *imap_parser_command(const struct imap_parser *p)
{
	return &p->cmd;
}

const char *imap_parser_tag(const struct imap_parser *p)
{
	return p->tag;
}

const char *imap_parser_error(const struct imap_parser *p)
{
	return p->error != NULL ? p->error : "Invalid command";
}

bool imap_parser_fatal(const struct imap_parser *p)
{
	return p->fatal;
}

bool imap_parser_busy(const struct imap_parser *p)
{
	if (p->state != COLLECT_LINE)
		return true;
	return p->text.len > 0 && p->cmd.name == NULL && p->error == NULL;
}

bool imap_tag_valid(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* tag = 1*<any ASTRING-CHAR except "+">; ASTRING-CHAR is ATOM-CHAR
		   or "]"; atom-specials: ( ) { SP CTL % * " \ ] */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\+", c) != NULL)
			return false;
	}
	return true;
}

/* Remembers the tag of the command being collected, for error replies. */
static void note_tag_from(struct imap_parser *p, const char *s, size_t len)
{
	size_t n = 0;
	if (s == NULL)
		return;
	while (n < len && s[n] != ' ' && s[n] != '\r' && s[n] != '\n')
		n++;
	if (n > 0 && n < sizeof(p->tag) && imap_tag_valid(s, n)) {
		memcpy(p->tag, s, n);
		p->tag[n] = '\0';
	} else {
		strcpy(p->tag, "*");
	}
}

static void note_tag(struct imap_parser *p)
{
	note_tag_from(p, p->text.data, p->text.len);
}

static bool command_is_append(const struct imap_parser *p)
{
	const char *s = p->text.data;
	const char *sp = memchr(s, ' ', p->text.len);
	if (sp == NULL)
		return false;
	size_t rest = p->text.len - (size_t)(sp + 1 - s);
	return rest >= 7 && strncasecmp(sp + 1, "APPEND ", 7) == 0;
}

/* Parses a literal announcement at the end of line (start..end of the
   line in text).  Returns 1 with the size and sync flag, 0 when the line
   does not end in one, -1 when it ends in a malformed one ("{-5}"). */
static int literal_announce(const char *line, size_t len, uint64_t *size_r, bool *sync_r, size_t *brace_r)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	/* Is the end of the line inside a quoted string? */
	bool quoted = false;
	size_t brace = (size_t)-1;
	for (size_t i = 0; i < len; i++) {
		char c = line[i];
		if (quoted) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				quoted = false;
		} else if (c == '"') {
			quoted = true;
		} else if (c == '{') {
			brace = i;
		}
	}
	if (quoted || brace == (size_t)-1)
		return 0;
	if (brace == 0 || (line[brace - 1] != ' ' && line[brace - 1] != '(' && line[brace - 1] != '~'))
		return 0;
	const char *num = line + brace + 1;
	size_t numlen = len - brace - 2;
	bool sync = true;
	if (numlen > 0 && num[numlen - 1] == '+') {
		sync = false;
		numlen--;
	}
	if (numlen == 0 || numlen > 10)
		return -1;
	uint64_t n = 0;
	for (size_t i = 0; i < numlen; i++) {
		if (!isdigit((unsigned char)num[i]))
			return -1;
		n = n * 10 + (uint64_t)(num[i] - '0');
	}
	if (n > UINT32_MAX)
		return -1;
	*size_r = n;
	*sync_r = sync;
	*brace_r = brace;
	return 1;
}

static void start_skip_line(struct imap_parser *p, const char *error, const char *data, size_t len)
{
	if (p->text.len > 0)
		note_tag(p);
	else
		note_tag_from(p, data, len);
	p->error = error;
	p->state = COLLECT_SKIP_LINE;
	p->skip_tail_len = 0;
	buf_reset(&p->text);
	p->line_start = 0;
	p->literal_count = 0;
}

static void record_literal(struct imap_parser *p, size_t brace, uint64_t size)
{
	if (p->literal_count == p->literal_alloc) {
		p->literal_alloc = p->literal_alloc ? p->literal_alloc * 2 : 4;
		p->literals = xreallocarray(p->literals, p->literal_alloc, sizeof(*p->literals));
	}
	struct imap_literal_pos *lit = &p->literals[p->literal_count++];
	lit->announce = brace;
	lit->data = p->text.len;
	lit->len = (size_t)size;
}

static int tokenise(struct imap_parser *p);

/* A complete line (without its line end) has been collected from
   line_start to text.len. */
static enum imap_parse_result line_done(struct imap_parser *p)
{
	const char *line = p->text.data + p->line_start;
	size_t len = p->text.len - p->line_start;
	uint64_t size;
	bool sync;
	size_t brace;
	int r = literal_announce(line, len, &size, &sync, &brace);
	if (r < 0) {
		note_tag(p);
		p->error = "Invalid literal size";
		imap_parser_reset(p);
		return IMAP_PARSE_ERROR;
	}
	if (r == 0) {
		if (p->text.len == 0) {
			/* Blank lines between commands are ignored, as most
			   servers do; some clients send them after a literal. */
			return IMAP_PARSE_MORE;
		}
		if (tokenise(p) < 0) {
			note_tag(p);
			return IMAP_PARSE_ERROR;
		}
		return IMAP_PARSE_COMMAND;
	}
	size_t limit = command_is_append(p) ? p->limits.max_append_literal : p->limits.max_literal;
	if (size > limit || p->text.len + size > p->limits.max_command) {
		note_tag(p);
		/* RFC 3502: the messages of one APPEND share the command's
		   limit */
		if (command_is_append(p))
			p->error = size > limit ? "[TOOBIG] Literal too big"
						: "[LIMIT] The messages of one APPEND are too big together";
		else
			p->error = "Literal too big";
		if (sync) {
			/* The client waits for "+": it will not send the data. */
			imap_parser_reset(p);
		} else {
			/* RFC 7888 4: the data follows anyway; skip it. */
			buf_reset(&p->text);
			p->line_start = 0;
			p->literal_count = 0;
			p->skip_left = size;
			p->state = COLLECT_SKIP_LITERAL;
			if (size > IMAP_SKIP_MAX || p->limits.big_literal_fatal)
				p->fatal = true;
		}
		return IMAP_PARSE_ERROR;
	}
	if (brace > 0 && line[brace - 1] == '~')
		brace--; /* literal8: the token starts at "~" */
	record_literal(p, p->line_start + brace, size);
	p->literal_left = (size_t)size;
	p->state = COLLECT_LITERAL;
	return sync ? IMAP_PARSE_LITERAL : IMAP_PARSE_MORE;
}

/* Skips the rest of a rejected command; non-synchronising literals
   announced at the end of skipped lines are skipped as well. */
static bool skip_input(struct imap_parser *p, const char *data, size_t len, size_t *used)
{
	while (*used < len) {
		if (p->state == COLLECT_SKIP_LITERAL) {
			size_t n = len - *used;
			if (n > p->skip_left)
				n = (size_t)p->skip_left;
			p->skip_left -= n;
			*used += n;
			if (p->skip_left == 0) {
				p->state = COLLECT_SKIP_LINE;
				p->skip_tail_len = 0;
			}
			continue;
		}
		const char *lf = memchr(data + *used, '\n', len - *used);
		size_t n = lf != NULL ? (size_t)(lf - (data + *used)) : len - *used;
		/* keep the last bytes of the line to spot "{n+}" */
		for (size_t i = 0; i < n; i++) {
			if (p->skip_tail_len == sizeof(p->skip_tail)) {
				memmove(p->skip_tail, p->skip_tail + 1, sizeof(p->skip_tail) - 1);
				p->skip_tail_len--;
			}
			p->skip_tail[p->skip_tail_len++] = data[*used + i];
		}
		*used += n;
		if (lf == NULL)
			return false;
		*used += 1;
		size_t tl = p->skip_tail_len;
		if (tl > 0 && p->skip_tail[tl - 1] == '\r')
			tl--;
		uint64_t size;
		bool sync;
		size_t brace;
		if (literal_announce(p->skip_tail, tl, &size, &sync, &brace) == 1 && !sync) {
			/* the command is over the limits already: so is its
			   literal */
			if (size > IMAP_SKIP_MAX || p->limits.big_literal_fatal) {
				p->fatal = true;
				return false;
			}
			p->skip_left = size;
			p->state = COLLECT_SKIP_LITERAL;
			continue;
		}
		p->state = COLLECT_LINE;
		return true;
	}
	return false;
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const void *data_, size_t len, size_t *used_r)
{
	const char *data = data_;
	size_t used = 0;
	if (p->cmd.name != NULL || p->error != NULL) {
		p->error = NULL;
		if (p->state == COLLECT_LINE)
			imap_parser_reset(p);
	}
	if (p->fatal) {
		*used_r = len;
		p->error = "Too much data after an error";
		return IMAP_PARSE_ERROR;
	}
	while (used < len) {
		switch (p->state) {
		case COLLECT_SKIP_LINE:
		case COLLECT_SKIP_LITERAL:
			skip_input(p, data, len, &used);
			if (p->fatal) {
				*used_r = len;
				p->error = "Literal too big";
				return IMAP_PARSE_ERROR;
			}
			continue;
		case COLLECT_LITERAL: {
			size_t n = len - used;
			if (n > p->literal_left)
				n = p->literal_left;
			buf_append(&p->text, data + used, n);
			used += n;
			p->literal_left -= n;
			if (p->literal_left == 0) {
				p->state = COLLECT_LINE;
				p->line_start = p->text.len;
			}
			continue;
		}
		case COLLECT_LINE:
			break;
		}
		const char *lf = memchr(data + used, '\n', len - used);
		size_t n = lf != NULL ? (size_t)(lf - (data + used)) : len - used;
		size_t line_len = p->text.len - p->line_start;
		if (line_len + n > p->limits.max_line + 1 || p->text.len + n > p->limits.max_command) {
			start_skip_line(p, "Command line too long", data + used, n);
			*used_r = used;
			return IMAP_PARSE_ERROR;
		}
		if (memchr(data + used, '\0', n) != NULL)
			p->has_nul = true;
		buf_append(&p->text, data + used, n);
		used += n;
		if (lf == NULL)
			break;
		used++;
		if (p->text.len > p->line_start && p->text.data[p->text.len - 1] == '\r')
			buf_truncate(&p->text, p->text.len - 1);
		if (p->text.len - p->line_start > p->limits.max_line) {
			note_tag(p);
			p->error = "Command line too long";
			imap_parser_reset(p);
			*used_r = used;
			return IMAP_PARSE_ERROR;
		}
		enum imap_parse_result r = line_done(p);
		if (r != IMAP_PARSE_MORE) {
			*used_r = used;
			return r;
		}
	}
	*used_r = used;
	return IMAP_PARSE_MORE;
}

/* ---- tokeniser ---- */

struct tokeniser {
	struct imap_parser *p;
	const char *s;
	size_t pos, len;
	unsigned int next_literal;
	unsigned int args;
	const char *error;
};

static bool is_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* list-wildcards are allowed in LIST patterns; "]" in astrings; we accept
   both in atoms and let command parsers be strict where it matters. */
static bool is_loose_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){\"", c) == NULL;
}

static struct imap_arg *arg_array_grow(struct tokeniser *t, struct imap_arg *arr, unsigned int count,
				       unsigned int *alloc)
{
	if (count < *alloc)
		return arr;
	unsigned int n = *alloc ? *alloc * 2 : 8;
	struct imap_arg *na = pool_alloc(t->p->pool, n * sizeof(*na));
	if (count > 0)
		memcpy(na, arr, count * sizeof(*na));
	*alloc = n;
	return na;
}

static int parse_quoted(struct tokeniser *t, struct imap_arg *arg)
{
	struct buf out = BUF_INIT;
	t->pos++;
	while (t->pos < t->len) {
		char c = t->s[t->pos++];
		if (c == '"') {
			arg->type = IMAP_ARG_STRING;
			arg->len = out.len;
			arg->str = pool_strndup(t->p->pool, buf_cstr(&out), out.len);
			buf_free(&out);
			return 0;
		}
		if (c == '\\') {
			if (t->pos >= t->len || (t->s[t->pos] != '\\' && t->s[t->pos] != '"'))
				break;
			c = t->s[t->pos++];
		} else if (c == '\r' || c == '\n') {
			break;
		}
		buf_append_char(&out, c);
	}
	buf_free(&out);
	t->error = "Invalid quoted string";
	return -1;
}

static int parse_literal(struct tokeniser *t, struct imap_arg *arg)
{
	struct imap_parser *p = t->p;
	if (t->next_literal >= p->literal_count || p->literals[t->next_literal].announce != t->pos) {
		t->error = "Unexpected literal";
		return -1;
	}
	const struct imap_literal_pos *lit = &p->literals[t->next_literal++];
	arg->type = IMAP_ARG_LITERAL;
	arg->literal8 = t->s[t->pos] == '~';
	arg->str = t->s + lit->data;
	arg->len = lit->len;
	/* literal data must hold no NUL outside literal8 (CHAR8 is %x01-ff) */
	if (!arg->literal8 && memchr(arg->str, '\0', arg->len) != NULL) {
		t->error = "NUL byte in literal";
		return -1;
	}
	arg->str = pool_strndup(p->pool, arg->str, arg->len);
	t->pos = lit->data + lit->len;
	return 0;
}

/* True when the atom so far names a fetch item that a section follows
   (RFC 3501 9 "BODY" section, RFC 3516 "BINARY" section-binary).  Elsewhere
   "[" is an ordinary ATOM-CHAR: a mailbox may be named "a[b". */
static bool takes_section(const char *s, size_t len)
{
	static const char *const names[] = {"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"};
	for (size_t i = 0; i < N_ELEMENTS(names); i++)
		if (strlen(names[i]) == len && strncasecmp(names[i], s, len) == 0)
			return true;
	return false;
}

static int parse_atom(struct tokeniser *t, struct imap_arg *arg)
{
	size_t start = t->pos;
	while (t->pos < t->len) {
		unsigned char c = (unsigned char)t->s[t->pos];
		if (c == '[' && takes_section(t->s + start, t->pos - start)) {
			/* BODY[...] and friends: the section may hold spaces and a
			   parenthesised field list; take it up to its "]". */
			const char *close = memchr(t->s + t->pos, ']', t->len - t->pos);
			if (close == NULL) {
				t->error = "Missing ]";
				return -1;
			}
			for (const char *q = t->s + t->pos; q < close; q++) {
				if ((unsigned char)*q < 0x20 || *q == '{' || *q == '\x7f') {
					t->error = "Invalid section";
					return -1;
				}
			}
			t->pos = (size_t)(close - t->s) + 1;
			continue;
		}
		if (!is_loose_atom_char(c) || c == ')')
			break;
		t->pos++;
	}
	if (t->pos == start) {
		t->error = "Invalid characters in argument";
		return -1;
	}
	arg->len = t->pos - start;
	arg->str = pool_strndup(t->p->pool, t->s + start, arg->len);
	arg->type = arg->len == 3 && strncasecmp(arg->str, "NIL", 3) == 0 ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
	return 0;
}

static int parse_list(struct tokeniser *t, struct imap_arg **args_r, unsigned int *count_r,
		      unsigned int depth, bool top);

static int parse_arg(struct tokeniser *t, struct imap_arg *arg, unsigned int depth)
{
	if (++t->args > t->p->limits.max_args) {
		t->error = "Too many arguments";
		return -1;
	}
	char c = t->s[t->pos];
	if (c == '"')
		return parse_quoted(t, arg);
	if (c == '{' || (c == '~' && t->pos + 1 < t->len && t->s[t->pos + 1] == '{'))
		return parse_literal(t, arg);
	if (c == '(') {
		if (depth >= t->p->limits.max_depth) {
			t->error = "Too deeply nested lists";
			return -1;
		}
		t->pos++;
		arg->type = IMAP_ARG_LIST;
		if (parse_list(t, &arg->list, &arg->count, depth + 1, false) < 0)
			return -1;
		arg->str = "";
		return 0;
	}
	if (c == ')') {
		t->error = "Unexpected )";
		return -1;
	}
	return parse_atom(t, arg);
}

/* Parses arguments separated by single spaces up to ")" (or the end when
   top). */
static int parse_list(struct tokeniser *t, struct imap_arg **args_r, unsigned int *count_r,
		      unsigned int depth, bool top)
{
	struct imap_arg *arr = NULL;
	unsigned int count = 0, alloc = 0;
	bool need_space = false;
	for (;;) {
		if (t->pos >= t->len) {
			if (!top) {
				t->error = "Missing )";
				return -1;
			}
			break;
		}
		char c = t->s[t->pos];
		if (c == ')') {
			if (top) {
				t->error = "Unexpected )";
				return -1;
			}
			t->pos++;
			break;
		}
		if (need_space) {
			if (c != ' ') {
				t->error = "Missing space between arguments";
				return -1;
			}
			t->pos++;
			if (t->pos >= t->len || t->s[t->pos] == ')' || t->s[t->pos] == ' ') {
				t->error = "Extra space";
				return -1;
			}
		} else if (c == ' ') {
			t->error = "Extra space";
			return -1;
		}
		arr = arg_array_grow(t, arr, count, &alloc);
		memset(&arr[count], 0, sizeof(arr[count]));
		if (parse_arg(t, &arr[count], depth) < 0)
			return -1;
		count++;
		need_space = true;
	}
	*args_r = arr;
	*count_r = count;
	return 0;
}

static int tokenise(struct imap_parser *p)
{
	struct tokeniser t = {.p = p, .s = p->text.data, .len = p->text.len};
	if (p->has_nul) {
		p->error = "NUL byte in command";
		return -1;
	}
	if (p->pool == NULL)
		p->pool = pool_create(1024);
	/* tag SP command */
	size_t n = 0;
	while (n < t.len && t.s[n] != ' ')
		n++;
	if (n == 0 || n > 255 || !imap_tag_valid(t.s, n)) {
		strcpy(p->tag, "*");
		p->error = t.len == 0 ? "Empty command line" : "Invalid tag";
		return -1;
	}
	note_tag(p);
	p->cmd.tag = pool_strndup(p->pool, t.s, n);
	t.pos = n;
	if (t.pos >= t.len || t.s[t.pos] != ' ') {
		p->error = "Missing command";
		return -1;
	}
	size_t start = ++t.pos;
	while (t.pos < t.len && is_atom_char((unsigned char)t.s[t.pos]))
		t.pos++;
	if (t.pos == start || (t.pos < t.len && t.s[t.pos] != ' ')) {
		p->error = "Invalid command name";
		return -1;
	}
	char *name = pool_strndup(p->pool, t.s + start, t.pos - start);
	for (char *c = name; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	p->cmd.name = name;
	if (t.pos < t.len) {
		t.pos++;
		if (t.pos >= t.len) {
			p->error = "Extra space";
			return -1;
		}
	}
	if (parse_list(&t, &p->cmd.args, &p->cmd.count, 0, true) < 0) {
		p->error = t.error;
		p->cmd.name = NULL;
		return -1;
	}
	return 0;
}

/* ---- argument helpers ---- */

bool imap_arg_is_astring(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_STRING ||
	       (arg->type == IMAP_ARG_LITERAL && !arg->literal8) || arg->type == IMAP_ARG_NIL;
}

const char *imap_arg_astring(const struct imap_arg *arg)
{
	if (!imap_arg_is_astring(arg))
		return NULL;
	if (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) {
		/* atoms of astrings may not hold list wildcards or brackets'
		   contents with spaces */
		for (size_t i = 0; i < arg->len; i++) {
			unsigned char c = (unsigned char)arg->str[i];
			if (c == '%' || c == '*' || c == ' ' || c == '(' || c == ')' || c == '\\')
				return NULL;
		}
	}
	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL && strlen(arg->str) != arg->len)
		return NULL;
	return arg->str;
}

bool imap_arg_nstring(const struct imap_arg *arg, const char **str_r)
{
	if (arg->type == IMAP_ARG_NIL) {
		*str_r = NULL;
		return true;
	}
	if (arg->type == IMAP_ARG_STRING || arg->type == IMAP_ARG_LITERAL) {
		*str_r = arg->str;
		return true;
	}
	return false;
}

bool imap_arg_atom_equals(const struct imap_arg *arg, const char *atom)
{
	return (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) && strcasecmp(arg->str, atom) == 0;
}

bool imap_parse_number64(const char *s, uint64_t *num_r)
{
	uint64_t n = 0;
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (n > (UINT64_MAX - 9) / 10 || n * 10 + (uint64_t)(*s - '0') > INT64_MAX)
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*num_r = n;
	return true;
}

bool imap_parse_number(const char *s, uint32_t *num_r)
{
	uint64_t n;
	if (!imap_parse_number64(s, &n) || n > UINT32_MAX)
		return false;
	*num_r = (uint32_t)n;
	return true;
}

bool imap_parse_nz_number(const char *s, uint32_t *num_r)
{
	return s[0] != '0' && imap_parse_number(s, num_r);
}
