#ifndef AUTH_ADMIN_ACCOUNT_H
#define AUTH_ADMIN_ACCOUNT_H
/* The accounts of the admin status page (server/admin.h), kept apart from
   mail users in DATA_DIR/admins, beside users.db: one "NAME:HASH" line per
   account, HASH a yescrypt string (auth/password.h), '#' lines ignored.
   `postoffice admin add|del|list` writes it; the admin process reads it
   again at every login, so changes need no restart.  The file belongs to
   the server's user, mode 0640. */
#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ADMIN_ACCOUNTS_FILE "admins"
#define ADMIN_NAME_MAX 64

struct admin_account {
	char *name;
	char *hash;
};

struct admin_accounts {
	struct admin_account *v;
	size_t count;
};

/* 1 to ADMIN_NAME_MAX letters, digits, '.', '_', '-' and '@'. */
bool admin_account_name_valid(const char *name);

/* Parses the file's text into a (empty before).  0, or -1 with *error_r
   naming the line. */
int admin_accounts_parse(struct admin_accounts *a, const char *text, size_t len, char **error_r);
/* The file's text. */
void admin_accounts_format(const struct admin_accounts *a, struct buf *out);
/* Reads ADMIN_ACCOUNTS_FILE in the directory dirfd without following a
   link; a missing file is no accounts.  0 or -1 with *error_r. */
int admin_accounts_load(int dirfd, struct admin_accounts *a, char **error_r);
/* Writes it durably (lib/fsutil.h), owned by uid:gid unless uid is
   (uid_t)-1; dir names dirfd in errors.  0 or -1 with *error_r. */
int admin_accounts_save(int dirfd, const char *dir, const struct admin_accounts *a, uid_t uid, gid_t gid,
			char **error_r);

/* The account called name, or NULL. */
const struct admin_account *admin_accounts_find(const struct admin_accounts *a, const char *name);
/* Adds name with hash, or replaces its hash: 0 added, 1 replaced. */
int admin_accounts_set(struct admin_accounts *a, const char *name, const char *hash);
/* 0 removed, 1 no such account. */
int admin_accounts_remove(struct admin_accounts *a, const char *name);
void admin_accounts_free(struct admin_accounts *a);
#endif
