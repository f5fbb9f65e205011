"""Test and benchmark harness: real redis-server and respscope processes on free loopback ports.

Every process started here is stopped at exit (atexit and context managers). Every wait is
bounded. Used by tests/integration, tests/e2e and bench/.
"""
import atexit
import os
import shutil
import signal
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SOURCE_DIR = os.environ.get(
    "RESPSCOPE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("RESPSCOPE_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
RESPSCOPE_BIN = os.environ.get("RESPSCOPE_BIN", os.path.join(BUILD_DIR, "respscope"))

_children = []
# Temporary files this module made (logs, configuration files): removed at exit, not at stop(),
# because tests read a process's log after stopping it.
_temp_files = []


def _temp_file(prefix, suffix):
    """A new empty file, created atomically (mkstemp); (fd, path). Removed at exit."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    _temp_files.append(path)
    return fd, path


def _cleanup():
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass
    while _temp_files:
        try:
            os.unlink(_temp_files.pop())
        except OSError:
            pass


atexit.register(_cleanup)


def _on_sigterm(signum, frame):
    # `timeout` and test runners stop a test with SIGTERM: clean up like a normal exit.
    _cleanup()
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_sigterm)


def free_port():
    """A port nothing listens on right now (bound to 0 and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def cpu_user_sys(pid):
    """(user, system) CPU seconds used so far by pid (from /proc/pid/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def cpu_seconds(pid):
    """User + system CPU seconds used so far by pid."""
    return sum(cpu_user_sys(pid))


class Process:
    def __init__(self, argv, name, env=None, log_path=None, preexec_fn=None):
        self.name = name
        if log_path:
            self.log_path = log_path
            self._log = open(log_path, "wb")
        else:
            fd, self.log_path = _temp_file(f"respscope-{name}-", ".log")
            self._log = os.fdopen(fd, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True, preexec_fn=preexec_fn)
        _children.append(self.proc)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        return self.proc.returncode

    def log(self):
        self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


# RESPSCOPE_TEST_UPSTREAM_TLS=1: every Redis started here also listens with TLS on a second free
# port (certificates made for the run, tests/lib/tls_certs.py), url() is rediss:// to that port,
# and a Respscope started on such a URL trusts the run's CA (RESPSCOPE_UPSTREAM_TLS_CA_FILE).
# Tests that talk to Redis directly keep using the plain port, so whole suites run unchanged
# with respscope's upstream connections over TLS.
UPSTREAM_TLS = os.environ.get("RESPSCOPE_TEST_UPSTREAM_TLS") == "1"
_tls_pki = None
_tls_server = None
_tls_addresses = set()  # "127.0.0.1:PORT" of the TLS ports started here


def _tls_material():
    global _tls_pki, _tls_server
    if _tls_pki is None:
        import tls_certs
        _tls_pki = tls_certs.Pki("respscope-harness-ca")
        _tls_server = _tls_pki.issue("redis", dns=["localhost"], ips=["127.0.0.1"])
    return _tls_pki, _tls_server


class Redis(Process):
    def __init__(self, port=None, extra=(), tls=None):
        """tls: also listen with TLS (default: RESPSCOPE_TEST_UPSTREAM_TLS)."""
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="respscope-redis-")
        self.tls_port = None
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir] + list(extra)
        if UPSTREAM_TLS if tls is None else tls:
            import tls_certs
            pki, server = _tls_material()
            self.tls_port = free_port()
            argv += tls_certs.redis_tls_args(self.tls_port, server, pki.ca.cert)
            _tls_addresses.add(f"127.0.0.1:{self.tls_port}")
        super().__init__(argv, "redis")
        wait_port(self.port)
        if self.tls_port:
            wait_port(self.tls_port)

    def url(self):
        if self.tls_port:
            return f"rediss://127.0.0.1:{self.tls_port}"
        return f"redis://127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM, timeout=15):
        rc = super().stop(sig, timeout)
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


class Respscope(Process):
    def __init__(self, upstream, config_text=None, extra=(), env=None, threads=2, binary=None,
                 nofile=None, unix_socket=None):
        """nofile: (soft, hard) RLIMIT_NOFILE for respscope alone, set between fork and exec.
        unix_socket: a path respscope listens on too, besides its TCP port."""
        self.port = free_port()
        self.admin_port = free_port()
        self.unix_socket = unix_socket
        listen = f"127.0.0.1:{self.port}" + (f",unix://{unix_socket}" if unix_socket else "")
        argv = [binary or RESPSCOPE_BIN, "--listen", listen, "--upstream", upstream,
                "--admin", f"127.0.0.1:{self.admin_port}"]
        if threads is not None:  # None: respscope's own default (half the usable cores)
            argv += ["--threads", str(threads)]
        self.config_path = None
        if config_text is not None:
            fd, self.config_path = _temp_file("respscope-", ".yaml")
            with os.fdopen(fd, "w") as f:
                f.write(config_text)
            argv += ["--config", self.config_path]
        argv += list(extra)
        full_env = dict(os.environ)
        for k in ("RESPSCOPE_UPSTREAM", "RESPSCOPE_LISTEN", "RESPSCOPE_ADMIN"):
            full_env.pop(k, None)
        if upstream.startswith("rediss://") and any(a in upstream for a in _tls_addresses):
            full_env.setdefault("RESPSCOPE_UPSTREAM_TLS_CA_FILE", _tls_material()[0].ca.cert)
            print("harness: respscope reaches its upstream over TLS:", upstream, file=sys.stderr)
        if env:
            full_env.update(env)
        preexec = None
        if nofile is not None:
            import resource
            preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, tuple(nofile))
        super().__init__(argv, "respscope", env=full_env, preexec_fn=preexec)
        try:
            wait_port(self.port)
        except TimeoutError:
            raise RuntimeError("respscope did not start:\n" + self.log())

    def io_threads(self, timeout=5):
        """The IO thread count respscope says it runs (its start-up line)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(r"\((\d+) IO threads", self.log())
            if m:
                return int(m.group(1))
            time.sleep(0.05)
        raise RuntimeError("respscope did not log its IO threads:\n" + self.log())

    def http(self, path, token=None, timeout=5):
        """(status, body) of GET path on the admin port."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def resp_command(*args):
    """One command in RESP multibulk form."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RawClient:
    """A plain socket speaking RESP: for byte-exact comparisons."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_frames(self, n):
        """Reads n complete top-level RESP frames and returns their raw bytes."""
        frames = []
        while len(frames) < n:
            end = frame_end(self.buf, 0)
            if end is None:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("closed after %d frames" % len(frames))
                self.buf += chunk
                continue
            frames.append(self.buf[:end])
            self.buf = self.buf[end:]
        return frames

    def close(self):
        self.sock.close()


def frame_end(buf, pos):
    """Index just past the RESP frame starting at pos, or None if incomplete."""
    if pos >= len(buf):
        return None
    t = buf[pos:pos + 1]
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return None
    head = buf[pos + 1:nl]
    after = nl + 2
    if t in (b"+", b"-", b":", b",", b"#", b"(", b"_"):
        return after
    if t in (b"$", b"=", b"!"):
        n = int(head)
        if n < 0:
            return after
        if len(buf) < after + n + 2:
            return None
        return after + n + 2
    if t in (b"*", b"%", b"~", b">", b"|"):
        n = int(head)
        if n < 0:
            return after
        if t in (b"%", b"|"):
            n *= 2
        p = after
        for _ in range(n):
            p = frame_end(buf, p)
            if p is None:
                return None
        if t == b"|":  # attribute: the real value follows
            return frame_end(buf, p)
        return p
    raise ValueError("bad RESP type byte %r" % t)
