"""Insights against a real redis-server: one scripted incident per kind.

For each kind the test drives the cause through respscope with redis-py, waits for the finding
on /api/v1/insights (right kind, right subject, evidence and recommendation present), stops
the cause and waits for the finding to clear. Windows are shortened through the `insights:`
configuration so that each incident takes seconds. Also: /api/v1/health says degraded while a
warning stands and healthy once it cleared; a healthy mixed workload (cache with TTLs,
pipelined reads, one long-lived client) raises nothing of severity warning or above; the
dashboard and the HTML report carry the Insights section; with insights.enabled false the same
incidents raise nothing while the other analytics go on.

The queue kinds (queue_backlog, stalled_jobs, slow_jobs, job_failures, unbounded_job_history)
run with real BullMQ in tests/e2e/test_insights_bullmq.py.
"""
import json
import time
import unittest

import harness
import redis

CONFIG = """
insights:
  window: 3s
  warmup: 0s
  min_lookups: 20
  hot_key_min_commands: 50
  big_value_bytes: 10KiB
  full_scan_bytes: 10KiB
  churn_min_connections: 10
  no_ttl_min_keys: 300
  n_plus_one_min_reads: 50
analytics:
  history: {fine: 1s for 10m, coarse: 10s for 1h}
"""


def wait_for(pred, timeout=20.0, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    return last


class InsightCase(unittest.TestCase):
    config = CONFIG

    @classmethod
    def setUpClass(cls):
        cls.redis = harness.Redis()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def setUp(self):
        redis.Redis(port=self.redis.port).flushall()
        self.rs = harness.Respscope(self.redis.url(), config_text=self.config)
        self.addCleanup(self.rs.stop)
        self.client = redis.Redis(port=self.rs.port)
        self.addCleanup(self.client.close)

    def insights(self):
        status, body = self.rs.http("/api/v1/insights")
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def findings(self, kind=None):
        return [f for f in self.insights()["findings"] if kind is None or f["kind"] == kind]

    def finding(self, kind, subject):
        for f in self.findings(kind):
            if f["subject"] == subject:
                return f
        return None

    def wait_finding(self, kind, subject, drive=None, timeout=20.0):
        def check():
            if drive:
                drive()
            return self.finding(kind, subject)
        f = wait_for(check, timeout)
        self.assertIsNotNone(f, f"no {kind} on {subject}: {self.findings()}")
        self.assertIn(f["severity"], ("info", "warning", "critical"))
        self.assertTrue(f["recommendation"])
        self.assertIn("window_s", f["evidence"])
        self.assertGreater(f["since_ms"], 0)
        return f

    def wait_cleared(self, kind, subject, drive=None, timeout=20.0):
        def check():
            if drive:
                drive()
            return self.finding(kind, subject) is None
        self.assertTrue(wait_for(check, timeout), f"{kind} on {subject} did not clear: {self.findings()}")


class Incidents(InsightCase):
    def test_keys_command(self):
        self.client.set("user:1", "a")
        f = self.wait_finding("keys_command", "keys", drive=lambda: self.client.keys("user:*"))
        self.assertGreaterEqual(f["evidence"]["calls"], 1)
        self.assertEqual(f["severity"], "warning")
        status, body = self.rs.http("/api/v1/health")
        health = json.loads(body)
        self.assertEqual(health["status"], "degraded", health)
        self.assertIn("warning: keys_command on keys", health["reasons"])
        self.wait_cleared("keys_command", "keys")
        self.assertTrue(wait_for(lambda: json.loads(self.rs.http("/api/v1/health")[1])["status"] == "healthy"))

    def test_full_collection_reads(self):
        self.client.sadd("tags:1", *[f"member-{i:016d}" for i in range(1000)])
        f = self.wait_finding("keys_command", "tags:{id}",
                              drive=lambda: [self.client.smembers("tags:1") for _ in range(5)])
        self.assertEqual(f["evidence"]["command"], "smembers")
        self.assertGreater(f["evidence"]["reply_bytes_per_read"], 10 * 1024)
        self.assertIsNone(self.finding("big_value", "tags:{id}"))
        self.wait_cleared("keys_command", "tags:{id}")

    def test_big_value(self):
        self.client.set("blob:1", b"x" * 200_000)
        f = self.wait_finding("big_value", "blob:{id}",
                              drive=lambda: [self.client.get("blob:1") for _ in range(5)])
        self.assertGreater(f["evidence"]["bytes_per_call"], 100_000)
        self.wait_cleared("big_value", "blob:{id}")

    def test_hot_key(self):
        self.client.set("config:main", "1")
        def drive():
            p = self.client.pipeline(transaction=False)
            for i in range(60):
                p.get("config:main")
            for i in range(20):
                p.get(f"user:{i}")
            p.execute()
        f = self.wait_finding("hot_key", "config:main", drive=drive)
        self.assertGreaterEqual(f["evidence"]["share"], 0.6)
        self.assertEqual(f["severity"], "warning")
        self.wait_cleared("hot_key", "config:main")

    def test_low_hit_rate(self):
        def misses():
            p = self.client.pipeline(transaction=False)
            for i in range(30):
                p.get(f"product:{i}")
            p.execute()
        f = self.wait_finding("low_hit_rate", "product:{id}", drive=misses)
        self.assertLess(f["evidence"]["hit_rate"], 0.5)
        # The application starts caching what it reads: hits, and the finding clears.
        for i in range(30):
            self.client.set(f"product:{i}", "v", ex=60)
        def hits():
            p = self.client.pipeline(transaction=False)
            for i in range(30):
                p.get(f"product:{i}")
            p.execute()
        self.wait_cleared("low_hit_rate", "product:{id}", drive=hits)

    def test_connection_churn(self):
        self.client.set("user:1", "a")
        def churn():
            for _ in range(15):
                c = redis.Redis(port=self.rs.port)
                c.get("user:1")
                c.close()
        f = self.wait_finding("connection_churn", "127.0.0.1", drive=churn)
        self.assertGreaterEqual(f["evidence"]["connections_per_command"], 0.5)
        # One long-lived connection doing the work: clears.
        self.wait_cleared("connection_churn", "127.0.0.1",
                          drive=lambda: [self.client.get("user:1") for _ in range(50)])


    def test_no_ttl_pattern(self):
        c = self.client
        n = [0]
        secret = "tok7Q3ZpX9vLmW2c"  # a sensitive key's id: must never appear

        def grow():  # new keys, no expiry: carts and (sensitive) sessions
            p = c.pipeline(transaction=False)
            for _ in range(150):
                n[0] += 1
                p.set(f"cart:{n[0]}", "items")
                p.hset(f"session:{secret}{n[0]}", "user", "1")
                # Beside them, keys that are expired right after they are written, and lock
                # keys that are deleted: not findings.
                p.set(f"report:{n[0]}", "x")
                p.expire(f"report:{n[0]}", 60)
                p.set(f"lock:{n[0]}", "1", nx=True)
                p.delete(f"lock:{n[0]}")
            p.execute()
        f = self.wait_finding("no_ttl_pattern", "cart:{id}", drive=grow)
        self.assertEqual(f["severity"], "warning")
        self.assertGreaterEqual(f["evidence"]["new_keys_without_ttl"], 300)
        self.assertGreater(f["evidence"]["writes_without_ttl"], 0)
        self.assertIn("EX", f["recommendation"])
        s = self.wait_finding("no_ttl_pattern", "session:*", drive=grow)  # the glob, not the key
        body = self.rs.http("/api/v1/insights")[1]
        self.assertNotIn(secret, body)
        self.assertIsNone(self.finding("no_ttl_pattern", "report:{id}"))
        self.assertIsNone(self.finding("no_ttl_pattern", "lock:{id}"))

        def with_ttl():  # the application now gives every new cart an expiry
            p = c.pipeline(transaction=False)
            for _ in range(150):
                n[0] += 1
                p.set(f"cart:{n[0]}", "items", ex=600)
            p.execute()
        self.wait_cleared("no_ttl_pattern", "cart:{id}", drive=with_ttl)
        status, report = self.rs.http("/api/v1/report?format=html")
        self.assertEqual(status, 200)

    def test_n_plus_one(self):
        c = self.client
        c.mset({f"item:{i}": "v" for i in range(40)})

        def loop():  # one GET per item, each after the previous reply
            for i in range(40):
                c.get(f"item:{i}")
        f = self.wait_finding("n_plus_one", "item:{id}", drive=loop)
        self.assertEqual(f["severity"], "warning")
        self.assertGreaterEqual(f["evidence"]["sequential_reads"], 50)
        self.assertGreaterEqual(f["evidence"]["reads_per_sequence"], 10)
        self.assertGreater(f["evidence"]["round_trips_saved"], 0)
        self.assertGreaterEqual(f["evidence"]["avg_gap_ms"], 0)
        self.assertEqual(f["evidence"]["client"], "127.0.0.1")
        self.assertEqual(f["evidence"]["command"], "get")
        self.assertIn("MGET", f["recommendation"])
        # The same reads in one MGET: clears.
        self.wait_cleared("n_plus_one", "item:{id}",
                          drive=lambda: c.mget([f"item:{i}" for i in range(40)]))


class ColdCache(InsightCase):
    config = CONFIG.replace("warmup: 0s", "warmup: 1h")

    def test_cold_cache_after_start_and_flush(self):
        def misses():
            p = self.client.pipeline(transaction=False)
            for i in range(30):
                p.get(f"page:{i}")
            p.execute()
        f = self.wait_finding("cold_cache", "page:{id}", drive=misses)
        self.assertEqual(f["severity"], "info")
        self.assertEqual(f["evidence"]["cause"], "start")
        self.assertIsNone(self.finding("low_hit_rate", "page:{id}"))
        # Warmed: clears.
        for i in range(30):
            self.client.set(f"page:{i}", "v", ex=60)
        hits = lambda: [self.client.get(f"page:{i}") for i in range(30)]
        self.wait_cleared("cold_cache", "page:{id}", drive=hits)
        # A FLUSHALL through the proxy: cold again, this time because of the flush.
        self.client.flushall()
        f = self.wait_finding("cold_cache", "page:{id}", drive=misses)
        self.assertEqual(f["evidence"]["cause"], "flush")


class LatencyRegression(InsightCase):
    config = """
insights:
  window: 1s
  baseline_windows: 10
  regression_min: 1ms
  regression_min_calls: 5
"""
    SCRIPT = "local x = 0 for i = 1, tonumber(ARGV[1]) do x = x + i end return x"

    def run_script(self, n, loops):
        for _ in range(n):
            self.client.eval(self.SCRIPT, 0, loops)

    def test_regression_against_baseline_then_clears(self):
        # Calibrate a loop that takes a few milliseconds on this machine.
        loops = 200_000
        while True:
            t = time.perf_counter()
            self.run_script(3, loops)
            if (time.perf_counter() - t) / 3 > 0.004 or loops > 50_000_000:
                break
            loops *= 2
        # Twelve windows of fast calls: the baseline (first window of a command has no start).
        def baseline_ready():
            self.run_script(20, 10)
            for b in self.insights()["baselines"]:
                if b["scope"] == "command" and b["subject"] == "eval" and b["established"]:
                    return b
            return None
        b = wait_for(baseline_ready, timeout=40)
        self.assertIsNotNone(b, self.insights())
        self.assertIsNone(self.finding("latency_regression", "eval"))
        f = self.wait_finding("latency_regression", "eval",
                              drive=lambda: self.run_script(8, loops))
        self.assertEqual(f["evidence"]["scope"], "command")
        self.assertGreater(f["evidence"]["p95_ms"], f["evidence"]["baseline_p95_ms"] * 1.1)
        self.assertIn(f["evidence"]["trend"], ("degrading", "stable", "improving"))
        self.wait_cleared("latency_regression", "eval", drive=lambda: self.run_script(20, 10))


    def test_correlations_name_the_command_of_the_spike(self):
        status, body = self.rs.http("/api/v1/correlations")
        self.assertEqual(status, 200)
        self.assertIsNone(json.loads(body)["spike"])
        self.client.set("user:1", "a")
        end = time.time() + 5  # steady windows of fast GETs
        while time.time() < end:
            [self.client.get("user:1") for _ in range(20)]
            time.sleep(0.05)
        t = time.time()
        while time.time() - t < 1.5:  # a burst of slow scripts, GETs going on
            self.run_script(1, 3_000_000)
            self.client.get("user:1")
        end = time.time() + 2.5
        while time.time() < end:
            [self.client.get("user:1") for _ in range(20)]
            time.sleep(0.05)
        c = json.loads(self.rs.http("/api/v1/correlations")[1])
        self.assertIsNotNone(c["spike"], c)
        self.assertGreater(c["spike"]["p99_ms"], 2 * c["spike"]["baseline_p99_ms"])
        self.assertEqual(c["commands"][0]["name"], "eval", c)
        self.assertGreater(c["commands"][0]["extra_time_ms_per_s"], 0)
        status, _ = self.rs.http("/api/v1/correlations?at=-1")
        self.assertEqual(status, 400)


class Disabled(InsightCase):
    config = CONFIG.replace("insights:\n", "insights:\n  enabled: false\n", 1)

    def test_no_finding_while_the_incidents_happen(self):
        c = self.client
        c.mset({f"item:{i}": "v" for i in range(40)})
        n = 0
        deadline = time.time() + 8  # more than two windows
        while time.time() < deadline:
            c.keys("item:*")  # keys_command
            p = c.pipeline(transaction=False)
            for _ in range(400):  # no_ttl_pattern
                n += 1
                p.set(f"cart:{n}", "items")
            p.execute()
            for i in range(40):  # n_plus_one
                self.assertEqual(c.get(f"item:{i}"), b"v")
            self.assertEqual(self.findings(), [])
            time.sleep(0.1)
        self.assertEqual(json.loads(self.rs.http("/api/v1/health")[1])["status"], "healthy")
        # The rest of analytics still runs.
        metrics = self.rs.http("/metrics")[1]
        self.assertIn('respscope_commands_total{command="keys",result="ok"}', metrics)


class Healthy(InsightCase):
    def test_healthy_mixed_workload_raises_nothing_of_warning_or_above(self):
        c = self.client
        for i in range(200):
            c.set(f"user:{i}:profile", "x" * 200, ex=300)
        deadline = time.time() + 8  # more than two windows
        i = 0
        while time.time() < deadline:
            p = c.pipeline(transaction=False)
            for j in range(50):
                k = (i * 50 + j) % 200
                p.get(f"user:{k}:profile")
            p.mget([f"user:{(i + j) % 200}:profile" for j in range(10)])
            p.setex(f"user:{i % 200}:profile", 300, "y" * 200)
            # Keys written without an expiry that do not grow in number (a fixed set of
            # settings and counters), new keys that all get one (SET EX, SET then EXPIRE),
            # and locks that are deleted: no no_ttl_pattern (over no_ttl_min_keys new keys
            # a window).
            p.set(f"setting:{i % 20}", "on")
            p.incr(f"counter:{i % 20}")
            for j in range(60):
                n = i * 60 + j
                p.set(f"page:{n}", "html", ex=120)
                p.hset(f"report:{n}", "v", "1")
                p.expire(f"report:{n}", 120)
                p.set(f"lock:{n}", "1", nx=True)
                p.delete(f"lock:{n}")
            p.execute()
            # Sequential reads that are no N+1: one key polled, and short lookups of a few
            # distinct keys (below the 10 in a row a sequence needs).
            for _ in range(20):
                c.get("setting:1")
            for j in range(5):
                c.get(f"user:{j}:profile")
            i += 1
            bad = [f for f in self.findings() if f["severity"] in ("warning", "critical")]
            self.assertEqual(bad, [])
            time.sleep(0.05)
        health = json.loads(self.rs.http("/api/v1/health")[1])
        self.assertEqual(health["status"], "healthy", health)
        self.assertEqual(health["findings"]["warning"] + health["findings"]["critical"], 0)

    def test_dashboard_and_report_carry_insights(self):
        status, page = self.rs.http("/")
        self.assertEqual(status, 200)
        self.assertIn("/api/v1/insights", page)
        self.assertIn("/api/v1/health", page)
        self.client.keys("*")
        self.wait_finding("keys_command", "keys")
        status, report = self.rs.http("/api/v1/report?format=html")
        self.assertEqual(status, 200)
        self.assertIn("Insights", report)
        self.assertIn("keys_command", report)
        self.assertIn("SCAN", report)  # the recommendation
        status, metrics = self.rs.http("/metrics")
        self.assertIn('respscope_insights{kind="keys_command",severity="warning"} 1', metrics)
        self.assertIn('respscope_health_status{status="degraded"} 1', metrics)


if __name__ == "__main__":
    unittest.main()
