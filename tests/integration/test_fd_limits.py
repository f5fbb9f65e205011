"""File descriptors under floods of idle connections, with respscope started at a low
RLIMIT_NOFILE so that hundreds of connections are enough.

The problem this guards against: idle connections to the admin port took every descriptor;
then the data port stopped answering, /healthz hung, and the admin accept loop spun at 100% CPU
on EMFILE with nothing logged. Three cases:

- admin flood: the admin cap (admin.max_connections, 256) plus 1000 more idle connections.
  PING through the data port, /healthz and /metrics answer, respscope stays near idle, the cap
  is counted and logged.
- data flood: more idle connections to the data port than the descriptor limit. respscope
  accepts only as many clients as its descriptors allow (said at start), refuses the rest with
  Redis's own error, /healthz answers, it stays near idle, and serves new clients once the
  flood closes.
- descriptors exhausted for real (an admin cap set far beyond the limit, warned at start): both
  accept loops get EMFILE, shed the pending connections with their spare descriptor, count it,
  log it and back off instead of spinning; when the flood closes everything answers again.

"Near idle" is respscope's CPU time from /proc over a few seconds: well below one busy thread.
"""
import re
import resource
import socket
import time
import unittest

import harness
from prom import parse_metrics, value

SOFT, HARD = 400, 600      # respscope raises its soft limit to the hard one
ADMIN_CAP = 256            # admin.max_connections default
BUSY_FRACTION = 0.25       # CPU seconds per second; a spinning thread is 1.0
PING = harness.resp_command("PING")


def connect_many(port, n, batch=100):
    """n connections that send nothing. In batches: a burst far beyond the listen backlog
    would be dropped by the kernel, whoever listens."""
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            if len(socks) % batch == 0:
                time.sleep(0.02)
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        s.close()


def ping(port):
    c = harness.RawClient(port, timeout=5)
    try:
        c.send(PING)
        return c.read_frames(1)[0]
    finally:
        c.close()


def cpu_fraction(pid, seconds=3.0):
    """CPU seconds per wall second used by pid over `seconds`."""
    c0, t0 = harness.cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (harness.cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def wait_log(rs, pattern, timeout=10.0):
    """The first match of pattern in respscope's log (flushed every second), or None."""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, rs.log())
        if m or time.monotonic() > deadline:
            return m
        time.sleep(0.2)


class FdLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # This process holds the flood's client ends.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 4000
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert soft == resource.RLIM_INFINITY or soft >= 2000, "need 2000 descriptors, have %d" % soft

    def metrics(self, rs):
        status, text = rs.http("/metrics")
        self.assertEqual(status, 200)
        return parse_metrics(text)

    def test_admin_flood(self):
        with harness.Redis() as redis, harness.Respscope(redis.url(), nofile=(SOFT, HARD)) as rs:
            self.assertTrue(wait_log(rs, r"raised from %d to %d" % (SOFT, HARD)), rs.log())
            before = harness.RawClient(rs.port, timeout=5)
            before.send(PING)
            self.assertEqual(before.read_frames(1), [b"+PONG\r\n"])
            flood = connect_many(rs.admin_port, ADMIN_CAP + 1000)
            try:
                time.sleep(0.5)
                busy = cpu_fraction(rs.pid)
                self.assertLess(busy, BUSY_FRACTION, "respscope CPU with the admin port flooded")
                self.assertTrue(rs.alive())
                before.send(PING)
                self.assertEqual(before.read_frames(1), [b"+PONG\r\n"])
                self.assertEqual(ping(rs.port), b"+PONG\r\n")
                self.assertEqual(rs.http("/healthz"), (200, "ok"))
                m = self.metrics(rs)
                self.assertLessEqual(value(m, "respscope_admin_connections"), ADMIN_CAP)
                rejected = (value(m, "respscope_admin_connections_rejected_total",
                                  reason="idle_evicted") +
                            value(m, "respscope_admin_connections_rejected_total",
                                  reason="refused"))
                self.assertGreaterEqual(rejected, 1000)
                self.assertEqual(value(m, "respscope_accept_fd_exhausted_total",
                                       listener="admin"), 0)
                self.assertTrue(wait_log(rs, r"admin: 256 connections open \(admin.max_connections\)"),
                                rs.log())
            finally:
                close_all(flood)
                before.close()
            # Connections that never send a request are closed by admin.header_timeout (5s).
            held = connect_many(rs.admin_port, 10)
            try:
                deadline = time.monotonic() + 20
                while (time.monotonic() < deadline and
                       value(self.metrics(rs), "respscope_admin_request_timeouts_total") < 10):
                    time.sleep(0.5)
                self.assertGreaterEqual(
                    value(self.metrics(rs), "respscope_admin_request_timeouts_total"), 10)
            finally:
                close_all(held)

    def test_data_flood(self):
        with harness.Redis() as redis, harness.Respscope(redis.url(), nofile=(HARD, HARD)) as rs:
            m = wait_log(rs, r"at most (\d+) clients will be accepted")
            self.assertTrue(m, rs.log())
            cap = int(m.group(1))
            self.assertLess(cap, HARD // 2)
            before = harness.RawClient(rs.port, timeout=5)
            before.send(PING)
            self.assertEqual(before.read_frames(1), [b"+PONG\r\n"])
            flood = connect_many(rs.port, HARD + 200)
            try:
                time.sleep(0.5)
                busy = cpu_fraction(rs.pid)
                self.assertLess(busy, BUSY_FRACTION, "respscope CPU with the data port flooded")
                self.assertTrue(rs.alive())
                self.assertEqual(rs.http("/healthz"), (200, "ok"))
                before.send(PING)
                self.assertEqual(before.read_frames(1), [b"+PONG\r\n"])
                # A new client beyond the cap hears Redis's own words.
                self.assertEqual(ping(rs.port), b"-ERR max number of clients reached\r\n")
                m = self.metrics(rs)
                self.assertLessEqual(value(m, "respscope_client_connections"), cap)
                self.assertGreaterEqual(
                    value(m, "respscope_client_connections_rejected_total"), HARD + 200 - cap)
            finally:
                close_all(flood)
                before.close()
            deadline = time.monotonic() + 20
            answer = None
            while time.monotonic() < deadline:
                answer = ping(rs.port)
                if answer == b"+PONG\r\n":
                    break
                time.sleep(0.2)
            self.assertEqual(answer, b"+PONG\r\n", "new clients after the flood closed")

    def test_descriptors_exhausted(self):
        limit = 300
        config = "admin: {max_connections: 100000, header_timeout: 10s}\n"
        with harness.Redis() as redis, harness.Respscope(
                redis.url(), config_text=config, nofile=(limit, limit)) as rs:
            self.assertTrue(wait_log(rs, r"too low for admin.max_connections 100000"), rs.log())
            flood = connect_many(rs.admin_port, 2 * limit)
            try:
                self.assertTrue(
                    wait_log(rs, r"admin: accept failed: out of file descriptors"), rs.log())
                # The data listener is out of descriptors too: it sheds this one.
                late = socket.create_connection(("127.0.0.1", rs.port), timeout=10)
                late.settimeout(10)
                try:
                    late.recv(64)
                except OSError:
                    pass
                late.close()
                busy = cpu_fraction(rs.pid)
                self.assertLess(busy, BUSY_FRACTION, "respscope CPU with no descriptor left")
                self.assertTrue(rs.alive())
            finally:
                close_all(flood)
            deadline = time.monotonic() + 30
            health = None
            while time.monotonic() < deadline:
                try:
                    health = rs.http("/healthz", timeout=2)
                    if health == (200, "ok"):
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            self.assertEqual(health, (200, "ok"), "/healthz after the flood closed")
            m = self.metrics(rs)
            self.assertGreaterEqual(
                value(m, "respscope_accept_fd_exhausted_total", listener="admin"), 1)
            self.assertGreaterEqual(
                value(m, "respscope_accept_fd_exhausted_total", listener="client"), 1)
            self.assertTrue(
                wait_log(rs, r"client listener: accept failed: out of file descriptors"), rs.log())
            self.assertEqual(ping(rs.port), b"+PONG\r\n")


if __name__ == "__main__":
    unittest.main()
