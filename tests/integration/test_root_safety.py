"""Root in a data directory the service user can write (hardening issue,
items 7 to 9).  The server's user owns DATA_DIR and everything below it,
so it can plant symbolic links and files there; commands that root runs
(user, domain, queue, sendmail) must never follow such a link out of the
data directory, never chown what lies behind it, never create a file
through it, and `queue flush` must not signal a process the service user
names in runner.pid.

Every link points to a directory or file the test made outside the data
directory, owned by root; the tests assert that it is left as it was.
They need root and the `postoffice` user (scripts/setup), as in CI."""
import json
import os
import pwd
import signal
import socket
import subprocess
import time
import unittest

from harness import DeadPort, Server, wait_for


def service_user():
    try:
        return pwd.getpwnam("postoffice")
    except KeyError:
        return None


SERVICE = service_user()
AS_ROOT = os.geteuid() == 0 and SERVICE is not None


def as_service_user(*cmd):
    """Runs cmd as the service user: what a compromised server can do."""
    subprocess.run(list(cmd), user=SERVICE.pw_uid, group=SERVICE.pw_gid, extra_groups=[],
                   check=True, timeout=30)



def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


@unittest.skipUnless(AS_ROOT, "needs root and the postoffice user")
class RootCliTest(unittest.TestCase):
    """The CLI as root, no server running."""

    def setUp(self):
        self.srv = Server()
        self.var = self.srv.data_dir
        # The harmless target: a root-owned directory outside DATA_DIR.
        self.outside = os.path.join(self.srv.dir, "outside")
        os.mkdir(self.outside, 0o755)
        with open(os.path.join(self.outside, "keep"), "w") as f:
            f.write("root's file\n")
        self.srv.cli("domain", "add", "example.org")   # makes DATA_DIR, owned by postoffice
        self.assertEqual(owner(self.var), (SERVICE.pw_uid, SERVICE.pw_gid))

    def tearDown(self):
        self.srv.cleanup()

    def assert_outside_untouched(self, also=()):
        self.assertEqual(owner(self.outside), (0, 0))
        self.assertEqual(sorted(os.listdir(self.outside)), sorted(["keep"] + list(also)))
        for name in os.listdir(self.outside):
            self.assertEqual(owner(os.path.join(self.outside, name)), (0, 0), name)
        with open(os.path.join(self.outside, "keep")) as f:
            self.assertEqual(f.read(), "root's file\n")

    def users(self):
        return self.srv.cli("user", "list").stdout.decode()

    # ---- item 7: user add, domain dirs and users.db ----
    def test_user_add_refuses_symlinked_domain_dir(self):
        self.srv.cli("domain", "add", "evil.org")
        mail = os.path.join(self.var, "mail")
        if not os.path.isdir(mail):
            as_service_user("mkdir", mail)
        as_service_user("ln", "-s", self.outside, os.path.join(mail, "evil.org"))
        r = self.srv.cli("user", "add", "x@evil.org", input=b"pw\n", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"symbolic link", r.stderr)
        self.assertIn(b"evil.org", r.stderr)
        self.assert_outside_untouched()
        self.assertNotIn("x@evil.org", self.users())   # not half added
        # a real directory works as before
        self.srv.cli("user", "add", "y@example.org", input=b"pw\n")
        self.assertEqual(owner(os.path.join(self.var, "mail", "example.org", "y", "cur")),
                         (SERVICE.pw_uid, SERVICE.pw_gid))

    def test_user_add_refuses_symlinked_mail_dir(self):
        mail = os.path.join(self.var, "mail")
        if os.path.isdir(mail):
            os.rmdir(mail)
        as_service_user("ln", "-s", self.outside, mail)
        r = self.srv.cli("user", "add", "x@example.org", input=b"pw\n", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"symbolic link", r.stderr)
        self.assert_outside_untouched()
        self.assertNotIn("x@example.org", self.users())

    def test_symlinked_users_db_refused(self):
        db = os.path.join(self.var, "users.db")
        as_service_user("rm", "-f", db, db + "-wal", db + "-shm")
        as_service_user("ln", "-s", os.path.join(self.outside, "users.db"), db)
        r = self.srv.cli("domain", "add", "other.org", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"users.db", r.stderr)
        self.assert_outside_untouched()

    def test_user_del_purge_does_not_follow_a_swapped_domain_dir(self):
        self.srv.cli("user", "add", "x@example.org", input=b"pw\n")
        # outside/x looks like the Maildir; the real domain directory is
        # moved away and replaced by a link to outside
        os.makedirs(os.path.join(self.outside, "x", "cur"))
        domain_dir = os.path.join(self.var, "mail", "example.org")
        as_service_user("mv", domain_dir, domain_dir + ".moved")
        as_service_user("ln", "-s", self.outside, domain_dir)
        r = self.srv.cli("user", "del", "--purge", "x@example.org", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"symbolic link", r.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.outside, "x", "cur")))
        self.assert_outside_untouched(also=["x"])

    # ---- item 9: files root creates in the queue ----
    def spool(self, subject="spooled"):
        """sendmail as root with no server: the message goes to the spool."""
        r = self.srv.cli("sendmail", "-f", "alice@example.org", "bob@remote.test",
                         input=b"Subject: %s\n\nbody\n" % subject.encode(), check=False)
        return r

    def test_sendmail_refuses_symlinked_queue_dir(self):
        queue = os.path.join(self.var, "queue")
        if os.path.isdir(queue):
            os.rmdir(queue)
        as_service_user("ln", "-s", self.outside, queue)
        r = self.spool()
        self.assertEqual(r.returncode, 75, r.stderr)      # EX_TEMPFAIL: the caller keeps it
        self.assertIn(b"symbolic link", r.stderr)
        self.assert_outside_untouched()

    def test_queue_markers_not_created_through_links(self):
        r = self.spool()
        self.assertEqual(r.returncode, 0, r.stderr)
        qid = r.stderr.decode().split("queued as ")[1].split()[0]
        queue = os.path.join(self.var, "queue")
        self.assertEqual(owner(os.path.join(queue, qid + ".msg")), (SERVICE.pw_uid, SERVICE.pw_gid))
        self.assertEqual(owner(os.path.join(queue, qid + ".env")), (SERVICE.pw_uid, SERVICE.pw_gid))
        for suffix in ("hold", "flush"):
            as_service_user("ln", "-s", os.path.join(self.outside, "made-by-" + suffix),
                            os.path.join(queue, "%s.%s" % (qid, suffix)))
        self.srv.cli("queue", "hold", qid)
        self.srv.cli("queue", "flush", qid)
        self.assert_outside_untouched()
        entry = json.loads(self.srv.cli("queue", "show", qid, "--json").stdout)
        self.assertTrue(entry["held"])
        self.assertFalse(os.path.islink(os.path.join(queue, qid + ".hold")))
        self.srv.cli("queue", "release", qid)
        entry = json.loads(self.srv.cli("queue", "show", qid, "--json").stdout)
        self.assertFalse(entry["held"])


@unittest.skipUnless(AS_ROOT, "needs root and the postoffice user")
class QueueFlushTest(unittest.TestCase):
    """Item 8: `queue flush` as root signals no process named in
    runner.pid, which the service user can write."""

    def test_flush_signals_nobody_and_still_retries(self):
        dead = DeadPort()   # nothing listens: every attempt is deferred
        self.addCleanup(dead.close)
        srv = Server(extra_config="[queue]\nretry = 1h\n[routes]\nremote.test = 127.0.0.1:%d\n" % dead.port)
        self.addCleanup(srv.cleanup)
        srv.start()
        srv.add_domain("example.org")
        srv.add_user("alice@example.org", "pw")
        srv.submit("alice@example.org", "pw", "alice@example.org", ["bob@remote.test"],
                   b"Subject: flush me\r\n\r\nbody\r\n")

        def attempts():
            q = json.loads(srv.cli("queue", "list", "--json").stdout)
            return q[0]["recipients"][0]["attempts"] if q else 0
        self.assertTrue(wait_for(lambda: attempts() >= 1, timeout=15), srv.log_text()[-3000:])
        self.assertEqual(attempts(), 1)   # the next attempt is an hour away

        victim = subprocess.Popen(["sleep", "60"])   # a root process
        self.addCleanup(victim.wait)
        self.addCleanup(victim.kill)
        pidfile = os.path.join(srv.data_dir, "queue", "runner.pid")
        as_service_user("sh", "-c", "echo %d > %s" % (victim.pid, pidfile))
        r = srv.cli("queue", "flush")
        self.assertIn(b"Flush requested", r.stdout)
        self.assertFalse(wait_for(lambda: victim.poll() is not None, timeout=1.0),
                         "queue flush killed pid %d (%s)" % (victim.pid, victim.returncode))
        # and the runner retried at once
        self.assertTrue(wait_for(lambda: attempts() >= 2, timeout=10), srv.log_text()[-3000:])
        self.assertIn("queue flush requested", srv.log_text())


if __name__ == "__main__":
    unittest.main()
