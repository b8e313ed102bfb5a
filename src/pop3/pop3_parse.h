#ifndef POP3_POP3_PARSE_H
#define POP3_POP3_PARSE_H
/* The POP3 command parser (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS,
   RFC 5034 AUTH): one command line (without CRLF) in, a typed command out.
   Pure: no I/O, no session state; the session decides whether a command is
   allowed in its state and whether a message number exists. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest command line we read (RFC 2449 section 4 allows 255 octets for
   commands; AUTH responses may be longer, RFC 5034 section 4). */
#define POP3_LINE_MAX 4096
/* RFC 1939 section 3: arguments are at most 40 characters, but user names
   (addresses) may be longer in practice. */
#define POP3_ARG_MAX 320

enum pop3_cmd {
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_APOP,
	POP3_CMD_AUTH,
	POP3_CMD_STLS,
	POP3_CMD_CAPA,
	POP3_CMD_QUIT,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_NOOP,
	POP3_CMD_RSET,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
	POP3_CMD_COUNT
};

struct pop3_command {
	enum pop3_cmd cmd;
	bool has_msg;   /* LIST and UIDL: a message number was given */
	uint32_t msg;   /* RETR, DELE, TOP, LIST n, UIDL n (may be 0:
			   the session answers "no such message") */
	uint32_t lines; /* TOP: body lines */
	/* USER: the name; PASS: the rest of the line (spaces included, RFC
	   1939 section 7); AUTH: the mechanism (absent: list mechanisms).
	   Points into the parsed line, not NUL-terminated. */
	const char *arg;
	size_t arg_len;
	/* AUTH: the initial response, if any (RFC 5034 section 4). */
	const char *arg2;
	size_t arg2_len;
};

/* Parses line[0..len).  Returns 0 with *cmd_r, or -1 with *error_r (static
   text to send after "-ERR "): unknown command, bad or missing arguments,
   NUL bytes. */
int pop3_parse(const char *line, size_t len, struct pop3_command *cmd_r, const char **error_r);
/* The command's name in upper case ("RETR"). */
const char *pop3_cmd_name(enum pop3_cmd cmd);
#endif
