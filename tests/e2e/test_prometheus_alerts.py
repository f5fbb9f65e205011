"""deploy/prometheus/rules.yaml on live data: a real Prometheus (/usr/bin/prometheus) scrapes a
live respscope and evaluates the rule file; a workload breaks one rule and the alert is seen
going pending, then firing, through Prometheus's HTTP API (/api/v1/alerts).

- respscope runs as the Kubernetes examples configure it: an admin token, and
  admin.protect_metrics on, so Prometheus scrapes /metrics with the bearer token (as the
  PodMonitor does); /metrics without it answers 401.
- Prometheus listens on a free loopback port with a temporary TSDB; its config is generated
  here: scrape and evaluation every second, the target respscope's admin port.
- The rules are deploy/prometheus/rules.yaml with every expression, label and annotation as
  written; only each `for` is divided by 30 (10m -> 20s), so that the test lasts seconds.
- Workload: ~200 GETs a second through respscope, half on keys user:<n>:profile that do not
  exist (hit rate 0 for pattern user:{id}:profile) and half on cfg:<n> keys that do (hit rate 1
  for cfg:{id}). RespscopeLowCacheHitRate must go pending and then firing for
  user:{id}:profile, and never for cfg:{id}; no other alert may fire.
"""
import json
import os
import re
import shutil
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

import redis
import yaml

import harness

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
RULES = os.path.join(harness.SOURCE_DIR, "deploy", "prometheus", "rules.yaml")
TOKEN = "e2e-admin-token"
BAD, GOOD = "user:{id}:profile", "cfg:{id}"


def shorten(duration, factor=30):
    m = re.fullmatch(r"(\d+)([smh])", duration)
    assert m, duration
    secs = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    return "%ds" % max(1, secs // factor)


class Workload(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, socket_timeout=10)
        self.stop = threading.Event()
        self.sent = 0
        self.error = None

    def run(self):
        try:
            for n in range(20):
                self.client.set("cfg:%d" % n, "v")
            while not self.stop.is_set():
                p = self.client.pipeline(transaction=False)
                for n in range(10):
                    p.get("user:%d:profile" % (self.sent + n))   # never set: a miss
                    p.get("cfg:%d" % (n % 20))                   # set above: a hit
                p.execute()
                self.sent += 10
                time.sleep(0.1)
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.client.close()


class PrometheusAlerts(unittest.TestCase):
    def test_low_hit_rate_goes_pending_then_firing(self):
        self.assertTrue(os.access(PROMETHEUS, os.X_OK), "prometheus is not installed")
        red = harness.Redis()
        self.addCleanup(red.stop)
        rs = harness.Respscope(red.url(), env={"RESPSCOPE_ADMIN_TOKEN": TOKEN},
                               config_text="admin:\n  token: ${RESPSCOPE_ADMIN_TOKEN}\n"
                                           "  protect_metrics: true\n")
        self.addCleanup(rs.stop)
        self.assertEqual(rs.http("/metrics")[0], 401, "/metrics needs the token")
        self.assertEqual(rs.http("/metrics", token=TOKEN)[0], 200)

        tmp = tempfile.mkdtemp(prefix="respscope-alerts-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(RULES) as f:
            rules = yaml.safe_load(f)
        fors = {}
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = shorten(rule["for"])
                    fors[rule["alert"]] = rule["for"]
        rules_path = os.path.join(tmp, "rules.yaml")
        with open(rules_path, "w") as f:
            yaml.safe_dump(rules, f)
        port = harness.free_port()
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            yaml.safe_dump({
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [rules_path],
                "scrape_configs": [{
                    "job_name": "respscope",
                    "authorization": {"type": "Bearer", "credentials": TOKEN},
                    "static_configs": [{"targets": ["127.0.0.1:%d" % rs.admin_port]}],
                }],
            }, f)
        prom = harness.Process(
            [PROMETHEUS, "--config.file=" + cfg, "--web.listen-address=127.0.0.1:%d" % port,
             "--storage.tsdb.path=" + os.path.join(tmp, "data"), "--log.level=warn"],
            "prometheus")
        self.addCleanup(prom.stop)

        def api(path, **params):
            url = "http://127.0.0.1:%d/api/v1/%s?%s" % (port, path, urllib.parse.urlencode(params))
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.loads(r.read())
            self.assertEqual(doc["status"], "success", doc)
            return doc["data"]

        work = Workload(rs.port)
        work.start()
        self.addCleanup(work.join, 10)
        self.addCleanup(work.stop.set)

        states = []          # (seconds since start, state) of the alert on BAD, when it changes
        others = set()       # any other alert seen, pending or firing
        up = None
        t0 = time.monotonic()
        deadline = t0 + 120
        while time.monotonic() < deadline:
            self.assertTrue(prom.alive(), "prometheus exited:\n" + prom.log())
            self.assertIsNone(work.error)
            try:
                alerts = api("alerts")["alerts"]
                up = api("query", query='up{job="respscope"}')["result"]
            except OSError:
                time.sleep(0.25)  # not listening yet
                continue
            for a in alerts:
                key = (a["labels"]["alertname"], a["labels"].get("pattern"))
                if key == ("RespscopeLowCacheHitRate", BAD):
                    if not states or states[-1][1] != a["state"]:
                        states.append((round(time.monotonic() - t0, 1), a["state"]))
                else:
                    others.add((key, a["state"]))
            if states and states[-1][1] == "firing":
                break
            time.sleep(0.2)
        hit_rate = api("query", query="sum by (pattern) (rate(respscope_cache_lookups_total"
                                      "{result=\"hit\"}[5m])) / sum by (pattern) "
                                      "(rate(respscope_cache_lookups_total[5m]))")["result"]
        print("for-durations used: %s" % fors)
        print("RespscopeLowCacheHitRate{pattern=%r} states: %s" % (BAD, states))
        print("other alerts seen: %s; up: %s; %d GETs sent" % (
            sorted(others), [u["value"][1] for u in up] if up else up, work.sent * 2))
        print("hit rate per pattern: %s" % {r["metric"].get("pattern"): r["value"][1]
                                            for r in hit_rate})
        self.assertEqual([u["value"][1] for u in up], ["1"], "scraped with the bearer token")
        self.assertEqual([s for _, s in states], ["pending", "firing"], prom.log()[-2000:])
        self.assertEqual(others, set(), "only the broken rule fires")
        rates = {r["metric"].get("pattern"): float(r["value"][1]) for r in hit_rate}
        self.assertEqual(rates.get(GOOD), 1.0)
        self.assertEqual(rates.get(BAD), 0.0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
