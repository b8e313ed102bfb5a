#include "smtp/smtp_data.h"

#include <string.h>

enum {
	ST_LINE_START, /* at the start of a line (also the start of the data) */
	ST_TEXT,       /* inside a line */
	ST_CR,         /* a CR inside or ending a line */
	ST_DOT,        /* a '.' at the start of a line */
	ST_DOT_CR,     /* ".<CR>" at the start of a line */
};

void smtp_data_scanner_init(struct smtp_data_scanner *s, bool dot_mode, bool normalize, uint64_t max_size)
{
	memset(s, 0, sizeof(*s));
	s->state = ST_LINE_START;
	s->dot_mode = dot_mode;
	s->normalize = normalize;
	s->max_size = max_size;
}

bool smtp_data_too_big(const struct smtp_data_scanner *s)
{
	return s->size > s->max_size;
}

static void emit(struct smtp_data_scanner *s, struct buf *out, const char *p, size_t n)
{
	if (s->size + n <= s->max_size)
		buf_append(out, p, n);
	s->size += n;
}

/* A bare line end: recorded; in normalize mode it becomes CRLF. */
static void bare_end(struct smtp_data_scanner *s, struct buf *out, bool lf)
{
	if (lf)
		s->bare_lf = true;
	else
		s->bare_cr = true;
	emit(s, out, s->normalize ? "\r\n" : lf ? "\n" : "\r", s->normalize ? 2 : 1);
	s->after_bare = true;
	s->state = ST_LINE_START;
}

size_t smtp_data_scan(struct smtp_data_scanner *s, const char *in, size_t len, struct buf *out, bool *done_r)
{
	size_t i = 0;
	*done_r = false;
	while (i < len) {
		char c = in[i];
		switch (s->state) {
		case ST_TEXT: {
			/* Fast path: copy the run of ordinary bytes at once. */
			size_t j = i;
			while (j < len && in[j] != '\r' && in[j] != '\n')
				j++;
			if (j > i)
				emit(s, out, in + i, j - i);
			i = j;
			if (i == len)
				break;
			if (in[i] == '\r')
				s->state = ST_CR;
			else
				bare_end(s, out, true);
			i++;
			break;
		}
		case ST_LINE_START:
			if (c == '.' && s->dot_mode) {
				s->state = ST_DOT;
				i++;
			} else {
				s->state = ST_TEXT;
			}
			break;
		case ST_CR:
			if (c == '\n') {
				emit(s, out, "\r\n", 2);
				s->after_bare = false;
				s->state = ST_LINE_START;
				i++;
			} else {
				bare_end(s, out, false); /* reprocess c at line start */
			}
			break;
		case ST_DOT:
			if (c == '\r') {
				s->state = ST_DOT_CR;
				i++;
			} else if (c == '\n') {
				/* ".<LF>": a dot line ended by a bare LF, kept as text. */
				emit(s, out, ".", 1);
				bare_end(s, out, true);
				i++;
			} else {
				/* Dot-stuffing (4.5.2): the leading dot is dropped. */
				s->state = ST_TEXT;
			}
			break;
		case ST_DOT_CR:
			if (c == '\n' && !s->after_bare) {
				s->state = ST_LINE_START;
				*done_r = true;
				return i + 1;
			}
			emit(s, out, ".", 1);
			if (c == '\n') {
				/* "<LF>.<CRLF>" or "<CR>.<CRLF>": not the end.  The
				   next line follows a real CRLF, so it may be. */
				emit(s, out, "\r\n", 2);
				s->after_bare = false;
				s->state = ST_LINE_START;
				i++;
			} else {
				bare_end(s, out, false);
			}
			break;
		}
	}
	return i;
}

void smtp_data_scan_finish(struct smtp_data_scanner *s, struct buf *out)
{
	if (s->state == ST_CR)
		bare_end(s, out, false);
	else if (s->state == ST_DOT)
		emit(s, out, ".", 1);
	else if (s->state == ST_DOT_CR) {
		emit(s, out, ".", 1);
		bare_end(s, out, false);
	}
	s->state = ST_LINE_START;
}
