#ifndef SMTP_SMTP_DATA_H
#define SMTP_SMTP_DATA_H
/* The DATA scanner (RFC 5321 section 4.1.1.4 and 4.5.2): incremental, any
   chunk size.  It removes dot-stuffing and finds the end of the data, which
   is only <CRLF>.<CRLF>: a dot line reached through a bare LF or bare CR
   (<LF>.<LF>, <CR>.<CR>, <LF>.<CRLF>, <CR>.<CRLF>) never ends the data, so
   no message can be smuggled past a server that parses differently.
   Bare LF and bare CR are recorded; in normalize mode each becomes CRLF.
   The same scanner without dot handling checks BDAT chunks (RFC 3030). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

struct smtp_data_scanner {
	int state;
	bool dot_mode;   /* DATA: unstuff and look for the end; BDAT: neither */
	bool normalize;  /* bare LF / CR become CRLF */
	bool after_bare; /* the current line began after a bare line end */
	bool bare_lf, bare_cr;
	uint64_t max_size; /* content beyond this is counted but not kept */
	uint64_t size;     /* content octets produced (kept or not) */
};

void smtp_data_scanner_init(struct smtp_data_scanner *s, bool dot_mode, bool normalize, uint64_t max_size);
/* Scans len bytes, appending content to out (only while size <= max_size).
   Returns the number of bytes consumed; that is less than len only when the
   end of data was found, and then *done_r is true and the terminator is
   consumed. */
size_t smtp_data_scan(struct smtp_data_scanner *s, const char *in, size_t len, struct buf *out, bool *done_r);
/* Ends a BDAT message: a trailing bare CR is recorded (or normalized). */
void smtp_data_scan_finish(struct smtp_data_scanner *s, struct buf *out);
bool smtp_data_too_big(const struct smtp_data_scanner *s);
#endif
