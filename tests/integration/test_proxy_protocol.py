"""The PROXY protocol on listeners with proxy_protocol = yes (issue 16, load
balancing; src/lib/proxy_proto.h, the session skeleton): the address in a
v1 or v2 header from a trusted balancer becomes the client's address for
SMTP, POP3 and IMAP (Received:, EHLO, logs, per-IP limits, failed logins);
connections without a valid header in time, or from an untrusted address,
are closed without a greeting; and a real haproxy in front works."""
import imaplib
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import time
import unittest

from harness import Conversation, Server, free_port, tls_context, wait_for

SIG = b"\r\n\r\n\x00\r\nQUIT\n"

MESSAGE = b"From: a@example.net\r\nTo: alice@example.org\r\nSubject: proxied\r\n\r\nhello\r\n"


def v2_tcp4(src, sport, dst="198.51.100.1", dport=25, tlvs=b""):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport) + tlvs
    return SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def v2_tcp6(src, sport, dst="2001:db8::1", dport=25):
    body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) +
            struct.pack("!HH", sport, dport))
    return SIG + b"\x21\x21" + struct.pack("!H", len(body)) + body


def v1(src, sport, dst="198.51.100.1", dport=25, proto="TCP4"):
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def nothing_within(sock, seconds):
    """True when the server sends nothing (and does not close) for seconds."""
    sock.settimeout(seconds)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False
    except socket.timeout:
        return True


def closed_unanswered(sock, timeout):
    """(closed, bytes) : whether the server closed within timeout, and what
    it sent before closing."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True, got
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        return True, got
    except socket.timeout:
        return False, got


class ProxyProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        extra = ("[server]\nproxy_trusted = 127.0.0.1, ::1\nproxy_timeout = 1s\n"
                 "[limits]\nmax_connections_per_ip = 2\n"
                 "[smtp]\nproxy_protocol = yes\n[pop3]\nproxy_protocol = yes\n"
                 "[imap]\nproxy_protocol = yes\n[imaps]\nproxy_protocol = yes\n")
        cls.srv = Server(extra_config=extra)
        cls.srv.start()
        cls.srv.add_domain("example.org")
        cls.srv.add_user("alice@example.org", "secret")

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def conn(self, service="smtp"):
        return self.srv.connect(service, timeout=10)

    def log_has(self, pattern, timeout=5):
        return wait_for(lambda: re.search(pattern, self.srv.log_text()), timeout=timeout)

    def deliver(self, header, helo="client.example"):
        """Sends header and then a message over raw SMTP; returns the EHLO
        reply text and the stored message."""
        before = len(self.srv.maildir_messages("alice@example.org"))
        s = self.conn()
        c = Conversation(s)
        # The header and the first command in one segment: what follows
        # the header stays for the SMTP engine.
        c.send(header + b"EHLO " + helo.encode() + b"\r\n")
        self.assertEqual(c.reply()[0], 220)
        code, ehlo = c.reply()
        self.assertEqual(code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.net>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(MESSAGE + b".\r\n")
        self.assertEqual(c.reply()[0], 250)
        c.cmd("QUIT")
        s.close()
        msgs = self.srv.maildir_messages("alice@example.org")
        self.assertEqual(len(msgs), before + 1)
        return ehlo[0], msgs[-1][1]

    # ---- (a) the client's address from the header ----
    def test_v2_smtp_received_and_log(self):
        ehlo, stored = self.deliver(v2_tcp4("192.0.2.7", 40000))
        self.assertIn("[192.0.2.7]", ehlo)
        self.assertIn(b"Received: from client.example ([192.0.2.7])", stored)
        self.assertNotIn(b"127.0.0.1", stored.split(b"\r\n\r\n")[0])
        self.assertTrue(self.log_has(r"smtp connect session=\S+ service=smtp ip=192\.0\.2\.7 port=40000 "
                                     r"proxy=127\.0\.0\.1"))

    def test_v2_tlvs_and_ipv6(self):
        tlvs = b"\x04\x00\x03abc" + b"\x01\x00\x08smtp/1.0"  # NOOP, ALPN: skipped
        _, stored = self.deliver(v2_tcp4("192.0.2.17", 40017, tlvs=tlvs))
        self.assertIn(b"([192.0.2.17])", stored)
        _, stored = self.deliver(v2_tcp6("2001:db8::77", 40077))
        self.assertIn(b"([2001:db8::77])", stored)

    def test_v1_smtp(self):
        ehlo, stored = self.deliver(v1("192.0.2.8", 40008))
        self.assertIn("[192.0.2.8]", ehlo)
        self.assertIn(b"Received: from client.example ([192.0.2.8])", stored)
        _, stored = self.deliver(v1("2001:db8::8", 40088, dst="2001:db8::1", proto="TCP6"))
        self.assertIn(b"([2001:db8::8])", stored)

    def test_local_keeps_the_connection_address(self):
        # v2 LOCAL (a balancer's health check) and v1 UNKNOWN: the real
        # endpoints stand.
        for header in (SIG + b"\x20\x00\x00\x00", b"PROXY UNKNOWN\r\n"):
            s = self.conn()
            c = Conversation(s)
            c.send(header)
            self.assertEqual(c.reply()[0], 220)
            code, lines = c.cmd("EHLO hc")
            self.assertIn("[127.0.0.1]", lines[0])
            s.close()

    def test_imap_login_failure_shows_the_client(self):
        s = self.conn("imap")
        c = Conversation(s)
        c.send(v2_tcp4("192.0.2.9", 40009, dport=143))
        greeting = c.line()
        self.assertTrue(greeting.startswith("* OK"))
        # plaintext_auth = loopback: the client is not, though the
        # connection comes from 127.0.0.1
        self.assertIn("LOGINDISABLED", greeting)
        c.send("a LOGIN alice@example.org wrong\r\n")
        self.assertIn("a NO [PRIVACYREQUIRED]", c.line())
        c.send("b STARTTLS\r\n")
        self.assertTrue(c.line().startswith("b OK"))
        c.sock = tls_context().wrap_socket(s)
        c.send("c LOGIN alice@example.org wrong\r\n")
        self.assertTrue(c.line().startswith("c NO"))
        c.sock.close()
        self.assertTrue(self.log_has(r"imap auth-failed session=\S+ ip=192\.0\.2\.9 user=alice@example\.org"))

    def test_pop3_login_failure_shows_the_client(self):
        s = self.conn("pop3")
        c = Conversation(s)
        c.send(v1("192.0.2.10", 40010, dport=110))
        self.assertTrue(c.line().startswith("+OK"))
        c.send("USER alice@example.org\r\n")
        self.assertIn("use STLS first", c.line())
        c.send("STLS\r\n")
        self.assertTrue(c.line().startswith("+OK"))
        c.sock = tls_context().wrap_socket(s)
        c.send("USER alice@example.org\r\n")
        self.assertTrue(c.line().startswith("+OK"))
        c.send("PASS wrong\r\n")
        self.assertTrue(c.line().startswith("-ERR [AUTH]"))
        c.sock.close()
        self.assertTrue(self.log_has(r"pop3 auth-failed session=\S+ ip=192\.0\.2\.10 user=alice@example\.org"))

    def test_implicit_tls_after_the_header(self):
        s = self.conn("imaps")
        s.sendall(v2_tcp4("192.0.2.11", 40011, dport=993))
        t = tls_context().wrap_socket(s)  # the handshake follows the header
        c = Conversation(t)
        self.assertTrue(c.line().startswith("* OK"))
        c.send("a LOGOUT\r\n")
        t.close()
        self.assertTrue(self.log_has(r"imap connect session=\S+ service=imaps ip=192\.0\.2\.11 port=40011 "
                                     r"proxy=127\.0\.0\.1"))

    def test_per_ip_limit_counts_the_client(self):
        # max_connections_per_ip = 2: every connection comes from
        # 127.0.0.1, but only the claimed client's count is full.
        held = []
        try:
            for _ in range(2):
                s = self.conn()
                held.append(s)
                c = Conversation(s)
                c.send(v2_tcp4("192.0.2.20", 40020))
                self.assertEqual(c.reply()[0], 220)
            s = self.conn()
            held.append(s)
            c = Conversation(s)
            c.send(v2_tcp4("192.0.2.20", 40021))
            self.assertEqual(c.reply()[0], 421)
            s = self.conn()
            held.append(s)
            c = Conversation(s)
            c.send(v2_tcp4("192.0.2.21", 40022))
            self.assertEqual(c.reply()[0], 220)
        finally:
            for s in held:
                s.close()
        self.assertTrue(self.log_has(r"smtp reject session=\S+ reason=too-many-connections ip=192\.0\.2\.20"))

    # ---- (b) no valid header in time: closed, never greeted ----
    def test_no_header_is_closed_after_the_timeout(self):
        s = self.conn()
        t0 = time.time()
        closed, got = closed_unanswered(s, 5)
        elapsed = time.time() - t0
        s.close()
        self.assertTrue(closed)
        self.assertEqual(got, b"")
        self.assertLess(elapsed, 3.0)  # proxy_timeout = 1s
        self.assertGreater(elapsed, 0.5)

    def test_no_greeting_before_the_header(self):
        s = self.conn()
        self.assertTrue(nothing_within(s, 0.3))
        c = Conversation(s)
        c.send(v2_tcp4("192.0.2.30", 40030))
        self.assertEqual(c.reply()[0], 220)
        s.close()

    def test_protocol_instead_of_header_is_closed(self):
        for data in (b"EHLO client.example\r\n", b"\x16\x03\x01\x00\xa5\x01\x00",
                     b"PROXY TCP4 192.0.2.1 198.51.100.1 1 2\n",  # no CR
                     b"PROXY TCP4 300.0.2.1 198.51.100.1 1 2\r\n",
                     b"PROXY UNKNOWN " + b"x" * 120,
                     SIG + b"\x11\x11\x00\x0c" + b"\0" * 12,  # version 1
                     SIG + b"\x21\x11\xff\xff"):  # length beyond the limit
            s = self.conn()
            s.sendall(data)
            t0 = time.time()
            closed, got = closed_unanswered(s, 5)
            s.close()
            self.assertTrue(closed, data)
            self.assertEqual(got, b"", data)
            self.assertLess(time.time() - t0, 0.9, data)  # at once, not at the timeout
        self.assertTrue(self.log_has(r"smtp proxy-reject session=\S+ ip=127\.0\.0\.1 port=\d+ reason=header "
                                     r"error=\"v1: line ends without CR\""))

    def test_slow_header_is_bounded(self):
        # A byte every 0.2 s does not keep the connection: the header has
        # proxy_timeout in all.
        s = self.conn()
        header = v1("192.0.2.40", 40040)
        t0 = time.time()
        closed = False
        for i in range(len(header) - 2):  # never complete; at most ~9 s
            try:
                s.sendall(header[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            s.settimeout(0.2)
            try:
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        elapsed = time.time() - t0
        s.close()
        self.assertTrue(closed)
        self.assertLess(elapsed, 2.5)
        self.assertTrue(self.log_has(r"reason=header error=\"no complete PROXY header after \d+ bytes\""))


class UntrustedBalancerTest(unittest.TestCase):
    # (c) 127.0.0.1 is not a trusted balancer here.
    def test_untrusted_peer_is_closed_without_greeting(self):
        extra = "[server]\nproxy_trusted = 10.0.0.0/8, 2001:db8::/32\n[smtp]\nproxy_protocol = yes\n"
        with Server(extra_config=extra) as srv:
            s = srv.connect("smtp")
            s.sendall(v2_tcp4("192.0.2.50", 40050))
            closed, got = closed_unanswered(s, 5)
            s.close()
            self.assertTrue(closed)
            self.assertEqual(got, b"")
            self.assertTrue(wait_for(lambda: re.search(
                r"smtp proxy-reject session=\S+ ip=127\.0\.0\.1 port=\d+ reason=untrusted", srv.log_text())))
            self.assertNotIn("192.0.2.50", srv.log_text())
            # a listener without proxy_protocol greets as always
            with srv.smtp("submission") as c:
                self.assertEqual(c.noop()[0], 250)


class SourceIMAP(imaplib.IMAP4):
    """imaplib from a chosen local address."""

    def __init__(self, host, port, source, timeout):
        self.source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


@unittest.skipUnless(shutil.which("haproxy"), "haproxy is not installed (scripts/setup installs it)")
class HaproxyTest(unittest.TestCase):
    """(d) Debian's haproxy in front, sending PROXY v2: the client connects
    to haproxy from 127.0.0.2, haproxy to postoffice from 127.0.0.1."""

    def start_haproxy(self, srv):
        for _ in range(3):  # a free port may be taken before haproxy binds it
            ports = {"smtp": free_port(), "imap": free_port()}
            cfg = os.path.join(srv.dir, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write("global\n    maxconn 100\n"
                        "defaults\n    mode tcp\n    timeout connect 5s\n"
                        "    timeout client 30s\n    timeout server 30s\n")
                for name, port in ports.items():
                    f.write("listen %s\n    bind 127.0.0.1:%d\n"
                            "    server po 127.0.0.1:%d send-proxy-v2\n" % (name, port, srv.port(name)))
            log = open(os.path.join(srv.dir, "haproxy.log"), "wb")
            # -db: foreground, no daemon; it dies with the test (tearDown).
            proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=log, stderr=subprocess.STDOUT,
                                    cwd=srv.dir)
            log.close()

            def listening():
                try:
                    socket.create_connection(("127.0.0.1", ports["imap"]), timeout=1).close()
                    return True
                except OSError:
                    return proc.poll() is not None
            wait_for(listening, timeout=10)
            if proc.poll() is None:
                return proc, ports
        with open(os.path.join(srv.dir, "haproxy.log")) as f:
            self.fail("haproxy did not start:\n" + f.read())

    def test_smtp_and_imap_through_haproxy(self):
        extra = ("[server]\nproxy_trusted = 127.0.0.1\n"
                 "[smtp]\nproxy_protocol = yes\n[imap]\nproxy_protocol = yes\n")
        with Server(extra_config=extra) as srv:
            srv.add_domain("example.org")
            srv.add_user("alice@example.org", "secret")
            proc, ports = self.start_haproxy(srv)
            try:
                with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10,
                                  source_address=("127.0.0.2", 0)) as s:
                    s.ehlo("through.haproxy")
                    s.sendmail("a@example.net", ["alice@example.org"], MESSAGE)
                msgs = srv.maildir_messages("alice@example.org")
                self.assertEqual(len(msgs), 1)
                self.assertIn(b"Received: from through.haproxy ([127.0.0.2])", msgs[0][1])
                im = SourceIMAP("127.0.0.1", ports["imap"], "127.0.0.2", 10)
                try:
                    self.assertEqual(im.login("alice@example.org", "secret")[0], "OK")
                    typ, data = im.select("INBOX")
                    self.assertEqual((typ, data[0]), ("OK", b"1"))
                    im.logout()
                except Exception:
                    im.shutdown()
                    raise
                log = srv.log_text()
                self.assertRegex(log, r"smtp connect session=\S+ service=smtp ip=127\.0\.0\.2 port=\d+ "
                                      r"proxy=127\.0\.0\.1")
                self.assertRegex(log, r"imap connect session=\S+ service=imap ip=127\.0\.0\.2 port=\d+ "
                                      r"proxy=127\.0\.0\.1")
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


if __name__ == "__main__":
    unittest.main()
