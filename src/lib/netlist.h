#ifndef LIB_NETLIST_H
#define LIB_NETLIST_H
/* A list of IP networks from the configuration, "127.0.0.1, ::1,
   10.0.0.0/8, 2001:db8::/32": addresses (a whole-address prefix) or
   address/prefix-length, separated by commas or spaces.  Used for the
   load balancers trusted to send a PROXY protocol header. */
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct net_prefix {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network byte order; 4 bytes for AF_INET */
	int bits;               /* prefix length */
};

struct netlist {
	char *text; /* as written, for config_write_effective() */
	struct net_prefix *nets;
	size_t count; /* 0 for an empty list */
};

/* Parses text into *list_r.  0, or -1 with *error_r (caller frees) naming
   the entry that is not an address or has host bits past its prefix. */
int netlist_parse(const char *text, struct netlist *list_r, char **error_r);
/* True when sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts
   as its IPv4 address) lies in one of the networks. */
bool netlist_match(const struct netlist *list, const struct sockaddr *sa);
void netlist_free(struct netlist *list);
#endif
