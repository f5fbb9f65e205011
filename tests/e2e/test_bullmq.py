"""End to end with the real npm package bullmq (6.7.0, and 5.81.5 as `bullmq5`): a producer, a
FlowProducer and workers connected through respscope run a mix of plain, delayed and
prioritised jobs, jobs that fail and then succeed on retry (with and without backoff), jobs that
fail for good (retries exhausted, UnrecoverableError, single attempt), progress updates, a
removed job, a parent with three children, queue pause/resume, and a stalled job (its worker, a
child node process, is SIGKILLed mid-job; lockDuration 2 s / stalledInterval 1 s). A second
queue holds the stalled job and is cleaned at the end.

respscope's `respscope_bullmq_jobs_total{queue,transition}` (and /api/v1/queues) must equal,
exactly, the counts derived from the scenario's bookkeeping and the workers' events
(tests/e2e/bullmq_scenario.js computes them with the definitions documented in
analytics/jobs/job_types.h), which in turn are cross-checked against BullMQ's own getJobCounts() and its events stream. Queue depth gauges must
equal getJobCounts() once the queues are quiet, and at a checkpoint before any worker starts
(jobs waiting, delayed, prioritized, waiting for children). Histogram sample counts and the
recent-jobs API (final state, attempts per job) are checked too.

Two ways scripts reach respscope:
- *Bodies: ioredis 5/6 send EVAL with the full body on the first call of a script on every
  socket, so respscope learns each script from its body.
- BullMQ6ScriptsLoadedBeforeRespscope: the scripts are SCRIPT LOADed into Redis over a
  direct connection first and the application's ioredis is patched to send EVALSHA first (as
  ioredis 4 and the node-redis / glide adapters do). Redis's own commandstats then prove that no
  EVAL and no SCRIPT LOAD ever went through respscope: every call was identified by the shape
  of its KEYS alone. (Restarting respscope under a running application would not do: the
  application's sockets break, ioredis reconnects and sends EVAL again on the new sockets.)

Shared helpers live here; tests/e2e/test_bull.py imports them.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness

E2E_DIR = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(E2E_DIR, "node")
TRANSITIONS = ["added", "waiting", "delayed", "prioritized", "waiting_children", "active",
               "progress", "completed", "failed", "retried", "stalled", "removed", "paused",
               "resumed", "drained", "cleaned", "obliterated"]
DEPTH_STATES = ["waiting", "active", "paused", "delayed", "prioritized", "completed", "failed",
                "waiting_children"]


def ensure_node(packages=("bullmq", "bullmq5", "bull", "ioredis")):
    """Raises SkipTest without node; runs `npm ci` when node_modules lacks a package."""
    if not shutil.which("node"):
        raise unittest.SkipTest("node not installed")
    modules = os.path.join(NODE_DIR, "node_modules")
    if all(os.path.isfile(os.path.join(modules, p, "package.json")) for p in packages):
        return
    npm = shutil.which("npm")
    if not npm:
        raise unittest.SkipTest("npm not installed and tests/e2e/node/node_modules missing")
    out = subprocess.run([npm, "ci", "--prefix", NODE_DIR, "--no-audit", "--no-fund"],
                         capture_output=True, text=True, timeout=240)
    if out.returncode != 0:
        raise RuntimeError("npm ci failed:\n" + out.stdout + out.stderr)


def respscope_config(prefixes):
    return ("bullmq:\n  enabled: true\n  prefixes: [%s]\n  inspector_interval: 1s\n"
            % ", ".join('"%s"' % p for p in prefixes))


def run_scenario(script, cfg, on_checkpoint=None, timeout=120):
    """Runs `node script run cfg`; returns the parsed RESULT line. On each "CHECKPOINT {json}"
    line the workload waits: on_checkpoint(data) runs, then the workload continues."""
    argv = ["node", os.path.join(E2E_DIR, script), "run", json.dumps(cfg)]
    err = tempfile.TemporaryFile(mode="w+")
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                         text=True, start_new_session=True)
    watchdog = threading.Timer(timeout, p.kill)
    watchdog.start()
    result, failure = None, None
    try:
        for line in p.stdout:
            if line.startswith("CHECKPOINT "):
                try:
                    if on_checkpoint:
                        on_checkpoint(json.loads(line[len("CHECKPOINT "):]))
                except BaseException as e:  # let the workload finish; report afterwards
                    failure = e
                p.stdin.write("go\n")
                p.stdin.flush()
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
        rc = p.wait(timeout=10)
    finally:
        p.stdin.close()
        p.stdout.close()
        watchdog.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    err.seek(0)
    log = err.read()
    err.close()
    if failure:
        raise failure
    if rc != 0 or result is None:
        raise AssertionError(f"{script} failed (rc {rc}):\n{log}")
    return result


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} from Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(rs):
    status, body = rs.http("/metrics")
    assert status == 200, body
    return parse_metrics(body)


def transitions_from_metrics(samples, label):
    return {t: int(metric(samples, "respscope_bullmq_jobs_total", queue=label, transition=t))
            for t in TRANSITIONS}


def depths_from_metrics(samples, label):
    return {s: int(metric(samples, "respscope_bullmq_queue_jobs", queue=label, state=s))
            for s in DEPTH_STATES}


def expected_depths(counts):
    """getJobCounts() -> respscope state names; states the library does not report are 0."""
    d = {s: 0 for s in DEPTH_STATES}
    for k, v in counts.items():
        d[k.replace("-", "_")] = int(v)
    return d


def redis_commandstats(port):
    c = harness.RawClient(port)
    try:
        c.send(harness.resp_command("INFO", "commandstats"))
        frame = c.read_frames(1)[0].decode()
    finally:
        c.close()
    stats = {}
    for m in re.finditer(r"cmdstat_([^:]+):calls=(\d+)", frame):
        stats[m.group(1)] = int(m.group(2))
    return stats


def print_table(title, expected, got_metrics, got_api, extra=None):
    extra = extra or {}
    lines = [f"\n== {title}", f"{'transition':<18}{'expected':>9}{'/metrics':>10}{'/api':>7}"
             + ("   library" if extra else "")]
    for t in TRANSITIONS:
        mark = "" if expected[t] == got_metrics[t] == got_api[t] else "   <-- MISMATCH"
        lib = f"   {extra[t]}" if t in extra else ""
        lines.append(f"{t:<18}{expected[t]:>9}{got_metrics[t]:>10}{got_api[t]:>7}{lib}{mark}")
    print("\n".join(lines), file=sys.stderr, flush=True)


def settle(rs, label, expected, want_depth, deadline_s=15):
    """Polls (bounded) until respscope's counters (/metrics and /api/v1/queues/{label}) and depth
    gauges equal the expected values; returns what it saw last."""
    end = time.time() + deadline_s
    while True:
        samples = scrape(rs)
        got = transitions_from_metrics(samples, label)
        depth = depths_from_metrics(samples, label)
        status, body = rs.http(f"/api/v1/queues/{label}")
        api = json.loads(body) if status == 200 else {"transitions": {}, "depth": {}}
        got_api = {t: int(api["transitions"].get(t, 0)) for t in TRANSITIONS}
        api_depth = {s: int(api["depth"].get(s, 0)) for s in DEPTH_STATES}
        if ((got == expected and got_api == expected and depth == want_depth
             and api_depth == want_depth) or time.time() > end):
            return {"samples": samples, "metrics": got, "api": got_api, "depth": depth,
                    "api_depth": api_depth, "status": status, "body": body}


def assert_settled(test, title, label, expected, want_depth, s, library=None):
    """Prints expected / respscope side by side and asserts they are equal: transitions on
    /metrics and /api/v1/queues/{label}, depth gauges (both) vs getJobCounts()."""
    print_table(f"{title} {label}", expected, s["metrics"], s["api"], library)
    print(f"depth {label}: getJobCounts {want_depth}\n      respscope    {s['depth']}",
          file=sys.stderr, flush=True)
    test.assertEqual(s["status"], 200, s["body"])
    test.assertEqual(s["api"], expected, f"{title}: /api/v1/queues/{label} transitions")
    test.assertEqual(s["metrics"], expected,
                     f"{title}: respscope_bullmq_jobs_total{{queue={label}}}")
    test.assertEqual(s["depth"], want_depth, f"{title}: respscope_bullmq_queue_jobs{{queue={label}}}")
    test.assertEqual(s["api_depth"], want_depth, f"{title}: /api/v1/queues/{label} depth")


def check_queue(test, rs, label, expected, counts, library=None):
    """Waits for respscope to settle and asserts it is exact. Returns the /metrics samples."""
    want_depth = expected_depths(counts)
    s = settle(rs, label, expected, want_depth)
    assert_settled(test, "queue", label, expected, want_depth, s, library)
    return s["samples"]


def check_histograms(test, samples, label, expected, not_runnable_activations):
    """Wait samples: one per activation whose runnable time is known -- every activation but
    those of flow parents (job_tracker.h: a job waiting for children is not runnable; its release
    is invisible, so its activation has no wait sample). Process samples: one per attempt that
    ended (completed, failed, or failed and retried) whose start was seen; the SIGKILLed
    attempt never ends."""
    wait_n = metric(samples, "respscope_bullmq_job_wait_seconds_count", queue=label)
    proc_n = metric(samples, "respscope_bullmq_job_process_seconds_count", queue=label)
    print(f"histograms {label}: wait count {int(wait_n)}, process count {int(proc_n)}",
          file=sys.stderr, flush=True)
    test.assertEqual(int(wait_n), expected["active"] - not_runnable_activations)
    test.assertEqual(int(proc_n), expected["completed"] + expected["failed"] + expected["retried"])


def recent_ids(rs, queue, state):
    status, body = rs.http(f"/api/v1/jobs/recent?queue={queue}&state={state}")
    assert status == 200, body
    return {j["id"]: j for j in json.loads(body)["jobs"]}


def bullmq_event_view(ev):
    """Transitions whose count the BullMQ events stream (XADD inside the scripts, read directly
    from Redis) gives with the same definition as job_types.h. Keys are "event" or
    "event<-prev". Not comparable: "waiting" (the stream also reports automatic promotions,
    flow parent releases and prioritised adds), "prioritized", "retried" (split over "delayed"
    and "waiting<-active"), "drained" (the stream's is "the queue ran empty")."""
    def n(name):
        return sum(v for k, v in ev.items() if k.split("<-")[0] == name)
    return {"added": n("added"), "delayed": n("delayed"), "waiting_children": n("waiting-children"),
            "active": n("active"), "progress": n("progress"), "completed": n("completed"),
            "failed": n("failed"), "stalled": n("stalled"), "removed": n("removed"),
            "paused": n("paused"), "resumed": n("resumed"), "cleaned": n("cleaned")}


class ScenarioFixture:
    """Per class: one redis-server, one respscope, one run of SCRIPT (node) through it."""
    SCRIPT = None
    LIB = None
    PREFIX = "bull"
    EVALSHA_FIRST = False
    QUEUE, STALL_QUEUE = "mix", "stall"

    @classmethod
    def setUpClass(cls):
        ensure_node()
        cls.redis = harness.Redis()
        try:
            prefixes = ["bull"] if cls.PREFIX == "bull" else ["bull", cls.PREFIX]
            cls.rs = harness.Respscope(cls.redis.url(), config_text=respscope_config(prefixes))
            cfg = {"lib": cls.LIB, "via": {"host": "127.0.0.1", "port": cls.rs.port},
                   "direct": {"host": "127.0.0.1", "port": cls.redis.port}, "prefix": cls.PREFIX,
                   "queue": cls.QUEUE, "stallQueue": cls.STALL_QUEUE,
                   "evalshaFirst": cls.EVALSHA_FIRST, "checkpoint": True}
            cls.checkpoints = []
            cls.res = run_scenario(cls.SCRIPT, cfg, on_checkpoint=cls.at_checkpoint)
            print(f"\n{cls.__name__}: {cls.LIB} {cls.res['version']}, scenario took "
                  f"{cls.res['seconds']:.1f}s (scripts preloaded directly: "
                  f"{cls.res['scriptsPreloaded']})", file=sys.stderr)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def at_checkpoint(cls, data):
        """The workload waits here (no worker runs yet): let respscope settle and keep what it
        shows; test_checkpoint_counts asserts it (counters only grow, so it cannot be
        re-read later)."""
        label = cls.label(cls, data["queue"])
        data["label"] = label
        data["want_depth"] = expected_depths(data["counts"])
        data["seen"] = settle(cls.rs, label, data["expected"], data["want_depth"])
        cls.checkpoints.append(data)

    def test_checkpoint_counts(self):
        """Exact mid-run too: jobs waiting, delayed, prioritized (BullMQ: and a flow parent
        waiting for its children), a removed job, pause/resume."""
        self.assertTrue(self.checkpoints)
        for cp in self.checkpoints:
            assert_settled(self, f"checkpoint {cp['name']}: queue", cp["label"], cp["expected"],
                           cp["want_depth"], cp["seen"])

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "rs", None):
            cls.rs.stop()
        cls.redis.stop()

    def label(self, queue):  # also called on the class
        return queue if self.PREFIX == "bull" else f"{self.PREFIX}:{queue}"

    def check_no_script_body_seen(self):
        """Scripts loaded before respscope: Redis's own commandstats show that not one EVAL and
        no SCRIPT LOAD but the direct ones happened, so respscope (which forwards every byte)
        never saw a body: every call it counted was identified by KEYS shape."""
        stats = redis_commandstats(self.redis.port)
        print(f"redis commandstats: eval {stats.get('eval', 0)}, evalsha "
              f"{stats.get('evalsha', 0)}, script|load {stats.get('script|load', 0)}",
              file=sys.stderr)
        self.assertEqual(stats.get("eval", 0), 0, stats)
        self.assertEqual(stats.get("script|load", 0), self.res["scriptsPreloaded"], stats)
        self.assertGreater(self.res["scriptsPreloaded"], 20)
        self.assertGreater(stats.get("evalsha", 0), 100, stats)
        samples = scrape(self.rs)
        for cmd in ("eval", "script|load"):
            for result in ("ok", "error"):
                self.assertEqual(metric(samples, "respscope_commands_total", command=cmd,
                                        result=result), 0, cmd)
        self.assertGreater(metric(samples, "respscope_commands_total", command="evalsha",
                                  result="ok"), 100)

    def check_recent_by_label(self):
        """/api/v1/jobs/recent?queue= takes the queue's label ("e2e:mix", as in the metrics and
        /api/v1/queues/{name}), not only the bare name (ambiguous across prefixes)."""
        label = self.label(self.QUEUE)
        by_name = recent_ids(self.rs, self.QUEUE, "failed")
        by_label = recent_ids(self.rs, label, "failed")
        self.assertTrue(by_name)
        self.assertEqual(set(by_label), set(by_name), f"recent?queue={label}")

    def check_bodies_seen(self):
        stats = redis_commandstats(self.redis.port)
        self.assertGreater(stats.get("eval", 0), 0, stats)


class BullMQScenario(ScenarioFixture):
    SCRIPT = "bullmq_scenario.js"

    def test_transition_counts(self):
        q, sq = self.QUEUE, self.STALL_QUEUE
        exp, truth = self.res["expected"], self.res["truth"]
        ev = truth[q]["events"]
        counts = truth[q]["counts"]
        # The scenario's bookkeeping agrees with BullMQ's own view first.
        self.assertEqual(exp[q]["completed"], counts["completed"], truth[q])
        self.assertEqual(exp[q]["failed"], counts["failed"], truth[q])
        self.assertEqual(exp[q]["completed"], 29)  # as designed (bullmq_scenario.js)
        self.assertEqual(exp[q]["failed"], 4)
        self.assertEqual(exp[q]["retried"], 10)
        self.assertEqual(exp[sq]["stalled"], 1)
        self.assertEqual(exp[sq]["cleaned"], 1)
        print(f"events stream {q}: {json.dumps(ev, sort_keys=True)}", file=sys.stderr)
        print(f"events stream {sq}: {json.dumps(truth[sq]['events'], sort_keys=True)}",
              file=sys.stderr)
        library = bullmq_event_view(ev)
        for t, n in library.items():
            self.assertEqual(exp[q][t], n, f"{q}: bookkeeping vs events stream: {t} ({ev})")
        for t, n in bullmq_event_view(truth[sq]["events"]).items():
            self.assertEqual(exp[sq][t], n, f"{sq}: bookkeeping vs events stream: {t}")

        samples = check_queue(self, self.rs, self.label(q), exp[q], counts, library)
        check_histograms(self, samples, self.label(q), exp[q], not_runnable_activations=1)
        samples = check_queue(self, self.rs, self.label(sq), exp[sq], truth[sq]["counts"],
                                 bullmq_event_view(truth[sq]["events"]))
        check_histograms(self, samples, self.label(sq), exp[sq], not_runnable_activations=0)

    def test_job_records(self):
        """/api/v1/jobs/recent knows each job's final state and its attempts."""
        q, sq = self.QUEUE, self.STALL_QUEUE
        ids = self.res["ids"]
        completed = recent_ids(self.rs, q, "completed")
        self.assertEqual(set(completed), set(ids["completed"][q]))
        failed = recent_ids(self.rs, q, "failed")
        self.assertEqual(set(failed), set(ids["failed"][q]))
        self.assertEqual(set(recent_ids(self.rs, q, "removed")), set(ids["removed"][q]))
        for jid, j in list(completed.items()) + list(failed.items()):
            self.assertEqual(j["attempts"], self.res["attempts"][f"{q}/{jid}"], j)
        stalled = recent_ids(self.rs, sq, "completed")
        self.assertEqual(set(stalled), {ids["stalled"]})
        self.assertEqual(stalled[ids["stalled"]]["attempts"], 2)  # the killed one + the retry

    # Was a product bug (fixed): failure reasons came back as "ERR <reason>" (e.g. "ERR doomed attempt 2"
    # for BullMQ's failedReason "doomed attempt 2"), in /api/v1/jobs/recent and the failed-job
    # audit log. proxy/app/analytics_wiring.cc hands JobTrackerOptions::sanitise_text to
    # patterns::Sanitizer::Error({}, text), which formats a *Redis error reply* and, with an
    # empty error prefix, substitutes "ERR" (analytics/patterns/sanitizer.cc, Sanitizer::Error).
    def test_failed_reasons_verbatim(self):
        q = self.QUEUE
        failed = recent_ids(self.rs, q, "failed")
        self.assertTrue(failed)
        for jid, j in failed.items():
            self.assertEqual(j["failed_reason"], self.res["failedReasons"][f"{q}/{jid}"], j)


class BullMQ6Bodies(BullMQScenario, unittest.TestCase):
    LIB = "bullmq"

    def test_script_bodies_seen(self):
        self.check_bodies_seen()


class BullMQ6ScriptsLoadedBeforeRespscope(BullMQScenario, unittest.TestCase):
    LIB = "bullmq"
    PREFIX = "e2e"  # and a prefix other than "bull": the queue label is "e2e:<name>"
    EVALSHA_FIRST = True

    def test_no_script_body_seen(self):
        self.check_no_script_body_seen()

    # Was a product bug (fixed): /api/v1/jobs/recent?queue=e2e:mix returned no jobs (queue=mix does), although
    # "e2e:mix" is the queue's label in respscope_bullmq_* and /api/v1/queues/e2e:mix accepts
    # it. proxy/app/analytics_wiring.cc, the /api/v1/jobs/recent route, compares the parameter
    # with RecentJobSnapshot::queue (the bare name) only; the prefix is never considered, so
    # same-named queues under two prefixes cannot be told apart either.
    def test_recent_jobs_by_queue_label(self):
        self.check_recent_by_label()


class BullMQ5Bodies(BullMQScenario, unittest.TestCase):
    LIB = "bullmq5"

    def test_script_bodies_seen(self):
        self.check_bodies_seen()


if __name__ == "__main__":
    unittest.main()
