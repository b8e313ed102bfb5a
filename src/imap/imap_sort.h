#ifndef IMAP_IMAP_SORT_H
#define IMAP_IMAP_SORT_H
/* SORT and THREAD (RFC 5256): the messages of one command with their keys
   (imap_sortkey.h), and the threading algorithms of section 4 as pure
   functions (unit-tested in tests/unit/test_imap_thread.c). */
#include "imap/imap_private.h"
#include "imap/imap_sortkey.h"

/* A message of a SORT or THREAD command. */
struct imap_sort_msg {
	uint32_t seq, uid;
	uint64_t size;
	int64_t arrival;
	const struct imap_sortkey *key; /* its date is set: Date:, else arrival */
};

/* The messages seqs[0..n) (ascending) of the session's view with their
   keys: those of the mailbox's shared table, else read from the index in
   one range query, else built from the header blocks and written to the
   index (in one transaction), so each message's keys are built once.
   The keys stay the table's; caller frees the array. */
struct imap_sort_msg *imap_sort_msgs_load(struct imap_session *s, const uint32_t *seqs, uint32_t n);
/* Parses "charset keys..." and runs the search: 0 with the matches, 1
   when a reply was sent already (NO), -1 for BAD. */
int imap_sort_search(struct imap_cmd_ctx *c, const struct imap_arg *args, unsigned int count,
		     uint32_t **seqs_r, uint32_t *n_r, const char **error_r);
/* Appends n in decimal (the numbers of SORT and THREAD replies, thousands
   of them: faster than buf_printf). */
void imap_sort_append_number(struct buf *out, uint32_t n);

/* THREAD (RFC 5256 section 4) over msgs[0..n): appends the thread lists
   "(1 2)(3 (4)(5))" to out, numbering messages by UID or by sequence. */
void imap_thread_references(const struct imap_sort_msg *msgs, uint32_t n, bool uid, struct buf *out);
void imap_thread_orderedsubject(const struct imap_sort_msg *msgs, uint32_t n, bool uid, struct buf *out);
#endif
