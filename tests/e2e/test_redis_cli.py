"""redis-cli through respscope, compared with redis-cli straight to Redis: the same commands
against two fresh redis-servers (one direct, one behind respscope) must print the same thing,
in RESP2 and RESP3 (-3), raw and formatted; commands read from stdin; -r repeats;
--pipe mass insertion of 100,000 commands; --scan and --bigkeys; SUBSCRIBE in RESP3.
The only normalisation: the client id in HELLO's reply.
"""
import re
import subprocess
import sys
import threading
import time
import unittest

import harness

COMMANDS = [
    ["SET", "k", "hello world"], ["GET", "k"], ["GET", "missing"], ["INCR", "n"], ["INCRBYFLOAT", "f", "1.5"],
    ["HSET", "h", "a", "1", "b", "2"], ["HGETALL", "h"], ["SADD", "s", "3", "1", "2"],
    ["SMEMBERS", "s"], ["ZADD", "z", "1.5", "x", "2", "y"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
    ["ZSCORE", "z", "x"], ["RPUSH", "l", "a", "b", "c"], ["LRANGE", "l", "0", "-1"], ["LPUSH", "k", "x"],
    ["NOSUCH", "arg"], ["EXISTS", "k", "h", "nope"], ["TYPE", "z"], ["HELLO", "3"], ["PING"],
    ["EVAL", "return {1, {2, {3, 'x'}}, redis.status_reply('OK'), false}", "0"],
    ["EVAL", "redis.setresp(3) return redis.call('HGETALL', KEYS[1])", "1", "h"],
    ["XADD", "st", "1-1", "f", "v"], ["XRANGE", "st", "-", "+"], ["CONFIG", "GET", "maxmemory"],
    ["OBJECT", "ENCODING", "l"], ["DEL", "k", "h"], ["DBSIZE"],
]


def norm(out):
    """HELLO's client id, raw ("id\n56") or formatted ('4# "id" => (integer) 56')."""
    return re.sub(r'(\bid"?(?: =>)?\s+(?:\(integer\) )?)\d+', r"\1<id>", out)


class RedisCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.direct = harness.Redis()
        cls.behind = harness.Redis()
        cls.rs = harness.Respscope(cls.behind.url())

    @classmethod
    def tearDownClass(cls):
        rc = cls.rs.stop()
        cls.direct.stop()
        cls.behind.stop()
        assert rc == 0, cls.rs.log()[-2000:]

    def setUp(self):
        for r in (self.direct, self.behind):
            subprocess.run(["redis-cli", "-p", str(r.port), "FLUSHALL"], check=True,
                           capture_output=True, timeout=10)

    def cli(self, port, *args, stdin=None, timeout=60):
        p = subprocess.run(["redis-cli", "-p", str(port)] + list(args), input=stdin,
                           capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def both(self, *args, stdin=None):
        """Runs on the direct redis, then through respscope; asserts identical output."""
        want = self.cli(self.direct.port, *args, stdin=stdin)
        got = self.cli(self.rs.port, *args, stdin=stdin)
        self.assertEqual((want[0], norm(want[1]), want[2]), (got[0], norm(got[1]), got[2]),
                         "redis-cli %s" % " ".join(args))
        return got

    def test_commands_resp2_and_resp3(self):
        n = 0
        for proto in ([], ["-3"]):
            for fmt in ([], ["--no-raw"]):
                for r in (self.direct, self.behind):
                    subprocess.run(["redis-cli", "-p", str(r.port), "FLUSHALL"], check=True,
                                   capture_output=True, timeout=10)
                for cmd in COMMANDS:
                    self.both(*(proto + fmt + cmd))
                    n += 1
        rc, out, _ = self.cli(self.rs.port, "-3", "--no-raw", "HGETALL", "nothing")
        self.assertEqual(rc, 0)
        rc, out, _ = self.cli(self.rs.port, "-3", "--no-raw", "HELLO", "3")
        self.assertIn("proto", out)
        print("redis-cli: %d invocations identical with and without respscope" % n)

    def test_stdin_and_repeat(self):
        script = b"SET a 1\nINCR a\nGET a\nMULTI\nINCR a\nEXEC\nSELECT 2\nGET a\nQUIT\n"
        rc, out, _ = self.both(stdin=script)
        self.assertIn("3", out)
        rc, out, _ = self.both("-r", "200", "INCR", "counter")
        self.assertEqual(out.split()[-1], "200")
        self.both("-x", "SET", "fromstdin", stdin=b"payload\x00with\x01bytes")
        rc, out, _ = self.both("--raw", "GET", "fromstdin")
        self.assertIn("payload", out)

    def test_pipe_mass_insert(self):
        n = 100000
        data = b"".join(harness.resp_command("SET", "key:%d" % i, "value:%d" % i) for i in range(n))
        t0 = time.monotonic()
        rc, out, err = self.cli(self.rs.port, "--pipe", stdin=data, timeout=120)
        took = time.monotonic() - t0
        print("redis-cli --pipe, %d commands through respscope in %.1fs: %s" % (
            n, took, out.strip().splitlines()[-1] if out.strip() else err))
        self.assertEqual(rc, 0, out + err)
        self.assertIn("errors: 0, replies: %d" % n, out)
        rc, out, _ = self.cli(self.behind.port, "DBSIZE")
        self.assertEqual(out.strip(), str(n))
        for i in (0, 4242, n - 1):
            rc, out, _ = self.cli(self.behind.port, "GET", "key:%d" % i)
            self.assertEqual(out.strip(), "value:%d" % i)
        # An error in the middle is counted, not fatal.
        cmds = [harness.resp_command("SET", "e:%d" % i, i) for i in range(200)]
        bad = b"".join(cmds[:100]) + harness.resp_command("LPUSH", "e:1", "x") + b"".join(cmds[100:])
        rc, out, _ = self.cli(self.rs.port, "--pipe", stdin=bad, timeout=60)
        self.assertIn("errors: 1, replies: 201", out)

    def test_scan_and_bigkeys(self):
        for r in (self.direct, self.behind):
            data = b"".join(harness.resp_command("SET", "scan:%d" % i, "x" * (i % 50))
                            for i in range(500))
            data += harness.resp_command("RPUSH", "biglist", *range(300))
            self.cli(r.port, "--pipe", stdin=data)
        want = self.cli(self.direct.port, "--scan", "--pattern", "scan:*")
        got = self.cli(self.rs.port, "--scan", "--pattern", "scan:*")
        self.assertEqual(sorted(want[1].split()), sorted(got[1].split()))
        self.assertEqual(len(got[1].split()), 500)
        rc, out, _ = self.cli(self.rs.port, "--bigkeys")
        self.assertEqual(rc, 0)
        self.assertIn("Biggest   list found '\"biglist\"' has 300 items", out)

    def test_subscribe_resp3(self):
        outputs = []
        for r_port, pub_port in ((self.direct.port, self.direct.port),
                                 (self.rs.port, self.behind.port)):
            p = subprocess.Popen(["redis-cli", "-3", "-p", str(r_port), "SUBSCRIBE", "news"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            lines = []
            reader = threading.Thread(target=lambda: lines.extend(iter(p.stdout.readline, b"")),
                                      daemon=True)
            reader.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                rc, out, _ = self.cli(pub_port, "PUBSUB", "NUMSUB", "news")
                if out.split()[-1:] == ["1"]:
                    break
                time.sleep(0.05)
            for i in range(3):
                self.cli(pub_port, "PUBLISH", "news", "hello %d" % i)
            while time.monotonic() < deadline and b"".join(lines).count(b"hello") < 3:
                time.sleep(0.05)
            p.terminate()
            p.wait(5)
            reader.join(5)
            p.stdout.close()
            outputs.append(b"".join(lines))
        self.assertEqual(outputs[0].count(b"hello"), 3, outputs[0])
        self.assertEqual(outputs[0], outputs[1])


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
