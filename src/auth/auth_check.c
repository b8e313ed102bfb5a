#include "auth/auth_check.h"
#include "auth/password.h"
#include "auth/userdb.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

void auth_check_prepare(struct auth_check *check, struct userdb *db, const char *user, const char *password)
{
	memset(check, 0, sizeof(*check));
	check->password = xstrdup(password);
	struct userdb_user u;
	if (userdb_user_lookup(db, user, &u) == 1) {
		check->user = xstrdup(u.address);
		check->hash = xstrdup(u.password_hash);
		check->quota = u.quota;
		userdb_user_free(&u);
	} else {
		check->user = xstrdup(user);
	}
}

bool auth_check_verify(struct auth_check *check)
{
	/* password_verify() with a NULL hash costs the same as a real check. */
	check->ok = password_verify(check->password, check->hash) == 1 && check->hash != NULL;
	return check->ok;
}

void auth_check_clear(struct auth_check *check)
{
	if (check->password != NULL) {
		explicit_bzero(check->password, strlen(check->password));
		free(check->password);
	}
	free(check->user);
	free(check->hash);
	memset(check, 0, sizeof(*check));
}
