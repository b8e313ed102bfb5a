#ifndef IMAP_IMAP_H
#define IMAP_IMAP_H
/* The IMAP server (RFC 3501, RFC 9051 and extensions). */
#include "session/session.h"

/* Serves an accepted connection (IMAP, or IMAPS with implicit TLS). */
void imap_session_start(struct service_ctx *ctx, const struct conn_info *conn);
#endif
