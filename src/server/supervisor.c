/* The supervisor: binds, drops privileges, forks and watches the workers and
   the queue runner. */
#include "server/server.h"
#include "server/admin.h"
#include "auth/auth_penalty.h"
#include "auth/userdb.h"
#include "lib/fsutil.h"
#include "lib/heartbeat.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/tls.h"
#include "lib/xalloc.h"
#include "relay/relay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#define MAX_CHILDREN 80
/* A child that dies within RAPID_EXIT seconds of its start, RAPID_LIMIT
   times in a row, is not restarted again: the server stops with an error
   instead of accepting connections nobody serves. */
#define RAPID_EXIT 10
#define RAPID_LIMIT 5
/* Children get this long to drain after SIGTERM before they are killed. */
#define STOP_GRACE 40

enum child_kind { CHILD_WORKER, CHILD_RUNNER, CHILD_ADMIN, CHILD_KINDS };

struct child {
	pid_t pid;
	enum child_kind kind;
	time_t started;
	bool retiring; /* draining after a reload */
	bool killed;   /* by the watchdog */
};

static struct {
	struct config *cfg;
	char *data_dir; /* as configured, for messages (cfg->data_dir is ".") */
	struct listener listeners[SERVICE_COUNT];
	int nlisteners;
	struct listener admin; /* [admin] listen; fd -1 when off */
	struct child children[MAX_CHILDREN];
	struct heartbeat *beats; /* shared with the children, one per slot */
	int rapid_exits[CHILD_KINDS];
	volatile sig_atomic_t got_term, got_hup, got_chld, got_tick, got_usr2;
	struct auth_penalty *auth_penalty; /* shared with every worker */
	struct metrics *metrics;           /* shared with every child, one slot each */
	bool stopping;
	int exit_code;
} sup;

static const char *child_name(enum child_kind kind)
{
	return kind == CHILD_WORKER ? "worker" : kind == CHILD_RUNNER ? "queue-runner" : "admin";
}

/* name is the service's, for the messages. */
static int bind_listener(const char *name, const struct listen_addr *addr, struct listener *l, char **error_r)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	char port[16];
	snprintf(port, sizeof(port), "%d", addr->port);
	int rc = getaddrinfo(addr->host[0] ? addr->host : NULL, port, &hints, &res);
	if (rc != 0) {
		*error_r =
		    xasprintf("[%s] listen: cannot resolve %s: %s", name, addr->host, gai_strerror(rc));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (res->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
		*error_r = xasprintf("[%s] listen: cannot listen on %s:%d: %s", name, addr->host, addr->port,
				     strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	char ip[INET6_ADDRSTRLEN];
	int bound_port;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		bound_port = ntohs(s6->sin6_port);
		snprintf(l->address, sizeof(l->address), "[%s]:%d", ip, bound_port);
	} else {
		struct sockaddr_in *s4 = (void *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		bound_port = ntohs(s4->sin_port);
		snprintf(l->address, sizeof(l->address), "%s:%d", ip, bound_port);
	}
	l->fd = fd;
	return 0;
}

static int bind_all(struct config *cfg, char **error_r)
{
	const struct listen_addr *addrs[SERVICE_COUNT] = {
	    &cfg->smtp_listen,  &cfg->submission_listen, &cfg->submissions_listen, &cfg->pop3_listen,
	    &cfg->pop3s_listen, &cfg->imap_listen,       &cfg->imaps_listen,
	};
	for (int s = 0; s < SERVICE_COUNT; s++) {
		if (!addrs[s]->enabled)
			continue;
		struct listener *l = &sup.listeners[sup.nlisteners];
		if (bind_listener(service_name((enum service)s), addrs[s], l, error_r) < 0)
			return -1;
		l->service = (enum service)s;
		sup.nlisteners++;
		log_info("listen service=%s address=%s", service_name(l->service), l->address);
	}
	sup.admin.fd = -1;
	if (cfg->admin_listen.enabled) {
		if (bind_listener("admin", &cfg->admin_listen, &sup.admin, error_r) < 0)
			return -1;
		log_info("listen service=admin address=%s", sup.admin.address);
	}
	return 0;
}

/* The supervisor stays root (to read its configuration again on SIGHUP,
   wherever it is); every child drops to [server] user right after fork. */
static int drop_privileges(const struct config *cfg, char **error_r)
{
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL) {
		*error_r = xasprintf("[server] user '%s' does not exist: create it (useradd --system %s) "
				     "or set [server] user to an existing unprivileged user",
				     cfg->user, cfg->user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		*error_r = xasprintf("[server] user '%s' is root: choose an unprivileged user", cfg->user);
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		*error_r = xasprintf("cannot become user %s: %s", cfg->user, strerror(errno));
		return -1;
	}
	return 0;
}

/* Removes message files left in DATA_DIR/tmp by a process that died before
   it acknowledged them (acknowledged messages are already linked elsewhere). */
static void clean_spool_tmp(const struct config *cfg)
{
	char *dir = xasprintf("%s/tmp", cfg->data_dir);
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *de;
		time_t now = time(NULL);
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char *path = xasprintf("%s/%s", dir, de->d_name);
			struct stat st;
			/* Only files no live process can still be writing. */
			if (stat(path, &st) == 0 && now - st.st_mtime > 3600)
				unlink(path);
			free(path);
		}
		closedir(d);
	}
	free(dir);
}

/* As root: the data directory itself, with whatever earlier commands run
   as root left in it, is handed to the server user (through descriptors,
   following no link: lib/fsutil.h).  Everything else in it is created by
   that user (prepare_data_dir()). */
static int claim_data_dir(const struct config *cfg, char **error_r)
{
	if (fs_mkdir_p(cfg->data_dir, 0750, error_r) < 0)
		return -1;
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg->user);
		if (pw != NULL)
			fs_chown_tree(cfg->data_dir, pw->pw_uid, pw->pw_gid, true);
	}
	return 0;
}

/* Runs step(cfg, &error) in a short-lived child and waits for it; the
   child logs its own error; what names the step in the caller's error. */
static int run_in_child(int (*step)(struct config *cfg, char **error_r), struct config *cfg, const char *what,
			char **error_r)
{
	pid_t pid = fork();
	if (pid < 0) {
		*error_r = xasprintf("fork() failed: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		char *error = NULL;
		if (step(cfg, &error) < 0) {
			log_error("serve failed: %s", error);
			_exit(1);
		}
		_exit(0);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		*error_r = xasprintf("%s (see above)", what);
		return -1;
	}
	return 0;
}

static struct child *child_slot(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (sup.children[i].pid == pid)
			return &sup.children[i];
	return NULL;
}

static void child_start(enum child_kind kind)
{
	struct child *c = child_slot(0);
	if (c == NULL) {
		log_error("supervisor cannot start more children");
		return;
	}
	struct heartbeat *hb = &sup.beats[c - sup.children];
	heartbeat_stamp(hb);
	pid_t supervisor = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork() failed: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		/* until the child's loop takes it (log_reopen) */
		signal(SIGUSR2, SIG_IGN);
		struct itimerval off = {{0, 0}, {0, 0}};
		setitimer(ITIMER_REAL, &off, NULL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *error = NULL;
		if (drop_privileges(sup.cfg, &error) < 0) {
			log_error("%s cannot start: %s", child_name(kind), error);
			_exit(1);
		}
		/* A child never outlives its supervisor (SIGTERM: a worker
		   drains, the runner stops).  Set after drop_privileges(): a
		   change of user or group clears it (prctl(2)).  A supervisor
		   gone before this shows as another parent. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != supervisor)
			_exit(1);
		int rc;
		static const enum metrics_process process[CHILD_KINDS] = {
		    METRICS_PROCESS_WORKER, METRICS_PROCESS_RUNNER, METRICS_PROCESS_ADMIN};
		metrics_attach(sup.metrics, (unsigned)(c - sup.children), process[kind]);
		if (kind != CHILD_ADMIN && sup.admin.fd >= 0)
			close(sup.admin.fd);
		if (kind != CHILD_WORKER)
			for (int i = 0; i < sup.nlisteners; i++)
				close(sup.listeners[i].fd);
		if (kind == CHILD_WORKER) {
			rc = worker_run(sup.cfg, sup.listeners, sup.nlisteners, sup.auth_penalty, hb);
		} else if (kind == CHILD_RUNNER) {
			log_set_role("postoffice/queue");
			rc = queue_runner_run(sup.cfg, hb);
		} else {
			rc = admin_run(sup.cfg, &sup.admin, sup.auth_penalty, sup.metrics, hb);
		}
		_exit(rc);
	}
	c->pid = pid;
	c->kind = kind;
	c->started = time(NULL);
	c->retiring = false;
	c->killed = false;
}

static void on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		sup.got_term = 1;
	else if (sig == SIGHUP)
		sup.got_hup = 1;
	else if (sig == SIGCHLD)
		sup.got_chld = 1;
	else if (sig == SIGUSR2)
		sup.got_usr2 = 1;
}

static void on_tick(int sig)
{
	sup.got_tick = 1;
}

static void stop_server(int exit_code)
{
	sup.got_term = 1;
	if (exit_code > sup.exit_code)
		sup.exit_code = exit_code;
}

/* A child that died unexpectedly is restarted, unless it keeps dying right
   after its start. */
static void child_restart(enum child_kind kind, time_t lived)
{
	if (lived >= RAPID_EXIT) {
		sup.rapid_exits[kind] = 0;
	} else if (++sup.rapid_exits[kind] >= RAPID_LIMIT && kind == CHILD_ADMIN) {
		/* The status page is not worth the mail: serve without it. */
		log_error("the admin process died %d times in a row within %d seconds of its start (see its "
			  "errors above); [admin] listen is not served until a reload",
			  RAPID_LIMIT, RAPID_EXIT);
		sup.rapid_exits[kind] = 0;
		return;
	} else if (sup.rapid_exits[kind] >= RAPID_LIMIT) {
		log_error("serve failed: the %s died %d times in a row within %d seconds of its start "
			  "(see its errors above); stopping",
			  child_name(kind), RAPID_LIMIT, RAPID_EXIT);
		stop_server(1);
		return;
	}
	/* A child that dies at once would otherwise spin. */
	if (lived < 1)
		sleep(1);
	child_start(kind);
}

/* The watchdog: a child whose loop has not stamped its heartbeat for
   [server] watchdog seconds is stuck in one callback; it is killed (and
   then restarted like any child that dies). */
static void watchdog_check(void)
{
	if (sup.cfg->watchdog <= 0)
		return;
	for (int i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &sup.children[i];
		if (c->pid <= 0 || c->killed)
			continue;
		int64_t silent = heartbeat_silence_ms(&sup.beats[i]);
		if (silent < (int64_t)sup.cfg->watchdog * 1000)
			continue;
		log_error("%s hung pid=%d silent=%lldms: killing it (watchdog %ds)", child_name(c->kind),
			  (int)c->pid, (long long)silent, sup.cfg->watchdog);
		kill(c->pid, SIGKILL);
		c->killed = true;
	}
}

static void reap_children(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = child_slot(pid);
		if (c == NULL)
			continue;
		enum child_kind kind = c->kind;
		bool expected = c->retiring || sup.stopping;
		time_t lived = time(NULL) - c->started;
		c->pid = 0;
		metrics_slot_exited(sup.metrics, (unsigned)(c - sup.children));
		const char *what = child_name(kind);
		if (WIFSIGNALED(status))
			log_warn("%s exit pid=%d signal=%d (%s)%s", what, (int)pid, WTERMSIG(status),
				 strsignal(WTERMSIG(status)), expected ? "" : " restarting");
		else if (!expected || WEXITSTATUS(status) != 0)
			log_warn("%s exit pid=%d status=%d%s", what, (int)pid, WEXITSTATUS(status),
				 expected ? "" : " restarting");
		if (!expected && !sup.got_term)
			child_restart(kind, lived);
	}
}

static bool children_alive(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (sup.children[i].pid > 0)
			return true;
	return false;
}

static void signal_children(int sig, bool only_current)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (sup.children[i].pid > 0 && (!only_current || !sup.children[i].retiring))
			kill(sup.children[i].pid, sig);
}

/* Paths under the data directory become relative to it, other relative
   paths absolute: the server works inside the data directory (see
   enter_data_dir()). */
static void rebase_path(char **path, const char *start_dir)
{
	const char *dir = sup.data_dir;
	size_t n = strlen(dir);
	const char *p = *path;
	char *fresh;
	if (strcmp(p, dir) == 0)
		fresh = xstrdup(".");
	else if (strncmp(p, dir, n) == 0 && p[n] == '/')
		fresh = xasprintf(".%s", p + n);
	else if (p[0] != '/' && p[0] != '\0' && start_dir != NULL)
		fresh = xasprintf("%s/%s", start_dir, p);
	else
		return;
	free(*path);
	*path = fresh;
}

static void rebase_config(struct config *cfg, const char *start_dir)
{
	if (strcmp(cfg->data_dir, sup.data_dir) != 0)
		log_warn("reload: [server] data_dir changes need a restart; still using %s", sup.data_dir);
	rebase_path(&cfg->tls_cert, start_dir);
	rebase_path(&cfg->tls_key, start_dir);
	if (cfg->file != NULL)
		rebase_path(&cfg->file, start_dir);
	free(cfg->data_dir);
	cfg->data_dir = xstrdup(".");
}

/* The server works inside its data directory, entered while still root:
   the unprivileged user then needs no access to the directories above it
   (a checkout under /root, mode 0700, is the common case). */
static int enter_data_dir(struct config *cfg, char **error_r)
{
	char *start_dir = getcwd(NULL, 0);
	sup.data_dir = xstrdup(cfg->data_dir);
	if (chdir(cfg->data_dir) < 0) {
		*error_r = xasprintf("chdir(%s) failed: %s", cfg->data_dir, strerror(errno));
		free(start_dir);
		return -1;
	}
	rebase_config(cfg, start_dir);
	free(start_dir);
	return 0;
}

/* In a short-lived child (run_in_child()), as the server user inside the
   data directory, so that root writes nothing where that user could plant
   a link: the subdirectories, the default configuration, the self-signed
   certificate and users.db, then a check that the user can work there
   (rather than restart children that cannot, forever) and the spool's
   tmp/ cleaned.  The preparation touches OpenSSL (key generation) and
   SQLite; done in a child, it leaves the long-lived supervisor small. */
static int prepare_data_dir(struct config *cfg, char **error_r)
{
	static const char *const subdirs[] = {"mail", "queue", "tmp", "tls"};
	if (drop_privileges(cfg, error_r) < 0)
		return -1;
	if (access(".", R_OK | W_OK | X_OK) < 0) {
		*error_r = xasprintf("user %s cannot use the data directory %s: %s; give it to that user "
				     "(chown -R %s %s) or set [server] data_dir",
				     cfg->user, sup.data_dir, strerror(errno), cfg->user, sup.data_dir);
		return -1;
	}
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		int fd = fs_open_dir_beneath(".", subdirs[i], true, !strcmp(subdirs[i], "tls") ? 0700 : 0750,
					     (uid_t)-1, (gid_t)-1, error_r);
		if (fd < 0)
			return -1;
		close(fd);
	}
	if (cfg->file == NULL) {
		int fd = open("postoffice.conf", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (f != NULL) {
			config_write_default(f);
			fclose(f);
			log_info("config written path=%s/postoffice.conf", sup.data_dir);
		} else if (fd >= 0) {
			close(fd);
		}
	}
	if (tls_ensure_self_signed(cfg->tls_cert, cfg->tls_key, cfg->hostname, error_r) < 0)
		return -1;
	struct userdb *db = userdb_open_config(cfg, "users.db", true, error_r);
	if (db == NULL)
		return -1;
	userdb_close(&db);
	clean_spool_tmp(cfg);
	return 0;
}

static void start_children(void)
{
	for (int i = 0; i < sup.cfg->workers; i++)
		child_start(CHILD_WORKER);
	child_start(CHILD_RUNNER);
	if (sup.admin.fd >= 0)
		child_start(CHILD_ADMIN);
}

static void reload(void)
{
	struct config fresh;
	char *error = NULL;
	if (sup.cfg->file == NULL) {
		log_info("reload skipped reason=\"embedded default configuration\"");
		return;
	}
	if (config_load(&fresh, sup.cfg->file, &error) < 0) {
		log_error("reload failed error=\"%s\" (keeping the running configuration)", error);
		free(error);
		return;
	}
	config_finish(&fresh);
	/* Relative paths in the file were relative to the directory serve
	   started in, which is where the configuration file's directory is
	   not necessarily; keep what was resolved at start for those. */
	rebase_config(&fresh, NULL);
	log_info("reload path=%s (listener changes need a restart)", sup.cfg->file);
	/* Retire the current children; new ones start with the new config. */
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (sup.children[i].pid > 0) {
			sup.children[i].retiring = true;
			kill(sup.children[i].pid, SIGTERM);
		}
	config_free(sup.cfg);
	*sup.cfg = fresh;
	start_children();
}

/* Each connection is a descriptor: a worker must be able to hold
   [limits] max_connections of them, plus files and databases. */
static void raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections + 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want && geteuid() == 0)
		rl.rlim_max = want;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("setrlimit(RLIMIT_NOFILE, %llu) failed: %s", (unsigned long long)rl.rlim_cur,
			 strerror(errno));
	if (rl.rlim_cur < want)
		log_warn("open files limited to %llu: fewer than [limits] max_connections=%d connections "
			 "per worker can be served",
			 (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

static void install_handlers(sigset_t *old)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_tick;
	sigaction(SIGALRM, &sa, NULL);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, old);
	/* One tick a second for the watchdog and the stop deadline. */
	struct itimerval second = {{1, 0}, {1, 0}};
	setitimer(ITIMER_REAL, &second, NULL);
}

/* SIGTERM: every child drains; workers give up on idle sessions after 30
   seconds, and whatever is left after STOP_GRACE is killed. */
static void stop_children(const sigset_t *old)
{
	sup.stopping = true;
	log_info("serve stopping");
	signal_children(SIGTERM, false);
	time_t deadline = time(NULL) + STOP_GRACE;
	bool killed = false;
	for (;;) {
		sup.got_chld = 0;
		reap_children();
		if (!children_alive())
			break;
		if (sup.got_tick) {
			sup.got_tick = 0;
			watchdog_check();
			if (!killed && time(NULL) >= deadline) {
				log_warn("serve stop: children still running after %ds, killing them",
					 STOP_GRACE);
				signal_children(SIGKILL, false);
				killed = true;
			}
		}
		sigsuspend(old);
	}
}

int server_run(struct config *cfg)
{
	char *error = NULL;
	sup.cfg = cfg;
	signal(SIGPIPE, SIG_IGN);
	/* the log file belongs to the server's user, whose processes open it
	   again on SIGUSR2 */
	struct passwd *pw = geteuid() == 0 ? getpwnam(cfg->user) : NULL;
	if (log_open(cfg->log_target, pw != NULL ? pw->pw_uid : (uid_t)-1,
		     pw != NULL ? pw->pw_gid : (gid_t)-1, &error) < 0) {
		log_error("serve failed: %s", error);
		free(error);
		return 1;
	}
	if (claim_data_dir(cfg, &error) < 0 || bind_all(cfg, &error) < 0 || enter_data_dir(cfg, &error) < 0 ||
	    run_in_child(prepare_data_dir, cfg, "cannot prepare the data directory", &error) < 0 ||
	    (sup.auth_penalty = auth_penalty_create(cfg->auth_penalty_entries, &error)) == NULL) {
		log_error("serve failed: %s", error);
		free(error);
		return 1;
	}
	if (geteuid() == 0)
		log_info("children run as user=%s", cfg->user);
	raise_fd_limit(cfg);
	sup.beats = heartbeat_table_create(MAX_CHILDREN);
	sup.metrics = metrics_create(MAX_CHILDREN);
	sigset_t old;
	install_handlers(&old);

	log_info("serve start data_dir=%s workers=%d config=%s", sup.data_dir, cfg->workers,
		 cfg->file ? cfg->file : "(embedded default)");
	start_children();

	while (!sup.got_term) {
		while (!sup.got_term && !sup.got_hup && !sup.got_chld && !sup.got_tick && !sup.got_usr2)
			sigsuspend(&old);
		if (sup.got_usr2) {
			/* logrotate moved the file: everyone opens it again */
			sup.got_usr2 = 0;
			log_reopen();
			signal_children(SIGUSR2, false);
			log_info("log reopened");
		}
		if (sup.got_chld) {
			sup.got_chld = 0;
			reap_children();
		}
		if (sup.got_hup) {
			sup.got_hup = 0;
			reload();
		}
		if (sup.got_tick) {
			sup.got_tick = 0;
			watchdog_check();
		}
	}
	stop_children(&old);
	heartbeat_table_destroy(&sup.beats, MAX_CHILDREN);
	metrics_destroy(&sup.metrics);
	log_info("serve stopped");
	free(sup.data_dir);
	return sup.exit_code;
}
