#include "cli/cli.h"
#include "lib/xalloc.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

struct cli_owner cli_server_owner(const struct config *cfg)
{
	struct cli_owner o = {(uid_t)-1, (gid_t)-1};
	struct passwd *pw = geteuid() == 0 ? getpwnam(cfg->user) : NULL;
	if (pw != NULL) {
		o.uid = pw->pw_uid;
		o.gid = pw->pw_gid;
	}
	return o;
}

int cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	}
	return 0;
}

static char *read_line_noecho(const char *prompt)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO);
	if (tty) {
		fprintf(stderr, "%s", prompt);
		fflush(stderr);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

char *cli_read_password(const char *prompt, int confirm)
{
	char *pw = read_line_noecho(prompt);
	if (pw == NULL || !isatty(STDIN_FILENO) || !confirm)
		return pw;
	char *again = read_line_noecho("again: ");
	if (again == NULL || strcmp(pw, again) != 0) {
		fprintf(stderr, "postoffice: the passwords differ\n");
		free(pw);
		free(again);
		return NULL;
	}
	free(again);
	return pw;
}
