#ifndef TRUST_DKIM_KEYS_H
#define TRUST_DKIM_KEYS_H
/* The signing keys of the local domains: DATA_DIR/dkim/DOMAIN/SELECTOR.key,
   one PEM private key (PKCS#8, RSA or Ed25519) per file, mode 0600.

   Rotation: a domain may have several keys of one algorithm.  The newest
   (by the file's modification time, then by selector) signs; the older
   ones stay in the directory, and their DNS records stay published, until
   `postoffice dkim remove` takes them away, so that mail signed with them
   still verifies while it is in flight. */
#include "trust/dkim.h"

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

/* The keys' directory below DATA_DIR. */
#define DKIM_KEY_DIR "dkim"

struct dkim_key {
	char *domain; /* lowercase */
	char *selector;
	enum dkim_alg alg;
	EVP_PKEY *key;
	struct timespec mtime;
	bool active; /* the newest of its domain and algorithm: it signs */
};

struct dkim_keyring {
	struct dkim_key *keys; /* sorted by domain, algorithm, newest first */
	size_t count;
	/* the newest modification time of the directory and its domain
	   directories when loaded: a key added or removed changes it */
	struct timespec stamp;
	int refs;
};

/* True when name can be a selector or a domain here: DNS labels of
   letters, digits, '-' and '_' separated by single dots. */
bool dkim_name_valid(const char *name);

/* Loads every key under dir (a missing dir is an empty keyring), with one
   reference.  Files that cannot be read are reported through *error_r
   (caller frees; the others are still loaded) and skipped. */
struct dkim_keyring *dkim_keyring_load(const char *dir, char **error_r);
/* True when keys were added to or removed from dir since kr was loaded
   (one stat per domain). */
bool dkim_keyring_changed(const struct dkim_keyring *kr, const char *dir);
/* References: a signer keeps the keyring it signs with alive while the
   worker moves on to a newer one.  The last unref frees (thread-safe). */
struct dkim_keyring *dkim_keyring_ref(struct dkim_keyring *kr);
void dkim_keyring_unref(struct dkim_keyring **kr);

/* The keys that sign mail from domain: the active ones of the domain
   itself or, when it has none, of the nearest parent domain that has some
   (relaxed alignment, RFC 7489 3.1.1).  Fills at most max; returns the
   number. */
size_t dkim_keyring_signers(const struct dkim_keyring *kr, const char *domain, const struct dkim_key **out,
			    size_t max);

/* Generates a key (RSA 2048 bits or Ed25519) and writes it durably as
   DATA_DIR/dkim/DOMAIN/SELECTOR.key, mode 0600, owned by uid:gid when uid
   is not (uid_t)-1 (the directories too, mode 0700).  Run as root, it
   follows no link below DATA_DIR (lib/fsutil.h).  An existing file is an error.  The
   key's DNS record is appended to record_r.  -1 with *error_r. */
int dkim_keygen(const char *data_dir, const char *domain, const char *selector, enum dkim_alg alg, uid_t uid,
		gid_t gid, struct buf *record_r, char **error_r);
#endif
