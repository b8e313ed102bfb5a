/* libFuzzer target for the SMTP command parser: the input is split into
   lines at LF; each line goes through smtp_command_parse(), MAIL and RCPT
   through their parameter parsers and smtp_path_parse(), and every error
   text through the reply formatter.  The first byte picks the SMTPUTF8
   default. */
#include "smtp/smtp_parse.h"
#include "smtp/smtp_path.h"
#include "smtp/smtp_reply.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static void check_path(const char *text, bool mail, bool utf8)
{
	struct smtp_path p;
	const char *error = NULL;
	if (smtp_path_parse(text, mail, utf8, &p, &error) < 0) {
		if (error == NULL || p.address != NULL)
			__builtin_trap();
		return;
	}
	/* What is accepted is an address that parses back to itself. */
	if (p.address[0] != '\0' && strcmp(p.address, "postmaster") != 0) {
		struct smtp_path again;
		if (smtp_path_parse(p.address, mail, true, &again, &error) < 0 ||
		    strcmp(again.address, p.address) != 0)
			__builtin_trap();
		smtp_path_free(&again);
	}
	smtp_path_free(&p);
}

static void exercise(const char *line, size_t len, bool utf8)
{
	static struct smtp_command cmd;
	const char *error = NULL;
	enum smtp_parse_result r = smtp_command_parse(line, len, &cmd, &error);
	if (r != SMTP_PARSE_OK) {
		if (error == NULL)
			__builtin_trap();
		struct buf out = BUF_INIT;
		smtp_reply_format(&out, 501, "5.5.4", error);
		buf_free(&out);
		return;
	}
	if (cmd.verb >= SMTP_VERB_COUNT || cmd.nparams < 0 || cmd.nparams > SMTP_MAX_PARAMS)
		__builtin_trap();
	for (int i = 0; i < cmd.nparams; i++)
		for (const char *k = cmd.params[i].keyword; *k != '\0'; k++)
			if (*k >= 'a' && *k <= 'z')
				__builtin_trap();
	bool unknown;
	if (cmd.verb == SMTP_VERB_MAIL) {
		struct smtp_mail_params mp;
		if (smtp_mail_params_parse(&cmd, &mp, &unknown, &error) == 0 && mp.smtputf8)
			utf8 = true;
		check_path(cmd.path, true, utf8);
	} else if (cmd.verb == SMTP_VERB_RCPT) {
		struct smtp_rcpt_params rp;
		if (smtp_rcpt_params_parse(&cmd, &rp, &unknown, &error) == 0 && rp.notify != 0 &&
		    (rp.notify & SMTP_NOTIFY_NEVER) && rp.notify != SMTP_NOTIFY_NEVER)
			__builtin_trap();
		check_path(cmd.path, false, utf8);
	} else {
		/* VRFY, HELO and friends: their argument as a path too. */
		check_path(cmd.arg, false, utf8);
		struct buf out = BUF_INIT;
		smtp_reply_format(&out, 250, NULL, cmd.arg);
		buf_free(&out);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool utf8 = data[0] & 1;
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	while (p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);
		/* io_read_line() removes a CR before the LF */
		size_t cmdlen = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
		exercise(p, cmdlen, utf8);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return 0;
}
