"""`postoffice migrate-to-postgresql`: a local installation (users.db,
Maildirs with their index, the spool) populated through the running
server (two domains, three users, an alias, a quota, mail over SMTP,
APPENDs with flags, keywords and dates, folders, subscriptions, expunges
that leave UID gaps, two messages queued for a remote domain routed to a
closed port, one of them held) is stopped, migrated into a private
PostgreSQL (pgserver.py) and started again with [storage] backend =
postgresql.  Everything IMAP shows (per folder UIDVALIDITY, UIDNEXT,
HIGHESTMODSEQ, per message UID, FLAGS, INTERNALDATE, RFC822.SIZE,
BODY[]), the subscriptions, the quota, POP3's messages (sizes, UIDLs,
octets) and the old passwords are the same; the alias still delivers; the queued message is
delivered from the PostgreSQL queue to a sink once it is routed there,
exactly once, and the held one stays held.  The command refuses while
the server runs and, run a second time, refuses without changing the
database."""
import imaplib
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DeadPort, Server, tls_context, wait_for  # noqa: E402
from pgserver import PgTestCase, available  # noqa: E402
from test_pg_queue import SinkServer  # noqa: E402

USERS = {"alice@example.org": "alice pw", "bob@example.org": "bob pw", "carol@example.net": "carol pw"}


def make_msg(subject, to, body="hello\r\n"):
    return ("From: Dave <dave@sender.test>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <%s@sender.test>\r\n\r\n%s"
            % (to, subject, re.sub(r"\W", "", subject), body)).encode()


def ok(typ_data):
    typ, data = typ_data
    if typ != "OK":
        raise AssertionError("IMAP: %s %r" % (typ, data))
    return data


def folders(m):
    names = []
    for line in ok(m.list('""', "*")):
        names.append(re.match(rb'\(.*?\) (?:"."|NIL) (.*)$', line).group(1).decode().strip('"'))
    return sorted(names)


def imap_state(srv):
    """What IMAP shows of every user's store: {user: {...}}, with
    HIGHESTMODSEQ apart (it may only grow)."""
    state, modseqs = {}, {}
    for user, password in sorted(USERS.items()):
        m = srv.imap()
        ok(m.login(user, password))
        user_state = {"subscribed": sorted(ok(m.lsub('""', "*"))),
                      "quota": ok(m.getquotaroot("INBOX")), "folders": {}}
        for name in folders(m):
            status = ok(m.status('"%s"' % name, "(MESSAGES UIDVALIDITY UIDNEXT HIGHESTMODSEQ)"))[0].decode()
            fields = dict(re.findall(r"(\w+) (\d+)", status.split("(", 1)[1]))
            modseqs[(user, name)] = int(fields.pop("HIGHESTMODSEQ"))
            ok(m.select('"%s"' % name, readonly=True))
            msgs = []
            if int(fields["MESSAGES"]) > 0:
                for item in ok(m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")):
                    if isinstance(item, tuple):
                        # \Recent belongs to a session, not to the store
                        msgs.append((re.sub(rb" ?\\Recent", b"", item[0]), item[1]))
            fields["messages"] = msgs
            user_state["folders"][name] = fields
            m.close()
        m.logout()
        state[user] = user_state
    return state, modseqs


def pop3_state(srv, user):
    p = srv.pop3()
    p.user(user)
    p.pass_(USERS[user])
    uidls = dict(line.split() for line in p.uidl()[1])
    msgs = [(int(line.split()[1]), uidls[line.split()[0]], b"\r\n".join(p.retr(int(line.split()[0]))[1]))
            for line in p.list()[1]]
    p.quit()
    return msgs


@unittest.skipIf(available(), "no private PostgreSQL: %s" % available())
class MigrateTest(PgTestCase):
    def populate(self, srv):
        srv.add_domain("example.org")
        srv.add_domain("example.net")
        for user, password in USERS.items():
            srv.add_user(user, password, quota="10M" if user.startswith("alice") else None)
        srv.cli("alias", "add", "info@example.org", "alice@example.org")
        srv.cli("alias", "add", "info@example.org", "bob@example.org")
        with srv.smtp() as s:
            for i in range(4):
                s.sendmail("dave@sender.test", ["alice@example.org"], make_msg("to alice %d" % i, "alice"))
            s.sendmail("dave@sender.test", ["info@example.org"], make_msg("to info", "info"))
            s.sendmail("dave@sender.test", ["carol@example.net"],
                       make_msg("to carol", "carol", "caf\xe9 8bit\r\n".encode("latin-1").decode("latin-1")))
        m = srv.imap()
        ok(m.login("alice@example.org", USERS["alice@example.org"]))
        ok(m.create("Projects"))
        ok(m.create("Archive.2024"))
        ok(m.subscribe("Projects"))
        ok(m.unsubscribe("Trash"))
        for i, (flags, date) in enumerate([(r"(\Seen \Flagged $Important)", '"01-Jan-2020 10:00:00 +0000"'),
                                           (r"(\Draft)", '"15-Feb-2021 08:30:00 +0100"'),
                                           (r"(\Seen Work)", '"31-Dec-2022 23:59:59 -0500"'),
                                           (r"(\Answered)", '"02-Mar-2023 12:00:00 +0000"'),
                                           (r"()", '"03-Mar-2023 12:00:00 +0000"')]):
            ok(m.append("Projects", flags, date, make_msg("project %d" % i, "alice", "part %d\r\n" % i)))
        ok(m.select("Projects"))
        ok(m.uid("STORE", "2,4", "+FLAGS.SILENT", r"(\Deleted)"))
        ok(m.expunge())
        ok(m.select("INBOX"))
        ok(m.uid("STORE", "1", "+FLAGS.SILENT", r"(\Answered Work)"))
        ok(m.uid("STORE", "3", "+FLAGS.SILENT", r"(\Deleted)"))
        ok(m.expunge())
        ok(m.uid("COPY", "2", "Archive.2024"))
        m.logout()
        # two messages for the remote domain, routed to a closed port
        with srv.smtp("submission") as s:
            s.starttls(context=tls_context())
            s.login("alice@example.org", USERS["alice@example.org"])
            s.sendmail("alice@example.org", ["x@remote.test"], make_msg("queued", "x@remote.test"))
            s.sendmail("alice@example.org", ["held@remote.test"], make_msg("held", "held@remote.test"))
        queue = self.queue(srv)
        held = [e["id"] for e in queue if e["recipients"][0]["address"] == "held@remote.test"]
        srv.cli("queue", "hold", held[0])
        # the other one was tried at least once
        self.assertTrue(wait_for(lambda: any(r["attempts"] > 0 for e in self.queue(srv) for r in e["recipients"]
                                             if r["address"] == "x@remote.test"), timeout=10))

    def queue(self, srv):
        return json.loads(srv.cli("queue", "list", "--json").stdout)

    def migrate(self, srv):
        return srv.cli("migrate-to-postgresql", "--conninfo", self.conninfo, check=False)

    def count_rows(self):
        return self.pg.psql(self.conninfo, "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM "
                            "mail_messages), (SELECT count(*) FROM queue_messages), (SELECT count(*) FROM "
                            "mail_mailboxes)").strip()

    def test_local_installation_moves_into_postgresql(self):
        dead = DeadPort()
        self.addCleanup(dead.close)
        srv = Server(extra_config="[queue]\nretry = 1s\n[routes]\nremote.test = 127.0.0.1:%d\n" % dead.port)
        self.addCleanup(srv.cleanup)
        srv.start()
        self.populate(srv)

        r = self.migrate(srv)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(b"the server runs", r.stderr)
        self.assertEqual(self.pg.psql(self.conninfo, "SELECT to_regclass('users') IS NULL").strip(), "t")

        pop_before = {u: pop3_state(srv, u) for u in USERS}
        before, modseq_before = imap_state(srv)
        queue_before = sorted(self.queue(srv), key=lambda e: e["recipients"][0]["address"])
        srv.stop()

        r = self.migrate(srv)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        for user in USERS:
            self.assertRegex(out, r"user %s: \d+ mailboxes, \d+ messages, \d+ bytes: copied and verified"
                             % re.escape(user))
        self.assertIn("queue: 2 messages: copied and verified", out)
        print("\n" + re.search(r"done in .*", out).group(0), file=sys.stderr)
        # the local data stays
        self.assertTrue(os.path.exists(os.path.join(srv.data_dir, "users.db")))
        self.assertEqual(len(srv.maildir_messages("carol@example.net")), 1)

        sink = SinkServer()
        self.addCleanup(sink.close)
        srv.write_config(open(srv.config_path).read(),
                         "[storage]\nbackend = postgresql\n[postgresql]\nconninfo = %s\n"
                         "[routes]\nremote.test = 127.0.0.1:%d\n" % (self.conninfo, sink.port))
        srv.start()
        pop_after = {u: pop3_state(srv, u) for u in USERS}
        after, modseq_after = imap_state(srv)
        self.assertEqual(pop_after, pop_before)
        for user in USERS:
            self.assertEqual(after[user], before[user], user)
        self.assertEqual(sorted(modseq_after), sorted(modseq_before))
        for key, value in modseq_before.items():
            self.assertGreaterEqual(modseq_after[key], value, key)
        # a gap was kept: Projects has UIDs 1, 3, 5 and UIDNEXT 6
        projects = before["alice@example.org"]["folders"]["Projects"]
        self.assertEqual(projects["UIDNEXT"], "6")
        self.assertEqual([re.search(rb"UID (\d+)", h).group(1) for h, _ in projects["messages"]],
                         [b"1", b"3", b"5"])

        # the queue: the pending message reaches the sink once, the held one stays held
        self.assertTrue(wait_for(lambda: len(sink.accepted) == 1, timeout=15), sink.accepted)
        self.assertEqual(sink.accepted[0][1], ["x@remote.test"])
        self.assertTrue(wait_for(lambda: len(self.queue(srv)) == 1, timeout=10))
        queue_after = self.queue(srv)
        self.assertEqual(queue_after[0]["id"], queue_before[0]["id"])
        self.assertTrue(queue_after[0]["held"])
        self.assertEqual(len(sink.accepted), 1)

        # the alias still delivers to both users, in the database
        with srv.smtp() as s:
            s.sendmail("dave@sender.test", ["info@example.org"], make_msg("after", "info"))
        for user in ("alice@example.org", "bob@example.org"):
            m = srv.imap()
            ok(m.login(user, USERS[user]))
            self.assertEqual(int(ok(m.select("INBOX", readonly=True))[0]),
                             int(before[user]["folders"]["INBOX"]["MESSAGES"]) + 1)
            m.logout()
        with self.assertRaises(imaplib.IMAP4.error):
            srv.imap().login("alice@example.org", "wrong")

        # a second run refuses and changes nothing
        srv.stop()
        rows = self.count_rows()
        r = self.migrate(srv)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(b"refused", r.stderr)
        self.assertIn(b"nothing was changed", r.stderr)
        self.assertEqual(self.count_rows(), rows)


if __name__ == "__main__":
    unittest.main()
