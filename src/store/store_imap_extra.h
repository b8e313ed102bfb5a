#ifndef STORE_STORE_IMAP_EXTRA_H
#define STORE_STORE_IMAP_EXTRA_H
/* Small additions to store.h that the IMAP server needs (written by the
   IMAP engineer; candidates to fold into store.h). */
#include "store/store.h"

/* UIDVALIDITY of an open mailbox. */
uint32_t store_mailbox_uidvalidity(const struct store_mailbox *mbox);
/* Opens a mailbox that store_mailbox_open() has opened before (on any
   handle, in any process), reading only: no index row is made, the
   Maildir is not synced, nothing is written, so an event loop may call it
   while another process holds the index's write lock.  1 with *mbox_r, 0
   when no such folder exists or it has no index row yet, -1 on error. */
int store_mailbox_open_indexed(struct store *store, const char *name, struct store_mailbox **mbox_r,
			       char **error_r);
/* UIDNEXT and HIGHESTMODSEQ from the mailbox row (cheap: no message scan). */
int store_mailbox_get_counters(struct store_mailbox *mbox, uint32_t *uidnext_r, uint64_t *modseq_r,
			       char **error_r);
/* Calls cb for every cached field of UIDs lo..hi, ascending, in one query:
   FETCH 1:* ENVELOPE then reads the cache in one pass.  cb's non-zero
   return stops the walk.  0 or -1. */
int store_cache_get_range(struct store_mailbox *mbox, uint32_t lo, uint32_t hi, enum store_cache_field field,
			  int (*cb)(void *ctx, uint32_t uid, const char *text, size_t len), void *ctx,
			  char **error_r);
/* Runs several cache writes in one transaction. */
int store_cache_begin(struct store_mailbox *mbox, char **error_r);
int store_cache_commit(struct store_mailbox *mbox, char **error_r);

/* Cached header blocks (the message's header with its blank line, CRLF
   line ends: what FETCH BODY[HEADER] sends), kept in the same row as the
   ENVELOPE and BODYSTRUCTURE, so SEARCH HEADER, SORT and THREAD need not
   open message files.  store_cache_prepare() adds the column to an index
   made without it; call it once after store_open(). */
int store_cache_prepare(struct store *store, char **error_r);
int store_cache_set_header(struct store_mailbox *mbox, uint32_t uid, const void *data, size_t len,
			   char **error_r);
/* Calls cb for every cached header block of UIDs lo..hi, ascending. */
int store_cache_get_header_range(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
				 int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len), void *ctx,
				 char **error_r);

/* Sort keys (SORT and THREAD, RFC 5256): one record per message that the
   IMAP server builds once from the header block (imap/imap_sortkey.h;
   opaque to the store) and reads back for a whole mailbox in one range
   query.  Records go with their message (expunge, folder delete) as the
   cache does; an index made before they existed gets their table when it
   is opened.  set replaces the record of uid. */
int store_cache_set_sortkey(struct store_mailbox *mbox, uint32_t uid, const void *data, size_t len,
			    char **error_r);
/* Calls cb for every record of UIDs lo..hi, ascending; cb's non-zero
   return stops the walk.  0 or -1. */
int store_cache_get_sortkey_range(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
				  int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len), void *ctx,
				  char **error_r);
#endif
