/* MIME tree parsing (RFC 2046 section 5).  One pass over the buffer: every
   line is visited once, a stack holds the boundaries of the open
   multiparts, and a line starting with "--" is compared against them,
   innermost first.  Running counts of line ends and bare LFs give every
   part its line count and CRLF size by subtraction. */
#include "mime/tree.h"
#include "mime/base64.h"
#include "mime/mime_private.h"
#include "mime/qp.h"
#include "lib/xalloc.h"

#include <stdint.h>
#include <stdlib.h>

struct tree_ctx {
	struct pool *pool;
	const char *data;
	size_t size;
	struct mime_limits limits;
	unsigned int part_count;
	/* open boundaries, outermost first */
	const char **bnd;
	size_t *bnd_len;
	unsigned int nbnd;
	/* scan position (always a line start) and counts before it */
	size_t pos;
	size_t lf;
	size_t bare;
	/* set by boundary_match() */
	int close;
	unsigned int flags;    /* enum mime_parse_flags */
	int decoded;           /* data is a decoded message/rfc822 body */
	size_t *decode_budget; /* bytes left for decoded bodies */
};

/* Compares the line (starting with "--") with the open boundaries.
   Returns the stack index of the match or -1; sets ctx->close for a close
   delimiter.  The line need only start with the boundary (RFC 2046 5.1.1:
   "it is sufficient that the boundary appear in its entirety following the
   CRLF"), as Dovecot and Cyrus read it; when several open boundaries match,
   the longest wins, the innermost among equals (Dovecot's rule). */
static int boundary_match(struct tree_ctx *ctx, const char *line, size_t llen)
{
	int best = -1;
	size_t best_len = 0;
	for (unsigned int i = ctx->nbnd; i > 0; i--) {
		size_t bl = ctx->bnd_len[i - 1];
		if (llen - 2 < bl || memcmp(line + 2, ctx->bnd[i - 1], bl) != 0)
			continue;
		if (best < 0 || bl > best_len) {
			best = (int)i - 1;
			best_len = bl;
		}
	}
	if (best >= 0) {
		const char *r = line + 2 + best_len;
		ctx->close = llen - 2 - best_len >= 2 && r[0] == '-' && r[1] == '-';
	}
	return best;
}

static int header_boundary_check(void *c, const char *line, size_t len)
{
	return boundary_match(c, line, len) >= 0;
}

/* Advances over lines up to the next boundary line of the stack (not
   consumed) or the end.  Returns the stack index, or -1 at the end. */
static int scan_to_boundary(struct tree_ctx *ctx)
{
	const char *d = ctx->data;
	size_t pos = ctx->pos, end = ctx->size, lf = ctx->lf, bare = ctx->bare;
	int found = -1;
	while (pos < end) {
		const char *nl = memchr(d + pos, '\n', end - pos);
		size_t le = nl ? (size_t)(nl - d) + 1 : end;
		if (ctx->nbnd > 0 && d[pos] == '-' && le - pos >= 2 && d[pos + 1] == '-' &&
		    (found = boundary_match(ctx, d + pos, le - pos)) >= 0)
			break;
		if (nl == NULL) {
			pos = end;
			break;
		}
		lf++;
		bare += nl == d || nl[-1] != '\r';
		pos = le;
	}
	ctx->pos = pos;
	ctx->lf = lf;
	ctx->bare = bare;
	return found;
}

/* Consumes the boundary line at ctx->pos. */
static void skip_line(struct tree_ctx *ctx)
{
	const char *d = ctx->data;
	const char *nl = memchr(d + ctx->pos, '\n', ctx->size - ctx->pos);
	if (nl == NULL) {
		ctx->pos = ctx->size;
		return;
	}
	ctx->lf++;
	ctx->bare += nl == d || nl[-1] != '\r';
	ctx->pos = (size_t)(nl - d) + 1;
}

enum mime_encoding mime_encoding_parse(const char *value, size_t len)
{
	while (len > 0 && mime_is_space((unsigned char)*value)) {
		value++;
		len--;
	}
	while (len > 0 && mime_is_space((unsigned char)value[len - 1]))
		len--;
	static const struct {
		const char *name;
		enum mime_encoding enc;
	} names[] = {
	    {"7bit", MIME_ENC_7BIT},     {"8bit", MIME_ENC_8BIT},           {"binary", MIME_ENC_BINARY},
	    {"base64", MIME_ENC_BASE64}, {"quoted-printable", MIME_ENC_QP},
	};
	for (size_t i = 0; i < N_ELEMENTS(names); i++)
		if (mime_name_eq(value, len, names[i].name))
			return names[i].enc;
	return MIME_ENC_UNKNOWN;
}

/* The mechanism of a Content-Transfer-Encoding value: one token with
   comments around it (RFC 2045 6.1).  Anything else (a quoted string,
   two words, nothing) is no valid field, read as absent (7bit), as
   Dovecot and Cyrus read it.  NULL then. */
static const char *cte_token(const char *value, size_t len, size_t *len_r)
{
	const char *s = value, *end = value + len;
	mime_skip_cfws(&s, end);
	const char *token = s;
	while (s < end && mime_is_token_char((unsigned char)*s))
		s++;
	*len_r = (size_t)(s - token);
	mime_skip_cfws(&s, end);
	return *len_r > 0 && s == end ? token : NULL;
}

static void part_read_headers(struct tree_ctx *ctx, struct mime_part *part)
{
	const struct mime_header_field *f;
	f = mime_headers_find(part->headers, "Content-Type");
	if (f == NULL || mime_content_type_parse(ctx->pool, f->value, f->value_len, &part->ct) < 0) {
		if (f != NULL)
			part->flags |= MIME_PART_CT_INVALID;
		/* RFC 2046 5.1.5: the default in a digest is message/rfc822. */
		const struct mime_part *p = part->parent;
		int digest =
		    p != NULL && (p->flags & MIME_PART_MULTIPART) && !strcmp(p->ct.subtype, "digest");
		part->ct.type = digest ? "message" : "text";
		part->ct.subtype = digest ? "rfc822" : "plain";
	}
	f = mime_headers_find(part->headers, "Content-Transfer-Encoding");
	size_t len;
	const char *token = f != NULL ? cte_token(f->value, f->value_len, &len) : NULL;
	if (token != NULL) {
		part->encoding = mime_encoding_parse(token, len);
		char *name = pool_strndup(ctx->pool, token, len);
		for (size_t i = 0; i < len; i++)
			name[i] = (char)mime_lower((unsigned char)name[i]);
		part->encoding_name = name;
	}
}

static const char *boundary_param(const struct mime_part *part)
{
	const struct mime_params *ps = &part->ct.params;
	for (unsigned int i = 0; i < ps->count; i++)
		if (!strcmp(ps->items[i].name, "boundary") && ps->items[i].imap_value[0] != '\0')
			return ps->items[i].imap_value;
	return NULL;
}

/* A new part linked after last (or as the first child when last is NULL). */
static struct mime_part *part_new(struct tree_ctx *ctx, struct mime_part *parent, struct mime_part *last)
{
	struct mime_part *part = pool_alloc(ctx->pool, sizeof(*part));
	part->parent = parent;
	part->data = ctx->data;
	part->data_size = ctx->size;
	if (ctx->decoded)
		part->flags |= MIME_PART_DECODED;
	ctx->part_count++;
	if (parent != NULL) {
		part->depth = parent->depth + 1;
		part->index = ++parent->child_count;
		if (last != NULL)
			last->next = part;
		else
			parent->children = part;
	} else {
		part->index = 1;
	}
	return part;
}

static int parse_entity(struct tree_ctx *ctx, struct mime_part *part);

/* Multipart body: preamble, parts, epilogue.  Returns the stack index of
   an enclosing boundary that ended it, or -1 at the end of the data. */
static int parse_multipart(struct tree_ctx *ctx, struct mime_part *part)
{
	int own = (int)ctx->nbnd - 1;
	struct mime_part *last = NULL;
	int r = scan_to_boundary(ctx); /* preamble */
	for (;;) {
		if (r != own) {
			/* End of data or an enclosing boundary: the missing
			   close delimiter is implied (content is kept). */
			part->flags |= MIME_PART_NO_CLOSE;
			return r;
		}
		skip_line(ctx);
		if (ctx->close)
			break;
		if (ctx->part_count >= ctx->limits.max_parts) {
			part->flags |= MIME_PART_LIMIT;
			r = scan_to_boundary(ctx);
			continue;
		}
		last = part_new(ctx, part, last);
		r = parse_entity(ctx, last);
	}
	/* Epilogue: only enclosing boundaries end it. */
	ctx->nbnd--;
	r = scan_to_boundary(ctx);
	ctx->nbnd++;
	return r;
}

/* The end of a body that ends at pos: the line end before a boundary
   belongs to the boundary (RFC 2046 5.1.1). */
static size_t body_end(const struct tree_ctx *ctx, size_t start, size_t pos, int boundary)
{
	if (boundary >= 0 && pos > start && ctx->data[pos - 1] == '\n') {
		pos--;
		if (pos > start && ctx->data[pos - 1] == '\r')
			pos--;
	}
	return pos;
}

static void decode_body(struct buf *out, enum mime_encoding enc, const char *body, size_t len)
{
	if (enc == MIME_ENC_BASE64)
		base64_decode_lenient(out, body, len);
	else
		qp_decode(out, body, len);
}

/* A base64 or quoted-printable message/rfc822 (MIME_PARSE_DECODE_MESSAGES):
   the body is decoded into the pool and the encapsulated message parsed
   from there with its own scan state, since boundaries of the outer
   message cannot occur inside it.  Depth and part limits carry over. */
static int parse_encoded_message(struct tree_ctx *ctx, struct mime_part *part)
{
	size_t start = ctx->pos;
	int r = scan_to_boundary(ctx);
	size_t end = body_end(ctx, start, ctx->pos, r);
	struct buf dec = BUF_INIT;
	decode_body(&dec, part->encoding, ctx->data + start, end - start);
	if (dec.len > *ctx->decode_budget) {
		part->flags |= MIME_PART_LIMIT;
		buf_free(&dec);
		return r;
	}
	*ctx->decode_budget -= dec.len;
	char *copy = pool_alloc(ctx->pool, dec.len + 1);
	if (dec.len > 0)
		memcpy(copy, dec.data, dec.len);
	copy[dec.len] = '\0';
	struct tree_ctx sub = {
	    .pool = ctx->pool,
	    .data = copy,
	    .size = dec.len,
	    .limits = ctx->limits,
	    .part_count = ctx->part_count,
	    .flags = ctx->flags,
	    .decoded = 1,
	    .decode_budget = ctx->decode_budget,
	};
	buf_free(&dec);
	sub.bnd = pool_alloc(ctx->pool, (ctx->limits.max_depth + 2) * sizeof(*sub.bnd));
	sub.bnd_len = pool_alloc(ctx->pool, (ctx->limits.max_depth + 2) * sizeof(*sub.bnd_len));
	part->flags |= MIME_PART_MESSAGE;
	parse_entity(&sub, part_new(&sub, part, NULL));
	ctx->part_count = sub.part_count;
	return r;
}

static int entity_body(struct tree_ctx *ctx, struct mime_part *part)
{
	const char *type = part->ct.type, *sub = part->ct.subtype;
	int nested = part->depth < ctx->limits.max_depth && ctx->part_count < ctx->limits.max_parts;
	if (!strcmp(type, "multipart")) {
		const char *b = boundary_param(part);
		if (b == NULL || !nested) {
			part->flags |= b == NULL ? MIME_PART_NO_BOUNDARY : MIME_PART_LIMIT;
			part->ct.type = "text";
			part->ct.subtype = "plain";
			return scan_to_boundary(ctx);
		}
		part->flags |= MIME_PART_MULTIPART;
		part->boundary = b;
		ctx->bnd[ctx->nbnd] = b;
		ctx->bnd_len[ctx->nbnd] = strlen(b);
		ctx->nbnd++;
		int r = parse_multipart(ctx, part);
		ctx->nbnd--;
		return r;
	}
	/* An encapsulated message is parsed only when it is not encoded
	   (RFC 2046 5.2.1 allows 7bit, 8bit and binary only). */
	if (!strcmp(type, "message") && !strcmp(sub, "rfc822") && nested &&
	    part->encoding <= MIME_ENC_BINARY) {
		part->flags |= MIME_PART_MESSAGE;
		struct mime_part *child = part_new(ctx, part, NULL);
		return parse_entity(ctx, child);
	}
	if (!strcmp(type, "message") && !strcmp(sub, "rfc822") && nested &&
	    (ctx->flags & MIME_PARSE_DECODE_MESSAGES) &&
	    (part->encoding == MIME_ENC_BASE64 || part->encoding == MIME_ENC_QP))
		return parse_encoded_message(ctx, part);
	if (!nested && (!strcmp(type, "message") && !strcmp(sub, "rfc822")))
		part->flags |= MIME_PART_LIMIT;
	return scan_to_boundary(ctx);
}

/* Parses the part starting at ctx->pos: header, then body up to the next
   boundary line of the stack or the end. */
static int parse_entity(struct tree_ctx *ctx, struct mime_part *part)
{
	struct mime_headers *h =
	    mime_headers_parse_bounded(ctx->pool, ctx->data + ctx->pos, ctx->size - ctx->pos, &ctx->limits,
				       ctx->nbnd ? header_boundary_check : NULL, ctx);
	part->headers = h;
	part->header.offset = ctx->pos;
	part->header.size = h->size;
	part->header.vsize = h->size + h->bare_lf;
	part->header.lines = h->lines;
	ctx->pos += h->size;
	ctx->lf += h->lines;
	ctx->bare += h->bare_lf;
	part_read_headers(ctx, part);

	size_t start = ctx->pos, lf0 = ctx->lf, bare0 = ctx->bare;
	int r = entity_body(ctx, part);
	size_t end = ctx->pos, lf = ctx->lf, bare = ctx->bare;
	/* The line end before a boundary belongs to the boundary. */
	size_t cut = body_end(ctx, start, end, r);
	if (cut < end) {
		lf--;
		bare -= end - cut == 1;
		end = cut;
	}
	part->body.offset = start;
	part->body.size = end - start;
	part->body.vsize = part->body.size + (bare - bare0);
	/* Line ends, as Dovecot and Cyrus count them: a last line without
	   one (before a boundary, whose CRLF it is, or at the end) adds
	   none. */
	part->body.lines = lf - lf0;
	return r;
}

struct mime_message *mime_message_parse(const void *data, size_t size, const struct mime_limits *limits)
{
	return mime_message_parse_flags(data, size, limits, 0);
}

struct mime_message *mime_message_parse_flags(const void *data, size_t size, const struct mime_limits *limits,
					      unsigned int flags)
{
	struct pool *pool = pool_create(8192);
	struct mime_message *msg = pool_alloc(pool, sizeof(*msg));
	size_t budget = size < SIZE_MAX / 4 ? 4 * size : size;
	struct tree_ctx ctx = {
	    .pool = pool, .data = data, .size = size, .flags = flags, .decode_budget = &budget};
	mime_limits_resolve(&ctx.limits, limits);
	ctx.bnd = pool_alloc(pool, (ctx.limits.max_depth + 2) * sizeof(*ctx.bnd));
	ctx.bnd_len = pool_alloc(pool, (ctx.limits.max_depth + 2) * sizeof(*ctx.bnd_len));
	msg->pool = pool;
	msg->data = data;
	msg->size = size;
	msg->root = part_new(&ctx, NULL, NULL);
	parse_entity(&ctx, msg->root);
	msg->part_count = ctx.part_count;
	return msg;
}

void mime_message_free(struct mime_message **msgp)
{
	struct mime_message *msg = *msgp;
	if (msg == NULL)
		return;
	struct pool *pool = msg->pool;
	pool_destroy(&pool);
	*msgp = NULL;
}
