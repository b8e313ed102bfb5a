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

/* A name for data that every process and release computes alike (unlike
   the keyed hashes above): prefix, then 2 * bytes hex digits of data's
   SHA-256 (bytes <= 32); out holds 2 + 2 * bytes.  For ids derived from
   what never changes (RFC 8474 object ids, POP3 UIDLs of odd names). */
void hash_digest_id(char *out, char prefix, const void *data, size_t len, size_t bytes);
#endif
