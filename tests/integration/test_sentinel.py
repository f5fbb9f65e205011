"""Sentinel: respscope follows a Redis master through redis-sentinel (Debian's redis-sentinel).

A master and a replica (redis-server) and three sentinels run on free loopback ports; the
sentinels' configuration files are written to a temporary directory. respscope is started with
redis+sentinel://s1,s2,s3/mymaster and:

- follows SENTINEL FAILOVER under a running workload: writers through respscope SET distinct
  keys, each followed by WAIT 1. Before the failover a write counts as acknowledged when a
  replica had it (WAIT >= 1: Redis's replication is asynchronous, and no proxy can keep a write
  the old master alone had); after respscope's switch every OK counts. Every acknowledged write
  is on the new master, the writers' connections to the old master were closed and they
  reconnected, a client bound to the old master was closed, new clients reach the new master
  (INFO tcp_port), and the metrics show the switch;
- resolves with one of three sentinels down (the first one listed);
- with every sentinel down, keeps serving the master it knows while that still says ROLE
  master, and reports no master once that goes too;
- with no quorum (two of three sentinels down) and the master down: no master known, a clear
  -ERR, /readyz 503; the master's return on its port is served again;
- authenticates to the sentinels with upstream_sentinel's password and to the master with the
  URL's, and says NOAUTH when the sentinels' password is missing;
- with no sentinel reachable: /readyz is 503, respscope_upstream_up 0, clients get a clear
  -ERR, the failures are counted and logged, no descriptor leaks while it retries; when the
  sentinels come up, respscope finds the master and serves again.

Every wait is bounded; nothing asserts a duration. The suite runs in both pooling modes
(RESPSCOPE_UPSTREAM_POOLING=dedicated in ctest's second run).
"""
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

import redis

import harness
from loadgen import until
from prom import parse_metrics, value

POOLED = os.environ.get("RESPSCOPE_UPSTREAM_POOLING", "auto") == "auto"
MASTER = "mymaster"


def sentinel_binary():
    path = shutil.which("redis-sentinel")
    if not path:
        raise RuntimeError("redis-sentinel is not installed (deploy/install-deps.sh --test)")
    return path


class Sentinel(harness.Process):
    """One redis-sentinel monitoring MASTER at master_port, quorum 2, with short timeouts."""

    def __init__(self, master_port, port=None, workdir=None, requirepass=None, master_pass=None):
        """requirepass: the sentinel's own password; master_pass: the master's (auth-pass)."""
        self.port = port or harness.free_port()
        self.dir = workdir or tempfile.mkdtemp(prefix="respscope-sentinel-")
        self.conf = os.path.join(self.dir, "sentinel-%d.conf" % self.port)
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 5000\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (self.port, self.dir, MASTER, master_port, MASTER, MASTER, MASTER))
            if requirepass:
                f.write("requirepass %s\n" % requirepass)
            if master_pass:
                f.write("sentinel auth-pass %s %s\n" % (MASTER, master_pass))
        super().__init__([sentinel_binary(), self.conf], "sentinel")
        harness.wait_port(self.port)

    def client(self):
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)

    def master_port(self):
        addr = self.client().execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
        return int(addr[1]) if addr else None


def wait_replication(replica, timeout=20):
    r = redis.Redis(port=replica.port, socket_timeout=5, decode_responses=True)
    ok = until(lambda: r.info("replication").get("master_link_status") == "up", timeout, 0.1)
    if not ok:
        raise RuntimeError("the replica did not sync with its master")


def wait_sentinels_ready(sentinels, replicas, timeout=30):
    """Each sentinel knows the replicas and the other sentinels (hello messages)."""
    def ready():
        for s in sentinels:
            c = s.client()
            try:
                known = c.execute_command("SENTINEL", "replicas", MASTER)
                others = c.execute_command("SENTINEL", "sentinels", MASTER)
            except redis.RedisError:
                return False
            if len(known) < replicas or len(others) < len(sentinels) - 1:
                return False
        return True
    if not until(ready, timeout, 0.2):
        raise RuntimeError("the sentinels did not discover the replica and each other")


def metrics(rs):
    status, body = rs.http("/metrics")
    assert status == 200, body
    return parse_metrics(body)


def sentinel_url(ports):
    return "redis+sentinel://" + ",".join("127.0.0.1:%d" % p for p in ports) + "/" + MASTER


def tcp_port_through(rs):
    c = redis.Redis(port=rs.port, socket_timeout=5, decode_responses=True)
    try:
        return int(c.info("server")["tcp_port"])
    finally:
        c.close()


def metric_becomes(rs, name, want, timeout=15, **labels):
    """Waits (bounded) for the metric to show `want`; the metrics are merged every second."""
    return until(lambda: value(metrics(rs), name, **labels) == want, timeout, 0.1)


def reply_until_close(port, timeout=10.0):
    """Sends PING and returns what arrives until respscope closes the connection (a dedicated
    client gets its error reply before it says anything, so a reset may follow)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    try:
        s.sendall(harness.resp_command("PING"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data.decode("utf-8", "replace")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Topology:
    """master + replica + n sentinels; stop() ends them all."""

    def __init__(self, sentinels=3, replicas=1, master_extra=()):
        self.master = harness.Redis(extra=list(master_extra))
        self.replicas = [harness.Redis(extra=["--replicaof", "127.0.0.1", str(self.master.port)])
                         for _ in range(replicas)]
        for r in self.replicas:
            wait_replication(r)
        self.workdir = tempfile.mkdtemp(prefix="respscope-sentinels-")
        self.sentinels = [Sentinel(self.master.port, workdir=self.workdir)
                          for _ in range(sentinels)]
        if replicas:
            wait_sentinels_ready(self.sentinels, replicas)

    def stop(self):
        for s in self.sentinels:
            s.stop()
        for r in self.replicas:
            r.stop()
        self.master.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Writer(threading.Thread):
    """SET w:<id>:<n> n then WAIT 1 100, through respscope; reconnects after any error.

    Every write whose SET said OK is recorded with whether a replica had it (WAIT >= 1) and
    when the connection that carried it was opened."""

    def __init__(self, port, wid, stop):
        super().__init__(daemon=True)
        self.port, self.wid, self.stop_event = port, wid, stop
        self.writes = []       # (n, replicated, connection opened at) of every OK write
        self.closed_at = []    # when a connection broke (the failover closes them)
        self.errors = []
        self.lock = threading.Lock()

    def replicated(self):
        with self.lock:
            return [n for n, rep, _ in self.writes if rep]

    def written_on_connections_after(self, t):
        with self.lock:
            return [n for n, _, opened in self.writes if opened > t]

    def written_after_last_close_since(self, t):
        """Writes on connections opened after this writer's last broken connection after t
        (respscope's switch closes its connection to the old master: the ones opened after
        that go to the new master). Empty while none broke after t."""
        closes = [c for c in list(self.closed_at) if c > t]
        return self.written_on_connections_after(max(closes)) if closes else []

    def run(self):
        n = 0
        client = None
        while not self.stop_event.is_set():
            if client is None:
                client = redis.Redis(port=self.port, socket_timeout=10, decode_responses=True)
                opened = time.monotonic()
            n += 1
            try:
                pipe = client.pipeline(transaction=False)
                pipe.set("w:%d:%d" % (self.wid, n), str(n))
                pipe.execute_command("WAIT", 1, 100)
                ok, replicas = pipe.execute(raise_on_error=False)
                if ok is True:
                    with self.lock:
                        self.writes.append(
                            (n, isinstance(replicas, int) and replicas >= 1, opened))
                else:
                    self.errors.append(repr(ok))
                    time.sleep(0.05)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                self.errors.append(repr(e))
                self.closed_at.append(time.monotonic())
                try:
                    client.close()
                except Exception:
                    pass
                client = None
                time.sleep(0.05)
        if client is not None:
            client.close()


class SentinelFailover(unittest.TestCase):
    def test_failover_under_load(self):
        # Sentinel demotes the old master with MULTI, REPLICAOF, CLIENT KILL, EXEC: Redis would
        # close respscope's connections itself and hide whether respscope closes its clients.
        # Without CLIENT on the old master that transaction fails and the old master stays up
        # as a master of its own, still accepting writes: only respscope can move the clients
        # away from it, and a write it sent there would be missing on the new master.
        topo = Topology(replicas=1, master_extra=["--rename-command", "CLIENT", ""])
        self.addCleanup(topo.stop)
        old, new = topo.master, topo.replicas[0]
        rs = harness.Respscope(sentinel_url([s.port for s in topo.sentinels]))
        self.addCleanup(rs.stop)
        self.assertTrue(until(lambda: rs.http("/readyz")[0] == 200, 15), rs.log())
        self.assertTrue(metric_becomes(rs, "respscope_upstream_master", 1,
                                       address="127.0.0.1:%d" % old.port))
        self.assertEqual(value(metrics(rs), "respscope_sentinels_configured"), 3)
        self.assertEqual(tcp_port_through(rs), old.port)

        # A client bound to the old master: pinned by WATCH (auto) or dedicated anyway.
        bound = socket.create_connection(("127.0.0.1", rs.port), timeout=20)
        self.addCleanup(bound.close)
        bound.sendall(harness.resp_command("WATCH", "bound:key"))
        self.assertEqual(bound.recv(100), b"+OK\r\n")
        # A client that shares (auto) and says nothing during the failover.
        idle = redis.Redis(port=rs.port, socket_timeout=10, decode_responses=True)
        self.addCleanup(idle.close)
        self.assertTrue(idle.ping())

        stop = threading.Event()
        writers = [Writer(rs.port, i, stop) for i in range(4)]
        for w in writers:
            w.start()
        self.addCleanup(stop.set)
        self.assertTrue(until(lambda: all(len(w.replicated()) >= 20 for w in writers), 30),
                        [w.errors[-3:] for w in writers])

        s1 = topo.sentinels[0].client()

        def failover():
            try:
                return s1.execute_command("SENTINEL", "FAILOVER", MASTER)
            except redis.ResponseError:
                return False  # NOGOODSLAVE while the sentinel still learns the replica
        failover_at = time.monotonic()
        self.assertTrue(until(failover, 30, 0.5), "SENTINEL FAILOVER was refused")
        self.assertTrue(until(lambda: topo.sentinels[0].master_port() == new.port, 30))

        def switched():
            m = metrics(rs)
            return (value(m, "respscope_upstream_master", address="127.0.0.1:%d" % new.port) == 1
                    and value(m, "respscope_sentinel_master_changes_total") == 1)
        self.assertTrue(until(switched, 30, 0.1), rs.log())
        self.assertEqual(
            value(metrics(rs), "respscope_upstream_master", address="127.0.0.1:%d" % old.port), 0)

        # The client bound to the old master is closed (EOF or reset), as Redis closes them.
        def closed():
            try:
                return bound.recv(100) == b""
            except ConnectionResetError:
                return True
            except socket.timeout:
                return False
        self.assertTrue(closed(), "a client of the old master stayed open")

        # The workload goes on through respscope, on connections opened after the switch closed
        # the old ones (the writers reconnect within the metrics' lag, so "after the metrics
        # showed the switch" would be a race).
        self.assertTrue(
            until(lambda: all(len(w.written_after_last_close_since(failover_at)) >= 20
                              for w in writers), 60),
            [w.errors[-3:] for w in writers])
        stop.set()
        for w in writers:
            w.join(timeout=30)
            self.assertFalse(w.is_alive())
            # Its connection to the old master was closed under it, and it reconnected.
            self.assertTrue(any(t > failover_at for t in w.closed_at), w.errors[-3:])

        # Nothing acknowledged is missing on the new master: every write a replica had before
        # the failover, and every write made on a connection opened after the switch closed
        # the writer's old one (one sent to the old master, which stays a master here, would be
        # missing).
        direct = redis.Redis(port=new.port, socket_timeout=10, decode_responses=True)
        self.assertEqual(direct.execute_command("ROLE")[0], "master")
        for w in writers:
            expected = sorted(set(w.replicated())
                              | set(w.written_after_last_close_since(failover_at)))
            keys = ["w:%d:%d" % (w.wid, n) for n in expected]
            values = direct.mget(keys)
            missing = [k for k, v in zip(keys, values) if v is None]
            self.assertEqual(missing, [], "acknowledged writes missing on the new master")
            self.assertEqual(values, [str(n) for n in expected])

        # New clients reach the new master; an idle shared client follows it too.
        self.assertEqual(tcp_port_through(rs), new.port)
        if POOLED:
            self.assertEqual(int(idle.info("server")["tcp_port"]), new.port)
        self.assertTrue(until(lambda: rs.http("/readyz")[0] == 200, 15))
        self.assertTrue(metric_becomes(rs, "respscope_upstream_up", 1))
        self.assertIn("moved from 127.0.0.1:%d to 127.0.0.1:%d" % (old.port, new.port), rs.log())
        self.assertTrue(rs.alive())


class SentinelDown(unittest.TestCase):
    def ready_respscope(self, topo):
        rs = harness.Respscope(sentinel_url([s.port for s in topo.sentinels]),
                               config_text="upstream_sentinel:\n  check_interval: 300ms\n")
        self.addCleanup(rs.stop)
        self.assertTrue(until(lambda: rs.http("/readyz")[0] == 200, 15), rs.log())
        return rs

    def assert_clients_told_no_master(self, rs):
        # The data plane may see a refusal first ("unreachable (Connection refused)"); the
        # watcher's ROLE check then gives up on the master and says so to every client.
        replies = []
        self.assertTrue(until(lambda: replies.append(reply_until_close(rs.port)) or
                              "no master known for 'mymaster'" in replies[-1], 30, 0.2),
                        replies[-3:])

    def test_one_of_three_sentinels_down_still_resolves(self):
        topo = Topology(replicas=0)
        self.addCleanup(topo.stop)
        ports = [s.port for s in topo.sentinels]
        topo.sentinels[0].stop()  # the first one listed: respscope must ask the others
        with harness.Respscope(sentinel_url(ports)) as rs:
            self.assertTrue(until(lambda: rs.http("/readyz")[0] == 200, 15), rs.log())
            c = redis.Redis(port=rs.port, socket_timeout=5, decode_responses=True)
            self.assertTrue(c.set("k", "v"))
            self.assertEqual(c.get("k"), "v")
            self.assertEqual(tcp_port_through(rs), topo.master.port)
            self.assertTrue(metric_becomes(rs, "respscope_upstream_master", 1,
                                           address="127.0.0.1:%d" % topo.master.port))
            m = metrics(rs)
            self.assertEqual(value(m, "respscope_sentinels_reachable"), 2)
            self.assertEqual(value(m, "respscope_sentinels_configured"), 3)
            self.assertIn("2 of 3 sentinels reachable", rs.log())

    def test_all_sentinels_down_keeps_a_working_master(self):
        # The sentinels cannot have moved a master they cannot be asked about: respscope keeps
        # serving the one it knows while it still says ROLE master, and says so in the metrics.
        topo = Topology(sentinels=2, replicas=0)
        self.addCleanup(topo.stop)
        rs = self.ready_respscope(topo)
        before = redis.Redis(port=rs.port, socket_timeout=5, decode_responses=True)
        self.addCleanup(before.close)
        self.assertTrue(before.set("k", "1"))
        for s in topo.sentinels:
            s.stop()
        self.assertTrue(metric_becomes(rs, "respscope_sentinels_reachable", 0), rs.log())
        start = value(metrics(rs), "respscope_sentinel_resolve_failures_total")
        self.assertTrue(until(lambda: value(metrics(rs), "respscope_sentinel_resolve_failures_total")
                              >= start + 3, 30), rs.log())
        self.assertEqual(before.get("k"), "1")
        after = redis.Redis(port=rs.port, socket_timeout=5, decode_responses=True)
        self.addCleanup(after.close)
        self.assertEqual(after.incr("n"), 1)
        self.assertEqual(tcp_port_through(rs), topo.master.port)
        self.assertEqual(rs.http("/readyz")[0], 200)
        m = metrics(rs)
        self.assertEqual(value(m, "respscope_upstream_up"), 1)
        self.assertEqual(value(m, "respscope_upstream_master", address="127.0.0.1:%d" % topo.master.port), 1)
        self.assertEqual(value(m, "respscope_sentinel_master_changes_total"), 0)
        self.assertIn("keeping master 127.0.0.1:%d" % topo.master.port, rs.log())

        # The master goes too: now nothing is known, and clients are told so.
        topo.master.stop()
        self.assertTrue(until(lambda: rs.http("/readyz")[0] == 503, 30), rs.log())
        self.assertTrue(metric_becomes(rs, "respscope_upstream_up", 0))
        self.assert_clients_told_no_master(rs)
        self.assertTrue(rs.alive())

    def test_no_quorum_master_down_then_back(self):
        # Two of three sentinels down: the one left cannot reach the quorum (2) to fail over
        # and keeps naming the master it knew. When that master dies, respscope must not go on
        # as if it were there: ROLE fails, no master is known, clients get a clear error and
        # /readyz says 503; the master's return on its port brings everything back.
        topo = Topology(sentinels=3, replicas=1)
        self.addCleanup(topo.stop)
        rs = self.ready_respscope(topo)
        for s in topo.sentinels[1:]:
            s.stop()
        master_port = topo.master.port
        topo.master.stop()
        self.assertTrue(until(lambda: rs.http("/readyz")[0] == 503, 30), rs.log())
        self.assertTrue(metric_becomes(rs, "respscope_upstream_up", 0))
        self.assert_clients_told_no_master(rs)
        # No quorum, no failover: the sentinel left still names the dead master.
        self.assertEqual(topo.sentinels[0].master_port(), master_port)
        self.assertTrue(rs.alive())

        topo.master = harness.Redis(port=master_port)
        self.assertTrue(until(lambda: rs.http("/readyz")[0] == 200, 30), rs.log())
        c = redis.Redis(port=rs.port, socket_timeout=5, decode_responses=True)
        self.addCleanup(c.close)

        def set_ok():
            try:
                return c.set("back", "1")
            except redis.RedisError:
                return False
        self.assertTrue(until(set_ok, 15, 0.2))
        self.assertEqual(tcp_port_through(rs), master_port)
        self.assertTrue(metric_becomes(rs, "respscope_upstream_up", 1))

    def test_no_sentinel_reachable_then_recovery(self):
        master = harness.Redis()
        self.addCleanup(master.stop)
        ports = [harness.free_port(), harness.free_port()]
        rs = harness.Respscope(sentinel_url(ports))
        self.addCleanup(rs.stop)
        self.assertEqual(rs.http("/readyz")[0], 503)
        self.assertTrue(metric_becomes(rs, "respscope_upstream_up", 0))
        self.assertTrue(metric_becomes(rs, "respscope_sentinels_configured", 2))
        self.assertEqual(value(metrics(rs), "respscope_sentinels_reachable"), 0)
        reply = reply_until_close(rs.port)
        self.assertTrue(reply.startswith("-ERR respscope: upstream redis+sentinel://"), reply)
        self.assertIn("no master known for 'mymaster'", reply)
        self.assertIn("no sentinel reachable", reply)

        # Retrying with backoff leaks nothing: descriptors stay level over several rounds and
        # many refused clients.
        def failures():
            return value(metrics(rs), "respscope_sentinel_resolve_failures_total")

        def refused_clients(n):
            for _ in range(n):
                self.assertIn("no master known", reply_until_close(rs.port))
        self.assertTrue(until(lambda: failures() >= 4, 30))
        refused_clients(20)
        before = open_fds(rs.pid)
        start = failures()
        self.assertTrue(until(lambda: failures() >= start + 3, 40))
        refused_clients(20)
        # Closes finish asynchronously (admin scrapes, refused clients): a leak never returns.
        self.assertTrue(until(lambda: open_fds(rs.pid) <= before, 10, 0.1),
                        "descriptors: %d before, %d after" % (before, open_fds(rs.pid)))
        self.assertEqual(rs.http("/readyz")[0], 503)
        self.assertIn("no working master for 'mymaster'", rs.log())
        self.assertTrue(rs.alive())

        # The sentinels come up: respscope finds the master and serves again.
        workdir = tempfile.mkdtemp(prefix="respscope-sentinels-")
        self.addCleanup(shutil.rmtree, workdir, True)
        sentinels = [Sentinel(master.port, port=p, workdir=workdir) for p in ports]
        for s in sentinels:
            self.addCleanup(s.stop)
        self.assertTrue(until(lambda: rs.http("/readyz")[0] == 200, 30), rs.log())
        c = redis.Redis(port=rs.port, socket_timeout=5, decode_responses=True)
        self.assertTrue(c.set("back", "1"))
        self.assertEqual(tcp_port_through(rs), master.port)
        self.assertTrue(metric_becomes(rs, "respscope_upstream_up", 1))
        self.assertTrue(metric_becomes(rs, "respscope_upstream_master", 1,
                                       address="127.0.0.1:%d" % master.port))
        self.assertEqual(value(metrics(rs), "respscope_sentinels_reachable"), 2)


class SentinelCredentials(unittest.TestCase):
    def test_sentinel_password_is_separate_from_the_masters(self):
        master = harness.Redis(extra=["--requirepass", "master-secret"])
        self.addCleanup(master.stop)
        workdir = tempfile.mkdtemp(prefix="respscope-sentinels-")
        self.addCleanup(shutil.rmtree, workdir, True)
        sentinels = [Sentinel(master.port, workdir=workdir, requirepass="sentinel-secret",
                              master_pass="master-secret") for _ in range(2)]
        for s in sentinels:
            self.addCleanup(s.stop)
        url = "redis+sentinel://:master-secret@" + ",".join(
            "127.0.0.1:%d" % s.port for s in sentinels) + "/" + MASTER

        # Without the sentinels' password they refuse to say, and respscope says why.
        with harness.Respscope(url) as rs:
            self.assertTrue(metric_becomes(rs, "respscope_upstream_up", 0))
            self.assertEqual(rs.http("/readyz")[0], 503)
            reply = reply_until_close(rs.port)
            self.assertIn("no master known for 'mymaster'", reply)
            self.assertIn("NOAUTH", reply)

        # With it (from the environment), the sentinels name the master; the URL's password
        # checks it with ROLE and serves clients that authenticate as they would directly.
        with harness.Respscope(url, env={"RESPSCOPE_UPSTREAM_SENTINEL_PASSWORD":
                                         "sentinel-secret"}) as rs:
            self.assertTrue(until(lambda: rs.http("/readyz")[0] == 200, 15), rs.log())
            c = redis.Redis(port=rs.port, password="master-secret", socket_timeout=5,
                            decode_responses=True)
            self.assertTrue(c.set("k", "v"))
            self.assertEqual(int(c.info("server")["tcp_port"]), master.port)
            self.assertTrue(metric_becomes(rs, "respscope_upstream_master", 1,
                                           address="127.0.0.1:%d" % master.port))
            self.assertNotIn("sentinel-secret", rs.log())
            self.assertNotIn("refused ROLE", rs.log())


if __name__ == "__main__":
    unittest.main()
