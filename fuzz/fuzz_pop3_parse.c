/* libFuzzer target for the POP3 command parser: any bytes as one command
   line.  Checks that pointers stay inside the line and numbers make sense. */
#include "pop3/pop3_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > POP3_LINE_MAX)
		return 0;
	/* A private copy, so reads past the end are caught by ASan. */
	char *line = malloc(size ? size : 1);
	memcpy(line, data, size);
	struct pop3_command cmd;
	const char *error = NULL;
	if (pop3_parse(line, size, &cmd, &error) < 0) {
		if (error == NULL || error[0] == '\0')
			abort();
	} else {
		if (cmd.cmd >= POP3_CMD_COUNT)
			abort();
		if (cmd.arg != NULL &&
		    (cmd.arg < line || cmd.arg + cmd.arg_len > line + size || cmd.arg_len == 0))
			abort();
		if (cmd.arg2 != NULL && (cmd.arg2 < line || cmd.arg2 + cmd.arg2_len > line + size))
			abort();
		if (memchr(line, '\0', size) != NULL)
			abort();
		(void)pop3_cmd_name(cmd.cmd);
	}
	free(line);
	return 0;
}
