"""What the tests of `postoffice fetch` share (test_client_tools over POP3,
test_fetch_imap over IMAP): a server with users and their password files,
a temporary directory per test, mail delivered by submission, the thread
of a fake server and fetch runs against it (also under strace), and a DNS
responder that names the server."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

from dnsserver import DnsServer
from harness import BIN, Server


def maildir_files(d):
    out = []
    for sub in ("new", "cur"):
        p = os.path.join(d, sub)
        if os.path.isdir(p):
            out += [os.path.join(p, n) for n in sorted(os.listdir(p))]
    return out


def stored(md):
    """The contents of the messages in Maildir md, sorted."""
    out = []
    for p in maildir_files(md):
        with open(p, "rb") as f:
            out.append(f.read())
    return sorted(out)


class FakeServer:
    """A socket listening on a loopback port chosen at run time and a thread
    running self.serve() (the subclass's: it accepts from self.sock, each
    wait bounded by the socket's timeout).  Set the subclass's attributes
    before calling this __init__: the thread starts in it."""

    def __init__(self):
        self.commands = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def close(self):
        self.sock.close()
        self.thread.join(10)


class FetchTestCase(unittest.TestCase):
    """One server for the class with the domain example.org and USERS as
    USER@example.org, password USERpw, kept in self.pw[USER] (a file);
    self.tmp is a fresh directory for each test."""
    USERS = ()
    TMP_PREFIX = "po-fetch-"

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(hostname="mx.example.org")
        cls.srv.start()
        cls.srv.add_domain("example.org")
        cls.pw = {}
        for user in cls.USERS:
            cls.srv.add_user("%s@example.org" % user, user + "pw")
            path = os.path.join(cls.srv.dir, user + ".pw")
            with open(path, "w") as f:
                f.write(user + "pw\n")
            cls.pw[user] = path

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=self.TMP_PREFIX)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def file(self, name, data):
        """Writes data (bytes) into self.tmp; returns the path."""
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def deliver(self, user, subject, n=1):
        """n messages from alice to user by submission, "SUBJECT i" each,
        with a line that starts with a dot."""
        for i in range(n):
            self.srv.submit("alice@example.org", "alicepw", "alice@example.org",
                            ["%s@example.org" % user],
                            ("From: alice@example.org\r\nTo: %s@example.org\r\nSubject: %s %d\r\n\r\n"
                             "body %d\r\n.dot line\r\n" % (user, subject, i, i)).encode())

    def named_server_config(self, name):
        """A configuration file whose [dns] resolver is a responder of the
        test's that resolves name to 127.0.0.1 (stopped at cleanup)."""
        dns = DnsServer()
        dns.add_a(name, "127.0.0.1")
        dns.start()
        self.addCleanup(dns.stop)
        return self.file("dns.conf", ("[dns]\nresolver = %s\n" % dns.address).encode())

    def assert_unverified_refused(self, fetch, host, modes):
        """fetch(service, mode) against host for each (service, mode) of
        modes ends with the handshake refusing the server's self-signed
        certificate."""
        for service, mode in modes:
            r = fetch(service, mode)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"postoffice fetch: TLS handshake with %s:%d failed: "
                          % (host.encode(), self.srv.port(service)), r.stderr)
            self.assertIn(b"certificate verify failed (self-signed certificate)", r.stderr)

    def fake_argv(self, fake, md, *args, protocol="pop3", password="pw"):
        """`postoffice fetch` from fake into Maildir md as u@example.org
        with password: --plain unless args ask for TLS."""
        pw = self.file("fake.pw", password.encode() + b"\n")
        mode = [] if {"--starttls", "--tls"} & set(args) else ["--plain"]
        return [BIN, "-c", self.srv.config_path, "fetch", "--protocol", protocol,
                "--server", "127.0.0.1:%d" % fake.port, *mode, "--user", "u@example.org",
                "--password-file", pw, "--maildir", md, *args]

    def run_fake(self, fake, md, *args, runs=1, **argv_args):
        """Runs fake_argv(fake, md, *args, **argv_args) runs times, then
        closes fake; returns the list of results."""
        try:
            return [subprocess.run(self.fake_argv(fake, md, *args, **argv_args),
                                   capture_output=True, timeout=60) for _ in range(runs)]
        finally:
            fake.close()

    def run_traced(self, fake, md, syscalls, *args, **argv_args):
        """Runs fake_argv() once under strace -f tracing syscalls (a
        comma-separated list), then closes fake; asserts it succeeded and
        returns the trace's lines.  Skips the test where ptrace is not
        permitted."""
        trace = os.path.join(self.tmp, "trace")
        try:
            r = subprocess.run(["strace", "-f", "-o", trace, "-s", "64", "-e", "trace=" + syscalls,
                                *self.fake_argv(fake, md, *args, **argv_args)],
                               capture_output=True, timeout=60,
                               # LeakSanitizer cannot run under ptrace
                               env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
        finally:
            fake.close()
        if r.returncode != 0 and b"ptrace" in r.stderr:
            self.skipTest("ptrace is not permitted here")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(trace) as f:
            return f.readlines()
