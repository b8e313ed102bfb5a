"""The cluster end to end (issue 16, "What it must show"): three postoffice
nodes on one private PostgreSQL (pgserver.py) behind a private haproxy
sending PROXY v2 (cluster.py), clients both through haproxy and straight
to each node.

- SMTP load through haproxy is spread over the three nodes, and every
  message is read back over IMAP and POP3 from every node and through
  haproxy, byte for byte;
- IDLE on node A sees within 1 s a delivery through node C and a flag set
  through node B;
- kill -9 of a node (supervisor, workers, queue runner) during submission
  load with local and remote recipients: every 250 is kept (readable from
  the survivors, or delivered to the MX), the dead node's leased queue
  entries are delivered by another node once the lease runs out, and no
  recipient gets a message twice beyond the deliveries in flight at the
  kill;
- PostgreSQL stopped and started under SMTP and IMAP load: temporary
  errors only (4xx, NO [UNAVAILABLE], BYE), never a 250 for a message
  that is then missing, and service back by itself within a bound."""
import os
import re
import shutil
import smtplib
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster  # noqa: E402
from harness import Conversation, body_of, tls_context, wait_for  # noqa: E402
from pgserver import PgTestCase, available  # noqa: E402
from test_pg_queue import SinkServer  # noqa: E402


PASSWORD = "cluster pw"
USERS = ["alice@example.org", "bob@example.org", "carol@example.org"]
LEASE = 3  # [queue] lease_time in the kill test, seconds
RESUME_BOUND = 15  # seconds for service to come back after PostgreSQL does


def make_message(mid, rcpts, big=False):
    """A message whose body has what SMTP transparency and line handling
    must keep: dot lines, empty lines, trailing blanks; big: ~64 KB."""
    head = ("From: <sender@sender.test>\r\nTo: %s\r\nSubject: cluster %s\r\nMessage-ID: <%s>\r\n\r\n"
            % (", ".join("<%s>" % r for r in rcpts), mid, mid))
    body = ("message %s\r\n.one dot\r\n..two dots\r\n.\r\n\r\ntrailing blanks  \t\r\n" % mid)
    if big:
        body += "".join("%05d %s\r\n" % (k, "abcdefghij" * 7) for k in range(840))
    return (head + body + "end\r\n").encode()


def message_id(data):
    m = re.search(rb"(?mi)^Message-ID:\s*<([^>]+)>", data)
    return m.group(1).decode() if m else None


def text_of(msg):
    return msg.split(b"\r\n\r\n", 1)[1]


def imap_fetch_all(m, item):
    """{sequence number: literal} of FETCH 1:* (item)."""
    typ, data = m.fetch("1:*", "(%s)" % item)
    if typ != "OK":
        raise AssertionError("FETCH %s: %s %r" % (item, typ, data))
    out = {}
    for part in data:
        if isinstance(part, tuple):
            out[int(part[0].split()[0])] = part[1]
    return out


def tagged(conv, tag, command, timeout=20):
    """Sends an IMAP command over a Conversation; returns its tagged reply
    line (or the BYE that ended the session)."""
    conv.send("%s %s\r\n" % (tag, command))
    for _ in range(100000):
        line = conv.line(timeout)
        if line.startswith(tag + " ") or line.startswith("* BYE"):
            return line
    raise AssertionError("no reply to " + command)


class HoldingSink(SinkServer):
    """The MX holds the DATA of one node's deliveries (until the node is
    gone) and answers every other node at once."""

    def __init__(self, hold_ehlo, seconds):
        self.hold_ehlo = hold_ehlo
        self.hold_seconds = seconds
        super().__init__()

    def delay_for(self, ehlo):
        return self.hold_seconds if ehlo == self.hold_ehlo else 0.0


@unittest.skipIf(available(), "no private PostgreSQL: %s" % available())
@unittest.skipUnless(shutil.which("haproxy"), "haproxy is not installed (scripts/setup installs it)")
class ClusterTest(PgTestCase):
    def cluster(self, extra=""):
        c = Cluster(self.pg, self.conninfo, nodes=3, extra=extra)
        self.addCleanup(c.close)
        c.start()
        c.add_domain("example.org")
        for u in USERS:
            c.add_user(u, PASSWORD)
        return c

    def read_imap(self, c, node, user):
        """{Message-ID: (BODY[], BODY[TEXT])} of user's INBOX over IMAP
        (node None: through haproxy)."""
        m = c.imap(node)
        try:
            m.login(user, PASSWORD)
            typ, data = m.select("INBOX", readonly=True)
            self.assertEqual(typ, "OK", data)
            if data[0] == b"0":
                return {}
            whole = imap_fetch_all(m, "BODY.PEEK[]")
            text = imap_fetch_all(m, "BODY.PEEK[TEXT]")
            m.logout()
        except Exception:
            m.shutdown()
            raise
        self.assertEqual(sorted(whole), sorted(text))
        out = {}
        for seq, data in whole.items():
            mid = message_id(data)
            self.assertNotIn(mid, out, "%s twice in %s's INBOX" % (mid, user))
            out[mid] = (data, text[seq])
        return out

    def read_pop3(self, c, node, user):
        """{Message-ID: message} of user's maildrop over POP3."""
        p = c.pop3(node)
        try:
            p.user(user)
            p.pass_(PASSWORD)
            count = p.stat()[0]
            out = {}
            for k in range(1, count + 1):
                resp, lines, _ = p.retr(k)
                data = b"\r\n".join(lines) + b"\r\n"
                mid = message_id(data)
                self.assertNotIn(mid, out, "%s twice in %s's maildrop" % (mid, user))
                out[mid] = data
            p.quit()
        except Exception:
            p.close()
            raise
        return out

    # ---- 1: load spread, read from anywhere ----
    def test_load_spread_and_read_back_everywhere(self):
        c = self.cluster()
        n, threads = 150, 5
        plan = {}
        for i in range(n):
            rcpts = [USERS[i % 3]] + ([USERS[(i + 1) % 3]] if i % 10 == 0 else [])
            mid = "load%d@cluster.test" % i
            plan[mid] = (rcpts, make_message(mid, rcpts, big=(i % 25 == 0)))
        replies = {}
        errors = []
        mids = sorted(plan)

        def sender(part):
            for mid in part:
                rcpts, msg = plan[mid]
                try:
                    # one connection per message: haproxy spreads connections
                    with c.smtp() as s:
                        s.sendmail("sender@sender.test", rcpts, msg)
                    replies[mid] = 250
                except (smtplib.SMTPException, OSError) as e:
                    errors.append((mid, repr(e)))
        t0 = time.time()
        workers = [threading.Thread(target=sender, args=(mids[k::threads],)) for k in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(120)
        sent = time.time() - t0
        self.assertFalse(any(t.is_alive() for t in workers), "senders still running after 120 s")
        self.assertEqual(errors, [], c.logs())
        self.assertEqual(len(replies), n)
        # each node accepted a share: haproxy's round robin over connections
        per_node = [len(c.accepted(i)) for i in range(3)]
        self.assertEqual(sum(per_node), n, per_node)
        for count in per_node:
            self.assertGreaterEqual(count, n // 6, per_node)
        t1 = time.time()
        endpoints = [None, 0, 1, 2]
        for user in USERS:
            expected = {mid: msg for mid, (rcpts, msg) in plan.items() if user in rcpts}
            reference = None
            for node in endpoints:
                where = "%s over IMAP %s" % (user, "haproxy" if node is None else "node%d" % node)
                got = self.read_imap(c, node, user)
                self.assertEqual(sorted(got), sorted(expected), where)
                for mid, (whole, text) in got.items():
                    self.assertEqual(body_of(whole), expected[mid], "%s: %s" % (where, mid))
                    self.assertEqual(text, text_of(expected[mid]), "%s: %s" % (where, mid))
                # the stored bytes, trace fields included, are the same on every node
                stored = {mid: whole for mid, (whole, _) in got.items()}
                if reference is None:
                    reference = stored
                else:
                    self.assertTrue(stored == reference, where)
                where = "%s over POP3 %s" % (user, "haproxy" if node is None else "node%d" % node)
                got = self.read_pop3(c, node, user)
                self.assertEqual(sorted(got), sorted(expected), where)
                for mid, data in got.items():
                    self.assertTrue(data == reference[mid], "%s: %s" % (where, mid))
        print("\n  %d messages through haproxy in %.1fs, per node %s; read back over IMAP and POP3 "
              "from 4 endpoints in %.1fs" % (n, sent, per_node, time.time() - t1), file=sys.stderr)

    # ---- 2: IDLE across nodes ----
    def test_idle_on_a_sees_delivery_on_c_and_flag_on_b(self):
        c = self.cluster()
        user = USERS[0]
        with c.smtp(node=2) as s:
            s.sendmail("sender@sender.test", [user], make_message("first@cluster.test", [user]))
        conv = Conversation(c.connect("imap", 0))
        self.assertTrue(conv.line().startswith("* OK"))
        self.assertTrue(tagged(conv, "l", 'LOGIN %s "%s"' % (user, PASSWORD)).startswith("l OK"))
        self.assertTrue(tagged(conv, "s", "SELECT INBOX").startswith("s OK"))
        conv.send("i IDLE\r\n")
        self.assertTrue(conv.line().startswith("+"))
        # (a) a delivery through node C's SMTP
        t0 = time.monotonic()
        with c.smtp(node=2) as s:
            s.sendmail("sender@sender.test", [user], make_message("second@cluster.test", [user]))
        self.assertEqual(conv.line(timeout=5), "* 2 EXISTS")
        delivered = time.monotonic() - t0
        # (b) a flag set through node B's IMAP
        m = c.imap(node=1)
        m.login(user, PASSWORD)
        m.select("INBOX")
        t0 = time.monotonic()
        typ, _ = m.store("1", "+FLAGS", r"(\Flagged)")
        self.assertEqual(typ, "OK")
        line = conv.line(timeout=5)
        flagged = time.monotonic() - t0
        m.logout()
        self.assertRegex(line, r"^\* 1 FETCH \(.*FLAGS \([^)]*\\Flagged")
        conv.send("DONE\r\n")
        self.assertTrue(conv.line().startswith("i OK"))
        conv.sock.close()
        self.assertLess(delivered, 1.0, "IDLE on node A saw node C's delivery after %.2fs" % delivered)
        self.assertLess(flagged, 1.0, "IDLE on node A saw node B's flag after %.2fs" % flagged)
        print("\n  IDLE on node0: node2's delivery after %.3fs, node1's flag after %.3fs"
              % (delivered, flagged), file=sys.stderr)
