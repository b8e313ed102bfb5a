/* The delivery of one message: the temporary file, the filter chain, the
   commit into users' stores and the queue, and its rollback (see delivery.h). */
#include "delivery/delivery.h"
#include "queue/spool.h"
#include "store/store.h"
#include "lib/id.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Appended data is written in batches of this size: few write(2) calls,
   and little memory held per message. */
#define DELIVERY_WRITE_BATCH (64 * 1024)

struct delivery {
	char id[41];
	char *data_dir;  /* or NULL */
	char *dir;       /* the file's directory, for messages */
	int dirfd;       /* AT_FDCWD for an adopted file */
	char *name;      /* the file, relative to dirfd */
	int fd;          /* -1: adopted (delivery_begin_file()) */
	bool owned;      /* the file is ours: its name goes at the end */
	uint64_t size;   /* octets in the file, buffered ones included */
	uint64_t offset; /* where the queue's copy starts */
	struct buf out;  /* appended, not yet written */
	char *error;     /* the first write error */
	struct delivery_filter *filters;
	struct store_delivery *local; /* local recipients */
	const struct queue_envelope *remote;
	bool commit_started;
	bool committed;
};

/* Opens the directory of the temporary file.  DATA_DIR/tmp is opened
   without following a link below DATA_DIR (root writes there for the
   server's user in `sendmail`) and made only when missing. */
static int open_tmp_dir(const struct delivery_settings *set, char **dir_r, char **error_r)
{
	if (set->tmp_dir != NULL) {
		int fd = open(set->tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			*error_r = xasprintf("open(%s) failed: %s", set->tmp_dir, strerror(errno));
		else
			*dir_r = xstrdup(set->tmp_dir);
		return fd;
	}
	uid_t uid = set->set_owner ? set->uid : (uid_t)-1;
	gid_t gid = set->set_owner ? set->gid : (gid_t)-1;
	int fd = fs_open_dir_beneath(set->data_dir, "tmp", false, 0750, uid, gid, error_r);
	if (fd < 0 && errno == ENOENT) {
		free(*error_r);
		*error_r = NULL;
		fd = fs_open_dir_beneath(set->data_dir, "tmp", true, 0750, uid, gid, error_r);
	}
	if (fd >= 0)
		*dir_r = xasprintf("%s/tmp", set->data_dir);
	return fd;
}

struct delivery *delivery_begin(const struct delivery_settings *set, char **error_r)
{
	if (set->data_dir == NULL && set->tmp_dir == NULL)
		log_panic("neither data_dir nor tmp_dir");
	struct delivery *d = xcalloc(1, sizeof(*d));
	if (set->id != NULL)
		snprintf(d->id, sizeof(d->id), "%s", set->id);
	else
		id_new(d->id);
	if (!queue_id_valid(d->id) || (set->id != NULL && strcmp(d->id, set->id) != 0)) {
		*error_r = xasprintf("invalid message id '%s'", set->id);
		free(d);
		return NULL;
	}
	d->fd = -1;
	d->dirfd = open_tmp_dir(set, &d->dir, error_r);
	if (d->dirfd < 0) {
		free(d);
		return NULL;
	}
	d->fd = fs_create_at(d->dirfd, d->dir, d->id, set->mode != 0 ? set->mode : 0640,
			     set->set_owner ? set->uid : (uid_t)-1, set->set_owner ? set->gid : (gid_t)-1,
			     error_r);
	if (d->fd < 0) {
		close(d->dirfd);
		free(d->dir);
		free(d);
		return NULL;
	}
	d->owned = true;
	d->local = store_delivery_new();
	d->name = xstrdup(d->id);
	d->data_dir = set->data_dir != NULL ? xstrdup(set->data_dir) : NULL;
	if (set->return_path != NULL) {
		buf_printf(&d->out, "Return-Path: <%s>\r\n", set->return_path);
		d->offset = d->out.len;
		d->size = d->out.len;
	}
	return d;
}

struct delivery *delivery_begin_file(const char *path, char **error_r)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		*error_r = xasprintf("stat(%s) failed: %s", path, strerror(errno));
		return NULL;
	}
	struct delivery *d = xcalloc(1, sizeof(*d));
	const char *slash = strrchr(path, '/');
	snprintf(d->id, sizeof(d->id), "%s", slash != NULL ? slash + 1 : path);
	d->fd = -1;
	d->local = store_delivery_new();
	d->dirfd = AT_FDCWD;
	d->name = xstrdup(path);
	d->dir = xstrdup(".");
	d->size = (uint64_t)st.st_size;
	return d;
}

const char *delivery_id(const struct delivery *d)
{
	return d->id;
}

int delivery_dirfd(const struct delivery *d)
{
	return d->dirfd;
}

uint64_t delivery_size(const struct delivery *d)
{
	return d->size;
}

const char *delivery_error(const struct delivery *d)
{
	return d->error;
}

/* ---- writing ---- */

static int write_failed(struct delivery *d, const char *what)
{
	if (d->error == NULL)
		d->error = xasprintf("%s(%s/%s) failed: %s", what, d->dir, d->name, strerror(errno));
	return -1;
}

static int flush_out(struct delivery *d)
{
	if (d->out.len == 0 || d->error != NULL)
		return d->error != NULL ? -1 : 0;
	int rc = fs_write_all(d->fd, d->out.data, d->out.len);
	buf_reset(&d->out);
	return rc < 0 ? write_failed(d, "write") : 0;
}

/* The end of the filter chain: into the file. */
static int file_write(struct delivery *d, const void *data, size_t len)
{
	if (d->fd < 0)
		log_panic("%s is an existing file", d->id);
	if (d->error != NULL)
		return -1;
	d->size += len;
	if (d->out.len + len < DELIVERY_WRITE_BATCH) {
		buf_append(&d->out, data, len);
		return 0;
	}
	/* A big piece goes straight to the file, not through the buffer. */
	if (flush_out(d) < 0)
		return -1;
	return fs_write_all(d->fd, data, len) < 0 ? write_failed(d, "write") : 0;
}

int delivery_filter_output(struct delivery_filter *f, const void *data, size_t len, char **error_r)
{
	if (f->next != NULL)
		return f->next->write(f->next, data, len, error_r);
	if (file_write(f->delivery, data, len) < 0) {
		*error_r = xstrdup(f->delivery->error);
		return -1;
	}
	return 0;
}

/* A filter failed: its error is the message's. */
static int filter_failed(struct delivery *d, struct delivery_filter *f, char *error)
{
	if (d->error == NULL)
		d->error = xasprintf("filter %s: %s", f->name, error != NULL ? error : "failed");
	free(error);
	return -1;
}

int delivery_append(struct delivery *d, const void *data, size_t len)
{
	if (d->error != NULL)
		return -1;
	if (d->filters == NULL)
		return file_write(d, data, len);
	char *error = NULL;
	if (d->filters->write(d->filters, data, len, &error) < 0)
		return filter_failed(d, d->filters, error);
	return 0;
}

void delivery_add_filter(struct delivery *d, struct delivery_filter *f)
{
	f->delivery = d;
	f->next = NULL;
	struct delivery_filter **pp = &d->filters;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = f;
}

/* ---- recipients ---- */

void delivery_add_user(struct delivery *d, const struct store_config *conf, const char *address)
{
	store_delivery_add_user(d->local, conf, address);
}

void delivery_set_folder(struct delivery *d, const char *folder)
{
	store_delivery_set_folder(d->local, folder);
}

void delivery_add_maildir(struct delivery *d, const char *maildir)
{
	store_delivery_add_maildir(d->local, maildir);
}

void delivery_set_remote(struct delivery *d, const struct queue_envelope *env)
{
	d->remote = env;
}

/* ---- commit ---- */

/* Whether the file must be on disk before steps 2 and 3: when a store or
   the queue keeps the file itself (a link), or nobody takes it; not when
   each keeps a copy of its own that it commits durably (PostgreSQL), which
   saves a flush of the disk per message. */
static bool data_needs_sync(const struct delivery *d)
{
	bool local = store_delivery_count(d->local) > 0;
	if (!local && d->remote == NULL)
		return true;
	return (local && store_delivery_needs_synced_source(d->local)) ||
	       (d->remote != NULL && queue_enqueue_needs_synced_source());
}

/* Step 1: the end of the filters, the last write, then the data on disk
   (fdatasync: the size is part of what it syncs) unless nobody needs it
   there. */
static int commit_data(struct delivery *d, char **error_r)
{
	if (d->fd < 0)
		return 0; /* adopted: already on stable storage */
	for (struct delivery_filter *f = d->filters; f != NULL && d->error == NULL; f = f->next) {
		char *error = NULL;
		if (f->finish != NULL && f->finish(f, &error) < 0)
			filter_failed(d, f, error);
	}
	if (flush_out(d) < 0 ||
	    (data_needs_sync(d) && fs_fdatasync(d->fd) < 0 && write_failed(d, "fdatasync") < 0)) {
		*error_r = xstrdup(d->error);
		return -1;
	}
	return 0;
}

/* Step 2: into each local recipient's store (the local backend: a hard
   link into each Maildir, then their directories). */
static int commit_local(struct delivery *d, char **error_r)
{
	return store_delivery_commit(d->local, d->dirfd, d->name, d->size, error_r);
}

/* Not acknowledged: the copies already made are taken back. */
static void rollback(struct delivery *d)
{
	char *error = NULL;
	if (store_delivery_revert(d->local, &error) < 0) {
		log_warn("delivery rollback id=%s error=\"%s\"", d->id, error);
		free(error);
	}
}

int delivery_commit(struct delivery *d, char **error_r)
{
	if (d->commit_started)
		log_panic("%s committed twice", d->id);
	d->commit_started = true;
	int rc = commit_data(d, error_r);
	if (rc == 0)
		rc = commit_local(d, error_r);
	/* Step 3: the queue fsyncs what it writes. */
	if (rc == 0 && d->remote != NULL) {
		if (d->data_dir == NULL) {
			*error_r = xstrdup("remote recipients without a data directory");
			rc = -1;
		} else {
			rc = queue_enqueue(d->data_dir, d->id, d->dirfd, d->name, (off_t)d->offset, d->remote,
					   error_r);
		}
	}
	if (rc < 0) {
		rollback(d);
		return -1;
	}
	d->committed = true;
	return 0;
}

struct commit_job {
	struct delivery *d;
	void (*done)(void *ctx, const char *error);
	void *ctx;
	char *error;
};

static void commit_work(void *arg)
{
	struct commit_job *job = arg;
	delivery_commit(job->d, &job->error);
}

static void commit_done(void *arg)
{
	struct commit_job *job = arg;
	job->done(job->ctx, job->error);
	free(job->error);
	free(job);
}

void delivery_commit_async(struct delivery *d, void (*done)(void *ctx, const char *error), void *ctx)
{
	struct commit_job *job = xcalloc(1, sizeof(*job));
	job->d = d;
	job->done = done;
	job->ctx = ctx;
	jobs_submit(commit_work, commit_done, job);
}

/* ---- the end ---- */

void delivery_free(struct delivery **dp)
{
	struct delivery *d = *dp;
	if (d == NULL)
		return;
	*dp = NULL;
	while (d->filters != NULL) {
		struct delivery_filter *f = d->filters;
		d->filters = f->next;
		if (f->free != NULL)
			f->free(f);
	}
	if (d->fd >= 0)
		close(d->fd);
	/* Committed, the message lives on in its links; the temporary name
	   goes either way (no fsync: a name back after a crash is cleaned
	   by the server's start, DATA_DIR/tmp). */
	if (d->owned && unlinkat(d->dirfd, d->name, 0) < 0 && errno != ENOENT)
		log_warn("delivery id=%s error=\"unlink(%s/%s) failed: %s\"", d->id, d->dir, d->name,
			 strerror(errno));
	if (d->dirfd >= 0)
		close(d->dirfd);
	store_delivery_free(&d->local);
	buf_free(&d->out);
	free(d->error);
	free(d->name);
	free(d->dir);
	free(d->data_dir);
	free(d);
}

void delivery_abort(struct delivery **dp)
{
	if (*dp != NULL && (*dp)->committed)
		log_panic("%s is committed", (*dp)->id);
	delivery_free(dp);
}
