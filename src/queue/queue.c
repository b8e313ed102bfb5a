/* The spool: envelope files, enqueueing and control (see spool.h). */
#include "queue/spool.h"
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_ENV_MAGIC "postoffice-queue 1"

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

bool queue_id_valid(const char *id)
{
	size_t n = 0;
	for (; id[n] != '\0'; n++) {
		char c = id[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return n > 0 && n <= 40;
}

void queue_new_id(char out[32])
{
	static unsigned counter;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned r = (unsigned)random() ^ (unsigned)getpid() << 8;
	snprintf(out, 32, "Q%llx%05lx%x%04x", (unsigned long long)ts.tv_sec, (long)(ts.tv_nsec / 10000),
		 (unsigned)(counter++ & 0xfff), r & 0xffff);
}

/* ---- names ---- */

static const char *const state_names[] = { "pending", "delivered", "bounced" };
static const char *const ret_names[] = { "default", "full", "hdrs" };
static const char *const body_names[] = { "7bit", "8bitmime", "binarymime" };

const char *queue_rcpt_state_name(enum queue_rcpt_state state)
{
	return state_names[state];
}

const char *queue_ret_name(enum queue_ret ret)
{
	return ret_names[ret];
}

const char *queue_body_name(enum queue_body body)
{
	return body_names[body];
}

const char *queue_notify_string(unsigned notify)
{
	static char out[40];
	out[0] = '\0';
	if (notify & QUEUE_NOTIFY_NEVER)
		return "NEVER";
	if (notify & QUEUE_NOTIFY_SUCCESS)
		strcat(out, "SUCCESS,");
	if (notify & QUEUE_NOTIFY_FAILURE)
		strcat(out, "FAILURE,");
	if (notify & QUEUE_NOTIFY_DELAY)
		strcat(out, "DELAY,");
	if (out[0] != '\0')
		out[strlen(out) - 1] = '\0';
	return out;
}

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -1;
}

/* ---- entries ---- */

static char *xstrdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct queue_entry_rcpt *queue_entry_add_rcpt(struct queue_entry *e, const char *address,
					       const char *orcpt, unsigned notify)
{
	e->rcpts = xreallocarray(e->rcpts, e->nrcpts + 1, sizeof(*e->rcpts));
	struct queue_entry_rcpt *r = &e->rcpts[e->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	r->orcpt = xstrdup_or_null(orcpt);
	r->notify = notify;
	r->next_attempt = e->created;
	return r;
}

void queue_entry_from_envelope(struct queue_entry *e, const char *id, uint64_t offset,
			       const struct queue_envelope *env, int64_t now)
{
	memset(e, 0, sizeof(*e));
	e->id = xstrdup(id);
	e->created = now;
	e->offset = offset;
	e->sender = xstrdup(env->sender != NULL ? env->sender : "");
	e->envid = xstrdup_or_null(env->envid);
	e->ret = env->ret;
	e->body = env->body;
	e->smtputf8 = env->smtputf8;
	e->auth_user = xstrdup_or_null(env->auth_user);
	e->client_ip = xstrdup_or_null(env->client_ip);
	e->helo = xstrdup_or_null(env->helo);
	for (size_t i = 0; i < env->nrcpts; i++)
		queue_entry_add_rcpt(e, env->rcpts[i].address, env->rcpts[i].orcpt, env->rcpts[i].notify);
}

void queue_entry_free(struct queue_entry *e)
{
	free(e->id);
	free(e->sender);
	free(e->envid);
	free(e->auth_user);
	free(e->client_ip);
	free(e->helo);
	for (size_t i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].address);
		free(e->rcpts[i].orcpt);
		free(e->rcpts[i].remote_mta);
		free(e->rcpts[i].last_reply);
	}
	free(e->rcpts);
	memset(e, 0, sizeof(*e));
}

/* Strings are written as "=" + text with bytes <= 0x20, '%' and 0x7f as
   %XX, NULL as "-": one field never contains a space or a line end. */
static void put_str(struct buf *out, const char *s)
{
	buf_append_char(out, ' ');
	if (s == NULL) {
		buf_append_char(out, '-');
		return;
	}
	buf_append_char(out, '=');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == '%' || *p == 0x7f)
			buf_printf(out, "%%%02X", *p);
		else
			buf_append_char(out, (char)*p);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes one put_str() field; -1 when malformed. */
static int get_str(const char *field, char **value_r)
{
	if (!strcmp(field, "-")) {
		*value_r = NULL;
		return 0;
	}
	if (field[0] != '=')
		return -1;
	struct buf b = BUF_INIT;
	buf_reserve(&b, strlen(field));
	for (const char *p = field + 1; *p != '\0'; p++) {
		if (*p == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				buf_free(&b);
				return -1;
			}
			buf_append_char(&b, (char)(hi * 16 + lo));
			p += 2;
		} else {
			buf_append_char(&b, *p);
		}
	}
	/* (buf_reserve() alone leaves the data unterminated) */
	*value_r = b.len > 0 ? buf_steal(&b) : xstrdup("");
	buf_free(&b);
	return 0;
}

void queue_entry_serialize(const struct queue_entry *e, struct buf *out)
{
	buf_printf(out, QUEUE_ENV_MAGIC "\nid %s\ncreated %lld\noffset %llu\nsender", e->id,
		   (long long)e->created, (unsigned long long)e->offset);
	put_str(out, e->sender);
	buf_append_str(out, "\nenvid");
	put_str(out, e->envid);
	buf_printf(out, "\nret %s\nbody %s\nsmtputf8 %d\nauth_user", ret_names[e->ret], body_names[e->body],
		   e->smtputf8 ? 1 : 0);
	put_str(out, e->auth_user);
	buf_append_str(out, "\nclient_ip");
	put_str(out, e->client_ip);
	buf_append_str(out, "\nhelo");
	put_str(out, e->helo);
	buf_append_char(out, '\n');
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct queue_entry_rcpt *r = &e->rcpts[i];
		buf_printf(out, "rcpt %s %d %lld %lld %u %d", state_names[r->state], r->attempts,
			   (long long)r->next_attempt, (long long)r->last_attempt, r->notify,
			   r->delay_notified ? 1 : 0);
		put_str(out, r->address);
		put_str(out, r->orcpt);
		put_str(out, r->remote_mta);
		put_str(out, r->last_reply);
		buf_append_char(out, '\n');
	}
	buf_append_str(out, "end\n");
}

#define MAX_FIELDS 12

static int split_fields(char *line, char **fields, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(line, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		if (n == max)
			return -1;
		fields[n++] = tok;
	}
	return n;
}

static int parse_int64(const char *s, int64_t *v_r)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*v_r = v;
	return 0;
}

static int parse_rcpt(struct queue_entry *e, char **f, int n)
{
	int64_t attempts, next, last, notify, delayed;
	int state = n == 11 ? name_index(state_names, N_ELEMENTS(state_names), f[1]) : -1;
	if (state < 0 || parse_int64(f[2], &attempts) < 0 || parse_int64(f[3], &next) < 0 ||
	    parse_int64(f[4], &last) < 0 || parse_int64(f[5], &notify) < 0 ||
	    parse_int64(f[6], &delayed) < 0 || attempts < 0 || notify < 0 || notify > 15)
		return -1;
	char *strs[4] = { NULL, NULL, NULL, NULL };
	for (int i = 0; i < 4; i++) {
		if (get_str(f[7 + i], &strs[i]) < 0) {
			for (int j = 0; j < i; j++)
				free(strs[j]);
			return -1;
		}
	}
	if (strs[0] == NULL) {
		for (int i = 0; i < 4; i++)
			free(strs[i]);
		return -1;
	}
	e->rcpts = xreallocarray(e->rcpts, e->nrcpts + 1, sizeof(*e->rcpts));
	struct queue_entry_rcpt *r = &e->rcpts[e->nrcpts++];
	r->address = strs[0];
	r->orcpt = strs[1];
	r->remote_mta = strs[2];
	r->last_reply = strs[3];
	r->state = (enum queue_rcpt_state)state;
	r->attempts = attempts > 1000000 ? 1000000 : (int)attempts;
	r->next_attempt = next;
	r->last_attempt = last;
	r->notify = (unsigned)notify;
	r->delay_notified = delayed != 0;
	return 0;
}

static int parse_line(struct queue_entry *e, char *line)
{
	char *f[MAX_FIELDS];
	int n = split_fields(line, f, MAX_FIELDS);
	if (n < 1)
		return -1;
	const char *key = f[0];
	if (!strcmp(key, "rcpt"))
		return parse_rcpt(e, f, n);
	if (n != 2)
		return -1;
	int64_t v;
	int idx;
	char **strp = NULL;
	if (!strcmp(key, "id")) {
		if (!queue_id_valid(f[1]) || e->id != NULL)
			return -1;
		e->id = xstrdup(f[1]);
		return 0;
	} else if (!strcmp(key, "created")) {
		if (parse_int64(f[1], &v) < 0)
			return -1;
		e->created = v;
		return 0;
	} else if (!strcmp(key, "offset")) {
		if (parse_int64(f[1], &v) < 0 || v < 0)
			return -1;
		e->offset = (uint64_t)v;
		return 0;
	} else if (!strcmp(key, "ret")) {
		if ((idx = name_index(ret_names, N_ELEMENTS(ret_names), f[1])) < 0)
			return -1;
		e->ret = (enum queue_ret)idx;
		return 0;
	} else if (!strcmp(key, "body")) {
		if ((idx = name_index(body_names, N_ELEMENTS(body_names), f[1])) < 0)
			return -1;
		e->body = (enum queue_body)idx;
		return 0;
	} else if (!strcmp(key, "smtputf8")) {
		if (parse_int64(f[1], &v) < 0)
			return -1;
		e->smtputf8 = v != 0;
		return 0;
	} else if (!strcmp(key, "sender")) {
		strp = &e->sender;
	} else if (!strcmp(key, "envid")) {
		strp = &e->envid;
	} else if (!strcmp(key, "auth_user")) {
		strp = &e->auth_user;
	} else if (!strcmp(key, "client_ip")) {
		strp = &e->client_ip;
	} else if (!strcmp(key, "helo")) {
		strp = &e->helo;
	} else {
		return 0; /* unknown keys from a newer version are ignored */
	}
	free(*strp);
	*strp = NULL;
	return get_str(f[1], strp);
}

int queue_entry_parse(struct queue_entry *e, const char *text, size_t len, char **error_r)
{
	memset(e, 0, sizeof(*e));
	char *copy = xstrndup(text, len);
	char *save = NULL;
	int lineno = 0;
	bool ended = false;
	for (char *line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (lineno == 1) {
			if (strcmp(line, QUEUE_ENV_MAGIC) != 0)
				goto bad;
			continue;
		}
		if (!strcmp(line, "end")) {
			ended = true;
			break;
		}
		if (parse_line(e, line) < 0)
			goto bad;
	}
	free(copy);
	if (!ended || e->id == NULL || e->sender == NULL) {
		*error_r = xstrdup(!ended ? "envelope is truncated" : "envelope lacks id or sender");
		queue_entry_free(e);
		return -1;
	}
	return 0;
bad:
	free(copy);
	*error_r = xasprintf("envelope line %d is malformed", lineno);
	queue_entry_free(e);
	return -1;
}

int queue_entry_load(const char *qdir, const char *id, struct queue_entry *e, char **error_r)
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

int queue_entry_save(const char *qdir, const struct queue_entry *e, bool only_if_exists, char **error_r)
{
	int qfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (qfd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", qdir, strerror(errno));
		return -1;
	}
	int rc = entry_save_at(qfd, qdir, e, only_if_exists, error_r);
	close(qfd);
	return rc;
}

static const char *const entry_suffixes[] = { "env", "msg", "hold", "flush" };

static void entry_remove_at(int qfd, const char *qdir, const char *id)
{
	for (size_t i = 0; i < N_ELEMENTS(entry_suffixes); i++) {
		char *name = entry_name(id, entry_suffixes[i]);
		if (unlinkat(qfd, name, 0) < 0 && errno != ENOENT)
			log_warn("queue unlink(%s/%s) failed: %s", qdir, name, strerror(errno));
		free(name);
	}
}

void queue_entry_remove(const char *qdir, const char *id)
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

/* Checks the request and opens the spool (made when missing). */
static int queue_prepare(const char *data_dir, const char *id, const struct queue_envelope *env,
			 char **qdir_r, char **error_r)
{
	if (!queue_id_valid(id)) {
		*error_r = xasprintf("invalid queue id '%s'", id);
		return -1;
	}
	if (env->nrcpts == 0) {
		*error_r = xstrdup("no recipients");
		return -1;
	}
	int qfd = queue_open(data_dir, true, error_r);
	if (qfd >= 0)
		*qdir_r = queue_dir(data_dir);
	return qfd;
}

int queue_enqueue(const char *data_dir, const char *id, int src_dirfd, const char *src, off_t data_offset,
		  const struct queue_envelope *env, char **error_r)
{
	char *qdir;
	int qfd = queue_prepare(data_dir, id, env, &qdir, error_r);
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

int queue_walk(const char *data_dir, int (*cb)(void *ctx, const struct queue_entry *e), void *ctx,
	       char **error_r)
{
	char *qdir = queue_dir(data_dir);
	DIR *dir = opendir(qdir);
	if (dir == NULL) {
		if (errno == ENOENT) {
			free(qdir);
			return 0;
		}
		*error_r = xasprintf("opendir(%s) failed: %s", qdir, strerror(errno));
		free(qdir);
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
		int rc = queue_entry_load(qdir, id, &e, &error);
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
	free(qdir);
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

/* Opens the spool for a control command on id: 0 with *qfd_r, 1 when
   there is no such message (or no spool), -1 with *error_r. */
static int queue_control_open(const char *data_dir, const char *id, int *qfd_r, char **error_r)
{
	if (!queue_id_valid(id)) {
		*error_r = xasprintf("invalid queue id '%s'", id);
		return -1;
	}
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

int queue_hold(const char *data_dir, const char *id, bool hold, char **error_r)
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
	if (rc == 0)
		rc = fs_fsync_dirfd(qfd, qdir, error_r);
	free(name);
	free(qdir);
	close(qfd);
	return rc;
}

int queue_delete(const char *data_dir, const char *id, char **error_r)
{
	int qfd;
	int rc = queue_control_open(data_dir, id, &qfd, error_r);
	if (rc != 0)
		return rc;
	char *qdir = queue_dir(data_dir);
	entry_remove_at(qfd, qdir, id);
	rc = fs_fsync_dirfd(qfd, qdir, error_r);
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

/* The runner watches the spool with inotify; a new
   ID.flush asks it to retry that message now, a new QUEUE_FLUSH_ALL every
   message.  Files, not signals: runner.pid can be written by the server's
   user, and root must not signal whatever process it names. */
int queue_flush(const char *data_dir, const char *id, char **error_r)
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
