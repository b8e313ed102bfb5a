#ifndef SMTP_SMTP_SERVER_H
#define SMTP_SMTP_SERVER_H
/* The SMTP server (RFC 5321): inbound, submission (RFC 6409) and
   submissions with implicit TLS (RFC 8314). */
#include "session/session.h"

/* Serves an accepted connection of the SMTP, submission or submissions
   service. */
void smtp_session_start(struct service_ctx *ctx, const struct conn_info *conn);
#endif
