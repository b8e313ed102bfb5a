#ifndef IMAP_IMAP_SORT_H
#define IMAP_IMAP_SORT_H
/* What SORT and THREAD (RFC 5256) know of a message, the base-subject
   rules of RFC 5256 section 2.1, and the threading algorithms of section
   4 as pure functions (unit-tested in tests/unit/test_imap_thread.c). */
#include "imap/imap_private.h"

struct imap_sort_keys {
	uint32_t seq, uid;
	uint64_t size;
	int64_t arrival, date; /* date: Date: header, else arrival */
	char *subject;         /* base subject (RFC 5256 2.1) */
	bool subject_reply;    /* extraction removed a Re:/Fwd: part */
	char *from, *to, *cc;  /* first address's mailbox, upper case */
	char *message_id;      /* raw Message-ID value, NULL when absent */
	char *references;      /* raw References value, NULL when absent */
	char *in_reply_to;     /* raw In-Reply-To value, NULL when absent */
};

/* The base subject (RFC 5256 2.1) of a decoded subject (may be NULL);
   case is kept, comparisons are case-insensitive.  *is_reply_r (may be
   NULL) tells whether a "Re:"/"Fwd:" leader, a "(fwd)" trailer or a
   "[fwd: ...]" wrapper was removed.  Caller frees. */
char *imap_base_subject(const char *subject, bool *is_reply_r);
/* Compares with the i;ascii-casemap collation (RFC 4790 9.2): <0, 0, >0. */
int imap_casemap_cmp(const char *a, const char *b);
/* Fills k from the message's header block (header may be NULL when the
   message could not be read); the base subject comes from
   m->base_subject when that is cached. */
void imap_sort_keys_from_header(struct imap_sort_keys *k, const struct imap_msg *m, uint32_t seq,
				const char *header, size_t header_len);
void imap_sort_keys_free(struct imap_sort_keys *k);
/* Loads the keys of seqs[0..n) (ascending) from the cached header blocks,
   and caches each message's base subject in the mailbox's shared table.
   Caller frees each with imap_sort_keys_free() and the array. */
struct imap_sort_keys *imap_sort_keys_load_all(struct imap_session *s, const uint32_t *seqs, uint32_t n);
/* Parses "charset keys..." and runs the search: 0 with the matches, 1
   when a reply was sent already (NO), -1 for BAD. */
int imap_sort_search(struct imap_cmd_ctx *c, const struct imap_arg *args, unsigned int count,
		     uint32_t **seqs_r, uint32_t *n_r, const char **error_r);

/* THREAD (RFC 5256 section 4) over keys[0..n): appends the thread lists
   "(1 2)(3 (4)(5))" to out, numbering messages by UID or by sequence. */
void imap_thread_references(const struct imap_sort_keys *keys, uint32_t n, bool uid, struct buf *out);
void imap_thread_orderedsubject(const struct imap_sort_keys *keys, uint32_t n, bool uid, struct buf *out);
#endif
