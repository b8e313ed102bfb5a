"""POP3 server (issue 5): poplib over plain, STLS and POP3S, AUTH, fetchmail,
getmail6, `postoffice fetch`, bad input, concurrency, and byte-identical
content from SMTP to POP3."""
import base64
import os
import poplib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Conversation, Server, body_of, tls_context, wait_for  # noqa: E402

USER = "alice@example.org"
PASSWORD = "secret word"


def make_message(subject, body, extra=b""):
    return (b"From: Bob <bob@example.net>\r\nTo: Alice <alice@example.org>\r\n"
            b"Subject: " + subject.encode() + b"\r\nMessage-ID: <" + subject.encode().replace(b" ", b".")
            + b"@example.net>\r\n" + extra + b"\r\n" + body)


TRICKY = make_message(
    "tricky", b".leading dot\r\n..two dots\r\n.\r\nnot the end\r\n"
    b"caf\xc3\xa9 8bit line\r\n" + b"x" * 990 + b"\r\n\r\n\r\nlast line\r\n")


def big_message(size):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?+-*/=()[]{}<>|\r\n"
    parts = []
    total = n = 0
    while total < size:
        part = (b"." if n % 7 == 0 else b"") + line
        parts.append(part)
        total += len(part)
        n += 1
    return make_message("big", b"".join(parts))


class Pop3Raw(Conversation):
    """A raw POP3 client for byte-exact checks."""

    def status(self, timeout=10):
        return self.line(timeout)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def multiline(self, timeout=10):
        """The raw octets of a multi-line body, still byte-stuffed, up to and
        excluding the final '.CRLF'."""
        self.sock.settimeout(timeout)
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            end = self.buf.find(b"\r\n.\r\n")
            if end >= 0:
                data = self.buf[:end + 2]
                self.buf = self.buf[end + 5:]
                return data
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("closed in multi-line response")
            self.buf += chunk


def strip_fetchmail_received(msg):
    """Removes the Received header fetchmail adds (LF line ends)."""
    lines = msg.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"Received:") and b"fetchmail" in b"".join(lines[i:i + 2]):
            j = i + 1
            while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
                j += 1
            return b"\n".join(lines[:i] + lines[j:])
    return msg


def unstuff(data):
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in data.split(b"\r\n"))


class Pop3Base(unittest.TestCase):
    extra_config = ""

    def setUp(self):
        warnings.simplefilter("ignore", ResourceWarning)
        self.srv = Server(extra_config=self.extra_config)
        self.srv.start()
        self.srv.add_domain("example.org")
        self.srv.add_user(USER, PASSWORD)
        self.srv.add_user("carol@example.org", "pw")

    def tearDown(self):
        self.srv.cleanup()

    def send(self, msg, to=USER):
        with self.srv.smtp() as s:
            s.sendmail("bob@example.net", [to], msg)

    def stored(self, address=USER):
        return self.srv.maildir_messages(address)

    def login(self, tls=False):
        p = self.srv.pop3(tls=tls)
        p.user(USER)
        p.pass_(PASSWORD)
        return p

    def raw(self, service="pop3"):
        c = Pop3Raw(self.srv.connect(service))
        greeting = c.status()
        self.assertTrue(greeting.startswith("+OK"), greeting)
        return c

    def raw_login(self):
        c = self.raw()
        self.assertTrue(c.cmd("USER " + USER).startswith("+OK"))
        reply = c.cmd("PASS " + PASSWORD)
        self.assertTrue(reply.startswith("+OK"), reply)
        return c


class TestPop3Commands(Pop3Base):
    def test_greeting_and_capa(self):
        c = self.raw()
        self.assertEqual(c.cmd("CAPA"), "+OK Capability list follows")
        caps = unstuff(c.multiline()).decode().split("\r\n")
        for cap in ("TOP", "UIDL", "USER", "SASL PLAIN LOGIN", "RESP-CODES", "AUTH-RESP-CODE",
                    "PIPELINING", "STLS", "IMPLEMENTATION postoffice"):
            self.assertIn(cap, caps)
        # No APOP timestamp in the greeting (passwords are stored hashed).
        c2 = Pop3Raw(self.srv.connect("pop3"))
        self.assertNotIn("<", c2.status())
        self.assertTrue(c2.cmd("APOP alice 0123456789abcdef0123456789abcdef").startswith("-ERR"))
        self.assertEqual(c.cmd("QUIT"), "+OK postoffice POP3 signing off")
        self.assertTrue(c.closed())

    def test_all_commands(self):
        msgs = [make_message("one", b"first\r\n"), TRICKY, big_message(300000)]
        for m in msgs:
            self.send(m)
        stored = [data for _, data in self.stored()]
        self.assertEqual([body_of(s) for s in stored], msgs)
        p = self.login()
        count, size = p.stat()
        self.assertEqual(count, 3)
        self.assertEqual(size, sum(len(s) for s in stored))
        resp, listing, _ = p.list()
        self.assertEqual(listing, [b"%d %d" % (i + 1, len(s)) for i, s in enumerate(stored)])
        self.assertEqual(p.list(2), b"+OK 2 %d" % len(stored[1]))
        resp, uidls, _ = p.uidl()
        self.assertEqual(len(uidls), 3)
        ids = [u.split()[1] for u in uidls]
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual(p.uidl(3), b"+OK 3 " + ids[2])
        for i, s in enumerate(stored):
            resp, lines, octets = p.retr(i + 1)
            self.assertEqual(resp, b"+OK %d octets" % len(s))
            self.assertEqual(b"\r\n".join(lines) + b"\r\n", s)
        # TOP: the header, the blank line and n body lines.
        header, _, body = stored[1].partition(b"\r\n\r\n")
        resp, lines, _ = p.top(2, 0)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", header + b"\r\n\r\n")
        resp, lines, _ = p.top(2, 3)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n",
                         header + b"\r\n\r\n" + b"\r\n".join(body.split(b"\r\n")[:3]) + b"\r\n")
        resp, lines, _ = p.top(2, 100000)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", stored[1])
        self.assertTrue(p.noop().startswith(b"+OK"))
        self.assertTrue(p.dele(1).startswith(b"+OK"))
        self.assertEqual(p.stat(), (2, size - len(stored[0])))
        self.assertRaises(poplib.error_proto, p.retr, 1)
        self.assertRaises(poplib.error_proto, p.list, 1)
        self.assertTrue(p.rset().startswith(b"+OK"))
        self.assertEqual(p.stat(), (3, size))
        p.dele(1)
        p.dele(3)
        self.assertEqual(len(p.list()[1]), 1)
        self.assertTrue(p.quit().startswith(b"+OK"))
        left = [data for _, data in self.stored()]
        self.assertEqual(left, [stored[1]])
        # The next session numbers the survivor 1 with the same UIDL.
        p = self.login()
        self.assertEqual(p.uidl(1), b"+OK 1 " + ids[1])
        p.quit()

    def test_raw_retr_byte_stuffing(self):
        self.send(TRICKY)
        stored = self.stored()[0][1]
        c = self.raw_login()
        self.assertEqual(c.cmd("RETR 1"), "+OK %d octets" % len(stored))
        data = c.multiline()
        self.assertIn(b"\r\n..leading dot\r\n...two dots\r\n..\r\n", data)
        self.assertEqual(unstuff(data), stored)
        c.cmd("QUIT")

    def test_pipelining(self):
        for i in range(3):
            self.send(make_message("p%d" % i, b"body %d\r\n" % i))
        c = self.raw()
        c.send("USER %s\r\nPASS %s\r\nSTAT\r\nRETR 1\r\nRETR 2\r\nDELE 3\r\nLIST\r\nQUIT\r\n"
               % (USER, PASSWORD))
        self.assertTrue(c.line().startswith("+OK"))
        self.assertTrue(c.line().startswith("+OK Logged in"))
        self.assertTrue(c.line().startswith("+OK 3 "))
        for _ in range(2):
            self.assertTrue(c.line().startswith("+OK"))
            c.multiline()
        self.assertTrue(c.line().startswith("+OK"))
        self.assertTrue(c.line().startswith("+OK 2 messages"))
        self.assertEqual(c.multiline().count(b"\r\n"), 2)
        self.assertEqual(c.line(), "+OK postoffice POP3 signing off")
        self.assertEqual(len(self.stored()), 2)

    def test_auth_plain_and_login(self):
        self.send(make_message("a", b"x\r\n"))
        c = self.raw()
        self.assertEqual(c.cmd("AUTH"), "+OK")
        self.assertEqual(unstuff(c.multiline()), b"PLAIN\r\nLOGIN\r\n")
        token = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
        self.assertTrue(c.cmd("AUTH PLAIN " + token).startswith("+OK Logged in"))
        self.assertTrue(c.cmd("STAT").startswith("+OK 1 "))
        c.cmd("QUIT")
        # Without an initial response: an empty challenge first.
        c = self.raw()
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertTrue(c.cmd(token).startswith("+OK"))
        c.cmd("QUIT")
        # LOGIN
        c = self.raw()
        self.assertEqual(c.cmd("AUTH LOGIN"), "+ " + base64.b64encode(b"Username:").decode())
        self.assertEqual(c.cmd(base64.b64encode(USER.encode()).decode()),
                         "+ " + base64.b64encode(b"Password:").decode())
        self.assertTrue(c.cmd(base64.b64encode(PASSWORD.encode()).decode()).startswith("+OK"))
        c.cmd("QUIT")
        # Wrong password, cancelled exchange, bad base64, unknown mechanism.
        c = self.raw()
        bad = base64.b64encode(b"\0" + USER.encode() + b"\0wrong").decode()
        self.assertEqual(c.cmd("AUTH PLAIN " + bad), "-ERR [AUTH] Authentication failed")
        c.cmd("AUTH PLAIN")
        self.assertTrue(c.cmd("*").startswith("-ERR"))
        self.assertTrue(c.cmd("AUTH PLAIN !!!notbase64").startswith("-ERR"))
        self.assertTrue(c.cmd("AUTH CRAM-MD5").startswith("-ERR"))
        self.assertTrue(c.cmd("STAT").startswith("-ERR"))

    def test_stls_and_pop3s(self):
        self.send(make_message("tls", b"secret stuff\r\n"))
        stored = self.stored()[0][1]
        p = self.srv.pop3()
        p.stls(context=tls_context())
        caps = p.capa()
        self.assertNotIn("STLS", caps)
        p.user(USER)
        p.pass_(PASSWORD)
        self.assertEqual(b"\r\n".join(p.retr(1)[1]) + b"\r\n", stored)
        p.quit()
        p = self.login(tls=True)
        self.assertNotIn("STLS", p.capa())
        self.assertEqual(b"\r\n".join(p.retr(1)[1]) + b"\r\n", stored)
        token = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode())
        p.quit()
        p = self.srv.pop3(tls=True)
        self.assertTrue(p._shortcmd("AUTH PLAIN " + token.decode()).startswith(b"+OK"))
        p.quit()
        self.assertIn("pop3 tls session=", self.srv.log_text())

    def test_new_mail_appears_next_session(self):
        self.send(make_message("first", b"1\r\n"))
        p = self.login()
        self.send(make_message("second", b"2\r\n"))
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        p = self.login()
        self.assertEqual(p.stat()[0], 2)
        p.quit()

    def test_foreign_file_lf_endings(self):
        # A message dropped in by another program, with LF line ends.
        self.send(make_message("init", b"x\r\n"))
        maildir = self.srv.maildir(USER)
        lf = b"From: x@y\nSubject: lf\n\n.dot\nbody\n"
        path = os.path.join(maildir, "new", "1600000000.foreign.host")
        with open(path, "wb") as f:
            f.write(lf)
        os.chmod(path, 0o666)
        c = self.raw_login()
        self.assertTrue(c.cmd("STAT").startswith("+OK 2 "))
        crlf = lf.replace(b"\n", b"\r\n")
        self.assertEqual(c.cmd("LIST 1"), "+OK 1 %d" % len(crlf))
        self.assertEqual(c.cmd("RETR 1"), "+OK %d octets" % len(crlf))
        self.assertEqual(unstuff(c.multiline()), crlf)
        c.cmd("QUIT")

    def test_uidl_stable_across_restart_and_reindex(self):
        for i in range(4):
            self.send(make_message("u%d" % i, b"b\r\n"))
        p = self.login()
        before = p.uidl()[1]
        p.quit()
        self.srv.stop()
        self.srv.start()
        p = self.login()
        self.assertEqual(p.uidl()[1], before)
        p.quit()
        maildir = self.srv.maildir(USER)
        for name in ("index.db", "index.db-wal", "index.db-shm"):
            try:
                os.unlink(os.path.join(maildir, name))
            except FileNotFoundError:
                pass
        p = self.login()
        self.assertEqual(p.uidl()[1], before)
        p.quit()


class TestPop3BadInput(Pop3Base):
    extra_config = "[limits]\nmax_errors = 50\n"

    def test_errors_and_states(self):
        self.send(make_message("x", b"x\r\n"))
        c = self.raw()
        self.assertTrue(c.cmd("FOO").startswith("-ERR Unknown command"))
        self.assertTrue(c.cmd("STAT").startswith("-ERR STAT is not allowed before login"))
        self.assertTrue(c.cmd("RETR 1").startswith("-ERR"))
        self.assertTrue(c.cmd("PASS secret").startswith("-ERR Send USER first"))
        self.assertTrue(c.cmd("USER " + USER).startswith("+OK"))
        self.assertTrue(c.cmd("PASS " + PASSWORD).startswith("+OK"))
        self.assertTrue(c.cmd("USER " + USER).startswith("-ERR USER is not allowed after login"))
        self.assertTrue(c.cmd("STLS").startswith("-ERR"))
        self.assertEqual(c.cmd("RETR 0"), "-ERR There is no message 0")
        self.assertEqual(c.cmd("RETR 99999"), "-ERR There is no message 99999")
        self.assertTrue(c.cmd("RETR -1").startswith("-ERR Invalid message number"))
        self.assertTrue(c.cmd("RETR 99999999999999").startswith("-ERR Invalid message number"))
        self.assertTrue(c.cmd("TOP 1").startswith("-ERR"))
        self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
        self.assertEqual(c.cmd("DELE 1"), "-ERR Message 1 is deleted")
        # A 1 MB line, then NUL bytes: errors, and the session goes on.
        c.send(b"NOOP " + b"A" * (1 << 20) + b"\r\n")
        self.assertEqual(c.line(), "-ERR Line too long")
        c.send(b"NO\0OP\r\n")
        self.assertEqual(c.line(), "-ERR NUL byte in command")
        c.send(b"\xff\xfe\r\n")
        self.assertTrue(c.line().startswith("-ERR"))
        self.assertEqual(c.cmd("NOOP"), "+OK")
        self.assertTrue(c.cmd("RSET").startswith("+OK"))
        self.assertTrue(c.cmd("QUIT").startswith("+OK"))
        self.assertEqual(len(self.stored()), 1)

    def test_wrong_password_and_limit(self):
        c = self.raw()
        for i in range(2):
            c.cmd("USER " + USER)
            self.assertEqual(c.cmd("PASS nope"), "-ERR [AUTH] Authentication failed")
        c.cmd("USER nobody@example.org")
        self.assertTrue(c.cmd("PASS nope").startswith("-ERR [AUTH]"))
        self.assertTrue(c.closed())   # max_auth_failures = 3
        self.assertIn("reason=too-many-auth-failures", self.srv.log_text())

    def test_drain_on_sigterm(self):
        # SIGTERM: sessions between commands hear -ERR [SYS/TEMP] at once,
        # delete nothing without QUIT, and the server stops quickly.
        for i in range(2):
            self.send(make_message("d%d" % i, b"x\r\n"))
        c = self.raw_login()
        self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
        idle = self.raw()
        t0 = time.time()
        self.srv.proc.send_signal(signal.SIGTERM)
        self.assertTrue(c.status(timeout=5).startswith("-ERR [SYS/TEMP]"))
        self.assertTrue(idle.status(timeout=5).startswith("-ERR [SYS/TEMP]"))
        self.srv.proc.wait(timeout=20)
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(len(self.stored()), 2)

    def test_in_use(self):
        self.send(make_message("x", b"x\r\n"))
        p1 = self.login()
        p2 = self.srv.pop3()
        p2.user(USER)
        with self.assertRaises(poplib.error_proto) as ctx:
            p2.pass_(PASSWORD)
        self.assertTrue(str(ctx.exception).startswith("b'-ERR [IN-USE]"), str(ctx.exception))
        # The other user is not affected.
        p3 = self.srv.pop3()
        p3.user("carol@example.org")
        p3.pass_("pw")
        p3.quit()
        p1.quit()
        p2.user(USER)
        p2.pass_(PASSWORD)
        self.assertEqual(p2.stat()[0], 1)
        p2.quit()

    def wait_unlocked(self):
        def try_login():
            p = self.srv.pop3()
            p.user(USER)
            try:
                p.pass_(PASSWORD)
                return p
            except poplib.error_proto:
                p.close()
                return None
        p = wait_for(try_login, timeout=10, interval=0.1)
        self.assertIsNotNone(p, "maildrop still locked")
        return p

    def test_vanish_during_retr(self):
        big = big_message(6 * 1024 * 1024)
        self.send(big)
        self.send(make_message("small", b"x\r\n"))
        stored = [d for _, d in self.stored()]
        c = self.raw_login()
        c.send("DELE 2\r\nRETR 1\r\n")
        c.line()
        self.assertTrue(c.line().startswith("+OK"))
        c.sock.recv(1000)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.sock.close()
        p = self.wait_unlocked()
        self.assertEqual(p.stat()[0], 2)        # nothing deleted without QUIT
        self.assertEqual(b"\r\n".join(p.retr(1)[1]) + b"\r\n", stored[0])
        p.quit()
        self.assertTrue(wait_for(lambda: "eof-during-retr" in self.srv.log_text()
                                 or "reason=Connection reset" in self.srv.log_text(), timeout=5))

    def test_vanish_during_quit(self):
        for i in range(3):
            self.send(make_message("q%d" % i, b"x\r\n"))
        stored = [d for _, d in self.stored()]
        c = self.raw_login()
        c.send("DELE 2\r\nQUIT\r\n")
        c.sock.close()
        self.assertTrue(wait_for(lambda: "deleted=1" in self.srv.log_text(), timeout=10))
        left = [d for _, d in self.stored()]
        self.assertEqual(left, [stored[0], stored[2]])
        p = self.wait_unlocked()
        self.assertEqual(p.stat()[0], 2)
        p.quit()

    def test_dropped_connection_deletes_nothing(self):
        self.send(make_message("keep", b"x\r\n"))
        c = self.raw_login()
        self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
        c.sock.close()
        p = self.wait_unlocked()
        self.assertEqual(p.stat()[0], 1)
        p.quit()


class TestPop3Plaintext(Pop3Base):
    extra_config = "[auth]\nplaintext_auth = no\n"

    def test_plaintext_refused_until_tls(self):
        c = self.raw()
        reply = c.cmd("USER " + USER)
        self.assertTrue(reply.startswith("-ERR [AUTH] Plaintext authentication disallowed"), reply)
        self.assertTrue(c.cmd("AUTH PLAIN").startswith("-ERR [AUTH]"))
        p = self.srv.pop3()
        p.stls(context=tls_context())
        p.user(USER)
        p.pass_(PASSWORD)
        p.quit()
        p = self.login(tls=True)
        p.quit()


class TestPop3Clients(Pop3Base):
    def tool_env(self):
        env = dict(os.environ)
        env["HOME"] = self.srv.dir
        return env

    def fetchmail(self, out_dir, keep=True, fetch_all=False):
        rc = os.path.join(self.srv.dir, "fetchmailrc")
        mda = os.path.join(self.srv.dir, "mda.sh")
        with open(mda, "w") as f:
            f.write("#!/bin/sh\ncat > %s/msg.$(date +%%s%%N).$$\n" % out_dir)
        os.chmod(mda, 0o755)
        with open(rc, "w") as f:
            f.write('poll 127.0.0.1 protocol POP3 port %d uidl\n'
                    '  user "%s" password "%s" %s %s no sslcertck\n'
                    '  mda "%s"\n' % (self.srv.port("pop3"), USER, PASSWORD,
                                       "keep" if keep else "nokeep",
                                       "fetchall" if fetch_all else "", mda))
        os.chmod(rc, 0o600)
        r = subprocess.run(["fetchmail", "-f", rc, "-i", os.path.join(self.srv.dir, "fetchids"),
                            "--pidfile", os.path.join(self.srv.dir, "fetchmail.pid"), "-v"],
                           capture_output=True, env=self.tool_env(), timeout=60)
        # 0: mail fetched, 1: no mail.
        self.assertIn(r.returncode, (0, 1), r.stderr.decode() + r.stdout.decode())
        return sorted(os.listdir(out_dir))

    def test_fetchmail(self):
        out = tempfile.mkdtemp(dir=self.srv.dir)
        msgs = [make_message("fm1", b"one\r\n"), TRICKY]
        for m in msgs:
            self.send(m)
        stored = [d for _, d in self.stored()]
        got = self.fetchmail(out, keep=True)
        self.assertEqual(len(got), 2)
        fetched = []
        for name in got:
            with open(os.path.join(out, name), "rb") as f:
                fetched.append(f.read())
        # fetchmail hands the MDA LF line ends and adds its own Received.
        fetched = [strip_fetchmail_received(f) for f in fetched]
        for s in stored:
            self.assertIn(s.replace(b"\r\n", b"\n"), fetched)
        self.assertEqual(len(self.stored()), 2)   # kept
        # Only new mail on the next run (UIDL tracking).
        self.send(make_message("fm3", b"three\r\n"))
        got2 = self.fetchmail(out, keep=True)
        self.assertEqual(len(got2), 3)
        got3 = self.fetchmail(out, keep=True)
        self.assertEqual(len(got3), 3)
        # Without keep, everything is fetched and removed from the server.
        out2 = tempfile.mkdtemp(dir=self.srv.dir)
        got4 = self.fetchmail(out2, keep=False, fetch_all=True)
        self.assertEqual(len(got4), 3)
        self.assertEqual(self.stored(), [])

    def getmail(self, maildir, delete=False, tls=False):
        gdir = os.path.join(self.srv.dir, "getmail")
        os.makedirs(gdir, exist_ok=True)
        rc = os.path.join(gdir, "getmailrc")
        with open(rc, "w") as f:
            f.write("[retriever]\ntype = %s\nserver = 127.0.0.1\nport = %d\n"
                    "username = %s\npassword = %s\n"
                    "[destination]\ntype = Maildir\npath = %s/\n%s"
                    "[options]\nread_all = false\ndelete = %s\ndelivered_to = false\n"
                    "received = false\nverbose = 0\n"
                    % ("SimplePOP3SSLRetriever" if tls else "SimplePOP3Retriever",
                       self.srv.port("pop3s" if tls else "pop3"), USER, PASSWORD, maildir,
                       # getmail refuses to deliver as root
                       "user = nobody\n" if os.geteuid() == 0 else "",
                       "true" if delete else "false"))
        r = subprocess.run(["getmail", "--getmaildir", gdir, "--rcfile", rc],
                           capture_output=True, env=self.tool_env(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode() + r.stdout.decode())
        out = []
        for sub in ("new", "cur"):
            for name in sorted(os.listdir(os.path.join(maildir, sub))):
                with open(os.path.join(maildir, sub, name), "rb") as f:
                    out.append(f.read())
        return out

    def test_getmail(self):
        md = os.path.join(self.srv.dir, "gm")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
            if os.geteuid() == 0:
                shutil.chown(os.path.join(md, sub), "nobody")
        msgs = [make_message("gm1", b"one\r\n"), TRICKY]
        for m in msgs:
            self.send(m)
        stored = [d for _, d in self.stored()]
        got = self.getmail(md)
        self.assertEqual(len(got), 2)
        for s in stored:
            self.assertIn(s.replace(b"\r\n", b"\n"), [g.replace(b"\r\n", b"\n") for g in got])
        self.assertEqual(len(self.getmail(md)), 2)      # nothing new
        self.send(make_message("gm3", b"three\r\n"))
        self.assertEqual(len(self.getmail(md)), 3)
        self.assertEqual(len(self.stored()), 3)
        md2 = os.path.join(self.srv.dir, "gm-tls")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md2, sub))
            if os.geteuid() == 0:
                shutil.chown(os.path.join(md2, sub), "nobody")
        self.assertEqual(len(self.getmail(md2, tls=True)), 3)
        self.assertEqual(len(self.getmail(md, delete=True)), 3)
        self.assertEqual(self.stored(), [])


class TestPostofficeFetch(Pop3Base):
    def fetch(self, *args, expect=0):
        pwfile = os.path.join(self.srv.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        r = subprocess.run([BIN, "fetch", "--user", USER, "--password-file", pwfile] + list(args),
                           capture_output=True, timeout=60, cwd=self.srv.dir)
        self.assertEqual(r.returncode, expect, r.stderr.decode())
        return r

    def test_fetch_maildir_keep_and_tls(self):
        msgs = [make_message("f1", b"one\r\n"), TRICKY]
        for m in msgs:
            self.send(m)
        stored = sorted(d for _, d in self.stored())
        md = os.path.join(self.srv.dir, "local")
        server = "--server=127.0.0.1:%d" % self.srv.port("pop3")
        self.fetch(server, "--starttls", "--maildir", md, "--keep")
        got = sorted(open(os.path.join(md, "new", n), "rb").read()
                     for n in os.listdir(os.path.join(md, "new")))
        self.assertEqual(got, stored)
        self.fetch(server, "--starttls", "--maildir", md, "--keep")
        self.assertEqual(len(os.listdir(os.path.join(md, "new"))), 2)  # nothing new
        self.send(make_message("f3", b"three\r\n"))
        tls_server = "--server=127.0.0.1:%d" % self.srv.port("pop3s")
        self.fetch(tls_server, "--tls", "--maildir", md, "--keep")
        self.assertEqual(len(os.listdir(os.path.join(md, "new"))), 3)
        self.assertEqual(len(self.stored()), 3)
        # Without --keep: fetched (none new) and deleted on the server.
        self.fetch(server, "--starttls", "--maildir", md)
        self.assertEqual(len(os.listdir(os.path.join(md, "new"))), 3)
        self.assertEqual(self.stored(), [])

    def test_fetch_mbox(self):
        self.send(make_message("m1", b"From the start\r\n>From quoted\r\nbody\r\n"))
        self.send(make_message("m2", b"two\r\n"))
        mbox = os.path.join(self.srv.dir, "mbox")
        self.fetch("--server=127.0.0.1:%d" % self.srv.port("pop3s"), "--tls", "--mbox", mbox)
        import mailbox
        box = mailbox.mbox(mbox)
        subjects = sorted(m["Subject"] for m in box)
        self.assertEqual(subjects, ["m1", "m2"])
        bodies = [m.get_payload() for m in box if m["Subject"] == "m1"]
        # mboxrd quoting (python's mailbox module does not undo it)
        self.assertEqual(bodies[0], ">From the start\n>>From quoted\nbody\n")
        self.assertEqual(self.stored(), [])

    def test_fetch_wrong_password(self):
        pwfile = os.path.join(self.srv.dir, "pw")
        with open(pwfile, "w") as f:
            f.write("wrong\n")
        r = subprocess.run([BIN, "fetch", "--server=127.0.0.1:%d" % self.srv.port("pop3"),
                            "--user", USER, "--password-file", pwfile,
                            "--maildir", os.path.join(self.srv.dir, "x")],
                           capture_output=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"Authentication failed", r.stderr)


if __name__ == "__main__":
    unittest.main()
