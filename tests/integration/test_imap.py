"""IMAP server integration tests: imaplib for every command group,
STARTTLS and IMAPS, IDLE with SMTP delivery, bad input, mbsync, mutt, and
two IMAP sessions plus a POP3 session on one user."""
import imaplib
import os
import re
import shutil
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
        names = [os.path.basename(p) for p, _ in self.srv.maildir_messages(USER, "StoreTest")]
        self.assertTrue(any(n.endswith(":2,RS") for n in names), names)
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
        with self.assertRaises(imaplib.IMAP4.error):
            m.create("bad&name")
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


if __name__ == "__main__":
    unittest.main()
