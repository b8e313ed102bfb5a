/* libFuzzer target for the PROXY protocol header parser
   (src/lib/proxy_proto.c): any bytes as what a balancer sent first.
   Checks that
   - a complete header lies within the input and is as long as its
     version allows (v1 at most 107 bytes with its CRLF, v2 at most
     PROXY_PROTO_MAX), with addresses of a family it can carry;
   - the answer does not depend on what follows the header, and every
     shorter prefix of a header "needs more bytes" (so a reader may take
     all of a prefix from the socket);
   - a failure comes with an error text. */
#include "lib/proxy_proto.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The parser on a private copy of n bytes, so that ASan sees a read past them. */
static int parse(const uint8_t *data, size_t n, struct proxy_proto_header *hdr, size_t *size_r)
{
	unsigned char *copy = malloc(n ? n : 1);
	memcpy(copy, data, n);
	const char *error = NULL;
	int rc = proxy_proto_parse(copy, n, hdr, size_r, &error);
	if (rc < 0 && (error == NULL || error[0] == '\0'))
		abort();
	if (rc >= 0 && error != NULL)
		abort();
	free(copy);
	return rc;
}

static void check_addr(const struct sockaddr_storage *ss, socklen_t len)
{
	if (!((ss->ss_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
	      (ss->ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6))))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * PROXY_PROTO_MAX)
		return 0;
	struct proxy_proto_header hdr;
	size_t hsize;
	int rc = parse(data, size, &hdr, &hsize);
	if (rc != 1)
		return 0;
	if (hsize == 0 || hsize > size || (hdr.version != 1 && hdr.version != 2))
		abort();
	if (hdr.version == 1 &&
	    (hsize > PROXY_PROTO_V1_MAX || data[hsize - 2] != '\r' || data[hsize - 1] != '\n'))
		abort();
	if (hdr.version == 2 && (hsize < PROXY_PROTO_V2_FIXED || hsize > PROXY_PROTO_MAX))
		abort();
	if (hdr.proxied) {
		check_addr(&hdr.src, hdr.src_len);
		check_addr(&hdr.dst, hdr.dst_len);
		if (hdr.src.ss_family != hdr.dst.ss_family)
			abort();
	}
	/* The header alone reads the same; a prefix needs more. */
	struct proxy_proto_header again;
	size_t again_size;
	if (parse(data, hsize, &again, &again_size) != 1 || again_size != hsize ||
	    again.proxied != hdr.proxied || again.tlvs != hdr.tlvs ||
	    memcmp(&again.src, &hdr.src, sizeof(hdr.src)) != 0)
		abort();
	if (parse(data, hsize - 1, &again, &again_size) != 0)
		abort();
	return 0;
}
