#ifndef SMTP_SMTP_REPLY_H
#define SMTP_SMTP_REPLY_H
/* SMTP reply formatting (RFC 5321 4.2, RFC 2034 enhanced status codes).
   text may hold several lines separated by '\n': all but the last get
   "CODE-", the last "CODE ".  enh (like "2.1.0") is put on every line when
   non-NULL.  Control characters in text are replaced so that nothing a
   client sent can break the reply's framing. */
#include "lib/buf.h"

void smtp_reply_format(struct buf *out, int code, const char *enh, const char *text);
#endif
