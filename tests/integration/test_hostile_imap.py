"""IMAP under hostile input: mail crafted to make THREAD and SORT slow
(message-ID tables that fill up, quadratic base-subject extraction), and
pre-authentication commands that try to make the worker buffer megabytes
of literals.  Every test runs on one worker, so a command that hogs the
loop would starve every other session."""
import os
import socket
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, wait_for  # noqa: E402

USER = "alice@example.org"
PASSWORD = "secret"
MB = 1024 * 1024


def crafted_msg(subject, extra="", msgid="<crafted@example.net>"):
    return ("From: Mallory <mallory@example.net>\r\nTo: Alice <%s>\r\n"
            "Subject: %s\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            "Message-ID: %s\r\n%s\r\nhello\r\n" % (USER, subject, msgid, extra)).encode()


class Raw:
    """A byte-level IMAP client with time limits on every read."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no line within %.1fs; buffered %r" % (timeout, self.buf[:200]))
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered %r" % self.buf[:200])
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def until_tag(self, tag, timeout=10.0):
        deadline = time.monotonic() + timeout
        lines = []
        for _ in range(10000):
            ln = self.line(max(0.0, deadline - time.monotonic()))
            lines.append(ln)
            if ln.startswith(tag + " ") or ln.startswith("* BYE"):
                return lines
        raise AssertionError("no tagged reply")

    def cmd(self, tag, text, timeout=10.0):
        self.send("%s %s\r\n" % (tag, text))
        return self.until_tag(tag, timeout)

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return False

    def close(self):
        self.sock.close()


def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    raise AssertionError("%s not in /proc/%d/status" % (field, pid))


class HostileBase(unittest.TestCase):
    def setUp(self):
        self.srv = Server(workers=1)
        self.srv.start()
        self.srv.add_domain("example.org")
        self.srv.add_user(USER, PASSWORD)

    def tearDown(self):
        # A worker stuck in a loop never handles SIGTERM: kill it.
        try:
            stuck = self.srv.proc is not None and self.greeting_time(timeout=2.0) >= 2.0
        except (OSError, EOFError, AssertionError):
            stuck = True
        if stuck:
            self.srv.kill()
        self.srv.cleanup()

    def worker_pid(self):
        pids = wait_for(lambda: self.srv.child_pids("worker"), timeout=5)
        self.assertEqual(len(pids), 1, "one worker expected")
        return pids[0]

    def deliver(self, msg):
        before = len(self.srv.maildir_messages(USER))
        with self.srv.smtp(timeout=30) as s:
            s.sendmail("mallory@example.net", [USER], msg)
        self.assertTrue(wait_for(lambda: len(self.srv.maildir_messages(USER)) > before))

    def raw(self):
        r = Raw(self.srv.connect("imap"))
        self.assertTrue(r.line().startswith("* OK"))
        return r

    def selected(self):
        r = self.raw()
        self.assertTrue(r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))[-1].startswith("l OK"))
        self.assertTrue(r.cmd("s", "SELECT INBOX")[-1].startswith("s OK"))
        return r

    def greeting_time(self, timeout):
        """Seconds until a new IMAP connection gets its greeting."""
        t0 = time.monotonic()
        r = Raw(self.srv.connect("imap", timeout=timeout))
        try:
            self.assertTrue(r.line(timeout).startswith("* OK"))
        finally:
            r.close()
        return time.monotonic() - t0


class TestCraftedMailbox(HostileBase):
    def test_thread_references_many_ids(self):
        # One inbound mail whose References name 70 distinct message IDs
        # (more than the old fixed table of 64 slots for one message).
        refs = " ".join("<ref%d@example.net>" % i for i in range(70))
        self.deliver(crafted_msg("many references", "References: %s\r\n" % refs))
        # and mail crafted against the other costs of THREAD (each field
        # within the 64 KiB the MIME parser takes): a References of 60,000
        # "<" (message-ID scanning), one of 6,000 IDs (a chain of
        # placeholders that deep), and a subject of 32,000 "[]"
        self.deliver(crafted_msg("angles", "References: %s>\r\n" % ("<" * 60000),
                                 msgid="<angles@example.net>"))
        chain = "\r\n ".join(" ".join("<c%d@x>" % i for i in range(j, j + 8)) for j in range(0, 6000, 8))
        self.deliver(crafted_msg("chain", "References: %s\r\n" % chain, msgid="<chain@example.net>"))
        self.deliver(crafted_msg("[]" * 32000 + "x", "In-Reply-To: <c5999@x>\r\n",
                                 msgid="<blobs@example.net>"))
        self.deliver(crafted_msg("mid-chain", "References: <c3000@x>\r\n", msgid="<mid@example.net>"))
        r = self.selected()
        t0 = time.monotonic()
        r.send("t THREAD REFERENCES UTF-8 ALL\r\n")
        # the worker still serves other sessions meanwhile
        time.sleep(0.2)
        self.assertLess(self.greeting_time(timeout=2.0), 2.0)
        lines = r.until_tag("t", timeout=2.0)
        elapsed = time.monotonic() - t0
        self.assertTrue(lines[-1].startswith("t OK"), lines[-1])
        self.assertLess(elapsed, 2.0)
        # 3, 4 and 5 hang below the chain (its placeholders pruned)
        self.assertIn("* THREAD (1)(2)((3)(4)(5))", lines)
        lines = r.cmd("o", "THREAD ORDEREDSUBJECT UTF-8 ALL", timeout=2.0)
        self.assertTrue(lines[-1].startswith("o OK"), lines[-1])
        r.close()

    def test_sort_subject_crafted(self):
        self.deliver(crafted_msg("[]" * 32000 + "x"))
        self.deliver(crafted_msg("a normal subject", msgid="<normal@example.net>"))
        r = self.selected()
        lines = r.cmd("w", "SORT (SUBJECT) UTF-8 ALL", timeout=30)   # warm-up
        self.assertIn("* SORT 2 1", lines)
        times = []
        for i in range(5):
            t0 = time.monotonic()
            lines = r.cmd("s%d" % i, "SORT (SUBJECT) UTF-8 ALL", timeout=30)
            times.append(time.monotonic() - t0)
            self.assertTrue(lines[-1].startswith("s%d OK" % i), lines[-1])
        self.assertLess(statistics.median(times), 0.050, times)
        r.close()


class TestKeywords(HostileBase):
    def test_keywords_per_mailbox_are_bounded(self):
        """Every new keyword sends FLAGS again with all of them: a mailbox
        takes at most 200, then STORE and APPEND of a new one get NO
        [LIMIT] and PERMANENTFLAGS no longer offers \\*."""
        self.deliver(b"Subject: k\r\n\r\nbody\r\n")
        r = self.selected()
        for i in range(0, 200, 50):
            kws = " ".join("kw%d" % k for k in range(i, i + 50))
            self.assertTrue(r.cmd("t", "STORE 1 +FLAGS.SILENT (%s)" % kws)[-1].startswith("t OK"))
        lines = r.cmd("x", "STORE 1 +FLAGS.SILENT (one-too-many)")
        self.assertTrue(lines[-1].startswith("x NO [LIMIT]"), lines[-1])
        lines = r.cmd("a", "APPEND INBOX (another-one) {3+}\r\nx\r\n")
        self.assertTrue(lines[-1].startswith("a NO [LIMIT]"), lines[-1])
        # known keywords and system flags still work
        self.assertTrue(r.cmd("y", "STORE 1 +FLAGS.SILENT (kw7 \\Flagged)")[-1].startswith("y OK"))
        lines = r.cmd("z", "SELECT INBOX")
        flags = [ln for ln in lines if ln.startswith("* FLAGS")][0]
        self.assertEqual(flags.count(" kw"), 200)
        perm = [ln for ln in lines if "PERMANENTFLAGS" in ln][0]
        self.assertNotIn("\\*", perm)
        r.close()


class TestPreauthLiterals(HostileBase):
    def stream(self, r, chunks):
        """Sends chunks from a thread until the server stops reading."""
        def run():
            try:
                for c in chunks:
                    r.sock.sendall(c)
            except OSError:
                pass
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def test_append_literal_before_login(self):
        pid = self.worker_pid()
        hwm0 = proc_status_kb(pid, "VmHWM")
        r = self.raw()
        r.sock.settimeout(10)
        t0 = time.monotonic()
        r.send("a APPEND x {26000000+}\r\n")
        sender = self.stream(r, (b"x" * MB for _ in range(26)))
        line = r.line(timeout=3.0)
        self.assertTrue(line.startswith("* BYE"), line)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertTrue(r.closed(timeout=5.0))
        sender.join(10)
        r.close()
        rss = proc_status_kb(pid, "VmRSS")
        hwm = proc_status_kb(pid, "VmHWM")
        self.assertLess(hwm - hwm0, 4 * 1024, "peak RSS grew %d kB (RSS now %d kB)" % (hwm - hwm0, rss))
        # the worker still serves
        self.assertLess(self.greeting_time(timeout=2.0), 2.0)

    def test_chained_login_literals(self):
        pid = self.worker_pid()
        hwm0 = proc_status_kb(pid, "VmHWM")
        r = self.raw()
        r.send("a LOGIN {65536+}\r\n")
        sender = self.stream(r, ((b"x" * 65536) + b" {65536+}\r\n" for _ in range(390)))
        line = r.line(timeout=3.0)
        self.assertTrue(line.startswith("* BYE"), line)
        self.assertTrue(r.closed(timeout=5.0))
        sender.join(10)
        r.close()
        # small literals chained past the cap are refused as well
        r = self.raw()
        r.send("a LOGIN {4000+}\r\n")
        sender = self.stream(r, ((b"y" * 4000) + b" {4000+}\r\n" for _ in range(20)))
        line = r.line(timeout=3.0)
        self.assertTrue(line.startswith("* BYE"), line)
        self.assertTrue(r.closed(timeout=5.0))
        sender.join(10)
        r.close()
        hwm = proc_status_kb(pid, "VmHWM")
        self.assertLess(hwm - hwm0, 4 * 1024, "peak RSS grew %d kB" % (hwm - hwm0))

    def test_sync_literal_over_cap_before_login(self):
        r = self.raw()
        # a synchronizing literal over the cap: a tagged refusal, no "+"
        r.send("a LOGIN {20000}\r\n")
        line = r.line(timeout=3.0)
        self.assertTrue(line.startswith("a NO") or line.startswith("a BAD"), line)
        # the session goes on: LOGIN with literals of legitimate size
        r.send("b LOGIN {%d}\r\n" % len(USER))
        self.assertTrue(r.line().startswith("+"))
        r.send("%s {%d}\r\n" % (USER, len(PASSWORD)))
        self.assertTrue(r.line().startswith("+"))
        r.send(PASSWORD + "\r\n")
        self.assertTrue(r.until_tag("b")[-1].startswith("b OK"))
        # after login the normal limits apply: a 100 kB literal is fine
        lines = r.cmd("c", "APPEND INBOX {100000+}\r\n%s" % (
            "Subject: big\r\n\r\n" + "z" * (100000 - 16)), timeout=10)
        self.assertTrue(lines[-1].startswith("c OK"), lines[-1])
        r.close()


if __name__ == "__main__":
    unittest.main()
