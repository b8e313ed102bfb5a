/* Unit tests for MAIL FROM / RCPT TO path parsing (src/smtp/smtp_path.c on
   src/mime/path.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtp/smtp_path.h"
#include "mime/path.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAIL = 1, RCPT = 2, BOTH = 3 };

/* expect: the address, flags appended as " LIT", " ODD", " ROUTE"; or
   "ERR" when refused. */
static const struct {
	int where; /* MAIL, RCPT or BOTH */
	bool utf8;
	const char *text, *expect;
} path_cases[] = {
    /* normal */
    {BOTH, false, "user@example.com", "user@example.com"},
    {BOTH, false, "first.last@sub.example.com", "first.last@sub.example.com"},
    {BOTH, false, "a@b", "a@b"},
    {BOTH, false, "user+tag@example.com", "user+tag@example.com"},
    {BOTH, false, "!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com"},
    {BOTH, false, "user@ab--cd.example", "user@ab--cd.example"},
    {BOTH, false, "user@123.example", "user@123.example"},
    /* domains are lowercased, local parts are not */
    {BOTH, false, "User@EXAMPLE.COM", "User@example.com"},
    {BOTH, false, "USER@Example.Com", "USER@example.com"},
    {BOTH, false, "user@XN--BCHER-KVA.example", "user@xn--bcher-kva.example"},
    /* null path: MAIL only */
    {MAIL, false, "", ""},
    {RCPT, false, "", "ERR"},
    /* Postmaster without a domain: RCPT only (RFC 5321 4.1.1.3) */
    {RCPT, false, "Postmaster", "postmaster"},
    {RCPT, false, "postmaster", "postmaster"},
    {RCPT, false, "POSTMASTER", "postmaster"},
    {MAIL, false, "Postmaster", "ERR"},
    {BOTH, false, "postmaster@example.com", "postmaster@example.com"},
    {RCPT, false, "\"Postmaster\"", "ERR"},
    {RCPT, false, "@relay.example:Postmaster", "ERR"},
    {RCPT, false, "Postmaster2", "ERR"},
    {RCPT, false, "user", "ERR"},
    /* source routes: parsed, ignored, flagged (RFC 5321 4.1.1.3, C) */
    {BOTH, false, "@relay.example:user@example.com", "user@example.com ROUTE"},
    {BOTH, false, "@a.example,@b.example:user@example.com", "user@example.com ROUTE"},
    {BOTH, false, "@[192.0.2.1]:user@example.com", "user@example.com ROUTE"},
    {BOTH, false, "@A.EXAMPLE:user@C.EXAMPLE", "user@c.example ROUTE"},
    {BOTH, false, "@a.example:", "ERR"},
    {BOTH, false, "@a.example", "ERR"},
    {BOTH, false, "@:user@example.com", "ERR"},
    {BOTH, false, "@a.example,b.example:user@example.com", "ERR"},
    {BOTH, false, "@a.example,:user@example.com", "ERR"},
    {BOTH, false, "@a.example;user@example.com", "ERR"},
    {BOTH, false, "@a.example:@b.example:user@example.com", "ERR"},
    /* quoted local parts */
    {BOTH, false, "\"john\"@example.com", "john@example.com"},
    {BOTH, false, "\"john.doe\"@example.com", "john.doe@example.com"},
    {BOTH, false, "\"a b\"@example.com", "\"a b\"@example.com ODD"},
    {BOTH, false, "\"a@b\"@example.com", "\"a@b\"@example.com ODD"},
    {BOTH, false, "\"a>b\"@example.com", "\"a>b\"@example.com ODD"},
    {BOTH, false, "\"a\\\"b\"@example.com", "\"a\\\"b\"@example.com ODD"},
    {BOTH, false, "\"a\\\\b\"@example.com", "\"a\\\\b\"@example.com ODD"},
    {BOTH, false, "\"\\a\"@example.com", "a@example.com"},
    {BOTH, false, "\"\"@example.com", "\"\"@example.com ODD"},
    {BOTH, false, "\"a..b\"@example.com", "\"a..b\"@example.com ODD"},
    {BOTH, false, "\".a\"@example.com", "\".a\"@example.com ODD"},
    {BOTH, false, "\"user@other.example\"@example.com", "\"user@other.example\"@example.com ODD"},
    {BOTH, false, "\"a,b:c;<d>[e]\"@example.com", "\"a,b:c;<d>[e]\"@example.com ODD"},
    {BOTH, false, "\"unterminated@example.com", "ERR"},
    {BOTH, false, "\"a\x01\"@example.com", "ERR"},
    {BOTH, false, "\"a\\\x01\"@example.com", "ERR"},
    {BOTH, false, "\"a\tb\"@example.com", "ERR"},
    {BOTH, false, "\"a\"b@example.com", "ERR"},
    {BOTH, false, "a\"b\"@example.com", "ERR"},
    /* the classic relay disguises parse as plain local parts (the relay
       check looks at the domain only) */
    {BOTH, false, "user%other.example@example.com", "user%other.example@example.com"},
    {BOTH, false, "other.example!user@example.com", "other.example!user@example.com"},
    /* IP literals */
    {BOTH, false, "user@[127.0.0.1]", "user@[127.0.0.1] LIT"},
    {BOTH, false, "user@[192.0.2.255]", "user@[192.0.2.255] LIT"},
    {BOTH, false, "user@[IPv6:::1]", "user@[IPv6:::1] LIT"},
    {BOTH, false, "user@[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1] LIT"},
    {BOTH, false, "user@[ipv6:2001:db8::1]", "user@[ipv6:2001:db8::1] LIT"},
    {BOTH, false, "user@[IPv6:::ffff:192.0.2.1]", "user@[IPv6:::ffff:192.0.2.1] LIT"},
    {BOTH, false, "user@[x-tag:something]", "user@[x-tag:something] LIT"},
    {BOTH, false, "user@[]", "ERR"},
    {BOTH, false, "user@[127.0.0.1", "ERR"},
    {BOTH, false, "user@[300.0.0.1]", "ERR"},
    {BOTH, false, "user@[1.2.3]", "ERR"},
    {BOTH, false, "user@[1.2.3.4.5]", "ERR"},
    {BOTH, false, "user@[IPv6:1.2.3.4]", "ERR"},
    {BOTH, false, "user@[IPv6:gggg::1]", "ERR"},
    {BOTH, false, "user@[::1]", "ERR"},
    {BOTH, false, "user@[:x]", "ERR"},
    {BOTH, false, "user@[tag:]", "ERR"},
    {BOTH, false, "user@[tag:a[b]", "ERR"},
    {BOTH, false, "user@[127.0.0.1].example", "ERR"},
    {BOTH, false, "user@127.0.0.1", "user@127.0.0.1"},
    /* internationalised domains become A-labels */
    {BOTH, true,
     "user@b\xc3\xbc"
     "cher.example",
     "user@xn--bcher-kva.example"},
    {BOTH, true,
     "user@B\xc3\x9c"
     "CHER.Example",
     "user@xn--bcher-kva.example"},
    {BOTH, true, "user@\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88",
     "user@xn--r8jz45g.xn--zckzah"},
    {BOTH, true,
     "\xc3\xbc"
     "ser@b\xc3\xbc"
     "cher.example",
     "\xc3\xbc"
     "ser@xn--bcher-kva.example"},
    {BOTH, true, "\"\xc3\xbc ser\"@example.com", "\"\xc3\xbc ser\"@example.com ODD"},
    {BOTH, true, "user@example.com", "user@example.com"},
    /* UTF-8 only with SMTPUTF8 */
    {BOTH, false,
     "user@b\xc3\xbc"
     "cher.example",
     "ERR"},
    {BOTH, false,
     "\xc3\xbc"
     "ser@example.com",
     "ERR"},
    {BOTH, false, "\"\xc3\xbc\"@example.com", "ERR"},
    /* malformed UTF-8 never */
    {BOTH, true, "\xc3@example.com", "ERR"},
    {BOTH, true, "user@\xff.example", "ERR"},
    {BOTH, true, "\xc0\xaf@example.com", "ERR"},
    {BOTH, true, "\xed\xa0\x80@example.com", "ERR"},
    /* malformed local parts and domains */
    {BOTH, false, "user", "ERR"},
    {BOTH, false, "user@", "ERR"},
    {BOTH, false, "@example.com", "ERR"},
    {BOTH, false, "user@@example.com", "ERR"},
    {BOTH, false, "user@a@example.com", "ERR"},
    {BOTH, false, ".user@example.com", "ERR"},
    {BOTH, false, "user.@example.com", "ERR"},
    {BOTH, false, "us..er@example.com", "ERR"},
    {BOTH, false, "us er@example.com", "ERR"},
    {BOTH, false, "us(er)@example.com", "ERR"},
    {BOTH, false, "us\\er@example.com", "ERR"},
    {BOTH, false, "user@example.com.", "ERR"},
    {BOTH, false, "user@.example.com", "ERR"},
    {BOTH, false, "user@example..com", "ERR"},
    {BOTH, false, "user@-example.com", "ERR"},
    {BOTH, false, "user@example-.com", "ERR"},
    {BOTH, false, "user@exa_mple.com", "ERR"},
    {BOTH, false, "user@exa mple.com", "ERR"},
    {BOTH, false, "user@example.com ", "ERR"},
    {BOTH, false, " user@example.com", "ERR"},
    {BOTH, false, "user@example.com>", "ERR"},
    {BOTH, false, "<user@example.com>", "ERR"},
    {BOTH, false, "user@example.com> <x@y", "ERR"},
    {BOTH, false, "user@exam\x01ple.com", "ERR"},
    {BOTH, false, "user@example.com\x7f", "ERR"},
};

static char *render(const char *text, bool mail, bool utf8)
{
	struct smtp_path p;
	const char *error = NULL;
	if (smtp_path_parse(text, mail, utf8, &p, &error) < 0) {
		assert_non_null(error);
		assert_null(p.address);
		return xstrdup("ERR");
	}
	char *s = xasprintf("%s%s%s%s", p.address, p.literal ? " LIT" : "", p.odd_local ? " ODD" : "",
			    p.route ? " ROUTE" : "");
	smtp_path_free(&p);
	assert_null(p.address);
	return s;
}

static void test_path_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(path_cases); i++) {
		for (int w = MAIL; w <= RCPT; w++) {
			if (!(path_cases[i].where & w))
				continue;
			char *got = render(path_cases[i].text, w == MAIL, path_cases[i].utf8);
			if (strcmp(got, path_cases[i].expect) != 0)
				fail_msg("case %zu %s <%s>: got <%s> expected <%s>", i,
					 w == MAIL ? "MAIL" : "RCPT", path_cases[i].text, got,
					 path_cases[i].expect);
			free(got);
		}
	}
}

static char *repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 octets (with the
   angle brackets); labels 63. */
static void test_path_limits(void **state)
{
	char *l64 = repeat('l', 64), *l65 = repeat('l', 65);
	char *lab63 = repeat('d', 63), *lab64 = repeat('d', 64);
	char *q62 = repeat('q', 62), *q63 = repeat('q', 63), *e60 = repeat('e', 60), *e61 = repeat('e', 61);
	char *a300 = repeat('a', 300), *a5000 = repeat('a', 5000);
	struct {
		char *text;
		bool ok;
	} cases[] = {
	    {xasprintf("%s@example.com", l64), true},
	    {xasprintf("%s@example.com", l65), false},
	    {xasprintf("\"%s\"@example.com", q62), true}, /* 64 with the quotes */
	    {xasprintf("\"%s\"@example.com", q63), false},
	    {xasprintf("u@%s.example", lab63), true},
	    {xasprintf("u@%s.example", lab64), false},
	    /* 1 + 1 + 252 + 2 = 256: the longest path */
	    {xasprintf("u@%s.%s.%s.%s", lab63, lab63, lab63, e60), true},
	    {xasprintf("u@%s.%s.%s.%s", lab63, lab63, lab63, e61), false},
	    {xasprintf("%s@%s.%s.%s", l64, lab63, lab63, e61), true},
	    {xasprintf("%s@%s.%s.%s.e", l64, lab63, lab63, e61), false},
	    /* a domain over 255 */
	    {xasprintf("u@%s.%s.%s.%s.x", lab63, lab63, lab63, lab63), false},
	    {xasprintf("u@%s", a5000), false},
	    {xasprintf("%s@x", a5000), false},
	    {xasprintf("@%s:u@x", a300), false},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		for (int mail = 0; mail < 2; mail++) {
			char *got = render(cases[i].text, mail, false);
			if (cases[i].ok == !strcmp(got, "ERR"))
				fail_msg("limit case %zu (%zu bytes): got <%.30s...>", i,
					 strlen(cases[i].text), got);
			free(got);
		}
		free(cases[i].text);
	}
	free(l64);
	free(l65);
	free(lab63);
	free(lab64);
	free(q62);
	free(q63);
	free(e60);
	free(e61);
	free(a300);
	free(a5000);
}

/* Random printable text: never crash; what is accepted re-parses to
   itself. */
static void test_path_random(void **state)
{
	static const char alphabet[] = "aZ09.@\"\\:,[]<> !%-_+\xc3\xbc";
	char text[80];
	srandom(777);
	for (int n = 0; n < 50000; n++) {
		size_t len = (size_t)random() % sizeof(text);
		for (size_t i = 0; i < len; i++)
			text[i] = alphabet[random() % (long)(sizeof(alphabet) - 1)];
		text[len] = '\0';
		bool mail = n & 1, utf8 = n & 2;
		struct smtp_path p;
		const char *error;
		if (smtp_path_parse(text, mail, utf8, &p, &error) < 0)
			continue;
		if (p.address[0] != '\0' && strcmp(p.address, "postmaster") != 0) {
			struct smtp_path again;
			if (smtp_path_parse(p.address, mail, true, &again, &error) < 0)
				fail_msg("<%s> gave <%s>, which does not parse: %s", text, p.address, error);
			assert_string_equal(again.address, p.address);
			assert_int_equal(again.odd_local, p.odd_local);
			smtp_path_free(&again);
		}
		smtp_path_free(&p);
	}
}

/* mime_path_check_address: the envelope addresses the spool, sendmail,
   send and the SMTP client hand to "MAIL FROM:<%s>" / "RCPT TO:<%s>". */
static void test_check_address(void **state)
{
	static const struct {
		const char *address;
		unsigned flags;
		int ok;
	} cases[] = {
	    {"bob@example.org", 0, 1},
	    {"\"bob smith\"@example.org", 0, 1},
	    {"b@[192.0.2.1]", 0, 1},
	    {"", MIME_PATH_ALLOW_NULL, 1},
	    {"", 0, 0},
	    {"Postmaster", MIME_PATH_ALLOW_POSTMASTER, 1},
	    {"Postmaster", 0, 0},
	    {"j\xc3\xb6rg@example.org", MIME_PATH_ALLOW_UTF8, 1},
	    {"j\xc3\xb6rg@example.org", 0, 0},
	    /* what would end the command line or the path early */
	    {"x@example.net>\r\nRCPT TO:<bob@example.org", MIME_PATH_ALLOW_UTF8, 0},
	    {"x@example.net\r\nDATA", MIME_PATH_ALLOW_UTF8, 0},
	    {"x@example.net\n", MIME_PATH_ALLOW_UTF8, 0},
	    {"\"x\r\n\"@example.net", MIME_PATH_ALLOW_UTF8, 0},
	    {"x@example.net> SIZE=1", MIME_PATH_ALLOW_UTF8, 0},
	    {"x@example.net SIZE=1", MIME_PATH_ALLOW_UTF8, 0},
	    {"<x@example.net>", MIME_PATH_ALLOW_UTF8, 0},
	    {"x@exa_mple.net", MIME_PATH_ALLOW_UTF8, 0},
	    {"x", MIME_PATH_ALLOW_UTF8, 0},
	    {"x@", MIME_PATH_ALLOW_UTF8, 0},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const char *error = NULL;
		int rc = mime_path_check_address(cases[i].address, cases[i].flags, &error);
		if ((rc == 0) != cases[i].ok)
			fail_msg("case %zu: rc %d (%s)", i, rc, error != NULL ? error : "-");
		if (rc < 0)
			assert_non_null(error);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_table),
	    cmocka_unit_test(test_check_address),
	    cmocka_unit_test(test_path_limits),
	    cmocka_unit_test(test_path_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
