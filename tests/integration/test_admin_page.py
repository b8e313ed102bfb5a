"""The status page and queue management on the admin listener (issue 15,
"A status page"): login required unless [admin] public_status, session
cookie flags (Secure only over HTTPS), CSRF tokens refused when missing or
belonging to another session, login failures and their rate limit (the
shared failed-login table), hold/release/delete through the page, hostile
header and address text escaped, and HTTPS with [admin] tls."""
import http.client
import json
import os
import unittest

from adminclient import ADMIN_CONFIG, AdminClient
from harness import DeadPort, Server, wait_for

HOSTILE_SUBJECT = "<script>alert(1)</script>"


def start(extra="", dead=None):
    routes = "[routes]\nc.test = 127.0.0.1:%d\n" % dead.port if dead else ""
    srv = Server(extra_config=ADMIN_CONFIG + routes + extra)
    srv.start()
    srv.add_domain("a.test")
    srv.add_user("alice@a.test", "alicepw")
    srv.cli("admin", "add", "boss", input=b"bosspw\n")
    return srv


def queue_ids(srv):
    return [m["id"] for m in json.loads(srv.cli("queue", "list", "--json").stdout)]


class PageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dead = DeadPort()
        cls.srv = start(dead=cls.dead)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        cls.dead.close()

    def client(self):
        return AdminClient(self.srv.port("admin"))

    def logged_in(self):
        c = self.client()
        c.login("boss", "bosspw")
        return c

    def queue_message(self, subject="held", to="carol@c.test"):
        before = set(queue_ids(self.srv))
        self.srv.submit("alice@a.test", "alicepw", "alice@a.test", [to],
                        ("From: <alice@a.test>\r\nTo: <carol@c.test>\r\nSubject: %s\r\n\r\nhi\r\n"
                         % subject).encode())
        new = wait_for(lambda: set(queue_ids(self.srv)) - before)
        self.assertEqual(len(new), 1)
        return new.pop()

    def hold_file(self, qid):
        return os.path.join(self.srv.data_dir, "queue", qid + ".hold")

    def test_login_required(self):
        c = self.client()
        for path in ("/", "/queue", "/queue/ABC123"):
            status, headers, _ = c.get(path)
            self.assertEqual(status, 303, path)
            self.assertEqual(headers["location"], "/login")
        status, _, _ = c.post("/queue/flush", {"csrf": "0" * 64})
        self.assertEqual(status, 403)
        # Prometheus scrapes without a login.
        self.assertEqual(c.get("/metrics")[0], 200)
        self.assertEqual(c.get("/nothing")[0], 404)

    def test_login_logout_and_cookie(self):
        c = self.client()
        status, headers, body = c.get("/login")
        self.assertEqual(status, 200)
        form_cookie = c.cookie
        cookie = c.set_cookies[-1]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertIn("Path=/", cookie)
        self.assertNotIn("Secure", cookie)  # plain HTTP: a Secure cookie would never come back
        for k in ("content-security-policy", "x-frame-options", "x-content-type-options"):
            self.assertIn(k, headers)
        self.assertIn("default-src 'none'", headers["content-security-policy"])  # no script at all
        # Wrong password, unknown admin, a mail user's credentials.
        for user, pw in (("boss", "wrong"), ("nobody", "bosspw"), ("alice@a.test", "alicepw")):
            status, _, body = c.post("/login", {"csrf": c.csrf, "user": user, "password": pw})
            self.assertEqual(status, 403, user)
            self.assertIn("Wrong name or password", body)
            self.assertEqual(c.get("/")[0], 303)
        status, headers, _ = c.post("/login", {"csrf": c.csrf, "user": "boss", "password": "bosspw"})
        self.assertEqual(status, 303)
        self.assertEqual(headers["location"], "/")
        self.assertNotEqual(c.cookie, form_cookie)  # a new session at login
        status, _, body = c.get("/")
        self.assertEqual(status, 200)
        for chart in ("chart-messages", "chart-queue", "chart-connections", "chart-tls"):
            self.assertIn('id="%s"' % chart, body)
        self.assertIn('http-equiv="refresh"', body)
        self.assertNotIn("<script", body)
        # The form's old session is gone.
        old = self.client()
        old.cookie = form_cookie
        self.assertEqual(old.get("/")[0], 303)
        log = self.srv.log_text()
        self.assertIn("admin login ip=127.0.0.1 user=boss result=fail", log)
        self.assertIn("admin login ip=127.0.0.1 user=boss result=ok", log)
        # Logout needs the token too, then the session is over.
        self.assertEqual(c.post("/logout", {})[0], 403)
        self.assertEqual(c.post("/logout", {"csrf": c.csrf})[0], 303)
        self.assertEqual(c.get("/")[0], 303)

    def test_login_needs_csrf(self):
        c = self.client()
        c.get("/login")
        self.assertEqual(c.post("/login", {"user": "boss", "password": "bosspw"})[0], 403)
        other = self.client()
        other.get("/login")
        self.assertEqual(c.post("/login", {"csrf": other.csrf, "user": "boss", "password": "bosspw"})[0], 403)
        # No cookie at all.
        self.assertEqual(c.post("/login", {"csrf": c.csrf, "user": "boss", "password": "bosspw"},
                                cookie=False)[0], 403)
        self.assertEqual(c.get("/")[0], 303)

    def deferred(self, qid):
        """Waits until the runner tried qid and wrote the result (its save
        follows the log line by an fsync or two)."""
        self.assertTrue(wait_for(lambda: "queue deferred id=%s " % qid in self.srv.log_text()))
        wait_for(lambda: False, timeout=0.5)

    def test_hold_release_delete_with_csrf(self):
        qid = self.queue_message()
        self.deferred(qid)
        c, other = self.logged_in(), self.logged_in()
        self.assertNotEqual(c.csrf, other.csrf)
        # Missing and foreign tokens are refused, and nothing happens.
        self.assertEqual(c.post("/queue/%s/hold" % qid, {})[0], 403)
        self.assertEqual(c.post("/queue/%s/hold" % qid, {"csrf": other.csrf})[0], 403)
        self.assertEqual(c.post("/queue/%s/hold" % qid, {"csrf": "x" * 64})[0], 403)
        self.assertFalse(os.path.exists(self.hold_file(qid)))
        self.assertIn("reason=csrf", self.srv.log_text())
        status, headers, _ = c.post("/queue/%s/hold" % qid, {"csrf": c.csrf})
        self.assertEqual(status, 303)
        self.assertEqual(headers["location"], "/queue/" + qid)
        self.assertTrue(os.path.exists(self.hold_file(qid)))
        status, _, body = c.get("/queue/" + qid)
        self.assertEqual(status, 200)
        self.assertRegex(body, r"<td>Held</td><td>yes</td>")
        self.assertIn(">Release</button>", body)
        self.assertIn("held", c.get("/queue")[2])
        # Flushes leave a held message alone; a held message has no
        # delivery in flight, so the delete cannot race with one.
        self.assertEqual(c.post("/queue/%s/flush" % qid, {"csrf": c.csrf})[0], 303)
        self.assertEqual(c.post("/queue/flush", {"csrf": c.csrf})[0], 303)
        status, headers, _ = c.post("/queue/%s/delete" % qid, {"csrf": c.csrf})
        self.assertEqual((status, headers["location"]), (303, "/queue"))
        self.assertTrue(wait_for(lambda: qid not in queue_ids(self.srv)))
        self.assertEqual(c.get("/queue/" + qid)[0], 404)
        self.assertEqual(c.post("/queue/%s/hold" % qid, {"csrf": c.csrf})[0], 404)
        self.assertEqual(c.post("/queue/%s/explode" % qid, {"csrf": c.csrf})[0], 404)
        # Release: a flush of the held message does nothing; released, it
        # is tried again at the next flush.
        qid2 = self.queue_message()
        self.deferred(qid2)
        retried = "id=%s to=<carol@c.test> attempts=2" % qid2
        self.assertEqual(c.post("/queue/%s/hold" % qid2, {"csrf": c.csrf})[0], 303)
        self.assertTrue(os.path.exists(self.hold_file(qid2)))
        self.assertEqual(c.post("/queue/%s/flush" % qid2, {"csrf": c.csrf})[0], 303)
        self.assertFalse(wait_for(lambda: retried in self.srv.log_text(), timeout=1))
        self.assertEqual(c.post("/queue/%s/release" % qid2, {"csrf": c.csrf})[0], 303)
        self.assertFalse(os.path.exists(self.hold_file(qid2)))
        self.assertEqual(c.post("/queue/%s/flush" % qid2, {"csrf": c.csrf})[0], 303)
        self.assertTrue(wait_for(lambda: retried in self.srv.log_text()))
        log = self.srv.log_text()
        for action, i in (("hold", qid), ("flush", qid), ("delete", qid), ("release", qid2)):
            self.assertIn("admin queue action=%s id=%s user=boss" % (action, i), log)
        self.assertIn("admin queue action=flush-all user=boss", log)

    def test_hostile_text_escaped(self):
        qid = self.queue_message(subject=HOSTILE_SUBJECT, to='"<img src=x onerror=alert(2)>"@c.test')
        self.deferred(qid)
        with self.srv.smtp() as s:
            s.ehlo("client.test")
            s.mail("x@ext.test")
            self.assertEqual(s.rcpt('"<b>evil</b>"@a.test')[0], 550)
        c = self.logged_in()
        pages = [c.get(p) for p in ("/queue/" + qid, "/queue", "/")]
        for status, _, body in pages:
            self.assertEqual(status, 200)
            self.assertNotIn("<script", body)
            self.assertNotIn("<img", body)
            self.assertNotIn("<b>evil", body)
        detail = pages[0][2]
        self.assertIn("Subject: &lt;script&gt;alert(1)&lt;/script&gt;", detail)
        self.assertIn("&quot;&lt;img src=x onerror=alert(2)&gt;&quot;@c.test", detail)
        self.assertIn("&lt;b&gt;evil&lt;/b&gt;", pages[2][2])  # the recent rejects
        c.post("/queue/%s/delete" % qid, {"csrf": c.csrf})

    def test_removed_admin_loses_session(self):
        self.srv.cli("admin", "add", "temp", input=b"temppw\n")
        c = self.client()
        c.login("temp", "temppw")
        self.assertEqual(c.get("/")[0], 200)
        self.srv.cli("admin", "del", "temp")
        self.assertEqual(c.get("/")[0], 303)
        self.assertNotIn("temp", self.srv.cli("admin", "list").stdout.decode().split())


class RateLimitTest(unittest.TestCase):
    def test_failures_lock_out(self):
        """Login failures go through the failed-login table: the third locks
        the address out, and then even the right password is refused."""
        srv = start("[limits]\nauth_penalty_ip_failures = 3\n")
        try:
            c = AdminClient(srv.port("admin"))
            c.get("/login")
            for _ in range(3):
                self.assertEqual(c.post("/login", {"csrf": c.csrf, "user": "boss", "password": "no"})[0], 403)
            status, _, body = c.post("/login", {"csrf": c.csrf, "user": "boss", "password": "bosspw"})
            self.assertEqual(status, 429)
            self.assertIn("Too many failed logins", body)
            self.assertEqual(c.get("/")[0], 303)
            log = srv.log_text()
            self.assertIn("admin login-refused ip=127.0.0.1 user=boss reason=ip-locked", log)
            self.assertIn("auth-penalty lockout scope=ip ip=127.0.0.1 user=admin:boss", log)
        finally:
            srv.cleanup()


class TlsPublicTest(unittest.TestCase):
    def test_https_public_status(self):
        """[admin] tls: HTTPS with the server's certificate and a Secure
        cookie; public_status: the status page without login, the queue
        still behind it."""
        srv = start("[admin]\ntls = yes\npublic_status = yes\n")
        try:
            c = AdminClient(srv.port("admin"), tls=True)
            status, _, body = c.get("/")
            self.assertEqual(status, 200)
            self.assertIn('id="chart-messages"', body)
            self.assertNotIn('action="/queue/', body)
            self.assertEqual(c.get("/queue")[0], 303)
            self.assertEqual(c.post("/queue/flush", {"csrf": "0" * 64})[0], 403)
            status, headers, _ = c.get("/login")
            self.assertIn("Secure", c.set_cookies[-1])
            self.assertIn("strict-transport-security", headers)
            c.login("boss", "bosspw")
            self.assertEqual(c.get("/queue")[0], 200)
            # Plain HTTP on the HTTPS port gets no page.
            plain = AdminClient(srv.port("admin"), timeout=5)
            with self.assertRaises((http.client.HTTPException, OSError)):
                plain.get("/")
        finally:
            srv.cleanup()



class AdminFailureTest(unittest.TestCase):
    def test_mail_outlives_a_broken_admin(self):
        """An admin process that cannot start (HTTPS with a broken
        certificate) is given up after 5 quick deaths; mail goes on."""
        srv = Server(extra_config=ADMIN_CONFIG + "[admin]\ntls = yes\n"
                     "[tls]\ncert_file = bad-cert.pem\nkey_file = bad-key.pem\n")
        for name in ("bad-cert.pem", "bad-key.pem"):
            with open(os.path.join(srv.dir, name), "w") as f:
                f.write("not a certificate\n")
        try:
            srv.start()
            srv.add_domain("a.test")
            srv.add_user("alice@a.test", "alicepw")
            self.assertTrue(wait_for(lambda: "[admin] listen is not served until a reload" in srv.log_text(),
                                     timeout=30))
            self.assertIsNone(srv.proc.poll())
            with srv.smtp() as s:
                s.sendmail("x@ext.test", ["alice@a.test"], b"Subject: still here\r\n\r\nhi\r\n")
            self.assertEqual(len(srv.maildir_messages("alice@a.test")), 1)
            self.assertEqual(srv.log_text().count("admin tls unavailable"), 5)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
