#ifndef LIB_PROXY_PROTO_H
#define LIB_PROXY_PROTO_H
/* The PROXY protocol header a TCP load balancer (haproxy) sends before
   the client's bytes, so that the server learns the client's address
   (https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt).  Both
   versions: v1, one text line "PROXY TCP4|TCP6|UNKNOWN ...\r\n" of at most
   107 bytes (section 2.1), and v2, a 16-byte binary header followed by the
   addresses and optional TLVs (section 2.2).  The parser is incremental:
   it takes whatever has arrived and says whether the header is complete,
   needs more bytes or cannot be one, looking at no byte past the header. */
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Section 2.1: the longest v1 line, "PROXY TCP6 <39> <39> 65535 65535\r\n". */
#define PROXY_PROTO_V1_MAX 107
/* Section 2.2: the fixed part of a v2 header. */
#define PROXY_PROTO_V2_FIXED 16
/* Our bound on a whole v2 header: the addresses (216 bytes at most, for
   AF_UNIX) and TLVs.  Balancers send a few dozen bytes of TLVs; the
   16-bit length field would allow 64 KiB. */
#define PROXY_PROTO_MAX 1024

struct proxy_proto_header {
	int version; /* 1 or 2 */
	/* true when the header carries the client's TCP addresses; false for
	   a v2 LOCAL command (the balancer's own health check), v1 UNKNOWN
	   and v2 families other than TCP over IPv4/IPv6: the connection's
	   own endpoints stand (sections 2.1 and 2.2) */
	bool proxied;
	struct sockaddr_storage src; /* the client, as the balancer saw it */
	socklen_t src_len;
	struct sockaddr_storage dst; /* the address the client connected to */
	socklen_t dst_len;
	size_t tlvs; /* v2 TLVs found (and skipped) after the addresses */
};

/* Parses the header at the start of data (len bytes received so far).
   Returns 1 with *hdr_r and the header's length in *size_r (the bytes
   after it belong to the protocol), 0 when data is a valid beginning that
   needs more bytes (every byte of it then belongs to the header), or -1
   with a static *error_r when data cannot begin a valid header (the
   caller closes the connection: section 2 says a receiver must not guess). */
int proxy_proto_parse(const unsigned char *data, size_t len, struct proxy_proto_header *hdr_r, size_t *size_r,
		      const char **error_r);
#endif
