"""The cluster end to end (issue 16, "What it must show"): three postoffice
nodes on one private PostgreSQL (pgserver.py) behind a private haproxy
sending PROXY v2 (cluster.py), clients both through haproxy and straight
to each node.

- SMTP load through haproxy is spread over the three nodes, and every
  message is read back over IMAP and POP3 from every node and through
  haproxy, byte for byte;
- IDLE on node A sees within 1 s a delivery through node C, and a flag
  set and an expunge through node B;
- kill -9 of a node (supervisor, workers, queue runner) during submission
  load with local and remote recipients: every 250 is kept (readable from
  the survivors, or delivered to the MX), the dead node's leased queue
  entries are delivered by another node once the lease runs out, and no
  recipient gets a message twice beyond the deliveries in flight at the
  kill;
- PostgreSQL stopped and started under SMTP and IMAP load: temporary
  errors only (4xx, NO [UNAVAILABLE], BYE), never a 250 for a message
  that is then missing, and service back by itself within a bound;
- kill -9 of a node's supervisor alone ends its children (no orphaned
  worker keeps the node's ports, no orphaned runner its leases)."""
import os
import re
import shutil
import signal
import smtplib
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, alive, server_pids  # noqa: E402
from harness import Conversation, Server, body_of, tls_context, wait_for  # noqa: E402
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


class SupervisorDeathTest(unittest.TestCase):
    """A node whose supervisor dies (kill -9 of it alone) must not leave
    its children running: orphaned workers would keep the node's ports
    and its queue runner its leases, with nobody to stop them."""

    def test_children_end_with_the_supervisor(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.start()
        # the children run as the unprivileged user (tests run as root)
        self.assertIn("children run as user=", srv.log_text())
        self.assertTrue(wait_for(lambda: len(server_pids(srv)) >= 3, timeout=10), srv.log_text())
        children = server_pids(srv)[1:]  # a worker and the queue runner
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(timeout=10)
        srv.proc = None
        gone = wait_for(lambda: not any(alive(p) for p in children), timeout=10)
        left = [p for p in children if alive(p)]
        for pid in left:  # ours: not left behind whatever the outcome
            os.kill(pid, signal.SIGKILL)
        self.assertTrue(gone, "children %s still running 10 s after their supervisor died\n%s"
                        % (left, srv.log_text()[-2000:]))


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
        self.assertRegex(line, r"^\* 1 FETCH \(.*FLAGS \([^)]*\\Flagged")
        # (c) an expunge through node B: node A hears of it while it idles
        # (RFC 3501 7.4.1: allowed during IDLE), the message numbers shift
        t0 = time.monotonic()
        m.store("1", "+FLAGS.SILENT", r"(\Deleted)")
        self.assertEqual(m.expunge()[0], "OK")
        seen = [conv.line(timeout=5) for _ in range(2)]
        expunged = time.monotonic() - t0
        m.logout()
        self.assertIn("* 1 EXPUNGE", seen)
        conv.send("DONE\r\n")
        self.assertTrue(conv.line().startswith("i OK"))
        # what is left on node A is the second message, now number 1
        conv.send("f FETCH 1:* (UID)\r\n")
        lines = [conv.line(timeout=5) for _ in range(2)]
        self.assertRegex(lines[0], r"^\* 1 FETCH \(UID 2\)$")
        self.assertTrue(lines[1].startswith("f OK"), lines)
        self.assertLess(expunged, 1.0, "IDLE on node A saw node B's expunge after %.2fs" % expunged)
        conv.sock.close()
        self.assertLess(delivered, 1.0, "IDLE on node A saw node C's delivery after %.2fs" % delivered)
        self.assertLess(flagged, 1.0, "IDLE on node A saw node B's flag after %.2fs" % flagged)
        print("\n  IDLE on node0: node2's delivery after %.3fs, node1's flag after %.3fs"
              % (delivered, flagged), file=sys.stderr)

    # ---- 3: kill -9 of a node under load ----
    @staticmethod
    def submit_attempt(c, rcpts, msg):
        """One submission through haproxy: "250", "temporary" (4xx or a
        broken connection) or the text of a permanent refusal."""
        try:
            with c.smtp("submission") as s:
                s.starttls(context=tls_context())
                s.login(USERS[0], PASSWORD)
                s.sendmail(USERS[0], rcpts, msg)
            return "250"
        except smtplib.SMTPResponseException as e:
            return "temporary" if e.smtp_code < 500 else "%d %s" % (e.smtp_code, e.smtp_error)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            return "temporary" if max(codes) < 500 else repr(e.recipients)
        except (smtplib.SMTPServerDisconnected, OSError):
            return "temporary"

    def test_kill_node_during_load(self):
        # node0's deliveries stay in the MX's DATA until node0 is gone
        sink = HoldingSink(Cluster.hostname(0), 60)
        self.addCleanup(sink.close)
        c = self.cluster("[queue]\nlease_time = %ds\nretry = 1s\n[routes]\nremote.test = 127.0.0.1:%d\n"
                         % (LEASE, sink.port))
        n, threads = 60, 3
        lock = threading.Lock()
        accepted = {}  # mid -> (rcpts, msg): got a 250
        attempts = {}  # mid -> (rcpts, msg): every attempt
        refused = []  # (mid, a permanent refusal)
        killed = threading.Event()

        def sender(items):
            for i in items:
                for attempt in range(4):  # a new Message-ID per attempt
                    mid = "kill%d.%d@cluster.test" % (i, attempt)
                    remote = "r%d.%d@remote.test" % (i, attempt)
                    local = USERS[1 + i % 2]
                    rcpts = [[remote], [local], [remote, local]][i % 3]
                    msg = make_message(mid, rcpts)
                    with lock:
                        attempts[mid] = (rcpts, msg)
                    result = self.submit_attempt(c, rcpts, msg)
                    if result == "250":
                        with lock:
                            accepted[mid] = (rcpts, msg)
                        break
                    if result != "temporary":
                        refused.append((mid, result))
                if not killed.is_set():
                    time.sleep(0.05)  # the load lasts until after the kill
        workers = [threading.Thread(target=sender, args=(range(k, n, threads),)) for k in range(threads)]
        for t in workers:
            t.start()
        # node0 has accepted some, holds leases and is mid-delivery
        ready = wait_for(lambda: sink.busy(Cluster.hostname(0)) >= 1 and len(accepted) >= 15, timeout=60)
        self.assertTrue(ready, "node0 never delivered under load\n" + c.logs())
        in_flight = sink.busy(Cluster.hostname(0))
        accepted_before = len(accepted)
        t_kill = time.time()
        pids = c.kill(0)
        killed.set()
        # the leases node0 held when it died (no renewal after the kill)
        held = dict(line.split("|") for line in self.pg.psql(
            self.conninfo, "SELECT id, lease_expiry FROM queue_messages WHERE lease_holder LIKE '%s/%%' "
            "AND lease_expiry > extract(epoch FROM now())" % Cluster.hostname(0)).split())
        for t in workers:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in workers), "senders still running after 120 s")
        self.assertEqual(refused, [], "permanent refusals under load")
        self.assertGreater(len(held), 0, "node0 held no lease at the kill")
        self.assertGreater(len(accepted), accepted_before, "no load after the kill")
        self.assertEqual(set(m.split(".")[0] for m in accepted), set("kill%d" % i for i in range(n)),
                         "a message never got its 250 in 4 attempts\n" + c.logs())

        # remote: every 250'd recipient reaches the MX
        want = set((mid, r) for mid, (rcpts, _) in accepted.items() for r in rcpts if r.endswith("@remote.test"))

        def delivered():
            with sink.lock:
                return set((mid, r) for _, rs, mid in sink.accepted for r in rs)
        ok = wait_for(lambda: want <= delivered(), timeout=LEASE + 30, interval=0.2)
        took = time.time() - t_kill
        self.assertTrue(ok, "%d of %d remote recipients delivered\n%s" % (
            len(want & delivered()), len(want), c.logs()))
        queued = lambda: self.pg.psql(self.conninfo, "SELECT count(*) FROM queue_messages").strip()  # noqa: E731
        self.assertTrue(wait_for(lambda: queued() == "0", timeout=15), c.logs())
        time.sleep(1.5)  # a duplicate would come by now (three claim polls)
        with sink.lock:
            deliveries = [(mid, r, ehlo, at) for (ehlo, rs, mid), at in zip(sink.accepted, sink.times) for r in rs]
            aborted = list(sink.aborted)
        # no recipient twice, but for deliveries in flight at the kill (RFC
        # 5321 6.1: at least once); the MX accepted none of node0's after
        # it died, so none should be
        pairs = [(mid, r) for mid, r, _, _ in deliveries]
        duplicates = len(pairs) - len(set(pairs))
        self.assertLessEqual(duplicates, in_flight, deliveries)
        self.assertFalse(any(e == Cluster.hostname(0) for _, _, e, _ in deliveries), "node0 delivered while held")
        self.assertGreaterEqual(len(aborted), 1)
        # node0's leased messages: claimed by node1 or node2, delivered only
        # after node0's lease ran out
        claims = {}
        sends = {}
        for i in (1, 2):
            log = c.nodes[i].log_text()
            for qid in re.findall(r"queue claimed id=(\w+)", log):
                claims.setdefault(qid, set()).add(i)
            for qid, to in re.findall(r"queue sent id=(\w+) to=<([^>]+)>", log):
                sends.setdefault(qid, set()).add(to)
        for qid, expiry in held.items():
            self.assertIn(qid, claims, "node0's %s never claimed by another node" % qid)
            self.assertIn(qid, sends, "node0's %s never sent by another node" % qid)
            for to in sends[qid]:
                times = [at for _, r, ehlo, at in deliveries if r == to]
                self.assertTrue(times, to)
                # lease_expiry is whole seconds of the same clock
                self.assertGreaterEqual(min(times), int(expiry) - 1.0, "%s delivered before node0's lease "
                                        "ran out" % to)
                self.assertLess(min(times), int(expiry) + 10, "%s taken over late" % to)
        # local: every 250'd message readable, once, byte for byte, from both survivors
        for node in (1, 2):
            for user in USERS[1:]:
                got = self.read_imap(c, node, user)
                for mid, (rcpts, msg) in accepted.items():
                    if user in rcpts:
                        self.assertIn(mid, got, "node%d: %s lost for %s" % (node, mid, user))
                        self.assertEqual(body_of(got[mid][0]), msg)
                # anything else there is an attempt whose 250 the kill cut off
                for mid in set(got) - set(accepted):
                    self.assertIn(mid, attempts)
                    self.assertEqual(body_of(got[mid][0]), attempts[mid][1])
        print("\n  kill -9 of node0 (%d processes) with %d leases held, %d deliveries in flight, %d of %d "
              "submissions accepted before: all %d accepted kept, remote ones delivered within %.1fs "
              "(lease %ds), duplicates %d, attempts %d" % (len(pids), len(held), in_flight, accepted_before, n,
                                                           len(accepted), took, LEASE, duplicates, len(attempts)),
              file=sys.stderr)

    # ---- 4: PostgreSQL restarted under load ----
    def test_postgresql_restart_during_load(self):
        c = self.cluster()
        user = USERS[0]
        lock = threading.Lock()
        stop = threading.Event()
        accepted = {}  # mid -> (message, time of the 250, time the transaction began)
        smtp_temporary = []  # (time, reply)
        smtp_wrong = []  # 5xx: a permanent refusal for a temporary cause
        imap_ok = {"new": [], "held": []}  # times of complete IMAP rounds
        imap_temporary = []  # (time, reply)
        imap_wrong = []
        held_sessions = []  # times the held IMAP session was (re)opened

        def smtp_result(kind, what):
            (smtp_wrong if kind == "wrong" else smtp_temporary).append((time.time(), what))

        def send(s, mid):
            """One transaction on session s; False when the session is gone."""
            msg = make_message(mid, [user])
            try:
                began = time.time()
                s.sendmail("sender@sender.test", [user], msg)
                with lock:
                    accepted[mid] = (msg, time.time(), began)
            except smtplib.SMTPResponseException as e:
                smtp_result("wrong" if e.smtp_code >= 500 else "temp", "%d %s" % (e.smtp_code, e.smtp_error))
                if e.smtp_code == 421:
                    return False
                s.rset()
            except smtplib.SMTPRecipientsRefused as e:
                for code, text in e.recipients.values():
                    smtp_result("wrong" if code >= 500 else "temp", "%d %s" % (code, text))
                s.rset()
            return True

        def smtp_load(k, held):
            """Messages through haproxy: a connection each, or (held) one
            session for as long as the server keeps it."""
            s = None
            for j in range(100000):
                if stop.is_set():
                    break
                try:
                    if s is None:
                        s = c.smtp()
                    if not send(s, "pg%d.%d@cluster.test" % (k, j)) or not held:
                        s.quit()
                        s = None
                except (smtplib.SMTPServerDisconnected, OSError) as e:
                    smtp_result("temp", repr(e))
                    s = None
                time.sleep(0.02)
            if s is not None:
                s.close()

        def imap_round(conv, first):
            """(LOGIN and SELECT when first,) NOOP and FETCH of the newest
            message: None when all were OK, else the first other reply."""
            commands = [("n", "NOOP"), ("f", "FETCH * (UID BODY.PEEK[])")]
            if first:
                greeting = conv.line()
                if not greeting.startswith("* OK"):
                    return greeting
                commands = [("l", 'LOGIN %s "%s"' % (user, PASSWORD)), ("s", "SELECT INBOX")] + commands
            for tag, command in commands:
                reply = tagged(conv, tag, command)
                if not reply.startswith(tag + " OK"):
                    return reply
            return None

        def imap_load(held):
            """IMAP sessions through haproxy: one per round, or (held) one
            selected session for as long as the server keeps it."""
            conv = None
            selected = False
            while not stop.is_set():
                first = conv is None or not selected
                try:
                    if conv is None:
                        conv = Conversation(c.connect_lb("imap"))
                        if held:
                            held_sessions.append(time.time())
                    elif first:  # LOGIN or SELECT failed on this session: again on a new one
                        conv.sock.close()
                        conv = Conversation(c.connect_lb("imap"))
                    reply = imap_round(conv, first)
                except (OSError, EOFError) as e:
                    reply = "* BYE (connection closed: %r)" % e
                now = time.time()
                selected = reply is None or (not first and not reply.startswith("* BYE"))
                if reply is None:
                    imap_ok["held" if held and not first else "new"].append(now)
                elif re.match(r"(\w+ NO \[UNAVAILABLE\]|\* BYE)", reply):
                    imap_temporary.append((now, reply))
                else:
                    imap_wrong.append((now, reply))
                if not held or reply is not None and reply.startswith("* BYE"):
                    try:
                        conv.send("o LOGOUT\r\n")
                    except OSError:
                        pass
                    conv.sock.close()
                    conv = None
                time.sleep(0.02)
            if conv is not None:
                conv.sock.close()

        # one message first, so that FETCH * has something to read
        with c.smtp() as s:
            s.sendmail("sender@sender.test", [user], make_message("pg-first@cluster.test", [user]))
        workers = [threading.Thread(target=smtp_load, args=(k, k == 0)) for k in range(2)]
        workers += [threading.Thread(target=imap_load, args=(held,)) for held in (False, True)]
        for t in workers:
            t.start()
        try:
            self.assertTrue(wait_for(lambda: len(accepted) >= 10 and len(imap_ok["held"]) >= 4, timeout=30),
                            "no load before the restart: %d 250s, IMAP %r, errors %r %r %r %r\n%s"
                            % (len(accepted), imap_ok, smtp_temporary[:3], smtp_wrong[:3],
                               imap_temporary[:3], imap_wrong[:3], c.logs()))
            t_stop = time.time()
            self.pg.stop("fast")
            t_stopped = time.time()
            time.sleep(2)  # PostgreSQL away for 2 s under load
            self.pg.start()
            t_start = time.time()

            def since(times):
                return any(at > t_start for at in list(times))
            back = wait_for(lambda: since(at for _, at, _ in list(accepted.values())) and since(imap_ok["new"]) and
                            since(imap_ok["held"]), timeout=RESUME_BOUND, interval=0.1)
            resumed = time.time() - t_start
            time.sleep(1)  # some load after the recovery
        finally:
            stop.set()
            for t in workers:
                t.join(60)
        self.assertFalse(any(t.is_alive() for t in workers), "load still running after 60 s")
        self.assertTrue(back, "service did not resume within %ds of PostgreSQL's start\n%s"
                        % (RESUME_BOUND, c.logs()))
        self.assertEqual(smtp_wrong, [], "a permanent SMTP refusal while PostgreSQL restarted")
        self.assertEqual(imap_wrong, [], "an IMAP failure other than NO [UNAVAILABLE] or BYE")
        # the outage was seen, as temporary errors only
        during = lambda events: [e for e in events if t_stop <= e[0] <= t_start + resumed]  # noqa: E731
        self.assertTrue(during(smtp_temporary), "SMTP saw no temporary error while PostgreSQL was down")
        self.assertTrue(during(imap_temporary), "IMAP saw no temporary error while PostgreSQL was down")
        # every 250'd message is there, byte for byte, whichever node took it
        for node in (None, 0, 1, 2):
            got = self.read_imap(c, node, user)
            for mid, (msg, _, _) in accepted.items():
                self.assertIn(mid, got, "%s got a 250 and is missing" % mid)
                self.assertEqual(body_of(got[mid][0]), msg)
        # no 250 for a transaction begun once PostgreSQL was down (its
        # commit cannot have happened)
        down = [(mid, began - t_stopped, at - t_stopped) for mid, (_, at, began) in accepted.items()
                if t_stopped < began and at < t_start]
        self.assertEqual(down, [], "250 while PostgreSQL was stopped")
        print("\n  PostgreSQL down %.1fs under load: %d SMTP 250s, %d SMTP and %d IMAP temporary errors, "
              "service back %.1fs after PostgreSQL, held IMAP session opened %d times; SMTP %s; IMAP %s"
              % (t_start - t_stop, len(accepted), len(smtp_temporary), len(imap_temporary), resumed,
                 len(held_sessions),
                 sorted(set(w[:50] for _, w in smtp_temporary)),
                 sorted(set(r[:50] for _, r in imap_temporary))), file=sys.stderr)
