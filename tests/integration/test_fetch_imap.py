"""`postoffice fetch --protocol imap` against postoffice's own IMAP server
(STARTTLS and IMAPS, --keep with UIDVALIDITY/UID state, expunge only after
the local copy, --idle with mail delivered by SMTP meanwhile) and against
tiny fake servers (a UIDVALIDITY change, hostile literals and malformed
responses)."""
import os
import shutil
import signal
import subprocess
import time
import unittest

from fetchtest import FakeServer, FetchTestCase, maildir_files, stored
from harness import BIN, wait_for


class FakeImap(FakeServer):
    """A plain-text IMAP server in a thread that serves one connection per
    entry of `sessions`: each is (uidvalidity, [(uid, bytes)]).  fetch_reply,
    when set, replaces the answer to UID FETCH of a body (bytes sent as is,
    then the connection is closed)."""

    def __init__(self, sessions, fetch_reply=None):
        self.sessions = list(sessions)
        self.fetch_reply = fetch_reply
        super().__init__()

    def serve(self):
        for validity, msgs in self.sessions:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(30)
            try:
                self.session(conn.makefile("rwb"), validity, msgs)
            except (OSError, ValueError):
                pass
            conn.close()

    def session(self, f, validity, msgs):
        def say(data):
            f.write(data if isinstance(data, bytes) else data.encode() + b"\r\n")
            f.flush()
        say("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS] fake ready")
        for _ in range(1000):
            line = f.readline()
            if not line:
                return
            tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
            self.commands.append(rest)
            verb = rest.split(" ")[0].upper()
            if verb == "AUTHENTICATE":
                say("%s OK [CAPABILITY IMAP4rev1 UIDPLUS] logged in" % tag)
            elif verb in ("SELECT", "EXAMINE"):
                say("* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n%s OK [READ-ONLY] done"
                    % (len(msgs), validity, tag))
            elif rest.upper().startswith("UID FETCH") and "BODY" not in rest:
                first = int(rest.split(" ")[2].split(":")[0])
                out = "".join("* %d FETCH (UID %d)\r\n" % (i + 1, u)
                              for i, (u, _) in enumerate(msgs) if u >= first)
                say(out + "%s OK done" % tag)
            elif rest.upper().startswith("UID FETCH"):
                uid = int(rest.split(" ")[2])
                if self.fetch_reply is not None:
                    say(self.fetch_reply)
                    return
                i, data = [(i, d) for i, (u, d) in enumerate(msgs) if u == uid][0]
                # Items in another order than asked, with FLAGS between.
                say(b"* %d FETCH (BODY[] {%d}\r\n%s FLAGS (\\Seen) UID %d)\r\n%s OK done\r\n"
                    % (i + 1, len(data), data, uid, tag.encode()))
            elif verb == "LOGOUT":
                say("* BYE bye\r\n%s OK done" % tag)
                return
            else:
                say("%s OK done" % tag)


class FetchImap(FetchTestCase):
    USERS = ("alice", "bob", "carol", "dave", "erin", "gina")
    TMP_PREFIX = "po-fetch-imap-"

    def fetch(self, user, md, *args, service="imap", check=True):
        mode = ["--tls"] if service == "imaps" else []
        return self.srv.cli("fetch", "--protocol", "imap",
                            "--server", "127.0.0.1:%d" % self.srv.port(service),
                            "--user", "%s@example.org" % user, "--password-file", self.pw[user],
                            "--maildir", md, *mode, *args, check=check)

    def server_uids(self, user, mailbox="INBOX"):
        m = self.srv.imap(tls=True)
        try:
            m.login("%s@example.org" % user, user + "pw")
            typ, _ = m.select(mailbox, readonly=True)
            self.assertEqual(typ, "OK")
            typ, data = m.uid("SEARCH", "ALL")
            return [int(x) for x in data[0].split()]
        finally:
            m.logout()

    # ---- against postoffice's IMAP server ----
    def test_keep_twice_fetches_only_new(self):
        self.deliver("bob", "keep", 2)
        md = os.path.join(self.tmp, "md")
        r = self.fetch("bob", md, "--keep")
        self.assertIn(b"fetched 2 messages", r.stdout)
        self.assertEqual(len(maildir_files(md)), 2)
        r = self.fetch("bob", md, "--keep")
        self.assertIn(b"fetched 0 messages", r.stdout)
        self.deliver("bob", "later")
        r = self.fetch("bob", md, "--keep", service="imaps")
        self.assertIn(b"fetched 1 messages", r.stdout)
        self.assertEqual(len(maildir_files(md)), 3)
        self.assertEqual(len(self.server_uids("bob")), 3)
        with open(os.path.join(md, ".postoffice-fetch-bob@example.org-imap-INBOX")) as f:
            validity, last = f.read().split()
        self.assertEqual(int(last), max(self.server_uids("bob")))
        # Without --keep: nothing fetched twice, all three leave the server.
        r = self.fetch("bob", md)
        self.assertIn(b"fetched 0 messages", r.stdout)
        self.assertIn(b"deleted 3 on the server", r.stdout)
        self.assertEqual(self.server_uids("bob"), [])
        self.assertEqual(len(maildir_files(md)), 3)

    def test_expunged_after_local_copy(self):
        self.deliver("carol", "move", 3)
        md = os.path.join(self.tmp, "md")
        r = self.fetch("carol", md, service="imaps")
        self.assertIn(b"fetched 3 messages", r.stdout)
        self.assertIn(b"deleted 3 on the server", r.stdout)
        self.assertEqual(self.server_uids("carol"), [])
        got = stored(md)
        self.assertEqual(len(got), 3)
        for data in got:
            self.assertIn(b"\r\n.dot line\r\n", data)
        self.assertRegex(self.srv.log_text(), r"imap login session=\S+ user=carol@example.org")

    def test_local_failure_deletes_nothing(self):
        """The mbox cannot take the message (its path is a directory): a
        clear error when storing, and the server still has every message."""
        self.deliver("dave", "fail", 2)
        box = os.path.join(self.tmp, "box")
        os.mkdir(box)
        r = self.srv.cli("fetch", "--protocol", "imap", "--server", "127.0.0.1:%d" % self.srv.port("imap"),
                         "--user", "dave@example.org", "--password-file", self.pw["dave"],
                         "--mbox", box, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"postoffice fetch: stopped after 0 messages; the rest stay on the server", r.stderr)
        self.assertRegex(self.srv.log_text(), r"imap login session=\S+ user=dave@example.org")
        self.assertEqual(len(self.server_uids("dave")), 2)

    @unittest.skipIf(shutil.which("strace") is None, "strace is not installed")
    def test_fsyncs_before_store_deleted(self):
        """UID STORE \\Deleted and UID EXPUNGE are sent only after each
        message's fsync, its link into new/ and the fsync of new/."""
        msgs = [(3, b"Subject: a\r\n\r\none\r\n"), (4, b"Subject: b\r\n\r\ntwo\r\n")]
        md = os.path.join(self.tmp, "trace-md")
        fake = FakeImap([(9, msgs)])
        trace = self.run_traced(fake, md, "fsync,fdatasync,link,linkat,rename,renameat,renameat2,"
                                "write,writev,sendto,sendmsg", protocol="imap")
        events = []
        for line in trace:
            if "fsync(" in line or "fdatasync(" in line:
                events.append("sync")
            elif "link" in line and "/new/" in line:
                events.append("link")
            elif "UID STORE" in line:
                events.append("store")
            elif "UID EXPUNGE" in line:
                events.append("expunge")
        self.assertEqual(events.count("link"), 2, events)
        self.assertEqual(events.count("store"), 1, events)
        store = events.index("store")
        self.assertEqual(events[store + 1:], ["expunge"], events)
        # each link is preceded by the file's sync and followed by new/'s
        for i, e in enumerate(events[:store]):
            if e == "link":
                self.assertEqual(events[i - 1], "sync", events)
                self.assertEqual(events[i + 1], "sync", events)
        self.assertIn("UID STORE 3:4 +FLAGS.SILENT (\\Deleted)", fake.commands)
        self.assertIn("UID EXPUNGE 3:4", fake.commands)

    def test_mailbox_and_mbox(self):
        m = self.srv.imap(tls=True)
        try:
            m.login("erin@example.org", "erinpw")
            self.assertEqual(m.create('"Gr&APw-n"')[0], "OK")   # "Grün" in modified UTF-7
            self.assertEqual(m.append('"Gr&APw-n"', None, None,
                                      b"From: a@example.org\r\nSubject: green\r\n\r\nFrom here\r\n")[0], "OK")
        finally:
            m.logout()
        box = os.path.join(self.tmp, "box")
        r = self.srv.cli("fetch", "--protocol", "imap", "--server", "127.0.0.1:%d" % self.srv.port("imap"),
                         "--user", "erin@example.org", "--password-file", self.pw["erin"],
                         "--mbox", box, "--mailbox", "Grün")
        self.assertIn(b"fetched 1 messages", r.stdout)
        with open(box, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"From MAILER-DAEMON "), data)
        self.assertIn(b"\n>From here\n", data)
        self.assertEqual(self.server_uids("erin", '"Gr&APw-n"'), [])

    def test_verifies_a_named_server(self):
        """As for POP3: a named server whose certificate does not verify
        (self-signed) is refused before the password is sent, with IMAPS and
        with STARTTLS; --insecure accepts it."""
        conf = self.named_server_config("imap.example.test")
        self.deliver("gina", "named")
        md = os.path.join(self.tmp, "named")

        def fetch(service, *args):
            return subprocess.run([BIN, "-c", conf, "fetch", "--protocol", "imap", "--server",
                                   "imap.example.test:%d" % self.srv.port(service), "--user",
                                   "gina@example.org", "--password-file", self.pw["gina"],
                                   "--maildir", md, *args], capture_output=True, timeout=60)
        self.assert_unverified_refused(fetch, "imap.example.test", (("imaps", "--tls"), ("imap", "--starttls")))
        self.assertEqual(maildir_files(md), [])
        self.assertNotRegex(self.srv.log_text(), r"imap login session=\S+ user=gina@example.org")
        r = fetch("imap", "--insecure")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"fetched 1 messages", r.stdout)
        self.assertEqual(self.server_uids("gina"), [])

    def test_idle_receives_mail_and_stops_on_sigterm(self):
        md = os.path.join(self.tmp, "idle")
        proc = subprocess.Popen([BIN, "-c", self.srv.config_path, "fetch", "--protocol", "imap",
                                 "--server", "127.0.0.1:%d" % self.srv.port("imaps"), "--tls",
                                 "--user", "alice@example.org", "--password-file", self.pw["alice"],
                                 "--maildir", md, "--idle"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # In IDLE once the server logged the login and the maildir exists.
            self.assertTrue(wait_for(lambda: os.path.isdir(os.path.join(md, "new")), 10))
            time.sleep(0.5)
            start = time.monotonic()
            self.deliver("alice", "while idling")
            self.assertTrue(wait_for(lambda: len(maildir_files(md)) == 1, 10), proc.poll())
            self.assertLess(time.monotonic() - start, 10)
            self.assertTrue(wait_for(lambda: self.server_uids("alice") == [], 10))
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(b"fetched 1 messages", out)
        self.assertIn(b"Subject: while idling 0", stored(md)[0])

    # ---- fake servers ----
    def run_fake(self, fake, md, *args):
        r, = super().run_fake(fake, md, *args, protocol="imap")
        return r

    def test_uidvalidity_change_resets_state(self):
        msgs = [(5, b"Subject: a\r\n\r\none\r\n"), (6, b"Subject: b\r\n\r\ntwo\r\n")]
        md = os.path.join(self.tmp, "uv")
        fake = FakeImap([(100, msgs), (100, msgs), (200, msgs)])
        r1 = super().run_fake(fake, md, "--keep", runs=3, protocol="imap")
        self.assertEqual(r1[0].returncode, 0, r1[0].stderr)
        self.assertIn(b"fetched 2 messages", r1[0].stdout)
        self.assertIn(b"fetched 0 messages", r1[1].stdout)
        self.assertIn(b"UIDVALIDITY of INBOX changed (200, was 100)", r1[2].stdout)
        self.assertIn(b"fetched 2 messages", r1[2].stdout)
        self.assertEqual(len(maildir_files(md)), 4)
        self.assertIn("EXAMINE \"INBOX\"", fake.commands)
        self.assertNotIn("SELECT", [c.split(" ")[0] for c in fake.commands])

    def test_items_in_any_order_are_parsed(self):
        msgs = [(7, b"Subject: x\r\n\r\n(paren) {3}\r\n")]
        md = os.path.join(self.tmp, "order")
        r = self.run_fake(FakeImap([(1, msgs)]), md)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stored(md), [msgs[0][1]])
        self.assertIn(b"deleted 1 on the server", r.stdout)

    def test_hostile_server(self):
        """An oversized literal (over [limits] max_message_size, 25M by
        default) is refused when announced; a malformed response ends the
        session: a clear error and nothing in the Maildir, not even tmp/."""
        msgs = [(1, b"Subject: x\r\n\r\nx\r\n")]
        cases = (
            (b"* 1 FETCH (UID 1 BODY[] {999999999999}\r\n",
             b"postoffice fetch: the server sent a literal of 999999999999 bytes during UID FETCH, "
             b"over the limit of 26214400 bytes\n"),
            (b"* 1 FETCH (UID 1 BODY[] {10}\r\n0123456789\r\n",
             b"postoffice fetch: malformed response from the server during UID FETCH: "),
            (b"* 1 FETCH (UID 1 BODY[] \"unterminated)\r\nF9 OK done\r\n",
             b"postoffice fetch: malformed response from the server during UID FETCH: "),
            (b"* 1 FETCH (UID 1 BODY[] {5}\r\nabc",
             b"postoffice fetch: connection closed by the server during UID FETCH"),
            (b"* 1 FETCH (UID 1 " + b"x" * 9000 + b")\r\n",
             b"postoffice fetch: line too long from the server (over 8192 bytes) during UID FETCH"),
        )
        for reply, error in cases:
            md = os.path.join(self.tmp, "hostile")
            shutil.rmtree(md, ignore_errors=True)
            r = self.run_fake(FakeImap([(1, msgs)], fetch_reply=reply), md)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(error, r.stderr)
            self.assertEqual(maildir_files(md), [])
            self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])


if __name__ == "__main__":
    unittest.main()
