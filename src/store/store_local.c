/* The store backend "local": Maildir++ folders plus a per-user SQLite index
   (see store.h for the layout and store_local_*.c for the parts). */
#include "store/store_local_private.h"
#include "lib/log.h"

const struct store_backend store_backend_local = {
    .name = "local",

    .open = store_local_open,
    .close = store_local_close,
    .path = store_local_path,
    .quota_usage = store_local_quota_usage,
    .maildrop_lock = store_local_maildrop_lock,
    .maildrop_unlock = store_local_maildrop_unlock,

    .user_location = store_local_user_location,
    .user_create = store_local_user_create,
    .user_purge = store_local_user_purge,
    .usage = store_local_usage,

    .deliver = store_local_deliver,
    .undeliver = store_local_undeliver,

    .folder_create = store_local_folder_create,
    .folder_delete = store_local_folder_delete,
    .folder_rename = store_local_folder_rename,
    .folder_list = store_local_folder_list,
    .subscribe = store_local_subscribe,
    .subscription_list = store_local_subscription_list,

    .mailbox_open = store_local_mailbox_open,
    .mailbox_open_indexed = store_local_mailbox_open_indexed,
    .mailbox_close = store_local_mailbox_close,
    .mailbox_sync = store_local_mailbox_sync,
    .mailbox_status = store_local_mailbox_status,
    .mailbox_counters = store_local_mailbox_counters,
    .mailbox_list = store_local_mailbox_list,
    .mailbox_changed_since = store_local_mailbox_changed_since,
    .mailbox_expunged_since = store_local_mailbox_expunged_since,
    .mailbox_take_recent = store_local_mailbox_take_recent,
    .watch_open = store_local_watch_open,

    .msg_open = store_local_msg_open,
    .msg_open_uid = store_local_msg_open_uid,
    .msg_set_flags = store_local_msg_set_flags,
    .msg_expunge = store_local_msg_expunge,
    .msg_append_many = store_local_msg_append_many,
    .msg_emailids = store_local_msg_emailids,
    .msg_copy = store_local_msg_copy,

    .cache_prepare = store_local_cache_prepare,
    .cache_get = store_local_cache_get,
    .cache_set = store_local_cache_set,
    .cache_get_range = store_local_cache_get_range,
    .cache_set_header = store_local_cache_set_header,
    .cache_get_header_range = store_local_cache_get_header_range,
    .cache_set_sortkey = store_local_cache_set_sortkey,
    .cache_get_sortkey_range = store_local_cache_get_sortkey_range,
    .cache_begin = store_local_cache_begin,
    .cache_commit = store_local_cache_commit,
};

struct store_local *store_local_cast(struct store *store)
{
	if (store->be != &store_backend_local)
		log_panic("store handle of backend %s given to the local backend", store->be->name);
	return (struct store_local *)store;
}

struct store_local_mailbox *store_local_mailbox_cast(struct store_mailbox *box)
{
	(void)store_local_cast(box->store);
	return (struct store_local_mailbox *)box;
}
