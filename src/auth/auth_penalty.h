#ifndef AUTH_AUTH_PENALTY_H
#define AUTH_AUTH_PENALTY_H
/* Password-guessing penalties shared by every worker process, in the spirit
   of Postfix's anvil and Dovecot's auth penalty.  The supervisor creates one
   table in an anonymous shared mapping before it forks; the workers inherit
   it.  It counts failed logins per client IP (an IPv6 client by its /64)
   and per account, and remembers the (account, IP) pairs that logged in.

   Policy (numbers from struct auth_penalty_policy, [limits] auth_penalty_*):
   - A failure further than `window` from the key's previous one (or from the
     end of its lockout) starts the count over.
   - Each failure from an IP after the third is answered later than the one
     before: base_delay doubled per failure, at most max_delay.
   - The ip_failures-th failure from one IP locks that IP out for `lockout`:
     every login from it is refused without a password check, whatever the
     account.  When the lockout ends the IP gets one attempt; failing it
     locks it again (a quiet window later the count is gone).
   - The account_failures-th failure on one account, from all IPs together,
     locks the account out for `lockout`, but only for IPs that have not
     logged in to it before (trusted pairs, remembered for 30 days), so an
     attack from elsewhere does not lock the owner out.
   - A success clears the IP's count and trusts the pair.
   - Once an IP or an account has a failure on record, attempts whose
     password check is still running count against its limit too (unless
     the pair is trusted), so parallel connections cannot run more checks
     than the limit between them.  Before any failure they do not count: a
     burst of good logins from one address (a webmail front end, many
     users behind one NAT, a client opening several connections for a new
     account) is not refused; a guesser's first burst is bounded by its
     connections (max_connections_per_ip), the rest by the limit.

   The table has a fixed size set at creation, split into three regions (IPs
   half, accounts and trusted pairs a quarter each) of 8-way buckets chosen
   by a keyed hash (a random key per table), so a flood of one kind never
   evicts another kind.  A new key takes a free or expired slot in its
   bucket, else the least useful one (fewest failures, then the oldest);
   a lockout is the last thing evicted.  Every operation looks at a fixed
   number of slots under one process-shared robust mutex: a worker killed
   while holding it costs nothing but that (the next locker repairs it). */
#include <stdbool.h>
#include <stdint.h>

struct auth_penalty;

struct auth_penalty_policy {
	int ip_failures;      /* IP lockout threshold; 0 disables it */
	int account_failures; /* account lockout threshold; 0 disables it */
	int64_t window_ms;
	int64_t lockout_ms;
	int64_t base_delay_ms; /* [limits] auth_failure_delay */
	int64_t max_delay_ms;
};

enum auth_penalty_verdict {
	AUTH_PENALTY_ALLOW,
	AUTH_PENALTY_REFUSE_IP,      /* the IP is locked out (or its limit is used up by checks in flight) */
	AUTH_PENALTY_REFUSE_ACCOUNT, /* the account is locked out for untrusted IPs */
	AUTH_PENALTY_UNAVAILABLE,    /* not asked: the user database failed (auth_check.h) */
};

/* What auth_penalty_record() did, for the log. */
#define AUTH_PENALTY_LOCKED_IP 0x1
#define AUTH_PENALTY_LOCKED_ACCOUNT 0x2

/* The smallest table: one bucket per region and then some. */
#define AUTH_PENALTY_MIN_ENTRIES 64

/* Creates a table of about `entries` slots (at least AUTH_PENALTY_MIN_ENTRIES)
   in a MAP_SHARED|MAP_ANONYMOUS mapping that children forked afterwards
   share.  Returns NULL with *error_r (caller frees) when mmap fails. */
struct auth_penalty *auth_penalty_create(unsigned int entries, char **error_r);
/* Unmaps the table (in this process only). */
void auth_penalty_destroy(struct auth_penalty **table);

/* CLOCK_MONOTONIC in milliseconds: the same clock in every process. */
int64_t auth_penalty_now(void);

/* Called before a password check of `account` (the normalised address, or
   the name as given when there is no such user) from the client at `ip`
   (text, as inet_ntop writes it).  ALLOW: check the password, then call
   auth_penalty_record() exactly once.  REFUSE_*: do not check the password
   and do not record; answer with a temporary failure.  Either way
   *delay_ms_r is how long to wait before answering a failure or refusal.
   Fails open (ALLOW) if the table's lock cannot be taken. */
enum auth_penalty_verdict auth_penalty_check(struct auth_penalty *table,
					     const struct auth_penalty_policy *policy, const char *ip,
					     const char *account, int64_t now_ms, int *delay_ms_r);

/* "allow", "ip-locked", "account-locked": for the log. */
const char *auth_penalty_verdict_name(enum auth_penalty_verdict verdict);

/* Records the outcome of a check that auth_penalty_check() allowed.  Returns
   AUTH_PENALTY_LOCKED_* bits for the lockouts this failure started. */
int auth_penalty_record(struct auth_penalty *table, const struct auth_penalty_policy *policy, const char *ip,
			const char *account, bool success, int64_t now_ms);
/* Takes back a check that auth_penalty_check() allowed when the login is
   refused after all, unchecked (by the counters of the other nodes,
   auth/auth_penalty_pg.h): its check in flight no longer counts, and
   nothing else is recorded.  Call it instead of auth_penalty_record(). */
void auth_penalty_cancel(struct auth_penalty *table, const struct auth_penalty_policy *policy, const char *ip,
			 const char *account, int64_t now_ms);

/* The delay before answering a failure or refusal of a client with `used`
   failures and checks in flight on record: base_delay, doubled for each
   one past the free ones, at most max_delay. */
int auth_penalty_delay(const struct auth_penalty_policy *policy, int used);

/* The name other machines count a client by: an IPv4 address as text, or
   the /64 of an IPv6 one ("2001:db8:1:2::/64"), as this table does; text
   that is no address stays as it is, cut at 15 bytes. */
#define AUTH_PENALTY_IP_KEY_MAX 64
void auth_penalty_ip_key(const char *ip, char out[AUTH_PENALTY_IP_KEY_MAX]);
#endif
