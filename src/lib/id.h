#ifndef LIB_ID_H
#define LIB_ID_H
/* Unique ids for sessions, messages and queue entries: letters and digits
   only, so they are safe in file names (the spool's ID.env, ID.msg) and
   log lines. */

/* Room for an id and its NUL. */
#define ID_SIZE 24

/* Writes a new id, unique on this host: the time in microseconds, the
   process id and a per-process counter, in base 36 (digits and capital
   letters, 19 characters until the year 2084).  Ids of the same length
   sort by creation time.  Safe to call from any thread. */
void id_new(char out[ID_SIZE]);
#endif
