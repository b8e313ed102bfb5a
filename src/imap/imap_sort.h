#ifndef IMAP_IMAP_SORT_H
#define IMAP_IMAP_SORT_H
/* What SORT and THREAD (RFC 5256) know of a message. */
#include "imap/imap_private.h"

struct imap_sort_keys {
	uint32_t seq, uid;
	uint64_t size;
	int64_t arrival, date;       /* date: Date: header, else arrival */
	char *subject;               /* base subject (RFC 5256 2.1) */
	char *from, *to, *cc;        /* first address's local part, lowercase */
	char *message_id;
	char *references;            /* References, else In-Reply-To */
};

/* The base subject of a decoded subject (caller frees). */
char *imap_base_subject(const char *subject);
int imap_sort_keys_load(struct imap_session *s, uint32_t seq, struct imap_sort_keys *k);
void imap_sort_keys_free(struct imap_sort_keys *k);
/* Parses "charset keys..." and runs the search: 0 with the matches, 1
   when a reply was sent already (NO), -1 for BAD. */
int imap_sort_search(struct imap_cmd_ctx *c, const struct imap_arg *args, unsigned int count,
		     uint32_t **seqs_r, uint32_t *n_r, const char **error_r);
#endif
