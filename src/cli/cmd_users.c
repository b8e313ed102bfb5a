/* `postoffice domain`, `postoffice user` and `postoffice alias`: managing
   the user database (DATA_DIR/users.db) and users' Maildirs. */
#include "auth/userdb.h"
#include "cli/cli.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

/* A subcommand: name, its argument count bounds and handler.  argv starts
   at the subcommand's first argument after options were taken out. */
struct subcommand {
	const char *name;
	int min_args, max_args; /* max -1: unlimited */
	int (*run)(struct config *cfg, struct userdb *db, int argc, char **argv);
};

/* Options shared by the three commands; each subcommand accepts those its
   usage lists (checked in parse_options). */
struct options {
	bool force, purge;
	const char *quota;
};
static struct options opts;

/* ---- helpers ---- */

/* users.db and its WAL files must stay writable by the unprivileged
   server when we run as root. */
static void chown_db_files(const struct config *cfg, struct cli_owner o)
{
	static const char *const names[] = {"users.db", "users.db-wal", "users.db-shm"};
	if (o.uid == (uid_t)-1)
		return;
	int dirfd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; dirfd >= 0 && i < N_ELEMENTS(names); i++) {
		if (fs_chown_tree_at(dirfd, names[i], o.uid, o.gid, false) < 0 && errno != ENOENT)
			fprintf(stderr, "postoffice: chown(%s/%s) failed: %s\n", cfg->data_dir, names[i],
				strerror(errno));
	}
	if (dirfd >= 0)
		close(dirfd);
}

static struct userdb *open_db(const struct config *cfg)
{
	char *error = NULL;
	struct cli_owner o = cli_server_owner(cfg);
	bool new_dir = access(cfg->data_dir, F_OK) < 0;
	if (new_dir) {
		if (fs_mkdir_p(cfg->data_dir, 0750, &error) < 0) {
			fprintf(stderr, "postoffice: %s\n", error);
			free(error);
			return NULL;
		}
		if (o.uid != (uid_t)-1 && fs_chown_tree(cfg->data_dir, o.uid, o.gid, false) < 0)
			fprintf(stderr, "postoffice: chown(%s) failed: %s\n", cfg->data_dir, strerror(errno));
	}
	char *path = xasprintf("%s/users.db", cfg->data_dir);
	struct userdb *db = userdb_open_config(cfg, path, true, &error);
	if (db == NULL) {
		fprintf(stderr, "postoffice: %s\n", error);
		free(error);
	} else {
		chown_db_files(cfg, o);
	}
	free(path);
	return db;
}

static int fail(char *error)
{
	fprintf(stderr, "postoffice: %s\n", error);
	free(error);
	return 1;
}

/* Parses a quota: a size with k/M/G suffixes, or 0/"unlimited". */
static int parse_quota(const char *text, uint64_t *quota_r)
{
	if (!strcmp(text, "unlimited") || !strcmp(text, "none")) {
		*quota_r = 0;
		return 0;
	}
	if (config_parse_size(text, quota_r) < 0) {
		fprintf(stderr,
			"postoffice: '%s' is not a size (like 500M, 2G, or 0 for "
			"unlimited)\n",
			text);
		return -1;
	}
	return 0;
}

/* "unlimited", or the size with the largest exact unit, else one decimal. */
static void format_size(char *out, size_t outsize, uint64_t bytes, bool zero_unlimited)
{
	static const char units[] = "kMGT";
	if (bytes == 0 && zero_unlimited) {
		snprintf(out, outsize, "unlimited");
		return;
	}
	if (bytes < 1024) {
		snprintf(out, outsize, "%" PRIu64, bytes);
		return;
	}
	double value = (double)bytes;
	size_t unit = 0;
	for (value /= 1024; value >= 1024 && unit + 1 < sizeof(units) - 1; value /= 1024)
		unit++;
	uint64_t scale = (uint64_t)1 << (10 * (unit + 1));
	if (bytes % scale == 0)
		snprintf(out, outsize, "%" PRIu64 "%c", bytes / scale, units[unit]);
	else
		snprintf(out, outsize, "%.1f%c", value, units[unit]);
}

/* Asks for the domain of a normalised address to exist, with the hint. */
static int check_domain(struct userdb *db, const char *domain)
{
	int rc = userdb_domain_exists(db, domain);
	if (rc == 0)
		fprintf(stderr,
			"postoffice: domain %s does not exist: add it with "
			"postoffice domain add %s\n",
			domain, domain);
	else if (rc < 0)
		fprintf(stderr, "postoffice: database error (see the log above)\n");
	return rc > 0 ? 0 : -1;
}

/* Normalises ADDRESS for a command, printing the error. */
static char *address_arg(const char *address)
{
	const char *error;
	char *norm = userdb_normalize_address(address, &error);
	if (norm == NULL)
		fprintf(stderr, "postoffice: %s: %s\n", error, address);
	return norm;
}

/* ---- domain ---- */

static int domain_add(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		char *error = NULL;
		if (userdb_domain_add(db, argv[i], &error) < 0)
			return fail(error);
		const char *nerr;
		char *norm = userdb_normalize_domain(argv[i], &nerr);
		printf("added domain %s\n", norm);
		free(norm);
	}
	return 0;
}

static int domain_del(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	char *error = NULL;
	if (userdb_domain_del(db, argv[0], opts.force, &error) < 0) {
		bool busy = strstr(error, "still has") != NULL;
		fprintf(stderr, "postoffice: %s%s\n", error,
			busy ? ": delete them first, or use --force" : "");
		free(error);
		return 1;
	}
	printf("deleted domain %s%s\n", argv[0],
	       opts.force ? " with its users and aliases (mail directories are kept)" : "");
	return 0;
}

static int print_domain(void *ctx, const char *domain, unsigned users, int64_t created)
{
	printf("%s users=%u\n", domain, users);
	return 0;
}

static int domain_list(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	char *error = NULL;
	return userdb_domain_list(db, print_domain, NULL, &error) < 0 ? fail(error) : 0;
}

/* ---- user ---- */

/* Where the user's mail is, for the messages (caller frees). */
static char *mail_location(const struct config *cfg, const char *address)
{
	struct store_config store_conf;
	store_config_init(&store_conf, cfg);
	return store_user_location(&store_conf, address);
}

/* The user's store with its folders, owned by the server (with what is
   made above it) when run as root.  Prints the error. */
static int create_mail(const struct config *cfg, const char *address)
{
	struct store_config store_conf;
	store_config_init(&store_conf, cfg);
	struct cli_owner o = cli_server_owner(cfg);
	char *error = NULL;
	if (store_user_create(&store_conf, address, o.uid, o.gid, &error) < 0) {
		fail(error);
		return -1;
	}
	return 0;
}

static int user_add(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	uint64_t quota = 0;
	if (opts.quota != NULL && parse_quota(opts.quota, &quota) < 0)
		return EXIT_USAGE;
	char *address = address_arg(argv[0]);
	if (address == NULL)
		return 1;
	struct userdb_user user;
	int ret = 1;
	if (check_domain(db, strrchr(address, '@') + 1) < 0)
		goto out;
	int found = userdb_user_lookup(db, address, &user);
	if (found != 0) {
		userdb_user_free(&user);
		fprintf(stderr,
			found > 0 ? "postoffice: user %s already exists\n"
				  : "postoffice: database error looking up %s\n",
			address);
		goto out;
	}
	char *prompt = xasprintf("password for %s: ", address);
	char *password = cli_read_password(prompt, 1);
	free(prompt);
	char *error = NULL;
	if (password == NULL) {
		fprintf(stderr, "postoffice: no password given\n");
		goto out;
	}
	int rc = userdb_user_add(db, address, password, quota, &error);
	explicit_bzero(password, strlen(password));
	free(password);
	if (rc < 0) {
		ret = fail(error);
		goto out;
	}
	if (create_mail(cfg, address) < 0) {
		if (userdb_user_del(db, address, &error) < 0)
			fail(error);
	} else {
		char *location = mail_location(cfg, address);
		printf("added user %s (mail in %s)\n", address, location);
		free(location);
		ret = 0;
	}
out:
	free(address);
	return ret;
}

static int user_passwd(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	char *address = address_arg(argv[0]);
	if (address == NULL)
		return 1;
	struct userdb_user user;
	int found = userdb_user_lookup(db, address, &user);
	int ret = 1;
	if (found <= 0) {
		fprintf(stderr,
			found == 0 ? "postoffice: user %s does not exist\n"
				   : "postoffice: database error looking up %s\n",
			address);
		free(address);
		return 1;
	}
	userdb_user_free(&user);
	char *prompt = xasprintf("new password for %s: ", address);
	char *password = cli_read_password(prompt, 1);
	free(prompt);
	char *error = NULL;
	if (password == NULL) {
		fprintf(stderr, "postoffice: no password given\n");
	} else if (userdb_user_passwd(db, address, password, &error) < 0) {
		fail(error);
	} else {
		printf("changed the password of %s\n", address);
		ret = 0;
	}
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	free(address);
	return ret;
}

/* Removes the user's store and all its mail, following no link (root must
   not be led to delete elsewhere).  Prints the error. */
static int purge_mail(const struct config *cfg, const char *address)
{
	struct store_config store_conf;
	store_config_init(&store_conf, cfg);
	char *error = NULL;
	if (store_user_purge(&store_conf, address, &error) < 0) {
		fail(error);
		return -1;
	}
	return 0;
}

static int user_del(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	char *address = address_arg(argv[0]);
	if (address == NULL)
		return 1;
	char *error = NULL;
	int ret = 0;
	if (userdb_user_del(db, address, &error) < 0) {
		free(address);
		return fail(error);
	}
	if (opts.purge) {
		if (purge_mail(cfg, address) < 0) {
			printf("deleted user %s; its mail could not be removed\n", address);
			ret = 1;
		} else {
			printf("deleted user %s and its mail\n", address);
		}
	} else {
		char *location = mail_location(cfg, address);
		printf("deleted user %s (mail kept in %s; --purge removes it)\n", address, location);
		free(location);
	}
	free(address);
	return ret;
}

static int print_user(void *ctx, const struct userdb_user *user)
{
	const struct config *cfg = ctx;
	char quota[32], usage[32];
	uint64_t bytes = 0;
	struct store_config store_conf;
	store_config_init(&store_conf, cfg);
	char *error = NULL;
	format_size(quota, sizeof(quota), user->quota, true);
	if (store_user_usage(&store_conf, user->address, &bytes, &error) == 1)
		format_size(usage, sizeof(usage), bytes, false);
	else
		snprintf(usage, sizeof(usage), "-"); /* no store yet, or unreadable */
	free(error);
	printf("%s quota=%s usage=%s\n", user->address, quota, usage);
	return 0;
}

static int user_list(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	char *error = NULL;
	if (argc > 0 && check_domain(db, argv[0]) < 0)
		return 1;
	return userdb_user_list(db, argc > 0 ? argv[0] : NULL, print_user, cfg, &error) < 0 ? fail(error) : 0;
}

static int user_quota(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	uint64_t quota;
	if (parse_quota(argv[1], &quota) < 0)
		return EXIT_USAGE;
	char *error = NULL;
	if (userdb_user_set_quota(db, argv[0], quota, &error) < 0)
		return fail(error);
	char text[32];
	format_size(text, sizeof(text), quota, true);
	printf("quota of %s set to %s\n", argv[0], text);
	return 0;
}

/* ---- alias ---- */

static int alias_add(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char *error = NULL;
		if (userdb_alias_add(db, argv[0], argv[i], &error) < 0)
			return fail(error);
		printf("added alias %s -> %s\n", argv[0], argv[i]);
	}
	return 0;
}

static int alias_del(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	for (int i = 1; i < argc || i == 1; i++) {
		char *error = NULL;
		const char *target = i < argc ? argv[i] : NULL;
		if (userdb_alias_del(db, argv[0], target, &error) < 0)
			return fail(error);
		if (target != NULL)
			printf("deleted alias %s -> %s\n", argv[0], target);
		else
			printf("deleted alias %s\n", argv[0]);
	}
	return 0;
}

static int print_alias(void *ctx, const char *source, const char *target)
{
	printf("%s -> %s\n", source, target);
	return 0;
}

static int alias_list(struct config *cfg, struct userdb *db, int argc, char **argv)
{
	char *error = NULL;
	if (argc > 0 && check_domain(db, argv[0]) < 0)
		return 1;
	return userdb_alias_list(db, argc > 0 ? argv[0] : NULL, print_alias, NULL, &error) < 0 ? fail(error)
											       : 0;
}

/* ---- dispatch ---- */

/* Prints the synopsis part of the usage text (up to its first blank line)
   after a mistake, with a pointer to the full text. */
static void short_usage(const char *cmd, void (*usage)(FILE *))
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (mem == NULL) {
		usage(stderr);
		return;
	}
	usage(mem);
	fclose(mem);
	char *blank = strstr(text, "\n\n");
	fprintf(stderr, "%.*s\n`postoffice %s --help` explains more\n",
		blank != NULL ? (int)(blank - text) : (int)len, text, cmd);
	free(text);
}

/* Takes the options out of argv (from index 2 on), leaving the arguments
   in args.  Returns the argument count, or -1 for an unknown option. */
static int parse_options(int argc, char **argv, const char *allowed, char **args, void (*usage)(FILE *))
{
	int n = 0;
	bool no_more = false;
	memset(&opts, 0, sizeof(opts));
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		bool is_opt = !no_more && a[0] == '-' && a[1] != '\0';
		if (!is_opt) {
			args[n++] = argv[i];
		} else if (!strcmp(a, "--")) {
			no_more = true;
		} else if (!strcmp(a, "--force") && strstr(allowed, "force")) {
			opts.force = true;
		} else if (!strcmp(a, "--purge") && strstr(allowed, "purge")) {
			opts.purge = true;
		} else if (!strcmp(a, "--quota") && strstr(allowed, "quota") && i + 1 < argc) {
			opts.quota = argv[++i];
		} else if (!strncmp(a, "--quota=", 8) && strstr(allowed, "quota")) {
			opts.quota = a + 8;
		} else {
			fprintf(stderr, "postoffice %s %s: unknown option '%s'\n", argv[0], argv[1], a);
			short_usage(argv[0], usage);
			return -1;
		}
	}
	return n;
}

static int dispatch(struct config *cfg, int argc, char **argv, const struct subcommand *subs, size_t nsubs,
		    const char *const *allowed, void (*usage)(FILE *))
{
	if (argc < 2) {
		short_usage(argv[0], usage);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < nsubs; i++) {
		const struct subcommand *sub = &subs[i];
		if (strcmp(argv[1], sub->name) != 0)
			continue;
		char **args = xcalloc((size_t)argc, sizeof(char *));
		int n = parse_options(argc, argv, allowed[i], args, usage);
		int ret = EXIT_USAGE;
		if (n >= 0 && (n < sub->min_args || (sub->max_args >= 0 && n > sub->max_args))) {
			fprintf(stderr, "postoffice %s %s: wrong number of arguments\n", argv[0], sub->name);
			short_usage(argv[0], usage);
		} else if (n >= 0) {
			struct userdb *db = open_db(cfg);
			ret = db == NULL ? 1 : sub->run(cfg, db, n, args);
			userdb_close(&db);
		}
		free(args);
		return ret;
	}
	fprintf(stderr, "postoffice %s: unknown subcommand '%s'\n", argv[0], argv[1]);
	short_usage(argv[0], usage);
	return EXIT_USAGE;
}

static void domain_usage(FILE *out)
{
	fprintf(out, "usage: postoffice domain add DOMAIN...\n"
		     "       postoffice domain del [--force] DOMAIN\n"
		     "       postoffice domain list\n\n"
		     "Manages the domains this server receives mail for.  Names are stored in\n"
		     "lowercase; internationalised names (U-labels) are stored in their A-label\n"
		     "form (xn--...).\n\n"
		     "  add     adds local domains\n"
		     "  del     deletes a domain; refuses while it has users or aliases unless\n"
		     "          --force, which deletes them too (mail directories are kept)\n"
		     "  list    lists the domains with their number of users\n");
}

static const struct subcommand domain_subs[] = {
    {"add", 1, -1, domain_add},
    {"del", 1, 1, domain_del},
    {"list", 0, 0, domain_list},
};
static const char *const domain_opts[] = {"", "force", ""};

static int domain_run(struct config *cfg, int argc, char **argv)
{
	return dispatch(cfg, argc, argv, domain_subs, N_ELEMENTS(domain_subs), domain_opts, domain_usage);
}

static void user_usage(FILE *out)
{
	fprintf(out, "usage: postoffice user add [--quota SIZE] ADDRESS\n"
		     "       postoffice user passwd ADDRESS\n"
		     "       postoffice user del [--purge] ADDRESS\n"
		     "       postoffice user list [DOMAIN]\n"
		     "       postoffice user quota ADDRESS SIZE\n\n"
		     "Manages mail users.  An address is LOCAL@DOMAIN and DOMAIN must have been\n"
		     "added with `postoffice domain add`.  Addresses are case-insensitive.\n"
		     "Passwords are read from the terminal without echo (asked twice), or from\n"
		     "standard input when it is not a terminal (one line).\n\n"
		     "  add     adds a user and creates its Maildir in DATA_DIR/mail/DOMAIN/LOCAL\n"
		     "  passwd  sets a new password\n"
		     "  del     deletes a user (and aliases pointing to it); its mail is kept\n"
		     "          unless --purge\n"
		     "  list    lists users with their quota and current usage\n"
		     "  quota   sets the quota\n\n"
		     "SIZE is bytes with an optional k, M or G suffix (1024-based); 0 or\n"
		     "\"unlimited\" for no limit.\n");
}

static const struct subcommand user_subs[] = {
    {"add", 1, 1, user_add},   {"passwd", 1, 1, user_passwd}, {"del", 1, 1, user_del},
    {"list", 0, 1, user_list}, {"quota", 2, 2, user_quota},
};
static const char *const user_opts[] = {"quota", "", "purge", "", ""};

static int user_run(struct config *cfg, int argc, char **argv)
{
	return dispatch(cfg, argc, argv, user_subs, N_ELEMENTS(user_subs), user_opts, user_usage);
}

static void alias_usage(FILE *out)
{
	fprintf(out, "usage: postoffice alias add SOURCE TARGET...\n"
		     "       postoffice alias del SOURCE [TARGET...]\n"
		     "       postoffice alias list [DOMAIN]\n\n"
		     "Manages aliases: mail to SOURCE is delivered to every TARGET instead.\n"
		     "SOURCE is LOCAL@DOMAIN in a local domain, or @DOMAIN for a catch-all that\n"
		     "takes mail for every address of DOMAIN that is neither a user nor an alias.\n"
		     "A TARGET is a local user, another alias or any remote address; a catch-all\n"
		     "may also point to @OTHERDOMAIN (same local part there).  Listing SOURCE\n"
		     "among its own targets keeps a copy in the user SOURCE.  Users may send as\n"
		     "the aliases that reach them.\n\n"
		     "  add     adds targets to SOURCE\n"
		     "  del     removes the given targets, or the whole alias without TARGET\n"
		     "  list    lists aliases, one SOURCE -> TARGET per line\n");
}

static const struct subcommand alias_subs[] = {
    {"add", 2, -1, alias_add},
    {"del", 1, -1, alias_del},
    {"list", 0, 1, alias_list},
};
static const char *const alias_opts[] = {"", "", ""};

static int alias_run(struct config *cfg, int argc, char **argv)
{
	return dispatch(cfg, argc, argv, alias_subs, N_ELEMENTS(alias_subs), alias_opts, alias_usage);
}

const struct cli_command cmd_domain = {
    "domain", "add|del|list ...", "manage local domains", domain_run, domain_usage,
};
const struct cli_command cmd_user = {
    "user", "add|passwd|del|list|quota ...", "manage mail users", user_run, user_usage,
};
const struct cli_command cmd_alias = {
    "alias", "add|del|list ...", "manage aliases and catch-alls", alias_run, alias_usage,
};
