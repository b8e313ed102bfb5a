/* The local backend: watching a mailbox for changes (IMAP IDLE, inotify on
   new/ and cur/), and the POP3 maildrop lock (flock on MAILDIR/pop3.lock). */
#include "store/store_local_private.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <unistd.h>

int store_local_watch_open(struct store_mailbox *box, char **error_r)
{
	struct store_local_mailbox *mbox = store_local_mailbox_cast(box);
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("inotify_init1() failed: %s", strerror(errno));
		return -1;
	}
	static const char *const subdirs[] = {"new", "cur"};
	const uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR;
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		char *path = xasprintf("%s/%s", mbox->dir, subdirs[i]);
		int wd = inotify_add_watch(fd, path, mask);
		if (wd < 0) {
			*error_r = xasprintf("inotify_add_watch(%s) failed: %s", path, strerror(errno));
			free(path);
			close(fd);
			return -1;
		}
		free(path);
	}
	return fd;
}

void store_watch_drain(int fd)
{
	char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(fd, events, sizeof(events)) > 0)
		;
}

int store_local_maildrop_lock(struct store *base, char **error_r)
{
	struct store_local *store = store_local_cast(base);
	if (store->maildrop_fd >= 0)
		return 1;
	char *path = xasprintf("%s/pop3.lock", store->path);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	/* flock() locks belong to the open file description: a second handle
	   in the same process conflicts too, and the lock dies with the
	   process. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		close(fd);
		if (err == EWOULDBLOCK) {
			free(path);
			return 0;
		}
		*error_r = xasprintf("flock(%s) failed: %s", path, strerror(err));
		free(path);
		return -1;
	}
	free(path);
	store->maildrop_fd = fd;
	return 1;
}

void store_local_maildrop_unlock(struct store *base)
{
	struct store_local *store = store_local_cast(base);
	if (store->maildrop_fd >= 0)
		close(store->maildrop_fd);
	store->maildrop_fd = -1;
}
