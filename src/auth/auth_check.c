#include "auth/auth_check.h"
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
	struct userdb_user u;
	int found = userdb_user_lookup(db, user, &u);
	check->unavailable = found < 0;
	if (found == 1) {
		check->user = xstrdup(u.address);
		check->hash = xstrdup(u.password_hash);
		check->quota = u.quota;
		userdb_user_free(&u);
	} else {
		check->user = xstrdup(user);
	}
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
	if (check->unavailable) {
		check->verdict = AUTH_PENALTY_UNAVAILABLE;
		return -1;
	}
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

bool auth_check_verify(struct auth_check *check)
{
	/* password_verify() with a NULL hash costs the same as a real check. */
	check->ok = password_verify(check->password, check->hash) == 1 && check->hash != NULL;
	if (check->penalty != NULL) {
		int locked = auth_penalty_record(check->penalty, &check->policy, check->ip, check->account,
						 check->ok, auth_penalty_now());
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
