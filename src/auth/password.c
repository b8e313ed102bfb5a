/* Password hashing: yescrypt through libcrypt.  crypt_r() with a private
   struct crypt_data per call is reentrant, so hashing and verification run
   on any thread without locks. */
#include "auth/password.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <crypt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(PASSWORD_MAX_LEN + 1 == CRYPT_MAX_PASSPHRASE_SIZE, "PASSWORD_MAX_LEN");

/* Hashes password with setting into a fresh crypt_data.  Returns the
   crypt_data (caller frees with free_crypt_data) or NULL when libcrypt
   rejects the setting (it then returns a "*0"/"*1" failure token). */
static struct crypt_data *crypt_with(const char *password, const char *setting)
{
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	const char *out = crypt_r(password, setting, data);
	if (out == NULL || out[0] == '*') {
		explicit_bzero(data, sizeof(*data));
		free(data);
		return NULL;
	}
	return data;
}

static void free_crypt_data(struct crypt_data *data)
{
	explicit_bzero(data, sizeof(*data));
	free(data);
}

int password_hash(const char *password, char **hash_r)
{
	/* count 0 = libcrypt's default yescrypt cost; NULL random bytes = it
	   reads the kernel's entropy itself. */
	char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (setting == NULL) {
		log_error("auth crypt_gensalt_ra failed");
		return -1;
	}
	struct crypt_data *data = crypt_with(password, setting);
	free(setting);
	if (data == NULL) {
		log_error("auth crypt_r failed to hash");
		return -1;
	}
	*hash_r = xstrdup(data->output);
	free_crypt_data(data);
	return 0;
}

/* Compares two strings in time that depends only on their lengths. */
static int equal_constant_time(const char *a, const char *b)
{
	size_t alen = strlen(a), blen = strlen(b);
	size_t n = alen > blen ? alen : blen;
	unsigned char diff = alen != blen;
	for (size_t i = 0; i < n; i++) {
		unsigned char x = i < alen ? (unsigned char)a[i] : 0;
		unsigned char y = i < blen ? (unsigned char)b[i] : 0;
		diff |= (unsigned char)(x ^ y);
	}
	return diff == 0;
}

/* A hash of a random password with the same cost as real hashes, made once
   per process: verifying against it costs what a real verification does. */
static char *dummy_hash;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void dummy_hash_init(void)
{
	char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (setting == NULL)
		return;
	dummy_hash = xstrdup(setting);
	free(setting);
}

int password_verify(const char *password, const char *hash)
{
	bool dummy = hash == NULL || hash[0] == '\0';
	if (dummy) {
		pthread_once(&dummy_once, dummy_hash_init);
		hash = dummy_hash;
		if (hash == NULL)
			return 0;
	}
	/* The setting is the hash itself: crypt(3) reads the salt and
	   parameters from its prefix. */
	struct crypt_data *data = crypt_with(password, hash);
	if (data == NULL)
		return 0;
	int ok = equal_constant_time(data->output, hash);
	free_crypt_data(data);
	return dummy ? 0 : ok;
}
