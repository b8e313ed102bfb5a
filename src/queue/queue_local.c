/* The queue backend "local": the spool as files in DATA_DIR/queue (see
   spool.h for the layout).  Envelopes are rewritten durably on every
   change; commands run as root create nothing through a link. */
#include "queue/queue_backend.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uid_t queue_owner_uid = (uid_t)-1;
static gid_t queue_owner_gid = (gid_t)-1;

void queue_set_owner(uid_t uid, gid_t gid)
{
	queue_owner_uid = uid;
	queue_owner_gid = gid;
}

/* DATA_DIR/queue for writing.  Commands run as root write here for the
   server's user, who owns the directory and could have planted links: the
   directory is opened without following links below DATA_DIR (a link there
   is refused), made when missing, owned by the spool's owner when one is
   set, and every file is then made relative to it (see fsutil.h). */
static int queue_open(const char *data_dir, bool create, char **error_r)
{
	return fs_open_dir_beneath(data_dir, "queue", create, 0750, queue_owner_uid, queue_owner_gid,
				   error_r);
}

/* The durable write of fsutil.h, with the owner set before the rename. */
static int write_durable(int qfd, const char *qdir, const char *name, const void *data, size_t len,
			 char **error_r)
{
	return fs_write_file_durable_at(qfd, qdir, name, data, len, 0640, queue_owner_uid, queue_owner_gid,
					error_r);
}

char *queue_dir(const char *data_dir)
{
	return xasprintf("%s/queue", data_dir);
}

char *queue_path(const char *qdir, const char *id, const char *suffix)
{
	return xasprintf("%s/%s.%s", qdir, id, suffix);
}

/* ---- entries ---- */

static int local_entry_load(const char *qdir, const char *id, struct queue_entry *e, char **error_r)
{
	char *path = queue_path(qdir, id, "env");
	char *text = NULL, *error = NULL;
	size_t len;
	if (fs_read_file(path, &text, &len, &error) < 0) {
		bool missing = errno == ENOENT;
		free(path);
		if (missing) {
			free(error);
			return 1;
		}
		*error_r = error;
		return -1;
	}
	int rc = queue_entry_parse(e, text, len, &error);
	free(text);
	if (rc < 0) {
		*error_r = xasprintf("%s: %s", path, error);
		free(error);
		free(path);
		return -1;
	}
	free(path);
	if (strcmp(e->id, id) != 0) {
		*error_r = xasprintf("envelope %s names id %s", id, e->id);
		queue_entry_free(e);
		return -1;
	}
	path = queue_path(qdir, id, "hold");
	struct stat st;
	e->held = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
	free(path);
	return 0;
}

static char *entry_name(const char *id, const char *suffix)
{
	return xasprintf("%s.%s", id, suffix);
}

/* 1 when QDIR/ID.SUFFIX exists (as anything), 0 when not. */
static int entry_exists(int qfd, const char *id, const char *suffix)
{
	char *name = entry_name(id, suffix);
	struct stat st;
	int rc = fstatat(qfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 1 : 0;
	free(name);
	return rc;
}

static int entry_save_at(int qfd, const char *qdir, const struct queue_entry *e, bool only_if_exists,
			 char **error_r)
{
	if (only_if_exists && entry_exists(qfd, e->id, "env") == 0)
		return 1;
	struct buf b = BUF_INIT;
	queue_entry_serialize(e, &b);
	char *name = entry_name(e->id, "env");
	int rc = write_durable(qfd, qdir, name, b.data, b.len, error_r);
	free(name);
	buf_free(&b);
	return rc;
}

/* The longest lease holder, with its terminating NUL. */
#define LEASE_MAX 256

static int lease_open(int qfd, const char *qdir, const char *id, char **error_r);
static void lease_read(int fd, char *holder_r, int64_t *until_r);

/* The save of a lease holder: under the lease file's lock, so that a
   takeover (lease_take()) cannot come between the check and the write. */
static int entry_save_leased(int qfd, const char *qdir, const struct queue_entry *e, bool only_if_exists,
			     const char *holder, char **error_r)
{
	if (entry_exists(qfd, e->id, "env") == 0)
		return only_if_exists ? 1 : 2;
	int fd = lease_open(qfd, qdir, e->id, error_r);
	if (fd < 0)
		return -1;
	char cur[LEASE_MAX];
	int64_t until;
	lease_read(fd, cur, &until);
	int rc = strcmp(cur, holder) != 0 ? 2 : entry_save_at(qfd, qdir, e, only_if_exists, error_r);
	close(fd);
	return rc;
}

static int local_entry_save(const char *qdir, const struct queue_entry *e, bool only_if_exists,
			    const char *holder, char **error_r)
{
	int qfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (qfd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", qdir, strerror(errno));
		return -1;
	}
	int rc = holder != NULL ? entry_save_leased(qfd, qdir, e, only_if_exists, holder, error_r)
				: entry_save_at(qfd, qdir, e, only_if_exists, error_r);
	close(qfd);
	return rc;
}

static const char *const entry_suffixes[] = {"env", "msg", "hold", "flush", "lease"};

static void entry_remove_at(int qfd, const char *qdir, const char *id)
{
	for (size_t i = 0; i < N_ELEMENTS(entry_suffixes); i++) {
		char *name = entry_name(id, entry_suffixes[i]);
		if (unlinkat(qfd, name, 0) < 0 && errno != ENOENT)
			log_warn("queue unlink(%s/%s) failed: %s", qdir, name, strerror(errno));
		free(name);
	}
}

static void local_entry_remove(const char *qdir, const char *id)
{
	int qfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (qfd < 0) {
		log_warn("queue open(%s) failed: %s", qdir, strerror(errno));
		return;
	}
	entry_remove_at(qfd, qdir, id);
	close(qfd);
}

/* ---- enqueueing ---- */

static int queue_write_env(int qfd, const char *qdir, const char *id, uint64_t offset,
			   const struct queue_envelope *env, char **error_r)
{
	struct queue_entry e;
	queue_entry_from_envelope(&e, id, offset, env, (int64_t)time(NULL));
	int rc = entry_save_at(qfd, qdir, &e, false, error_r);
	queue_entry_free(&e);
	return rc;
}

/* Opens the spool for an enqueue (made when missing). */
static int queue_prepare(const char *data_dir, char **qdir_r, char **error_r)
{
	int qfd = queue_open(data_dir, true, error_r);
	if (qfd >= 0)
		*qdir_r = queue_dir(data_dir);
	return qfd;
}

static int local_enqueue(const char *data_dir, const char *id, int src_dirfd, const char *src,
			 off_t data_offset, const struct queue_envelope *env, char **error_r)
{
	char *qdir;
	int qfd = queue_prepare(data_dir, &qdir, error_r);
	if (qfd < 0)
		return -1;
	char *msg = entry_name(id, "msg");
	int rc = linkat(src_dirfd, src, qfd, msg, 0);
	if (rc < 0 && errno == EEXIST) {
		/* Left over from an attempt that crashed before its envelope. */
		unlinkat(qfd, msg, 0);
		rc = linkat(src_dirfd, src, qfd, msg, 0);
	}
	if (rc < 0) {
		*error_r = xasprintf("link(%s, %s/%s) failed: %s", src, qdir, msg, strerror(errno));
	} else {
		/* The envelope's durable write fsyncs the directory, which
		   also makes the link above durable: one fsync for both. */
		rc = queue_write_env(qfd, qdir, id, (uint64_t)data_offset, env, error_r);
		if (rc < 0)
			unlinkat(qfd, msg, 0);
	}
	free(msg);
	free(qdir);
	close(qfd);
	return rc;
}

/* ---- walking and control ---- */

/* The id of an envelope file name "ID.env", or NULL. */
static char *env_name_id(const char *name)
{
	size_t n = strlen(name);
	if (n < 5 || strcmp(name + n - 4, ".env") != 0)
		return NULL;
	char *id = xstrndup(name, n - 4);
	if (!queue_id_valid(id)) {
		free(id);
		return NULL;
	}
	return id;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct queue_entry *x = a, *y = b;
	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int walk_dir(const char *qdir, int (*cb)(void *ctx, const struct queue_entry *e), void *ctx,
		    char **error_r)
{
	DIR *dir = opendir(qdir);
	if (dir == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("opendir(%s) failed: %s", qdir, strerror(errno));
		return -1;
	}
	struct queue_entry *entries = NULL;
	size_t n = 0;
	struct dirent *d;
	while ((d = readdir(dir)) != NULL) {
		char *id = env_name_id(d->d_name);
		if (id == NULL)
			continue;
		struct queue_entry e;
		char *error = NULL;
		int rc = local_entry_load(qdir, id, &e, &error);
		if (rc < 0) {
			log_warn("queue load id=%s error=%s", id, error);
			free(error);
		} else if (rc == 0) {
			entries = xreallocarray(entries, n + 1, sizeof(*entries));
			entries[n++] = e;
		}
		free(id);
	}
	closedir(dir);
	if (n > 0)
		qsort(entries, n, sizeof(*entries), entry_cmp);
	for (size_t i = 0; i < n; i++)
		if (cb(ctx, &entries[i]) != 0)
			break;
	for (size_t i = 0; i < n; i++)
		queue_entry_free(&entries[i]);
	free(entries);
	return 0;
}

static int local_walk(const char *data_dir, int (*cb)(void *ctx, const struct queue_entry *e), void *ctx,
		      char **error_r)
{
	char *qdir = queue_dir(data_dir);
	int rc = walk_dir(qdir, cb, ctx, error_r);
	free(qdir);
	return rc;
}

/* Opens the spool for a control command on id: 0 with *qfd_r, 1 when
   there is no such message (or no spool), -1 with *error_r. */
static int queue_control_open(const char *data_dir, const char *id, int *qfd_r, char **error_r)
{
	int qfd = queue_open(data_dir, false, error_r);
	if (qfd < 0) {
		if (errno != ENOENT)
			return -1;
		free(*error_r);
		*error_r = NULL;
		return 1;
	}
	if (entry_exists(qfd, id, "env") == 0) {
		close(qfd);
		return 1;
	}
	*qfd_r = qfd;
	return 0;
}

/* Creates the marker file name: never through an existing entry (O_EXCL |
   O_NOFOLLOW).  An existing regular file is kept when keep_existing (hold:
   already held); anything else there is removed first, so a planted link
   is replaced and the runner sees a new file (flush). */
static int marker_create(int qfd, const char *qdir, const char *name, bool keep_existing, char **error_r)
{
	struct stat st;
	if (fstatat(qfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (keep_existing && S_ISREG(st.st_mode))
			return 0;
		if (unlinkat(qfd, name, 0) < 0 && errno != ENOENT) {
			*error_r = xasprintf("unlink(%s/%s) failed: %s", qdir, name, strerror(errno));
			return -1;
		}
	}
	int fd = fs_create_at(qfd, qdir, name, 0640, queue_owner_uid, queue_owner_gid, error_r);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int local_hold(const char *data_dir, const char *id, bool hold, char **error_r)
{
	int qfd;
	int rc = queue_control_open(data_dir, id, &qfd, error_r);
	if (rc != 0)
		return rc;
	char *qdir = queue_dir(data_dir);
	char *name = entry_name(id, "hold");
	if (hold) {
		rc = marker_create(qfd, qdir, name, true, error_r);
	} else if (unlinkat(qfd, name, 0) < 0 && errno != ENOENT) {
		*error_r = xasprintf("unlink(%s/%s) failed: %s", qdir, name, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && fs_fsync(qfd) < 0) {
		*error_r = xasprintf("fsync(%s) failed: %s", qdir, strerror(errno));
		rc = -1;
	}
	free(name);
	free(qdir);
	close(qfd);
	return rc;
}

static int local_delete(const char *data_dir, const char *id, char **error_r)
{
	int qfd;
	int rc = queue_control_open(data_dir, id, &qfd, error_r);
	if (rc != 0)
		return rc;
	char *qdir = queue_dir(data_dir);
	entry_remove_at(qfd, qdir, id);
	if (fs_fsync(qfd) < 0) {
		*error_r = xasprintf("fsync(%s) failed: %s", qdir, strerror(errno));
		rc = -1;
	}
	free(qdir);
	close(qfd);
	return rc;
}

/* Whether a queue runner seems to run: runner.pid names a live process.
   Only for the message the command prints; no signal is ever sent to that
   pid, which the server's user can write. */
static bool runner_running(int qfd)
{
	char text[32];
	int fd = openat(qfd, QUEUE_RUNNER_PID, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	long v = strtol(text, NULL, 10);
	return v > 1 && (kill((pid_t)v, 0) == 0 || errno == EPERM);
}

bool queue_runner_running(const char *data_dir)
{
	char *error = NULL;
	int qfd = queue_open(data_dir, false, &error);
	free(error);
	if (qfd < 0)
		return false;
	bool running = runner_running(qfd);
	close(qfd);
	return running;
}

/* The runner watches the spool with inotify; a new
   ID.flush asks it to retry that message now, a new QUEUE_FLUSH_ALL every
   message.  Files, not signals: runner.pid can be written by the server's
   user, and root must not signal whatever process it names. */
static int local_flush(const char *data_dir, const char *id, char **error_r)
{
	int qfd;
	int rc;
	if (id != NULL) {
		rc = queue_control_open(data_dir, id, &qfd, error_r);
		if (rc != 0)
			return rc;
	} else if ((qfd = queue_open(data_dir, false, error_r)) < 0) {
		if (errno != ENOENT)
			return -1;
		free(*error_r);
		*error_r = NULL;
		return 1;
	}
	char *qdir = queue_dir(data_dir);
	char *name = id != NULL ? entry_name(id, "flush") : xstrdup(QUEUE_FLUSH_ALL);
	rc = marker_create(qfd, qdir, name, false, error_r);
	if (rc == 0 && !runner_running(qfd))
		rc = 1;
	free(name);
	free(qdir);
	close(qfd);
	return rc;
}

/* ---- leases ---- */

/* A lease file holds "HOLDER UNTIL\n"; it is read and rewritten only under
   flock(), so two claimers on one host never both win. */

/* Opens QDIR/ID.lease locked; -1 with *error_r. */
static int lease_open(int qfd, const char *qdir, const char *id, char **error_r)
{
	char *name = entry_name(id, "lease");
	int fd = openat(qfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0) {
		*error_r = xasprintf("open(%s/%s) failed: %s", qdir, name, strerror(errno));
	} else if (flock(fd, LOCK_EX) < 0) {
		*error_r = xasprintf("flock(%s/%s) failed: %s", qdir, name, strerror(errno));
		close(fd);
		fd = -1;
	}
	free(name);
	return fd;
}

/* Reads the lease: holder into holder_r (LEASE_MAX bytes; empty when free)
   and its end. */
static void lease_read(int fd, char *holder_r, int64_t *until_r)
{
	char text[LEASE_MAX + 32];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	holder_r[0] = '\0';
	*until_r = 0;
	if (n <= 0)
		return;
	text[n] = '\0';
	long long until;
	if (sscanf(text, "%255s %lld", holder_r, &until) != 2)
		holder_r[0] = '\0';
	else
		*until_r = until;
}

static int lease_write(int fd, const char *qdir, const char *id, const char *holder, int64_t until,
		       char **error_r)
{
	char text[LEASE_MAX + 32];
	int n = holder[0] == '\0' ? 0 : snprintf(text, sizeof(text), "%s %lld\n", holder, (long long)until);
	if (ftruncate(fd, 0) < 0 || (n > 0 && pwrite(fd, text, (size_t)n, 0) != n)) {
		*error_r = xasprintf("write(%s/%s.lease) failed: %s", qdir, id, strerror(errno));
		return -1;
	}
	return 0;
}

/* Takes or renews the lease of an existing entry, the lease file locked. */
static int lease_take(int qfd, const char *qdir, const char *id, const char *holder, int64_t now,
		      unsigned seconds, char **error_r)
{
	int fd = lease_open(qfd, qdir, id, error_r);
	if (fd < 0)
		return -1;
	int rc;
	char cur[LEASE_MAX];
	int64_t until;
	lease_read(fd, cur, &until);
	if (!entry_exists(qfd, id, "env")) {
		/* Removed meanwhile: leave no lease file behind. */
		char *name = entry_name(id, "lease");
		unlinkat(qfd, name, 0);
		free(name);
		rc = 2;
	} else if (cur[0] != '\0' && strcmp(cur, holder) != 0 && until > now) {
		rc = 0;
	} else {
		/* Not fsynced: after a crash every runner starts over anyway. */
		rc = lease_write(fd, qdir, id, holder, now + (int64_t)seconds, error_r) < 0 ? -1 : 1;
	}
	close(fd);
	return rc;
}

static int local_entry_lease(const char *qdir, const char *id, const char *holder, int64_t now,
			     unsigned seconds, char **error_r)
{
	int qfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (qfd < 0) {
		if (errno == ENOENT)
			return 2;
		*error_r = xasprintf("open(%s) failed: %s", qdir, strerror(errno));
		return -1;
	}
	int rc = entry_exists(qfd, id, "env") ? lease_take(qfd, qdir, id, holder, now, seconds, error_r) : 2;
	close(qfd);
	return rc;
}

/* ---- claiming ---- */

struct claim_candidate {
	int64_t due;
	char *id;
};

struct claim_walk {
	int64_t now;
	struct claim_candidate *c;
	size_t n;
};

static int claim_collect(void *ctx, const struct queue_entry *e)
{
	struct claim_walk *w = ctx;
	int64_t due = queue_entry_due(e);
	if (e->held || due > w->now)
		return 0;
	w->c = xreallocarray(w->c, w->n + 1, sizeof(*w->c));
	w->c[w->n++] = (struct claim_candidate){due, xstrdup(e->id)};
	return 0;
}

static int candidate_cmp(const void *a, const void *b)
{
	const struct claim_candidate *x = a, *y = b;
	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* The due entries in due order, each leased in turn (lease_take() under
   the lease file's lock decides between claimers). */
static int local_claim(const char *qdir, const char *holder, int64_t now, unsigned seconds, size_t max,
		       char ***ids_r, size_t *count_r, char **error_r)
{
	struct claim_walk w = {.now = now};
	if (walk_dir(qdir, claim_collect, &w, error_r) < 0)
		return -1;
	if (w.n > 0)
		qsort(w.c, w.n, sizeof(*w.c), candidate_cmp);
	int rc = 0;
	for (size_t i = 0; i < w.n; i++) {
		int got = rc == 0 && *count_r < max
			      ? local_entry_lease(qdir, w.c[i].id, holder, now, seconds, error_r)
			      : 0;
		if (got < 0)
			rc = -1;
		if (got == 1) {
			*ids_r = xreallocarray(*ids_r, *count_r + 1, sizeof(char *));
			(*ids_r)[(*count_r)++] = w.c[i].id;
		} else {
			free(w.c[i].id);
		}
	}
	free(w.c);
	if (rc < 0) {
		/* What was leased runs out by itself. */
		for (size_t i = 0; i < *count_r; i++)
			free((*ids_r)[i]);
		free(*ids_r);
		*ids_r = NULL;
		*count_r = 0;
	}
	return rc;
}

static int local_entry_release(const char *qdir, const char *id, const char *holder, char **error_r)
{
	int qfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (qfd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("open(%s) failed: %s", qdir, strerror(errno));
		return -1;
	}
	int rc = 0;
	if (entry_exists(qfd, id, "lease")) {
		int fd = lease_open(qfd, qdir, id, error_r);
		rc = fd < 0 ? -1 : 0;
		if (fd >= 0) {
			char cur[LEASE_MAX];
			int64_t until;
			lease_read(fd, cur, &until);
			if (strcmp(cur, holder) == 0)
				rc = lease_write(fd, qdir, id, "", 0, error_r) < 0 ? -1 : 1;
			close(fd);
		}
	}
	close(qfd);
	return rc;
}

static int local_msg_open(const char *qdir, const char *id, int *fd_r, char **error_r)
{
	char *path = queue_path(qdir, id, "msg");
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc = 1;
	if (fd >= 0)
		*fd_r = fd;
	else if (errno == ENOENT)
		rc = 0;
	else {
		*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
		rc = -1;
	}
	free(path);
	return rc;
}

const struct queue_backend queue_backend_local = {
    .name = "local",
    .enqueue = local_enqueue,
    .walk = local_walk,
    .entry_load = local_entry_load,
    .entry_save = local_entry_save,
    .entry_remove = local_entry_remove,
    .entry_lease = local_entry_lease,
    .claim = local_claim,
    .entry_release = local_entry_release,
    .msg_open = local_msg_open,
    .hold = local_hold,
    .delete = local_delete,
    .flush = local_flush,
};
