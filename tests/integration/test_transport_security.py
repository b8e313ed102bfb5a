"""Outbound transport security (issue 14): MTA-STS (RFC 8461), DANE
(RFC 7672) and the plain-text retry of outbound_tls = may.

Server A (a.test) delivers through the test's DNS responder to server B,
whose certificate the test's own CA issued for mx.good.test and
mx.unlisted.test only.  The MTA-STS policies are served over HTTPS by the
test (http.server + ssl, a certificate of the same CA for every
mta-sts.DOMAIN); A checks it against that CA ([relay] mta_sts_ca) and finds
it on [relay] mta_sts_port.  Every MX name resolves to 127.0.0.1 and
[relay] mx_port is B's port.  The responder sets AD on the names the test
marks secure, as a validating resolver does for DNSSEC-secure data."""
import hashlib
import http.server
import json
import os
import re
import shutil
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Server, wait_for
from dnsserver import DnsServer, TYPE_TLSA, TYPE_TXT

DOMAINS = ["good.test", "unlisted.test", "badcert.test", "testing.test", "dane-ok.test", "dane-bad.test",
           "dane-insecure.test", "both.test", "dane-fail.test", "dane-fail-insecure.test"]


def message(subject, to):
    return ("From: <alice@a.test>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@a.test>\r\n\r\nbody\r\n"
            % (to, subject, re.sub(r"\W", "", subject))).encode()


def openssl(cwd, *args, input=None):
    return subprocess.run(["openssl"] + list(args), cwd=cwd, input=input, capture_output=True, check=True,
                          timeout=30).stdout


def make_pki(d):
    """A CA, B's certificate (mx.good.test, mx.unlisted.test) and the policy
    host's (mta-sts.DOMAIN for every domain), EC P-256, valid from now."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl(d, "req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=postoffice test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def leaf(name, sans):
        openssl(d, "req", "-new", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + sans[0])
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                    % ",".join("DNS:" + s for s in sans))
        openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", name + ".pem", "-extfile", name + ".ext")
        return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")

    mx = leaf("mx", ["mx.good.test", "mx.unlisted.test"])
    sts = leaf("sts", ["mta-sts." + dom for dom in DOMAINS])
    return os.path.join(d, "ca.pem"), mx, sts


def spki_sha256(cert):
    """The 3 1 1 association data of a certificate: SHA-256 of its
    SubjectPublicKeyInfo (RFC 6698 2.1.2)."""
    pem = openssl(None, "x509", "-in", cert, "-pubkey", "-noout")
    der = openssl(None, "pkey", "-pubin", "-outform", "DER", input=pem)
    return hashlib.sha256(der).digest()


def policy(mode, *mx, max_age=86400):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (mode, "".join("mx: %s\r\n" % m for m in mx),
                                                                 max_age)


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        owner = self.server.owner
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        domain = host[len("mta-sts."):] if host.startswith("mta-sts.") else ""
        owner.fetches.append(domain)
        text = owner.policies.get(domain)
        if self.path != "/.well-known/mta-sts.txt" or text is None:
            self.send_error(404)
            return
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class PolicyServer:
    """The HTTPS policy host of every domain (RFC 8461 3.3), on one port."""

    def __init__(self, cert, key):
        self.cert, self.key = cert, key
        self.policies = {}
        self.fetches = []
        self.port = 0
        self.httpd = None

    def start(self):
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), PolicyHandler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        httpd.owner = self
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        self.httpd = httpd
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


class BrokenTlsServer(socketserver.ThreadingTCPServer):
    """An MX that offers STARTTLS, answers 220 to it and then sends garbage
    instead of a TLS handshake; without STARTTLS it takes the message."""
    allow_reuse_address = True
    daemon_threads = True
    REPLIES = {b"EHLO": b"250-broken.test\r\n250-STARTTLS\r\n250 8BITMIME", b"DATA": b"354 go ahead",
               b"QUIT": b"221 bye", b"STAR": b"220 2.0.0 go ahead"}

    def __init__(self):
        self.messages = []
        self.sessions = 0
        self.starttls = 0
        super().__init__(("127.0.0.1", 0), BrokenTlsHandler)


class BrokenTlsHandler(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        srv.sessions += 1
        out = self.wfile
        out.write(b"220 broken.test ESMTP fake\r\n")
        for line in iter(self.rfile.readline, b""):
            verb = line[:4].upper()
            out.write(srv.REPLIES.get(verb, b"250 Ok") + b"\r\n")
            if verb == b"STAR":
                srv.starttls += 1
                out.write(b"this is not a TLS handshake\r\n" * 8)
                return
            if verb == b"DATA":
                lines = []
                for chunk in iter(self.rfile.readline, b""):   # ends at EOF too
                    if chunk == b".\r\n":
                        break
                    lines.append(chunk)
                srv.messages.append(b"".join(lines))
                out.write(b"250 2.0.0 Ok queued\r\n")
            if verb == b"QUIT":
                return


class TestTransportSecurity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="po-tls-")
        os.chmod(cls.tmp, 0o755)
        cls.ca, (mx_cert, mx_key), (sts_cert, sts_key) = make_pki(cls.tmp)
        for p in os.listdir(cls.tmp):
            os.chmod(os.path.join(cls.tmp, p), 0o644)  # the servers drop root

        # B first: its SMTP port is every MX's port.
        cls.b = Server(hostname="mx.good.test", extra_config="[tls]\ncert_file = %s\nkey_file = %s\n"
                       % (mx_cert, mx_key))
        cls.b.start()
        cls.b_port = cls.b.port("smtp")
        for d in DOMAINS:
            cls.b.add_domain(d)
            cls.b.add_user("u@" + d, "pw")

        cls.https = PolicyServer(sts_cert, sts_key)
        cls.https.start()
        cls.broken = BrokenTlsServer()
        threading.Thread(target=cls.broken.serve_forever, daemon=True).start()

        dns = cls.dns = DnsServer()
        for d in DOMAINS:
            dns.add_mx(d, 10, "mx." + d)
            dns.add_a("mx." + d, "127.0.0.1")
        for d, mode, mx in [("good.test", "enforce", ["*.good.test"]),
                            ("unlisted.test", "enforce", ["mx.other.test"]),
                            ("badcert.test", "enforce", ["mx.badcert.test"]),
                            ("testing.test", "testing", ["mx.elsewhere.test"]),
                            ("both.test", "enforce", ["mx.both.test"])]:
            dns.add_txt("_mta-sts." + d, "v=STSv1; id=1;")
            dns.add_a("mta-sts." + d, "127.0.0.1")
            cls.https.policies[d] = policy(mode, *mx)
        spki = spki_sha256(mx_cert)
        tlsa = "_%d._tcp.mx.%s"
        dns.add_tlsa(tlsa % (cls.b_port, "dane-ok.test"), 3, 1, 1, spki)
        dns.add_tlsa(tlsa % (cls.b_port, "dane-bad.test"), 3, 1, 1, hashlib.sha256(b"another key").digest())
        dns.add_tlsa(tlsa % (cls.b_port, "dane-insecure.test"), 3, 1, 1, hashlib.sha256(b"x").digest(),
                     secure=False)
        dns.add_tlsa(tlsa % (cls.b_port, "both.test"), 3, 1, 1, spki)
        # TLSA lookups that fail, for a host with secure addresses and one without
        dns.add_servfail(tlsa % (cls.b_port, "dane-fail.test"), TYPE_TLSA)
        dns.set_secure("mx.dane-fail.test")
        dns.add_servfail(tlsa % (cls.b_port, "dane-fail-insecure.test"), TYPE_TLSA)
        dns.start()

        cls.a_config = ("[dns]\nresolver = %s\n[relay]\nmx_port = %d\nmta_sts_port = %d\nmta_sts_ca = %s\n"
                        "[queue]\nretry = 1s\n[routes]\nbroken.test = 127.0.0.1:%d\n"
                        % (dns.address, cls.b_port, cls.https.port, cls.ca, cls.broken.server_address[1]))
        cls.a = Server(hostname="mx.a.test", extra_config=cls.a_config)
        cls.a.start()
        cls.a.add_domain("a.test")
        cls.a.add_user("alice@a.test", "alicepw")

    @classmethod
    def tearDownClass(cls):
        cls.a.cleanup()
        cls.b.cleanup()
        cls.https.stop()
        cls.broken.shutdown()
        cls.broken.server_close()
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ----
    def submit(self, to, subject):
        self.a.submit("alice@a.test", "alicepw", "alice@a.test", [to], message(subject, to))

    def delivered(self, to, subject, timeout=15):
        def found():
            return any(subject.encode() in m for _, m in self.b.maildir_messages(to))
        self.assertTrue(wait_for(found, timeout=timeout),
                        "%s not delivered to %s\nA log:\n%s" % (subject, to, self.a.log_text()[-4000:]))

    def queued(self, to):
        for e in json.loads(self.a.cli("queue", "list", "--json").stdout):
            for r in e["recipients"]:
                if r["address"] == to:
                    return e["id"], r
        return None, None

    def deferred(self, to, needle, timeout=15):
        """Waits until to was tried and deferred with needle in the reply;
        the message stays queued.  Returns the queue id."""
        def check():
            qid, r = self.queued(to)
            return qid if r and r["attempts"] >= 1 and needle in (r["last_reply"] or "") else None
        qid = wait_for(check, timeout=timeout)
        self.assertTrue(qid, "%s not deferred with %r: %s\nA log:\n%s"
                        % (to, needle, self.queued(to), self.a.log_text()[-4000:]))
        self.assertEqual(self.queued(to)[1]["state"], "pending")
        return qid

    def not_delivered(self, to):
        self.assertEqual(self.b.maildir_messages(to), [])

    # ---- MTA-STS ----
    def test_sts_enforce_listed_mx_delivers(self):
        """enforce, mx *.good.test, a certificate valid for mx.good.test
        from the CA: delivered over verified TLS."""
        self.submit("u@good.test", "sts good")
        self.delivered("u@good.test", "sts good")
        log = self.a.log_text()
        self.assertIn("mta-sts policy domain=good.test mode=enforce id=1 source=fetch", log)
        self.assertRegex(log, r"queue tls domain=good.test peer=mx.good.test\S* auth=pkix")
        self.assertIn("good.test", self.https.fetches)

    def test_sts_enforce_bad_certificate_defers(self):
        """enforce, the MX is listed but its certificate is not valid for
        its name: deferred (4xx), never sent without TLS."""
        self.submit("u@badcert.test", "sts badcert")
        qid = self.deferred("u@badcert.test", "MTA-STS")
        _, r = self.queued("u@badcert.test")
        self.assertIn("certificate", r["last_reply"])
        self.not_delivered("u@badcert.test")
        self.assertNotIn("tls-fallback domain=badcert.test", self.a.log_text())
        self.a.cli("queue", "delete", qid)

    def test_sts_testing_mode_delivers_and_logs(self):
        """testing: neither the unlisted MX nor its certificate stops the
        delivery; both are logged."""
        self.submit("u@testing.test", "sts testing")
        self.delivered("u@testing.test", "sts testing")
        log = self.a.log_text()
        self.assertIn("mta-sts violation domain=testing.test mode=testing host=mx.testing.test "
                      "error=mx not in policy", log)
        self.assertRegex(log, r"mta-sts violation domain=testing.test mode=testing host=mx.testing.test "
                              r"error=\S*[Hh]ostname mismatch")

    def test_sts_unlisted_mx_cache_restart_refresh(self):
        """enforce with an MX the policy does not list: deferred.  The
        policy is cached on disk: after a restart of A with the policy
        host down it still applies.  A new id makes A fetch it again; the
        new policy lists the MX and the message goes."""
        to = "u@unlisted.test"
        self.submit(to, "sts unlisted")
        self.deferred(to, "MTA-STS: MX host mx.unlisted.test is not in the policy of unlisted.test")
        self.not_delivered(to)
        cache = os.path.join(self.a.data_dir, "mta-sts", "unlisted.test")
        self.assertTrue(wait_for(lambda: os.path.exists(cache), timeout=5))
        with open(cache) as f:
            self.assertIn("mx: mx.other.test", f.read())

        self.https.stop()
        try:
            self.a.stop()
            self.a.start()
            # tried again after the restart, refused by the cached policy
            since = lambda: self.a.log_text(since_start=True)
            self.assertTrue(wait_for(lambda: "mta-sts refused domain=unlisted.test" in since(), timeout=15),
                            since()[-3000:])
            self.assertIn("mta-sts policy domain=unlisted.test mode=enforce id=1 source=cache", since())
            self.assertIn("mta-sts cache loaded", since())
            self.not_delivered(to)
        finally:
            self.https.start()  # the same port
        fetched = len(self.https.fetches)
        # a new policy under a new id
        self.https.policies["unlisted.test"] = policy("enforce", "mx.unlisted.test")
        self.dns.records["_mta-sts.unlisted.test"].pop(TYPE_TXT)
        self.dns.add_txt("_mta-sts.unlisted.test", "v=STSv1; id=2;")
        self.delivered(to, "sts unlisted")
        self.assertIn("mta-sts policy domain=unlisted.test mode=enforce id=2 source=fetch",
                      self.a.log_text(since_start=True))
        self.assertIn("unlisted.test", self.https.fetches[fetched:])
        self.assertTrue(wait_for(lambda: "id: 2" in open(cache).read(), timeout=5))

    # ---- DANE ----
    def test_dane_matching_record_delivers(self):
        """A secure 3 1 1 record of B's key: delivered, authenticated by
        DANE."""
        self.submit("u@dane-ok.test", "dane ok")
        self.delivered("u@dane-ok.test", "dane ok")
        log = self.a.log_text()
        self.assertIn("dane host=mx.dane-ok.test tlsa=1 usable=1", log)
        self.assertRegex(log, r"queue tls domain=dane-ok.test peer=mx.dane-ok.test\S* auth=dane")

    def test_dane_mismatching_record_defers(self):
        """A secure record of another key: deferred, and never delivered in
        plain text."""
        to = "u@dane-bad.test"
        self.submit(to, "dane bad")
        qid = self.deferred(to, "DANE")
        self.not_delivered(to)
        self.assertNotIn("tls-fallback domain=dane-bad.test", self.a.log_text())
        self.a.cli("queue", "delete", qid)

    def test_dane_insecure_records_ignored(self):
        """The same mismatching record without AD is not used: delivered."""
        self.submit("u@dane-insecure.test", "dane insecure")
        self.delivered("u@dane-insecure.test", "dane insecure")
        self.assertIn("dane host=mx.dane-insecure.test tlsa=1 ignored=insecure", self.a.log_text())

    def test_dane_failed_lookup(self):
        """RFC 7672 2.2: a TLSA lookup that fails makes a host whose
        addresses are secure unusable (deferred), and is of no account for
        a host in an unsigned zone (delivered)."""
        to = "u@dane-fail.test"
        self.submit(to, "dane fail")
        qid = self.deferred(to, "DANE: mx.dane-fail.test: TLSA lookup for a DNSSEC-signed host failed")
        self.not_delivered(to)
        self.a.cli("queue", "delete", qid)
        self.submit("u@dane-fail-insecure.test", "dane fail insecure")
        self.delivered("u@dane-fail-insecure.test", "dane fail insecure")

    def test_dane_precedes_mta_sts(self):
        """both.test: an enforce policy listing mx.both.test, whose
        certificate is not valid for that name, and a matching secure TLSA
        record: DANE decides (RFC 8461 2), the message goes."""
        self.submit("u@both.test", "both")
        self.delivered("u@both.test", "both")
        self.assertRegex(self.a.log_text(), r"queue tls domain=both.test peer=mx.both.test\S* auth=dane")

    # ---- outbound_tls = may ----
    def test_starttls_failure_falls_back_to_plain_text(self):
        """A server whose STARTTLS handshake fails gets the message in
        plain text on a second connection (no policy applies to it)."""
        before = self.broken.sessions
        self.submit("x@broken.test", "fallback")
        self.assertTrue(wait_for(lambda: any(b"fallback" in d for d in self.broken.messages), timeout=15),
                        self.a.log_text()[-3000:])
        self.assertEqual(self.broken.sessions - before, 2)
        self.assertGreaterEqual(self.broken.starttls, 1)
        self.assertIn("queue tls-fallback domain=broken.test", self.a.log_text())


if __name__ == "__main__":
    unittest.main()
