#ifndef DELIVERY_DELIVERY_VERIFY_H
#define DELIVERY_DELIVERY_VERIFY_H
/* The verifier of mail from other servers, a filter of the delivery path
   (delivery.h): it feeds the message to the checks of trust/inbound.h
   (SPF, DKIM, DMARC, ARC) and puts their one Authentication-Results field
   (RFC 8601) above it, under the server's authserv-id, taking out every
   Authentication-Results field with that authserv-id that came with the
   message (RFC 8601 section 5: only we write those).

   It holds the message (delivery_hold.h: the header in memory, the body in
   memory up to DELIVERY_HOLD_MEMORY and then in an unnamed file) and emits
   it in finish(), on the commit's thread, after the verdict:
   trust_inbound_finish() runs there (the crypto stays off the loop).  A
   refused message fails the commit (nothing is delivered; the caller reads
   the reply from trust_inbound_action()); a quarantined one goes into the
   local recipients' Junk folder (delivery_set_folder()).

   The lookups are the checks' own, started on the loop as soon as the
   header block is complete (in write()), while the body still streams;
   the caller waits for them (trust_inbound_wait()) before the commit.  A
   header block larger than the MIME limit (mime/header.h) is not held:
   the field says dkim=permerror at once and the message passes. */
#include "delivery/delivery.h"

struct trust_inbound;

/* A new verifier feeding ti (the caller's; it must outlive the filter's
   finish) and writing authserv_id (copied) into its field. */
struct delivery_filter *delivery_verifier(struct trust_inbound *ti, const char *authserv_id);
/* The message is complete (before the commit, on the loop): a message that
   is all header (no empty line) is handed to the checks now. */
void delivery_verifier_eof(struct delivery_filter *f);
#endif
