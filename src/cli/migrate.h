#ifndef CLI_MIGRATE_H
#define CLI_MIGRATE_H
/* The parts of `postoffice migrate-to-postgresql` (cmd_migrate.c): the
   copy of one user's mail store from one backend to another, verified
   (migrate_store.c), and the helpers both files use. */
#include <stddef.h>
#include <stdint.h>

struct store_config;

/* What was copied, for the summary. */
struct migrate_count {
	unsigned mailboxes;
	uint64_t messages;
	uint64_t bytes; /* the messages' octets as stored */
};

/* The SHA-256 of a message's octets, compared after the copy. */
#define MIGRATE_HASH_LEN 32
/* SHA-256 of data[0..len) into out; 0 or -1. */
int migrate_hash(const void *data, size_t len, unsigned char out[MIGRATE_HASH_LEN]);
/* Reads what is left of fd into *data_r (caller frees; NUL-terminated)
   and closes fd.  0, or -1 with *error_r naming what. */
int migrate_read_fd(int fd, const char *what, char **data_r, size_t *len_r, char **error_r);

/* Copies the store of address from the backend of from to the backend of
   to, where it must not exist yet: every mailbox with its UIDVALIDITY,
   UIDNEXT, HIGHESTMODSEQ, MAILBOXID, messages (UID, flags, keywords,
   internaldate, modseq, EMAILID, octets) and expunged UIDs
   (store_mailbox_import()), and the subscriptions.  Then reads the copy
   back and compares it with the original: counters, every message's
   attributes and the SHA-256 of its octets, the folder and subscription
   lists.  A user without a store gets an empty one with the standard
   folders, as `user add` makes it.  Adds to *count; 0, or -1 with
   *error_r. */
int migrate_store_user(const struct store_config *from, const struct store_config *to, const char *address,
		       struct migrate_count *count, char **error_r);
#endif
