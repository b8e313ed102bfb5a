/* The supervisor: binds, drops privileges, forks and watches the workers and
   the queue runner. */
#include "server/server.h"
#include "auth/userdb.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/xalloc.h"
#include "queue/queue.h"

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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#define MAX_CHILDREN 80

enum child_kind { CHILD_WORKER, CHILD_RUNNER };

struct child {
	pid_t pid;
	enum child_kind kind;
	time_t started;
	bool retiring;      /* draining after a reload */
};

static struct {
	struct config *cfg;
	struct listener listeners[SERVICE_COUNT];
	int nlisteners;
	struct child children[MAX_CHILDREN];
	volatile sig_atomic_t got_term, got_hup, got_chld, got_alarm;
	bool stopping;
} sup;

static int bind_listener(enum service service, const struct listen_addr *addr, struct listener *l, char **error_r)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	char port[16];
	snprintf(port, sizeof(port), "%d", addr->port);
	int rc = getaddrinfo(addr->host[0] ? addr->host : NULL, port, &hints, &res);
	if (rc != 0) {
		*error_r = xasprintf("[%s] listen: cannot resolve %s: %s", service_name(service), addr->host,
				     gai_strerror(rc));
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
		*error_r = xasprintf("[%s] listen: cannot listen on %s:%d: %s", service_name(service),
				     addr->host, addr->port, strerror(errno));
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
	l->service = service;
	return 0;
}

static int bind_all(struct config *cfg, char **error_r)
{
	const struct listen_addr *addrs[SERVICE_COUNT] = {
		&cfg->smtp_listen, &cfg->submission_listen, &cfg->submissions_listen,
		&cfg->pop3_listen, &cfg->pop3s_listen, &cfg->imap_listen, &cfg->imaps_listen,
	};
	for (int s = 0; s < SERVICE_COUNT; s++) {
		if (!addrs[s]->enabled)
			continue;
		struct listener *l = &sup.listeners[sup.nlisteners];
		if (bind_listener((enum service)s, addrs[s], l, error_r) < 0)
			return -1;
		sup.nlisteners++;
		log_info("listen service=%s address=%s", service_name(l->service), l->address);
	}
	return 0;
}

static int drop_privileges(const struct config *cfg, char **error_r)
{
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL) {
		*error_r = xasprintf("[server] user '%s' does not exist: create it (useradd --system %s) "
				     "or set [server] user to an existing unprivileged user", cfg->user, cfg->user);
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
	log_info("privileges dropped user=%s uid=%d", cfg->user, (int)pw->pw_uid);
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

int server_prepare_data_dir(struct config *cfg, char **error_r)
{
	/* Run as root, in a directory that belongs to the server's user (from
	   an earlier start): its subdirectories must be directories, never
	   links, and files are only created anew (O_EXCL | O_NOFOLLOW). */
	static const char *const subdirs[] = { "mail", "queue", "tmp", "tls" };
	if (fs_mkdir_p(cfg->data_dir, 0750, error_r) < 0)
		return -1;
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		int fd = fs_open_dir_beneath(cfg->data_dir, subdirs[i], true,
					     !strcmp(subdirs[i], "tls") ? 0700 : 0750, (uid_t)-1, (gid_t)-1,
					     error_r);
		if (fd < 0)
			return -1;
		close(fd);
	}
	if (cfg->file == NULL) {
		char *path = xasprintf("%s/postoffice.conf", cfg->data_dir);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (f != NULL) {
			config_write_default(f);
			fclose(f);
			log_info("config written path=%s", path);
		} else if (fd >= 0) {
			close(fd);
		}
		free(path);
	}
	if (tls_ensure_self_signed(cfg->tls_cert, cfg->tls_key, cfg->hostname, error_r) < 0)
		return -1;
	char *dbpath = xasprintf("%s/users.db", cfg->data_dir);
	struct userdb *db = userdb_open(dbpath, true, error_r);
	free(dbpath);
	if (db == NULL)
		return -1;
	userdb_close(&db);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg->user);
		if (pw != NULL)
			fs_chown_tree(cfg->data_dir, pw->pw_uid, pw->pw_gid, true);
	}
	return 0;
}

/* The preparation touches OpenSSL (key generation) and SQLite; done in a
   short-lived child, it leaves the long-lived supervisor small. */
static int prepare_in_child(struct config *cfg, char **error_r)
{
	pid_t pid = fork();
	if (pid < 0) {
		*error_r = xasprintf("fork() failed: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		char *error = NULL;
		if (server_prepare_data_dir(cfg, &error) < 0) {
			log_error("serve failed: %s", error);
			_exit(1);
		}
		_exit(0);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		*error_r = xstrdup("cannot prepare the data directory (see above)");
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
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork() failed: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		/* A child never outlives its supervisor. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(1);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int rc;
		if (kind == CHILD_WORKER) {
			rc = worker_run(sup.cfg, sup.listeners, sup.nlisteners);
		} else {
			for (int i = 0; i < sup.nlisteners; i++)
				close(sup.listeners[i].fd);
			log_set_role("postoffice/queue");
			rc = queue_runner_run(sup.cfg);
		}
		_exit(rc);
	}
	c->pid = pid;
	c->kind = kind;
	c->started = time(NULL);
	c->retiring = false;
}

static void on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		sup.got_term = 1;
	else if (sig == SIGHUP)
		sup.got_hup = 1;
	else if (sig == SIGCHLD)
		sup.got_chld = 1;
}

static void on_alarm(int sig)
{
	sup.got_alarm = 1;
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
		const char *what = kind == CHILD_WORKER ? "worker" : "queue-runner";
		if (WIFSIGNALED(status))
			log_warn("%s exit pid=%d signal=%d (%s)%s", what, (int)pid, WTERMSIG(status),
				 strsignal(WTERMSIG(status)), expected ? "" : " restarting");
		else if (!expected || WEXITSTATUS(status) != 0)
			log_warn("%s exit pid=%d status=%d%s", what, (int)pid, WEXITSTATUS(status),
				 expected ? "" : " restarting");
		if (!expected) {
			/* A child that dies at once would otherwise spin. */
			if (lived < 1)
				sleep(1);
			child_start(kind);
		}
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
	log_info("reload path=%s (listener changes need a restart)", sup.cfg->file);
	/* Retire the current children; new ones start with the new config. */
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (sup.children[i].pid > 0) {
			sup.children[i].retiring = true;
			kill(sup.children[i].pid, SIGTERM);
		}
	config_free(sup.cfg);
	*sup.cfg = fresh;
	for (int i = 0; i < sup.cfg->workers; i++)
		child_start(CHILD_WORKER);
	child_start(CHILD_RUNNER);
}

int server_run(struct config *cfg)
{
	char *error = NULL;
	sup.cfg = cfg;
	signal(SIGPIPE, SIG_IGN);
	if (prepare_in_child(cfg, &error) < 0 || bind_all(cfg, &error) < 0 ||
	    drop_privileges(cfg, &error) < 0) {
		log_error("serve failed: %s", error);
		free(error);
		return 1;
	}
	clean_spool_tmp(cfg);

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);

	log_info("serve start data_dir=%s workers=%d config=%s", cfg->data_dir, cfg->workers,
		 cfg->file ? cfg->file : "(embedded default)");
	for (int i = 0; i < cfg->workers; i++)
		child_start(CHILD_WORKER);
	child_start(CHILD_RUNNER);

	for (;;) {
		while (!sup.got_term && !sup.got_hup && !sup.got_chld)
			sigsuspend(&old);
		if (sup.got_chld) {
			sup.got_chld = 0;
			reap_children();
		}
		if (sup.got_hup) {
			sup.got_hup = 0;
			reload();
		}
		if (sup.got_term)
			break;
	}
	sup.stopping = true;
	log_info("serve stopping");
	signal_children(SIGTERM, false);
	/* Wait for every child to drain; workers give up on idle sessions
	   after 30 seconds, and whatever is left after 40 is killed. */
	alarm(40);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	for (;;) {
		if (sup.got_alarm) {
			log_warn("serve stop: children still running after 40s, killing them");
			signal_children(SIGKILL, false);
			sup.got_alarm = 0;
		}
		sup.got_chld = 0;
		reap_children();
		if (!children_alive())
			break;
		sigsuspend(&old);
	}
	log_info("serve stopped");
	return 0;
}
