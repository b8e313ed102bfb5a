"""A small authoritative DNS responder on loopback for the relay and DKIM
tests (standard library only).  It answers MX, A, AAAA and TXT queries over
UDP from a table the test fills; unknown names get NXDOMAIN, known names
without the asked type an empty NOERROR answer (NODATA).  An answer that
does not fit in 512 bytes is truncated (TC) over UDP and given whole over
TCP, as a real server does (RSA key records of 2048 bits need that with
resolvers that do not send EDNS).

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

TYPE_A, TYPE_MX, TYPE_TXT, TYPE_AAAA = 1, 15, 16, 28
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
        """One TXT record.  Given one text, it is cut into character-strings
        of at most 255 bytes (RFC 6376 3.6.2.2: the verifier joins them);
        given several, each is one character-string.  ttl: of every record
        of the name."""
        if ttl is not None:
            self.ttls[name.lower().rstrip(".")] = ttl
        if len(strings) == 1:
            data = strings[0].encode() if isinstance(strings[0], str) else strings[0]
            parts = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
        else:
            parts = [x.encode() if isinstance(x, str) else x for x in strings]
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

    def add_name(self, name):
        """A name that exists without records (NODATA for every type)."""
        self.records.setdefault(name.lower().rstrip("."), {})

    def answer(self, query, udp=True):
        """The response to query, or None for a muted name."""
        qid, flags, qd = struct.unpack("!HHH", query[:6])
        name, pos = decode_name(query, 12)
        qtype, qclass = struct.unpack("!HH", query[pos:pos + 4])
        question = query[12:pos + 4]
        (self.queries if udp else self.tcp_queries).append((name.lower(), qtype))
        if self.is_muted(name):
            return None
        rec = self.records.get(name.lower().rstrip("."))
        rcode = 3 if rec is None else 0
        answers = b""
        count = 0
        ttl = self.ttls.get(name.lower().rstrip("."), 60)
        for rdata in (rec or {}).get(qtype, []):
            answers += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, ttl, len(rdata)) + rdata
            count += 1
        rflags = 0x8400 | (flags & 0x0100) | 0x0080 | rcode   # QR AA RD RA
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
