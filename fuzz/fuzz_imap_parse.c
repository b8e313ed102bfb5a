/* libFuzzer target for the IMAP command parser: the input is fed in chunks
   whose sizes come from the first byte, and every complete command is run
   through the typed parsers (FETCH, SEARCH, STORE, sequence sets, mailbox
   names). */
#include "imap/imap_parse.h"
#include "lib/xalloc.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static void exercise(const struct imap_command *cmd)
{
	struct pool *pool = pool_create(1024);
	const char *err;
	const struct imap_arg *args = cmd->args;
	unsigned int count = cmd->count;
	if (strcmp(cmd->name, "UID") == 0 && count > 0) {
		args++;
		count--;
	}
	struct imap_fetch_atts fetch;
	struct imap_search_args search;
	struct imap_store_args store;
	struct imap_seqset *set;
	const char *name;
	if (count > 1)
		(void)imap_fetch_parse(pool, args + 1, count - 1, &fetch, &err);
	(void)imap_search_parse(pool, args, count, &search, &err);
	(void)imap_store_parse(pool, args, count, &store, &err);
	if (count > 0) {
		if (args[0].type == IMAP_ARG_ATOM && imap_seqset_parse(pool, args[0].str, &set, &err) == 0)
			(void)imap_seqset_contains(set, 5, 10);
		if (imap_mailbox_parse(pool, &args[0], false, &name, &err) > 0)
			(void)imap_utf7_to_utf8(pool, name);
		(void)imap_mailbox_parse(pool, &args[0], true, &name, &err);
		time_t t;
		int tz;
		const char *s = imap_arg_astring(&args[0]);
		if (s != NULL) {
			(void)imap_parse_datetime(s, &t, &tz);
			(void)imap_utf8_to_utf7(pool, s);
		}
	}
	pool_destroy(&pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = (size_t)(data[0] % 16) + 1;
	bool preauth = (data[0] & 16) != 0; /* as before authentication */
	data++;
	size--;
	struct imap_parse_limits limits = {.max_line = 2048,
					   .max_literal = 4096,
					   .max_append_literal = 8192,
					   .max_depth = 8,
					   .max_args = 200,
					   .big_literal_fatal = preauth};
	struct imap_parser *p = imap_parser_create(&limits);
	size_t pos = 0;
	while (pos < size) {
		size_t n = size - pos < chunk ? size - pos : chunk;
		size_t used;
		enum imap_parse_result r = imap_parser_feed(p, data + pos, n, &used);
		if (used > n)
			__builtin_trap();
		pos += used;
		if (r == IMAP_PARSE_COMMAND)
			exercise(imap_parser_command(p));
		else if (r == IMAP_PARSE_ERROR && imap_parser_fatal(p))
			break;
		else if (r == IMAP_PARSE_MORE && used == 0 && n > 0)
			__builtin_trap();
	}
	imap_parser_destroy(&p);
	return 0;
}
