"""`postoffice send` and `postoffice sendmail` (the client side of issue 6)."""
import email
import email.policy
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

    def test_sendmail_symlink_and_server_down(self):
        link = os.path.join(self.srv.dir, "sendmail")
        if not os.path.exists(link):
            os.symlink(os.path.abspath(BIN), link)
        self.srv.stop()
        try:
            r = subprocess.run([link, "-f", "alice@example.org", "bob@example.org"],
                               input=b"Subject: spooled\n\nwhile the server was down\n",
                               capture_output=True, cwd=self.srv.dir, timeout=30,
                               env=dict(os.environ))
            # invoked as "sendmail" it runs the sendmail command (with the
            # embedded default config: data in ./var, the test's data dir)
            self.assertNotIn(b"unknown command", r.stderr)
            self.assertIn(r.returncode, (0, 75), r.stderr)
        finally:
            pass
        r = self.srv.cli("sendmail", "-f", "alice@example.org", "bob@example.org",
                         input=b"Subject: spooled2\n\nwhile the server was down\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"queued as", r.stderr)
        q = self.srv.cli("queue", "list").stdout
        self.assertIn(b"bob@example.org", q)
        self.srv.start()
        ok = wait_for(lambda: any(b"spooled2" in m for p, m in self.srv.maildir_messages("bob@example.org")),
                      timeout=20)
        self.assertTrue(ok, self.srv.log_text()[-3000:])


if __name__ == "__main__":
    unittest.main()
