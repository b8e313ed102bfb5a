#ifndef DELIVERY_DELIVERY_HOLD_H
#define DELIVERY_DELIVERY_HOLD_H
/* What a filter that must see the whole message before it emits anything
   (the DKIM signer and verifier, delivery_dkim.h) holds: the header block
   in memory, the body in memory up to DELIVERY_HOLD_MEMORY and the rest in
   an unnamed file (O_TMPFILE) beside the message's temporary file, so that
   a large message costs bounded memory.

   The filter hands every piece it receives to delivery_hold_header() while
   the header lasts, then the body to delivery_hold_body(); at the end it
   emits what it adds, the header (as it likes) and delivery_hold_release()
   sends the body on. */
#include "delivery/delivery.h"
#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>

#define DELIVERY_HOLD_MEMORY (256 * 1024)

enum delivery_hold_state {
	DELIVERY_HOLD_HEADER,   /* the header block goes on */
	DELIVERY_HOLD_BODY,     /* its empty line has passed */
	DELIVERY_HOLD_OVERSIZE, /* it grew past the MIME limit (mime/header.h):
				   the filter gives up and lets the rest pass */
};

struct delivery_hold {
	enum delivery_hold_state state;
	/* the header block, up to and including its empty line (or the whole
	   message when it has none) */
	struct buf header;
	bool line_start, cr_at_start;
	struct buf body;
	int spill; /* -1 until the body outgrows DELIVERY_HOLD_MEMORY */
};

void delivery_hold_init(struct delivery_hold *h);
/* Takes the header part of data (all of it while the header lasts) into
   h->header and returns how many bytes that was: the rest is body.  The
   header ends with its first empty line (or the message starts with one:
   no header at all); the state says what came of it. */
size_t delivery_hold_header(struct delivery_hold *h, const void *data, size_t len);
/* Holds len bytes of body.  -1 with *error_r (caller frees) when the
   scratch file (in f's delivery directory) cannot be made or written. */
int delivery_hold_body(struct delivery_hold *h, struct delivery_filter *f, const void *data, size_t len,
		       char **error_r);
/* Sends the held body on through f (delivery_filter_output). */
int delivery_hold_release(struct delivery_hold *h, struct delivery_filter *f, char **error_r);
void delivery_hold_free(struct delivery_hold *h);
#endif
