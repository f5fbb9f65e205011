#!/usr/bin/env python3
"""The application -> respscope hop over a Unix socket against loopback TCP, side by side.

    python3 bench/unix_socket.py [--rounds 5] [--seconds 1.5] [--threads N]
                                 [--append-results bench/RESULTS.md]

One redis-server listening on a free loopback port and on a Unix socket, and one respscope
listening on a free loopback port and on a Unix socket (`--listen 127.0.0.1:P,unix:///...`),
forwarding to Redis over loopback TCP in both cases: the only difference between `respscope
tcp` and `respscope unix` is the client's hop, measured in the same process, interleaved (the
order of the four targets rotates every round). `direct tcp` and `direct unix` are Redis itself
over the same two transports: what the kernel alone saves, for scale.

Per round and target: redis-benchmark GET with 50 clients at pipeline 1 and 16 (requests/s,
respscope's CPU per command from /proc/<pid>/stat), redis-benchmark GET with one client
(p50 / p99), and a Python GET loop on one connection per target, alternating the targets
request by request (p50 / p99 of the round trip). Medians of the rounds, (min-max) of the
per-round values. Goals are reported, never asserted.

--append-results FILE replaces the "## Unix socket listener" section of FILE (or appends it);
bench/run.py regenerates the rest of bench/RESULTS.md and keeps this section. The measurements are saved to bench/out/unix_socket.json; --render that file writes
the section again without measuring (after a change to the text).
"""
import argparse
import datetime
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

KEYSPACE = 100000
SECTION = "## Unix socket listener"
TARGETS = ["direct tcp", "direct unix", "respscope tcp", "respscope unix"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Target:
    def __init__(self, name, pid, port=None, path=None):
        self.name, self.pid, self.port, self.path = name, pid, port, path

    def rb_address(self):
        return ["-s", self.path] if self.path else ["-h", "127.0.0.1", "-p", str(self.port)]

    def connect(self):
        if self.path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.path)
        else:
            s = socket.create_connection(("127.0.0.1", self.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(10)
        return s


def redis_benchmark(target, clients, pipeline, n, precision=False):
    argv = (["redis-benchmark"] + target.rb_address() +
            ["-c", str(clients), "-P", str(pipeline), "-n", str(n), "-r", str(KEYSPACE),
             "-t", "get", "--csv"] + (["--precision", "3"] if precision else []))
    cpu0 = harness.cpu_seconds(target.pid)
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    cpu = harness.cpu_seconds(target.pid) - cpu0
    rows = [line for line in r.stdout.splitlines() if line.startswith('"GET"')]
    if r.returncode != 0 or not rows:
        raise RuntimeError(f"redis-benchmark on {target.name} failed (rc {r.returncode}):\n"
                           f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
    cells = [c.strip('"') for c in rows[-1].split('","')]
    return {"rps": float(cells[1]), "p50_us": float(cells[4]) * 1000,
            "p99_us": float(cells[6]) * 1000, "cpu_us_per_cmd": cpu * 1e6 / n, "wall_s": wall}


def get_loop(targets, count):
    """GET bench:lat on one connection per target, the targets alternating request by request."""
    req = harness.resp_command("GET", "bench:lat")
    want = b"$3\r\nxxx\r\n"
    conns = {t.name: t.connect() for t in targets}
    samples = {t.name: [] for t in targets}
    try:
        for i in range(200 + count):
            for name, s in conns.items():
                t0 = time.perf_counter_ns()
                s.sendall(req)
                got = s.recv(64)
                while len(got) < len(want):
                    got += s.recv(64)
                dt = time.perf_counter_ns() - t0
                if got != want:
                    raise RuntimeError(f"unexpected reply from {name}: {got!r}")
                if i >= 200:  # the first 200 warm up
                    samples[name].append(dt)
    finally:
        for s in conns.values():
            s.close()
    out = {}
    for name, xs in samples.items():
        xs.sort()
        out[name] = {"p50_us": xs[len(xs) // 2] / 1000, "p99_us": xs[int(len(xs) * 0.99)] / 1000}
    return out


def med(rows, key):
    xs = [r[key] for r in rows]
    return statistics.median(xs), min(xs), max(xs)


def fmt_num(x, digits):
    return f"{x:,.{digits}f}"


def render(ctx):
    res, rounds = ctx["res"], ctx["rounds"]
    lines = [SECTION, ""]
    lines.append(
        f"Written by `{ctx['command']}` on {ctx['date']} (it replaces this section when run "
        "again; `bench/run.py` regenerates the rest of this file and keeps it). "
        f"{ctx['version']}, {ctx['threads']} IO threads, `upstream_pooling: "
        f"{ctx['pooling']}`, analytics on; {ctx['redis']}. One respscope listening on a "
        "loopback port and on a Unix socket at once, forwarding to Redis over loopback TCP "
        "either way, so `respscope tcp` and `respscope unix` differ only in the "
        "application's hop; `direct` is redis-server itself on a loopback port and on a Unix "
        f"socket. {rounds} rounds, the four targets in an order rotated every round; medians, "
        "(min–max) of the per-round values. 2 cores shared by redis-server, respscope and the "
        f"load generator; load average {ctx['load_start']} at start, {ctx['load_end']} at end.")
    lines.append("")

    def table(title, key, digits, unit, better):
        lines.append(f"{title} ({better}):")
        lines.append("")
        lines.append(f"| target | {unit} | unix / tcp |")
        lines.append("|---|---:|---:|")
        for t in TARGETS:
            m, lo, hi = med(res[t][key[0]], key[1])
            ratio = ""
            if t.endswith("unix"):
                tcp = t.replace("unix", "tcp")
                per = [u[key[1]] / c[key[1]] for u, c in zip(res[t][key[0]], res[tcp][key[0]])]
                ratio = (f"**{statistics.median(per):.2f}** ({min(per):.2f}–{max(per):.2f})")
            lines.append(f"| {t} | {fmt_num(m, digits)} ({fmt_num(lo, digits)}–"
                         f"{fmt_num(hi, digits)}) | {ratio} |")
        lines.append("")

    n = ctx["n"]
    table(f"GET, 50 clients, pipeline 1 (`redis-benchmark -c 50 -P 1 -n {n[1]:,} -t get`)",
          ("p1", "rps"), 0, "requests/s", "higher is better")
    table(f"GET, 50 clients, pipeline 16 (`-c 50 -P 16 -n {n[16]:,}`)",
          ("p16", "rps"), 0, "requests/s", "higher is better")
    lines.append("respscope's CPU per command (user + system, all threads; /proc/<pid>/stat "
                 "counts in 10 ms ticks), same runs (lower is better):")
    lines.append("")
    lines.append("| listener | pipeline 1, µs/cmd | unix / tcp | pipeline 16, µs/cmd | "
                 "unix / tcp |")
    lines.append("|---|---:|---:|---:|---:|")
    for t in ("respscope tcp", "respscope unix"):
        cells = []
        for p in ("p1", "p16"):
            m, lo, hi = med(res[t][p], "cpu_us_per_cmd")
            cells.append(f"{m:.2f} ({lo:.2f}–{hi:.2f})")
            if t.endswith("unix"):
                per = [u["cpu_us_per_cmd"] / c["cpu_us_per_cmd"]
                       for u, c in zip(res[t][p], res["respscope tcp"][p])]
                cells.append(f"**{statistics.median(per):.2f}**")
            else:
                cells.append("")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("")
    table(f"GET, one client, pipeline 1, p50 (`redis-benchmark -c 1 -P 1 -n {ctx['lat_n']:,} "
          "--precision 3`; its histogram reports this range in steps of 8 µs)",
          ("c1", "p50_us"), 1, "p50 µs", "lower is better")
    table(f"GET round trip, one Python client per target alternating request by request, "
          f"{ctx['loop_n']:,} per round, p50", ("loop", "p50_us"), 1, "p50 µs",
          "lower is better")
    table("same, p99", ("loop", "p99_us"), 1, "p99 µs", "lower is better")

    def r(key, field):
        per = [u[field] / c[field] for u, c in zip(res["respscope unix"][key],
                                                   res["respscope tcp"][key])]
        return statistics.median(per)
    added_tcp = med(res["respscope tcp"]["loop"], "p50_us")[0] - med(res["direct tcp"]["loop"],
                                                                      "p50_us")[0]
    added_unix = med(res["respscope unix"]["loop"], "p50_us")[0] - med(res["direct tcp"]["loop"],
                                                                        "p50_us")[0]
    lines.append(
        f"In short: over the Unix socket respscope serves {r('p1', 'rps'):.2f}× the requests/s "
        f"of loopback TCP at pipeline 1 and {r('p16', 'rps'):.2f}× at pipeline 16, at "
        f"{r('p1', 'cpu_us_per_cmd'):.2f}× / {r('p16', 'cpu_us_per_cmd'):.2f}× the CPU per "
        f"command, and a single client's round trip is {r('loop', 'p50_us'):.2f}× (p50). "
        f"Against Redis reached directly over TCP, respscope adds {added_tcp:.1f} µs (p50) "
        f"when the application reaches it over TCP and {added_unix:.1f} µs over the Unix "
        "socket.")
    lines.append("")
    checks = [("requests/s at pipeline 1 ≥ loopback TCP", r("p1", "rps") >= 1),
              ("requests/s at pipeline 16 ≥ loopback TCP", r("p16", "rps") >= 1),
              ("CPU per command at pipeline 1 ≤ loopback TCP", r("p1", "cpu_us_per_cmd") <= 1),
              ("one client's round trip (p50) ≤ loopback TCP", r("loop", "p50_us") <= 1)]
    lines.append("Expected of the Unix socket hop (reported, not asserted): " + "; ".join(
        f"{what}: **{'met' if ok else 'not met'}**" for what, ok in checks) + ".")
    lines.append("")
    return "\n".join(lines)


def write_section(path, text):
    with open(path) as f:
        doc = f.read()
    start = doc.find("\n" + SECTION)
    if start < 0:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        end = doc.find("\n## ", start + 1)
        rest = doc[end:] if end >= 0 else ""
        doc = doc[:start + 1] + text + rest
    with open(path, "w") as f:
        f.write(doc.rstrip("\n") + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5,
                    help="target length of one direct-TCP redis-benchmark run (default 1.5)")
    ap.add_argument("--threads", type=int, default=None,
                    help="respscope IO threads (default: respscope's own default)")
    ap.add_argument("--pooling", default="auto", choices=("auto", "dedicated"),
                    help="respscope's upstream_pooling (default auto, the default)")
    ap.add_argument("--loop", type=int, default=5000,
                    help="round trips per target per round in the Python loop (default 5000)")
    ap.add_argument("--append-results", metavar="FILE",
                    help="replace (or append) the Unix socket section of FILE")
    ap.add_argument("--render", metavar="JSON",
                    help="measure nothing: write the section again from a saved "
                         "bench/out/unix_socket.json")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            ctx = json.load(f)
        ctx["n"] = {int(k): v for k, v in ctx["n"].items()}
        output(ctx, args.append_results)
        return
    for tool in ("redis-server", "redis-benchmark"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install redis-server redis-tools)")
    binary = os.environ.get("RESPSCOPE_BIN", os.path.join(ROOT, "build", "respscope"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} not found: cmake --build build --target respscope")

    tmp = tempfile.mkdtemp(prefix="respscope-unix-bench-")
    copy = os.path.join(tmp, "respscope")  # a rebuild meanwhile must not change what runs
    shutil.copy2(binary, copy)
    redis_sock = os.path.join(tmp, "redis.sock")
    rs_sock = os.path.join(tmp, "respscope.sock")
    ctx = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python3 bench/unix_socket.py" +
                      "".join(" " + shlex.quote(a) for a in sys.argv[1:]),
           "rounds": args.rounds, "threads": args.threads, "pooling": args.pooling,
           "load_start": loadavg(), "loop_n": args.loop}
    ctx["version"] = subprocess.run([copy, "--version"], capture_output=True,
                                    text=True).stdout.strip()
    ctx["redis"] = subprocess.run(["redis-server", "--version"], capture_output=True,
                                  text=True).stdout.split(" sha=")[0].strip()
    redis = respscope = None
    try:
        redis = harness.Redis(extra=["--unixsocket", redis_sock, "--unixsocketperm", "700"])
        respscope = harness.Respscope(redis.url(), threads=args.threads, binary=copy,
                                      unix_socket=rs_sock,
                                      env={"RESPSCOPE_UPSTREAM_POOLING": args.pooling})
        ctx["threads"] = respscope.io_threads()  # what ran, when --threads left it to respscope
        deadline = time.time() + 10
        while not (os.path.exists(redis_sock) and os.path.exists(rs_sock)):
            if time.time() > deadline:
                raise RuntimeError("no Unix socket after 10 s:\n" + respscope.log()[-2000:])
            time.sleep(0.05)
        targets = {"direct tcp": Target("direct tcp", redis.pid, port=redis.port),
                   "direct unix": Target("direct unix", redis.pid, path=redis_sock),
                   "respscope tcp": Target("respscope tcp", respscope.pid, port=respscope.port),
                   "respscope unix": Target("respscope unix", respscope.pid, path=rs_sock)}
        log("pre-filling keys and bench:lat")
        subprocess.run(["redis-benchmark", "-p", str(redis.port), "-c", "10", "-P", "64", "-n",
                        str(3 * KEYSPACE), "-r", str(KEYSPACE), "-t", "set", "-q"],
                       capture_output=True, check=True, timeout=300)
        c = harness.RawClient(redis.port)
        c.send(harness.resp_command("SET", "bench:lat", "xxx"))
        c.read_frames(1)
        c.close()
        for t in TARGETS:  # warm every path once
            redis_benchmark(targets[t], 50, 16, 50000)
        ctx["n"] = {}
        for p in (1, 16):
            probe = redis_benchmark(targets["direct tcp"], 50, p, 20000 if p == 1 else 100000)
            per_s = probe["rps"]
            ctx["n"][p] = max(20000, int(per_s * args.seconds // 1000 * 1000))
        probe = redis_benchmark(targets["direct tcp"], 1, 1, 5000)
        ctx["lat_n"] = max(5000, int(probe["rps"] * args.seconds // 1000 * 1000))
        log(f"-n: pipeline 1 {ctx['n'][1]:,}, pipeline 16 {ctx['n'][16]:,}, one client "
            f"{ctx['lat_n']:,}")
        res = {t: {"p1": [], "p16": [], "c1": [], "loop": []} for t in TARGETS}
        for r in range(args.rounds):
            order = TARGETS[r % len(TARGETS):] + TARGETS[:r % len(TARGETS)]
            for key, clients, p, n in (("p1", 50, 1, ctx["n"][1]), ("p16", 50, 16, ctx["n"][16]),
                                       ("c1", 1, 1, ctx["lat_n"])):
                for t in order:
                    out = redis_benchmark(targets[t], clients, p, n, precision=(key == "c1"))
                    res[t][key].append(out)
                    log(f"round {r + 1} {key:<4} {t:<15} {out['rps']:>11,.0f} rps  p50 "
                        f"{out['p50_us']:7.1f} us  cpu {out['cpu_us_per_cmd']:5.2f} us/cmd")
            loop = get_loop([targets[t] for t in order], args.loop)
            for t in TARGETS:
                res[t]["loop"].append(loop[t])
            log(f"round {r + 1} loop  " + ", ".join(
                f"{t} p50 {loop[t]['p50_us']:.1f} p99 {loop[t]['p99_us']:.1f} us"
                for t in TARGETS))
            if not respscope.alive():
                raise RuntimeError("respscope exited:\n" + respscope.log()[-3000:])
        ctx["res"] = res
        ctx["load_end"] = loadavg()
    finally:
        if respscope:
            respscope.stop()
        if redis:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out_dir = os.path.join(HERE, "out")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "unix_socket.json"), "w") as f:
        json.dump(ctx, f, indent=1)
    output(ctx, args.append_results)


def output(ctx, append_results):
    text = render(ctx)
    print(text)
    if append_results:
        write_section(append_results, text)
        log(f"wrote the section to {append_results}")


if __name__ == "__main__":
    main()
