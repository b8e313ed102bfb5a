#ifndef AUTH_AUTH_CHECK_H
#define AUTH_AUTH_CHECK_H
/* A credential check split for the event loop: auth_check_prepare() runs in
   the loop (one user-database lookup), auth_check_verify() on a job thread
   (lib/jobs.h: the yescrypt check, against a dummy hash for unknown users so
   that timing does not tell which users exist), auth_check_clear() wipes
   the password.  Protocol engines embed the struct in their job. */
#include <stdbool.h>
#include <stdint.h>

struct userdb;

struct auth_check {
	char *user;       /* the normalised address when the user exists, else as given */
	char *password;
	char *hash;       /* NULL: no such user */
	uint64_t quota;
	bool ok;          /* set by auth_check_verify() */
};

void auth_check_prepare(struct auth_check *check, struct userdb *db, const char *user, const char *password);
/* Thread-safe; returns and sets check->ok. */
bool auth_check_verify(struct auth_check *check);
void auth_check_clear(struct auth_check *check);
#endif
