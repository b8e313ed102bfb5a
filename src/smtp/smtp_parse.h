#ifndef SMTP_SMTP_PARSE_H
#define SMTP_SMTP_PARSE_H
/* SMTP command parsing (RFC 5321 section 4.1): one command line in, a typed
   command out.  The line has no CRLF.  Strings in the result point into
   cmd->text and live as long as cmd. */
#include "smtp/smtp_dsn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_verb {
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_COUNT
};

#define SMTP_MAX_PARAMS 16
/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF; the
   SIZE, DSN and AUTH extensions add to it for MAIL and RCPT (RFC 1870 and
   RFC 3461 raise it by their parameters' lengths). */
#define SMTP_MAX_LINE 512
#define SMTP_MAX_MAIL_LINE 1024

struct smtp_param {
	char *keyword; /* upper-cased */
	char *value;   /* NULL when the parameter has none */
};

struct smtp_command {
	enum smtp_verb verb;
	char *arg;  /* text after the verb (HELO/EHLO/AUTH/BDAT/VRFY/HELP), "" if none */
	char *path; /* MAIL/RCPT: between < and >, brackets removed */
	struct smtp_param params[SMTP_MAX_PARAMS];
	int nparams;
	char text[SMTP_MAX_MAIL_LINE + 1];
};

enum smtp_parse_result {
	SMTP_PARSE_OK,
	SMTP_PARSE_UNKNOWN,  /* 500 5.5.1 unrecognized command */
	SMTP_PARSE_SYNTAX,   /* 501 5.5.4 (or 5.5.2) syntax error in arguments */
	SMTP_PARSE_TOO_LONG, /* 500 5.5.2 line too long */
};

/* Parses one line; on error *error_r is a static description. */
enum smtp_parse_result smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd,
					  const char **error_r);
const char *smtp_verb_name(enum smtp_verb verb);

/* MAIL FROM parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8,
   RFC 3461 RET and ENVID, RFC 4954 AUTH). */
struct smtp_mail_params {
	uint64_t size; /* 0 when not given */
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret; /* SMTP_RET_DEFAULT when not given */
	char *envid;       /* xtext-decoded, or NULL */
};
/* RCPT TO parameters (RFC 3461 NOTIFY and ORCPT). */
struct smtp_rcpt_params {
	unsigned notify; /* enum smtp_notify bits, 0 when not given */
	char *orcpt;     /* "rfc822;addr" with addr xtext-decoded, or NULL */
};
/* Validate and decode the parameters of a parsed MAIL or RCPT command.
   Decoded strings are written into cmd->text and share its lifetime.
   Returns 0, or -1 with *error_r (static text; the reply is 555 5.5.4 for
   an unknown parameter and 501 5.5.4 for a bad value). */
int smtp_mail_params_parse(struct smtp_command *cmd, struct smtp_mail_params *p, bool *unknown_r,
			   const char **error_r);
int smtp_rcpt_params_parse(struct smtp_command *cmd, struct smtp_rcpt_params *p, bool *unknown_r,
			   const char **error_r);
/* Decodes RFC 3461 xtext in place; -1 when malformed. */
int smtp_xtext_decode(char *s);
#endif
