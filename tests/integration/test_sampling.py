"""sanitization.sample_rate: the per-key analytics (hot keys, big values, the slow log's key)
see a random fraction of the commands; every total stays exact.

One known workload, run with sample_rate 1.0, 0.1 and 0:
  SET hot:key, 5000 GETs of hot:key (hits), 300 GETs of distinct absent miss:<n> keys, 200
  MGETs of (hot:key, cold:<n>) with cold:<n> absent, 100 SETs of cold:<n>.
Exact with every rate: respscope_commands_total per command, respscope_cache_lookups_total
and respscope_pattern_commands_total per pattern, the latency histogram counts, the overview
totals. Sampled:
  - hot keys: hot:key appears in 5001 + 200 = 5201 commands. Each command is sampled
    independently with probability p (one draw per command), and the hot-key count is the
    number of sampled commands, NOT scaled up by 1/p: with p = 1 it is exactly 5201; with
    p = 0.1 it is Binomial(5201, 0.1): mean 520.1, sd 21.6, asserted within 6 sd; with p = 0
    there are no hot keys at all. (The distinct keys sampled stay far below the 512
    Space-Saving slots, so the counts are exact counts of sampled commands.)
  - the slow log (threshold 0, so every command is an entry) keeps every entry but shows the
    key only for sampled commands: with p = 0.1 about 10% of its entries have a key.
"""
import json
import math
import re
import time
import unittest

import harness
from prom import parse_metrics, value
import redis







CONFIG = """
analytics: {slow_command_threshold: 0ms, slowlog_size: 2000, top_keys: 100}
sanitization: {sample_rate: %s}
"""

HOT_TOUCHES = 5001 + 200
TOTAL = 1 + 5000 + 300 + 200 + 100


class Sampling(unittest.TestCase):
    def run_workload(self, rate):
        r = harness.Redis()
        self.addCleanup(r.stop)
        rs = harness.Respscope(r.url(), config_text=CONFIG % rate, threads=2)
        self.addCleanup(rs.stop)
        c = redis.Redis(port=rs.port, socket_timeout=20)
        self.addCleanup(c.close)
        c.set("hot:key", "v")
        p = c.pipeline(transaction=False)
        for _ in range(5000):
            p.get("hot:key")
        for n in range(300):
            p.get("miss:%d" % n)
        for n in range(200):
            p.mget("hot:key", "cold:%d" % n)
        for n in range(100):
            p.set("cold:%d" % (1000 + n), "x")
        replies = p.execute()
        self.assertEqual(replies[:5000], [b"v"] * 5000)
        deadline = time.monotonic() + 5
        while True:
            m = parse_metrics(rs.http("/metrics")[1])
            seen = sum(v for (n, _), v in m.items() if n == "respscope_commands_total")
            if seen >= TOTAL or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        time.sleep(0.25)  # the API re-merges snapshots older than 200 ms
        api = {p: json.loads(rs.http("/api/v1/" + p)[1])
               for p in ("overview", "hotkeys", "slowlog", "commands")}
        return m, api

    def check_exact_totals(self, m, api):
        cmd = lambda c: (value(m, "respscope_commands_total", command=c, result="ok"),
                         value(m, "respscope_commands_total", command=c, result="error"))
        self.assertEqual({c: cmd(c) for c in ("get", "set", "mget")},
                         {"get": (5300, 0), "set": (101, 0), "mget": (200, 0)})
        look = lambda p: (value(m, "respscope_cache_lookups_total", pattern=p, result="hit"),
                          value(m, "respscope_cache_lookups_total", pattern=p, result="miss"))
        self.assertEqual(look("hot:key"), (5200, 0))
        self.assertEqual(look("miss:{id}"), (0, 300))
        self.assertEqual(look("cold:{id}"), (0, 200))
        kinds = lambda p: tuple(value(m, "respscope_pattern_commands_total", pattern=p, kind=k)
                                for k in ("read", "write"))
        self.assertEqual(kinds("hot:key"), (5200, 1))
        self.assertEqual(kinds("cold:{id}"), (200, 100))
        for c, n in (("get", 5300), ("set", 101), ("mget", 200)):
            self.assertEqual(value(m, "respscope_command_duration_seconds_count", command=c), n)
        self.assertEqual(value(m, "respscope_pattern_duration_seconds_count", pattern="hot:key"),
                         5201)
        t = api["overview"]["totals"]
        self.assertEqual((t["commands"], t["errors"], t["hits"], t["misses"]),
                         (TOTAL, 0, 5200, 500))
        calls = {c["command"]: c["calls"] for c in api["commands"]["commands"]}
        self.assertEqual(calls, {"get": 5300, "set": 101, "mget": 200})

    def hot_count(self, api):
        counts = {k["key"]: k["count"] for k in api["hotkeys"]["keys"]}
        return counts.get("hot:key", 0), counts

    def test_rate_1(self):
        m, api = self.run_workload("1.0")
        self.check_exact_totals(m, api)
        hot, counts = self.hot_count(api)
        print("sample_rate 1.0: hot:key count %d (truth %d), %d hot keys" % (
            hot, HOT_TOUCHES, len(counts)))
        self.assertEqual(hot, HOT_TOUCHES)
        slow = api["slowlog"]["entries"]
        self.assertEqual(len(slow), 2000)
        self.assertTrue(all(e["key"] for e in slow), "every entry has its key at rate 1")

    def test_rate_0_1(self):
        m, api = self.run_workload("0.1")
        self.check_exact_totals(m, api)
        self.assertEqual(api["hotkeys"]["sample_rate"], 0.1)
        self.assertEqual(api["overview"]["sample_rate"], 0.1)
        hot, counts = self.hot_count(api)
        mean = HOT_TOUCHES * 0.1
        sd = math.sqrt(HOT_TOUCHES * 0.1 * 0.9)
        print("sample_rate 0.1: hot:key count %d (expected %.1f +- %.1f sd; truth %d), "
              "%d hot keys" % (hot, mean, sd, HOT_TOUCHES, len(counts)))
        self.assertLess(abs(hot - mean), 6 * sd)
        slow = api["slowlog"]["entries"]
        with_key = sum(1 for e in slow if e["key"])
        print("sample_rate 0.1: %d of %d slow log entries show a key" % (with_key, len(slow)))
        self.assertEqual(len(slow), 2000, "the slow log itself is not sampled")
        self.assertLess(abs(with_key - 200), 6 * math.sqrt(2000 * 0.1 * 0.9))

    def test_rate_0(self):
        m, api = self.run_workload("0")
        self.check_exact_totals(m, api)
        hot, counts = self.hot_count(api)
        print("sample_rate 0: hot keys %r" % counts)
        self.assertEqual(counts, {})
        self.assertFalse(any(e["key"] for e in api["slowlog"]["entries"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
