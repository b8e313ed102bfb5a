/* The PROXY protocol header (proxy_proto.h).  Section numbers are those
   of haproxy's proxy-protocol.txt. */
#include "lib/proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

/* Section 2.2: "\r\n\r\n\0\r\nQUIT\n", which no v1 line and no text
   protocol can begin with. */
static const unsigned char v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char v1_prefix[] = "PROXY ";
#define V1_PREFIX_LEN (sizeof(v1_prefix) - 1)

/* v2 byte 13: version (high nibble, 2) and command (low nibble). */
#define V2_VERSION 0x20
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
/* v2 byte 14: address family (high nibble) and transport (low nibble). */
#define V2_AF_UNSPEC 0x0
#define V2_AF_INET 0x1
#define V2_AF_INET6 0x2
#define V2_AF_UNIX 0x3
#define V2_TRANSPORT_STREAM 0x1
#define V2_TRANSPORT_DGRAM 0x2
/* Section 2.2: the address blocks of TCP over IPv4 and IPv6. */
#define V2_ADDR_INET_LEN 12
#define V2_ADDR_INET6_LEN 36

static int fail(const char **error_r, const char *error)
{
	*error_r = error;
	return -1;
}

/* ---- v1 (section 2.1) ---- */

/* A decimal port, 0..65535, without leading zeros. */
static int v1_port(const char *s, size_t len, in_port_t *port_r)
{
	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -1;
	unsigned long n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (n > 65535)
		return -1;
	*port_r = htons((in_port_t)n);
	return 0;
}

/* One address and its port into ss, of the line's family. */
static int v1_endpoint(int family, const char *addr, size_t addr_len, const char *port, size_t port_len,
		       struct sockaddr_storage *ss, socklen_t *len_r)
{
	char text[INET6_ADDRSTRLEN];
	if (addr_len == 0 || addr_len >= sizeof(text))
		return -1;
	memcpy(text, addr, addr_len);
	text[addr_len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		*len_r = sizeof(*sin);
		if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
			return -1;
		return v1_port(port, port_len, &sin->sin_port);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	*len_r = sizeof(*sin6);
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
		return -1;
	return v1_port(port, port_len, &sin6->sin6_port);
}

/* The line without "PROXY " and CRLF: "TCP4 SRC DST SPORT DPORT",
   "TCP6 ..." or "UNKNOWN" with anything after a space. */
static int v1_fields(const char *p, size_t len, struct proxy_proto_header *hdr, const char **error_r)
{
	if (len >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (len == 7 || p[7] == ' '))
		return 0;
	int family;
	if (len >= 5 && memcmp(p, "TCP4 ", 5) == 0)
		family = AF_INET;
	else if (len >= 5 && memcmp(p, "TCP6 ", 5) == 0)
		family = AF_INET6;
	else
		return fail(error_r, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	/* Four fields, each after exactly one space. */
	const char *field[4];
	size_t field_len[4];
	const char *end = p + len;
	p += 5;
	for (int i = 0; i < 4; i++) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *stop = i < 3 ? sp : end;
		if (stop == NULL || (i == 3 && sp != NULL))
			return fail(error_r, "v1: expected source, destination and two ports");
		field[i] = p;
		field_len[i] = (size_t)(stop - p);
		p = stop + 1;
	}
	hdr->proxied = true;
	if (v1_endpoint(family, field[0], field_len[0], field[2], field_len[2], &hdr->src, &hdr->src_len) <
		0 ||
	    v1_endpoint(family, field[1], field_len[1], field[3], field_len[3], &hdr->dst, &hdr->dst_len) < 0)
		return fail(error_r, "v1: bad address or port");
	return 0;
}

static int v1_parse(const unsigned char *data, size_t len, struct proxy_proto_header *hdr, size_t *size_r,
		    const char **error_r)
{
	size_t n = len < V1_PREFIX_LEN ? len : V1_PREFIX_LEN;
	if (memcmp(data, v1_prefix, n) != 0)
		return fail(error_r, "not a PROXY protocol header");
	/* "the receiver must not try to read more than 107 bytes" */
	size_t limit = len < PROXY_PROTO_V1_MAX ? len : PROXY_PROTO_V1_MAX;
	for (size_t i = V1_PREFIX_LEN; i < limit; i++) {
		if (data[i] == '\n')
			return fail(error_r, "v1: line ends without CR");
		if (data[i] == '\r') {
			if (i + 1 >= PROXY_PROTO_V1_MAX)
				break;
			if (i + 1 == len)
				return 0;
			if (data[i + 1] != '\n')
				return fail(error_r, "v1: CR without LF");
			hdr->version = 1;
			if (v1_fields((const char *)data + V1_PREFIX_LEN, i - V1_PREFIX_LEN, hdr, error_r) <
			    0)
				return -1;
			*size_r = i + 2;
			return 1;
		}
		if (data[i] < 0x20 || data[i] > 0x7e)
			return fail(error_r, "v1: control or non-ASCII byte");
	}
	if (len >= PROXY_PROTO_V1_MAX)
		return fail(error_r, "v1: no CRLF within 107 bytes");
	return 0;
}

/* ---- v2 (section 2.2) ---- */

/* The TLVs after the addresses: type, 16-bit length, value; unknown
   ones are skipped (section 2.2.7), but none may overrun the header. */
static int v2_tlvs(const unsigned char *p, size_t len, size_t *count_r, const char **error_r)
{
	size_t count = 0;
	while (len > 0) {
		if (len < 3)
			return fail(error_r, "v2: truncated TLV");
		size_t vlen = (size_t)p[1] << 8 | p[2];
		if (vlen > len - 3)
			return fail(error_r, "v2: TLV runs past the header");
		p += 3 + vlen;
		len -= 3 + vlen;
		count++;
	}
	*count_r = count;
	return 0;
}

/* The address block of TCP over IPv4 or IPv6: source address, destination
   address, source port, destination port, in network byte order. */
static void v2_addresses(int af, const unsigned char *p, struct proxy_proto_header *hdr)
{
	memset(&hdr->src, 0, sizeof(hdr->src));
	memset(&hdr->dst, 0, sizeof(hdr->dst));
	if (af == V2_AF_INET) {
		struct sockaddr_in *src = (struct sockaddr_in *)&hdr->src,
				   *dst = (struct sockaddr_in *)&hdr->dst;
		src->sin_family = dst->sin_family = AF_INET;
		memcpy(&src->sin_addr, p, 4);
		memcpy(&dst->sin_addr, p + 4, 4);
		memcpy(&src->sin_port, p + 8, 2);
		memcpy(&dst->sin_port, p + 10, 2);
		hdr->src_len = hdr->dst_len = sizeof(struct sockaddr_in);
		return;
	}
	struct sockaddr_in6 *src = (struct sockaddr_in6 *)&hdr->src, *dst = (struct sockaddr_in6 *)&hdr->dst;
	src->sin6_family = dst->sin6_family = AF_INET6;
	memcpy(&src->sin6_addr, p, 16);
	memcpy(&dst->sin6_addr, p + 16, 16);
	memcpy(&src->sin6_port, p + 32, 2);
	memcpy(&dst->sin6_port, p + 34, 2);
	hdr->src_len = hdr->dst_len = sizeof(struct sockaddr_in6);
}

/* The fixed part's bytes 13 and 14, checked as soon as they arrive. */
static int v2_check_fixed(const unsigned char *data, size_t len, const char **error_r)
{
	if (len > 12 && (data[12] & 0xF0) != V2_VERSION)
		return fail(error_r, "v2: unsupported version");
	if (len > 12 && (data[12] & 0x0F) > V2_CMD_PROXY)
		return fail(error_r, "v2: unknown command");
	if (len > 13 && ((data[13] >> 4) > V2_AF_UNIX || (data[13] & 0x0F) > V2_TRANSPORT_DGRAM))
		return fail(error_r, "v2: unknown address family or transport");
	return 0;
}

static int v2_parse(const unsigned char *data, size_t len, struct proxy_proto_header *hdr, size_t *size_r,
		    const char **error_r)
{
	size_t n = len < sizeof(v2_signature) ? len : sizeof(v2_signature);
	if (memcmp(data, v2_signature, n) != 0)
		return fail(error_r, "not a PROXY protocol header");
	if (v2_check_fixed(data, len, error_r) < 0)
		return -1;
	if (len < PROXY_PROTO_V2_FIXED)
		return 0;
	size_t body = (size_t)data[14] << 8 | data[15];
	if (PROXY_PROTO_V2_FIXED + body > PROXY_PROTO_MAX)
		return fail(error_r, "v2: header longer than we accept");
	if (len < PROXY_PROTO_V2_FIXED + body)
		return 0;
	hdr->version = 2;
	*size_r = PROXY_PROTO_V2_FIXED + body;
	int af = data[13] >> 4, transport = data[13] & 0x0F;
	/* LOCAL: "the receiver must ... use the real connection endpoints and
	   discard the protocol block including the family" (2.2); so for
	   families that are not IP, which the receiver may accept that way. */
	if ((data[12] & 0x0F) == V2_CMD_LOCAL || af == V2_AF_UNSPEC || af == V2_AF_UNIX)
		return 1;
	if (transport != V2_TRANSPORT_STREAM)
		return fail(error_r, "v2: not a TCP connection");
	size_t addr_len = af == V2_AF_INET ? V2_ADDR_INET_LEN : V2_ADDR_INET6_LEN;
	if (body < addr_len)
		return fail(error_r, "v2: address block shorter than its family needs");
	const unsigned char *p = data + PROXY_PROTO_V2_FIXED;
	if (v2_tlvs(p + addr_len, body - addr_len, &hdr->tlvs, error_r) < 0)
		return -1;
	v2_addresses(af, p, hdr);
	hdr->proxied = true;
	return 1;
}

int proxy_proto_parse(const unsigned char *data, size_t len, struct proxy_proto_header *hdr_r, size_t *size_r,
		      const char **error_r)
{
	memset(hdr_r, 0, sizeof(*hdr_r));
	*size_r = 0;
	if (len == 0)
		return 0;
	if (data[0] == v2_signature[0])
		return v2_parse(data, len, hdr_r, size_r, error_r);
	return v1_parse(data, len, hdr_r, size_r, error_r);
}
