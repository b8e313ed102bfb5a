/* `postoffice doctor`: what is wrong with this installation, one line per
   check ("ok", "warn" or "fail") with the fix; exit status 1 on any fail. */
#include "auth/userdb.h"
#include "cli/cli.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static void doctor_usage(FILE *out)
{
	fprintf(out, "usage: postoffice doctor [--no-dns]\n\n"
		     "Checks the configuration, the server's user, ownership and modes of the\n"
		     "data directory, the TLS certificate (expiry, name, key), that every\n"
		     "listener answers, free disk space and inodes, the clock, and for each\n"
		     "local domain the DNS records (MX pointing here, SPF, PTR of the outgoing\n"
		     "address) unless --no-dns.  One line per check: ok, warn or fail, with\n"
		     "the fix.  Exit status 1 when a check fails.\n");
}

struct doctor {
	int fails, warns;
};

static void line(struct doctor *d, const char *state, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void line(struct doctor *d, const char *state, const char *check, const char *fmt, ...)
{
	if (!strcmp(state, "fail"))
		d->fails++;
	else if (!strcmp(state, "warn"))
		d->warns++;
	printf("%-6s%-10s", state, check);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void check_config(struct doctor *d, const struct config *cfg)
{
	line(d, "ok", "config", "%s loads", cfg->file != NULL ? cfg->file : "the embedded default");
	if (strchr(cfg->hostname, '.') == NULL)
		line(d, "warn", "config",
		     "[server] hostname '%s' is not a fully qualified name: other servers greet and check it "
		     "(set [server] hostname = mail.example.org)",
		     cfg->hostname);
}

/* The data directory and what is in it belong to the server's user. */
static void check_data_dir(struct doctor *d, const struct config *cfg)
{
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL && geteuid() == 0) {
		line(d, "fail", "user", "[server] user %s does not exist: useradd --system %s", cfg->user,
		     cfg->user);
		return;
	}
	if (pw != NULL)
		line(d, "ok", "user", "%s (uid %u)", cfg->user, (unsigned)pw->pw_uid);
	struct stat st;
	if (stat(cfg->data_dir, &st) < 0) {
		line(d, errno == ENOENT ? "warn" : "fail", "data-dir", "%s: %s%s", cfg->data_dir,
		     strerror(errno), errno == ENOENT ? " (made on the first start: postoffice serve)" : "");
		return;
	}
	uid_t want = pw != NULL && geteuid() == 0 ? pw->pw_uid : geteuid();
	const char *who = pw != NULL && geteuid() == 0 ? cfg->user : "you";
	if (!S_ISDIR(st.st_mode)) {
		line(d, "fail", "data-dir", "%s is not a directory", cfg->data_dir);
		return;
	}
	if (st.st_mode & S_IWOTH) {
		line(d, "fail", "data-dir", "%s is writable by everyone: chmod o-w %s", cfg->data_dir,
		     cfg->data_dir);
		return;
	}
	if (st.st_uid != want) {
		line(d, "fail", "data-dir", "%s belongs to uid %u, not %s: chown -R %s: %s", cfg->data_dir,
		     (unsigned)st.st_uid, who, cfg->user, cfg->data_dir);
		return;
	}
	/* what the server made in it, one level down */
	DIR *dir = opendir(cfg->data_dir);
	int wrong = 0;
	char first[256] = "";
	struct dirent *e;
	while (dir != NULL && (e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		struct stat est;
		if (fstatat(dirfd(dir), e->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 && est.st_uid != want &&
		    wrong++ == 0)
			snprintf(first, sizeof(first), "%s", e->d_name);
	}
	if (dir != NULL)
		closedir(dir);
	if (wrong > 0)
		line(d, "fail", "data-dir", "%d entr%s of %s (%s%s) not %s's: chown -R %s: %s", wrong,
		     wrong == 1 ? "y" : "ies", cfg->data_dir, first, wrong > 1 ? ", ..." : "", who, cfg->user,
		     cfg->data_dir);
	else
		line(d, "ok", "data-dir", "%s belongs to %s, mode %03o", cfg->data_dir, who,
		     (unsigned)(st.st_mode & 0777));
}

static void check_certificate(struct doctor *d, const struct config *cfg)
{
	FILE *f = fopen(cfg->tls_cert, "r");
	if (f == NULL) {
		line(d, errno == ENOENT ? "warn" : "fail", "tls", "%s: %s%s", cfg->tls_cert, strerror(errno),
		     errno == ENOENT ? " (a self-signed one is made on the first start)" : "");
		return;
	}
	X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert == NULL) {
		line(d, "fail", "tls", "%s holds no PEM certificate: replace it", cfg->tls_cert);
		return;
	}
	int days = 0, secs = 0;
	ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert));
	if (days < 0 || (days == 0 && secs < 0))
		line(d, "fail", "tls", "%s expired %d days ago: renew it (e.g. certbot renew) and reload",
		     cfg->tls_cert, -days);
	else if (days < 14)
		line(d, "warn", "tls", "%s expires in %d days: renew it soon", cfg->tls_cert, days);
	else
		line(d, "ok", "tls", "%s valid for %d more days", cfg->tls_cert, days);
	if (X509_check_host(cert, cfg->hostname, 0, 0, NULL) != 1)
		line(d, "warn", "tls", "the certificate is not for %s: clients checking names will refuse it",
		     cfg->hostname);
	if (X509_check_issued(cert, cert) == X509_V_OK)
		line(d, "warn", "tls",
		     "the certificate is self-signed: clients warn; get one from a CA (ACME, e.g. "
		     "certbot) and set [tls] cert_file and key_file");
	f = fopen(cfg->tls_key, "r");
	EVP_PKEY *key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	if (key == NULL)
		line(d, "fail", "tls", "%s: no readable private key (run doctor as root or as %s)",
		     cfg->tls_key, cfg->user);
	else if (X509_check_private_key(cert, key) != 1)
		line(d, "fail", "tls", "%s does not belong to %s: use the key the certificate was made for",
		     cfg->tls_key, cfg->tls_cert);
	EVP_PKEY_free(key);
	X509_free(cert);
}

/* Connects to host:port within a second. */
static bool answers(const char *host, int port)
{
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return false;
	bool ok = false;
	for (struct addrinfo *a = res; a != NULL && !ok; a = a->ai_next) {
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			ok = true;
		} else if (errno == EINPROGRESS) {
			struct pollfd p = {fd, POLLOUT, 0};
			int err = 0;
			socklen_t len = sizeof(err);
			ok = poll(&p, 1, 1000) == 1 &&
			     getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return ok;
}

static void check_listeners(struct doctor *d, const struct config *cfg)
{
	const struct {
		const char *name;
		const struct listen_addr *l;
	} ls[] = {
	    {"smtp", &cfg->smtp_listen},
	    {"submission", &cfg->submission_listen},
	    {"submissions", &cfg->submissions_listen},
	    {"pop3", &cfg->pop3_listen},
	    {"pop3s", &cfg->pop3s_listen},
	    {"imap", &cfg->imap_listen},
	    {"imaps", &cfg->imaps_listen},
	};
	for (size_t i = 0; i < N_ELEMENTS(ls); i++) {
		const struct listen_addr *l = ls[i].l;
		if (!l->enabled || l->port == 0)
			continue;
		/* a wildcard address is reached on loopback */
		const char *host = l->host == NULL || !strcmp(l->host, "*") || !strcmp(l->host, "0.0.0.0")
				       ? "127.0.0.1"
				   : !strcmp(l->host, "::") ? "::1"
							    : l->host;
		if (answers(host, l->port))
			line(d, "ok", "listen", "%s on %s port %d answers", ls[i].name, host, l->port);
		else
			line(d, "fail", "listen",
			     "%s on %s port %d does not answer: is the server running (systemctl start "
			     "postoffice)? is another program on the port?",
			     ls[i].name, host, l->port);
	}
}

static void check_disk(struct doctor *d, const struct config *cfg)
{
	struct statvfs vfs;
	if (statvfs(cfg->data_dir, &vfs) < 0)
		return; /* the data directory check said why */
	double bytes = (double)vfs.f_bavail * (double)vfs.f_frsize;
	double pct = vfs.f_blocks > 0 ? 100.0 * (double)vfs.f_bavail / (double)vfs.f_blocks : 100;
	double ipct = vfs.f_files > 0 ? 100.0 * (double)vfs.f_favail / (double)vfs.f_files : 100;
	const char *state = pct < 1 || bytes < 100e6 ? "fail" : pct < 5 || bytes < 1e9 ? "warn" : "ok";
	line(d, state, "disk", "%.1f GB (%.0f%%) free on the file system of %s%s", bytes / 1e9, pct,
	     cfg->data_dir,
	     strcmp(state, "ok") ? ": mail is refused with 452 when it runs out; free space or grow it" : "");
	if (vfs.f_files > 0) {
		state = ipct < 1 ? "fail" : ipct < 5 ? "warn" : "ok";
		line(d, state, "inodes", "%.0f%% of the inodes free (a Maildir needs one per message)%s",
		     ipct,
		     strcmp(state, "ok") ? ": remove files or make the file system with more inodes" : "");
	}
}

/* The clock: not before this code was written, and not behind the data. */
static void check_clock(struct doctor *d, const struct config *cfg)
{
	time_t now = time(NULL);
	if (now < 1767225600) { /* 2026-01-01 */
		line(d, "fail", "clock",
		     "the clock says %lld, before this program was built: set it (timedatectl "
		     "set-ntp true)",
		     (long long)now);
		return;
	}
	char *probe = xasprintf("%s/users.db", cfg->data_dir);
	struct stat st;
	if (stat(probe, &st) == 0 && st.st_mtime > now + 300)
		line(d, "warn", "clock",
		     "%s was written %lld s in the future: the clock went back (check NTP)", probe,
		     (long long)(st.st_mtime - now));
	else
		line(d, "ok", "clock", "the time is plausible");
	free(probe);
}

static int collect_domain(void *ctx, const char *domain, unsigned users, int64_t created)
{
	char ***list = ctx;
	size_t n = 0;
	while ((*list)[n] != NULL)
		n++;
	*list = xreallocarray(*list, n + 2, sizeof(char *));
	(*list)[n] = xstrdup(domain);
	(*list)[n + 1] = NULL;
	return 0;
}

static void check_dns(struct doctor *d, struct config *cfg)
{
	char *path = xasprintf("%s/users.db", cfg->data_dir);
	char *error = NULL;
	struct userdb *db = cfg->storage_backend != STORAGE_LOCAL || access(path, R_OK) == 0
				? userdb_open_config(cfg, path, false, &error)
				: NULL;
	free(path);
	free(error);
	if (db == NULL)
		return;
	char **domains = xcalloc(1, sizeof(char *));
	error = NULL;
	userdb_domain_list(db, collect_domain, &domains, &error);
	free(error);
	userdb_close(&db);
	for (size_t i = 0; domains[i] != NULL; i++) {
		int problems = cli_dns_check(cfg, domains[i], NULL, 0, true);
		if (problems > 0)
			d->warns += problems;
		free(domains[i]);
	}
	free(domains);
}

static int doctor_run(struct config *cfg, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		doctor_usage(stdout);
		return 0;
	}
	bool dns = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-dns")) {
			dns = false;
		} else {
			doctor_usage(stderr);
			return 2;
		}
	}
	struct doctor d = {0, 0};
	check_config(&d, cfg);
	check_data_dir(&d, cfg);
	check_certificate(&d, cfg);
	check_listeners(&d, cfg);
	check_disk(&d, cfg);
	check_clock(&d, cfg);
	if (dns)
		check_dns(&d, cfg);
	printf("%d failed, %d warnings\n", d.fails, d.warns);
	return d.fails > 0 ? 1 : 0;
}

const struct cli_command cmd_doctor = {
    "doctor", "[--no-dns]", "find out what is wrong with this installation", doctor_run, doctor_usage,
};
