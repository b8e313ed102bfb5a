#ifndef LIB_HASH_H
#define LIB_HASH_H
/* Keyed hashing for in-memory tables whose keys come from clients or from
   mail (message IDs, subjects, client addresses).  SipHash-1-3 under a key
   drawn at random once per process: nobody outside can compute which keys
   collide, so nobody can make a table degrade into linear scans. */
#include <stddef.h>
#include <stdint.h>

uint64_t hash_mem(const void *data, size_t len);
/* A NUL-terminated string. */
uint64_t hash_str(const char *s);
/* A string with ASCII letters folded to lower case: keys that strcasecmp()
   calls equal hash alike. */
uint64_t hash_str_icase(const char *s);
#endif
