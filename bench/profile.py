#!/usr/bin/env python3
"""Profiles respscope under redis-benchmark with perf (callgrind when perf cannot sample).

    python3 bench/profile.py [--pipeline 16] [--test get] [--seconds 10] [--top 25]

Starts redis-server and respscope (build/respscope or $RESPSCOPE_BIN) on free ports, pre-fills
the keys, then samples respscope with `perf record -e cpu-clock` (a software clock: this VM has
no hardware counters) for the length of one `redis-benchmark -c 50 -P N -t TEST` run, and
prints the functions with the most self time, kernel included. Output and perf.data go to
bench/out/ (not committed).
"""
import argparse
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--test", default="get")
    ap.add_argument("--requests", type=int, default=3_000_000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--threads", type=int, default=None,
                    help="respscope IO threads (default: respscope's own default)")
    ap.add_argument("--callgrind", action="store_true", help="use valgrind --tool=callgrind")
    ap.add_argument("--callgraph", action="store_true",
                    help="record DWARF call graphs (the Release build has no frame pointers) and "
                         "report callers; slower, use fewer --requests")
    args = ap.parse_args()
    out_dir = os.path.join(HERE, "out")
    os.makedirs(out_dir, exist_ok=True)
    tag = f"{args.test}-p{args.pipeline}"

    redis = harness.Redis()
    subprocess.run(["redis-benchmark", "-p", str(redis.port), "-c", "10", "-P", "64", "-n",
                    "300000", "-r", "100000", "-t", "set", "-q"], capture_output=True, check=True)
    if args.callgrind:
        # respscope runs under valgrind: start it by hand with the harness's argv shape.
        port, admin = harness.free_port(), harness.free_port()
        cg_out = os.path.join(out_dir, f"callgrind-{tag}.out")
        proc = harness.Process(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg_out}",
                                harness.RESPSCOPE_BIN, "--listen", f"127.0.0.1:{port}",
                                "--upstream", redis.url(), "--admin", f"127.0.0.1:{admin}"] +
                               (["--threads", str(args.threads)] if args.threads else []),
                               "respscope-callgrind")
        harness.wait_port(port, timeout=60)
        n = min(args.requests, 200_000)
        subprocess.run(["redis-benchmark", "-p", str(port), "-c", "50", "-P", str(args.pipeline),
                        "-n", str(n), "-r", "100000", "-t", args.test, "-q"], check=True)
        proc.stop(signal.SIGTERM, timeout=60)
        report = subprocess.run(["callgrind_annotate", cg_out], capture_output=True, text=True)
        text = report.stdout
    else:
        rs = harness.Respscope(redis.url(), threads=args.threads)
        data = os.path.join(out_dir, f"perf-{tag}.data")
        cg = ["--call-graph", "dwarf,16384"] if args.callgraph else []
        perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F",
                                 "999" if args.callgraph else "2000"] + cg +
                                ["-p", str(rs.pid), "-o", data], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        t0 = time.time()
        bench = subprocess.run(["redis-benchmark", "-p", str(rs.port), "-c", "50", "-P",
                                str(args.pipeline), "-n", str(args.requests), "-r", "100000",
                                "-t", args.test, "--csv"], capture_output=True, text=True,
                               check=True)
        secs = time.time() - t0
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
        rs.stop()
        report = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                 "--sort", "dso,symbol", "--percent-limit", "0.3"] +
                                (["-G"] if args.callgraph else ["-g", "none"]),
                                capture_output=True, text=True)
        by_dso = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                 "--sort", "dso", "-g", "none"], capture_output=True, text=True)
        text = (f"# redis-benchmark -c 50 -P {args.pipeline} -t {args.test} -n {args.requests}: "
                f"{secs:.1f}s\n# {bench.stdout.strip().splitlines()[-1]}\n" + report.stdout +
                "\n# by DSO\n" + by_dso.stdout)
    redis.stop()
    path = os.path.join(out_dir, f"profile-{tag}.txt")
    with open(path, "w") as f:
        f.write(text)
    lines = [l for l in text.splitlines() if l.strip() and (not l.startswith("#") or
                                                            l.startswith("# redis-bench"))]
    print("\n".join(lines[:args.top + 2]))
    print(f"\nfull report: {os.path.relpath(path, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
