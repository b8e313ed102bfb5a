#!/bin/bash
# build.sh [BUILD_DIR] - build imaptest (Dovecot's IMAP server tester, MIT licence) from the
# tarball beside this script, against Debian bookworm's Dovecot 2.3 libraries.
#   BUILD_DIR default: /tmp/imaptest-build (tests/run uses build/imaptest).  Result:
#   BUILD_DIR/src/imaptest and the scripted compliance tests in BUILD_DIR/source/src/tests
#   (71 groups).  tests/integration/imaptest_compliance.py runs them against postoffice.
# Needs (Debian): build-essential autoconf automake libtool pkg-config dovecot-dev.
# Run a compliance pass against an IMAP server that has two users with password P:
#   BUILD_DIR/src/imaptest host=127.0.0.1 port=PORT user=U1 user2=U2 pass=P \
#       test=BUILD_DIR/source/src/tests
# It ends with "N test groups: F failed, S skipped ..." and per-command failure counts.
# Stress mode (random load): imaptest host=... port=... user=U%d pass=P clients=20 secs=30
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-/tmp/imaptest-build}
DCLIB=/usr/lib/dovecot DCINC=/usr/include/dovecot
[ -f "$DCLIB/dovecot-config" ] || { echo "missing $DCLIB/dovecot-config: apt-get install dovecot-dev" >&2; exit 2; }
for t in autoreconf libtoolize automake gcc make; do
    command -v "$t" >/dev/null || { echo "$t missing: apt-get install build-essential autoconf automake libtool pkg-config" >&2; exit 2; }
done
rm -rf "$BUILD"; mkdir -p "$BUILD/source"
tar -xzf "$HERE/imaptest-release-2.3.tar.gz" -C "$BUILD/source"
# Debian's libdovecot (deb12u7) has a 4th argument on imap_parser_create() (NULL = defaults).
if grep -q 'imap_parser_params' "$DCINC/imap-parser.h"; then
    sed -i 's/imap_parser_create(\(.*\), (size_t)-1);/imap_parser_create(\1, (size_t)-1, NULL);/' "$BUILD"/source/src/*.c
fi
(cd "$BUILD/source" && autoreconf -fi) > "$BUILD/autoreconf.log" 2>&1 || { tail -20 "$BUILD/autoreconf.log" >&2; exit 1; }
cd "$BUILD"
./source/configure --with-dovecot="$DCLIB" LDFLAGS="-Wl,-rpath,$DCLIB" > configure.log 2>&1 || { tail -30 configure.log >&2; exit 1; }
make -j"$(nproc)" > make.log 2>&1 || { grep -E 'error' make.log | head -30 >&2; exit 1; }
echo "built $BUILD/src/imaptest; tests in $BUILD/source/src/tests"
