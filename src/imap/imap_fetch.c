/* FETCH and UID FETCH (RFC 3501 6.4.5 and 7.4.2, RFC 3516 BINARY,
   RFC 7162 CHANGEDSINCE/VANISHED).

   Responses are produced in slices of messages: ENVELOPE and BODYSTRUCTURE
   of a slice come from the index cache in one query (missing ones are
   built from the file with src/mime and written back by a job, in one
   transaction: imap_cache.c),
   and a slice stops once the output buffer holds IMAP_OUTPUT_HIGH bytes,
   to continue when the client has read it. */
#include "imap/imap_private.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mime/imap.h"
#include "mime/tree.h"
#include "store/store_imap_extra.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#define FETCH_SLICE 256

struct fetch_ctx {
	struct pool *pool;
	struct imap_fetch_atts atts;
	uint32_t *seqs;
	uint32_t count, next;
	bool uid;
	/* cached texts of the current slice, by position */
	char **env, **bs;
	uint32_t slice_start, slice_len;
	struct imap_fetch_ext *ext; /* the slice's extension items */
	/* Every section asked for is in the header block of the message
	   (HEADER, HEADER.FIELDS[.NOT], RFC822.HEADER): the blocks of the
	   slice come from the index cache and no file is read. */
	bool headers_only;
	struct imap_header_run headers; /* of the current slice */
	bool headers_loaded;
	struct imap_header_names *names; /* by body section */
	struct buf scratch;
	uint32_t msg_hint;  /* index in the mailbox table after the last message */
	uint32_t fill_next; /* slice position after the last cached text read */
	bool unavailable;   /* a message could not be read for now (STORE_ERROR_BUSY) */
};

static void headers_unload(struct fetch_ctx *f);

static void fetch_ctx_free(struct fetch_ctx *f)
{
	headers_unload(f);
	buf_free(&f->scratch);
	for (uint32_t i = 0; i < f->slice_len; i++) {
		if (f->env != NULL)
			free(f->env[i]);
		if (f->bs != NULL)
			free(f->bs[i]);
	}
	free(f->env);
	free(f->bs);
	imap_fetch_ext_free(&f->ext);
	free(f->seqs);
	pool_destroy(&f->pool);
	free(f);
}

/* n as exactly width decimal digits (leading zeros) */
static void append_digits(char *p, unsigned int n, int width)
{
	for (int i = width - 1; i >= 0; i--, n /= 10)
		p[i] = (char)('0' + n % 10);
}

void imap_append_internaldate(struct buf *out, int64_t t)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	/* "dd-Mon-yyyy hh:mm:ss +0000" in quotes (RFC 3501 9, date-time) */
	char d[] = "\"00-Mon-0000 00:00:00 +0000\"";
	append_digits(d + 1, (unsigned int)tm.tm_mday, 2);
	memcpy(d + 4, mon + 3 * tm.tm_mon, 3);
	append_digits(d + 8, (unsigned int)(tm.tm_year + 1900) % 10000, 4);
	append_digits(d + 13, (unsigned int)tm.tm_hour, 2);
	append_digits(d + 16, (unsigned int)tm.tm_min, 2);
	append_digits(d + 19, (unsigned int)tm.tm_sec, 2);
	buf_append(out, d, sizeof(d) - 1);
}

static void append_uint(struct buf *out, uint64_t v)
{
	char d[20];
	size_t n = sizeof(d);
	do {
		d[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	buf_append(out, d + n, sizeof(d) - n);
}

/* The separator before an item (none before the first), then its name
   and a space. */
static void append_item(struct buf *out, bool *first, const char *name)
{
	if (!*first)
		buf_append_char(out, ' ');
	*first = false;
	buf_append_str(out, name);
	buf_append_char(out, ' ');
}

/* The message of uid in the mailbox table: a FETCH goes through it in
   UID order, so the one after the last found is tried first. */
static const struct imap_msg *fetch_find(struct fetch_ctx *f, const struct imap_mbox *mbox, uint32_t uid)
{
	uint32_t i = f->msg_hint;
	const struct imap_msg *m =
	    i < mbox->count && mbox->msgs[i].uid == uid ? &mbox->msgs[i] : imap_mbox_find(mbox, uid);
	if (m != NULL)
		f->msg_hint = (uint32_t)(m - mbox->msgs) + 1;
	return m;
}

/* ---- the cache ---- */

struct slice_fill {
	struct fetch_ctx *f;
	struct imap_view *v;
	char **texts;
};

static int slice_cb(void *ctx, uint32_t uid, const char *text, size_t len)
{
	struct slice_fill *sf = ctx;
	struct fetch_ctx *f = sf->f;
	/* the slice's UIDs ascend with the sequence numbers, and so do the
	   rows: usually the one after the last */
	uint32_t lo = f->fill_next, hi = f->slice_len;
	if (lo >= hi || imap_view_uid(sf->v, f->seqs[f->slice_start + lo]) != uid)
		lo = 0;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint32_t u = imap_view_uid(sf->v, f->seqs[f->slice_start + mid]);
		if (u < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < f->slice_len && imap_view_uid(sf->v, f->seqs[f->slice_start + lo]) == uid &&
	    sf->texts[lo] == NULL) {
		sf->texts[lo] = xmemdup(text, len + 1);
		f->fill_next = lo + 1;
	}
	return 0;
}

static char *build_cached(struct imap_message *msg, bool envelope)
{
	struct buf out = BUF_INIT;
	struct mime_message *mm = imap_message_mime(msg);
	if (envelope)
		mime_imap_envelope(&out, mm->root->headers, 0);
	else
		mime_imap_bodystructure(&out, mm, mm->root, 1, 0);
	return buf_steal(&out);
}

/* Loads cached ENVELOPE/BODYSTRUCTURE for seqs[start, start+len) and
   builds the missing ones. */
static void load_slice(struct imap_session *s, struct fetch_ctx *f, uint32_t start, uint32_t len)
{
	struct imap_view *v = s->view;
	bool want_env = f->atts.items & IMAP_FETCH_ENVELOPE;
	bool want_bs = f->atts.items & IMAP_FETCH_BODYSTRUCTURE;
	f->slice_start = start;
	f->slice_len = len;
	f->ext = imap_fetch_ext_load(s, &f->atts, f->seqs + start, len);
	if (!want_env && !want_bs)
		return;
	f->env = want_env ? xcalloc(len, sizeof(char *)) : NULL;
	f->bs = want_bs ? xcalloc(len, sizeof(char *)) : NULL;
	uint32_t lo = imap_view_uid(v, f->seqs[start]), hi = imap_view_uid(v, f->seqs[start + len - 1]);
	char *error = NULL;
	struct slice_fill sf = {f, v, NULL};
	for (int pass = 0; pass < 2; pass++) {
		sf.texts = pass == 0 ? f->env : f->bs;
		if (sf.texts == NULL)
			continue;
		if (store_cache_get_range(v->mbox->smbox, lo, hi,
					  pass == 0 ? STORE_CACHE_ENVELOPE : STORE_CACHE_BODYSTRUCTURE,
					  slice_cb, &sf, &error) < 0) {
			log_error("imap cache read failed session=%s: %s", s->core.id, error);
			free(error);
			error = NULL;
		}
	}
	for (uint32_t i = 0; i < len; i++) {
		bool miss_env = want_env && f->env[i] == NULL, miss_bs = want_bs && f->bs[i] == NULL;
		if (!miss_env && !miss_bs)
			continue;
		uint32_t uid = imap_view_uid(v, f->seqs[start + i]);
		struct imap_message msg;
		if (imap_message_read(v->mbox, uid, &msg, &error) <= 0) {
			free(error);
			error = NULL;
			continue;
		}
		if (miss_env) {
			f->env[i] = build_cached(&msg, true);
			imap_cache_fill_add(v->mbox, uid, IMAP_CACHE_ENVELOPE, f->env[i], strlen(f->env[i]));
		}
		if (miss_bs) {
			f->bs[i] = build_cached(&msg, false);
			imap_cache_fill_add(v->mbox, uid, IMAP_CACHE_BODYSTRUCTURE, f->bs[i],
					    strlen(f->bs[i]));
		}
		/* SEARCH, SORT and THREAD read header fields from the cache */
		const struct mime_span *hs = &imap_message_mime(&msg)->root->header;
		imap_header_cache_store(v->mbox, uid, msg.data + hs->offset, hs->size);
		imap_message_free(&msg);
	}
	/* written by a job, the loop never waits for the index */
	imap_cache_fill_flush(v->mbox);
}

static void unload_slice(struct fetch_ctx *f)
{
	for (uint32_t i = 0; i < f->slice_len; i++) {
		if (f->env != NULL)
			free(f->env[i]);
		if (f->bs != NULL)
			free(f->bs[i]);
	}
	free(f->env);
	free(f->bs);
	f->env = f->bs = NULL;
	imap_fetch_ext_free(&f->ext);
	f->slice_len = 0;
}

/* ---- header sections from the cached header blocks ---- */

static bool header_section(const struct imap_fetch_body *b)
{
	return b->part_count == 0 && !b->binary && !b->binary_size &&
	       (b->spec == IMAP_SECTION_HEADER || b->spec == IMAP_SECTION_HEADER_FIELDS ||
		b->spec == IMAP_SECTION_HEADER_FIELDS_NOT);
}

/* Decides headers_only and prepares the field names of the sections. */
static void headers_prepare(struct fetch_ctx *f)
{
	const struct imap_fetch_atts *a = &f->atts;
	if (a->items & (IMAP_FETCH_BODY | IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_TEXT))
		return;
	if (a->body_count == 0 && !(a->items & IMAP_FETCH_RFC822_HEADER))
		return;
	for (unsigned int i = 0; i < a->body_count; i++)
		if (!header_section(&a->bodies[i]))
			return;
	f->headers_only = true;
	f->names = pool_alloc(f->pool, (a->body_count + 1) * sizeof(*f->names));
	for (unsigned int i = 0; i < a->body_count; i++)
		imap_header_names_init(&f->names[i], f->pool, a->bodies[i].fields, a->bodies[i].field_count);
}

static void headers_load(struct imap_session *s, struct fetch_ctx *f, uint32_t start, uint32_t len)
{
	if (!f->headers_only)
		return;
	uint32_t *uids = xmalloc((len + 1) * sizeof(*uids));
	for (uint32_t i = 0; i < len; i++)
		uids[i] = imap_view_uid(s->view, f->seqs[start + i]);
	imap_header_run_load(&f->headers, s->view->mbox, uids, len);
	f->headers_loaded = true;
	free(uids);
}

/* Writes back the blocks that were read from files, frees the run. */
static void headers_unload(struct fetch_ctx *f)
{
	if (f->headers_loaded)
		imap_header_run_done(&f->headers);
	f->headers_loaded = false;
}

/* ---- body sections ---- */

/* Appends the header fields of block that are (or, with not, are not) in
   the list, then the blank line (RFC 3501 6.4.5 HEADER.FIELDS). */
static void filter_headers(struct buf *out, const char *data, size_t len, const struct imap_fetch_body *b)
{
	struct pool *pool = pool_create(4096);
	struct mime_headers *h = mime_headers_parse(pool, data, len, NULL);
	bool not = b->spec == IMAP_SECTION_HEADER_FIELDS_NOT;
	for (unsigned int i = 0; i < h->count; i++) {
		const struct mime_header_field *fld = &h->fields[i];
		bool listed = false;
		for (unsigned int k = 0; k < b->field_count && !listed; k++)
			listed = strlen(b->fields[k]) == fld->name_len &&
				 strncasecmp(b->fields[k], fld->name, fld->name_len) == 0;
		if (listed != not )
			buf_append(out, data + fld->offset, fld->size);
	}
	buf_append_str(out, "\r\n");
	pool_destroy(&pool);
}

static void append_span(struct buf *out, const struct imap_message *msg, const struct mime_span *sp)
{
	buf_append(out, msg->data + sp->offset, sp->size);
}

/* BINARY[] (RFC 3516 4.2): the whole message, its body decoded.  Only a
   single-part message has an encoding to undo; its header then names the
   "binary" the body now is.  A multipart's parts stay as they are: each is
   decoded by BINARY[part]. */
static void binary_whole(struct imap_message *msg, struct mime_message *mm, struct buf *out)
{
	const struct mime_part *root = mm->root;
	if ((root->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) ||
	    (root->encoding != MIME_ENC_BASE64 && root->encoding != MIME_ENC_QP)) {
		buf_append(out, msg->data, msg->size);
		return;
	}
	mime_part_write_header_cte(out, root, "binary");
	mime_part_decode(mm, root, out);
}

/* Builds the content of one section into out.  Returns false when the
   section does not exist (sent as empty, RFC 3501 6.4.5 leaves it open;
   mainstream servers send ""). */
static bool section_content(struct imap_message *msg, const struct imap_fetch_body *b, struct buf *out)
{
	if (b->part_count == 0 && !b->binary) {
		struct mime_message *mm;
		switch (b->spec) {
		case IMAP_SECTION_ALL:
			buf_append(out, msg->data, msg->size);
			return true;
		case IMAP_SECTION_HEADER:
		case IMAP_SECTION_HEADER_FIELDS:
		case IMAP_SECTION_HEADER_FIELDS_NOT:
		case IMAP_SECTION_TEXT:
			mm = imap_message_mime(msg);
			if (b->spec == IMAP_SECTION_TEXT)
				append_span(out, msg, &mm->root->body);
			else if (b->spec == IMAP_SECTION_HEADER)
				append_span(out, msg, &mm->root->header);
			else
				filter_headers(out, msg->data + mm->root->header.offset,
					       mm->root->header.size, b);
			return true;
		case IMAP_SECTION_MIME:
			return false;
		}
	}
	struct mime_message *mm = imap_message_mime(msg);
	char sec[IMAP_SECTION_MAX_PARTS * 11 + 1];
	size_t o = 0;
	for (unsigned int i = 0; i < b->part_count; i++)
		o += (size_t)snprintf(sec + o, sizeof(sec) - o, "%s%u", i ? "." : "", b->parts[i]);
	sec[o] = '\0';
	const struct mime_part *p = b->part_count > 0 ? mime_part_find(mm, sec) : mm->root;
	if (p == NULL)
		return false;
	if (b->binary && b->part_count == 0) {
		binary_whole(msg, mm, out);
		return true;
	}
	if (b->binary) {
		/* a multipart or message/rfc822 has no encoding of its own to
		   undo: its body as it is (RFC 2045 6.4) */
		mime_part_decode(mm, p, out);
		return true;
	}
	const struct mime_part *inner = (p->flags & MIME_PART_MESSAGE) ? p->children : NULL;
	switch (b->spec) {
	case IMAP_SECTION_ALL:
		append_span(out, msg, &p->body);
		return true;
	case IMAP_SECTION_MIME:
		append_span(out, msg, &p->header);
		return true;
	case IMAP_SECTION_TEXT:
		if (inner == NULL)
			return false;
		append_span(out, msg, &inner->body);
		return true;
	case IMAP_SECTION_HEADER:
		if (inner == NULL)
			return false;
		append_span(out, msg, &inner->header);
		return true;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
		if (inner == NULL)
			return false;
		filter_headers(out, msg->data + inner->header.offset, inner->header.size, b);
		return true;
	}
	return false;
}

static void append_literal(struct buf *out, const char *data, size_t len, bool binary)
{
	bool nul = binary && memchr(data, '\0', len) != NULL;
	buf_append_str(out, nul ? "~{" : "{");
	append_uint(out, len);
	buf_append(out, "}\r\n", 3);
	buf_append(out, data, len);
}

/* "BODY[section]<o> {n}\r\n..." for the content of a section. */
static void append_section(struct buf *out, const struct imap_fetch_body *b, const char *data, size_t size)
{
	const char *name = b->binary_size ? "BINARY.SIZE" : b->binary ? "BINARY" : "BODY";
	if (b->binary_size) {
		buf_printf(out, "BINARY.SIZE[%s] %zu", b->section, size);
		return;
	}
	buf_append_str(out, name);
	buf_append_char(out, '[');
	buf_append_str(out, b->section);
	buf_append_char(out, ']');
	size_t off = 0, len = size;
	if (b->partial) {
		buf_append_char(out, '<');
		append_uint(out, b->offset);
		buf_append_char(out, '>');
		off = b->offset < size ? b->offset : size;
		len = size - off < b->length ? size - off : b->length;
	}
	buf_append_char(out, ' ');
	append_literal(out, data != NULL ? data + off : "", len, b->binary);
}

static void append_body(struct buf *out, struct imap_message *msg, const struct imap_fetch_body *b)
{
	struct buf content = BUF_INIT;
	section_content(msg, b, &content);
	append_section(out, b, content.data, content.len);
	buf_free(&content);
}

/* A header section of body k from the message's header block. */
static void append_header_body(struct buf *out, struct fetch_ctx *f, unsigned int k, const char *block,
			       size_t len)
{
	const struct imap_fetch_body *b = &f->atts.bodies[k];
	if (b->spec == IMAP_SECTION_HEADER) {
		append_section(out, b, block, len);
		return;
	}
	buf_reset(&f->scratch);
	imap_header_filter(&f->scratch, block, len, &f->names[k], b->spec == IMAP_SECTION_HEADER_FIELDS_NOT);
	append_section(out, b, f->scratch.data, f->scratch.len);
}

/* When the whole message is the only content a FETCH sends (BODY[],
   BODY.PEEK[], either with <partial>, or RFC822), the file is streamed
   into the output in chunks instead of being read into memory and copied
   through intermediate buffers.  Returns the section, or NULL. */
static const struct imap_fetch_body *whole_message_only(const struct fetch_ctx *f, bool *rfc822_r)
{
	unsigned int others = IMAP_FETCH_BODY | IMAP_FETCH_RFC822_HEADER | IMAP_FETCH_RFC822_TEXT;
	static const struct imap_fetch_body all = {.spec = IMAP_SECTION_ALL};
	*rfc822_r = false;
	if (f->atts.items & others)
		return NULL;
	if (f->atts.body_count == 0 && (f->atts.items & IMAP_FETCH_RFC822)) {
		*rfc822_r = true;
		return &all;
	}
	if (f->atts.body_count != 1 || (f->atts.items & IMAP_FETCH_RFC822))
		return NULL;
	const struct imap_fetch_body *b = &f->atts.bodies[0];
	if (b->spec != IMAP_SECTION_ALL || b->part_count > 0 || b->binary || b->binary_size)
		return NULL;
	return b;
}

/* Reads len bytes of fd at off straight into the output buffer, in chunks;
   a file that ends early (it cannot: Maildir files never change) is padded
   so that the literal keeps its announced size. */
#define FETCH_STREAM_CHUNK (128 * 1024)
#define FETCH_READ_MAX (1024 * 1024 * 1024) /* Linux reads < 2 GiB at a time */
static void stream_file(struct imap_session *s, int fd, uint64_t off, size_t len, uint32_t uid)
{
	while (len > 0) {
		size_t want = len < FETCH_STREAM_CHUNK ? len : FETCH_STREAM_CHUNK;
		ssize_t n = io_output_pread(s->core.io, fd, off, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("imap fetch read failed session=%s uid=%u: %s", s->core.id, uid,
				  n < 0 ? strerror(errno) : "file shorter than its size");
			break;
		}
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	char pad[256];
	memset(pad, ' ', sizeof(pad));
	while (len > 0) {
		size_t n = len < sizeof(pad) ? len : sizeof(pad);
		io_write(s->core.io, pad, n);
		len -= n;
	}
}

/* A message that could not be opened or read is skipped as gone; one
   that failed for now (the store's STORE_ERROR_BUSY: its database away)
   makes the command end with NO [UNAVAILABLE] (RFC 5530 3) instead. */
static void read_failed(struct imap_session *s, struct fetch_ctx *f, const char *what, uint32_t uid,
			char *error)
{
	if (error != NULL) {
		log_error("imap fetch %s failed session=%s uid=%u: %s", what, s->core.id, uid, error);
		if (strncmp(error, STORE_ERROR_BUSY, strlen(STORE_ERROR_BUSY)) == 0)
			f->unavailable = true;
	}
	free(error);
}

/* A file with bare LF, whose size on disk is not the size sent: its
   first off + len bytes (no more are needed, each becomes one or two) are
   read into the back half of room reserved in the output and converted
   into the front half (imap_crlf_convert), of which the window <off.len>
   is kept: no buffer of ours, no copy but the conversion.  A file that
   ends early (changed since it was indexed) is padded as in
   stream_file(). */
static void stream_converted(struct imap_session *s, int fd, uint64_t off, size_t len, uint32_t uid)
{
	size_t need = (size_t)off + len, got = 0;
	if (len == 0)
		return;
	char *room = io_output_reserve(s->core.io, 2 * need);
	while (got < need) {
		/* a read of a regular file returns less only at its end */
		size_t want = need - got < FETCH_READ_MAX ? need - got : FETCH_READ_MAX;
		ssize_t n = pread(fd, room + need + got, want, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			log_error("imap fetch read failed session=%s uid=%u: %s", s->core.id, uid,
				  strerror(errno));
		if (n > 0)
			got += (size_t)n;
		if (n < (ssize_t)want)
			break;
	}
	size_t conv = imap_crlf_convert(room, need, got);
	size_t o = off < conv ? (size_t)off : conv, keep = conv - o < len ? conv - o : len;
	memmove(room, room + o, keep);
	memset(room + keep, ' ', len - keep);
	io_output_commit(s->core.io, len);
}

/* Opens the file of a message to stream it. */
static int stream_open(struct imap_session *s, struct fetch_ctx *f, const struct imap_msg *m, int *fd_r)
{
	char *error = NULL;
	int r = imap_message_open(s->view->mbox, m->uid, fd_r, &error);
	if (r <= 0) {
		read_failed(s, f, "open", m->uid, error);
		return r < 0 ? -1 : 0;
	}
	return 1;
}

static bool needs_message(const struct fetch_ctx *f)
{
	return f->atts.body_count > 0 ||
	       (f->atts.items &
		(IMAP_FETCH_BODY | IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_HEADER | IMAP_FETCH_RFC822_TEXT));
}

/* Appends "* seq FETCH (...)"; returns false when the message is gone. */
static bool fetch_one(struct imap_session *s, struct fetch_ctx *f, uint32_t idx, struct buf *out)
{
	struct imap_view *v = s->view;
	uint32_t seq = f->seqs[idx];
	uint32_t uid = imap_view_uid(v, seq);
	const struct imap_msg *m = fetch_find(f, v->mbox, uid);
	if (m == NULL)
		return false; /* expunged by another session, not yet reported */
	struct imap_message msg = {0};
	bool rfc822 = false;
	const struct imap_fetch_body *whole = whole_message_only(f, &rfc822);
	int fd = -1;
	if (whole != NULL && stream_open(s, f, m, &fd) <= 0)
		return false;
	/* the header block, when it is all the sections need (a block of
	   IMAP_HEADER_MAX may be cut short: the message is read then) */
	const char *block = NULL;
	size_t block_len = 0;
	if (f->headers_only) {
		if (!imap_header_run_get(&f->headers, idx - f->slice_start, &block, &block_len))
			return false;
		if (block_len >= IMAP_HEADER_MAX)
			block = NULL;
	}
	if (whole == NULL && block == NULL && needs_message(f)) {
		char *error = NULL;
		if (imap_message_read(v->mbox, uid, &msg, &error) <= 0) {
			read_failed(s, f, "read", uid, error);
			return false;
		}
	}
	unsigned int items = f->atts.items;
	uint32_t si = idx - f->slice_start;
	if (((items & IMAP_FETCH_ENVELOPE) && f->env[si] == NULL) ||
	    ((items & IMAP_FETCH_BODYSTRUCTURE) && f->bs[si] == NULL)) {
		/* neither cached nor readable: its file went with an expunge
		   by another session, which this one reports later; the
		   grammar has no NIL for them (RFC 3501 7.4.2) */
		if (fd >= 0)
			close(fd);
		imap_message_free(&msg);
		return false;
	}
	bool first = true;
	buf_append_str(out, "* ");
	append_uint(out, seq);
	buf_append_str(out, " FETCH (");
	if (items & IMAP_FETCH_UID || f->uid) {
		append_item(out, &first, "UID");
		append_uint(out, uid);
	}
	if (items & IMAP_FETCH_FLAGS) {
		append_item(out, &first, "FLAGS");
		imap_append_flags(out, m->flags, m->keywords, imap_view_recent(v, uid));
	}
	if (items & IMAP_FETCH_INTERNALDATE) {
		append_item(out, &first, "INTERNALDATE");
		imap_append_internaldate(out, m->internaldate);
	}
	if (items & IMAP_FETCH_RFC822_SIZE) {
		append_item(out, &first, "RFC822.SIZE");
		append_uint(out, m->size);
	}
	if (items & IMAP_FETCH_ENVELOPE) {
		append_item(out, &first, "ENVELOPE");
		buf_append_str(out, f->env[si] != NULL ? f->env[si] : "NIL");
	}
	if (items & IMAP_FETCH_BODYSTRUCTURE) {
		append_item(out, &first, "BODYSTRUCTURE");
		buf_append_str(out, f->bs[si] != NULL ? f->bs[si] : "NIL");
	}
	const char *sep = first ? "" : " ";
	if (items & IMAP_FETCH_BODY) {
		struct mime_message *mm = imap_message_mime(&msg);
		buf_printf(out, "%sBODY ", sep);
		mime_imap_bodystructure(out, mm, mm->root, 0, 0);
		sep = " ";
	}
	if (items & IMAP_FETCH_MODSEQ) {
		buf_printf(out, "%sMODSEQ (%llu)", sep, (unsigned long long)m->modseq);
		sep = " ";
	}
	imap_fetch_ext_append(out, f->ext, items, si, &sep);
	if (whole != NULL) {
		uint64_t off = 0, len = m->size;
		buf_append_str(out, sep);
		buf_append_str(out, rfc822 ? "RFC822" : "BODY[");
		if (!rfc822) {
			buf_append_str(out, whole->section);
			buf_append_char(out, ']');
		}
		if (whole->partial) {
			buf_append_char(out, '<');
			append_uint(out, whole->offset);
			buf_append_char(out, '>');
			off = whole->offset < m->size ? whole->offset : m->size;
			len = m->size - off < whole->length ? m->size - off : whole->length;
		}
		buf_append_str(out, " {");
		append_uint(out, len);
		buf_append_str(out, "}\r\n");
		imap_write_buf(s, out);
		if (m->bare_lf)
			stream_converted(s, fd, off, (size_t)len, uid);
		else
			stream_file(s, fd, off, (size_t)len, uid);
		close(fd);
		buf_append_str(out, ")\r\n");
		return true;
	}
	if (items & (IMAP_FETCH_RFC822 | IMAP_FETCH_RFC822_HEADER | IMAP_FETCH_RFC822_TEXT)) {
		static const struct {
			unsigned int item;
			const char *name;
			enum imap_section_spec spec;
		} r822[] = {{IMAP_FETCH_RFC822, "RFC822", IMAP_SECTION_ALL},
			    {IMAP_FETCH_RFC822_HEADER, "RFC822.HEADER", IMAP_SECTION_HEADER},
			    {IMAP_FETCH_RFC822_TEXT, "RFC822.TEXT", IMAP_SECTION_TEXT}};
		for (size_t k = 0; k < N_ELEMENTS(r822); k++) {
			if (!(items & r822[k].item))
				continue;
			struct imap_fetch_body b = {.spec = r822[k].spec};
			struct buf content = BUF_INIT;
			if (block != NULL)
				buf_append(&content, block, block_len); /* RFC822.HEADER */
			else
				section_content(&msg, &b, &content);
			buf_printf(out, "%s%s ", sep, r822[k].name);
			append_literal(out, content.data != NULL ? content.data : "", content.len, false);
			buf_free(&content);
			sep = " ";
		}
	}
	for (unsigned int b = 0; b < f->atts.body_count; b++) {
		buf_append_str(out, sep);
		if (block != NULL)
			append_header_body(out, f, b, block, block_len);
		else
			append_body(out, &msg, &f->atts.bodies[b]);
		sep = " ";
	}
	buf_append_str(out, ")\r\n");
	imap_message_free(&msg);
	return true;
}

/* Writes FETCH responses until the output is full; 1 when all are done. */
static int fetch_continue(struct imap_session *s)
{
	struct fetch_ctx *f = s->cont_ctx;
	bool f_uid = f->uid;
	struct buf out = BUF_INIT;
	if (f->atts.items & IMAP_FETCH_FLAGS)
		imap_view_send_flags(s, false);
	/* checked before every message: a session never holds much more than
	   IMAP_OUTPUT_HIGH of output, whatever the message sizes */
	while (f->next < f->count && io_output_length(s->core.io) < IMAP_OUTPUT_HIGH) {
		if (f->next >= f->slice_start + f->slice_len) {
			unload_slice(f);
			headers_unload(f);
			uint32_t len = f->count - f->next < FETCH_SLICE ? f->count - f->next : FETCH_SLICE;
			load_slice(s, f, f->next, len);
			headers_load(s, f, f->next, len);
		}
		fetch_one(s, f, f->next, &out);
		f->next++;
		if (out.len >= 65536)
			imap_write_buf(s, &out);
	}
	imap_write_buf(s, &out);
	buf_free(&out);
	if (f->next < f->count)
		return 0;
	s->cont_ctx = NULL;
	bool unavailable = f->unavailable;
	fetch_ctx_free(f);
	if (unavailable)
		imap_tagged(s, "NO", "[UNAVAILABLE] %sFETCH: messages cannot be read now, try again later",
			    f_uid ? "UID " : "");
	else
		imap_tagged(s, "OK", "%sFETCH completed", f_uid ? "UID " : "");
	return 1;
}

static void fetch_start(struct imap_session *s, struct fetch_ctx *f)
{
	s->cont_ctx = f;
	if (fetch_continue(s) == 0) {
		s->cont = fetch_continue;
		io_want_drained(s->core.io, IMAP_OUTPUT_HIGH / 4);
	}
}

/* A non-PEEK fetch sets \Seen on the messages it reads (RFC 3501 6.4.5):
   a job writes the flags (the loop never waits for the index's write
   lock), and the FETCH goes on when it is done, with their new FLAGS. */
struct seen_job {
	struct imap_job job;
	struct fetch_ctx *f;
	char *mailbox;
	uint32_t *uids;
	size_t count;
};

static void seen_work(struct imap_job *job)
{
	struct seen_job *sj = (struct seen_job *)job;
	struct store_mailbox *m;
	if (imap_job_selected_mailbox(job, sj->mailbox, &m) > 0)
		store_msg_set_flags(m, sj->uids, sj->count, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, NULL,
				    NULL, &job->error);
}

static void seen_done(struct imap_job *job)
{
	struct seen_job *sj = (struct seen_job *)job;
	struct imap_session *s = job->s;
	struct fetch_ctx *f = sj->f;
	if (s->core.dead) {
		fetch_ctx_free(f);
	} else {
		/* the messages are sent all the same (a busy index: see the log) */
		if (job->error != NULL) {
			log_error("imap set-seen failed session=%s: %s", s->core.id, job->error);
		} else {
			/* what others changed meanwhile; the new flags of these
			   messages go out with this FETCH */
			imap_view_update_skip(s, false, f->seqs, f->count);
			f->atts.items |= IMAP_FETCH_FLAGS;
		}
		fetch_start(s, f);
	}
	free(job->error);
	free(sj->mailbox);
	free(sj->uids);
	free(sj);
}

/* Starts the job of the messages not \Seen yet; false when there are none. */
static bool mark_seen(struct imap_session *s, struct fetch_ctx *f)
{
	struct imap_view *v = s->view;
	uint32_t *uids = xmalloc((f->count + 1) * sizeof(*uids));
	size_t n = 0;
	for (uint32_t i = 0; i < f->count; i++) {
		uint32_t uid = imap_view_uid(v, f->seqs[i]);
		const struct imap_msg *m = imap_mbox_find(v->mbox, uid);
		if (m != NULL && !(m->flags & STORE_FLAG_SEEN))
			uids[n++] = uid;
	}
	if (n == 0) {
		free(uids);
		return false;
	}
	struct seen_job *sj = xcalloc(1, sizeof(*sj));
	sj->f = f;
	sj->mailbox = xstrdup(v->mbox->name);
	sj->uids = uids;
	sj->count = n;
	imap_job_start(s->user, s, &sj->job, seen_work, seen_done);
	return true;
}

static void report_vanished(struct imap_session *s, const struct imap_seqset *set, uint64_t modseq)
{
	uint32_t *gone = NULL;
	size_t n = 0, k = 0;
	char *error = NULL;
	if (store_mailbox_expunged_since(s->view->mbox->smbox, modseq, &gone, &n, &error) < 0) {
		log_error("imap vanished failed session=%s: %s", s->core.id, error);
		free(error);
		return;
	}
	uint32_t max = s->view->count > 0 ? imap_view_uid(s->view, s->view->count) : 0;
	for (size_t i = 0; i < n; i++)
		if (imap_seqset_contains(set, gone[i], max > gone[i] ? max : gone[i]))
			gone[k++] = gone[i];
	imap_send_vanished_earlier(s, gone, k);
	free(gone);
}

int imap_cmd_fetch(struct imap_cmd_ctx *c, const char **error_r)
{
	struct imap_session *s = c->s;
	struct imap_seqset *set;
	if (c->count < 2 || c->args[0].type != IMAP_ARG_ATOM) {
		*error_r = "FETCH needs a sequence set and attributes";
		return -1;
	}
	struct fetch_ctx *f = xcalloc(1, sizeof(*f));
	f->pool = c->pool;
	c->pool = NULL;
	f->uid = c->uid;
	if (imap_seqset_parse(f->pool, c->args[0].str, &set, error_r) < 0 ||
	    imap_fetch_parse(f->pool, c->args + 1, c->count - 1, &f->atts, error_r) < 0) {
		fetch_ctx_free(f);
		return -1;
	}
	if (f->atts.vanished && (!c->uid || !(s->enabled & IMAP_ENABLED_QRESYNC))) {
		fetch_ctx_free(f);
		*error_r = "VANISHED needs UID FETCH and QRESYNC";
		return -1;
	}
	int n = imap_view_resolve(s, set, c->uid, &f->seqs, error_r);
	if (n < 0) {
		fetch_ctx_free(f);
		return -1;
	}
	f->count = (uint32_t)n;
	if (f->atts.has_changedsince) {
		imap_enable_condstore(s);
		uint32_t k = 0;
		for (uint32_t i = 0; i < f->count; i++) {
			const struct imap_msg *m =
			    imap_mbox_find(s->view->mbox, imap_view_uid(s->view, f->seqs[i]));
			if (m != NULL && m->modseq > f->atts.changedsince)
				f->seqs[k++] = f->seqs[i];
		}
		f->count = k;
		if (f->atts.vanished)
			report_vanished(s, set, f->atts.changedsince);
	}
	if (f->atts.items & IMAP_FETCH_MODSEQ)
		imap_enable_condstore(s);
	headers_prepare(f);
	if (imap_fetch_sets_seen(&f->atts) && !s->view->readonly && mark_seen(s, f))
		return 0;
	fetch_start(s, f);
	return 0;
}
