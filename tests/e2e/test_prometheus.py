"""respscope's /metrics read by the real Prometheus tools.

- `promtool check metrics` on a real scrape (after traffic that creates every kind of series:
  commands with ok and error results, lookups, a blocking command, a pattern label that needs
  escaping `we"ird\\key:{id}`, a long key whose pattern is cut with a UTF-8 ellipsis, a key
  with bytes that are not printable): exit 0, no error (its output, warnings included, is
  printed).
- a real Prometheus server (/usr/bin/prometheus) on a free loopback port, a temporary TSDB,
  scrape_interval 1s, static target respscope's admin port: its HTTP API
  /api/v1/query?query=respscope_commands_total returns, within 30 s, exactly the number of
  commands sent, per command and result; the target is up.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import harness
import redis

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# The known workload: (command, result) -> count.
TRUTH = {("set", "ok"): 137, ("get", "ok"): 63, ("other", "error"): 5, ("blpop", "ok"): 1,
         ("incr", "error"): 2, ("rpush", "ok"): 1}


class Prometheus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = harness.Redis()
        cls.rs = harness.Respscope(cls.redis.url())
        c = redis.Redis(port=cls.rs.port, socket_timeout=10)
        try:
            p = c.pipeline(transaction=False)
            for n in range(137):
                key = 'we"ird\\key:%d' % n if n < 7 else "user:%d:profile" % n
                p.set(key, "v%d" % n)
            for n in range(63):
                p.get("user:%d:profile" % (n * 3))  # 0..186 step 3: 43 present (9..135), 20 absent
            p.execute()
            for _ in range(5):
                try:
                    c.execute_command("NOSUCHCOMMAND")
                except redis.ResponseError:
                    pass
            c.rpush("list:1", "a")
            for _ in range(2):
                try:
                    c.execute_command("INCR", "list:1")
                except redis.ResponseError:
                    pass
            c.blpop("q:empty", timeout=0.1)
        finally:
            c.close()
        # A long key (pattern cut with "…") and a key with bytes that are not printable.
        # Sent via a raw socket so that nothing but these two lands in the totals. They are
        # SETs: counted in TRUTH.
        raw = harness.RawClient(cls.rs.port)
        raw.send(harness.resp_command("SET", "long:" + "x" * 300, "v") +
                 harness.resp_command("SET", b"bin:\xff\x01\n:1", "v"))
        raw.read_frames(2)
        raw.close()
        TRUTH[("set", "ok")] += 2

    @classmethod
    def tearDownClass(cls):
        cls.rs.stop()
        cls.redis.stop()

    def scrape(self):
        status, body = self.rs.http("/metrics")
        self.assertEqual(status, 200)
        return body

    def test_promtool_check_metrics(self):
        deadline = time.monotonic() + 5
        while True:
            body = self.scrape()
            if 'respscope_commands_total{command="blpop",result="ok"} 1' in body:
                break
            self.assertLess(time.monotonic(), deadline, "traffic not on /metrics")
            time.sleep(0.05)
        self.assertIn('pattern="we\\"ird\\\\key:{id}"', body, "label value escaped")
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                           capture_output=True, timeout=60)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        print("promtool check metrics: exit %d, %d bytes checked, output: %r" % (
            r.returncode, len(body), out))
        self.assertEqual(r.returncode, 0, out)
        self.assertNotIn("error", out.lower())

    def test_prometheus_scrapes(self):
        port = harness.free_port()
        tmp = tempfile.mkdtemp(prefix="respscope-prometheus-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "scrape_configs:\n"
                    "  - job_name: respscope\n"
                    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n" % self.rs.admin_port)
        prom = harness.Process(
            [PROMETHEUS, "--config.file=" + cfg, "--web.listen-address=127.0.0.1:%d" % port,
             "--storage.tsdb.path=" + os.path.join(tmp, "data"), "--log.level=warn"],
            "prometheus")
        self.addCleanup(prom.stop)

        def query(q):
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode(
                {"query": q}))
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.loads(r.read())
            self.assertEqual(doc["status"], "success", doc)
            return doc["data"]["result"]

        want = {k: float(v) for k, v in TRUTH.items()}
        got, up = None, None
        t0 = time.monotonic()
        deadline = t0 + 30
        while time.monotonic() < deadline:
            self.assertTrue(prom.alive(), "prometheus exited:\n" + prom.log())
            try:
                res = query("respscope_commands_total")
                up = query('up{job="respscope"}')
            except OSError:
                time.sleep(0.25)  # not listening yet
                continue
            got = {(s["metric"]["command"], s["metric"]["result"]): float(s["value"][1])
                   for s in res if float(s["value"][1]) != 0}
            if got == want:
                break
            time.sleep(0.25)
        print("prometheus after %.1f s: respscope_commands_total %s; up %s" % (
            time.monotonic() - t0, sorted(got.items()) if got else got,
            [u["value"][1] for u in up] if up else up))
        self.assertEqual(got, want, "Prometheus sees exactly the commands sent\n" + prom.log())
        self.assertEqual([u["value"][1] for u in up], ["1"])
        total = query("sum(respscope_commands_total)")
        self.assertEqual(float(total[0]["value"][1]), sum(TRUTH.values()))
        for_pattern = query('respscope_cache_lookups_total{pattern="user:{id}:profile"}')
        lookups = {s["metric"]["result"]: float(s["value"][1]) for s in for_pattern}
        self.assertEqual(lookups, {"hit": 43.0, "miss": 20.0})
        weird = query('respscope_pattern_commands_total{kind="write",pattern="we\\"ird\\\\key:{id}"}')
        self.assertEqual([float(s["value"][1]) for s in weird], [7.0], "escaped label round trip")


if __name__ == "__main__":
    unittest.main(verbosity=2)
