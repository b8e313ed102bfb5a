#ifndef DELIVERY_DELIVERY_DKIM_H
#define DELIVERY_DELIVERY_DKIM_H
/* The DKIM signer of the delivery path (delivery.h); the verifier of
   inbound mail is delivery_verify.h.

   The signer (RFC 6376 section 5; RFC 8463) hashes the body as it passes
   and puts one DKIM-Signature per active key of the From: domain
   (trust/dkim_keys.h) above the message.  A message without a From: domain
   that has a key passes unsigned.  It holds the message (delivery_hold.h:
   the header in memory, the body in memory up to DELIVERY_HOLD_MEMORY and
   then in an unnamed file) and emits what it adds above it in finish(), on
   the commit's thread, never on an event loop.  A message whose header
   block is larger than the MIME limit (mime/header.h) is not held: it
   gives up at once and lets it pass unsigned. */
#include "delivery/delivery.h"

struct dkim_keyring;

/* A new signer; it keeps a reference to kr until it is freed.  *signed_r (may be NULL) is
   set to the number of signatures added once the message is committed. */
struct delivery_filter *delivery_dkim_signer(struct dkim_keyring *kr, int *signed_r);

/* Mail made here (bounces, `sendmail`) is signed like our users' mail:
   adds a signer with the keys of DATA_DIR/dkim when there are any (RFC
   6376 5; a domain without a key: unsigned).  -1 with *error_r when some
   keys cannot be read (those that could still sign). */
int delivery_sign_local(struct delivery *d, const char *data_dir, char **error_r);
#endif
