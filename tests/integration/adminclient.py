"""Helpers for the admin listener's tests: an HTTP(S) client that keeps the
session cookie and reads CSRF tokens from forms, and a strict parser of
the Prometheus text exposition format (version 0.0.4).

    c = AdminClient(srv.port("admin"))
    c.login("boss", "pw")                   # the form's token and cookie, then the POST
    status, headers, body = c.get("/")
    c.post("/queue/ID/hold", {"csrf": c.csrf})
    families = parse_prometheus(c.get("/metrics")[2])
"""
import http.client
import math
import re
import ssl
import urllib.parse

ADMIN_CONFIG = "[admin]\nlisten = 127.0.0.1:0\n"


class AdminClient:
    def __init__(self, port, tls=False, timeout=20):
        self.port = port
        self.tls = tls
        self.timeout = timeout
        self.cookie = None      # the po_admin value
        self.set_cookies = []   # every Set-Cookie seen
        self.csrf = None        # the last token read from a page

    def _conn(self):
        if self.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def request(self, method, path, body=None, headers=None, cookie=True):
        conn = self._conn()
        h = dict(headers or {})
        if cookie and self.cookie is not None:
            h["Cookie"] = "po_admin=" + self.cookie
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        hdrs = resp.getheaders()
        conn.close()
        for k, v in hdrs:
            if k.lower() == "set-cookie":
                self.set_cookies.append(v)
                m = re.match(r"po_admin=([0-9a-f]*);", v)
                if m:
                    self.cookie = m.group(1) or None
        m = re.search(r'name="csrf" value="([0-9a-f]+)"', data)
        if m:
            self.csrf = m.group(1)
        return resp.status, dict((k.lower(), v) for k, v in hdrs), data

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, fields, cookie=True):
        return self.request("POST", path, urllib.parse.urlencode(fields), cookie=cookie)

    def login(self, user, password, expect=303):
        status, _, _ = self.get("/login")
        assert status == 200, status
        status, headers, body = self.post("/login", {"csrf": self.csrf, "user": user, "password": password})
        assert status == expect, (status, body[:500])
        if status == 303:
            self.get("/")  # the session's token
        return status, headers, body


class ParseError(Exception):
    pass


NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"


def _labels(text, lineno):
    """Parses the inside of {...}: name="value" pairs, values with only
    \\\\, \\" and \\n escapes.  Returns (dict, rest after '}')."""
    labels = {}
    i = 0
    while True:
        if text[i:i + 1] == "}":
            return labels, text[i + 1:]
        m = re.match(LABEL, text[i:])
        if not m:
            raise ParseError("line %d: bad label name at %r" % (lineno, text[i:]))
        name = m.group(0)
        i += len(name)
        if text[i:i + 2] != '="':
            raise ParseError("line %d: expected =\" after %s" % (lineno, name))
        i += 2
        value = []
        while True:
            if i >= len(text):
                raise ParseError("line %d: unterminated label value" % lineno)
            c = text[i]
            if c == "\\":
                nxt = text[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ParseError("line %d: bad escape \\%s" % (lineno, nxt))
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ParseError("line %d: newline in label value" % lineno)
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise ParseError("line %d: label %s twice" % (lineno, name))
        labels[name] = "".join(value)
        if text[i:i + 1] == ",":
            i += 1
        elif text[i:i + 1] != "}":
            raise ParseError("line %d: expected , or } after a label" % lineno)


def _value(text, lineno):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.match(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", text):
        raise ParseError("line %d: bad value %r" % (lineno, text))
    return float(text)


def parse_prometheus(text):
    """Parses exposition text strictly; returns {family: {"type", "help",
    "samples": [(name, labels, value)]}}.  Raises ParseError on: a line
    that is not HELP/TYPE/sample, TYPE after the family's samples or twice,
    HELP twice, a sample without its family's TYPE before it, a family's
    samples not together, a sample name that does
    not belong to its family's type, a counter not named *_total, the same
    series twice, histogram buckets not cumulative or without +Inf, or
    _count differing from the +Inf bucket, and text not ending in \\n."""
    if not text.endswith("\n"):
        raise ParseError("the text does not end with a line feed")
    families = {}
    order = []
    current = None
    done = set()
    seen_series = set()

    def family_of(name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)] if name.endswith(suffix) else None
            if base and base in families and families[base]["type"] == "histogram":
                return base
        return name

    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % NAME, line)
            if not m:
                if re.match(r"^# (HELP|TYPE)", line):
                    raise ParseError("line %d: malformed %r" % (lineno, line))
                continue
            kind, name, rest = m.groups()
            fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if name in done or (current is not None and current != name and fam["samples"]):
                raise ParseError("line %d: %s after its samples" % (lineno, kind))
            if kind == "TYPE":
                if fam["type"] is not None:
                    raise ParseError("line %d: TYPE of %s twice" % (lineno, name))
                if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise ParseError("line %d: unknown type %r" % (lineno, rest))
                if fam["samples"]:
                    raise ParseError("line %d: TYPE after samples" % lineno)
                fam["type"] = rest
            else:
                if fam["help"] is not None:
                    raise ParseError("line %d: HELP of %s twice" % (lineno, name))
                fam["help"] = rest
            if current is not None and current != name:
                done.add(current)
            if name not in order:
                order.append(name)
            current = name
            continue
        if line == "":
            raise ParseError("line %d: empty line" % lineno)
        m = re.match(r"^(%s)(.*)$" % NAME, line)
        if not m:
            raise ParseError("line %d: not a sample: %r" % (lineno, line))
        name, rest = m.groups()
        labels = {}
        if rest.startswith("{"):
            labels, rest = _labels(rest[1:], lineno)
        parts = rest.split(" ")
        if len(parts) not in (2, 3) or parts[0] != "":
            raise ParseError("line %d: expected one space and a value: %r" % (lineno, line))
        value = _value(parts[1], lineno)
        fname = family_of(name)
        if fname != current and fname in families and families[fname]["samples"]:
            raise ParseError("line %d: samples of %s are not together" % (lineno, fname))
        if fname != current:
            if current is not None:
                done.add(current)
            current = fname
        fam = families.setdefault(fname, {"type": None, "help": None, "samples": []})
        if fname not in order:
            order.append(fname)
        if fam["type"] is None:
            raise ParseError("line %d: %s has no TYPE line before it" % (lineno, name))
        typ = fam["type"]
        if typ == "counter" and (not name.endswith("_total") or value < 0 or math.isnan(value)):
            raise ParseError("line %d: counter %s not *_total or negative" % (lineno, name))
        if typ == "histogram" and name == fname:
            raise ParseError("line %d: histogram sample without a suffix" % lineno)
        if typ == "histogram" and name.endswith("_bucket") and "le" not in labels:
            raise ParseError("line %d: bucket without le" % lineno)
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise ParseError("line %d: series %s%s twice" % (lineno, name, labels))
        seen_series.add(key)
        fam["samples"].append((name, labels, value))
    for fname, fam in families.items():
        if fam["type"] != "histogram":
            continue
        buckets = [(s[1]["le"], s[2]) for s in fam["samples"] if s[0] == fname + "_bucket"]
        les = [float(le.replace("+Inf", "inf")) for le, _ in buckets]
        if not buckets or les[-1] != math.inf or les != sorted(les):
            raise ParseError("%s: buckets not in order or without +Inf" % fname)
        counts = [v for _, v in buckets]
        if counts != sorted(counts):
            raise ParseError("%s: buckets not cumulative" % fname)
        count = [s[2] for s in fam["samples"] if s[0] == fname + "_count"]
        sums = [s[2] for s in fam["samples"] if s[0] == fname + "_sum"]
        if count != [counts[-1]] or len(sums) != 1:
            raise ParseError("%s: _count differs from the +Inf bucket, or no _sum" % fname)
    return families


def value(families, name, **labels):
    """The value of one series (0 when the family has no such series)."""
    fname = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[:-len(suffix)] in families:
            fname = name[:-len(suffix)]
    for sname, slabels, v in families[fname]["samples"]:
        if sname == name and slabels == labels:
            return v
    return 0.0
