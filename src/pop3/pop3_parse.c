/* POP3 command lines: "KEYWORD[ arg[ arg]]" (RFC 1939 section 3). */
#include "pop3/pop3_parse.h"
#include "lib/xalloc.h"

#include <string.h>
#include <strings.h>

enum arg_kind {
	ARGS_NONE,    /* no arguments */
	ARGS_NAME,    /* one word (USER) */
	ARGS_REST,    /* the rest of the line (PASS) */
	ARGS_MSG,     /* one message number (RETR, DELE) */
	ARGS_OPT_MSG, /* an optional message number (LIST, UIDL) */
	ARGS_TOP,     /* message number and line count */
	ARGS_AUTH,    /* optional mechanism and initial response */
	ARGS_ANY,     /* APOP: parsed only to be refused */
};

static const struct {
	const char *name;
	enum pop3_cmd cmd;
	enum arg_kind args;
} commands[] = {
    /* The download loop's commands first: the table is searched in order. */
    {"RETR", POP3_CMD_RETR, ARGS_MSG},     {"DELE", POP3_CMD_DELE, ARGS_MSG},
    {"TOP", POP3_CMD_TOP, ARGS_TOP},       {"USER", POP3_CMD_USER, ARGS_NAME},
    {"PASS", POP3_CMD_PASS, ARGS_REST},    {"APOP", POP3_CMD_APOP, ARGS_ANY},
    {"AUTH", POP3_CMD_AUTH, ARGS_AUTH},    {"STLS", POP3_CMD_STLS, ARGS_NONE},
    {"CAPA", POP3_CMD_CAPA, ARGS_NONE},    {"QUIT", POP3_CMD_QUIT, ARGS_NONE},
    {"STAT", POP3_CMD_STAT, ARGS_NONE},    {"LIST", POP3_CMD_LIST, ARGS_OPT_MSG},
    {"NOOP", POP3_CMD_NOOP, ARGS_NONE},    {"RSET", POP3_CMD_RSET, ARGS_NONE},
    {"UIDL", POP3_CMD_UIDL, ARGS_OPT_MSG},
};

const char *pop3_cmd_name(enum pop3_cmd cmd)
{
	for (size_t i = 0; i < N_ELEMENTS(commands); i++)
		if (commands[i].cmd == cmd)
			return commands[i].name;
	return "?";
}

/* A word: up to the next space or the end. */
struct word {
	const char *p;
	size_t len;
};

/* Splits at single or repeated spaces (clients differ); at most max words,
   returns how many, or max + 1 when there are more. */
static size_t split(const char *p, const char *end, struct word *words, size_t max)
{
	size_t n = 0;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		const char *start = p;
		while (p < end && *p != ' ')
			p++;
		if (n == max)
			return max + 1;
		words[n].p = start;
		words[n].len = (size_t)(p - start);
		n++;
	}
	return n;
}

/* A decimal number without sign or leading junk, at most UINT32_MAX. */
static int parse_number(const struct word *w, uint32_t *value_r)
{
	if (w->len == 0 || w->len > 10)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < w->len; i++) {
		if (w->p[i] < '0' || w->p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(w->p[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*value_r = (uint32_t)v;
	return 0;
}

static int parse_args(enum arg_kind kind, const char *p, const char *end, struct pop3_command *cmd,
		      const char **error_r)
{
	struct word w[2];
	size_t n;
	switch (kind) {
	case ARGS_NONE:
		if (split(p, end, w, 0) != 0) {
			*error_r = "Too many arguments";
			return -1;
		}
		return 0;
	case ARGS_ANY:
		return 0;
	case ARGS_REST:
		/* One space, then everything: passwords may contain spaces. */
		if (p < end && *p == ' ')
			p++;
		if (p == end) {
			*error_r = "Missing argument";
			return -1;
		}
		cmd->arg = p;
		cmd->arg_len = (size_t)(end - p);
		return 0;
	case ARGS_NAME:
		n = split(p, end, w, 1);
		if (n != 1) {
			*error_r = n == 0 ? "Missing argument" : "Too many arguments";
			return -1;
		}
		if (w[0].len > POP3_ARG_MAX) {
			*error_r = "Argument too long";
			return -1;
		}
		cmd->arg = w[0].p;
		cmd->arg_len = w[0].len;
		return 0;
	case ARGS_MSG:
	case ARGS_OPT_MSG:
		n = split(p, end, w, 1);
		if (n > 1 || (n == 0 && kind == ARGS_MSG)) {
			*error_r = n == 0 ? "Missing message number" : "Too many arguments";
			return -1;
		}
		if (n == 1 && parse_number(&w[0], &cmd->msg) < 0) {
			*error_r = "Invalid message number";
			return -1;
		}
		cmd->has_msg = n == 1;
		return 0;
	case ARGS_TOP:
		n = split(p, end, w, 2);
		if (n != 2) {
			*error_r =
			    n < 2 ? "TOP needs a message number and a line count" : "Too many arguments";
			return -1;
		}
		if (parse_number(&w[0], &cmd->msg) < 0) {
			*error_r = "Invalid message number";
			return -1;
		}
		if (parse_number(&w[1], &cmd->lines) < 0) {
			*error_r = "Invalid line count";
			return -1;
		}
		cmd->has_msg = true;
		return 0;
	case ARGS_AUTH:
		n = split(p, end, w, 2);
		if (n > 2) {
			*error_r = "Too many arguments";
			return -1;
		}
		if (n >= 1) {
			if (w[0].len > 40) {
				*error_r = "Mechanism name too long";
				return -1;
			}
			cmd->arg = w[0].p;
			cmd->arg_len = w[0].len;
		}
		if (n == 2) {
			cmd->arg2 = w[1].p;
			cmd->arg2_len = w[1].len;
		}
		return 0;
	}
	return 0;
}

int pop3_parse(const char *line, size_t len, struct pop3_command *cmd_r, const char **error_r)
{
	memset(cmd_r, 0, sizeof(*cmd_r));
	if (memchr(line, '\0', len) != NULL) {
		*error_r = "NUL byte in command";
		return -1;
	}
	const char *end = line + len;
	/* A stray CR (a client ending lines with CR CR LF) is not part of it. */
	while (end > line && (end[-1] == '\r' || end[-1] == '\n'))
		end--;
	const char *p = line;
	while (p < end && *p != ' ')
		p++;
	size_t klen = (size_t)(p - line);
	if (klen == 0) {
		*error_r = "Empty command";
		return -1;
	}
	for (size_t i = 0; i < N_ELEMENTS(commands); i++) {
		if (strlen(commands[i].name) != klen || strncasecmp(commands[i].name, line, klen) != 0)
			continue;
		cmd_r->cmd = commands[i].cmd;
		return parse_args(commands[i].args, p, end, cmd_r, error_r);
	}
	*error_r = "Unknown command";
	return -1;
}
