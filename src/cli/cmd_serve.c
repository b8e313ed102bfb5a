/* postoffice serve and postoffice check. */
#include "cli/cli.h"
#include "lib/paths.h"
#include "server/server.h"
#include "lib/log.h"

#include <stdio.h>
#include <string.h>

static void serve_usage(FILE *out)
{
	fprintf(out, "usage: postoffice [-c FILE] serve\n\n"
		     "Runs the mail server: SMTP (inbound and submission), the queue runner,\n"
		     "POP3 and IMAP, in the foreground, logging to stderr.\n"
		     "Without -c, " PO_CONFIG_FILE " is read when it exists; otherwise the\n"
		     "embedded default is used and that file is written with every option\n"
		     "commented out.  SIGTERM drains and stops, SIGHUP reloads the file.\n");
}

static int serve_run(struct config *cfg, int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "postoffice serve: unexpected argument '%s'\n", argv[1]);
		return 2;
	}
	log_init("postoffice", (enum log_level)cfg->log_level);
	return server_run(cfg);
}

const struct cli_command cmd_serve = {
    "serve", "", "run the mail server", serve_run, serve_usage,
};

static void check_usage(FILE *out)
{
	fprintf(out, "usage: postoffice [-c FILE] check [--defaults|--manual]\n\n"
		     "Reads the configuration and prints the effective settings; an unknown\n"
		     "option or a bad value is an error naming the file, line and option.\n"
		     "  --defaults   print the commented default file instead\n"
		     "  --manual     print the manual page postoffice.conf(5) (mdoc)\n");
}

static int check_run(struct config *cfg, int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--defaults")) {
		config_write_default(stdout);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--manual")) {
		config_write_manual(stdout);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "postoffice check: unexpected argument '%s'\n", argv[1]);
		return 2;
	}
	printf("# configuration: %s\n", cfg->file ? cfg->file : "embedded default");
	config_write_effective(cfg, stdout);
	return 0;
}

const struct cli_command cmd_check = {
    "check", "[--defaults|--manual]", "check the configuration and print it", check_run, check_usage,
};
