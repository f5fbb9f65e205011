"""redis-benchmark's full default test set through respscope (-n 2000 -q), also pipelined
(-P 16, 50 clients) and in RESP3 (-3): it completes with exit code 0, reports every test, no
error, and leaves the same data behind as the same run straight against Redis (no command
lost or duplicated). Throughput figures are printed, never asserted (those live in bench/).
"""
import re
import subprocess
import sys
import unittest

import harness

RUNS = [
    ("default", []),
    ("pipelined -P 16 -c 50", ["-P", "16", "-c", "50"]),
    ("resp3", ["-3"]),
]


def benchmark(port, extra):
    p = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", "2000", "-q"]
                       + extra, capture_output=True, timeout=240)
    text = (p.stdout + p.stderr).decode("utf-8", "replace")
    lines = [l.strip() for l in re.split(r"[\r\n]", text) if l.strip()]
    results = {}
    for l in lines:
        m = re.match(r"^(.+?): ([\d.]+) requests per second", l)
        if m:
            results[m.group(1)] = float(m.group(2))
    return p.returncode, results, lines


def state(port):
    """What the benchmark leaves behind: key count and the sizes of its containers."""
    c = harness.RawClient(port)
    c.send(harness.resp_command("DBSIZE") + harness.resp_command("LLEN", "mylist") +
           harness.resp_command("SCARD", "myset") + harness.resp_command("ZCARD", "myzset") +
           harness.resp_command("HLEN", "myhash") + harness.resp_command("GET", "counter:__rand_int__"))
    out = c.read_frames(6)
    c.send(harness.resp_command("FLUSHALL"))
    c.read_frames(1)
    c.close()
    return out


class RedisBenchmark(unittest.TestCase):
    def test_default_tests_through_respscope(self):
        with harness.Redis() as direct, harness.Redis() as behind, \
                harness.Respscope(behind.url()) as rs:
            for name, extra in RUNS:
                rc_d, want, lines_d = benchmark(direct.port, extra)
                self.assertEqual(rc_d, 0, lines_d[-5:])
                self.assertGreaterEqual(len(want), 15, "default test set: %r" % list(want))
                rc, got, lines = benchmark(rs.port, extra)
                print("redis-benchmark %s through respscope: %d tests, rc %d" % (name, len(got), rc))
                for test, rps in got.items():
                    print("  %-40s %10.0f req/s (direct %10.0f)" % (test, rps, want.get(test, 0)))
                errors = [l for l in lines if re.search(r"\berror\b|\bERR\b", l, re.I)]
                self.assertEqual(rc, 0, lines[-5:])
                self.assertEqual(errors, [])
                self.assertEqual(sorted(got), sorted(want), "every default test completed")
                self.assertEqual(state(direct.port), state(behind.port),
                                 "the same data as the run straight against Redis")
            self.assertTrue(rs.alive())


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
