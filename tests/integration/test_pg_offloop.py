"""No PostgreSQL round trip on a worker's event loop ([storage] backend =
postgresql, issue 16): the recipient lookups of RCPT (userdb_resolve() and
the quota check), the user lookup of a login (SMTP AUTH, IMAP LOGIN) and
the sender check of MAIL on submission run on job threads, so a slow or
unreachable database holds up only the sessions that wait for it.

One worker (Server(workers=1)) reaches PostgreSQL through a TCP proxy in
this test (DbProxy) that can add latency per direction or black-hole
(accept, then never forward).  While one session's RCPT, another's AUTH
and an IMAP LOGIN wait on the slow database, a fourth session of the same
worker answers NOOP and EHLO within BOUND_MS each; with the database black-
holed, the waiting sessions get temporary errors (451, 454, NO
[UNAVAILABLE]) within FAIL_BOUND_S and the others stay responsive.

Pipelining (RFC 2920) holds while RCPTs wait on jobs: a transaction of 50
RCPTs sent in one write is answered in order, in PG mode and in local mode."""
import base64
import os
import select
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conversation, Server  # noqa: E402
from pgserver import PgTestCase, available  # noqa: E402

USER = "alice@example.org"
OTHER = "bob@example.org"
PASSWORD = "right-one"
DELAY_S = 0.4       # latency the proxy adds per direction
SLOW_S = 3.0        # how long the database stays slow
BOUND_MS = 50.0     # a probe's answer while others wait on the database
MAX_PROBES = 300    # per phase
CONNECT_TIMEOUT = 2  # seconds, libpq's connect_timeout in the conninfo
FAIL_BOUND_S = 12.0  # the temporary error of a session waiting on a dead database
RCPTS = 50


class DbProxy:
    """A TCP proxy to PostgreSQL: forwards each direction after `delay`
    seconds; blackhole() drops the connections it has and accepts new ones
    without ever forwarding a byte; restore() forwards again at once."""

    def __init__(self, port):
        self.target = ("127.0.0.1", port)
        self.delay = 0.0
        self.black = False
        self.lock = threading.Lock()
        self.conns = []  # (client socket, upstream socket or None)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.black:
                with self.lock:
                    self.conns.append((client, None))
                continue  # never read, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        """Copies src to dst, each chunk delay seconds after it came (in
        order: a chunk waits for the ones before it)."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                due = time.monotonic() + self.delay
                while time.monotonic() < due and not self.black:
                    time.sleep(min(0.01, max(0.0, due - time.monotonic())))
                if self.black:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def blackhole(self):
        self.black = True
        with self.lock:
            conns, self.conns = self.conns, []
        for client, upstream in conns:
            for s in (client, upstream):
                if s is not None:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()

    def restore(self):
        with self.lock:
            conns, self.conns = self.conns, []
        self.black = False
        self.delay = 0.0
        for client, _ in conns:  # the black-holed ones
            client.close()

    def close(self):
        self.stopped = True
        self.listener.close()
        self.blackhole()


def smtp_session(srv, service="smtp"):
    c = Conversation(srv.connect(service, timeout=30))
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.test")[0] == 250
    return c


def arrived(conv, wait):
    """True when a whole line is buffered or arrives within wait seconds."""
    if b"\n" in conv.buf:
        return True
    r, _, _ = select.select([conv.sock], [], [], wait)
    if not r:
        return False
    chunk = conv.sock.recv(65536)
    if not chunk:
        raise EOFError("connection closed")
    conv.buf += chunk
    return b"\n" in conv.buf


class Waiting:
    """The sessions that wait on the database: an SMTP RCPT, a submission
    AUTH and an IMAP LOGIN, each sent and not yet answered."""

    def __init__(self, srv):
        self.rcpt = smtp_session(srv)
        assert self.rcpt.cmd("MAIL FROM:<carol@remote.test>")[0] == 250
        self.auth = smtp_session(srv, "submission")
        self.imap = Conversation(srv.connect("imap", timeout=30))
        assert self.imap.line().startswith("* OK")

    def send(self):
        self.sent = time.monotonic()
        self.rcpt.send("RCPT TO:<%s>\r\n" % USER)
        token = base64.b64encode(("\0%s\0%s" % (OTHER, PASSWORD)).encode()).decode()
        self.auth.send("AUTH PLAIN %s\r\n" % token)
        self.imap.send('a LOGIN "%s" "%s"\r\n' % (USER, PASSWORD))

    def pending(self):
        """The sessions whose answer has not come yet."""
        return [c for c in (self.rcpt, self.auth, self.imap) if not arrived(c, 0)]

    def replies(self, timeout):
        """(RCPT reply code, AUTH reply line, IMAP tagged reply), each
        within timeout seconds of send(); with the seconds each took."""
        out = []
        for c, read in ((self.rcpt, lambda c: c.reply()[1][-1]), (self.auth, lambda c: c.reply()[1][-1]),
                        (self.imap, lambda c: next(line for line in iter(c.line, None)
                                                   if line.startswith("a ")))):
            left = max(0.1, self.sent + timeout - time.monotonic())
            c.sock.settimeout(left)
            out.append((read(c), time.monotonic() - self.sent))
        return out

    def close(self):
        for c in (self.rcpt, self.auth, self.imap):
            c.sock.close()


def probe(testcase, p, until_s, stop=None):
    """NOOP and EHLO on p, an SMTP session of the same worker opened
    before the others began to wait, until until_s (monotonic) or stop()
    says so, at most MAX_PROBES; each answer within BOUND_MS.  Returns the
    number of probes and the worst time in ms."""
    worst = 0.0
    probes = 0
    try:
        while time.monotonic() < until_s and probes < MAX_PROBES and not (stop and stop()):
            cmd = "NOOP" if probes % 2 == 0 else "EHLO probe.test"
            t0 = time.monotonic()
            code, _ = p.cmd(cmd)
            ms = (time.monotonic() - t0) * 1000
            testcase.assertEqual(code, 250, cmd)
            worst = max(worst, ms)
            probes += 1
            time.sleep(0.02)
    finally:
        p.sock.close()
    testcase.assertLess(worst, BOUND_MS, "a session of the same worker waited %.0f ms" % worst)
    return probes, worst


def pipelined(testcase, srv):
    """MAIL, 50 RCPTs (every tenth unknown: fewer than [limits] max_errors),
    DATA in one write: the replies come in order."""
    c = smtp_session(srv)
    try:
        lines = ["MAIL FROM:<carol@remote.test>"]
        expect = [250]
        for i in range(RCPTS):
            known = i % 10 != 9
            lines.append("RCPT TO:<%s>" % (USER if i % 4 == 0 else OTHER) if known
                         else "RCPT TO:<nobody%d@example.org>" % i)
            expect.append(250 if known else 550)
        lines.append("DATA")
        expect.append(354)
        c.send("".join(line + "\r\n" for line in lines))
        got = [c.reply(timeout=30)[0] for _ in expect]
        testcase.assertEqual(got, expect)
        code, text = c.cmd("Subject: pipelined\r\n\r\nhello\r\n.")
        testcase.assertEqual(code, 250, text)
        c.cmd("QUIT")
    finally:
        c.sock.close()


@unittest.skipIf(available(), "no private PostgreSQL: %s" % available())
class PgOffLoopTest(PgTestCase):
    def start(self):
        self.proxy = DbProxy(self.pg.port)
        self.addCleanup(self.proxy.close)
        conninfo = "host=127.0.0.1 port=%d user=postoffice dbname=%s connect_timeout=%d" % (
            self.proxy.port, self.conninfo.rsplit("dbname=", 1)[1], CONNECT_TIMEOUT)
        srv = Server(workers=1, extra_config="[storage]\nbackend = postgresql\n[postgresql]\nconninfo = %s\n"
                     % conninfo)
        self.addCleanup(srv.cleanup)
        srv.cli("db", "init")
        srv.add_domain("example.org")
        srv.add_user(USER, PASSWORD, quota=10 ** 8)  # a quota: RCPT reads the usage too
        srv.add_user(OTHER, PASSWORD)
        srv.start()
        return srv

    def test_slow_database_holds_only_its_sessions(self):
        srv = self.start()
        w = Waiting(srv)
        self.addCleanup(w.close)
        p = smtp_session(srv)
        self.proxy.delay = DELAY_S
        w.send()
        probes, worst = probe(self, p, time.monotonic() + SLOW_S, stop=lambda: not w.pending())
        # The slow path was taken: nobody was answered before the database
        # could have answered once.
        self.assertGreaterEqual(probes, 10)
        self.proxy.delay = 0.0
        (rcpt, t_rcpt), (auth, t_auth), (login, t_login) = w.replies(30)
        for t in (t_rcpt, t_auth, t_login):
            self.assertGreaterEqual(t, 2 * DELAY_S)
        self.assertTrue(rcpt.startswith("250 "), rcpt)
        self.assertTrue(auth.startswith("235 "), auth)
        self.assertTrue(login.startswith("a OK"), login)

    def test_dead_database_fails_its_sessions_only(self):
        srv = self.start()
        pipelined(self, srv)  # the connections are made and warm
        w = Waiting(srv)
        self.addCleanup(w.close)
        p = smtp_session(srv)
        self.proxy.blackhole()
        w.send()
        probes, _ = probe(self, p, time.monotonic() + FAIL_BOUND_S, stop=lambda: not w.pending())
        # libpq's connect_timeout passed before anyone was answered
        self.assertGreaterEqual(probes, 10)
        (rcpt, t_rcpt), (auth, t_auth), (login, t_login) = w.replies(FAIL_BOUND_S)
        self.assertTrue(rcpt.startswith("451 "), rcpt)
        self.assertTrue(auth.startswith("454 4.7.0"), auth)
        self.assertTrue(login.startswith("a NO [UNAVAILABLE]"), login)
        # The database back: service resumes by itself.
        self.proxy.restore()
        deadline = time.monotonic() + 15
        c = smtp_session(srv)
        try:
            c.cmd("MAIL FROM:<carol@remote.test>")
            while True:
                code, text = c.cmd("RCPT TO:<%s>" % USER)
                if code == 250 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            self.assertEqual(code, 250, text)
        finally:
            c.sock.close()

    def test_pipelined_rcpts_answered_in_order(self):
        pipelined(self, self.start())


class LocalPipelineTest(unittest.TestCase):
    def test_pipelined_rcpts_answered_in_order(self):
        with Server(workers=1) as srv:
            srv.add_domain("example.org")
            srv.add_user(USER, PASSWORD, quota=10 ** 8)
            srv.add_user(OTHER, PASSWORD)
            pipelined(self, srv)


if __name__ == "__main__":
    unittest.main()
