"""Latency quantiles: respscope's p50/p90/p99 against the client's own measurements.

Workload: 2000 commands, one at a time (paced: at least 1.1 ms between a reply and the next
request) on one raw-socket connection through respscope: 800
`DEBUG SLEEP 0` (about a hundred microseconds) and 1200 `EVAL` of a Lua busy loop whose length
is drawn so that the server time is log-uniform over 0.1-5 ms (the loop's cost per iteration
is calibrated directly against Redis first). The client measures every command with
time.perf_counter_ns() from just before sendall() of the request to the reception of the
reply's last byte.

What respscope measures: from the read of the request's last byte to the read of the reply's
last byte (analytics/observation.h), a strict sub-interval of the client's interval on the same
clock (CLOCK_MONOTONIC). With slow_command_threshold 0 and a slow log of 2000 entries,
respscope's own duration of every single command is in /api/v1/slowlog, in order, so each
command's respscope duration can be paired with the client's measurement of the same command.

Checks that do not depend on the machine's load (every attempt):
  - the slow log holds the 2000 commands in the order sent;
  - per command: 0 < respscope duration < client duration (the interval nests);
  - /api/v1 p50, p90, p99 (per command and overall) are the nearest-rank quantiles of
    respscope's own durations within the histogram's bucket-midpoint error (1/64,
    analytics/recorder/histogram.h), max exact; the Prometheus buckets and sum of EVAL agree
    with those durations the same way.
The comparison with the client (the brief's "within 5% or a small absolute tolerance"):
    respscope_q <= client_q * (1 + 1/64)                                   (strict)
    client_q - respscope_q <= max(5% of client_q, 150 us)
The difference is the client's own path: the send syscall, the proxy's wake-up and read, the
proxy's write, the client's wake-up and recv, in Python; on an idle loopback 20-60 us (the
per-command overheads are printed). 150 us does not let a wrong clock or unit, a quantile off
by one octave bucket, or the wrong end of the interval pass. A quantile that misses it is also
accepted when it is within the tolerance of the client's quantile at a rank at most 5% lower,
i.e. when at most 5% of the client's samples carry extra delay of the client's own path: on a
shared virtual machine a process sometimes wakes up 1-3 ms late (seen here even directly
against Redis, after long EVALs), outside respscope's interval, and a p99 over 800 commands is
decided by 8 of them. On a busy CI machine the client's own path was seen at p50 105 us and
p90 384 us, where p50s then needed a slack of 3.5-4%; a wrong interval or unit shifts every
sample, an octave-bucket error doubles a quantile, and neither fits in 5%. The load of other
jobs on a shared 2-core machine can still push the whole client path past 150 us for a while,
so this comparison is attempted up to 5 times (a fresh respscope each time, 1 s apart) and must
hold in one attempt; the checks above must hold in every attempt.
"""
import json
import math
import random
import re
import socket
import time
import unittest

import harness
from prom import parse_metrics
from harness import frame_end, resp_command

TOL_ABS_NS = 150_000
TOL_REL = 0.05
RANK_SLACK = 0.05  # see the module docstring
MID = 1.0 / 64     # bucket midpoint error of respscope's histogram
ATTEMPTS = 5
QUANTILES = ((0.5, "p50_ms"), (0.9, "p90_ms"), (0.99, "p99_ms"))





def nearest_rank(sorted_values, q):
    """The q-quantile by nearest rank, as respscope computes it (histogram.cc)."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


BUSY = "local i = 0 local n = tonumber(ARGV[1]) while i < n do i = i + 1 end return i"
CONFIG = "analytics: {slow_command_threshold: 0ms, slowlog_size: 2000}\n"


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def timed(self, request):
        """(reply bytes, client latency ns) of one command."""
        buf = b""
        t0 = time.perf_counter_ns()
        self.sock.sendall(request)
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
            if frame_end(buf, 0) is not None:
                t1 = time.perf_counter_ns()
                break
        return buf, t1 - t0

    def close(self):
        self.sock.close()


class LatencyQuantiles(unittest.TestCase):
    def calibrate(self, port):
        """ns per iteration of the busy loop, directly against Redis."""
        direct = Conn(port)
        small, big = [], []
        for _ in range(9):
            small.append(direct.timed(resp_command("EVAL", BUSY, 0, 1000))[1])
            big.append(direct.timed(resp_command("EVAL", BUSY, 0, 201000))[1])
        direct.close()
        # The fastest run of each is the least disturbed by other processes; clamped to a
        # plausible range so that a disturbed calibration cannot make the run very long.
        return min(100.0, max(3.0, (min(big) - min(small)) / 200000))

    def attempt(self, redis_url, ns_per_iter, seed):
        """Runs the workload through a fresh respscope, asserts the load-independent checks,
        returns the list of failed client comparisons."""
        rs = harness.Respscope(redis_url, config_text=CONFIG, threads=2)
        self.addCleanup(rs.stop)
        rng = random.Random(seed)
        plan = ["debug"] * 800 + ["eval"] * 1200
        rng.shuffle(plan)
        conn = Conn(rs.port)
        samples = []  # (kind, client ns) in order
        for kind in plan:
            # Paced: every reply in its own millisecond, so that the slow log (ordered by
            # wall-clock milliseconds) keeps the commands in order.
            time.sleep(0.0011)
            if kind == "debug":
                reply, ns = conn.timed(resp_command("DEBUG", "SLEEP", "0"))
                self.assertEqual(reply, b"+OK\r\n")
            else:
                target_ns = math.exp(rng.uniform(math.log(100e3), math.log(5e6)))
                n = max(0, int((target_ns - 30e3) / ns_per_iter))
                reply, ns = conn.timed(resp_command("EVAL", BUSY, 0, n))
                self.assertEqual(reply, b":%d\r\n" % n)
            samples.append((kind, ns))
        conn.close()

        # respscope's view, once it has counted all 2000 commands (bounded wait).
        deadline = time.monotonic() + 5
        while True:
            time.sleep(0.25)  # the API re-merges snapshots older than 200 ms
            api = {p: json.loads(rs.http("/api/v1/" + p)[1])
                   for p in ("commands", "overview", "slowlog")}
            if api["overview"]["latency"]["count"] >= 2000 or time.monotonic() > deadline:
                break
        m = parse_metrics(rs.http("/metrics")[1])
        rs.stop()
        cmds = {c["command"]: c for c in api["commands"]["commands"]}
        self.assertEqual((cmds["debug"]["calls"], cmds["eval"]["calls"]), (800, 1200))
        self.assertEqual(api["overview"]["latency"]["count"], 2000)

        # Pair every command with its slow log entry (newest first in the log). Entries of one
        # millisecond may come out in any order (see SlowLogOrder below); pacing makes that
        # rare. Within such a group the commands must be those sent at that place, and the
        # durations of each command are paired in sorted order (if a pairing with respscope <
        # client exists, the sorted one is such a pairing). Pairing across commands would hand
        # a DEBUG's slot an EVAL's duration and move the per-command quantiles checked below.
        entries = list(reversed(api["slowlog"]["entries"]))
        self.assertEqual(len(entries), len(plan))
        resp = [0] * len(plan)
        pos, shared_ms = 0, 0
        while pos < len(entries):
            end = pos
            while end < len(entries) and entries[end]["time_ms"] == entries[pos]["time_ms"]:
                end += 1
            group = entries[pos:end]
            self.assertEqual(sorted(e["command"] for e in group), sorted(plan[pos:end]),
                             "the slow log holds the commands in order (at %d: served %r, "
                             "sent %r)" % (pos, [(e["command"], e["time_ms"]) for e in group],
                                           plan[pos:end]))
            if end - pos > 1:
                shared_ms += end - pos
            for kind in set(plan[pos:end]):
                by_client = sorted((i for i in range(pos, end) if plan[i] == kind),
                                   key=lambda i: samples[i][1])
                durations = sorted(e["duration_ms"] for e in group if e["command"] == kind)
                for i, d in zip(by_client, durations):
                    resp[i] = round(d * 1e6)
            pos = end
        print("slow log: %d of %d entries share their millisecond with another" % (
            shared_ms, len(entries)))
        nested = [(i, r, c) for i, (r, (_, c)) in enumerate(zip(resp, samples))
                  if not 0 < r < c]
        self.assertEqual(nested, [], "respscope's interval nests in the client's")
        overhead = sorted(c - r for r, (_, c) in zip(resp, samples))
        print("per-command overhead of the client's path (client - respscope): p50 %.1f us, "
              "p90 %.1f us, p99 %.1f us, max %.1f us" % tuple(
                  nearest_rank(overhead, q) / 1e3 for q in (0.5, 0.9, 0.99, 1.0)))

        views = {"debug": cmds["debug"]["latency"], "eval": cmds["eval"]["latency"],
                 "all": api["overview"]["latency"]}
        client, own = {}, {}
        for what in views:
            pick = [i for i, k in enumerate(plan) if what in (k, "all")]
            client[what] = sorted(samples[i][1] for i in pick)
            own[what] = sorted(resp[i] for i in pick)

        # Load-independent: respscope's quantiles are those of its own durations.
        for what, lat in views.items():
            for q, field in QUANTILES:
                want = nearest_rank(own[what], q)
                got = lat[field] * 1e6
                self.assertLessEqual(abs(got - want), want * MID + 16, "%s %s" % (what, field))
            self.assertAlmostEqual(lat["max_ms"] * 1e6, own[what][-1], delta=1)
        evals = own["eval"]
        for le in ("0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "+Inf"):
            b = m[("respscope_command_duration_seconds_bucket",
                   (("command", "eval"), ("le", le)))]
            bound = float(le) * 1e9
            lo = sum(1 for v in evals if v <= bound / (1 + MID))
            hi = sum(1 for v in evals if v <= bound / (1 - MID))
            self.assertTrue(lo <= b <= hi, "eval le=%s: %d not in [%d, %d]" % (le, b, lo, hi))
        s = m[("respscope_command_duration_seconds_sum", (("command", "eval"),))]
        self.assertAlmostEqual(s, sum(evals) / 1e9, delta=1e-6)

        # Against the client.
        failures = []
        print("%-6s %-5s %12s %12s %10s %10s" % ("what", "q", "client_us", "respscope_us",
                                                 "diff_us", "allowed_us"))
        for what, lat in views.items():
            for q, field in QUANTILES:
                c_ns = nearest_rank(client[what], q)
                r_ns = lat[field] * 1e6
                allowed = max(TOL_REL * c_ns, TOL_ABS_NS)
                print("%-6s %-5s %12.1f %12.1f %10.1f %10.1f" % (
                    what, q, c_ns / 1e3, r_ns / 1e3, (c_ns - r_ns) / 1e3, allowed / 1e3))
                self.assertLessEqual(r_ns, c_ns * (1 + MID) + 16, "%s p%g" % (what, q * 100))
                if c_ns - r_ns <= allowed:
                    continue
                # Smallest rank slack that explains the gap (see the module docstring).
                slack = 1.0
                for d in range(1, 1000):
                    lower = q - d / 1000
                    if lower <= 0:
                        break
                    c_lower = nearest_rank(client[what], lower)
                    if c_lower - r_ns <= max(TOL_REL * c_lower, TOL_ABS_NS):
                        slack = d / 1000
                        break
                print("       %s p%g: within tolerance of the client's p%g (rank slack %.3f)"
                      % (what, q * 100, (q - slack) * 100, slack))
                if slack > RANK_SLACK:
                    failures.append("%s p%g: respscope %.1f us, client %.1f us: more than "
                                    "%.1f us apart (rank slack needed %.3f)" % (
                                        what, q * 100, r_ns / 1e3, c_ns / 1e3, allowed / 1e3,
                                        slack))
        return failures

    def test_quantiles_match_client(self):
        r = harness.Redis(extra=["--enable-debug-command", "yes"])
        self.addCleanup(r.stop)
        ns_per_iter = self.calibrate(r.port)
        print("Lua busy loop: %.2f ns per iteration" % ns_per_iter)
        all_failures = []
        for n in range(ATTEMPTS):
            failures = self.attempt(r.url(), ns_per_iter, seed=20240601 + n)
            print("attempt %d: %s" % (n + 1, failures or "client comparison holds"))
            if not failures:
                return
            all_failures.append(failures)
            time.sleep(1)
        self.fail("the client comparison failed in every attempt: %s" % all_failures)


class SlowLogOrder(unittest.TestCase):
    # Entries of the same millisecond come out newest first too (one connection: one shard).
    def test_slowlog_newest_first_within_a_millisecond(self):
        r = harness.Redis()
        self.addCleanup(r.stop)
        rs = harness.Respscope(r.url(), config_text=CONFIG, threads=1)
        self.addCleanup(rs.stop)
        c = harness.RawClient(rs.port)
        self.addCleanup(c.close)
        c.send(b"".join(resp_command("SET", "order:%03d" % i, "v") for i in range(50)))
        c.read_frames(50)
        deadline = time.monotonic() + 5
        while True:
            time.sleep(0.25)
            entries = json.loads(rs.http("/api/v1/slowlog")[1])["entries"]
            if len(entries) >= 50 or time.monotonic() > deadline:
                break
        keys = [e["key"] for e in entries]
        print("slow log keys, as served:", keys[:10], "...")
        self.assertEqual(keys, ["order:%03d" % i for i in reversed(range(50))])


if __name__ == "__main__":
    unittest.main(verbosity=2)
