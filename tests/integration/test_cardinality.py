"""Cardinality: millions of distinct keys keep respscope's series and memory bounded.

Workloads through respscope, with key_patterns.max_patterns: 200:
  A. redis-benchmark -r 1000000 -n 1000000 -t set,get -P 64 -d 8: 2,000,000 commands over
     `key:__rand_int__` (about 632,000 distinct keys), which all collapse to `key:{id}`;
  B. a raw pipelined socket writer: 1,000,000 GETs of 1,000,000 distinct keys (all absent)
     that do NOT collapse: letters and '.' only (an id-like segment needs a digit and no '.'),
     of varying lengths and five shapes (`k<l>`, `k<l>:<l>q`, `x.<l>`, `<l>-<l>`, `<L>`). Each is a new pattern until max_patterns is reached; the rest are "other".

Series bound. Each pattern has 26 series: respscope_cache_lookups_total 2 (hit, miss),
respscope_pattern_commands_total 3 (read, write, other), respscope_pattern_bytes_total 2 (in,
out) and respscope_pattern_duration_seconds 19 (16 finite buckets, +Inf, _sum, _count). Each
command has 21: respscope_commands_total 2 (ok, error) and respscope_command_duration_seconds
19. Fixed series: 13 (connections 2, bytes 2, protocol errors 2, upstream up and connect errors
2, Redis used memory, keyspace hits and misses 3, health score, build info); no alert rules are
configured. The commands sent are set, get and redis-benchmark's config|get (at most 5 are
allowed). So at most
    26 * (max_patterns + 1 for "other") + 21 * 5 + 13 = 26 * 201 + 118 = 5344 series.
Exactness under this load is checked too: the command totals, and every GET of B counted as
one miss (in its own pattern or in "other").

Memory: respscope's peak RSS (VmHWM) must stay under 200 MiB; per-key state is bounded (a
fixed number of hot-key slots per shard, bounded pattern and command tables), so it does not
grow with the number of distinct keys.
"""
import os
import re
import shutil
import subprocess
import time
import unittest

import harness
from prom import parse_metrics
from harness import resp_command

MAX_PATTERNS = 200
SERIES_PER_PATTERN = 26
SERIES_PER_COMMAND = 21
FIXED_SERIES = 13
MAX_COMMANDS = 5
SERIES_BOUND = SERIES_PER_PATTERN * (MAX_PATTERNS + 1) + SERIES_PER_COMMAND * MAX_COMMANDS + FIXED_SERIES
RSS_LIMIT_KIB = 200 * 1024
DISTINCT = 1_000_000





_LETTERS = bytes(range(ord("a"), ord("z") + 1))
_TO_LETTER = bytes(_LETTERS[i % 26] for i in range(256))


def letters_key(n, noise):
    """A distinct key for n: n spelled in base 26 with letters, '.', random letters, in one of
    five shapes. No segment is id-like (no digits; '.' is not an id character)."""
    digits = []
    x = n
    while True:
        digits.append(_LETTERS[x % 26])
        x //= 26
        if x == 0:
            break
    core = bytes(digits) + b"." + noise[: n % 15]
    shape = n % 5
    if shape == 0:
        return b"k" + core
    if shape == 1:
        half = len(core) // 2
        return b"k" + core[:half] + b":" + core[half:] + b"q"
    if shape == 2:
        return b"x." + core
    if shape == 3:
        return core + b"-" + core[::-1]
    return core.capitalize()


class Cardinality(unittest.TestCase):
    def test_series_and_memory_bounded(self):
        import json
        r = harness.Redis()
        self.addCleanup(r.stop)
        rs = harness.Respscope(r.url(), threads=2,
                               config_text="key_patterns: {max_patterns: %d}\n" % MAX_PATTERNS)
        self.addCleanup(rs.stop)
        rss_start = harness.rss_kib(rs.pid)

        # A. redis-benchmark: 1M SETs and 1M GETs over key:__rand_int__.
        bench = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
        t0 = time.monotonic()
        out = subprocess.run([bench, "-h", "127.0.0.1", "-p", str(rs.port), "-r", "1000000",
                              "-n", "1000000", "-t", "set,get", "-P", "64", "-d", "8", "-q"],
                             capture_output=True, timeout=150)
        self.assertEqual(out.returncode, 0, out.stderr)
        summary = [l.strip() for l in out.stdout.decode().replace("\r", "\n").splitlines()
                   if "requests per second" in l]
        print("redis-benchmark (%.1f s): %s" % (time.monotonic() - t0, summary))
        rss_a = harness.rss_kib(rs.pid)

        # B. 1M distinct letters-only keys, pipelined GETs in batches of 10,000.
        t0 = time.monotonic()
        noise = bytes(os.urandom(16)).translate(_TO_LETTER)
        c = harness.RawClient(rs.port, timeout=60)
        self.addCleanup(c.close)
        batch = 10_000
        miss = b"$-1\r\n"
        seen = set()
        for start in range(0, DISTINCT, batch):
            keys = [letters_key(n, noise) for n in range(start, start + batch)]
            if start < 50_000:
                seen.update(keys)  # spot check of distinctness on the first 50,000
            c.send(b"".join(resp_command("GET", k) for k in keys))
            want = miss * batch
            got = b""
            while len(got) < len(want):
                chunk = c.sock.recv(1 << 20)
                self.assertTrue(chunk, "connection closed")
                got += chunk
            self.assertEqual(got, want)
        self.assertEqual(len(seen), 50_000)
        print("1,000,000 distinct letters-only GETs in %.1f s" % (time.monotonic() - t0))

        # Bounded wait until everything is counted, then the checks.
        total = 2_000_000 + DISTINCT
        deadline = time.monotonic() + 10
        while True:
            body = rs.http("/metrics", timeout=30)[1]
            m = parse_metrics(body)
            counted = sum(v for (n, lab), v in m.items() if n == "respscope_commands_total"
                          and dict(lab)["command"] in ("get", "set"))
            if counted >= total or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        rss_end, hwm = harness.rss_kib(rs.pid), harness.hwm_kib(rs.pid)

        commands = {dict(lab)["command"] for (n, lab) in m if n == "respscope_commands_total"}
        patterns = {dict(lab)["pattern"] for (n, lab) in m
                    if n == "respscope_pattern_commands_total"}
        families = {}
        for (n, lab) in m:
            fam = re.sub(r"_(bucket|sum|count)$", "", n)
            families[fam] = families.get(fam, 0) + 1
        print("series on /metrics: %d (bound %d); %d patterns (max_patterns %d + other); "
              "commands %s; /metrics %d bytes" % (len(m), SERIES_BOUND, len(patterns),
                                                  MAX_PATTERNS, sorted(commands), len(body)))
        print("series per family:", sorted(families.items(), key=lambda kv: -kv[1])[:8])
        print("respscope RSS: start %.1f MiB, after A %.1f MiB, end %.1f MiB, peak (VmHWM) "
              "%.1f MiB (limit %d MiB)" % (rss_start / 1024, rss_a / 1024, rss_end / 1024,
                                           hwm / 1024, RSS_LIMIT_KIB // 1024))

        get = lambda lab: m.get(("respscope_commands_total", tuple(sorted(lab.items()))), 0)
        self.assertEqual(get({"command": "get", "result": "ok"}), 2_000_000)
        self.assertEqual(get({"command": "set", "result": "ok"}), 1_000_000)
        self.assertLessEqual(len(commands), MAX_COMMANDS, commands)
        self.assertLessEqual(len(patterns), MAX_PATTERNS + 1)
        self.assertIn("key:{id}", patterns)
        self.assertIn("other", patterns)
        look = lambda p, res: m.get(("respscope_cache_lookups_total",
                                     (("pattern", p), ("result", res))), 0)
        self.assertEqual(look("key:{id}", "hit") + look("key:{id}", "miss"), 1_000_000)
        self.assertEqual(sum(look(p, "miss") for p in patterns if p != "key:{id}"), DISTINCT)
        self.assertEqual(sum(look(p, "hit") for p in patterns if p != "key:{id}"), 0)
        self.assertGreaterEqual(look("other", "miss"), DISTINCT - MAX_PATTERNS)
        self.assertLess(len(m), SERIES_BOUND)
        self.assertLess(hwm, RSS_LIMIT_KIB)

        # The JSON API is bounded the same way.
        api_patterns = json.loads(rs.http("/api/v1/patterns", timeout=30)[1])["patterns"]
        self.assertLessEqual(len(api_patterns), MAX_PATTERNS + 1)
        hot = json.loads(rs.http("/api/v1/hotkeys", timeout=30)[1])["keys"]
        self.assertLessEqual(len(hot), 20, "analytics.top_keys default")
        self.assertEqual(rs.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
