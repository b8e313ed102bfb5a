"""The Debian package (issue 15): dpkg-buildpackage -us -uc -b builds it
from a copy of the tree (it writes beside the tree it builds), and dpkg
lists what it should: the binary, both manual pages, the configuration as a
conffile, the systemd unit, and maintainer scripts that create the user,
enable the unit, stop it on removal and keep the mail on purge unless
asked."""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import ROOT, once_only


@once_only
@unittest.skipUnless(shutil.which("dpkg-buildpackage"), "needs dpkg-dev and debhelper (scripts/setup)")
class TestPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="po-deb-")
        src = os.path.join(cls.tmp, "postoffice")
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
        for f in files:
            if not f or not os.path.isfile(os.path.join(ROOT, f.decode())):
                continue
            dst = os.path.join(src, f.decode())
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f.decode()), dst)
        r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, capture_output=True,
                           timeout=900)
        if r.returncode != 0:
            raise RuntimeError("dpkg-buildpackage failed:\n" + (r.stdout + r.stderr).decode()[-4000:])
        debs = [f for f in os.listdir(cls.tmp) if f.startswith("postoffice_") and f.endswith(".deb")]
        cls.deb = os.path.join(cls.tmp, debs[0])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def dpkg(self, *args):
        return subprocess.run(["dpkg-deb"] + list(args), capture_output=True, check=True).stdout.decode()

    def test_contents(self):
        listing = self.dpkg("-c", self.deb)
        for path in ("./usr/sbin/postoffice", "./usr/share/man/man8/postoffice.8.gz",
                     "./usr/share/man/man5/postoffice.conf.5.gz", "./etc/postoffice/postoffice.conf",
                     "./lib/systemd/system/postoffice.service", "./usr/share/doc/postoffice/copyright"):
            self.assertIn(path, listing)
        self.assertRegex(listing, r"-rwxr-xr-x root/root +\d+ \S+ \S+ \./usr/sbin/postoffice")
        # nothing of the build or the tests
        self.assertNotIn("./usr/local", listing)
        self.assertNotIn("tests/", listing)

    def test_control(self):
        info = self.dpkg("-I", self.deb)
        self.assertIn("Package: postoffice", info)
        for lib in ("libevent", "libssl3", "libsqlite3", "libc-ares", "libpsl5", "adduser"):
            self.assertIn(lib, info)
        self.assertEqual(self.dpkg("-I", self.deb, "conffiles").split(), ["/etc/postoffice/postoffice.conf"])
        postinst = self.dpkg("-I", self.deb, "postinst")
        self.assertIn("adduser --system", postinst)
        self.assertIn("/var/lib/postoffice", postinst)
        self.assertIn("deb-systemd-helper enable", postinst)  # enabled and started
        self.assertIn("deb-systemd-invoke", self.dpkg("-I", self.deb, "prerm"))  # stopped on remove
        postrm = self.dpkg("-I", self.deb, "postrm")
        self.assertIn('"${POSTOFFICE_PURGE_DATA:-}" = yes', postrm)

    def test_installed_binary_layout(self):
        tree = os.path.join(self.tmp, "x")
        subprocess.run(["dpkg-deb", "-x", self.deb, tree], check=True)
        out = subprocess.run([os.path.join(tree, "usr/sbin/postoffice"), "-c", "/dev/null", "check"],
                             capture_output=True).stdout.decode()
        self.assertIn("data_dir = /var/lib/postoffice", out)


if __name__ == "__main__":
    unittest.main()
