"""DKIM signing (issue 14): `postoffice dkim keygen/list/remove`, and mail
submitted by an authenticated user leaving A signed with both algorithms,
relayed to B through a route, and verified there by an independent verifier
(Debian's python3-dkim, handed the TXT records keygen printed instead of
DNS) and by B itself, which finds the records in the test's DNS responder
and says dkim=pass in its Authentication-Results."""
import os
import re
import stat
import time
import unittest

import dkim

from dnsserver import DnsServer
from harness import Server, wait_for


def message(subject, frm="alice@a.test", to="bob@b.test", body="Hello Bob,\r\nsigned mail.\r\n"):
    return ("From: Alice <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "\r\n%s" % (frm, to, subject, re.sub(r"\W", "", subject), body)).encode()


def txt_value(keygen_stdout):
    """The selector's DNS name and the record from keygen's zone line."""
    m = re.search(r"^(\S+)\. IN TXT ((?:\"[^\"]*\" ?)+)$", keygen_stdout, re.M)
    return m.group(1), "".join(re.findall(r"\"([^\"]*)\"", m.group(2)))


class TestDkim(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer().start()
        cls.b = Server(hostname="mx.b.test", extra_config="[dns]\nresolver = %s\n" % cls.dns.address).start()
        cls.b.add_domain("b.test")
        cls.b.add_user("bob@b.test", "bobpw")
        cls.a = Server(hostname="mx.a.test",
                       extra_config="[routes]\nb.test = 127.0.0.1:%d\n" % cls.b.port("smtp"))
        cls.a.add_domain("a.test")
        cls.a.add_user("alice@a.test", "alicepw")
        cls.records = {}
        for alg, sel in (("rsa", "rsa1"), ("ed25519", "ed1")):
            out = cls.a.cli("dkim", "keygen", "a.test", "--selector", sel, "--algorithm", alg).stdout.decode()
            name, value = txt_value(out)
            cls.records[name] = value
            cls.dns.add_txt(name, value)
        cls.a.start()

    @classmethod
    def tearDownClass(cls):
        cls.a.cleanup()
        cls.b.cleanup()
        cls.dns.stop()

    def dnsfunc(self, name, timeout=5):
        return self.records.get(name.decode().rstrip("."), "").encode()

    def relay(self, subject, **kw):
        before = len(self.b.maildir_messages("bob@b.test"))
        frm = kw.get("frm", "alice@a.test")
        self.a.submit(frm, "alicepw", frm, ["bob@b.test"], message(subject, **kw))
        ok = wait_for(lambda: len(self.b.maildir_messages("bob@b.test")) > before, timeout=20)
        self.assertTrue(ok, self.a.log_text()[-3000:])
        return [m for p, m in self.b.maildir_messages("bob@b.test") if subject.encode() in m][0]

    def signatures(self, data):
        return re.findall(rb"(?mi)^DKIM-Signature:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", data)

    def verify_all(self, data):
        """dkimpy's verdict for every signature of data."""
        d = dkim.DKIM(data)
        out = []
        for i in range(len(self.signatures(data))):
            try:
                out.append(d.verify(idx=i, dnsfunc=self.dnsfunc))
            except dkim.ValidationError:
                out.append(False)
        return out

    def test_keygen_files_and_records(self):
        for sel in ("rsa1", "ed1"):
            path = os.path.join(self.a.data_dir, "dkim", "a.test", sel + ".key")
            st = os.stat(path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertRegex(self.records["rsa1._domainkey.a.test"], r"^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$")
        self.assertRegex(self.records["ed1._domainkey.a.test"], r"^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$")
        listing = self.a.cli("dkim", "list").stdout.decode()
        self.assertIn("a.test rsa1 rsa-sha256 active", listing)
        self.assertIn("a.test ed1 ed25519-sha256 active", listing)
        # an existing selector is refused, a bad name too
        r = self.a.cli("dkim", "keygen", "a.test", "--selector", "rsa1", check=False)
        self.assertNotEqual(r.returncode, 0)
        r = self.a.cli("dkim", "keygen", "a.test", "--selector", "../x", check=False)
        self.assertNotEqual(r.returncode, 0)
        r = self.a.cli("dkim", "keygen", "a.test", "--algorithm", "dsa", check=False)
        self.assertEqual(r.returncode, 2)

    def test_relayed_mail_verifies_with_both_algorithms(self):
        data = self.relay("signed twice")
        sigs = self.signatures(data)
        self.assertEqual(len(sigs), 2, data[:2000])
        self.assertTrue(any(b"a=rsa-sha256" in s for s in sigs))
        self.assertTrue(any(b"a=ed25519-sha256" in s for s in sigs))
        for s in sigs:
            self.assertIn(b"d=a.test", s)
            self.assertRegex(s.replace(b"\r\n\t", b""), rb"h=from:from:")  # From over-signed
        self.assertEqual(self.verify_all(data), [True, True])
        # B's own verdict, on top of what it stored
        ar = re.match(rb"Return-Path: [^\r\n]*\r\nAuthentication-Results: mx\.b\.test;"
                      rb"((?:\r\n\t[^\r\n]*)*)\r\n", data)
        self.assertIsNotNone(ar, data[:600])
        verdicts = re.findall(rb"dkim=(\w+) header\.d=a\.test", ar.group(1))
        self.assertEqual(verdicts, [b"pass", b"pass"], ar.group(0))
        # what B stored, changed by one body byte or one signed header: fails
        self.assertEqual(self.verify_all(data.replace(b"signed mail.", b"signed mail!")), [False, False])
        self.assertEqual(self.verify_all(data.replace(b"Subject: signed twice", b"Subject: signed thrice")),
                         [False, False])

    def test_large_message_spills_and_verifies(self):
        # larger than what the signer holds in memory (256 KiB)
        body = "".join("line %d of a long message, with  two spaces \r\n" % i for i in range(12000))
        data = self.relay("large signed", body=body)
        self.assertGreater(len(data), 400 * 1024)
        self.assertEqual(self.verify_all(data), [True, True])

    def test_sendmail_signed(self):
        """Mail made on the host (`sendmail`, as cron and scripts send it)
        leaves signed like a user's."""
        before = len(self.b.maildir_messages("bob@b.test"))
        self.a.cli("sendmail", "-f", "alice@a.test", "bob@b.test", input=message("from sendmail"))
        ok = wait_for(lambda: len(self.b.maildir_messages("bob@b.test")) > before, timeout=20)
        self.assertTrue(ok, self.a.log_text()[-3000:])
        data = [m for p, m in self.b.maildir_messages("bob@b.test") if b"from sendmail" in m][0]
        self.assertEqual(len(self.signatures(data)), 2, data[:1500])
        self.assertEqual(self.verify_all(data), [True, True])

    def test_other_domain_and_inbound_not_signed(self):
        # a From: of a domain without keys leaves unsigned
        self.a.add_domain("c.test")
        self.a.add_user("alice@c.test", "alicepw")
        data = self.relay("unkeyed domain", frm="alice@c.test")
        self.assertEqual(self.signatures(data), [])
        # mail arriving on port 25 (no AUTH) is not ours to sign
        self.a.add_user("carol@a.test", "pw")
        with self.a.smtp() as s:
            s.sendmail("someone@b.test", ["carol@a.test"], message("inbound", frm="someone@b.test",
                                                                    to="carol@a.test"))
        msgs = self.a.maildir_messages("carol@a.test")
        self.assertEqual(len(msgs), 1)
        self.assertEqual(self.signatures(msgs[0][1]), [])

    def test_z_rotation(self):
        """A new key of an algorithm takes over without a restart; the old
        one is listed as retired until removed."""
        out = self.a.cli("dkim", "keygen", "a.test", "--selector", "rsa2").stdout.decode()
        name, value = txt_value(out)
        self.records[name] = value
        self.dns.add_txt(name, value)
        listing = self.a.cli("dkim", "list").stdout.decode()
        self.assertIn("a.test rsa2 rsa-sha256 active", listing)
        self.assertIn("a.test rsa1 rsa-sha256 retired", listing)
        time.sleep(1.1)  # the worker looks at the directory once a second
        data = self.relay("rotated")
        sigs = b" ".join(self.signatures(data))
        self.assertIn(b"s=rsa2", sigs)
        self.assertNotIn(b"s=rsa1", sigs)
        self.assertEqual(self.verify_all(data), [True, True])
        r = self.a.cli("dkim", "remove", "a.test", "rsa1")
        self.assertIn(b"removed key rsa1", r.stdout)
        self.assertNotIn("rsa1", self.a.cli("dkim", "list").stdout.decode())
        r = self.a.cli("dkim", "remove", "a.test", "rsa1", check=False)
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main()
