/* The store interface: the registry of backends, the dispatchers of
   store.h and store_imap_extra.h through the handle's table of operations
   (store_backend.h), and what every backend shares (mailbox names, message
   lists, stable ids). */
#include "store/store_backend.h"
#include "lib/buf.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct store_backend *const store_backends[] = {
    &store_backend_local,
    &store_backend_pg,
};

const struct store_backend *store_backend_find(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(store_backends); i++)
		if (strcmp(store_backends[i]->name, name) == 0)
			return store_backends[i];
	return NULL;
}

/* ---- the user's store ---- */

struct store *store_open_backend(const char *backend, const char *location, char **error_r)
{
	const struct store_backend *be = store_backend_find(backend);
	if (be == NULL) {
		*error_r = xasprintf("unknown store backend '%s'", backend);
		return NULL;
	}
	struct store *store = be->open(location, error_r);
	if (store != NULL && store->be != be)
		log_panic("store backend %s: open did not set the handle's backend", be->name);
	return store;
}

struct store *store_open(const char *maildir, char **error_r)
{
	return store_open_backend(STORE_BACKEND_DEFAULT, maildir, error_r);
}

void store_close(struct store **storep)
{
	struct store *store = *storep;
	if (store == NULL)
		return;
	*storep = NULL;
	store->be->close(store);
}

const char *store_path(const struct store *store)
{
	return store->be->path(store);
}

const char *store_backend_name(const struct store *store)
{
	return store->be->name;
}

int store_quota_usage(struct store *store, uint64_t *bytes_r, uint64_t *messages_r, char **error_r)
{
	return store->be->quota_usage(store, bytes_r, messages_r, error_r);
}

int store_maildrop_lock(struct store *store, char **error_r)
{
	return store->be->maildrop_lock(store, error_r);
}

void store_maildrop_unlock(struct store *store)
{
	store->be->maildrop_unlock(store);
}

/* ---- folders ---- */

static bool name_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

int store_name_check(const char *name, const char **error_r)
{
	if (name_is_inbox(name))
		return 0;
	size_t len = strlen(name);
	if (len == 0 || len > 200) {
		*error_r = "mailbox name empty or too long";
		return -1;
	}
	if (name[0] == STORE_SEPARATOR || name[len - 1] == STORE_SEPARATOR || strstr(name, "..") != NULL) {
		*error_r = "empty hierarchy level in mailbox name";
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\') {
			*error_r = "invalid character in mailbox name";
			return -1;
		}
	}
	if (strncasecmp(name, "INBOX.", 6) == 0) {
		*error_r = "folders below INBOX are not supported";
		return -1;
	}
	return 0;
}

int store_folder_create(struct store *store, const char *name, bool *exists_r, char **error_r)
{
	return store->be->folder_create(store, name, exists_r, error_r);
}

int store_folder_delete(struct store *store, const char *name, char **error_r)
{
	return store->be->folder_delete(store, name, error_r);
}

int store_folder_rename(struct store *store, const char *from, const char *to, char **error_r)
{
	return store->be->folder_rename(store, from, to, error_r);
}

int store_folder_list(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx, char **error_r)
{
	return store->be->folder_list(store, cb, ctx, error_r);
}

int store_subscribe(struct store *store, const char *name, bool subscribe, char **error_r)
{
	return store->be->subscribe(store, name, subscribe, error_r);
}

int store_subscription_list(struct store *store, int (*cb)(void *ctx, const char *name), void *ctx,
			    char **error_r)
{
	return store->be->subscription_list(store, cb, ctx, error_r);
}

/* ---- mailboxes ---- */

int store_mailbox_open(struct store *store, const char *name, struct store_mailbox **mbox_r, char **error_r)
{
	return store->be->mailbox_open(store, name, mbox_r, error_r);
}

int store_mailbox_open_indexed(struct store *store, const char *name, struct store_mailbox **mbox_r,
			       char **error_r)
{
	return store->be->mailbox_open_indexed(store, name, mbox_r, error_r);
}

void store_mailbox_close(struct store_mailbox **mboxp)
{
	struct store_mailbox *mbox = *mboxp;
	if (mbox == NULL)
		return;
	*mboxp = NULL;
	mbox->store->be->mailbox_close(mbox);
}

const char *store_mailbox_name(const struct store_mailbox *mbox)
{
	return mbox->name;
}

uint32_t store_mailbox_uidvalidity(const struct store_mailbox *mbox)
{
	return mbox->uidvalidity;
}

const char *store_mailbox_objectid(const struct store_mailbox *mbox)
{
	return mbox->objectid;
}

int store_mailbox_sync(struct store_mailbox *mbox, bool force, char **error_r)
{
	return mbox->store->be->mailbox_sync(mbox, force, error_r);
}

int store_mailbox_status(struct store_mailbox *mbox, struct store_status *status_r, char **error_r)
{
	return mbox->store->be->mailbox_status(mbox, status_r, error_r);
}

int store_mailbox_get_counters(struct store_mailbox *mbox, uint32_t *uidnext_r, uint64_t *modseq_r,
			       char **error_r)
{
	return mbox->store->be->mailbox_counters(mbox, uidnext_r, modseq_r, error_r);
}

int store_mailbox_list(struct store_mailbox *mbox, struct store_msg_list *list_r, char **error_r)
{
	return mbox->store->be->mailbox_list(mbox, list_r, error_r);
}

int store_mailbox_changed_since(struct store_mailbox *mbox, uint64_t modseq, struct store_msg_list *list_r,
				char **error_r)
{
	return mbox->store->be->mailbox_changed_since(mbox, modseq, list_r, error_r);
}

void store_msg_list_free(struct store_msg_list *list)
{
	free(list->msgs);
	pool_destroy(&list->pool);
	memset(list, 0, sizeof(*list));
}

int store_mailbox_expunged_since(struct store_mailbox *mbox, uint64_t modseq, uint32_t **uids_r,
				 size_t *count_r, char **error_r)
{
	return mbox->store->be->mailbox_expunged_since(mbox, modseq, uids_r, count_r, error_r);
}

int store_mailbox_take_recent(struct store_mailbox *mbox, uint32_t *first_recent_r, char **error_r)
{
	return mbox->store->be->mailbox_take_recent(mbox, first_recent_r, error_r);
}

int store_watch_open(struct store_mailbox *mbox, char **error_r)
{
	return mbox->store->be->watch_open(mbox, error_r);
}

/* ---- messages ---- */

int store_msg_open(struct store_mailbox *mbox, const struct store_msg *msg, int *fd_r, char **error_r)
{
	return mbox->store->be->msg_open(mbox, msg, fd_r, error_r);
}

int store_msg_open_uid(struct store_mailbox *mbox, uint32_t uid, int *fd_r, char **error_r)
{
	return mbox->store->be->msg_open_uid(mbox, uid, fd_r, error_r);
}

/* The rules of store_mailbox_import() that do not depend on the backend. */
static int import_check(const struct store_import *imp, char **error_r)
{
	const char *err;
	if (store_name_check(imp->name, &err) < 0) {
		*error_r = xasprintf("import of '%s': %s", imp->name, err);
		return -1;
	}
	if (imp->uidvalidity == 0 || imp->uidnext == 0 || imp->highestmodseq == 0) {
		*error_r = xasprintf("import of %s: UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ must be non-zero",
				     imp->name);
		return -1;
	}
	uint32_t last = 0;
	for (size_t i = 0; i < imp->count; i++) {
		const struct store_import_msg *m = &imp->msgs[i];
		if (m->uid <= last || m->uid >= imp->uidnext || m->modseq > imp->highestmodseq) {
			*error_r =
			    xasprintf("import of %s: UID %u out of order, not below UIDNEXT %u, or modseq "
				      "%llu above HIGHESTMODSEQ %llu",
				      imp->name, m->uid, imp->uidnext, (unsigned long long)m->modseq,
				      (unsigned long long)imp->highestmodseq);
			return -1;
		}
		last = m->uid;
	}
	for (size_t i = 0; i < imp->expunged_count; i++) {
		if (imp->expunged[i] == 0 || imp->expunged[i] >= imp->uidnext) {
			*error_r = xasprintf("import of %s: expunged UID %u not below UIDNEXT %u", imp->name,
					     imp->expunged[i], imp->uidnext);
			return -1;
		}
	}
	return 0;
}

int store_mailbox_import(struct store *store, const struct store_import *imp, char **error_r)
{
	if (store->be->mailbox_import == NULL) {
		*error_r = xasprintf("the %s store backend cannot import mailboxes", store->be->name);
		return -1;
	}
	if (import_check(imp, error_r) < 0)
		return -1;
	return store->be->mailbox_import(store, imp, error_r);
}

/* The locator's part before ":2," names the message for life in every
   backend (local: the Maildir base name). */
void store_msg_stable_id(const struct store_msg *msg, char out[STORE_STABLE_ID_MAX + 1])
{
	const char *loc = msg->locator;
	const char *info = strstr(loc, ":2,");
	size_t len = info != NULL ? (size_t)(info - loc) : strlen(loc);
	bool printable = len > 0 && len <= STORE_STABLE_ID_MAX;
	for (size_t i = 0; i < len && printable; i++)
		printable = loc[i] > 0x20 && loc[i] < 0x7f;
	if (printable) {
		memcpy(out, loc, len);
		out[len] = '\0';
		return;
	}
	/* Long or odd names: a hash of the base name (128 bits). */
	hash_digest_id(out, 'H', loc, len, 16);
}

int store_msg_set_flags(struct store_mailbox *mbox, const uint32_t *uids, size_t count, enum store_flag_op op,
			uint32_t flags, const char *keywords, uint64_t unchanged_since, uint32_t **failed_r,
			size_t *failed_count_r, char **error_r)
{
	return mbox->store->be->msg_set_flags(mbox, uids, count, op, flags, keywords, unchanged_since,
					      failed_r, failed_count_r, error_r);
}

int store_mailbox_flags_pending(struct store_mailbox *mbox, char **error_r)
{
	return mbox->store->be->mailbox_flags_pending(mbox, error_r);
}

int store_mailbox_flush_flags(struct store_mailbox *mbox, char **error_r)
{
	return mbox->store->be->mailbox_flush_flags(mbox, error_r);
}

int store_msg_expunge(struct store_mailbox *mbox, const uint32_t *uids, size_t count, char **error_r)
{
	return mbox->store->be->msg_expunge(mbox, uids, count, error_r);
}

int store_msg_append(struct store_mailbox *mbox, const void *data, size_t len, uint32_t flags,
		     const char *keywords, int64_t internaldate, uint32_t *uid_r, char **error_r)
{
	struct store_append one = {data, len, flags, keywords, internaldate};
	return mbox->store->be->msg_append_many(mbox, &one, 1, uid_r, error_r);
}

int store_msg_append_many(struct store_mailbox *mbox, const struct store_append *msgs, size_t count,
			  uint32_t *first_uid_r, char **error_r)
{
	if (count == 0)
		log_panic("store_msg_append_many() of no message");
	return mbox->store->be->msg_append_many(mbox, msgs, count, first_uid_r, error_r);
}

int store_msg_emailids(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
		       int (*cb)(void *ctx, uint32_t uid, const char *emailid), void *ctx, char **error_r)
{
	return mbox->store->be->msg_emailids(mbox, lo, hi, cb, ctx, error_r);
}

int store_msg_copy(struct store_mailbox *src, const uint32_t *uids, size_t count, struct store_mailbox *dest,
		   bool move, uint32_t **dest_uids_r, char **error_r)
{
	if (src->store != dest->store)
		log_panic("store_msg_copy() between two store handles");
	return src->store->be->msg_copy(src, uids, count, dest, move, dest_uids_r, error_r);
}

/* ---- the IMAP cache ---- */

int store_cache_prepare(struct store *store, char **error_r)
{
	return store->be->cache_prepare(store, error_r);
}

int store_cache_get(struct store_mailbox *mbox, uint32_t uid, enum store_cache_field field, char **text_r,
		    char **error_r)
{
	return mbox->store->be->cache_get(mbox, uid, field, text_r, error_r);
}

int store_cache_set(struct store_mailbox *mbox, uint32_t uid, enum store_cache_field field, const char *text,
		    char **error_r)
{
	return mbox->store->be->cache_set(mbox, uid, field, text, error_r);
}

int store_cache_get_range(struct store_mailbox *mbox, uint32_t lo, uint32_t hi, enum store_cache_field field,
			  int (*cb)(void *ctx, uint32_t uid, const char *text, size_t len), void *ctx,
			  char **error_r)
{
	return mbox->store->be->cache_get_range(mbox, lo, hi, field, cb, ctx, error_r);
}

int store_cache_set_header(struct store_mailbox *mbox, uint32_t uid, const void *data, size_t len,
			   char **error_r)
{
	return mbox->store->be->cache_set_header(mbox, uid, data, len, error_r);
}

int store_cache_get_header_range(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
				 int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len), void *ctx,
				 char **error_r)
{
	return mbox->store->be->cache_get_header_range(mbox, lo, hi, cb, ctx, error_r);
}

int store_cache_set_sortkey(struct store_mailbox *mbox, uint32_t uid, const void *data, size_t len,
			    char **error_r)
{
	return mbox->store->be->cache_set_sortkey(mbox, uid, data, len, error_r);
}

int store_cache_get_sortkey_range(struct store_mailbox *mbox, uint32_t lo, uint32_t hi,
				  int (*cb)(void *ctx, uint32_t uid, const char *data, size_t len), void *ctx,
				  char **error_r)
{
	return mbox->store->be->cache_get_sortkey_range(mbox, lo, hi, cb, ctx, error_r);
}

int store_cache_begin(struct store_mailbox *mbox, char **error_r)
{
	return mbox->store->be->cache_begin(mbox, error_r);
}

int store_cache_commit(struct store_mailbox *mbox, char **error_r)
{
	return mbox->store->be->cache_commit(mbox, error_r);
}

/* ---- what backends share ---- */

static bool keyword_in(const char *list, const char *kw, size_t kwlen)
{
	const char *p = list;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == kwlen && n > 0 && strncasecmp(p, kw, n) == 0)
			return true;
		p += n;
	}
	return false;
}

/* Appends the words of list to b that b does not have yet (and, with
   drop, that are not in drop either). */
static void keywords_merge(struct buf *b, const char *list, const char *drop)
{
	for (const char *p = list; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n > 0 && (drop == NULL || !keyword_in(drop, p, n)) && !keyword_in(buf_cstr(b), p, n)) {
			if (b->len)
				buf_append_char(b, ' ');
			buf_append(b, p, n);
		}
		p += n;
	}
}

const char *store_keywords_apply(struct buf *out, enum store_flag_op op, const char *old,
				 const char *keywords)
{
	if (keywords == NULL && op != STORE_FLAGS_REPLACE)
		return old;
	const char *kws = keywords != NULL ? keywords : "";
	buf_reset(out);
	keywords_merge(out, op == STORE_FLAGS_REPLACE ? kws : old, op == STORE_FLAGS_REMOVE ? kws : NULL);
	if (op == STORE_FLAGS_ADD)
		keywords_merge(out, kws, NULL);
	return buf_cstr(out);
}

uint32_t store_flags_apply(uint32_t old, enum store_flag_op op, uint32_t flags)
{
	switch (op) {
	case STORE_FLAGS_REPLACE:
		return flags & STORE_FLAGS_ALL;
	case STORE_FLAGS_ADD:
		return (old | flags) & STORE_FLAGS_ALL;
	case STORE_FLAGS_REMOVE:
		return old & ~flags & STORE_FLAGS_ALL;
	}
	return old;
}

int store_folder_rename_inbox(struct store *store, const char *to, char **error_r)
{
	bool exists;
	*error_r = NULL;
	if (store_folder_create(store, to, &exists, error_r) < 0)
		return -1;
	struct store_mailbox *inbox = NULL, *dest = NULL;
	struct store_msg_list list = {0};
	int rc = store_mailbox_open(store, "INBOX", &inbox, error_r) > 0 &&
			 store_mailbox_open(store, to, &dest, error_r) > 0
		     ? 0
		     : -1;
	if (rc == 0)
		rc = store_mailbox_list(inbox, &list, error_r);
	if (rc == 0 && list.count > 0) {
		uint32_t *uids = xcalloc(list.count, sizeof(*uids)), *dest_uids = NULL;
		for (size_t i = 0; i < list.count; i++)
			uids[i] = list.msgs[i].uid;
		rc = store_msg_copy(inbox, uids, list.count, dest, true, &dest_uids, error_r) < 0 ? -1 : 0;
		free(uids);
		free(dest_uids);
	}
	if (rc < 0 && *error_r == NULL)
		*error_r = xstrdup("cannot open INBOX");
	store_msg_list_free(&list);
	store_mailbox_close(&inbox);
	store_mailbox_close(&dest);
	return rc;
}
