"""Round trips between python3's `email` package and postoffice's MIME
library: messages python builds must read the same in `postoffice show
--json` (headers, body text, byte-identical attachments), and messages
`postoffice send --dry-run` composes must read the same in python."""
import email
import email.policy
import email.utils
import json
import os
import shutil
import subprocess
import tempfile
import unittest
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("POSTOFFICE_BIN", os.path.join(ROOT, "build", "postoffice"))


def show(path, extract=None):
    args = [BIN, "show", "--json", path]
    if extract:
        args[2:2] = ["--extract", extract]
    out = subprocess.run(args, check=True, capture_output=True, timeout=30).stdout
    return json.loads(out.decode("utf-8"))


def crlf_text(s):
    return s.replace("\r\n", "\n")


class MimeRoundTripTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="po-mime-")
        self.extract = os.path.join(self.dir, "out")
        os.mkdir(self.extract)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, msg, policy=email.policy.SMTP):
        path = os.path.join(self.dir, "msg.eml")
        with open(path, "wb") as f:
            f.write(msg.as_bytes(policy=policy))
        return path

    def check_headers(self, msg, got):
        for name, key in (("Subject", "subject"), ("From", "from"), ("To", "to"), ("Cc", "cc"),
                          ("Date", "date"), ("Message-ID", "message_id")):
            if msg[name] is None:
                self.assertIsNone(got["headers"][key], name)
            elif name == "Date":
                # As dates: python writes "06 Dec", show keeps the file's "6 Dec".
                self.assertEqual(msg[name].datetime,
                                 email.utils.parsedate_to_datetime(got["headers"][key]), name)
            else:
                self.assertEqual(" ".join(str(msg[name]).split()), " ".join(got["headers"][key].split()), name)

    def extracted(self, got):
        files = {}
        for p in got["parts"]:
            if "extracted" in p:
                with open(p["extracted"], "rb") as f:
                    files[p["filename"]] = f.read()
        return files

    def test_modern_message(self):
        msg = EmailMessage()
        msg["From"] = "Jörg Müller <joerg@example.org>"
        msg["To"] = "\"Doe, Jane\" <jane@example.com>, Bob <bob@example.com>"
        msg["Cc"] = "Zoë <zoe@example.net>"
        msg["Subject"] = "Grüße aus Köln — a subject long enough to be folded by the generator, surely"
        msg["Date"] = "Tue, 14 Nov 2023 22:13:20 +0000"
        msg["Message-ID"] = "<abc.123@example.org>"
        body = "Hallo Jörg,\n\nthe report is attached. Ünïcödé ✓\n" + "x" * 120 + "\n"
        msg.set_content(body)
        msg.add_alternative("<p>Hallo <b>Jörg</b></p>\n", subtype="html")
        blobs = {
            "résumé final.pdf": bytes(range(256)) * 40,
            "data.bin": os.urandom(5000),
            "日本語のファイル名.txt": "テキスト\n".encode("utf-8"),
        }
        for name, data in blobs.items():
            msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
        got = show(self.write(msg), self.extract)
        self.check_headers(msg, got)
        self.assertEqual(crlf_text(got["text"]), body)
        self.assertEqual(crlf_text(got["html"]), "<p>Hallo <b>Jörg</b></p>\n")
        self.assertEqual(self.extracted(got), blobs)
        sections = [p["section"] for p in got["parts"]]
        self.assertEqual(sections, ["", "1", "1.1", "1.2", "2", "3", "4"])

    def test_legacy_message(self):
        outer = MIMEMultipart("mixed")
        outer["Subject"] = "=?iso-8859-1?q?caf=E9?= =?iso-8859-1?q?_cr=E8me?="
        outer["From"] = "plain@example.org"
        outer["To"] = "undisclosed-recipients:;"
        text = MIMEText("caf\xe9 au lait\nsecond line\n", "plain", "iso-8859-1")
        outer.attach(text)
        att = MIMEApplication(b"\x00\x01\x02binary\xff" * 100)
        att.add_header("Content-Disposition", "attachment", filename=("utf-8", "", "naïve ünïcode name.dat"))
        outer.attach(att)
        evil = MIMEApplication(b"evil")
        evil.add_header("Content-Disposition", "attachment", filename="../../etc/.passwd")
        outer.attach(evil)
        dup = MIMEApplication(b"second")
        dup.add_header("Content-Disposition", "attachment", filename="passwd")
        outer.attach(dup)
        got = show(self.write(outer, email.policy.compat32), self.extract)
        self.assertEqual(got["headers"]["subject"], "café crème")
        self.assertEqual(crlf_text(got["text"]), "caf\xe9 au lait\nsecond line\n")
        names = sorted(os.listdir(self.extract))
        self.assertEqual(names, sorted(["naïve ünïcode name.dat", "passwd", "passwd-1"]))
        with open(os.path.join(self.extract, "naïve ünïcode name.dat"), "rb") as f:
            self.assertEqual(f.read(), b"\x00\x01\x02binary\xff" * 100)
        with open(os.path.join(self.extract, "passwd"), "rb") as f:
            self.assertEqual(f.read(), b"evil")

    def test_nested_forward(self):
        inner = EmailMessage()
        inner["From"] = "a@example.org"
        inner["Subject"] = "inner"
        inner.set_content("inner body\n")
        inner.add_attachment(b"PNGDATA" * 50, maintype="image", subtype="png", filename="pic.png")
        outer = EmailMessage()
        outer["From"] = "b@example.org"
        outer["Subject"] = "Fwd: inner"
        outer.set_content("see below\n")
        outer.add_attachment(inner)
        path = self.write(outer)
        got = show(path, self.extract)
        types = [(p["section"], p["type"]) for p in got["parts"]]
        # IMAP section numbers (RFC 3501 6.4.5): the encapsulated message's
        # multipart has no number of its own; its body is 2.TEXT.
        self.assertEqual(types, [("", "multipart/mixed"), ("1", "text/plain"), ("2", "message/rfc822"),
                                 ("2.TEXT", "multipart/mixed"), ("2.1", "text/plain"), ("2.2", "image/png")])
        self.assertEqual(self.extracted(got)["pic.png"], b"PNGDATA" * 50)
        out = subprocess.run([BIN, "show", path], check=True, capture_output=True, timeout=30).stdout.decode()
        listed = [line.split()[0] for line in out.split("parts:\n", 1)[1].splitlines() if line.strip()]
        self.assertEqual(listed, ["-", "1", "2", "2.TEXT", "2.1", "2.2"])

    def encoded_forward(self, cte):
        """A forward whose message/rfc822 part the forwarding client
        encoded (RFC 2046 5.2.1 forbids it; clients do it)."""
        inner = EmailMessage()
        inner["From"] = "a@example.org"
        inner["Subject"] = "inner Grüße"
        inner.set_content("inner body ✓\n")
        blob = os.urandom(3000)
        inner.add_attachment(blob, maintype="image", subtype="png", filename="pic.png")
        raw = inner.as_bytes(policy=email.policy.SMTP)
        if cte == "base64":
            import base64
            enc = base64.encodebytes(raw).replace(b"\n", b"\r\n")
        else:
            import quopri
            enc = quopri.encodestring(raw).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        msg = (b"From: b@example.org\r\nSubject: Fwd: inner\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n--OUT\r\n"
               b"Content-Type: text/plain\r\n\r\nsee below\r\n--OUT\r\n"
               b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: " + cte.encode() +
               b"\r\n\r\n" + enc + b"\r\n--OUT--\r\n")
        path = os.path.join(self.dir, "fwd.eml")
        with open(path, "wb") as f:
            f.write(msg)
        return path, blob

    def test_encoded_forward(self):
        for cte in ("base64", "quoted-printable"):
            path, blob = self.encoded_forward(cte)
            out = os.path.join(self.dir, cte)
            os.mkdir(out)
            got = show(path, out)
            types = [(p["section"], p["type"]) for p in got["parts"]]
            self.assertEqual(types, [("", "multipart/mixed"), ("1", "text/plain"), ("2", "message/rfc822"),
                                     ("2.TEXT", "multipart/mixed"), ("2.1", "text/plain"),
                                     ("2.2", "image/png")], cte)
            parts = {p["section"]: p for p in got["parts"]}
            self.assertEqual(parts["2.1"]["text"].replace("\r\n", "\n"), "inner body ✓\n")
            with open(parts["2.2"]["extracted"], "rb") as f:
                self.assertEqual(f.read(), blob, cte)

    def test_text_output(self):
        msg = EmailMessage()
        msg["Subject"] = "plain text listing"
        msg.set_content("hi\n")
        out = subprocess.run([BIN, "show", self.write(msg)], check=True, capture_output=True, timeout=30)
        self.assertIn(b"Subject: plain text listing", out.stdout)
        self.assertIn(b"text/plain", out.stdout)

    def test_send_dry_run_reverse(self):
        help_ = subprocess.run([BIN, "send", "--help"], capture_output=True, timeout=30)
        if help_.returncode != 0 or b"--dry-run" not in help_.stdout + help_.stderr:
            self.skipTest("postoffice send --dry-run does not exist yet")
        att = os.path.join(self.dir, "r\u00e9sum\u00e9.bin")
        data = os.urandom(3000)
        with open(att, "wb") as f:
            f.write(data)
        proc = subprocess.run([BIN, "send", "--dry-run", "--from", "J\u00f6rg <j@example.org>",
                               "--to", "bob@example.com", "--subject", "Gr\u00fc\u00dfe", "--attach", att],
                              input="body text \u2713\n".encode(), capture_output=True, timeout=30)
        if proc.returncode != 0:
            self.skipTest("postoffice send --dry-run options differ: %s" % proc.stderr.decode(errors="replace"))
        msg = email.message_from_bytes(proc.stdout, policy=email.policy.default)
        self.assertEqual(str(msg["Subject"]), "Gr\u00fc\u00dfe")
        self.assertIn("body text \u2713", msg.get_body(("plain",)).get_content())
        atts = list(msg.iter_attachments())
        self.assertEqual(atts[0].get_filename(), "r\u00e9sum\u00e9.bin")
        self.assertEqual(atts[0].get_content(), data)

    # ---- postoffice send --dry-run, read by python ----
    def test_send_dry_run_full(self):
        """Every part of the composer against python's parser: folded UTF-8
        subject, display names, Cc without Bcc, text needing
        quoted-printable, HTML with inline images, several attachments."""
        body = ("Grüße ✓\nFrom the start of a line\n" + "lang " * 40 + "\n"
                "trailing space \n=equals= and a tab\t\n.\n..dots\nlast line without newline")
        html = '<p>Grüße <img src="cid:logo.png"></p>\n'
        files = {
            "logo.png": os.urandom(2000),
            "bericht über 東京.pdf": os.urandom(70000),
            "crlf.bin": b"\r\n\r\n.\r\nFrom x\r\n\x00\xff" * 100,
            "empty.dat": b"",
            "notes.txt": "no final newline: äöü".encode(),
        }
        for name, data in files.items():
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)
        with open(os.path.join(self.dir, "page.html"), "w") as f:
            f.write(html)
        subject = "Grüße aus Köln — 東京 ✓" + " ein recht langer Betreff" * 4
        args = [BIN, "send", "--dry-run", "--from", "Jörg Müller <joerg@example.org>",
                "--to", '"Doe, Jane" <jane@example.com>, bob@example.com', "--cc", "Zoë <zoe@example.net>",
                "--bcc", "hidden@example.org", "--subject", subject,
                "--html", os.path.join(self.dir, "page.html"),
                "--inline", os.path.join(self.dir, "logo.png")]
        for name in ("bericht über 東京.pdf", "crlf.bin", "empty.dat", "notes.txt"):
            args += ["--attach", os.path.join(self.dir, name)]
        proc = subprocess.run(args, input=body.encode(), capture_output=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        raw = proc.stdout
        for line in raw.split(b"\r\n"):
            self.assertLessEqual(len(line), 78, line)
            self.assertNotIn(b"\n", line)
            self.assertTrue(all(b < 0x80 for b in line), line)
        self.assertNotIn(b"hidden@example.org", raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg["Subject"], subject)
        self.assertEqual(msg["From"], "Jörg Müller <joerg@example.org>")
        self.assertEqual([a.addr_spec for a in msg["To"].addresses], ["jane@example.com", "bob@example.com"])
        self.assertEqual(msg["To"].addresses[0].display_name, "Doe, Jane")
        self.assertEqual(msg["Cc"], "Zoë <zoe@example.net>")
        self.assertIsNone(msg["Bcc"])
        self.assertIsNotNone(msg["Date"].datetime)
        self.assertRegex(msg["Message-ID"], r"^<[^<>@ ]+@example\.org>$")
        self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        # The composer ends the text with a line end, as mutt and python do.
        self.assertEqual(msg.get_body(("plain",)).get_content().replace("\r\n", "\n"), body + "\n")
        got_html = msg.get_body(("html",))
        related = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
        self.assertEqual(len(related), 1)
        img = [p for p in related[0].iter_parts() if p.get_content_type() == "image/png"][0]
        cid = img["Content-ID"].strip("<>")
        self.assertEqual(got_html.get_content().replace("\r\n", "\n"), html.replace("cid:logo.png", "cid:" + cid))
        self.assertEqual(img.get_content(), files["logo.png"])
        atts = {a.get_filename(): a for a in msg.iter_attachments()}
        self.assertEqual(sorted(atts), sorted(n for n in files if n != "logo.png"))
        for name, part in atts.items():
            self.assertEqual(part.get_payload(decode=True), files[name], name)
        self.assertEqual(atts["notes.txt"].get_content_type(), "text/plain")
        self.assertEqual(atts["bericht über 東京.pdf"].get_content_type(), "application/pdf")

    # ---- mutt's messages, read by postoffice show and by python ----
    def compare_with_python(self, path, expect_text=None, expect_files=None):
        """postoffice show --json and python's email package agree on the
        headers, the text and the attachments of the file."""
        got = show(path, self.extract)
        with open(path, "rb") as f:
            msg = email.message_from_bytes(f.read(), policy=email.policy.default)
        self.check_headers(msg, got)
        body = msg.get_body(("plain",))
        py_text = body.get_content().replace("\r\n", "\n")
        self.assertEqual(got["text"].replace("\r\n", "\n"), py_text)
        if expect_text is not None:
            self.assertEqual(py_text, expect_text)
        py_files = {p.get_filename(): p.get_payload(decode=True) for p in msg.walk()
                    if p.get_content_disposition() == "attachment"}
        self.assertEqual(self.extracted(got), py_files)
        if expect_files is not None:
            self.assertEqual(py_files, expect_files)
        return got, msg

    def mutt(self, subject, attachments, body, *settings):
        if shutil.which("mutt") is None:
            self.skipTest("mutt is not installed")
        home = os.path.join(self.dir, "home")
        os.makedirs(home, exist_ok=True)
        out = os.path.join(self.dir, "mutt.eml")
        script = os.path.join(self.dir, "sendmail.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\ncat > '%s'\n" % out)
        os.chmod(script, 0o755)
        args = ["mutt", "-n", "-F", "/dev/null", "-e", 'set sendmail="%s"' % script,
                "-e", "set charset=utf-8", "-e", 'set from="Jörg Müller <joerg@example.org>"',
                "-e", "set use_from=yes"]
        for s_ in settings:
            args += ["-e", s_]
        args += ["-s", subject]
        for a in attachments:
            args += ["-a", a]
        args += ["--", "Bob <bob@example.org>"]
        env = dict(os.environ, HOME=home, TMPDIR=self.dir, LC_ALL="C.UTF-8")
        env.pop("MAIL", None)
        r = subprocess.run(args, input=body, capture_output=True, timeout=60, env=env, cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out

    def test_mutt_utf8_attachments(self):
        files = {"Prüf 東京.bin": os.urandom(50000), "liste.txt": "eins\nzwei ü\n".encode(),
                 "plain.csv": b"a,b\r\n1,2\r\n"}
        paths = []
        for name, data in files.items():
            p = os.path.join(self.dir, name)
            with open(p, "wb") as f:
                f.write(data)
            paths.append(p)
        subject = "Grüße aus Köln — 東京 ✓"
        body = "Hallo Bob ✓\nzweite Zeile\n"
        path = self.mutt(subject, paths, body.encode(), "set send_charset=utf-8")
        got, msg = self.compare_with_python(path, expect_text=body, expect_files=files)
        self.assertEqual(got["headers"]["subject"], subject)
        self.assertEqual(got["headers"]["from"], "Jörg Müller <joerg@example.org>")

    def test_mutt_latin1_quoted_printable(self):
        att = os.path.join(self.dir, "données.bin")
        data = bytes(range(256)) * 8
        with open(att, "wb") as f:
            f.write(data)
        body = "café crème à la française\n" + "x" * 100 + " \nend\n"
        path = self.mutt("café", [att], body.encode(), 'set send_charset="us-ascii:iso-8859-1:utf-8"',
                         "set allow_8bit=no")
        with open(path, "rb") as f:
            raw = f.read()
        self.assertIn(b"iso-8859-1", raw.lower())
        got, msg = self.compare_with_python(path, expect_text=body, expect_files={"données.bin": data})
        self.assertEqual(got["headers"]["subject"], "café")
        text = [p for p in got["parts"] if p["type"] == "text/plain"][0]
        self.assertEqual(text["encoding"], "quoted-printable")
        self.assertEqual(text["charset"].lower(), "iso-8859-1")


if __name__ == "__main__":
    unittest.main()
