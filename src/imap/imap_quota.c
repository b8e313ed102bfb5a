/* QUOTA (RFC 9208): one quota root "" per user, with the STORAGE limit of
   the user database (the one SMTP enforces) and the usage of the store. */
#include "imap/imap_private.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

static int usage(struct imap_session *s, uint64_t *bytes_r, uint64_t *msgs_r)
{
	char *error = NULL;
	if (store_quota_usage(s->user->store, bytes_r, msgs_r, &error) < 0) {
		imap_internal_error(s, "quota", error);
		return -1;
	}
	return 0;
}

int imap_quota_check(struct imap_session *s, uint64_t bytes)
{
	uint64_t used, msgs;
	char *error = NULL;
	if (s->user->quota == 0)
		return 0;
	if (store_quota_usage(s->user->store, &used, &msgs, &error) < 0) {
		free(error);
		return 0; /* do not refuse mail on an index error */
	}
	return used + bytes > s->user->quota ? -1 : 0;
}

static void quota_line(struct imap_session *s, uint64_t bytes, uint64_t msgs)
{
	(void)msgs;
	if (s->user->quota == 0)
		imap_untagged(s, "QUOTA \"\" ()");
	else
		imap_untagged(s, "QUOTA \"\" (STORAGE %llu %llu)", (unsigned long long)(bytes / 1024),
			      (unsigned long long)(s->user->quota / 1024));
}

int imap_cmd_getquota(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *root;
	if (c->count != 1 || (root = imap_arg_astring(&c->args[0])) == NULL) {
		*error_r = "GETQUOTA needs a quota root";
		return -1;
	}
	if (root[0] != '\0') {
		imap_tagged(c->s, "NO", "[NONEXISTENT] No such quota root");
		return 0;
	}
	uint64_t bytes, msgs;
	if (usage(c->s, &bytes, &msgs) < 0)
		return 0;
	quota_line(c->s, bytes, msgs);
	imap_tagged(c->s, "OK", "GETQUOTA completed");
	return 0;
}

int imap_cmd_getquotaroot(struct imap_cmd_ctx *c, const char **error_r)
{
	const char *name;
	if (c->count != 1 || imap_cmd_mailbox(c, &c->args[0], &name, error_r) < 0) {
		if (c->count != 1)
			*error_r = "GETQUOTAROOT needs a mailbox";
		return -1;
	}
	uint64_t bytes, msgs;
	if (usage(c->s, &bytes, &msgs) < 0)
		return 0;
	struct buf out = BUF_INIT;
	buf_append_str(&out, "* QUOTAROOT ");
	imap_append_mailbox(c->s, &out, name);
	buf_append_str(&out, " \"\"\r\n");
	imap_write_buf(c->s, &out);
	buf_free(&out);
	quota_line(c->s, bytes, msgs);
	imap_tagged(c->s, "OK", "GETQUOTAROOT completed");
	return 0;
}

int imap_cmd_setquota(struct imap_cmd_ctx *c, const char **error_r)
{
	if (c->count != 2 || c->args[1].type != IMAP_ARG_LIST) {
		*error_r = "SETQUOTA needs a root and a resource list";
		return -1;
	}
	/* Limits are the administrator's (postoffice user quota). */
	imap_tagged(c->s, "NO", "[NOPERM] Quotas are set by the administrator");
	return 0;
}
