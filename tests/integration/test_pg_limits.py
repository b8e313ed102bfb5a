"""Limits across nodes ([storage] backend = postgresql, issue 16): three
postoffice servers on one private PostgreSQL (pgserver.py) play three
nodes behind a balancer.  Failed logins spread over the nodes lock the
client address, or the account, at the same count as on one node (the
counters of auth/auth_penalty_pg.h), the owner's known address stays
trusted on every node, the per-user IMAP cap ([imap]
max_connections_per_user) holds over all nodes together
(session/session_registry.h), and the sessions of a node killed with
SIGKILL stop counting within [postgresql] session_ttl.

Client sockets bind other loopback addresses (127.0.0.2 ...) to play other
networks: the whole of 127/8 is loopback on Linux."""
import os
import sys
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, wait_for  # noqa: E402
from pgserver import PgTestCase, available  # noqa: E402
from test_auth_penalty import FAILED, LOGINS, OK, REFUSED, connect  # noqa: E402

USER = "alice@example.org"
PASSWORD = "right-one"
TTL = 3  # seconds, [postgresql] session_ttl in these tests


@unittest.skipIf(available(), "no private PostgreSQL: %s" % available())
class PgLimitsTest(PgTestCase):
    def nodes(self, count, extra=""):
        """count servers on this test's database, the schema made and
        alice added through the first one, all started."""
        conf = ("[storage]\nbackend = postgresql\n[postgresql]\nconninfo = %s\nsession_ttl = %ds\n%s"
                % (self.conninfo, TTL, extra))
        servers = []
        for i in range(count):
            srv = Server(extra_config=conf, hostname="node%d.test" % i)
            self.addCleanup(srv.cleanup)
            servers.append(srv)
        servers[0].cli("db", "init")
        servers[0].add_domain("example.org")
        servers[0].add_user(USER, PASSWORD)
        for srv in servers:
            srv.start()
        return servers

    def login(self, srv, proto, source, password=PASSWORD):
        return LOGINS[proto](srv, source, USER, password)

    def assert_reply(self, reply, expect, proto, what):
        self.assertTrue(reply.startswith(expect[proto]), "%s: %s: %r" % (what, proto, reply))

    def test_ip_lockout_counts_failures_of_all_nodes(self):
        a, b, c = self.nodes(3, "[limits]\nauth_penalty_ip_failures = 6\nauth_penalty_lockout = 60s\n")
        # Five wrong passwords from 127.0.0.1 spread over the three nodes
        # and protocols: each is checked and fails ...
        spread = [(a, "imap"), (b, "pop3"), (c, "smtp"), (a, "smtp"), (b, "imap")]
        for srv, proto in spread:
            self.assert_reply(self.login(srv, proto, "127.0.0.1", "wrong"), FAILED, proto, "failure")
        # ... and so is the sixth, which locks the address: the same count
        # as on one node.
        self.assert_reply(self.login(c, "pop3", "127.0.0.1", "wrong"), FAILED, "pop3", "6th failure")
        self.assertIn("auth-penalty lockout scope=ip ip=127.0.0.1 user=alice@example.org failures=6",
                      c.log_text())
        # Node A saw two of the six: it refuses the right password unchecked,
        # on every protocol, and so does every other node.
        for srv in (a, b, c):
            for proto in ("imap", "pop3", "smtp"):
                self.assert_reply(self.login(srv, proto, "127.0.0.1"), REFUSED, proto, "locked address")
        self.assertRegex(a.log_text(), r"imap auth-refused session=\S+ ip=127\.0\.0\.1 "
                         r"user=alice@example\.org reason=ip-locked")
        # Another address is not locked out.
        for proto in ("imap", "pop3", "smtp"):
            self.assert_reply(self.login(a, proto, "127.0.0.2"), OK, proto, "other address")
        counters = self.pg.psql(self.conninfo, "SELECT name, failures, locked_until_ms > po_now_ms() "
                                "FROM auth_failures WHERE scope = 0 ORDER BY name")
        self.assertIn("127.0.0.1|5|t", counters.splitlines())

    def test_account_lockout_spares_addresses_known_on_any_node(self):
        a, b, c = self.nodes(3, "[limits]\nauth_penalty_account_failures = 6\nauth_penalty_lockout = 60s\n")
        # Alice logs in from her usual network through node B.
        self.assert_reply(self.login(b, "imap", "127.0.0.2"), OK, "imap", "usual address")
        # Six failures on alice from three addresses over three nodes, two
        # each: far below any address's limit.
        for i, srv in enumerate((a, b, c, a, b, c)):
            proto = ("imap", "pop3", "smtp")[i % 3]
            source = "127.0.0.%d" % (3 + i % 3)
            self.assert_reply(self.login(srv, proto, source, "wrong"), FAILED, proto, "failure %d" % i)
        # A new address is refused for alice on every node ...
        for srv in (a, b, c):
            self.assert_reply(self.login(srv, "imap", "127.0.0.9"), REFUSED, "imap", "new address")
        self.assertRegex(a.log_text(), r"imap auth-refused session=\S+ ip=127\.0\.0\.9 "
                         r"user=alice@example\.org reason=account-locked")
        # ... but her usual address gets in on nodes that never saw it.
        for srv in (a, c):
            for proto in ("imap", "pop3", "smtp"):
                self.assert_reply(self.login(srv, proto, "127.0.0.2"), OK, proto, "usual address")

    # ---- the IMAP cap ----
    def imap_session(self, srv):
        """A logged-in IMAP connection, or the tagged reply of a refused
        LOGIN (a string)."""
        c = connect(srv, "imap", "127.0.0.1")
        c.line()
        c.send('a LOGIN "%s" "%s"\r\n' % (USER, PASSWORD))
        for _ in range(20):
            line = c.line()
            if line.startswith("a "):
                break
        if line.startswith("a OK"):
            self.addCleanup(c.sock.close)
            return c
        c.sock.close()
        return line

    def assert_limit(self, reply):
        """reply (of imap_session) is the refusal for the cap."""
        self.assertIsInstance(reply, str, "admitted over the cap")
        self.assertTrue(reply.startswith("a NO [LIMIT]"), reply)

    def logout(self, conv):
        conv.send("z LOGOUT\r\n")
        for _ in range(5):
            if conv.line().startswith("z "):
                break
        conv.sock.close()

    def live_rows(self):
        return int(self.pg.psql(self.conninfo, "SELECT count(*) FROM live_sessions "
                                "WHERE expires > clock_timestamp()").strip())

    def test_imap_cap_holds_across_nodes(self):
        a, b, c = self.nodes(3, "[imap]\nmax_connections_per_user = 3\n")
        s1, s2, s3 = self.imap_session(a), self.imap_session(a), self.imap_session(b)
        for s in (s1, s2, s3):
            self.assertNotIsInstance(s, str, s)
        # Three sessions on A and B: none more on C, nor on A or B.
        for srv in (c, a, b):
            self.assert_limit(self.imap_session(srv))
        self.assertIn("reason=too-many-sessions", c.log_text())
        # One logs out on A: C gets the slot (the release is a job).
        self.logout(s1)
        self.assertTrue(wait_for(lambda: self.live_rows() == 2, timeout=5), "slot not released")
        s4 = self.imap_session(c)
        self.assertNotIsInstance(s4, str, s4)

        # Logins racing on all nodes at once get exactly the free room.
        self.logout(s2)
        self.logout(s4)
        self.assertTrue(wait_for(lambda: self.live_rows() == 1, timeout=5), "slots not released")
        with ThreadPoolExecutor(9) as ex:
            results = list(ex.map(lambda srv: self.imap_session(srv), [a, b, c] * 3))
        admitted = [r for r in results if not isinstance(r, str)]
        self.assertEqual(len(admitted), 2, results)
        for r in results:
            if isinstance(r, str):
                self.assert_limit(r)
        for r in admitted:
            self.logout(r)
        self.assertTrue(wait_for(lambda: self.live_rows() == 1, timeout=5), "slots not released")

    def test_killed_node_frees_its_slots_within_ttl(self):
        a, b, c = self.nodes(3, "[imap]\nmax_connections_per_user = 3\n")
        held = [self.imap_session(b), self.imap_session(b), self.imap_session(a)]
        for s in held:
            self.assertNotIsInstance(s, str, s)
        # Renewals keep live sessions counted past the ttl.
        time.sleep(TTL + 1)
        self.assert_limit(self.imap_session(c))
        b.kill()
        killed = time.monotonic()
        # Its two rows stay until their expiry (at most TTL after its last
        # renewal), then count no more.
        self.assert_limit(self.imap_session(c))
        admitted = None
        for _ in range(100):
            admitted = self.imap_session(c)
            if not isinstance(admitted, str):
                break
            time.sleep(0.1)
        freed = time.monotonic() - killed
        self.assertNotIsInstance(admitted, str, "the killed node's sessions still count")
        print("\n  slots of the killed node free after %.1f s (session_ttl %d s)" % (freed, TTL),
              file=sys.stderr)
        self.assertLessEqual(freed, TTL + 1.0)
        # Both of its slots came free: one went to C, one is left for A.
        self.assertNotIsInstance(self.imap_session(a), str)
        self.assert_limit(self.imap_session(c))


if __name__ == "__main__":
    unittest.main()
