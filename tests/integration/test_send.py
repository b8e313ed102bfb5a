"""`postoffice send` and `postoffice sendmail` (the client side of issue 6)."""
import email
import email.policy
import json
import os
import subprocess
import time
import unittest

from harness import Server, BIN, wait_for


class TestSend(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(hostname="mx.example.org")
        cls.srv.start()
        cls.srv.add_domain("example.org")
        cls.srv.add_user("alice@example.org", "alicepw")
        cls.srv.add_user("bob@example.org", "bobpw")
        cls.pwfile = os.path.join(cls.srv.dir, "pw")
        with open(cls.pwfile, "w") as f:
            f.write("alicepw\n")
        cls.attachment = os.path.join(cls.srv.dir, "data.bin")
        with open(cls.attachment, "wb") as f:
            f.write(bytes(range(256)) * 40)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def test_dry_run(self):
        r = self.srv.cli("send", "--dry-run", "--from", "Alice <alice@example.org>", "--to", "bob@example.org",
                         "--subject", "Grüße", "--attach", self.attachment, input="Hallo Bob\n".encode())
        m = email.message_from_bytes(r.stdout, policy=email.policy.default)
        self.assertEqual(m["Subject"], "Grüße")
        parts = list(m.iter_attachments())
        self.assertEqual(parts[0].get_content(), bytes(range(256)) * 40)

    def test_send_submission_starttls_auth(self):
        before = len(self.srv.maildir_messages("bob@example.org"))
        r = self.srv.cli("send", "--from", "alice@example.org", "--to", "Bob <bob@example.org>",
                         "--subject", "über send", "--attach", self.attachment,
                         "--server", "127.0.0.1:%d" % self.srv.port("submission"), "--starttls",
                         "--user", "alice@example.org", "--password-file", self.pwfile,
                         input=b"Body line\n")
        self.assertRegex(r.stdout.decode(), r"^250")
        msgs = wait_for(lambda: self.srv.maildir_messages("bob@example.org")[before:], timeout=10)
        m = email.message_from_bytes(msgs[0][1], policy=email.policy.default)
        self.assertEqual(m["Subject"], "über send")
        self.assertEqual(list(m.iter_attachments())[0].get_content(), bytes(range(256)) * 40)

    def test_send_failure_is_clear(self):
        r = self.srv.cli("send", "--from", "alice@example.org", "--to", "bob@example.org",
                         "--server", "127.0.0.1:%d" % self.srv.port("submission"), "--starttls",
                         "--user", "alice@example.org", "--password-file", __file__,
                         input=b"x\n", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"postoffice send:", r.stderr)
        self.assertIn(b"535", r.stderr)

    def test_sendmail_t(self):
        before = len(self.srv.maildir_messages("bob@example.org"))
        msg = b"To: bob@example.org\nBcc: alice@example.org\nSubject: via sendmail\n\nhello\n.\nafter dot\n"
        r = self.srv.cli("sendmail", "-t", "-i", "-f", "alice@example.org", input=msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        msgs = wait_for(lambda: self.srv.maildir_messages("bob@example.org")[before:], timeout=10)
        data = msgs[0][1]
        self.assertIn(b"Subject: via sendmail", data)
        self.assertIn(b"after dot", data)
        self.assertNotIn(b"Bcc:", data)
        self.assertTrue(wait_for(lambda: any(b"via sendmail" in m for p, m in
                                             self.srv.maildir_messages("alice@example.org")), timeout=10))

    # ---- sendmail through a symlink, as programs run it ----
    def sendmail_link(self):
        """A directory with a symlink named sendmail to the binary, and
        var/postoffice.conf in the server's directory (the working
        directory the link is run in) naming the SMTP port it listens on."""
        bindir = os.path.join(self.srv.dir, "bin")
        os.makedirs(bindir, exist_ok=True)
        link = os.path.join(bindir, "sendmail")
        if not os.path.islink(link):
            os.symlink(os.path.abspath(BIN), link)
        with open(self.srv.config_path) as f:
            conf = f.read()
        port = self.srv.port("smtp")
        conf = conf.replace("[smtp]\nlisten = 127.0.0.1:0", "[smtp]\nlisten = 127.0.0.1:%d" % port)
        self.assertIn("127.0.0.1:%d" % port, conf)
        with open(os.path.join(self.srv.data_dir, "postoffice.conf"), "w") as f:
            f.write(conf)
        return link

    def run_link(self, link, args, msg):
        env = dict(os.environ, PATH=os.path.dirname(link) + ":" + os.environ.get("PATH", ""))
        return subprocess.run(["sendmail"] + args, executable=link, input=msg, capture_output=True,
                              cwd=self.srv.dir, timeout=60, env=env)

    def new_messages(self, address, before, pred):
        return wait_for(lambda: [m for p, m in self.srv.maildir_messages(address)[before:] if pred(m)],
                        timeout=20)

    def test_sendmail_symlink_t_f_F_i(self):
        link = self.sendmail_link()
        before_bob = len(self.srv.maildir_messages("bob@example.org"))
        before_alice = len(self.srv.maildir_messages("alice@example.org"))
        msg = (b"To: Bob <bob@example.org>\nSubject: symlink -t\n\nfirst\n.\n..two dots\n"
               b".single dot start\nafter the dot\n")
        r = self.run_link(link, ["-t", "-i", "-f", "alice@example.org", "-F", "Doe, Jane \"JD\"",
                                 "alice@example.org"], msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(b"queued as", r.stderr)   # it went over SMTP
        got = self.new_messages("bob@example.org", before_bob, lambda m: b"symlink -t" in m)
        self.assertEqual(len(got), 1, self.srv.log_text()[-2000:])
        data = got[0]
        self.assertTrue(data.startswith(b"Return-Path: <alice@example.org>\r\n"), data[:200])
        m = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(m["From"].addresses[0].display_name, 'Doe, Jane "JD"')
        self.assertEqual(m["From"].addresses[0].addr_spec, "alice@example.org")
        self.assertIsNotNone(m["Date"])
        self.assertIsNotNone(m["Message-ID"])
        self.assertIn(b"\r\n\r\nfirst\r\n.\r\n..two dots\r\n.single dot start\r\nafter the dot\r\n", data)
        # the argument recipient as well as the header's
        self.assertTrue(self.new_messages("alice@example.org", before_alice, lambda m: b"symlink -t" in m))

    def test_sendmail_symlink_dot_ends_message(self):
        link = self.sendmail_link()
        before = len(self.srv.maildir_messages("bob@example.org"))
        msg = b"Subject: dot ends it\nFrom: alice@example.org\n\nbefore\n.\nnever sent\n"
        r = self.run_link(link, ["-f", "alice@example.org", "bob@example.org"], msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.new_messages("bob@example.org", before, lambda m: b"dot ends it" in m)
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].endswith(b"\r\n\r\nbefore\r\n"), got[0][-100:])
        self.assertNotIn(b"never sent", got[0])
        # -oi is -i
        r = self.run_link(link, ["-oi", "-f", "alice@example.org", "bob@example.org"],
                          b"Subject: oi\n\nbefore\n.\nkept\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.new_messages("bob@example.org", before, lambda m: b"Subject: oi" in m)
        self.assertIn(b"before\r\n.\r\nkept\r\n", got[0])

    def test_sendmail_usage_errors(self):
        link = self.sendmail_link()
        r = self.run_link(link, ["-f", "alice@example.org"], b"Subject: nobody\n\nx\n")
        self.assertEqual(r.returncode, 64)
        self.assertIn(b"no recipients", r.stderr)
        r = self.run_link(link, ["-Z"], b"x\n")
        self.assertEqual(r.returncode, 64)
        self.assertIn(b"unsupported option", r.stderr)

    # ---- injection (hardening issue, items 10 and 11) ----
    def queue_ids(self):
        return set(e["id"] for e in json.loads(self.srv.cli("queue", "list", "--json").stdout))

    def test_sendmail_refuses_injected_addresses(self):
        """A line break in an envelope address would be a second SMTP
        command.  Command-line addresses are refused before the message is
        read (EX_USAGE); header ones (-t) before anything is sent
        (EX_DATAERR).  Either way nothing is delivered or spooled: the
        caller keeps the message."""
        link = self.sendmail_link()
        before = {a: len(self.srv.maildir_messages(a)) for a in ("alice@example.org", "bob@example.org")}
        queued = self.queue_ids()
        cases = [
            (["-f", "x@example.net>\r\nRCPT TO:<bob@example.org", "alice@example.org"], 64, b"invalid sender"),
            (["-f", "alice@example.org", "bob@example.org>\r\nDATA"], 64, b"invalid recipient"),
            (["-f", "alice@example.org", "--", "alice@example.org", "bob@example.org\nRSET"], 64,
             b"invalid recipient"),
            (["-f", "alice @example.org", "bob@example.org"], 64, b"invalid sender"),
            (["-t", "-f", "alice@example.org"], 65, b"invalid recipient address in the header"),
        ]
        for args, code, text in cases:
            r = self.run_link(link, args, b"To: bob@ex_ample.org\nSubject: injected\n\nbody\n")
            self.assertEqual(r.returncode, code, (args, r.stderr))
            self.assertIn(text, r.stderr)
            self.assertNotIn(b"\r", r.stderr)   # shown escaped
        # <> and angle brackets are fine
        r = self.run_link(link, ["-f", "<>", "<bob@example.org>"], b"Subject: null sender ok\n\nbody\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.new_messages("bob@example.org", before["bob@example.org"], lambda m: b"null sender ok" in m)
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].startswith(b"Return-Path: <>\r\n"), got[0][:80])
        # nothing else arrived, nothing was spooled
        time.sleep(0.5)
        for a, n in before.items():
            self.assertFalse([m for p, m in self.srv.maildir_messages(a)[n:] if b"injected" in m], a)
        self.assertEqual(self.queue_ids() - queued, set())

    def test_send_refuses_line_breaks_and_bad_field_names(self):
        base = ["send", "--dry-run", "--from", "alice@example.org", "--to", "bob@example.org"]
        cases = [
            (["--subject", "S\r\nInjected: 1"], b"--subject"),
            (["--header", "X-B\r\nInjected: z"], b"invalid field name"),
            (["--header", "X B: z"], b"invalid field name"),
            (["--header", ": no name"], b"invalid field name"),
            (["--header", "X-V: v\r\nInjected: 2"], b"line breaks are not allowed"),
            (["--cc", "carol@example.org\nBcc: eve@example.org"], b"--cc"),
            (["--bcc", "carol@example.org>\r\nDATA"], b"--bcc"),
        ]
        for extra, text in cases:
            r = self.srv.cli(*(base + extra), input=b"body\n", check=False)
            self.assertEqual(r.returncode, 2, (extra, r.stderr))
            self.assertEqual(r.stdout, b"")
            self.assertIn(text, r.stderr)
        for extra in (["--from", "alice@example.org\r\nRCPT TO:<x@example.org>", "--to", "bob@example.org"],
                      ["--from", "alice@example.org", "--to", "bob@example.org>\r\nDATA"],
                      ["--from", "alice@example.org", "--to", "bob@ex_ample.org"]):
            r = self.srv.cli("send", "--dry-run", *extra, input=b"body\n", check=False)
            self.assertEqual(r.returncode, 2, (extra, r.stderr))
            self.assertEqual(r.stdout, b"")
        # a good extra field still goes in; an attachment whose name holds
        # a line break is encoded into the parameter, not a field
        odd = os.path.join(self.srv.dir, "a\nInjected: x.txt")
        with open(odd, "wb") as f:
            f.write(b"data\n")
        r = self.srv.cli(*(base + ["--header", "X-Ok: fine", "--attach", odd]), input=b"body\n")
        m = email.message_from_bytes(r.stdout, policy=email.policy.default)
        self.assertEqual(m["X-Ok"], "fine")
        self.assertNotIn(b"\nInjected", r.stdout)
        self.assertEqual(list(m.iter_attachments())[0].get_filename(), "a\nInjected: x.txt")

    def test_sendmail_z_server_down_spools(self):
        # (named to run last: it restarts the server)
        link = self.sendmail_link()
        before = len(self.srv.maildir_messages("bob@example.org"))
        self.srv.stop()
        try:
            r = self.run_link(link, ["-f", "alice@example.org", "bob@example.org"],
                              b"Subject: spooled\n\nwhile the server was down\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"queued as", r.stderr)
            r2 = self.srv.cli("sendmail", "-t", "-f", "alice@example.org",
                              input=b"To: bob@example.org\nSubject: spooled2\n\nalso down\n")
            self.assertEqual(r2.returncode, 0, r2.stderr)
            self.assertIn(b"queued as", r2.stderr)
            q = self.srv.cli("queue", "list").stdout
            self.assertIn(b"bob@example.org", q)
            self.assertEqual(self.srv.maildir_messages("bob@example.org")[before:], [])
        finally:
            self.srv.start()
        for subject in (b"Subject: spooled\r\n", b"Subject: spooled2\r\n"):
            ok = self.new_messages("bob@example.org", before, lambda m: subject in m)
            self.assertEqual(len(ok), 1, self.srv.log_text()[-3000:])
        got = self.new_messages("bob@example.org", before, lambda m: b"Subject: spooled\r\n" in m)[0]
        self.assertIn(b"while the server was down", got)
        self.assertTrue(got.startswith(b"Return-Path: <alice@example.org>"), got[:100])


if __name__ == "__main__":
    unittest.main()
