"""A tiny raw PostgreSQL v3 protocol client: every byte under the caller's control.

Only trust / cleartext / md5 authentication are supported (the red-team cluster uses trust).
"""
import hashlib
import select
import socket
import struct
import time


class Timeout(Exception):
    pass


class Closed(Exception):
    pass


def cstr(s, enc="utf-8"):
    if isinstance(s, str):
        s = s.encode(enc)
    return s + b"\x00"


def msg(t, payload=b""):
    return t + struct.pack("!I", len(payload) + 4) + payload


# ---- frontend message builders ------------------------------------------------

def startup(params, version=196608):
    """params: list of (key, value) pairs (duplicates allowed) or dict."""
    if isinstance(params, dict):
        params = list(params.items())
    body = struct.pack("!I", version)
    for k, v in params:
        body += cstr(k) + cstr(v)
    body += b"\x00"
    return struct.pack("!I", len(body) + 4) + body


def Q(sql, enc="utf-8"):
    return msg(b"Q", cstr(sql, enc))


def P(name, sql, types=(), enc="utf-8", trailing=b""):
    body = cstr(name, enc) + cstr(sql, enc) + struct.pack("!H", len(types))
    for t in types:
        body += struct.pack("!I", t)
    return msg(b"P", body + trailing)


def B(portal="", stmt="", params=(), enc="utf-8", result_formats=(), trailing=b""):
    body = cstr(portal, enc) + cstr(stmt, enc)
    body += struct.pack("!H", 0)  # all params text
    body += struct.pack("!H", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            pb = p.encode(enc) if isinstance(p, str) else p
            body += struct.pack("!i", len(pb)) + pb
    body += struct.pack("!H", len(result_formats))
    for f in result_formats:
        body += struct.pack("!H", f)
    return msg(b"B", body + trailing)


def D(kind, name="", enc="utf-8"):
    return msg(b"D", kind.encode() + cstr(name, enc))


def E(portal="", maxrows=0, enc="utf-8"):
    return msg(b"E", cstr(portal, enc) + struct.pack("!I", maxrows))


def C(kind, name="", enc="utf-8", trailing=b""):
    return msg(b"C", kind.encode() + cstr(name, enc) + trailing)


def S():
    return msg(b"S")


def H():
    return msg(b"H")


def X():
    return msg(b"X")


# ---- backend message parsing -------------------------------------------------

def parse_fields(payload):
    out = {}
    i = 0
    while i < len(payload) and payload[i] != 0:
        code = chr(payload[i])
        j = payload.index(b"\x00", i + 1)
        out[code] = payload[i + 1:j].decode("utf-8", "replace")
        i = j + 1
    return out


class Msg:
    __slots__ = ("t", "payload", "fields")

    def __init__(self, t, payload):
        self.t = t
        self.payload = payload
        self.fields = parse_fields(payload) if t in (b"E", b"N") else None

    def __repr__(self):
        if self.fields:
            return "%s(%s %s: %s)" % (self.t.decode(), self.fields.get("S"), self.fields.get("C"),
                                      self.fields.get("M"))
        if self.t == b"C":
            return "C(%s)" % self.payload[:-1].decode("utf-8", "replace")
        if self.t == b"Z":
            return "Z(%s)" % self.payload.decode()
        if self.t == b"D":
            return "D(%s)" % (self.datarow(),)
        return "%s(%r)" % (self.t.decode(), self.payload[:60])

    def datarow(self):
        n = struct.unpack("!H", self.payload[:2])[0]
        i = 2
        vals = []
        for _ in range(n):
            ln = struct.unpack("!i", self.payload[i:i + 4])[0]
            i += 4
            if ln < 0:
                vals.append(None)
            else:
                vals.append(self.payload[i:i + ln].decode("utf-8", "replace"))
                i += ln
        return vals


class Conn:
    def __init__(self, host, port, params, timeout=5.0, password=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout
        self.params = {}
        self.backend_key = None
        self.startup_msgs = []
        self.sock.sendall(startup(params))
        user = dict(params if not isinstance(params, dict) else params.items()).get("user", "")
        while True:
            m = self.recv(timeout)
            self.startup_msgs.append(m)
            if m.t == b"R":
                code = struct.unpack("!I", m.payload[:4])[0]
                if code == 0:
                    continue
                if code == 3:
                    self.send(msg(b"p", cstr(password or "")))
                elif code == 5:
                    salt = m.payload[4:8]
                    inner = hashlib.md5((password or "").encode() + user.encode()).hexdigest()
                    outer = "md5" + hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(msg(b"p", cstr(outer)))
                else:
                    raise Closed("unsupported auth %d" % code)
            elif m.t == b"S":
                k, v, _ = m.payload.split(b"\x00", 2)
                self.params[k.decode()] = v.decode()
            elif m.t == b"K":
                self.backend_key = struct.unpack("!II", m.payload)
            elif m.t == b"E":
                raise Closed("startup error: %r" % m)
            elif m.t == b"Z":
                break

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, timeout=None):
        deadline = time.time() + (timeout if timeout is not None else self.timeout)
        while True:
            if len(self.buf) >= 5:
                ln = struct.unpack("!I", self.buf[1:5])[0]
                if len(self.buf) >= 1 + ln:
                    t = self.buf[:1]
                    payload = self.buf[5:1 + ln]
                    self.buf = self.buf[1 + ln:]
                    m = Msg(t, payload)
                    if t == b"S":
                        try:
                            k, v, _ = payload.split(b"\x00", 2)
                            self.params[k.decode()] = v.decode()
                        except ValueError:
                            pass
                    return m
            left = deadline - time.time()
            if left <= 0:
                raise Timeout()
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                raise Timeout()
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, OSError):
                chunk = b""
            if not chunk:
                raise Closed("connection closed")
            self.buf += chunk

    def until_ready(self, n=1, timeout=None):
        """Read messages until n ReadyForQuery arrived. Returns list of messages.
        On timeout/close, returns what was read plus a marker string."""
        out = []
        deadline = time.time() + (timeout if timeout is not None else self.timeout)
        got = 0
        try:
            while got < n:
                m = self.recv(max(0.01, deadline - time.time()))
                out.append(m)
                if m.t == b"Z":
                    got += 1
        except Timeout:
            out.append("TIMEOUT")
        except Closed:
            out.append("CLOSED")
        return out

    def drain(self, wait=0.3):
        out = []
        try:
            while True:
                out.append(self.recv(wait))
        except (Timeout, Closed):
            pass
        return out

    def query(self, sql, timeout=None, enc="utf-8"):
        self.send(Q(sql, enc))
        return self.until_ready(1, timeout)

    def extended(self, sql, params=(), timeout=None, enc="utf-8", name="", portal=""):
        self.send(P(name, sql, enc=enc) + B(portal, name, params, enc=enc) + D("P", portal, enc=enc)
                  + E(portal, enc=enc) + S())
        return self.until_ready(1, timeout)

    def scalar(self, sql):
        res = self.query(sql)
        for m in res:
            if isinstance(m, Msg) and m.t == b"E":
                raise RuntimeError("%s: %s" % (sql[:200], m))
        for m in res:
            if isinstance(m, Msg) and m.t == b"D":
                return m.datarow()[0]
        return None

    def exec_ok(self, sql):
        res = self.query(sql, timeout=30)
        errs = [m for m in res if isinstance(m, Msg) and m.t == b"E"]
        if errs or "TIMEOUT" in res or "CLOSED" in res:
            raise RuntimeError("setup failed: %s\n--- SQL ---\n%s" % (errs or res[-1:], sql))
        return res

    def close(self):
        try:
            self.sock.sendall(X())
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def summarize(res):
    """Short text of a response list."""
    parts = []
    for m in res:
        if isinstance(m, str):
            parts.append(m)
        elif m.t in (b"E", b"N"):
            parts.append("%s %s %s" % (m.t.decode(), m.fields.get("C"), (m.fields.get("M") or "")[:90]))
        elif m.t == b"C":
            parts.append("C:" + m.payload[:-1].decode("utf-8", "replace"))
    return "; ".join(parts)
