"""Differential testing: one command script, run against Redis directly and through respscope.

A Scenario is a list of steps over named raw-socket connections ("A", "B", ...). Running it
against a port yields a transcript: every byte each connection received, step by step, cut into
whole RESP frames. Running the same scenario against a plain redis-server and against respscope
(in front of another, identical, fresh redis-server) must give identical transcripts.

Byte for byte, except where a reply carries a run-dependent value; those steps name a
normaliser and compare a normalised form instead (each one documented below):

  norm_hello        HELLO reply: the value of "id" (client ids differ between two servers).
  norm_int          an integer reply that is a client id (CLIENT ID).
  norm_client_info  CLIENT INFO: field names in order, and the values of fields that do not
                    depend on the run (name, db, sub, psub, ssub, multi, flags, cmd, user,
                    resp, redir is a client id: only whether it is -1).
  norm_info         INFO: section headers and field names in order, values dropped.
  monitor(...)      MONITOR lines: the timestamp and the client address (replaced by the
                    name of the scenario connection it belongs to). Lines from connections
                    that are not the scenario's (respscope's own side channel, if any) are
                    skipped on both sides.

Every wait is bounded. The direct run validates the scenario itself: a step that times out
against plain Redis is a broken scenario, reported as such, not as a respscope bug.
"""
import re
import socket
import time

from harness import frame_end, resp_command

C = resp_command


class ScenarioError(AssertionError):
    """The scenario does not hold against plain Redis (the script is wrong, not respscope)."""


class _Timeout(Exception):
    pass


def norm_hello(frame):
    return re.sub(rb"(\$2\r\nid\r\n):\d+\r\n", rb"\1:<id>\r\n", frame)


def norm_int(frame):
    return re.sub(rb"^:-?\d+\r\n$", b":<int>\r\n", frame)


_CLIENT_INFO_KEEP = {b"name", b"db", b"sub", b"psub", b"ssub", b"multi", b"flags", b"cmd",
                     b"user", b"resp"}


def _bulk_body(frame):
    """(type byte, body) of a bulk or verbatim string frame."""
    nl = frame.index(b"\r\n")
    return frame[:1], frame[nl + 2:-2]


def norm_client_info(frame):
    t, body = _bulk_body(frame)
    prefix = b""
    if t == b"=":  # verbatim: "txt:" then the text
        prefix, body = body[:4], body[4:]
    out = []
    for line in body.split(b"\n"):
        fields = []
        for kv in line.split(b" "):
            if not kv:
                continue
            k, _, v = kv.partition(b"=")
            if k in _CLIENT_INFO_KEEP:
                fields.append(k + b"=" + v)
            elif k == b"redir":
                fields.append(b"redir=" + (v if v == b"-1" else b"<id>"))
            else:
                fields.append(k + b"=<v>")
        out.append(b" ".join(fields))
    return t + b"<len>\r\n" + prefix + b"\n".join(out) + b"\r\n"


def norm_info(frame):
    t, body = _bulk_body(frame)
    lines = []
    for line in body.split(b"\r\n"):
        if line.startswith(b"#") or not line:
            lines.append(line)
        else:
            lines.append(line.split(b":", 1)[0] + b":<v>")
    return t + b"<len>\r\n" + b"\r\n".join(lines) + b"\r\n"


def capture_int(name):
    def cap(frames, ctx):
        ctx[name] = int(frames[0][1:-2])
    return cap


def capture_client_addr(name):
    """From a CLIENT INFO reply: the client's address as Redis sees it (MONITOR shows it)."""
    def cap(frames, ctx):
        m = re.search(rb"(?:^|[ =:\n])addr=(\S+)", frames[0])
        if not m:
            raise ScenarioError("no addr= in CLIENT INFO reply %r" % frames[0][:200])
        ctx[name] = m.group(1)
    return cap


def capture_client_id(name):
    """From a CLIENT INFO reply: the client's id."""
    def cap(frames, ctx):
        m = re.search(rb"id=(\d+)", frames[0])
        ctx[name] = int(m.group(1))
    return cap


_MONITOR_LINE = re.compile(rb"^\+(\d+\.\d+) \[(\d+) ([^\]]+)\] (.*)\r\n$", re.S)


class _Conn:
    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Timeout()
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            raise _Timeout()
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return chunk

    def frames(self, n, timeout):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            end = frame_end(self.buf, 0) if self.buf else None
            if end is None:
                if self.eof:
                    raise _Timeout()
                self._recv(deadline)
                continue
            out.append(self.buf[:end])
            self.buf = self.buf[end:]
        return out

    def quiet(self, seconds):
        """Bytes that arrive within `seconds` (a quiet connection returns b"")."""
        deadline = time.monotonic() + seconds
        while not self.eof:
            try:
                self._recv(deadline)
            except _Timeout:
                break
        data, self.buf = self.buf, b""
        return data

    def until_close(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._recv(deadline)
        data, self.buf = self.buf, b""
        return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Scenario:
    """A script of steps. Methods return self so scripts chain; see the module comment."""

    def __init__(self, name):
        self.name = name
        self.steps = []

    def open(self, c):
        self.steps.append(("open", c))
        return self

    def send(self, c, *parts, chunk=0):
        """Sends bytes: each part is bytes, a tuple of arguments (one RESP command) or a
        callable(ctx) -> bytes. chunk=k sends k bytes per write (1: byte by byte)."""
        self.steps.append(("send", c, parts, chunk))
        return self

    def expect(self, c, n=1, norm=None, capture=None, check=None, timeout=5.0, label=""):
        """Reads n whole frames. check: bytes that must appear in the direct run's frames
        (proves the scenario exercises what it claims)."""
        self.steps.append(("expect", c, n, norm, capture, check, timeout, label))
        return self

    def cmd(self, c, *args, n=1, **kw):
        """send one command and expect n frames."""
        return self.send(c, tuple(args)).expect(c, n, **kw)

    def quiet(self, c, seconds=0.25):
        """Nothing arrives on c within `seconds` (a blocked command stays blocked)."""
        self.steps.append(("quiet", c, seconds))
        return self

    def expect_close(self, c, timeout=5.0):
        """Reads until the server closes c; the bytes before the close are compared."""
        self.steps.append(("close_wait", c, timeout))
        return self

    def close(self, c):
        self.steps.append(("close", c))
        return self

    def shutdown(self, c):
        """Half-closes c: the client sends FIN but still reads."""
        self.steps.append(("shutdown", c))
        return self

    def sleep(self, seconds):
        self.steps.append(("sleep", seconds))
        return self

    def monitor(self, c, n, sources, lua=False, timeout=5.0):
        """Reads MONITOR lines on c until n lines from `sources` (names of captured
        addresses) have arrived (plus "lua" lines when lua=True); others are skipped."""
        self.steps.append(("monitor", c, n, tuple(sources), lua, timeout))
        return self

    # ------------------------------------------------------------------ running

    def run(self, port, direct):
        """Runs against port. Returns the transcript: a list of (step, connection, bytes)."""
        conns = {}
        ctx = {}
        transcript = []
        where = "redis" if direct else "respscope"

        def conn(c):
            if c not in conns:
                conns[c] = _Conn(port, 10.0)
            return conns[c]

        try:
            for i, step in enumerate(self.steps):
                kind = step[0]
                tag = "%s#%d" % (kind, i)
                try:
                    if kind == "open":
                        conn(step[1])
                    elif kind == "send":
                        _, c, parts, chunk = step
                        data = b"".join(_render(p, ctx) for p in parts)
                        s = conn(c)
                        if chunk:
                            for k in range(0, len(data), chunk):
                                s.sock.sendall(data[k:k + chunk])
                        else:
                            s.sock.sendall(data)
                    elif kind == "expect":
                        _, c, n, norm, capture, check, timeout, label = step
                        frames = conn(c).frames(n, timeout)
                        if check is not None and direct and not any(check in f for f in frames):
                            raise ScenarioError("%s: step %d (%s) on %s: %r not in %r" % (
                                self.name, i, label, c, check, frames))
                        if capture:
                            capture(frames, ctx)
                        shown = [norm(f) if norm else f for f in frames]
                        transcript.append((tag + label, c, b"".join(shown)))
                    elif kind == "quiet":
                        _, c, seconds = step
                        transcript.append((tag, c, conn(c).quiet(seconds)))
                    elif kind == "close_wait":
                        _, c, timeout = step
                        transcript.append((tag, c, conn(c).until_close(timeout) + b"<EOF>"))
                    elif kind == "close":
                        conns.pop(step[1]).close()
                    elif kind == "shutdown":
                        conn(step[1]).sock.shutdown(socket.SHUT_WR)
                    elif kind == "sleep":
                        time.sleep(step[1])
                    elif kind == "monitor":
                        _, c, n, sources, lua, timeout = step
                        transcript.append((tag, c, _read_monitor(conn(c), n, sources, lua,
                                                                 timeout, ctx)))
                except _Timeout:
                    s = conns.get(step[1]) if len(step) > 1 and isinstance(step[1], str) else None
                    got = s.buf if s else b""
                    if direct:
                        raise ScenarioError("%s: step %d %r timed out against plain redis "
                                            "(got %r)" % (self.name, i, step[:3], got[:300]))
                    transcript.append((tag, step[1], b"<TIMEOUT after %r>" % got[:2000]))
                    return transcript
            # Whatever arrives late on any connection is part of the transcript too.
            for c in sorted(conns):
                late = conns[c].quiet(0.05)
                if late:
                    transcript.append(("late", c, late))
        except (ConnectionError, OSError) as e:
            if direct:
                raise ScenarioError("%s: %s against plain redis" % (self.name, e))
            transcript.append(("error", "", ("<%s: %s>" % (where, e)).encode()))
        finally:
            for s in conns.values():
                s.close()
        return transcript


def _render(part, ctx):
    if callable(part):
        part = part(ctx)
    if isinstance(part, tuple):
        return resp_command(*[a(ctx) if callable(a) else a for a in part])
    return part


def _read_monitor(conn, n, sources, lua, timeout, ctx):
    names = {ctx[s]: s.encode() for s in sources}
    kept = []
    deadline = time.monotonic() + timeout
    while len(kept) < n:
        left = deadline - time.monotonic()
        frame = conn.frames(1, max(left, 0.001))[0]
        m = _MONITOR_LINE.match(frame)
        if not m:
            kept.append(frame)
            continue
        addr = m.group(3)
        if addr in names:
            who = names[addr]
        elif lua and addr == b"lua":
            who = b"lua"
        else:
            continue  # not one of the scenario's connections
        kept.append(b"+<ts> [" + m.group(2) + b" " + who + b"] " + m.group(4) + b"\r\n")
    return b"".join(kept)


def diff_message(name, direct, proxied):
    """A readable first difference between two transcripts."""
    for k in range(max(len(direct), len(proxied))):
        a = direct[k] if k < len(direct) else None
        b = proxied[k] if k < len(proxied) else None
        if a != b:
            return ("%s: transcripts differ at entry %d\n  redis:     %r\n  respscope: %r" %
                    (name, k, _short(a), _short(b)))
    return "%s: identical" % name


def _short(entry):
    if entry is None:
        return None
    step, c, data = entry
    if len(data) > 600:
        data = data[:300] + b"...<%d bytes>..." % len(data) + data[-200:]
    return (step, c, data)


# ---------------------------------------------------------------------------- unittest glue


def app_clients(client_list):
    """Connections in a CLIENT LIST reply, minus the caller's own, respscope's side channel
    (named "respscope") and replication links: the ones applications opened."""
    n = 0
    for line in client_list.split(b"\n"):
        if b" addr=" not in b" " + line or b" cmd=client|list " in line:
            continue
        if re.search(rb"(^| )name=respscope( |$)", line):
            continue
        flags = re.search(rb" flags=(\S*)", line)
        if flags and (b"S" in flags.group(1) or b"M" in flags.group(1)):
            continue  # a replica's (or master's) link, not an application
        n += 1
    return n

import unittest  # noqa: E402

import harness  # noqa: E402


class DifferentialCase(unittest.TestCase):
    """Two fresh redis-servers with the same options: one used directly, one behind respscope.

    Subclasses set REDIS_ARGS (extra redis-server arguments) and, when the servers need a
    password, ADMIN_AUTH (the AUTH arguments the harness's own admin connection uses).
    check(scenario) runs the scenario on both and asserts identical transcripts."""

    REDIS_ARGS = ("--enable-debug-command", "yes")
    ADMIN_AUTH = ()
    RESET_COMMANDS = (("FLUSHALL",), ("SCRIPT", "FLUSH"), ("FUNCTION", "FLUSH"))
    RESPSCOPE_CONFIG = None
    summary = []

    @classmethod
    def setUpClass(cls):
        cls.direct = harness.Redis(extra=cls.REDIS_ARGS)
        cls.behind = harness.Redis(extra=cls.REDIS_ARGS)
        cls.proxy = harness.Respscope(cls.upstream_url(cls.behind),
                                      config_text=cls.RESPSCOPE_CONFIG)
        cls.baseline = {}
        for r in (cls.direct, cls.behind):
            cls.baseline[r.port] = cls._clients(r)

    @classmethod
    def upstream_url(cls, redis):
        return redis.url()

    @classmethod
    def tearDownClass(cls):
        rc = cls.proxy.stop()
        cls.direct.stop()
        cls.behind.stop()
        if rc != 0:
            raise AssertionError("respscope exited with %r:\n%s" % (rc, cls.proxy.log()[-3000:]))

    @classmethod
    def _admin(cls, redis, *cmd):
        c = harness.RawClient(redis.port, timeout=5)
        try:
            n = 1
            data = b""
            if cls.ADMIN_AUTH:
                data += resp_command("AUTH", *cls.ADMIN_AUTH)
                n += 1
            c.send(data + resp_command(*cmd))
            return c.read_frames(n)[-1]
        finally:
            c.close()

    @classmethod
    def _clients(cls, redis):
        return app_clients(cls._admin(redis, "CLIENT", "LIST"))

    def _reset(self):
        """FLUSHALL both servers and wait until every connection of the last scenario is gone
        (through respscope, the upstream connection closes a moment after the client's)."""
        for r in (self.direct, self.behind):
            deadline = time.monotonic() + 5
            n = self._clients(r)
            while n > self.baseline[r.port] and time.monotonic() < deadline:
                time.sleep(0.02)
                n = self._clients(r)
            self.assertLessEqual(
                n, self.baseline[r.port],
                "connections of the previous scenario still open on redis:%d" % r.port)
            for cmd in self.RESET_COMMANDS:
                self._admin(r, *cmd)

    def check(self, scenario):
        self._reset()
        t0 = time.monotonic()
        want = scenario.run(self.direct.port, direct=True)
        self._reset()
        got = scenario.run(self.proxy.port, direct=False)
        self.assertTrue(self.proxy.alive(), "respscope died:\n" + self.proxy.log()[-3000:])
        self.assertEqual(want, got, diff_message(scenario.name, want, got))
        nbytes = sum(len(e[2]) for e in want)
        type(self).summary.append("%-40s %3d steps %8d bytes compared  %.2fs" % (
            scenario.name, len(scenario.steps), nbytes, time.monotonic() - t0))


def print_summary(title):
    print("\n%s" % title)
    for line in DifferentialCase.summary:
        print("  " + line)
