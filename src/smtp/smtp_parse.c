#include "smtp/smtp_parse.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const verb_names[SMTP_VERB_COUNT] = {
    "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT",     "RSET",
    "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH",
};

const char *smtp_verb_name(enum smtp_verb verb)
{
	return verb < SMTP_VERB_COUNT ? verb_names[verb] : "?";
}

static char *skip_spaces(char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* Splits "KEY[=VALUE] KEY[=VALUE]..." into cmd->params. */
static enum smtp_parse_result parse_params(char *p, struct smtp_command *cmd, const char **error_r)
{
	for (;;) {
		p = skip_spaces(p);
		if (*p == '\0')
			return SMTP_PARSE_OK;
		if (cmd->nparams == SMTP_MAX_PARAMS) {
			*error_r = "too many parameters";
			return SMTP_PARSE_SYNTAX;
		}
		struct smtp_param *param = &cmd->params[cmd->nparams++];
		param->keyword = p;
		param->value = NULL;
		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		if (!isalnum((unsigned char)*p)) {
			*error_r = "malformed parameter";
			return SMTP_PARSE_SYNTAX;
		}
		while (isalnum((unsigned char)*p) || *p == '-') {
			*p = (char)toupper((unsigned char)*p);
			p++;
		}
		if (*p == '=') {
			*p++ = '\0';
			param->value = p;
			/* esmtp-value = 1*(%d33-60 / %d62-126) plus UTF-8 (RFC 6531) */
			while (*p != '\0' && *p != ' ') {
				unsigned char c = (unsigned char)*p;
				if (c == '=' || c < 33 || c == 127) {
					*error_r = "malformed parameter value";
					return SMTP_PARSE_SYNTAX;
				}
				p++;
			}
			if (p == param->value) {
				*error_r = "empty parameter value";
				return SMTP_PARSE_SYNTAX;
			}
		}
		if (*p == ' ')
			*p++ = '\0';
		else if (*p != '\0') {
			*error_r = "malformed parameter";
			return SMTP_PARSE_SYNTAX;
		}
	}
}

/* "FROM:<path> params" or "TO:<path> params".  RFC 5321 has no space after
   the colon, but many clients send one and every server accepts it. */
static enum smtp_parse_result parse_path_arg(char *p, const char *prefix, struct smtp_command *cmd,
					     const char **error_r)
{
	size_t plen = strlen(prefix);
	if (strncasecmp(p, prefix, plen) != 0) {
		*error_r = cmd->verb == SMTP_VERB_MAIL ? "expected MAIL FROM:<address>"
						       : "expected RCPT TO:<address>";
		return SMTP_PARSE_SYNTAX;
	}
	p = skip_spaces(p + plen);
	if (*p != '<') {
		*error_r = "the address must be in angle brackets";
		return SMTP_PARSE_SYNTAX;
	}
	/* Find the closing '>' outside a quoted string. */
	char *start = ++p;
	bool quoted = false;
	for (; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '>' && !quoted)
			break;
	}
	if (*p != '>') {
		*error_r = "missing '>' after the address";
		return SMTP_PARSE_SYNTAX;
	}
	*p++ = '\0';
	cmd->path = start;
	if (*p != '\0' && *p != ' ') {
		*error_r = "unexpected text after the address";
		return SMTP_PARSE_SYNTAX;
	}
	return parse_params(p, cmd, error_r);
}

enum smtp_parse_result smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd,
					  const char **error_r)
{
	memset(cmd, 0, offsetof(struct smtp_command, text));
	cmd->arg = "";
	if (len > SMTP_MAX_MAIL_LINE) {
		*error_r = "line too long";
		return SMTP_PARSE_TOO_LONG;
	}
	if (memchr(line, '\0', len) != NULL) {
		*error_r = "NUL byte in command";
		return SMTP_PARSE_SYNTAX;
	}
	memcpy(cmd->text, line, len);
	cmd->text[len] = '\0';
	/* The limits are on the line as received, padding included. */
	size_t line_len = len;
	/* Trailing spaces are common and harmless. */
	while (len > 0 && (cmd->text[len - 1] == ' ' || cmd->text[len - 1] == '\t'))
		cmd->text[--len] = '\0';

	char *p = cmd->text;
	char *verb = p;
	while (isalpha((unsigned char)*p))
		p++;
	size_t vlen = (size_t)(p - verb);
	if (*p != '\0' && *p != ' ') {
		*error_r = "unrecognized command";
		return SMTP_PARSE_UNKNOWN;
	}
	int found = -1;
	for (int i = 0; i < SMTP_VERB_COUNT; i++)
		if (strlen(verb_names[i]) == vlen && strncasecmp(verb, verb_names[i], vlen) == 0)
			found = i;
	if (found < 0) {
		*error_r = "unrecognized command";
		return SMTP_PARSE_UNKNOWN;
	}
	cmd->verb = (enum smtp_verb)found;
	/* Only MAIL and RCPT may use the longer extended line. */
	if (line_len > SMTP_MAX_LINE - 2 && cmd->verb != SMTP_VERB_MAIL && cmd->verb != SMTP_VERB_RCPT) {
		*error_r = "line too long";
		return SMTP_PARSE_TOO_LONG;
	}
	if (*p == ' ')
		*p++ = '\0';
	cmd->arg = skip_spaces(p);

	switch (cmd->verb) {
	case SMTP_VERB_MAIL:
		return parse_path_arg(cmd->arg, "FROM:", cmd, error_r);
	case SMTP_VERB_RCPT:
		return parse_path_arg(cmd->arg, "TO:", cmd, error_r);
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		if (*cmd->arg == '\0') {
			*error_r = cmd->verb == SMTP_VERB_EHLO ? "EHLO needs a domain or address literal"
							       : "HELO needs a domain";
			return SMTP_PARSE_SYNTAX;
		}
		return SMTP_PARSE_OK;
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		if (*cmd->arg != '\0') {
			*error_r = "this command takes no arguments";
			return SMTP_PARSE_SYNTAX;
		}
		return SMTP_PARSE_OK;
	case SMTP_VERB_AUTH:
	case SMTP_VERB_BDAT:
		if (*cmd->arg == '\0') {
			*error_r =
			    cmd->verb == SMTP_VERB_AUTH ? "AUTH needs a mechanism" : "BDAT needs a size";
			return SMTP_PARSE_SYNTAX;
		}
		return SMTP_PARSE_OK;
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
		if (*cmd->arg == '\0') {
			*error_r = "an argument is required";
			return SMTP_PARSE_SYNTAX;
		}
		return SMTP_PARSE_OK;
	default:
		return SMTP_PARSE_OK;
	}
}

int smtp_xtext_decode(char *s)
{
	/* RFC 3461 4: xchar is %d33-42 / %d44-60 / %d62-126; "+" HEXCHAR HEXCHAR. */
	char *o = s;
	for (char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '+') {
			if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]) ||
			    islower((unsigned char)p[1]) || islower((unsigned char)p[2]))
				return -1;
			char hex[3] = {p[1], p[2], '\0'};
			/* "+00" would end the string early: refuse it. */
			if ((*o++ = (char)strtol(hex, NULL, 16)) == '\0')
				return -1;
			p += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return -1;
		} else {
			*o++ = (char)c;
		}
	}
	*o = '\0';
	return 0;
}

static int parse_size_value(const char *v, uint64_t *r)
{
	if (*v == '\0' || strlen(v) > 20)
		return -1;
	for (const char *p = v; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	errno = 0;
	unsigned long long n = strtoull(v, NULL, 10);
	if (errno != 0)
		return -1;
	*r = n;
	return 0;
}

int smtp_mail_params_parse(struct smtp_command *cmd, struct smtp_mail_params *p, bool *unknown_r,
			   const char **error_r)
{
	memset(p, 0, sizeof(*p));
	*unknown_r = false;
	unsigned seen = 0;
	for (int i = 0; i < cmd->nparams; i++) {
		const char *k = cmd->params[i].keyword;
		char *v = cmd->params[i].value;
		unsigned bit;
		if (!strcmp(k, "SIZE")) {
			bit = 1;
			if (v == NULL || parse_size_value(v, &p->size) < 0) {
				*error_r = "SIZE needs a number of octets";
				return -1;
			}
		} else if (!strcmp(k, "BODY")) {
			bit = 2;
			if (v != NULL && !strcasecmp(v, "7BIT"))
				p->body = SMTP_BODY_7BIT;
			else if (v != NULL && !strcasecmp(v, "8BITMIME"))
				p->body = SMTP_BODY_8BITMIME;
			else {
				*error_r = "BODY must be 7BIT or 8BITMIME";
				return -1;
			}
		} else if (!strcmp(k, "SMTPUTF8")) {
			bit = 4;
			if (v != NULL) {
				*error_r = "SMTPUTF8 takes no value";
				return -1;
			}
			p->smtputf8 = true;
		} else if (!strcmp(k, "RET")) {
			bit = 8;
			if (v != NULL && !strcasecmp(v, "FULL"))
				p->ret = SMTP_RET_FULL;
			else if (v != NULL && !strcasecmp(v, "HDRS"))
				p->ret = SMTP_RET_HDRS;
			else {
				*error_r = "RET must be FULL or HDRS";
				return -1;
			}
		} else if (!strcmp(k, "ENVID")) {
			bit = 16;
			if (v == NULL || smtp_xtext_decode(v) < 0 || strlen(v) > 100) {
				*error_r = "ENVID must be xtext of at most 100 characters";
				return -1;
			}
			p->envid = v;
		} else if (!strcmp(k, "AUTH")) {
			/* RFC 4954 5: accepted and not trusted. */
			bit = 32;
			if (v == NULL || smtp_xtext_decode(v) < 0) {
				*error_r = "AUTH needs an xtext value or <>";
				return -1;
			}
		} else {
			*unknown_r = true;
			*error_r = "unsupported parameter";
			return -1;
		}
		if (seen & bit) {
			*error_r = "parameter given twice";
			return -1;
		}
		seen |= bit;
	}
	return 0;
}

static int parse_notify(const char *v, unsigned *r)
{
	unsigned n = 0;
	const char *p = v;
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 5 && !strncasecmp(p, "NEVER", 5))
			n |= SMTP_NOTIFY_NEVER;
		else if (len == 7 && !strncasecmp(p, "SUCCESS", 7))
			n |= SMTP_NOTIFY_SUCCESS;
		else if (len == 7 && !strncasecmp(p, "FAILURE", 7))
			n |= SMTP_NOTIFY_FAILURE;
		else if (len == 5 && !strncasecmp(p, "DELAY", 5))
			n |= SMTP_NOTIFY_DELAY;
		else
			return -1;
		p += len;
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	/* RFC 3461 4.1: NEVER stands alone. */
	if (n == 0 || ((n & SMTP_NOTIFY_NEVER) && n != SMTP_NOTIFY_NEVER))
		return -1;
	*r = n;
	return 0;
}

int smtp_rcpt_params_parse(struct smtp_command *cmd, struct smtp_rcpt_params *p, bool *unknown_r,
			   const char **error_r)
{
	memset(p, 0, sizeof(*p));
	*unknown_r = false;
	bool seen_notify = false, seen_orcpt = false;
	for (int i = 0; i < cmd->nparams; i++) {
		const char *k = cmd->params[i].keyword;
		char *v = cmd->params[i].value;
		if (!strcmp(k, "NOTIFY")) {
			if (seen_notify || v == NULL || parse_notify(v, &p->notify) < 0) {
				*error_r = "NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY";
				return -1;
			}
			seen_notify = true;
		} else if (!strcmp(k, "ORCPT")) {
			/* ORCPT=addr-type ";" xtext (RFC 3461 4.2) */
			char *semi = v ? strchr(v, ';') : NULL;
			if (seen_orcpt || semi == NULL || semi == v || smtp_xtext_decode(semi + 1) < 0 ||
			    semi[1] == '\0' || strlen(v) > 500) {
				*error_r = "ORCPT must be addr-type;xtext";
				return -1;
			}
			p->orcpt = v;
			seen_orcpt = true;
		} else {
			*unknown_r = true;
			*error_r = "unsupported parameter";
			return -1;
		}
	}
	return 0;
}
