"""SPF (RFC 7208) against the openspf.org test suite that Debian's
python3-spf ships (rfc7208-tests.yml.gz): each scenario's zone is served by
the test's DNS responder, and `postoffice spf IP SENDER HELO` must give the
expected result for every test case.

The suite's conventions (as its own driver, testspf.py, applies them): type
SPF records stand in for TXT records unless the name has TXT records of its
own ("TXT: NONE" says it has none); "TIMEOUT" makes queries for the name
fail (here with SERVFAIL, which is a DNS error to the resolver as a timeout
is, without waiting for one), unless a record of the asked type comes
before it; names under "error." that the zone lacks fail the same way."""
import gzip
import os
import socket
import subprocess
import tempfile
import unittest

import yaml

from harness import BIN
from dnsserver import DnsServer, TYPE_A, TYPE_AAAA, TYPE_MX, TYPE_TXT, TYPE_PTR, TYPE_CNAME

SUITE = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"
TYPES = {"A": TYPE_A, "AAAA": TYPE_AAAA, "MX": TYPE_MX, "TXT": TYPE_TXT, "PTR": TYPE_PTR,
         "CNAME": TYPE_CNAME}


def txt_strings(value):
    """A TXT/SPF value of the suite: one string or a list of strings, with
    \\x escapes meaning octets."""
    parts = value if isinstance(value, list) else [value]
    return [p.encode("utf-8") if isinstance(p, str) else p for p in parts]


def load_zone(dns, zonedata):
    for name, rrs in zonedata.items():
        name = name.lower()
        has_txt = any(isinstance(r, dict) and "TXT" in r for r in rrs)
        seen_types = set()
        dns.add_name(name)
        for r in rrs:
            if r == "TIMEOUT":
                # a timeout for every type not answered before it
                for t in set(TYPES.values()) - seen_types:
                    dns.add_servfail(name, t)
                continue
            (t, v), = r.items()
            if t == "SPF":
                if has_txt or v == "NONE":
                    continue
                t = "TXT"
            if v == "NONE":
                continue
            seen_types.add(TYPES[t])
            if t == "TXT":
                dns.add_txt(name, *txt_strings(v))
            elif t == "A":
                dns.add_a(name, v)
            elif t == "AAAA":
                dns.add_aaaa(name, v)
            elif t == "MX":
                dns.add_mx(name, v[0], v[1])
            elif t == "PTR":
                dns.add_ptr(name, v)
            elif t == "CNAME":
                dns.add_cname(name, v)


class ErrorNames(DnsServer):
    """Unknown names under "error." fail (the suite's convention)."""

    def answer(self, query):
        from dnsserver import decode_name
        name, _ = decode_name(query, 12)
        key = name.lower().rstrip(".")
        if key.startswith("error.") and key not in self.records:
            self.add_servfail(key)
        return super().answer(query)


def scenarios():
    with gzip.open(SUITE, "rt", encoding="utf-8") as f:
        return list(yaml.safe_load_all(f))


class TestSpfSuite(unittest.TestCase):
    def test_rfc7208_suite(self):
        failures = []
        total = 0
        tmp = tempfile.mkdtemp(prefix="po-spf-")
        for sc in scenarios():
            dns = ErrorNames()
            load_zone(dns, sc.get("zonedata") or {})
            dns.start()
            conf = os.path.join(tmp, "spf.conf")
            with open(conf, "w") as f:
                f.write("[server]\ndata_dir = %s\nhostname = receiver.test\n[dns]\nresolver = %s\n"
                        % (tmp, dns.address))
            try:
                for name, t in sc["tests"].items():
                    total += 1
                    expected = t["result"] if isinstance(t["result"], list) else [t["result"]]
                    r = subprocess.run([BIN, "-c", conf, "spf", t["host"], t["mailfrom"], t["helo"]],
                                       capture_output=True, timeout=60)
                    out = r.stdout.decode("utf-8", "replace").strip()
                    result = out.split(" ", 1)[0]
                    if result not in expected:
                        failures.append("%s (%s): %s, expected %s" % (name, sc["description"], out,
                                                                      "/".join(expected)))
                        continue
                    # "DEFAULT": the receiver's own text, whatever it is
                    if (result == "fail" and t.get("explanation", "DEFAULT") != "DEFAULT"
                            and len(expected) == 1):
                        got = out.split(" ", 1)[1] if " " in out else ""
                        if got != t["explanation"]:
                            failures.append("%s: explanation %r, expected %r" % (name, got,
                                                                                 t["explanation"]))
            finally:
                dns.stop()
        self.assertGreater(total, 150)
        self.assertEqual(failures, [], "%d of %d cases fail:\n%s" % (len(failures), total,
                                                                    "\n".join(failures)))


if __name__ == "__main__":
    unittest.main()
