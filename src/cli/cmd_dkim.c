/* `postoffice dkim`: the DKIM signing keys of the local domains
   (DATA_DIR/dkim, trust/dkim_keys.h). */
#include "cli/cli.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "trust/dkim_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void dkim_usage(FILE *out)
{
	fprintf(out, "usage: postoffice dkim keygen DOMAIN [--selector S] [--algorithm rsa|ed25519]\n"
		     "       postoffice dkim list\n"
		     "       postoffice dkim remove DOMAIN SELECTOR\n\n"
		     "Mail that users submit (AUTH) leaves signed with the keys of its From:\n"
		     "domain (or of the nearest parent domain that has keys): the newest key of\n"
		     "each algorithm signs, so a domain with an RSA and an Ed25519 key signs\n"
		     "twice (RFC 8463 advises both while verifiers catch up).\n\n"
		     "  keygen   makes a key (RSA 2048 bits by default) in DATA_DIR/dkim/DOMAIN/,\n"
		     "           mode 0600, owned by the server's user, and prints the TXT\n"
		     "           record to publish.  The default selector is the algorithm and\n"
		     "           today's date (rsa20260101).  Running servers pick new keys up\n"
		     "           within a second.\n"
		     "  list     every key: domain, selector, algorithm, and whether it signs\n"
		     "           (active) or is an older key kept for mail still in flight\n"
		     "           (retired: keep its DNS record until you remove it)\n"
		     "  remove   deletes a key; remove its DNS record a few days later\n");
}

/* The record split into quoted strings of at most 255 octets (RFC 1035
   3.3.14), as a zone file line. */
static void print_record(const char *domain, const char *selector, const struct buf *record)
{
	printf("%s._domainkey.%s. IN TXT", selector, domain);
	for (size_t i = 0; i < record->len; i += 250) {
		size_t n = record->len - i < 250 ? record->len - i : 250;
		printf(" \"%.*s\"", (int)n, record->data + i);
	}
	printf("\n");
}

static int keygen(struct config *cfg, int argc, char **argv)
{
	const char *domain = NULL, *selector = NULL;
	enum dkim_alg alg = DKIM_ALG_RSA_SHA256;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if ((!strcmp(a, "--selector") || !strcmp(a, "-s")) && val != NULL) {
			selector = val;
			i++;
		} else if ((!strcmp(a, "--algorithm") || !strcmp(a, "-a")) && val != NULL) {
			if (!strcmp(val, "rsa") || !strcmp(val, "rsa-sha256"))
				alg = DKIM_ALG_RSA_SHA256;
			else if (!strcmp(val, "ed25519") || !strcmp(val, "ed25519-sha256"))
				alg = DKIM_ALG_ED25519_SHA256;
			else {
				fprintf(stderr, "postoffice dkim: unknown algorithm '%s' (rsa or ed25519)\n",
					val);
				return 2;
			}
			i++;
		} else if (a[0] != '-' && domain == NULL) {
			domain = a;
		} else {
			fprintf(stderr, "postoffice dkim keygen: unexpected '%s'\n", a);
			dkim_usage(stderr);
			return 2;
		}
	}
	if (domain == NULL) {
		dkim_usage(stderr);
		return 2;
	}
	char defsel[32];
	if (selector == NULL) {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		snprintf(defsel, sizeof(defsel), "%s%04d%02d%02d", alg == DKIM_ALG_RSA_SHA256 ? "rsa" : "ed",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
		selector = defsel;
	}
	struct cli_owner o = cli_server_owner(cfg);
	struct buf record = BUF_INIT;
	char *error = NULL;
	if (dkim_keygen(cfg->data_dir, domain, selector, alg, o.uid, o.gid, &record, &error) < 0) {
		bool exists = strstr(error, "exists") != NULL;
		fprintf(stderr, "postoffice dkim: %s%s\n", error,
			exists ? " (choose another --selector, or remove the old key first)" : "");
		free(error);
		buf_free(&record);
		return 1;
	}
	char *lower = xstrdup(domain);
	for (char *c = lower; *c != '\0'; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	printf("wrote %s/" DKIM_KEY_DIR "/%s/%s.key (%s)\npublish this TXT record:\n", cfg->data_dir, lower,
	       selector, dkim_alg_name(alg));
	print_record(lower, selector, &record);
	free(lower);
	buf_free(&record);
	return 0;
}

static int list(struct config *cfg)
{
	char *dir = xasprintf("%s/" DKIM_KEY_DIR, cfg->data_dir);
	char *error = NULL;
	struct dkim_keyring *kr = dkim_keyring_load(dir, &error);
	if (error != NULL) {
		fprintf(stderr, "postoffice dkim: %s\n", error);
		free(error);
	}
	for (size_t i = 0; i < kr->count; i++) {
		const struct dkim_key *k = &kr->keys[i];
		printf("%s %s %s %s\n", k->domain, k->selector, dkim_alg_name(k->alg),
		       k->active ? "active" : "retired");
	}
	if (kr->count == 0)
		printf("no DKIM keys (postoffice dkim keygen DOMAIN makes one)\n");
	dkim_keyring_unref(&kr);
	free(dir);
	return 0;
}

static int remove_key(struct config *cfg, const char *domain, const char *selector)
{
	if (!dkim_name_valid(domain) || !dkim_name_valid(selector)) {
		fprintf(stderr, "postoffice dkim: bad domain or selector\n");
		return 2;
	}
	char *rel = xasprintf(DKIM_KEY_DIR "/%s", domain);
	char *name = xasprintf("%s.key", selector);
	char *error = NULL;
	int ret = 1;
	/* as root, below the server's directory: nothing is followed */
	int dfd = fs_open_dir_beneath(cfg->data_dir, rel, false, 0700, (uid_t)-1, (gid_t)-1, &error);
	if (dfd < 0) {
		fprintf(stderr, "postoffice dkim: no key %s for %s\n", selector, domain);
		free(error);
	} else if (unlinkat(dfd, name, 0) < 0) {
		fprintf(stderr, "postoffice dkim: no key %s for %s%s%s\n", selector, domain,
			errno == ENOENT ? "" : ": ", errno == ENOENT ? "" : strerror(errno));
	} else if (fs_fsync_dirfd(dfd, rel, &error) < 0) {
		fprintf(stderr, "postoffice dkim: %s\n", error);
		free(error);
	} else {
		printf("removed key %s of %s; remove %s._domainkey.%s from DNS once mail signed with it has "
		       "arrived (a few days)\n",
		       selector, domain, selector, domain);
		ret = 0;
	}
	if (dfd >= 0)
		close(dfd);
	free(rel);
	free(name);
	return ret;
}

static int dkim_run(struct config *cfg, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		dkim_usage(stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "keygen"))
		return keygen(cfg, argc, argv);
	if (argc == 2 && !strcmp(argv[1], "list"))
		return list(cfg);
	if (argc == 4 && !strcmp(argv[1], "remove"))
		return remove_key(cfg, argv[2], argv[3]);
	dkim_usage(stderr);
	return 2;
}

const struct cli_command cmd_dkim = {
    "dkim", "keygen|list|remove ...", "DKIM signing keys of the local domains", dkim_run, dkim_usage,
};
