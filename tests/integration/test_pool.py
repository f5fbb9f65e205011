"""Shared upstream connections (upstream_pooling: auto): many clients on few connections, and
nothing of Redis's behaviour lost.

- 200 clients interleave random commands (pipelined and not) on their own keys: every client
  gets exactly the bytes direct Redis gives the same stream, and Redis sees a handful of
  connections instead of 200.
- Ordering at the switch to a private connection: a pipelined SET/GET/MULTI/EXEC, LPUSH then
  BLPOP, XADD then XREAD BLOCK, in one write: each answered as directly.
- Handshakes that keep sharing (CLIENT SETINFO on a server without it, SELECT 0, QUIT).
- requirepass: NOAUTH before AUTH, WRONGPASS for a wrong password, the URL's credentials
  share, another ACL user is pinned and keeps its own (smaller) permissions.
- Faults: the shared connection killed from Redis's side with 100 clients in flight; a client
  that stops reading (closed at limits.max_inflight_bytes_per_client, the others unaffected);
  protocol garbage from one client among many.
- Metrics: upstream connections by kind, pins by reason, commands per shared write; each
  client's upstream mode in /api/v1/clients.
"""
import json
import random
import socket
import threading
import time
import unittest

import harness
from harness import RawClient, resp_command
from prom import parse_metrics, series

CLIENTS = 200


def client_list(redis_port):
    c = RawClient(redis_port)
    c.send(resp_command("CLIENT", "LIST"))
    body = c.read_frames(1)[0]
    c.close()
    text = body.split(b"\r\n", 1)[1].decode()
    return [line for line in text.splitlines() if line.startswith("id=")]


def metric(rs, name, **labels):
    status, body = rs.http("/metrics")
    assert status == 200, body
    return sum(series(parse_metrics(body), name, **labels).values())


def script_for(client, rng):
    """A client's command stream: batches (pipelined when longer than one) on its own keys."""
    batches = []
    for i in range(rng.randint(5, 12)):
        batch = []
        for j in range(rng.choice((1, 1, 1, 3, 8))):
            k = "c%d:k%d" % (client, rng.randint(0, 4))
            op = rng.randint(0, 6)
            if op == 0:
                batch.append(("SET", k, "v%d-%d-%d" % (client, i, j)))
            elif op == 1:
                batch.append(("GET", k))
            elif op == 2:
                batch.append(("INCR", "c%d:n" % client))
            elif op == 3:
                batch.append(("RPUSH", "c%d:l" % client, "x%d" % j))
            elif op == 4:
                batch.append(("LRANGE", "c%d:l" % client, "0", "-1"))
            elif op == 5:
                batch.append(("HSET", "c%d:h" % client, "f%d" % j, "%d" % i))
            else:
                batch.append(("GET", "c%d:missing" % client))
        batches.append(batch)
    return batches


def run_clients(port, scripts):
    """Runs every client's script on its own connection at once; returns replies per client."""
    out = [None] * len(scripts)
    errors = []
    start = threading.Barrier(len(scripts))

    def one(idx):
        try:
            c = RawClient(port, timeout=30)
            start.wait(30)
            got = []
            for batch in scripts[idx]:
                c.send(b"".join(resp_command(*cmd) for cmd in batch))
                got.extend(c.read_frames(len(batch)))
            c.close()
            out[idx] = got
        except Exception as e:  # reported below
            errors.append("client %d: %r" % (idx, e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(scripts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out, errors


class Pool(unittest.TestCase):
    def respscope(self, redis, **kw):
        env = dict(kw.pop("env", {}))
        env.setdefault("RESPSCOPE_UPSTREAM_POOLING", "auto")
        return harness.Respscope(kw.pop("url", redis.url()), env=env, **kw)

    def test_many_clients_get_their_own_replies(self):
        rng = random.Random(7)
        scripts = [script_for(c, rng) for c in range(CLIENTS)]
        with harness.Redis() as direct:
            want, errors = run_clients(direct.port, scripts)
            self.assertEqual(errors, [])
        with harness.Redis() as redis, self.respscope(redis) as rs:
            # Keep the clients connected while Redis's view is read.
            held = [RawClient(rs.port) for _ in range(CLIENTS)]
            for h in held:
                h.send(resp_command("PING"))
            for h in held:
                self.assertEqual(h.read_frames(1), [b"+PONG\r\n"])
            conns = client_list(redis.port)
            got, errors = run_clients(rs.port, scripts)
            for h in held:
                h.close()
            self.assertEqual(errors, [])
            mismatched = [i for i in range(CLIENTS) if got[i] != want[i]]
            self.assertEqual(mismatched, [], "client 0 want %r got %r" %
                             (want[mismatched[0]][:3], got[mismatched[0]][:3])
                             if mismatched else "")
            # 2 IO threads x (1 shared + 2 spares), the side channel and this CLIENT LIST.
            print("redis sees %d connections for %d clients" % (len(conns), CLIENTS))
            self.assertLessEqual(len(conns), 2 * 3 + 2)
            self.assertEqual(metric(rs, "respscope_upstream_connections", kind="shared"), 2)
            self.assertEqual(metric(rs, "respscope_upstream_pins_total"), 0)
            writes = metric(rs, "respscope_shared_write_commands_count")
            commands = metric(rs, "respscope_shared_write_commands_sum")
            print("shared writes: %d carrying %d commands" % (writes, commands))
            self.assertGreaterEqual(commands, sum(len(b) for s in scripts for b in s) + CLIENTS)

    def test_ordering_at_the_switch(self):
        with harness.Redis() as direct, harness.Redis() as redis, self.respscope(redis) as rs:
            def exchange(port, data, frames):
                c = RawClient(port)
                c.send(data)
                out = c.read_frames(frames)
                c.close()
                return out

            cases = [
                ([("SET", "k", "v"), ("GET", "k"), ("MULTI",), ("INCR", "x"), ("GET", "k"),
                  ("EXEC",), ("GET", "x")], 7),
                ([("DEL", "q"), ("LPUSH", "q", "a"), ("BLPOP", "q", "1"), ("LLEN", "q")], 4),
                ([("DEL", "s"), ("XADD", "s", "1-1", "f", "v"),
                  ("XREAD", "BLOCK", "1000", "STREAMS", "s", "0-0"), ("XLEN", "s")], 4),
                ([("SET", "a", "1"), ("SELECT", "1"), ("GET", "a"), ("SELECT", "0"), ("GET", "a")],
                 5),
                ([("CLIENT", "SETINFO", "LIB-NAME", "x"), ("SELECT", "0"), ("PING",),
                  ("CLIENT", "SETNAME", "me"), ("CLIENT", "GETNAME")], 5),
            ]
            for cmds, frames in cases:
                data = b"".join(resp_command(*c) for c in cmds)
                redis_side = exchange(direct.port, data, frames)
                proxied = exchange(rs.port, data, frames)
                self.assertEqual(proxied, redis_side, cmds)
            # Another client's XADD reaches a blocked XREAD on a pinned connection.
            reader = RawClient(rs.port)
            reader.send(resp_command("XREAD", "BLOCK", "5000", "STREAMS", "s2", "$"))
            time.sleep(0.3)
            writer = RawClient(rs.port)
            writer.send(resp_command("XADD", "s2", "5-1", "f", "w"))
            self.assertEqual(writer.read_frames(1), [b"$3\r\n5-1\r\n"])
            self.assertIn(b"5-1", reader.read_frames(1)[0])
            # QUIT: +OK, then the connection closes.
            q = RawClient(rs.port)
            q.send(resp_command("PING") + resp_command("QUIT"))
            self.assertEqual(q.read_frames(2), [b"+PONG\r\n", b"+OK\r\n"])
            self.assertEqual(q.sock.recv(10), b"")
            pins = {r: metric(rs, "respscope_upstream_pins_total", reason=r)
                    for r in ("transaction", "blocking", "select", "client")}
            print("pins by reason:", pins)
            self.assertTrue(all(v >= 1 for v in pins.values()), pins)

    def test_requirepass(self):
        extra = ["--requirepass", "s3cret"]
        with harness.Redis(extra=extra) as redis:
            admin = RawClient(redis.port)
            admin.send(resp_command("AUTH", "s3cret") +
                       resp_command("ACL", "SETUSER", "reader", "on", ">rpw", "~*", "+get",
                                    "+auth", "+ping"))
            self.assertEqual(admin.read_frames(2), [b"+OK\r\n", b"+OK\r\n"])
            url = "redis://:s3cret@127.0.0.1:%d" % redis.port
            with self.respscope(redis, url=url) as rs:
                def exchange(port, cmds):
                    c = RawClient(port)
                    c.send(b"".join(resp_command(*x) for x in cmds))
                    out = c.read_frames(len(cmds))
                    c.close()
                    return out

                for cmds in (
                    [("GET", "a")],                                      # NOAUTH
                    [("AUTH", "wrong"), ("GET", "a")],                   # WRONGPASS, NOAUTH
                    [("AUTH", "s3cret"), ("SET", "a", "1"), ("GET", "a")],
                    [("AUTH", "default", "s3cret"), ("GET", "a")],
                    [("AUTH", "reader", "rpw"), ("GET", "a"), ("SET", "a", "2")],  # NOPERM
                ):
                    self.assertEqual(exchange(rs.port, cmds), exchange(redis.port, cmds), cmds)
                # Clients with the URL's credentials share; the others were pinned.
                held = [RawClient(rs.port) for _ in range(30)]
                for h in held:
                    h.send(resp_command("AUTH", "s3cret") + resp_command("PING"))
                for h in held:
                    self.assertEqual(h.read_frames(2), [b"+OK\r\n", b"+PONG\r\n"])
                self.assertLessEqual(len(client_list(redis.port)), 2 * 3 + 3)
                for h in held:
                    h.close()
                self.assertGreaterEqual(metric(rs, "respscope_upstream_pins_total",
                                               reason="auth"), 3)

    def test_shared_connection_killed_with_clients_in_flight(self):
        with harness.Redis() as redis, self.respscope(redis, threads=1) as rs:
            # Writes are postponed by Redis while paused: 100 clients' SETs wait, in flight on
            # the shared connection, when it is killed.
            killer = RawClient(redis.port)
            killer.send(resp_command("CLIENT", "PAUSE", "10000", "WRITE"))
            self.assertEqual(killer.read_frames(1), [b"+OK\r\n"])
            clients = [RawClient(rs.port, timeout=5) for _ in range(100)]
            for i, c in enumerate(clients):
                c.send(resp_command("SET", "k%d" % i, "v"))
            time.sleep(0.3)
            killer.send(resp_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
            killer.read_frames(1)
            killer.send(resp_command("CLIENT", "UNPAUSE"))
            killer.read_frames(1)
            closed = 0
            for c in clients:
                try:
                    c.read_frames(1)
                except (ConnectionError, socket.timeout, OSError):
                    closed += 1
                c.close()
            # Every client with a command in flight is closed, as if its own connection dropped.
            self.assertGreaterEqual(closed, 99)
            self.assertGreaterEqual(metric(rs, "respscope_shared_connection_drops_total"), 1)
            # New clients carry on over a new shared connection.
            ok = False
            deadline = time.time() + 10
            while time.time() < deadline and not ok:
                try:
                    c = RawClient(rs.port)
                    c.send(resp_command("PING"))
                    ok = c.read_frames(1) == [b"+PONG\r\n"]
                    c.close()
                except (ConnectionError, OSError):
                    time.sleep(0.1)
            self.assertTrue(ok)

    def test_slow_reader_is_closed_at_the_limit(self):
        value = b"x" * (1 << 20)
        config = "limits:\n  max_inflight_bytes_per_client: 4MiB\n"
        with harness.Redis() as redis, self.respscope(redis, config_text=config,
                                                      threads=1) as rs:
            setter = RawClient(redis.port)
            setter.send(resp_command("SET", "big", value))
            setter.read_frames(1)
            hwm0 = harness.hwm_kib(rs.pid)
            slow = RawClient(rs.port)
            slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.send(resp_command("GET", "big") * 64)  # 64 MiB of replies, none read
            # Others are served meanwhile.
            other = RawClient(rs.port)
            for i in range(50):
                other.send(resp_command("INCR", "n"))
                self.assertEqual(other.read_frames(1), [b":%d\r\n" % (i + 1)])
            self.assertTrue(harness_until(
                lambda: metric(rs, "respscope_client_output_limit_closes_total") >= 1, 10))
            hwm1 = harness.hwm_kib(rs.pid)
            print("slow reader closed; respscope VmHWM %d -> %d KiB" % (hwm0, hwm1))
            self.assertLess(hwm1 - hwm0, 32 * 1024)
            other.send(resp_command("GET", "n"))
            self.assertEqual(other.read_frames(1), [b"$2\r\n50\r\n"])

    def test_protocol_garbage_from_one_client(self):
        with harness.Redis() as redis, self.respscope(redis) as rs:
            good = [RawClient(rs.port) for _ in range(20)]
            bad = RawClient(rs.port)
            bad.send(resp_command("SET", "g", "1") + b"*2\r\n$3\r\nGET\r\n:1\r\n")
            direct = RawClient(redis.port)
            direct.send(resp_command("SET", "g", "1") + b"*2\r\n$3\r\nGET\r\n:1\r\n")
            want = direct.read_frames(2)
            self.assertEqual(bad.read_frames(2), want)
            self.assertEqual(bad.sock.recv(10), b"")
            for i, g in enumerate(good):
                g.send(resp_command("SET", "k%d" % i, "v") + resp_command("GET", "k%d" % i))
            for g in good:
                self.assertEqual(g.read_frames(2), [b"+OK\r\n", b"$1\r\nv\r\n"])

    def test_clients_api_shows_each_clients_mode(self):
        def rows(rs):
            status, body = rs.http("/api/v1/clients")
            self.assertEqual(status, 200, body)
            return {r["client"]: r for r in json.loads(body)["clients"]}

        def settled(rs, name, pred):
            got = {}

            def check():
                got.update(rows(rs))
                return name in got and pred(got[name])
            harness_until(check, 10)
            self.assertIn(name, got)
            return got[name]

        with harness.Redis() as redis, self.respscope(redis) as rs:
            plain = RawClient(rs.port)
            plain.send(resp_command("SET", "a", "1") + resp_command("GET", "a"))
            self.assertEqual(plain.read_frames(2), [b"+OK\r\n", b"$1\r\n1\r\n"])
            row = settled(rs, "127.0.0.1", lambda r: r["commands"] >= 2)
            self.assertEqual(row["mode"], "shared", row)
            self.assertEqual(row["commands_by_mode"], {"shared": 2, "pinned": 0, "dedicated": 0})
            self.assertNotIn("pin_reason", row)

            blocker = RawClient(rs.port)
            blocker.send(resp_command("BLPOP", "nothing", "0.05"))
            self.assertEqual(blocker.read_frames(1), [b"*-1\r\n"])
            row = settled(rs, "127.0.0.1", lambda r: r["commands_by_mode"]["pinned"] >= 1)
            self.assertEqual(row["mode"], "mixed", row)
            self.assertEqual(row["commands_by_mode"]["shared"], 2)
            self.assertEqual(row["pin_reason"], "blocking")

            named = RawClient(rs.port)
            named.send(resp_command("CLIENT", "SETNAME", "worker"))
            self.assertEqual(named.read_frames(1), [b"+OK\r\n"])
            named.send(resp_command("GET", "a") + resp_command("GET", "a"))
            self.assertEqual(len(named.read_frames(2)), 2)
            row = settled(rs, "worker", lambda r: r["commands"] >= 2)
            self.assertEqual(row["mode"], "pinned", row)
            self.assertEqual(row["commands_by_mode"]["shared"], 0)
            self.assertEqual(row["pin_reason"], "client")
            for c in (plain, blocker, named):
                c.close()

        with harness.Redis() as redis, \
                self.respscope(redis, env={"RESPSCOPE_UPSTREAM_POOLING": "dedicated"}) as rs:
            c = RawClient(rs.port)
            c.send(resp_command("GET", "a"))
            self.assertEqual(c.read_frames(1), [b"$-1\r\n"])
            row = settled(rs, "127.0.0.1", lambda r: r["commands"] >= 1)
            self.assertEqual(row["mode"], "dedicated", row)
            self.assertEqual(row["commands_by_mode"], {"shared": 0, "pinned": 0, "dedicated": 1})
            c.close()


def harness_until(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


if __name__ == "__main__":
    unittest.main(verbosity=2)
