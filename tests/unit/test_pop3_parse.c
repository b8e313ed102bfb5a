/* Unit tests for src/pop3/pop3_parse.c: every command, argument forms,
   and malformed lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pop3/pop3_parse.h"
#include "lib/xalloc.h"

#include <string.h>

struct parse_case {
	const char *line;
	size_t len; /* 0: strlen(line) */
	int rc;
	enum pop3_cmd cmd;
	bool has_msg;
	uint32_t msg;
	uint32_t lines;
	const char *arg; /* expected arg (NULL: none) */
	const char *arg2;
	const char *error; /* substring of the error */
};

#define OK(l, c)                                                                                             \
	{                                                                                                    \
		l, 0, 0, c, false, 0, 0, NULL, NULL, NULL                                                    \
	}
#define OKMSG(l, c, m)                                                                                       \
	{                                                                                                    \
		l, 0, 0, c, true, m, 0, NULL, NULL, NULL                                                     \
	}
#define OKARG(l, c, a)                                                                                       \
	{                                                                                                    \
		l, 0, 0, c, false, 0, 0, a, NULL, NULL                                                       \
	}
#define BAD(l, e)                                                                                            \
	{                                                                                                    \
		l, 0, -1, 0, false, 0, 0, NULL, NULL, e                                                      \
	}

static const struct parse_case cases[] = {
    OK("CAPA", POP3_CMD_CAPA),
    OK("capa", POP3_CMD_CAPA),
    OK("StLs", POP3_CMD_STLS),
    OK("QUIT", POP3_CMD_QUIT),
    OK("STAT", POP3_CMD_STAT),
    OK("NOOP", POP3_CMD_NOOP),
    OK("RSET", POP3_CMD_RSET),
    OK("LIST", POP3_CMD_LIST),
    OK("UIDL", POP3_CMD_UIDL),
    OK("STAT ", POP3_CMD_STAT),  /* trailing space tolerated */
    OK("QUIT\r", POP3_CMD_QUIT), /* stray CR */
    OKMSG("LIST 1", POP3_CMD_LIST, 1),
    OKMSG("UIDL 42", POP3_CMD_UIDL, 42),
    OKMSG("RETR 1", POP3_CMD_RETR, 1),
    OKMSG("RETR  7", POP3_CMD_RETR, 7), /* two spaces */
    OKMSG("RETR 0", POP3_CMD_RETR, 0),  /* the session says no such message */
    OKMSG("DELE 4294967295", POP3_CMD_DELE, 4294967295u),
    OKMSG("dele 3", POP3_CMD_DELE, 3),
    {"TOP 1 10", 0, 0, POP3_CMD_TOP, true, 1, 10, NULL, NULL, NULL},
    {"TOP 2 0", 0, 0, POP3_CMD_TOP, true, 2, 0, NULL, NULL, NULL},
    OKARG("USER alice@example.org", POP3_CMD_USER, "alice@example.org"),
    OKARG("PASS secret", POP3_CMD_PASS, "secret"),
    OKARG("PASS with spaces  inside ", POP3_CMD_PASS, "with spaces  inside "),
    OKARG("PASS  lead", POP3_CMD_PASS, " lead"),
    OK("AUTH", POP3_CMD_AUTH),
    OKARG("AUTH PLAIN", POP3_CMD_AUTH, "PLAIN"),
    {"AUTH PLAIN AGFsaWNlAHNlY3JldA==", 0, 0, POP3_CMD_AUTH, false, 0, 0, "PLAIN",
     "AGFsaWNlAHNlY3JldA==", NULL},
    {"AUTH PLAIN =", 0, 0, POP3_CMD_AUTH, false, 0, 0, "PLAIN", "=", NULL},
    OK("APOP alice 0123456789abcdef", POP3_CMD_APOP),

    BAD("", "Empty"),
    BAD(" STAT", "Empty"),
    BAD("FOO", "Unknown"),
    BAD("RETRX 1", "Unknown"),
    BAD("RET 1", "Unknown"),
    BAD("EHLO example.org", "Unknown"),
    BAD("\xff\xfe", "Unknown"),
    BAD("STAT 1", "Too many"),
    BAD("QUIT now", "Too many"),
    BAD("RETR", "Missing"),
    BAD("RETR ", "Missing"),
    BAD("RETR 1 2", "Too many"),
    BAD("RETR -1", "Invalid message"),
    BAD("RETR +1", "Invalid message"),
    BAD("RETR 1a", "Invalid message"),
    BAD("RETR 4294967296", "Invalid message"),
    BAD("RETR 99999999999999999999", "Invalid message"),
    BAD("DELE x", "Invalid message"),
    BAD("LIST 1 2", "Too many"),
    BAD("LIST abc", "Invalid message"),
    BAD("TOP 1", "TOP needs"),
    BAD("TOP", "TOP needs"),
    BAD("TOP 1 -5", "Invalid line count"),
    BAD("TOP x 5", "Invalid message"),
    BAD("TOP 1 2 3", "Too many"),
    BAD("USER", "Missing"),
    BAD("USER a b", "Too many"),
    BAD("PASS", "Missing"),
    BAD("PASS ", "Missing"),
    BAD("AUTH PLAIN a b", "Too many"),
    BAD("AUTH AVERYVERYVERYLONGMECHANISMNAMEOVERFORTYCHARS", "too long"),
    {"STAT\0", 5, -1, 0, false, 0, 0, NULL, NULL, "NUL"},
    {"US\0ER a", 7, -1, 0, false, 0, 0, NULL, NULL, "NUL"},
    {"PASS se\0cret", 12, -1, 0, false, 0, 0, NULL, NULL, "NUL"},
};

static void test_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const struct parse_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->line);
		struct pop3_command cmd;
		const char *error = NULL;
		int rc = pop3_parse(c->line, len, &cmd, &error);
		if (rc != c->rc)
			fail_msg("case %zu \"%s\": rc %d, expected %d (%s)", i, c->line, rc, c->rc,
				 error ? error : "");
		if (rc < 0) {
			assert_non_null(error);
			if (strstr(error, c->error) == NULL)
				fail_msg("case %zu \"%s\": error \"%s\" lacks \"%s\"", i, c->line, error,
					 c->error);
			continue;
		}
		if (cmd.cmd != c->cmd)
			fail_msg("case %zu \"%s\": command %d, expected %d", i, c->line, cmd.cmd, c->cmd);
		assert_int_equal(cmd.has_msg, c->has_msg);
		assert_int_equal(cmd.msg, c->msg);
		assert_int_equal(cmd.lines, c->lines);
		if (c->arg != NULL) {
			assert_non_null(cmd.arg);
			assert_int_equal(cmd.arg_len, strlen(c->arg));
			assert_memory_equal(cmd.arg, c->arg, cmd.arg_len);
		} else if (c->cmd != POP3_CMD_APOP) {
			assert_null(cmd.arg);
		}
		if (c->arg2 != NULL) {
			assert_int_equal(cmd.arg2_len, strlen(c->arg2));
			assert_memory_equal(cmd.arg2, c->arg2, cmd.arg2_len);
		} else {
			assert_null(cmd.arg2);
		}
	}
}

static void test_names(void **state)
{
	assert_string_equal(pop3_cmd_name(POP3_CMD_RETR), "RETR");
	assert_string_equal(pop3_cmd_name(POP3_CMD_TOP), "TOP");
	assert_string_equal(pop3_cmd_name(POP3_CMD_UIDL), "UIDL");
	for (int c = 0; c < POP3_CMD_COUNT; c++) {
		const char *name = pop3_cmd_name((enum pop3_cmd)c);
		struct pop3_command cmd;
		const char *error;
		/* Every name parses back to its command (arguments aside). */
		int rc = pop3_parse(name, strlen(name), &cmd, &error);
		if (rc == 0)
			assert_int_equal(cmd.cmd, c);
		else
			assert_true(strstr(error, "Missing") || strstr(error, "TOP needs"));
	}
}

/* Long arguments: USER is bounded, PASS up to the line. */
static void test_long_args(void **state)
{
	char line[POP3_LINE_MAX + 16];
	struct pop3_command cmd;
	const char *error;
	memcpy(line, "USER ", 5);
	memset(line + 5, 'a', POP3_ARG_MAX);
	assert_int_equal(pop3_parse(line, 5 + POP3_ARG_MAX, &cmd, &error), 0);
	memset(line + 5, 'a', POP3_ARG_MAX + 1);
	assert_int_equal(pop3_parse(line, 6 + POP3_ARG_MAX, &cmd, &error), -1);
	assert_non_null(strstr(error, "too long"));
	memcpy(line, "PASS ", 5);
	memset(line + 5, 'p', 2000);
	assert_int_equal(pop3_parse(line, 2005, &cmd, &error), 0);
	assert_int_equal(cmd.arg_len, 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_long_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
