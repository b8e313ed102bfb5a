"""The verdict on inbound mail (issue 14): SPF, DKIM, DMARC and ARC together
(trust/inbound.h).  Mail arrives on the inbound port from 127.0.0.1; the
domains' SPF, DKIM, DMARC and ARC records come from the test's own DNS
responder; messages are signed and ARC-sealed by an independent
implementation (Debian's python3-dkim with python3-authres).

  - DMARC (RFC 7489): aligned and unaligned identifiers, relaxed and strict
    alignment, the organizational domain's record and its sp=, pct=; a
    forged From: of a p=reject domain is refused with 550 5.7.1 at the end
    of DATA and nothing is delivered, while genuine mail is; p=quarantine
    goes into the recipient's Junk folder;
  - ARC (RFC 8617): a message a mailing list changed (its DKIM signature
    broken) and sealed validates as arc=pass, and a DMARC failure is
    forgiven only when the sealer is trusted;
  - SPF (RFC 7208) fail of a domain without DMARC is refused only when
    [spf] reject is on.
All results go into one Authentication-Results field."""
import base64
import re
import unittest

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dnsserver import DnsServer
from harness import Server

HOST = "mx.b.test"
BOB = "bob@b.test"


def rsa_key():
    """(PEM private key, DKIM key record)."""
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()


def message(from_addr, subject, body="Hello Bob.\r\n"):
    return ("From: %s\r\nTo: <bob@b.test>\r\nSubject: %s\r\nDate: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s@test>\r\n\r\n%s" % (from_addr, subject, re.sub(r"\W", "", subject), body)).encode()


def authres(stored):
    """{method: (result, rest)} of our Authentication-Results field (the first
    result per method), and the raw unfolded field."""
    header = stored.split(b"\r\n\r\n", 1)[0]
    fields = re.findall(rb"(?mi)^Authentication-Results:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", header)
    ours = [re.sub(rb"\r\n[ \t]", b" ", f).strip().decode() for f in fields]
    ours = [f for f in ours if f.split(";")[0].strip() == HOST]
    assert len(ours) == 1, ours
    out = {}
    for part in ours[0].split(";")[1:]:
        m = re.match(r"\s*(\w+)=(\w+)(.*)$", part)
        assert m, part
        out.setdefault(m.group(1), (m.group(2), m.group(3).strip()))
    return out, ours[0]


class TestTrustInbound(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        dns = cls.dns = DnsServer().start()
        cls.sender_key, rec = rsa_key()
        dns.add_txt("s1._domainkey.sender.test", rec)
        cls.list_key, rec = rsa_key()
        dns.add_txt("arc1._domainkey.list.test", rec)
        cls.other_list_key, rec = rsa_key()
        dns.add_txt("arc1._domainkey.otherlist.test", rec)
        spf_here = "v=spf1 ip4:127.0.0.1 -all"
        for domain in ("sender.test", "strict.test", "list.test", "otherlist.test"):
            dns.add_txt(domain, spf_here)
        dns.add_txt("bank.test", "v=spf1 ip4:192.0.2.1 -all")
        dns.add_txt("quar.test", "v=spf1 -all")
        dns.add_txt("nodmarc.test", "v=spf1 -all")
        dns.add_txt("_dmarc.sender.test", "v=DMARC1; p=reject")
        dns.add_txt("_dmarc.bank.test", "v=DMARC1; p=reject; rua=mailto:d@bank.test")
        dns.add_txt("_dmarc.quar.test", "v=DMARC1; p=quarantine")
        dns.add_txt("_dmarc.strict.test", "v=DMARC1; p=reject; aspf=s; adkim=s")
        dns.add_txt("_dmarc.org.test", "v=DMARC1; p=none; sp=reject")
        dns.add_txt("_dmarc.sampled.test", "v=DMARC1; p=reject; pct=0")
        # a TXT record that is not DMARC beside the policy is ignored
        dns.add_txt("_dmarc.sender.test", "some other text")
        cls.srv = cls.server("[arc]\ntrusted_sealers = list.test, example.net\n")

    @classmethod
    def server(cls, extra):
        srv = Server(hostname=HOST, extra_config="[dns]\nresolver = %s\n[dkim]\nverify_timeout = 5s\n%s"
                     % (cls.dns.address, extra))
        srv.add_domain("b.test")
        srv.add_user(BOB, "bobpw")
        srv.start()
        return srv

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        cls.dns.stop()

    def sign(self, msg, domain=b"sender.test"):
        return dkim.sign(msg, b"s1", domain, self.sender_key,
                         include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + msg

    def send(self, mail_from, msg, srv=None):
        """(code, text) of the end of DATA on the inbound port."""
        srv = srv or self.srv
        with srv.smtp(timeout=30) as s:
            s.ehlo("client.test")
            code, _ = s.mail(mail_from)
            self.assertEqual(code, 250)
            code, _ = s.rcpt(BOB)
            self.assertEqual(code, 250)
            return s.data(msg)

    def delivered(self, mail_from, msg, folder="", srv=None):
        """Sends msg, which must be accepted into folder; the stored copy."""
        srv = srv or self.srv
        before = {f: len(srv.maildir_messages(BOB, f)) for f in ("", "Junk")}
        code, text = self.send(mail_from, msg, srv)
        self.assertEqual(code, 250, text)
        for f in ("", "Junk"):
            want = before[f] + (1 if f == folder else 0)
            self.assertEqual(len(srv.maildir_messages(BOB, f)), want, "folder %r" % f)
        return srv.maildir_messages(BOB, folder)[-1][1]

    def refused(self, mail_from, msg, status="5.7.1", srv=None):
        srv = srv or self.srv
        before = {f: len(srv.maildir_messages(BOB, f)) for f in ("", "Junk")}
        code, text = self.send(mail_from, msg, srv)
        self.assertEqual(code, 550, text)
        self.assertTrue(text.decode().startswith(status), text)
        for f in ("", "Junk"):
            self.assertEqual(len(srv.maildir_messages(BOB, f)), before[f], "folder %r" % f)
        return text.decode()

    # ---- DMARC ----

    def test_genuine_signed_passes(self):
        stored = self.delivered("alice@sender.test", self.sign(message("Alice <alice@sender.test>", "genuine")))
        r, field = authres(stored)
        self.assertEqual(r["spf"][0], "pass", field)
        self.assertIn("smtp.mailfrom=alice@sender.test", r["spf"][1])
        self.assertEqual(r["dkim"][0], "pass", field)
        self.assertEqual(r["dmarc"][0], "pass", field)
        self.assertIn("header.from=sender.test", r["dmarc"][1])
        self.assertEqual(r["arc"][0], "none", field)
        # the order of RFC 8601's examples: spf, dkim, dmarc, arc
        self.assertLess(field.index("spf="), field.index("dkim="))
        self.assertLess(field.index("dkim="), field.index("dmarc="))

    def test_aligned_dkim_alone_passes(self):
        """SPF fails (unaligned MAIL FROM on a forwarder), the aligned DKIM
        signature carries DMARC."""
        stored = self.delivered("fwd@nodmarc.test", self.sign(message("alice@sender.test", "dkim only")))
        r, field = authres(stored)
        self.assertEqual(r["spf"][0], "fail", field)
        self.assertEqual(r["dmarc"][0], "pass", field)

    def test_forged_from_of_reject_domain_refused(self):
        # unaligned envelope, no signature
        text = self.refused("attacker@evil.test", message("CEO <ceo@bank.test>", "wire money"))
        self.assertIn("bank.test", text)
        # aligned envelope but not from the domain's address: SPF fail
        self.refused("ceo@bank.test", message("ceo@bank.test", "wire money again"))
        # signed by another domain: DKIM passes but is not aligned
        self.refused("attacker@evil.test", self.sign(message("ceo@bank.test", "signed by sender")))
        # a signature of bank.test's name made with the wrong key fails
        self.refused("attacker@evil.test", self.sign(message("ceo@bank.test", "bad key"), domain=b"bank.test"))
        log = self.srv.log_text()
        self.assertIn("reason=dmarc", log)
        self.assertRegex(log, r"trust verdict qid=\S+ spf=\w+ dmarc=fail from=bank.test arc=none action=reject")

    def test_forged_from_changed_after_signing_refused(self):
        msg = self.sign(message("alice@sender.test", "changed"))
        self.refused("attacker@evil.test", msg.replace(b"Hello Bob.", b"Hello Bob!"))

    def test_quarantine_goes_to_junk(self):
        stored = self.delivered("x@quar.test", message("x@quar.test", "quarantined"), folder="Junk")
        r, field = authres(stored)
        self.assertEqual(r["spf"][0], "fail", field)
        self.assertEqual(r["dmarc"][0], "fail", field)
        self.assertIn("p=quarantine", r["dmarc"][1])

    def test_relaxed_alignment_with_organizational_domain(self):
        """From: a subdomain without its own record: the organizational
        domain's record applies, and relaxed alignment accepts the parent
        domain's SPF pass."""
        stored = self.delivered("alice@sender.test", message("news@mail.sender.test", "relaxed"))
        r, field = authres(stored)
        self.assertEqual(r["dmarc"][0], "pass", field)
        self.assertIn("_dmarc.mail.sender.test", [q[0] for q in self.dns.queries])

    def test_strict_alignment(self):
        # aspf=s: the subdomain's author is not the envelope's domain
        self.refused("a@strict.test", message("x@news.strict.test", "strict"))
        # the same domain is aligned
        stored = self.delivered("a@strict.test", message("x@strict.test", "strict ok"))
        self.assertEqual(authres(stored)[0]["dmarc"][0], "pass")

    def test_subdomain_policy(self):
        # sp=reject applies to a subdomain of org.test
        self.refused("a@evil.test", message("x@child.org.test", "subdomain"))
        # p=none to the domain itself: delivered, failing
        stored = self.delivered("a@evil.test", message("x@org.test", "org itself"))
        r, field = authres(stored)
        self.assertEqual(r["dmarc"][0], "fail", field)
        self.assertIn("p=none", r["dmarc"][1])

    def test_pct_zero_samples_out(self):
        """RFC 7489 6.6.4: a p=reject message pct= leaves out gets the next
        policy down, quarantine."""
        stored = self.delivered("a@evil.test", message("x@sampled.test", "sampled"), folder="Junk")
        r, field = authres(stored)
        self.assertEqual(r["dmarc"][0], "fail", field)
        self.assertIn("sampled out", r["dmarc"][1])

    def test_no_policy_is_none(self):
        stored = self.delivered("a@nodmarc.test", message("a@nodmarc.test", "no policy"))
        r, field = authres(stored)
        self.assertEqual(r["spf"][0], "fail", field)
        self.assertEqual(r["dmarc"][0], "none", field)

    def test_several_from_domains_quarantined(self):
        """Whose policy applies cannot be said: permerror, into Junk (a
        forged address must not hide behind a genuine one)."""
        stored = self.delivered("alice@sender.test",
                                message("alice@sender.test, ceo@bank.test", "two authors"), folder="Junk")
        r, field = authres(stored)
        self.assertEqual(r["dmarc"][0], "permerror", field)
        stored = self.delivered("alice@sender.test",
                                b"From: ceo@bank.test\r\n" + message("alice@sender.test", "two fields"),
                                folder="Junk")
        self.assertEqual(authres(stored)[0]["dmarc"][0], "permerror")

    # ---- ARC ----

    def through_list(self, list_domain, key, tamper=False):
        """A message of sender.test (p=reject) as a mailing list sends it on:
        checked, subject tagged, footer added, ARC-sealed."""
        msg = self.sign(message("Alice <alice@sender.test>", "to the list"))
        msg = msg.replace(b"Subject: to the list", b"Subject: [list] to the list") + b"-- \r\nlist footer\r\n"
        msg = ("Authentication-Results: %s; dkim=pass header.d=sender.test; spf=pass "
               "smtp.mailfrom=alice@sender.test; dmarc=pass header.from=sender.test\r\n" % list_domain).encode() + msg
        msg = b"".join(dkim.arc_sign(msg, b"arc1", list_domain.encode(), key, list_domain.encode())) + msg
        if tamper:
            msg = msg.replace(b"list footer", b"list footer, changed after the seal")
        return msg

    def test_arc_sealed_list_message_passes(self):
        msg = self.through_list("list.test", self.list_key)
        stored = self.delivered("list-bounces@list.test", msg)
        r, field = authres(stored)
        self.assertEqual(r["arc"][0], "pass", field)
        self.assertEqual(r["dkim"][0], "fail", field)  # the list changed what sender.test signed
        self.assertEqual(r["dmarc"][0], "fail", field)
        self.assertIn("trusted ARC sealer", r["dmarc"][1])

    def test_arc_untrusted_sealer_does_not_forgive(self):
        msg = self.through_list("otherlist.test", self.other_list_key)
        self.refused("list-bounces@otherlist.test", msg)
        self.assertRegex(self.srv.log_text(), r"dmarc=fail from=sender.test arc=pass action=reject")

    def test_arc_broken_after_seal_fails(self):
        msg = self.through_list("list.test", self.list_key, tamper=True)
        self.refused("list-bounces@list.test", msg)
        self.assertRegex(self.srv.log_text(), r"dmarc=fail from=sender.test arc=fail action=reject")


class TestSpfReject(unittest.TestCase):
    def test_spf_fail_refused_without_dmarc(self):
        dns = DnsServer().start()
        try:
            dns.add_txt("nodmarc.test", "v=spf1 -all")
            dns.add_txt("quar.test", "v=spf1 -all")
            dns.add_txt("_dmarc.quar.test", "v=DMARC1; p=quarantine")
            dns.add_txt("ok.test", "v=spf1 ip4:127.0.0.1 -all")
            with Server(hostname=HOST, extra_config="[dns]\nresolver = %s\n[spf]\nreject = yes\n"
                        % dns.address) as srv:
                srv.add_domain("b.test")
                srv.add_user(BOB, "bobpw")
                with srv.smtp(timeout=30) as s:
                    s.ehlo("client.test")
                    s.mail("a@nodmarc.test")
                    s.rcpt(BOB)
                    code, text = s.data(message("a@nodmarc.test", "spf fail"))
                    self.assertEqual((code, text.decode()[:6]), (550, "5.7.23"))
                    # a domain with a DMARC policy: DMARC decides (quarantine)
                    s.mail("a@quar.test")
                    s.rcpt(BOB)
                    self.assertEqual(s.data(message("a@quar.test", "dmarc decides"))[0], 250)
                    s.mail("a@ok.test")
                    s.rcpt(BOB)
                    self.assertEqual(s.data(message("a@ok.test", "spf pass"))[0], 250)
                self.assertEqual(len(srv.maildir_messages(BOB)), 1)
                self.assertEqual(len(srv.maildir_messages(BOB, "Junk")), 1)
                self.assertIn("reason=spf", srv.log_text())
        finally:
            dns.stop()


class TestPolicyOff(unittest.TestCase):
    def test_reject_off_quarantines(self):
        dns = DnsServer().start()
        try:
            dns.add_txt("_dmarc.bank.test", "v=DMARC1; p=reject")
            with Server(hostname=HOST, extra_config="[dns]\nresolver = %s\n[dmarc]\nreject = no\n"
                        % dns.address) as srv:
                srv.add_domain("b.test")
                srv.add_user(BOB, "bobpw")
                with srv.smtp(timeout=30) as s:
                    s.ehlo("client.test")
                    s.mail("a@evil.test")
                    s.rcpt(BOB)
                    self.assertEqual(s.data(message("ceo@bank.test", "not refused"))[0], 250)
                self.assertEqual(len(srv.maildir_messages(BOB, "Junk")), 1)
                self.assertEqual(len(srv.maildir_messages(BOB)), 0)
        finally:
            dns.stop()


if __name__ == "__main__":
    unittest.main()
