#ifndef STORE_STORE_PRIVATE_H
#define STORE_STORE_PRIVATE_H
/* Internals of the Maildir + SQLite store backend, shared by its files. */
#include "store/store.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define STORE_STMT_CACHE 128

struct store_stmt_slot {
	const char *sql;     /* the literal's address is the cache key */
	sqlite3_stmt *stmt;
};

struct store {
	char *path;          /* the Maildir root */
	sqlite3 *db;
	struct store_stmt_slot stmts[STORE_STMT_CACHE];
};

struct store_mailbox {
	struct store *store;
	char *name;          /* canonical: "INBOX" or the folder name */
	char *dir;           /* Maildir directory of the mailbox */
	int64_t id;
	uint32_t uidvalidity;
	int cur_fd;          /* MAILDIR/cur, for openat() without a path walk */
};

/* A parsed Maildir file name: BASE[:2,INFO]. */
struct store_fname {
	size_t base_len;     /* bytes of the base name */
	uint32_t flags;      /* from the info part */
	bool has_info;       /* ":2," present */
	bool has_size;       /* ",S=" in the base */
	uint64_t size;       /* S= (physical octets) */
	bool has_vsize;
	uint64_t vsize;      /* W= (octets with CRLF line ends) */
};

/* store_index.c */
/* A cached prepared statement for a string literal, reset and ready to bind. */
sqlite3_stmt *store_stmt(struct store *store, const char *sql);
/* Runs SQL without results; 0 or -1 with *error_r. */
int store_exec(struct store *store, const char *sql, char **error_r);
int store_begin(struct store *store, char **error_r);  /* BEGIN IMMEDIATE */
int store_commit(struct store *store, char **error_r);
void store_rollback(struct store *store);
/* Sets *error_r to "what: sqlite message" and returns -1. */
int store_db_error(struct store *store, const char *what, char **error_r);
/* The next UIDVALIDITY for a new mailbox row (above any used before). */
uint32_t store_next_uidvalidity(struct store *store);
/* Directory of a mailbox name ("INBOX" or folder), caller frees; NULL when
   the name is invalid. */
char *store_mailbox_dir(struct store *store, const char *name);

/* store_maildir.c */
void store_fname_parse(const char *name, struct store_fname *fn_r);
/* Letters for flags in ASCII order, plus extra letters of old_info that we
   do not manage (Dovecot keyword letters).  Returns the new info (":2,..."),
   caller frees. */
char *store_info_build(uint32_t flags, const char *old_info);
/* Reads a file to count what it takes to send it with CRLF line ends. */
int store_file_vsize(int fd, uint64_t *psize_r, uint64_t *vsize_r);
/* A new unique base name "SECS.M<usec>P<pid>Q<n>.HOST,S=<psize>[,W=<vsize>]". */
char *store_unique_base(uint64_t psize, uint64_t vsize);

/* store_mail.c */
/* Reads the mailbox row: uidnext, highestmodseq. */
int store_mailbox_counters(struct store_mailbox *mbox, uint32_t *uidnext_r, uint64_t *modseq_r,
			   char **error_r);
int store_mailbox_set_counters(struct store_mailbox *mbox, uint32_t uidnext, uint64_t modseq,
			       char **error_r);
#endif
