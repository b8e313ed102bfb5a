#include "auth/auth_check.h"
#include "auth/auth_penalty_pg.h"
#include "auth/password.h"
#include "auth/userdb.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void auth_check_prepare(struct auth_check *check, struct userdb *db, const char *user, const char *password)
{
	memset(check, 0, sizeof(*check));
	check->password = xstrdup(password);
	check->db = db;
	const char *error;
	check->user = userdb_normalize_address(user, &error);
	if (check->user == NULL)
		check->user = xstrdup(user);
}

/* The lookup of auth_check_prepare()'s db, on the job thread: the user's
   address (the same normal form), hash and quota.  -1 when it failed. */
static int lookup(struct auth_check *check)
{
	struct userdb *db = check->db;
	if (db == NULL)
		return 0;
	check->db = NULL;
	struct userdb_user u;
	int found = userdb_user_lookup(db, check->user, &u);
	check->unavailable = found < 0;
	if (found != 1)
		return found < 0 ? -1 : 0;
	free(check->user);
	check->user = xstrdup(u.address);
	check->hash = xstrdup(u.password_hash);
	check->quota = u.quota;
	userdb_user_free(&u);
	return 0;
}

int auth_check_penalty(struct auth_check *check, struct auth_penalty *table, const struct config *cfg,
		       const char *ip)
{
	struct auth_penalty_policy *p = &check->policy;
	p->ip_failures = cfg->auth_penalty_ip_failures;
	p->account_failures = cfg->auth_penalty_account_failures;
	p->window_ms = (int64_t)cfg->auth_penalty_window * 1000;
	p->lockout_ms = (int64_t)cfg->auth_penalty_lockout * 1000;
	p->base_delay_ms = (int64_t)cfg->auth_failure_delay * 1000;
	p->max_delay_ms = (int64_t)cfg->auth_penalty_max_delay * 1000;
	check->verdict = AUTH_PENALTY_ALLOW;
	check->delay_ms = (int)p->base_delay_ms;
	if (table == NULL)
		return 0;
	/* Unknown names count too, in the form a lookup would normalise them
	   to: refusing only existing accounts would tell which ones exist. */
	const char *error;
	check->account = check->hash != NULL ? NULL : userdb_normalize_address(check->user, &error);
	if (check->account == NULL)
		check->account = xstrdup(check->user);
	snprintf(check->ip, sizeof(check->ip), "%s", ip);
	check->verdict =
	    auth_penalty_check(table, p, check->ip, check->account, auth_penalty_now(), &check->delay_ms);
	if (check->verdict != AUTH_PENALTY_ALLOW)
		return -1;
	check->penalty = table;
	return 0;
}

/* The counters of all nodes; NULL: the machine's table only. */
static struct auth_penalty_pg *cluster;

int auth_check_cluster_open(const struct config *cfg, char **error_r)
{
	if (cfg->storage_backend != STORAGE_POSTGRESQL)
		return 0;
	cluster = auth_penalty_pg_open(cfg->pg_conninfo, error_r);
	return cluster != NULL ? 0 : -1;
}

void auth_check_cluster_close(void)
{
	auth_penalty_pg_close(&cluster);
}

/* Asks the counters of all nodes after the machine's table allowed the
   login: true when they refuse it (the machine's check in flight is taken
   back).  A database that fails lets the login through, logged. */
static bool cluster_refused(struct auth_check *check)
{
	enum auth_penalty_verdict verdict;
	int delay_ms;
	char *error = NULL;
	if (cluster == NULL || check->penalty == NULL)
		return false;
	if (auth_penalty_pg_check(cluster, &check->policy, check->ip, check->account, AUTH_PENALTY_PG_NOW,
				  &verdict, &delay_ms, &error) < 0) {
		log_error("auth-penalty check failed backend=postgresql result=allow error=\"%s\"", error);
		free(error);
		return false;
	}
	if (delay_ms > check->delay_ms)
		check->delay_ms = delay_ms;
	if (verdict == AUTH_PENALTY_ALLOW)
		return false;
	auth_penalty_cancel(check->penalty, &check->policy, check->ip, check->account, auth_penalty_now());
	check->verdict = verdict;
	check->penalty = NULL;
	return true;
}

/* The outcome for the counters of all nodes: AUTH_PENALTY_LOCKED_* bits. */
static int cluster_record(struct auth_check *check)
{
	char *error = NULL;
	if (cluster == NULL)
		return 0;
	int locked = auth_penalty_pg_record(cluster, &check->policy, check->ip, check->account, check->ok,
					    AUTH_PENALTY_PG_NOW, &error);
	if (locked < 0) {
		log_error("auth-penalty record failed backend=postgresql error=\"%s\"", error);
		free(error);
		return 0;
	}
	return locked;
}

bool auth_check_refused(const struct auth_check *check)
{
	return check->verdict != AUTH_PENALTY_ALLOW;
}

bool auth_check_verify(struct auth_check *check)
{
	check->ok = false;
	if (lookup(check) < 0) {
		if (check->penalty != NULL)
			auth_penalty_cancel(check->penalty, &check->policy, check->ip, check->account,
					    auth_penalty_now());
		check->penalty = NULL;
		check->verdict = AUTH_PENALTY_UNAVAILABLE;
		check->delay_ms = (int)check->policy.base_delay_ms;
		return false;
	}
	if (cluster_refused(check)) {
		check->ok = false;
		return false;
	}
	/* password_verify() with a NULL hash costs the same as a real check. */
	check->ok = password_verify(check->password, check->hash) == 1 && check->hash != NULL;
	if (check->penalty != NULL) {
		int locked = auth_penalty_record(check->penalty, &check->policy, check->ip, check->account,
						 check->ok, auth_penalty_now());
		locked |= cluster_record(check);
		char who[200];
		if (locked != 0)
			log_printable(who, sizeof(who), check->account, strlen(check->account));
		if (locked & AUTH_PENALTY_LOCKED_IP)
			log_warn("auth-penalty lockout scope=ip ip=%s user=%s failures=%d seconds=%lld",
				 check->ip, who, check->policy.ip_failures,
				 (long long)(check->policy.lockout_ms / 1000));
		if (locked & AUTH_PENALTY_LOCKED_ACCOUNT)
			log_warn("auth-penalty lockout scope=account ip=%s user=%s failures=%d seconds=%lld",
				 check->ip, who, check->policy.account_failures,
				 (long long)(check->policy.lockout_ms / 1000));
		check->penalty = NULL; /* recorded once */
	}
	return check->ok;
}

void auth_check_clear(struct auth_check *check)
{
	if (check->password != NULL) {
		explicit_bzero(check->password, strlen(check->password));
		free(check->password);
	}
	free(check->user);
	free(check->hash);
	free(check->account);
	memset(check, 0, sizeof(*check));
}
