/* postoffice: the command-line entry point and its subcommand table. */
#include "cli/cli.h"
#include "lib/log.h"
#include "lib/paths.h"
#include "lib/xalloc.h"
#include "queue/spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_command *const commands[] = {
    &cmd_serve, &cmd_show,   &cmd_check,    &cmd_domain, &cmd_user,    &cmd_alias,
    &cmd_queue, &cmd_send,   &cmd_sendmail, &cmd_fetch,  &cmd_dkim,    &cmd_spf,
    &cmd_dns,   &cmd_doctor, &cmd_admin,    &cmd_db,     &cmd_migrate,
};

static void usage(FILE *out)
{
	fprintf(out, "usage: postoffice [-c FILE] COMMAND [ARGS]\n\n"
		     "A complete Internet mail system: SMTP, queue and relay, Maildir storage,\n"
		     "POP3 and IMAP, and the client tools around them.\n\ncommands:\n");
	int width = 0;
	for (size_t i = 0; i < N_ELEMENTS(commands); i++)
		if ((int)strlen(commands[i]->name) > width)
			width = (int)strlen(commands[i]->name);
	for (size_t i = 0; i < N_ELEMENTS(commands); i++)
		fprintf(out, "  %-*s  %s\n", width, commands[i]->name, commands[i]->summary);
	fprintf(out, "\noptions for every command:\n"
		     "  -c FILE    configuration file (default: " PO_CONFIG_FILE " when it\n"
		     "             exists, else the embedded default)\n"
		     "  -h, --help this text; `postoffice COMMAND --help` for one command\n");
}

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(commands); i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	log_init("postoffice", LOG_INFO);

	/* Invoked as "sendmail" through a symlink: the sendmail interface. */
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	const struct cli_command *cmd = NULL;
	int first = 1;
	if (!strcmp(base, "sendmail") && (cmd = find_command("sendmail")) != NULL)
		first = 1;

	/* Take -c FILE / --config FILE from anywhere in argv. */
	char **args = xcalloc((size_t)argc + 1, sizeof(char *));
	int nargs = 0;
	for (int i = first; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && cmd == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "postoffice: -c needs a file name\n");
				return 2;
			}
			config_path = argv[++i];
		} else if (!strncmp(argv[i], "--config=", 9) && cmd == NULL) {
			config_path = argv[i] + 9;
		} else {
			args[nargs++] = argv[i];
		}
	}
	if (cmd == NULL) {
		if (nargs == 0 || !strcmp(args[0], "-h") || !strcmp(args[0], "--help") ||
		    !strcmp(args[0], "help")) {
			usage(nargs == 0 ? stderr : stdout);
			free(args);
			return nargs == 0 ? 2 : 0;
		}
		cmd = find_command(args[0]);
		if (cmd == NULL) {
			fprintf(stderr, "postoffice: unknown command '%s'; `postoffice --help` lists them\n",
				args[0]);
			free(args);
			return 2;
		}
	} else {
		memmove(args + 1, args, (size_t)nargs * sizeof(char *));
		args[0] = (char *)cmd->name;
		nargs++;
	}
	if (cli_wants_help(nargs, args)) {
		cmd->usage(stdout);
		free(args);
		return 0;
	}

	struct config cfg;
	char *error = NULL;
	if (config_path == NULL && access(PO_CONFIG_FILE, F_OK) == 0)
		config_path = PO_CONFIG_FILE;
	if (config_load(&cfg, config_path, &error) < 0) {
		fprintf(stderr, "postoffice: %s\n", error);
		free(error);
		free(args);
		return 1;
	}
	config_finish(&cfg);
	if (queue_backend_open_config(&cfg, &error) < 0) {
		fprintf(stderr, "postoffice: %s\n", error);
		free(error);
		config_free(&cfg);
		free(args);
		return 1;
	}
	int rc = cmd->run(&cfg, nargs, args);
	config_free(&cfg);
	free(args);
	return rc;
}
