"""`postoffice dns DOMAIN` (issue 14): every record a domain needs, checked
against the test's DNS responder: all ok for a complete zone; missing,
differs and error lines, with the exact value to publish, otherwise."""
import re
import unittest

from harness import Server
from dnsserver import DnsServer


class TestDnsCommand(unittest.TestCase):
    def setUp(self):
        self.dns = DnsServer()
        self.srv = Server(hostname="mail.example.org",
                          extra_config="[dns]\nresolver = %s\n" % self.dns.address)
        out = self.srv.cli("dkim", "keygen", "example.org", "--selector", "ed1", "--algorithm",
                           "ed25519").stdout.decode()
        self.dkim_value = "".join(re.findall(r"\"([^\"]*)\"", out.splitlines()[-1]))

    def tearDown(self):
        self.srv.cleanup()
        self.dns.stop()

    def full_zone(self, skip=()):
        d = self.dns
        if "mx" not in skip:
            d.add_mx("example.org", 10, "mail.example.org")
        d.add_a("mail.example.org", "192.0.2.10")
        d.add_txt("example.org", "v=spf1 mx -all" if "spf" not in skip else "v=spf1 -all")
        d.add_txt("example.org", "google-site-verification=abc")
        if "dkim" not in skip:
            d.add_txt("ed1._domainkey.example.org", self.dkim_value)
        if "dmarc" not in skip:
            d.add_txt("_dmarc.example.org", "v=DMARC1; p=reject; rua=mailto:d@example.org")
        d.add_txt("_mta-sts.example.org", "v=STSv1; id=20260101")
        d.add_txt("_smtp._tls.example.org", "v=TLSRPTv1; rua=mailto:tls@example.org")
        d.add_ptr("10.2.0.192.in-addr.arpa", "mail.example.org" if "ptr" not in skip else "dsl-1.isp.example")
        d.start()

    def run_dns(self, *extra):
        r = self.srv.cli("dns", "example.org", *extra, check=False)
        lines = {}
        for line in r.stdout.decode().splitlines():
            m = re.match(r"^(ok|missing|differs|error)\s+(\S+)\s+(.*)$", line)
            if m:
                lines.setdefault(m.group(2), []).append((m.group(1), m.group(3)))
        return r.returncode, lines, r.stdout.decode()

    def test_complete_zone(self):
        self.full_zone()
        rc, lines, out = self.run_dns()
        self.assertEqual(rc, 0, out)
        for what in ("MX", "address", "SPF", "DKIM", "DMARC", "MTA-STS", "TLS-RPT", "PTR"):
            self.assertIn(what, lines, out)
            self.assertEqual([s for s, _ in lines[what]], ["ok"] * len(lines[what]), out)
        self.assertIn("example.org. IN MX 10 mail.example.org.", out)
        self.assertIn("10.2.0.192.in-addr.arpa. IN PTR mail.example.org.", out)
        self.assertIn("mode: enforce", out)
        self.assertIn("mx: mail.example.org", out)

    def test_gaps(self):
        self.full_zone(skip=("mx", "spf", "dkim", "dmarc", "ptr"))
        rc, lines, out = self.run_dns()
        self.assertEqual(rc, 1, out)
        self.assertEqual(lines["MX"][0][0], "missing", out)
        # a record that lets the host send is not there: "-all" only
        self.assertEqual(lines["SPF"][0], ("differs", 'example.org. IN TXT "v=spf1 mx -all"'), out)
        self.assertIn("published: v=spf1 -all", out)
        self.assertEqual(lines["DKIM"][0], ("missing", 'ed1._domainkey.example.org. IN TXT "%s"'
                                            % self.dkim_value), out)
        self.assertEqual(lines["DMARC"][0][0], "missing", out)
        self.assertIn('_dmarc.example.org. IN TXT "v=DMARC1; p=quarantine; '
                      'rua=mailto:postmaster@example.org"', out)
        self.assertEqual(lines["PTR"][0][0], "differs", out)
        self.assertIn("published: dsl-1.isp.example", out)

    def test_given_address_and_dns_errors(self):
        self.full_zone()
        self.dns.add_servfail("_dmarc.example.org")
        rc, lines, out = self.run_dns("--ip", "198.51.100.7")
        self.assertEqual(rc, 1, out)
        # the given address is not the host's, not in SPF, has no PTR
        self.assertEqual(lines["address"][0], ("differs", "mail.example.org. IN A 198.51.100.7"), out)
        self.assertEqual(lines["SPF"][0][0], "differs", out)
        self.assertEqual(lines["PTR"][0][0], "missing", out)
        self.assertEqual(lines["DMARC"][0][0], "error", out)
        r = self.srv.cli("dns", "example.org", "--ip", "not-an-ip", check=False)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
