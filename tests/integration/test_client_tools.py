"""The client tools end to end (issue 6): `postoffice send` through the
submission port (STARTTLS + AUTH), `postoffice fetch` over POP3 (STLS and
POP3S) into a Maildir, and `postoffice show --extract/--json` on what
arrived: the decoded subject and the attachment bytes are the originals.
Also `postoffice fetch` on its own: AUTH PLAIN or USER/PASS, --keep and
UIDL state, deletion only after the local copy is durable, and a clear
error with a non-zero exit for every failure."""
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import unittest

from fetchtest import FakeServer, FetchTestCase, maildir_files, stored
from dnsserver import DnsServer
from harness import BIN, DeadPort, wait_for

SUBJECT = "Grüße aus Köln — 東京 ✓"


class FakePop3(FakeServer):
    """A minimal plain-text POP3 server in a thread, for what the real one
    does not do (no CAPA, no SASL, no STLS) and to watch the client: at
    each DELE it records whether the message is already in the Maildir."""

    def __init__(self, messages, capa=("USER", "UIDL"), maildir=None, password="pw",
                 greeting="+OK fake ready", retr_cut=None):
        self.messages = messages          # [(uidl, bytes with CRLF)]
        self.capa = capa                  # None: CAPA answers -ERR
        self.maildir = maildir
        self.password = password
        self.greeting = greeting
        self.retr_cut = retr_cut or {}    # message number: bytes of RETR's answer sent before closing
        self.dele_seen_locally = []
        super().__init__()

    def stored_locally(self, data):
        for path in maildir_files(self.maildir):
            with open(path, "rb") as f:
                if f.read() == data:
                    return True
        return False

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(30)
        f = conn.makefile("rwb")

        def say(text):
            f.write(text.encode() + b"\r\n")
            f.flush()
        say(self.greeting)
        user = None
        for _ in range(1000):
            line = f.readline()
            if not line:
                break
            cmd = line.decode().rstrip("\r\n")
            self.commands.append(cmd)
            verb, _, arg = cmd.partition(" ")
            verb = verb.upper()
            if verb == "CAPA":
                if self.capa is None:
                    say("-ERR unknown command")
                else:
                    say("+OK\r\n" + "\r\n".join(self.capa) + "\r\n.")
            elif verb == "USER":
                user = arg
                say("+OK")
            elif verb == "PASS":
                say("+OK" if user and arg == self.password else "-ERR [AUTH] wrong")
            elif verb == "AUTH":
                import base64
                mech, _, ir = arg.partition(" ")
                ok = base64.b64decode(ir) == b"\0" + b"u@example.org\0" + self.password.encode()
                say("+OK" if ok else "-ERR [AUTH] wrong")
            elif verb == "STLS":
                say("-ERR no TLS here")
            elif verb == "UIDL":
                say("+OK\r\n" + "".join("%d %s\r\n" % (i + 1, u) for i, (u, _) in
                                        enumerate(self.messages)) + ".")
            elif verb == "RETR":
                data = self.messages[int(arg) - 1][1]
                lines = data.split(b"\r\n")
                if lines and lines[-1] == b"":
                    lines.pop()
                stuffed = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)
                answer = b"+OK\r\n" + stuffed + b".\r\n"
                cut = self.retr_cut.get(int(arg))
                f.write(answer if cut is None else answer[:cut])
                f.flush()
                if cut is not None:
                    break
            elif verb == "DELE":
                data = self.messages[int(arg) - 1][1]
                self.dele_seen_locally.append(self.stored_locally(data))
                say("+OK")
            elif verb == "QUIT":
                say("+OK bye")
                break
            else:
                say("-ERR what")
        f.close()
        conn.close()


class ClientTools(FetchTestCase):
    USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
    TMP_PREFIX = "po-client-"

    # ---- helpers ----
    def send(self, *args, body=b"", sender="alice"):
        r = self.srv.cli("send", "--from", "Alice Ünal <%s@example.org>" % sender,
                         "--server", "127.0.0.1:%d" % self.srv.port("submission"), "--starttls",
                         "--user", "%s@example.org" % sender, "--password-file", self.pw[sender],
                         *args, input=body)
        self.assertRegex(r.stdout.decode(), r"^250", r.stderr)
        return r

    def fetch(self, user, maildir, *args, check=True, password_file=None, service="pop3"):
        mode = ["--tls"] if service == "pop3s" else []
        r = self.srv.cli("fetch", "--server", "127.0.0.1:%d" % self.srv.port(service),
                         "--user", "%s@example.org" % user,
                         "--password-file", password_file or self.pw[user],
                         "--maildir", maildir, *mode, *args, check=check)
        return r

    def show(self, path, extract=None):
        args = [BIN, "show", "--json", path]
        if extract:
            args[2:2] = ["--extract", extract]
        r = subprocess.run(args, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout.decode("utf-8"))

    def fetch_one(self, user, service="pop3"):
        """Fetches user's mailbox into a new Maildir; returns the one message's path."""
        md = os.path.join(self.tmp, user + "-" + service)
        r = self.fetch(user, md, service=service)
        self.assertIn(b"fetched 1 messages", r.stdout)
        files = maildir_files(md)
        self.assertEqual(len(files), 1)
        self.assertEqual(self.srv.maildir_messages("%s@example.org" % user), [])
        return files[0]

    def extracted(self, got):
        files = {}
        for p in got["parts"]:
            if "extracted" in p:
                with open(p["extracted"], "rb") as f:
                    files[p["filename"]] = f.read()
        return files

    # ---- send → fetch → show ----
    def roundtrip_utf8_binary(self, user, service):
        blob = os.urandom(300 * 1024 + 17)
        name = "Prüfbericht 東京 ✓.bin"
        att = self.file(name, blob)
        body = "Hallo Bob,\n\nanbei die Daten. Ünïcödé ✓\n".encode()
        self.send("--to", "%s@example.org" % user, "--subject", SUBJECT, "--attach", att, body=body)
        path = self.fetch_one(user, service)
        out = os.path.join(self.tmp, "extract-" + service)
        os.mkdir(out)
        got = self.show(path, out)
        self.assertEqual(got["headers"]["subject"], SUBJECT)
        self.assertEqual(got["headers"]["from"], "Alice Ünal <alice@example.org>")
        self.assertEqual(got["text"].replace("\r\n", "\n"), body.decode())
        self.assertEqual(self.extracted(got), {name: blob})
        self.assertEqual(os.listdir(out), [name])
        with open(os.path.join(out, name), "rb") as f:
            self.assertEqual(f.read(), blob)
        # The text listing decodes the subject too.
        r = subprocess.run([BIN, "show", path], capture_output=True, timeout=30)
        self.assertIn(("Subject: " + SUBJECT).encode(), r.stdout)
        self.assertIn(name.encode(), r.stdout)

    def test_utf8_subject_binary_attachment_stls(self):
        self.roundtrip_utf8_binary("bob", "pop3")

    def test_utf8_subject_binary_attachment_pop3s(self):
        self.roundtrip_utf8_binary("carol", "pop3s")

    def test_html_inline_images_and_attachments(self):
        logo = os.urandom(4000)
        photo = os.urandom(9000)
        html = ('<html><body><p>Grüße</p><img src="cid:logo.png"><br>'
                '<img src="cid:foto 1.jpg"></body></html>\n')
        self.file("logo.png", logo)
        self.file("foto 1.jpg", photo)
        a1 = self.file("report.pdf", os.urandom(20000))
        a2 = self.file("notes é.txt", "zweite Datei äöü\n".encode())
        hp = self.file("page.html", html.encode())
        self.send("--to", "dave@example.org", "--subject", "HTML " + SUBJECT, "--html", hp,
                  "--inline", os.path.join(self.tmp, "logo.png"),
                  "--inline", os.path.join(self.tmp, "foto 1.jpg"),
                  "--attach", a1, "--attach", a2, body=b"plain alternative\n")
        path = self.fetch_one("dave", "pop3s")
        out = os.path.join(self.tmp, "x")
        os.mkdir(out)
        got = self.show(path, out)
        tree = [(p["section"], p["type"]) for p in got["parts"]]
        self.assertEqual(tree, [("", "multipart/mixed"), ("1", "multipart/alternative"),
                                ("1.1", "text/plain"), ("1.2", "multipart/related"),
                                ("1.2.1", "text/html"), ("1.2.2", "image/png"),
                                ("1.2.3", "image/jpeg"), ("2", "application/pdf"),
                                ("3", "text/plain")])
        self.assertEqual(got["text"].replace("\r\n", "\n"), "plain alternative\n")
        # Every cid: reference in the HTML names an inline part's Content-ID.
        by_section = {p["section"]: p for p in got["parts"]}
        for sec, data in (("1.2.2", logo), ("1.2.3", photo)):
            cid = by_section[sec]["content_id"].strip("<>")
            self.assertIn('src="cid:%s"' % cid, got["html"])
            self.assertEqual(by_section[sec]["disposition"], "inline")
            with open(by_section[sec]["extracted"], "rb") as f:
                self.assertEqual(f.read(), data)
        self.assertNotIn("cid:logo.png", got["html"])
        with open(a1, "rb") as f:
            self.assertEqual(self.extracted(got)["report.pdf"], f.read())
        self.assertEqual(self.extracted(got)["notes é.txt"], "zweite Datei äöü\n".encode())
        # python's email package sees the same structure.
        with open(path, "rb") as f:
            m = email.message_from_bytes(f.read(), policy=email.policy.default)
        self.assertEqual(m["Subject"], "HTML " + SUBJECT)
        self.assertIn("Grüße", m.get_body(("html",)).get_content())
        self.assertEqual(sorted(a.get_filename() for a in m.iter_attachments()),
                         ["notes é.txt", "report.pdf"])

    def test_cc_and_bcc(self):
        self.send("--to", "Erin <erin@example.org>", "--cc", "Frank Fröhlich <frank@example.org>",
                  "--bcc", "carol@example.org", "--subject", "cc and bcc", body=b"to three\n")
        seen = {}
        for user in ("erin", "frank", "carol"):
            path = self.fetch_one(user)
            with open(path, "rb") as f:
                seen[user] = f.read()
        for user, data in seen.items():
            m = email.message_from_bytes(data, policy=email.policy.default)
            self.assertEqual(m["Subject"], "cc and bcc", user)
            self.assertEqual(str(m["To"]), "Erin <erin@example.org>")
            self.assertEqual(str(m["Cc"]), "Frank Fröhlich <frank@example.org>")
            self.assertIsNone(m["Bcc"], user)
            self.assertNotIn(b"carol@example.org", data.split(b"\r\n\r\n", 1)[0].replace(
                b"for <carol@example.org>", b""), user)
            self.assertEqual(m.get_content().replace("\r\n", "\n"), "to three\n")

    # ---- postoffice fetch ----
    def server_count(self, user):
        p = self.srv.pop3()
        try:
            p.stls(context=__import__("harness").tls_context())
            p.user("%s@example.org" % user)
            p.pass_(user + "pw")
            return p.stat()[0]
        finally:
            p.quit()

    def test_fetch_uses_auth_plain(self):
        self.deliver("bob", "sasl")
        md = os.path.join(self.tmp, "md")
        r = self.fetch("bob", md)
        self.assertIn(b"fetched 1 messages", r.stdout)
        self.assertRegex(self.srv.log_text(), r"pop3 login session=\S+ user=bob@example.org method=plain")
        with open(maildir_files(md)[0], "rb") as f:
            data = f.read()
        self.assertIn(b"\r\n.dot line\r\n", data)
        self.assertEqual(self.server_count("bob"), 0)

    def test_fetch_keep_rerun_fetches_only_new(self):
        self.deliver("erin", "keep", 2)
        md = os.path.join(self.tmp, "md")
        self.assertIn(b"fetched 2 messages", self.fetch("erin", md, "--keep").stdout)
        self.assertIn(b"fetched 0 messages", self.fetch("erin", md, "--keep").stdout)
        self.assertEqual(len(maildir_files(md)), 2)
        self.deliver("erin", "later")
        r = self.fetch("erin", md, "--keep")
        self.assertIn(b"fetched 1 messages", r.stdout)
        self.assertIn(b"deleted 0", r.stdout)
        self.assertEqual(len(maildir_files(md)), 3)
        self.assertEqual(self.server_count("erin"), 3)
        # Without --keep: nothing is fetched twice, all three leave the server.
        r = self.fetch("erin", md)
        self.assertIn(b"fetched 0 messages", r.stdout)
        self.assertIn(b"deleted 3", r.stdout)
        self.assertEqual(len(maildir_files(md)), 3)
        self.assertEqual(self.server_count("erin"), 0)
        subjects = set()
        for path in maildir_files(md):
            with open(path, "rb") as f:
                subjects.add(email.message_from_bytes(f.read())["Subject"])
        self.assertEqual(subjects, {"keep 0", "keep 1", "later 0"})

    def test_fetch_mbox(self):
        self.deliver("frank", "mbox", 2)
        mbox = os.path.join(self.tmp, "inbox.mbox")
        r = self.srv.cli("fetch", "--server", "127.0.0.1:%d" % self.srv.port("pop3s"), "--tls",
                         "--user", "frank@example.org", "--password-file", self.pw["frank"],
                         "--mbox", mbox)
        self.assertIn(b"fetched 2 messages", r.stdout)
        import mailbox
        subjects = sorted(m["Subject"] for m in mailbox.mbox(mbox))
        self.assertEqual(subjects, ["mbox 0", "mbox 1"])

    def fake_messages(self):
        return [("u1", b"Subject: one\r\n\r\n.leading dot\r\nbody\r\n"),
                ("u2", b"Subject: two\r\n\r\n" + b"x" * 5000 + b"\r\n")]

    def run_fake_capa(self, capa, *args, password="pw"):
        md = os.path.join(self.tmp, "fake")
        fake = FakePop3(self.fake_messages(), capa=capa, maildir=md)
        r, = self.run_fake(fake, md, *args, password=password)
        return r, fake, md

    def test_fetch_falls_back_to_user_pass(self):
        for capa in (("USER", "UIDL", "SASL LOGIN"), None):
            r, fake, md = self.run_fake_capa(capa)
            self.assertEqual(r.returncode, 0, r.stderr)
            verbs = [c.split(" ")[0] for c in fake.commands]
            self.assertEqual(verbs[:3], ["CAPA", "USER", "PASS"], capa)
            self.assertNotIn("AUTH", verbs)
            self.assertEqual(stored(md), sorted(m for _, m in self.fake_messages()))
            shutil.rmtree(md)

    def test_fetch_auth_plain_on_fake(self):
        r, fake, md = self.run_fake_capa(("UIDL", "SASL LOGIN PLAIN"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(fake.commands[1].startswith("AUTH PLAIN "), fake.commands)
        self.assertNotIn("USER", [c.split(" ")[0] for c in fake.commands])

    def test_fetch_deletes_only_after_local_copy(self):
        r, fake, md = self.run_fake_capa(("USER", "UIDL"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(fake.dele_seen_locally, [True, True])
        self.assertIn("QUIT", fake.commands)

    @unittest.skipIf(shutil.which("strace") is None, "strace is not installed")
    def test_fetch_fsyncs_before_dele(self):
        md = os.path.join(self.tmp, "fake")
        trace = self.run_traced(FakePop3(self.fake_messages(), maildir=md), md,
                                "fsync,fdatasync,rename,renameat,renameat2,link,linkat,write,writev,sendto")
        # Each DELE is sent after: the file's fsync, its rename or link
        # into new/, and the fsync of new/ (in that order).
        events = []
        for line in trace:
            if "fsync(" in line or "fdatasync(" in line:
                events.append("sync")
            elif ("rename" in line or "link" in line) and "/new/" in line:
                events.append("rename")
            elif "DELE " in line:
                events.append("dele")
        self.assertEqual(events.count("dele"), 2, events)
        start = 0
        for _ in range(2):
            d = events.index("dele", start)
            window = events[start:d]
            self.assertIn("rename", window, events)
            r_at = window.index("rename")
            self.assertIn("sync", window[:r_at], events)
            self.assertIn("sync", window[r_at:], events)
            start = d + 1

    def test_fetch_failures_are_clear(self):
        md = os.path.join(self.tmp, "md")
        # wrong password
        bad = self.file("bad.pw", b"wrong\n")
        for service in ("pop3", "pop3s"):
            r = self.fetch("bob", md, check=False, password_file=bad, service=service)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(b"postoffice fetch: login failed", r.stderr)
            self.assertIn(b"Authentication failed", r.stderr)
        # server down
        dead = DeadPort()
        self.addCleanup(dead.close)
        port = dead.port
        r = self.srv.cli("fetch", "--server", "127.0.0.1:%d" % port, "--user", "bob@example.org",
                         "--password-file", self.pw["bob"], "--maildir", md, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"postoffice fetch: cannot connect to 127.0.0.1:%d" % port, r.stderr)
        self.assertIn(b"refused", r.stderr)
        # TLS failure: implicit TLS against the plain-text port
        r = self.srv.cli("fetch", "--server", "127.0.0.1:%d" % self.srv.port("pop3"), "--tls",
                         "--user", "bob@example.org", "--password-file", self.pw["bob"],
                         "--maildir", md, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"postoffice fetch: TLS handshake with 127.0.0.1:%d failed" % self.srv.port("pop3"),
                      r.stderr)
        self.assertNotIn(b"error:00000000", r.stderr)
        # STLS refused by a server without TLS
        r, fake, md2 = self.run_fake_capa(("USER",), "--starttls")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"refused STLS", r.stderr)
        self.assertNotIn("USER", [c.split(" ")[0] for c in fake.commands])
        # wrong password on the fake (USER/PASS path)
        r, fake, md2 = self.run_fake_capa(("USER",), password="nope")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"postoffice fetch: login failed", r.stderr)
        self.assertEqual(maildir_files(md), [])

    def fetch_fake(self, md, messages, **fake_args):
        """Runs fetch --plain against a FakePop3(messages, **fake_args)."""
        fake = FakePop3(messages, maildir=md, **fake_args)
        r, = self.run_fake(fake, md)
        return r, fake

    def test_fetch_server_closes_mid_retr(self):
        """The server drops the connection in the middle of the second
        message: a clear error, the first message stored once, nothing of
        the second (not even in tmp/).  The server still has all three (no
        QUIT: RFC 1939 section 6), and the rerun fetches the other two
        without storing the first again."""
        msgs = [("u1", b"Subject: one\r\n\r\nfirst\r\n"),
                ("u2", b"Subject: two\r\n\r\n" + b"y" * 20000 + b"\r\n"),
                ("u3", b"Subject: three\r\n\r\nthird\r\n")]
        md = os.path.join(self.tmp, "cut")
        r, fake = self.fetch_fake(md, msgs, retr_cut={2: 5000})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"postoffice fetch: connection closed by the server during RETR\n", r.stderr)
        self.assertEqual(stored(md), [msgs[0][1]])
        self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])
        self.assertEqual([c for c in fake.commands if c.split(" ")[0] in ("RETR", "DELE", "QUIT")],
                         ["RETR 1", "DELE 1", "RETR 2"])
        r, fake = self.fetch_fake(md, msgs)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"fetched 2 messages", r.stdout)
        self.assertIn(b"deleted 3 on the server", r.stdout)
        self.assertEqual([c for c in fake.commands if c.startswith("RETR")], ["RETR 2", "RETR 3"])
        self.assertEqual(stored(md), sorted(m for _, m in msgs))

    def test_fetch_line_limits(self):
        """A status line over the limit (8192 bytes) ends the session at
        once with a clear error; the lines of a message have no limit of
        their own: one of 700 KiB arrives intact."""
        msgs = [("w1", b"Subject: wide\r\n\r\n" + b"z" * (700 * 1024) + b"\r\n.dot\r\n")]
        md = os.path.join(self.tmp, "wide")
        r, fake = self.fetch_fake(md, msgs, greeting="+OK " + "x" * 9000)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"postoffice fetch: line too long from the server (over 8192 bytes) after greeting",
                      r.stderr)
        self.assertEqual(fake.commands, [])
        r, fake = self.fetch_fake(md, msgs)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stored(md), [msgs[0][1]])

    def test_fetch_verifies_a_named_server(self):
        """A server given by name, resolved through the [dns] resolver of
        the configuration (a responder of the test's): with implicit TLS
        and with STLS, a certificate that does not verify (the server's is
        self-signed) ends the session before the password is sent, and
        nothing is fetched; --insecure accepts it.  An unknown name fails
        clearly."""
        conf = self.named_server_config("pop.example.test")
        self.srv.add_user("gina@example.org", "ginapw")
        pw = self.file("gina.pw", b"ginapw\n")
        self.deliver("gina", "named")
        md = os.path.join(self.tmp, "named")

        def fetch(host, service, *args):
            return subprocess.run([BIN, "-c", conf, "fetch", "--server",
                                   "%s:%d" % (host, self.srv.port(service)), "--user",
                                   "gina@example.org", "--password-file", pw, "--maildir", md,
                                   *args], capture_output=True, timeout=60)
        self.assert_unverified_refused(lambda service, mode: fetch("pop.example.test", service, mode),
                                       "pop.example.test", (("pop3s", "--tls"), ("pop3", "--starttls")))
        self.assertEqual(maildir_files(md), [])
        self.assertNotRegex(self.srv.log_text(), r"pop3 login session=\S+ user=gina@example.org")
        self.assertEqual(self.server_count("gina"), 1)
        r = fetch("nx.example.test", "pop3s", "--tls")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"postoffice fetch: cannot resolve nx.example.test: ", r.stderr)
        r = fetch("pop.example.test", "pop3s", "--tls", "--insecure")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"fetched 1 messages", r.stdout)
        self.assertEqual(self.server_count("gina"), 0)

    def test_send_failures_are_clear(self):
        dead = DeadPort()
        self.addCleanup(dead.close)
        port = dead.port
        for args, expect in (
                (["--server", "127.0.0.1:%d" % port, "--starttls"], b"Connection refused"),
                (["--server", "127.0.0.1:%d" % self.srv.port("submission"), "--tls"], b"TLS"),
                (["--server", "127.0.0.1:%d" % self.srv.port("submission"), "--starttls",
                  "--user", "alice@example.org", "--password-file", self.pw["bob"]], b"535")):
            r = self.srv.cli("send", "--from", "alice@example.org", "--to", "bob@example.org",
                             "--subject", "never", *args, input=b"x\n", check=False)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"postoffice send: not sent via 127.0.0.1:", r.stderr)
            self.assertIn(expect, r.stderr)
            self.assertEqual(r.stdout, b"")

    def named_submission_config(self, smtp_host):
        """The server's configuration with [dns] resolver a responder of
        the test's that knows only smtp.example.test (first 127.0.0.2,
        where nothing listens, then 127.0.0.1), and [smtp] listen (where
        sendmail submits) smtp_host on the server's SMTP port."""
        dns = DnsServer()
        dns.add_a("smtp.example.test", "127.0.0.2")
        dns.add_a("smtp.example.test", "127.0.0.1")
        dns.start()
        self.addCleanup(dns.stop)
        with open(self.srv.config_path) as f:
            text = f.read()
        text, n = re.subn(r"(?m)^resolver = .*$", "resolver = %s" % dns.address, text)
        self.assertEqual(n, 1)
        text, n = re.subn(r"(\[smtp\]\n(?:[^\[\n].*\n)*?)listen = [^\n]*",
                          r"\g<1>listen = %s:%d" % (smtp_host, self.srv.port("smtp")), text)
        self.assertEqual(n, 1)
        return self.file("named-%s.conf" % smtp_host, text.encode())

    def test_send_and_sendmail_to_a_named_server(self):
        """`send` and `sendmail` resolve the submission host through the
        [dns] resolver of the configuration (a name only the test's
        responder knows) and go on to the next address when the first
        refuses the connection: the messages are delivered.  An unknown
        name fails clearly; sendmail then spools the message, which the
        queue runner delivers."""
        self.srv.add_user("hank@example.org", "hankpw")
        conf = self.named_submission_config("smtp.example.test")

        def send(host, subject):
            return subprocess.run([BIN, "-c", conf, "send", "--from", "alice@example.org",
                                   "--to", "hank@example.org", "--subject", subject, "--server",
                                   "%s:%d" % (host, self.srv.port("submission")), "--starttls",
                                   "--insecure", "--user", "alice@example.org", "--password-file",
                                   self.pw["alice"]], input=b"body\n", capture_output=True, timeout=60)
        r = send("smtp.example.test", "named send")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.decode(), r"^250")
        r = send("nx.example.test", "never sent")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"postoffice send: not sent via nx.example.test:%d: cannot resolve nx.example.test: "
                      % self.srv.port("submission"), r.stderr)
        self.assertEqual(r.stdout, b"")

        def sendmail(config, subject):
            return subprocess.run([BIN, "-c", config, "sendmail", "-f", "alice@example.org",
                                   "hank@example.org"], input=b"Subject: %s\n\nhello\n" % subject,
                                  capture_output=True, timeout=60)
        r = sendmail(conf, b"named sendmail")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(b"queued as", r.stderr)
        r = sendmail(self.named_submission_config("nx.example.test"), b"spooled sendmail")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"sendmail: not submitted via nx.example.test:%d: cannot resolve nx.example.test: "
                      % self.srv.port("smtp"), r.stderr)
        self.assertIn(b"queued as", r.stderr)

        def subjects():
            got = [m for _, m in self.srv.maildir_messages("hank@example.org")]
            return sorted(re.search(rb"Subject: ([^\r\n]*)", m).group(1) for m in got)
        want = [b"named send", b"named sendmail", b"spooled sendmail"]
        self.assertTrue(wait_for(lambda: subjects() == want, timeout=15), subjects())


if __name__ == "__main__":
    unittest.main()
