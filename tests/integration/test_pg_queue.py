"""The outgoing queue on PostgreSQL ([storage] backend = postgresql, the
queue backend "postgresql"): postoffice nodes on one private PostgreSQL
(pgserver.py), each with a data directory of its own, and a fake MX in
this process (SinkServer) that remote.test is routed to.

- two nodes, 60 messages submitted over both: every recipient reaches the
  sink exactly once, whichever node delivered it, and the queue is empty;
- kill -9 of a node while it holds leases and is mid-delivery (the sink
  waits before its 250 to DATA): another node delivers its messages once
  the leases run out ([queue] lease_time);
- a 5xx from the MX: the bounce goes through the PostgreSQL queue and
  reaches the sender's mailbox."""
import re
import select
import signal
import smtplib
import socket
import socketserver
import threading
import time
import os
import unittest

from harness import Server, tls_context, wait_for
from pgserver import PgTestCase, available

LEASE = 3  # [queue] lease_time, seconds


class SinkServer(socketserver.ThreadingTCPServer):
    """A fake MX.  Records every transaction it accepted as (ehlo name,
    recipients, Message-ID).  With data_delay it waits that long before
    its reply to DATA and accepts the message only if the client is still
    connected then (a client killed meanwhile never saw the 250: its
    message must come again from another node).  Recipients whose local
    part starts with "reject" get 550 at RCPT."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, data_delay=0.0):
        self.data_delay = data_delay
        self.lock = threading.Lock()
        self.accepted = []   # (ehlo, [rcpt], message-id)
        self.times = []      # time.time() of each accepted transaction
        self.aborted = []    # (ehlo, message-id): client gone before the 250
        self.in_data = {}    # ehlo -> transactions waiting in the delay now
        super().__init__(("127.0.0.1", 0), SinkHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self):
        self.shutdown()
        self.server_close()

    @property
    def port(self):
        return self.server_address[1]

    def ids(self):
        with self.lock:
            return [mid for _, _, mid in self.accepted]

    def busy(self, ehlo):
        with self.lock:
            return self.in_data.get(ehlo, 0)

    def delay_for(self, ehlo):
        """Seconds the reply to DATA waits for a client that said ehlo
        (a subclass may hold one node's deliveries)."""
        return self.data_delay


def peer_gone(sock):
    """True when the client closed or reset its side (it died)."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        return bool(r) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class SinkHandler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write((text + "\r\n").encode())

    def handle(self):
        srv = self.server
        ehlo = "?"
        self.reply("220 sink.test ESMTP")
        rcpts = []
        while True:
            try:
                line = self.rfile.readline()
            except OSError:
                return
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                ehlo = cmd[5:].strip()
                self.reply("250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME" if verb == "EHLO" else "250 sink")
            elif verb == "MAIL":
                rcpts = []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = re.search(r"<([^>]*)>", cmd).group(1)
                if addr.startswith("reject"):
                    self.reply("550 5.1.1 <%s>: no such user" % addr)
                else:
                    rcpts.append(addr)
                    self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if not rcpts:
                    self.reply("554 5.5.1 No valid recipients")
                    continue
                self.reply("354 go ahead")
                data = b""
                while True:
                    l = self.rfile.readline()
                    if not l or l == b".\r\n":
                        break
                    data += l[1:] if l.startswith(b"..") else l
                m = re.search(rb"(?mi)^Message-ID:\s*<([^>]+)>", data)
                mid = m.group(1).decode() if m else "?"
                delay = srv.delay_for(ehlo)
                if delay:
                    with srv.lock:
                        srv.in_data[ehlo] = srv.in_data.get(ehlo, 0) + 1
                    # the whole delay, or until the client is gone
                    deadline = time.time() + delay
                    while time.time() < deadline and not peer_gone(self.connection):
                        time.sleep(min(0.05, max(0.0, deadline - time.time())))
                    with srv.lock:
                        srv.in_data[ehlo] -= 1
                    if peer_gone(self.connection):
                        with srv.lock:
                            srv.aborted.append((ehlo, mid))
                        return
                with srv.lock:
                    srv.accepted.append((ehlo, list(rcpts), mid))
                    srv.times.append(time.time())
                self.reply("250 2.0.0 Ok queued")
            elif verb == "RSET":
                rcpts = []
                self.reply("250 Ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 5.5.2 unknown")


def message(i, to, frm="alice@a.test"):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: pg queue %d\r\nMessage-ID: <m%d@a.test>\r\n\r\nbody %d\r\n"
            % (frm, to, i, i, i)).encode()


@unittest.skipIf(available(), "no private PostgreSQL: %s" % available())
class PgQueueTest(PgTestCase):
    def node(self, name, sink, start=True, extra=""):
        srv = Server(hostname=name, extra_config=(
            "[storage]\nbackend = postgresql\n[postgresql]\nconninfo = %s\n"
            "[queue]\nlease_time = %ds\nretry = 1s\n[routes]\nremote.test = 127.0.0.1:%d\n%s"
            % (self.conninfo, LEASE, sink.port, extra)))
        self.addCleanup(srv.cleanup)
        if start:
            srv.start()
        return srv

    def sink(self, data_delay=0.0):
        s = SinkServer(data_delay)
        self.addCleanup(s.close)
        return s

    def inbox(self, srv):
        """alice's INBOX over IMAP (the store is in the database too)."""
        imap = srv.imap(tls=True)
        try:
            imap.login("alice@a.test", "alicepw")
            typ, count = imap.select("INBOX", readonly=True)
            if int(count[0]) == 0:
                return []
            typ, data = imap.fetch("1:*", "(BODY.PEEK[])")
            return [d[1] for d in data if isinstance(d, tuple)] if typ == "OK" else []
        finally:
            imap.logout()

    def setup_users(self, srv):
        srv.add_domain("a.test")
        srv.add_user("alice@a.test", "alicepw")

    def submit_many(self, srv, items):
        """Submits [(i, to)] over one authenticated submission session."""
        with srv.smtp("submission") as s:
            s.starttls(context=tls_context())
            s.login("alice@a.test", "alicepw")
            for i, to in items:
                s.sendmail("alice@a.test", [to], message(i, to))

    def queue_count(self):
        return int(self.pg.psql(self.conninfo, "SELECT count(*) FROM queue_messages").strip())

    def logs(self, *nodes):
        return "\n".join("---- %s\n%s" % (n.config_path, n.log_text()[-3000:]) for n in nodes)

    def test_two_nodes_deliver_each_recipient_once(self):
        sink = self.sink()
        a = self.node("node-a.test", sink)
        b = self.node("node-b.test", sink)
        self.setup_users(a)
        n = 60
        items = [(i, "user%d@remote.test" % i) for i in range(n)]
        # spread over both nodes, submitted at once
        threads = [threading.Thread(target=self.submit_many, args=(srv, items[k::2]))
                   for k, srv in enumerate((a, b))]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        ok = wait_for(lambda: len(set(sink.ids())) >= n, timeout=30)
        elapsed = time.time() - started
        self.assertTrue(ok, "%d of %d delivered\n%s" % (len(set(sink.ids())), n, self.logs(a, b)))
        self.assertTrue(wait_for(lambda: self.queue_count() == 0, timeout=10), self.logs(a, b))
        time.sleep(1.5)  # a duplicate would come by now (three claim polls)
        ids = sink.ids()
        self.assertEqual(sorted(ids), sorted("m%d@a.test" % i for i in range(n)))
        with sink.lock:
            rcpts = sorted(r for _, rs, _ in sink.accepted for r in rs)
            by_node = {}
            for ehlo, _, _ in sink.accepted:
                by_node[ehlo] = by_node.get(ehlo, 0) + 1
        self.assertEqual(rcpts, sorted(to for _, to in items))
        self.assertEqual(self.pg.psql(self.conninfo, "SELECT count(*) FROM queue_recipients").strip(), "0")
        print("\n  %d messages over 2 nodes: delivered in %.1fs, by node %s" % (n, elapsed, by_node))

    def kill_node(self, srv):
        """kill -9 of every process of the node (supervisor, workers and
        queue runner) at once."""
        runners = srv.child_pids("queue")
        self.assertEqual(len(runners), 1, srv.log_text()[-2000:])
        # the supervisor first: it would restart a worker killed before it
        pids = [srv.proc.pid] + srv.child_pids("worker") + runners
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        srv.kill()
        for pid in pids:
            wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                     open("/proc/%d/stat" % pid).read().split()[2] == "Z", timeout=5)

    def test_killed_node_leases_taken_over(self):
        sink = self.sink(data_delay=2.0)
        a = self.node("node-a.test", sink)
        self.setup_users(a)
        n = 8
        items = [(i, "user%d@remote.test" % i) for i in range(n)]
        self.submit_many(a, items)
        # A claims all of them and is mid-delivery (the sink holds its DATA)
        self.assertTrue(wait_for(lambda: sink.busy("node-a.test") >= 1, timeout=15), a.log_text()[-3000:])
        held = self.pg.psql(self.conninfo, "SELECT id FROM queue_messages WHERE lease_holder LIKE "
                            "'node-a.test/%' AND lease_expiry > extract(epoch FROM now())").split()
        in_flight = sink.busy("node-a.test")
        done_before = len(sink.ids())
        self.assertGreater(len(held), 0)
        killed = time.time()
        self.kill_node(a)
        b = self.node("node-b.test", sink)
        ok = wait_for(lambda: len(set(sink.ids())) >= n, timeout=LEASE + 4 * 2.0 + 15)
        took = time.time() - killed
        self.assertTrue(ok, "%d of %d delivered\n%s" % (len(set(sink.ids())), n, self.logs(a, b)))
        self.assertTrue(wait_for(lambda: self.queue_count() == 0, timeout=10), self.logs(b))
        time.sleep(1.5)
        ids = sink.ids()
        self.assertEqual(set(ids), set("m%d@a.test" % i for i in range(n)))
        # At-least-once (RFC 5321 6.1): a message the sink accepted whose
        # completion the killed node never recorded may come again from
        # B, at most once per delivery in flight at the kill.  The sink
        # accepts a message only if its client is still there after the
        # delay, so here none should.
        duplicates = len(ids) - len(set(ids))
        self.assertLessEqual(duplicates, in_flight)
        with sink.lock:
            by_b = set(mid for ehlo, _, mid in sink.accepted if ehlo == "node-b.test")
            aborted = len(sink.aborted)
        # B delivered everything A had not finished, after A's leases ran out
        self.assertGreaterEqual(len(by_b), n - done_before, (sink.accepted, sink.aborted, self.logs(a, b)))
        self.assertGreaterEqual(aborted, 1)
        claimed = re.findall(r"queue claimed id=(\w+)", b.log_text())
        self.assertTrue(set(held) <= set(claimed), (held, claimed))
        print("\n  kill -9 with %d leases held, %d deliveries in flight: B delivered %d after %.1fs "
              "(lease %ds), duplicates %d" % (len(held), in_flight, len(by_b), took, LEASE, duplicates))

    def test_bounce_through_pg_queue(self):
        sink = self.sink()
        a = self.node("node-a.test", sink)
        self.setup_users(a)
        self.submit_many(a, [(1, "reject1@remote.test")])
        ok = wait_for(lambda: len(self.inbox(a)) >= 1, timeout=20)
        self.assertTrue(ok, a.log_text()[-4000:])
        msgs = self.inbox(a)
        self.assertEqual(len(msgs), 1)
        dsn = msgs[0]
        self.assertIn(b"multipart/report", dsn)
        self.assertIn(b"reject1@remote.test", dsn)
        self.assertRegex(dsn, rb"Status: 5\.1\.1")
        log = a.log_text()
        m = re.search(r"queue dsn id=(\w+) dsn_id=(\w+)", log)
        self.assertIsNotNone(m, log[-3000:])
        # the DSN itself was queued in PostgreSQL and claimed from there
        self.assertIn("queue claimed id=%s from=<>" % m.group(2), log)
        self.assertTrue(wait_for(lambda: self.queue_count() == 0, timeout=10), log[-3000:])
        self.assertEqual(sink.ids(), [])


if __name__ == "__main__":
    unittest.main()
