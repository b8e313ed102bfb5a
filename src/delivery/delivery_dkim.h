#ifndef DELIVERY_DELIVERY_DKIM_H
#define DELIVERY_DELIVERY_DKIM_H
/* The DKIM filters of the delivery path (delivery.h).  Both hold the
   message (delivery_hold.h: the header in memory, the body in memory up to
   DELIVERY_HOLD_MEMORY and then in an unnamed file) and emit what they add
   above it in finish(), on the commit's thread, never on an event loop.  A
   message whose header block is larger than the MIME limit
   (mime/header.h) is not held: they give up at once and let it pass.

   The signer (RFC 6376 section 5; RFC 8463) hashes the body as it passes
   and puts one DKIM-Signature per active key of the From: domain
   (trust/dkim_keys.h) above the message.  A message without a From: domain
   that has a key passes unsigned.

   The verifier (RFC 6376 section 6) checks every DKIM-Signature of the
   message (trust/dkim_check.h) and puts one Authentication-Results field
   (RFC 8601) above it, under the server's authserv-id; it takes out every
   Authentication-Results field with that authserv-id that came with the
   message (RFC 8601 section 5: only we write those).  The key lookups are
   the caller's: when the header block is complete (in write(), on the
   loop) it is told, and looks up the keys while the body still streams. */
#include "delivery/delivery.h"

struct dkim_check;
struct dkim_keyring;

/* A new signer; it keeps a reference to kr until it is freed.  *signed_r (may be NULL) is
   set to the number of signatures added once the message is committed. */
struct delivery_filter *delivery_dkim_signer(struct dkim_keyring *kr, int *signed_r);

/* A new verifier writing authserv_id (copied) into its field.
   header_done(ctx, check) is called once the header block is complete,
   from the filter's write() (or delivery_dkim_verifier_eof()), with the
   check whose keys (dkim_check_key_count()) the caller then looks up and
   hands to dkim_check_key() before the commit; keys not given by then
   count as temperror.  The check belongs to the filter.  header_done may
   be NULL, and is not called for a header block too large to check (the
   field then says permerror). */
struct delivery_filter *delivery_dkim_verifier(const char *authserv_id,
					       void (*header_done)(void *ctx, struct dkim_check *check),
					       void *ctx);
/* The message is complete (before the commit, on the caller's thread): a
   message that is all header (no empty line) gets its header_done now. */
void delivery_dkim_verifier_eof(struct delivery_filter *f);
#endif
