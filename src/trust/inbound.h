#ifndef TRUST_INBOUND_H
#define TRUST_INBOUND_H
/* The checks of one message arriving from another server, and the
   verdict: SPF of the MAIL FROM (or HELO) identity (spf.h), every DKIM
   signature (dkim_check.h), the ARC chain (arc.h), and DMARC (dmarc.h)
   over the SPF and DKIM results and the From: domain.  All DNS goes
   through the asynchronous resolver on the session's loop, each message
   with lookups of its own; the crypto and the verdict run later on the
   commit's thread.

     ti = trust_inbound_start(&settings);  at MAIL FROM: SPF starts
     trust_inbound_header(ti, header, len);  the header block, once: the
	 DKIM key, ARC key and DMARC record lookups start
     trust_inbound_body(ti, data, len)...    the body as it streams
     trust_inbound_wait(ti, timeout_ms, done, ctx);  end of DATA
     trust_inbound_finish(ti);              (commit thread) crypto, verdict
     trust_inbound_action(ti, ...), trust_inbound_authres(ti, out, id)
     trust_inbound_free(&ti);

   Policy (RFC 7489 6.6.4 leaves it to the receiver; these are the
   settings): a DMARC failure under p=reject is refused (550 5.7.1), under
   p=quarantine (or p=reject with refusing off) filed into Junk; an SPF
   fail of a domain without a DMARC policy may be refused (550 5.7.23, RFC
   7372).  A DMARC failure is forgiven when the message carries an ARC
   chain that validates (arc=pass) sealed last by a domain the settings
   trust (RFC 8617 7.2: a mailing list the site knows), since a list
   changes what DKIM signed and sends from its own address.

   Not thread-safe: the loop's until trust_inbound_wait() has called done,
   then the commit thread's. */
#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>

struct dkim_key_cache;
struct dns_resolver;
struct event_base;
struct trust_inbound;

struct trust_inbound_settings {
	struct event_base *base;
	struct dns_resolver *resolver;    /* NULL: every lookup is a temperror */
	struct dkim_key_cache *key_cache; /* may be NULL */
	const char *client_ip;            /* textual IPv4 or IPv6 */
	const char *helo;                 /* may be NULL */
	const char *mail_from;            /* "" for the null sender */
	const char *receiver;             /* our host name (SPF %{r}) */
	/* the checks that run */
	bool spf, dkim, dmarc, arc;
	/* what their results do */
	bool dmarc_reject, dmarc_quarantine, spf_reject;
	/* domains (separated by commas or spaces) whose ARC seals are
	   trusted to forgive a DMARC failure; NULL or "": none */
	const char *arc_trusted;
};

/* Copies what it needs of set; SPF starts at once (bounded by its own 20 s,
   RFC 7208 4.6.4, and by the wait). */
struct trust_inbound *trust_inbound_start(const struct trust_inbound_settings *set);
/* Cancels the lookups still running and frees *ti. */
void trust_inbound_free(struct trust_inbound **ti);

/* The header block (len bytes, with or without its empty line), once; it
   must stay unchanged until trust_inbound_free(). */
void trust_inbound_header(struct trust_inbound *ti, const char *header, size_t len);
/* The header block is larger than can be held: nothing of it is checked
   (DKIM permerror; the verdict is quarantine when DMARC runs, since a
   forged From: could hide behind it). */
void trust_inbound_header_too_large(struct trust_inbound *ti);
/* The next piece of the body. */
void trust_inbound_body(struct trust_inbound *ti, const void *data, size_t len);

/* Calls done(ctx) from the loop once every lookup is answered, or after
   timeout_ms (the lookups still running are cancelled and count as
   temperror); at once when nothing is running.  Once. */
void trust_inbound_wait(struct trust_inbound *ti, int timeout_ms, void (*done)(void *ctx), void *ctx);

/* Verifies the signatures and the chain and reaches the verdict (after
   the wait; on any thread).  Once. */
void trust_inbound_finish(struct trust_inbound *ti);

enum trust_action { TRUST_ACCEPT, TRUST_QUARANTINE, TRUST_REJECT };
/* The verdict (after finish).  For TRUST_REJECT, *code_r, *status_r and
   *text_r (static or ti's; may be NULL) give the reply: 550, "5.7.1" or
   "5.7.23", and why. */
enum trust_action trust_inbound_action(const struct trust_inbound *ti, int *code_r, const char **status_r,
				       const char **text_r);
/* Appends the one Authentication-Results field (RFC 8601) of the checks
   that ran, for authserv_id: spf, then dkim (one per signature), dmarc,
   arc. */
void trust_inbound_authres(const struct trust_inbound *ti, struct buf *out, const char *authserv_id);
/* One log line of the results and the verdict ("trust verdict qid=..."),
   and one per DKIM signature. */
void trust_inbound_log(const struct trust_inbound *ti, const char *qid);
#endif
