"""redis-py (Debian's python3-redis) through respscope: commands, pipelines, transactions with
WATCH, pub/sub (channels and patterns, messages from another connection), blocking pops woken
by another connection, Lua scripts, binary and large values, and a connection pool shared by
threads each checking its own keys. Run by /usr/bin/python3 (where python3-redis lives).
"""
import sys
import threading
import time
import unittest

import harness

try:
    import redis
except ImportError:  # pragma: no cover - reported as a skip
    redis = None


@unittest.skipIf(redis is None, "python3-redis is not installed for this interpreter")
class RedisPy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Redis()
        cls.rs = harness.Respscope(cls.server.url())
        cls.pool = redis.ConnectionPool(host="127.0.0.1", port=cls.rs.port, socket_timeout=10)
        cls.r = redis.Redis(connection_pool=cls.pool)
        print("redis-py %s through respscope" % redis.__version__)

    @classmethod
    def tearDownClass(cls):
        cls.pool.disconnect()
        rc = cls.rs.stop()
        cls.server.stop()
        assert rc == 0, cls.rs.log()[-2000:]

    def test_commands(self):
        r = self.r
        self.assertTrue(r.ping())
        self.assertTrue(r.set("s", "v", ex=100))
        self.assertEqual(r.get("s"), b"v")
        self.assertIsNone(r.get("missing"))
        self.assertEqual(r.incrby("n", 5), 5)
        r.hset("h", mapping={"a": "1", "b": "2"})
        self.assertEqual(r.hgetall("h"), {b"a": b"1", b"b": b"2"})
        r.zadd("z", {"x": 1.5, "y": 2})
        self.assertEqual(r.zrange("z", 0, -1, withscores=True), [(b"x", 1.5), (b"y", 2.0)])
        with self.assertRaises(redis.ResponseError) as cm:
            r.lpush("s", "x")
        self.assertIn("WRONGTYPE", str(cm.exception))
        r.client_setname("py-client")
        self.assertEqual(r.client_getname(), "py-client")
        self.assertIs(r.execute_command("SELECT", 0), True)

    def test_binary_and_large_values(self):
        blob = bytes(range(256)) * 4096
        big = b"0123456789" * (1 << 20)
        self.r.set("bin", blob)
        self.r.set("big", big)
        self.assertEqual(self.r.get("bin"), blob)
        self.assertEqual(self.r.get("big"), big)
        self.assertEqual(self.r.strlen("big"), len(big))

    def test_pipeline(self):
        p = self.r.pipeline(transaction=False)
        for i in range(2000):
            p.set("p:%d" % i, i)
            p.get("p:%d" % i)
        p.lpush("p:1", "x")  # WRONGTYPE inside a pipeline
        res = p.execute(raise_on_error=False)
        self.assertEqual(len(res), 4001)
        for i in range(2000):
            self.assertIs(res[2 * i], True)
            self.assertEqual(res[2 * i + 1], str(i).encode())
        self.assertIsInstance(res[4000], redis.ResponseError)

    def test_transactions(self):
        p = self.r.pipeline(transaction=True)
        p.set("t", 1).incr("t").get("t")
        self.assertEqual(p.execute(), [True, 2, b"2"])
        with self.assertRaises(redis.ResponseError):
            p = self.r.pipeline(transaction=True)
            p.set("t", 1)
            p.execute_command("NOSUCHCOMMAND")
            p.execute()
        other = redis.Redis(host="127.0.0.1", port=self.rs.port)
        with self.r.pipeline() as p:
            p.watch("w")
            other.set("w", "theirs")
            p.multi()
            p.set("w", "mine")
            with self.assertRaises(redis.WatchError):
                p.execute()
        self.assertEqual(self.r.get("w"), b"theirs")

        def incr(pipe):
            v = int(pipe.get("counter") or 0)
            pipe.multi()
            pipe.set("counter", v + 1)
        for _ in range(20):
            self.r.transaction(incr, "counter")
        self.assertEqual(self.r.get("counter"), b"20")
        other.close()

    def test_pubsub(self):
        ps = self.r.pubsub()
        ps.subscribe("news", "sport")
        ps.psubscribe("log.*")
        for _ in range(3):
            self.assertIn(ps.get_message(timeout=5)["type"], ("subscribe", "psubscribe"))
        pub = redis.Redis(host="127.0.0.1", port=self.rs.port)
        sent = []
        for i in range(300):
            ch = ("news", "sport", "log.app")[i % 3]
            self.assertEqual(pub.publish(ch, "m%d" % i), 1)
            sent.append((ch, b"m%d" % i))
        got = []
        deadline = time.monotonic() + 10
        while len(got) < len(sent) and time.monotonic() < deadline:
            m = ps.get_message(timeout=1)
            if m and m["type"] in ("message", "pmessage"):
                got.append((m["channel"].decode(), m["data"]))
        self.assertEqual(got, sent)
        ps.unsubscribe()
        ps.punsubscribe()
        ps.close()
        pub.close()

    def test_blocking(self):
        waker = redis.Redis(host="127.0.0.1", port=self.rs.port)
        threading.Timer(0.2, lambda: waker.rpush("q", "job")).start()
        self.assertEqual(self.r.blpop("q", timeout=5), (b"q", b"job"))
        threading.Timer(0.2, lambda: waker.zadd("bz", {"m": 4})).start()
        self.assertEqual(self.r.bzpopmin("bz", timeout=5), (b"bz", b"m", 4.0))
        threading.Timer(0.2, lambda: waker.xadd("st", {"f": "v"}, id="5-1")).start()
        res = self.r.xread({"st": "$"}, block=5000)
        self.assertEqual(res[0][1][0][0], b"5-1")
        self.assertIsNone(self.r.blpop("nothing", timeout=0.1))
        waker.close()

    def test_scripts(self):
        script = self.r.register_script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
        self.assertEqual(script(keys=["sc"], args=["a"]), [b"sc", b"a", 1])
        self.r.script_flush()
        self.assertEqual(script(keys=["sc"], args=["a"]), [b"sc", b"a", 2])  # NOSCRIPT path

    def test_pool_threads(self):
        errors = []

        def worker(n):
            try:
                for i in range(300):
                    k = "th:%d:%d" % (n, i)
                    self.r.set(k, "%d-%d" % (n, i))
                    if self.r.get(k) != b"%d-%d" % (n, i):
                        errors.append(k)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertFalse(any(t.is_alive() for t in threads))


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
