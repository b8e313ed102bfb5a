/* The spool interface: the registry of queue backends and the dispatchers
   of spool.h and queue.h (queue_backend.h), plus what every backend shares:
   queue ids, names, and the envelope entry with its text form. */
#include "queue/queue_backend.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_ENV_MAGIC "postoffice-queue 1"

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

/* ---- names ---- */

static const char *const state_names[] = {"pending", "delivered", "bounced"};
static const char *const ret_names[] = {"default", "full", "hdrs"};
static const char *const body_names[] = {"7bit", "8bitmime", "binarymime"};

const char *queue_rcpt_state_name(enum queue_rcpt_state state)
{
	return state_names[state];
}

const char *queue_ret_name(enum smtp_ret ret)
{
	return ret_names[ret];
}

const char *queue_body_name(enum smtp_body body)
{
	return body_names[body];
}

const char *queue_notify_string(unsigned notify)
{
	static char out[40];
	out[0] = '\0';
	if (notify & SMTP_NOTIFY_NEVER)
		return "NEVER";
	if (notify & SMTP_NOTIFY_SUCCESS)
		strcat(out, "SUCCESS,");
	if (notify & SMTP_NOTIFY_FAILURE)
		strcat(out, "FAILURE,");
	if (notify & SMTP_NOTIFY_DELAY)
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

struct queue_entry_rcpt *queue_entry_add_rcpt(struct queue_entry *e, const char *address, const char *orcpt,
					      unsigned notify)
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

int64_t queue_entry_due(const struct queue_entry *e)
{
	int64_t due = INT64_MAX;
	for (size_t i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].state == QUEUE_RCPT_PENDING && e->rcpts[i].next_attempt < due)
			due = e->rcpts[i].next_attempt;
	return due;
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
	char *strs[4] = {NULL, NULL, NULL, NULL};
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
		e->ret = (enum smtp_ret)idx;
		return 0;
	} else if (!strcmp(key, "body")) {
		if ((idx = name_index(body_names, N_ELEMENTS(body_names), f[1])) < 0)
			return -1;
		e->body = (enum smtp_body)idx;
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

/* ---- backends ---- */

static const struct queue_backend *const queue_backends[] = {
    &queue_backend_local,
    &queue_backend_pg,
};

static const struct queue_backend *queue_backend = &queue_backend_local;

const struct queue_backend *queue_backend_find(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(queue_backends); i++)
		if (strcmp(queue_backends[i]->name, name) == 0)
			return queue_backends[i];
	return NULL;
}

int queue_backend_open(const char *name, const char *location, char **error_r)
{
	const struct queue_backend *be = queue_backend_find(name);
	if (be == NULL) {
		*error_r = xasprintf("unknown queue backend '%s'", name);
		return -1;
	}
	if (be->open != NULL && be->open(location, error_r) < 0)
		return -1;
	queue_backend = be;
	return 0;
}

int queue_backend_select(const char *name, char **error_r)
{
	return queue_backend_open(name, NULL, error_r);
}

int queue_backend_open_config(const struct config *cfg, char **error_r)
{
	if (cfg->storage_backend == STORAGE_POSTGRESQL)
		return queue_backend_open(queue_backend_pg.name, cfg->pg_conninfo, error_r);
	return queue_backend_open(queue_backend_local.name, NULL, error_r);
}

bool queue_backend_shared(void)
{
	return queue_backend != &queue_backend_local;
}

const char *queue_backend_name(void)
{
	return queue_backend->name;
}

/* ---- dispatchers ---- */

static int check_id(const char *id, char **error_r)
{
	if (queue_id_valid(id))
		return 0;
	*error_r = xasprintf("invalid queue id '%s'", id);
	return -1;
}

/* A lease holder names a node or runner: printable, no spaces. */
static bool holder_valid(const char *holder)
{
	size_t n = 0;
	for (; holder[n] != '\0'; n++)
		if (holder[n] <= 0x20 || holder[n] >= 0x7f)
			return false;
	return n > 0 && n <= 200;
}

static int check_enqueue(const char *id, const struct queue_envelope *env, char **error_r)
{
	if (check_id(id, error_r) < 0)
		return -1;
	if (env->nrcpts == 0) {
		*error_r = xstrdup("no recipients");
		return -1;
	}
	return 0;
}

int queue_enqueue(const char *data_dir, const char *id, int src_dirfd, const char *src, off_t data_offset,
		  const struct queue_envelope *env, char **error_r)
{
	if (check_enqueue(id, env, error_r) < 0)
		return -1;
	return queue_backend->enqueue(data_dir, id, src_dirfd, src, data_offset, env, error_r);
}

bool queue_enqueue_needs_synced_source(void)
{
	return !queue_backend->enqueue_copies;
}

int queue_entry_import(const char *data_dir, const struct queue_entry *e, int src_dirfd, const char *src,
		       char **error_r)
{
	if (queue_backend->entry_import == NULL) {
		*error_r = xasprintf("the %s queue backend cannot import entries", queue_backend->name);
		return -1;
	}
	if (check_id(e->id, error_r) < 0)
		return -1;
	if (e->nrcpts == 0) {
		*error_r = xstrdup("no recipients");
		return -1;
	}
	return queue_backend->entry_import(data_dir, e, src_dirfd, src, error_r);
}

int queue_walk(const char *data_dir, int (*cb)(void *ctx, const struct queue_entry *e), void *ctx,
	       char **error_r)
{
	return queue_backend->walk(data_dir, cb, ctx, error_r);
}

int queue_entry_load(const char *qdir, const char *id, struct queue_entry *e, char **error_r)
{
	if (check_id(id, error_r) < 0)
		return -1;
	return queue_backend->entry_load(qdir, id, e, error_r);
}

int queue_entry_save(const char *qdir, const struct queue_entry *e, bool only_if_exists, const char *holder,
		     char **error_r)
{
	if (check_id(e->id, error_r) < 0)
		return -1;
	if (holder != NULL && !holder_valid(holder))
		return 2;
	return queue_backend->entry_save(qdir, e, only_if_exists, holder, error_r);
}

void queue_entry_remove(const char *qdir, const char *id)
{
	if (!queue_id_valid(id)) {
		log_warn("queue remove: invalid queue id '%s'", id);
		return;
	}
	queue_backend->entry_remove(qdir, id);
}

int queue_entry_lease(const char *qdir, const char *id, const char *holder, int64_t now, unsigned seconds,
		      char **error_r)
{
	if (check_id(id, error_r) < 0)
		return -1;
	if (!holder_valid(holder)) {
		*error_r = xasprintf("invalid lease holder '%s'", holder);
		return -1;
	}
	return queue_backend->entry_lease(qdir, id, holder, now, seconds, error_r);
}

int queue_claim(const char *qdir, const char *holder, int64_t now, unsigned seconds, size_t max,
		char ***ids_r, size_t *count_r, char **error_r)
{
	*ids_r = NULL;
	*count_r = 0;
	if (!holder_valid(holder)) {
		*error_r = xasprintf("invalid lease holder '%s'", holder);
		return -1;
	}
	if (max == 0)
		return 0;
	return queue_backend->claim(qdir, holder, now, seconds, max, ids_r, count_r, error_r);
}

int queue_entry_release(const char *qdir, const char *id, const char *holder, char **error_r)
{
	if (check_id(id, error_r) < 0)
		return -1;
	if (!holder_valid(holder))
		return 0;
	return queue_backend->entry_release(qdir, id, holder, error_r);
}

int queue_msg_open(const char *qdir, const char *id, int *fd_r, char **error_r)
{
	if (check_id(id, error_r) < 0)
		return -1;
	return queue_backend->msg_open(qdir, id, fd_r, error_r);
}

int queue_hold(const char *data_dir, const char *id, bool hold, char **error_r)
{
	if (check_id(id, error_r) < 0)
		return -1;
	return queue_backend->hold(data_dir, id, hold, error_r);
}

int queue_delete(const char *data_dir, const char *id, char **error_r)
{
	if (check_id(id, error_r) < 0)
		return -1;
	return queue_backend->delete (data_dir, id, error_r);
}

int queue_flush(const char *data_dir, const char *id, char **error_r)
{
	if (id != NULL && check_id(id, error_r) < 0)
		return -1;
	return queue_backend->flush(data_dir, id, error_r);
}
