"""Analytics ground truth: workloads whose outcome is known exactly, sent through respscope;
/metrics and the JSON API must equal the truth exactly (no tolerance).

- pipelined SETs then GETs over 300 present `user:<n>:profile` keys and 200 absent ones:
  respscope_cache_lookups_total{pattern="user:{id}:profile"} hit == 300, miss == 200; the SETs
  and DELs are writes, not lookups (respscope_pattern_commands_total kind="write");
- MGETs with a known nil per key (counted per key), over two patterns in one command (a command
  counts once per distinct pattern);
- HGETs inside MULTI/EXEC (hits and misses from the EXEC reply's elements, an error element
  counted as an error of its command);
- errors of known types: WRONGTYPE (INCR on a list), an unknown command (command="other",
  result="error"); respscope_commands_total exact for every command, and no other command;
- BLPOP with a 0.2 s timeout: in respscope_blocking_command_duration_seconds, not in
  respscope_command_duration_seconds;
- /api/v1/commands, /api/v1/patterns and /api/v1/overview agree with /metrics.

A reply reaches the client at about the moment respscope records it, so each check first waits
(bounded) until the total number of commands on /metrics reaches the number sent, then compares
everything exactly. The engine merges the shards on every scrape.
"""
import json
import random
import re
import time
import unittest

import harness
from prom import parse_metrics, value, series
import redis









def commands_by_label(metrics):
    """{(command, result): n} of respscope_commands_total, zeros dropped."""
    out = {}
    for lab, v in series(metrics, "respscope_commands_total").items():
        d = dict(lab)
        if v:
            out[(d["command"], d["result"])] = int(v)
    return out


class GroundTruth(unittest.TestCase):
    def setUp(self):
        self.redis = harness.Redis()
        self.rs = harness.Respscope(self.redis.url(), threads=2)
        self.addCleanup(self.redis.stop)
        self.addCleanup(self.rs.stop)
        self.c = redis.Redis(port=self.rs.port, socket_timeout=10)
        self.addCleanup(self.c.close)

    def scrape_when(self, total, timeout=5.0):
        """/metrics once the commands counted reach `total` (bounded wait), parsed."""
        deadline = time.monotonic() + timeout
        prev = None
        while True:
            status, body = self.rs.http("/metrics")
            self.assertEqual(status, 200)
            m = parse_metrics(body)
            seen = sum(v for v in series(m, "respscope_commands_total").values())
            # Byte counters are added when a write completes: wait until they settle too.
            moved = series(m, "respscope_bytes_total")
            if (seen >= total and moved == prev) or time.monotonic() > deadline:
                return m
            prev = moved
            time.sleep(0.02)

    def api(self, path):
        status, body = self.rs.http(path)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_lookups_writes_errors_blocking(self):
        rng = random.Random(7)
        present = ["user:%d:profile" % n for n in range(1, 301)]
        absent = ["user:%d:profile" % n for n in range(1001, 1201)]
        truth = {}  # (command, result) -> n

        def sent(cmd, n=1, result="ok"):
            truth[(cmd, result)] = truth.get((cmd, result), 0) + n

        # 300 SETs, pipelined: writes, no lookups.
        p = self.c.pipeline(transaction=False)
        for k in present:
            p.set(k, "v-" + k)
        self.assertTrue(all(p.execute()))
        sent("set", 300)
        m = self.scrape_when(300)
        self.assertEqual(value(m, "respscope_cache_lookups_total", pattern="user:{id}:profile",
                               result="hit"), 0)
        self.assertEqual(value(m, "respscope_cache_lookups_total", pattern="user:{id}:profile",
                               result="miss"), 0)
        self.assertEqual(value(m, "respscope_pattern_commands_total", pattern="user:{id}:profile",
                               kind="write"), 300)

        # 500 GETs, shuffled, pipelined: 300 hits, 200 misses.
        keys = present + absent
        rng.shuffle(keys)
        p = self.c.pipeline(transaction=False)
        for k in keys:
            p.get(k)
        replies = p.execute()
        self.assertEqual(sum(r is not None for r in replies), 300)
        sent("get", 500)

        # MGETs: 40 of 5 keys over item:<n> (ids 0..99 exist, 100.. do not), and 10 MGETs over
        # two patterns (one present user profile, one absent item).
        for n in range(100):
            self.c.set("item:%d" % n, n)
        sent("set", 100)
        item_hits = item_misses = 0
        p = self.c.pipeline(transaction=False)
        for i in range(40):
            ids = [rng.randrange(0, 200) for _ in range(5)]
            item_hits += sum(x < 100 for x in ids)
            item_misses += sum(x >= 100 for x in ids)
            p.mget(["item:%d" % x for x in ids])
        for i in range(10):
            p.mget(present[i], "item:%d" % (500 + i))
        item_misses += 10
        replies = p.execute()
        self.assertEqual(sum(v is not None for r in replies for v in r), item_hits + 10)
        sent("mget", 50)

        # HGET inside MULTI/EXEC: hits and misses come from the EXEC reply's elements.
        self.c.hset("cart:17", mapping={"qty": 3, "sku": "a"})
        sent("hset")
        p = self.c.pipeline(transaction=True)
        p.hget("cart:17", "qty")       # hit
        p.hget("cart:17", "sku")       # hit
        p.hget("cart:17", "nothing")   # miss (no field)
        p.hget("cart:18", "qty")       # miss (no key)
        self.assertEqual(p.execute(), [b"3", b"a", None, None])
        sent("multi")
        sent("hget", 4)
        sent("exec")

        # Writes that are no lookups: DEL of 10 present profiles.
        self.assertEqual(self.c.delete(*present[:10]), 10)
        sent("del")

        # Errors of known types.
        self.c.rpush("list:errs", "a")
        sent("rpush")
        for _ in range(3):
            with self.assertRaises(redis.ResponseError) as cm:
                self.c.execute_command("INCR", "list:errs")
            self.assertTrue(str(cm.exception).startswith("WRONGTYPE"), cm.exception)
        sent("incr", 3, "error")
        for _ in range(2):
            with self.assertRaises(redis.ResponseError):
                self.c.execute_command("NOSUCHCOMMAND", "x")
        sent("other", 2, "error")
        # An error element of an EXEC reply: INCR inside MULTI on a list.
        p = self.c.pipeline(transaction=True)
        p.execute_command("INCR", "list:errs")
        p.execute_command("INCR", "counter:1")
        res = p.execute(raise_on_error=False)
        self.assertIsInstance(res[0], redis.ResponseError)
        self.assertEqual(res[1], 1)
        sent("multi")
        sent("incr", 1, "error")
        sent("incr", 1, "ok")
        sent("exec")

        # A blocking command that times out after 0.2 s.
        t0 = time.monotonic()
        self.assertIsNone(self.c.blpop("queue:empty", timeout=0.2))
        took = time.monotonic() - t0
        sent("blpop")

        total = sum(truth.values())
        m = self.scrape_when(total)
        got = commands_by_label(m)
        print("respscope_commands_total:", sorted(got.items()))
        self.assertEqual(got, truth, "respscope_commands_total, command by command")

        def lookups(pattern):
            return (value(m, "respscope_cache_lookups_total", pattern=pattern, result="hit"),
                    value(m, "respscope_cache_lookups_total", pattern=pattern, result="miss"))

        def kinds(pattern):
            return tuple(value(m, "respscope_pattern_commands_total", pattern=pattern, kind=k)
                         for k in ("read", "write", "other"))

        # user:{id}:profile: 300 + 200 GETs (300 hits), 10 MGETs with one present profile each.
        self.assertEqual(lookups("user:{id}:profile"), (310, 200))
        self.assertEqual(kinds("user:{id}:profile"), (510, 301, 0))  # one DEL of 10 keys counts once
        # item:{id}: per key of the MGETs.
        self.assertEqual(lookups("item:{id}"), (item_hits, item_misses))
        self.assertEqual(kinds("item:{id}"), (50, 100, 0))
        # cart:{id}: from the EXEC elements; the HSET is a write.
        self.assertEqual(lookups("cart:{id}"), (2, 2))
        self.assertEqual(kinds("cart:{id}"), (4, 1, 0))
        # list:errs: RPUSH and INCR are writes (even when INCR fails), no lookups.
        self.assertEqual(lookups("list:errs"), (0, 0))
        self.assertEqual(kinds("list:errs")[1], 5)
        total_hits = sum(v for lab, v in series(m, "respscope_cache_lookups_total",
                                                 result="hit").items())
        total_misses = sum(v for lab, v in series(m, "respscope_cache_lookups_total",
                                                   result="miss").items())
        self.assertEqual((total_hits, total_misses),
                         (310 + item_hits + 2, 200 + item_misses + 2), "no other lookups")

        # Latency histograms: every timed non-blocking command once (commands queued in MULTI
        # are timed by their EXEC); BLPOP only in the blocking histogram.
        dur = {dict(lab)["command"]: v for lab, v in
               series(m, "respscope_command_duration_seconds_count").items()}
        print("respscope_command_duration_seconds_count:", sorted(dur.items()))
        self.assertNotIn("blpop", dur)
        self.assertFalse(series(m, "respscope_command_duration_seconds_bucket", command="blpop"))
        for cmd in ("set", "get", "mget", "del", "rpush", "hset", "multi", "exec"):
            self.assertEqual(dur.get(cmd), sum(v for (c, r), v in truth.items() if c == cmd), cmd)
        self.assertEqual(dur.get("other"), 2)
        self.assertEqual(dur.get("incr"), 3, "the 3 INCRs outside MULTI")
        blk = lambda le: value(m, "respscope_blocking_command_duration_seconds_bucket",
                               command="blpop", le=le)
        bsum = value(m, "respscope_blocking_command_duration_seconds_sum", command="blpop")
        print("blpop: client %.4f s, respscope sum %.4f s" % (took, bsum))
        self.assertEqual(value(m, "respscope_blocking_command_duration_seconds_count",
                               command="blpop"), 1)
        self.assertGreaterEqual(bsum, 0.195)
        self.assertLessEqual(bsum, took + 0.001)
        self.assertEqual((blk("0.1"), blk("0.5"), blk("+Inf")), (0, 1, 1))
        blocking_cmds = {dict(lab)["command"] for lab in
                         series(m, "respscope_blocking_command_duration_seconds_count")}
        self.assertEqual(blocking_cmds, {"blpop"})

        # The JSON API agrees with /metrics.
        cmds = {c["command"]: c for c in self.api("/api/v1/commands")["commands"]}
        for (cmd, result), n in truth.items():
            self.assertIn(cmd, cmds)
        for cmd, c in cmds.items():
            ok = value(m, "respscope_commands_total", command=cmd, result="ok")
            err = value(m, "respscope_commands_total", command=cmd, result="error")
            self.assertEqual((c["ok"], c["errors"], c["calls"]), (ok, err, ok + err), cmd)
            self.assertEqual(c["latency"]["count"], dur.get(cmd, 0), cmd)
        self.assertEqual(cmds["blpop"]["blocking_latency"]["count"], 1)
        self.assertEqual(cmds["blpop"]["latency"]["count"], 0)
        self.assertGreaterEqual(cmds["blpop"]["blocking_latency"]["max_ms"], 195)

        pats = {p["pattern"]: p for p in self.api("/api/v1/patterns")["patterns"]}
        metric_patterns = {dict(lab)["pattern"] for lab in
                           series(m, "respscope_pattern_commands_total")}
        self.assertEqual(set(pats), metric_patterns)
        for name, p in pats.items():
            self.assertEqual((p["hits"], p["misses"]), lookups(name), name)
            self.assertEqual((p["read"], p["write"], p["other"]), kinds(name), name)
            self.assertEqual(p["commands"], sum(kinds(name)), name)
            self.assertEqual(p["bytes_in"], value(m, "respscope_pattern_bytes_total",
                                                  pattern=name, direction="in"), name)
            self.assertEqual(p["bytes_out"], value(m, "respscope_pattern_bytes_total",
                                                   pattern=name, direction="out"), name)
        self.assertEqual(pats["user:{id}:profile"]["hit_rate"], 310 / 510)

        ov = self.api("/api/v1/overview")
        t = ov["totals"]
        print("overview totals:", t)
        self.assertEqual(t["commands"], total)
        self.assertEqual(t["errors"], 3 + 2 + 1)
        self.assertEqual((t["hits"], t["misses"]), (total_hits, total_misses))
        print("overview errors:", ov["errors"])
        self.assertEqual(sum(e["count"] for e in ov["errors"].values()), 6)
        self.assertEqual(ov["errors"]["ERR"]["count"], 2)
        # 3 outside MULTI; the EXEC element's prefix: see test_exec_error_element_prefix.
        self.assertGreaterEqual(ov["errors"]["WRONGTYPE"]["count"], 3)
        self.assertEqual(ov["latency"]["count"], sum(dur.values()))
        self.assertEqual(t["bytes_in"], value(m, "respscope_bytes_total", direction="client_in"))
        self.assertEqual(t["bytes_out"], value(m, "respscope_bytes_total",
                                               direction="client_out"))
        self.assertEqual(t["observation_lost"], 0)

    # An error element of an EXEC reply keeps its prefix (WRONGTYPE inside a transaction).
    def test_exec_error_element_prefix(self):
        self.c.rpush("list:x", "a")
        p = self.c.pipeline(transaction=True)
        p.execute_command("INCR", "list:x")
        res = p.execute(raise_on_error=False)
        self.assertIsInstance(res[0], redis.ResponseError)
        m = self.scrape_when(4)
        self.assertEqual(value(m, "respscope_commands_total", command="incr", result="error"), 1)
        errors = self.api("/api/v1/overview")["errors"]
        print("overview errors:", errors)
        self.assertEqual(set(errors), {"WRONGTYPE"})
        self.assertEqual(errors["WRONGTYPE"]["count"], 1)
        self.assertTrue(errors["WRONGTYPE"]["last_text"].startswith("WRONGTYPE Operation"))

    def test_exists_hmget_collections(self):
        """The README's lookup rules on known data: EXISTS counts its keys (first n are hits),
        HMGET is a hit when any field exists, an empty SMEMBERS/LRANGE is a miss, SISMEMBER 0
        is a miss."""
        c = self.c
        c.set("acct:1", "x")
        c.set("acct:2", "x")
        c.hset("h:1", "a", "1")
        c.sadd("s:1", "m")
        c.rpush("l:1", "e")
        self.assertEqual(c.exists("acct:1", "acct:2", "acct:3"), 2)     # 2 hits, 1 miss
        self.assertEqual(c.exists("acct:9"), 0)                          # 1 miss
        self.assertEqual(c.hmget("h:1", "a", "b"), [b"1", None])        # hit
        self.assertEqual(c.hmget("h:1", "b", "c"), [None, None])        # miss
        self.assertEqual(c.hmget("h:2", "a"), [None])                   # miss
        self.assertEqual(c.smembers("s:1"), {b"m"})                     # hit
        self.assertEqual(c.smembers("s:2"), set())                      # miss
        self.assertEqual(c.sismember("s:1", "m"), True)                 # hit
        self.assertEqual(c.sismember("s:1", "z"), False)                # miss
        self.assertEqual(c.lrange("l:1", 0, -1), [b"e"])                # hit
        self.assertEqual(c.lrange("l:2", 0, -1), [])                    # miss
        m = self.scrape_when(16)
        look = lambda p: (value(m, "respscope_cache_lookups_total", pattern=p, result="hit"),
                          value(m, "respscope_cache_lookups_total", pattern=p, result="miss"))
        got = {p: look(p) for p in ("acct:{id}", "h:{id}", "s:{id}", "l:{id}")}
        print("lookups:", got)
        self.assertEqual(got, {"acct:{id}": (2, 2), "h:{id}": (1, 2), "s:{id}": (2, 2),
                               "l:{id}": (1, 1)})


if __name__ == "__main__":
    unittest.main(verbosity=2)
