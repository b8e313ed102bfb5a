"""`postoffice doctor` (issue 15) on a good and on a broken installation:
one line per check, ok/warn/fail with the fix, exit status 1 on a fail."""
import datetime
import os
import re
import shutil
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import Server
from dnsserver import DnsServer


def make_cert(cert_path, key_path, name, not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


class TestDoctor(unittest.TestCase):
    def setUp(self):
        self.dns = DnsServer()
        self.dns.add_mx("example.org", 10, "mail.test")
        self.dns.add_a("mail.test", "127.0.0.1")
        self.dns.add_txt("example.org", "v=spf1 a:mail.test -all")
        self.dns.add_ptr("1.0.0.127.in-addr.arpa", "mail.test")
        self.dns.start()
        self.srv = Server(hostname="mail.test", extra_config="[dns]\nresolver = %s\n" % self.dns.address)
        self.srv.start()
        self.srv.add_domain("example.org")
        self.srv.add_user("bob@example.org", "pw")

    def tearDown(self):
        self.srv.cleanup()
        self.dns.stop()

    def doctor(self, *args):
        """doctor with the listeners' real ports in the configuration (the
        test server's say 0: any free port)."""
        conf = self.srv.config_path + ".doctor"
        with open(self.srv.config_path) as f:
            text = f.read()
        for service, port in self.srv.ports.items():
            text = re.sub(r"(\[%s\]\nlisten = 127\.0\.0\.1:)0" % service, r"\g<1>%d" % port, text)
        with open(conf, "w") as f:
            f.write(text)
        r = self.srv.cli("-c", conf, "doctor", *args, check=False)
        out = r.stdout.decode()
        lines = re.findall(r"^(ok|warn|fail) +(\S+) +(.*)$", out, re.M)
        return r.returncode, lines, out

    def states(self, lines, check):
        return [s for s, c, _ in lines if c == check]

    def test_good_installation(self):
        rc, lines, out = self.doctor()
        self.assertEqual(rc, 0, out)
        self.assertNotIn("fail", [s for s, _, _ in lines], out)
        self.assertEqual(self.states(lines, "listen"), ["ok"] * 7, out)
        for check in ("user", "data-dir", "disk", "inodes", "clock"):
            self.assertEqual(self.states(lines, check), ["ok"], out)
        # the certificate made on the first start: valid, but self-signed
        self.assertIn("ok", self.states(lines, "tls"))
        self.assertRegex(out, r"warn +tls +the certificate is self-signed")
        self.assertEqual(self.states(lines, "dns"), ["ok"] * 3, out)  # MX, SPF, PTR
        self.assertRegex(out, r"(?m)^0 failed, \d+ warnings$")

    def test_broken_installation(self):
        data = self.srv.data_dir
        # an expired certificate for another name, a data directory open to
        # everyone, an entry not the server's, DNS pointing elsewhere
        now = datetime.datetime.now(datetime.timezone.utc)
        make_cert(os.path.join(data, "tls", "cert.pem"), os.path.join(data, "tls", "key.pem"), "other.test",
                  now - datetime.timedelta(days=30), now - datetime.timedelta(days=3))
        os.chmod(data, 0o777)
        self.dns.add_txt("example.org", "v=spf1 ip4:192.0.2.1 -all")  # two SPF records now
        rc, lines, out = self.doctor()
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"fail +data-dir +\S+ is writable by everyone: chmod o-w")
        self.assertRegex(out, r"fail +tls +\S+cert.pem expired 3 days ago: renew it")
        self.assertRegex(out, r"warn +tls +the certificate is not for mail.test")
        self.assertRegex(out, r"warn +dns +example.org SPF: publish")
        os.chmod(data, 0o750)
        if os.geteuid() == 0:
            stray = os.path.join(data, "stray")
            open(stray, "w").close()  # root's, in the server's directory
            rc, lines, out = self.doctor("--no-dns")
            self.assertRegex(out, r"fail +data-dir +1 entry of \S+ \(stray\) not postoffice's: chown -R")
            self.assertEqual(self.states(lines, "dns"), [])
        # the server stopped: nothing answers
        self.srv.stop()
        rc, lines, out = self.doctor("--no-dns")
        self.assertEqual(rc, 1)
        self.assertEqual(self.states(lines, "listen"), ["fail"] * 7, out)
        self.assertIn("is the server running", out)


if __name__ == "__main__":
    unittest.main()
