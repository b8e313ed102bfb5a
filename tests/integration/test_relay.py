"""Queue and relay (issue 7): two postoffice instances, A for a.test and B
for b.test, on loopback ports, with a DNS responder on loopback serving MX,
A/AAAA and null MX records.  A delivers to B's SMTP port (the [relay]
mx_port option stands in for port 25)."""
import email
import email.policy
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import threading
import time
import unittest

from harness import BIN, Server, tls_context, wait_for, free_port
from dnsserver import DnsServer


def ipv6_port_free(port):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", port))
        s.close()
        return True
    except OSError:
        return False


def message(subject, body="Hello Bob,\r\nthis is a test.\r\n.dot line\r\n", frm="alice@a.test", to="bob@b.test"):
    return ("From: Alice <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@a.test>\r\n\r\n%s"
            % (frm, to, subject, re.sub(r"\W", "", subject), body)).encode()


def start_a(dns, mx_port, retry, extra=""):
    """Server A (a.test, user alice) resolving through dns and delivering
    to MX hosts on mx_port."""
    a = Server(hostname="mx.a.test", extra_config=(
        "[dns]\nresolver = %s\n[relay]\nmx_port = %d\n[queue]\nretry = %s\n%s"
        % (dns.address, mx_port, retry, extra)))
    a.start()
    a.add_domain("a.test")
    a.add_user("alice@a.test", "alicepw")
    return a


class GreylistServer(socketserver.ThreadingTCPServer):
    """A fake MX that answers 451 to the first RCPT of each recipient
    (greylisting) and accepts the message on the retry."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self):
        self.seen = set()
        self.messages = []
        self.attempts = 0
        super().__init__(("127.0.0.1", 0), GreylistHandler)


class GreylistHandler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write((text + "\r\n").encode())

    def handle(self):
        srv = self.server
        self.reply("220 grey.test ESMTP fake")
        rcpts = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd[:4].upper()
            if verb == "EHLO":
                self.reply("250-grey.test\r\n250-PIPELINING\r\n250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 grey.test")
            elif verb == "MAIL":
                rcpts = []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = re.search(r"<([^>]*)>", cmd).group(1)
                srv.attempts += 1
                if addr not in srv.seen:
                    srv.seen.add(addr)
                    self.reply("451 4.7.1 Greylisted, please try again later")
                else:
                    rcpts.append(addr)
                    self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if not rcpts:
                    self.reply("554 5.5.1 No valid recipients")
                    continue
                self.reply("354 go ahead")
                data = b""
                while True:
                    l = self.rfile.readline()
                    if not l or l == b".\r\n":
                        break
                    data += l[1:] if l.startswith(b"..") else l
                srv.messages.append((rcpts, data))
                self.reply("250 2.0.0 Ok queued")
            elif verb == "RSET":
                rcpts = []
                self.reply("250 Ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 5.5.2 unknown")


class RelayBase(unittest.TestCase):
    """A and B running, with the DNS responder and a greylisting MX."""
    a_extra = ""

    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer()
        # b.test: one MX (B).  multi.test: first MX on [::1] (refuses),
        # second MX B.  nomail.test: null MX.  noname.test: no MX, A only.
        cls.dns.add_mx("b.test", 10, "mx.b.test")
        cls.dns.add_a("mx.b.test", "127.0.0.1")
        cls.dns.add_mx("multi.test", 10, "mx1.multi.test")
        cls.dns.add_mx("multi.test", 20, "mx2.multi.test")
        cls.dns.add_aaaa("mx1.multi.test", "::1")
        cls.dns.add_a("mx2.multi.test", "127.0.0.1")
        cls.dns.add_null_mx("nomail.test")
        cls.dns.add_a("noname.test", "127.0.0.1")
        cls.dns.start()
        cls.grey = GreylistServer()
        threading.Thread(target=cls.grey.serve_forever, daemon=True).start()

        # B listens on a port chosen here (A's MX port): another process may
        # take it between the choice and the bind, so choose again then.
        for attempt in range(5):
            cls.b_port = free_port()
            while not ipv6_port_free(cls.b_port):
                cls.b_port = free_port()
            cls.b = Server(hostname="mx.b.test",
                           extra_config="[smtp]\nlisten = 127.0.0.1:%d\n" % cls.b_port)
            try:
                cls.b.start()
                break
            except RuntimeError as e:
                cls.b.cleanup()
                if "Address already in use" not in str(e) or attempt == 4:
                    raise
        for d in ("b.test", "multi.test", "noname.test"):
            cls.b.add_domain(d)
        cls.b.add_user("bob@b.test", "bobpw")
        cls.b.add_user("carol@multi.test", "pw")
        cls.b.add_user("dave@noname.test", "pw")

        cls.a = start_a(cls.dns, cls.b_port, "1s", "[routes]\ngrey.test = 127.0.0.1:%d\n%s"
                        % (cls.grey.server_address[1], cls.a_extra))

    @classmethod
    def tearDownClass(cls):
        cls.a.cleanup()
        cls.b.cleanup()
        cls.grey.shutdown()
        cls.grey.server_close()
        cls.dns.stop()

    def submit(self, msg, to="bob@b.test", frm="alice@a.test"):
        return self.a.submit("alice@a.test", "alicepw", frm, [to] if isinstance(to, str) else to, msg)

    def wait_messages(self, srv, user, count, timeout=20):
        ok = wait_for(lambda: len(srv.maildir_messages(user)) >= count, timeout=timeout)
        self.assertTrue(ok, "%s has %d messages, expected %d\nA log:\n%s" % (
            user, len(srv.maildir_messages(user)), count, self.a.log_text()[-4000:]))
        return srv.maildir_messages(user)

    def find_dsn(self, count_before, timeout=20):
        msgs = self.wait_messages(self.a, "alice@a.test", count_before + 1, timeout)
        return msgs[-1][1]

    def queue_list(self):
        import json
        return json.loads(self.a.cli("queue", "list", "--json").stdout)

    def queue_empty(self):
        return wait_for(lambda: self.queue_list() == [], timeout=20)


class TestRelay(RelayBase):
    def test_1_a_to_b(self):
        msg = message("relay one")
        self.submit(msg)
        msgs = self.wait_messages(self.b, "bob@b.test", 1)
        stored = [m for p, m in msgs if b"relay one" in m]
        self.assertEqual(len(stored), 1)
        data = stored[0]
        received = re.findall(rb"(?m)^Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*", data)
        self.assertGreaterEqual(len(received), 2, data[:800])
        self.assertIn(b"mx.b.test", received[0])
        self.assertTrue(any(b"mx.a.test" in r for r in received[1:]), received)
        # the body travels unchanged
        self.assertTrue(data.endswith(msg.split(b"\r\n\r\n", 1)[1]), data)
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(parsed["Subject"], "relay one")
        # bob fetches it over POP3
        p = self.b.pop3()
        p.user("bob@b.test")
        p.pass_("bobpw")
        count, _ = p.stat()
        self.assertGreaterEqual(count, 1)
        lines = b"\r\n".join(p.retr(count)[1])
        p.quit()
        self.assertIn(b"relay one", lines)
        self.assertTrue(self.queue_empty())

    def test_2_reject_550_dsn(self):
        before = len(self.a.maildir_messages("alice@a.test"))
        self.submit(message("to nobody", to="nobody@b.test"), to="nobody@b.test")
        dsn = self.find_dsn(before)
        parsed = email.message_from_bytes(dsn, policy=email.policy.default)
        self.assertEqual(parsed.get_content_type(), "multipart/report")
        self.assertEqual(parsed.get_param("report-type"), "delivery-status")
        self.assertIn("MAILER-DAEMON", parsed["From"])
        self.assertIn(b"Return-Path: <>", dsn[:200])
        self.assertIn(b"Final-Recipient: rfc822; nobody@b.test", dsn)
        self.assertIn(b"Action: failed", dsn)
        self.assertRegex(dsn, rb"Diagnostic-Code: smtp; 550")
        self.assertIn(b"Remote-MTA: dns; mx.b.test", dsn)
        self.assertIn(b"Subject: to nobody", dsn)
        self.assertTrue(self.queue_empty())

    def test_3_greylisting(self):
        self.submit(message("grey", to="gina@grey.test"), to="gina@grey.test")
        ok = wait_for(lambda: len(self.grey.messages) >= 1, timeout=30)
        self.assertTrue(ok, self.a.log_text()[-3000:])
        rcpts, data = self.grey.messages[0]
        self.assertEqual(rcpts, ["gina@grey.test"])
        self.assertIn(b"Subject: grey", data)
        self.assertGreaterEqual(self.grey.attempts, 2)
        self.assertIn("451 4.7.1", self.a.log_text())
        self.assertTrue(self.queue_empty())

    def test_4_second_mx(self):
        self.submit(message("second mx", to="carol@multi.test"), to="carol@multi.test")
        msgs = self.wait_messages(self.b, "carol@multi.test", 1)
        self.assertIn(b"second mx", msgs[0][1])
        self.assertIn(("mx1.multi.test", 28), self.dns.queries)
        self.assertTrue(self.queue_empty())

    def test_5_null_mx(self):
        before = len(self.a.maildir_messages("alice@a.test"))
        t0 = time.time()
        self.submit(message("null mx", to="x@nomail.test"), to="x@nomail.test")
        dsn = self.find_dsn(before, timeout=10)
        self.assertLess(time.time() - t0, 10)
        self.assertIn(b"Final-Recipient: rfc822; x@nomail.test", dsn)
        self.assertIn(b"Status: 5.1.10", dsn)
        self.assertTrue(self.queue_empty())

    def test_6_implicit_mx(self):
        """No MX record: the domain's own address (RFC 5321 5.1)."""
        self.submit(message("implicit", to="dave@noname.test"), to="dave@noname.test")
        msgs = self.wait_messages(self.b, "dave@noname.test", 1)
        self.assertIn(b"implicit", msgs[0][1])

    def test_7_queue_commands(self):
        r = self.a.cli("queue", "list")
        self.assertIn(b"", r.stdout)
        r = self.a.cli("queue", "show", "NOSUCHID", check=False)
        self.assertNotEqual(r.returncode, 0)
        r = self.a.cli("queue", "flush")
        self.assertEqual(r.returncode, 0)

    def test_8_local_alias_to_remote(self):
        """The runner's local delivery of an alias that points to another
        domain (a message sendmail spooled: no SMTP listener in its
        configuration): the alias is delivered locally and its target
        becomes a recipient of its own, relayed to B."""
        self.a.cli("alias", "add", "team@a.test", "bob@b.test")
        conf = os.path.join(self.a.dir, "spool-only.conf")
        with open(conf, "w") as f:
            f.write("[server]\ndata_dir = %s\nhostname = mx.a.test\n[smtp]\nlisten =\n" % self.a.data_dir)
        r = subprocess.run([BIN, "-c", conf, "sendmail", "-f", "alice@a.test", "team@a.test"],
                           input=b"Subject: via alias\n\nto the team\n", capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"queued as", r.stderr)
        ok = wait_for(lambda: any(b"Subject: via alias" in m
                                  for p, m in self.b.maildir_messages("bob@b.test")), timeout=20)
        self.assertTrue(ok, self.a.log_text()[-3000:])
        log = self.a.log_text()
        self.assertRegex(log, r"queue sent id=\S+ to=<team@a.test> relay=local")
        self.assertRegex(log, r"queue sent id=\S+ to=<bob@b.test> relay=mx.b.test")
        self.assertTrue(self.queue_empty())


class TestMxSplit(unittest.TestCase):
    """RFC 5321 5.1, each MX in turn: recipients the first MX defers with
    4xx are tried at the next one in the same attempt (a job of their own),
    while those it accepted are recorded as sent there.  Both MX names lead
    to the greylisting fake, which defers a recipient once."""

    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer()
        cls.dns.add_mx("split.test", 10, "mx1.split.test")
        cls.dns.add_mx("split.test", 20, "mx2.split.test")
        cls.dns.add_a("mx1.split.test", "127.0.0.1")
        cls.dns.add_a("mx2.split.test", "127.0.0.1")
        cls.dns.start()
        cls.grey = GreylistServer()
        threading.Thread(target=cls.grey.serve_forever, daemon=True).start()
        # A retry long after the test's bound: a deferral would show.
        cls.a = start_a(cls.dns, cls.grey.server_address[1], "600s")

    @classmethod
    def tearDownClass(cls):
        cls.a.cleanup()
        cls.grey.shutdown()
        cls.grey.server_close()
        cls.dns.stop()

    def test_deferred_recipients_go_to_the_next_mx(self):
        self.grey.seen.add("old@split.test")
        rcpts = ["old@split.test", "new@split.test"]
        self.a.submit("alice@a.test", "alicepw", "alice@a.test", rcpts, message("split", to="old@split.test"))
        ok = wait_for(lambda: len(self.grey.messages) >= 2, timeout=20)
        self.assertTrue(ok, self.a.log_text()[-3000:])
        self.assertEqual([r for r, _ in self.grey.messages], [["old@split.test"], ["new@split.test"]])
        log = self.a.log_text()
        self.assertRegex(log, r"queue sent id=\S+ to=<old@split.test> relay=mx1.split.test")
        self.assertRegex(log, r"queue sent id=\S+ to=<new@split.test> relay=mx2.split.test")
        self.assertNotIn("queue deferred", log)
        self.assertTrue(wait_for(lambda: json.loads(self.a.cli("queue", "list", "--json").stdout) == [],
                                 timeout=20))


class TestRelayDown(RelayBase):
    def test_b_down_then_up(self):
        self.b.stop()
        try:
            self.submit(message("while down"))
            def deferred():
                q = self.queue_list()
                return q and q[0]["recipients"][0]["attempts"] >= 1 and q[0]["recipients"][0]["last_reply"]
            self.assertTrue(wait_for(deferred, timeout=20), self.a.log_text()[-3000:])
            q = self.queue_list()
            self.assertEqual(q[0]["recipients"][0]["state"], "pending")
            self.assertRegex(q[0]["recipients"][0]["last_reply"], r"refused|failed")
            text = self.a.cli("queue", "list").stdout.decode()
            self.assertIn("bob@b.test", text)
            self.assertIn("attempts", text)
            # the closing line: count, total size, the oldest message's age
            self.assertRegex(text, r"(?m)^-- 1 message, \d+ bytes, the oldest \d+[sm]( \d+s)? old$")
            # hold keeps it back; release lets it go
            qid = q[0]["id"]
            self.a.cli("queue", "hold", qid)
            self.assertTrue(self.queue_list()[0]["held"])
            self.a.cli("queue", "release", qid)
        finally:
            self.b.start()
        msgs = self.wait_messages(self.b, "bob@b.test", 1, timeout=30)
        self.assertIn(b"while down", msgs[-1][1])
        self.assertTrue(self.queue_empty())


class TestExpiry(RelayBase):
    a_extra = "[queue]\nlifetime = 4s\nretry = 1s\n"

    def test_expiry_bounce(self):
        self.b.stop()
        try:
            before = len(self.a.maildir_messages("alice@a.test"))
            self.submit(message("expires"))
            dsn = self.find_dsn(before, timeout=30)
            self.assertIn(b"Final-Recipient: rfc822; bob@b.test", dsn)
            self.assertIn(b"Action: failed", dsn)
            self.assertIn(b"expired", dsn)
            self.assertTrue(self.queue_empty())
        finally:
            self.b.start()


class TestKillRunner(RelayBase):
    def test_kill_runner_burst(self):
        n = 200
        errors = []

        def burst(start, count):
            try:
                with self.a.smtp("submission") as s:
                    s.starttls(context=tls_context())
                    s.login("alice@a.test", "alicepw")
                    for i in range(start, start + count):
                        s.sendmail("alice@a.test", ["bob@b.test"], message("burst %03d" % i))
            except Exception as e:  # noqa
                errors.append(e)

        threads = [threading.Thread(target=burst, args=(i * 50, 50)) for i in range(4)]
        for t in threads:
            t.start()
        # kill -9 the queue runner while the burst is under way
        killed = 0
        deadline = time.time() + 20
        while killed < 2 and time.time() < deadline:
            time.sleep(0.3)
            for pid in self.a.child_pids("queue"):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(errors, [])
        self.assertGreaterEqual(killed, 1)

        def subjects():
            got = set()
            for p, m in self.b.maildir_messages("bob@b.test"):
                mm = re.search(rb"Subject: burst (\d+)", m)
                if mm:
                    got.add(int(mm.group(1)))
            return got
        ok = wait_for(lambda: len(subjects()) == n, timeout=60)
        self.assertTrue(ok, "missing %s\n%s" % (sorted(set(range(n)) - subjects())[:20],
                                                self.a.log_text()[-3000:]))
        self.assertTrue(self.queue_empty())


if __name__ == "__main__":
    unittest.main()
