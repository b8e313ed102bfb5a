#ifndef LIB_CONFIG_H
#define LIB_CONFIG_H
/* The configuration: one INI file whose every option is declared once in the
   table in config.c (section, key, type, default, bounds, help).  The table
   drives parsing, `postoffice check` and the commented default file. */
#include "lib/netlist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A listener address "host:port" or "[v6]:port"; empty disables it and
   port 0 means "any free port" (the bound port is logged). */
struct listen_addr {
	char *host;
	int port;
	bool enabled;
};

/* A next hop "host", "host:port", "[host]" or "[host]:port" (an IPv6
   address goes in brackets).  host is NULL when the option is empty. */
struct host_port {
	char *host;
	int port; /* 1-65535 once the configuration is loaded */
};

/* A list of durations, "5m, 10m, 1h" (separated by commas or spaces). */
struct config_durations {
	int *seconds;
	size_t count; /* 0 for an empty list */
};

struct route {
	char *domain;
	char *host;
	int port;
};

enum plaintext_auth { PLAINTEXT_AUTH_NO, PLAINTEXT_AUTH_LOOPBACK, PLAINTEXT_AUTH_YES };
enum bare_newline { BARE_NEWLINE_REJECT, BARE_NEWLINE_NORMALIZE };
enum tls_policy { TLS_POLICY_NONE, TLS_POLICY_MAY, TLS_POLICY_ENCRYPT, TLS_POLICY_VERIFY };
/* [storage] backend: where users, mail and the queue live. */
enum storage_backend { STORAGE_LOCAL, STORAGE_POSTGRESQL };

struct config {
	char *file; /* the file read, or NULL for the embedded default */
	/* [server] */
	char *data_dir;
	char *user;
	int workers;                  /* 0: one per core */
	int watchdog;                 /* seconds a child's loop may be silent; 0: no watchdog */
	char *hostname;               /* "" until config_finish() fills in gethostname() */
	int log_level;                /* enum log_level */
	char *log_target;             /* [server] log: "stderr", "syslog" or a file */
	struct netlist proxy_trusted; /* balancers that may send a PROXY header */
	int proxy_timeout;            /* seconds for the header to arrive */
	/* [limits] */
	int max_connections;
	int max_connections_per_ip;
	uint64_t max_message_size;
	int max_recipients;
	int max_errors;
	int max_auth_failures;
	int auth_failure_delay;            /* seconds */
	int auth_penalty_ip_failures;      /* auth/auth_penalty.h; 0: off */
	int auth_penalty_account_failures; /* 0: off */
	int auth_penalty_window;           /* seconds */
	int auth_penalty_lockout;          /* seconds */
	int auth_penalty_max_delay;        /* seconds */
	int auth_penalty_entries;          /* read at start only */
	int smtp_timeout;                  /* seconds */
	/* listeners */
	struct listen_addr smtp_listen;
	struct listen_addr submission_listen;
	struct listen_addr submissions_listen;
	struct listen_addr pop3_listen;
	struct listen_addr pop3s_listen;
	struct listen_addr imap_listen;
	struct listen_addr imaps_listen;
	/* each listener's proxy_protocol: a PROXY header comes first */
	int smtp_proxy_protocol;
	int submission_proxy_protocol;
	int submissions_proxy_protocol;
	int pop3_proxy_protocol;
	int pop3s_proxy_protocol;
	int imap_proxy_protocol;
	int imaps_proxy_protocol;
	/* [smtp] */
	int bare_newline; /* enum bare_newline */
	char *postmaster; /* "" = first user of the domain */
	/* [auth] */
	int plaintext_auth; /* enum plaintext_auth */
	/* [tls] */
	char *tls_cert;
	char *tls_key;
	/* [pop3] */
	int pop3_timeout;
	/* [imap] */
	int imap_timeout;
	int imap_max_connections_per_user;
	/* [queue] */
	int queue_lifetime;                  /* seconds */
	struct config_durations queue_retry; /* delays between attempts */
	int queue_max_per_domain;
	int queue_max_connections;
	int queue_max_received; /* loop detection */
	int queue_lease_time;   /* seconds (shared queue) */
	/* [relay] */
	struct host_port relayhost; /* without a port: 465 with implicit_tls, else 25 */
	char *relay_user;
	char *relay_password;
	int relay_tls; /* enum tls_policy (smarthost) */
	int relay_implicit_tls;
	int outbound_tls;       /* enum tls_policy for MX delivery */
	int relay_mx_port;      /* port of MX hosts (25; tests change it) */
	int relay_mta_sts;      /* MTA-STS for MX delivery (relay/runner_tls.h) */
	int relay_mta_sts_port; /* HTTPS port of policy hosts (443) */
	char *relay_mta_sts_ca; /* "" = the system CA store */
	int relay_dane;         /* DANE for MX hosts */
	/* [dns] */
	char *dns_resolver; /* "" = system resolv.conf */
	/* [dkim] */
	int dkim_verify;         /* check the signatures of inbound mail */
	int dkim_verify_timeout; /* seconds the end of DATA waits for lookups */
	/* [spf], [dmarc], [arc]: checks of inbound mail (trust/inbound.h) */
	int spf_verify;
	int spf_reject; /* fail without a DMARC policy: 550 */
	int dmarc_verify;
	int dmarc_reject;     /* p=reject: 550 */
	int dmarc_quarantine; /* p=quarantine: Junk */
	int arc_verify;
	char *arc_trusted_sealers;
	/* [admin]: metrics and the status page (server/admin.h) */
	struct listen_addr admin_listen;
	int admin_tls;           /* HTTPS with [tls] cert_file */
	int admin_public_status; /* the read-only status page without login */
	/* [storage] */
	int storage_backend; /* enum storage_backend */
	/* [postgresql] */
	char *pg_conninfo;  /* libpq conninfo; required with STORAGE_POSTGRESQL */
	int pg_session_ttl; /* seconds: expiry of a node's live sessions (session/session_registry.h) */
	/* [routes] domain = host:port */
	struct route *routes;
	size_t routes_count;
};

/* Fills cfg with the defaults, then reads path when it is non-NULL.
   Returns 0, or -1 with an error naming file, line and key; cfg is then
   left empty (config_free() on it is harmless but not needed). */
int config_load(struct config *cfg, const char *path, char **error_r);
/* Parses INI text (for tests); name is used in errors.  Returns as
   config_load() does. */
int config_load_string(struct config *cfg, const char *text, const char *name, char **error_r);
/* Resolves what depends on other options (hostname, relative TLS paths). */
void config_finish(struct config *cfg);
void config_free(struct config *cfg);

/* Writes the commented default file: every option, its default and help. */
void config_write_default(FILE *out);
/* Writes the effective configuration as INI text. */
void config_write_effective(const struct config *cfg, FILE *out);
/* The manual page postoffice.conf(5), in mdoc, from the option table (so
   that the manual and the code cannot drift apart). */
void config_write_manual(FILE *out);

/* Parses "host:port", "[v6]:port" or "" into addr. */
int config_parse_listen(const char *value, struct listen_addr *addr, char **error_r);
/* Parses "host", "host:port", "[host]", "[host]:port" or "" into hp (port
   0 when not given).  0, or -1 with *error_r (caller frees). */
int config_parse_host_port(const char *value, struct host_port *hp, char **error_r);
/* Parses sizes "10M", "512k", "1G", "123" and durations "30s", "5m", "2h", "5d". */
int config_parse_size(const char *value, uint64_t *size_r);
int config_parse_duration(const char *value, int *seconds_r);
const struct route *config_route(const struct config *cfg, const char *domain);
#endif
