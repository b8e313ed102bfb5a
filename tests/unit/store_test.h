#ifndef TESTS_UNIT_STORE_TEST_H
#define TESTS_UNIT_STORE_TEST_H
/* Helpers of the store tests (test_backend_store.c, test_store_pg.c,
   test_backend_import.c): each fails the test when the store fails.
   Include after <cmocka.h>. */
#include "store/store.h"
#include "lib/xalloc.h"

#include <unistd.h>

/* The mailbox name of store, which must exist. */
static inline struct store_mailbox *store_test_open_mailbox(struct store *store, const char *name)
{
	struct store_mailbox *mbox = NULL;
	char *error = NULL;
	if (store_mailbox_open(store, name, &mbox, &error) != 1)
		fail_msg("store_mailbox_open(%s): %s", name, error != NULL ? error : "missing");
	return mbox;
}

/* The content of message uid (at most 4 KiB), read through the store. */
static inline char *store_test_read_uid(struct store_mailbox *mbox, uint32_t uid)
{
	int fd;
	char *error = NULL;
	if (store_msg_open_uid(mbox, uid, &fd, &error) != 1)
		fail_msg("store_msg_open_uid(%u): %s", uid, error != NULL ? error : "gone");
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return xstrdup(buf);
}
#endif
