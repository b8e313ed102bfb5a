"""DKIM verification of inbound mail (issue 14): messages signed by an
independent signer (Debian's python3-dkim, RSA and Ed25519, simple and
relaxed canonicalization) arrive on the inbound port, the keys come from the
test's own DNS responder, and the stored message carries one
Authentication-Results field (RFC 8601) with postoffice's verdict."""
import base64
import os
import re
import subprocess
import tempfile
import time
import unittest

import dkim
import nacl.signing

from dnsserver import DnsServer
from harness import Conversation, Server, wait_for

HOST = "mx.b.test"
TIMEOUT = 2  # [dkim] verify_timeout


def message(subject, body="Hello Bob,\r\nthis is  signed mail.\r\n", extra=b""):
    return (extra + ("From: Alice <alice@sender.test>\r\nTo: <bob@b.test>\r\nSubject: %s\r\n"
                     "Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%s@sender.test>\r\n"
                     "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                     % (subject, re.sub(r"\W", "", subject), body)).encode())


def rsa_key(bits=2048):
    """(PEM private key, base64 DER public key) made by openssl."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "key.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits,
                        "-out", path], check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"], check=True,
                             capture_output=True).stdout
        with open(path, "rb") as f:
            return f.read(), base64.b64encode(der).decode()


def ed25519_key():
    """(dkimpy's private key: base64 of the seed, base64 public key)."""
    sk = nacl.signing.SigningKey.generate()
    return base64.b64encode(bytes(sk)), base64.b64encode(bytes(sk.verify_key)).decode()


def sign(msg, selector, privkey, alg=b"rsa-sha256", canon=(b"relaxed", b"relaxed"), domain=b"sender.test"):
    sig = dkim.sign(msg, selector, domain, privkey, canonicalize=canon, signature_algorithm=alg,
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + msg


def fields(stored, name):
    """Every field called name in the stored header, unfolded."""
    header = stored.split(b"\r\n\r\n", 1)[0]
    out = re.findall(rb"(?mi)^%s:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)" % re.escape(name.encode()), header)
    return [re.sub(rb"\r\n[ \t]", b" ", v).strip().decode() for v in out]


def results(stored):
    """The dkim results of our Authentication-Results field: [(result, {prop: value})]
    (the field has the other checks' results too: spf, dmarc, arc)."""
    ar = fields(stored, "Authentication-Results")
    assert ar, stored[:500]
    value = ar[0]
    assert value.startswith(HOST + ";"), value
    out = []
    for part in value.split(";")[1:]:
        m = re.match(r"\s*(\w+)=(\w+)(.*)$", part)
        assert m, part
        if m.group(1) != "dkim":
            continue
        m = re.match(r"\s*dkim=(\w+)(.*)$", part)
        props = dict(re.findall(r'(header\.\w|reason)=("[^"]*"|\S+)', m.group(2)))
        out.append((m.group(1), {k: v.strip('"') for k, v in props.items()}))
    return out


class TestDkimVerify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer().start()
        cls.rsa_priv, rsa_pub = rsa_key()
        cls.ed_priv, ed_pub = ed25519_key()
        # a 3072-bit key's record does not fit in 512 bytes: over TCP
        cls.rsa3k_priv, rsa3k_pub = rsa_key(3072)
        # several character-strings per record, and a second record of
        # another kind at the RSA name (the verifier picks the key)
        cls.dns.add_txt("rsa1._domainkey.sender.test", "v=DKIM1; k=rsa; p=" + rsa_pub)
        cls.dns.add_txt("rsa1._domainkey.sender.test", "some other", " record")
        cls.dns.add_txt("ed1._domainkey.sender.test", "v=DKIM1; k=ed25519; ", "p=" + ed_pub)
        cls.dns.add_txt("rsa3k._domainkey.sender.test", "v=DKIM1; k=rsa; p=" + rsa3k_pub)
        cls.dns.mute("slow.test")
        cls.srv = Server(hostname=HOST, extra_config="[dns]\nresolver = %s\n[dkim]\nverify_timeout = %ds\n"
                         % (cls.dns.address, TIMEOUT))
        cls.srv.add_domain("b.test")
        cls.srv.add_user("bob@b.test", "bobpw")
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        cls.dns.stop()

    def deliver(self, msg, subject=None):
        """Sends msg to bob on the inbound port; the stored copy."""
        before = len(self.srv.maildir_messages("bob@b.test"))
        with self.srv.smtp(timeout=30) as s:
            s.sendmail("alice@sender.test", ["bob@b.test"], msg)
        msgs = self.srv.maildir_messages("bob@b.test")
        self.assertEqual(len(msgs), before + 1)
        return msgs[-1][1]

    def test_rsa_and_ed25519_pass(self):
        for alg, sel, key in ((b"rsa-sha256", b"rsa1", self.rsa_priv), (b"ed25519-sha256", b"ed1", self.ed_priv),
                              (b"rsa-sha256", b"rsa3k", self.rsa3k_priv)):
            for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple"), (b"relaxed", b"simple")):
                with self.subTest(alg=alg, canon=canon):
                    msg = sign(message("pass %s %s" % (alg, canon)), sel, key, alg, canon)
                    stored = self.deliver(msg)
                    r = results(stored)
                    self.assertEqual(len(r), 1, r)
                    self.assertEqual(r[0][0], "pass", r)
                    b = re.search(rb"\bb=([A-Za-z0-9+/]{8})", msg).group(1).decode()
                    self.assertEqual(r[0][1], {"header.d": "sender.test", "header.i": "@sender.test",
                                               "header.s": sel.decode(), "header.a": alg.decode(),
                                               "header.b": b})
                    # our field is the first one, right below Return-Path
                    self.assertTrue(stored.startswith(b"Return-Path: <alice@sender.test>\r\n"
                                                      b"Authentication-Results: " + HOST.encode() + b";"),
                                    stored[:200])
                    # the rest is the message as sent, below our Received
                    self.assertTrue(stored.endswith(msg), stored[-200:])
        # the 3072-bit key's record came over TCP (truncated over UDP)
        self.assertIn(("rsa3k._domainkey.sender.test", 16), self.dns.tcp_queries)

    def test_two_signatures(self):
        """Two body canonicalizations in one message: two body hashes."""
        msg = sign(sign(message("two"), b"rsa1", self.rsa_priv), b"ed1", self.ed_priv, b"ed25519-sha256",
                   (b"simple", b"simple"))
        r = results(self.deliver(msg))
        self.assertEqual([x[0] for x in r], ["pass", "pass"])
        self.assertEqual([x[1]["header.a"] for x in r], ["ed25519-sha256", "rsa-sha256"])  # top first
        self.assertNotEqual(r[0][1]["header.b"], r[1][1]["header.b"])

    def test_changed_body_or_header_fails(self):
        for alg, sel, key in ((b"rsa-sha256", b"rsa1", self.rsa_priv), (b"ed25519-sha256", b"ed1", self.ed_priv)):
            for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple")):
                msg = sign(message("changed %s %s" % (alg, canon)), sel, key, alg, canon)
                with self.subTest(alg=alg, canon=canon, change="body"):
                    r = results(self.deliver(msg.replace(b"signed mail.", b"signed mail!")))
                    self.assertEqual(r[0][0], "fail", r)
                    self.assertEqual(r[0][1]["reason"], "body hash did not verify")
                with self.subTest(alg=alg, canon=canon, change="header"):
                    r = results(self.deliver(msg.replace(b"Subject: changed", b"Subject: Changed")))
                    self.assertEqual(r[0][0], "fail", r)
                    self.assertEqual(r[0][1]["reason"], "signature did not verify")
        # an unsigned header field changed or added: still a pass
        msg = sign(message("unsigned header"), b"ed1", self.ed_priv, b"ed25519-sha256")
        r = results(self.deliver(msg.replace(b"MIME-Version: 1.0", b"MIME-Version: 1.0\r\nX-List: added")))
        self.assertEqual(r[0][0], "pass", r)

    def test_key_cache(self):
        """A key found is kept for the next messages (for its TTL): looked
        up once; a key with TTL 0 is looked up for each message."""
        ed_priv, ed_pub = ed25519_key()
        self.dns.add_txt("cached._domainkey.sender.test", "v=DKIM1; k=ed25519; p=" + ed_pub)
        self.dns.add_txt("uncached._domainkey.sender.test", "v=DKIM1; k=ed25519; p=" + ed_pub, ttl=0)
        for sel in ("cached", "uncached"):
            for i in range(3):
                msg = sign(message("cache %s %d" % (sel, i)), sel.encode(), ed_priv, b"ed25519-sha256")
                self.assertEqual(results(self.deliver(msg))[0][0], "pass")
        q = self.dns.queries
        self.assertEqual(q.count(("cached._domainkey.sender.test", 16)), 1)
        self.assertEqual(q.count(("uncached._domainkey.sender.test", 16)), 3)

    def test_no_key_is_permerror(self):
        msg = sign(message("no key"), b"gone", self.rsa_priv)
        r = results(self.deliver(msg))
        self.assertEqual(r[0][0], "permerror", r)
        self.assertEqual(r[0][1]["reason"], "no key record")
        self.assertEqual(r[0][1]["header.s"], "gone")

    def test_silent_dns_is_temperror_within_the_timeout(self):
        msg = sign(message("slow"), b"sel", self.ed_priv, b"ed25519-sha256", domain=b"slow.test")
        t0 = time.time()
        stored = self.deliver(msg)
        took = time.time() - t0
        r = results(stored)
        self.assertEqual(r[0][0], "temperror", r)
        self.assertEqual(r[0][1]["header.d"], "slow.test")
        self.assertGreater(took, TIMEOUT - 0.5)
        self.assertLess(took, TIMEOUT + 2)
        self.assertIn(("sel._domainkey.slow.test", 16), self.dns.queries)

    def test_other_sessions_do_not_wait(self):
        """A session waiting on a silent DNS server holds up nobody else."""
        slow = sign(message("slow other"), b"sel", self.ed_priv, b"ed25519-sha256", domain=b"slow.test")
        with self.srv.smtp(timeout=30) as s1:
            s1.ehlo("client.test")
            s1.mail("alice@sender.test")
            s1.rcpt("bob@b.test")
            s1.putcmd("data")
            self.assertEqual(s1.getreply()[0], 354)
            s1.send(slow.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
            t0 = time.time()
            stored = self.deliver(sign(message("fast other"), b"ed1", self.ed_priv, b"ed25519-sha256"))
            self.assertLess(time.time() - t0, TIMEOUT / 2)
            self.assertEqual(results(stored)[0][0], "pass")
            self.assertEqual(s1.getreply()[0], 250)

    def test_client_gone(self):
        """A client that leaves in the middle of the body (lookups running)
        or right after the end of data (the session waiting for them)."""
        slow = sign(message("gone"), b"sel", self.ed_priv, b"ed25519-sha256", domain=b"slow.test")
        before = len(self.srv.maildir_messages("bob@b.test"))
        for cut in (len(slow) - 10, None):
            sock = self.srv.connect("smtp")
            c = Conversation(sock)
            c.reply()
            for line in ("EHLO client.test", "MAIL FROM:<alice@sender.test>", "RCPT TO:<bob@b.test>", "DATA"):
                c.cmd(line)
            c.send(slow[:cut] if cut else slow + b"\r\n.\r\n")
            sock.close()
        # the complete message is still delivered once the wait is over
        ok = wait_for(lambda: len(self.srv.maildir_messages("bob@b.test")) > before, timeout=TIMEOUT + 3)
        self.assertTrue(ok)
        stored = self.srv.maildir_messages("bob@b.test")[-1][1]
        self.assertEqual(results(stored)[0][0], "temperror")
        # the server still answers
        self.assertEqual(results(self.deliver(message("after gone")))[0][0], "none")

    def test_unsigned_is_none(self):
        stored = self.deliver(message("unsigned"))
        self.assertEqual(results(stored), [("none", {})])
        self.assertEqual(len(fields(stored, "Authentication-Results")), 1)

    def test_forged_authentication_results_removed(self):
        forged = (b"Authentication-Results: " + HOST.upper().encode() + b";\r\n\tdkim=pass header.d=bank.test\r\n"
                  b"Authentication-Results: (comment) \"" + HOST.encode() + b"\"; spf=pass\r\n"
                  b"Authentication-Results: other.example; dkim=pass header.d=list.test\r\n"
                  b"Authentication-Results: " + HOST.encode() + b".evil; dkim=pass\r\n")
        stored = self.deliver(message("forged", extra=forged))
        ar = fields(stored, "Authentication-Results")
        self.assertEqual(results(stored), [("none", {})])
        self.assertEqual(ar[1:], ["other.example; dkim=pass header.d=list.test", HOST + ".evil; dkim=pass"])
        self.assertIn("removed=authentication-results", self.srv.log_text())

    def test_fifty_signatures_bounded(self):
        """50 valid signatures, each with a selector of its own: 8 are
        checked (8 key lookups), the rest reported as not checked."""
        ed_priv, ed_pub = ed25519_key()
        msg = message("fifty")
        for i in range(50):
            self.dns.add_txt("m%d._domainkey.many.test" % i, "v=DKIM1; k=ed25519; p=" + ed_pub)
        for i in range(50):
            msg = sign(msg, b"m%d" % i, ed_priv, b"ed25519-sha256", domain=b"many.test")
        t0 = time.time()
        stored = self.deliver(msg)
        self.assertLess(time.time() - t0, 3)
        r = results(stored)
        self.assertEqual([x[0] for x in r], ["pass"] * 8 + ["policy"])
        self.assertEqual([x[1]["header.s"] for x in r[:8]], ["m%d" % i for i in range(49, 41, -1)])
        self.assertEqual(r[8][1]["reason"], "42 more signatures not checked")
        looked_up = [q for q in self.dns.queries if q[0].endswith("many.test")]
        self.assertEqual(len(looked_up), 8, looked_up)

    def test_hostile_signatures(self):
        """Broken signatures are neutral without a lookup; a huge h= list
        is refused; a signature naming 300 distinct keys needs none."""
        hostile = (b"DKIM-Signature: v=1; a=rsa-sha256; d=h.test; s=x; h=" + b":".join([b"from"] * 5000) +
                   b"; bh=" + b"A" * 43 + b"=; b=AAAA\r\n"
                   b"DKIM-Signature: v=1; a=rsa-sha1; d=h.test; s=y; h=from; bh=x; b=y\r\n"
                   b"DKIM-Signature: v=1; a=rsa-sha256; d=h.test; s=bad\\name; h=from; bh=" + b"A" * 43 +
                   b"=; b=AAAA\r\n"
                   b"DKIM-Signature: garbage\r\n")
        before = len(self.dns.queries)
        r = results(self.deliver(message("hostile", extra=hostile)))
        self.assertEqual([x[0] for x in r], ["neutral"] * 4, r)
        self.assertEqual(r[0][1]["reason"], "bad h= list")
        self.assertEqual(r[1][1]["reason"], "unsupported algorithm")
        self.assertEqual(r[2][1]["reason"], "d= or s= is not a domain name")
        # no key lookup (SPF and DMARC of sender.test are the only queries)
        self.assertEqual([q for q in self.dns.queries[before:] if "_domainkey" in q[0]], [])

    def test_bdat(self):
        msg = sign(message("bdat"), b"ed1", self.ed_priv, b"ed25519-sha256")
        before = len(self.srv.maildir_messages("bob@b.test"))
        sock = self.srv.connect("smtp")
        c = Conversation(sock)
        c.reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<alice@sender.test>")
        c.cmd("RCPT TO:<bob@b.test>")
        half = len(msg) // 2
        c.send(b"BDAT %d\r\n" % half + msg[:half])
        self.assertEqual(c.reply()[0], 250)
        c.send(b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:])
        self.assertEqual(c.reply()[0], 250)
        sock.close()
        msgs = self.srv.maildir_messages("bob@b.test")
        self.assertEqual(len(msgs), before + 1)
        self.assertEqual(results(msgs[-1][1])[0][0], "pass")

    def test_submission_not_checked(self):
        self.srv.add_user("carol@b.test", "carolpw")
        msg = sign(message("submitted"), b"ed1", self.ed_priv, b"ed25519-sha256")
        before = len(self.srv.maildir_messages("bob@b.test"))
        self.srv.submit("carol@b.test", "carolpw", "carol@b.test", ["bob@b.test"], msg)
        msgs = self.srv.maildir_messages("bob@b.test")
        self.assertEqual(len(msgs), before + 1)
        self.assertEqual(fields(msgs[-1][1], "Authentication-Results"), [])


class TestDkimVerifyOff(unittest.TestCase):
    def test_verify_no(self):
        off = "[dkim]\nverify = no\n[spf]\nverify = no\n[dmarc]\nverify = no\n[arc]\nverify = no\n"
        with Server(hostname=HOST, extra_config=off) as srv:
            srv.add_domain("b.test")
            srv.add_user("bob@b.test", "bobpw")
            forged = b"Authentication-Results: other.example; dkim=pass\r\n"
            with srv.smtp() as s:
                s.sendmail("alice@sender.test", ["bob@b.test"], message("off", extra=forged))
            stored = srv.maildir_messages("bob@b.test")[0][1]
            self.assertEqual(fields(stored, "Authentication-Results"), ["other.example; dkim=pass"])


if __name__ == "__main__":
    unittest.main()
