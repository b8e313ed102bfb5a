"""The PostgreSQL user database ([storage] backend = postgresql) end to
end, on a private PostgreSQL (pgserver.py): `postoffice db status|init|
migrate` on an empty database, `postoffice user add` storing the user in
PostgreSQL, SMTP submission and IMAP logins against it, and PostgreSQL
going away and coming back under a running server (temporary errors, then
service again without a restart)."""
import imaplib
import os
import smtplib
import time
import unittest

from harness import Server, wait_for
from pgserver import PgTestCase, available

PASSWORD = "pg secret"


@unittest.skipIf(available(), "no private PostgreSQL: %s" % available())
class PgUserDbTest(PgTestCase):
    def server(self):
        srv = Server(extra_config="[storage]\nbackend = postgresql\n[postgresql]\nconninfo = %s\n" % self.conninfo)
        self.addCleanup(srv.cleanup)
        return srv

    def psql(self, sql):
        return self.pg.psql(self.conninfo, sql)

    def test_db_commands(self):
        srv = self.server()
        r = srv.cli("db", "status")
        out = r.stdout.decode()
        self.assertRegex(out, r"^schema version 0, latest \d+: migrations pending\n")
        self.assertIn("pending 1: user database", out)
        r = srv.cli("db", "init")
        self.assertIn("migration", r.stdout.decode())
        out = srv.cli("db", "status").stdout.decode()
        self.assertRegex(out, r"^schema version (\d+), latest \1: current\n$")
        latest = int(out.split()[2].rstrip(","))
        # migrate on a current database changes nothing and succeeds
        before = self.psql("SELECT version, applied FROM schema_version ORDER BY version")
        r = srv.cli("db", "migrate")
        self.assertIn("(0 migrations applied)", r.stdout.decode())
        self.assertEqual(self.psql("SELECT version, applied FROM schema_version ORDER BY version"), before)
        self.assertEqual(len(before.splitlines()), latest)
        # init refuses a database that has a schema
        r = srv.cli("db", "init", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already has schema version", r.stderr.decode())
        # --conninfo wins over the file
        r = srv.cli("db", "status", "--conninfo", self.pg.conninfo("no_such_db"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no_such_db", r.stderr.decode())

    def test_user_add_stores_in_postgresql(self):
        srv = self.server()
        srv.cli("db", "init")
        srv.add_domain("example.org")
        srv.add_user("Alice@Example.org", PASSWORD)
        rows = self.psql("SELECT address, local, domain, substr(password, 1, 3) FROM users").splitlines()
        self.assertEqual(rows, ["alice@example.org|alice|example.org|$y$"])
        self.assertEqual(self.psql("SELECT name FROM domains").split(), ["example.org"])
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "users.db")))
        out = srv.cli("user", "list").stdout.decode()
        self.assertIn("alice@example.org", out)

    # ---- logins ----
    def smtp_login(self, srv, password):
        """None on success, else (code, text) of the AUTH failure."""
        with srv.smtp("submission") as s:
            s.ehlo("client.test")
            try:
                s.login("alice@example.org", password)
                return None
            except smtplib.SMTPAuthenticationError as e:
                return e.smtp_code, e.smtp_error.decode()

    def imap_login(self, srv, password):
        """None on success, else the NO text."""
        m = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=10)
        try:
            m.login("alice@example.org", password)
            m.logout()
            return None
        except imaplib.IMAP4.error as e:
            m.shutdown()
            return str(e)

    def test_logins_and_outage(self):
        srv = self.server()
        srv.cli("db", "init")
        srv.add_domain("example.org")
        srv.add_user("alice@example.org", PASSWORD)
        srv.start()
        self.assertIsNone(self.smtp_login(srv, PASSWORD))
        code, text = self.smtp_login(srv, "wrong")
        self.assertEqual(code, 535)
        self.assertIsNone(self.imap_login(srv, PASSWORD))
        self.assertIn("AUTHENTICATIONFAILED", self.imap_login(srv, "wrong"))

        # PostgreSQL stopped under the running server: a temporary failure,
        # never "invalid credentials".
        self.pg.stop()
        t0 = time.monotonic()
        code, text = self.smtp_login(srv, PASSWORD)
        self.assertEqual(code, 454, text)
        self.assertIn("4.7.0", text)
        self.assertIn("[UNAVAILABLE] User database unavailable", self.imap_login(srv, PASSWORD))
        # a refused connection is answered at once, not after a timeout
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn("reason=userdb-unavailable", srv.log_text())
        # our failure is not the client's: more tries than max_auth_failures
        # (3) on one connection keep the connection
        m = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=10)
        try:
            for _ in range(5):
                with self.assertRaisesRegex(imaplib.IMAP4.error, "User database unavailable"):
                    m.login("alice@example.org", PASSWORD)
            self.assertEqual(m.noop()[0], "OK")
        finally:
            m.shutdown()

        # Back again: the same server logs in without a restart (the
        # connection is made again within PG_RECONNECT_INTERVAL_MS).
        self.pg.start()
        self.assertTrue(wait_for(lambda: self.smtp_login(srv, PASSWORD) is None, timeout=10, interval=0.2),
                        "SMTP AUTH did not recover")
        self.assertTrue(wait_for(lambda: self.imap_login(srv, PASSWORD) is None, timeout=10, interval=0.2),
                        "IMAP LOGIN did not recover")
        self.assertEqual(self.smtp_login(srv, "wrong")[0], 535)


if __name__ == "__main__":
    unittest.main()
