/* Unit tests for the PROXY protocol header (src/lib/proxy_proto.c), its
   socket reader (src/lib/proxy_reader.c) and the trusted-network lists
   (src/lib/netlist.c): v1 and v2, IPv4 and IPv6, LOCAL and UNKNOWN, TLVs,
   malformed headers, and input arriving in pieces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/config.h"
#include "lib/netlist.h"
#include "lib/proxy_proto.h"
#include "lib/proxy_reader.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <event2/event.h>

#define SIG "\r\n\r\n\0\r\nQUIT\n"
#define X10 "xxxxxxxxxx"
#define X91 X10 X10 X10 X10 X10 X10 X10 X10 X10 "x"
#define X92 X91 "x"
#define X93 X92 "x"

struct pp_case {
	const char *name;
	const char *data;
	size_t len;        /* 0: strlen(data) */
	int rc;            /* 1 (complete), 0 (needs more) or -1 */
	int version;       /* rc 1 */
	bool proxied;      /* rc 1 */
	const char *src;   /* "ip port" when proxied */
	const char *dst;   /* "ip port" when proxied */
	size_t tlvs;       /* rc 1, v2 */
	const char *error; /* rc -1: a substring of the error */
};

#define V1(n, text, s, d)                                                                                    \
	{                                                                                                    \
		n, text, 0, 1, 1, true, s, d, 0, NULL                                                        \
	}
#define V1_KEEP(n, text)                                                                                     \
	{                                                                                                    \
		n, text, 0, 1, 1, false, NULL, NULL, 0, NULL                                                 \
	}
#define V2(n, bytes, s, d, t)                                                                                \
	{                                                                                                    \
		n, bytes, sizeof(bytes) - 1, 1, 2, true, s, d, t, NULL                                       \
	}
#define V2_KEEP(n, bytes)                                                                                    \
	{                                                                                                    \
		n, bytes, sizeof(bytes) - 1, 1, 2, false, NULL, NULL, 0, NULL                                \
	}
#define BAD(n, text, e)                                                                                      \
	{                                                                                                    \
		n, text, 0, -1, 0, false, NULL, NULL, 0, e                                                   \
	}
#define BAD2(n, bytes, e)                                                                                    \
	{                                                                                                    \
		n, bytes, sizeof(bytes) - 1, -1, 0, false, NULL, NULL, 0, e                                  \
	}
#define MORE(n, text)                                                                                        \
	{                                                                                                    \
		n, text, 0, 0, 0, false, NULL, NULL, 0, NULL                                                 \
	}
#define MORE2(n, bytes)                                                                                      \
	{                                                                                                    \
		n, bytes, sizeof(bytes) - 1, 0, 0, false, NULL, NULL, 0, NULL                                \
	}

/* v2 over IPv4: 192.0.2.7:40000 -> 198.51.100.1:25 */
#define V4_ADDRS "\xc0\x00\x02\x07\xc6\x33\x64\x01\x9c\x40\x00\x19"
/* v2 over IPv6: 2001:db8::7:40000 -> 2001:db8::1:143 */
#define V6_ADDRS                                                                                             \
	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07"                                                         \
	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"                                                         \
	"\x9c\x40\x00\x8f"

static const struct pp_case cases[] = {
    /* v1 (section 2.1) */
    V1("v1 tcp4", "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n", "192.0.2.7 40000", "198.51.100.1 25"),
    V1("v1 tcp6", "PROXY TCP6 2001:db8::7 2001:db8::1 40000 143\r\n", "2001:db8::7 40000", "2001:db8::1 143"),
    V1("v1 ports 0 and 65535", "PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", "1.2.3.4 0", "5.6.7.8 65535"),
    V1("v1 longest tcp6 line",
       "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 "
       "65535\r\n",
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535"),
    V1_KEEP("v1 unknown", "PROXY UNKNOWN\r\n"),
    V1_KEEP("v1 unknown with addresses", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"),
    BAD("v1 lowercase", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY"),
    BAD("v1 unknown protocol", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "not TCP4"),
    BAD("v1 UNKNOWNX", "PROXY UNKNOWNX\r\n", "not TCP4"),
    BAD("v1 LF only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "without CR"),
    BAD("v1 CR without LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR without LF"),
    BAD("v1 tcp4 with v6 address", "PROXY TCP4 ::1 ::1 1 2\r\n", "bad address"),
    BAD("v1 tcp6 with v4 address", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "bad address"),
    BAD("v1 bad address", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "bad address"),
    BAD("v1 short address", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad address"),
    BAD("v1 hostname", "PROXY TCP4 localhost 5.6.7.8 1 2\r\n", "bad address"),
    BAD("v1 port too big", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad address or port"),
    BAD("v1 port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 025 2\r\n", "bad address or port"),
    BAD("v1 port sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +25 2\r\n", "bad address or port"),
    BAD("v1 missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 25\r\n", "expected source"),
    BAD("v1 extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 25 26 27\r\n", "expected source"),
    BAD("v1 two spaces", "PROXY TCP4 1.2.3.4  5.6.7.8 25 26\r\n", "expected source"),
    BAD("v1 trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 25 26 \r\n", "expected source"),
    BAD("v1 empty", "PROXY \r\n", "not TCP4"),
    BAD("v1 control byte", "PROXY TCP4 1.2.3.4\t5.6.7.8 25 26\r\n", "control"),
    {"v1 NUL", "PROXY TCP4\0", 11, -1, 0, false, NULL, NULL, 0, "control"},
    BAD("v1 overlong", "PROXY UNKNOWN " X93 "", "107"),
    BAD("v1 CRLF at 108", "PROXY UNKNOWN " X92 "\r\n", "107"),
    V1_KEEP("v1 CRLF at 107", "PROXY UNKNOWN " X91 "\r\n"),
    MORE("v1 partial", "PROXY TCP4 1.2.3.4 5.6."),
    MORE("v1 ends in CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"),
    MORE("v1 prefix", "PRO"),
    BAD("smtp command", "EHLO client\r\n", "not a PROXY"),
    BAD("tls client hello", "\x16\x03\x01\x02", "not a PROXY"),
    BAD("prefix mismatch", "PROXX", "not a PROXY"),

    /* v2 (section 2.2) */
    V2("v2 tcp4", SIG "\x21\x11\x00\x0c" V4_ADDRS, "192.0.2.7 40000", "198.51.100.1 25", 0),
    V2("v2 tcp6", SIG "\x21\x21\x00\x24" V6_ADDRS, "2001:db8::7 40000", "2001:db8::1 143", 0),
    V2("v2 tcp4 with TLVs",
       SIG "\x21\x11\x00\x1d" V4_ADDRS "\x04\x00\x03xyz" /* NOOP */ "\x01\x00\x02h2" /* ALPN */
	   "\xe0\x00\x00" /* custom, empty */ "\x02\x00\x00",
       "192.0.2.7 40000", "198.51.100.1 25", 4),
    V2_KEEP("v2 local", SIG "\x20\x00\x00\x00"),
    V2_KEEP("v2 local with a block", SIG "\x20\x11\x00\x0c" V4_ADDRS),
    V2_KEEP("v2 local ignores garbage", SIG "\x20\x00\x00\x03\xff\xff\xff"),
    V2_KEEP("v2 unspec family", SIG "\x21\x00\x00\x00"),
    V2_KEEP("v2 unix family", SIG "\x21\x31\x00\x00"),
    BAD2("v2 version 1", SIG "\x11\x11\x00\x0c" V4_ADDRS, "version"),
    BAD2("v2 version 3", SIG "\x31", "version"),
    BAD2("v2 unknown command", SIG "\x22", "command"),
    BAD2("v2 unknown family", SIG "\x21\x41", "family"),
    BAD2("v2 unknown transport", SIG "\x21\x13", "family"),
    BAD2("v2 udp", SIG "\x21\x12\x00\x0c" V4_ADDRS, "not a TCP"),
    BAD2("v2 inet unspec transport", SIG "\x21\x10\x00\x0c" V4_ADDRS, "not a TCP"),
    BAD2("v2 tcp4 block too short",
	 SIG "\x21\x11\x00\x0b"
	     "\xc0\x00\x02\x07\xc6\x33\x64\x01\x9c\x40\x00",
	 "shorter"),
    BAD2("v2 tcp6 with v4 block", SIG "\x21\x21\x00\x0c" V4_ADDRS, "shorter"),
    BAD2("v2 length beyond max", SIG "\x21\x11\x04\x00", "longer"),
    BAD2("v2 length 65535", SIG "\x21\x11\xff\xff", "longer"),
    BAD2("v2 truncated TLV", SIG "\x21\x11\x00\x0e" V4_ADDRS "\x04\x00", "truncated TLV"),
    BAD2("v2 TLV past the header", SIG "\x21\x11\x00\x10" V4_ADDRS "\x04\x00\x02x", "past the header"),
    BAD2("v2 bad signature", "\r\n\r\n\0\r\nQUIT\r", "not a PROXY"),
    BAD2("v2 bad signature early", "\r\n\n", "not a PROXY"),
    MORE2("v2 signature only", SIG),
    MORE2("v2 fixed part", SIG "\x21\x11\x00\x0c"),
    MORE2("v2 half the addresses", SIG "\x21\x11\x00\x0c\xc0\x00\x02\x07\xc6\x33"),
    MORE2("v2 first byte", "\r"),
    MORE("nothing", ""),
};

/* "ip port" of an AF_INET or AF_INET6 address. */
static void addr_text(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t outsize)
{
	char ip[INET6_ADDRSTRLEN];
	int port;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		assert_int_equal(len, sizeof(*s4));
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		assert_int_equal(ss->ss_family, AF_INET6);
		assert_int_equal(len, sizeof(*s6));
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
	}
	snprintf(out, outsize, "%s %d", ip, port);
}

static size_t case_len(const struct pp_case *c)
{
	return c->len != 0 ? c->len : strlen(c->data);
}

/* The parser on a private copy of n bytes, so that ASan sees a read past them. */
static int parse_n(const char *data, size_t n, struct proxy_proto_header *hdr, size_t *size,
		   const char **error)
{
	unsigned char *copy = xmalloc(n ? n : 1);
	memcpy(copy, data, n);
	*error = NULL;
	int rc = proxy_proto_parse(copy, n, hdr, size, error);
	free(copy);
	return rc;
}

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pp_case *c = &cases[i];
		size_t len = case_len(c);
		struct proxy_proto_header hdr;
		size_t size;
		const char *error;
		int rc = parse_n(c->data, len, &hdr, &size, &error);
		if (rc != c->rc)
			fail_msg("%s: rc %d, expected %d (%s)", c->name, rc, c->rc, error ? error : "");
		if (rc < 0) {
			assert_non_null(error);
			if (strstr(error, c->error) == NULL)
				fail_msg("%s: error \"%s\" lacks \"%s\"", c->name, error, c->error);
			continue;
		}
		if (rc == 0)
			continue;
		assert_int_equal(size, len);
		assert_int_equal(hdr.version, c->version);
		if (hdr.proxied != c->proxied)
			fail_msg("%s: proxied %d", c->name, hdr.proxied);
		assert_int_equal(hdr.tlvs, c->tlvs);
		if (!c->proxied)
			continue;
		char text[80];
		addr_text(&hdr.src, hdr.src_len, text, sizeof(text));
		assert_string_equal(text, c->src);
		addr_text(&hdr.dst, hdr.dst_len, text, sizeof(text));
		assert_string_equal(text, c->dst);
	}
}

/* Every valid header, cut anywhere, needs more bytes (so the reader may
   take all of a prefix), and what follows a header is not part of it. */
static void test_prefixes_and_trailing(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pp_case *c = &cases[i];
		if (c->rc != 1)
			continue;
		size_t len = case_len(c);
		struct proxy_proto_header hdr;
		size_t size;
		const char *error;
		for (size_t n = 0; n < len; n++)
			if (parse_n(c->data, n, &hdr, &size, &error) != 0)
				fail_msg("%s: prefix of %zu bytes: %s", c->name, n,
					 error ? error : "complete");
		char *more = xmalloc(len + 6);
		memcpy(more, c->data, len);
		memcpy(more + len, "EHLO x", 6);
		if (parse_n(more, len + 6, &hdr, &size, &error) != 1)
			fail_msg("%s: followed by a command: %s", c->name, error ? error : "incomplete");
		assert_int_equal(size, len);
		free(more);
	}
}

/* A v2 header of exactly PROXY_PROTO_MAX bytes is taken, one more is not. */
static void test_v2_max(void **state)
{
	unsigned char buf[PROXY_PROTO_MAX + 1];
	size_t body = PROXY_PROTO_MAX - PROXY_PROTO_V2_FIXED;
	memcpy(buf, SIG "\x21\x11", 14);
	buf[14] = (unsigned char)(body >> 8);
	buf[15] = (unsigned char)body;
	memcpy(buf + 16, V4_ADDRS, 12);
	/* one NOOP TLV filling the rest */
	size_t vlen = body - 12 - 3;
	buf[28] = 0x04;
	buf[29] = (unsigned char)(vlen >> 8);
	buf[30] = (unsigned char)vlen;
	memset(buf + 31, 'n', vlen);
	struct proxy_proto_header hdr;
	size_t size;
	const char *error = NULL;
	assert_int_equal(proxy_proto_parse(buf, PROXY_PROTO_MAX, &hdr, &size, &error), 1);
	assert_int_equal(size, PROXY_PROTO_MAX);
	assert_int_equal(hdr.tlvs, 1);
	body++;
	buf[14] = (unsigned char)(body >> 8);
	buf[15] = (unsigned char)body;
	assert_int_equal(proxy_proto_parse(buf, 16, &hdr, &size, &error), -1);
	assert_non_null(strstr(error, "longer"));
}

/* ---- netlist ---- */

static bool match(const struct netlist *list, const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (void *)&ss;
	struct sockaddr_in6 *s6 = (void *)&ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		fail_msg("bad test address %s", ip);
	return netlist_match(list, (struct sockaddr *)&ss);
}

static void test_netlist(void **state)
{
	struct netlist list;
	char *error = NULL;
	assert_int_equal(netlist_parse("127.0.0.1, ::1,10.0.0.0/8  192.168.1.128/25,2001:db8::/32 0.0.0.0/0x"
				       "",
				       &list, &error),
			 -1);
	assert_non_null(strstr(error, "0.0.0.0/0x"));
	free(error);
	assert_int_equal(
	    netlist_parse("127.0.0.1, ::1,10.0.0.0/8  192.168.1.128/25,2001:db8::/32", &list, &error), 0);
	assert_int_equal(list.count, 5);
	assert_string_equal(list.text, "127.0.0.1, ::1,10.0.0.0/8  192.168.1.128/25,2001:db8::/32");
	assert_true(match(&list, "127.0.0.1"));
	assert_false(match(&list, "127.0.0.2"));
	assert_true(match(&list, "::1"));
	assert_true(match(&list, "::ffff:127.0.0.1")); /* a v4 client on a [::] listener */
	assert_false(match(&list, "::2"));
	assert_true(match(&list, "10.255.1.2"));
	assert_false(match(&list, "11.0.0.1"));
	assert_true(match(&list, "192.168.1.200"));
	assert_false(match(&list, "192.168.1.127"));
	assert_true(match(&list, "2001:db8:ffff::1"));
	assert_false(match(&list, "2001:db9::1"));
	netlist_free(&list);

	assert_int_equal(netlist_parse("", &list, &error), 0);
	assert_int_equal(list.count, 0);
	assert_false(match(&list, "127.0.0.1"));
	netlist_free(&list);
	assert_int_equal(netlist_parse("0.0.0.0/0 ::/0", &list, &error), 0);
	assert_true(match(&list, "203.0.113.9"));
	assert_true(match(&list, "2001:db8::9"));
	netlist_free(&list);

	static const char *const bad[] = {"10.0.0.1/8",  "10.0.0.0/33",  "::1/129",   "10.0.0.0/",
					  "10.0.0.0/-1", "localhost",    "1.2.3",     "10.0.0.0/8/8",
					  "2001:db8::/", "fe80::1%eth0", "1.2.3.4/ 8"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		if (netlist_parse(bad[i], &list, &error) != -1)
			fail_msg("'%s' was accepted", bad[i]);
		assert_non_null(error);
		free(error);
	}
}

/* The options: per listener and the trusted list, read back by `check`. */
static void test_config(void **state)
{
	struct config cfg;
	char *error = NULL;
	assert_int_equal(
	    config_load_string(&cfg,
			       "[server]\nproxy_trusted = 127.0.0.1, 10.0.0.0/8\nproxy_timeout = 2s\n"
			       "[imaps]\nproxy_protocol = yes\n",
			       "t.conf", &error),
	    0);
	assert_true(cfg.imaps_proxy_protocol);
	assert_false(cfg.imap_proxy_protocol);
	assert_false(cfg.smtp_proxy_protocol);
	assert_int_equal(cfg.proxy_timeout, 2);
	assert_int_equal(cfg.proxy_trusted.count, 2);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	config_write_effective(&cfg, f);
	fclose(f);
	assert_non_null(strstr(text, "proxy_trusted = 127.0.0.1, 10.0.0.0/8\n"));
	free(text);
	config_free(&cfg);
	assert_int_equal(config_load_string(&cfg, "[server]\nproxy_trusted = 10.0.0.1/8\n", "t.conf", &error),
			 -1);
	assert_non_null(strstr(error, "t.conf:2: [server] proxy_trusted: '10.0.0.1/8' has address bits"));
	free(error);
	assert_int_equal(config_load_string(&cfg, "[server]\n", "t.conf", &error), 0);
	assert_int_equal(cfg.proxy_trusted.count, 0);
	assert_int_equal(cfg.proxy_timeout, 5);
	config_free(&cfg);
}

/* ---- the reader, on a socket pair ---- */

struct reader_result {
	bool called;
	bool ok;
	char error[200];
	struct proxy_proto_header hdr;
	struct event_base *base;
};

static void reader_done(const struct proxy_proto_header *hdr, const char *error, void *ctx)
{
	struct reader_result *res = ctx;
	res->called = true;
	res->ok = hdr != NULL;
	if (hdr != NULL)
		res->hdr = *hdr;
	else
		snprintf(res->error, sizeof(res->error), "%s", error);
	event_base_loopbreak(res->base);
}

/* Runs a reader on one end of a socket pair, sending the chunks to the
   other end one loop turn apart; returns what stays unread after it. */
static char *run_reader(const char *const *chunks, const size_t *lens, size_t n, bool close_after,
			int timeout, struct reader_result *res)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	memset(res, 0, sizeof(*res));
	res->base = event_base_new();
	struct proxy_reader *r = proxy_reader_new(res->base, sv[0], timeout, reader_done, res);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(write(sv[1], chunks[i], lens[i]), (ssize_t)lens[i]);
		/* one pass: the reader takes what arrived */
		if (!res->called)
			event_base_loop(res->base, EVLOOP_NONBLOCK);
	}
	if (close_after)
		close(sv[1]);
	if (!res->called)
		event_base_dispatch(res->base); /* bounded by the reader's timeout */
	assert_true(res->called);
	proxy_reader_free(&r);
	char rest[256];
	ssize_t got = recv(sv[0], rest, sizeof(rest) - 1, MSG_DONTWAIT);
	rest[got > 0 ? got : 0] = '\0';
	close(sv[0]);
	if (!close_after)
		close(sv[1]);
	event_base_free(res->base);
	return xstrdup(rest);
}

static void test_reader(void **state)
{
	struct reader_result res;
	/* v2 in three pieces, the protocol's first bytes with the last */
	static const char hdr_v2[] = SIG "\x21\x11\x00\x0c" V4_ADDRS;
	const char *pieces[] = {hdr_v2, hdr_v2 + 5, hdr_v2 + 20};
	size_t lens[] = {5, 15, sizeof(hdr_v2) - 1 - 20};
	char *last = xmalloc(lens[2] + 16);
	memcpy(last, pieces[2], lens[2]);
	memcpy(last + lens[2], "EHLO there\r\n", 12);
	pieces[2] = last;
	lens[2] += 12;
	char *rest = run_reader(pieces, lens, 3, false, 5, &res);
	assert_true(res.ok);
	assert_true(res.hdr.proxied);
	assert_string_equal(rest, "EHLO there\r\n");
	free(rest);
	free(last);

	/* v1 byte by byte, then a TLS ClientHello's first bytes */
	const char *v1 = "PROXY TCP6 2001:db8::7 2001:db8::1 40000 143\r\n\x16\x03\x01";
	size_t v1len = strlen(v1);
	const char *bytes[80];
	size_t ones[80];
	for (size_t i = 0; i < v1len; i++) {
		bytes[i] = v1 + i;
		ones[i] = 1;
	}
	rest = run_reader(bytes, ones, v1len, false, 5, &res);
	assert_true(res.ok);
	assert_int_equal(res.hdr.version, 1);
	assert_string_equal(rest, "\x16\x03\x01");
	free(rest);

	/* garbage: refused at once, and nothing past it is taken */
	const char *garbage[] = {"EHLO x\r\n"};
	size_t glen[] = {8};
	rest = run_reader(garbage, glen, 1, false, 5, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.error, "not a PROXY"));
	assert_string_equal(rest, "EHLO x\r\n");
	free(rest);

	/* the connection closes halfway */
	const char *half[] = {"PROXY TCP4 1.2"};
	size_t hlen[] = {14};
	rest = run_reader(half, hlen, 1, true, 5, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.error, "closed"));
	free(rest);

	/* a partial header and then nothing: the timeout ends it */
	time_t start = time(NULL);
	rest = run_reader(half, hlen, 1, false, 1, &res);
	assert_false(res.ok);
	assert_non_null(strstr(res.error, "after 14 bytes"));
	assert_true(time(NULL) - start <= 3);
	free(rest);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),  cmocka_unit_test(test_prefixes_and_trailing),
	    cmocka_unit_test(test_v2_max), cmocka_unit_test(test_netlist),
	    cmocka_unit_test(test_config), cmocka_unit_test(test_reader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
