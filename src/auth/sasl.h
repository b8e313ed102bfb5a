#ifndef AUTH_SASL_H
#define AUTH_SASL_H
/* Server-side SASL (RFC 4422) for SMTP AUTH (RFC 4954), POP3 AUTH
   (RFC 5034) and IMAP AUTHENTICATE: the PLAIN (RFC 4616) and LOGIN
   mechanisms as a small state machine.  The protocol engine feeds each
   client line (base64, without CRLF) to sasl_server_step() and sends back
   the challenge it returns, until the exchange is done; it then verifies the
   credentials (userdb_authenticate on a jobs thread).  This module never
   touches the user database.

   Client-side helpers build the responses for the SMTP client. */
#include <stddef.h>

enum sasl_mech { SASL_MECH_PLAIN, SASL_MECH_LOGIN };

/* Longest decoded client response we accept (authzid+authcid+password). */
#define SASL_MAX_RESPONSE 2048
/* Longest user name (authcid, authzid) we accept: RFC 4616 section 2
   requires 255 octets. */
#define SASL_MAX_USER 255

struct sasl_server;

/* Parses a mechanism name (case-insensitive): 0 and *mech_r, or -1 when
   unsupported. */
int sasl_mech_parse(const char *name, enum sasl_mech *mech_r);
const char *sasl_mech_name(enum sasl_mech mech);

struct sasl_server *sasl_server_new(enum sasl_mech mech);
void sasl_server_free(struct sasl_server **sasl);

/* Feeds one client line.  For the first call, client_line is the initial
   response from the AUTH command ("=" for an empty one, RFC 4954 section
   4) or NULL when the command carried none.  Later calls get each line the
   client sent after a challenge; "*" cancels.
   Returns 1 done (sasl_server_user()/sasl_server_password() are set),
   0 another step is needed (*challenge_r: the base64 challenge to send after
   "334 " / "+ ", caller frees; NULL otherwise), -1 malformed or
   cancelled (*error_r: static text, e.g. "cancelled", "invalid base64").
   After 1 or -1 the exchange is over; further calls return -1. */
int sasl_server_step(struct sasl_server *sasl, const char *client_line, size_t len, char **challenge_r,
		     const char **error_r);
/* The authentication identity (authcid) and password after step returned 1;
   NULL before. */
const char *sasl_server_user(const struct sasl_server *sasl);
const char *sasl_server_password(const struct sasl_server *sasl);

/* Client side.  Returns the base64 PLAIN initial response for user and
   password (empty authzid), caller frees. */
char *sasl_client_plain(const char *user, const char *password);
/* Base64 of text (the LOGIN answers to "Username:" and "Password:"),
   caller frees. */
char *sasl_client_login_response(const char *text);
#endif
