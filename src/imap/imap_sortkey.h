#ifndef IMAP_IMAP_SORTKEY_H
#define IMAP_IMAP_SORTKEY_H
/* What SORT and THREAD (RFC 5256, RFC 5957) read of a message, built once
   from its header block and kept in the index as one record
   (store_cache_set_sortkey): the sent date, the base subject, the first
   address of From, To and Cc (its mailbox, and what RFC 5957 displays),
   and the message IDs THREAD REFERENCES links by.  Pure functions: no
   session, no store (unit-tested in tests/unit/test_imap_sortkey.c). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* The texts SORT compares, with the i;ascii-casemap collation. */
enum imap_sortkey_text {
	IMAP_SORTKEY_SUBJECT,     /* base subject (RFC 5256 2.1) */
	IMAP_SORTKEY_FROM,        /* addr-mailbox of the first address (RFC 5256 3) */
	IMAP_SORTKEY_TO,          /* the same */
	IMAP_SORTKEY_CC,          /* the same */
	IMAP_SORTKEY_DISPLAYFROM, /* display name, else addr-spec (RFC 5957 3) */
	IMAP_SORTKEY_DISPLAYTO,   /* the same */
	IMAP_SORTKEY_TEXTS
};

/* One allocation (free() it, or imap_sortkey_free()); the strings point
   into it.  date and rank are the owner's to set. */
struct imap_sortkey {
	/* RFC 5256 2.2: the Date: field's time when it parses (has_date),
	   else 0 until the owner sets the INTERNALDATE */
	int64_t date;
	bool has_date;
	bool subject_reply;                   /* the base subject lost a Re:, Fwd: or (fwd) */
	const char *text[IMAP_SORTKEY_TEXTS]; /* "" when absent */
	const char *message_id;               /* "<id>" without whitespace, NULL when none */
	/* THREAD REFERENCES step 1 (B): the IDs of References, else the first
	   of In-Reply-To; nrefs NUL-terminated strings one after another */
	const char *refs;
	uint32_t nrefs;
	/* the place of text[i] among the keys of a mailbox (imap_sort.c) */
	uint32_t rank[IMAP_SORTKEY_TEXTS];
	/* THREAD's tables, hashed once (lib/hash.h, this process's key):
	   hash_str() of message_id and of each reference ID, and
	   hash_str_icase() of the base subject */
	uint64_t id_hash, subject_hash;
	const uint64_t *ref_hash;
	const char *data; /* the strings, as imap_sortkey_encode() writes them */
	size_t data_len;
	uint64_t storage[]; /* ref_hash, then data */
};

/* Raw field values (unfolded; NULL when absent), subject decoded (RFC
   2047) as mime_headers_get_utf8() gives it. */
struct imap_sortkey_fields {
	const char *subject;
	const char *from, *to, *cc;
	const char *date;
	const char *message_id, *references, *in_reply_to;
};

/* The keys of a message from its fields. */
struct imap_sortkey *imap_sortkey_build(const struct imap_sortkey_fields *f);
/* The keys of a message from its header block (len bytes, need not end in
   NUL). */
struct imap_sortkey *imap_sortkey_from_header(const char *header, size_t len);
/* Appends the index record of key to out. */
void imap_sortkey_encode(const struct imap_sortkey *key, struct buf *out);
/* The keys from an index record; NULL when it is of another format
   version or broken (then build them again). */
struct imap_sortkey *imap_sortkey_decode(const void *data, size_t len);
void imap_sortkey_free(struct imap_sortkey **key);
/* Keys of nothing: every text "", no date, no IDs (a message that is
   gone).  Never freed. */
extern const struct imap_sortkey imap_sortkey_empty;

/* The base subject (RFC 5256 2.1) of a decoded subject (may be NULL);
   case is kept, comparisons are case-insensitive.  *is_reply_r (may be
   NULL) tells whether a "Re:"/"Fwd:" leader, a "(fwd)" trailer or a
   "[fwd: ...]" wrapper was removed.  Caller frees. */
char *imap_base_subject(const char *subject, bool *is_reply_r);
/* Compares with the i;ascii-casemap collation (RFC 4790 9.2): <0, 0, >0. */
int imap_casemap_cmp(const char *a, const char *b);
#endif
