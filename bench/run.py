#!/usr/bin/env python3
"""respscope benchmark harness: direct Redis vs respscope vs twemproxy, on this machine.

    python3 bench/run.py            # full run (3 rounds), writes bench/RESULTS.md
    python3 bench/run.py --quick    # smoke run (1 round, short runs), writes bench/out/

Starts redis-server, respscope (build/respscope, or $RESPSCOPE_BIN) and twemproxy
(/usr/sbin/nutcracker) on free loopback ports and measures the three targets interleaved in the
same run (direct, respscope, twemproxy, direct, respscope, twemproxy, ...); every figure is the
median of the rounds (3 by default). See bench/README.md for what each number means and
bench/RESULTS.md for the last full run. Goals are reported, never asserted: the exit code is 0
whenever the measurements ran.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402  (tests/lib/harness.py: processes on free ports, rss_kib, ...)
import report as report_md  # noqa: E402  (bench/report.py: the markdown)
from plan import CLIENTS, KEYSPACE, PIPELINES, TARGETS, TEST_LABEL, TESTS, median  # noqa: E402
import plan  # noqa: E402

NUTCRACKER = os.environ.get("NUTCRACKER_BIN", "/usr/sbin/nutcracker")

START = time.time()


LOAD_SAMPLES = []  # 1-minute load average at every progress line


def log(msg):
    LOAD_SAMPLES.append(float(loadavg().split()[0]))
    print(f"[{time.time() - START:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Machine facts


def machine_facts():
    facts = {"cores": os.cpu_count(), "cpu_model": "unknown", "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    facts["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            facts["mem_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return facts


def snapshot_binary(path, out_dir):
    """A private copy of respscope for this run: others may relink build/respscope meanwhile."""
    import hashlib
    import shutil
    dst = os.path.join(out_dir, "respscope.under-test")
    shutil.copy2(path, dst)
    with open(dst, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    return dst, digest, mtime.strftime("%Y-%m-%d %H:%M UTC")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def tool_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except Exception as e:  # a missing tool is reported, not fatal here
        return f"unavailable ({e})"


def git_facts():
    def git(*a):
        r = subprocess.run(["git", "-C", ROOT] + list(a), capture_output=True, text=True)
        return r.stdout.strip()
    dirty = git("status", "--porcelain", "--", "proxy", "analytics", "config")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "dirty": len(dirty.splitlines()) if dirty else 0}


def raise_fd_limit():
    """Soft NOFILE limit up to the hard one; children (respscope, redis, nutcracker) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ---------------------------------------------------------------------------------------------
# Processes


class Twemproxy(harness.Process):
    """nutcracker with one Redis server, redis: true, on a free port."""

    def __init__(self, redis_port):
        self.port = harness.free_port()
        self.stats_port = harness.free_port()
        fd, self.config_path = tempfile.mkstemp(prefix="respscope-bench-nutcracker-", suffix=".yml")
        with os.fdopen(fd, "w") as f:
            # server_connections 1 is twemproxy's default and how it is deployed: it multiplexes
            # every client onto one upstream connection (it pipelines them).
            f.write(f"""bench:
  listen: 127.0.0.1:{self.port}
  redis: true
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  preconnect: true
  server_connections: 1
  servers:
   - 127.0.0.1:{redis_port}:1
""")
        log_path = tempfile.mktemp(prefix="respscope-bench-nutcracker-", suffix=".log")
        super().__init__([NUTCRACKER, "-c", self.config_path, "-s", str(self.stats_port),
                          "-a", "127.0.0.1", "-o", log_path, "-v", "4"], "nutcracker")
        harness.wait_port(self.port)

    def stop(self, *a, **kw):
        rc = super().stop(*a, **kw)
        if os.path.exists(self.config_path):
            os.unlink(self.config_path)
        return rc


class Targets:
    """The three (four) targets and the process whose cost each one adds."""

    def __init__(self, args):
        raise_fd_limit()
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # Redis needs maxclients + 32 descriptors; leave room under the hard limit.
        self.redis = harness.Redis(extra=["--maxclients", str(min(50000, hard - 64))])
        self.threads = args.threads
        self.respscope = self._start_respscope()
        self.threads = self.respscope.io_threads()  # what ran, when --threads left it to respscope
        self.respscope_off = self._start_respscope(env={"RESPSCOPE_ANALYTICS": "off"})
        self.twemproxy = Twemproxy(self.redis.port)
        self._index()

    def _start_respscope(self, env=None):
        # max_clients above the idle-connection test's count (the default is 10,000).
        return harness.Respscope(self.redis.url(), config_text="limits:\n  max_clients: 50000\n",
                                 threads=self.threads, env=env)

    def _index(self):
        self.port = {"direct": self.redis.port, "respscope": self.respscope.port,
                     "twemproxy": self.twemproxy.port, "respscope_off": self.respscope_off.port}
        # The process whose RSS / CPU the target adds (direct: Redis itself).
        self.pid = {"direct": self.redis.pid, "respscope": self.respscope.pid,
                    "twemproxy": self.twemproxy.pid, "respscope_off": self.respscope_off.pid}

    def fresh_proxies(self):
        """New respscope and twemproxy processes: memory figures must not depend on what the
        earlier tests left in their free lists (twemproxy never gives its mbufs back)."""
        self.respscope.stop()
        self.twemproxy.stop()
        self.respscope = self._start_respscope()
        self.twemproxy = Twemproxy(self.redis.port)
        self._index()

    def alive_or_die(self):
        for name, p in (("redis-server", self.redis), ("respscope", self.respscope),
                        ("respscope (analytics off)", self.respscope_off),
                        ("nutcracker", self.twemproxy)):
            if not p.alive():
                raise RuntimeError(f"{name} exited:\n{p.log()[-3000:]}")

    def stop(self):
        for p in (self.twemproxy, self.respscope_off, self.respscope, self.redis):
            p.stop()


def direct_cmd(port, *cmds):
    """Runs commands on a fresh connection and returns the raw replies."""
    c = harness.RawClient(port)
    try:
        c.send(b"".join(harness.resp_command(*a) for a in cmds))
        return c.read_frames(len(cmds))
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# redis-benchmark


def rb_argv(port, test, pipeline, n, clients=CLIENTS, extra=()):
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
            "-P", str(pipeline), "-n", str(n), "-r", str(KEYSPACE), "--csv"] + list(extra)
    if test in ("get", "set", "lpush"):
        argv += ["-t", test]
    elif test == "mget":
        # redis-benchmark 7 has no MGET test (its 10-key test is MSET): the same shape as its own
        # tests, as a custom command. __rand_int__ is replaced per key, as with -t.
        argv += ["MGET"] + ["key:__rand_int__"] * 10
    elif test == "lrange_100":
        # Exactly redis-benchmark's LRANGE_100 command, without the LPUSH pre-fill that
        # `-t lrange_100` runs first (it would be counted in the CPU of the run); mylist is
        # pre-filled once by the harness and trimmed after each LPUSH run.
        argv += ["LRANGE", "mylist", "0", "99"]
    else:
        raise ValueError(test)
    return argv


def parse_csv(text):
    """redis-benchmark 7 --csv: a header line, then "test","rps","avg_latency_ms",... per test."""
    rows = []
    for line in text.splitlines():
        if not line.startswith('"') or line.startswith('"test"'):
            continue
        cells = [c.strip('"') for c in line.split('","')]
        try:
            rows.append({"test": cells[0], "rps": float(cells[1]), "avg_ms": float(cells[2]),
                         "p50_ms": float(cells[4]), "p99_ms": float(cells[6])})
        except (IndexError, ValueError):
            continue
    return rows


def run_rb(targets, target, test, pipeline, n, clients=CLIENTS, extra=()):
    """One redis-benchmark run; returns rps, latencies and the CPU the processes used."""
    port = targets.port[target]
    pid = targets.pid[target]
    redis_pid = targets.redis.pid
    cpu0 = harness.cpu_seconds(pid)
    rcpu0 = harness.cpu_seconds(redis_pid)
    t0 = time.perf_counter()
    r = subprocess.run(rb_argv(port, test, pipeline, n, clients, extra), capture_output=True,
                       text=True, timeout=600)
    wall = time.perf_counter() - t0
    cpu = harness.cpu_seconds(pid) - cpu0
    rcpu = harness.cpu_seconds(redis_pid) - rcpu0
    rows = parse_csv(r.stdout)
    if r.returncode != 0 or not rows:
        targets.alive_or_die()
        raise RuntimeError(f"redis-benchmark failed on {target}: rc={r.returncode}\n"
                           f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    row = rows[-1]
    out = {"rps": row["rps"], "p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"], "wall_s": wall,
           "n": n, "redis_cpu_us_per_cmd": rcpu * 1e6 / n}
    if target != "direct":
        out["cpu_us_per_cmd"] = cpu * 1e6 / n
    if test == "lpush":
        direct_cmd(targets.redis.port, ("LTRIM", "mylist", "0", "999"))
    return out


def prefill(targets, quick):
    log("pre-filling keys key:000000000000..099999 and mylist (direct)")
    subprocess.run(["redis-benchmark", "-p", str(targets.redis.port), "-c", "10", "-P", "64",
                    "-n", str(3 * KEYSPACE), "-r", str(KEYSPACE), "-t", "set", "-q"],
                   capture_output=True, timeout=300, check=True)
    direct_cmd(targets.redis.port, ("DEL", "mylist"), ("RPUSH", "mylist", *(["xxx"] * 1000)),
               ("SET", "bench:lat", "xxx"))
    for t in TARGETS + ["respscope_off"]:  # warm each path once (page faults, connection setup)
        run_rb(targets, t, "get", 16, 20000 if quick else 100000)


def calibrate(targets, seconds):
    """-n per (test, pipeline) so that a direct run takes about `seconds`."""
    n = {}
    for test in TESTS:
        for p in PIPELINES:
            probe = 10000 if p == 1 else 50000
            if test in ("mget", "lrange_100"):
                probe //= 4
            r = run_rb(targets, "direct", test, p, probe)
            per_s = r["n"] / max(r["wall_s"], 1e-3)
            n[(test, p)] = max(probe, int(per_s * seconds // 1000 * 1000))
            log(f"calibrate {TEST_LABEL[test]} P{p}: direct {r['rps']:,.0f} rps -> -n {n[(test, p)]:,}")
    return n


def throughput(targets, n, rounds):
    res = {}  # (test, p, target) -> [per round results]
    total = rounds * len(TESTS) * len(PIPELINES) * len(TARGETS)
    done = 0
    t_start = time.time()
    for r in range(rounds):
        for p in PIPELINES:
            for test in TESTS:
                for target in TARGETS:  # A B C, A B C, ...: drift hits all three alike
                    out = run_rb(targets, target, test, p, n[(test, p)])
                    res.setdefault((test, p, target), []).append(out)
                    done += 1
                    eta = (time.time() - t_start) / done * (total - done)
                    cpu = (f", proxy CPU {out['cpu_us_per_cmd']:.2f} us/cmd"
                           if "cpu_us_per_cmd" in out else "")
                    log(f"throughput [{done}/{total}, eta {eta:.0f}s] round {r + 1} P{p} "
                        f"{TEST_LABEL[test]:<14} {target:<9} {out['rps']:>11,.0f} rps{cpu}")
    return res


# ---------------------------------------------------------------------------------------------
# Single-client latency


def ping_loop(targets, count):
    """GET bench:lat on one connection per target, interleaved request by request."""
    conns = {t: harness.RawClient(targets.port[t]) for t in TARGETS}
    req = harness.resp_command("GET", "bench:lat")
    want = b"$3\r\nxxx\r\n"
    samples = {t: [] for t in TARGETS}
    try:
        for _ in range(200):  # warm-up
            for t in TARGETS:
                conns[t].sock.sendall(req)
                conns[t].sock.recv(64)
        for _ in range(count):
            for t in TARGETS:
                s = conns[t].sock
                t0 = time.perf_counter_ns()
                s.sendall(req)
                got = s.recv(64)
                while len(got) < len(want):
                    got += s.recv(64)
                samples[t].append(time.perf_counter_ns() - t0)
                if got != want:
                    raise RuntimeError(f"unexpected reply from {t}: {got!r}")
    finally:
        for c in conns.values():
            c.close()
    out = {}
    for t, xs in samples.items():
        xs.sort()
        out[t] = {"p50_us": xs[len(xs) // 2] / 1000, "p99_us": xs[int(len(xs) * 0.99)] / 1000}
    return out


def latency(targets, rounds, rb_n, ping_n):
    res = {"rb": {t: [] for t in TARGETS}, "ping": {t: [] for t in TARGETS}}
    for r in range(rounds):
        for t in TARGETS:
            out = run_rb(targets, t, "get", 1, rb_n, clients=1, extra=["--precision", "3"])
            res["rb"][t].append({"p50_us": out["p50_ms"] * 1000, "p99_us": out["p99_ms"] * 1000,
                                 "rps": out["rps"]})
            log(f"latency round {r + 1} redis-benchmark -c 1 {t:<9} p50 {out['p50_ms'] * 1000:6.1f} us"
                f"  p99 {out['p99_ms'] * 1000:6.1f} us")
        pl = ping_loop(targets, ping_n)
        for t in TARGETS:
            res["ping"][t].append(pl[t])
        log("latency round {} python ping loop: {}".format(r + 1, ", ".join(
            f"{t} p50 {pl[t]['p50_us']:.1f} p99 {pl[t]['p99_us']:.1f} us" for t in TARGETS)))
    return res


# ---------------------------------------------------------------------------------------------
# Memory


def open_idle(port, count):
    """count connections, each sends one PING and reads PONG, then stays open and idle."""
    socks = []
    try:
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            socks.append(s)
        for s in socks:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
        for s in socks:
            got = b""
            while not got.endswith(b"\r\n"):
                chunk = s.recv(64)
                if not chunk:
                    raise ConnectionError("closed")
                got += chunk
            if got != b"+PONG\r\n":
                raise RuntimeError(f"PING: {got!r}")
    except Exception:
        for s in socks:
            s.close()
        raise
    return socks


def connected_clients(redis_port):
    info = direct_cmd(redis_port, ("INFO", "clients"))[0].decode()
    for line in info.split("\r\n"):
        if line.startswith("connected_clients:"):
            return int(line.split(":")[1])
    return -1


def idle_rss(targets, rounds, count):
    res = {t: [] for t in TARGETS}
    base_clients = connected_clients(targets.redis.port)
    for r in range(rounds):
        targets.fresh_proxies()
        for t in TARGETS:
            pid = targets.pid[t]
            time.sleep(0.5)
            before = harness.rss_kib(pid)
            t0 = time.time()
            socks = open_idle(targets.port[t], count)
            time.sleep(1.0)
            after = harness.rss_kib(pid)
            per = (after - before) / count
            res[t].append({"per_conn_kib": per, "before_kib": before, "after_kib": after})
            log(f"idle connections round {r + 1} {t:<9} {count:,} conns: RSS {before:,} -> "
                f"{after:,} KiB = {per:.2f} KiB/conn ({time.time() - t0:.1f}s)")
            for s in socks:
                s.close()
            # Wait until the proxy has closed its upstream side too (Redis back to baseline).
            deadline = time.time() + 30
            while time.time() < deadline and connected_clients(targets.redis.port) > base_clients + 2:
                time.sleep(0.2)
    return res


class RssSampler(threading.Thread):
    def __init__(self, pid, interval=0.005):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self.stop_flag = pid, interval, 0, False

    def run(self):
        while not self.stop_flag:
            self.peak = max(self.peak, harness.rss_kib(self.pid))
            time.sleep(self.interval)


def reset_hwm(pid):
    """Resets VmHWM (peak RSS) of pid: /proc/pid/clear_refs "5" (Linux >= 4.0, needs privilege)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def big_value(targets, rounds, size):
    """RSS growth of each target's process for SET + GET of one `size`-byte value."""
    payload = b"v" * size
    header = b"*3\r\n$3\r\nSET\r\n$7\r\nbig:val\r\n$%d\r\n" % size
    get = harness.resp_command("GET", "big:val")
    res = {t: [] for t in TARGETS}
    for r in range(rounds):
        targets.fresh_proxies()
        for t in TARGETS:
            pid = targets.pid[t]
            direct_cmd(targets.redis.port, ("DEL", "big:val"))
            time.sleep(0.3)
            before = harness.rss_kib(pid)
            hwm_ok = reset_hwm(pid)
            sampler = RssSampler(pid)
            sampler.start()
            t0 = time.perf_counter()
            s = socket.create_connection(("127.0.0.1", targets.port[t]), timeout=120)
            err = None
            try:
                s.sendall(header)
                s.sendall(memoryview(payload))
                s.sendall(b"\r\n")
                reply = s.recv(64)
                if not reply.startswith(b"+OK"):
                    raise RuntimeError(f"SET reply {reply[:80]!r}")
                s.sendall(get)
                want = len(b"$%d\r\n" % size) + size + 2
                got = 0
                buf = bytearray(1 << 20)
                while got < want:
                    k = s.recv_into(buf)
                    if k == 0:
                        raise ConnectionError("closed during GET")
                    got += k
            except Exception as e:  # recorded and reported: a proxy that fails here is a result
                err = f"{type(e).__name__}: {e}"
            finally:
                s.close()
            secs = time.perf_counter() - t0
            sampler.stop_flag = True
            sampler.join()
            peak = max(sampler.peak, harness.hwm_kib(pid) if hwm_ok else 0)
            res[t].append({"growth_kib": peak - before, "before_kib": before, "peak_kib": peak,
                           "seconds": secs, "error": err, "hwm_reset": hwm_ok})
            log(f"{size >> 20} MiB value round {r + 1} {t:<9} RSS {before:,} -> peak {peak:,} KiB "
                f"(+{(peak - before) / 1024:,.1f} MiB) in {secs:.1f}s" + (f" ERROR {err}" if err else ""))
            if err and t == "twemproxy" and not targets.twemproxy.alive():
                raise RuntimeError("nutcracker died on the big value:\n" + targets.twemproxy.log())
    direct_cmd(targets.redis.port, ("DEL", "big:val"))
    return res


# ---------------------------------------------------------------------------------------------
# Analytics on vs off


def binary_mentions(path, needle):
    try:
        with open(path, "rb") as f:
            return needle.encode() in f.read()
    except OSError:
        return False


def analytics_onoff(targets, n, rounds):
    res = {}
    for r in range(rounds):
        for test in ("get", "set"):
            # on, off / off, on in alternate rounds: neither always runs second.
            order = ("respscope", "respscope_off") if r % 2 == 0 else ("respscope_off", "respscope")
            for t in order:
                out = run_rb(targets, t, test, 16, n[(test, 16)])
                res.setdefault((test, t), []).append(out)
                log(f"analytics round {r + 1} {TEST_LABEL[test]} P16 {t:<13} {out['rps']:>11,.0f} rps, "
                    f"{out['cpu_us_per_cmd']:.2f} us/cmd")
    return res


# ---------------------------------------------------------------------------------------------
# Micro benchmarks (Google Benchmark)


def find_binary(name, rel_paths):
    for d in ("build-bench", "build"):
        for rel in rel_paths:
            p = os.path.join(ROOT, d, rel, name)
            if os.access(p, os.X_OK):
                return p
    return None


def build_micro():
    """Builds bench_scanners in build-bench/ (one job, niced: the machine is shared)."""
    bdir = os.path.join(ROOT, "build-bench")
    if not os.path.exists(os.path.join(bdir, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", bdir, "-DCMAKE_BUILD_TYPE=Release",
                        "-DRESPSCOPE_BENCH=ON", "-DRESPSCOPE_TESTS=OFF"], check=True,
                       capture_output=True)
    r = subprocess.run(["nice", "cmake", "--build", bdir, "-j1", "--target", "bench_scanners"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log("building bench_scanners failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])


def run_micro(path, quick, out_dir):
    name = os.path.basename(path)
    json_path = os.path.join(out_dir, f"{name}.json")
    argv = [path, f"--benchmark_out={json_path}", "--benchmark_out_format=json"]
    if quick:
        argv += ["--benchmark_min_time=0.05"]
    else:
        argv += ["--benchmark_min_time=0.5", "--benchmark_repetitions=3",
                 "--benchmark_report_aggregates_only=true"]
    log("micro: " + " ".join(shlex.quote(a) for a in argv))
    subprocess.run(argv, stdout=sys.stderr, check=False, timeout=1800)
    try:
        with open(json_path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {"argv": argv, "rows": []}
    rows = []
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        rows.append(b)
    return {"argv": argv, "rows": rows, "context": data.get("context", {})}


def save_results(ctx, path):
    """JSON of everything measured; tuple keys ("get", 16, "direct") are written as their repr."""
    def keys(v):
        return {repr(k) if isinstance(k, tuple) else k: vv for k, vv in v.items()}
    with open(path, "w") as f:
        json.dump({k: keys(v) if isinstance(v, dict) else v for k, v in ctx.items()}, f,
                  indent=1, default=str)


def load_results(path):
    import ast
    with open(path) as f:
        raw = json.load(f)

    def key(k):
        if k.startswith("("):
            return ast.literal_eval(k)
        return k
    return {k: {key(kk): vv for kk, vv in v.items()} if isinstance(v, dict) and k != "machine"
            and k != "git" else v for k, v in raw.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 round, short runs, 1,000 idle connections, 32 MiB value; "
                         "writes bench/out/RESULTS.quick.md unless --out is given")
    ap.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--analytics-rounds", type=int,
                    help="rounds of the analytics on/off pair (default max(rounds, 7); 1 with --quick)")
    ap.add_argument("--seconds", type=float, help="target length of one direct redis-benchmark "
                                                  "run (default 1.5; 0.25 with --quick)")
    ap.add_argument("--threads", type=int, default=None,
                    help="respscope IO threads (default: respscope's own default)")
    ap.add_argument("--out", help="markdown output (default bench/RESULTS.md)")
    ap.add_argument("--no-micro", action="store_true", help="skip the Google Benchmark binaries")
    ap.add_argument("--note", action="append", default=[],
                    help="a line of context for the results (repeatable)")
    ap.add_argument("--render", metavar="RESULTS_JSON",
                    help="measure nothing: write the markdown again from a saved "
                         "bench/out/results.json (after a change to bench/report.py)")
    args = ap.parse_args()
    if args.render:
        ctx = load_results(args.render)
        ctx["notes"] += args.note
        ctx["notes"].append(f"Rendered again from the saved measurements with `python3 bench/run.py "
                            f"--render {os.path.relpath(args.render, ROOT)}` (nothing re-measured).")
        out_md = args.out or os.path.join(HERE, "RESULTS.md")
        md = plan.carry_over(out_md, report_md.render(ctx))
        with open(out_md, "w") as f:
            f.write(md)
        log(f"wrote {os.path.relpath(out_md, ROOT)}")
        return
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (0.25 if args.quick else 1.5)
    out_dir = os.path.join(HERE, "out")
    os.makedirs(out_dir, exist_ok=True)
    out_md = args.out or (os.path.join(out_dir, "RESULTS.quick.md") if args.quick
                          else os.path.join(HERE, "RESULTS.md"))

    for tool in ("redis-server", "redis-benchmark"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":")):
            sys.exit(f"{tool} not found (apt-get install redis-server redis-tools)")
    if not os.access(NUTCRACKER, os.X_OK):
        sys.exit(f"{NUTCRACKER} not found (apt-get install nutcracker)")
    if not os.access(harness.RESPSCOPE_BIN, os.X_OK):
        sys.exit(f"{harness.RESPSCOPE_BIN} not found: cmake -S . -B build "
                 "-DCMAKE_BUILD_TYPE=Release && cmake --build build --target respscope "
                 "(or set RESPSCOPE_BIN)")

    ctx = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python3 bench/run.py" + "".join(" " + shlex.quote(a) for a in sys.argv[1:]),
           "machine": machine_facts(), "load_start": loadavg(), "rounds": rounds,
           "seconds": seconds, "threads": args.threads, "git": git_facts(),
           "respscope_bin": os.path.relpath(harness.RESPSCOPE_BIN, ROOT),
           "respscope_version": tool_version([harness.RESPSCOPE_BIN, "--version"]),
           "redis_version": tool_version(["redis-server", "--version"]),
           "rb_version": tool_version(["redis-benchmark", "--version"]),
           "nutcracker_version": tool_version([NUTCRACKER, "--version"]), "notes": list(args.note)}
    # Freeze the binary under test (the harness reads RESPSCOPE_BIN when it starts a process).
    harness.RESPSCOPE_BIN, ctx["respscope_sha"], ctx["respscope_mtime"] = snapshot_binary(
        harness.RESPSCOPE_BIN, out_dir)
    ctx["analytics_env_known"] = binary_mentions(harness.RESPSCOPE_BIN, "RESPSCOPE_ANALYTICS")
    log(f"{ctx['machine']['cores']} cores ({ctx['machine']['cpu_model']}), load average "
        f"{ctx['load_start']}; {rounds} round(s); writing {os.path.relpath(out_md, ROOT)}")

    targets = Targets(args)
    ctx["threads"] = targets.threads
    try:
        log(f"redis :{targets.redis.port}, respscope :{targets.respscope.port} (analytics off: "
            f":{targets.respscope_off.port}), twemproxy :{targets.twemproxy.port}")
        prefill(targets, args.quick)
        n = calibrate(targets, seconds)
        ctx["n"] = n
        ctx["throughput"] = throughput(targets, n, rounds)
        ctx["lat_rb_n"] = 2000 if args.quick else 20000
        ctx["lat_ping_n"] = 2000 if args.quick else 20000
        ctx["latency"] = latency(targets, rounds, ctx["lat_rb_n"], ctx["lat_ping_n"])
        # The on/off difference is a few percent, inside a single round's noise on this
        # machine: more rounds than the other tests (each is two runs of about 1.5 s).
        ctx["analytics_rounds"] = args.analytics_rounds or (1 if args.quick else max(rounds, 7))
        ctx["analytics"] = analytics_onoff(targets, n, ctx["analytics_rounds"])

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        want = 1000 if args.quick else 10000
        # respscope holds two descriptors per client (client + upstream socket) and keeps about
        # 350 out of the clients' share (admin.max_connections and its own: common/descriptors.h).
        ctx["idle_count"] = min(want, (hard - 400) // 2)
        ctx["idle_note"] = ""
        if ctx["idle_count"] < want:
            ctx["idle_note"] = (f" {want:,} were asked for; this sandbox's hard RLIMIT_NOFILE is "
                                f"{hard:,} and cannot be raised, and respscope needs two descriptors "
                                f"per client, so every target is measured at {ctx['idle_count']:,}.")
        ctx["idle"] = idle_rss(targets, rounds, ctx["idle_count"])
        ctx["big_size"] = (32 if args.quick else 512) << 20
        ctx["big"] = big_value(targets, rounds, ctx["big_size"])
        targets.alive_or_die()
    finally:
        targets.stop()

    ctx["micro"] = {}
    if not args.no_micro:
        scanners = find_binary("bench_scanners", ["bench"])
        if not scanners:
            log("bench_scanners not built: building it in build-bench/ (nice, -j1)")
            build_micro()
            scanners = find_binary("bench_scanners", ["bench"])
        for path in (scanners, find_binary("recorder_bench", ["analytics/recorder"])):
            if path:
                ctx["micro"][os.path.relpath(path, ROOT)] = run_micro(path, args.quick, out_dir)
    ctx["load_end"] = loadavg()
    ctx["load_max"] = max(LOAD_SAMPLES) if LOAD_SAMPLES else None

    save_results(ctx, os.path.join(out_dir, "results.quick.json" if args.quick else "results.json"))
    md = report_md.render(ctx)
    kept = plan.carry_over(out_md, md)  # read before the file is truncated
    with open(out_md, "w") as f:
        f.write(kept)
    # The ratio tables on stdout; progress went to stderr.
    print(md.split("## How each number is measured")[0])
    log(f"wrote {os.path.relpath(out_md, ROOT)}")


if __name__ == "__main__":
    main()
