#ifndef CLI_CLI_H
#define CLI_CLI_H
/* `postoffice` subcommands.  main() strips the global "-c FILE" option,
   loads the configuration and calls the command's run() with argv[0] set to
   the command name. */
#include "lib/config.h"
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

struct cli_command {
	const char *name;
	const char *synopsis; /* arguments, for the usage line */
	const char *summary;  /* one line for `postoffice --help` */
	int (*run)(struct config *cfg, int argc, char **argv);
	void (*usage)(FILE *out); /* full help for `postoffice CMD --help` */
};

/* True when argv has -h or --help (commands call this first). */
int cli_wants_help(int argc, char **argv);
/* Reads a password: from stdin when it is not a terminal, else prompted
   twice without echo when confirm is set.  Returns NULL on error. */
char *cli_read_password(const char *prompt, int confirm);

/* Run as root, commands make what they create owned by the server's user
   ([server] user).  DATA_DIR belongs to that user, who can plant links
   below it: nothing below DATA_DIR is followed (see lib/fsutil.h). */
struct cli_owner {
	uid_t uid; /* (uid_t)-1: not root, or no such user: ownership is kept */
	gid_t gid;
};
struct cli_owner cli_server_owner(const struct config *cfg);

/* The checks of `postoffice dns DOMAIN` (cmd_dns.c): every record the
   domain needs, one line each; for `doctor`, only MX, SPF and the PTR of
   the outgoing addresses (ips, or the host name's addresses), as doctor
   lines.  Returns the number of records that are not right, -1 when no
   resolver could be made. */
int cli_dns_check(struct config *cfg, const char *domain, char **ips, size_t nips, bool doctor);

/* Commands, each in its own cmd_*.c file. */
extern const struct cli_command cmd_serve, cmd_check, cmd_domain, cmd_user, cmd_alias, cmd_show;
extern const struct cli_command cmd_queue, cmd_send, cmd_sendmail, cmd_fetch, cmd_dkim, cmd_spf, cmd_dns,
    cmd_doctor, cmd_admin, cmd_db, cmd_migrate;
#endif
