/* `postoffice migrate-to-postgresql`: one user's mail store copied from
   one backend to another through store.h (store_mailbox_import() for
   each mailbox), then read back and compared (migrate.h). */
#include "cli/migrate.h"
#include "lib/buf.h"
#include "lib/strlist.h"
#include "lib/xalloc.h"
#include "store/store.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int migrate_hash(const void *data, size_t len, unsigned char out[MIGRATE_HASH_LEN])
{
	unsigned int n = 0;
	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == MIGRATE_HASH_LEN ? 0 : -1;
}

int migrate_read_fd(int fd, const char *what, char **data_r, size_t *len_r, char **error_r)
{
	struct buf b = BUF_INIT;
	for (;;) {
		buf_reserve(&b, 65536);
		ssize_t n = read(fd, b.data + b.len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("reading %s failed: %s", what, strerror(errno));
			buf_free(&b);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
	}
	close(fd);
	*len_r = b.len;
	buf_append_char(&b, '\0');
	*data_r = buf_steal(&b);
	buf_free(&b);
	return 0;
}

/* One mailbox being copied: the source's list, what the import gets, and
   the hashes of the octets it read. */
struct mailbox_copy {
	struct store_mailbox *src;
	struct store_status status;
	struct store_msg_list list;
	struct store_import_msg *msgs; /* list.count, in list order */
	char **emailids;
	char (*stable_ids)[STORE_STABLE_ID_MAX + 1];
	unsigned char (*hashes)[MIGRATE_HASH_LEN];
	uint32_t *expunged;
	size_t expunged_count;
	char *data; /* the octets read last */
};

static void mailbox_copy_free(struct mailbox_copy *c)
{
	for (size_t i = 0; i < c->list.count && c->emailids != NULL; i++)
		free(c->emailids[i]);
	free(c->emailids);
	free(c->msgs);
	free(c->stable_ids);
	free(c->hashes);
	free(c->expunged);
	free(c->data);
	store_msg_list_free(&c->list);
	store_mailbox_close(&c->src);
}

/* The list index of uid, or list.count. */
static size_t copy_index(const struct mailbox_copy *c, uint32_t uid)
{
	size_t lo = 0, hi = c->list.count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->list.msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->list.count && c->list.msgs[lo].uid == uid ? lo : c->list.count;
}

static int emailid_cb(void *ctx, uint32_t uid, const char *emailid)
{
	struct mailbox_copy *c = ctx;
	size_t i = copy_index(c, uid);
	if (i < c->list.count) {
		free(c->emailids[i]);
		c->emailids[i] = xstrdup(emailid);
		c->msgs[i].emailid = c->emailids[i];
	}
	return 0;
}

static int read_msg(void *ctx, size_t i, const void **data_r, size_t *len_r, char **error_r)
{
	struct mailbox_copy *c = ctx;
	const struct store_msg *m = &c->list.msgs[i];
	free(c->data);
	c->data = NULL;
	int fd;
	int rc = store_msg_open(c->src, m, &fd, error_r);
	if (rc == 0)
		*error_r = xasprintf("%s UID %u is gone (is the server running?)", store_mailbox_name(c->src),
				     m->uid);
	if (rc <= 0 || migrate_read_fd(fd, "a message", &c->data, len_r, error_r) < 0 ||
	    migrate_hash(c->data, *len_r, c->hashes[i]) < 0) {
		if (rc > 0 && *error_r == NULL)
			*error_r = xstrdup("SHA-256 failed");
		return -1;
	}
	*data_r = c->data;
	return 0;
}

/* Reads the source mailbox name: status, messages, EMAILIDs, expunged. */
static int copy_prepare(struct store *src, const char *name, struct mailbox_copy *c, char **error_r)
{
	int rc = store_mailbox_open(src, name, &c->src, error_r);
	if (rc == 0)
		*error_r = xasprintf("mailbox %s is listed but cannot be opened", name);
	if (rc <= 0 || store_mailbox_status(c->src, &c->status, error_r) < 0 ||
	    store_mailbox_list(c->src, &c->list, error_r) < 0)
		return -1;
	size_t n = c->list.count;
	c->msgs = xcalloc(n + 1, sizeof(*c->msgs));
	c->emailids = xcalloc(n + 1, sizeof(*c->emailids));
	c->stable_ids = xcalloc(n + 1, sizeof(*c->stable_ids));
	c->hashes = xcalloc(n + 1, sizeof(*c->hashes));
	for (size_t i = 0; i < n; i++) {
		const struct store_msg *m = &c->list.msgs[i];
		store_msg_stable_id(m, c->stable_ids[i]);
		c->msgs[i] = (struct store_import_msg){
		    .uid = m->uid,
		    .flags = m->flags,
		    .keywords = m->keywords,
		    .internaldate = m->internaldate,
		    .modseq = m->modseq,
		    .stable_id = c->stable_ids[i],
		};
	}
	if (n > 0 && store_msg_emailids(c->src, 1, UINT32_MAX, emailid_cb, c, error_r) < 0)
		return -1;
	return store_mailbox_expunged_since(c->src, 0, &c->expunged, &c->expunged_count, error_r);
}

/* The counters and messages of the copy dest against the source. */
static int copy_compare_list(struct mailbox_copy *c, struct store_mailbox *dest, char **error_r)
{
	const char *name = store_mailbox_name(c->src);
	struct store_status st;
	if (store_mailbox_status(dest, &st, error_r) < 0)
		return -1;
	if (st.uidvalidity != c->status.uidvalidity || st.uidnext != c->status.uidnext ||
	    st.highestmodseq < c->status.highestmodseq || st.messages != c->status.messages ||
	    strcmp(store_mailbox_objectid(dest), store_mailbox_objectid(c->src)) != 0) {
		*error_r =
		    xasprintf("%s: the copy has UIDVALIDITY %u UIDNEXT %u HIGHESTMODSEQ %llu, %u messages; "
			      "the original %u %u %llu, %u",
			      name, st.uidvalidity, st.uidnext, (unsigned long long)st.highestmodseq,
			      st.messages, c->status.uidvalidity, c->status.uidnext,
			      (unsigned long long)c->status.highestmodseq, c->status.messages);
		return -1;
	}
	struct store_msg_list list;
	if (store_mailbox_list(dest, &list, error_r) < 0)
		return -1;
	int rc = list.count == c->list.count ? 0 : -1;
	for (size_t i = 0; i < list.count && rc == 0; i++) {
		const struct store_msg *a = &c->list.msgs[i], *b = &list.msgs[i];
		char id[STORE_STABLE_ID_MAX + 1];
		store_msg_stable_id(b, id);
		if (a->uid != b->uid || strcmp(id, c->stable_ids[i]) != 0 || a->flags != b->flags ||
		    strcmp(a->keywords, b->keywords) != 0 || a->size != b->size ||
		    a->internaldate != b->internaldate || (a->modseq != b->modseq && a->modseq != 0)) {
			*error_r =
			    xasprintf("%s UID %u: the copy differs (UID %u flags %u/%u keywords '%s'/'%s' "
				      "size %llu/%llu, or its date, modseq or UIDL)",
				      name, a->uid, b->uid, b->flags, a->flags, b->keywords, a->keywords,
				      (unsigned long long)b->size, (unsigned long long)a->size);
			rc = -1;
		}
	}
	if (rc < 0 && *error_r == NULL)
		*error_r = xasprintf("%s: the copy has %zu messages, the original %zu", name, list.count,
				     c->list.count);
	store_msg_list_free(&list);
	return rc;
}

/* The octets of every message of the copy dest against the source's. */
static int copy_compare_octets(struct mailbox_copy *c, struct store_mailbox *dest,
			       struct migrate_count *count, char **error_r)
{
	for (size_t i = 0; i < c->list.count; i++) {
		uint32_t uid = c->list.msgs[i].uid;
		int fd;
		char *data = NULL;
		size_t len = 0;
		unsigned char hash[MIGRATE_HASH_LEN];
		int rc = store_msg_open_uid(dest, uid, &fd, error_r);
		if (rc == 0)
			*error_r =
			    xasprintf("%s UID %u is missing in the copy", store_mailbox_name(c->src), uid);
		if (rc <= 0 || migrate_read_fd(fd, "a copied message", &data, &len, error_r) < 0)
			return -1;
		rc = migrate_hash(data, len, hash);
		free(data);
		if (rc < 0 || memcmp(hash, c->hashes[i], MIGRATE_HASH_LEN) != 0) {
			*error_r =
			    xasprintf("%s UID %u: the copy's octets differ", store_mailbox_name(c->src), uid);
			return -1;
		}
		count->messages++;
		count->bytes += len;
	}
	return 0;
}

static int copy_mailbox(struct store *src, struct store *dest, const char *name, struct migrate_count *count,
			char **error_r)
{
	struct mailbox_copy c;
	memset(&c, 0, sizeof(c));
	int rc = copy_prepare(src, name, &c, error_r);
	if (rc == 0) {
		struct store_import imp = {
		    .name = store_mailbox_name(c.src),
		    .uidvalidity = c.status.uidvalidity,
		    .uidnext = c.status.uidnext,
		    .highestmodseq = c.status.highestmodseq > 0 ? c.status.highestmodseq : 1,
		    .mailboxid = store_mailbox_objectid(c.src),
		    .msgs = c.msgs,
		    .count = c.list.count,
		    .expunged = c.expunged,
		    .expunged_count = c.expunged_count,
		    .read = read_msg,
		    .ctx = &c,
		};
		rc = store_mailbox_import(dest, &imp, error_r);
	}
	struct store_mailbox *copy = NULL;
	if (rc == 0 && (rc = store_mailbox_open(dest, name, &copy, error_r)) == 0)
		*error_r = xasprintf("%s is missing in the copy", name);
	if (rc > 0)
		rc = copy_compare_list(&c, copy, error_r) < 0 ||
			     copy_compare_octets(&c, copy, count, error_r) < 0
			 ? -1
			 : 0;
	if (rc == 0)
		count->mailboxes++;
	store_mailbox_close(&copy);
	mailbox_copy_free(&c);
	return rc < 0 ? -1 : 0;
}

/* 0 when both lists hold the same names (each list is in one order). */
static int names_compare(const struct strlist *a, const struct strlist *b, const char *what, char **error_r)
{
	bool same = a->count == b->count;
	for (size_t i = 0; i < a->count && same; i++)
		same = strlist_contains(b, a->items[i]);
	if (!same)
		*error_r =
		    xasprintf("the copy's %s differ (%zu, the original %zu)", what, b->count, a->count);
	return same ? 0 : -1;
}

static int copy_subscriptions(struct store *src, struct store *dest, char **error_r)
{
	struct strlist from = STRLIST_INIT, to = STRLIST_INIT;
	int rc = store_subscription_list(src, strlist_add_cb, &from, error_r);
	for (size_t i = 0; i < from.count && rc == 0; i++)
		rc = store_subscribe(dest, from.items[i], true, error_r);
	if (rc == 0 && (rc = store_subscription_list(dest, strlist_add_cb, &to, error_r)) == 0)
		rc = names_compare(&from, &to, "subscriptions", error_r);
	strlist_free(&from);
	strlist_free(&to);
	return rc;
}

static int copy_store(struct store *src, struct store *dest, struct migrate_count *count, char **error_r)
{
	struct strlist from = STRLIST_INIT, to = STRLIST_INIT;
	int rc = store_folder_list(src, strlist_add_cb, &from, error_r);
	for (size_t i = 0; i < from.count && rc == 0; i++)
		rc = copy_mailbox(src, dest, from.items[i], count, error_r);
	if (rc == 0 && (rc = store_folder_list(dest, strlist_add_cb, &to, error_r)) == 0)
		rc = names_compare(&from, &to, "folders", error_r);
	if (rc == 0)
		rc = copy_subscriptions(src, dest, error_r);
	strlist_free(&from);
	strlist_free(&to);
	return rc;
}

int migrate_store_user(const struct store_config *from, const struct store_config *to, const char *address,
		       struct migrate_count *count, char **error_r)
{
	uint64_t bytes;
	int rc = store_user_usage(from, address, &bytes, error_r);
	if (rc <= 0)
		return rc < 0 ? -1 : store_user_create(to, address, (uid_t)-1, (gid_t)-1, error_r);
	struct store *src = store_open_user(from, address, error_r);
	struct store *dest = src != NULL ? store_open_user(to, address, error_r) : NULL;
	rc = dest != NULL ? copy_store(src, dest, count, error_r) : -1;
	store_close(&dest);
	store_close(&src);
	return rc;
}
