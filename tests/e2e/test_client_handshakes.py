"""Client libraries' connect handshakes keep sharing (upstream_pooling: auto): redis-py (from
Debian), ioredis and node-redis (pinned in tests/e2e/node/package-lock.json) send what they send
at connect (CLIENT SETINFO, SELECT 0, AUTH...), do a few commands each, and stay connected:
Redis's CLIENT LIST shows the shared connections and spares, not one connection per client;
no client was moved to a connection of its own. The same clients against Redis directly show
one connection each (the count is real, not a test artifact).
"""
import json
import os
import subprocess
import sys
import unittest

import harness
import redis as redis_py
from harness import RawClient, resp_command
from prom import parse_metrics, series
from test_ioredis import ensure_node_modules

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "handshake_clients.js")
COUNT = 15  # per Node library; redis-py opens as many


def client_count(redis_port):
    c = RawClient(redis_port)
    c.send(resp_command("CLIENT", "LIST"))
    body = c.read_frames(1)[0]
    c.close()
    return sum(1 for line in body.split(b"\r\n", 1)[1].splitlines() if line.startswith(b"id="))


def hold_clients(port):
    """Starts the clients on `port`; returns (node process, redis-py connections)."""
    node = subprocess.Popen(["node", SCRIPT, str(port), str(COUNT)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    line = node.stdout.readline()
    result = json.loads(line) if line.startswith("{") else {"ok": False, "errors": [line]}
    pool = redis_py.ConnectionPool(host="127.0.0.1", port=port, max_connections=COUNT)
    conns = []
    for i in range(COUNT):
        c = pool.get_connection("PING")
        c.send_command("SET", "py:%d" % i, "x%d" % i)
        assert c.read_response() == b"OK"
        c.send_command("GET", "py:%d" % i)
        assert c.read_response() == b"x%d" % i
        conns.append(c)
    return node, pool, conns, result


def release(node, pool, conns):
    for c in conns:
        pool.release(c)
    pool.disconnect()
    node.stdin.close()
    node.wait(30)


class ClientHandshakes(unittest.TestCase):
    def test_libraries_keep_sharing(self):
        ensure_node_modules()
        with harness.Redis() as redis:
            node, pool, conns, result = hold_clients(redis.port)
            direct = client_count(redis.port)
            release(node, pool, conns)
            self.assertTrue(result["ok"], result)
            self.assertGreaterEqual(direct, 3 * COUNT)
            with harness.Respscope(redis.url(),
                                   env={"RESPSCOPE_UPSTREAM_POOLING": "auto"}) as rs:
                node, pool, conns, result = hold_clients(rs.port)
                proxied = client_count(redis.port)
                _, body = rs.http("/metrics")
                release(node, pool, conns)
                print("%d library clients: Redis sees %d connections directly, %d through "
                      "respscope" % (3 * COUNT, direct, proxied))
                self.assertTrue(result["ok"], result)
                pins = series(parse_metrics(body), "respscope_upstream_pins_total")
                pins = {dict(k)["reason"]: v for k, v in pins.items() if v}
                # 2 IO threads x (1 shared + 2 spares), the side channel, this CLIENT LIST.
                self.assertLessEqual(proxied, 2 * 3 + 2, pins)
                self.assertEqual(pins, {})


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
