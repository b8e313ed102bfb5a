/* Unit tests for src/auth/sasl.c: PLAIN and LOGIN exchanges, good and
   malformed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/sasl.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mime/base64.h"

#include <stdlib.h>
#include <string.h>

/* Base64 of len raw bytes (which may contain NULs). */
static char *b64(const char *raw, size_t len)
{
	struct buf out = BUF_INIT;
	base64_encode(&out, raw, len);
	return buf_steal(&out);
}

/* Runs one step with a C-string line (NULL: no initial response). */
static int step(struct sasl_server *sasl, const char *line, char **challenge_r, const char **error_r)
{
	return sasl_server_step(sasl, line, line != NULL ? strlen(line) : 0, challenge_r, error_r);
}

struct plain_case {
	const char *raw; /* decoded response */
	size_t len;
	int expect;       /* 1 ok, -1 error */
	const char *user; /* on success */
	const char *password;
	const char *error; /* substring of the error on failure */
};

#define RAW(s) s, sizeof(s) - 1

static const struct plain_case plain_cases[] = {
    {RAW("\0alice@example.org\0secret"), 1, "alice@example.org", "secret", NULL},
    {RAW("alice@example.org\0alice@example.org\0secret"), 1, "alice@example.org", "secret", NULL},
    {RAW("ALICE@example.org\0alice@example.org\0pw"), 1, "alice@example.org", "pw", NULL},
    {RAW("\0bob\0p\xc3\xa4ss w0rd"), 1, "bob", "p\xc3\xa4ss w0rd", NULL},
    {RAW("\0j\xc3\xbcrgen@example.org\0x"), 1, "j\xc3\xbcrgen@example.org", "x", NULL},
    {RAW("eve@example.org\0alice@example.org\0secret"), -1, NULL, NULL, "authorization"},
    {RAW("alice@example.org"), -1, NULL, NULL, "missing NUL"},
    {RAW("\0alice@example.org"), -1, NULL, NULL, "missing NUL"},
    {RAW("alice\0secret"), -1, NULL, NULL, "missing NUL"},
    {RAW("\0alice@example.org\0"), -1, NULL, NULL, "empty password"},
    {RAW("\0\0secret"), -1, NULL, NULL, "empty user"},
    {RAW("\0alice\0sec\0ret"), -1, NULL, NULL, "NUL in password"},
    {RAW("\0al\xff"
	 "ice\0secret"),
     -1, NULL, NULL, "UTF-8"},
    {RAW("\0al\xc0\xafice\0secret"), -1, NULL, NULL, "UTF-8"},
    {RAW(""), -1, NULL, NULL, "missing NUL"},
};

static void test_plain_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(plain_cases); i++) {
		const struct plain_case *c = &plain_cases[i];
		struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN);
		char *line = b64(c->raw, c->len), *challenge = NULL;
		const char *error = NULL;
		int rc = step(sasl, c->len == 0 ? "=" : line, &challenge, &error);
		if (rc != c->expect)
			fail_msg("case %zu: rc %d, expected %d (error %s)", i, rc, c->expect,
				 error ? error : "-");
		assert_null(challenge);
		if (c->expect == 1) {
			assert_string_equal(sasl_server_user(sasl), c->user);
			assert_string_equal(sasl_server_password(sasl), c->password);
		} else {
			assert_non_null(error);
			if (strstr(error, c->error) == NULL)
				fail_msg("case %zu: error '%s' lacks '%s'", i, error, c->error);
			assert_null(sasl_server_user(sasl));
		}
		free(line);
		sasl_server_free(&sasl);
		assert_null(sasl);
	}
}

static void test_plain_without_initial_response(void **state)
{
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN);
	char *challenge = NULL;
	const char *error = NULL;
	assert_int_equal(step(sasl, NULL, &challenge, &error), 0);
	assert_string_equal(challenge, ""); /* RFC 4954: "334 " */
	free(challenge);
	char *line = b64(RAW("\0carol\0hunter2"));
	assert_int_equal(step(sasl, line, &challenge, &error), 1);
	assert_string_equal(sasl_server_user(sasl), "carol");
	assert_string_equal(sasl_server_password(sasl), "hunter2");
	/* The exchange is over. */
	assert_int_equal(step(sasl, line, &challenge, &error), -1);
	free(line);
	sasl_server_free(&sasl);
}

static void test_malformed_lines(void **state)
{
	static const struct {
		const char *line;
		const char *error;
	} cases[] = {
	    {"*", "cancelled"},
	    {"AGFsaWNlAHNlY3JldA", "invalid base64"},    /* missing padding */
	    {"AGFsaWNl AHNlY3JldA==", "invalid base64"}, /* space */
	    {"AGFsaWNlAHNlY3JldA=x", "invalid base64"},
	    {"!!!!", "invalid base64"},
	    {"=", "missing NUL"},
	    {"", "missing NUL"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN);
		char *challenge = NULL;
		const char *error = NULL;
		assert_int_equal(step(sasl, cases[i].line, &challenge, &error), -1);
		if (error == NULL || strstr(error, cases[i].error) == NULL)
			fail_msg("case %zu: error '%s', expected '%s'", i, error ? error : "-",
				 cases[i].error);
		sasl_server_free(&sasl);
	}
}

static void test_too_long(void **state)
{
	/* Decoded longer than SASL_MAX_RESPONSE. */
	size_t len = SASL_MAX_RESPONSE + 10;
	char *raw = xmalloc(len);
	memset(raw, 'a', len);
	raw[0] = '\0';
	raw[5] = '\0';
	char *line = b64(raw, len);
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN);
	char *challenge = NULL;
	const char *error = NULL;
	assert_int_equal(step(sasl, line, &challenge, &error), -1);
	assert_string_equal(error, "response too long");
	sasl_server_free(&sasl);

	/* A user name over SASL_MAX_USER octets. */
	memset(raw, 'u', SASL_MAX_USER + 2);
	raw[0] = '\0';
	raw[SASL_MAX_USER + 2] = '\0';
	raw[SASL_MAX_USER + 3] = 'p';
	free(line);
	line = b64(raw, SASL_MAX_USER + 4);
	sasl = sasl_server_new(SASL_MECH_PLAIN);
	assert_int_equal(step(sasl, line, &challenge, &error), -1);
	assert_string_equal(error, "user name too long");
	sasl_server_free(&sasl);

	/* Exactly 255 octets each must be accepted (RFC 4616 section 2). */
	struct buf ok = BUF_INIT;
	buf_append_char(&ok, '\0');
	for (int i = 0; i < 255; i++)
		buf_append_char(&ok, 'u');
	buf_append_char(&ok, '\0');
	for (int i = 0; i < 255; i++)
		buf_append_char(&ok, 'p');
	free(line);
	line = b64(ok.data, ok.len);
	sasl = sasl_server_new(SASL_MECH_PLAIN);
	assert_int_equal(step(sasl, line, &challenge, &error), 1);
	assert_int_equal(strlen(sasl_server_user(sasl)), 255);
	assert_int_equal(strlen(sasl_server_password(sasl)), 255);
	sasl_server_free(&sasl);
	buf_free(&ok);
	free(line);
	free(raw);
}

static void test_login(void **state)
{
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_LOGIN);
	char *challenge = NULL;
	const char *error = NULL;
	assert_int_equal(step(sasl, NULL, &challenge, &error), 0);
	assert_string_equal(challenge, "VXNlcm5hbWU6");
	free(challenge);
	char *user = sasl_client_login_response("dave@example.org");
	assert_int_equal(step(sasl, user, &challenge, &error), 0);
	assert_string_equal(challenge, "UGFzc3dvcmQ6");
	free(challenge);
	assert_null(sasl_server_user(sasl));
	char *pass = sasl_client_login_response("s3cret");
	assert_int_equal(step(sasl, pass, &challenge, &error), 1);
	assert_null(challenge);
	assert_string_equal(sasl_server_user(sasl), "dave@example.org");
	assert_string_equal(sasl_server_password(sasl), "s3cret");
	sasl_server_free(&sasl);

	/* With the user name as initial response (AUTH LOGIN <b64 user>). */
	sasl = sasl_server_new(SASL_MECH_LOGIN);
	assert_int_equal(step(sasl, user, &challenge, &error), 0);
	assert_string_equal(challenge, "UGFzc3dvcmQ6");
	free(challenge);
	assert_int_equal(step(sasl, pass, &challenge, &error), 1);
	assert_string_equal(sasl_server_user(sasl), "dave@example.org");
	sasl_server_free(&sasl);
	free(user);
	free(pass);
}

static void test_login_malformed(void **state)
{
	static const struct {
		const char *user_line; /* NULL: skip to the password step */
		const char *pass_line;
		const char *error;
	} cases[] = {
	    {"*", NULL, "cancelled"},
	    {"ZGF2ZQ==", "*", "cancelled"},
	    {"", NULL, "empty user name"},
	    {"=", NULL, "empty user name"},
	    {"ZGF2ZQ==", "", "empty password"},
	    {"ZGF2ZQ==", "=", "empty password"},
	    {"ZGF2", "cGFzcw", "invalid base64"},
	    {"ZGF%ZQ==", NULL, "invalid base64"},
	    {"AGRhdmU=", NULL, "NUL in user name"},      /* "\0dave" */
	    {"ZGF2ZQ==", "cGEAc3M=", "NUL in password"}, /* "pa\0ss" */
	    {"/w==", NULL, "UTF-8"},                     /* "\xff" */
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct sasl_server *sasl = sasl_server_new(SASL_MECH_LOGIN);
		char *challenge = NULL;
		const char *error = NULL;
		assert_int_equal(step(sasl, NULL, &challenge, &error), 0);
		free(challenge);
		int rc = step(sasl, cases[i].user_line, &challenge, &error);
		if (cases[i].pass_line != NULL) {
			assert_int_equal(rc, 0);
			free(challenge);
			rc = step(sasl, cases[i].pass_line, &challenge, &error);
		}
		assert_int_equal(rc, -1);
		assert_null(challenge);
		if (error == NULL || strstr(error, cases[i].error) == NULL)
			fail_msg("case %zu: error '%s', expected '%s'", i, error ? error : "-",
				 cases[i].error);
		/* Failed exchanges stay failed. */
		assert_int_equal(step(sasl, "ZGF2ZQ==", &challenge, &error), -1);
		sasl_server_free(&sasl);
	}
}

static void test_missing_response(void **state)
{
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_LOGIN);
	char *challenge = NULL;
	const char *error = NULL;
	assert_int_equal(step(sasl, NULL, &challenge, &error), 0);
	free(challenge);
	assert_int_equal(step(sasl, NULL, &challenge, &error), -1);
	assert_string_equal(error, "missing response");
	sasl_server_free(&sasl);
}

static void test_mech_names(void **state)
{
	enum sasl_mech mech;
	assert_int_equal(sasl_mech_parse("plain", &mech), 0);
	assert_int_equal(mech, SASL_MECH_PLAIN);
	assert_int_equal(sasl_mech_parse("LOGIN", &mech), 0);
	assert_int_equal(mech, SASL_MECH_LOGIN);
	assert_int_equal(sasl_mech_parse("CRAM-MD5", &mech), -1);
	assert_int_equal(sasl_mech_parse("", &mech), -1);
	assert_string_equal(sasl_mech_name(SASL_MECH_PLAIN), "PLAIN");
	assert_string_equal(sasl_mech_name(SASL_MECH_LOGIN), "LOGIN");
}

static void test_client_helpers(void **state)
{
	char *plain = sasl_client_plain("alice@example.org", "secret");
	/* base64("\0alice@example.org\0secret") */
	assert_string_equal(plain, "AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==");
	/* The client's output round-trips through the server. */
	struct sasl_server *sasl = sasl_server_new(SASL_MECH_PLAIN);
	char *challenge = NULL;
	const char *error = NULL;
	assert_int_equal(step(sasl, plain, &challenge, &error), 1);
	assert_string_equal(sasl_server_user(sasl), "alice@example.org");
	sasl_server_free(&sasl);
	free(plain);
	char *login = sasl_client_login_response("Username:");
	assert_string_equal(login, "VXNlcm5hbWU6");
	free(login);
	sasl_server_free(&sasl); /* NULL is fine */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_table),
	    cmocka_unit_test(test_plain_without_initial_response),
	    cmocka_unit_test(test_malformed_lines),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_login),
	    cmocka_unit_test(test_login_malformed),
	    cmocka_unit_test(test_missing_response),
	    cmocka_unit_test(test_mech_names),
	    cmocka_unit_test(test_client_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
