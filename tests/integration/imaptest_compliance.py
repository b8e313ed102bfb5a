"""Dovecot's imaptest compliance suite against postoffice: each scripted
group (a file in imaptest's src/tests; 71 of them) is one test.

    imaptest_compliance.py [GROUP...]     all groups, or the ones named

It starts one server the way the integration tests do (harness.Server),
adds the two users imaptest needs, and runs imaptest once per group.  A
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
USERS = ("imaptest1@example.org", "imaptest2@example.org")
PASSWORD = "imaptest-secret"
GROUP_TIMEOUT = 120  # seconds; a whole group takes well under one
REPORT_LINE_MAX = 400  # imaptest echoes commands; some are many kilobytes long


def groups():
    """The group names, as imaptest itself finds them: regular files that
    are not hidden and not *.mbox (the messages a group appends)."""
    return sorted(n for n in os.listdir(TESTS)
                  if not n.startswith(".") and not n.endswith(".mbox")
                  and os.path.isfile(os.path.join(TESTS, n)))


def run_group(srv, name):
    """Runs one group; returns (passed, report lines)."""
    argv = [IMAPTEST, "host=127.0.0.1", "port=%d" % srv.port("imap"),
            "user=" + USERS[0], "user2=" + USERS[1], "pass=" + PASSWORD,
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


def main():
    if not os.access(IMAPTEST, os.X_OK) or not os.path.isdir(TESTS):
        print("FAIL imaptest: %s or %s missing (tests/third_party/imaptest/build.sh)"
              % (IMAPTEST, TESTS))
        print("imaptest: 0 passed, 1 failed")
        sys.exit(1)
    names = sys.argv[1:] or groups()
    passed = failed = 0
    with Server() as srv:
        srv.add_domain("example.org")
        for user in USERS:
            srv.add_user(user, PASSWORD)
        for name in names:
            t0 = time.time()
            ok, report = run_group(srv, name)
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
    print("imaptest: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
