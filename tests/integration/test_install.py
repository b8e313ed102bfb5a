"""Installing and running as a service (issue 15): `make install DESTDIR=`,
the systemd unit accepted by systemd-analyze verify, the manual pages
rendered by man without warnings and covering every command and option,
the server started under the unit's capability bounding set, and the log
file reopened on SIGUSR2 (logrotate)."""
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BIN, ROOT, Server, once_only, wait_for


def man_warnings(path, env=None):
    """man's complaints about a page (groff warnings included)."""
    e = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    e.update(env or {})
    r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, env=e, timeout=60)
    return r.returncode, r.stderr.decode(), r.stdout.decode()


@once_only
class TestInstall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="po-install-")
        r = subprocess.run(["make", "-s", "install", "DESTDIR=" + cls.dest, "PREFIX=/usr"], cwd=ROOT,
                           capture_output=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("make install failed:\n" + r.stdout.decode() + r.stderr.decode())

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def path(self, p):
        return os.path.join(self.dest, p.lstrip("/"))

    def test_files(self):
        expect = {"/usr/sbin/postoffice": 0o755, "/usr/share/man/man8/postoffice.8": 0o644,
                  "/usr/share/man/man5/postoffice.conf.5": 0o644, "/etc/postoffice/postoffice.conf": 0o644,
                  "/lib/systemd/system/postoffice.service": 0o644}
        for p, mode in expect.items():
            st = os.stat(self.path(p))
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, p)
        # the installed binary's defaults are the installed layout's
        binary = self.path("/usr/sbin/postoffice")
        out = subprocess.run([binary, "-c", "/dev/null", "check"], capture_output=True).stdout.decode()
        self.assertIn("data_dir = /var/lib/postoffice", out)
        self.assertIn("/etc/postoffice/postoffice.conf", subprocess.run([binary, "--help"],
                                                                         capture_output=True).stdout.decode())
        # the example configuration is the commented default file and loads
        conf = self.path("/etc/postoffice/postoffice.conf")
        r = subprocess.run([binary, "-c", conf, "check"], capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        # a second install keeps the administrator's configuration
        with open(conf, "a") as f:
            f.write("\n[server]\nworkers = 3\n")
        subprocess.run(["make", "-s", "install", "DESTDIR=" + self.dest, "PREFIX=/usr"], cwd=ROOT,
                       check=True, capture_output=True, timeout=600)
        with open(conf) as f:
            self.assertIn("workers = 3", f.read())

    def test_unit_verifies(self):
        unit = self.path("/lib/systemd/system/postoffice.service")
        with open(unit) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/sbin/postoffice serve", text)
        self.assertIn("ReadWritePaths=/var/lib/postoffice", text)
        # systemd-analyze wants ExecStart to exist: a copy pointing into the
        # DESTDIR tree, with the manual pages found there too
        tmp = tempfile.mkdtemp(prefix="po-unit-")
        try:
            copy = os.path.join(tmp, "postoffice.service")
            with open(copy, "w") as f:
                f.write(text.replace("/usr/sbin/postoffice", self.path("/usr/sbin/postoffice"))
                        .replace("/var/lib/postoffice", tmp))
            env = dict(os.environ, MANPATH=self.path("/usr/share/man"))
            r = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, env=env, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
            self.assertEqual(r.stderr.decode().strip(), "")
            # and it does fail on a broken unit
            with open(copy, "w") as f:
                f.write(text.replace("/usr/sbin/postoffice", "/nonexistent/postoffice"))
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", copy], capture_output=True,
                               timeout=60)
            self.assertNotEqual(r.returncode, 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_manuals_render_cleanly(self):
        for page in ("/usr/share/man/man8/postoffice.8", "/usr/share/man/man5/postoffice.conf.5"):
            rc, err, out = man_warnings(self.path(page))
            self.assertEqual(rc, 0, err)
            self.assertEqual(err.strip(), "", page)
            self.assertGreater(len(out), 2000)
        # postoffice.conf(5) is made from the option table: every option of
        # the default file is in it
        _, _, conf5 = man_warnings(self.path("/usr/share/man/man5/postoffice.conf.5"))
        defaults = subprocess.run([BIN, "-c", "/dev/null", "check", "--defaults"],
                                  capture_output=True).stdout.decode()
        for key in re.findall(r"^#(\w+) = ", defaults, re.M):
            self.assertRegex(conf5, r"\b%s = " % key)

    def test_manual_covers_every_command_and_option(self):
        _, _, page = man_warnings(os.path.join(ROOT, "docs", "man", "postoffice.8"))
        out = subprocess.run([BIN, "--help"], capture_output=True).stdout.decode()
        commands = re.findall(r"^  ([\w-]+) {2,}", out, re.M)
        self.assertGreater(len(commands), 10)
        for cmd in commands:
            self.assertRegex(page, r"(?m)^   %s$" % cmd, "no section for " + cmd)
            usage = subprocess.run([BIN, cmd, "--help"], capture_output=True).stdout.decode()
            for opt in set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", usage)):
                if opt == "--help":
                    continue
                self.assertIn(opt, page, "%s %s is not in postoffice(8)" % (cmd, opt))


def unit_capabilities():
    with open(os.path.join(ROOT, "dist", "postoffice.service.in")) as f:
        caps = re.search(r"^CapabilityBoundingSet=(.*)$", f.read(), re.M).group(1).split()
    return [c.lower().replace("cap_", "+") for c in caps]


@once_only
@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
class TestCapabilities(unittest.TestCase):
    def test_starts_reloads_and_stops_under_the_units_bounding_set(self):
        srv = Server()
        srv.command_prefix = ["setpriv", "--bounding-set=-all," + ",".join(unit_capabilities())]
        try:
            srv.start()
            srv.add_domain("example.org")
            srv.add_user("bob@example.org", "pw")
            with srv.smtp() as s:
                s.sendmail("a@example.net", ["bob@example.org"], b"Subject: caps\r\n\r\nhello\r\n")
            self.assertEqual(len(srv.maildir_messages("bob@example.org")), 1)
            # reload: the old children are told to drain (CAP_KILL)
            old = set(srv.child_pids())
            srv.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: old and not (old & set(srv.child_pids())), timeout=20),
                            srv.log_text()[-2000:])
            srv.stop()
            self.assertIn("serve stopped", srv.log_text())
        finally:
            srv.cleanup()


class TestLogFile(unittest.TestCase):
    def test_sigusr2_reopens_the_log_file(self):
        srv = Server()
        # the harness reads the server's output from log_path: the server
        # writes its log file there itself
        srv.write_config(open(srv.config_path).read(), "[server]\nlog = %s\n" % srv.log_path)
        try:
            srv.start()
            os.rename(srv.log_path, srv.log_path + ".1")
            srv.log_offset = 0
            srv.proc.send_signal(signal.SIGUSR2)
            self.assertTrue(wait_for(lambda: "log reopened" in srv.log_text(), timeout=10))
            # the workers write to the new file too
            with srv.smtp() as s:
                s.noop()
            self.assertTrue(wait_for(lambda: re.search(r"postoffice/worker\[\d+\]: info: smtp", srv.log_text()),
                                     timeout=10), srv.log_text())
            with open(srv.log_path + ".1") as f:
                self.assertNotIn("log reopened", f.read())
            if os.geteuid() == 0:
                st = os.stat(srv.log_path)
                self.assertNotEqual(st.st_uid, 0)  # the server's user owns it
        finally:
            srv.cleanup()

    def test_journal_priorities(self):
        """Under systemd (JOURNAL_STREAM set) lines carry the journal's
        <N> priority and no time of their own."""
        srv = Server()
        os.environ["JOURNAL_STREAM"] = "8:12345"
        try:
            srv.start()
        finally:
            del os.environ["JOURNAL_STREAM"]
        try:
            text = srv.log_text()
            self.assertRegex(text, r"(?m)^<6>postoffice\[\d+\]: info: serve start")
            self.assertNotRegex(text, r"(?m)^\d{4}-\d\d-\d\dT")
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
