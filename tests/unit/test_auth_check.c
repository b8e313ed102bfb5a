/* Unit tests for src/auth/auth_check.c: the user lookup runs in
   auth_check_verify() (the job thread), not in auth_check_prepare() (the
   event loop); the penalty table counts a known and an unknown account by
   the normal form of the name given, as a lookup would find it; a lookup
   that fails refuses the login as unavailable and takes back its check in
   flight.  The user database is a fake backend that counts lookups and
   can fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/auth_check.h"
#include "auth/password.h"
#include "auth/userdb_backend.h"
#include "lib/config.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

static int lookups;
static bool fail_lookups;
static char *alice_hash;

static int fake_user_lookup(struct userdb *db, const char *address, struct userdb_user *user_r)
{
	lookups++;
	if (fail_lookups)
		return -1;
	if (strcmp(address, "alice@example.org") != 0)
		return 0;
	user_r->address = xstrdup(address);
	user_r->local = xstrdup("alice");
	user_r->domain = xstrdup("example.org");
	user_r->password_hash = xstrdup(alice_hash);
	user_r->quota = 1234;
	return 1;
}

static const struct userdb_backend fake_backend = {
    .name = "fake",
    .user_lookup = fake_user_lookup,
};
static struct userdb fake_db = {.be = &fake_backend};

static struct config cfg;

static int setup(void **state)
{
	assert_int_equal(password_hash("right", &alice_hash), 0);
	cfg.auth_penalty_ip_failures = 2;
	cfg.auth_penalty_account_failures = 30;
	cfg.auth_penalty_window = 60;
	cfg.auth_penalty_lockout = 300;
	cfg.auth_failure_delay = 0;
	cfg.auth_penalty_max_delay = 0;
	return 0;
}

static int teardown(void **state)
{
	free(alice_hash);
	return 0;
}

static struct auth_penalty *table_new(void)
{
	char *error = NULL;
	struct auth_penalty *t = auth_penalty_create(1024, &error);
	if (t == NULL)
		fail_msg("create: %s", error);
	return t;
}

static void test_lookup_on_the_job(void **state)
{
	struct auth_penalty *t = table_new();
	struct auth_check check;
	lookups = 0;
	fail_lookups = false;
	auth_check_prepare(&check, &fake_db, "Alice@Example.ORG", "right");
	assert_int_equal(lookups, 0);
	assert_string_equal(check.user, "alice@example.org");
	assert_int_equal(auth_check_penalty(&check, t, &cfg, "192.0.2.1"), 0);
	assert_string_equal(check.account, "alice@example.org");
	assert_int_equal(lookups, 0);
	assert_true(auth_check_verify(&check));
	assert_int_equal(lookups, 1);
	assert_false(auth_check_refused(&check));
	assert_string_equal(check.user, "alice@example.org");
	assert_int_equal(check.quota, 1234);
	auth_check_clear(&check);
	auth_penalty_destroy(&t);
}

/* Unknown names count in their normal form too, and a name without one
   as given. */
static void test_unknown_account_names(void **state)
{
	struct auth_penalty *t = table_new();
	struct auth_check check;
	fail_lookups = false;
	auth_check_prepare(&check, &fake_db, "Nobody@Example.ORG", "x");
	assert_int_equal(auth_check_penalty(&check, t, &cfg, "192.0.2.2"), 0);
	assert_string_equal(check.account, "nobody@example.org");
	assert_false(auth_check_verify(&check));
	assert_false(auth_check_refused(&check));
	auth_check_clear(&check);
	auth_check_prepare(&check, &fake_db, "Plain", "x");
	assert_int_equal(auth_check_penalty(&check, t, &cfg, "192.0.2.3"), 0);
	assert_string_equal(check.account, "Plain");
	assert_false(auth_check_verify(&check));
	auth_check_clear(&check);
	auth_penalty_destroy(&t);
}

/* A failed lookup: refused as unavailable, nothing recorded, and its
   check in flight no longer counts against the IP. */
static void test_lookup_failure(void **state)
{
	struct auth_penalty *t = table_new();
	struct auth_check check;
	/* one failure on record: from now on checks in flight count, and the
	   limit is two */
	fail_lookups = false;
	auth_check_prepare(&check, &fake_db, "alice@example.org", "wrong");
	assert_int_equal(auth_check_penalty(&check, t, &cfg, "192.0.2.4"), 0);
	assert_false(auth_check_verify(&check));
	auth_check_clear(&check);

	fail_lookups = true;
	auth_check_prepare(&check, &fake_db, "alice@example.org", "right");
	assert_int_equal(auth_check_penalty(&check, t, &cfg, "192.0.2.4"), 0);
	assert_false(auth_check_verify(&check));
	assert_true(auth_check_refused(&check));
	assert_int_equal(check.verdict, AUTH_PENALTY_UNAVAILABLE);
	auth_check_clear(&check);

	/* not locked: the unavailable check was taken back, not counted */
	fail_lookups = false;
	auth_check_prepare(&check, &fake_db, "alice@example.org", "right");
	assert_int_equal(auth_check_penalty(&check, t, &cfg, "192.0.2.4"), 0);
	assert_true(auth_check_verify(&check));
	auth_check_clear(&check);
	auth_penalty_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lookup_on_the_job),
	    cmocka_unit_test(test_unknown_account_names),
	    cmocka_unit_test(test_lookup_failure),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
