"""Insights on job queues with the real npm package bullmq, through respscope.

One scripted incident per queue kind, each on its own queue: the finding appears on
/api/v1/insights naming the queue, and clears when the cause stops.
- queue_backlog: 150 jobs added with no worker; a worker then drains them.
- job_failures: 60% of 20 jobs fail (critical); then 20 jobs succeed.
- slow_jobs: jobs take 1.5 s with slow_job 1s; then none run.
- stalled_jobs: a worker takes a job and is SIGKILLed; another worker recovers it.
- unbounded_job_history: 80 jobs added without removeOnComplete complete (the completed set
  grows past job_history_min_jobs); then jobs come with removeOnComplete and it clears.
Also a healthy BullMQ workload (removeOnComplete: {count: 100}, which keeps the completed set
growing up to 100 jobs, and fast successful jobs) next to a cache with TTLs raises nothing of
severity warning or above.
"""
import json
import os
import signal
import subprocess
import time
import unittest

import harness
import redis
from test_bullmq import ensure_node, E2E_DIR

CONFIG = """
bullmq: {enabled: true, prefixes: ["bull"], inspector_interval: 500ms}
insights:
  window: 3s
  warmup: 0s
  min_jobs: 5
  slow_job: 1s
  very_slow_job: 10s
  backlog_min_waiting: 50
  job_history_min_jobs: 50
"""


def wait_for(pred, timeout=30.0, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    return last


class QueueInsights(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_node(packages=("bullmq",))
        cls.redis = harness.Redis()
        cls.rs = harness.Respscope(cls.redis.url(), config_text=CONFIG)

    @classmethod
    def tearDownClass(cls):
        cls.rs.stop()
        cls.redis.stop()

    def step(self, **cfg):
        cfg.setdefault("port", self.rs.port)
        out = subprocess.run(["node", os.path.join(E2E_DIR, "insights_jobs.js"), json.dumps(cfg)],
                             capture_output=True, text=True, timeout=90)
        self.assertEqual(out.returncode, 0, out.stderr)

    def findings(self):
        return json.loads(self.rs.http("/api/v1/insights")[1])["findings"]

    def finding(self, kind, subject):
        return next((f for f in self.findings() if f["kind"] == kind and f["subject"] == subject), None)

    def wait_finding(self, kind, subject, timeout=30):
        f = wait_for(lambda: self.finding(kind, subject), timeout)
        self.assertIsNotNone(f, f"no {kind} on {subject}: {self.findings()}")
        self.assertTrue(f["recommendation"])
        return f

    def wait_cleared(self, kind, subject, timeout=30):
        self.assertTrue(wait_for(lambda: self.finding(kind, subject) is None, timeout),
                        f"{kind} on {subject} did not clear: {self.findings()}")

    def test_queue_backlog(self):
        self.step(queue="backlog", step="add", n=150)
        f = self.wait_finding("queue_backlog", "backlog")
        self.assertGreaterEqual(f["evidence"]["waiting"], 50)
        # The oldest waiting job: added by this test, so at most as old as the test.
        self.assertGreaterEqual(f["evidence"]["oldest_waiting_age_s"], 0)
        self.assertLess(f["evidence"]["oldest_waiting_age_s"], 120)
        self.assertIn("oldest waiting job has waited", f["recommendation"])
        self.step(queue="backlog", step="work", n=150, c=20, behaviour="ok")
        self.wait_cleared("queue_backlog", "backlog")

    def test_job_failures(self):
        self.step(queue="flaky", step="add", n=20)
        self.step(queue="flaky", step="work", n=20, c=5, behaviour="fail", failPer5=3)
        f = self.wait_finding("job_failures", "flaky")
        self.assertEqual(f["severity"], "critical")
        self.assertGreaterEqual(f["evidence"]["failure_rate"], 0.5)
        self.wait_cleared("job_failures", "flaky")
        # Successful jobs do not bring it back.
        self.step(queue="flaky", step="add", n=20)
        self.step(queue="flaky", step="work", n=20, c=5, behaviour="ok")
        self.assertIsNone(self.finding("job_failures", "flaky"))

    def test_slow_jobs(self):
        self.step(queue="slowq", step="add", n=3)
        self.step(queue="slowq", step="work", n=3, c=3, behaviour="sleep", sleepMs=1500)
        f = self.wait_finding("slow_jobs", "slowq")
        self.assertGreaterEqual(f["evidence"]["mean_process_s"], 1.0)
        self.assertEqual(f["severity"], "warning")
        self.wait_cleared("slow_jobs", "slowq")

    def test_stalled_jobs(self):
        self.step(queue="stally", step="add", n=1)
        p = subprocess.Popen(["node", os.path.join(E2E_DIR, "insights_jobs.js"),
                              json.dumps({"port": self.rs.port, "queue": "stally", "step": "take", "n": 1})],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             start_new_session=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), "TOOK")
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        self.step(queue="stally", step="recover", n=1)
        f = self.wait_finding("stalled_jobs", "stally")
        self.assertGreaterEqual(f["evidence"]["stalled"], 1)
        self.wait_cleared("stalled_jobs", "stally")

    def test_unbounded_job_history(self):
        self.step(queue="history", step="add", n=80)
        self.step(queue="history", step="work", n=80, c=20, behaviour="ok")
        f = self.wait_finding("unbounded_job_history", "history")
        self.assertEqual(f["severity"], "warning")
        self.assertGreaterEqual(f["evidence"]["completed_jobs"], 50)
        self.assertGreater(f["evidence"]["completed_growth"], 0)
        self.assertEqual(f["evidence"]["added_without_removeOnComplete_share"], 1)
        self.assertEqual(f["evidence"]["completed_kept_share"], 1)
        self.assertEqual(f["evidence"]["sets"], "completed")
        self.assertIn("removeOnComplete: {count: 1000}", f["recommendation"])
        # The producer now sets removeOnComplete: jobs keep flowing, the set stops growing.
        def with_option():
            self.step(queue="history", step="add", n=10, removeOnComplete=True)
            self.step(queue="history", step="work", n=10, c=10, behaviour="ok")
            return self.finding("unbounded_job_history", "history") is None
        self.assertTrue(wait_for(with_option, 60),
                        f"unbounded_job_history did not clear: {self.findings()}")

    def test_healthy_bullmq_and_cache(self):
        c = redis.Redis(port=self.rs.port)
        self.addCleanup(c.close)
        for i in range(100):
            c.set(f"cache:{i}", "v", ex=300)
        deadline = time.time() + 8
        while time.time() < deadline:
            self.step(queue="healthy", step="add", n=30, removeOnComplete={"count": 100},
                      removeOnFail={"age": 7 * 24 * 3600})
            self.step(queue="healthy", step="work", n=30, c=10, behaviour="ok")
            p = c.pipeline(transaction=False)
            for i in range(100):
                p.get(f"cache:{i}")
            p.execute()
            bad = [f for f in self.findings()
                   if f["severity"] != "info" and f["subject"] in ("healthy", "cache:{id}")]
            self.assertEqual(bad, [])
        hot = [f for f in self.findings() if f["kind"] == "hot_key" and f["subject"].startswith("bull:")]
        self.assertEqual(hot, [])


if __name__ == "__main__":
    unittest.main()
