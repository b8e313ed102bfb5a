/* DKIM signing keys on disk (see dkim_keys.h). */
#include "trust/dkim_keys.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_SUFFIX ".key"

bool dkim_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_') ||
		    ++label > 63)
			return false;
	}
	return label > 0;
}

static int key_cmp(const void *a, const void *b)
{
	const struct dkim_key *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);
	if (c != 0)
		return c;
	if (x->alg != y->alg)
		return x->alg < y->alg ? -1 : 1;
	/* newest first */
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec > y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec > y->mtime.tv_nsec ? -1 : 1;
	return strcmp(y->selector, x->selector);
}

static void note_error(char **error_r, char *msg)
{
	if (*error_r == NULL)
		*error_r = msg;
	else
		free(msg);
}

/* Loads the keys of one domain directory. */
static void load_domain(struct dkim_keyring *kr, int dirfd, const char *dir, const char *domain,
			char **error_r)
{
	char *path = xasprintf("%s/%s", dir, domain);
	int dfd = fs_open_dir_at(dirfd, path, domain, error_r);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		free(path);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len <= strlen(KEY_SUFFIX) ||
		    strcmp(e->d_name + len - strlen(KEY_SUFFIX), KEY_SUFFIX) != 0)
			continue;
		char *selector = xstrndup(e->d_name, len - strlen(KEY_SUFFIX));
		int fd = dkim_name_valid(selector) ? openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
						   : -1;
		struct stat st;
		FILE *f = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? fdopen(fd, "r") : NULL;
		EVP_PKEY *key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		int alg = key != NULL ? dkim_key_alg(key) : -1;
		if (alg < 0 || (alg == DKIM_ALG_RSA_SHA256 && EVP_PKEY_get_bits(key) < 1024)) {
			note_error(error_r,
				   xasprintf("%s/%s: not an RSA (1024 bits or more) or Ed25519 private key",
					     path, e->d_name));
			EVP_PKEY_free(key);
			free(selector);
		} else {
			kr->keys = xreallocarray(kr->keys, kr->count + 1, sizeof(*kr->keys));
			kr->keys[kr->count++] = (struct dkim_key){
			    .domain = xstrdup(domain),
			    .selector = selector,
			    .alg = (enum dkim_alg)alg,
			    .key = key,
			    .mtime = st.st_mtim,
			};
		}
		if (f != NULL)
			fclose(f);
		else if (fd >= 0)
			close(fd);
	}
	closedir(d);
	free(path);
}

static void stamp_max(struct timespec *stamp, const struct timespec *t)
{
	if (t->tv_sec > stamp->tv_sec || (t->tv_sec == stamp->tv_sec && t->tv_nsec > stamp->tv_nsec))
		*stamp = *t;
}

/* The newest mtime of dir and its entries (the domain directories). */
static struct timespec dir_stamp(const char *dir)
{
	struct timespec stamp = {0, 0};
	struct stat st;
	DIR *d = opendir(dir);
	if (d == NULL || fstat(dirfd(d), &st) < 0) {
		if (d != NULL)
			closedir(d);
		return stamp;
	}
	stamp_max(&stamp, &st.st_mtim);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			stamp_max(&stamp, &st.st_mtim);
	closedir(d);
	return stamp;
}

bool dkim_keyring_changed(const struct dkim_keyring *kr, const char *dir)
{
	struct timespec now = dir_stamp(dir);
	return now.tv_sec != kr->stamp.tv_sec || now.tv_nsec != kr->stamp.tv_nsec;
}

struct dkim_keyring *dkim_keyring_load(const char *dir, char **error_r)
{
	struct dkim_keyring *kr = xcalloc(1, sizeof(*kr));
	kr->refs = 1;
	*error_r = NULL;
	/* taken first: a key added while loading makes the next check see
	   a change */
	kr->stamp = dir_stamp(dir);
	DIR *d = opendir(dir);
	if (d == NULL) {
		if (errno != ENOENT)
			*error_r = xasprintf("%s: %s", dir, strerror(errno));
		return kr;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !dkim_name_valid(e->d_name))
			continue;
		bool lower = true;
		for (const char *c = e->d_name; *c != '\0'; c++)
			lower = lower && !(*c >= 'A' && *c <= 'Z');
		if (lower)
			load_domain(kr, dirfd(d), dir, e->d_name, error_r);
	}
	closedir(d);
	if (kr->count > 0)
		qsort(kr->keys, kr->count, sizeof(*kr->keys), key_cmp);
	for (size_t i = 0; i < kr->count; i++)
		kr->keys[i].active = i == 0 || strcmp(kr->keys[i].domain, kr->keys[i - 1].domain) != 0 ||
				     kr->keys[i].alg != kr->keys[i - 1].alg;
	return kr;
}

struct dkim_keyring *dkim_keyring_ref(struct dkim_keyring *kr)
{
	__atomic_add_fetch(&kr->refs, 1, __ATOMIC_RELAXED);
	return kr;
}

void dkim_keyring_unref(struct dkim_keyring **kr)
{
	if (*kr == NULL)
		return;
	if (__atomic_sub_fetch(&(*kr)->refs, 1, __ATOMIC_ACQ_REL) > 0) {
		*kr = NULL;
		return;
	}
	for (size_t i = 0; i < (*kr)->count; i++) {
		free((*kr)->keys[i].domain);
		free((*kr)->keys[i].selector);
		EVP_PKEY_free((*kr)->keys[i].key);
	}
	free((*kr)->keys);
	free(*kr);
	*kr = NULL;
}

size_t dkim_keyring_signers(const struct dkim_keyring *kr, const char *domain, const struct dkim_key **out,
			    size_t max)
{
	for (const char *d = domain; d != NULL && *d != '\0';) {
		size_t n = 0;
		for (size_t i = 0; i < kr->count && n < max; i++)
			if (kr->keys[i].active && strcasecmp(kr->keys[i].domain, d) == 0)
				out[n++] = &kr->keys[i];
		if (n > 0)
			return n;
		d = strchr(d, '.');
		/* no key of a top-level domain: stop at the last two labels */
		if (d == NULL || strchr(d + 1, '.') == NULL)
			break;
		d++;
	}
	return 0;
}

int dkim_keygen(const char *data_dir, const char *domain, const char *selector, enum dkim_alg alg, uid_t uid,
		gid_t gid, struct buf *record_r, char **error_r)
{
	if (!dkim_name_valid(domain) || !dkim_name_valid(selector)) {
		*error_r = xasprintf("'%s' is not a valid %s", dkim_name_valid(domain) ? selector : domain,
				     dkim_name_valid(domain) ? "selector" : "domain");
		return -1;
	}
	char *lower = xstrdup(domain);
	for (char *c = lower; *c != '\0'; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	EVP_PKEY *key = alg == DKIM_ALG_RSA_SHA256 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
						   : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long pem_len = 0;
	const char *why = NULL;
	if (key == NULL || bio == NULL ||
	    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (pem_len = BIO_get_mem_data(bio, &pem)) <= 0)
		why = "generating the key failed";
	else if (dkim_key_record(record_r, key, &why) == 0)
		why = NULL;
	int ret = -1;
	if (why != NULL) {
		*error_r = xstrdup(why);
	} else {
		/* the key directory holds secrets: 0700 */
		char *rel = xasprintf(DKIM_KEY_DIR "/%s", lower);
		char *path = xasprintf("%s/%s", data_dir, rel);
		char *name = xasprintf("%s" KEY_SUFFIX, selector);
		int dfd = fs_open_dir_beneath(data_dir, rel, true, 0700, uid, gid, error_r);
		int fd = dfd >= 0 ? fs_create_at(dfd, path, name, 0600, uid, gid, error_r) : -1;
		if (fd >= 0) {
			if (fs_write_all(fd, pem, (size_t)pem_len) < 0 || fsync(fd) < 0) {
				*error_r = xasprintf("%s/%s: %s", path, name, strerror(errno));
				unlinkat(dfd, name, 0);
			} else if (fs_fsync_dirfd(dfd, path, error_r) == 0) {
				ret = 0;
			}
			close(fd);
		}
		if (dfd >= 0)
			close(dfd);
		free(rel);
		free(path);
		free(name);
	}
	BIO_free(bio);
	EVP_PKEY_free(key);
	free(lower);
	return ret;
}
