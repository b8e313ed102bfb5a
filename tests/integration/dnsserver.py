"""A small authoritative DNS responder on loopback for the relay tests
(standard library only).  It answers MX, A, AAAA, TXT, PTR and CNAME queries over UDP from a
table the test fills; unknown names get NXDOMAIN, known names without the
asked type an empty NOERROR answer (NODATA).

    dns = DnsServer()
    dns.add_mx("b.test", 10, "mx.b.test")
    dns.add_null_mx("nomail.test")
    dns.add_a("mx.b.test", "127.0.0.1")
    dns.start(); dns.port  ...  dns.stop()
"""
import socket
import struct
import threading

TYPE_A, TYPE_CNAME, TYPE_PTR, TYPE_MX, TYPE_TXT, TYPE_AAAA = 1, 5, 12, 15, 16, 28


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
        self.servfail = set()  # (name, type or None)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = None
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

    def add_txt(self, name, *strings):
        """One TXT record made of the given character-strings (str or
        bytes, at most 255 octets each)."""
        rdata = b""
        for st in strings:
            b = st.encode() if isinstance(st, str) else st
            rdata += bytes([len(b)]) + b
        self._add(name, TYPE_TXT, rdata)

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

    def answer(self, query):
        qid, flags, qd = struct.unpack("!HHH", query[:6])
        name, pos = decode_name(query, 12)
        qtype, qclass = struct.unpack("!HH", query[pos:pos + 4])
        question = query[12:pos + 4]
        self.queries.append((name.lower(), qtype))
        key = name.lower().rstrip(".")
        rec = self.records.get(key)
        rcode = 3 if rec is None else 0
        answers = b""
        count = 0
        if (key, None) in self.servfail or (key, qtype) in self.servfail:
            rflags = 0x8400 | (flags & 0x0100) | 0x0080 | 2
            return struct.pack("!HHHHHH", qid, rflags, 1, 0, 0, 0) + question
        for rdata in (rec or {}).get(qtype, []):
            answers += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata
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
                self.sock.sendto(self.answer(data), peer)
            except Exception:
                pass

    def start(self):
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.running = False
        if self.thread:
            self.thread.join(timeout=2)
        self.sock.close()
