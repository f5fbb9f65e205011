"""The Unix socket listener (`listen: unix:///path`, alone or next to TCP):

- redis-cli (-s), redis-py (unix_socket_path) and ioredis ({path}, the whole
  tests/e2e/ioredis_client.js suite) through the socket, while a TCP client uses the TCP
  listener of the same respscope; the clients are seen by the analytics as "unix:pid=N";
- the socket file gets listen_unix_mode (0660 by default, 0600 when set);
- a Unix socket alone (RESPSCOPE_LISTEN), no TCP listener at all;
- limits.max_clients counts Unix clients too;
- a stale socket file (nobody listening) is replaced; a live one (a second respscope) and a
  file that is not a socket are refused with a clear error and left as they were;
- the socket file is removed when respscope exits;
- an upstream reached over a Unix socket (upstream: unix:///path) with the Unix listener.
"""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from loadgen import until

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
NODE_DIR = os.path.join(E2E, "node")
IOREDIS_SCRIPT = os.path.join(E2E, "ioredis_client.js")


def unix_client(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    return s


def roundtrip(path, payload, frames=1):
    """Sends payload over the Unix socket and returns `frames` RESP frames."""
    s = unix_client(path)
    try:
        s.sendall(payload)
        buf = b""
        out = []
        while len(out) < frames:
            end = harness.frame_end(buf, 0)
            if end is None:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                continue
            out.append(buf[:end])
            buf = buf[end:]
        return out
    finally:
        s.close()


def redis_cli(path, *args):
    p = subprocess.run(["redis-cli", "-s", path] + list(args), capture_output=True, text=True,
                       timeout=20)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def start_unix_only(path, upstream, config_text=None, extra_env=None):
    """respscope listening on the Unix socket alone (RESPSCOPE_LISTEN), not waited for."""
    admin_port = harness.free_port()
    argv = [harness.RESPSCOPE_BIN, "--upstream", upstream, "--admin",
            "127.0.0.1:%d" % admin_port, "--threads", "2"]
    if config_text is not None:
        cfg = os.path.join(os.path.dirname(path), "respscope.yaml")
        with open(cfg, "w") as f:
            f.write(config_text)
        argv += ["--config", cfg]
    env = dict(os.environ)
    env.pop("RESPSCOPE_LISTEN", None)
    env["RESPSCOPE_LISTEN"] = "unix://" + path
    env.update(extra_env or {})
    p = harness.Process(argv, "respscope", env=env)
    p.admin_port = admin_port
    return p


def wait_unix(path, proc, timeout=10):
    def ready():
        try:
            unix_client(path, 0.5).close()
            return True
        except OSError:
            return False
    if not until(ready, timeout):
        raise RuntimeError("respscope did not listen on %s:\n%s" % (path, proc.log()))


class UnixListener(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="respscope-unix-")
        self.path = os.path.join(self.dir, "respscope.sock")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def both(self, redis, config_text=None):
        return harness.Respscope(redis.url(), config_text=config_text, unix_socket=self.path)

    def test_clients_over_unix_and_tcp_at_once(self):
        with harness.Redis() as redis:
            rs = self.both(redis)
            port = rs.port
            try:
                wait_unix(self.path, rs)
                self.assertIn("listening on 127.0.0.1:%d, unix://%s" % (port, self.path),
                              rs.log())

                # The socket file: a socket, mode 0660 by default.
                st = os.stat(self.path)
                self.assertTrue(stat.S_ISSOCK(st.st_mode))
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o660, oct(st.st_mode))

                # redis-cli -s.
                self.assertEqual(redis_cli(self.path, "SET", "via:cli", "unix")[1], "OK")
                self.assertEqual(redis_cli(self.path, "GET", "via:cli")[1], "unix")
                self.assertEqual(redis_cli(self.path, "PING")[1], "PONG")

                # redis-py with unix_socket_path, a pipeline and pub/sub included.
                import redis as redispy
                r = redispy.Redis(unix_socket_path=self.path, socket_timeout=10)
                self.assertTrue(r.set("via:py", "unix"))
                pipe = r.pipeline(transaction=True)
                pipe.incr("counter")
                pipe.incr("counter")
                pipe.get("via:cli")
                self.assertEqual(pipe.execute(), [1, 2, b"unix"])
                ps = r.pubsub()
                ps.subscribe("chan")
                self.assertEqual(ps.get_message(timeout=5)["type"], "subscribe")
                # Published over TCP, received over the Unix socket.
                tcp = harness.RawClient(port)
                tcp.send(harness.resp_command("PUBLISH", "chan", "hello"))
                self.assertEqual(tcp.read_frames(1), [b":1\r\n"])
                msg = ps.get_message(timeout=5)
                self.assertEqual((msg["type"], msg["data"]), ("message", b"hello"))
                ps.close()

                # What one side wrote, the other reads: one Redis behind both listeners.
                tcp.send(harness.resp_command("GET", "via:py"))
                self.assertEqual(tcp.read_frames(1), [b"$4\r\nunix\r\n"])
                self.assertEqual(r.get("counter"), b"2")
                r.close()
                tcp.close()

                # Raw bytes through the socket, pipelined.
                frames = roundtrip(self.path, harness.resp_command("SET", "k", "v") +
                                   harness.resp_command("GET", "k") +
                                   harness.resp_command("DEL", "k"), 3)
                self.assertEqual(frames, [b"+OK\r\n", b"$1\r\nv\r\n", b":1\r\n"])
            finally:
                log = rs.log()
                self.assertEqual(rs.stop(), 0, log[-2000:])
            self.assertFalse(os.path.exists(self.path), "the socket file is removed at exit")

    def test_ioredis_over_unix(self):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ioredis")):
            subprocess.run(["npm", "ci", "--prefix", NODE_DIR, "--no-audit", "--no-fund"],
                           check=True, timeout=300, stdout=subprocess.DEVNULL)
        with harness.Redis() as redis, self.both(redis) as rs:
            wait_unix(self.path, rs)
            p = subprocess.run(["node", IOREDIS_SCRIPT, self.path], capture_output=True,
                               text=True, timeout=150)
            lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
            self.assertTrue(lines, "no result from ioredis_client.js:\n%s\n%s" % (
                p.stdout[-2000:], p.stderr[-2000:]))
            got = json.loads(lines[-1])
            failed = {k: v for k, v in got["checks"].items() if v is not True}
            print("ioredis over the Unix socket: %d checks, %d failed %s" % (
                len(got["checks"]), len(failed), failed or ""))
            self.assertGreater(len(got["checks"]), 10)
            self.assertEqual(failed, {})
            self.assertEqual(p.returncode, 0)

            # The analytics name Unix peers by process: the node process ran the commands.
            def unix_client_seen():
                _, body = rs.http("/api/v1/clients")
                names = [c["client"] for c in json.loads(body)["clients"]]
                return [n for n in names if n.startswith("unix:pid=")]
            seen = until(unix_client_seen, 10)
            print("clients seen over the socket:", seen)
            self.assertTrue(seen, "no unix:pid= client in /api/v1/clients")

    def test_upstream_over_unix_socket(self):
        """upstream: unix:///path (redis-server --unixsocket) with a Unix socket listener too:
        plain commands, a transaction (a pinned connection under upstream_pooling: auto),
        blocking and pub/sub reach Redis, and every connection respscope has open to Redis is
        on Redis's socket (its CLIENT LIST)."""
        redis_sock = os.path.join(self.dir, "redis.sock")
        with harness.Redis(extra=["--unixsocket", redis_sock, "--unixsocketperm", "700"]) as redis:
            self.assertTrue(until(lambda: os.path.exists(redis_sock), 10))
            rs = harness.Respscope("unix://" + redis_sock, unix_socket=self.path)
            try:
                wait_unix(self.path, rs)
                import redis as redispy
                r = redispy.Redis(unix_socket_path=self.path, socket_timeout=10)
                self.assertTrue(r.set("up:unix", "yes"))
                self.assertEqual(r.get("up:unix"), b"yes")
                pipe = r.pipeline(transaction=True)
                pipe.incr("up:n")
                pipe.incr("up:n")
                self.assertEqual(pipe.execute(), [1, 2])
                self.assertEqual(r.blpop(["up:empty"], timeout=0.2), None)
                ps = r.pubsub()
                ps.subscribe("up:chan")
                self.assertEqual(ps.get_message(timeout=5)["type"], "subscribe")
                tcp = harness.RawClient(rs.port)
                tcp.send(harness.resp_command("PUBLISH", "up:chan", "hi"))
                self.assertEqual(tcp.read_frames(1), [b":1\r\n"])
                msg = ps.get_message(timeout=5)
                self.assertEqual((msg["type"], msg["data"]), ("message", b"hi"))
                tcp.send(harness.resp_command("GET", "up:unix"))
                self.assertEqual(tcp.read_frames(1), [b"$3\r\nyes\r\n"])
                self.assertEqual(rs.http("/readyz")[0], 200)

                # Redis's view: respscope's connections all arrived on its Unix socket; this
                # test's own check is the only TCP one.
                direct = redispy.Redis(port=redis.port, socket_timeout=10)
                clients = direct.client_list()
                via_socket = [c for c in clients if c.get("laddr", "").startswith(redis_sock)]
                via_tcp = [c for c in clients if not c.get("laddr", "").startswith(redis_sock)]
                print("Redis sees %d connections on its socket, %d over TCP" % (
                    len(via_socket), len(via_tcp)))
                self.assertGreaterEqual(len(via_socket), 2)
                self.assertEqual(len(via_tcp), 1, via_tcp)
                direct.close()
                ps.close()
                r.close()
                tcp.close()
            finally:
                log = rs.log()
                self.assertEqual(rs.stop(), 0, log[-2000:])

    def test_mode_and_unix_only(self):
        with harness.Redis() as redis:
            rs = start_unix_only(self.path, redis.url(), config_text="listen_unix_mode: 0600\n")
            try:
                wait_unix(self.path, rs)
                self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
                self.assertIn("listening on unix://%s ->" % self.path, rs.log())
                self.assertEqual(redis_cli(self.path, "SET", "only", "unix")[1], "OK")
                self.assertEqual(redis_cli(self.path, "GET", "only")[1], "unix")
                c = harness.RawClient(redis.port)
                c.send(harness.resp_command("GET", "only"))
                self.assertEqual(c.read_frames(1), [b"$4\r\nunix\r\n"])
                c.close()
            finally:
                log = rs.log()
                self.assertEqual(rs.stop(), 0, log[-2000:])
            self.assertFalse(os.path.exists(self.path))

    def test_max_clients_counts_unix_clients(self):
        with harness.Redis() as redis:
            rs = start_unix_only(self.path, redis.url(),
                                 config_text="limits: {max_clients: 3}\n")
            try:
                wait_unix(self.path, rs)
                clients = []

                def three_accepted():
                    # Clients closed just before (this one's last try, wait_unix's probe) count
                    # until respscope has seen them go: a refused one may meet EPIPE first.
                    for c in clients:
                        c.close()
                    clients[:] = [unix_client(self.path) for _ in range(3)]
                    try:
                        for c in clients:
                            c.sendall(harness.resp_command("PING"))
                        return all(c.recv(100) == b"+PONG\r\n" for c in clients)
                    except (BrokenPipeError, ConnectionResetError):
                        return False
                self.assertTrue(until(three_accepted, 5))
                # The refusal comes unasked (sending first may meet the close: EPIPE).
                extra = unix_client(self.path)
                data = b""
                while True:
                    chunk = extra.recv(1000)
                    if not chunk:
                        break
                    data += chunk
                extra.close()
                self.assertEqual(data, b"-ERR max number of clients reached\r\n")
                for c in clients:
                    c.close()
            finally:
                self.assertEqual(rs.stop(), 0)

    def test_stale_socket_is_replaced(self):
        # A socket file nobody listens on, as a crash leaves it.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        s.close()
        self.assertTrue(stat.S_ISSOCK(os.stat(self.path).st_mode))
        with harness.Redis() as redis, self.both(redis) as rs:
            wait_unix(self.path, rs)
            self.assertEqual(redis_cli(self.path, "PING")[1], "PONG")
            self.assertIn("removed a stale socket file", rs.log())

    def test_live_socket_and_other_files_are_refused(self):
        with harness.Redis() as redis, self.both(redis) as first:
            wait_unix(self.path, first)
            ino = os.stat(self.path).st_ino
            second = start_unix_only(self.path, redis.url())
            try:
                self.assertTrue(until(lambda: not second.alive(), 10), "second instance runs")
            finally:
                log = second.log()
                rc = second.stop()
            print("second instance: rc %s: %s" % (rc, log.strip().splitlines()[-1:]))
            self.assertEqual(rc, 1)
            self.assertIn("unix://%s: another process is listening on this socket" % self.path,
                          log)
            # The first instance's socket is untouched and still serves.
            self.assertEqual(os.stat(self.path).st_ino, ino)
            self.assertEqual(redis_cli(self.path, "PING")[1], "PONG")

        other = os.path.join(self.dir, "not-a-socket")
        with open(other, "w") as f:
            f.write("keep me\n")
        with harness.Redis() as redis:
            p = start_unix_only(other, redis.url())
            self.assertTrue(until(lambda: not p.alive(), 10))
            log = p.log()
            self.assertEqual(p.stop(), 1)
            self.assertIn("the path exists and is not a socket; refusing to replace it", log)
        with open(other) as f:
            self.assertEqual(f.read(), "keep me\n")

    def test_check_config_rejects_bad_unix_addresses(self):
        for listen, why in (("unix:relative.sock", "the socket path must be absolute"),
                            ("unix:///" + "a" * 120, "the system allows at most 107")):
            p = subprocess.run([harness.RESPSCOPE_BIN, "--listen", listen, "--check-config"],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(why, p.stderr)


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
