"""A postoffice cluster for tests (issue 16): N nodes on one PostgreSQL
database behind a private haproxy.

    from cluster import Cluster
    c = Cluster(pg, conninfo, nodes=3, extra="[queue]\\nlease_time = 3s\\n")
    c.start()                       # db init, the nodes, then haproxy
    c.add_domain("example.org"); c.add_user("alice@example.org", "pw")
    c.smtp()        c.smtp(node=1)  # through haproxy / straight to node 1
    c.imap()        c.imap(node=0)  # imaplib, logged out by the caller
    c.pop3(node=2)
    c.kill(1)                       # kill -9 of every process of node 1
    c.close()                       # haproxy, then every node (idempotent)

Each node is a harness.Server (its own data directory, listeners on
loopback ports chosen at run time) with `[storage] backend = postgresql`
on the same database, and `proxy_protocol = yes` on the SMTP, submission,
IMAP and POP3 listeners with `proxy_trusted = 127.0.0.1`.  haproxy (`mode
tcp`, `balance roundrobin`, `send-proxy-v2`, on ports chosen at run time)
balances those four services over the nodes; a connection refused by a
dead node is tried again on another (`option redispatch`).  A client that
goes straight to a node plays the balancer: it sends a PROXY v2 header
first (from 127.0.0.1, trusted).  Every wait is bounded."""
import imaplib
import os
import poplib
import re
import signal
import smtplib
import socket
import struct
import subprocess
import time

from harness import Server, free_port, wait_for

BALANCED = ("smtp", "submission", "imap", "pop3")
PROXY_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(sock):
    """The PROXY v2 header (PROXY, TCP over IPv4) a balancer would send for
    the client at sock's own address (haproxy's proxy-protocol.txt,
    section 2.2)."""
    src, sport = sock.getsockname()[:2]
    dst, dport = sock.getpeername()[:2]
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return PROXY_SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def proxied_socket(port, timeout):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(proxy_v2(sock))
    return sock


class DirectIMAP(imaplib.IMAP4):
    """imaplib to a node's proxy_protocol listener: the header first."""

    def _create_socket(self, timeout):
        return proxied_socket(self.port, timeout)


class DirectPOP3(poplib.POP3):
    def _create_socket(self, timeout):
        return proxied_socket(self.port, timeout)


class DirectSMTP(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        return proxied_socket(port, timeout)


class Cluster:
    def __init__(self, pg, conninfo, nodes=3, extra=""):
        self.pg = pg
        self.conninfo = conninfo
        self.haproxy = None
        self.lb = {}  # service -> haproxy's port
        conf = ("[storage]\nbackend = postgresql\n[postgresql]\nconninfo = %s\n"
                "[server]\nproxy_trusted = 127.0.0.1\n"
                "[imap]\nmax_connections_per_user = 200\n%s%s"
                % (conninfo, "".join("[%s]\nproxy_protocol = yes\n" % s for s in BALANCED), extra))
        self.nodes = [Server(extra_config=conf, hostname=self.hostname(i)) for i in range(nodes)]

    @staticmethod
    def hostname(i):
        return "node%d.test" % i

    # ---- life ----
    def start(self):
        self.nodes[0].cli("db", "init")
        for srv in self.nodes:
            srv.start()
        self.start_haproxy()
        return self

    def start_haproxy(self, attempts=3):
        directory = self.nodes[0].dir
        cfg = os.path.join(directory, "haproxy.cfg")
        log_path = os.path.join(directory, "haproxy.log")
        for _ in range(attempts):  # a free port may be taken before haproxy binds it
            self.lb = {s: free_port() for s in BALANCED}
            with open(cfg, "w") as f:
                f.write("global\n    maxconn 1000\n"
                        "defaults\n    mode tcp\n    timeout connect 2s\n"
                        "    timeout client 120s\n    timeout server 120s\n"
                        "    retries 2\n    option redispatch 1\n")
                for service, port in self.lb.items():
                    f.write("listen %s\n    bind 127.0.0.1:%d\n    balance roundrobin\n" % (service, port))
                    for i, srv in enumerate(self.nodes):
                        f.write("    server n%d 127.0.0.1:%d send-proxy-v2\n" % (i, srv.port(service)))
            with open(log_path, "ab") as log:
                # -db: in the foreground, not a daemon; close() ends it.
                self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=log,
                                                stderr=subprocess.STDOUT, cwd=directory)

            def listening():
                if self.haproxy.poll() is not None:
                    return True
                for port in self.lb.values():
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    except OSError:
                        return False
                return True
            wait_for(listening, timeout=10)
            if self.haproxy.poll() is None and listening():
                return
            self.stop_haproxy()
        with open(log_path, errors="replace") as f:
            raise RuntimeError("haproxy did not start:\n" + f.read())

    def stop_haproxy(self):
        if self.haproxy is not None:
            if self.haproxy.poll() is None:
                self.haproxy.send_signal(signal.SIGTERM)
                try:
                    self.haproxy.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.haproxy.kill()
                    self.haproxy.wait()
            self.haproxy = None

    def close(self):
        """haproxy, then every node (SIGTERM stops a node's children, its
        queue runner with them; a node's directory goes)."""
        try:
            self.stop_haproxy()
        finally:
            errors = []
            for srv in self.nodes:
                try:
                    srv.cleanup()
                except AssertionError as e:  # a sanitizer report
                    errors.append(e)
            if errors:
                raise errors[0]

    def pids(self, i):
        return server_pids(self.nodes[i])

    def kill(self, i):
        """kill -9 of node i: supervisor, workers and queue runner at once
        (harness.Server.kill() leaves the queue runner), the supervisor
        first so that it restarts none of them.  Returns once every one
        of them is gone."""
        srv = self.nodes[i]
        pids = self.pids(i)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # (not srv.kill(): it signals pids named in the log, which may
        # belong to someone else by now)
        if srv.proc is not None:
            srv.proc.wait(timeout=10)
            srv.proc = None
        if getattr(srv, "log", None):
            srv.log.close()
            srv.log = None
        gone = wait_for(lambda: not any(alive(p) for p in pids), timeout=10)
        if not gone:
            raise RuntimeError("node %d: processes left after kill -9: %s" % (i, [p for p in pids if alive(p)]))
        return pids

    # ---- users ----
    def add_domain(self, domain):
        self.nodes[0].add_domain(domain)

    def add_user(self, address, password):
        self.nodes[0].add_user(address, password)

    # ---- clients: node=None through haproxy, else straight to that node ----
    def port(self, service, node=None):
        return self.lb[service] if node is None else self.nodes[node].port(service)

    def smtp(self, service="smtp", node=None, timeout=20):
        cls = smtplib.SMTP if node is None else DirectSMTP
        return cls("127.0.0.1", self.port(service, node), timeout=timeout)

    def imap(self, node=None, timeout=20):
        cls = imaplib.IMAP4 if node is None else DirectIMAP
        return cls("127.0.0.1", self.port("imap", node), timeout=timeout)

    def pop3(self, node=None, timeout=20):
        cls = poplib.POP3 if node is None else DirectPOP3
        return cls("127.0.0.1", self.port("pop3", node), timeout=timeout)

    def connect(self, service, node, timeout=20):
        """A raw socket straight to a node, the PROXY header sent."""
        return proxied_socket(self.port(service, node), timeout)

    def connect_lb(self, service, timeout=20):
        """A raw socket to haproxy."""
        return socket.create_connection(("127.0.0.1", self.lb[service]), timeout=timeout)

    # ---- logs ----
    def accepted(self, i):
        """Queue ids of the messages node i accepted over SMTP."""
        return re.findall(r"smtp accept session=\S+ qid=(\w+)", self.nodes[i].log_text())

    def logs(self, size=3000):
        out = []
        for srv in self.nodes:
            out.append("---- %s\n%s" % (srv.config_path, srv.log_text()[-size:]))
        return "\n".join(out)


def server_pids(srv):
    """A harness.Server's live processes: its supervisor first, then the
    supervisor's children of every role (workers, queue runner, admin),
    found by their parent in /proc."""
    if srv.proc is None:
        return []
    sup = srv.proc.pid
    out = [sup]
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != sup and parent(int(name)) == sup and alive(int(name)):
            out.append(int(name))
    return out


def parent(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
