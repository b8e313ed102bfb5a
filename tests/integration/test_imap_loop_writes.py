"""Nothing writes SQLite on an IMAP worker's event loop (docs/architecture.md,
"The io object and the loop"): while another process holds the write lock
of one user's index, the writing commands of that user's sessions wait on
job threads, and every other session of the same worker keeps getting
answers at once.

The index of a user is DATA_DIR/mail/DOMAIN/LOCAL/index.db (SQLite in WAL
mode; store.h).  A separate process takes its write lock (BEGIN IMMEDIATE:
in WAL mode readers go on, writers wait) for LOCK_SECS, less than the
store's busy timeout (10 s), so the waiting commands then complete
normally; a lock held longer than that fails them with NO [UNAVAILABLE]
(docs/architecture.md, "The io object and the loop")."""
import os
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server  # noqa: E402

A = "alice@example.org"
B = "bob@example.org"
PASSWORD = "secret"
LOCK_SECS = 5.0
BOUND_MS = 50.0  # an answer to B, and to A's reads, while A's index is locked

LOCKER = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
# the lock is real: a write of ours is in the transaction
db.execute("UPDATE mailbox SET name=name WHERE id=-1")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
"""


def message(subject, body="hello\r\n"):
    return ("From: Carol <carol@example.org>\r\nTo: Alice <alice@example.org>\r\n"
            "Subject: %s\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            "Message-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n%s" % (
                subject, re.sub(r"\W", "", subject), body)).encode()


class Client:
    """A raw IMAP client that reads literals and stamps each response with
    its arrival time."""

    def __init__(self, srv, prefix):
        self.prefix = prefix
        self.sock = srv.connect("imap")
        self.sock.settimeout(20)
        self.buf = b""
        self.tag = 0
        assert self.response()[1].startswith(b"* OK")

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(self.buf)
        self.buf += chunk

    def response(self):
        """(arrival time, one response with its literals inlined)."""
        out = b""
        for _ in range(1000):
            while b"\r\n" not in self.buf:
                self._fill()
            line, _, self.buf = self.buf.partition(b"\r\n")
            out += line
            m = re.search(rb"\{(\d+)\}$", line)
            if m is None:
                return time.monotonic(), out
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
        raise AssertionError("response with too many literals")

    def send(self, text):
        """Sends a command; returns its tag."""
        self.tag += 1
        tag = "%s%d" % (self.prefix, self.tag)
        self.sock.sendall(("%s %s\r\n" % (tag, text)).encode())
        return tag

    def until(self, tag):
        """[(time, response)] up to and with the tagged reply of tag."""
        got = []
        for _ in range(100000):
            t, r = self.response()
            got.append((t, r))
            if r.startswith(tag.encode() + b" "):
                return got
        raise AssertionError("no tagged reply for " + tag)

    def ok(self, text):
        """Runs a command; its responses (the tagged OK last)."""
        got = [r for _, r in self.until(self.send(text))]
        assert re.match(rb"[a-z]+\d+ OK", got[-1]), (text, got)
        return got

    def close(self):
        self.sock.close()


class TestNothingWritesOnTheLoop(unittest.TestCase):
    def test_locked_index_stalls_only_its_writers(self):
        with Server(workers=1) as srv:
            srv.add_domain("example.org")
            srv.add_user(A, PASSWORD)
            srv.add_user(B, PASSWORD)
            setup = srv.imap()
            for user in (A, B):
                setup.login(user, PASSWORD)
                for i in range(3):
                    setup.append("INBOX", None, None, message("%s %d" % (user, i)))
                setup.logout()
                setup = srv.imap()
            setup.logout()
            # A Maildir++ folder with a message that the index does not know
            # yet: its first SELECT makes its index row and indexes it.
            # Made as the server's user (the tests may run as root).
            owner = os.stat(srv.maildir(A))
            later = srv.maildir(A, "Later")
            name = os.path.join(later, "new", "1700000000.M1P1.test,S=%d" % len(message("x")))
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(later, sub))
            with open(name, "wb") as f:
                f.write(message("x"))
            for path in (later, name) + tuple(os.path.join(later, sub) for sub in ("cur", "new", "tmp")):
                os.chown(path, owner.st_uid, owner.st_gid)

            a1 = Client(srv, "a")
            a1.ok("LOGIN %s %s" % (A, PASSWORD))
            a1.ok("SELECT INBOX")
            a2 = Client(srv, "x")
            a2.ok("LOGIN %s %s" % (A, PASSWORD))
            # a message a1 has not heard of: its next command reports it
            a2.sock.sendall(b"x0 APPEND INBOX {%d+}\r\n" % len(message("new")) + message("new") + b"\r\n")
            self.assertIn(b"x0 OK", a2.until("x0")[-1][1])
            b = Client(srv, "b")
            b.ok("LOGIN %s %s" % (B, PASSWORD))
            b.ok("SELECT INBOX")
            b.ok("FETCH 1:* (ENVELOPE)")

            index = os.path.join(srv.maildir(A), "index.db")
            self.assertTrue(os.path.exists(index), index)
            locker = subprocess.Popen([sys.executable, "-c", LOCKER, index, str(LOCK_SECS)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      user=owner.st_uid, group=owner.st_gid)
            try:
                self.assertEqual(locker.stdout.readline().strip(), b"locked",
                                 locker.stderr.read() if locker.poll() is not None else "")
                locked_at = time.monotonic()
                # A's sessions: reads, then every kind of write, pipelined
                reads = [a1.send("FETCH 1:* (FLAGS)"), a1.send("SEARCH ALL"), a1.send("FETCH 2 (BODY.PEEK[])")]
                writes = [
                    a1.send("FETCH 1 BODY[]"),             # sets \Seen
                    a1.send("FETCH 2:4 (ENVELOPE BODYSTRUCTURE)"),  # cache fills
                    a1.send("FETCH 3 RFC822.TEXT"),        # \Seen again
                    a1.send("STATUS Sent (MESSAGES UIDNEXT UNSEEN)"),
                    a1.send("CREATE Projects"),
                    a1.send("SUBSCRIBE Projects"),
                    a1.send("RENAME Projects Plans"),
                    a1.send('LIST "" "*" RETURN (STATUS (MESSAGES))'),
                    a1.send("UNSUBSCRIBE Projects"),
                    a1.send("DELETE Plans"),
                    a1.send("SELECT Later"),
                ]
                a2_writes = [a2.send("STATUS INBOX (MESSAGES UNSEEN RECENT)"), a2.send("CREATE Other")]
                replies = {}

                def read_all(client, tags):
                    for tag in tags:
                        replies[tag] = client.until(tag)

                readers = [threading.Thread(target=read_all, args=(a1, reads + writes)),
                           threading.Thread(target=read_all, args=(a2, a2_writes))]
                for t in readers:
                    t.start()
                # B, on the same worker, meanwhile
                worst = (0.0, "")
                probes = 0
                commands = ["NOOP", "FETCH 1:* (FLAGS ENVELOPE)", "SELECT INBOX", "FETCH 2 BODY.PEEK[]",
                            "STATUS INBOX (MESSAGES)"]
                while time.monotonic() < locked_at + LOCK_SECS - 0.3 and probes < 5000:
                    cmd = commands[probes % len(commands)]
                    t0 = time.monotonic()
                    b.ok(cmd)
                    ms = (time.monotonic() - t0) * 1000
                    worst = max(worst, (ms, cmd))
                    probes += 1
                    time.sleep(0.005)
                still_locked = locker.poll() is None
                self.assertEqual(locker.wait(timeout=LOCK_SECS + 5), 0, locker.stderr.read())
                released_at = time.monotonic()
                for t in readers:
                    t.join(timeout=15)
                    self.assertFalse(t.is_alive(), "A's commands did not complete after the lock")
            finally:
                if locker.poll() is None:
                    locker.kill()
                    locker.wait()
            self.assertLess(worst[0], BOUND_MS,
                            "B waited %.1f ms for %s while A's index was locked (%d probes)" % (
                                worst[0], worst[1], probes))
            self.assertTrue(still_locked, "the lock ended before B's probes did")
            self.assertGreater(probes, 50)
            # A's reads were answered at once too; its writes waited for the lock
            for tag in reads:
                t, last = replies[tag][-1]
                self.assertRegex(last, rb"^[a-z]\d+ OK", last)
                self.assertLess((t - locked_at) * 1000, BOUND_MS * 4, (tag, last))
            first_write_at, last = replies[writes[0]][-1]
            self.assertGreater(first_write_at, released_at - 0.5, "FETCH BODY[] did not wait for the lock")
            for tag in writes + a2_writes:
                self.assertRegex(replies[tag][-1][1], rb"^[a-z]\d+ OK", replies[tag])
            text = lambda tag: b"\n".join(r for _, r in replies[tag])  # noqa: E731
            # the new message was reported (without \Recent: nobody took it yet)
            self.assertIn(b"* 4 EXISTS", text(reads[0]))
            self.assertRegex(text(writes[0]), rb"\* 1 FETCH \(.*FLAGS \(\\Seen")
            self.assertIn(b"ENVELOPE", text(writes[1]))
            self.assertRegex(text(writes[3]), rb"\* STATUS \"?Sent\"? \(MESSAGES 0 UIDNEXT 1 UNSEEN 0\)")
            self.assertRegex(text(writes[7]), rb'\* LIST \([^)]*\) "\." "?Plans"?')
            self.assertRegex(text(writes[7]), rb"\* STATUS \"?Plans\"? \(MESSAGES 0\)")
            self.assertIn(b"* 1 EXISTS", text(writes[10]))
            self.assertRegex(text(a2_writes[0]), rb"\* STATUS \"?INBOX\"? \(MESSAGES 4 UNSEEN \d RECENT \d\)")
            # and the writes are in the index
            after = Client(srv, "c")
            after.ok("LOGIN %s %s" % (A, PASSWORD))
            listing = b"\n".join(after.ok('LIST "" "*"'))
            self.assertNotIn(b"Plans", listing)
            self.assertNotIn(b"Projects", listing)
            self.assertIn(b"Other", listing)
            self.assertNotIn(b"Projects", b"\n".join(after.ok('LSUB "" "*"')))
            after.ok("SELECT INBOX")
            flags = b"\n".join(after.ok("FETCH 1:4 (FLAGS)"))
            self.assertRegex(flags, rb"\* 1 FETCH \(FLAGS \([^)]*\\Seen")
            self.assertRegex(flags, rb"\* 3 FETCH \(FLAGS \([^)]*\\Seen")
            self.assertNotRegex(flags, rb"\* 2 FETCH \(FLAGS \([^)]*\\Seen")
            for c in (a1, a2, b, after):
                c.close()


if __name__ == "__main__":
    unittest.main()
