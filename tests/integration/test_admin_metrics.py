"""GET /metrics on the admin listener (issue 15, "Metrics"): the text is
valid Prometheus exposition format (a strict parser here, and Debian's
prometheus_client parser), and the counters move as they should after SMTP,
submission, POP3, IMAP and relay traffic: server A relays b.test to server
B over STARTTLS and c.test to a dead port (deferred, in the queue)."""
import imaplib
import poplib
import smtplib
import socket
import unittest

from adminclient import ADMIN_CONFIG, AdminClient, parse_prometheus, value
from harness import DeadPort, Server, tls_context, wait_for


def msg(subject, to):
    return ("From: <alice@a.test>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nbody\r\n" % (to, subject)).encode()


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Server(hostname="mx.b.test")
        cls.b.start()
        cls.b.add_domain("b.test")
        cls.b.add_user("bob@b.test", "bobpw")
        cls.dead = DeadPort()
        cls.a = Server(hostname="mx.a.test", extra_config=ADMIN_CONFIG + (
            "[routes]\nb.test = 127.0.0.1:%d\nc.test = 127.0.0.1:%d\n" % (cls.b.port("smtp"), cls.dead.port)))
        cls.a.start()
        cls.a.add_domain("a.test")
        cls.a.add_user("alice@a.test", "alicepw")
        cls.client = AdminClient(cls.a.port("admin"))

    @classmethod
    def tearDownClass(cls):
        cls.a.cleanup()
        cls.b.cleanup()
        cls.dead.close()

    def scrape(self):
        status, headers, body = self.client.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        families = parse_prometheus(body)
        # Debian's parser agrees on the families.
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            return families
        theirs = {f.name: f for f in text_string_to_metric_families(body)}
        for name, fam in families.items():
            base = name[:-len("_total")] if fam["type"] == "counter" else name
            self.assertIn(base, theirs, name)
            self.assertEqual(theirs[base].type, fam["type"], name)
        return families

    def traffic(self):
        a = self.a
        # SMTP: one local message, an unknown user, a relay attempt.
        with a.smtp() as s:
            s.ehlo("client.test")
            s.sendmail("x@ext.test", ["alice@a.test"], msg("local", "alice@a.test"))
            self.assertEqual(s.mail("x@ext.test")[0], 250)
            self.assertEqual(s.rcpt("nobody@a.test")[0], 550)
            self.assertEqual(s.rcpt("bob@b.test")[0], 554)
            s.rset()
        # Submission over STARTTLS: one message to b.test (relayed) and
        # c.test (deferred: nothing listens).
        a.submit("alice@a.test", "alicepw", "alice@a.test", ["bob@b.test", "carol@c.test"],
                 msg("out", "bob@b.test"))
        # A failed TLS handshake on the implicit-TLS port.
        with socket.create_connection(("127.0.0.1", a.port("submissions")), timeout=10) as raw:
            raw.sendall(b"EHLO not-tls\r\n" * 10)
            raw.settimeout(10)
            try:
                while raw.recv(4096):
                    pass
            except OSError:
                pass
        # POP3: one good login with commands, one bad password, an unknown command.
        p = a.pop3()
        p.user("alice@a.test")
        p.pass_("alicepw")
        p.stat()
        p.list()
        self.assertRaises(poplib.error_proto, p._shortcmd, "XYZZY")
        p.quit()
        p = a.pop3()
        p.user("alice@a.test")
        self.assertRaises(poplib.error_proto, p.pass_, "wrong")
        p.close()
        # IMAP.
        i = a.imap()
        i.login("alice@a.test", "alicepw")
        i.select("INBOX")
        i.fetch("1", "(FLAGS)")
        self.assertRaises(imaplib.IMAP4.error, i.xatom, "XYZZY")
        i.logout()

    def test_counters_move(self):
        before = self.scrape()
        self.traffic()
        after = wait_for(lambda: (lambda f: f if value(f, "postoffice_relayed_total") >= 1
                                  and value(f, "postoffice_deferred_total") >= 1
                                  and value(f, "postoffice_queue_messages") == 1
                                  and sum(value(f, "postoffice_sessions_open", service=s)
                                          for s in ("smtp", "submission", "pop3", "imap")) == 0
                                  else None)(self.scrape()), timeout=30, interval=0.3)
        self.assertIsNotNone(after, "relay results or closed sessions never showed")

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        for service, n in (("smtp", 1), ("submission", 1), ("submissions", 1), ("pop3", 2), ("imap", 1),
                           ("relay", 1)):
            self.assertEqual(delta("postoffice_connections_total", service=service), n, service)
        self.assertEqual(delta("postoffice_tls_handshakes_total", service="submission"), 1)
        self.assertEqual(delta("postoffice_tls_handshakes_total", service="relay"), 1)
        self.assertEqual(delta("postoffice_tls_handshake_failures_total", service="submissions"), 1)
        self.assertEqual(delta("postoffice_messages_received_total"), 2)
        self.assertEqual(delta("postoffice_received_recipients_total"), 3)
        self.assertGreater(delta("postoffice_received_bytes_total"), 100)
        self.assertEqual(delta("postoffice_delivered_local_total"), 1)
        self.assertEqual(delta("postoffice_relayed_total"), 1)
        self.assertEqual(delta("postoffice_deferred_total"), 1)
        self.assertEqual(delta("postoffice_bounced_total"), 0)
        self.assertEqual(delta("postoffice_rejected_total", reason="unknown_user"), 1)
        self.assertEqual(delta("postoffice_rejected_total", reason="relay_denied"), 1)
        self.assertEqual(delta("postoffice_auth_attempts_total", service="submission", result="success"), 1)
        self.assertEqual(delta("postoffice_auth_attempts_total", service="pop3", result="success"), 1)
        self.assertEqual(delta("postoffice_auth_attempts_total", service="pop3", result="failure"), 1)
        self.assertEqual(delta("postoffice_auth_attempts_total", service="imap", result="success"), 1)
        # The queue: the c.test message waits, its domain counted.
        self.assertEqual(value(after, "postoffice_queue_messages"), 1)
        self.assertEqual(value(after, "postoffice_queue_deferred_recipients", domain="c.test"), 1)
        self.assertGreaterEqual(value(after, "postoffice_queue_oldest_message_age_seconds"), 0)
        # Histograms: two acceptances, two relay attempts (b.test, c.test),
        # fsyncs for the commits.
        self.assertEqual(delta("postoffice_acceptance_duration_seconds_count"), 2)
        self.assertGreater(delta("postoffice_acceptance_duration_seconds_sum"), 0)
        self.assertEqual(delta("postoffice_relay_delivery_duration_seconds_count"), 2)
        self.assertGreaterEqual(delta("postoffice_fsync_duration_seconds_count"), 2)
        # Commands by name, unknown ones as other.
        for cmd, n in (("USER", 2), ("PASS", 2), ("STAT", 1), ("LIST", 1), ("other", 1)):
            self.assertEqual(delta("postoffice_pop3_commands_total", command=cmd), n, cmd)
        for cmd, n in (("LOGIN", 1), ("SELECT", 1), ("FETCH", 1), ("LOGOUT", 1), ("other", 1)):
            self.assertEqual(delta("postoffice_imap_commands_total", command=cmd), n, cmd)
        # Gauges of the job pools and the build.
        self.assertEqual(value(after, "postoffice_build_info", version=next(
            s[1]["version"] for s in after["postoffice_build_info"]["samples"])), 1)
        self.assertIn("postoffice_jobs_queued", after)

    def test_parser_is_strict(self):
        """The test's parser refuses what Prometheus would."""
        from adminclient import ParseError
        good = "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\"} 2\n"
        parse_prometheus(good)
        for bad in (good[:-1],                                     # no final line feed
                    good + "x_total{a=\"1\"} 3\n",                 # a series twice
                    good.replace("x_total{", "x{"),                # counter without _total
                    good.replace('"1"', '"\\q"'),                  # bad escape
                    good + "# TYPE x_total counter\n",             # TYPE twice
                    good + "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                           "h_sum 1\nh_count 1\n",                 # not cumulative
                    good + "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",  # no +Inf
                    good + "\n"):                                  # an empty line
            with self.assertRaises(ParseError, msg=bad):
                parse_prometheus(bad)


class MetricsOffTest(unittest.TestCase):
    def test_off_unless_configured(self):
        """Without [admin] listen nothing listens and nothing is logged."""
        with Server() as srv:
            self.assertNotIn("admin", srv.ports)
            self.assertNotIn("admin start", srv.log_text())


if __name__ == "__main__":
    unittest.main()
