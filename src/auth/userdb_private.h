#ifndef AUTH_USERDB_PRIVATE_H
#define AUTH_USERDB_PRIVATE_H
/* Internals shared by the backend-neutral files of the user database
   (userdb.c, userdb_alias.c, userdb_name.c) and its backends. */
#include "auth/userdb.h"

/* The domain of a normalised address: after its last '@' (pointing into
   it; the end of the string when there is none). */
const char *userdb_address_domain(const char *address);
#endif
