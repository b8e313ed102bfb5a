"""A small authoritative DNS responder on loopback for the relay and
message authentication tests (standard library only).  It answers MX, A,
AAAA, TXT, PTR, CNAME and TLSA queries over UDP from a table the test
fills; unknown names get NXDOMAIN, known names without the asked type an
empty NOERROR answer (NODATA).  An answer that does not fit in 512 bytes is
truncated (TC) over UDP and given whole over TCP, as a real server does
(RSA key records of 3072 bits need that with resolvers that do not send
EDNS).

    dns = DnsServer()
    dns.add_mx("b.test", 10, "mx.b.test")
    dns.add_null_mx("nomail.test")
    dns.add_a("mx.b.test", "127.0.0.1")
    dns.add_txt("sel._domainkey.b.test", "v=DKIM1; k=ed25519; p=...")
    dns.mute("slow.test")          # no answer at all for names below it
    dns.start(); dns.port  ...  dns.stop()
"""
import socket
import struct
import threading

TYPE_A, TYPE_CNAME, TYPE_PTR, TYPE_MX, TYPE_TXT, TYPE_AAAA = 1, 5, 12, 15, 16, 28
TYPE_TLSA = 52
UDP_MAX = 512


def encode_name(name):
    name = name.rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def decode_name(data, pos):
    labels = []
    while True:
        n = data[pos]
        if n == 0:
            return ".".join(labels), pos + 1
        if n & 0xC0:
            raise ValueError("compression in question")
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n


class DnsServer:
    def __init__(self):
        self.records = {}    # name -> {type: [rdata bytes]}
        self.queries = []    # (name, type) seen
        self.tcp_queries = []  # the same, over TCP
        self.servfail = set()  # (name, type or None)
        self.secure = set()    # names answered with AD set (a validating resolver's "secure")
        self.muted = set()   # names (and names below them) never answered
        self.ttls = {}       # name -> TTL of its records (default 60)
        # UDP, and TCP on the same port for truncated answers (a few tries
        # in case the TCP port of that number is taken)
        for attempt in range(10):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.sock.close()
                self.tcp.close()
                if attempt == 9:
                    raise
        self.tcp.listen(16)
        self.thread = None
        self.tcp_thread = None
        self.running = False

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _add(self, name, rtype, rdata):
        self.records.setdefault(name.lower().rstrip("."), {}).setdefault(rtype, []).append(rdata)

    def add_mx(self, domain, pref, host):
        self._add(domain, TYPE_MX, struct.pack("!H", pref) + encode_name(host))

    def add_null_mx(self, domain):
        """RFC 7505: one MX with preference 0 and the root as exchange."""
        self._add(domain, TYPE_MX, struct.pack("!H", 0) + b"\x00")

    def add_a(self, name, ip):
        self._add(name, TYPE_A, socket.inet_pton(socket.AF_INET, ip))

    def add_aaaa(self, name, ip):
        self._add(name, TYPE_AAAA, socket.inet_pton(socket.AF_INET6, ip))

    def add_txt(self, name, *strings, ttl=None):
        """One TXT record made of the given character-strings (str or
        bytes); a single text longer than 255 octets is cut into strings of
        255 (RFC 6376 3.6.2.2: the verifier joins them).  ttl: of every
        record of the name."""
        if ttl is not None:
            self.ttls[name.lower().rstrip(".")] = ttl
        parts = [st.encode() if isinstance(st, str) else st for st in strings]
        if len(parts) == 1 and len(parts[0]) > 255:
            parts = [parts[0][i:i + 255] for i in range(0, len(parts[0]), 255)]
        self._add(name, TYPE_TXT, b"".join(bytes([len(p)]) + p for p in parts))

    def remove(self, name):
        self.records.pop(name.lower().rstrip("."), None)

    def mute(self, name):
        """Queries for name and names below it get no answer (a server that
        does not respond)."""
        self.muted.add(name.lower().rstrip("."))

    def is_muted(self, name):
        name = name.lower().rstrip(".")
        return any(name == m or name.endswith("." + m) for m in self.muted)

    def add_ptr(self, name, host):
        self._add(name, TYPE_PTR, encode_name(host))

    def add_cname(self, name, target):
        """Answers for name carry the CNAME and target's records of the
        asked type (one level, as a recursive resolver returns them)."""
        self._add(name, TYPE_CNAME, encode_name(target))

    def add_servfail(self, name, rtype=None):
        """Queries for name (of rtype, or any type) get SERVFAIL: a DNS
        error (what a timeout is to a resolver's client)."""
        self.servfail.add((name.lower().rstrip("."), rtype))

    def add_name(self, name):
        """A name that exists without records (NODATA for every type)."""
        self.records.setdefault(name.lower().rstrip("."), {})

    def add_tlsa(self, name, usage, selector, mtype, data, secure=True):
        """A TLSA record (RFC 6698) at name, e.g. "_25._tcp.mx.b.test";
        secure: answers for name carry the AD bit (RFC 4035 3.2.3)."""
        self._add(name, TYPE_TLSA, bytes([usage, selector, mtype]) + data)
        if secure:
            self.set_secure(name)

    def set_secure(self, name):
        """Answers for name carry AD, as a validating resolver's would for
        data that is DNSSEC-secure."""
        self.secure.add(name.lower().rstrip("."))

    def answer(self, query, udp=True):
        """The response to query, or None for a muted name."""
        qid, flags, qd = struct.unpack("!HHH", query[:6])
        name, pos = decode_name(query, 12)
        qtype, qclass = struct.unpack("!HH", query[pos:pos + 4])
        question = query[12:pos + 4]
        (self.queries if udp else self.tcp_queries).append((name.lower(), qtype))
        if self.is_muted(name):
            return None
        key = name.lower().rstrip(".")
        rec = self.records.get(key)
        rcode = 3 if rec is None else 0
        answers = b""
        count = 0
        if (key, None) in self.servfail or (key, qtype) in self.servfail:
            rflags = 0x8400 | (flags & 0x0100) | 0x0080 | 2
            return struct.pack("!HHHHHH", qid, rflags, 1, 0, 0, 0) + question
        ttl = self.ttls.get(key, 60)
        for rdata in (rec or {}).get(qtype, []):
            answers += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, ttl, len(rdata)) + rdata
            count += 1
        if count == 0 and qtype != TYPE_CNAME:
            for target in (rec or {}).get(TYPE_CNAME, [])[:1]:
                answers += b"\xc0\x0c" + struct.pack("!HHIH", TYPE_CNAME, 1, 60, len(target)) + target
                count += 1
                tname, _ = decode_name(target, 0)
                for rdata in self.records.get(tname.lower(), {}).get(qtype, []):
                    answers += target + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata
                    count += 1
        rflags = 0x8400 | (flags & 0x0100) | 0x0080 | rcode   # QR AA RD RA
        if key in self.secure:
            rflags |= 0x0020   # AD
        if udp and 12 + len(question) + len(answers) > UDP_MAX:
            rflags |= 0x0200   # TC: ask again over TCP
            count, answers = 0, b""
        return struct.pack("!HHHHHH", qid, rflags, 1, count, 0, 0) + question + answers

    def serve(self):
        self.sock.settimeout(0.2)
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                reply = self.answer(data)
                if reply is not None:
                    self.sock.sendto(reply, peer)
            except Exception:
                pass

    def serve_tcp(self):
        self.tcp.settimeout(0.2)
        while self.running:
            try:
                conn, peer = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with conn:
                conn.settimeout(2)
                try:
                    # each message is preceded by its 2-byte length
                    for _ in range(16):
                        head = conn.recv(2, socket.MSG_WAITALL)
                        if len(head) < 2:
                            break
                        data = conn.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)
                        reply = self.answer(data, udp=False)
                        if reply is None:
                            break
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except Exception:
                    pass

    def start(self):
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        self.tcp_thread = threading.Thread(target=self.serve_tcp, daemon=True)
        self.tcp_thread.start()
        return self

    def stop(self):
        self.running = False
        for t in (self.thread, self.tcp_thread):
            if t:
                t.join(timeout=2)
        self.sock.close()
        self.tcp.close()
