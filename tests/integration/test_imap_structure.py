"""BODYSTRUCTURE, BODY, ENVELOPE and RFC822.SIZE against Dovecot's answers.

Every message of tests/data/imap-structure/messages/ is APPENDed to
postoffice and fetched; the answer is compared field by field (see
imapstruct.py) with the one Dovecot 2.3 gave for the same message, recorded
once by tests/data/imap-structure/record-dovecot into dovecot/NAME.fetch
(Dovecot is not needed to run this test).  Where postoffice answers
differently on purpose, DELIBERATE below holds its answer and the reason
(docs/imap.md, "BODYSTRUCTURE and ENVELOPE", explains each class); any other
difference, and a deliberate one whose answer changed, fails.

IMAP_STRUCTURE_REPORT=1 prints every difference with both answers and the
counts (messages, fields compared, fields that differ).
"""
import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imapstruct  # noqa: E402
from harness import ROOT, Server  # noqa: E402

CORPUS = os.path.join(ROOT, "tests", "data", "imap-structure")
USER = "structure@example.org"
PASSWORD = "secret"

# Why postoffice answers differently (docs/imap.md, "BODYSTRUCTURE and
# ENVELOPE", has the whole list of classes).
CASE = ("type, subtype, parameter names, disposition type and encoding are "
        "case-insensitive (RFC 2045 5.1 and 6.1, RFC 2183): sent lowercase; Dovecot "
        "keeps the sender's case, Cyrus uppercases")
UNFOLD = ("a field is unfolded as RFC 5322 2.2.3 says (line ends removed, the "
          "whitespace kept) and trimmed at both ends; Dovecot collapses folding "
          "whitespace in ENVELOPE and keeps leading and trailing blanks")
BOUNDARY_CRLF = ("the line end before a boundary belongs to the boundary (RFC 2046 5.1.1), "
                 "also after an inner close delimiter and after the last header line of an "
                 "encapsulated message; Dovecot counts it in the message/rfc822 part")
INVALID_CT = ("an invalid Content-Type is read as text/plain (RFC 2045 5.2) with the "
              "parameters it has and us-ascii when it has no charset; Dovecot reports an "
              "empty type")
NO_BOUNDARY = ("a multipart without a valid boundary (none, or empty: RFC 2046 5.1.1 wants "
               "1 to 70 characters) is read as text/plain (RFC 2045 5.2) so that its text "
               "stays readable; Dovecot shows one empty part (and takes \"\" as a boundary)")
PARAM_SKIP = ("a broken parameter is skipped and the ones after it are kept, as Cyrus does; "
              "Dovecot drops the rest")
UNQUOTED = ("an unquoted value with spaces runs to the ';', as mail clients read it; "
            "Dovecot stops at the space")
NO_DISPOSITION = ("a Content-Disposition without its type is none (RFC 2183 requires the "
                  "type; Cyrus agrees); Dovecot sends an empty type")
CHARSET_2231 = ("a charset given in RFC 2231 form (charset*=) is a charset: no us-ascii "
                "default beside it")
RFC2231_GAP = ("RFC 2231 sections after a gap are dropped (the run from *0 is joined, RFC "
               "2231 3); Dovecot lists the sections raw")
ADDR = ("broken address syntax: what the lenient parser recovers (the local part of an "
        "unterminated quote, an address after junk)")

# (message, path) -> (postoffice's value at path in imapstruct.text() form,
# why it differs from Dovecot's).  A path covers everything under it; a
# BODYSTRUCTURE path covers the same path of BODY when postoffice's values
# there are the same (BODY is BODYSTRUCTURE without extension data).
DELIBERATE = {
    ('addr-invalid', 'ENVELOPE.5'):
        ('((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN") (NIL NIL "broken" "MISSING_DOMAIN"))', ADDR),
    ('addr-invalid', 'ENVELOPE.6.0'):
        ('(NIL NIL "unterminated <u@example.org>" "MISSING_DOMAIN")', ADDR),
    ('ct-case-and-quotes', 'BODYSTRUCTURE.0'):
        ('"text"', CASE),
    ('ct-case-and-quotes', 'BODYSTRUCTURE.1'):
        ('"plain"', CASE),
    ('ct-case-and-quotes', 'BODYSTRUCTURE.2'):
        ('("charset" "UTF-8" "format" "Flowed" "delsp" "yes")', CASE),
    ('ct-empty', 'BODY'):
        ('("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1)', INVALID_CT),
    ('ct-empty', 'BODYSTRUCTURE'):
        ('("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)', INVALID_CT),
    ('ct-garbage', 'BODY'):
        ('("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 6 1)', INVALID_CT),
    ('ct-garbage', 'BODYSTRUCTURE'):
        ('("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)', INVALID_CT),
    ('ct-no-subtype', 'BODY'):
        ('("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 6 1)', INVALID_CT),
    ('ct-no-subtype', 'BODYSTRUCTURE'):
        ('("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)', INVALID_CT),
    ('ct-param-empty-and-novalue', 'BODYSTRUCTURE.2'):
        ('("charset" "" "x" "y")', PARAM_SKIP),
    ('ct-param-unquoted-space', 'BODYSTRUCTURE.2.1'):
        ('"my file.pdf"', UNQUOTED),
    ('ct-param-uppercase-value', 'BODYSTRUCTURE.2.2'):
        ('"x-name"', CASE),
    ('cte-odd', 'BODYSTRUCTURE.1.5'):
        ('"base64"', CASE),
    ('cte-odd', 'BODYSTRUCTURE.2.5'):
        ('"quoted-printable"', CASE),
    ('cte-odd', 'BODYSTRUCTURE.4.5'):
        ('"7bit"', CASE),
    ('ext-disposition', 'BODYSTRUCTURE.1.9.0'):
        ('"inline"', CASE),
    ('ext-disposition', 'BODYSTRUCTURE.2.8'):
        ('NIL', NO_DISPOSITION),
    ('ext-disposition', 'BODYSTRUCTURE.3.8'):
        ('NIL', NO_DISPOSITION),
    ('ext-id-description-md5', 'BODYSTRUCTURE.1.3'):
        ('"<spaced@example.org>"', UNFOLD),
    ('ext-id-description-md5', 'BODYSTRUCTURE.1.4'):
        ('"tabbed"', UNFOLD),
    ('ext-language-location', 'BODYSTRUCTURE.1.11'):
        ('"http://example.org/ folded"', UNFOLD),
    ('hdr-folded', 'ENVELOPE.1'):
        ('"a folded\\x09subject with   spaces"', UNFOLD),
    ('hdr-folded', 'ENVELOPE.9'):
        ('"<folded@example.org>"', UNFOLD),
    ('hdr-whitespace-values', 'ENVELOPE.0'):
        ('"Mon, 1 Jan 2024 10:00:00 +0000"', UNFOLD),
    ('lf-msg-rfc822', 'BODYSTRUCTURE.1.6'):
        ('349', BOUNDARY_CRLF),
    ('lf-msg-rfc822', 'BODYSTRUCTURE.1.9'):
        ('16', BOUNDARY_CRLF),
    ('msg-rfc822', 'BODYSTRUCTURE.1.6'):
        ('349', BOUNDARY_CRLF),
    ('msg-rfc822', 'BODYSTRUCTURE.1.9'):
        ('16', BOUNDARY_CRLF),
    ('msg-rfc822-base64', 'BODYSTRUCTURE.0.6'):
        ('32', BOUNDARY_CRLF),
    ('msg-rfc822-base64', 'BODYSTRUCTURE.0.9'):
        ('0', BOUNDARY_CRLF),
    ('msg-rfc822-headers-only', 'BODYSTRUCTURE.0.6'):
        ('42', BOUNDARY_CRLF),
    ('msg-rfc822-headers-only', 'BODYSTRUCTURE.0.9'):
        ('1', BOUNDARY_CRLF),
    ('mp-empty-boundary-param', 'BODY'):
        ('("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 43 5)', NO_BOUNDARY),
    ('mp-empty-boundary-param', 'BODYSTRUCTURE'):
        ('("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 43 5 NIL NIL NIL NIL)', NO_BOUNDARY),
    ('mp-no-boundary-param', 'BODY'):
        ('("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 45 5)', NO_BOUNDARY),
    ('mp-no-boundary-param', 'BODYSTRUCTURE'):
        ('("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 45 5 NIL NIL NIL NIL)', NO_BOUNDARY),
    ('rfc2231-charset-param', 'BODYSTRUCTURE.2'):
        ('("charset*" "us-ascii\'\'utf-8")', CHARSET_2231),
    ('rfc2231-gap', 'BODYSTRUCTURE.2'):
        ('("name" "a")', RFC2231_GAP),
}


def corpus_names():
    return sorted(n[:-len(".eml")] for n in os.listdir(os.path.join(CORPUS, "messages"))
                  if n.endswith(".eml"))


def read(*parts):
    with open(os.path.join(CORPUS, *parts), "rb") as f:
        return f.read()


def covering(name, path, ours):
    """The DELIBERATE key that covers path of message name, or None."""
    p = path
    while True:
        if (name, p) in DELIBERATE:
            return (name, p)
        if p.startswith("BODY."):
            mirror = "BODYSTRUCTURE." + p[len("BODY."):]
            if (name, mirror) in DELIBERATE and imapstruct.text(imapstruct.lookup(ours, p)) == \
                    DELIBERATE[(name, mirror)][0]:
                return (name, mirror)
        if "." not in p or p == "RFC822.SIZE":
            return None
        p = p.rsplit(".", 1)[0]


def count_leaves(value):
    if isinstance(value, list):
        return sum(count_leaves(v) for v in value) or 1
    return 1


class ImapStructureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.srv.start()
        cls.srv.add_domain("example.org")
        cls.srv.add_user(USER, PASSWORD)
        cls.names = corpus_names()
        cls.ours, cls.cached = {}, {}
        c = imapstruct.Client(cls.srv.port("imap"))
        try:
            c.login(USER, PASSWORD)
            c.command("SELECT INBOX")
            for name in cls.names:
                c.append("INBOX", read("messages", name + ".eml"))
            c.command("NOOP")
            for seq, name in enumerate(cls.names, 1):
                cls.ours[name] = imapstruct.fetch_items(c.fetch(seq))
            # The second FETCH reads the texts the first one cached.
            for seq, name in enumerate(cls.names, 1):
                cls.cached[name] = imapstruct.fetch_items(c.fetch(seq))
        finally:
            c.close()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def golden(self, name):
        return imapstruct.fetch_items(read("dovecot", name + ".fetch"))

    def test_corpus_recorded(self):
        """Every message has Dovecot's answer and every answer a message."""
        recorded = sorted(n[:-len(".fetch")] for n in os.listdir(os.path.join(CORPUS, "dovecot"))
                          if n.endswith(".fetch"))
        self.assertEqual(recorded, self.names)
        self.assertGreaterEqual(len(self.names), 90)

    def test_same_as_dovecot(self):
        """Each field is Dovecot's, or the deliberate answer listed."""
        report = os.environ.get("IMAP_STRUCTURE_REPORT")
        unexplained, wrong, used = [], [], set()
        fields = differing = 0
        for name in self.names:
            want, got = self.golden(name), self.ours[name]
            fields += sum(count_leaves(want.get(i)) for i in imapstruct.ITEMS)
            for path in imapstruct.diff_items(want, got):
                differing += 1
                if report:
                    print("\n%s %s\n  dovecot    %s\n  postoffice %s" % (
                        name, path, imapstruct.text(imapstruct.lookup(want, path)),
                        imapstruct.text(imapstruct.lookup(got, path))))
                key = covering(name, path, got)
                if key is None:
                    unexplained.append("%s %s: dovecot %s, postoffice %s" % (
                        name, path, imapstruct.text(imapstruct.lookup(want, path)),
                        imapstruct.text(imapstruct.lookup(got, path))))
                    continue
                used.add(key)
        for key, (value, _reason) in sorted(DELIBERATE.items()):
            name, path = key
            got = imapstruct.text(imapstruct.lookup(self.ours[name], path))
            if got != value:
                wrong.append("%s %s: postoffice %s, listed %s" % (name, path, got, value))
            elif key not in used:
                wrong.append("%s %s: listed as deliberate but the same as Dovecot's" % key)
        if report:
            print("\nimap-structure: %d messages, %d fields, %d differ (%d deliberate entries)" % (
                len(self.names), fields, differing, len(DELIBERATE)))
        self.assertEqual(unexplained, [], "differences from Dovecot not listed as deliberate")
        self.assertEqual(wrong, [], "deliberate differences that changed")

    def test_stale_cache_dropped(self):
        """Texts cached by another version of the builder are not served:
        the index keeps the version (cache_meta) and drops them on open."""
        name = self.names[0]
        db_path = os.path.join(self.srv.maildir(USER), "index.db")

        def poison(drop_version):
            # (with the server stopped: the next login opens the index
            # afresh, as after an upgrade)
            self.srv.stop()
            db = sqlite3.connect(db_path, timeout=10)
            db.execute("UPDATE cache SET bodystructure='(\"stale\")' WHERE uid=1")
            if drop_version:
                db.execute("DELETE FROM cache_meta")
            db.commit()
            db.close()
            self.srv.start()

        def fetch_first():
            c = imapstruct.Client(self.srv.port("imap"))
            try:
                c.login(USER, PASSWORD)
                c.command("EXAMINE INBOX")
                return imapstruct.fetch_items(c.fetch(1))
            finally:
                c.close()

        # The cache is what FETCH serves...
        poison(False)
        self.assertEqual(fetch_first()["BODYSTRUCTURE"], [b"stale"])
        # ...unless another builder version wrote it.
        poison(True)
        self.assertEqual(fetch_first()["BODYSTRUCTURE"], self.ours[name]["BODYSTRUCTURE"])

    def test_cached_same(self):
        """The texts read back from the index cache are the ones built."""
        for name in self.names:
            self.assertEqual(self.cached[name], self.ours[name], name)


if __name__ == "__main__":
    unittest.main()
