"""SORT and THREAD from the sort keys kept in the index (RFC 5256, RFC
5957): the same answers whether the keys are built on the spot (header
blocks cached or not), held in memory, read back from the index by a new
process, or rebuilt from a record of another format; each message's keys
are written once and leave with it (expunge).  The mail is awkward on
purpose: no Date, a Date that does not parse, a zone far from UTC, RFC
2047 subjects and names in two charsets, no From, groups, no display
name."""
import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_imap_compliance import ImapComplianceBase  # noqa: E402
from harness import wait_for  # noqa: E402

# name -> (INTERNALDATE, header lines); every message gets a short body.
MESSAGES = [
    ("m1", "10-Jan-2024 00:00:00 +0000", [
        "From: Zoe Zed <zoe@example.org>", 'To: "Yvonne" <bob@example.org>',
        "Subject: =?utf-8?q?Re:_caf=C3=A9?=", "Date: Wed, 3 Jan 2024 10:00:00 +0000",
        "Message-ID: <m1@x>"]),
    # no Date: the INTERNALDATE is its sent date (RFC 5256 2.2)
    ("m2", "02-Jan-2024 12:00:00 +0000", [
        "From: =?iso-8859-1?q?Andr=E9?= <andre@example.org>", 'To: "Alice" <alice@example.org>',
        "Cc: carol@example.org", "Subject: =?iso-8859-1?q?Caf=E9?=", "Message-ID: <m2@x>"]),
    # no From, a group in To, a Date that does not parse
    ("m3", "05-Jan-2024 00:00:00 +0000", [
        "To: undisclosed-recipients:;", "Subject: Fwd: apple", "Date: someday soon",
        "Message-ID: <m3@x>"]),
    ("m4", "06-Jan-2024 00:00:00 +0000", [
        'From: "Xavier" <bob@example.org>', "To: zed@example.org", "Cc: Team: a@example.org;",
        "Subject: [list] banana", "Date: Mon, 1 Jan 2024 09:00:00 +0000", "Message-ID: <m4@x>",
        "References: <m1@x>"]),
    # 23:30 -0800 is 07:30 UTC the next day
    ("m5", "07-Jan-2024 00:00:00 +0000", [
        "From: carl@example.org", "Subject: apple", "Date: Mon, 1 Jan 2024 23:30:00 -0800",
        "Message-ID: <m5@x>", "In-Reply-To: <m3@x>"]),
]

# command -> the messages in the order of the reply (THREAD: a template)
EXPECTED = {
    "SORT (DATE) UTF-8 ALL": "m4 m5 m2 m1 m3",
    "SORT (REVERSE DATE) UTF-8 ALL": "m3 m1 m2 m5 m4",
    "SORT (ARRIVAL) UTF-8 ALL": "m2 m3 m4 m5 m1",
    "SORT (SUBJECT) UTF-8 ALL": "m3 m5 m4 m1 m2",
    "SORT (REVERSE SUBJECT) UTF-8 ALL": "m1 m2 m4 m3 m5",
    "SORT (SUBJECT DATE) UTF-8 ALL": "m5 m3 m4 m2 m1",
    "SORT (FROM) UTF-8 ALL": "m3 m2 m4 m5 m1",
    "SORT (TO) UTF-8 ALL": "m5 m2 m1 m3 m4",
    "SORT (CC) UTF-8 ALL": "m1 m3 m5 m2 m4",
    "SORT (REVERSE CC ARRIVAL) UTF-8 ALL": "m4 m2 m3 m5 m1",
    "SORT (DISPLAYFROM) UTF-8 ALL": "m3 m2 m5 m4 m1",
    "SORT (DISPLAYTO) UTF-8 ALL": "m5 m2 m3 m1 m4",
    "SORT (DATE) UTF-8 SUBJECT apple": "m5 m3",
    "UID SORT (REVERSE FROM) US-ASCII ALL": "m1 m5 m4 m2 m3",
    "THREAD REFERENCES UTF-8 ALL": "(m2 m1 m4)(m3 m5)",
    "THREAD ORDEREDSUBJECT UTF-8 ALL": "(m4)(m5 m3)(m2 m1)",
    "UID THREAD REFERENCES UTF-8 ALL": "(m2 m1 m4)(m3 m5)",
}


def message(name, lines):
    return ("\r\n".join(lines) + "\r\n\r\nbody of %s\r\n" % name).encode()


class SortKeysTest(ImapComplianceBase):
    def setUp(self):
        super().setUp()
        self.uids = {}  # name -> UID

    def append(self, r, name):
        internaldate, lines = dict((n, (d, ls)) for n, d, ls in MESSAGES)[name]
        msg = message(name, lines)
        self.tags += 1
        tag = "t%d" % self.tags
        r.send('%s APPEND INBOX "%s" {%d+}\r\n' % (tag, internaldate, len(msg)))
        r.send(msg + b"\r\n")
        lines = r.until_tag(tag)
        self.assertTrue(lines[-1].startswith(tag + " OK [APPENDUID "), lines)
        self.uids[name] = int(lines[-1].split()[4].rstrip("]"))

    def expected(self, r, command):
        """EXPECTED[command] in the numbers of the selected mailbox now."""
        uids = [int(x) for x in self.ok(r, "UID SEARCH ALL")[0].split()[2:]]
        seq = dict((uid, i + 1) for i, uid in enumerate(uids))
        want = EXPECTED[command]
        for name, uid in self.uids.items():
            want = want.replace(name, str(uid if command.startswith("UID ") else seq[uid]))
        return "* %s %s" % (command.split()[1 if command.startswith("UID ") else 0], want)

    def check_all(self, r, phase):
        for command, _ in EXPECTED.items():
            got = [ln for ln in self.ok(r, command) if ln.startswith("* SORT") or ln.startswith("* THREAD")]
            self.assertEqual(got, [self.expected(r, command)], "%s (%s)" % (command, phase))

    def index_rows(self):
        """{uid: record} of the user's INBOX in the sortkey table."""
        db = sqlite3.connect(os.path.join(self.srv.maildir(self.user), "index.db"))
        try:
            rows = db.execute("SELECT uid, keys FROM sortkey WHERE mailbox="
                              "(SELECT id FROM mailbox WHERE name='INBOX')").fetchall()
        finally:
            db.close()
        return dict(rows)

    def settled_rows(self, want):
        """The index rows once want(rows) holds: keys are written by a job
        after the command that built them (bounded wait)."""
        wait_for(lambda: want(self.index_rows()), timeout=10)
        return self.index_rows()

    def restart(self):
        self.srv.stop()
        self.srv.start()

    def fill(self):
        r = self.session()
        for name, _, _ in MESSAGES:
            self.append(r, name)
        self.ok(r, "SELECT INBOX")
        return r

    def test_same_answers_from_every_source(self):
        r = self.fill()
        self.assertEqual(self.index_rows(), {})
        # no header block cached: keys built from the message files
        self.check_all(r, "built")
        rows = self.settled_rows(lambda rows: sorted(rows) == sorted(self.uids.values()))
        self.assertEqual(sorted(rows), sorted(self.uids.values()))
        # from the mailbox's table in memory; nothing written again
        self.check_all(r, "in memory")
        self.assertEqual(self.index_rows(), rows)
        r.sock.close()
        # a new process reads them back from the index
        self.restart()
        r = self.session()
        self.ok(r, "SELECT INBOX")
        self.check_all(r, "from the index")
        self.assertEqual(self.index_rows(), rows)
        r.sock.close()
        # records of another format are built again and replaced
        self.srv.stop()
        db = sqlite3.connect(os.path.join(self.srv.maildir(self.user), "index.db"))
        db.execute("UPDATE sortkey SET keys=x'ff00'")
        db.commit()
        db.close()
        self.srv.start()
        r = self.session()
        self.ok(r, "SELECT INBOX")
        self.check_all(r, "rebuilt")
        self.assertEqual(self.settled_rows(lambda now: now == rows), rows)
        r.sock.close()

    def test_header_blocks_cached_first(self):
        r = self.fill()
        # FETCH caches each header block; the keys are built from those
        self.ok(r, "FETCH 1:* (ENVELOPE BODY.PEEK[HEADER])")
        self.check_all(r, "from cached header blocks")
        want = sorted(self.uids.values())
        self.assertEqual(sorted(self.settled_rows(lambda rows: sorted(rows) == want)), want)
        r.sock.close()

    def test_expunge_and_append_again(self):
        r = self.fill()
        self.check_all(r, "before")
        self.ok(r, "UID STORE %d +FLAGS (\\Deleted)" % self.uids["m2"])
        self.ok(r, "EXPUNGE")
        gone = self.uids.pop("m2")
        # the expunged message's keys leave the index with it
        want = sorted(self.uids.values())
        self.assertEqual(sorted(self.settled_rows(lambda rows: sorted(rows) == want)), want)
        self.assertNotIn(gone, self.index_rows())
        # the same mail again, under a new UID at the end: keys built
        # for it alone, the others kept
        self.append(r, "m2")
        self.ok(r, "NOOP")
        self.check_all(r, "after expunge and append")
        want = sorted(self.uids.values())
        self.assertEqual(sorted(self.settled_rows(lambda rows: sorted(rows) == want)), want)
        r.sock.close()
        self.restart()
        r = self.session()
        self.ok(r, "SELECT INBOX")
        self.check_all(r, "after expunge and append, from the index")
        r.sock.close()

    def test_capability(self):
        r = self.session()
        caps = self.ok(r, "CAPABILITY")[0].split()
        self.assertIn("SORT", caps)
        self.assertIn("SORT=DISPLAY", caps)
        r.sock.close()


if __name__ == "__main__":
    unittest.main()
