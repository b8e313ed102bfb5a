"""Test harness: runs `postoffice serve` in a temporary directory on free
loopback ports and offers small helpers for the protocol tests.

    from harness import Server
    with Server() as srv:                 # or Server(extra_config="[smtp]\\nbare_newline = normalize\\n")
        srv.add_domain("example.org")
        srv.add_user("alice@example.org", "secret")
        with srv.smtp() as s: ...         # smtplib.SMTP connected to the inbound port
        srv.port("pop3")                  # bound port of a listener
        srv.maildir_messages("alice@example.org")  # [(path, bytes)] in new/ and cur/

The binary comes from $POSTOFFICE_BIN (default: build/postoffice).  Every
listener binds 127.0.0.1 port 0; the bound ports are read from the log.
"""
import imaplib
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("POSTOFFICE_BIN", os.path.join(ROOT, "build", "postoffice"))


def sanitized():
    """True when BIN is an AddressSanitizer build (its quarantine keeps freed
    memory resident, so RSS says little about what the server holds)."""
    with open(BIN, "rb") as f:
        return b"__asan_init" in f.read()


# tests/run runs the integration tests against the normal build and again
# against the sanitizer build; heavy checks of things no sanitizer looks at
# (installing, packaging, a browser) run in the normal build's run only.
once_only = unittest.skipIf(sanitized(), "runs once, in the normal build's run")


SERVICES = ["smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps"]


def tls_context():
    """A client TLS context that accepts the server's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def free_port():
    """A loopback port nobody listens on now (bound, then closed): another
    process may take it later, so a server told to listen there must be
    ready to choose again."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class DeadPort:
    """A loopback port where nothing listens, for as long as this object
    lives: it is bound (so nobody else gets it) but not listening, so a
    connection to it is refused."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def wait_for(predicate, timeout=10.0, interval=0.02):
    """Polls predicate() until it is true or timeout seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class Server:
    def __init__(self, extra_config="", workers=1, hostname="mail.test"):
        self.dir = tempfile.mkdtemp(prefix="po-test-")
        os.chmod(self.dir, 0o755)
        self.data_dir = os.path.join(self.dir, "var")
        self.config_path = os.path.join(self.dir, "postoffice.conf")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.ports = {}
        self.command_prefix = []  # e.g. setpriv with its options
        listen = "".join("[%s]\nlisten = 127.0.0.1:0\n" % s for s in SERVICES)
        base = ("[server]\ndata_dir = %s\nworkers = %d\nhostname = %s\n"
                "[limits]\nauth_failure_delay = 0s\n"
                # Tests never query a real DNS server: a dead loopback port
                # unless a test starts its own responder.
                "[dns]\nresolver = 127.0.0.1:9\n" % (self.data_dir, workers, hostname))
        self.write_config(base + listen, extra_config)

    def write_config(self, base, extra):
        # Later sections override earlier keys: merge by section so that
        # extra_config can change any option.
        sections = {}
        order = []
        for text in (base, extra):
            current = None
            for line in text.splitlines():
                line = line.strip()
                if not line:
                    continue
                m = re.match(r"\[(.+)\]$", line)
                if m:
                    current = m.group(1)
                    if current not in sections:
                        sections[current] = {}
                        order.append(current)
                    continue
                key, _, value = line.partition("=")
                sections[current][key.strip()] = value.strip()
        with open(self.config_path, "w") as f:
            for sec in order:
                f.write("[%s]\n" % sec)
                for k, v in sections[sec].items():
                    f.write("%s = %s\n" % (k, v))

    # ---- process ----
    def start(self, timeout=10, attempts=20):
        """Starts the server.  A fixed port (a restart on the port it had)
        may be held a moment by someone's outgoing connection that the
        kernel gave it as a source port: such a start is tried again, every
        0.5 s, attempts times."""
        for attempt in range(attempts):
            try:
                return self._start(timeout)
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt == attempts - 1:
                    raise
                self.log.close()
                time.sleep(0.5)

    def _start(self, timeout):
        self.log = open(self.log_path, "ab")
        self.log_offset = os.path.getsize(self.log_path)
        self.proc = subprocess.Popen(self.command_prefix + [BIN, "-c", self.config_path, "serve"],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        self.ports = {}
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log_text(since_start=True)
            for m in re.finditer(r"listen service=(\w+) address=127\.0\.0\.1:(\d+)", text):
                self.ports[m.group(1)] = int(m.group(2))
            if "worker start" in text and len(self.ports) >= 1:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + text)
            time.sleep(0.02)
        raise RuntimeError("server did not start:\n" + self.log_text())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def kill(self):
        """SIGKILL the whole server (supervisor and children)."""
        if self.proc is not None:
            for pid in self.child_pids() + [self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            self.proc = None
            if self.log:
                self.log.close()
                self.log = None

    def child_pids(self, role="worker"):
        """PIDs of the supervisor's children whose log role matches."""
        pids = set(int(p) for p in re.findall(r"postoffice/%s\[(\d+)\]" % role, self.log_text()))
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        return alive

    def log_text(self, since_start=False):
        try:
            with open(self.log_path, "rb") as f:
                if since_start:
                    f.seek(self.log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def cleanup(self):
        """Stops the server and removes its directory.  A sanitizer report
        in the server's log fails the test, whatever the test saw."""
        self.stop()
        text = self.log_text()
        report = re.search(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:", text)
        if os.environ.get("KEEP_TEST_DIRS") or report:
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if report:
            start = max(0, report.start() - 2000)
            raise AssertionError("sanitizer report in %s:\n%s" % (self.log_path, text[start:report.start() + 4000]))

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # ---- CLI ----
    def cli(self, *args, input=None, check=True):
        r = subprocess.run([BIN, "-c", self.config_path] + list(args), input=input,
                           capture_output=True, cwd=self.dir, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("postoffice %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                                   r.stderr.decode()))
        return r

    def add_domain(self, domain):
        self.cli("domain", "add", domain)

    def add_user(self, address, password="secret", quota=None):
        args = ["user", "add", address]
        if quota is not None:
            args += ["--quota", str(quota)]
        self.cli(*args, input=(password + "\n").encode())

    # ---- clients ----
    def port(self, service):
        return self.ports[service]

    def smtp(self, service="smtp", timeout=10):
        if service == "submissions":
            return smtplib.SMTP_SSL("127.0.0.1", self.port(service), timeout=timeout,
                                    context=tls_context())
        return smtplib.SMTP("127.0.0.1", self.port(service), timeout=timeout)

    def submit(self, user, password, from_addr, to_addrs, msg, service="submission"):
        """Sends msg over submission with STARTTLS + AUTH; returns the DATA reply."""
        with self.smtp(service) as s:
            if service == "submission":
                s.starttls(context=tls_context())
            s.login(user, password)
            return s.sendmail(from_addr, to_addrs, msg)

    def pop3(self, tls=False, timeout=10):
        if tls:
            return poplib.POP3_SSL("127.0.0.1", self.port("pop3s"), timeout=timeout,
                                   context=tls_context())
        return poplib.POP3("127.0.0.1", self.port("pop3"), timeout=timeout)

    def imap(self, tls=False, timeout=10):
        if tls:
            return imaplib.IMAP4_SSL("127.0.0.1", self.port("imaps"), timeout=timeout,
                                     ssl_context=tls_context())
        return imaplib.IMAP4("127.0.0.1", self.port("imap"), timeout=timeout)

    def connect(self, service, timeout=10):
        """A raw socket to a listener (for byte-level tests)."""
        s = socket.create_connection(("127.0.0.1", self.port(service)), timeout=timeout)
        return s

    # ---- storage ----
    def maildir(self, address, folder=""):
        local, _, domain = address.partition("@")
        path = os.path.join(self.data_dir, "mail", domain, local)
        return os.path.join(path, "." + folder) if folder else path

    def maildir_messages(self, address, folder=""):
        """[(path, content)] of every message in new/ and cur/, oldest name first."""
        out = []
        base = self.maildir(address, folder)
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                p = os.path.join(d, name)
                with open(p, "rb") as f:
                    out.append((p, f.read()))
        return out


def body_of(stored):
    """The message as the client sent it: stored bytes minus the
    Return-Path, Authentication-Results (inbound port) and Received fields
    the server prepends."""
    lines = stored.split(b"\r\n")
    i = 0
    if lines and lines[0].startswith(b"Return-Path:"):
        i = 1
    for name in (b"Authentication-Results:", b"Received:"):
        if i < len(lines) and lines[i].startswith(name):
            i += 1
            while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                i += 1
    return b"\r\n".join(lines[i:])


class Conversation:
    """A raw line-based client for byte-exact protocol tests."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self, timeout=10):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered: %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self, timeout=10):
        """One SMTP reply, possibly multi-line: (code, [lines])."""
        lines = []
        while True:
            line = self.line(timeout)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=10):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
