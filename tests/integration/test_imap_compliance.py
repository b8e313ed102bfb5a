"""IMAP protocol details that Dovecot's imaptest compliance groups check,
one regression test each, on a raw connection so that the exact replies
are visible (RFC 3501, RFC 9051 and the extensions the server announces)."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server  # noqa: E402
from test_imap import Raw, make_msg  # noqa: E402

PASSWORD = "secret"


class ImapComplianceBase(unittest.TestCase):
    users = 0

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(extra_config="[imap]\nmax_connections_per_user = 1000\n")
        cls.srv.start()
        cls.srv.add_domain("example.org")

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def setUp(self):
        """Each test has a user of its own (empty mailboxes)."""
        ImapComplianceBase.users += 1
        self.user = "c%d@example.org" % ImapComplianceBase.users
        self.srv.add_user(self.user, PASSWORD)
        self.tags = 0

    def session(self):
        r = Raw(self.srv.connect("imap"))
        self.assertTrue(r.line().startswith("* OK"))
        self.ok(r, 'LOGIN "%s" "%s"' % (self.user, PASSWORD))
        return r

    def cmd(self, r, text):
        """Runs one command; returns (untagged lines, tagged line)."""
        self.tags += 1
        tag = "t%d" % self.tags
        lines = r.cmd(tag, text)
        return lines[:-1], lines[-1][len(tag) + 1:]

    def ok(self, r, text):
        untagged, tagged = self.cmd(r, text)
        self.assertTrue(tagged.startswith("OK"), "%s: %s" % (text, tagged))
        return untagged

    def append(self, r, mailbox, msg, flags=""):
        self.tags += 1
        tag = "t%d" % self.tags
        r.send("%s APPEND %s %s{%d+}\r\n" % (tag, mailbox, "(%s) " % flags if flags else "",
                                           len(msg)))
        r.send(msg + b"\r\n")
        lines = r.until_tag(tag)
        self.assertTrue(lines[-1].startswith(tag + " OK"), lines)
        return lines[:-1]


class TestCommandNames(ImapComplianceBase):
    def test_uid_subcommands_any_case(self):
        """RFC 3501 9: command names, UID's subcommand included, are
        case-insensitive."""
        r = self.session()
        for i in range(3):
            self.append(r, "INBOX", make_msg("case %d" % i))
        self.ok(r, "select INBOX")
        self.ok(r, "create Other")
        self.assertIn("* SEARCH 1 2 3", self.ok(r, "uid search all"))
        self.assertEqual(self.ok(r, "Uid Fetch 2 uid"), ["* 2 FETCH (UID 2)"])
        self.assertIn("* ESEARCH (TAG \"t%d\") UID ALL 1:3" % (self.tags + 1),
                      self.ok(r, "uid search return (all) all"))
        untagged = self.ok(r, "uid move 2 Other")
        self.assertIn("* 2 EXPUNGE", untagged)
        self.assertEqual(self.ok(r, "uid copy 1 Other"), [])


class TestParsing(ImapComplianceBase):
    def test_mailbox_name_of_atom_chars(self):
        """"[" is an ATOM-CHAR (RFC 3501 9): the name parses, and a name
        that is not modified UTF-7 ("&'") is refused with NO, not BAD."""
        r = self.session()
        untagged, tagged = self.cmd(r, "select !#$&'+,-.0123456789:;<=>?@^_`|[}")
        self.assertTrue(tagged.startswith("NO"), tagged)
        untagged, tagged = self.cmd(r, "select a[b")
        self.assertTrue(tagged.startswith("NO [NONEXISTENT]"), tagged)
        self.assertEqual(self.ok(r, 'list "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*'), [])
        self.ok(r, "create a[b")
        self.assertEqual(self.ok(r, 'list "" a[b'), ['* LIST (\\HasNoChildren) "." "a[b"'])
        untagged, tagged = self.cmd(r, "fetch 1 body[header")
        self.assertTrue(tagged.startswith("BAD"), tagged)

    def test_nil_is_a_keyword(self):
        """flag-keyword = atom, and NIL is one (RFC 3501 9)."""
        r = self.session()
        self.append(r, "INBOX", make_msg("nil"))
        self.ok(r, "select INBOX")
        untagged = self.ok(r, "store 1 +flags NIL")
        self.assertIn("* 1 FETCH (FLAGS (\\Recent NIL))", untagged)
        self.assertEqual(self.ok(r, "search keyword NIL"), ["* SEARCH 1"])

    def test_id_of_maximal_size_before_login(self):
        """RFC 2971 3.3: 30 pairs, fields up to 30 octets, values up to
        1024: the largest ID is accepted before authentication."""
        r = Raw(self.srv.connect("imap"))
        self.assertTrue(r.line().startswith("* OK"))
        pairs = " ".join('"%s" "%s"' % (("f%02d" % i) * 10, "v" * 1024) for i in range(30))
        lines = r.cmd("a", "ID (%s)" % pairs)
        self.assertTrue(lines[-1].startswith("a OK"), lines[-1][:100])
        self.assertTrue(lines[0].startswith("* ID "), lines[0][:100])
        # beyond that the pre-authentication limit holds
        lines = r.cmd("b", "ID (%s)" % " ".join('"f" "%s"' % ("v" * 1024) for i in range(60)))
        self.assertIn("too long", lines[-1])

    def test_uid_4294967295_is_not_star(self):
        """nz-number goes up to 4294967295 (RFC 3501 9); as a UID it is
        not "*", so N:4294967295 past the last UID matches nothing."""
        r = self.session()
        for i in range(3):
            self.append(r, "INBOX", make_msg("uids %d" % i))
        self.ok(r, "select INBOX")
        self.assertEqual(self.ok(r, "uid search uid 1:4294967295"), ["* SEARCH 1 2 3"])
        self.assertEqual(self.ok(r, "uid search uid 4:4294967295"), ["* SEARCH"])
        self.assertEqual(self.ok(r, "uid search uid 4:*"), ["* SEARCH 3"])
        self.assertEqual(self.ok(r, "uid fetch 3:4294967295 uid"), ["* 3 FETCH (UID 3)"])
        untagged, tagged = self.cmd(r, "uid search uid 1:4294967296")
        self.assertTrue(tagged.startswith("BAD"), tagged)


class TestKeywordsAnnounced(ImapComplianceBase):
    """RFC 3501 7.2.6: FLAGS (and PERMANENTFLAGS) name the keywords a
    client will see in FETCH FLAGS; a new keyword is announced first."""

    def flags_line(self, lines):
        return [ln for ln in lines if ln.startswith("* FLAGS ")]

    def test_store_announces_new_keyword(self):
        r = self.session()
        self.append(r, "INBOX", make_msg("kw"))
        untagged = self.ok(r, "select INBOX")
        self.assertIn("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)", untagged)
        untagged = self.ok(r, "store 1 +flags ($hello)")
        self.assertEqual(untagged[0], "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $hello)")
        self.assertEqual(untagged[1], "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
                         "\\Draft $hello \\*)] Flags permitted")
        self.assertIn("* 1 FETCH (FLAGS (\\Recent $hello))", untagged)
        # known now: not announced again
        self.assertEqual(self.flags_line(self.ok(r, "store 1 flags ($hello)")), [])

    def test_keyword_set_by_another_session(self):
        r1 = self.session()
        r2 = self.session()
        self.append(r1, "INBOX", make_msg("kw2"), flags="$first")
        self.ok(r1, "select INBOX")
        self.ok(r2, "select INBOX")
        self.ok(r2, "store 1 +flags ($second)")
        untagged = self.ok(r1, "noop")
        flags = self.flags_line(untagged)
        self.assertEqual(len(flags), 1, untagged)
        self.assertIn("$first $second", flags[0])
        fetch = [i for i, ln in enumerate(untagged) if "FETCH" in ln]
        self.assertLess(untagged.index(flags[0]), fetch[0], untagged)

    def test_examine_has_no_permanent_flags(self):
        r = self.session()
        untagged = self.ok(r, "examine INBOX")
        self.assertIn("* OK [PERMANENTFLAGS ()] No permanent flags permitted", untagged)


class TestRecent(ImapComplianceBase):
    """RFC 3501 2.3.2: \\Recent belongs to the first session notified of
    a message; a read-only session sees it without taking it."""

    def status_recent(self, r):
        untagged = self.ok(r, "status INBOX (messages recent)")
        return re.search(r"RECENT (\d+)", untagged[0], re.I).group(1)

    def test_examine_sees_select_takes(self):
        r = self.session()
        for i in range(2):
            self.append(r, "INBOX", make_msg("recent %d" % i))
        untagged = self.ok(r, "examine INBOX")
        self.assertIn("* 2 RECENT", untagged)
        self.ok(r, "close")
        self.assertEqual(self.status_recent(r), "2")
        self.assertIn("* 2 RECENT", self.ok(r, "select INBOX"))
        self.ok(r, "close")
        self.assertEqual(self.status_recent(r), "0")
        self.assertIn("* 0 RECENT", self.ok(r, "select INBOX"))

    def test_new_message_recent_in_one_session(self):
        r1 = self.session()
        r2 = self.session()
        r3 = self.session()
        self.ok(r1, "select INBOX")
        self.ok(r2, "select INBOX")
        untagged = self.append(r1, "INBOX", make_msg("arrives"))
        self.assertIn("* 1 EXISTS", untagged)
        self.assertIn("* 1 RECENT", untagged)
        # EXISTS, and no FETCH for the new message (its flags are not an
        # update: the client has not seen it yet)
        self.assertEqual(self.ok(r2, "noop"), ["* 1 EXISTS"])
        self.assertEqual(self.status_recent(r3), "0")
        self.assertEqual(self.ok(r1, "fetch 1 flags"), ["* 1 FETCH (FLAGS (\\Recent))"])
        self.assertEqual(self.ok(r2, "fetch 1 flags"), ["* 1 FETCH (FLAGS ())"])
        self.assertEqual(self.ok(r1, "search recent"), ["* SEARCH 1"])
        self.assertEqual(self.ok(r2, "search recent"), ["* SEARCH"])

    def test_no_mailbox_updates_after_bye(self):
        """RFC 3501 6.1.3: LOGOUT sends BYE, then the tagged OK; changes
        made by another session are not reported any more."""
        r1 = self.session()
        r2 = self.session()
        self.append(r1, "INBOX", make_msg("bye"))
        self.ok(r1, "select INBOX")
        self.ok(r2, "select INBOX")
        self.ok(r1, "store 1 +flags \\deleted")
        self.ok(r1, "expunge")
        r2.send("z logout\r\n")
        lines = [r2.line() for _ in range(2)]
        self.assertEqual(lines, ["* BYE Logging out", "z OK LOGOUT completed"])


class TestListSubscribed(ImapComplianceBase):
    def setup_tree(self, r):
        for name in ("box.a", "box.b.c", "box.d.e", "box.d.f"):
            self.ok(r, "create " + name)
        for name in ("box.a", "box.b.c", "box.d.e"):
            self.ok(r, "subscribe " + name)

    def test_lsub_percent_returns_noselect_parent(self):
        """RFC 3501 6.3.9: LSUB "%" returns "foo" flagged \\Noselect for a
        subscribed "foo/bar" when "foo" is not subscribed."""
        r = self.session()
        self.setup_tree(r)
        self.assertEqual(sorted(self.ok(r, 'lsub "" box.%')), [
            '* LSUB () "." "box.a"',
            '* LSUB (\\Noselect) "." "box.b"',
            '* LSUB (\\Noselect) "." "box.d"'])
        self.assertEqual(sorted(self.ok(r, 'lsub "" box.*')), [
            '* LSUB () "." "box.a"', '* LSUB () "." "box.b.c"', '* LSUB () "." "box.d.e"'])

    def test_recursivematch_childinfo(self):
        """RFC 9051 6.3.9.6: with RECURSIVEMATCH a parent that matches the
        pattern and has a subscribed child not returned itself comes with
        CHILDINFO; it is not \\Subscribed; redundant ones are left out."""
        r = self.session()
        self.setup_tree(r)
        self.assertEqual(sorted(self.ok(r, 'list (subscribed recursivematch) "" box.%')), [
            '* LIST (\\HasChildren) "." "box.b" ("CHILDINFO" ("SUBSCRIBED"))',
            '* LIST (\\HasChildren) "." "box.d" ("CHILDINFO" ("SUBSCRIBED"))',
            '* LIST (\\HasNoChildren \\Subscribed) "." "box.a"'])
        # box.d.e is returned itself: box.d needs no CHILDINFO for it
        self.assertEqual(sorted(self.ok(r, 'list (subscribed recursivematch) "" (box.d box.d.e)')), [
            '* LIST (\\HasNoChildren \\Subscribed) "." "box.d.e"'])
        # without RECURSIVEMATCH: only the subscribed names that match
        self.assertEqual(self.ok(r, 'list (subscribed) "" box.%'),
                         ['* LIST (\\HasNoChildren \\Subscribed) "." "box.a"'])


def raw_msg(headers, body="body\r\n"):
    return ("".join("%s\r\n" % h for h in headers) + "\r\n" + body).encode()


class TestSearchSortAddresses(ImapComplianceBase):
    def test_search_matches_parsed_addresses(self):
        """FROM/TO/CC/BCC search the addresses as parsed (comments and
        angle brackets gone, display names kept), as a user sees them."""
        r = self.session()
        self.append(r, "INBOX", raw_msg(["From: <user-from (comment)@ (comment) domain.org>"]))
        self.append(r, "INBOX", raw_msg(["From: user-from@domain.org (RealFrom)"]))
        self.append(r, "INBOX", raw_msg(["From: =?utf-8?q?J=C3=B6rg?= <j@domain.org>",
                                         "To: group: a@domain.org, b@domain.org;"]))
        self.ok(r, "select INBOX")
        self.assertEqual(self.ok(r, "search from user-from@domain.org"), ["* SEARCH 1 2"])
        self.assertEqual(self.ok(r, "search from realfrom"), ["* SEARCH 2"])
        self.assertEqual(self.ok(r, "search from comment"), ["* SEARCH"])
        r.send(b"u1 search charset utf-8 from {5+}\r\nJ\xc3\xb6rg\r\n")
        self.assertEqual(r.until_tag("u1"), ["* SEARCH 3", "u1 OK SEARCH completed"])
        self.assertEqual(self.ok(r, "search to group"), ["* SEARCH 3"])
        self.assertEqual(self.ok(r, "search to b@domain"), ["* SEARCH 3"])
        # HEADER searches the field as it is
        self.assertEqual(self.ok(r, "search header from comment"), ["* SEARCH 1"])

    def test_sort_by_group_and_collation(self):
        """RFC 5256 3: the first address's mailbox (a group's start marker
        has the group name: RFC 3501 7.4.2), compared with i;ascii-casemap
        (letters as upper case, so "_" and "[" sort after them)."""
        r = self.session()
        self.append(r, "INBOX", raw_msg(["Cc: user2@domain2.org (foo bar)", "Subject: _"]))
        self.append(r, "INBOX", raw_msg(["Cc: user2: blah@domain1.org;", "Subject: [xyz]"]))
        self.append(r, "INBOX", raw_msg(["Cc: user1@domain1.org", "Subject: b"]))
        self.append(r, "INBOX", raw_msg(["Cc: a_b@domain1.org", "Subject: A"]))
        self.ok(r, "select INBOX")
        self.assertEqual(self.ok(r, "sort (cc) us-ascii all"), ["* SORT 4 3 1 2"])
        self.assertEqual(self.ok(r, "sort (subject) us-ascii all"), ["* SORT 4 3 2 1"])
        self.assertEqual(self.ok(r, "sort (reverse subject) us-ascii all"), ["* SORT 1 2 3 4"])


class TestCondstore(ImapComplianceBase):
    def test_first_enabling_command_sends_highestmodseq(self):
        """RFC 7162 3.1: the first CONDSTORE enabling command with a
        mailbox selected returns HIGHESTMODSEQ; later ones do not."""
        r = self.session()
        self.append(r, "INBOX", make_msg("cs"))
        self.ok(r, "select INBOX")
        untagged = self.ok(r, "fetch 1 modseq")
        self.assertTrue(untagged[0].startswith("* OK [HIGHESTMODSEQ "), untagged)
        self.assertEqual(len(untagged), 2, untagged)
        self.assertEqual(len(self.ok(r, "fetch 1 modseq")), 1)

    def test_esearch_modseq_of_min_max(self):
        """RFC 4731 3.2: with MIN or MAX alone the MODSEQ result is that of
        the message returned; MIN and MAX: the higher of the two;
        otherwise the highest of all found."""
        r = self.session()
        for i in range(4):
            self.append(r, "INBOX", make_msg("es %d" % i))
        self.ok(r, "enable condstore")
        self.ok(r, "select INBOX")
        modseq = {}
        for seq in (1, 3, 2, 4):
            untagged = self.ok(r, "store %d +flags \\seen" % seq)
            modseq[seq] = int(re.search(r"MODSEQ \((\d+)\)", " ".join(untagged)).group(1))
        def esearch(ret, sset="1:3"):
            untagged = self.ok(r, 'search return (%s) %s modseq "/flags/\\\\seen" all 1' % (ret, sset))
            return int(re.search(r"MODSEQ (\d+)$", untagged[0]).group(1))
        self.assertEqual(esearch("min"), modseq[1])
        self.assertEqual(esearch("max"), modseq[3])
        self.assertEqual(esearch("min max", "1:2"), modseq[2])
        self.assertEqual(esearch("min count"), max(modseq[1], modseq[2], modseq[3]))
        self.assertEqual(esearch(""), max(modseq[1], modseq[2], modseq[3]))


class TestBinary(ImapComplianceBase):
    def fetch_raw(self, r, tag, text):
        """The bytes of a FETCH reply up to its tagged line."""
        r.send("%s %s\r\n" % (tag, text))
        data = b""
        for _ in range(1000):
            if re.search(rb"(^|\n)" + tag.encode() + rb" (OK|NO|BAD)[^\n]*\n", data):
                return data
            data += r.sock.recv(65536)
        raise AssertionError("no tagged reply: %r" % data)

    def test_append_literal8_then_body_and_binary(self):
        """RFC 3516 4.3: a message appended as literal8 with binary data is
        stored so that BODY[] (a literal: no NUL) can be sent; BINARY[]
        gives back the exact bytes."""
        r = self.session()
        body = b"\x00-\xe4\n\r\n\n"
        msg = (b"From: a@example.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: binary\r\n\r\n" + body)
        r.send(b"a1 APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertTrue(r.until_tag("a1")[-1].startswith("a1 OK"))
        self.ok(r, "select INBOX")
        data = self.fetch_raw(r, "f1", "fetch 1 (body.peek[1] binary.size[1] binary.peek[1])")
        self.assertIn(b"BODY[1] {14}\r\nAC3kCg0KCg==\r\n", data)
        self.assertIn(b"BINARY.SIZE[1] 7", data)
        self.assertIn(b"BINARY[1] ~{7}\r\n" + body, data)
        self.assertNotIn(b"\x00", data.replace(b"~{7}\r\n" + body, b""))

    def test_binary_of_multipart_is_the_message(self):
        """RFC 3516: BINARY[] of a multipart message has nothing to decode
        at the top: the message as it is, its size in BINARY.SIZE[]."""
        r = self.session()
        msg = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
               b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
               b"--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n"
               b"--b--\r\n")
        self.append(r, "INBOX", msg)
        self.ok(r, "select INBOX")
        data = self.fetch_raw(r, "f2", "fetch 1 (binary.size[] binary.peek[] binary.peek[1] binary.peek[2])")
        self.assertIn(b"BINARY.SIZE[] %d " % len(msg), data)
        self.assertIn(b"BINARY[] {%d}\r\n" % len(msg) + msg, data)
        self.assertIn(b"BINARY[1] {5}\r\nhello", data)
        self.assertIn(b"BINARY[2] {", data)
        self.assertNotIn(b'BINARY[2] ""', data)


if __name__ == "__main__":
    unittest.main()
