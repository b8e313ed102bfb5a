/* Unit tests for the configuration table and parser (src/lib/config.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/config.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads what write() puts into a temporary file. */
static char *capture(void (*write)(const struct config *cfg, FILE *out), const struct config *cfg)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	write(cfg, f);
	long size = ftell(f);
	assert_true(size >= 0);
	rewind(f);
	char *text = xmalloc((size_t)size + 1);
	assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
	text[size] = '\0';
	fclose(f);
	return text;
}

static void write_default(const struct config *cfg, FILE *out)
{
	config_write_default(out);
}

static char *effective(const struct config *cfg)
{
	return capture(config_write_effective, cfg);
}

static char *default_file(void)
{
	return capture(write_default, NULL);
}

/* Loads text; returns NULL on success (cfg filled) or the error. */
static char *load(struct config *cfg, const char *text)
{
	char *error = NULL;
	if (config_load_string(cfg, text, "test.conf", &error) == 0) {
		assert_null(error);
		return NULL;
	}
	assert_non_null(error);
	return error;
}

static void test_defaults(void **state)
{
	struct config cfg;
	char *error = NULL;
	assert_int_equal(config_load(&cfg, NULL, &error), 0);
	assert_null(cfg.file);
	assert_string_equal(cfg.data_dir, "var");
	assert_string_equal(cfg.user, "postoffice");
	assert_int_equal(cfg.workers, 0);
	assert_string_equal(cfg.hostname, "");
	assert_int_equal(cfg.max_message_size, 25 * 1024 * 1024);
	assert_int_equal(cfg.max_recipients, 100);
	assert_int_equal(cfg.max_errors, 10);
	assert_int_equal(cfg.auth_failure_delay, 2);
	assert_int_equal(cfg.auth_penalty_ip_failures, 10);
	assert_int_equal(cfg.auth_penalty_account_failures, 30);
	assert_int_equal(cfg.auth_penalty_window, 60);
	assert_int_equal(cfg.auth_penalty_lockout, 300);
	assert_int_equal(cfg.auth_penalty_max_delay, 15);
	assert_int_equal(cfg.auth_penalty_entries, 65536);
	assert_int_equal(cfg.smtp_timeout, 300);
	assert_true(cfg.smtp_listen.enabled);
	assert_string_equal(cfg.smtp_listen.host, "127.0.0.1");
	assert_int_equal(cfg.smtp_listen.port, 2525);
	assert_int_equal(cfg.submission_listen.port, 2587);
	assert_int_equal(cfg.submissions_listen.port, 2465);
	assert_int_equal(cfg.pop3_listen.port, 2110);
	assert_int_equal(cfg.pop3s_listen.port, 2995);
	assert_int_equal(cfg.imap_listen.port, 2143);
	assert_int_equal(cfg.imaps_listen.port, 2993);
	assert_int_equal(cfg.bare_newline, BARE_NEWLINE_REJECT);
	assert_int_equal(cfg.plaintext_auth, PLAINTEXT_AUTH_LOOPBACK);
	assert_int_equal(cfg.pop3_timeout, 600);
	assert_int_equal(cfg.imap_timeout, 1800);
	assert_int_equal(cfg.queue_lifetime, 5 * 86400);
	assert_int_equal(cfg.relay_tls, TLS_POLICY_ENCRYPT);
	assert_int_equal(cfg.relay_implicit_tls, 0);
	assert_int_equal(cfg.outbound_tls, TLS_POLICY_MAY);
	assert_int_equal(cfg.routes_count, 0);
	assert_null(config_route(&cfg, "example.org"));
	/* An empty file and a file of comments are the defaults too. */
	char *def = effective(&cfg);
	struct config cfg2;
	static const char *const empty[] = {"", "\n\n", "# comment\n; another\n", "[server]\n[smtp]\n",
					    "\xef\xbb\xbf# with a BOM\n"};
	for (size_t i = 0; i < N_ELEMENTS(empty); i++) {
		assert_null(load(&cfg2, empty[i]));
		char *e = effective(&cfg2);
		assert_string_equal(e, def);
		free(e);
		config_free(&cfg2);
	}
	free(def);
	config_free(&cfg);
}

/* config_finish fills in what depends on the system and other options. */
static void test_finish(void **state)
{
	struct config cfg;
	assert_null(load(&cfg, "[server]\ndata_dir = /srv/po\n"));
	config_finish(&cfg);
	assert_true(cfg.hostname[0] != '\0');
	assert_string_equal(cfg.tls_cert, "/srv/po/tls/cert.pem");
	assert_string_equal(cfg.tls_key, "/srv/po/tls/key.pem");
	assert_true(cfg.workers >= 1 && cfg.workers <= 64);
	config_free(&cfg);
	assert_null(load(&cfg, "[server]\nhostname = mx.example\nworkers = 3\n[tls]\ncert_file = /c.pem\n"));
	config_finish(&cfg);
	assert_string_equal(cfg.hostname, "mx.example");
	assert_int_equal(cfg.workers, 3);
	assert_string_equal(cfg.tls_cert, "/c.pem");
	config_free(&cfg);
}

/* Each line: INI text, then what must hold.  check is a line of the
   effective config (section-less "key = value") that must appear, or an
   error that must be the whole message. */
static const struct {
	const char *text;
	const char *expect; /* "ok:[section] key = value" or "err:message" */
} value_cases[] = {
    /* strings */
    {"[server]\ndata_dir = /var/lib/postoffice\n", "ok:[server] data_dir = /var/lib/postoffice"},
    {"[server]\nhostname = \n", "ok:[server] hostname = "},
    {"[server]\nhostname=mx.example\n", "ok:[server] hostname = mx.example"},
    {"[server]\nhostname   =   mx.example   \n", "ok:[server] hostname = mx.example"},
    {"[SERVER]\nHOSTNAME = mx.example\n", "ok:[server] hostname = mx.example"},
    {"[server]\nhostname: mx.example\n", "ok:[server] hostname = mx.example"},
    {"[relay]\npassword = p=ss#word\n", "ok:[relay] password = p=ss#word"},
    {"[relay]\npassword = p;ss\n", "ok:[relay] password = p;ss"},
    /* would be written back as "password = ;ss", a comment; inih keeps
       " ;" in continuation lines (found by fuzz_config) */
    {"[relay]\npassword=;ss\n",
     "err:test.conf:2: [relay] password: ';' at the start of a value or after a space starts a comment"},
    {"[routes]\na.test=;10.0.0.1:25\n",
     "err:test.conf:2: [routes] a.test: ';' at the start of a value or after a space starts a comment"},
    {"[routes]\na.test = 10.0.0.1:25\n= 10.0.0.2:25\n", "err:test.conf:3: [routes] : route needs a domain"},
    {"[relay]\npassword = a\n  b ;c\n",
     "err:test.conf:3: [relay] password: ';' at the start of a value or after a space starts a comment"},
    /* int with bounds */
    {"[server]\nworkers = 4\n", "ok:[server] workers = 4"},
    {"[server]\nworkers = 0\n", "ok:[server] workers = 0"},
    {"[server]\nworkers = 64\n", "ok:[server] workers = 64"},
    {"[server]\nworkers = 65\n", "err:test.conf:2: [server] workers: 65 is out of range 0..64"},
    {"[server]\nworkers = -1\n", "err:test.conf:2: [server] workers: -1 is out of range 0..64"},
    {"[server]\nworkers = four\n", "err:test.conf:2: [server] workers: 'four' is not a number"},
    {"[server]\nworkers = 4x\n", "err:test.conf:2: [server] workers: '4x' is not a number"},
    {"[server]\nworkers = 0x4\n", "err:test.conf:2: [server] workers: '0x4' is not a number"},
    {"[server]\nworkers = 1.5\n", "err:test.conf:2: [server] workers: '1.5' is not a number"},
    {"[server]\nworkers =\n", "err:test.conf:2: [server] workers: '' is not a number"},
    {"[server]\nworkers = 99999999999999999999\n",
     "err:test.conf:2: [server] workers: '99999999999999999999' is not a number"},
    {"[limits]\nmax_recipients = 1\n", "ok:[limits] max_recipients = 1"},
    {"[limits]\nmax_recipients = 0\n",
     "err:test.conf:2: [limits] max_recipients: 0 is out of range 1..100000"},
    {"[limits]\nmax_recipients = 100001\n",
     "err:test.conf:2: [limits] max_recipients: 100001 is out of range 1..100000"},
    {"[limits]\nmax_recipients = 4294967297\n",
     "err:test.conf:2: [limits] max_recipients: 4294967297 is out of range 1..100000"},
    /* bool */
    {"[relay]\nimplicit_tls = yes\n", "ok:[relay] implicit_tls = yes"},
    {"[relay]\nimplicit_tls = true\n", "ok:[relay] implicit_tls = yes"},
    {"[relay]\nimplicit_tls = On\n", "ok:[relay] implicit_tls = yes"},
    {"[relay]\nimplicit_tls = 1\n", "ok:[relay] implicit_tls = yes"},
    {"[relay]\nimplicit_tls = NO\n", "ok:[relay] implicit_tls = no"},
    {"[relay]\nimplicit_tls = false\n", "ok:[relay] implicit_tls = no"},
    {"[relay]\nimplicit_tls = off\n", "ok:[relay] implicit_tls = no"},
    {"[relay]\nimplicit_tls = 0\n", "ok:[relay] implicit_tls = no"},
    {"[relay]\nimplicit_tls = maybe\n", "err:test.conf:2: [relay] implicit_tls: 'maybe' is not yes or no"},
    {"[relay]\nimplicit_tls = 2\n", "err:test.conf:2: [relay] implicit_tls: '2' is not yes or no"},
    {"[relay]\nimplicit_tls =\n", "err:test.conf:2: [relay] implicit_tls: '' is not yes or no"},
    /* sizes */
    {"[limits]\nmax_message_size = 1024\n", "ok:[limits] max_message_size = 1024"},
    {"[limits]\nmax_message_size = 10M\n", "ok:[limits] max_message_size = 10485760"},
    {"[limits]\nmax_message_size = 10m\n", "ok:[limits] max_message_size = 10485760"},
    {"[limits]\nmax_message_size = 10MB\n", "ok:[limits] max_message_size = 10485760"},
    {"[limits]\nmax_message_size = 512k\n", "ok:[limits] max_message_size = 524288"},
    {"[limits]\nmax_message_size = 512K\n", "ok:[limits] max_message_size = 524288"},
    {"[limits]\nmax_message_size = 1G\n", "ok:[limits] max_message_size = 1073741824"},
    {"[limits]\nmax_message_size = 1024G\n", "ok:[limits] max_message_size = 1099511627776"},
    {"[limits]\nmax_message_size = 1025G\n",
     "err:test.conf:2: [limits] max_message_size: 1025G is out of range 1024..1099511627776 bytes"},
    {"[limits]\nmax_message_size = 1023\n",
     "err:test.conf:2: [limits] max_message_size: 1023 is out of range 1024..1099511627776 bytes"},
    {"[limits]\nmax_message_size = 1T\n",
     "err:test.conf:2: [limits] max_message_size: '1T' is not a size (like 512k, 25M, 1G)"},
    {"[limits]\nmax_message_size = 1.5M\n",
     "err:test.conf:2: [limits] max_message_size: '1.5M' is not a size (like 512k, 25M, 1G)"},
    {"[limits]\nmax_message_size = -1\n",
     "err:test.conf:2: [limits] max_message_size: '-1' is not a size (like 512k, 25M, 1G)"},
    {"[limits]\nmax_message_size = M\n",
     "err:test.conf:2: [limits] max_message_size: 'M' is not a size (like 512k, 25M, 1G)"},
    {"[limits]\nmax_message_size = 10 M\n",
     "err:test.conf:2: [limits] max_message_size: '10 M' is not a size (like 512k, 25M, 1G)"},
    {"[limits]\nmax_message_size = 10MM\n",
     "err:test.conf:2: [limits] max_message_size: '10MM' is not a size (like 512k, 25M, 1G)"},
    {"[limits]\nmax_message_size = 18446744073709551615\n",
     "err:test.conf:2: [limits] max_message_size: 18446744073709551615 is out of range 1024..1099511627776 "
     "bytes"},
    {"[limits]\nmax_message_size = 99999999999999999999\n",
     "err:test.conf:2: [limits] max_message_size: '99999999999999999999' is not a size (like 512k, 25M, 1G)"},
    {"[limits]\nmax_message_size = 17179869184G\n",
     "err:test.conf:2: [limits] max_message_size: '17179869184G' is not a size (like 512k, 25M, 1G)"},
    /* durations */
    {"[limits]\nsmtp_timeout = 30s\n", "ok:[limits] smtp_timeout = 30s"},
    {"[limits]\nsmtp_timeout = 30\n", "ok:[limits] smtp_timeout = 30s"},
    {"[limits]\nsmtp_timeout = 5m\n", "ok:[limits] smtp_timeout = 300s"},
    {"[limits]\nsmtp_timeout = 2h\n", "ok:[limits] smtp_timeout = 7200s"},
    {"[limits]\nsmtp_timeout = 1d\n", "ok:[limits] smtp_timeout = 86400s"},
    {"[limits]\nsmtp_timeout = 2d\n",
     "err:test.conf:2: [limits] smtp_timeout: 2d is out of range 1s..86400s"},
    {"[limits]\nsmtp_timeout = 0\n", "err:test.conf:2: [limits] smtp_timeout: 0 is out of range 1s..86400s"},
    {"[limits]\nsmtp_timeout = 1w\n",
     "err:test.conf:2: [limits] smtp_timeout: '1w' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[limits]\nsmtp_timeout = 5M\n",
     "err:test.conf:2: [limits] smtp_timeout: '5M' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[limits]\nsmtp_timeout = -5s\n",
     "err:test.conf:2: [limits] smtp_timeout: '-5s' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[limits]\nsmtp_timeout = 5ss\n",
     "err:test.conf:2: [limits] smtp_timeout: '5ss' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[limits]\nsmtp_timeout = s\n",
     "err:test.conf:2: [limits] smtp_timeout: 's' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[limits]\nsmtp_timeout = 99999999999d\n",
     "err:test.conf:2: [limits] smtp_timeout: '99999999999d' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[queue]\nlifetime = 365d\n", "ok:[queue] lifetime = 31536000s"},
    {"[limits]\nauth_failure_delay = 0\n", "ok:[limits] auth_failure_delay = 0s"},
    {"[limits]\nauth_penalty_lockout = 2s\n", "ok:[limits] auth_penalty_lockout = 2s"},
    {"[limits]\nauth_penalty_lockout = 0\n",
     "err:test.conf:2: [limits] auth_penalty_lockout: 0 is out of range 1s..86400s"},
    {"[limits]\nauth_penalty_ip_failures = 0\n", "ok:[limits] auth_penalty_ip_failures = 0"},
    {"[limits]\nauth_penalty_entries = 63\n",
     "err:test.conf:2: [limits] auth_penalty_entries: 63 is out of range 64..4194304"},
    /* enums, case-insensitive */
    {"[smtp]\nbare_newline = normalize\n", "ok:[smtp] bare_newline = normalize"},
    {"[smtp]\nbare_newline = NORMALIZE\n", "ok:[smtp] bare_newline = normalize"},
    {"[smtp]\nbare_newline = reject\n", "ok:[smtp] bare_newline = reject"},
    {"[smtp]\nbare_newline = accept\n",
     "err:test.conf:2: [smtp] bare_newline: 'accept' is not one of: reject, normalize"},
    {"[smtp]\nbare_newline =\n", "err:test.conf:2: [smtp] bare_newline: '' is not one of: reject, normalize"},
    {"[server]\nlog_level = debug\n", "ok:[server] log_level = debug"},
    {"[server]\nlog_level = verbose\n",
     "err:test.conf:2: [server] log_level: 'verbose' is not one of: debug, info, warn, error"},
    {"[auth]\nplaintext_auth = yes\n", "ok:[auth] plaintext_auth = yes"},
    {"[relay]\ntls = verify\n", "ok:[relay] tls = verify"},
    {"[relay]\ntls = required\n",
     "err:test.conf:2: [relay] tls: 'required' is not one of: none, may, encrypt, verify"},
    /* listeners */
    {"[smtp]\nlisten = 0.0.0.0:25\n", "ok:[smtp] listen = 0.0.0.0:25"},
    {"[smtp]\nlisten = 127.0.0.1:0\n", "ok:[smtp] listen = 127.0.0.1:0"},
    {"[smtp]\nlisten = [::1]:2525\n", "ok:[smtp] listen = [::1]:2525"},
    {"[smtp]\nlisten = [::]:0\n", "ok:[smtp] listen = [::]:0"},
    {"[smtp]\nlisten = localhost:65535\n", "ok:[smtp] listen = localhost:65535"},
    {"[smtp]\nlisten =\n", "ok:[smtp] listen = "},
    {"[imaps]\nlisten = \n", "ok:[imaps] listen = "},
    {"[smtp]\nlisten = 127.0.0.1\n", "err:test.conf:2: [smtp] listen: expected host:port"},
    {"[smtp]\nlisten = :25\n", "err:test.conf:2: [smtp] listen: expected host:port"},
    {"[smtp]\nlisten = 127.0.0.1:\n",
     "err:test.conf:2: [smtp] listen: port must be a number from 0 to 65535"},
    {"[smtp]\nlisten = 127.0.0.1:65536\n",
     "err:test.conf:2: [smtp] listen: port must be a number from 0 to 65535"},
    {"[smtp]\nlisten = 127.0.0.1:-1\n",
     "err:test.conf:2: [smtp] listen: port must be a number from 0 to 65535"},
    {"[smtp]\nlisten = 127.0.0.1:smtp\n",
     "err:test.conf:2: [smtp] listen: port must be a number from 0 to 65535"},
    {"[smtp]\nlisten = 127.0.0.1:25x\n",
     "err:test.conf:2: [smtp] listen: port must be a number from 0 to 65535"},
    {"[smtp]\nlisten = [::1]\n", "err:test.conf:2: [smtp] listen: expected [address]:port"},
    {"[smtp]\nlisten = [::1]25\n", "err:test.conf:2: [smtp] listen: expected [address]:port"},
    {"[smtp]\nlisten = [::1:25\n", "err:test.conf:2: [smtp] listen: expected [address]:port"},
    {"[smtp]\nlisten = [::1]:\n", "err:test.conf:2: [smtp] listen: port must be a number from 0 to 65535"},
    /* duration lists */
    {"[queue]\nretry = 10s, 20s ,40s\n", "ok:[queue] retry = 10s,20s,40s"},
    {"[queue]\nretry = 5m,,1h\n", "ok:[queue] retry = 300s,3600s"},
    {"[queue]\nretry = 365d\n", "ok:[queue] retry = 31536000s"},
    {"[queue]\nretry =\n", "ok:[queue] retry = "},
    {"[queue]\nretry = 5x, banana\n",
     "err:test.conf:2: [queue] retry: '5x' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[queue]\nretry = 5m, banana\n",
     "err:test.conf:2: [queue] retry: 'banana' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[queue]\nretry = 5m,,-3s\n",
     "err:test.conf:2: [queue] retry: '-3s' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[queue]\nretry = 5m;1h\n",
     "err:test.conf:2: [queue] retry: '5m;1h' is not a duration (like 30s, 5m, 2h, 5d)"},
    {"[queue]\nretry = 1m, 0s\n", "err:test.conf:2: [queue] retry: 0s is out of range 1s..31536000s"},
    {"[queue]\nretry = 366d\n", "err:test.conf:2: [queue] retry: 366d is out of range 1s..31536000s"},
    /* next hops: the port defaults to 25, or 465 with implicit TLS */
    {"[relay]\nrelayhost = relay.example\n", "ok:[relay] relayhost = relay.example:25"},
    {"[relay]\nrelayhost = relay.example:587\n", "ok:[relay] relayhost = relay.example:587"},
    {"[relay]\nrelayhost = [relay.example]\n", "ok:[relay] relayhost = relay.example:25"},
    {"[relay]\nrelayhost = 192.0.2.1:2525\n", "ok:[relay] relayhost = 192.0.2.1:2525"},
    {"[relay]\nrelayhost = [::1]:2525\n", "ok:[relay] relayhost = [::1]:2525"},
    {"[relay]\nrelayhost = [::1]\n", "ok:[relay] relayhost = [::1]:25"},
    {"[relay]\nrelayhost = relay.example\nimplicit_tls = yes\n", "ok:[relay] relayhost = relay.example:465"},
    {"[relay]\nimplicit_tls = yes\nrelayhost = relay.example:25\n",
     "ok:[relay] relayhost = relay.example:25"},
    {"[relay]\nrelayhost =\n", "ok:[relay] relayhost = "},
    {"[relay]\nrelayhost = relay.example:smtp\n",
     "err:test.conf:2: [relay] relayhost: port must be a number from 1 to 65535"},
    {"[relay]\nrelayhost = relay.example:0\n",
     "err:test.conf:2: [relay] relayhost: port must be a number from 1 to 65535"},
    {"[relay]\nrelayhost = relay.example:65536\n",
     "err:test.conf:2: [relay] relayhost: port must be a number from 1 to 65535"},
    {"[relay]\nrelayhost = relay.example:\n",
     "err:test.conf:2: [relay] relayhost: port must be a number from 1 to 65535"},
    {"[relay]\nrelayhost = [::1]:x\n",
     "err:test.conf:2: [relay] relayhost: port must be a number from 1 to 65535"},
    {"[relay]\nrelayhost = :25\n",
     "err:test.conf:2: [relay] relayhost: expected host, host:port, [host] or [host]:port"},
    {"[relay]\nrelayhost = []:25\n",
     "err:test.conf:2: [relay] relayhost: expected host, host:port, [host] or [host]:port"},
    /* found by fuzz_config: ';' was kept in the host and written back
       unbracketed, where it starts a comment */
    {"[relay]\nrelayhost = [;x]\n",
     "err:test.conf:2: [relay] relayhost: expected host, host:port, [host] or [host]:port"},
    {"[relay]\nrelayhost = relay#example\n",
     "err:test.conf:2: [relay] relayhost: expected host, host:port, [host] or [host]:port"},
    {"[relay]\nrelayhost = [relay.example:25]\n", "ok:[relay] relayhost = [relay.example:25]:25"},
    {"[relay]\nrelayhost = relay example\n",
     "err:test.conf:2: [relay] relayhost: expected host, host:port, [host] or [host]:port"},
    {"[relay]\nrelayhost = ::1\n",
     "err:test.conf:2: [relay] relayhost: an IPv6 address goes in brackets: [address]:port"},
    {"[relay]\nrelayhost = [::1\n", "err:test.conf:2: [relay] relayhost: expected [host] or [host]:port"},
    {"[relay]\nrelayhost = [::1]25\n", "err:test.conf:2: [relay] relayhost: expected [host] or [host]:port"},
    /* unknown keys and sections, syntax errors: file, line and key */
    {"[server]\nbogus = 1\n",
     "err:test.conf:2: [server] bogus: unknown option (postoffice check --defaults lists every option)"},
    {"\n\n[smtp]\n# comment\nlisten = 127.0.0.1:25\nmax_recipients = 5\n",
     "err:test.conf:6: [smtp] max_recipients: unknown option (postoffice check --defaults lists every "
     "option)"},
    {"[nosuch]\nkey = 1\n",
     "err:test.conf:2: [nosuch] key: unknown option (postoffice check --defaults lists every option)"},
    {"data_dir = /x\n",
     "err:test.conf:1: [] data_dir: unknown option (postoffice check --defaults lists every option)"},
    {"[server]\nworkers = 2\nworkers = 99\n", "err:test.conf:3: [server] workers: 99 is out of range 0..64"},
    {"[server]\nthis line has no equals sign\n",
     "err:test.conf:2: syntax error (expected [section] or key = value)"},
    {"[server\n", "err:test.conf:1: syntax error (expected [section] or key = value)"},
    {"[limits]\nmax_errors = 5\n[server]\nworkers = 999\nbogus = 1\n",
     "err:test.conf:4: [server] workers: 999 is out of range 0..64"},
    /* later settings win */
    {"[server]\nworkers = 2\nworkers = 3\n", "ok:[server] workers = 3"},
    {"[server]\nworkers = 2\n[limits]\nmax_errors = 5\n[server]\nworkers = 7\n", "ok:[server] workers = 7"},
};

/* Finds "key = value" inside "[section]" of an effective config. */
static bool effective_has(const char *eff, const char *want)
{
	const char *close = strchr(want, ']');
	char section[64];
	snprintf(section, sizeof(section), "%.*s", (int)(close - want + 1), want);
	const char *line = close + 2;
	const char *s = strstr(eff, section);
	if (s == NULL)
		return false;
	const char *end = strstr(s + 1, "\n[");
	size_t llen = strlen(line);
	for (const char *p = strchr(s, '\n'); p != NULL && (end == NULL || p < end); p = strchr(p + 1, '\n'))
		if (!strncmp(p + 1, line, llen) && (p[1 + llen] == '\n' || p[1 + llen] == '\0'))
			return true;
	return false;
}

static void test_values(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(value_cases); i++) {
		struct config cfg;
		const char *expect = value_cases[i].expect;
		char *error = load(&cfg, value_cases[i].text);
		if (!strncmp(expect, "ok:", 3)) {
			if (error != NULL)
				fail_msg("case %zu <%s>: %s", i, value_cases[i].text, error);
			char *eff = effective(&cfg);
			if (!effective_has(eff, expect + 3))
				fail_msg("case %zu: <%s> not in\n%s", i, expect + 3, eff);
			free(eff);
			config_free(&cfg);
		} else {
			if (error == NULL)
				fail_msg("case %zu <%s> accepted", i, value_cases[i].text);
			if (strcmp(error, expect + 4) != 0)
				fail_msg("case %zu: got <%s> expected <%s>", i, error, expect + 4);
			free(error);
			config_free(&cfg);
		}
	}
}

static void test_listen_fields(void **state)
{
	struct config cfg;
	assert_null(load(&cfg, "[smtp]\nlisten = [2001:db8::1]:0\n[submission]\nlisten =\n"
			       "[pop3]\nlisten = 0.0.0.0:110\n"));
	assert_true(cfg.smtp_listen.enabled);
	assert_string_equal(cfg.smtp_listen.host, "2001:db8::1");
	assert_int_equal(cfg.smtp_listen.port, 0);
	assert_false(cfg.submission_listen.enabled);
	assert_string_equal(cfg.pop3_listen.host, "0.0.0.0");
	assert_int_equal(cfg.pop3_listen.port, 110);
	config_free(&cfg);

	struct listen_addr a;
	char *error = NULL;
	assert_int_equal(config_parse_listen("", &a, &error), 0);
	assert_false(a.enabled);
	assert_null(a.host);
	assert_int_equal(config_parse_listen("host.example:587", &a, &error), 0);
	assert_true(a.enabled);
	assert_string_equal(a.host, "host.example");
	assert_int_equal(a.port, 587);
	free(a.host);
	assert_int_equal(config_parse_listen("[::1]:x", &a, &error), -1);
	assert_non_null(error);
	free(error);
	/* Hosts with brackets or none would not read back from what
	   `postoffice check` writes (found by fuzz_config). */
	static const char *const bad[] = {"x [::1]:143", "a]:b:1", "[[a]:1", "[]:25", "a[b:1"};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		if (config_parse_listen(bad[i], &a, &error) == 0)
			fail_msg("<%s> accepted as host <%s>", bad[i], a.host);
		assert_string_equal(error, "expected host:port or [address]:port");
		free(error);
	}
}

/* [queue] retry and [relay] relayhost arrive parsed, for the queue runner
   to use as they are. */
static void test_typed_fields(void **state)
{
	struct config cfg;
	assert_null(load(&cfg, "[queue]\nretry = 1m 2m, 1h\n[relay]\nrelayhost = [2001:db8::25]:587\n"));
	assert_int_equal(cfg.queue_retry.count, 3);
	assert_int_equal(cfg.queue_retry.seconds[0], 60);
	assert_int_equal(cfg.queue_retry.seconds[1], 120);
	assert_int_equal(cfg.queue_retry.seconds[2], 3600);
	assert_string_equal(cfg.relayhost.host, "2001:db8::25");
	assert_int_equal(cfg.relayhost.port, 587);
	config_free(&cfg);
	assert_null(load(&cfg, "[queue]\nretry =\n[relay]\nimplicit_tls = yes\nrelayhost = mx.example\n"));
	assert_int_equal(cfg.queue_retry.count, 0);
	assert_string_equal(cfg.relayhost.host, "mx.example");
	assert_int_equal(cfg.relayhost.port, 465);
	config_free(&cfg);
	assert_null(load(&cfg, ""));
	assert_null(cfg.relayhost.host);
	assert_int_equal(cfg.queue_retry.count, 7);
	config_free(&cfg);

	struct host_port hp;
	char *error = NULL;
	assert_int_equal(config_parse_host_port("mx.example", &hp, &error), 0);
	assert_string_equal(hp.host, "mx.example");
	assert_int_equal(hp.port, 0); /* not given: the caller's default */
	free(hp.host);
	assert_int_equal(config_parse_host_port("", &hp, &error), 0);
	assert_null(hp.host);
}

static void test_value_parsers(void **state)
{
	static const struct {
		const char *text;
		int ok;
		uint64_t size;
	} sizes[] = {
	    {"0", 1, 0},
	    {"123", 1, 123},
	    {"1k", 1, 1024},
	    {"1kb", 1, 1024},
	    {"2M", 1, 2097152},
	    {"3g", 1, 3221225472ULL},
	    {"16777216T", 0, 0},
	    {"", 0, 0},
	    {"k", 0, 0},
	    {"-1", 0, 0},
	    {" -1", 0, 0},
	    {" 1", 0, 0},
	    {"+1", 0, 0},
	    {"1 k", 0, 0},
	    {"1kk", 0, 0},
	    {"1b", 0, 0},
	    {"18446744073709551615", 1, UINT64_MAX},
	    {"18446744073709551616", 0, 0},
	    {"17179869183G", 1, 17179869183ULL << 30},
	    {"17179869184G", 0, 0},
	};
	for (size_t i = 0; i < N_ELEMENTS(sizes); i++) {
		uint64_t n = 12345;
		int rc = config_parse_size(sizes[i].text, &n);
		if (rc != (sizes[i].ok ? 0 : -1) || (sizes[i].ok && n != sizes[i].size))
			fail_msg("size <%s>: rc=%d n=%llu", sizes[i].text, rc, (unsigned long long)n);
	}
	static const struct {
		const char *text;
		int ok, seconds;
	} durations[] = {
	    {"0", 1, 0},
	    {"45", 1, 45},
	    {"45s", 1, 45},
	    {"2m", 1, 120},
	    {"3h", 1, 10800},
	    {"4d", 1, 345600},
	    {"24855d", 1, 2147472000},
	    {"24856d", 0, 0},
	    {"2147483647", 1, 2147483647},
	    {"2147483648", 0, 0},
	    {"", 0, 0},
	    {"m", 0, 0},
	    {"-1s", 0, 0},
	    {" 1", 0, 0},
	    {"+1", 0, 0},
	    {"1h30m", 0, 0},
	    {"1H", 0, 0},
	    {"1.5h", 0, 0},
	};
	for (size_t i = 0; i < N_ELEMENTS(durations); i++) {
		int n = 12345;
		int rc = config_parse_duration(durations[i].text, &n);
		if (rc != (durations[i].ok ? 0 : -1) || (durations[i].ok && n != durations[i].seconds))
			fail_msg("duration <%s>: rc=%d n=%d", durations[i].text, rc, n);
	}
}

static void test_routes(void **state)
{
	struct config cfg;
	assert_null(load(&cfg, "[routes]\nexample.org = 127.0.0.1:2525\nExample.NET = [::1]:25\n"
			       "sub.example.org = relay.example:587\n"));
	assert_int_equal(cfg.routes_count, 3);
	const struct route *r = config_route(&cfg, "example.org");
	assert_non_null(r);
	assert_string_equal(r->host, "127.0.0.1");
	assert_int_equal(r->port, 2525);
	r = config_route(&cfg, "EXAMPLE.ORG");
	assert_non_null(r);
	r = config_route(&cfg, "example.net");
	assert_non_null(r);
	assert_string_equal(r->host, "::1");
	assert_int_equal(r->port, 25);
	assert_non_null(config_route(&cfg, "sub.example.org"));
	assert_null(config_route(&cfg, "other.example.org"));
	assert_null(config_route(&cfg, "org"));
	char *eff = effective(&cfg);
	assert_non_null(strstr(eff, "\n[routes]\nexample.org = 127.0.0.1:2525\n"));
	/* an IPv6 next hop is written back in brackets */
	assert_non_null(strstr(eff, "\nExample.NET = [::1]:25\n"));
	free(eff);
	config_free(&cfg);

	static const struct {
		const char *text, *error;
	} bad[] = {
	    {"[routes]\nexample.org = 127.0.0.1:0\n",
	     "test.conf:2: [routes] example.org: route must be host:port with a port above 0"},
	    {"[routes]\nexample.org =\n",
	     "test.conf:2: [routes] example.org: route must be host:port with a port above 0"},
	    {"[routes]\nexample.org = 127.0.0.1\n", "test.conf:2: [routes] example.org: expected host:port"},
	    {"[routes]\na.example = h:1\nexample.org = h:99999\n",
	     "test.conf:3: [routes] example.org: port must be a number from 0 to 65535"},
	    /* found by fuzz_config: a space inside the brackets was kept in
	       the host and lost when the value was written back */
	    {"[routes]\nexample.org = [ ::1]:25\n",
	     "test.conf:2: [routes] example.org: expected host:port or [address]:port"},
	    {"[routes]\nexample.org = relay;x:25\n",
	     "test.conf:2: [routes] example.org: expected host:port or [address]:port"},
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		char *error = load(&cfg, bad[i].text);
		if (error == NULL || strcmp(error, bad[i].error) != 0)
			fail_msg("route case %zu: got <%s>", i, error ? error : "(accepted)");
		free(error);
		config_free(&cfg);
	}
}

/* The commented default file parses to the defaults, and so does the same
   file with every option uncommented. */
static void test_default_file_round_trip(void **state)
{
	struct config def;
	char *error = NULL;
	assert_int_equal(config_load(&def, NULL, &error), 0);
	char *def_eff = effective(&def);

	char *text = default_file();
	/* every option appears, commented, with its section */
	const char *p = def_eff;
	while ((p = strchr(p, '\n')) != NULL) {
		p++;
		const char *eq = strstr(p, " = ");
		const char *nl = strchr(p, '\n');
		if (*p == '[' || *p == '\n' || *p == '\0' || eq == NULL || (nl != NULL && eq > nl))
			continue;
		char *key = xasprintf("\n#%.*s = ", (int)(eq - p), p);
		if (strstr(text, key) == NULL)
			fail_msg("default file lacks <%s>", key + 1);
		free(key);
	}

	struct config cfg;
	assert_null(load(&cfg, text));
	char *eff = effective(&cfg);
	assert_string_equal(eff, def_eff);
	free(eff);
	config_free(&cfg);

	/* Uncomment "#key = value" lines (not the help lines, not the example
	   route). */
	struct buf un = BUF_INIT;
	bool in_routes = false;
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (line[0] == '[')
			in_routes = !strcmp(line, "[routes]");
		bool option = line[0] == '#' && line[1] != ' ' && strstr(line, " = ") != NULL;
		buf_append_str(&un, option && !in_routes ? line + 1 : line);
		buf_append_char(&un, '\n');
	}
	error = load(&cfg, buf_cstr(&un));
	if (error != NULL)
		fail_msg("uncommented default file: %s", error);
	eff = effective(&cfg);
	assert_string_equal(eff, def_eff);
	free(eff);
	config_free(&cfg);

	/* The effective config of a changed configuration reads back to
	   itself. */
	assert_null(load(&cfg,
			 "[server]\nworkers = 3\nhostname = mx.example\n[limits]\nmax_message_size = 10M\n"
			 "smtp_timeout = 1h\n[smtp]\nlisten = [::1]:0\nbare_newline = normalize\n"
			 "[submission]\nlisten =\n[relay]\nimplicit_tls = yes\nrelayhost = [::1]\n"
			 "[queue]\nretry = 1m, 1h\n"
			 "[routes]\nexample.org = 127.0.0.1:2525\n"));
	eff = effective(&cfg);
	struct config again;
	error = load(&again, eff);
	if (error != NULL)
		fail_msg("effective config does not parse: %s\n%s", error, eff);
	char *eff2 = effective(&again);
	assert_string_equal(eff2, eff);
	assert_string_not_equal(eff, def_eff);
	free(eff2);
	free(eff);
	config_free(&again);
	config_free(&cfg);

	buf_free(&un);
	free(text);
	free(def_eff);
	config_free(&def);
}

/* config_load reads a file and names it in errors. */
static void test_load_file(void **state)
{
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "[server]\nworkers = 2\n\n[limits]\nmax_errors = 1001\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct config cfg;
	char *error = NULL;
	assert_int_equal(config_load(&cfg, path, &error), -1);
	char *expect = xasprintf("%s:5: [limits] max_errors: 1001 is out of range 1..1000", path);
	assert_string_equal(error, expect);
	free(expect);
	free(error);
	config_free(&cfg);

	FILE *f = fopen(path, "w");
	fputs("[server]\nworkers = 2\n", f);
	fclose(f);
	error = NULL;
	assert_int_equal(config_load(&cfg, path, &error), 0);
	assert_string_equal(cfg.file, path);
	assert_int_equal(cfg.workers, 2);
	config_free(&cfg);
	unlink(path);

	assert_int_equal(config_load(&cfg, path, &error), -1);
	expect = xasprintf("%s: cannot open: No such file or directory", path);
	assert_string_equal(error, expect);
	free(expect);
	free(error);
	config_free(&cfg);
}

/* Lines hold at most 198 characters, the last one of a file without
   '\n' too; and what is accepted is written back by `postoffice check`
   in lines that read back (found by fuzz_config). */
static void test_long_lines(void **state)
{
	static const struct {
		const char *head;
		int fill;
		const char *tail;
		const char *error; /* NULL: accepted */
	} cases[] = {
	    {"[server]\nhostname = ", 179, "\n", NULL},
	    {"[server]\nhostname=", 185, "\n", NULL}, /* key and value: 193 */
	    {"[server]\nhostname=", 186, "\n",
	     "test.conf:2: [server] hostname: key and value longer than 193 characters"},
	    {"[server]\nhostname=", 189, "\n", /* a line of 198 */
	     "test.conf:2: [server] hostname: key and value longer than 193 characters"},
	    {"[server]\nhostname = ", 185, "", NULL}, /* no '\n' */
	    {"[server]\nhostname = ", 188, "", "test.conf:2: line longer than 198 characters"},
	    {"[server]\nhostname = ", 188, "\n", "test.conf:2: line longer than 198 characters"},
	    {"[smtp]\nlisten=", 180, ":b:1\n", NULL}, /* written back as [...:b]:1 */
	    {"[routes]\n", 180, "=[::1]:25\n", NULL},
	};
	char fill[200];
	memset(fill, 'h', sizeof(fill));
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *text = xasprintf("%s%.*s%s", cases[i].head, cases[i].fill, fill, cases[i].tail);
		struct config cfg, again;
		char *error = load(&cfg, text);
		free(text);
		if (cases[i].error != NULL) {
			if (error == NULL)
				fail_msg("case %zu accepted", i);
			assert_string_equal(error, cases[i].error);
			free(error);
			continue;
		}
		if (error != NULL)
			fail_msg("case %zu: %s", i, error);
		char *eff = effective(&cfg);
		error = load(&again, eff);
		if (error != NULL)
			fail_msg("case %zu: effective config does not parse: %s", i, error);
		char *eff2 = effective(&again);
		assert_string_equal(eff2, eff);
		free(eff2);
		free(eff);
		config_free(&again);
		config_free(&cfg);
	}
}

/* A failed load leaves nothing allocated behind (found by fuzz_config: the
   defaults leaked, and so did every failed SIGHUP reload in the
   supervisor, which does not free the configuration it could not load). */
static void test_failed_load_frees(void **state)
{
	static const char *const bad[] = {
	    "[server]\nworkers = 65\n",
	    "[server]\nfoo = bar\n",
	    "[server\n",
	    "[server]\nhostname = mx.test\n[smtp]\nlisten = nope\n",
	    "[routes]\nexample.org = 127.0.0.1:0\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		struct config cfg;
		char *error = load(&cfg, bad[i]);
		assert_non_null(error);
		free(error);
		assert_null(cfg.data_dir);
		assert_null(cfg.hostname);
		assert_null(cfg.smtp_listen.host);
		assert_null(cfg.routes);
	}
	struct config cfg;
	char *error = NULL;
	assert_int_equal(config_load(&cfg, "/nonexistent/postoffice.conf", &error), -1);
	free(error);
	assert_null(cfg.file);
	assert_null(cfg.data_dir);
}

/* [storage] backend = postgresql needs [postgresql] conninfo. */
static void test_storage_backend(void **state)
{
	struct config cfg;
	assert_null(load(&cfg, ""));
	assert_int_equal(cfg.storage_backend, STORAGE_LOCAL);
	assert_string_equal(cfg.pg_conninfo, "");
	config_free(&cfg);
	char *error = load(&cfg, "[storage]\nbackend = postgresql\n");
	assert_non_null(strstr(error, "[postgresql] conninfo: must be set"));
	free(error);
	assert_null(load(&cfg, "[storage]\nbackend = postgresql\n[postgresql]\n"
			       "conninfo = host=127.0.0.1 port=5432 dbname=po\n"));
	assert_int_equal(cfg.storage_backend, STORAGE_POSTGRESQL);
	assert_string_equal(cfg.pg_conninfo, "host=127.0.0.1 port=5432 dbname=po");
	config_free(&cfg);
	error = load(&cfg, "[storage]\nbackend = oracle\n");
	assert_non_null(strstr(error, "not one of: local, postgresql"));
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_finish),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_listen_fields),
	    cmocka_unit_test(test_typed_fields),
	    cmocka_unit_test(test_value_parsers),
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_default_file_round_trip),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_failed_load_frees),
	    cmocka_unit_test(test_storage_backend),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
