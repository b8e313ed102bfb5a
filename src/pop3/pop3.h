#ifndef POP3_POP3_H
#define POP3_POP3_H
/* The POP3 server (RFC 1939, 2449, 2595, 5034, 8314). */
#include "session/session.h"

/* Serves an accepted connection (POP3, or POP3S with implicit TLS). */
void pop3_session_start(struct service_ctx *ctx, const struct conn_info *conn);
#endif
