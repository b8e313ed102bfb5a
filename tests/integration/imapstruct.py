"""IMAP FETCH answers as trees, for comparing two servers field by field.

A small raw IMAP client (APPEND with synchronizing literals, FETCH whose
answer may hold literals), a parser of IMAP data into Python values
(list for a parenthesized list, None for NIL, int for a number, bytes for a
string, quoted or literal alike), and the comparison used by
test_imap_structure.py and tests/data/imap-structure/record-dovecot.

Paths name a field inside a FETCH item: "BODYSTRUCTURE.0.2.1" is item
BODYSTRUCTURE, element 0 (first body part), its element 2 (the parameter
list), element 1 of that (the first parameter's value); indices are 0-based.
"""
import re
import socket

ITEMS = ("RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE")


class ParseError(ValueError):
    pass


def parse(data, pos=0):
    """Parses one IMAP value at data[pos:]; returns (value, next position)."""
    while pos < len(data) and data[pos:pos + 1] == b" ":
        pos += 1
    if pos >= len(data):
        raise ParseError("end of data")
    c = data[pos:pos + 1]
    if c == b"(":
        out = []
        pos += 1
        while True:
            while data[pos:pos + 1] == b" ":
                pos += 1
            if data[pos:pos + 1] == b")":
                return out, pos + 1
            if pos >= len(data):
                raise ParseError("unclosed list")
            value, pos = parse(data, pos)
            out.append(value)
    if c == b'"':
        out = bytearray()
        pos += 1
        while pos < len(data) and data[pos:pos + 1] != b'"':
            if data[pos:pos + 1] == b"\\":
                pos += 1
            out += data[pos:pos + 1]
            pos += 1
        if pos >= len(data):
            raise ParseError("unterminated quoted string")
        return bytes(out), pos + 1
    m = re.compile(rb"\{(\d+)\+?\}\r\n").match(data, pos)
    if m:
        n = int(m.group(1))
        end = m.end() + n
        if end > len(data):
            raise ParseError("short literal")
        return data[m.end():end], end
    m = re.compile(rb"[^ ()\[\]{}\"\r\n]+").match(data, pos)
    if not m:
        raise ParseError("unexpected %r at %d" % (data[pos:pos + 20], pos))
    atom = m.group(0)
    if atom.upper() == b"NIL":
        return None, m.end()
    if atom.isdigit():
        return int(atom), m.end()
    return atom, m.end()


def fetch_items(response):
    """The items of one untagged "* N FETCH (...)" response: {name: value}."""
    m = re.match(rb"\* \d+ FETCH ", response)
    if not m:
        raise ParseError("not a FETCH response: %r" % response[:60])
    values, _ = parse(response, m.end())
    out = {}
    for i in range(0, len(values) - 1, 2):
        out[values[i].decode("ascii").upper()] = values[i + 1]
    return out


def quote(b):
    """A string in the canonical text form: always quoted, with \\" and \\\\
    escaped and bytes outside printable ASCII written \\xNN."""
    out = []
    for ch in b:
        if ch in (0x22, 0x5C):
            out.append("\\" + chr(ch))
        elif 0x20 <= ch < 0x7F:
            out.append(chr(ch))
        else:
            out.append("\\x%02x" % ch)
    return '"' + "".join(out) + '"'


def text(value):
    """The canonical text of a value: IMAP syntax, strings always quoted
    (see quote()), so that equal values give equal text."""
    if value is None:
        return "NIL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return quote(value)
    return "(" + " ".join(text(v) for v in value) + ")"


def lookup(items, path):
    """The value at path ("ITEM" or "ITEM.i.j..."), or KeyError/IndexError."""
    parts = path.split(".")
    name = parts[0]
    if name == "RFC822":  # RFC822.SIZE holds a dot itself
        name, parts = "RFC822." + parts[1], parts[1:]
    value = items[name]
    for p in parts[1:]:
        value = value[int(p)]
    return value


def diff(want, got, path):
    """Paths where got differs from want: a leaf that differs, or a list
    whose length differs (its elements are not compared then)."""
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [path]
        out = []
        for i, (w, g) in enumerate(zip(want, got)):
            out += diff(w, g, "%s.%d" % (path, i))
        return out
    return [] if want == got else [path]


def diff_items(want, got):
    """diff() over the FETCH items of ITEMS."""
    out = []
    for name in ITEMS:
        out += diff(want.get(name), got.get(name), name)
    return out


class Client:
    """A raw IMAP client: commands and their untagged answers as bytes."""

    def __init__(self, port, host="127.0.0.1", timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.tag = 0
        greeting = self.line()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError("greeting: %r" % greeting)

    def close(self):
        try:
            self.command("LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """One response line with its literals inline (CRLF kept)."""
        out = self.line()
        while True:
            m = re.search(rb"\{(\d+)\}$", out)
            if not m:
                return out
            out += b"\r\n" + self.read(int(m.group(1))) + self.line()

    def command(self, cmd, literal=None):
        """Sends a command (with one synchronizing literal appended when
        given); returns the untagged responses.  A tagged NO/BAD raises."""
        self.tag += 1
        tag = b"t%d" % self.tag
        head = tag + b" " + cmd.encode()
        if literal is not None:
            self.sock.sendall(head + b" {%d}\r\n" % len(literal))
            cont = self.line()
            if not cont.startswith(b"+"):
                raise RuntimeError("%s: %r" % (cmd, cont))
            self.sock.sendall(literal + b"\r\n")
        else:
            self.sock.sendall(head + b"\r\n")
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                if not r.startswith(tag + b" OK"):
                    raise RuntimeError("%s: %r" % (cmd, r))
                return untagged
            untagged.append(r)

    def login(self, user, password):
        self.command('LOGIN "%s" "%s"' % (user, password))

    def append(self, mailbox, data):
        self.command("APPEND %s" % mailbox, data)

    def fetch(self, seq):
        """The FETCH response (bytes) for ITEMS of message seq."""
        for r in self.command("FETCH %d (%s)" % (seq, " ".join(ITEMS))):
            if re.match(rb"\* %d FETCH " % seq, r):
                return r
        raise RuntimeError("no FETCH response for %d" % seq)
