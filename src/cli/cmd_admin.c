/* `postoffice admin`: the accounts of the admin status page
   (auth/admin_account.h, server/admin.h). */
#include "auth/admin_account.h"
#include "auth/password.h"
#include "cli/cli.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void admin_usage(FILE *out)
{
	fprintf(out, "usage: postoffice admin add NAME\n"
		     "       postoffice admin del NAME\n"
		     "       postoffice admin list\n\n"
		     "Accounts that may log in to the status page ([admin] listen) and manage the\n"
		     "queue there.  They are not mail users: they live in DATA_DIR/admins, one\n"
		     "yescrypt hash each, read again at every login (no restart needed).\n\n"
		     "  add   add NAME, or change its password (read from standard input, or\n"
		     "        asked twice on a terminal)\n"
		     "  del   remove NAME (its open sessions end at their next request)\n"
		     "  list  the names\n");
}

/* The data directory, made (owned by the server's user) when missing. */
static int open_data_dir(const struct config *cfg, bool create)
{
	char *error = NULL;
	struct cli_owner o = cli_server_owner(cfg);
	if (create && access(cfg->data_dir, F_OK) < 0) {
		if (fs_mkdir_p(cfg->data_dir, 0750, &error) < 0) {
			fprintf(stderr, "postoffice admin: %s\n", error);
			free(error);
			return -1;
		}
		if (o.uid != (uid_t)-1)
			fs_chown_tree(cfg->data_dir, o.uid, o.gid, false);
	}
	int fd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "postoffice admin: cannot open %s: %m\n", cfg->data_dir);
	return fd;
}

/* The file, owned by the server's user. */
static int save(const struct config *cfg, int dirfd, const struct admin_accounts *a)
{
	struct cli_owner o = cli_server_owner(cfg);
	char *error = NULL;
	if (admin_accounts_save(dirfd, cfg->data_dir, a, o.uid, o.gid, &error) < 0) {
		fprintf(stderr, "postoffice admin: %s\n", error);
		free(error);
		return -1;
	}
	return 0;
}

static int admin_add(const struct config *cfg, int dirfd, struct admin_accounts *a, const char *name)
{
	char *prompt = xasprintf("password for admin %s: ", name);
	char *password = cli_read_password(prompt, 1);
	free(prompt);
	if (password == NULL || *password == '\0' || strlen(password) > PASSWORD_MAX_LEN) {
		fprintf(stderr, "postoffice admin: no password given (or longer than %d bytes)\n",
			PASSWORD_MAX_LEN);
		free(password);
		return 1;
	}
	char *hash = NULL;
	int rc = password_hash(password, &hash);
	explicit_bzero(password, strlen(password));
	free(password);
	if (rc < 0) {
		fprintf(stderr, "postoffice admin: cannot hash the password\n");
		return 1;
	}
	bool replaced = admin_accounts_set(a, name, hash) == 1;
	free(hash);
	if (save(cfg, dirfd, a) < 0)
		return 1;
	printf("%s admin %s\n", replaced ? "changed the password of" : "added", name);
	return 0;
}

static int admin_del(const struct config *cfg, int dirfd, struct admin_accounts *a, const char *name)
{
	if (admin_accounts_remove(a, name) != 0) {
		fprintf(stderr, "postoffice admin: no admin %s\n", name);
		return 1;
	}
	if (save(cfg, dirfd, a) < 0)
		return 1;
	printf("removed admin %s\n", name);
	return 0;
}

static int admin_run(struct config *cfg, int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "";
	bool list = !strcmp(verb, "list") && argc == 2;
	bool named = (!strcmp(verb, "add") || !strcmp(verb, "del")) && argc == 3;
	if (!list && !named) {
		admin_usage(stderr);
		return 2;
	}
	if (named && !admin_account_name_valid(argv[2])) {
		fprintf(stderr,
			"postoffice admin: '%s' is not a valid name (1-%d letters, digits, . _ - @)\n",
			argv[2], ADMIN_NAME_MAX);
		return 2;
	}
	int dirfd = open_data_dir(cfg, !strcmp(verb, "add"));
	if (dirfd < 0)
		return 1;
	struct admin_accounts a;
	char *error = NULL;
	int rc = 1;
	if (admin_accounts_load(dirfd, &a, &error) < 0) {
		fprintf(stderr, "postoffice admin: %s\n", error);
		free(error);
	} else if (list) {
		for (size_t i = 0; i < a.count; i++)
			printf("%s\n", a.v[i].name);
		rc = 0;
	} else if (!strcmp(verb, "add")) {
		rc = admin_add(cfg, dirfd, &a, argv[2]);
	} else {
		rc = admin_del(cfg, dirfd, &a, argv[2]);
	}
	admin_accounts_free(&a);
	close(dirfd);
	return rc;
}

const struct cli_command cmd_admin = {
    .name = "admin",
    .synopsis = "add NAME|del NAME|list",
    .summary = "manage the accounts of the admin status page",
    .run = admin_run,
    .usage = admin_usage,
};
