/* Contract tests of the user database interface (userdb.h), run against
   every backend in the table below and only through the public functions:
   domains, users (lookup, the password hash, quota, password change,
   delete), authentication, alias rows, resolution with aliases,
   catch-alls and postmaster, the sender check, and persistence across
   reopen.  A new backend passes when it is added to userdb_backends[]
   with a way to make an empty location.  The postgresql case needs a
   server (tests/unit/pg_test.h): each test gets a database of its own. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/userdb.h"
#include "lib/xalloc.h"
#include "pg_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the backends under test ---- */

struct userdb_backend_case {
	const char *name;
	/* A location for a new database below the scratch directory dir. */
	char *(*location)(const char *dir);
	/* Removes what location() made outside dir and frees location (NULL:
	   nothing to remove). */
	void (*drop)(char *location);
	bool needs_pg; /* a PostgreSQL server (pg_test.h) */
};

static char *local_location(const char *dir)
{
	return xasprintf("%s/users.db", dir);
}

static char *pg_location(const char *dir)
{
	return pg_test_database_create();
}

static const struct userdb_backend_case userdb_backends[] = {
    {"local", local_location, NULL, false},
    {"postgresql", pg_location, pg_test_database_drop, true},
};

/* A crypt(3) string stored as it is (userdb_user_add_hash): no hashing
   cost, and the fetch must return exactly it. */
static const char fixed_hash[] = "$y$j9T$abcdefghijklmnopqrstu.$0123456789abcdefghijklmnopqrstuvwxyzABCDE";

/* ---- fixture ---- */

struct fixture {
	const struct userdb_backend_case *be;
	char *dir;
	char *location;
	struct userdb *db;
};

static void fixture_open(struct fixture *f, bool create)
{
	char *error = NULL;
	f->db = userdb_open_backend(f->be->name, f->location, create, &error);
	if (f->db == NULL)
		fail_msg("userdb_open_backend(%s): %s", f->be->name, error);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->be = *state;
	char tmpl[] = "/tmp/test_backend_userdb.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	f->dir = xstrdup(tmpl);
	f->location = f->be->location(f->dir);
	fixture_open(f, true);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	userdb_close(&f->db);
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	if (f->be->drop != NULL)
		f->be->drop(f->location);
	else
		free(f->location);
	free(f->dir);
	free(f);
	return 0;
}

/* The call returns 0; its error text goes to error_. */
#define OK(call)                                                                                             \
	do {                                                                                                 \
		char *error_ = NULL;                                                                         \
		if ((call) != 0)                                                                             \
			fail_msg("%s failed: %s", #call, error_ ? error_ : "-");                             \
	} while (0)
/* The call returns -1 with text in its error. */
#define FAILS(call, text)                                                                                    \
	do {                                                                                                 \
		char *error_ = NULL;                                                                         \
		if ((call) != -1)                                                                            \
			fail_msg("%s succeeded", #call);                                                     \
		if (error_ == NULL || strstr(error_, text) == NULL)                                          \
			fail_msg("%s: error '%s' lacks '%s'", #call, error_ ? error_ : "-", text);           \
		free(error_);                                                                                \
	} while (0)

static void add_user(struct userdb *db, const char *address)
{
	OK(userdb_user_add_hash(db, address, fixed_hash, 0, &error_));
}

/* Resolves address and compares with comma-separated users and remote
   targets, in order. */
static void check_resolve(struct userdb *db, const char *address, const char *postmaster, int expect,
			  const char *users, const char *remote)
{
	struct userdb_targets t;
	int rc = userdb_resolve(db, address, postmaster, &t);
	if (rc != expect)
		fail_msg("resolve %s: %d, expected %d", address, rc, expect);
	if (rc != 1) {
		assert_int_equal(t.users_count + t.remote_count, 0);
		return;
	}
	char got_users[512] = "", got_remote[512] = "";
	for (size_t i = 0; i < t.users_count; i++)
		snprintf(got_users + strlen(got_users), sizeof(got_users) - strlen(got_users), "%s%s",
			 i ? "," : "", t.users[i]);
	for (size_t i = 0; i < t.remote_count; i++)
		snprintf(got_remote + strlen(got_remote), sizeof(got_remote) - strlen(got_remote), "%s%s",
			 i ? "," : "", t.remote[i]);
	if (strcmp(got_users, users) != 0 || strcmp(got_remote, remote) != 0)
		fail_msg("resolve %s: users [%s] remote [%s], expected [%s] [%s]", address, got_users,
			 got_remote, users, remote);
	userdb_targets_free(&t);
}

#define LIST_MAX 512

static int collect_domain(void *ctx, const char *domain, unsigned users, int64_t created)
{
	char *out = ctx;
	assert_true(created > 0);
	snprintf(out + strlen(out), LIST_MAX - strlen(out), "%s:%u;", domain, users);
	return 0;
}

static int collect_user(void *ctx, const struct userdb_user *user)
{
	char *out = ctx;
	snprintf(out + strlen(out), LIST_MAX - strlen(out), "%s;", user->address);
	return 0;
}

static int first_user_only(void *ctx, const struct userdb_user *user)
{
	collect_user(ctx, user);
	return 1;
}

static int collect_alias(void *ctx, const char *source, const char *target)
{
	char *out = ctx;
	snprintf(out + strlen(out), LIST_MAX - strlen(out), "%s>%s;", source, target);
	return 0;
}

/* ---- tests ---- */

static void test_open_by_name(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	assert_null(userdb_open_backend("no-such-backend", f->location, true, &error));
	assert_non_null(strstr(error, "no-such-backend"));
	free(error);
	assert_string_equal(userdb_backend_name(f->db), f->be->name);
	/* Without create, a missing database is an error. */
	char *missing = xasprintf("%s.missing", f->location);
	error = NULL;
	assert_null(userdb_open_backend(f->be->name, missing, false, &error));
	assert_non_null(error);
	free(error);
	free(missing);
}

static void test_domains(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	assert_int_equal(userdb_domain_exists(db, "example.org"), 0);
	OK(userdb_domain_add(db, "Example.ORG", &error_));
	assert_int_equal(userdb_domain_exists(db, "example.org"), 1);
	assert_int_equal(userdb_domain_exists(db, "EXAMPLE.org."), 1);
	FAILS(userdb_domain_add(db, "example.org", &error_), "already exists");
	FAILS(userdb_domain_add(db, "bad domain", &error_), "invalid domain");
	OK(userdb_domain_add(db,
			     "b\xc3\xbc"
			     "cher.example",
			     &error_));
	assert_int_equal(userdb_domain_exists(db, "xn--bcher-kva.example"), 1);
	add_user(db, "a@example.org");
	char out[LIST_MAX] = "";
	OK(userdb_domain_list(db, collect_domain, out, &error_));
	assert_string_equal(out, "example.org:1;xn--bcher-kva.example:0;");
	FAILS(userdb_domain_del(db, "nope.example", false, &error_), "does not exist");
	OK(userdb_domain_del(db, "xn--bcher-kva.example", false, &error_));
	assert_int_equal(userdb_domain_exists(db, "xn--bcher-kva.example"), 0);
}

static void test_domain_del_force(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_domain_add(db, "other.example", &error_));
	add_user(db, "alice@example.org");
	add_user(db, "carol@other.example");
	OK(userdb_alias_add(db, "info@example.org", "alice@example.org", &error_));
	OK(userdb_alias_add(db, "fwd@other.example", "alice@example.org", &error_));
	OK(userdb_alias_add(db, "keep@other.example", "carol@other.example", &error_));
	FAILS(userdb_domain_del(db, "example.org", false, &error_), "still has 1 user and 1 alias");
	OK(userdb_domain_del(db, "example.org", true, &error_));
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(db, "alice@example.org", &u), 0);
	/* Rows of the domain and rows naming its users went with it. */
	char out[LIST_MAX] = "";
	OK(userdb_alias_list(db, NULL, collect_alias, out, &error_));
	assert_string_equal(out, "keep@other.example>carol@other.example;");
}

static void test_user_lookup(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	FAILS(userdb_user_add_hash(db, "alice@example.org", fixed_hash, 0, &error_),
	      "domain example.org does not exist");
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_user_add_hash(db, "Alice@Example.org", fixed_hash, 5000000, &error_));
	FAILS(userdb_user_add_hash(db, "ALICE@example.org", fixed_hash, 0, &error_), "already exists");
	FAILS(userdb_user_add_hash(db, "not an address", fixed_hash, 0, &error_), "no @domain");
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(db, "aLiCe@EXAMPLE.ORG", &u), 1);
	assert_string_equal(u.address, "alice@example.org");
	assert_string_equal(u.local, "alice");
	assert_string_equal(u.domain, "example.org");
	assert_string_equal(u.password_hash, fixed_hash);
	assert_int_equal(u.quota, 5000000);
	assert_true(u.created > 0);
	userdb_user_free(&u);
	assert_null(u.address);
	assert_int_equal(userdb_user_lookup(db, "bob@example.org", &u), 0);
	assert_int_equal(userdb_user_lookup(db, "garbage", &u), 0);
}

static void test_password(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_user_add(db, "alice@example.org", "first secret", 0, &error_));
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(db, "alice@example.org", &u), 1);
	char *first_hash = xstrdup(u.password_hash);
	assert_true(first_hash[0] == '$'); /* a crypt(3) string, never the password */
	assert_null(strstr(first_hash, "first secret"));
	userdb_user_free(&u);
	char *address = NULL;
	assert_int_equal(userdb_authenticate(db, "Alice@example.org", "first secret", &address), 1);
	assert_string_equal(address, "alice@example.org");
	free(address);
	assert_int_equal(userdb_authenticate(db, "alice@example.org", "wrong", &address), 0);
	assert_null(address);
	assert_int_equal(userdb_authenticate(db, "nobody@example.org", "first secret", &address), 0);

	OK(userdb_user_passwd(db, "alice@example.org", "second secret", &error_));
	assert_int_equal(userdb_user_lookup(db, "alice@example.org", &u), 1);
	assert_string_not_equal(u.password_hash, first_hash);
	userdb_user_free(&u);
	free(first_hash);
	assert_int_equal(userdb_authenticate(db, "alice@example.org", "first secret", &address), 0);
	assert_int_equal(userdb_authenticate(db, "alice@example.org", "second secret", &address), 1);
	free(address);
	FAILS(userdb_user_passwd(db, "bob@example.org", "x", &error_), "does not exist");
	FAILS(userdb_user_passwd(db, "alice@example.org", "", &error_), "empty");
}

static void test_quota(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	add_user(db, "alice@example.org");
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(db, "alice@example.org", &u), 1);
	assert_int_equal(u.quota, 0);
	userdb_user_free(&u);
	OK(userdb_user_set_quota(db, "ALICE@example.org", 123456789012ULL, &error_));
	assert_int_equal(userdb_user_lookup(db, "alice@example.org", &u), 1);
	assert_int_equal(u.quota, 123456789012ULL);
	userdb_user_free(&u);
	FAILS(userdb_user_set_quota(db, "bob@example.org", 1, &error_), "does not exist");
}

static void test_user_list_and_del(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "b.example", &error_));
	OK(userdb_domain_add(db, "a.example", &error_));
	add_user(db, "zed@a.example");
	add_user(db, "amy@b.example");
	add_user(db, "bob@a.example");
	char out[LIST_MAX] = "";
	OK(userdb_user_list(db, NULL, collect_user, out, &error_));
	assert_string_equal(out, "bob@a.example;zed@a.example;amy@b.example;");
	out[0] = '\0';
	OK(userdb_user_list(db, "B.Example", collect_user, out, &error_));
	assert_string_equal(out, "amy@b.example;");
	out[0] = '\0';
	OK(userdb_user_list(db, NULL, first_user_only, out, &error_));
	assert_string_equal(out, "bob@a.example;");

	/* Deleting a user removes the alias rows that name it. */
	OK(userdb_alias_add(db, "team@a.example", "bob@a.example", &error_));
	OK(userdb_alias_add(db, "team@a.example", "zed@a.example", &error_));
	OK(userdb_user_del(db, "BOB@a.example", &error_));
	FAILS(userdb_user_del(db, "bob@a.example", &error_), "does not exist");
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(db, "bob@a.example", &u), 0);
	out[0] = '\0';
	OK(userdb_alias_list(db, "a.example", collect_alias, out, &error_));
	assert_string_equal(out, "team@a.example>zed@a.example;");
}

static void test_aliases(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	FAILS(userdb_alias_add(db, "x@unknown.example", "a@example.org", &error_), "does not exist");
	OK(userdb_alias_add(db, "Sales@example.org", "alice@example.org", &error_));
	OK(userdb_alias_add(db, "sales@example.org", "Out@Remote.Example", &error_));
	FAILS(userdb_alias_add(db, "sales@example.org", "ALICE@example.org", &error_), "already exists");
	FAILS(userdb_alias_add(db, "x@example.org", "@example.org", &error_), "catch-all");
	char **targets = NULL;
	int n = userdb_alias_targets(db, "SALES@example.org", &targets);
	assert_int_equal(n, 2);
	/* Local targets are folded; remote local parts keep their case. */
	assert_string_equal(targets[0], "alice@example.org");
	assert_string_equal(targets[1], "Out@remote.example");
	userdb_strings_free(targets, (size_t)n);
	assert_int_equal(userdb_alias_targets(db, "none@example.org", &targets), 0);
	userdb_strings_free(targets, 0);

	OK(userdb_alias_add(db, "@example.org", "alice@example.org", &error_));
	char out[LIST_MAX] = "";
	OK(userdb_alias_list(db, "example.org", collect_alias, out, &error_));
	assert_string_equal(out, "@example.org>alice@example.org;sales@example.org>Out@remote.example;"
				 "sales@example.org>alice@example.org;");
	OK(userdb_alias_del(db, "sales@example.org", "out@remote.example", &error_));
	FAILS(userdb_alias_del(db, "sales@example.org", "out@remote.example", &error_), "does not exist");
	OK(userdb_alias_del(db, "sales@example.org", NULL, &error_));
	FAILS(userdb_alias_del(db, "sales@example.org", NULL, &error_), "does not exist");
	assert_int_equal(userdb_alias_targets(db, "sales@example.org", &targets), 0);
	userdb_strings_free(targets, 0);
}

static void test_resolve(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_domain_add(db, "new.example", &error_));
	add_user(db, "alice@example.org");
	add_user(db, "bob@example.org");
	check_resolve(db, "Alice@Example.org", NULL, 1, "alice@example.org", "");
	check_resolve(db, "nobody@example.org", NULL, 0, "", "");
	check_resolve(db, "someone@remote.example", NULL, 2, "", "");
	check_resolve(db, "x@[192.0.2.1]", NULL, 2, "", "");
	/* Aliases, several targets and levels, duplicates once. */
	OK(userdb_alias_add(db, "team@example.org", "alice@example.org", &error_));
	OK(userdb_alias_add(db, "team@example.org", "bob@example.org", &error_));
	OK(userdb_alias_add(db, "all@example.org", "team@example.org", &error_));
	OK(userdb_alias_add(db, "all@example.org", "alice@example.org", &error_));
	OK(userdb_alias_add(db, "all@example.org", "far@remote.example", &error_));
	check_resolve(db, "all@example.org", NULL, 1, "alice@example.org,bob@example.org",
		      "far@remote.example");
	/* Keep a copy and forward: an alias naming its own source. */
	OK(userdb_alias_add(db, "bob@example.org", "bob@example.org", &error_));
	OK(userdb_alias_add(db, "bob@example.org", "bob@remote.example", &error_));
	check_resolve(db, "bob@example.org", NULL, 1, "bob@example.org", "bob@remote.example");
	/* A loop without a user resolves to nothing. */
	OK(userdb_alias_add(db, "x@example.org", "y@example.org", &error_));
	OK(userdb_alias_add(db, "y@example.org", "x@example.org", &error_));
	check_resolve(db, "x@example.org", NULL, 0, "", "");
}

static void test_catchall(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_domain_add(db, "new.example", &error_));
	add_user(db, "alice@example.org");
	add_user(db, "bob@example.org");
	OK(userdb_alias_add(db, "sales@example.org", "bob@example.org", &error_));
	OK(userdb_alias_add(db, "@example.org", "alice@example.org", &error_));
	/* Only for addresses that are neither users nor aliases. */
	check_resolve(db, "random@example.org", NULL, 1, "alice@example.org", "");
	check_resolve(db, "bob@example.org", NULL, 1, "bob@example.org", "");
	check_resolve(db, "sales@example.org", NULL, 1, "bob@example.org", "");
	/* Domain to domain: the local part is kept. */
	OK(userdb_alias_add(db, "@new.example", "@example.org", &error_));
	check_resolve(db, "bob@new.example", NULL, 1, "bob@example.org", "");
	check_resolve(db, "nobody@new.example", NULL, 1, "alice@example.org", "");
}

static void test_postmaster(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	check_resolve(db, "postmaster@example.org", "", 0, "", "");
	add_user(db, "first@example.org");
	add_user(db, "second@example.org");
	/* RFC 5321 section 4.5.1: the domain's first user by creation. */
	check_resolve(db, "PostMaster@example.org", "", 1, "first@example.org", "");
	check_resolve(db, "postmaster", NULL, 1, "first@example.org", "");
	check_resolve(db, "postmaster@example.org", "second@example.org", 1, "second@example.org", "");
	OK(userdb_alias_add(db, "postmaster@example.org", "second@example.org", &error_));
	check_resolve(db, "postmaster@example.org", "", 1, "second@example.org", "");
}

static void test_sender_allowed(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	add_user(db, "alice@example.org");
	add_user(db, "bob@example.org");
	OK(userdb_alias_add(db, "sales@example.org", "alice@example.org", &error_));
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "Alice@example.org"), 1);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "sales@example.org"), 1);
	assert_int_equal(userdb_sender_allowed(db, "bob@example.org", "sales@example.org"), 0);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "bob@example.org"), 0);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "<>"), 1);
	OK(userdb_alias_add(db, "@example.org", "bob@example.org", &error_));
	assert_int_equal(userdb_sender_allowed(db, "bob@example.org", "unused@example.org"), 1);
	assert_int_equal(userdb_sender_allowed(db, "bob@example.org", "alice@example.org"), 0);
}

static void test_persistence(void **state)
{
	struct fixture *f = *state;
	OK(userdb_domain_add(f->db, "example.org", &error_));
	OK(userdb_user_add_hash(f->db, "alice@example.org", fixed_hash, 42, &error_));
	OK(userdb_alias_add(f->db, "info@example.org", "alice@example.org", &error_));
	userdb_close(&f->db);
	assert_null(f->db);
	fixture_open(f, false);
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(f->db, "alice@example.org", &u), 1);
	assert_string_equal(u.password_hash, fixed_hash);
	assert_int_equal(u.quota, 42);
	userdb_user_free(&u);
	check_resolve(f->db, "info@example.org", NULL, 1, "alice@example.org", "");
	/* A second handle on the same location sees the first one's changes. */
	char *error = NULL;
	struct userdb *other = userdb_open_backend(f->be->name, f->location, false, &error);
	assert_non_null(other);
	add_user(other, "bob@example.org");
	assert_int_equal(userdb_user_lookup(f->db, "bob@example.org", &u), 1);
	userdb_user_free(&u);
	userdb_close(&other);
}

int main(void)
{
	int failed = 0;
	for (size_t i = 0; i < N_ELEMENTS(userdb_backends); i++) {
		char *name = xasprintf("userdb backend %s", userdb_backends[i].name);
		int avail = userdb_backends[i].needs_pg ? pg_test_available(name) : 1;
		if (avail <= 0) {
			failed += avail < 0;
			free(name);
			continue;
		}
		void *be = (void *)&userdb_backends[i];
#define T(f) cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, be)
		const struct CMUnitTest tests[] = {
		    T(test_open_by_name), T(test_domains),  T(test_domain_del_force),  T(test_user_lookup),
		    T(test_password),     T(test_quota),    T(test_user_list_and_del), T(test_aliases),
		    T(test_resolve),      T(test_catchall), T(test_postmaster),        T(test_sender_allowed),
		    T(test_persistence),
		};
#undef T
		failed += cmocka_run_group_tests_name(name, tests, NULL, NULL);
		free(name);
	}
	return failed;
}
