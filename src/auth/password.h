#ifndef AUTH_PASSWORD_H
#define AUTH_PASSWORD_H
/* Password hashing with yescrypt through libcrypt (crypt_gensalt_ra +
   crypt_r).  Both functions are thread-safe and CPU-heavy (tens of
   milliseconds): the server runs them on a jobs.h thread so the event loop
   never waits for them. */

/* Longest password libcrypt hashes (CRYPT_MAX_PASSPHRASE_SIZE less the
   NUL); longer ones never verify and cannot be set. */
#define PASSWORD_MAX_LEN 511

/* Hashes password into a new "$y$..." string (*hash_r, caller frees).
   Returns 0, or -1 when libcrypt fails (logged). */
int password_hash(const char *password, char **hash_r);
/* 1 when password matches hash, else 0 (also for a malformed or NULL hash).
   The comparison is constant-time.  With hash NULL the password is checked
   against a dummy hash, so that a missing user costs the same time as a
   wrong password and timing does not reveal which users exist. */
int password_verify(const char *password, const char *hash);
#endif
