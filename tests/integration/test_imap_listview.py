"""The list view FETCH that mail clients send when they open a folder
(BODY.PEEK[HEADER.FIELDS (...)] with UID, RFC822.SIZE and INTERNALDATE),
served from the index's cached header blocks: the same bytes with the cache
cold and warm, as RFC 3501 6.4.5 defines them (fields matched without
regard to case, each with its continuation lines, repeated ones all kept,
then the blank line), for CRLF and bare-LF files; and STORE 1:* on a whole
mailbox: the FLAGS and MODSEQ replies, the flag letters in the file names
(which follow in one batch a moment later), and a file removed behind the
server's back."""
import os
import re
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, tls_context  # noqa: E402
from test_imap import Raw  # noqa: E402

USER = "alice@example.org"
PASSWORD = "secret"
LIST_FIELDS = "From To Cc Subject Date Message-ID"

# Messages as another delivery agent writes them: some with bare LF line
# ends, folded and repeated fields, fields absent, names in odd cases.
MESSAGES = [
    b"Received: from a by b; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    b"From: Bob <bob@example.org>\r\nTo: Alice <alice@example.org>\r\n"
    b"Cc: carol@example.org\r\nSubject: plain CRLF\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <one@example.org>\r\n"
    b"X-Other: kept out\r\n\r\nbody one\r\n",
    b"From: Bob <bob@example.org>\nTo: Alice <alice@example.org>,\n"
    b"\tDave <dave@example.org>\nSubject: a folded\n  subject in\n\ta bare LF file\n"
    b"Date: Tue, 2 Jan 2024 10:00:00 +0000\nX-Other: x\n\nbody two\nmore\n",
    b"From: nobody@example.org\r\nSubject: no Cc, To or Message-ID\r\n\r\nbody three\r\n",
    b"To: first@example.org\r\nFrom: a@example.org\r\nTo: second@example.org\r\n"
    b"Cc: c1@example.org\r\nX-Mid: between\r\nCc: c2@example.org\r\n"
    b"Subject: repeated fields\r\nSubject: twice\r\n\r\nbody four\r\n",
    b"SUBJECT: upper case name\r\nfrom: lower@example.org\r\nmessage-id: <five@x>\r\n"
    b"Subject : obsolete space before the colon\r\nFromage: not From\r\nTo-Do: not To\r\n"
    b"\r\nbody five\r\n",
    b"From: only-header@example.org\nSubject: no body and no blank line\n",
    b"\r\nbody of a message without any header\r\n",
    "From: Jörg <j@example.org>\r\nSubject: raw 8-bit Grüße\r\n\r\nbody\r\n".encode(),
    b"Subject: trailing\r\n \r\nX-Long: " + b"x" * 3000 + b"\r\nFrom: end@example.org\r\n\r\nb\r\n",
]


def crlf(data):
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def header_block(msg):
    """The header block with its blank line, line ends as CRLF."""
    data = crlf(msg)
    if data.startswith(b"\r\n"):
        return b"\r\n"
    i = data.find(b"\r\n\r\n")
    return data if i < 0 else data[:i + 4]


def header_fields(msg, names, negate=False):
    """RFC 3501 6.4.5 HEADER.FIELDS[.NOT], written independently of the
    server: the fields (each with its continuation lines) whose name is
    (not) in names, compared without regard to case, then CRLF."""
    want = {n.lower() for n in names}
    out, keep = b"", False
    for line in header_block(msg).split(b"\r\n"):
        if line == b"":
            break
        if line[:1] in (b" ", b"\t"):
            if keep:
                out += line + b"\r\n"
            continue
        name = line.split(b":", 1)[0].rstrip(b" \t").decode().lower()
        keep = (name in want) != negate
        if keep:
            out += line + b"\r\n"
    return out + b"\r\n"


class ListViewBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.srv.start()
        cls.srv.add_domain("example.org")
        cls.srv.add_user(USER, PASSWORD)
        cls.serial = 0

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def login(self):
        r = Raw(self.srv.connect("imap"))
        self.assertTrue(r.line().startswith("* OK"))
        self.assertIn("OK", r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))[-1])
        return r

    def folder(self, r, name, messages, infos=None):
        """Creates a folder and writes the messages straight into its
        cur/, as a delivery agent would (no index row, no cache yet)."""
        self.assertIn("OK", r.cmd("c", "CREATE " + name)[-1])
        cur = os.path.join(self.srv.maildir(USER, name), "cur")
        for i, msg in enumerate(messages):
            type(self).serial += 1
            info = infos[i] if infos is not None else ""
            fname = "%d.M%dP1Q%d.test:2,%s" % (1700000000 + i, i, self.serial, info)
            with open(os.path.join(cur, fname), "wb") as f:
                f.write(msg)
        return cur

    def fetch(self, r, what, count):
        """{seq: reply bytes} of FETCH 1:* what, literals included."""
        r.send("f FETCH 1:* %s\r\n" % what)
        out = {}
        for _ in range(count + 10):
            line = self.raw_line(r)
            if line.startswith(b"f "):
                self.assertTrue(line.startswith(b"f OK"), line)
                return out
            m = re.match(rb"\* (\d+) FETCH ", line)
            self.assertIsNotNone(m, line)
            out[int(m.group(1))] = line
        raise AssertionError("no tagged reply")

    def raw_line(self, r):
        """One response line with its literals read in."""
        data = b""
        for _ in range(100):
            while b"\n" not in r.buf:
                chunk = r.sock.recv(65536)
                if not chunk:
                    raise EOFError(r.buf)
                r.buf += chunk
            line, _, r.buf = r.buf.partition(b"\n")
            data += line + b"\n"
            m = re.search(rb"\{(\d+)\}\r$", line)
            if m is None:
                return data
            n = int(m.group(1))
            while len(r.buf) < n:
                chunk = r.sock.recv(65536)
                if not chunk:
                    raise EOFError(r.buf)
                r.buf += chunk
            data += r.buf[:n]
            r.buf = r.buf[n:]
        raise AssertionError("too many literals")


class DeflateSocket:
    """A socket seen through COMPRESS=DEFLATE (RFC 4978): raw deflate both
    ways, each write flushed."""

    def __init__(self, sock):
        self.sock = sock
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.dec = zlib.decompressobj(-15)

    def settimeout(self, seconds):
        self.sock.settimeout(seconds)

    def sendall(self, data):
        self.sock.sendall(self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH))

    def recv(self, n):
        for _ in range(10000):
            chunk = self.sock.recv(n)
            if not chunk:
                return b""
            out = self.dec.decompress(chunk)
            if out:
                return out
        raise AssertionError("no decompressed output")


def literal(reply, item):
    """The literal that follows item (b"BODY[HEADER.FIELDS (...)]") in a reply."""
    i = reply.index(item)
    m = re.compile(rb"(<\d+>)? \{(\d+)\}\r\n").match(reply, i + len(item))
    start = m.end()
    return reply[start:start + int(m.group(2))]


class TestListView(ListViewBase):
    def check_round(self, r, label):
        want_sizes = [len(crlf(m)) for m in MESSAGES]
        section = "HEADER.FIELDS (%s)" % LIST_FIELDS
        got = self.fetch(r, "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[%s])" % section, len(MESSAGES))
        self.assertEqual(sorted(got), list(range(1, len(MESSAGES) + 1)), label)
        for seq, msg in enumerate(MESSAGES, 1):
            reply = got[seq]
            self.assertIn(b"RFC822.SIZE %d " % want_sizes[seq - 1], reply, (label, seq))
            self.assertIn(b"INTERNALDATE \"", reply)
            body = literal(reply, b"BODY[%s]" % section.encode())
            self.assertEqual(body, header_fields(msg, LIST_FIELDS.split()), (label, seq))
        return got

    def test_list_view_cold_and_warm(self):
        """The same bytes before the header blocks are cached (read from
        the files), once they are (written back by that FETCH), and when
        FETCH ENVELOPE cached them from the whole message; all of them as
        an independent reading of RFC 3501 has them."""
        r = self.login()
        self.folder(r, "Cold", MESSAGES)
        r.cmd("s", "SELECT Cold")
        cold = self.check_round(r, "cold")
        warm = self.check_round(r, "warm")
        self.assertEqual(cold, warm)
        self.folder(r, "ByEnvelope", MESSAGES)
        r.cmd("s", "SELECT ByEnvelope")
        r.cmd("e", "FETCH 1:* ENVELOPE")
        self.assertEqual(self.check_round(r, "after ENVELOPE"), cold)
        r.cmd("z", "LOGOUT")

    def test_other_header_sections(self):
        """HEADER.FIELDS.NOT, HEADER, RFC822.HEADER and partial fetches
        from the cached block; the same as when the whole message is read
        for another section of the same FETCH."""
        r = self.login()
        self.folder(r, "Sections", MESSAGES)
        r.cmd("s", "SELECT Sections")
        n = len(MESSAGES)
        items = ("BODY.PEEK[HEADER.FIELDS.NOT (Received x-other SUBJECT)] BODY.PEEK[HEADER] "
                 "RFC822.HEADER BODY.PEEK[HEADER.FIELDS (subject)]<0.12> "
                 "BODY.PEEK[HEADER.FIELDS (From To)]<5.100000>")
        for label in ("cold", "warm"):
            got = self.fetch(r, "(%s)" % items, n)
            for seq, msg in enumerate(MESSAGES, 1):
                reply = got[seq]
                self.assertEqual(literal(reply, b"BODY[HEADER.FIELDS.NOT (Received x-other SUBJECT)]"),
                                 header_fields(msg, ["received", "X-Other", "subject"], True),
                                 (label, seq))
                self.assertEqual(literal(reply, b"BODY[HEADER]"), header_block(msg), (label, seq))
                self.assertEqual(literal(reply, b"RFC822.HEADER"), header_block(msg), (label, seq))
                self.assertIn(b"BODY[HEADER.FIELDS (subject)]<0> ", reply)
                self.assertEqual(literal(reply, b"BODY[HEADER.FIELDS (subject)]"),
                                 header_fields(msg, ["Subject"])[:12], (label, seq))
                self.assertEqual(literal(reply, b"BODY[HEADER.FIELDS (From To)]"),
                                 header_fields(msg, ["From", "To"])[5:], (label, seq))
        # with BODY.PEEK[TEXT] the whole message is read: the same sections
        whole = self.fetch(r, "(BODY.PEEK[TEXT] %s)" % items, n)
        for seq in whole:
            for item in (b"BODY[HEADER.FIELDS.NOT (Received x-other SUBJECT)]", b"BODY[HEADER]",
                         b"RFC822.HEADER", b"BODY[HEADER.FIELDS (From To)]"):
                self.assertEqual(literal(whole[seq], item), literal(got[seq], item), (seq, item))
        r.cmd("z", "LOGOUT")

    def test_whole_messages(self):
        """BODY.PEEK[], its partials and RFC822 of files with bare LF (read
        and converted straight into the reply) and with CRLF (streamed):
        the message as CRLF, sliced as RFC 3501 6.4.5 says."""
        r = self.login()
        self.folder(r, "Whole", MESSAGES)
        r.cmd("s", "SELECT Whole")
        n = len(MESSAGES)
        for what, cut in (("BODY.PEEK[]", None), ("BODY.PEEK[]<7.15>", (7, 15)),
                          ("BODY.PEEK[]<0.100000>", (0, 100000)), ("BODY.PEEK[]<100000.5>", (100000, 5)),
                          ("RFC822", None)):
            got = self.fetch(r, "(%s)" % what, n)
            item = b"RFC822" if what == "RFC822" else b"BODY[]"
            for seq, msg in enumerate(MESSAGES, 1):
                want = crlf(msg)
                if cut is not None:
                    want = want[cut[0]:cut[0] + cut[1]]
                    item = b"BODY[]<%d>" % cut[0]
                self.assertEqual(literal(got[seq], item), want, (what, seq))
        r.cmd("z", "LOGOUT")

    def test_whole_messages_deflate_and_tls(self):
        """The same whole messages and partials over COMPRESS=DEFLATE (RFC
        4978) and over STARTTLS, whose layers the output goes through (a
        bare-LF file is converted in room reserved in that output), with
        two files of some 600 KB (LF and CRLF) that fill the output past
        its high-water mark."""
        big = b"".join(b"Subject: big %d\n" % i if i == 0 else b"line %06d of a long body\n" % i
                       for i in range(24000))
        msgs = MESSAGES + [big, crlf(big)]
        cuts = ((None, None), (7, 15), (600000, 70000), (1000000, 5))
        for transport in ("deflate", "tls"):
            r = self.login()
            name = "Layers" + transport
            self.folder(r, name, msgs)
            if transport == "deflate":
                self.assertTrue(r.cmd("c", "COMPRESS DEFLATE")[-1].startswith("c OK"))
                r.sock = DeflateSocket(r.sock)
            else:
                r.cmd("z", "LOGOUT")
                r = Raw(self.srv.connect("imap"))
                self.assertTrue(r.line().startswith("* OK"))
                self.assertTrue(r.cmd("t", "STARTTLS")[-1].startswith("t OK"))
                r.sock = tls_context().wrap_socket(r.sock)
                self.assertIn("OK", r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))[-1])
            r.cmd("s", "SELECT " + name)
            for cut in cuts:
                what = "BODY.PEEK[]" if cut[0] is None else "BODY.PEEK[]<%d.%d>" % cut
                got = self.fetch(r, "(%s)" % what, len(msgs))
                item = b"BODY[]" if cut[0] is None else b"BODY[]<%d>" % cut[0]
                for seq, msg in enumerate(msgs, 1):
                    want = crlf(msg) if cut[0] is None else crlf(msg)[cut[0]:cut[0] + cut[1]]
                    self.assertEqual(literal(got[seq], item), want, (transport, what, seq))
            r.cmd("z", "LOGOUT")

    def test_warm_list_view_reads_no_file(self):
        """With the header blocks cached, the list view of 400 messages
        reads no message file: the worker makes fewer read system calls
        than a tenth of the messages (before: at least one per message;
        each FETCH read every file again)."""
        r = self.login()
        msgs = [MESSAGES[i % len(MESSAGES)] for i in range(400)]
        self.folder(r, "NoRead", msgs)
        r.cmd("s", "SELECT NoRead")
        what = "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (%s)])" % LIST_FIELDS
        self.fetch(r, what, len(msgs))  # cold: reads the files, caches
        pids = self.srv.child_pids("worker")
        self.assertEqual(len(pids), 1, pids)

        def reads():
            try:
                with open("/proc/%d/io" % pids[0]) as f:
                    return int(re.search(r"syscr: (\d+)", f.read()).group(1))
            except OSError:
                self.skipTest("no /proc/PID/io")
        # the blocks read from the files are written back by a job: a
        # FETCH soon after may still find some missing
        for _ in range(50):
            before = reads()
            got = self.fetch(r, what, len(msgs))
            used = reads() - before
            if used < len(msgs) // 10:
                break
            time.sleep(0.1)
        self.assertEqual(len(got), len(msgs))
        self.assertLess(used, len(msgs) // 10)
        r.cmd("z", "LOGOUT")


class TestStoreAll(ListViewBase):
    INFOS = ["", "S", "RS", "Sa", "", "T", "DS", "S"]

    def files(self, cur):
        """{base name: info letters} of cur/."""
        out = {}
        for name in os.listdir(cur):
            base, _, info = name.partition(":2,")
            out[base] = info
        return out

    def files_become(self, cur, want):
        """Waits (5 s at most) for the letters of the files to be want:
        they follow the flags in one batch a moment after the changes."""
        for _ in range(100):
            if self.files(cur) == want:
                return
            time.sleep(0.05)
        self.assertEqual(self.files(cur), want)

    def replies(self, lines):
        """{seq: (flags set, modseq)} of untagged FETCH lines."""
        out = {}
        for ln in lines:
            m = re.match(r"\* (\d+) FETCH \((.*)\)$", ln)
            if m is None:
                continue
            flags = re.search(r"FLAGS \(([^)]*)\)", m.group(2)).group(1).split()
            flags = [f for f in flags if f != "\\Recent"]
            mod = re.search(r"MODSEQ \((\d+)\)", m.group(2))
            out[int(m.group(1))] = (set(flags), int(mod.group(1)) if mod else None)
        return out

    def highest(self, r, name):
        line = [ln for ln in r.cmd("st", "STATUS %s (HIGHESTMODSEQ)" % name) if "HIGHESTMODSEQ" in ln][0]
        return int(re.search(r"HIGHESTMODSEQ (\d+)", line).group(1))

    def test_store_all_flags_names_modseqs(self):
        """STORE 1:* +FLAGS (\\Flagged): one FETCH per message with the old
        flags plus \\Flagged and one new MODSEQ above the old HIGHESTMODSEQ,
        every file renamed with F in its letters (in ASCII order, a
        letter we do not manage kept); -FLAGS.SILENT renames them back;
        a keyword renames nothing."""
        r = self.login()
        msgs = [MESSAGES[i % len(MESSAGES)] for i in range(len(self.INFOS))]
        cur = self.folder(r, "StoreAll", msgs, self.INFOS)
        before = self.files(cur)
        r.cmd("e", "ENABLE CONDSTORE")
        r.cmd("s", "SELECT StoreAll")
        h0 = self.highest(r, "StoreAll")
        lines = r.cmd("a", "STORE 1:* +FLAGS (\\Flagged)")
        self.assertTrue(lines[-1].startswith("a OK"), lines)
        got = self.replies(lines)
        self.assertEqual(sorted(got), list(range(1, len(msgs) + 1)))
        letters = {"S": "\\Seen", "R": "\\Answered", "T": "\\Deleted", "D": "\\Draft"}
        mods = {mod for _, mod in got.values()}
        self.assertEqual(len(mods), 1, got)
        self.assertGreater(mods.pop(), h0)
        for seq, info in enumerate(self.INFOS, 1):
            want = {letters[c] for c in info if c in letters} | {"\\Flagged"}
            self.assertEqual(got[seq][0], want, seq)
        self.files_become(cur, {base: "".join(sorted(info + "F")) for base, info in before.items()})
        lines = r.cmd("b", "STORE 1:* -FLAGS.SILENT (\\Flagged)")
        self.assertEqual(self.replies(lines), {}, lines)
        self.files_become(cur, before)
        lines = r.cmd("c", "STORE 1:* +FLAGS ($Work)")
        self.assertEqual(len(self.replies(lines)), len(msgs))
        self.assertTrue(all("$Work" in f for f, _ in self.replies(lines).values()))
        time.sleep(1.5)
        self.assertEqual(self.files(cur), before)
        r.cmd("z", "LOGOUT")

    def test_store_undone_renames_nothing(self):
        """+FLAGS then -FLAGS on every message in a row: the index and the
        replies follow each, and no file is renamed (their change times
        stay), since the names follow the flags in one batch later."""
        r = self.login()
        msgs = [MESSAGES[i % len(MESSAGES)] for i in range(len(self.INFOS))]
        cur = self.folder(r, "Undone", msgs, self.INFOS)
        r.cmd("s", "SELECT Undone")
        time.sleep(1.5)  # SELECT's own renames, if any, are done

        def stamps():
            return {n: os.stat(os.path.join(cur, n)).st_ctime_ns for n in os.listdir(cur)}
        before = stamps()
        lines = r.cmd("a", "STORE 1:* +FLAGS (\\Flagged)")
        self.assertEqual(len(self.replies(lines)), len(msgs))
        self.assertTrue(all("\\Flagged" in f for f, _ in self.replies(lines).values()))
        lines = r.cmd("b", "STORE 1:* -FLAGS (\\Flagged)")
        self.assertTrue(all("\\Flagged" not in f for f, _ in self.replies(lines).values()))
        time.sleep(2)
        self.assertEqual(stamps(), before)
        got = self.replies(r.cmd("f", "FETCH 1:* (FLAGS)"))
        self.assertTrue(all("\\Flagged" not in f for f, _ in got.values()))
        r.cmd("z", "LOGOUT")

    def test_store_all_file_removed_behind_our_back(self):
        """A file deleted by another program before STORE 1:*: no FETCH
        claims new flags for it, the others are renamed and reported, and
        the next NOOP reports its EXPUNGE."""
        r = self.login()
        msgs = [MESSAGES[i % len(MESSAGES)] for i in range(6)]
        cur = self.folder(r, "Removed", msgs)
        r.cmd("e", "ENABLE CONDSTORE")
        r.cmd("s", "SELECT Removed")
        gone = sorted(os.listdir(cur))[2]  # the third message
        os.unlink(os.path.join(cur, gone))
        lines = r.cmd("a", "STORE 1:* +FLAGS (\\Seen)")
        self.assertTrue(lines[-1].startswith("a OK"), lines)
        got = self.replies(lines)
        self.assertNotIn(3, got)
        self.assertEqual(sorted(got), [1, 2, 4, 5, 6])
        self.assertTrue(all("\\Seen" in f for f, _ in got.values()))
        for _ in range(100):
            names = os.listdir(cur)
            if all(n.endswith(":2,S") for n in names):
                break
            time.sleep(0.05)
        self.assertEqual(len(names), 5)
        self.assertTrue(all(n.endswith(":2,S") for n in names), names)
        lines = []
        for _ in range(50):
            lines += r.cmd("n", "NOOP")
            if "* 3 EXPUNGE" in lines:
                break
            time.sleep(0.1)
        self.assertIn("* 3 EXPUNGE", lines)
        got = self.replies(r.cmd("f", "FETCH 1:* (FLAGS)"))
        self.assertEqual(sorted(got), [1, 2, 3, 4, 5])
        r.cmd("z", "LOGOUT")

    def test_unchangedsince_zero_changes_nothing(self):
        """UNCHANGEDSINCE 0 can never hold (RFC 7162 3.1.3): every message
        fails and none changes."""
        r = self.login()
        cur = self.folder(r, "Unchanged", MESSAGES[:3])
        before = self.files(cur)
        r.cmd("s", "SELECT Unchanged")
        lines = r.cmd("a", "STORE 1:* (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)")
        self.assertIn("[MODIFIED 1:3]", lines[-1])
        got = self.replies(r.cmd("f", "FETCH 1:* (FLAGS)"))
        self.assertTrue(all("\\Flagged" not in f for f, _ in got.values()), got)
        self.assertEqual(self.files(cur), before)
        r.cmd("z", "LOGOUT")


if __name__ == "__main__":
    unittest.main()
