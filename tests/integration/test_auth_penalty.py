"""Password guessing across connections and worker processes: the shared
penalty table (src/auth/auth_penalty.c) locks out a client IP after
[limits] auth_penalty_ip_failures failed logins, whatever protocol and
connection they came on, and an account after auth_penalty_account_failures
from all IPs together except for the IPs that logged in to it before.  A
locked-out login is refused without a password check (IMAP NO
[UNAVAILABLE], POP3 -ERR [SYS/TEMP], SMTP 454 4.7.0) and logged; lockouts
end after auth_penalty_lockout.

Client sockets bind other loopback addresses (127.0.0.2 ...) to play other
networks: the whole of 127/8 is loopback on Linux."""
import base64
import os
import re
import socket
import sys
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conversation, Server  # noqa: E402

USER = "alice@example.org"
OTHER = "bob@example.org"
PASSWORD = "right-one"
LOCKOUT = 2.0   # seconds, [limits] auth_penalty_lockout in these tests
CHECK_LOG = re.compile(r"(imap|pop3) auth-failed |smtp auth session=\S+ (ip=\S+ )?user=\S+ result=fail")


def connect(srv, service, source):
    sock = socket.create_connection(("127.0.0.1", srv.port(service)), timeout=10,
                                    source_address=(source, 0))
    return Conversation(sock)


def imap_login(srv, source, user, password):
    """The tagged reply to one LOGIN on a new connection."""
    c = connect(srv, "imap", source)
    try:
        c.line()
        c.send('a LOGIN "%s" "%s"\r\n' % (user, password))
        for _ in range(20):
            line = c.line()
            if line.startswith("a "):
                return line
        return line
    finally:
        c.sock.close()


def pop3_login(srv, source, user, password):
    """The reply to USER/PASS on a new connection."""
    c = connect(srv, "pop3", source)
    try:
        c.line()
        c.send("USER %s\r\n" % user)
        c.line()
        c.send("PASS %s\r\n" % password)
        reply = c.line()
        if reply.startswith("+OK"):
            c.send("QUIT\r\n")
            c.line()
        return reply
    finally:
        c.sock.close()


def smtp_login(srv, source, user, password):
    """The last line of the reply to AUTH PLAIN on submission."""
    c = connect(srv, "submission", source)
    try:
        c.reply()
        c.cmd("EHLO client.test")
        token = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        return c.cmd("AUTH PLAIN " + token)[1][-1]
    finally:
        c.sock.close()


LOGINS = {"imap": imap_login, "pop3": pop3_login, "smtp": smtp_login}
FAILED = {"imap": "a NO [AUTHENTICATIONFAILED]", "pop3": "-ERR [AUTH]", "smtp": "535 5.7.8"}
REFUSED = {"imap": "a NO [UNAVAILABLE]", "pop3": "-ERR [SYS/TEMP]", "smtp": "454 4.7.0"}
OK = {"imap": "a OK", "pop3": "+OK", "smtp": "235 2.7.0"}


class AuthPenaltyTest(unittest.TestCase):
    def start(self, extra=""):
        srv = Server(workers=2, extra_config="[limits]\nauth_penalty_lockout = %ds\n%s" % (LOCKOUT, extra))
        self.addCleanup(srv.cleanup)
        srv.start()
        srv.add_domain("example.org")
        srv.add_user(USER, PASSWORD)
        srv.add_user(OTHER, PASSWORD)
        return srv

    def login(self, srv, proto, source, user=USER, password=PASSWORD):
        return LOGINS[proto](srv, source, user, password)

    def assert_all(self, srv, expect, source, user=USER):
        for proto in ("imap", "pop3", "smtp"):
            reply = self.login(srv, proto, source, user)
            self.assertTrue(reply.startswith(expect[proto]), "%s from %s: %r" % (proto, source, reply))

    def fail_in_parallel(self, srv, sources, per_source):
        """per_source wrong passwords from each source, each on its own
        connection, all at once, spread over IMAP, POP3 and SMTP AUTH."""
        jobs = [(("imap", "pop3", "smtp")[i % 3], src) for src in sources for i in range(per_source)]
        with ThreadPoolExecutor(len(jobs)) as ex:
            replies = list(ex.map(lambda j: (j[0], self.login(srv, j[0], j[1], password="wrong")), jobs))
        for proto, reply in replies:
            self.assertTrue(reply.startswith(FAILED[proto]), "%s: %r" % (proto, reply))

    def test_ip_lockout_across_connections_and_protocols(self):
        srv = self.start()
        # Alice's usual network logs in first.
        self.assertTrue(self.login(srv, "imap", "127.0.0.2").startswith("a OK"))
        # Ten wrong passwords from 127.0.0.1 on ten parallel connections
        # (two workers): each one is checked and fails.
        self.fail_in_parallel(srv, ["127.0.0.1"], 10)
        locked_at = time.monotonic()
        self.assertIn("auth-penalty lockout scope=ip ip=127.0.0.1 user=alice@example.org failures=10",
                      srv.log_text())
        # The next attempt, even with the right password, is refused
        # unchecked, on every protocol, and the log says why.
        self.assert_all(srv, REFUSED, "127.0.0.1")
        log = srv.log_text()
        for proto in ("imap", "pop3", "smtp"):
            self.assertRegex(log, r"%s auth-refused session=\S+ ip=127\.0\.0\.1 user=alice@example\.org "
                             r"(method=user )?reason=ip-locked" % proto)
        self.assertEqual(len(CHECK_LOG.findall(log)), 10)
        # Alice's usual network is not locked out.
        self.assert_all(srv, OK, "127.0.0.2")
        self.assertLess(time.monotonic() - locked_at, LOCKOUT, "too slow to see the lockout")
        # After the lockout the right password works from 127.0.0.1 again.
        time.sleep(max(0, locked_at + LOCKOUT + 0.3 - time.monotonic()))
        self.assertTrue(self.login(srv, "imap", "127.0.0.1").startswith("a OK"))
        self.assert_all(srv, OK, "127.0.0.1")

    def test_account_lockout_spares_known_addresses(self):
        srv = self.start("auth_penalty_account_failures = 12\n")
        self.assertTrue(self.login(srv, "pop3", "127.0.0.2").startswith("+OK"))
        # Twelve failures on alice from two addresses, below their IP limit.
        self.fail_in_parallel(srv, ["127.0.0.3", "127.0.0.4"], 6)
        locked_at = time.monotonic()
        log = srv.log_text()
        self.assertIn("auth-penalty lockout scope=account", log)
        self.assertNotIn("scope=ip", log)
        # A new address is refused for alice, even with her password ...
        self.assert_all(srv, REFUSED, "127.0.0.5")
        self.assertRegex(srv.log_text(), r"imap auth-refused session=\S+ ip=127\.0\.0\.5 "
                         r"user=alice@example\.org reason=account-locked")
        # ... but not for bob, and alice's known address gets in.
        self.assert_all(srv, OK, "127.0.0.5", user=OTHER)
        self.assert_all(srv, OK, "127.0.0.2")
        self.assertLess(time.monotonic() - locked_at, LOCKOUT, "too slow to see the lockout")
        time.sleep(max(0, locked_at + LOCKOUT + 0.3 - time.monotonic()))
        self.assert_all(srv, OK, "127.0.0.5")

    def test_looping_connections_get_at_most_the_limit_of_checks(self):
        # The default policy: ten failures from one IP lock it for 5 minutes.
        srv = Server(workers=2)
        self.addCleanup(srv.cleanup)
        srv.start()
        srv.add_domain("example.org")
        srv.add_user(USER, PASSWORD)
        duration, threads = 3.0, 20
        deadline = time.monotonic() + duration
        replies = {"failed": 0, "refused": 0}
        lock = threading.Lock()

        def attacker(n):
            proto = ("imap", "pop3", "smtp")[n % 3]
            for i in range(100000):
                if time.monotonic() >= deadline:
                    return
                reply = self.login(srv, proto, "127.0.0.1", password="guess-%d-%d" % (n, i))
                with lock:
                    if reply.startswith(REFUSED[proto]):
                        replies["refused"] += 1
                    elif reply.startswith(FAILED[proto]):
                        replies["failed"] += 1

        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(attacker, range(threads)))
        checks = len(CHECK_LOG.findall(srv.log_text()))
        print("\n  %d connections for %.0f s: %d passwords checked, %d refused unchecked"
              % (threads, duration, checks, replies["refused"]), file=sys.stderr)
        # The first burst (no failure on record yet) is checked whole;
        # from the first failure on, checks in flight count: at most the
        # limit plus one burst of the connections.
        self.assertLessEqual(checks, 10 + threads)
        self.assertEqual(replies["failed"], checks)
        self.assertGreater(replies["refused"], 0)

    def test_front_end_burst_of_good_logins(self):
        # A webmail front end logs 30 users in at once from one address
        # (none of them from there before): none is refused.
        srv = self.start()
        users = ["fe%d@example.org" % i for i in range(30)]
        for u in users:
            srv.add_user(u, PASSWORD)
        with ThreadPoolExecutor(len(users)) as ex:
            replies = list(ex.map(lambda u: self.login(srv, "imap", "127.0.0.6", u), users))
        for reply in replies:
            self.assertTrue(reply.startswith(OK["imap"]), reply)
        self.assertNotIn("reason=ip-locked", srv.log_text())


if __name__ == "__main__":
    unittest.main()
