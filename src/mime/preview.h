#ifndef MIME_PREVIEW_H
#define MIME_PREVIEW_H
/* Preview text of a message (RFC 8970 IMAP PREVIEW, JMAP's Email
   preview): the beginning of its first text part as plain UTF-8 text for
   a message list.  Pure functions of their input. */
#include "lib/buf.h"
#include "mime/tree.h"
#include <stdbool.h>
#include <stddef.h>

/* RFC 8970 3: at most 256 characters; 200 is what clients show and what
   other servers send. */
#define MIME_PREVIEW_CHARS 200
/* At most this much of a part's body (encoded) is read for its preview. */
#define MIME_PREVIEW_SCAN (256 * 1024)

/* Appends the preview of text (UTF-8; HTML when html): markup, comments,
   <head>, <script> and <style> dropped and character references decoded
   (HTML), every run of whitespace made one space and trimmed at both
   ends, other control characters (C0, DEL, C1) dropped, at most
   max_chars characters.  Invalid UTF-8 is dropped. */
void mime_preview_text(struct buf *out, const char *text, size_t len, bool html, size_t max_chars);

/* Appends the preview of msg: its first text/plain part that is not an
   attachment, else the first text/html one (a text/plain alternative of
   it preferred), transfer-decoded and converted to UTF-8 from its
   charset (8-bit text without one read as UTF-8, else Windows-1252), as
   mime_preview_text() makes it.  Nothing when the message has no text. */
void mime_preview(struct buf *out, const struct mime_message *msg, size_t max_chars);
#endif
