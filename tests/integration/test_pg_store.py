"""The mail store in PostgreSQL ([storage] backend = postgresql) end to
end, on a private PostgreSQL (pgserver.py): mail delivered over SMTP to
two users read back byte for byte over IMAP and POP3 (one body row for
both); APPEND/COPY/MOVE/STORE/EXPUNGE; two server processes ("nodes") on
one database, where IMAP IDLE on one sees within a second what the other
delivered or flagged (LISTEN/NOTIFY); and PostgreSQL stopped and started
again under running servers (4xx and NO [UNAVAILABLE], never a lost or
half-accepted message, then service again without a restart)."""
import imaplib
import os
import re
import smtplib
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, body_of, wait_for  # noqa: E402
from pgserver import PgTestCase, available  # noqa: E402

for _cmd in ("MOVE", "IDLE"):
    imaplib.Commands.setdefault(_cmd, ("AUTH", "SELECTED"))

PASSWORD = "pg secret"
ALICE = "alice@example.org"
BOB = "bob@example.org"


def make_msg(subject, body="hello\r\n"):
    return ("From: Carol <carol@sender.test>\r\nTo: Alice <alice@example.org>\r\n"
            "Subject: %s\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            "Message-ID: <%s@sender.test>\r\n\r\n%s" % (subject, re.sub(r"\W", "", subject), body)).encode()


class Raw:
    """A line-level IMAP client (IDLE)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode())

    def line(self, timeout=10):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed: %r" % self.buf)
            self.buf += chunk
        ln, _, self.buf = self.buf.partition(b"\n")
        return ln.rstrip(b"\r").decode("utf-8", "replace")

    def cmd(self, tag, text):
        self.send("%s %s\r\n" % (tag, text))
        lines = []
        for _ in range(1000):
            ln = self.line()
            lines.append(ln)
            if ln.startswith(tag + " ") or ln.startswith("* BYE"):
                return lines
        raise AssertionError("no tagged reply")


@unittest.skipIf(available(), "no private PostgreSQL: %s" % available())
class PgStoreTest(PgTestCase):
    def server(self):
        srv = Server(extra_config="[storage]\nbackend = postgresql\n[postgresql]\nconninfo = %s\n"
                     "[imap]\nmax_connections_per_user = 100\n" % self.conninfo)
        self.addCleanup(srv.cleanup)
        return srv

    def first_server(self):
        srv = self.server()
        srv.cli("db", "init")
        srv.add_domain("example.org")
        srv.add_user(ALICE, PASSWORD)
        srv.add_user(BOB, PASSWORD)
        srv.start()
        return srv

    def psql(self, sql):
        return self.pg.psql(self.conninfo, sql).strip()

    def deliver(self, srv, msg, rcpts=(ALICE,)):
        with srv.smtp() as s:
            s.sendmail("carol@sender.test", list(rcpts), msg)

    def imap(self, srv, user=ALICE):
        m = srv.imap()
        m.login(user, PASSWORD)
        return m

    def raw(self, srv, user=ALICE):
        r = Raw(srv.connect("imap"))
        self.assertTrue(r.line().startswith("* OK"))
        self.assertTrue(r.cmd("l", "LOGIN %s \"%s\"" % (user, PASSWORD))[-1].startswith("l OK"))
        return r

    # ---- delivery and reading back ----
    def test_delivered_mail_read_back(self):
        srv = self.first_server()
        msg = make_msg("to both", "line one\r\n.dot line\r\n\r\nlast line\r\n" + ("x" * 70 + "\r\n") * 100)
        self.deliver(srv, msg, (ALICE, BOB))
        # one body for both recipients; no Maildir anywhere
        self.assertEqual(self.psql("SELECT count(*), sum(refs) FROM mail_bodies"), "1|2")
        self.assertEqual(self.psql("SELECT count(*) FROM mail_messages"), "2")
        self.assertFalse(os.path.exists(srv.maildir(ALICE)))
        for user in (ALICE, BOB):
            m = self.imap(srv, user)
            typ, data = m.select("INBOX")
            self.assertEqual((typ, data[0]), ("OK", b"1"))
            typ, data = m.fetch("1", "(BODY.PEEK[] RFC822.SIZE)")
            self.assertEqual(typ, "OK")
            stored = data[0][1]
            self.assertEqual(body_of(stored), msg)
            self.assertIn(b"RFC822.SIZE %d" % len(stored), data[0][0])
            m.logout()
        p = srv.pop3()
        p.user(BOB)
        p.pass_(PASSWORD)
        resp, lines, octets = p.retr(1)
        self.assertTrue(resp.startswith(b"+OK"))
        self.assertEqual(body_of(b"\r\n".join(lines) + b"\r\n"), msg)
        uidl = p.uidl(1)
        self.assertTrue(uidl.startswith(b"+OK 1 "))
        p.dele(1)
        p.quit()
        self.assertEqual(self.psql("SELECT count(*) FROM mail_messages"), "1")
        self.assertEqual(self.psql("SELECT count(*), sum(refs) FROM mail_bodies"), "1|1")

    def test_imap_round_trip(self):
        srv = self.first_server()
        m = self.imap(srv)
        msg = make_msg("appended")
        typ, data = m.append("INBOX", r"(\Seen $Work)", None, msg)
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0].decode(), r"APPENDUID \d+ 1\]")
        self.deliver(srv, make_msg("delivered"))
        m.select("INBOX")
        typ, data = m.fetch("1:2", "(UID FLAGS BODY.PEEK[])")
        self.assertEqual(data[0][1], msg)
        self.assertIn(b"$Work", data[0][0])
        typ, data = m.uid("COPY", "1:2", "Archive")
        self.assertEqual(typ, "OK")
        typ, data = m.uid("MOVE", "2", "Trash")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.status("Archive", "(MESSAGES)")[1][0], b'"Archive" (MESSAGES 2)')
        self.assertEqual(m.status("Trash", "(MESSAGES)")[1][0], b'"Trash" (MESSAGES 1)')
        typ, data = m.store("1", "+FLAGS", r"(\Deleted \Flagged)")
        self.assertEqual(typ, "OK")
        self.assertIn(b"\\Flagged", data[0])
        m.untagged_responses.pop("EXPUNGE", None)  # MOVE's
        typ, data = m.expunge()
        self.assertEqual(data, [b"1"])
        self.assertEqual(m.status("INBOX", "(MESSAGES)")[1][0], b'"INBOX" (MESSAGES 0)')
        m.select("Archive")
        typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
        self.assertEqual(data[0][1], msg)
        self.assertIn(b"\\Seen", data[0][0])
        # two bodies (appended, delivered), referred to by the rows left
        self.assertEqual(self.psql("SELECT count(*), sum(refs) FROM mail_bodies"), "2|3")
        m.logout()

    # ---- two nodes ----
    def test_two_nodes_idle(self):
        node_a = self.first_server()
        node_b = self.server()
        node_b.start()
        self.deliver(node_b, make_msg("first"))
        r = self.raw(node_a)
        self.assertTrue(r.cmd("s", "SELECT INBOX")[-1].startswith("s OK"))
        r.send("i IDLE\r\n")
        self.assertTrue(r.line().startswith("+"))
        # (a) a delivery through node B's SMTP
        t0 = time.monotonic()
        self.deliver(node_b, make_msg("through node b"))
        self.assertEqual(r.line(timeout=5), "* 2 EXISTS")
        delivered = time.monotonic() - t0
        # (b) a flag set through node B's IMAP
        m = self.imap(node_b)
        m.select("INBOX")
        t0 = time.monotonic()
        m.store("1", "+FLAGS", r"(\Flagged)")
        line = r.line(timeout=5)
        flagged = time.monotonic() - t0
        self.assertRegex(line, r"^\* 1 FETCH \(.*\\Flagged")
        m.logout()
        r.send("DONE\r\n")
        self.assertTrue(r.line().startswith("i OK"))
        self.assertLess(delivered, 1.0, "IDLE on node A saw node B's delivery after %.2fs" % delivered)
        self.assertLess(flagged, 1.0, "IDLE on node A saw node B's flag after %.2fs" % flagged)
        print("idle across nodes: delivery %.3fs, flag %.3fs" % (delivered, flagged), file=sys.stderr)

    # ---- PostgreSQL away ----
    def smtp_attempt(self, srv, msg):
        """The reply code that decided the transaction: RCPT's when it
        refused, else DATA's."""
        with srv.smtp() as s:
            s.ehlo("client.test")
            s.mail("carol@sender.test")
            code, text = s.rcpt(ALICE)
            if code >= 300:
                return code
            code, text = s.data(msg)
            return code

    def test_postgresql_stopped_and_started(self):
        srv = self.first_server()
        self.deliver(srv, make_msg("before"))
        session = self.raw(srv)
        self.assertTrue(session.cmd("a", "SELECT INBOX")[-1].startswith("a OK"))
        # an SMTP transaction whose recipient was accepted, then DATA with
        # PostgreSQL gone: the store's delivery fails, 4xx, never 250
        s = srv.smtp()
        s.ehlo("client.test")
        s.mail("carol@sender.test")
        self.assertEqual(s.rcpt(ALICE)[0], 250)
        self.pg.stop()
        try:
            code, text = s.data(make_msg("during"))
            s.close()
            self.assertTrue(400 <= code < 500, "DATA answered %d with PostgreSQL stopped" % code)
            # a new transaction: refused at RCPT (user database) or DATA
            code2 = self.smtp_attempt(srv, make_msg("during 2"))
            self.assertTrue(400 <= code2 < 500, "SMTP answered %d with PostgreSQL stopped" % code2)
            # the logged-in, selected session: temporary failures (or BYE)
            fetch = session.cmd("b", "FETCH 1 BODY.PEEK[]")
            self.assertTrue(fetch[-1].startswith("b NO [UNAVAILABLE]") or fetch[-1].startswith("* BYE"), fetch)
            select = ["* BYE"]
            if not fetch[-1].startswith("* BYE"):
                select = session.cmd("c", "SELECT INBOX")
                self.assertTrue(select[-1].startswith("c NO [UNAVAILABLE]") or select[-1].startswith("* BYE"),
                                select)
            print("with PostgreSQL stopped: DATA %d, FETCH %r, SELECT %r" % (code, fetch[-1], select[-1]),
                  file=sys.stderr)
        finally:
            self.pg.start()
        # back: the same server delivers and serves without a restart
        self.assertTrue(wait_for(lambda: self.smtp_attempt(srv, make_msg("after")) == 250, timeout=15,
                                 interval=0.3), "SMTP did not recover")
        m = self.imap(srv)
        typ, data = m.select("INBOX")
        self.assertEqual((typ, data[0]), ("OK", b"2"))
        typ, data = m.fetch("2", "(BODY.PEEK[])")
        self.assertEqual(body_of(data[0][1]), make_msg("after"))
        m.logout()
        self.assertEqual(self.psql("SELECT count(*) FROM mail_messages"), "2")


if __name__ == "__main__":
    unittest.main()
