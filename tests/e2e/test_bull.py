"""End to end with the real npm package bull (4.16.5, ioredis 5, RESP2): a producer and
processors connected through respscope run a mix of plain, delayed and prioritised jobs, jobs
that fail and then succeed on retry (with backoff: MULTI [saveStacktrace, moveToDelayed];
without: retryJob), jobs that fail for good (retries exhausted, job.discard(), single attempt),
progress updates, a removed job, global pause/resume, and a stalled job (its processor, a child
node process, is SIGKILLed mid-job; lockDuration 2 s / stalledInterval 1 s) on a second queue
that is cleaned at the end. Bull has no flows.

respscope's `respscope_bullmq_jobs_total{queue,transition}` (and /api/v1/queues) must equal,
exactly, the counts derived from the scenario's bookkeeping and Bull's local events
(tests/e2e/bull_scenario.js, definitions as in analytics/jobs/job_types.h), cross-checked
against Bull's getJobCounts(); depth gauges equal getJobCounts() before any processor starts and
once the queues are quiet (Bull reports waiting, active, completed, failed, delayed, paused; its
priority set is not a state of its own, so respscope's prioritized and waiting_children stay 0).

Bull4Bodies: ioredis sends each script's body on its first call per socket. Bull4Scripts-
LoadedBeforeRespscope: scripts are SCRIPT LOADed directly into Redis first and Bull's ioredis
sends EVALSHA first, so respscope identifies every call by KEYS shape alone (see
test_bullmq.py). Helpers come from test_bullmq.py.
"""
import unittest

from test_bullmq import ScenarioFixture, check_histograms, check_queue, recent_ids


class BullScenario(ScenarioFixture):
    SCRIPT = "bull_scenario.js"
    LIB = "bull"

    def test_transition_counts(self):
        q, sq = self.QUEUE, self.STALL_QUEUE
        exp, truth = self.res["expected"], self.res["truth"]
        counts = truth[q]["counts"]
        # The bookkeeping agrees with Bull's own view first.
        self.assertEqual(exp[q]["completed"], counts["completed"], truth[q])
        self.assertEqual(exp[q]["failed"], counts["failed"], truth[q])
        self.assertEqual(exp[q]["completed"], 25)  # as designed (bull_scenario.js)
        self.assertEqual(exp[q]["failed"], 4)
        self.assertEqual(exp[q]["retried"], 10)
        self.assertEqual(exp[sq]["stalled"], 1)
        self.assertEqual(exp[sq]["cleaned"], 1)
        library = {"completed": counts["completed"], "failed": counts["failed"]}
        samples = check_queue(self, self.rs, self.label(q), exp[q], counts, library)
        check_histograms(self, samples, self.label(q), exp[q], not_runnable_activations=0)
        samples = check_queue(self, self.rs, self.label(sq), exp[sq], truth[sq]["counts"])
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

    # Was a product bug (fixed; see test_bullmq.py): failure reasons came back as "ERR <reason>":
    # proxy/app/analytics_wiring.cc passes them through patterns::Sanitizer::Error({}, text),
    # which formats a Redis error reply and substitutes "ERR" for the empty error prefix.
    def test_failed_reasons_verbatim(self):
        q = self.QUEUE
        failed = recent_ids(self.rs, q, "failed")
        self.assertTrue(failed)
        for jid, j in failed.items():
            self.assertEqual(j["failed_reason"], self.res["failedReasons"][f"{q}/{jid}"], j)


class Bull4Bodies(BullScenario, unittest.TestCase):
    def test_script_bodies_seen(self):
        self.check_bodies_seen()


class Bull4ScriptsLoadedBeforeRespscope(BullScenario, unittest.TestCase):
    PREFIX = "e2e"  # the queue label is "e2e:<name>"
    EVALSHA_FIRST = True

    def test_no_script_body_seen(self):
        self.check_no_script_body_seen()

    # Was a product bug (fixed; see test_bullmq.py): /api/v1/jobs/recent?queue=<prefix>:<name> found nothing.
    def test_recent_jobs_by_queue_label(self):
        self.check_recent_by_label()


if __name__ == "__main__":
    unittest.main()
