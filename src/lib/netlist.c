/* Lists of IP networks (netlist.h). */
#include "lib/netlist.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* "ADDR" or "ADDR/BITS" into *net; -1 with *error_r. */
static int net_parse(const char *tok, struct net_prefix *net, char **error_r)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(tok, '/');
	size_t len = slash != NULL ? (size_t)(slash - tok) : strlen(tok);
	memset(net, 0, sizeof(*net));
	if (len < sizeof(addr)) {
		memcpy(addr, tok, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET, addr, net->addr) == 1)
			net->family = AF_INET;
		else if (inet_pton(AF_INET6, addr, net->addr) == 1)
			net->family = AF_INET6;
	}
	if (net->family == 0) {
		*error_r = xasprintf("'%s' is not an IP address or network (like 10.0.0.0/8)", tok);
		return -1;
	}
	int max = net->family == AF_INET ? 32 : 128;
	net->bits = max;
	if (slash != NULL) {
		char *end;
		errno = 0;
		long n = strtol(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || errno != 0 || n > max) {
			*error_r = xasprintf("'%s': prefix length must be 0 to %d", tok, max);
			return -1;
		}
		net->bits = (int)n;
	}
	for (int bit = net->bits; bit < max; bit++)
		if (net->addr[bit / 8] & (0x80 >> (bit % 8))) {
			*error_r = xasprintf("'%s' has address bits set past its prefix length", tok);
			return -1;
		}
	return 0;
}

int netlist_parse(const char *text, struct netlist *list_r, char **error_r)
{
	struct netlist list = {.text = xstrdup(text)};
	char *copy = xstrdup(text), *save = NULL;
	for (char *tok = strtok_r(copy, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save)) {
		struct net_prefix net;
		if (net_parse(tok, &net, error_r) < 0) {
			free(copy);
			netlist_free(&list);
			return -1;
		}
		list.nets = xreallocarray(list.nets, list.count + 1, sizeof(*list.nets));
		list.nets[list.count++] = net;
	}
	free(copy);
	*list_r = list;
	return 0;
}

static bool prefix_match(const struct net_prefix *net, const unsigned char *addr)
{
	int whole = net->bits / 8, rest = net->bits % 8;
	if (memcmp(net->addr, addr, (size_t)whole) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xFF << (8 - rest));
	return (net->addr[whole] & mask) == (addr[whole] & mask);
}

bool netlist_match(const struct netlist *list, const struct sockaddr *sa)
{
	int family = sa->sa_family;
	const unsigned char *addr;
	if (family == AF_INET) {
		addr = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		addr = a6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			addr += 12;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < list->count; i++)
		if (list->nets[i].family == family && prefix_match(&list->nets[i], addr))
			return true;
	return false;
}

void netlist_free(struct netlist *list)
{
	free(list->text);
	free(list->nets);
	memset(list, 0, sizeof(*list));
}
