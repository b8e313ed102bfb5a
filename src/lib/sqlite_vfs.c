#include "lib/sqlite_vfs.h"
#include "lib/log.h"

#include <pthread.h>
#include <string.h>
#include <sqlite3.h>

static sqlite3_vfs relative_vfs;
static sqlite3_vfs *unix_vfs;

static int relative_full_pathname(sqlite3_vfs *vfs, const char *name, int size, char *out)
{
	if (name[0] == '/')
		return unix_vfs->xFullPathname(unix_vfs, name, size, out);
	size_t len = strlen(name);
	if (size < 1 || len >= (size_t)size)
		return SQLITE_CANTOPEN;
	memcpy(out, name, len + 1);
	return SQLITE_OK;
}

static void register_vfs(void)
{
	unix_vfs = sqlite3_vfs_find(NULL);
	if (unix_vfs == NULL)
		log_fatal("SQLite has no default VFS");
	relative_vfs = *unix_vfs;
	relative_vfs.pNext = NULL;
	relative_vfs.zName = "postoffice-relative";
	relative_vfs.xFullPathname = relative_full_pathname;
	if (sqlite3_vfs_register(&relative_vfs, 1) != SQLITE_OK)
		log_fatal("sqlite3_vfs_register() failed");
}

void sqlite_vfs_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_vfs);
}
