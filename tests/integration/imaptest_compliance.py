"""Dovecot's imaptest compliance suite against postoffice: each scripted
group (a file in imaptest's src/tests; 71 of them) is one test, and so is
a 30-second stress run (20 clients over 50 users, with no protocol error).

    imaptest_compliance.py [GROUP...]     all groups, or the ones named

It starts one server the way the integration tests do (harness.Server)
and runs imaptest once per group, against a fresh pair of users each time
(imaptest needs two; a group then starts from empty mailboxes).  A
group fails when imaptest reports a failed command (exit status not 0),
skips the group for a missing capability, or prints any "Error:" line (a protocol error it noticed on the way, such as a
keyword in FETCH FLAGS that FLAGS never announced).  Prints "ok   NAME" or
"FAIL NAME" with imaptest's report, then "imaptest: N passed, M failed" for
tests/run to add up.  Not named test_*.py: tests/run runs it once, against
the normal build only (not in the integration runs of both builds).

$IMAPTEST is the imaptest binary (default build/imaptest/src/imaptest, as
tests/third_party/imaptest/build.sh leaves it) and $IMAPTEST_TESTS the
directory of groups (default build/imaptest/source/src/tests)."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import ROOT, Server  # noqa: E402

IMAPTEST = os.environ.get("IMAPTEST", os.path.join(ROOT, "build", "imaptest", "src", "imaptest"))
TESTS = os.environ.get("IMAPTEST_TESTS",
                       os.path.join(ROOT, "build", "imaptest", "source", "src", "tests"))
PASSWORD = "imaptest-secret"
GROUP_TIMEOUT = 120  # seconds; a whole group takes well under one
REPORT_LINE_MAX = 400  # imaptest echoes commands; some are many kilobytes long


def groups():
    """The group names, as imaptest itself finds them: regular files that
    are not hidden and not *.mbox (the messages a group appends)."""
    return sorted(n for n in os.listdir(TESTS)
                  if not n.startswith(".") and not n.endswith(".mbox")
                  and os.path.isfile(os.path.join(TESTS, n)))


def run_group(srv, number, name):
    """Runs one group; returns (passed, report lines)."""
    users = ["it%d%s@example.org" % (number, n) for n in ("a", "b")]
    for user in users:
        srv.add_user(user, PASSWORD)
    argv = [IMAPTEST, "host=127.0.0.1", "port=%d" % srv.port("imap"),
            "user=" + users[0], "user2=" + users[1], "pass=" + PASSWORD,
            "test=" + os.path.join(TESTS, name)]
    try:
        r = subprocess.run(argv, capture_output=True, cwd=srv.dir, timeout=GROUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, ["timed out after %ds" % GROUP_TIMEOUT]
    out = (r.stdout + r.stderr).decode("utf-8", "replace").splitlines()
    errors = [ln for ln in out if ln.startswith("Error:") or ln.startswith("Panic:")
              or ln.startswith("Fatal:")]
    # A group skipped for a missing capability has not passed either.
    ok = (r.returncode == 0 and not errors
          and "1 test groups: 0 failed, 0 skipped" in "\n".join(out))
    report = [ln if len(ln) <= REPORT_LINE_MAX else ln[:REPORT_LINE_MAX] + "..." for ln in out]
    if not ok:
        report.append("imaptest exit status %d" % r.returncode)
    return ok, report


def write_mbox(path, count=300):
    """Deterministic mail for the stress run's APPENDs: plain and multipart
    messages, replies with References, Cc, base64 attachments."""
    with open(path, "w") as out:
        for i in range(count):
            out.write("From sender%d@example.net Mon Jan  1 10:00:00 2024\n" % i)
            refs = ("In-Reply-To: <m%d@example.net>\nReferences: <m%d@example.net>\n" % (i - 1, i - 1)
                    if i % 4 == 0 and i else "")
            out.write("From: Sender %d <sender%d@example.net>\nTo: user@example.org\n"
                      "Cc: c%d@example.com\nSubject: %smessage %d\n"
                      "Date: Mon, 1 Jan 2024 10:%02d:00 +0000\nMessage-ID: <m%d@example.net>\n%s"
                      "MIME-Version: 1.0\n" % (i, i, i, ("Re: ", "Fwd: ", "")[i % 3], i, i % 60, i, refs))
            if i % 3 == 0:
                out.write("Content-Type: text/plain; charset=utf-8\n\n" + "hello world line\n" * (1 + i % 50) + "\n")
            else:
                out.write('Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\nContent-Type: text/plain\n\n'
                          "body text\n--b%d\nContent-Type: application/octet-stream\n"
                          "Content-Transfer-Encoding: base64\n\nAAAAAAAAAAAAAAAA\n--b%d--\n\n" % (i, i, i, i))


def stress(srv, secs=30):
    """imaptest's stress mode: 20 clients over 50 users for secs seconds,
    the default command mix, APPENDs from an mbox.  Passes with no
    protocol error (no "Error:" line) and some commands done."""
    for i in range(51, 101):
        srv.add_user("user%d@example.org" % i, PASSWORD)
    mbox = os.path.join(srv.dir, "stress.mbox")
    write_mbox(mbox)
    argv = [IMAPTEST, "host=127.0.0.1", "port=%d" % srv.port("imap"), "user=user%d@example.org",
            "pass=" + PASSWORD, "users=51-100", "clients=20", "secs=%d" % secs, "mbox=" + mbox]
    try:
        r = subprocess.run(argv, capture_output=True, cwd=srv.dir, timeout=secs + 90)
    except subprocess.TimeoutExpired:
        return False, ["timed out"]
    out = (r.stdout + r.stderr).decode("utf-8", "replace").splitlines()
    errors = [ln for ln in out if ln.startswith(("Error:", "Panic:", "Fatal:"))]
    report = [ln[:REPORT_LINE_MAX] for ln in (errors[:20] if errors else out[-4:])]
    report.append("%d protocol errors, exit status %d" % (len(errors), r.returncode))
    return (not errors and r.returncode == 0 and len(out) > 2), report


def main():
    if not os.access(IMAPTEST, os.X_OK) or not os.path.isdir(TESTS):
        print("FAIL imaptest: %s or %s missing (tests/third_party/imaptest/build.sh)"
              % (IMAPTEST, TESTS))
        print("imaptest: 0 passed, 1 failed")
        sys.exit(1)
    names = sys.argv[1:] or groups()
    passed = failed = 0
    # The default password-guessing policy stays on: a burst of good
    # logins from one address is not refused (auth/auth_penalty.h).
    config = "[imap]\nmax_connections_per_user = 1000\n"
    with Server(extra_config=config) as srv:
        srv.add_domain("example.org")
        for number, name in enumerate(names):
            t0 = time.time()
            ok, report = run_group(srv, number, name)
            took = time.time() - t0
            if ok:
                passed += 1
                print("ok   imaptest/%s (%.1fs)" % (name, took))
            else:
                failed += 1
                print("FAIL imaptest/%s (%.1fs)" % (name, took))
                for ln in report:
                    print("     " + ln)
            sys.stdout.flush()
        if not sys.argv[1:]:
            t0 = time.time()
            ok, report = stress(srv)
            passed, failed = passed + ok, failed + (not ok)
            print("%s imaptest/stress (%.1fs)" % ("ok  " if ok else "FAIL", time.time() - t0))
            for ln in report:
                print("     " + ln)
    print("imaptest: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
