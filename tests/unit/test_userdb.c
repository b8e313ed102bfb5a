/* Unit tests for the user database (src/auth/userdb*.c) in a temporary
   directory: domains, users, aliases, catch-alls, postmaster, alias loops,
   case folding, IDN, sender_allowed, quota, and maildir_create. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/password.h"
#include "auth/userdb.h"
#include "lib/xalloc.h"
#include "store/maildir_create.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A hash made once: yescrypt is slow and most tests need no real one. */
static char *test_hash;

struct fixture {
	char *dir;
	char *path;
	struct userdb *db;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test_userdb.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	f->dir = xstrdup(tmpl);
	f->path = xasprintf("%s/users.db", f->dir);
	char *error = NULL;
	f->db = userdb_open(f->path, true, &error);
	if (f->db == NULL)
		fail_msg("open: %s", error);
	*state = f;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	userdb_close(&f->db);
	nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->path);
	free(f->dir);
	free(f);
	return 0;
}

/* Asserting wrappers: the call must succeed / fail with text in the error. */
#define OK(call)                                                                                             \
	do {                                                                                                 \
		char *error_ = NULL;                                                                         \
		if ((call) != 0)                                                                             \
			fail_msg("%s failed: %s", #call, error_ ? error_ : "-");                             \
	} while (0)
static char *last_error;
#define FAILS(call, text)                                                                                    \
	do {                                                                                                 \
		char *error_ = NULL;                                                                         \
		if ((call) != -1)                                                                            \
			fail_msg("%s succeeded", #call);                                                     \
		if (error_ == NULL || strstr(error_, text) == NULL)                                          \
			fail_msg("%s: error '%s' lacks '%s'", #call, error_ ? error_ : "-", text);           \
		free(last_error);                                                                            \
		last_error = error_;                                                                         \
	} while (0)

static void add_user(struct userdb *db, const char *address)
{
	OK(userdb_user_add_hash(db, address, test_hash, 0, &error_));
}

/* Resolves and compares with the expected users and remote targets, given
   as comma-separated lists in order. */
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
	char got_users[1024] = "", got_remote[1024] = "";
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

static void test_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} addresses[] = {
	    {"Alice@Example.ORG", "alice@example.org"},
	    {"alice@example.org.", "alice@example.org"},
	    {"first.last+tag@example.org", "first.last+tag@example.org"},
	    {"a@b@example.org", NULL}, /* the last @ splits; "a@b" is invalid */
	    {"user@b\xc3\xbc"
	     "cher.example",
	     "user@xn--bcher-kva.example"},
	    {"user@XN--BCHER-KVA.example", "user@xn--bcher-kva.example"},
	    {"no-at-sign", NULL},
	    {"@example.org", NULL},
	    {"user@", NULL},
	    {"us er@example.org", NULL},
	    {"user@exa_mple.org", NULL},
	    {"user@-example.org", NULL},
	    {"user@example..org", NULL},
	    {".user@example.org", NULL},
	    {"us..er@example.org", NULL},
	    {"a/b@example.org", NULL},
	    {"../x@example.org", NULL},
	    {"x/..@example.org", NULL},
	    {"user@[192.0.2.1]", NULL},
	    {"0123456789012345678901234567890123456789012345678901234567890123@x.org",
	     "0123456789012345678901234567890123456789012345678901234567890123@x.org"},
	    {"01234567890123456789012345678901234567890123456789012345678901234@x.org", NULL},
	};
	for (size_t i = 0; i < N_ELEMENTS(addresses); i++) {
		const char *error = NULL;
		char *out = userdb_normalize_address(addresses[i].in, &error);
		if (addresses[i].out == NULL) {
			if (out != NULL)
				fail_msg("'%s' normalised to '%s'", addresses[i].in, out);
			assert_non_null(error);
		} else if (out == NULL || strcmp(out, addresses[i].out) != 0) {
			fail_msg("'%s' -> '%s', expected '%s'", addresses[i].in, out ? out : error,
				 addresses[i].out);
		}
		free(out);
	}
	const char *error;
	char *d = userdb_normalize_domain("\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95", &error);
	assert_string_equal(d, "xn--fsqu00a.xn--0zwm56d");
	free(d);
	assert_null(userdb_normalize_domain("\xff\xfe.example", &error));
}

static void test_domains(void **state)
{
	struct fixture *f = *state;
	struct userdb *db = f->db;
	assert_int_equal(userdb_domain_exists(db, "example.org"), 0);
	OK(userdb_domain_add(db, "Example.ORG", &error_));
	assert_int_equal(userdb_domain_exists(db, "example.org"), 1);
	assert_int_equal(userdb_domain_exists(db, "EXAMPLE.org."), 1);
	FAILS(userdb_domain_add(db, "example.org", &error_), "already exists");
	FAILS(userdb_domain_add(db, "bad domain", &error_), "invalid domain");
	FAILS(userdb_domain_add(db, "", &error_), "invalid domain");
	OK(userdb_domain_add(db, "example.net", &error_));

	add_user(db, "a@example.org");
	OK(userdb_alias_add(db, "x@example.net", "a@example.org", &error_));
	FAILS(userdb_domain_del(db, "example.org", false, &error_), "still has 1 user and 0 aliases");
	FAILS(userdb_domain_del(db, "nope.org", false, &error_), "does not exist");
	OK(userdb_domain_del(db, "example.org", true, &error_));
	assert_int_equal(userdb_domain_exists(db, "example.org"), 0);
	/* The user and the alias pointing to it went with the domain. */
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(db, "a@example.org", &u), 0);
	char **targets;
	assert_int_equal(userdb_alias_targets(db, "x@example.net", &targets), 0);
	userdb_strings_free(targets, 0);
	OK(userdb_domain_del(db, "example.net", false, &error_));
}

static int count_domain(void *ctx, const char *domain, unsigned users, int64_t created)
{
	char *out = ctx;
	sprintf(out + strlen(out), "%s:%u;", domain, users);
	return 0;
}

static void test_domain_list_and_idn(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db,
			     "b\xc3\xbc"
			     "cher.example",
			     &error_));
	OK(userdb_domain_add(db, "aaa.example", &error_));
	assert_int_equal(userdb_domain_exists(db, "xn--bcher-kva.example"), 1);
	assert_int_equal(userdb_domain_exists(db, "B\xc3\x9c"
						  "CHER.example"),
			 1);
	add_user(db, "J\xc3\xbcrgen@b\xc3\xbc"
		     "cher.example");
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(db, "j\xc3\xbcrgen@xn--bcher-kva.example", &u), 1);
	assert_string_equal(u.domain, "xn--bcher-kva.example");
	assert_string_equal(u.local, "j\xc3\xbcrgen");
	userdb_user_free(&u);
	char out[256] = "";
	OK(userdb_domain_list(db, count_domain, out, &error_));
	assert_string_equal(out, "aaa.example:0;xn--bcher-kva.example:1;");
}

static void test_users(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	FAILS(userdb_user_add(db, "bob@example.org", "pw", 0, &error_),
	      "domain example.org does not exist: add it with postoffice domain add example.org");
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_user_add(db, "Bob@Example.org", "first password", 1024, &error_));
	FAILS(userdb_user_add(db, "bob@example.org", "pw", 0, &error_), "already exists");
	FAILS(userdb_user_add(db, "carol@example.org", "", 0, &error_), "empty");
	FAILS(userdb_user_add(db, "not an address", "pw", 0, &error_), "no @domain");

	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(db, "BOB@EXAMPLE.ORG", &u), 1);
	assert_string_equal(u.address, "bob@example.org");
	assert_string_equal(u.local, "bob");
	assert_string_equal(u.domain, "example.org");
	assert_int_equal(u.quota, 1024);
	assert_int_equal(password_verify("first password", u.password_hash), 1);
	userdb_user_free(&u);
	assert_null(u.address);
	assert_int_equal(userdb_user_lookup(db, "nobody@example.org", &u), 0);
	assert_int_equal(userdb_user_lookup(db, "garbage", &u), 0);

	/* Password change and authentication. */
	char *who = NULL;
	assert_int_equal(userdb_authenticate(db, "bob@example.org", "first password", &who), 1);
	assert_string_equal(who, "bob@example.org");
	free(who);
	OK(userdb_user_passwd(db, "bob@example.org", "second", &error_));
	assert_int_equal(userdb_authenticate(db, "Bob@example.org", "first password", &who), 0);
	assert_null(who);
	assert_int_equal(userdb_authenticate(db, "Bob@example.org", "second", &who), 1);
	free(who);
	assert_int_equal(userdb_authenticate(db, "eve@example.org", "second", &who), 0);
	FAILS(userdb_user_passwd(db, "eve@example.org", "x", &error_), "does not exist");

	/* Quota. */
	OK(userdb_user_set_quota(db, "bob@example.org", 5ULL << 30, &error_));
	assert_int_equal(userdb_user_lookup(db, "bob@example.org", &u), 1);
	assert_int_equal(u.quota, 5ULL << 30);
	userdb_user_free(&u);
	OK(userdb_user_set_quota(db, "bob@example.org", 0, &error_));
	assert_int_equal(userdb_user_lookup(db, "bob@example.org", &u), 1);
	assert_int_equal(u.quota, 0);
	userdb_user_free(&u);
	FAILS(userdb_user_set_quota(db, "eve@example.org", 1, &error_), "does not exist");

	/* Deletion removes aliases pointing at the user. */
	OK(userdb_alias_add(db, "info@example.org", "bob@example.org", &error_));
	OK(userdb_alias_add(db, "info@example.org", "x@remote.example", &error_));
	OK(userdb_user_del(db, "BOB@example.org", &error_));
	FAILS(userdb_user_del(db, "bob@example.org", &error_), "does not exist");
	char **targets;
	int n = userdb_alias_targets(db, "info@example.org", &targets);
	assert_int_equal(n, 1);
	assert_string_equal(targets[0], "x@remote.example");
	userdb_strings_free(targets, (size_t)n);
}

static int collect_user(void *ctx, const struct userdb_user *user)
{
	char *out = ctx;
	sprintf(out + strlen(out), "%s;", user->address);
	return 0;
}

static void test_user_list(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "b.example", &error_));
	OK(userdb_domain_add(db, "a.example", &error_));
	add_user(db, "zed@a.example");
	add_user(db, "amy@b.example");
	add_user(db, "bob@a.example");
	char out[256] = "";
	OK(userdb_user_list(db, NULL, collect_user, out, &error_));
	assert_string_equal(out, "bob@a.example;zed@a.example;amy@b.example;");
	out[0] = '\0';
	OK(userdb_user_list(db, "B.example", collect_user, out, &error_));
	assert_string_equal(out, "amy@b.example;");
}

static void test_aliases(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_domain_add(db, "example.net", &error_));
	add_user(db, "alice@example.org");
	add_user(db, "bob@example.org");
	add_user(db, "carol@example.net");

	FAILS(userdb_alias_add(db, "x@unknown.example", "alice@example.org", &error_),
	      "domain unknown.example does not exist");
	FAILS(userdb_alias_add(db, "x@example.org", "not an address", &error_), "no @domain");
	FAILS(userdb_alias_add(db, "x@example.org", "@example.net", &error_), "catch-all");

	OK(userdb_alias_add(db, "Team@example.org", "alice@example.org", &error_));
	OK(userdb_alias_add(db, "team@example.org", "Bob@Example.org", &error_));
	OK(userdb_alias_add(db, "team@example.org", "Carol@example.net", &error_));
	OK(userdb_alias_add(db, "team@example.org", "Friend@Remote.Example", &error_));
	FAILS(userdb_alias_add(db, "team@example.org", "alice@EXAMPLE.org", &error_), "already exists");
	check_resolve(db, "TEAM@example.org", "", 1, "alice@example.org,bob@example.org,carol@example.net",
		      "Friend@remote.example");

	/* Nested aliases, deduplicated. */
	OK(userdb_alias_add(db, "all@example.org", "team@example.org", &error_));
	OK(userdb_alias_add(db, "all@example.org", "alice@example.org", &error_));
	check_resolve(db, "all@example.org", "", 1, "alice@example.org,bob@example.org,carol@example.net",
		      "Friend@remote.example");

	/* An alias on a user's own address replaces delivery, unless it lists
	   the user too (keep a copy). */
	OK(userdb_alias_add(db, "bob@example.org", "bob@elsewhere.example", &error_));
	check_resolve(db, "bob@example.org", "", 1, "", "bob@elsewhere.example");
	OK(userdb_alias_add(db, "bob@example.org", "Bob@example.org", &error_));
	check_resolve(db, "bob@example.org", "", 1, "bob@example.org", "bob@elsewhere.example");
	/* An alias pointing only to itself, not a user: nowhere to go. */
	OK(userdb_alias_add(db, "self@example.org", "Self@example.org", &error_));
	check_resolve(db, "self@example.org", "", 0, "", "");

	/* Deleting one target (remote local parts match case-insensitively),
	   then the whole alias. */
	OK(userdb_alias_del(db, "team@example.org", "friend@remote.example", &error_));
	FAILS(userdb_alias_del(db, "team@example.org", "Friend@remote.example", &error_), "does not exist");
	OK(userdb_alias_del(db, "team@example.org", NULL, &error_));
	FAILS(userdb_alias_del(db, "team@example.org", NULL, &error_), "does not exist");
	check_resolve(db, "team@example.org", "", 0, "", "");
	check_resolve(db, "all@example.org", "", 1, "alice@example.org", "");
}

static int collect_alias(void *ctx, const char *source, const char *target)
{
	char *out = ctx;
	sprintf(out + strlen(out), "%s>%s;", source, target);
	return 0;
}

static void test_alias_list(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_domain_add(db, "example.net", &error_));
	OK(userdb_alias_add(db, "b@example.org", "x@remote.example", &error_));
	OK(userdb_alias_add(db, "a@example.org", "y@remote.example", &error_));
	OK(userdb_alias_add(db, "@example.net", "a@example.org", &error_));
	char out[512] = "";
	OK(userdb_alias_list(db, NULL, collect_alias, out, &error_));
	assert_string_equal(out, "@example.net>a@example.org;a@example.org>y@remote.example;"
				 "b@example.org>x@remote.example;");
	out[0] = '\0';
	OK(userdb_alias_list(db, "example.net", collect_alias, out, &error_));
	assert_string_equal(out, "@example.net>a@example.org;");
}

static void test_catchall(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_domain_add(db, "new.example", &error_));
	add_user(db, "alice@example.org");
	add_user(db, "bob@example.org");
	OK(userdb_alias_add(db, "sales@example.org", "bob@example.org", &error_));
	check_resolve(db, "random@example.org", "", 0, "", "");
	OK(userdb_alias_add(db, "@Example.org", "alice@example.org", &error_));
	check_resolve(db, "random@example.org", "", 1, "alice@example.org", "");
	/* Users and aliases win over the catch-all. */
	check_resolve(db, "bob@example.org", "", 1, "bob@example.org", "");
	check_resolve(db, "sales@example.org", "", 1, "bob@example.org", "");
	/* Not local at all. */
	check_resolve(db, "someone@remote.example", "", 2, "", "");
	check_resolve(db, "someone@[192.0.2.1]", "", 2, "", "");

	/* Domain-to-domain: @new.example -> @example.org keeps the local part. */
	OK(userdb_alias_add(db, "@new.example", "@example.org", &error_));
	check_resolve(db, "Bob@new.example", "", 1, "bob@example.org", "");
	check_resolve(db, "nobody@new.example", "", 1, "alice@example.org", "");
}

static void test_postmaster(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	OK(userdb_domain_add(db, "empty.example", &error_));
	/* No users at all: nowhere to deliver. */
	check_resolve(db, "postmaster@example.org", "", 0, "", "");
	add_user(db, "first@example.org");
	add_user(db, "second@example.org");
	/* RFC 5321 4.5.1: the domain's first user, case-insensitively. */
	check_resolve(db, "PostMaster@example.org", "", 1, "first@example.org", "");
	check_resolve(db, "postmaster@example.org", NULL, 1, "first@example.org", "");
	check_resolve(db, "postmaster", "", 1, "first@example.org", "");
	check_resolve(db, "POSTMASTER", "", 1, "first@example.org", "");
	/* The configured address wins, and may be remote. */
	check_resolve(db, "postmaster@example.org", "second@example.org", 1, "second@example.org", "");
	check_resolve(db, "postmaster@empty.example", "admin@remote.example", 1, "", "admin@remote.example");
	check_resolve(db, "postmaster", "second@example.org", 1, "second@example.org", "");
	/* A domain without users and no configured postmaster. */
	check_resolve(db, "postmaster@empty.example", "", 0, "", "");
	/* An explicit postmaster alias wins over the rule. */
	OK(userdb_alias_add(db, "postmaster@example.org", "second@example.org", &error_));
	check_resolve(db, "postmaster@example.org", "", 1, "second@example.org", "");
}

static void test_alias_loops(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	add_user(db, "alice@example.org");
	/* a -> b -> a, neither a user: resolves to nothing. */
	OK(userdb_alias_add(db, "a@example.org", "b@example.org", &error_));
	OK(userdb_alias_add(db, "b@example.org", "a@example.org", &error_));
	check_resolve(db, "a@example.org", "", 0, "", "");
	/* alice -> b -> a -> {b, alice}: reaching the user alice again ends
	   the loop in her mailbox. */
	OK(userdb_alias_add(db, "alice@example.org", "b@example.org", &error_));
	OK(userdb_alias_add(db, "a@example.org", "alice@example.org", &error_));
	check_resolve(db, "alice@example.org", "", 1, "alice@example.org", "");
	/* From b, alice is first met as an alias back to b: a pure loop. */
	check_resolve(db, "b@example.org", "", 0, "", "");

	/* A chain longer than the depth limit stops there. */
	char src[64], dst[64];
	for (int i = 0; i < USERDB_ALIAS_MAX_DEPTH + 5; i++) {
		snprintf(src, sizeof(src), "chain%d@example.org", i);
		snprintf(dst, sizeof(dst), "chain%d@example.org", i + 1);
		OK(userdb_alias_add(db, src, dst, &error_));
	}
	add_user(db, dst);
	check_resolve(db, "chain0@example.org", "", 0, "", "");
	snprintf(src, sizeof(src), "chain%d@example.org", 10);
	check_resolve(db, src, "", 1, dst, "");
}

static void test_sender_allowed(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	add_user(db, "alice@example.org");
	add_user(db, "bob@example.org");
	OK(userdb_alias_add(db, "sales@example.org", "alice@example.org", &error_));
	OK(userdb_alias_add(db, "sales@example.org", "out@remote.example", &error_));
	OK(userdb_alias_add(db, "all@example.org", "sales@example.org", &error_));
	OK(userdb_alias_add(db, "all@example.org", "bob@example.org", &error_));

	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "alice@example.org"), 1);
	assert_int_equal(userdb_sender_allowed(db, "ALICE@example.org", "Alice@Example.ORG"), 1);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "bob@example.org"), 0);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "sales@example.org"), 1);
	assert_int_equal(userdb_sender_allowed(db, "bob@example.org", "sales@example.org"), 0);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "all@example.org"), 1);
	assert_int_equal(userdb_sender_allowed(db, "bob@example.org", "all@example.org"), 1);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "x@remote.example"), 0);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "nobody@example.org"), 0);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", ""), 1);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "<>"), 1);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "garbage"), 0);
	/* The catch-all's target may use unassigned addresses, not users'. */
	OK(userdb_alias_add(db, "@example.org", "bob@example.org", &error_));
	assert_int_equal(userdb_sender_allowed(db, "bob@example.org", "anything@example.org"), 1);
	assert_int_equal(userdb_sender_allowed(db, "bob@example.org", "alice@example.org"), 0);
	assert_int_equal(userdb_sender_allowed(db, "alice@example.org", "anything@example.org"), 0);
}

static void test_reopen_and_schema(void **state)
{
	struct fixture *f = *state;
	OK(userdb_domain_add(f->db, "example.org", &error_));
	add_user(f->db, "alice@example.org");
	userdb_close(&f->db);
	assert_null(f->db);
	userdb_close(&f->db); /* NULL is fine */

	/* Without create, an existing file opens; a missing one fails. */
	char *error = NULL;
	f->db = userdb_open(f->path, false, &error);
	assert_non_null(f->db);
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(f->db, "alice@example.org", &u), 1);
	userdb_user_free(&u);
	char *missing = xasprintf("%s/missing.db", f->dir);
	assert_null(userdb_open(missing, false, &error));
	assert_non_null(error);
	free(error);
	error = NULL;
	assert_int_equal(access(missing, F_OK), -1);

	/* The file is private to its owner and in WAL mode. */
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	char *wal = xasprintf("%s-wal", f->path);
	assert_int_equal(access(wal, F_OK), 0);
	free(wal);

	/* A schema newer than the program is refused. */
	struct userdb *db2 = userdb_open(missing, true, &error);
	assert_non_null(db2);
	userdb_close(&db2);
	char *cmd = xasprintf("sqlite3 '%s' 'INSERT INTO schema_version VALUES (99, 0)' "
			      "2>/dev/null",
			      missing);
	if (system(cmd) == 0) {
		assert_null(userdb_open(missing, true, &error));
		assert_non_null(strstr(error, "newer"));
		free(error);
	}
	free(cmd);
	free(missing);
}

/* Two handles on one file (server and CLI) see each other's writes. */
static void test_two_handles(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	struct userdb *other = userdb_open(f->path, false, &error);
	assert_non_null(other);
	OK(userdb_domain_add(f->db, "example.org", &error_));
	assert_int_equal(userdb_domain_exists(other, "example.org"), 1);
	add_user(other, "alice@example.org");
	struct userdb_user u;
	assert_int_equal(userdb_user_lookup(f->db, "alice@example.org", &u), 1);
	userdb_user_free(&u);
	userdb_close(&other);
}

struct thread_ctx {
	struct userdb *db;
	int ok;
};

static void *lookup_thread(void *p)
{
	struct thread_ctx *ctx = p;
	ctx->ok = 1;
	for (int i = 0; i < 200; i++) {
		struct userdb_user u;
		struct userdb_targets t;
		ctx->ok &= userdb_user_lookup(ctx->db, "alice@example.org", &u) == 1;
		userdb_user_free(&u);
		ctx->ok &= userdb_resolve(ctx->db, "team@example.org", "", &t) == 1;
		ctx->ok &= t.users_count == 2;
		userdb_targets_free(&t);
	}
	return NULL;
}

/* One handle shared by threads (a worker and its jobs threads). */
static void test_shared_handle_threads(void **state)
{
	struct userdb *db = ((struct fixture *)*state)->db;
	OK(userdb_domain_add(db, "example.org", &error_));
	add_user(db, "alice@example.org");
	add_user(db, "bob@example.org");
	OK(userdb_alias_add(db, "team@example.org", "alice@example.org", &error_));
	OK(userdb_alias_add(db, "team@example.org", "bob@example.org", &error_));
	enum { N = 4 };
	pthread_t threads[N];
	struct thread_ctx ctx[N];
	for (int i = 0; i < N; i++) {
		ctx[i] = (struct thread_ctx){db, 0};
		assert_int_equal(pthread_create(&threads[i], NULL, lookup_thread, &ctx[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(ctx[i].ok, 1);
	}
}

static int count_entries(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return 0;
}

static void test_maildir_create(void **state)
{
	struct fixture *f = *state;
	char *maildir = xasprintf("%s/mail/example.org/alice", f->dir);
	OK(maildir_create(maildir, &error_));
	OK(maildir_create(maildir, &error_)); /* idempotent */
	static const char *const expect[] = {
	    "cur",
	    "new",
	    "tmp",
	    ".Sent/cur",
	    ".Sent/new",
	    ".Sent/tmp",
	    ".Sent/maildirfolder",
	    ".Drafts/tmp",
	    ".Trash/new",
	    ".Junk/cur",
	    ".Archive/maildirfolder",
	};
	for (size_t i = 0; i < N_ELEMENTS(expect); i++) {
		char *p = xasprintf("%s/%s", maildir, expect[i]);
		if (access(p, F_OK) != 0)
			fail_msg("%s missing", p);
		free(p);
	}
	/* A removed part comes back. */
	char *p = xasprintf("%s/.Trash/cur", maildir);
	assert_int_equal(rmdir(p), 0);
	OK(maildir_create(maildir, &error_));
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	struct stat st;
	assert_int_equal(stat(maildir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* A file in the way is an error. */
	p = xasprintf("%s/file", f->dir);
	FILE *fp = fopen(p, "w");
	fclose(fp);
	FAILS(maildir_create(p, &error_), "mkdir");
	free(p);
	(void)nftw(maildir, count_entries, 8, FTW_PHYS);
	free(maildir);
}

static int global_setup(void **state)
{
	return password_hash("test password", &test_hash);
}

static int global_teardown(void **state)
{
	free(test_hash);
	free(last_error);
	return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_normalize),
	    T(test_domains),
	    T(test_domain_list_and_idn),
	    T(test_users),
	    T(test_user_list),
	    T(test_aliases),
	    T(test_alias_list),
	    T(test_catchall),
	    T(test_postmaster),
	    T(test_alias_loops),
	    T(test_sender_allowed),
	    T(test_reopen_and_schema),
	    T(test_two_handles),
	    T(test_shared_handle_threads),
	    T(test_maildir_create),
	};
	return cmocka_run_group_tests(tests, global_setup, global_teardown);
}
