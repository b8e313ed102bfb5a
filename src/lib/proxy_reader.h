#ifndef LIB_PROXY_READER_H
#define LIB_PROXY_READER_H
/* Reads a PROXY protocol header (lib/proxy_proto.h) off a socket that an
   io object will read afterwards: it takes exactly the header's bytes out
   of the kernel (looking ahead with MSG_PEEK), so that what the client
   sent after it, a command or a TLS ClientHello, stays for the protocol.
   Bounded: the header must arrive within the timeout and be at most
   PROXY_PROTO_MAX bytes. */
#include "lib/proxy_proto.h"

struct event_base;
struct proxy_reader;

/* Called once: with the header (error NULL), or with hdr NULL and why not
   (malformed header, the connection closed or failed, the timeout).  Both
   are valid until the callback returns or frees the reader, which it
   may do. */
typedef void proxy_reader_callback(const struct proxy_proto_header *hdr, const char *error, void *ctx);

/* Starts reading from fd (a connected, non-blocking socket the caller
   keeps owning and does not read meanwhile) on base. */
struct proxy_reader *proxy_reader_new(struct event_base *base, int fd, int timeout_seconds,
				      proxy_reader_callback *cb, void *ctx);
void proxy_reader_free(struct proxy_reader **reader);
#endif
