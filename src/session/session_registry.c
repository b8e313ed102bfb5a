/* The live sessions of all nodes in PostgreSQL (session_registry.h): the
   table live_sessions and the function live_session_add() of
   lib/pg_schema.c, one statement per call. */
#include "session/session_registry.h"
#include "lib/config.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/pg.h"
#include "lib/pg_shared.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <event2/event.h>
#include <sys/random.h>

/* The first schema version with the table. */
#define SESSION_REGISTRY_SCHEMA_VERSION 2

struct session_registry {
	struct pg_shared *conn;
	char node[256]; /* the host's name, for people reading the table */
	char pid[16];
	char instance[33]; /* random: this process, this run */
	char ttl_ms[24];
	struct event *renew_timer;
	bool renewing; /* a renewal job is out */
};

/* A statement whose result does not matter: 0 or -1 with *error_r. */
static int run_command(struct session_registry *reg, const char *sql, int n, const char *const *values,
		       char **error_r)
{
	PGresult *res = pg_shared_query(reg->conn, sql, n, values, error_r);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

static int instance_make(char out[33], char **error_r)
{
	uint8_t bytes[16];
	if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes)) {
		*error_r = xstrdup("getrandom() failed");
		return -1;
	}
	for (size_t i = 0; i < sizeof(bytes); i++)
		snprintf(out + 2 * i, 3, "%02x", bytes[i]);
	return 0;
}

struct session_registry *session_registry_open(const char *conninfo, int64_t ttl_ms, char **error_r)
{
	struct pg_shared *conn =
	    pg_shared_open(conninfo, SESSION_REGISTRY_SCHEMA_VERSION, "the table of live sessions", error_r);
	if (conn == NULL)
		return NULL;
	struct session_registry *reg = xcalloc(1, sizeof(*reg));
	reg->conn = conn;
	if (gethostname(reg->node, sizeof(reg->node) - 1) < 0)
		snprintf(reg->node, sizeof(reg->node), "-");
	snprintf(reg->pid, sizeof(reg->pid), "%ld", (long)getpid());
	snprintf(reg->ttl_ms, sizeof(reg->ttl_ms), "%lld", (long long)ttl_ms);
	if (instance_make(reg->instance, error_r) < 0 ||
	    run_command(reg, "DELETE FROM live_sessions WHERE expires < clock_timestamp()", 0, NULL,
			error_r) < 0) {
		session_registry_close(&reg);
		return NULL;
	}
	return reg;
}

struct session_registry *session_registry_open_config(const struct config *cfg, char **error_r)
{
	if (cfg->storage_backend != STORAGE_POSTGRESQL)
		return NULL;
	return session_registry_open(cfg->pg_conninfo, (int64_t)cfg->pg_session_ttl * 1000, error_r);
}

void session_registry_close(struct session_registry **regp)
{
	struct session_registry *reg = *regp;
	if (reg == NULL)
		return;
	*regp = NULL;
	if (reg->renew_timer != NULL)
		event_free(reg->renew_timer);
	char *error = NULL;
	const char *values[] = {reg->instance};
	if (run_command(reg, "DELETE FROM live_sessions WHERE instance = $1", 1, values, &error) < 0) {
		log_warn("session-registry close error=\"%s\"", error);
		free(error);
	}
	pg_shared_close(&reg->conn);
	free(reg);
}

/* ---- renewals ---- */

static void renew_work(void *arg)
{
	struct session_registry *reg = arg;
	char *error = NULL;
	if (session_registry_renew(reg, &error) < 0) {
		log_warn("session-registry renew failed error=\"%s\"", error);
		free(error);
	}
}

static void renew_done(void *arg)
{
	struct session_registry *reg = arg;
	reg->renewing = false;
}

static void renew_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session_registry *reg = arg;
	if (reg->renewing)
		return;
	reg->renewing = true;
	jobs_submit(renew_work, renew_done, reg);
}

void session_registry_start(struct session_registry *reg, struct event_base *base)
{
	if (reg == NULL)
		return;
	long long every = strtoll(reg->ttl_ms, NULL, 10) / 3;
	struct timeval tv = {every / 1000, (every % 1000) * 1000};
	reg->renew_timer = event_new(base, -1, EV_PERSIST, renew_cb, reg);
	event_add(reg->renew_timer, &tv);
}

int session_registry_renew(struct session_registry *reg, char **error_r)
{
	const char *values[] = {reg->instance, reg->ttl_ms};
	PGresult *res = pg_shared_query(reg->conn,
					"UPDATE live_sessions SET expires = clock_timestamp() + $2::bigint * "
					"interval '1 millisecond' WHERE instance = $1",
					2, values, error_r);
	if (res == NULL)
		return -1;
	int renewed = (int)pg_changes(res);
	PQclear(res);
	return renewed;
}

/* ---- slots ---- */

int session_registry_acquire(struct session_registry *reg, const char *service, const char *user, int max,
			     int64_t *slot_r, char **error_r)
{
	*slot_r = 0;
	if (reg == NULL)
		return 1;
	char cap[16];
	snprintf(cap, sizeof(cap), "%d", max);
	const char *values[] = {reg->node, reg->pid, reg->instance, service, user, cap, reg->ttl_ms};
	PGresult *res = pg_shared_query(
	    reg->conn, "SELECT live_session_add($1, $2::integer, $3, $4, $5, $6::integer, $7::bigint)", 7,
	    values, error_r);
	if (res == NULL)
		return -1;
	*slot_r = pg_value_int64(res, 0, 0);
	PQclear(res);
	return *slot_r > 0 ? 1 : 0;
}

int session_registry_release(struct session_registry *reg, int64_t slot, char **error_r)
{
	if (reg == NULL || slot == 0)
		return 0;
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)slot);
	const char *values[] = {id};
	return run_command(reg, "DELETE FROM live_sessions WHERE id = $1::bigint", 1, values, error_r);
}

struct release_job {
	struct session_registry *reg;
	int64_t slot;
};

static void release_work(void *arg)
{
	struct release_job *job = arg;
	char *error = NULL;
	if (session_registry_release(job->reg, job->slot, &error) < 0) {
		log_warn("session-registry release failed slot=%lld error=\"%s\"", (long long)job->slot,
			 error);
		free(error);
	}
}

static void release_done(void *arg)
{
	free(arg);
}

void session_registry_release_async(struct session_registry *reg, int64_t slot)
{
	if (reg == NULL || slot == 0)
		return;
	struct release_job *job = xcalloc(1, sizeof(*job));
	job->reg = reg;
	job->slot = slot;
	jobs_submit(release_work, release_done, job);
}

int session_registry_count(struct session_registry *reg, const char *service, const char *user,
			   char **error_r)
{
	const char *values[] = {service, user};
	PGresult *res =
	    pg_shared_query(reg->conn,
			    "SELECT count(*) FROM live_sessions WHERE service = $1 AND username = $2 "
			    "AND expires > clock_timestamp()",
			    2, values, error_r);
	if (res == NULL)
		return -1;
	int n = (int)pg_value_int64(res, 0, 0);
	PQclear(res);
	return n;
}
