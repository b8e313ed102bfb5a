"""IMAP extensions clients ask for (issue 13): MULTIAPPEND (RFC 3502),
UTF8=ACCEPT (RFC 6855), OBJECTID (RFC 8474) and PREVIEW (RFC 8970), through
imaplib and a raw socket against a server from harness.py."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server  # noqa: E402
from test_imap import Raw, make_msg  # noqa: E402

USER = "alice@example.org"
PASSWORD = "secret"
# Small enough that the limits are reached with little data: one APPEND
# holds at most MAX_MESSAGE + 1 MiB of literals together.
MAX_MESSAGE = 20000


class ExtBase(unittest.TestCase):
    extra_config = ""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(extra_config="[imap]\nmax_connections_per_user = 1000\n"
                         "[limits]\nmax_message_size = %d\n" % MAX_MESSAGE + cls.extra_config)
        cls.srv.start()
        cls.srv.add_domain("example.org")
        cls.srv.add_user(USER, PASSWORD)
        cls.srv.add_user("quota@example.org", PASSWORD, quota="30k")

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def raw(self, user=USER):
        r = Raw(self.srv.connect("imap"))
        self.assertTrue(r.line().startswith("* OK"))
        self.assertTrue(r.cmd("l", "LOGIN %s %s" % (user, PASSWORD))[-1].startswith("l OK"))
        self.addCleanup(r.sock.close)
        return r

    def login(self, user=USER):
        m = self.srv.imap()
        m.login(user, PASSWORD)
        self.addCleanup(m.logout)
        return m

    @staticmethod
    def value(lines, pattern):
        """The first group of pattern in the first line that has it."""
        found = [m.group(1) for m in (re.search(pattern, ln) for ln in lines) if m]
        if not found:
            raise AssertionError("%s not in %r" % (pattern, lines))
        return found[0]

    def status(self, r, box="INBOX"):
        lines = r.cmd("st", "STATUS %s (MESSAGES UIDNEXT)" % box)
        self.assertTrue(lines[-1].startswith("st OK"), lines)
        return (int(self.value(lines, r"MESSAGES (\d+)")), int(self.value(lines, r"UIDNEXT (\d+)")))


class TestMultiappend(ExtBase):
    def test_capability(self):
        m = self.login()
        self.assertIn(b"MULTIAPPEND", m.capability()[1][0].split())

    def test_three_messages_one_command(self):
        """Synchronising and non-synchronising literals mixed; each message
        keeps its flags and date; consecutive UIDs in APPENDUID."""
        r = self.raw()
        r.cmd("c", "CREATE Multi")
        msgs = [make_msg("multi one"), make_msg("multi two", body="second\r\n"),
                make_msg("multi three", body="third\r\n" * 3)]
        r.send("m APPEND Multi (\\Seen) {%d}\r\n" % len(msgs[0]))
        self.assertTrue(r.line().startswith("+"))
        r.send(msgs[0] + b' (\\Flagged $Work) "01-Feb-2024 10:00:00 +0000" {%d+}\r\n' % len(msgs[1])
               + msgs[1] + b" {%d}\r\n" % len(msgs[2]))
        self.assertTrue(r.line().startswith("+"))
        r.send(msgs[2] + b"\r\n")
        lines = r.until_tag("m")
        m = re.match(r"m OK \[APPENDUID (\d+) (\d+):(\d+)\]", lines[-1])
        self.assertIsNotNone(m, lines)
        first, last = int(m.group(2)), int(m.group(3))
        self.assertEqual(last, first + 2)
        self.assertEqual(self.status(r, "Multi"), (3, last + 1))
        r.cmd("s", "SELECT Multi")
        lines = r.cmd("f", "UID FETCH %d:%d (FLAGS INTERNALDATE RFC822.SIZE)" % (first, last))
        fetches = [ln for ln in lines if ln.startswith("* ") and " FETCH " in ln]
        self.assertEqual(len(fetches), 3, lines)
        self.assertIn("\\Seen", fetches[0])
        self.assertIn("\\Flagged", fetches[1])
        self.assertIn("$Work", fetches[1])
        self.assertIn('"01-Feb-2024 10:00:00 +0000"', fetches[1])
        for i, ln in enumerate(fetches):
            self.assertIn("RFC822.SIZE %d" % len(msgs[i]), ln)
        m2 = self.login()
        m2.select("Multi", readonly=True)
        typ, data = m2.uid("FETCH", str(last), "(BODY.PEEK[])")
        self.assertEqual(data[0][1], msgs[2])

    def test_all_or_none(self):
        """A message that cannot be stored fails the whole command: none of
        the others becomes visible and no UID is used up."""
        r = self.raw()
        before = self.status(r)
        msg = make_msg("atomic")
        # the second message is empty
        lines = r.cmd("a1", "APPEND INBOX {%d+}\r\n%s {0+}\r\n" % (len(msg), msg.decode()))
        self.assertTrue(lines[-1].startswith("a1 NO"), lines)
        # the third is over the message size limit (sent: LITERAL+)
        big = b"x" * (MAX_MESSAGE + 1)
        r.send(b"a2 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(msg), msg, len(big), big))
        lines = r.until_tag("a2")
        self.assertRegex(lines[-1], r"^a2 (NO|BAD) \[TOOBIG\]")
        self.assertEqual(self.status(r), before)
        # over the quota together, though each one fits
        q = self.raw("quota@example.org")
        qbefore = self.status(q)
        part = make_msg("quota part", body="q" * 12000 + "\r\n")
        lines = q.cmd("a3", "APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s" % (
            len(part), part.decode(), len(part), part.decode(), len(part), part.decode()))
        self.assertTrue(lines[-1].startswith("a3 NO [OVERQUOTA]"), lines)
        self.assertEqual(self.status(q), qbefore)
        lines = q.cmd("a4", "APPEND INBOX {%d+}\r\n%s" % (len(part), part.decode()))
        self.assertTrue(lines[-1].startswith("a4 OK"), lines)

    def test_limits(self):
        """At most 1000 messages and MAX_MESSAGE + 1 MiB of literals in one
        APPEND: NO [LIMIT] / BAD [LIMIT], nothing stored, the session goes
        on."""
        r = self.raw()
        before = self.status(r)
        one = b"Subject: x\r\n\r\nx\r\n"
        cmd = b"n1 APPEND INBOX" + (b" {%d+}\r\n%s" % (len(one), one)) * 1001 + b"\r\n"
        r.send(cmd)
        lines = r.until_tag("n1")
        self.assertTrue(lines[-1].startswith("n1 NO [LIMIT]"), lines[-1])
        self.assertEqual(self.status(r), before)
        # 1000 is fine
        cmd = b"n2 APPEND INBOX" + (b" {%d+}\r\n%s" % (len(one), one)) * 1000 + b"\r\n"
        r.send(cmd)
        lines = r.until_tag("n2")
        m = re.match(r"n2 OK \[APPENDUID \d+ (\d+):(\d+)\]", lines[-1])
        self.assertIsNotNone(m, lines[-1])
        self.assertEqual(int(m.group(2)) - int(m.group(1)), 999)
        after = self.status(r)
        self.assertEqual(after[0], before[0] + 1000)
        # each message fits, all of them together do not (1.1 MB > 1.07 MB)
        part = b"y" * (MAX_MESSAGE - 1000)
        n = (1024 * 1024 + MAX_MESSAGE) // len(part) + 2
        r.send(b"n3 APPEND INBOX" + (b" {%d+}\r\n%s" % (len(part), part)) * n + b"\r\n")
        lines = r.until_tag("n3")
        self.assertTrue(lines[-1].startswith("n3 BAD [LIMIT]"), lines[-1])
        self.assertEqual(self.status(r), after)
        # with synchronising literals the client is stopped before it sends
        # the one beyond the limit
        r.send(b"n4 APPEND INBOX {%d}\r\n" % len(part))
        sent = 0
        for _ in range(n):
            ln = r.line()
            if not ln.startswith("+"):
                break
            sent += 1
            r.send(part + b" {%d}\r\n" % len(part))
        self.assertTrue(ln.startswith("n4 BAD [LIMIT]"), ln)
        self.assertLess(sent, n)
        self.assertEqual(self.status(r), after)
        self.assertTrue(r.cmd("z", "NOOP")[-1].startswith("z OK"))


class TestUtf8Accept(ExtBase):
    def test_capability_and_enable(self):
        m = self.login()
        self.assertIn(b"UTF8=ACCEPT", m.capability()[1][0].split())
        r = self.raw()
        r.cmd("s", "SELECT INBOX")
        # RFC 6855 3: only in the authenticated state
        lines = r.cmd("e1", "ENABLE UTF8=ACCEPT")
        self.assertIn("* ENABLED", lines)
        r.cmd("u", "UNSELECT")
        lines = r.cmd("e2", "ENABLE UTF8=ACCEPT")
        self.assertIn("* ENABLED UTF8=ACCEPT", lines)
        self.assertTrue(lines[-1].startswith("e2 OK"))

    def test_mailbox_names(self):
        """Before ENABLE names are modified UTF-7 (RFC 3501 5.1.3) and a
        raw UTF-8 name is refused; after it they are UTF-8 both ways, in
        quoted strings."""
        r = self.raw()
        r.send('c CREATE "Entw\u00fcrfe"\r\n'.encode())
        self.assertTrue(r.until_tag("c")[-1].startswith("c NO"))
        m = self.login()
        self.assertEqual(m.create("&AOQ-rger")[0], "OK")
        self.assertEqual(m.enable("UTF8=ACCEPT")[0], "OK")
        self.assertEqual(m.create('"B\u00fccher.\u65e5\u672c"')[0], "OK")
        typ, data = m.list()
        self.assertIn(b'(\\HasNoChildren) "." "\xc3\xa4rger"', data)
        self.assertIn(b'(\\HasChildren) "." "B\xc3\xbccher"', data)
        self.assertIn(b'(\\HasNoChildren) "." "B\xc3\xbccher.\xe6\x97\xa5\xe6\x9c\xac"', data)
        # wildcards match characters, not modified UTF-7 runs
        typ, data = m.list('""', '"B\u00fc*\u672c"')
        self.assertEqual(data, [b'(\\HasNoChildren) "." "B\xc3\xbccher.\xe6\x97\xa5\xe6\x9c\xac"'])
        typ, data = m.status('"\u00e4rger"', "(MESSAGES)")
        self.assertEqual(data, [b'"\xc3\xa4rger" (MESSAGES 0)'])
        self.assertEqual(m.select('"B\u00fccher.\u65e5\u672c"')[0], "OK")
        self.assertEqual(m.rename('"\u00e4rger"', '"\u00c4rger"')[0], "OK")
        # a session that did not enable it sees modified UTF-7
        other = self.login()
        typ, data = other.list('""', "*")
        self.assertIn(b'(\\HasNoChildren) "." "&AMQ-rger"', data)
        self.assertIn(b'(\\HasNoChildren) "." "B&APw-cher.&ZeVnLA-"', data)
        self.assertNotIn(b'"\xc3\xa4rger"', b"".join(data))

    def test_8bit_header(self):
        """An 8-bit UTF-8 header goes in (a plain literal, or RFC 6855's
        UTF8 (literal8)) and comes out as it is."""
        subject = "Gr\u00fc\u00dfe aus K\u00f6ln \u2603"
        msg = make_msg("x").replace(b"Subject: x", ("Subject: " + subject).encode())
        m = self.login()
        self.assertEqual(m.create("Utf8Box")[0], "OK")
        # a plain literal may carry 8-bit text (RFC 3501 CHAR8)
        self.assertEqual(m.append("Utf8Box", None, None, msg)[0], "OK")
        r = self.raw()
        self.assertIn("* ENABLED UTF8=ACCEPT", r.cmd("e", "ENABLE UTF8=ACCEPT"))
        r.send(b"a APPEND Utf8Box UTF8 (~{%d+}\r\n%s)\r\n" % (len(msg), msg))
        lines = r.until_tag("a")
        self.assertRegex(lines[-1], r"^a OK \[APPENDUID \d+ 2\]")
        # imaplib with UTF8=ACCEPT enabled sends and reads UTF-8
        self.assertEqual(m.enable("UTF8=ACCEPT")[0], "OK")
        m.select("Utf8Box", readonly=True)
        for uid in (b"1", b"2"):
            typ, data = m.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0][1], ("Subject: " + subject + "\r\n\r\n").encode())
            self.assertEqual(data[1][1], msg)
        typ, data = m.uid("SEARCH", "SUBJECT", '"K\u00f6ln"')
        self.assertEqual(data, [b"1 2"])


class TestObjectId(ExtBase):
    MAILBOXID = r"MAILBOXID \(([A-Za-z0-9_-]{1,255})\)"
    EMAILID = r"EMAILID \(([A-Za-z0-9_-]{1,255})\)"
    THREADID = r"THREADID \(([A-Za-z0-9_-]{1,255})\)"

    def mailboxid(self, r, box):
        return self.value(r.cmd("st", "STATUS %s (MAILBOXID MESSAGES)" % box), self.MAILBOXID)

    def ids(self, r, box):
        """{uid: (EMAILID, THREADID)} of every message of box."""
        r.cmd("s", "EXAMINE %s" % box)
        lines = r.cmd("f", "UID FETCH 1:* (EMAILID THREADID)")
        out = {}
        for ln in lines:
            m = re.match(r"\* \d+ FETCH \(UID (\d+) EMAILID \((\S+)\) THREADID \((\S+)\)\)$", ln)
            if m:
                out[int(m.group(1))] = (m.group(2), m.group(3))
        self.assertTrue(lines[-1].startswith("f OK"), lines)
        return out

    def append(self, r, box, msg):
        lines = r.cmd("a", "APPEND %s {%d+}\r\n%s" % (box, len(msg), msg.decode()))
        return int(self.value(lines, r"APPENDUID \d+ (\d+)"))

    def test_objectids(self):
        r = self.raw()
        self.assertIn("OBJECTID", self.value(r.cmd("c", "CAPABILITY"), r"^\* CAPABILITY (.*)$").split())
        # CREATE, STATUS and SELECT tell the same MAILBOXID (RFC 8474 4)
        created = self.value(r.cmd("c", "CREATE Projects"), r"^c OK \[" + self.MAILBOXID)
        self.assertEqual(self.mailboxid(r, "Projects"), created)
        self.assertEqual(self.value(r.cmd("s", "SELECT Projects"), r"^\* OK \[" + self.MAILBOXID), created)
        r.cmd("c", "CREATE Other")
        other = self.mailboxid(r, "Other")
        self.assertNotEqual(other, created)
        inbox = self.mailboxid(r, "INBOX")
        # a thread of three (References, then In-Reply-To only) and a stranger
        root = make_msg("plan")
        reply = make_msg("Re: plan", extra="In-Reply-To: <plan@example.org>\r\n"
                         "References: <plan@example.org>\r\n")
        reply2 = make_msg("Re: Re: plan", extra="References: <plan@example.org>\r\n"
                          "\t<Replan@example.org>\r\n")
        stranger = make_msg("unrelated")
        no_ids = b"Subject: no ids at all\r\n\r\nbody\r\n"
        uids = [self.append(r, "Projects", m) for m in (root, reply, reply2, stranger, no_ids)]
        ids = self.ids(r, "Projects")
        self.assertEqual(sorted(ids), uids)
        emailids = [ids[u][0] for u in uids]
        threadids = [ids[u][1] for u in uids]
        self.assertEqual(len(set(emailids)), 5)
        self.assertEqual(threadids[0], threadids[1])
        self.assertEqual(threadids[0], threadids[2])
        self.assertNotEqual(threadids[0], threadids[3])
        self.assertNotIn(threadids[4], threadids[:4])
        # SEARCH EMAILID and THREADID (RFC 8474 6)
        lines = r.cmd("se", "UID SEARCH THREADID %s" % threadids[0])
        self.assertIn("* SEARCH %d %d %d" % tuple(uids[:3]), lines)
        lines = r.cmd("se", "UID SEARCH OR EMAILID %s EMAILID %s" % (emailids[3], emailids[4]))
        self.assertIn("* SEARCH %d %d" % tuple(uids[3:]), lines)
        self.assertIn("* SEARCH", r.cmd("se", "SEARCH EMAILID Mnosuchid"))
        self.assertTrue(r.cmd("se", "SEARCH EMAILID M.x")[-1].startswith("se BAD"))
        # COPY and MOVE keep EMAILID and THREADID
        r.cmd("s", "SELECT Projects")
        lines = r.cmd("cp", "UID COPY %d,%d Other" % (uids[0], uids[4]))
        m = re.search(r"COPYUID \d+ \S+ (\d+),(\d+)", lines[-1])
        copied = self.ids(r, "Other")
        self.assertEqual(copied[int(m.group(1))], ids[uids[0]])
        self.assertEqual(copied[int(m.group(2))], ids[uids[4]])
        r.cmd("s", "SELECT Projects")
        lines = r.cmd("mv", "UID MOVE %d INBOX" % uids[1])
        moved_uid = int(self.value(lines, r"COPYUID \d+ \d+ (\d+)"))
        self.assertEqual(self.ids(r, "INBOX")[moved_uid], ids[uids[1]])
        # RENAME keeps the MAILBOXID and the messages' ids
        r.cmd("u", "UNSELECT")
        self.assertTrue(r.cmd("rn", "RENAME Projects Archive.Projects")[-1].startswith("rn OK"))
        self.assertEqual(self.mailboxid(r, "Archive.Projects"), created)
        after_rename = self.ids(r, "Archive.Projects")
        for u in (uids[0], uids[2], uids[3], uids[4]):
            self.assertEqual(after_rename[u], ids[u])
        # a mailbox deleted and made again is another one
        r.cmd("u", "UNSELECT")
        r.cmd("d", "DELETE Other")
        again = self.value(r.cmd("c", "CREATE Other"), r"^c OK \[" + self.MAILBOXID)
        self.assertNotEqual(again, other)
        # everything survives a restart of the server
        r.sock.close()
        self.srv.stop()
        self.srv.start()
        r = self.raw()
        self.assertEqual(self.mailboxid(r, "Archive.Projects"), created)
        self.assertEqual(self.mailboxid(r, "INBOX"), inbox)
        self.assertEqual(self.mailboxid(r, "Other"), again)
        restarted = self.ids(r, "Archive.Projects")
        for u in (uids[0], uids[2], uids[3], uids[4]):
            self.assertEqual(restarted[u], ids[u])
        self.assertEqual(self.ids(r, "INBOX")[moved_uid], ids[uids[1]])

    def test_fetch_syntax(self):
        """imaplib reads them; THREADID alone, EMAILID in a list with
        others, LIST-STATUS with MAILBOXID."""
        m = self.login()
        m.append("INBOX", None, None, make_msg("fetch ids"))
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("1", "(THREADID)")
        self.assertRegex(data[0], rb"^1 \(THREADID \(T[0-9a-f]{24}\)\)$")
        typ, data = m.fetch("1", "(FLAGS EMAILID UID)")
        self.assertRegex(data[0], rb"EMAILID \(M[0-9a-f]{24}\)")
        typ, data = m._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS (MAILBOXID))")
        self.assertEqual(typ, "OK")
        self.assertRegex(b" ".join(m.untagged_responses.get("STATUS", [])), rb"MAILBOXID \(F[0-9a-f]{24}\)")


class TestPreview(ExtBase):
    LONG = "Dear team,\r\n\r\n" + "the quarterly numbers are in   and\tlook good. " * 12 + "\r\n"
    MESSAGES = [
        # (headers, body, expected preview)
        ("", LONG, None),
        ("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n",
         "Gr=FC=DFe aus K=F6ln!\r\n", "Gr\u00fc\u00dfe aus K\u00f6ln!"),
        ("Content-Type: multipart/alternative; boundary=xx\r\n",
         "--xx\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         "PGh0bWw+PGhlYWQ+PHN0eWxlPnB7fTwvc3R5bGU+PC9oZWFkPjxib2R5PjxwPkhlbGxvICZhbXA7"
         "IDxiPndlbGNvbWU8L2I+PC9wPjwvYm9keT48L2h0bWw+\r\n--xx--\r\n",
         "Hello & welcome"),
        ("Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n", "iVBORw0KGgo=\r\n", ""),
    ]

    def setUp(self):
        r = self.raw()
        r.cmd("c", "CREATE Previews")
        if self.status(r, "Previews")[0] == 0:
            for headers, body, _ in self.MESSAGES:
                msg = ("Subject: p\r\n" + headers + "\r\n" + body).encode()
                r.send(b"a APPEND Previews {%d+}\r\n%s\r\n" % (len(msg), msg))
                self.assertTrue(r.until_tag("a")[-1].startswith("a OK"))

    def previews(self, m, item):
        typ, data = m.fetch("1:4", item)
        self.assertEqual(typ, "OK", data)
        out = []
        for d in data:
            if isinstance(d, tuple):
                out.append(d[1].decode())
            elif d != b")":
                mm = re.search(rb'PREVIEW (NIL|"(.*)")\)$', d)
                self.assertIsNotNone(mm, d)
                out.append(None if mm.group(1) == b"NIL" else mm.group(2).decode())
        return out

    def test_capability(self):
        m = self.login()
        self.assertIn(b"PREVIEW", m.capability()[1][0].split())

    def test_preview(self):
        m = self.login()
        m.select("Previews")
        got = self.previews(m, "(PREVIEW)")
        self.assertEqual(len(got), 4)
        long = re.sub(r"\s+", " ", self.LONG).strip()
        self.assertEqual(got[0], long[:200].rstrip())
        self.assertLessEqual(len(got[0]), 200)
        self.assertGreater(len(long), 200)
        for i in (1, 2, 3):
            self.assertEqual(got[i], self.MESSAGES[i][2])
        # PREVIEW reads like BODY.PEEK: no \Seen
        typ, data = m.fetch("1:4", "(FLAGS)")
        self.assertNotIn(b"\\Seen", b" ".join(data))
        # with UTF8=ACCEPT the text may come as a quoted string
        r = self.raw()
        r.cmd("e", "ENABLE UTF8=ACCEPT")
        r.cmd("s", "EXAMINE Previews")
        self.assertIn('* 2 FETCH (PREVIEW "Gr\u00fc\u00dfe aus K\u00f6ln!")', r.cmd("f", "FETCH 2 PREVIEW"))

    def test_lazy_and_cached(self):
        """LAZY gets NIL until the preview was made once; made, it is kept in
        the index cache, across a restart."""
        r = self.raw()
        r.cmd("c", "CREATE Lazy")
        msg = b"Subject: lazy\r\n\r\nmade on demand\r\n"
        r.send(b"a APPEND Lazy {%d+}\r\n%s\r\n" % (len(msg), msg))
        r.until_tag("a")
        r.cmd("s", "EXAMINE Lazy")
        self.assertIn("* 1 FETCH (PREVIEW NIL)", r.cmd("f", "FETCH 1 (PREVIEW (LAZY))"))
        self.assertIn('* 1 FETCH (UID 1 PREVIEW "made on demand")', r.cmd("f", "FETCH 1 (UID PREVIEW)"))
        r.sock.close()
        self.srv.stop()
        self.srv.start()
        r = self.raw()
        r.cmd("s", "EXAMINE Lazy")
        self.assertIn('* 1 FETCH (PREVIEW "made on demand")', r.cmd("f", "FETCH 1 PREVIEW (LAZY)"))
        self.assertTrue(r.cmd("f", "FETCH 1 (PREVIEW (LAZY BOGUS))")[-1].startswith("f BAD"))


if __name__ == "__main__":
    unittest.main()
