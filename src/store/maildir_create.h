#ifndef STORE_MAILDIR_CREATE_H
#define STORE_MAILDIR_CREATE_H
/* Creates a user's Maildir++ layout: PATH/{cur,new,tmp} and the standard
   folders .Sent .Drafts .Trash .Junk .Archive, each with cur/new/tmp and an
   empty "maildirfolder" file (the Maildir++ marker Dovecot and Courier
   expect).  Missing parents are created (mode 0700).  Idempotent: existing
   parts are left alone and missing ones added.  New directory entries are
   fsynced, so mail delivered right after is not lost with its directory.
   Returns 0, or -1 with *error_r (caller frees). */
int maildir_create(const char *path, char **error_r);
/* The same for the Maildir name in the directory dirfd (dir names it in
   messages), for a caller running as root in a tree that the server's user
   can write: no missing parent is made, and no directory of the layout is
   entered through a symbolic link ("... is a symbolic link, not a
   directory"); an existing maildirfolder marker is left as it is. */
int maildir_create_at(int dirfd, const char *dir, const char *name, char **error_r);

/* The folders made for every new user (Maildir++ names, without the dot). */
extern const char *const maildir_default_folders[];
#define MAILDIR_DEFAULT_FOLDER_COUNT 5
#endif
