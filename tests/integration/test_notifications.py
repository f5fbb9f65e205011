"""Alert notifications to a local HTTP sink (a webhook and a Slack-compatible channel).

A real redis-server (with a password), respscope with two alert rules on the hit rate of
item:* (one warning, one info) and two channels (min_severity warning), and a sink on a free
loopback port that fails the webhook's first two requests. The test checks:
- exactly the expected notifications: firing, resolved, and firing again once the cooldown has
  passed (the second cause comes inside the cooldown and must wait for it); the info alert
  reaches neither channel;
- the webhook's retries: the first notification arrives three times (500, 500, 200) with the
  same body; respscope counts 2 retries and the deliveries in /metrics;
- the webhook's X-Respscope-Signature is the HMAC-SHA256 of the body under the key from the
  environment; the Slack body is {"text": ...};
- no planted secret (a sensitive key, a key made of a secret, a value, the Redis password, the
  HMAC key itself) appears in any body or header.
"""
import hashlib
import hmac
import http.server
import json
import secrets
import threading
import time
import unittest

import harness
import redis


class Sink:
    def __init__(self, fail_first=None):
        self.requests = []  # (path, headers dict, body bytes, time)
        self.fail_first = dict(fail_first or {})
        self.lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with sink.lock:
                    sink.requests.append((self.path, dict(self.headers), body, time.time()))
                    left = sink.fail_first.get(self.path, 0)
                    if left:
                        sink.fail_first[self.path] = left - 1
                status = 500 if left else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.port = harness.free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def on(self, path):
        with self.lock:
            return [r for r in self.requests if r[0] == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(pred, timeout=30.0, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


class Notifications(unittest.TestCase):
    def test_webhook_and_slack(self):
        s = {name: secrets.token_hex(12) for name in ("key", "hexkey", "value", "password", "hmac")}
        sink = Sink(fail_first={"/hook": 2})
        self.addCleanup(sink.stop)
        r = harness.Redis(extra=["--requirepass", s["password"]])
        self.addCleanup(r.stop)
        config = f"""
alerts:
  - {{name: cache_misses, metric: hit_rate, pattern: "item:*", below: 0.5, cooldown: 6s, severity: warning}}
  - {{name: quiet, metric: hit_rate, pattern: "item:*", below: 0.5, severity: info}}
notifications:
  - {{name: hook, type: webhook, url: "http://127.0.0.1:{sink.port}/hook", min_severity: warning,
     hmac_secret_env: HOOK_KEY, backoff: 100ms, max_attempts: 4, timeout: 2s}}
  - {{name: chat, type: slack, url: "http://127.0.0.1:{sink.port}/slack", min_severity: warning}}
"""
        rs = harness.Respscope(f"redis://:{s['password']}@127.0.0.1:{r.port}", config_text=config,
                               env={"HOOK_KEY": s["hmac"]})
        self.addCleanup(rs.stop)
        c = redis.Redis(port=rs.port, password=s["password"])
        self.addCleanup(c.close)

        c.set("profile:1", s["value"])
        c.set(f"session:{s['key']}", s["value"])
        c.get(f"session:{s['key']}")

        def misses(n):
            p = c.pipeline(transaction=False)
            for i in range(n):
                p.get(f"item:{i}")
            p.get(f"item:{s['hexkey']}")
            p.execute()

        def hits(n):
            p = c.pipeline(transaction=False)
            for i in range(n):
                p.get("item:hit")
            p.execute()

        # 1. The cause: firing, delivered to the webhook on the third attempt.
        misses(50)
        self.assertTrue(wait_for(lambda: len(sink.on("/hook")) >= 3 and len(sink.on("/slack")) >= 1),
                        sink.requests)
        hook = sink.on("/hook")
        bodies = [b for _, _, b, _ in hook[:3]]
        self.assertEqual(bodies[0], bodies[1])
        self.assertEqual(bodies[1], bodies[2])
        first = json.loads(bodies[0])
        self.assertEqual(first["status"], "firing")
        self.assertEqual(first["alert"], "cache_misses")
        self.assertEqual(first["severity"], "warning")
        self.assertEqual(first["metric"], "hit_rate")
        self.assertEqual(first["selector"], "item:*")
        self.assertLess(first["value"], 0.5)
        for _, headers, body, _ in hook:
            self.assertEqual(headers["X-Respscope-Signature"],
                             "sha256=" + hmac.new(s["hmac"].encode(), body, hashlib.sha256).hexdigest())
            self.assertEqual(headers["X-Respscope-Event"], json.loads(body)["status"])
        slack = json.loads(sink.on("/slack")[0][2])
        self.assertEqual(list(slack), ["text"])
        self.assertIn("FIRING", slack["text"])
        self.assertIn("cache_misses", slack["text"])

        # 2. The cause stops (hits dominate the one-minute window): resolved.
        c.set("item:hit", "v")
        hits(600)
        self.assertTrue(wait_for(lambda: len(sink.on("/hook")) >= 4 and len(sink.on("/slack")) >= 2))
        resolved = json.loads(sink.on("/hook")[3][2])
        self.assertEqual(resolved["status"], "resolved")
        self.assertEqual(resolved["alert"], "cache_misses")
        self.assertIn("RESOLVED", json.loads(sink.on("/slack")[1][2])["text"])

        # 3. The cause again, inside the cooldown: nothing until the cooldown has passed, then
        #    one firing.
        misses(800)
        time.sleep(2)
        self.assertEqual(len(sink.on("/hook")), 4, [json.loads(b) for _, _, b, _ in sink.on("/hook")])
        self.assertTrue(wait_for(lambda: len(sink.on("/hook")) >= 5 and len(sink.on("/slack")) >= 3,
                                 timeout=30))
        again = json.loads(sink.on("/hook")[4][2])
        self.assertEqual(again["status"], "firing")
        self.assertGreaterEqual(again["time_ms"] - resolved["time_ms"], 6000)

        # Exactly these, on both channels; the info alert on neither.
        self.assertEqual([json.loads(b)["status"] for _, _, b, _ in sink.on("/hook")],
                         ["firing", "firing", "firing", "resolved", "firing"])
        self.assertEqual([("FIRING" in json.loads(b)["text"]) for _, _, b, _ in sink.on("/slack")],
                         [True, False, True])
        for _, _, b, _ in sink.requests:
            self.assertNotIn("quiet", b.decode())

        # Counted.
        metrics = rs.http("/metrics")[1]
        self.assertIn('respscope_notifications_total{channel="hook",result="sent"} 3', metrics)
        self.assertIn('respscope_notifications_total{channel="hook",result="failed"} 0', metrics)
        self.assertIn('respscope_notification_retries_total{channel="hook"} 2', metrics)
        self.assertIn('respscope_notifications_total{channel="chat",result="sent"} 3', metrics)

        # No secret in any body or header.
        for path, headers, body, _ in sink.requests:
            text = body.decode("utf-8", "replace") + json.dumps(headers)
            for name, value in s.items():
                for frag in (value, value[:12], value[12:]):
                    self.assertNotIn(frag, text, f"{name} leaked to {path}")
        self.assertNotIn(s["hmac"], rs.log())

    def test_insight_and_upstream_down_alerts(self):
        """An insight alert fires on a finding of its kind and resolves when the finding
        clears; upstream_down fires while Redis is gone and resolves when it is back."""
        sink = Sink()
        self.addCleanup(sink.stop)
        r = harness.Redis()
        port = r.port
        config = f"""
bullmq: {{inspector_interval: 500ms}}
insights: {{window: 2s}}
alerts:
  - {{name: scans, metric: insight, kind: keys_command, severity: warning, cooldown: 0s}}
  - {{name: down, metric: upstream_down, severity: critical}}
notifications:
  - {{name: hook, type: webhook, url: "http://127.0.0.1:{sink.port}/hook", backoff: 50ms}}
"""
        rs = harness.Respscope(r.url(), config_text=config)
        self.addCleanup(rs.stop)
        c = redis.Redis(port=rs.port)
        self.addCleanup(c.close)
        events = lambda: [(json.loads(b)["alert"], json.loads(b)["status"]) for _, _, b, _ in sink.on("/hook")]
        c.keys("*")
        self.assertTrue(wait_for(lambda: ("scans", "resolved") in events()), events())
        self.assertEqual(events(), [("scans", "firing"), ("scans", "resolved")])
        first = json.loads(sink.on("/hook")[0][2])
        self.assertEqual(first["metric"], "insight")
        self.assertEqual(first["selector"], "keys_command")
        self.assertEqual(first["value"], 1)
        r.stop()
        self.assertTrue(wait_for(lambda: ("down", "firing") in events()), events())
        r2 = harness.Redis(port=port)
        self.addCleanup(r2.stop)
        self.assertTrue(wait_for(lambda: ("down", "resolved") in events()), events())
        self.assertEqual(events()[2:], [("down", "firing"), ("down", "resolved")])


if __name__ == "__main__":
    unittest.main()
