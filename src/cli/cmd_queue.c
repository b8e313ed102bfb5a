/* `postoffice queue`: list, show, flush, delete, hold and release spooled
   messages (like Postfix postqueue/postsuper). */
#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "queue/spool.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void queue_usage(FILE *out)
{
	fprintf(out, "usage: postoffice queue list [--json]\n"
		     "       postoffice queue show ID [--json]\n"
		     "       postoffice queue flush [ID]\n"
		     "       postoffice queue delete|hold|release ID\n\n"
		     "The queue holds messages for other domains (and bounces) until each\n"
		     "recipient is delivered, bounced or expired.\n\n"
		     "  list     every queued message with its recipients, their state, the\n"
		     "           number of attempts, the next attempt and the last reply\n"
		     "  show     one message: envelope, recipients and its header\n"
		     "  flush    retry now (every message, or ID)\n"
		     "  delete   remove a message without a bounce\n"
		     "  hold     keep a message from delivery until release\n"
		     "  --json   machine-readable output\n");
}

static void time_str(char *out, size_t size, int64_t t)
{
	if (t <= 0) {
		snprintf(out, size, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static int64_t message_size(const struct config *cfg, const struct queue_entry *e)
{
	char *qdir = queue_dir(cfg->data_dir);
	char *path = queue_path(qdir, e->id, "msg");
	struct stat st;
	int64_t size = stat(path, &st) == 0 ? (int64_t)st.st_size - (int64_t)e->offset : -1;
	free(path);
	free(qdir);
	return size;
}

static void entry_json(struct buf *out, const struct config *cfg, const struct queue_entry *e)
{
	buf_append_str(out, "{\"id\":");
	json_append_cstr(out, e->id);
	buf_printf(out, ",\"created\":%lld,\"size\":%lld,\"held\":%s,\"sender\":", (long long)e->created,
		   (long long)message_size(cfg, e), e->held ? "true" : "false");
	json_append_cstr(out, e->sender);
	buf_append_str(out, ",\"envid\":");
	json_append_cstr(out, e->envid);
	buf_printf(out,
		   ",\"ret\":\"%s\",\"body\":\"%s\",\"smtputf8\":%s,\"auth_user\":", queue_ret_name(e->ret),
		   queue_body_name(e->body), e->smtputf8 ? "true" : "false");
	json_append_cstr(out, e->auth_user);
	buf_append_str(out, ",\"client_ip\":");
	json_append_cstr(out, e->client_ip);
	buf_append_str(out, ",\"recipients\":[");
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct queue_entry_rcpt *r = &e->rcpts[i];
		buf_append_str(out, i > 0 ? ",{\"address\":" : "{\"address\":");
		json_append_cstr(out, r->address);
		buf_printf(out,
			   ",\"state\":\"%s\",\"attempts\":%d,\"next_attempt\":%lld,\"last_attempt\":%lld,"
			   "\"notify\":\"%s\",\"orcpt\":",
			   queue_rcpt_state_name(r->state), r->attempts, (long long)r->next_attempt,
			   (long long)r->last_attempt, queue_notify_string(r->notify));
		json_append_cstr(out, r->orcpt);
		buf_append_str(out, ",\"remote_mta\":");
		json_append_cstr(out, r->remote_mta);
		buf_append_str(out, ",\"last_reply\":");
		json_append_cstr(out, r->last_reply);
		buf_append_char(out, '}');
	}
	buf_append_str(out, "]}");
}

static void entry_text(struct buf *out, const struct config *cfg, const struct queue_entry *e)
{
	char created[32], next[32];
	time_str(created, sizeof(created), e->created);
	buf_printf(out, "%-20s %8lld  %s  <%s>%s\n", e->id, (long long)message_size(cfg, e), created,
		   e->sender, e->held ? "  (held)" : "");
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct queue_entry_rcpt *r = &e->rcpts[i];
		buf_printf(out, "    <%s> %s", r->address, queue_rcpt_state_name(r->state));
		if (r->state == QUEUE_RCPT_PENDING) {
			time_str(next, sizeof(next), r->next_attempt);
			buf_printf(out, ", attempts %d, next %s", r->attempts, next);
		}
		buf_append_char(out, '\n');
		if (r->last_reply != NULL)
			buf_printf(out, "        %s%s%s\n", r->last_reply, r->remote_mta ? " from " : "",
				   r->remote_mta ? r->remote_mta : "");
	}
}

struct list_ctx {
	const struct config *cfg;
	struct buf out;
	bool json;
	size_t count;
	unsigned long long bytes;
	int64_t oldest; /* creation time of the oldest message, 0: none */
};

/* "3d 4h", "2h 5m", "45s": how long ago t was. */
static void age_str(char *out, size_t size, int64_t t)
{
	long long s = (long long)(time(NULL) - t);
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(out, size, "%lldd %lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, size, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, size, "%lldm %llds", s / 60, s % 60);
	else
		snprintf(out, size, "%llds", s);
}

/* 1536 -> "1.5 KiB". */
static void size_str(char *out, size_t size, unsigned long long bytes)
{
	static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < N_ELEMENTS(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, size, "%llu bytes", bytes);
	else
		snprintf(out, size, "%.1f %s", v, units[u]);
}

static int list_cb(void *ctx, const struct queue_entry *e)
{
	struct list_ctx *l = ctx;
	if (l->json) {
		if (l->count > 0)
			buf_append_char(&l->out, ',');
		entry_json(&l->out, l->cfg, e);
	} else {
		entry_text(&l->out, l->cfg, e);
	}
	l->count++;
	l->bytes += (unsigned long long)message_size(l->cfg, e);
	if (l->oldest == 0 || e->created < l->oldest)
		l->oldest = e->created;
	return 0;
}

static int queue_list_cmd(const struct config *cfg, bool json)
{
	struct list_ctx l = {.cfg = cfg, .json = json};
	char *error = NULL;
	if (json)
		buf_append_char(&l.out, '[');
	if (queue_walk(cfg->data_dir, list_cb, &l, &error) < 0) {
		fprintf(stderr, "postoffice queue: %s\n", error);
		free(error);
		buf_free(&l.out);
		return 1;
	}
	if (json)
		buf_append_str(&l.out, "]\n");
	else if (l.count == 0)
		buf_append_str(&l.out, "The queue is empty.\n");
	else {
		char total[32], age[32];
		size_str(total, sizeof(total), l.bytes);
		age_str(age, sizeof(age), l.oldest);
		buf_printf(&l.out, "-- %zu message%s, %s, the oldest %s old\n", l.count,
			   l.count == 1 ? "" : "s", total, age);
	}
	fwrite(l.out.data, 1, l.out.len, stdout);
	buf_free(&l.out);
	return 0;
}

static int queue_show_cmd(const struct config *cfg, const char *id, bool json)
{
	if (!queue_id_valid(id)) {
		fprintf(stderr, "postoffice queue: invalid queue id '%s'\n", id);
		return 2;
	}
	char *qdir = queue_dir(cfg->data_dir);
	struct queue_entry e;
	char *error = NULL;
	int rc = queue_entry_load(qdir, id, &e, &error);
	if (rc != 0) {
		fprintf(stderr, "postoffice queue: %s\n", rc > 0 ? "no such message" : error);
		free(error);
		free(qdir);
		return 1;
	}
	struct buf out = BUF_INIT;
	/* The header of the message, for both forms. */
	char *path = queue_path(qdir, id, "msg");
	char *data = NULL;
	size_t len = 0;
	struct buf header = BUF_INIT;
	if (fs_read_file(path, &data, &len, &error) == 0 && e.offset <= len) {
		const char *start = data + e.offset;
		const char *end = strstr(start, "\r\n\r\n");
		buf_append(&header, start, end != NULL ? (size_t)(end - start) + 2 : len - e.offset);
	}
	free(error);
	free(data);
	free(path);
	if (json) {
		entry_json(&out, cfg, &e);
		buf_truncate(&out, out.len - 1);
		buf_append_str(&out, ",\"header\":");
		json_append_cstr(&out, buf_cstr(&header));
		buf_append_str(&out, "}\n");
	} else {
		entry_text(&out, cfg, &e);
		buf_printf(&out, "envid: %s  ret: %s  body: %s  smtputf8: %s\n", e.envid ? e.envid : "-",
			   queue_ret_name(e.ret), queue_body_name(e.body), e.smtputf8 ? "yes" : "no");
		buf_printf(&out, "client: %s  helo: %s  auth: %s\n\n", e.client_ip ? e.client_ip : "-",
			   e.helo ? e.helo : "-", e.auth_user ? e.auth_user : "-");
		buf_append(&out, header.data, header.len);
	}
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
	buf_free(&header);
	queue_entry_free(&e);
	free(qdir);
	return 0;
}

static int queue_control(const struct config *cfg, const char *verb, const char *id)
{
	char *error = NULL;
	int rc;
	/* Run as root: markers belong to the server user, like the spool. */
	struct passwd *pw = geteuid() == 0 ? getpwnam(cfg->user) : NULL;
	if (pw != NULL)
		queue_set_owner(pw->pw_uid, pw->pw_gid);
	if (!strcmp(verb, "flush"))
		rc = queue_flush(cfg->data_dir, id, &error);
	else if (!strcmp(verb, "delete"))
		rc = queue_delete(cfg->data_dir, id, &error);
	else
		rc = queue_hold(cfg->data_dir, id, !strcmp(verb, "hold"), &error);
	if (rc < 0) {
		fprintf(stderr, "postoffice queue: %s\n", error);
		free(error);
		return 1;
	}
	if (rc > 0 && !strcmp(verb, "flush")) {
		printf("The queue runner is not running; the messages wait for its start.\n");
		return 0;
	}
	if (rc > 0) {
		fprintf(stderr, "postoffice queue: no such message: %s\n", id);
		return 1;
	}
	if (!strcmp(verb, "flush"))
		printf("%s\n", id != NULL ? "Flushed." : "Flush requested.");
	else
		printf("%s: %s\n", id,
		       !strcmp(verb, "delete") ? "deleted"
		       : !strcmp(verb, "hold") ? "held"
					       : "released");
	return 0;
}

static int queue_run(struct config *cfg, int argc, char **argv)
{
	bool json = false;
	const char *args[3] = {NULL, NULL, NULL};
	int nargs = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-' || nargs == 3) {
			queue_usage(stderr);
			return 2;
		} else
			args[nargs++] = argv[i];
	}
	const char *verb = args[0];
	if (verb == NULL) {
		queue_usage(stderr);
		return 2;
	}
	if (!strcmp(verb, "list") && nargs == 1)
		return queue_list_cmd(cfg, json);
	if (!strcmp(verb, "show") && nargs == 2)
		return queue_show_cmd(cfg, args[1], json);
	if (!strcmp(verb, "flush") && nargs <= 2)
		return queue_control(cfg, verb, args[1]);
	if ((!strcmp(verb, "delete") || !strcmp(verb, "hold") || !strcmp(verb, "release")) && nargs == 2)
		return queue_control(cfg, verb, args[1]);
	queue_usage(stderr);
	return 2;
}

const struct cli_command cmd_queue = {
    .name = "queue",
    .synopsis = "list|show ID|flush [ID]|delete ID|hold ID|release ID [--json]",
    .summary = "inspect and control the outgoing mail queue",
    .run = queue_run,
    .usage = queue_usage,
};
