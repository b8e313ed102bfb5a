"""IMAP server integration tests: imaplib for every command group,
STARTTLS and IMAPS, IDLE with SMTP delivery, bad input, mbsync, mutt, and
two IMAP sessions plus a POP3 session on one user."""
import imaplib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Server, tls_context, wait_for  # noqa: E402

for _cmd in ("ID", "ENABLE", "MOVE", "UNSELECT", "COMPRESS", "IDLE"):
    imaplib.Commands.setdefault(_cmd, ("NONAUTH", "AUTH", "SELECTED"))

USER = "alice@example.org"
PASSWORD = "secret"


def make_msg(subject, body="hello\r\n", extra=""):
    return ("From: Bob <bob@example.org>\r\nTo: Alice <alice@example.org>\r\n"
            "Subject: %s\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            "Message-ID: <%s@example.org>\r\n%s\r\n%s" % (
                subject, re.sub(r"\W", "", subject) or "x", extra, body)).encode()


class Raw:
    """A byte-level IMAP client for malformed input."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.sock.settimeout(10)

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def until_tag(self, tag):
        lines = []
        for _ in range(10000):
            ln = self.line()
            lines.append(ln)
            if ln.startswith(tag + " ") or ln.startswith("* BYE"):
                return lines
        raise AssertionError("no tagged reply")

    def cmd(self, tag, text):
        self.send("%s %s\r\n" % (tag, text))
        return self.until_tag(tag)


class ImapTestBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(extra_config="[imap]\nmax_connections_per_user = 1000\n")
        cls.srv.start()
        cls.srv.add_domain("example.org")
        cls.srv.add_user(USER, PASSWORD)
        cls.srv.add_user("bob@example.org", PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def deliver(self, msg, rcpt=USER):
        with self.srv.smtp() as s:
            s.sendmail("bob@example.org", [rcpt], msg)

    def login(self, tls=False):
        m = self.srv.imap(tls=tls)
        m.login(USER, PASSWORD)
        return m

    def raw(self):
        r = Raw(self.srv.connect("imap"))
        self.assertTrue(r.line().startswith("* OK"))
        return r


class TestImapCommands(ImapTestBase):
    def test_capability_and_greeting(self):
        m = self.srv.imap()
        self.assertIn("IMAP4REV1", m.capabilities)
        self.assertIn("STARTTLS", m.capabilities)
        typ, data = m.capability()
        self.assertEqual(typ, "OK")
        m.logout()

    def test_login_wrong_password(self):
        m = self.srv.imap()
        with self.assertRaises(imaplib.IMAP4.error):
            m.login(USER, "wrong")
        m.logout()

    def test_authenticate_plain(self):
        m = self.srv.imap()
        typ, _ = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER, PASSWORD)).encode())
        self.assertEqual(typ, "OK")
        m.logout()

    def test_starttls_and_imaps(self):
        m = self.srv.imap()
        m.starttls(ssl_context=tls_context())
        m.login(USER, PASSWORD)
        self.assertEqual(m.select("INBOX")[0], "OK")
        m.logout()
        m = self.srv.imap(tls=True)
        m.login(USER, PASSWORD)
        self.assertEqual(m.noop()[0], "OK")
        m.logout()

    def test_fetch_exact_bytes(self):
        msg = make_msg("fetch exact", "line one\r\nline two\r\n")
        self.deliver(msg)
        m = self.login()
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", '"fetch exact"')
        seq = data[0].split()[-1]
        typ, data = m.fetch(seq, "(BODY.PEEK[] RFC822.SIZE)")
        self.assertEqual(typ, "OK")
        stored = data[0][1]
        self.assertTrue(stored.endswith(msg))
        self.assertIn(b"RFC822.SIZE %d" % len(stored), data[0][0])
        # the same bytes are on disk
        files = [c for _, c in self.srv.maildir_messages(USER) if c.endswith(msg)]
        self.assertEqual(files, [stored])
        typ, data = m.fetch(seq, "(BODY.PEEK[TEXT]<5.8> BODY.PEEK[HEADER.FIELDS (SUBJECT)] FLAGS)")
        self.assertEqual(data[0][1], b"one\r\nlin")
        self.assertEqual(data[1][1], b"Subject: fetch exact\r\n\r\n")
        self.assertNotIn(b"\\Seen", data[2])
        m.fetch(seq, "(BODY[TEXT])")
        typ, data = m.fetch(seq, "(FLAGS)")
        self.assertIn(b"\\Seen", data[0])
        typ, data = m.fetch(seq, "(ENVELOPE BODYSTRUCTURE INTERNALDATE UID BINARY.PEEK[1] BINARY.SIZE[1])")
        self.assertEqual(typ, "OK")
        m.logout()

    def test_multipart_sections(self):
        body = ("--b1\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
                "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                "AAECAw==\r\n--b1--\r\n")
        msg = make_msg("multi", body, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n")
        m = self.login()
        typ, data = m.append("INBOX", None, None, msg)
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
        m.select("INBOX")
        typ, data = m.uid("FETCH", uid, "(BODY.PEEK[1] BODY.PEEK[2.MIME] BINARY.PEEK[2] BODYSTRUCTURE)")
        self.assertEqual(data[0][1], b"part one")
        self.assertIn(b"base64", data[1][1])
        self.assertEqual(data[2][1], b"\x00\x01\x02\x03")
        flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
        self.assertIn(b'"mixed"', flat)
        m.logout()

    def test_store_search_expunge(self):
        m = self.login()
        m.create("StoreTest")
        for i in range(5):
            m.append("StoreTest", None, None, make_msg("store %d" % i))
        m.select("StoreTest")
        typ, data = m.store("1:2", "+FLAGS", "(\\Flagged $Work)")
        self.assertEqual(len(data), 2)
        self.assertEqual(m.search(None, "FLAGGED")[1], [b"1 2"])
        self.assertEqual(m.search(None, "KEYWORD", "$Work")[1], [b"1 2"])
        self.assertEqual(m.search(None, "NOT", "FLAGGED")[1], [b"3 4 5"])
        self.assertEqual(m.search(None, "OR", "1", "5")[1], [b"1 5"])
        self.assertEqual(m.uid("SEARCH", "SUBJECT", '"store 3"')[1], [b"4"])
        self.assertEqual(m.search(None, "SENTON", "1-Jan-2024")[1], [b"1 2 3 4 5"])
        self.assertEqual(m.search(None, "LARGER", "100000")[1], [b""])
        typ, data = m.store("3", "FLAGS.SILENT", "(\\Deleted)")
        self.assertEqual(data, [None])
        typ, data = m.expunge()
        self.assertEqual(data, [b"3"])
        typ, data = m.uid("SEARCH", "ALL")
        self.assertEqual(data, [b"1 2 4 5"])
        # ESEARCH and SEARCHRES
        typ, data = m._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
        self.assertIn(b"MIN 1 MAX 4 COUNT 4", m.untagged_responses.pop("ESEARCH")[0])
        m.store("1:4", "-FLAGS", "(\\Flagged)")
        self.assertEqual(m.search(None, "FLAGGED")[1], [b""])
        m.close()
        # a file on disk carries the Maildir flags
        m.select("StoreTest")
        m.store("1", "+FLAGS", "(\\Seen \\Answered)")
        # (renamed in a batch a moment later)
        names = lambda: [os.path.basename(p) for p, _ in self.srv.maildir_messages(USER, "StoreTest")]
        self.assertTrue(wait_for(lambda: any(n.endswith(":2,RS") for n in names())), names())
        m.logout()

    def test_copy_move_uidplus(self):
        m = self.login()
        m.create("CopySrc")
        m.create("CopyDst")
        for i in range(3):
            m.append("CopySrc", None, None, make_msg("copy %d" % i))
        m.select("CopySrc")
        typ, data = m.copy("1:2", "CopyDst")
        self.assertIn(b"COPYUID", data[0])
        typ, data = m._simple_command("MOVE", "3", "CopyDst")
        self.assertEqual(typ, "OK")
        self.assertIn("EXPUNGE", m.untagged_responses)
        typ, data = m.copy("1", "NoSuchBox")
        self.assertEqual(typ, "NO")
        self.assertIn(b"TRYCREATE", data[0])
        self.assertEqual(m.status("CopyDst", "(MESSAGES)")[1], [b'"CopyDst" (MESSAGES 3)'])
        m.logout()

    def test_mailbox_management(self):
        m = self.login()
        self.assertEqual(m.create("Proj.A")[0], "OK")
        self.assertEqual(m.create("Proj.A")[0], "NO")
        self.assertEqual(m.rename("Proj.A", "Proj.B")[0], "OK")
        typ, data = m.list('""', "Proj.*")
        self.assertEqual(data, [b'(\\HasNoChildren) "." "Proj.B"'])
        typ, data = m.list('""', "%")
        self.assertTrue(any(b'"Proj"' in d for d in data))
        self.assertEqual(m.subscribe("Proj.B")[0], "OK")
        typ, data = m.lsub('""', "*")
        self.assertIn(b'"Proj.B"', b" ".join(data))
        self.assertEqual(m.unsubscribe("Proj.B")[0], "OK")
        self.assertEqual(m.delete("Proj.B")[0], "OK")
        self.assertEqual(m.delete("INBOX")[0], "NO")
        self.assertEqual(m.select("Nope")[0], "NO")
        typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*", "RETURN", "(STATUS", "(MESSAGES))")
        self.assertEqual(typ, "OK")
        lst = m.untagged_responses.pop("LIST")
        for use in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive"):
            self.assertTrue(any(use in l for l in lst), lst)
        self.assertIn("STATUS", m.untagged_responses)
        # modified UTF-7 names
        self.assertEqual(m.create("&AMk-t&AOk-")[0], "OK")
        # well-formed, but not modified UTF-7: refused with NO, not BAD
        self.assertEqual(m.create("bad&name")[0], "NO")
        m.logout()

    def test_extensions(self):
        m = self.login()
        self.assertEqual(m._simple_command("ID", '("name" "test")')[0], "OK")
        self.assertEqual(m.namespace()[1], [b'(("" ".")) NIL NIL'])
        typ, data = m._simple_command("ENABLE", "CONDSTORE", "QRESYNC")
        self.assertEqual(m.untagged_responses.pop("ENABLED"), [b"CONDSTORE QRESYNC"])
        m.select("INBOX")
        self.assertIn("HIGHESTMODSEQ", m.untagged_responses)
        m.append("INBOX", None, None, make_msg("condstore"))
        m.noop()
        typ, data = m.fetch("1:*", "(MODSEQ)")
        modseqs = [int(x) for x in re.findall(rb"MODSEQ \((\d+)\)", b" ".join(data))]
        self.assertTrue(modseqs)
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d)" % max(modseqs))
        self.assertEqual(typ, "OK")
        typ, data = m.store("1", "+FLAGS", "(\\Flagged)")
        typ, data = m._simple_command("STORE", "1", "(UNCHANGEDSINCE 1)", "+FLAGS", "(\\Seen)")
        self.assertIn(b"MODIFIED", m._untagged_response(typ, data, "STORE")[1][0] or b"MODIFIED")
        self.assertEqual(m.getquotaroot("INBOX")[0], "OK")
        self.assertEqual(m.uid("SORT", "(REVERSE ARRIVAL)", "UTF-8", "ALL")[0], "OK")
        self.assertEqual(m.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")[0], "OK")
        self.assertEqual(m._simple_command("UNSELECT")[0], "OK")
        m.logout()

    def test_compress_deflate(self):
        import zlib
        r = self.raw()
        r.cmd("a", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(r.cmd("b", "COMPRESS DEFLATE")[-1].startswith("b OK"))
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        dec = zlib.decompressobj(-15)
        r.send(comp.compress(b"c NOOP\r\n") + comp.flush(zlib.Z_SYNC_FLUSH))
        out = b""
        for _ in range(100):
            out += dec.decompress(r.sock.recv(65536))
            if b"c OK" in out:
                break
        self.assertIn(b"c OK", out)

    def test_idle_smtp_delivery(self):
        r = self.raw()
        r.cmd("a", "LOGIN %s %s" % (USER, PASSWORD))
        r.cmd("b", "SELECT INBOX")
        r.send("c IDLE\r\n")
        self.assertTrue(r.line().startswith("+"))
        t0 = time.time()
        self.deliver(make_msg("idle wakeup"))
        line = r.line()
        self.assertRegex(line, r"^\* \d+ EXISTS$")
        self.assertLess(time.time() - t0, 2.0)
        r.send("DONE\r\n")
        self.assertTrue(r.until_tag("c")[-1].startswith("c OK"))


class TestImapCondstoreQresync(ImapTestBase):
    """RFC 7162: CONDSTORE (MODSEQ, UNCHANGEDSINCE, CHANGEDSINCE) and QRESYNC
    (SELECT with QRESYNC parameters, VANISHED (EARLIER), VANISHED)."""

    def raw_login(self, enable=None):
        r = self.raw()
        self.assertTrue(r.cmd("a", "LOGIN %s %s" % (USER, PASSWORD))[-1].startswith("a OK"))
        if enable:
            lines = r.cmd("e", "ENABLE " + enable)
            self.assertIn("* ENABLED " + enable, lines)
        return r

    def make_mailbox(self, r, name, count):
        """Creates name with count messages; returns their UIDs."""
        r.cmd("c", "CREATE " + name)
        uids = []
        for i in range(count):
            msg = make_msg("%s %d" % (name, i))
            r.send("p%d APPEND %s {%d+}\r\n" % (i, name, len(msg)))
            r.send(msg + b"\r\n")
            last = r.until_tag("p%d" % i)[-1]
            m = re.search(r"APPENDUID \d+ (\d+)", last)
            self.assertTrue(m, last)
            uids.append(int(m.group(1)))
        return uids

    @staticmethod
    def value(lines, pattern):
        for ln in lines:
            m = re.search(pattern, ln)
            if m:
                return int(m.group(1))
        raise AssertionError("%s not in %r" % (pattern, lines))

    def test_unchangedsince(self):
        r = self.raw_login("CONDSTORE")
        self.make_mailbox(r, "CondStore", 3)
        lines = r.cmd("s", "SELECT CondStore (CONDSTORE)")
        self.assertTrue(lines[-1].startswith("s OK"), lines)
        self.value(lines, r"HIGHESTMODSEQ (\d+)")
        # message 2 changes after message 1: its modseq is higher
        r.cmd("f0", "STORE 2 +FLAGS (\\Answered)")
        lines = r.cmd("f1", "FETCH 1:3 (MODSEQ)")
        m1 = self.value(lines, r"^\* 1 FETCH \(MODSEQ \((\d+)\)\)")
        m2 = self.value(lines, r"^\* 2 FETCH \(MODSEQ \((\d+)\)\)")
        self.assertGreater(m2, m1)
        # only the messages unchanged since m1 are stored; 2 is reported
        lines = r.cmd("u1", "STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % m1)
        self.assertRegex(lines[-1], r"^u1 OK \[MODIFIED 2\]")
        fetched = " ".join(lines)
        self.assertRegex(fetched, r"\* 1 FETCH \(.*FLAGS \([^)]*\\Seen")
        self.assertRegex(fetched, r"\* 1 FETCH \(.*MODSEQ \((\d+)\)")
        lines = r.cmd("f2", "FETCH 1:2 (FLAGS)")
        self.assertRegex(lines[0], r"^\* 1 FETCH \(FLAGS \(.*\\Seen")
        self.assertNotIn("\\Seen", [ln for ln in lines if ln.startswith("* 2 FETCH")][0])
        # UNCHANGEDSINCE 0 fails for every message (RFC 7162 3.1.3)
        lines = r.cmd("u2", "STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)")
        self.assertRegex(lines[-1], r"^u2 OK \[MODIFIED 1:3\]")
        # UID STORE reports UIDs; a new modseq is above all the others
        lines = r.cmd("f3", "UID FETCH 1:* (MODSEQ)")
        uids = [int(x) for x in re.findall(r"UID (\d+)", " ".join(lines))]
        top = max(int(x) for x in re.findall(r"MODSEQ \((\d+)\)", " ".join(lines)))
        lines = r.cmd("u3", "UID STORE %d,%d (UNCHANGEDSINCE %d) -FLAGS (\\Answered)" % (uids[0], uids[1], m1))
        self.assertRegex(lines[-1], r"^u3 OK \[MODIFIED %d:%d\]" % (uids[0], uids[1]))
        lines = r.cmd("u4", "UID STORE %d (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Draft)" % (uids[2], top))
        self.assertTrue(lines[-1].startswith("u4 OK"), lines)
        self.assertNotIn("MODIFIED", lines[-1])
        lines = r.cmd("f4", "UID FETCH %d (MODSEQ FLAGS)" % uids[2])
        self.assertGreater(self.value(lines, r"MODSEQ \((\d+)\)"), top)
        # SEARCH MODSEQ gives the highest modseq of what it found
        lines = r.cmd("q1", "SEARCH MODSEQ %d" % (top + 1))
        self.assertRegex(lines[0], r"^\* SEARCH 3 \(MODSEQ \d+\)$")
        lines = r.cmd("q2", "SEARCH MODSEQ %d" % (10 ** 12))
        self.assertEqual(lines[0], "* SEARCH")
        # CHANGEDSINCE: only messages changed after the value
        lines = r.cmd("f5", "FETCH 1:3 (FLAGS) (CHANGEDSINCE %d)" % top)
        self.assertEqual([ln.split()[1] for ln in lines if ln.startswith("* ")], ["3"])
        r.cmd("z", "LOGOUT")

    def test_qresync(self):
        setup = self.raw_login("QRESYNC")
        uids = self.make_mailbox(setup, "QResync", 4)
        lines = setup.cmd("s", "SELECT QResync")
        uidvalidity = self.value(lines, r"UIDVALIDITY (\d+)")
        before = self.value(lines, r"HIGHESTMODSEQ (\d+)")
        # changes while the client is away: one flag change, one expunge
        setup.cmd("x1", "UID STORE %d +FLAGS (\\Flagged)" % uids[1])
        setup.cmd("x2", "UID STORE %d +FLAGS (\\Deleted)" % uids[0])
        setup.cmd("x3", "UID EXPUNGE %d" % uids[0])

        # QRESYNC needs ENABLE QRESYNC first
        r = self.raw_login()
        lines = r.cmd("b", "SELECT QResync (QRESYNC (%d %d))" % (uidvalidity, before))
        self.assertTrue(lines[-1].startswith("b BAD"), lines)
        r.cmd("e", "ENABLE QRESYNC")
        lines = r.cmd("q", "SELECT QResync (QRESYNC (%d %d %d:%d))" % (
            uidvalidity, before, uids[0], uids[-1]))
        self.assertTrue(lines[-1].startswith("q OK"), lines)
        self.assertIn("* VANISHED (EARLIER) %d" % uids[0], lines)
        changed = [ln for ln in lines if ln.startswith("* ") and " FETCH " in ln]
        self.assertEqual(len(changed), 1, lines)
        self.assertRegex(changed[0], r"^\* 1 FETCH \(UID %d FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$" % uids[1])
        self.assertIn("* 3 EXISTS", lines)
        # known UIDs limit what is reported as vanished
        lines = r.cmd("q2", "SELECT QResync (QRESYNC (%d %d %d))" % (uidvalidity, before, uids[3]))
        self.assertFalse([ln for ln in lines if "VANISHED" in ln], lines)
        self.assertIn("* OK [CLOSED] Previous mailbox closed", lines)
        # another UIDVALIDITY: nothing to resynchronise
        lines = r.cmd("q3", "SELECT QResync (QRESYNC (%d %d))" % (uidvalidity + 1, before))
        self.assertTrue(lines[-1].startswith("q3 OK"), lines)
        self.assertFalse([ln for ln in lines if ln.startswith("* ") and ("VANISHED" in ln or " FETCH " in ln)], lines)
        # malformed parameters
        self.assertTrue(r.cmd("q4", "SELECT QResync (QRESYNC (0 1))")[-1].startswith("q4 BAD"))
        self.assertTrue(r.cmd("q5", "SELECT QResync (QRESYNC (%d))" % uidvalidity)[-1].startswith("q5 BAD"))
        r.cmd("q6", "SELECT QResync")
        # UID FETCH ... (CHANGEDSINCE m VANISHED)
        lines = r.cmd("v", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % before)
        self.assertIn("* VANISHED (EARLIER) %d" % uids[0], lines)
        self.assertEqual(len([ln for ln in lines if ln.startswith("* ") and " FETCH " in ln]), 1, lines)
        # VANISHED without QRESYNC's UID FETCH is refused
        self.assertTrue(r.cmd("v2", "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1].startswith("v2 BAD"))
        # an expunge by another session arrives as VANISHED, not EXPUNGE
        setup.cmd("x4", "UID STORE %d +FLAGS (\\Deleted)" % uids[2])
        setup.cmd("x5", "UID EXPUNGE %d" % uids[2])
        lines = r.cmd("n", "NOOP")
        self.assertIn("* VANISHED %d" % uids[2], lines)
        self.assertFalse([ln for ln in lines if ln.endswith(" EXPUNGE")], lines)
        # and our own UID EXPUNGE too (RFC 7162 3.2.10)
        r.cmd("d", "UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[3])
        lines = r.cmd("d2", "UID EXPUNGE %d" % uids[3])
        self.assertIn("* VANISHED %d" % uids[3], lines)
        r.cmd("z", "LOGOUT")
        setup.cmd("z", "LOGOUT")


    def test_search_header_cache(self):
        """SEARCH on header fields reads the cached header blocks: the same
        answers before anything is cached, after SEARCH cached them and
        after FETCH ENVELOPE did; encoded words, folding and bare LF."""
        r = self.raw_login()
        r.cmd("c", "CREATE HdrCache")
        msgs = [
            b"From: a@x\r\nSubject: =?utf-8?q?caf=C3=A9_menu?=\r\nX-Tag: one\r\n\r\nbody one\r\n",
            b"From: b@x\r\nSubject: folded\r\n  subject line\r\nX-Tag: two\r\n\r\nmenu in the body\r\n",
            b"From: c@x\nSubject: bare lf header\nX-Tag: three\n\nbody three\n",
        ]
        for i, msg in enumerate(msgs):
            r.send("p%d APPEND HdrCache {%d+}\r\n" % (i, len(msg)))
            r.send(msg + b"\r\n")
            self.assertIn("OK", r.until_tag("p%d" % i)[-1])
        r.cmd("s", "SELECT HdrCache")
        queries = [("SUBJECT \"café\"", "1"), ("SUBJECT menu", "1"), ("HEADER X-Tag two", "2"),
                   ("SUBJECT \"subject line\"", "2"), ("HEADER X-Tag \"\"", "1 2 3"),
                   ("FROM c@x SUBJECT \"bare lf\"", "3"), ("TEXT menu", "1 2"), ("BODY menu", "2"),
                   ("NOT HEADER X-Tag one", "2 3"), ("HEADER X-Missing \"\"", "")]
        for round_ in ("file", "cached", "envelope"):
            if round_ == "envelope":
                r.cmd("f", "FETCH 1:* ENVELOPE")
            for i, (q, want) in enumerate(queries):
                lines = r.cmd("q%d" % i, "SEARCH CHARSET UTF-8 " + q)
                self.assertEqual(lines[0], ("* SEARCH " + want).rstrip(), (round_, q, lines))
        lines = r.cmd("t", "FETCH 3 BODY.PEEK[HEADER.FIELDS (X-Tag)]")
        self.assertIn("X-Tag: three", " ".join(lines))
        r.cmd("z", "LOGOUT")

class TestImapBadInput(ImapTestBase):
    def test_bad_commands(self):
        r = self.raw()
        self.assertIn("BAD", r.cmd("a", "FROBNICATE")[-1])
        self.assertIn("BAD", r.cmd("b", "SELECT INBOX")[-1])          # wrong state
        self.assertIn("BAD", r.cmd("c", "LOGIN (a b")[-1])            # unbalanced
        r.send("+tag NOOP\r\n")
        self.assertIn("BAD", r.line())                                 # bad tag
        self.assertIn("Invalid literal", r.cmd("d", "LOGIN {-5}")[-1])
        self.assertIn("too big", r.cmd("e", "LOGIN {99999999}")[-1])
        r.send(b"f NOOP\x00x\r\n")
        self.assertIn("NUL", r.line())
        r.send("g LOGIN " + "x" * (1024 * 1024) + "\r\n")
        self.assertIn("too long", r.line())
        self.assertTrue(r.cmd("h", "NOOP")[-1].startswith("h OK"))
        r.cmd("i", "LOGIN %s %s" % (USER, PASSWORD))
        r.cmd("j", "SELECT INBOX")
        self.assertIn("BAD", r.cmd("k", "FETCH 999999 FLAGS")[-1])
        self.assertIn("BAD", r.cmd("l", "FETCH 1 (FLAGS")[-1])
        self.assertIn("BAD", r.cmd("m", "STORE 1 +FLAGS (\\Recent)")[-1])
        self.assertIn("BAD", r.cmd("n", "LOGIN x y")[-1])             # wrong state again
        self.assertTrue(r.cmd("o", "UID FETCH 999999 FLAGS")[-1].startswith("o OK"))

    def test_literal_never_arrives(self):
        r = self.raw()
        r.send("a LOGIN {10}\r\n")
        self.assertTrue(r.line().startswith("+"))
        r.send("abc")
        # others are served meanwhile
        m = self.login()
        self.assertEqual(m.noop()[0], "OK")
        m.logout()

    def test_too_many_bad_commands(self):
        r = self.raw()
        try:
            r.send("".join("t%d BOGUS\r\n" % i for i in range(30)))
        except (BrokenPipeError, ConnectionError):
            pass
        lines = []
        try:
            for _ in range(100):
                lines.append(r.line())
        except (EOFError, socket.timeout, ConnectionError):
            pass
        self.assertTrue(any(l.startswith("* BYE") for l in lines))


class TestImapConcurrency(ImapTestBase):
    def test_two_imap_and_pop3(self):
        a = self.login()
        b = self.login()
        a.create("Shared")
        for i in range(3):
            self.deliver(make_msg("conc %d" % i))
        a.select("INBOX")
        b.select("INBOX")
        n = int(a.select("INBOX")[1][0])
        a.store("1", "+FLAGS", "(\\Flagged)")
        b.noop()
        fetches = b.untagged_responses.pop("FETCH", [])
        self.assertTrue(any(b"\\Flagged" in f for f in fetches), fetches)
        # expunge in a, b must not see EXPUNGE during FETCH but at NOOP
        a.store(str(n), "+FLAGS", "(\\Deleted)")
        a.expunge()
        typ, data = b.fetch("1:*", "(FLAGS)")
        self.assertNotIn("EXPUNGE", b.untagged_responses)
        b.noop()
        self.assertEqual(b.untagged_responses.pop("EXPUNGE"), [str(n).encode()])
        # POP3 sees the same mailbox
        p = self.srv.pop3()
        p.user(USER)
        p.pass_(PASSWORD)
        count, _ = p.stat()
        self.assertEqual(count, n - 1)
        p.dele(1)
        p.quit()
        b.noop()
        self.assertIn("EXPUNGE", b.untagged_responses)
        self.deliver(make_msg("conc late"))
        wait_for(lambda: a.noop() and "EXISTS" in a.untagged_responses, 5)
        self.assertIn("EXISTS", a.untagged_responses)
        a.logout()
        b.logout()


@unittest.skipUnless(shutil.which("mbsync"), "mbsync not installed")
class TestMbsync(ImapTestBase):
    def test_sync_both_ways(self):
        m = self.login()
        m.create("SyncMe")
        m.append("SyncMe", "(\\Flagged)", None, make_msg("from server"))
        m.logout()
        d = tempfile.mkdtemp(prefix="mbsync-")
        try:
            local = os.path.join(d, "mail") + "/"
            os.makedirs(local)
            rc = os.path.join(d, "mbsyncrc")
            with open(rc, "w") as f:
                f.write("IMAPAccount t\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\nSSLType None\n"
                        "AuthMechs LOGIN\n\nIMAPStore remote\nAccount t\n\n"
                        "MaildirStore local\nPath %s\nInbox %sINBOX\nSubFolders Verbatim\n\n"
                        "Channel c\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nSyncState *\n"
                        "Expunge Both\n" % (self.srv.port("imap"), USER, PASSWORD, local, local))
            run = lambda: subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True, timeout=60)
            r = run()
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            sync_dir = os.path.join(local, "SyncMe", "new")
            files = os.listdir(sync_dir)
            if not files:
                sync_dir = os.path.join(local, "SyncMe", "cur")
                files = os.listdir(sync_dir)
            self.assertEqual(len(files), 1)
            self.assertIn("F", files[0].split(":2,")[1])
            # local change: a new folder with a message, a flag on the old one
            newdir = os.path.join(local, "FromLocal")
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(newdir, sub))
            with open(os.path.join(newdir, "cur", "1.local:2,S"), "wb") as f:
                f.write(make_msg("from local"))
            old = os.path.join(sync_dir, files[0])
            os.rename(old, os.path.join(local, "SyncMe", "cur", files[0] + "S"))
            r = run()
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            m = self.login()
            self.assertEqual(m.select("FromLocal")[0], "OK")
            typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
            self.assertIn(b"\\Seen", data[0][0])
            # mbsync adds its own X-TUID header while uploading
            got = re.sub(rb"X-TUID: [^\r]*\r\n", b"", data[0][1])
            self.assertEqual(got, make_msg("from local"))
            m.select("SyncMe")
            typ, data = m.fetch("1", "(FLAGS)")
            self.assertIn(b"\\Seen", data[0])
            m.logout()
        finally:
            shutil.rmtree(d, ignore_errors=True)


@unittest.skipUnless(shutil.which("mutt"), "mutt not installed")
class TestMutt(ImapTestBase):
    def test_mutt_reads_message(self):
        msg = make_msg("for mutt", "mutt body marker\r\n")
        self.deliver(msg)
        d = tempfile.mkdtemp(prefix="mutt-")
        try:
            rc = os.path.join(d, "muttrc")
            out = os.path.join(d, "out.txt")
            with open(rc, "w") as f:
                f.write('set folder="imap://%s:%s@127.0.0.1:%d/"\nset spoolfile="+INBOX"\n'
                        'set ssl_starttls=no\nset ssl_force_tls=no\nset header_cache=""\n'
                        'set message_cachedir=""\nset wait_key=no\nset pipe_decode=no\n'
                        'set pipe_split=no\n'
                        % (USER.replace("@", "%40"), PASSWORD, self.srv.port("imap")))
            # open INBOX, search the message, pipe it to a file, quit
            cmds = ['push "<limit>~s for mutt<enter><pipe-message>cat > %s<enter><quit>"' % out]
            args = ["mutt", "-n", "-F", rc, "-e", cmds[0]]
            subprocess.run(["script", "-qc", " ".join("'%s'" % a for a in args), "/dev/null"],
                           capture_output=True, timeout=60, env=dict(os.environ, TERM="dumb"))
            with open(out, "rb") as f:
                got = f.read()
            self.assertIn(b"mutt body marker", got)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class TestImapDrain(unittest.TestCase):
    """SIGTERM drains the server: sessions in IDLE or between commands get
    BYE at once, a session in the middle of a command finishes it and then
    gets BYE, and the server exits without waiting for its drain timeout."""

    def test_bye_on_sigterm(self):
        srv = Server()
        try:
            srv.start()
            srv.add_domain("example.org")
            srv.add_user(USER, PASSWORD)
            sessions = []
            for _ in range(3):
                r = Raw(srv.connect("imap"))
                self.assertTrue(r.line().startswith("* OK"))
                self.assertTrue(r.cmd("a", "LOGIN %s %s" % (USER, PASSWORD))[-1].startswith("a OK"))
                self.assertTrue(r.cmd("b", "SELECT INBOX")[-1].startswith("b OK"))
                sessions.append(r)
            idle, quiet, partial = sessions
            idle.send("c IDLE\r\n")
            self.assertTrue(idle.line().startswith("+"))
            partial.send("d STATUS INBOX (MESSAGES")
            time.sleep(0.2)
            t0 = time.time()
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(idle.line(), "* BYE Server shutting down")
            self.assertEqual(quiet.line(), "* BYE Server shutting down")
            self.assertLess(time.time() - t0, 2.0)
            with self.assertRaises(EOFError):
                idle.line()
            partial.send(")\r\n")
            lines = partial.until_tag("d")
            self.assertIn('* STATUS "INBOX" (MESSAGES 0)', lines)
            self.assertTrue(lines[-1].startswith("d OK"), lines)
            self.assertEqual(partial.line(), "* BYE Server shutting down")
            srv.proc.wait(timeout=5)
            self.assertLess(time.time() - t0, 5.0)
            self.assertNotIn("drain-timeout", srv.log_text())
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
