/* ARC (RFC 8617) against a chain made by an independent implementation
   (dkimpy: tests/data/arc/make-vectors): a message a mailing list changed
   and sealed, then a forwarder sealed.  It verifies; changing the body, a
   sealed field, a results field or a seal breaks it; broken structures fail
   before any key is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "trust/arc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA "../../tests/data/arc/"

static char *keys_text;

static char *read_data(const char *name, size_t *len_r)
{
	char *path = xasprintf(DATA "%s", name), *data = NULL, *error = NULL;
	size_t len = 0;
	if (fs_read_file(path, &data, &len, &error) < 0)
		fail_msg("%s", error);
	free(path);
	char *s = xmalloc(len + 1);
	memcpy(s, data, len);
	s[len] = '\0';
	free(data);
	if (len_r != NULL)
		*len_r = len;
	return s;
}

/* The record for name from keys.txt ("NAME<TAB>RECORD" lines). */
static const char *key(void *ctx, const char *name)
{
	static char record[2048];
	size_t nl = strlen(name);
	for (const char *p = keys_text; p != NULL && *p != '\0';) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol != NULL ? (size_t)(eol - p) : strlen(p);
		if (ll > nl && p[nl] == '\t' && !strncmp(p, name, nl)) {
			snprintf(record, sizeof(record), "%.*s", (int)(ll - nl - 1), p + nl + 1);
			return record;
		}
		p = eol != NULL ? eol + 1 : NULL;
	}
	return NULL;
}

/* Verifies msg (a whole message) and returns the result. */
static enum arc_result verify(const char *msg, const char **why_r)
{
	const char *sep = strstr(msg, "\r\n\r\n");
	assert_non_null(sep);
	size_t hlen = (size_t)(sep + 4 - msg);
	struct arc_chain c;
	int rc = arc_chain_parse(&c, msg, hlen, 1800000000, why_r);
	if (rc <= 0)
		return rc == 0 ? ARC_NONE : ARC_FAIL;
	char *names[ARC_MAX_INSTANCES + 1];
	size_t n = arc_chain_key_names(&c, names, N_ELEMENTS(names));
	assert_int_equal(n, 2); /* AMS(2) and AS(2) share a key; AS(1) */
	for (size_t i = 0; i < n; i++) {
		assert_non_null(key(NULL, names[i]));
		free(names[i]);
	}
	struct dkim_body_hash *bh = dkim_body_hash_new(arc_chain_body_canon(&c));
	dkim_body_hash_update(bh, sep + 4, strlen(sep + 4));
	unsigned char digest[32];
	dkim_body_hash_final(bh, digest);
	dkim_body_hash_free(&bh);
	enum arc_result r = arc_chain_verify(&c, msg, hlen, digest, key, NULL, why_r);
	arc_chain_free(&c);
	return r;
}

static char *replaced(const char *msg, const char *from, const char *to)
{
	const char *p = strstr(msg, from);
	assert_non_null(p);
	return xasprintf("%.*s%s%s", (int)(p - msg), msg, to, p + strlen(from));
}

static void test_chain_passes(void **state)
{
	(void)state;
	char *msg = read_data("chain2.eml", NULL);
	const char *why = NULL;
	assert_int_equal(verify(msg, &why), ARC_PASS);
	/* the author's DKIM signature itself no longer verifies: the list
	   changed the subject and the body; ARC is what tells its result */
	free(msg);
}

static void test_changes_fail(void **state)
{
	(void)state;
	char *msg = read_data("chain2.eml", NULL);
	static const char *const edits[][2] = {
	    {"list footer", "list f00ter"},                     /* the body after the last hop */
	    {"Subject: [list] hello", "Subject: [list] hell0"}, /* a field the AMS signs */
	    {"i=1; lists.example.org; dkim=pass", "i=1; lists.example.org; dkim=none"}, /* the AAR */
	    {"ARC-Seal: i=1; cv=none", "ARC-Seal: i=1; cv=pass"},                       /* a seal's cv */
	};
	for (size_t i = 0; i < N_ELEMENTS(edits); i++) {
		char *bad = replaced(msg, edits[i][0], edits[i][1]);
		const char *why = NULL;
		if (verify(bad, &why) != ARC_FAIL)
			fail_msg("still passes after %s -> %s", edits[i][0], edits[i][1]);
		assert_non_null(why);
		free(bad);
	}
	free(msg);
}

static void test_structure(void **state)
{
	(void)state;
	const char *why;
	struct arc_chain c;
	static const char plain[] = "From: a@example.com\r\nSubject: x\r\n\r\n";
	assert_int_equal(arc_chain_parse(&c, plain, strlen(plain), 0, &why), 0);
	char *msg = read_data("chain2.eml", NULL);
	static const char *const breaks[][2] = {
	    {"ARC-Seal: i=1;", "X-Was-Seal: i=1;"},               /* instance 1 incomplete */
	    {"ARC-Seal: i=2;", "ARC-Seal: i=1;"},                 /* a duplicate, and 2 incomplete */
	    {"ARC-Seal: i=2;", "ARC-Seal: i=51;"},                /* beyond 50 */
	    {"ARC-Seal: i=2;", "ARC-Seal: i=x;"},                 /* no instance */
	    {"ARC-Seal: i=2; cv=pass", "ARC-Seal: i=2; cv=fail"}, /* a hop said fail */
	    {"ARC-Seal: i=2; cv=pass", "ARC-Seal: i=2; cv=none"}, /* only the first says none */
	};
	for (size_t i = 0; i < N_ELEMENTS(breaks); i++) {
		char *bad = replaced(msg, breaks[i][0], breaks[i][1]);
		const char *sep = strstr(bad, "\r\n\r\n");
		why = NULL;
		int rc = arc_chain_parse(&c, bad, (size_t)(sep + 4 - bad), 0, &why);
		if (rc != -1)
			fail_msg("%s -> %s: %d", breaks[i][0], breaks[i][1], rc);
		assert_non_null(why);
		free(bad);
	}
	free(msg);
}

static int setup(void **state)
{
	keys_text = read_data("keys.txt", NULL);
	return 0;
}

static int teardown(void **state)
{
	free(keys_text);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chain_passes),
	    cmocka_unit_test(test_changes_fail),
	    cmocka_unit_test(test_structure),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
