#include "lib/config.h"
#include "lib/paths.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <ini.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum opt_type {
	OPT_STRING,
	OPT_INT,
	OPT_BOOL,
	OPT_SIZE,
	OPT_DURATION,
	OPT_DURATIONS, /* struct config_durations, each in min..max */
	OPT_ENUM,
	OPT_LISTEN,
	OPT_HOST_PORT, /* struct host_port */
	OPT_NETLIST,   /* struct netlist (lib/netlist.h) */
};

struct option {
	const char *section;
	const char *key;
	enum opt_type type;
	size_t offset;
	const char *def;
	long long min, max;        /* OPT_INT, OPT_SIZE, OPT_DURATION(S) */
	const char *const *values; /* OPT_ENUM, NULL-terminated */
	const char *help;
};

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const plaintext_values[] = {"no", "loopback", "yes", NULL};
static const char *const bare_newline_values[] = {"reject", "normalize", NULL};
static const char *const tls_values[] = {"none", "may", "encrypt", "verify", NULL};
static const char *const storage_values[] = {"local", "postgresql", NULL};

#define OFF(field) offsetof(struct config, field)
#define LISTEN(sec, field, def, what)                                                                        \
	{                                                                                                    \
		sec, "listen", OPT_LISTEN, OFF(field), def, 0, 0, NULL,                                      \
		    what " listener, host:port or [v6]:port; port 0 picks a free port, empty disables"       \
	}

#define PROXY(sec, field)                                                                                    \
	{                                                                                                    \
		sec, "proxy_protocol", OPT_BOOL, OFF(field), "no", 0, 0, NULL,                               \
		    "connections start with a PROXY protocol header (v1 or v2) from a [server] "             \
		    "proxy_trusted "                                                                         \
		    "balancer, which gives the client's address"                                             \
	}

/* Every option, once.  Keep help to one line. */
static const struct option options[] = {
    {"server", "data_dir", OPT_STRING, OFF(data_dir), PO_DATA_DIR, 0, 0, NULL,
     "directory for users.db, mail/, queue/ and tls/ (relative to the working directory)"},
    {"server", "user", OPT_STRING, OFF(user), "postoffice", 0, 0, NULL,
     "unprivileged user the server runs as when started as root"},
    {"server", "workers", OPT_INT, OFF(workers), "0", 0, 64, NULL,
     "worker processes; 0 means one per CPU core"},
    {"server", "hostname", OPT_STRING, OFF(hostname), "", 0, 0, NULL,
     "name in greetings and Received headers; empty means the system host name"},
    {"server", "watchdog", OPT_DURATION, OFF(watchdog), "60s", 0, 3600, NULL,
     "a worker or queue runner whose loop is stuck this long is killed and restarted; 0 disables"},
    {"server", "log_level", OPT_ENUM, OFF(log_level), "info", 0, 0, log_levels, "least severe level logged"},
    {"server", "log", OPT_STRING, OFF(log_target), "stderr", 0, 0, NULL,
     "where log lines go: stderr (the journal under systemd), syslog, or a file (SIGUSR2 reopens it)"},
    {"server", "proxy_trusted", OPT_NETLIST, OFF(proxy_trusted), "", 0, 0, NULL,
     "load balancers allowed to send a PROXY header, like 127.0.0.1, ::1, 10.0.0.0/8; others are closed "
     "on a proxy_protocol listener"},
    {"server", "proxy_timeout", OPT_DURATION, OFF(proxy_timeout), "5s", 1, 60, NULL,
     "how long a proxy_protocol listener waits for the PROXY header before it closes the connection"},

    {"limits", "max_connections", OPT_INT, OFF(max_connections), "10000", 1, 1000000, NULL,
     "connections per worker process, all protocols together"},
    {"limits", "max_connections_per_ip", OPT_INT, OFF(max_connections_per_ip), "100", 1, 1000000, NULL,
     "connections from one client IP address per worker process"},
    {"limits", "max_message_size", OPT_SIZE, OFF(max_message_size), "25M", 1024, 1LL << 40, NULL,
     "largest message accepted (SIZE); suffixes k, M, G"},
    {"limits", "max_recipients", OPT_INT, OFF(max_recipients), "100", 1, 100000, NULL,
     "recipients per message"},
    {"limits", "max_errors", OPT_INT, OFF(max_errors), "10", 1, 1000, NULL,
     "protocol errors in one session before it is disconnected"},
    {"limits", "max_auth_failures", OPT_INT, OFF(max_auth_failures), "3", 1, 100, NULL,
     "failed logins in one session before it is disconnected"},
    {"limits", "auth_failure_delay", OPT_DURATION, OFF(auth_failure_delay), "2s", 0, 60, NULL,
     "delay before answering a failed login (it grows with an IP's failures: auth_penalty_max_delay)"},
    {"limits", "auth_penalty_ip_failures", OPT_INT, OFF(auth_penalty_ip_failures), "10", 0, 10000, NULL,
     "failed logins from one client IP (IPv6: its /64) in all sessions that lock it out; 0: never"},
    {"limits", "auth_penalty_account_failures", OPT_INT, OFF(auth_penalty_account_failures), "30", 0, 10000,
     NULL, "failed logins on one account, all IPs together, that lock out IPs new to it; 0: never"},
    {"limits", "auth_penalty_window", OPT_DURATION, OFF(auth_penalty_window), "1m", 1, 86400, NULL,
     "failed logins further apart than this (or after a lockout) start the count over"},
    {"limits", "auth_penalty_lockout", OPT_DURATION, OFF(auth_penalty_lockout), "5m", 1, 86400, NULL,
     "how long a lockout refuses logins without checking the password"},
    {"limits", "auth_penalty_max_delay", OPT_DURATION, OFF(auth_penalty_max_delay), "15s", 0, 300, NULL,
     "longest failure delay: from an IP's 4th failed login on, auth_failure_delay doubles each time"},
    {"limits", "auth_penalty_entries", OPT_INT, OFF(auth_penalty_entries), "65536", 64, 4194304, NULL,
     "IPs, accounts and trusted pairs in the shared penalty table, 40 bytes each (read at start)"},
    {"limits", "smtp_timeout", OPT_DURATION, OFF(smtp_timeout), "5m", 1, 86400, NULL,
     "SMTP idle timeout (RFC 5321 4.5.3.2 asks for at least 5 minutes)"},

    LISTEN("smtp", smtp_listen, "127.0.0.1:2525", "inbound SMTP (port 25 role, no AUTH)"),
    PROXY("smtp", smtp_proxy_protocol),
    {"smtp", "bare_newline", OPT_ENUM, OFF(bare_newline), "reject", 0, 0, bare_newline_values,
     "message with a bare LF or CR: reject with 5xx, or normalize it to CRLF"},
    {"smtp", "postmaster", OPT_STRING, OFF(postmaster), "", 0, 0, NULL,
     "where postmaster@ each local domain goes; empty means the domain's first user"},
    LISTEN("submission", submission_listen, "127.0.0.1:2587", "submission with STARTTLS (RFC 6409)"),
    PROXY("submission", submission_proxy_protocol),
    LISTEN("submissions", submissions_listen, "127.0.0.1:2465", "submission over implicit TLS (RFC 8314)"),
    PROXY("submissions", submissions_proxy_protocol),

    {"auth", "plaintext_auth", OPT_ENUM, OFF(plaintext_auth), "loopback", 0, 0, plaintext_values,
     "passwords without TLS: no, loopback (only from 127.0.0.0/8 and ::1), yes"},

    {"tls", "cert_file", OPT_STRING, OFF(tls_cert), "", 0, 0, NULL,
     "PEM certificate chain; empty means DATA_DIR/tls/cert.pem, self-signed on first start"},
    {"tls", "key_file", OPT_STRING, OFF(tls_key), "", 0, 0, NULL,
     "PEM private key; empty means DATA_DIR/tls/key.pem"},

    LISTEN("pop3", pop3_listen, "127.0.0.1:2110", "POP3 with STLS"),
    PROXY("pop3", pop3_proxy_protocol),
    {"pop3", "timeout", OPT_DURATION, OFF(pop3_timeout), "10m", 1, 86400, NULL,
     "POP3 idle timeout (RFC 1939 asks for at least 10 minutes)"},
    LISTEN("pop3s", pop3s_listen, "127.0.0.1:2995", "POP3 over implicit TLS"),
    PROXY("pop3s", pop3s_proxy_protocol),

    LISTEN("imap", imap_listen, "127.0.0.1:2143", "IMAP with STARTTLS"),
    PROXY("imap", imap_proxy_protocol),
    {"imap", "timeout", OPT_DURATION, OFF(imap_timeout), "30m", 60, 86400, NULL,
     "IMAP idle timeout (RFC 3501 asks for at least 30 minutes)"},
    {"imap", "max_connections_per_user", OPT_INT, OFF(imap_max_connections_per_user), "50", 1, 100000, NULL,
     "IMAP sessions of one user per worker process"},
    LISTEN("imaps", imaps_listen, "127.0.0.1:2993", "IMAP over implicit TLS"),
    PROXY("imaps", imaps_proxy_protocol),

    {"queue", "lifetime", OPT_DURATION, OFF(queue_lifetime), "5d", 1, 365 * 86400, NULL,
     "how long a message may wait before it bounces"},
    {"queue", "retry", OPT_DURATIONS, OFF(queue_retry), "5m,10m,20m,40m,1h,2h,4h", 1, 365 * 86400, NULL,
     "delays between delivery attempts; the last one repeats; empty means 30m"},
    {"queue", "max_per_domain", OPT_INT, OFF(queue_max_per_domain), "4", 1, 1000, NULL,
     "concurrent outbound connections to one destination domain"},
    {"queue", "max_connections", OPT_INT, OFF(queue_max_connections), "50", 1, 10000, NULL,
     "concurrent outbound connections in total"},
    {"queue", "max_received", OPT_INT, OFF(queue_max_received), "50", 5, 1000, NULL,
     "Received headers after which a message is taken to loop and bounced"},
    {"queue", "lease_time", OPT_DURATION, OFF(queue_lease_time), "5m", 2, 86400, NULL,
     "with a shared queue ([storage] backend = postgresql): how long a node's claim on a message lasts "
     "unless renewed; a dead node's messages go to another node after it"},

    {"relay", "relayhost", OPT_HOST_PORT, OFF(relayhost), "", 0, 0, NULL,
     "smarthost for all remote mail, host[:port] or [host][:port] (port 25, or 465 with implicit_tls); "
     "empty means deliver to each domain's MX"},
    {"relay", "user", OPT_STRING, OFF(relay_user), "", 0, 0, NULL, "AUTH user for the relayhost"},
    {"relay", "password", OPT_STRING, OFF(relay_password), "", 0, 0, NULL, "AUTH password for the relayhost"},
    {"relay", "tls", OPT_ENUM, OFF(relay_tls), "encrypt", 0, 0, tls_values,
     "STARTTLS to the relayhost: none, may, encrypt (required), verify (required and verified)"},
    {"relay", "implicit_tls", OPT_BOOL, OFF(relay_implicit_tls), "no", 0, 0, NULL,
     "connect to the relayhost with implicit TLS (port 465 style)"},
    {"relay", "outbound_tls", OPT_ENUM, OFF(outbound_tls), "may", 0, 0, tls_values,
     "STARTTLS when delivering to MX hosts: none, may (opportunistic), encrypt, verify"},
    {"relay", "mx_port", OPT_INT, OFF(relay_mx_port), "25", 1, 65535, NULL,
     "TCP port of MX hosts (25; tests on loopback change it)"},
    {"relay", "mta_sts", OPT_BOOL, OFF(relay_mta_sts), "yes", 0, 0, NULL,
     "MTA-STS (RFC 8461): fetch, cache and apply the policies of recipient domains for MX delivery"},
    {"relay", "mta_sts_port", OPT_INT, OFF(relay_mta_sts_port), "443", 1, 65535, NULL,
     "HTTPS port of MTA-STS policy hosts (443; tests on loopback change it)"},
    {"relay", "mta_sts_ca", OPT_STRING, OFF(relay_mta_sts_ca), "", 0, 0, NULL,
     "PEM file of the CAs that MTA-STS policy hosts and MX certificates are checked against; "
     "empty means the system store"},
    {"relay", "dane", OPT_BOOL, OFF(relay_dane), "yes", 0, 0, NULL,
     "DANE (RFC 7672): TLSA records of MX hosts, trusted only when [dns] resolver (a validating "
     "resolver) sets AD"},

    {"dns", "resolver", OPT_STRING, OFF(dns_resolver), "", 0, 0, NULL,
     "DNS server as host:port; empty means the system resolver (/etc/resolv.conf)"},

    {"dkim", "verify", OPT_BOOL, OFF(dkim_verify), "yes", 0, 0, NULL,
     "check the DKIM signatures of mail arriving on the inbound port (Authentication-Results on top)"},
    {"dkim", "verify_timeout", OPT_DURATION, OFF(dkim_verify_timeout), "10s", 1, 60, NULL,
     "how long the end of DATA waits for the lookups of inbound checks still running (DKIM keys, SPF, "
     "DMARC, ARC); what is missing then is a temperror"},
    {"spf", "verify", OPT_BOOL, OFF(spf_verify), "yes", 0, 0, NULL,
     "check SPF (RFC 7208) of the MAIL FROM (or HELO) of mail arriving on the inbound port"},
    {"spf", "reject", OPT_BOOL, OFF(spf_reject), "no", 0, 0, NULL,
     "refuse (550 5.7.23) mail whose SPF result is fail when its From: domain publishes no DMARC "
     "policy"},
    {"dmarc", "verify", OPT_BOOL, OFF(dmarc_verify), "yes", 0, 0, NULL,
     "evaluate DMARC (RFC 7489) for mail arriving on the inbound port (SPF and DKIM run for it)"},
    {"dmarc", "reject", OPT_BOOL, OFF(dmarc_reject), "yes", 0, 0, NULL,
     "refuse (550 5.7.1 at the end of DATA) mail that fails DMARC under p=reject; no: quarantine it"},
    {"dmarc", "quarantine", OPT_BOOL, OFF(dmarc_quarantine), "yes", 0, 0, NULL,
     "file mail that fails DMARC under p=quarantine into the recipients' Junk folder"},
    {"arc", "verify", OPT_BOOL, OFF(arc_verify), "yes", 0, 0, NULL,
     "validate the ARC chain (RFC 8617) of mail arriving on the inbound port"},
    {"arc", "trusted_sealers", OPT_STRING, OFF(arc_trusted_sealers), "", 0, 0, NULL,
     "domains (mailing lists, forwarders) whose valid ARC seal forgives a DMARC failure"},
    LISTEN("admin", admin_listen, "", "admin HTTP (/metrics and the status page, e.g. 127.0.0.1:2880)"),
    {"admin", "tls", OPT_BOOL, OFF(admin_tls), "no", 0, 0, NULL,
     "serve the admin listener over HTTPS with [tls] cert_file (session cookies get Secure)"},
    {"admin", "public_status", OPT_BOOL, OFF(admin_public_status), "no", 0, 0, NULL,
     "show the read-only status page without login (queue management still needs one)"},

    {"storage", "backend", OPT_ENUM, OFF(storage_backend), "local", 0, 0, storage_values,
     "where users (and, as their backends come, mail and the queue) live: local (SQLite and Maildir in "
     "data_dir) or postgresql ([postgresql] conninfo)"},
    {"postgresql", "conninfo", OPT_STRING, OFF(pg_conninfo), "", 0, 0, NULL,
     "libpq connection string, e.g. host=db.example port=5432 dbname=postoffice user=postoffice; "
     "required with [storage] backend = postgresql"},
    {"postgresql", "session_ttl", OPT_DURATION, OFF(pg_session_ttl), "1m", 3, 3600, NULL,
     "how long the IMAP sessions of a node that stopped without a word still count against "
     "max_connections_per_user on the other nodes (each node renews its own every third of it)"},
};

/* ---- value parsers ---- */

int config_parse_size(const char *value, uint64_t *size_r)
{
	char *end;
	errno = 0;
	/* strtoull() would take " -1" as a huge number: digits only. */
	if (!isdigit((unsigned char)*value))
		return -1;
	unsigned long long n = strtoull(value, &end, 10);
	if (errno != 0 || end == value)
		return -1;
	uint64_t mult = 1;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = 1024;
		end++;
		break;
	case 'm':
	case 'M':
		mult = 1024 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		mult = 1024ULL * 1024 * 1024;
		end++;
		break;
	default:
		return -1;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || (n != 0 && mult > UINT64_MAX / n))
		return -1;
	*size_r = n * mult;
	return 0;
}

int config_parse_duration(const char *value, int *seconds_r)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)*value))
		return -1;
	long long n = strtoll(value, &end, 10);
	if (errno != 0 || end == value || n < 0)
		return -1;
	long long mult = 1;
	switch (*end) {
	case '\0':
		break;
	case 's':
		mult = 1;
		end++;
		break;
	case 'm':
		mult = 60;
		end++;
		break;
	case 'h':
		mult = 3600;
		end++;
		break;
	case 'd':
		mult = 86400;
		end++;
		break;
	default:
		return -1;
	}
	if (*end != '\0' || n > INT_MAX / mult)
		return -1;
	*seconds_r = (int)(n * mult);
	return 0;
}

/* A host name or an address literal of len bytes: letters, digits, '.',
   '-', '_', ':' (an IPv6 address) and extra.  Anything else would not
   resolve, and ';', '#' or a space would not read back from the file. */
static bool host_chars_ok(const char *host, size_t len, const char *extra)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];
		if (!isalnum(c) && strchr(".-_:", c) == NULL && (extra == NULL || strchr(extra, c) == NULL))
			return false;
	}
	return len > 0;
}

static int parse_port(const char *s, int *port_r)
{
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < 0 || n > 65535)
		return -1;
	*port_r = (int)n;
	return 0;
}

int config_parse_listen(const char *value, struct listen_addr *addr, char **error_r)
{
	memset(addr, 0, sizeof(*addr));
	if (*value == '\0')
		return 0;
	const char *colon;
	char *host;
	if (*value == '[') {
		const char *close = strchr(value, ']');
		if (close == NULL || close[1] != ':') {
			*error_r = xstrdup("expected [address]:port");
			return -1;
		}
		host = xstrndup(value + 1, (size_t)(close - value - 1));
		colon = close + 1;
	} else {
		colon = strrchr(value, ':');
		if (colon == NULL || colon == value) {
			*error_r = xstrdup("expected host:port");
			return -1;
		}
		host = xstrndup(value, (size_t)(colon - value));
	}
	/* The host is written back in brackets when it has a ':', so it
	   holds none of its own (and is not empty). */
	if (!host_chars_ok(host, strlen(host), "*")) {
		free(host);
		*error_r = xstrdup("expected host:port or [address]:port");
		return -1;
	}
	if (parse_port(colon + 1, &addr->port) < 0) {
		free(host);
		*error_r = xstrdup("port must be a number from 0 to 65535");
		return -1;
	}
	addr->host = host;
	addr->enabled = true;
	return 0;
}

int config_parse_host_port(const char *value, struct host_port *hp, char **error_r)
{
	memset(hp, 0, sizeof(*hp));
	if (*value == '\0')
		return 0;
	const char *host = value, *port = NULL;
	size_t host_len;
	if (*value == '[') {
		const char *close = strchr(value, ']');
		if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
			*error_r = xstrdup("expected [host] or [host]:port");
			return -1;
		}
		host++;
		host_len = (size_t)(close - host);
		port = close[1] == ':' ? close + 2 : NULL;
	} else {
		const char *colon = strchr(value, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			*error_r = xstrdup("an IPv6 address goes in brackets: [address]:port");
			return -1;
		}
		host_len = colon != NULL ? (size_t)(colon - value) : strlen(value);
		port = colon != NULL ? colon + 1 : NULL;
	}
	if (!host_chars_ok(host, host_len, NULL) || (*value != '[' && memchr(host, ':', host_len) != NULL)) {
		*error_r = xstrdup("expected host, host:port, [host] or [host]:port");
		return -1;
	}
	if (port != NULL && (parse_port(port, &hp->port) < 0 || hp->port == 0)) {
		*error_r = xstrdup("port must be a number from 1 to 65535");
		return -1;
	}
	hp->host = xstrndup(host, host_len);
	return 0;
}

/* "5m, 10m,1h": durations between commas or spaces, each in min..max. */
static int parse_durations(const char *value, const struct option *o, struct config_durations *list,
			   char **error_r)
{
	memset(list, 0, sizeof(*list));
	char *copy = xstrdup(value), *save = NULL;
	for (char *tok = strtok_r(copy, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save)) {
		int n;
		char *error = NULL;
		if (config_parse_duration(tok, &n) < 0)
			error = xasprintf("'%s' is not a duration (like 30s, 5m, 2h, 5d)", tok);
		else if (n < o->min || n > o->max)
			error = xasprintf("%s is out of range %llds..%llds", tok, o->min, o->max);
		if (error != NULL) {
			*error_r = error;
			free(copy);
			free(list->seconds);
			list->seconds = NULL;
			return -1;
		}
		list->seconds = xreallocarray(list->seconds, list->count + 1, sizeof(*list->seconds));
		list->seconds[list->count++] = n;
	}
	free(copy);
	return 0;
}

static int parse_bool(const char *v, int *r)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "on"))
		*r = 1;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "off"))
		*r = 0;
	else
		return -1;
	return 0;
}

/* Sets one option from its text; returns 0 or -1 with *error_r. */
static int option_set(struct config *cfg, const struct option *o, const char *value, char **error_r)
{
	void *field = (char *)cfg + o->offset;
	switch (o->type) {
	case OPT_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case OPT_INT: {
		char *end;
		errno = 0;
		long long n = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0') {
			*error_r = xasprintf("'%s' is not a number", value);
			return -1;
		}
		if (n < o->min || n > o->max) {
			*error_r = xasprintf("%lld is out of range %lld..%lld", n, o->min, o->max);
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	}
	case OPT_BOOL:
		if (parse_bool(value, (int *)field) < 0) {
			*error_r = xasprintf("'%s' is not yes or no", value);
			return -1;
		}
		return 0;
	case OPT_SIZE: {
		uint64_t n;
		if (config_parse_size(value, &n) < 0) {
			*error_r = xasprintf("'%s' is not a size (like 512k, 25M, 1G)", value);
			return -1;
		}
		if ((long long)n < o->min || (long long)n > o->max) {
			*error_r = xasprintf("%s is out of range %lld..%lld bytes", value, o->min, o->max);
			return -1;
		}
		*(uint64_t *)field = n;
		return 0;
	}
	case OPT_DURATION: {
		int n;
		if (config_parse_duration(value, &n) < 0) {
			*error_r = xasprintf("'%s' is not a duration (like 30s, 5m, 2h, 5d)", value);
			return -1;
		}
		if (n < o->min || n > o->max) {
			*error_r = xasprintf("%s is out of range %llds..%llds", value, o->min, o->max);
			return -1;
		}
		*(int *)field = n;
		return 0;
	}
	case OPT_ENUM:
		for (int i = 0; o->values[i] != NULL; i++) {
			if (!strcasecmp(value, o->values[i])) {
				*(int *)field = i;
				return 0;
			}
		}
		{
			struct {
				char s[256];
				size_t n;
			} list = {"", 0};
			for (int i = 0; o->values[i] != NULL; i++)
				list.n += (size_t)snprintf(list.s + list.n, sizeof(list.s) - list.n, "%s%s",
							   i ? ", " : "", o->values[i]);
			*error_r = xasprintf("'%s' is not one of: %s", value, list.s);
		}
		return -1;
	case OPT_DURATIONS: {
		struct config_durations *list = field, parsed;
		if (parse_durations(value, o, &parsed, error_r) < 0)
			return -1;
		free(list->seconds);
		*list = parsed;
		return 0;
	}
	case OPT_LISTEN: {
		struct listen_addr *addr = field;
		struct listen_addr parsed;
		if (config_parse_listen(value, &parsed, error_r) < 0)
			return -1;
		free(addr->host);
		*addr = parsed;
		return 0;
	}
	case OPT_HOST_PORT: {
		struct host_port *hp = field, parsed;
		if (config_parse_host_port(value, &parsed, error_r) < 0)
			return -1;
		free(hp->host);
		*hp = parsed;
		return 0;
	}
	case OPT_NETLIST: {
		struct netlist *list = field, parsed;
		if (netlist_parse(value, &parsed, error_r) < 0)
			return -1;
		netlist_free(list);
		*list = parsed;
		return 0;
	}
	}
	return -1;
}

/* "host:port", "[v6]:port", or "" for no host. */
static void format_host_port(char *out, size_t outsize, const char *host, int port)
{
	if (host == NULL)
		snprintf(out, outsize, "%s", "");
	else if (strchr(host, ':') != NULL)
		snprintf(out, outsize, "[%s]:%d", host, port);
	else
		snprintf(out, outsize, "%s:%d", host, port);
}

static void option_format(const struct config *cfg, const struct option *o, char *out, size_t outsize)
{
	const void *field = (const char *)cfg + o->offset;
	switch (o->type) {
	case OPT_STRING:
		snprintf(out, outsize, "%s", *(char *const *)field ? *(char *const *)field : "");
		break;
	case OPT_INT:
		snprintf(out, outsize, "%d", *(const int *)field);
		break;
	case OPT_BOOL:
		snprintf(out, outsize, "%s", *(const int *)field ? "yes" : "no");
		break;
	case OPT_SIZE:
		snprintf(out, outsize, "%llu", (unsigned long long)*(const uint64_t *)field);
		break;
	case OPT_DURATION:
		snprintf(out, outsize, "%ds", *(const int *)field);
		break;
	case OPT_DURATIONS: {
		const struct config_durations *list = field;
		size_t n = 0;
		out[0] = '\0';
		for (size_t i = 0; i < list->count && n < outsize; i++)
			n += (size_t)snprintf(out + n, outsize - n, "%s%ds", i ? "," : "", list->seconds[i]);
		break;
	}
	case OPT_ENUM:
		snprintf(out, outsize, "%s", o->values[*(const int *)field]);
		break;
	case OPT_LISTEN: {
		const struct listen_addr *a = field;
		format_host_port(out, outsize, a->enabled ? a->host : NULL, a->port);
		break;
	}
	case OPT_HOST_PORT: {
		const struct host_port *hp = field;
		format_host_port(out, outsize, hp->host, hp->port);
		break;
	}
	case OPT_NETLIST:
		snprintf(out, outsize, "%s", ((const struct netlist *)field)->text);
		break;
	}
}

static void route_add(struct config *cfg, const char *domain, const char *value, char **error_r)
{
	/* (" = host:port" would read back as a continuation line) */
	if (*domain == '\0') {
		*error_r = xstrdup("route needs a domain");
		return;
	}
	struct listen_addr addr;
	if (config_parse_listen(value, &addr, error_r) < 0)
		return;
	if (!addr.enabled || addr.port == 0) {
		free(addr.host);
		*error_r = xstrdup("route must be host:port with a port above 0");
		return;
	}
	cfg->routes = xreallocarray(cfg->routes, cfg->routes_count + 1, sizeof(*cfg->routes));
	struct route *r = &cfg->routes[cfg->routes_count++];
	r->domain = xstrdup(domain);
	r->host = addr.host;
	r->port = addr.port;
}

const struct route *config_route(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->routes_count; i++)
		if (!strcasecmp(cfg->routes[i].domain, domain))
			return &cfg->routes[i];
	return NULL;
}

/* Parsing state.  Lines come through our own reader (ini_parse_stream) so
   that errors name the line they are on and over-long lines are refused
   rather than split by inih's fixed line buffer (200 bytes: 198
   characters, the line end and a NUL). */
#define CONFIG_LINE_MAX 198
struct load_ctx {
	struct config *cfg;
	char *error;
	char *key; /* "[section] key" of the error, or NULL */
	int line;  /* lines read so far */
	int error_line;
	FILE *file;       /* read from the file, or ... */
	const char *text; /* ... from text */
};

static void set_error(struct load_ctx *ctx, char *key, char *error)
{
	if (ctx->error != NULL) {
		free(key);
		free(error);
		return;
	}
	ctx->key = key;
	ctx->error = error;
	ctx->error_line = ctx->line;
}

static char *config_reader(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	char *line = NULL;
	size_t len;
	if (ctx->file != NULL) {
		size_t cap = 0;
		ssize_t n = getline(&line, &cap, ctx->file);
		if (n < 0) {
			free(line);
			return NULL;
		}
		len = (size_t)n;
	} else {
		if (*ctx->text == '\0')
			return NULL;
		const char *nl = strchr(ctx->text, '\n');
		len = nl ? (size_t)(nl - ctx->text) + 1 : strlen(ctx->text);
		line = xstrndup(ctx->text, len);
		ctx->text += len;
	}
	ctx->line++;
	/* The limit counts the characters without the line end, so the last
	   line of a file is held to it too when it has no '\n'. */
	size_t chars = len - (len > 0 && line[len - 1] == '\n');
	if (chars > CONFIG_LINE_MAX || len > (size_t)num - 1) {
		set_error(ctx, NULL, xasprintf("line longer than %d characters", CONFIG_LINE_MAX));
		len = 0;
	}
	memcpy(str, line, len);
	str[len] = '\0';
	free(line);
	return str;
}

/* True when value, written back as "key = value", would read back cut
   at a ';' comment: "key=;x" reads as ";x", and inih keeps " ;" in
   continuation lines. */
static bool value_has_comment(const char *value)
{
	for (const char *p = value; *p != '\0'; p++)
		if (*p == ';' && (p == value || isspace((unsigned char)p[-1])))
			return true;
	return false;
}

static int config_ini_cb(void *user, const char *section, const char *key, const char *value)
{
	struct load_ctx *ctx = user;
	char *error = NULL;
	if (ctx->error != NULL)
		return 1;
	/* config_write_effective() writes "key = value", and a listener
	   may gain brackets: that line must fit too. */
	if (strlen(key) + strlen(value) + 5 > CONFIG_LINE_MAX) {
		set_error(ctx, xasprintf("[%s] %s", section, key),
			  xasprintf("key and value longer than %d characters", CONFIG_LINE_MAX - 5));
		return 0;
	}
	if (value_has_comment(value)) {
		set_error(ctx, xasprintf("[%s] %s", section, key),
			  xstrdup("';' at the start of a value or after a space starts a comment"));
		return 0;
	}
	if (!strcasecmp(section, "routes")) {
		route_add(ctx->cfg, key, value, &error);
		if (error != NULL)
			set_error(ctx, xasprintf("[routes] %s", key), error);
		return error == NULL;
	}
	for (size_t i = 0; i < N_ELEMENTS(options); i++) {
		const struct option *o = &options[i];
		if (strcasecmp(o->section, section) || strcasecmp(o->key, key))
			continue;
		if (option_set(ctx->cfg, o, value, &error) < 0) {
			set_error(ctx, xasprintf("[%s] %s", section, key), error);
			return 0;
		}
		return 1;
	}
	set_error(ctx, xasprintf("[%s] %s", section, key),
		  xstrdup("unknown option (postoffice check --defaults lists every option)"));
	return 0;
}

static void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_ELEMENTS(options); i++) {
		char *error = NULL;
		if (option_set(cfg, &options[i], options[i].def, &error) < 0)
			log_panic("bad default for [%s] %s: %s", options[i].section, options[i].key, error);
	}
}

/* Fills in what one option leaves to another, once all are read, and
   checks options that need each other: 0, or -1 with *error_r. */
static int config_resolve(struct config *cfg, char **error_r)
{
	if (cfg->relayhost.host != NULL && cfg->relayhost.port == 0)
		cfg->relayhost.port = cfg->relay_implicit_tls ? 465 : 25;
	if (cfg->storage_backend == STORAGE_POSTGRESQL && cfg->pg_conninfo[0] == '\0') {
		*error_r = xstrdup("[postgresql] conninfo: must be set with [storage] backend = postgresql");
		return -1;
	}
	return 0;
}

/* rc is inih's: 0, or the first line with an error (syntax or ours). */
static int finish_load(struct load_ctx *ctx, int rc, const char *name, char **error_r)
{
	if (rc == 0 && ctx->error == NULL) {
		char *error = NULL;
		if (config_resolve(ctx->cfg, &error) == 0)
			return 0;
		*error_r = xasprintf("%s: %s", name, error);
		free(error);
		return -1;
	}
	if (ctx->error != NULL && (rc <= 0 || rc >= ctx->error_line))
		*error_r = xasprintf("%s:%d: %s%s%s", name, ctx->error_line, ctx->key ? ctx->key : "",
				     ctx->key ? ": " : "", ctx->error);
	else
		*error_r = xasprintf("%s:%d: syntax error (expected [section] or key = value)", name, rc);
	free(ctx->error);
	free(ctx->key);
	return -1;
}

int config_load(struct config *cfg, const char *path, char **error_r)
{
	config_defaults(cfg);
	if (path == NULL)
		return config_resolve(cfg, error_r); /* the defaults need nothing */
	cfg->file = xstrdup(path);
	struct load_ctx ctx = {.cfg = cfg};
	ctx.file = fopen(path, "r");
	if (ctx.file == NULL) {
		*error_r = xasprintf("%s: cannot open: %s", path, strerror(errno));
		config_free(cfg);
		return -1;
	}
	int rc = ini_parse_stream(config_reader, &ctx, config_ini_cb, &ctx);
	fclose(ctx.file);
	if (finish_load(&ctx, rc, path, error_r) < 0) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

int config_load_string(struct config *cfg, const char *text, const char *name, char **error_r)
{
	config_defaults(cfg);
	struct load_ctx ctx = {.cfg = cfg, .text = text};
	int rc = ini_parse_stream(config_reader, &ctx, config_ini_cb, &ctx);
	if (finish_load(&ctx, rc, name, error_r) < 0) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

void config_finish(struct config *cfg)
{
	if (cfg->hostname[0] == '\0') {
		char host[256] = "localhost";
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		free(cfg->hostname);
		cfg->hostname = xstrdup(host);
	}
	if (cfg->tls_cert[0] == '\0') {
		free(cfg->tls_cert);
		cfg->tls_cert = xasprintf("%s/tls/cert.pem", cfg->data_dir);
	}
	if (cfg->tls_key[0] == '\0') {
		free(cfg->tls_key);
		cfg->tls_key = xasprintf("%s/tls/key.pem", cfg->data_dir);
	}
	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->workers = n < 1 ? 1 : n > 64 ? 64 : (int)n;
	}
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < N_ELEMENTS(options); i++) {
		void *field = (char *)cfg + options[i].offset;
		if (options[i].type == OPT_STRING)
			free(*(char **)field);
		else if (options[i].type == OPT_LISTEN)
			free(((struct listen_addr *)field)->host);
		else if (options[i].type == OPT_DURATIONS)
			free(((struct config_durations *)field)->seconds);
		else if (options[i].type == OPT_HOST_PORT)
			free(((struct host_port *)field)->host);
		else if (options[i].type == OPT_NETLIST)
			netlist_free(field);
	}
	for (size_t i = 0; i < cfg->routes_count; i++) {
		free(cfg->routes[i].domain);
		free(cfg->routes[i].host);
	}
	free(cfg->routes);
	free(cfg->file);
	memset(cfg, 0, sizeof(*cfg));
}

void config_write_default(FILE *out)
{
	fprintf(out, "# postoffice configuration.  Every option is shown commented out with its\n"
		     "# default; uncomment and change what you need, then check it with\n"
		     "# `postoffice check -c FILE` and reload with SIGHUP.  Lines start with\n"
		     "# '#' or ';' for comments; \" ;\" inside a value starts a comment too.\n");
	const char *section = "";
	for (size_t i = 0; i < N_ELEMENTS(options); i++) {
		const struct option *o = &options[i];
		if (strcmp(section, o->section) != 0) {
			section = o->section;
			fprintf(out, "\n[%s]\n", section);
		}
		fprintf(out, "# %s\n", o->help);
		if (o->type == OPT_ENUM) {
			fprintf(out, "# one of:");
			for (int j = 0; o->values[j] != NULL; j++)
				fprintf(out, " %s", o->values[j]);
			fprintf(out, "\n");
		}
		fprintf(out, "#%s = %s\n", o->key, o->def);
	}
	fprintf(out, "\n[routes]\n# per-domain next hop that bypasses MX lookup, domain = host:port\n"
		     "#example.org = 127.0.0.1:2525\n");
}

/* Text for an mdoc line: backslashes escaped, and a line that would start
   with a control character guarded. */
static void mdoc_text(FILE *out, const char *text)
{
	if (text[0] == '.' || text[0] == '\'')
		fputs("\\&", out);
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\\')
			fputs("\\e", out);
		else
			fputc(*p, out);
	}
	/* the table's help is a phrase: here it ends a sentence */
	size_t len = strlen(text);
	fputs(len > 0 && text[len - 1] == '.' ? "\n" : ".\n", out);
}

static const char *const type_names[] = {
    [OPT_STRING] = "string",    [OPT_INT] = "number",        [OPT_BOOL] = "yes|no",
    [OPT_SIZE] = "size",        [OPT_DURATION] = "duration", [OPT_DURATIONS] = "durations",
    [OPT_ENUM] = "word",        [OPT_LISTEN] = "host:port",  [OPT_HOST_PORT] = "host:port",
    [OPT_NETLIST] = "networks",
};

void config_write_manual(FILE *out)
{
	fprintf(out,
		".\\\" Generated by `postoffice check --manual` from the option table of\n"
		".\\\" src/lib/config.c: edit the table, not this file.\n"
		".Dd " PO_MANUAL_DATE "\n.Dt POSTOFFICE.CONF 5\n.Os\n.Sh NAME\n.Nm postoffice.conf\n"
		".Nd configuration file of the postoffice mail server\n.Sh SYNOPSIS\n"
		".Pa " PO_CONFIG_FILE "\n.Sh DESCRIPTION\n"
		"The file is in INI form: a\n.Ic [section]\nline, then\n.Ic key = value\n"
		"lines.\nLines starting with\n.Ql #\nor\n.Ql \\&;\nare comments, and\n.Ql \" ;\"\n"
		"inside a value starts one.\nAn option not in the file has its default.\n"
		"Sizes take the suffixes k, M and G; durations s, m, h and d.\n"
		"Check a file with\n.Ic postoffice check -c FILE ;\nthe server reads it again on\n"
		".Dv SIGHUP .\n.Pp\n"
		".Ic postoffice check --defaults\nprints every option commented out with its default.\n");
	const char *section = "";
	for (size_t i = 0; i < N_ELEMENTS(options); i++) {
		const struct option *o = &options[i];
		if (strcmp(section, o->section) != 0) {
			if (section[0] != '\0')
				fprintf(out, ".El\n");
			section = o->section;
			fprintf(out, ".Ss [%s]\n.Bl -tag -width Ds\n", section);
		}
		fprintf(out, ".It Cm %s No = Ar %s\n", o->key, type_names[o->type]);
		mdoc_text(out, o->help);
		if (o->type == OPT_ENUM) {
			fprintf(out, "One of");
			for (int j = 0; o->values[j] != NULL; j++)
				fprintf(out, "%s\n.Cm %s",
					j == 0 ? "" : (o->values[j + 1] == NULL ? " or" : ","), o->values[j]);
			fprintf(out, " .\n");
		}
		if (o->def[0] == '\0')
			fprintf(out, "Default: empty.\n");
		else
			fprintf(out, "Default:\n.Ql %s .\n", o->def);
	}
	fprintf(out, ".El\n.Ss [routes]\nPer-domain next hops that bypass the MX lookup:\n"
		     ".Bd -literal -offset indent\nexample.org = 192.0.2.25:25\n.Ed\n"
		     ".Sh FILES\n.Bl -tag -width Ds\n.It Pa " PO_CONFIG_FILE "\nthis file\n"
		     ".It Pa " PO_DATA_DIR "\nthe data directory\n.Pq Cm data_dir\n.El\n"
		     ".Sh SEE ALSO\n.Xr postoffice 8\n");
}

void config_write_effective(const struct config *cfg, FILE *out)
{
	const char *section = "";
	for (size_t i = 0; i < N_ELEMENTS(options); i++) {
		const struct option *o = &options[i];
		if (strcmp(section, o->section) != 0) {
			section = o->section;
			fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
		}
		char value[1024];
		option_format(cfg, o, value, sizeof(value));
		fprintf(out, "%s = %s\n", o->key, value);
	}
	fprintf(out, "\n[routes]\n");
	for (size_t i = 0; i < cfg->routes_count; i++) {
		size_t size = strlen(cfg->routes[i].host) + 16;
		char *hp = xmalloc(size);
		format_host_port(hp, size, cfg->routes[i].host, cfg->routes[i].port);
		fprintf(out, "%s = %s\n", cfg->routes[i].domain, hp);
		free(hp);
	}
}
