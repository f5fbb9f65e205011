"""Pipelining raw-socket load clients that know, byte for byte, what each reply must be.

PipelineClient runs in its own thread: it keeps up to `window` reply bytes outstanding, sends
commands from its own generator (distinct keys and values per client) and checks every byte it
receives against the replies its own commands imply. So a reply that reaches the wrong client,
a reordered reply, an injected byte or a reply cut in the middle are all detected:

  mismatch   bytes that differ from what this connection's commands imply (None if none)
  partial    bytes of a reply received when the connection ended (0: ended on a frame boundary)
  replies    whole replies received
  ended      "eof" | "reset" | "stopped" | "timeout"
"""
import collections
import selectors
import socket
import threading
import time

from harness import resp_command


def kv_commands(client_id, value_sizes=(10, 100, 3000, 40000)):
    """SET k:<client>:<n> <value> then GET it: the replies are +OK and the value."""
    n = 0
    while True:
        size = value_sizes[n % len(value_sizes)]
        key = "k:%d:%d" % (client_id, n)
        head = b"v:%d:%d:" % (client_id, n)
        value = head + bytes([97 + (client_id + n) % 26]) * max(0, size - len(head))
        yield resp_command("SET", key, value), b"+OK\r\n"
        yield resp_command("GET", key), b"$%d\r\n%s\r\n" % (len(value), value)
        n += 1


def get_commands(key, value):
    """GET key forever: every reply is the same (large) value."""
    reply = b"$%d\r\n%s\r\n" % (len(value), value)
    req = resp_command("GET", key)
    while True:
        yield req, reply


class PipelineClient(threading.Thread):
    def __init__(self, port, commands, window=256 * 1024, batch=64, read_size=1 << 16,
                 read_delay=0.0, name="client"):
        super().__init__(daemon=True, name=name)
        self.port = port
        self.commands = commands
        self.window = window
        self.batch = batch
        self.read_size = read_size
        self.read_delay = read_delay
        self.stop_sending = threading.Event()
        self.started_ok = threading.Event()
        self.deadline = None
        self.mismatch = None
        self.replies = 0
        self.received = 0
        self.partial = 0
        self.ended = None
        self.send_error = None
        self._expected = bytearray()          # reply bytes not yet received
        self._lengths = collections.deque()   # their frame lengths
        self._into_frame = 0                  # bytes of the first frame already received

    def _fill(self, out):
        for _ in range(self.batch):
            req, reply = next(self.commands)
            out += req
            self._expected += reply
            self._lengths.append(len(reply))

    def _consume(self, chunk):
        n = len(chunk)
        self.received += n
        if self.mismatch is not None:
            return
        if self._expected[:n] != chunk:
            k = 0
            while k < n and k < len(self._expected) and self._expected[k] == chunk[k]:
                k += 1
            self.mismatch = (self.received - n + k, bytes(chunk[k:k + 120]),
                             bytes(self._expected[k:k + 120]))
            return
        del self._expected[:n]
        self._into_frame += n
        while self._lengths and self._into_frame >= self._lengths[0]:
            self._into_frame -= self._lengths.popleft()
            self.replies += 1

    def run(self, max_seconds=60):
        self.deadline = time.monotonic() + max_seconds
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError as e:
            self.ended = "connect failed: %s" % e
            self.started_ok.set()
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.started_ok.set()
        sel = selectors.DefaultSelector()
        out = bytearray()
        sending = True
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        try:
            while True:
                if time.monotonic() > self.deadline:
                    self.ended = "timeout"
                    break
                if sending and self.stop_sending.is_set() and not out:
                    sending = False  # the batch under way is sent whole: no half command
                if (sending and not out and len(self._expected) < self.window and
                        not self.stop_sending.is_set()):
                    self._fill(out)
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if sending and out else 0)
                sel.modify(sock, events)
                for _, ev in sel.select(timeout=0.2):
                    if ev & selectors.EVENT_WRITE and out:
                        try:
                            k = sock.send(out)
                            del out[:k]
                        except BlockingIOError:
                            pass
                        except OSError as e:
                            self.send_error = e.errno
                            sending = False
                            out.clear()
                    if ev & selectors.EVENT_READ:
                        try:
                            chunk = sock.recv(self.read_size)
                        except BlockingIOError:
                            continue
                        except ConnectionResetError:
                            self.ended = "reset"
                            return
                        if not chunk:
                            self.ended = "eof"
                            return
                        self._consume(chunk)
                        if self.read_delay:
                            time.sleep(self.read_delay)
                if not sending and not self._expected and self.stop_sending.is_set():
                    self.ended = "stopped"
                    return
        finally:
            self.partial = self._into_frame
            sel.close()
            sock.close()

    def summary(self):
        return ("%s: %d replies, %d bytes, ended=%s, partial=%d, mismatch=%s" % (
            self.name, self.replies, self.received, self.ended, self.partial,
            None if self.mismatch is None else self.mismatch))


def wait_all(clients, timeout):
    deadline = time.monotonic() + timeout
    for c in clients:
        c.join(max(0.0, deadline - time.monotonic()))
    return [c for c in clients if c.is_alive()]


def until(predicate, timeout, interval=0.02):
    """Polls predicate() until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)

