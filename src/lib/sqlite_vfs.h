#ifndef LIB_SQLITE_VFS_H
#define LIB_SQLITE_VFS_H
/* SQLite's unix VFS turns a relative database name into an absolute one
   (getcwd() + name) before it opens the file.  The server works inside its
   data directory, which it entered as root, and its unprivileged user may
   not be allowed to pass through the directories above (a checkout under
   /root, mode 0700): the absolute name then cannot be opened although the
   relative one can.  sqlite_vfs_init() makes the default VFS one that keeps
   relative names as they are (the process never changes directory after
   it opened a database).  Safe to call more than once, from any thread. */
void sqlite_vfs_init(void);
#endif
