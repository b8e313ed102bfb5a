"""fetch's progress line (issue 15): on a terminal, messages done of the
total, bytes, rate and ETA, redrawn in place and ended with a newline; on a
pipe, nothing.  POP3 and IMAP."""
import os
import pty
import re
import subprocess
import unittest

from harness import BIN
from fetchtest import FetchTestCase


class TestFetchProgress(FetchTestCase):
    USERS = ("alice", "pat", "ivy")
    TMP_PREFIX = "po-fetch-progress-"

    def argv(self, user, protocol, md):
        service = "pop3" if protocol == "pop3" else "imap"
        return [BIN, "-c", self.srv.config_path, "fetch", "--protocol", protocol, "--plain",
                "--server", "127.0.0.1:%d" % self.srv.port(service), "--user", "%s@example.org" % user,
                "--password-file", self.pw[user], "--maildir", md]

    def fetch_on_terminal(self, argv):
        """Runs argv with stderr on a pseudo-terminal; returns (rc, what the
        terminal showed)."""
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
            os.close(slave)
            shown = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                shown += chunk
            p.stdout.read()
            return p.wait(timeout=60), shown.decode()
        finally:
            os.close(master)

    def check_protocol(self, user, protocol):
        self.deliver(user, "progress", n=3)
        rc, shown = self.fetch_on_terminal(self.argv(user, protocol, os.path.join(self.tmp, protocol)))
        self.assertEqual(rc, 0, shown)
        self.assertIn("\r0/3 messages (0%)", shown)
        self.assertRegex(shown, r"\r3/3 messages \(100%\)  \d+(\.\d)? [KM]?B  [\d.]+ [KMG]?B/s  ETA 0:00"
                                r"\x1b\[K\r?\n")
        # a pipe gets no progress at all
        self.deliver(user, "quiet", n=2)
        r = subprocess.run(self.argv(user, protocol, os.path.join(self.tmp, protocol + "2")),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(b"messages (", r.stderr)

    def test_pop3(self):
        self.check_protocol("pat", "pop3")

    def test_imap(self):
        self.check_protocol("ivy", "imap")


if __name__ == "__main__":
    unittest.main()
