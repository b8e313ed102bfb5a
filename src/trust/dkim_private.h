#ifndef TRUST_DKIM_PRIVATE_H
#define TRUST_DKIM_PRIVATE_H
/* Shared by the files of the DKIM module (dkim.c, dkim_pubkey.c). */
#include "trust/dkim.h"

/* The base64 value of a tag with folding whitespace inside (3.5: b=, bh=;
   3.6.1: p=), decoded into out.  -1 when it is not base64. */
int dkim_tag_base64(const struct dkim_tag *t, struct buf *out);
#endif
