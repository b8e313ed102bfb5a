"""A private PostgreSQL for tests, from Debian's postgresql-15 binaries.

    from pgserver import PgServer, PgTestCase
    with PgServer() as pg:                    # initdb + pg_ctl start, in a temp dir
        conninfo = pg.create_database()       # "host=127.0.0.1 port=N user=postoffice dbname=t_..."
        pg.psql(conninfo, "SELECT 1")         # -> stdout text (psql -At)
        pg.stop(); pg.start()                 # stopped and started again, same port and data
        pg.drop_database(conninfo)

    class MyTest(PgTestCase):                 # one server per class, a database per test
        def test_x(self):
            self.conninfo ...

Debian's initdb and pg_ctl (in /usr/lib/postgresql/15/bin, not on PATH)
refuse to run as root: they run as the unprivileged user `postoffice`
(runuser) in a directory under $TMPDIR that it owns.  The server listens
on 127.0.0.1 on a port free at start and on a unix socket in that
directory, with fsync on and trust authentication (loopback only).  Every
wait is bounded.

From the shell (tests/run starts one server for the unit tests):
    pgserver.py start DIR    initdb into DIR (made if missing) and start;
                             prints the conninfo of the database "postgres"
    pgserver.py stop DIR     stops it (DIR is left for the caller to remove)
"""
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

from harness import free_port

PG_BIN = os.environ.get("PO_PG_BIN", "/usr/lib/postgresql/15/bin")
PG_USER = "postoffice"
START_TIMEOUT = 30  # seconds pg_ctl waits for a start or a stop


def available():
    """None when a private PostgreSQL can be started, else why not."""
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        return "no %s/initdb (Debian package postgresql-15)" % PG_BIN
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return "no user %s (scripts/setup creates it)" % PG_USER
    return None


class PgServer:
    def __init__(self, directory=None):
        self.dir = directory
        self.own_dir = directory is None
        self.port = None
        self.running = False

    # ---- paths ----
    @property
    def data(self):
        return os.path.join(self.dir, "data")

    @property
    def sockets(self):
        return os.path.join(self.dir, "sock")

    @property
    def log_path(self):
        return os.path.join(self.dir, "postgresql.log")

    def _as_user(self, *args, timeout=START_TIMEOUT + 10):
        cmd = ["runuser", "-u", PG_USER, "--"] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")

    # ---- life ----
    def init(self):
        """Creates the directory (owned by postoffice) and the cluster."""
        why = available()
        if why:
            raise RuntimeError("cannot start PostgreSQL: " + why)
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="po-pg-")
        os.makedirs(self.dir, exist_ok=True)
        pw = pwd.getpwnam(PG_USER)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        r = self._as_user("mkdir", "-p", self.sockets)
        if r.returncode != 0:
            raise RuntimeError("mkdir %s: %s" % (self.sockets, r.stderr))
        # --no-sync only for initdb's own files: the server runs with fsync.
        r = self._as_user(os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", PG_USER, "-A", "trust",
                          "-E", "UTF8", "--locale=C", "--no-sync")
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n%s%s" % (r.stdout, r.stderr))
        return self

    def start(self):
        """Starts the server (initdb first when there is no cluster yet); a
        restarted server keeps its port when it is still free."""
        if self.dir is None or not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            self.init()
        last = ""
        for attempt in range(3):  # the port may be taken between choice and bind
            if self.port is None or attempt > 0:
                self.port = free_port()
            opts = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on" % (self.port, self.sockets)
            r = self._as_user(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.log_path,
                              "-w", "-t", str(START_TIMEOUT), "-o", opts, "start")
            if r.returncode == 0:
                self.running = True
                return self
            last = r.stdout + r.stderr + self.log_tail()
        raise RuntimeError("pg_ctl start failed:\n" + last)

    def stop(self, mode="fast"):
        """Stops the server (mode: smart, fast or immediate)."""
        if not self.running:
            return
        r = self._as_user(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t",
                          str(START_TIMEOUT), "stop")
        if r.returncode != 0:
            raise RuntimeError("pg_ctl stop failed:\n%s%s" % (r.stdout, r.stderr))
        self.running = False

    def cleanup(self):
        """Stops the server and removes its directory (when made here)."""
        try:
            self.stop()
        finally:
            if self.own_dir and self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, size=4000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - size))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # ---- databases ----
    def conninfo(self, dbname="postgres"):
        return "host=127.0.0.1 port=%d user=%s dbname=%s" % (self.port, PG_USER, dbname)

    def psql(self, conninfo, sql, check=True):
        """Runs sql with psql -At; returns its output."""
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo,
                            "-c", sql], capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise RuntimeError("psql %r failed: %s" % (sql, r.stderr))
        return r.stdout

    def create_database(self, name=None):
        """Creates an empty database; returns its conninfo."""
        name = name or "t_" + uuid.uuid4().hex[:12]
        self.psql(self.conninfo(), 'CREATE DATABASE "%s"' % name)
        return self.conninfo(name)

    def drop_database(self, conninfo):
        name = conninfo.rsplit("dbname=", 1)[1]
        self.psql(self.conninfo(), 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


class PgTestCase(unittest.TestCase):
    """One private PostgreSQL per test class (self.pg), an empty database
    per test (self.conninfo), dropped afterwards."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg = PgServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.cleanup()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if not self.pg.running:  # a test that stopped it
            self.pg.start()
        self.conninfo = self.pg.create_database()
        self.addCleanup(self._drop)

    def _drop(self):
        if not self.pg.running:
            self.pg.start()
        self.pg.drop_database(self.conninfo)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.stderr.write("usage: pgserver.py start|stop DIR\n")
        return 2
    pg = PgServer(argv[2])
    if argv[1] == "start":
        pg.start()
        print(pg.conninfo())
        return 0
    pg.running = True
    pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
