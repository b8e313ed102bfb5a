"""`postoffice domain|user|alias`: the user-management commands, run as a
user would run them against a temporary data directory (no server)."""
import ctypes
import ctypes.util
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("POSTOFFICE_BIN", os.path.join(ROOT, "build", "postoffice"))


def crypt_verify(password, hash_):
    """Checks a crypt(3) hash with the system libcrypt; None if unavailable."""
    name = ctypes.util.find_library("crypt")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), hash_.encode())
    return out is not None and out.decode() == hash_


class CliUsersTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="po-cli-")
        self.data_dir = os.path.join(self.dir, "var")
        self.config = os.path.join(self.dir, "postoffice.conf")
        with open(self.config, "w") as f:
            f.write("[server]\ndata_dir = %s\n" % self.data_dir)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_cli(self, *args, stdin=b"", expect=0):
        proc = subprocess.run([BIN, "-c", self.config] + list(args), input=stdin,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        out, err = proc.stdout.decode(), proc.stderr.decode()
        if expect is not None and proc.returncode != expect:
            self.fail("postoffice %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
                      % (" ".join(args), proc.returncode, expect, out, err))
        return out, err

    def password_hash(self, address):
        db = sqlite3.connect(os.path.join(self.data_dir, "users.db"))
        try:
            row = db.execute("SELECT password FROM users WHERE address = ?",
                             (address,)).fetchone()
        finally:
            db.close()
        return row[0] if row else None

    def maildir(self, address):
        local, domain = address.split("@")
        return os.path.join(self.data_dir, "mail", domain, local)

    # ---- domains ----
    def test_domain_add_list_del(self):
        self.assertFalse(os.path.exists(self.data_dir))
        out, _ = self.run_cli("domain", "add", "Example.ORG", "example.net")
        self.assertIn("added domain example.org", out)
        self.assertTrue(os.path.exists(os.path.join(self.data_dir, "users.db")))
        self.assertEqual(os.stat(os.path.join(self.data_dir, "users.db")).st_mode & 0o077, 0)
        out, _ = self.run_cli("domain", "list")
        self.assertEqual(out.splitlines(), ["example.net users=0", "example.org users=0"])
        _, err = self.run_cli("domain", "add", "example.org", expect=1)
        self.assertIn("domain example.org already exists", err)
        _, err = self.run_cli("domain", "add", "not a domain", expect=1)
        self.assertIn("invalid domain name", err)
        self.run_cli("domain", "del", "EXAMPLE.net")
        out, _ = self.run_cli("domain", "list")
        self.assertEqual(out.splitlines(), ["example.org users=0"])
        _, err = self.run_cli("domain", "del", "example.net", expect=1)
        self.assertIn("domain example.net does not exist", err)

    def test_domain_idn(self):
        out, _ = self.run_cli("domain", "add", "b\u00fccher.example")
        self.assertIn("xn--bcher-kva.example", out)
        self.run_cli("user", "add", "anna@b\u00fccher.example", stdin=b"pw\n")
        out, _ = self.run_cli("user", "list")
        self.assertIn("anna@xn--bcher-kva.example", out)
        self.assertTrue(os.path.isdir(self.maildir("anna@xn--bcher-kva.example")))

    def test_domain_del_refuses_with_users(self):
        self.run_cli("domain", "add", "example.org")
        self.run_cli("user", "add", "alice@example.org", stdin=b"pw\n")
        _, err = self.run_cli("domain", "del", "example.org", expect=1)
        self.assertIn("still has 1 user", err)
        self.assertIn("--force", err)
        out, _ = self.run_cli("domain", "del", "--force", "example.org")
        self.assertIn("mail directories are kept", out)
        out, _ = self.run_cli("user", "list")
        self.assertEqual(out, "")
        self.assertTrue(os.path.isdir(self.maildir("alice@example.org")))

    # ---- users ----
    def test_user_add_with_password_from_stdin(self):
        self.run_cli("domain", "add", "example.org")
        out, _ = self.run_cli("user", "add", "Alice@Example.org", "--quota", "2G",
                              stdin=b"correct horse\n")
        self.assertIn("added user alice@example.org", out)
        hash_ = self.password_hash("alice@example.org")
        self.assertTrue(hash_.startswith("$y$"), hash_)
        ok = crypt_verify("correct horse", hash_)
        if ok is not None:
            self.assertTrue(ok)
            self.assertFalse(crypt_verify("correct horse\n", hash_))
        # The Maildir++ layout.
        md = self.maildir("alice@example.org")
        for sub in ["cur", "new", "tmp", ".Sent/cur", ".Drafts/new", ".Trash/tmp",
                    ".Junk/cur", ".Archive/new", ".Sent/maildirfolder"]:
            self.assertTrue(os.path.exists(os.path.join(md, sub)), sub)
        out, _ = self.run_cli("user", "list")
        self.assertEqual(out.split(), ["alice@example.org", "quota=2G", "usage=0"])

    def test_user_usage_shown(self):
        self.run_cli("domain", "add", "example.org")
        self.run_cli("user", "add", "bob@example.org", stdin=b"pw\n")
        with open(os.path.join(self.maildir("bob@example.org"), "new",
                               "1700000000.M1P1.host,S=2048"), "wb") as f:
            f.write(b"x" * 2048)
        out, _ = self.run_cli("user", "list", "example.org")
        self.assertEqual(out.split(), ["bob@example.org", "quota=unlimited", "usage=2k"])

    def test_user_errors(self):
        _, err = self.run_cli("user", "add", "bob@example.org", stdin=b"pw\n", expect=1)
        self.assertIn("domain example.org does not exist: add it with "
                      "postoffice domain add example.org", err)
        self.run_cli("domain", "add", "example.org")
        _, err = self.run_cli("user", "add", "bob@example.org", stdin=b"", expect=1)
        self.assertIn("no password", err)
        _, err = self.run_cli("user", "add", "bob@example.org", stdin=b"\n", expect=1)
        self.assertIn("password is empty", err)
        _, err = self.run_cli("user", "add", "bob", stdin=b"pw\n", expect=1)
        self.assertIn("no @domain", err)
        _, err = self.run_cli("user", "add", "bob@example.org", "--quota", "lots",
                              stdin=b"pw\n", expect=2)
        self.assertIn("not a size", err)
        self.run_cli("user", "add", "bob@example.org", stdin=b"pw\n")
        _, err = self.run_cli("user", "add", "BOB@example.org", stdin=b"pw\n", expect=1)
        self.assertIn("user bob@example.org already exists", err)
        _, err = self.run_cli("user", "passwd", "eve@example.org", stdin=b"pw\n", expect=1)
        self.assertIn("user eve@example.org does not exist", err)
        _, err = self.run_cli("user", "del", "eve@example.org", expect=1)
        self.assertIn("does not exist", err)
        _, err = self.run_cli("user", "frobnicate", expect=2)
        self.assertIn("unknown subcommand", err)
        self.assertIn("usage:", err)
        _, err = self.run_cli("user", "add", expect=2)
        self.assertIn("wrong number of arguments", err)
        _, err = self.run_cli("user", "del", "--quota", "1", "bob@example.org", expect=2)
        self.assertIn("unknown option", err)

    def test_user_passwd_and_quota(self):
        self.run_cli("domain", "add", "example.org")
        self.run_cli("user", "add", "carol@example.org", stdin=b"old\n")
        before = self.password_hash("carol@example.org")
        self.run_cli("user", "passwd", "Carol@example.org", stdin=b"new password\n")
        after = self.password_hash("carol@example.org")
        self.assertNotEqual(before, after)
        ok = crypt_verify("new password", after)
        if ok is not None:
            self.assertTrue(ok)
        out, _ = self.run_cli("user", "quota", "carol@example.org", "512M")
        self.assertIn("512M", out)
        out, _ = self.run_cli("user", "list")
        self.assertIn("quota=512M", out)
        self.run_cli("user", "quota", "carol@example.org", "unlimited")
        out, _ = self.run_cli("user", "list")
        self.assertIn("quota=unlimited", out)
        _, err = self.run_cli("user", "quota", "carol@example.org", "5X", expect=2)
        self.assertIn("not a size", err)
        _, err = self.run_cli("user", "quota", "carol@example.org", "--", "-5", expect=2)
        self.assertIn("not a size", err)

    def test_user_del_keeps_or_purges_mail(self):
        self.run_cli("domain", "add", "example.org")
        self.run_cli("user", "add", "dave@example.org", stdin=b"pw\n")
        self.run_cli("user", "add", "erin@example.org", stdin=b"pw\n")
        out, _ = self.run_cli("user", "del", "dave@example.org")
        self.assertIn("mail kept", out)
        self.assertTrue(os.path.isdir(self.maildir("dave@example.org")))
        self.run_cli("user", "del", "--purge", "erin@example.org")
        self.assertFalse(os.path.exists(self.maildir("erin@example.org")))
        out, _ = self.run_cli("user", "list")
        self.assertEqual(out, "")

    # ---- aliases ----
    def test_alias_add_list_del(self):
        self.run_cli("domain", "add", "example.org")
        self.run_cli("user", "add", "alice@example.org", stdin=b"pw\n")
        self.run_cli("user", "add", "bob@example.org", stdin=b"pw\n")
        self.run_cli("alias", "add", "Team@example.org", "alice@example.org",
                     "bob@example.org", "Friend@remote.example")
        self.run_cli("alias", "add", "@example.org", "alice@example.org")
        out, _ = self.run_cli("alias", "list")
        self.assertEqual(out.splitlines(), [
            "@example.org -> alice@example.org",
            "team@example.org -> Friend@remote.example",
            "team@example.org -> alice@example.org",
            "team@example.org -> bob@example.org",
        ])
        _, err = self.run_cli("alias", "add", "team@example.org", "bob@example.org", expect=1)
        self.assertIn("already exists", err)
        _, err = self.run_cli("alias", "add", "x@other.example", "bob@example.org", expect=1)
        self.assertIn("domain other.example does not exist: add it with "
                      "postoffice domain add other.example", err)
        _, err = self.run_cli("alias", "add", "x@example.org", expect=2)
        self.assertIn("wrong number of arguments", err)
        self.run_cli("alias", "del", "team@example.org", "friend@remote.example")
        out, _ = self.run_cli("alias", "list", "example.org")
        self.assertNotIn("Friend", out)
        # Deleting a user removes the alias rows that point to it.
        self.run_cli("user", "del", "bob@example.org")
        out, _ = self.run_cli("alias", "list")
        self.assertNotIn("bob@example.org", out)
        self.run_cli("alias", "del", "team@example.org")
        self.run_cli("alias", "del", "@example.org")
        out, _ = self.run_cli("alias", "list")
        self.assertEqual(out, "")
        _, err = self.run_cli("alias", "del", "team@example.org", expect=1)
        self.assertIn("alias team@example.org does not exist", err)

    def test_help(self):
        for cmd in ["domain", "user", "alias"]:
            out, _ = self.run_cli(cmd, "--help")
            self.assertTrue(out.startswith("usage: postoffice %s" % cmd), out)
        out, _ = self.run_cli("--help")
        for cmd in ["domain", "user", "alias"]:
            self.assertIn(cmd, out)


if __name__ == "__main__":
    unittest.main()
