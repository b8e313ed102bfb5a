"""SMTP server: delivery byte for byte, TLS, AUTH, pipelining, real clients
(smtplib, swaks, msmtp) and every bad input the issue lists."""
import base64
import os
import re
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest

from harness import BIN, Server, Conversation, body_of, tls_context, wait_for

MSG = (b"From: Bob <bob@remote.test>\r\nTo: alice@example.org\r\nSubject: hello\r\n"
       b"Message-ID: <1@remote.test>\r\n\r\nLine one\r\n.leading dot\r\n..two dots\r\n\r\nend\r\n")


def raw_data(body):
    """Dot-stuffs body for DATA."""
    return re.sub(rb"(?m)^\.", b"..", body)


class SmtpBase(unittest.TestCase):
    extra_config = ""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(extra_config=cls.extra_config)
        cls.srv.start()
        cls.srv.add_domain("example.org")
        cls.srv.add_domain("other.example")
        cls.srv.add_user("alice@example.org", "secret")
        cls.srv.add_user("bob@example.org", "hunter2")
        cls.srv.add_user("carol@other.example", "pw")

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def conv(self, service="smtp"):
        c = Conversation(self.srv.connect(service))
        code, _ = c.reply()
        self.assertEqual(code, 220)
        return c

    def count(self, user="alice@example.org"):
        return len(self.srv.maildir_messages(user))

    def newest(self, user="alice@example.org"):
        # Maildir names start with seconds.microseconds: they sort by time.
        msgs = self.srv.maildir_messages(user)
        return max(msgs, key=lambda m: os.path.basename(m[0]))[1] if msgs else None


class TestDelivery(SmtpBase):
    def test_smtplib_byte_for_byte(self):
        before = self.count()
        with self.srv.smtp() as s:
            s.ehlo("client.test")
            refused = s.sendmail("bob@remote.test", ["alice@example.org"], MSG)
            self.assertEqual(refused, {})
        msgs = self.srv.maildir_messages("alice@example.org")
        self.assertEqual(len(msgs), before + 1)
        stored = self.newest()
        # the inbound port's checks (unsigned: dkim=none; no DNS here: spf
        # and dmarc temperror) in one field above Received
        self.assertRegex(stored[:600], rb"^Return-Path: <bob@remote.test>\r\n"
                         rb"Authentication-Results: mail.test;\r\n(\t[^\r\n]*\r\n)*"
                         rb"Received: from client.test \(\[127.0.0.1\]\)")
        self.assertIn(b"\tdkim=none;\r\n", stored[:600])
        self.assertEqual(body_of(stored), MSG)
        self.assertIn(b"by mail.test (postoffice) with ESMTP id ", stored)
        # The ,S= size in the file name is the exact size.
        path = max(msgs, key=lambda m: os.path.basename(m[0]))[0]
        self.assertEqual(int(re.search(r",S=(\d+)", path).group(1)), len(stored))

    def test_multiple_recipients_one_write(self):
        with self.srv.smtp() as s:
            s.sendmail("x@remote.test", ["alice@example.org", "bob@example.org", "carol@other.example"], MSG)
        a = self.srv.maildir_messages("alice@example.org")[-1][0]
        b = self.srv.maildir_messages("bob@example.org")[-1][0]
        # Hard links: one data write serves all local recipients.
        self.assertEqual(os.stat(a).st_ino, os.stat(b).st_ino)
        self.assertGreaterEqual(os.stat(a).st_nlink, 2)

    def test_null_sender_and_postmaster(self):
        with self.srv.smtp() as s:
            s.ehlo()
            self.assertEqual(s.mail("<>")[0], 250)
            self.assertEqual(s.rcpt("<postmaster@example.org>")[0], 250)
            self.assertEqual(s.rcpt("<Postmaster>")[0], 250)
            code, _ = s.data(MSG)
            self.assertEqual(code, 250)
        # Default postmaster: the domain's first user.
        self.assertIn(b"Return-Path: <>", self.newest("alice@example.org"))

    def test_helo_and_commands(self):
        c = self.conv()
        self.assertEqual(c.cmd("HELO client.test")[0], 250)
        self.assertEqual(c.cmd("NOOP")[0], 250)
        code, lines = c.cmd("VRFY alice")
        self.assertEqual(code, 252)
        self.assertEqual(c.cmd("HELP")[0], 214)
        self.assertEqual(c.cmd("RSET")[0], 250)
        self.assertEqual(c.cmd("EXPN list")[0], 502)
        code, lines = c.cmd("QUIT")
        self.assertEqual(code, 221)
        self.assertTrue(c.closed())

    def test_ehlo_extensions(self):
        c = self.conv()
        code, lines = c.cmd("EHLO client.test")
        self.assertEqual(code, 250)
        exts = [l[4:].split()[0] for l in lines[1:]]
        for e in ["PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN", "CHUNKING", "STARTTLS"]:
            self.assertIn(e, exts)
        self.assertNotIn("AUTH", exts, "no AUTH on the inbound port")
        # Every reply after EHLO carries an enhanced status code.
        for cmd in ["NOOP", "RSET", "MAIL FROM:<a@remote.test>", "RCPT TO:<alice@example.org>", "RSET", "QUIT"]:
            code, lines = c.cmd(cmd)
            self.assertRegex(lines[-1], r"^\d{3} [245]\.\d{1,3}\.\d{1,3} ")

    def test_pipelining(self):
        c = self.conv()
        c.cmd("EHLO client.test")
        c.send("MAIL FROM:<p@remote.test>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\n"
               "RCPT TO:<bob@example.org>\r\nDATA\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 550)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 354)
        c.send(raw_data(MSG) + b".\r\nMAIL FROM:<q@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 354)
        c.send(raw_data(MSG) + b".\r\nQUIT\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 221)

    def test_bdat(self):
        before = self.count("bob@example.org")
        c = self.conv()
        c.cmd("EHLO client.test")
        self.assertEqual(c.cmd("MAIL FROM:<b@remote.test>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org>")[0], 250)
        half = len(MSG) // 2
        c.send(b"BDAT %d\r\n" % half + MSG[:half])
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 503)
        c.send(b"BDAT %d LAST\r\n" % (len(MSG) - half) + MSG[half:])
        code, lines = c.reply()
        self.assertEqual(code, 250, lines)
        self.assertEqual(self.count("bob@example.org"), before + 1)
        self.assertEqual(body_of(self.newest("bob@example.org")), MSG)
        # BDAT without a transaction: the chunk is read and dropped.
        c.send(b"BDAT 5 LAST\r\nHELLO")
        self.assertEqual(c.reply()[0], 503)
        self.assertEqual(c.cmd("NOOP")[0], 250)

    def test_dsn_and_smtputf8_parameters(self):
        c = self.conv()
        c.cmd("EHLO client.test")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test> RET=HDRS ENVID=abc+2Bdef BODY=8BITMIME")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.org")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org> NOTIFY=NEVER,SUCCESS")[0], 501)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org> FOO=BAR")[0], 555)
        self.assertEqual(c.cmd("RSET")[0], 250)
        # A UTF-8 address needs SMTPUTF8 (RFC 6531).
        self.assertEqual(c.cmd("MAIL FROM:<j\u00f6rg@remote.test>".encode().decode("unicode_escape"))[0], 501)
        c.send("MAIL FROM:<jörg@remote.test> SMTPUTF8\r\n".encode())
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send("Subject: grüße\r\n\r\nüber\r\n.\r\n".encode())
        self.assertEqual(c.reply()[0], 250)
        stored = self.newest()
        self.assertIn("Return-Path: <jörg@remote.test>".encode(), stored)
        self.assertIn(b"with UTF8SMTP id", stored)

    def test_stalled_client_does_not_delay_others(self):
        stalled = self.conv()
        stalled.cmd("EHLO slow.test")
        stalled.cmd("MAIL FROM:<a@remote.test>")
        stalled.cmd("RCPT TO:<alice@example.org>")
        stalled.cmd("DATA")
        stalled.send(b"Subject: slow\r\n\r\nhalf a mess")
        t0 = time.time()
        for i in range(5):
            with self.srv.smtp() as s:
                s.sendmail("b@remote.test", ["bob@example.org"], MSG)
        self.assertLess(time.time() - t0, 5)
        stalled.send(b"age\r\n.\r\n")
        self.assertEqual(stalled.reply()[0], 250)

    def test_swaks(self):
        before = self.count()
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.srv.port("smtp"),
                            "--from", "s@remote.test", "--to", "alice@example.org",
                            "--header", "Subject: via swaks", "--body", "swaks body"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        self.assertEqual(self.count(), before + 1)
        self.assertIn(b"Subject: via swaks", self.newest())

    def test_swaks_starttls_auth(self):
        """The README's submission example: swaks -tls needs Net::SSLeay,
        which scripts/setup installs."""
        before = self.count("bob@example.org")
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.srv.port("submission"), "-tls",
                            "--auth", "PLAIN", "--auth-user", "alice@example.org", "--auth-password", "secret",
                            "--from", "alice@example.org", "--to", "bob@example.org"],
                           capture_output=True, timeout=30)
        out = r.stdout.decode() + r.stderr.decode()
        self.assertEqual(r.returncode, 0, out)
        self.assertNotIn("TLS not available", out)
        self.assertEqual(self.count("bob@example.org"), before + 1)
        self.assertIn(b"with ESMTPSA id", self.newest("bob@example.org"))

    def test_msmtp_submission(self):
        before = self.count("bob@example.org")
        conf = os.path.join(self.srv.dir, "msmtprc")
        with open(conf, "w") as f:
            f.write("account default\nhost 127.0.0.1\nport %d\ntls on\ntls_starttls on\n"
                    "tls_certcheck off\nauth plain\nuser alice@example.org\npassword secret\n"
                    "from alice@example.org\n" % self.srv.port("submission"))
        os.chmod(conf, 0o600)
        msg = b"From: alice@example.org\nTo: bob@example.org\nSubject: msmtp\n\nvia msmtp\n"
        r = subprocess.run(["msmtp", "-C", conf, "bob@example.org"], input=msg, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.count("bob@example.org"), before + 1)
        stored = self.newest("bob@example.org")
        self.assertIn(b"with ESMTPSA id", stored)
        self.assertIn(b"(using TLSv1.3 with cipher", stored)
        self.assertIn(b"via msmtp\r\n", stored)


class TestSubmission(SmtpBase):
    # remote.test's next hop refuses connections: mail waits in the queue.
    extra_config = "[routes]\nremote.test = 127.0.0.1:1\n"

    def test_starttls_auth_plain(self):
        before = self.count("bob@example.org")
        r = self.srv.submit("alice@example.org", "secret", "alice@example.org", ["bob@example.org"], MSG)
        self.assertEqual(r, {})
        self.assertEqual(self.count("bob@example.org"), before + 1)
        self.assertEqual(body_of(self.newest("bob@example.org")), MSG)

    def test_auth_login(self):
        with self.srv.smtp("submission") as s:
            s.starttls(context=tls_context())
            s.ehlo()
            code, _ = s.docmd("AUTH", "LOGIN")
            self.assertEqual(code, 334)
            code, _ = s.docmd(base64.b64encode(b"alice@example.org").decode())
            self.assertEqual(code, 334)
            code, _ = s.docmd(base64.b64encode(b"secret").decode())
            self.assertEqual(code, 235)

    def test_implicit_tls(self):
        before = self.count("bob@example.org")
        r = self.srv.submit("alice@example.org", "secret", "alice@example.org", ["bob@example.org"], MSG,
                            service="submissions")
        self.assertEqual(r, {})
        self.assertEqual(self.count("bob@example.org"), before + 1)

    def test_plaintext_auth_from_loopback(self):
        # The classic telnet walk-through: AUTH PLAIN without TLS, allowed from loopback by default.
        c = self.conv("submission")
        code, lines = c.cmd("EHLO client.test")
        self.assertIn("250-AUTH PLAIN LOGIN", lines)
        cred = base64.b64encode(b"\0alice@example.org\0secret").decode()
        self.assertEqual(c.cmd("AUTH PLAIN " + cred)[0], 235)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 250)

    def test_no_mail_without_auth(self):
        c = self.conv("submission")
        c.cmd("EHLO client.test")
        code, lines = c.cmd("MAIL FROM:<alice@example.org>")
        self.assertEqual(code, 530)
        self.assertIn("5.7.0", lines[0])

    def test_wrong_password(self):
        c = self.conv("submission")
        c.cmd("EHLO client.test")
        cred = base64.b64encode(b"\0alice@example.org\0wrong").decode()
        code, lines = c.cmd("AUTH PLAIN " + cred)
        self.assertEqual(code, 535)
        self.assertIn("5.7.8", lines[0])
        cred = base64.b64encode(b"\0nobody@example.org\0x").decode()
        self.assertEqual(c.cmd("AUTH PLAIN " + cred)[0], 535)
        # Third failure: disconnected.
        code, _ = c.cmd("AUTH PLAIN " + cred)
        self.assertEqual(code, 421)
        self.assertTrue(c.closed())

    def test_sender_must_be_owned(self):
        self.srv.cli("alias", "add", "sales@example.org", "alice@example.org")
        with self.srv.smtp("submission") as s:
            s.starttls(context=tls_context())
            s.login("alice@example.org", "secret")
            code, msg = s.mail("bob@example.org")
            self.assertEqual(code, 553)
            self.assertIn(b"5.7.1", msg)
            s.rset()
            self.assertEqual(s.mail("sales@example.org")[0], 250)

    def test_remote_goes_to_queue(self):
        with self.srv.smtp("submission") as s:
            s.starttls(context=tls_context())
            s.login("alice@example.org", "secret")
            self.assertEqual(s.sendmail("alice@example.org", ["someone@remote.test"], MSG), {})
        files = []
        for root, _, names in os.walk(os.path.join(self.srv.data_dir, "queue")):
            files += names
        self.assertTrue(files, "the message is in var/queue")
        self.assertTrue(wait_for(lambda: "someone@remote.test" in self.srv.cli("queue", "list").stdout.decode()))


class TestPlaintextAuthDisabled(SmtpBase):
    extra_config = "[auth]\nplaintext_auth = no\n"

    def test_auth_before_tls(self):
        c = self.conv("submission")
        code, lines = c.cmd("EHLO client.test")
        self.assertFalse(any("AUTH" in l for l in lines))
        cred = base64.b64encode(b"\0alice@example.org\0secret").decode()
        code, lines = c.cmd("AUTH PLAIN " + cred)
        self.assertEqual(code, 530)
        self.assertIn("5.7.0", lines[0])
        # After STARTTLS it works.
        self.assertEqual(c.cmd("STARTTLS")[0], 220)
        ctx = tls_context()
        tls = ctx.wrap_socket(c.sock, server_hostname="mail.test")
        c2 = Conversation(tls)
        code, lines = c2.cmd("EHLO client.test")
        self.assertIn("250-AUTH PLAIN LOGIN", lines)
        self.assertEqual(c2.cmd("AUTH PLAIN " + cred)[0], 235)


class TestRelayDenied(SmtpBase):
    def test_disguises(self):
        c = self.conv()
        c.cmd("EHLO client.test")
        self.assertEqual(c.cmd("MAIL FROM:<spammer@remote.test>")[0], 250)
        cases = [
            "<victim@remote.test>",
            "<victim%remote.test@example.org>",
            "<@example.org:victim@remote.test>",
            "<remote.test!victim@example.org>",
            '<"victim@remote.test"@example.org>',
            "<victim@remote.test.>",
            "<victim@[127.0.0.1]>",
            "<victim@remote.test@example.org>",
            "<victim@example.org.>",
        ]
        for rcpt in cases:
            code, lines = c.cmd("RCPT TO:" + rcpt)
            self.assertTrue(500 <= code < 600, "%s got %s" % (rcpt, lines))
            if code == 554:
                self.assertIn("5.7.1", lines[0])
            c.cmd("NOOP")
        self.assertEqual(c.cmd("RCPT TO:<victim@remote.test>")[0], 554)

    def test_unknown_user(self):
        c = self.conv()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        code, lines = c.cmd("RCPT TO:<nobody@example.org>")
        self.assertEqual(code, 550)
        self.assertIn("5.1.1", lines[0])


class TestBadInput(SmtpBase):
    def test_out_of_order(self):
        c = self.conv()
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>")[0], 503)
        c.cmd("EHLO client.test")
        code, lines = c.cmd("RCPT TO:<alice@example.org>")
        self.assertEqual(code, 503)
        self.assertIn("5.5.1", lines[0])
        self.assertEqual(c.cmd("DATA")[0], 503)
        c.cmd("MAIL FROM:<a@remote.test>")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>")[0], 503)
        self.assertEqual(c.cmd("DATA")[0], 554)

    def test_malformed_paths(self):
        c = self.conv()
        c.cmd("EHLO client.test")
        for bad in ["MAIL FROM:alice@example.org", "MAIL FROM:<a@b", "MAIL FROM:<a b@c>", "MAIL FROM:<@>",
                    "MAIL FROM:<a@>", "MAIL FROM:<" + "a" * 70 + "@x.test>", "MAIL FROM:<a@b> FOO=bar"]:
            code, lines = c.cmd(bad)
            self.assertIn(code, (501, 555), "%s: %s" % (bad, lines))
            if code == 501:
                self.assertRegex(lines[0], r"^501 5\.\d\.\d")
            c.cmd("RSET")

    def test_long_line_nul_garbage(self):
        c = self.conv()
        c.send(b"EHLO " + b"x" * (1024 * 1024) + b"\r\n")
        code, lines = c.reply()
        self.assertEqual(code, 500)
        self.assertIn("5.5.2", lines[0])
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        c.send(b"MAIL FROM:<a\x00b@remote.test>\r\n")
        self.assertEqual(c.reply()[0] // 100, 5)
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xde\xad\xbe\xef\r\n")
        self.assertIn(c.reply()[0], (500, 501))
        c.send(b"\xde\xad\xbe\xef garbage \xff\xfe\r\n")
        self.assertEqual(c.reply()[0], 500)
        self.assertEqual(c.cmd("NOOP")[0], 250)

    def test_too_many_errors(self):
        c = self.conv()
        code = 0
        for i in range(20):
            code, lines = c.cmd("BOGUS %d" % i)
            if code == 421:
                break
        self.assertEqual(code, 421)
        self.assertTrue(c.closed())

    def test_oversize_message(self):
        srv = Server(extra_config="[limits]\nmax_message_size = 4k\n")
        try:
            srv.start()
            srv.add_domain("example.org")
            srv.add_user("alice@example.org", "x")
            c = Conversation(srv.connect("smtp"))
            c.reply()
            code, lines = c.cmd("EHLO client.test")
            self.assertIn("250-SIZE 4096", lines)
            self.assertEqual(c.cmd("MAIL FROM:<a@remote.test> SIZE=100000")[0], 552)
            c.cmd("MAIL FROM:<a@remote.test>")
            c.cmd("RCPT TO:<alice@example.org>")
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 200 + b".\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 552)
            self.assertIn("5.3.4", lines[0])
            self.assertEqual(c.cmd("NOOP")[0], 250)
            self.assertEqual(len(srv.maildir_messages("alice@example.org")), 0)
        finally:
            srv.cleanup()

    def test_too_many_recipients(self):
        srv = Server(extra_config="[limits]\nmax_recipients = 3\n")
        try:
            srv.start()
            srv.add_domain("example.org")
            srv.add_user("alice@example.org", "x")
            c = Conversation(srv.connect("smtp"))
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<a@remote.test>")
            for i in range(3):
                self.assertEqual(c.cmd("RCPT TO:<alice@example.org>")[0], 250)
            code, lines = c.cmd("RCPT TO:<alice@example.org>")
            self.assertEqual(code, 452)
            self.assertIn("4.5.3", lines[0])
        finally:
            srv.cleanup()

    def test_smuggling_rejected(self):
        for seq in [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r.\r\n"]:
            before = self.count()
            c = self.conv()
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<a@remote.test>")
            c.cmd("RCPT TO:<alice@example.org>")
            self.assertEqual(c.cmd("DATA")[0], 354)
            smuggled = (b"Subject: outer\r\n\r\nbody" + seq +
                        b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
                        b"Subject: smuggled\r\n\r\nx\r\n.\r\n")
            c.send(smuggled)
            code, lines = c.reply()
            self.assertEqual(code, 550, "%r: %s" % (seq, lines))
            # Nothing was delivered and the connection is still in sync.
            self.assertEqual(c.cmd("NOOP")[0], 250)
            self.assertEqual(self.count(), before)
            self.assertEqual(self.count("bob@example.org"), self.count("bob@example.org"))
            c.cmd("QUIT")

    def test_vanishing_mid_data(self):
        before = self.count()
        c = self.conv()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        c.cmd("RCPT TO:<alice@example.org>")
        c.cmd("DATA")
        c.send(b"Subject: partial\r\n\r\nsome text\r\n")
        c.sock.close()
        time.sleep(0.3)
        self.assertEqual(self.count(), before)
        tmp = os.path.join(self.srv.data_dir, "tmp")
        self.assertTrue(wait_for(lambda: os.listdir(tmp) == [], timeout=5), os.listdir(tmp))
        # The server keeps serving.
        with self.srv.smtp() as s:
            s.sendmail("a@remote.test", ["alice@example.org"], MSG)

    def test_tls_garbage(self):
        s = self.srv.connect("submissions")
        s.sendall(b"this is not a TLS client hello\r\n" * 10)
        s.settimeout(5)
        try:
            data = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        s.close()
        self.assertFalse(data.startswith(b"220"))
        # STARTTLS followed by garbage
        c = self.conv("submission")
        c.cmd("EHLO client.test")
        self.assertEqual(c.cmd("STARTTLS")[0], 220)
        c.send(b"\x00\x01garbage" * 100)
        self.assertTrue(c.closed(timeout=5))
        self.srv.submit("alice@example.org", "secret", "alice@example.org", ["alice@example.org"], MSG)

    def test_starttls_injection_discarded(self):
        # RFC 3207 4.2: commands pipelined after STARTTLS in plain text are dropped.
        c = self.conv("submission")
        c.cmd("EHLO client.test")
        c.send(b"STARTTLS\r\nRSET\r\n")
        code, _ = c.reply()
        self.assertEqual(code, 220)
        tls = tls_context().wrap_socket(c.sock, server_hostname="mail.test")
        c2 = Conversation(tls)
        code, lines = c2.cmd("EHLO again.test")
        self.assertEqual(code, 250)  # not the RSET's reply
        self.assertTrue(lines[0].startswith("250-"))


class TestNormalize(SmtpBase):
    extra_config = "[smtp]\nbare_newline = normalize\n"

    def test_bare_lf_normalized_not_end(self):
        for seq in [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r.\r\n"]:
            before_a, before_b = self.count(), self.count("bob@example.org")
            c = self.conv()
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<a@remote.test>")
            c.cmd("RCPT TO:<alice@example.org>")
            c.cmd("DATA")
            c.send(b"Subject: outer\nX: y\r\n\r\nbody" + seq + b"MAIL FROM:<evil@remote.test>\r\n"
                   b"RCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            self.assertEqual(c.cmd("NOOP")[0], 250)
            self.assertEqual(self.count(), before_a + 1)
            self.assertEqual(self.count("bob@example.org"), before_b)
            stored = self.newest()
            self.assertIn(b"Subject: outer\r\nX: y\r\n", stored)
            self.assertIn(b"MAIL FROM:<evil@remote.test>", stored)
            self.assertNotIn(b"\n\n", stored.replace(b"\r\n", b""))
            self.assertEqual(stored.count(b"\n"), stored.count(b"\r\n"))


class TestLimits(unittest.TestCase):
    def test_connections_per_ip_and_timeout(self):
        srv = Server(extra_config="[limits]\nmax_connections_per_ip = 3\nsmtp_timeout = 2s\n")
        try:
            srv.start()
            conns = [Conversation(srv.connect("smtp")) for _ in range(3)]
            for c in conns:
                self.assertEqual(c.reply()[0], 220)
            extra = Conversation(srv.connect("smtp"))
            code, lines = extra.reply()
            self.assertEqual(code, 421)
            self.assertIn("4.7.0", lines[0])
            # Idle timeout: 421 4.4.2 and close.
            code, lines = conns[0].reply(timeout=10)
            self.assertEqual(code, 421)
            self.assertIn("4.4.2", lines[0])
        finally:
            srv.cleanup()

    def test_quota(self):
        srv = Server()
        try:
            srv.start()
            srv.add_domain("example.org")
            srv.add_user("small@example.org", "x", quota=3000)
            with srv.smtp() as s:
                s.sendmail("a@remote.test", ["small@example.org"], b"Subject: a\r\n\r\n" + b"x" * 2500 + b"\r\n")
                # The declared SIZE would go over the quota.
                s.mail("a@remote.test", ["SIZE=1000"])
                code, msg = s.rcpt("small@example.org")
                self.assertEqual(code, 452)
                self.assertIn(b"4.2.2", msg)
                s.rset()
                # Without SIZE it is accepted while under quota, and goes over.
                s.mail("a@remote.test")
                self.assertEqual(s.rcpt("small@example.org")[0], 250)
                self.assertEqual(s.data(b"Subject: b\r\n\r\n" + b"x" * 600 + b"\r\n")[0], 250)
                # Over quota outright.
                s.mail("a@remote.test")
                code, msg = s.rcpt("small@example.org")
                self.assertEqual(code, 452)
                self.assertIn(b"4.2.2", msg)
        finally:
            srv.cleanup()


class TestCrash(unittest.TestCase):
    def test_kill9_loses_nothing_acknowledged(self):
        srv = Server(workers=2)
        try:
            srv.start()
            srv.add_domain("example.org")
            srv.add_user("alice@example.org", "x")
            acked = []
            lock = threading.Lock()
            stop = time.time() + 6

            def client(n):
                i = 0
                while time.time() < stop and i < 300:
                    i += 1
                    tag = "msg-%d-%d" % (n, i)
                    try:
                        with srv.smtp(timeout=5) as s:
                            s.sendmail("a@remote.test", ["alice@example.org"],
                                       ("Subject: %s\r\n\r\n%s\r\n" % (tag, "y" * 2000)).encode())
                        with lock:
                            acked.append(tag)
                    except (smtplib.SMTPException, OSError):
                        time.sleep(0.05)

            threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
            for t in threads:
                t.start()
            kills = 0
            while time.time() < stop - 1:
                time.sleep(0.7)
                for pid in srv.child_pids("worker"):
                    try:
                        os.kill(pid, 9)
                        kills += 1
                    except ProcessLookupError:
                        pass
            for t in threads:
                t.join()
            self.assertGreater(kills, 0)
            self.assertGreater(len(acked), 20)
            srv.kill()
            srv.start()
            stored = b"".join(m[1] for m in srv.maildir_messages("alice@example.org"))
            missing = [t for t in acked if ("Subject: %s\r\n" % t).encode() not in stored]
            self.assertEqual(missing, [], "acknowledged but lost")
            self.assertIn("worker exit", srv.log_text())
            self.assertIn("signal=9", srv.log_text())
        finally:
            srv.cleanup()


class TestServerControl(unittest.TestCase):
    def test_config_errors_and_check(self):
        srv = Server(extra_config="[limits]\nmax_recipients = 7\n")
        try:
            r = srv.cli("check")
            self.assertIn("max_recipients = 7", r.stdout.decode())
            with open(srv.config_path, "a") as f:
                f.write("[smtp]\nbogus_option = 1\n")
            r = srv.cli("check", check=False)
            self.assertNotEqual(r.returncode, 0)
            err = r.stderr.decode()
            self.assertIn(srv.config_path, err)
            self.assertIn("bogus_option", err)
            self.assertRegex(err, r":\d+:")
            with open(srv.config_path, "a") as f:
                f.write("")
            text = open(srv.config_path).read().replace("bogus_option = 1", "max_recipients = lots")
            text = text.replace("[smtp]\nmax_recipients", "[limits]\nmax_recipients")
            with open(srv.config_path, "w") as f:
                f.write(text)
            r = srv.cli("check", check=False)
            self.assertNotEqual(r.returncode, 0)
        finally:
            srv.cleanup()

    def test_check_rejects_what_the_queue_runner_would(self):
        # [queue] retry and [relay] relayhost are parsed when the file is
        # read: `postoffice check` names file, line and key instead of the
        # queue runner failing at start.
        cases = [("[queue]\nretry = 5x, banana\n",
                  "[queue] retry: '5x' is not a duration"),
                 ("[relay]\nrelayhost = relay.example:smtp\n",
                  "[relay] relayhost: port must be a number from 1 to 65535"),
                 ("[relay]\nrelayhost = [::1\n",
                  "[relay] relayhost: expected [host] or [host]:port")]
        for extra, message in cases:
            srv = Server(extra_config=extra)
            try:
                r = srv.cli("check", check=False)
                self.assertNotEqual(r.returncode, 0, extra)
                err = r.stderr.decode()
                self.assertRegex(err, re.escape(srv.config_path) + r":\d+: " + re.escape(message))
            finally:
                srv.cleanup()
        srv = Server(extra_config="[queue]\nretry = 1m, 2h\n[relay]\nrelayhost = relay.example\n")
        try:
            out = srv.cli("check").stdout.decode()
            self.assertIn("retry = 60s,7200s", out)
            self.assertIn("relayhost = relay.example:25", out)
        finally:
            srv.cleanup()

    def test_embedded_default_writes_config(self):
        d = Server()
        try:
            # No -c: the embedded default in the working directory's var/.
            r = subprocess.run([BIN, "check"], cwd=d.dir,
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0)
            self.assertIn("embedded default", r.stdout.decode())
            self.assertIn("listen = 127.0.0.1:2525", r.stdout.decode())
            r = subprocess.run([BIN, "check", "--defaults"], cwd=d.dir,
                               capture_output=True, timeout=30)
            self.assertIn("#max_message_size = 25M", r.stdout.decode())
        finally:
            d.cleanup()

    def test_help(self):
        r = subprocess.run([BIN, "--help"], capture_output=True)
        self.assertEqual(r.returncode, 0)
        for cmd in ["serve", "check", "domain", "user", "alias"]:
            self.assertIn(cmd, r.stdout.decode())
        r = subprocess.run([BIN, "serve", "--help"], capture_output=True)
        self.assertIn("usage: postoffice", r.stdout.decode())
        r = subprocess.run([BIN, "frobnicate"], capture_output=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown command", r.stderr.decode())

    def test_worker_restart_reload_and_drain(self):
        srv = Server()
        try:
            srv.start()
            srv.add_domain("example.org")
            srv.add_user("alice@example.org", "x")
            old = srv.child_pids("worker")
            self.assertEqual(len(old), 1)
            os.kill(old[0], 9)
            self.assertTrue(wait_for(lambda: [p for p in srv.child_pids("worker") if p not in old]))
            with srv.smtp() as s:
                s.sendmail("a@remote.test", ["alice@example.org"], MSG)
            # SIGHUP: new workers with the new config.
            with open(srv.config_path, "a") as f:
                f.write("\n[limits]\nmax_recipients = 1\n")
            srv.proc.send_signal(1)
            self.assertTrue(wait_for(lambda: "reload" in srv.log_text()))
            time.sleep(0.5)
            with srv.smtp() as s:
                s.ehlo()
                s.mail("a@remote.test")
                self.assertEqual(s.rcpt("alice@example.org")[0], 250)
                self.assertEqual(s.rcpt("alice@example.org")[0], 452)
            # SIGTERM drains: an open session finishes its message.
            c = Conversation(srv.connect("smtp"))
            c.reply()
            c.cmd("EHLO x")
            c.cmd("MAIL FROM:<a@remote.test>")
            c.cmd("RCPT TO:<alice@example.org>")
            c.cmd("DATA")
            idle = Conversation(srv.connect("smtp"))
            idle.reply()
            idle.cmd("EHLO idle.test")
            t0 = time.time()
            srv.proc.send_signal(15)
            # The idle session is told at once (RFC 5321 3.8) ...
            code, lines = idle.reply(timeout=5)
            self.assertEqual(code, 421)
            self.assertIn("4.3.2", lines[0])
            # ... the one in DATA finishes its message.
            time.sleep(0.3)
            c.send(raw_data(MSG) + b".\r\n")
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(c.reply()[0], 421)
            srv.proc.wait(timeout=20)
            self.assertLess(time.time() - t0, 10)
            self.assertIn("serve stopped", srv.log_text())
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
