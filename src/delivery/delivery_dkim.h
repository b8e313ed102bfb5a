#ifndef DELIVERY_DELIVERY_DKIM_H
#define DELIVERY_DELIVERY_DKIM_H
/* The DKIM signer (RFC 6376 section 5; RFC 8463): a delivery filter
   (delivery.h) that holds the message, hashes its body as it passes, and
   at the end puts one DKIM-Signature per active key of the From: domain
   (trust/dkim_keys.h) above it, then lets the message through.  Signing
   runs in finish(), on the commit's thread, never on an event loop.

   Memory is bounded: the first DELIVERY_DKIM_HOLD bytes are held in memory,
   the rest in an unnamed file (O_TMPFILE) beside the message's temporary
   file.  A message without a From: domain that has a key, or whose header
   block is larger than the MIME limits, passes unsigned. */
#include "delivery/delivery.h"

#define DELIVERY_DKIM_HOLD (256 * 1024)

struct dkim_keyring;

/* A new signer; it keeps a reference to kr until it is freed.  *signed_r (may be NULL) is
   set to the number of signatures added once the message is committed. */
struct delivery_filter *delivery_dkim_signer(struct dkim_keyring *kr, int *signed_r);
#endif
