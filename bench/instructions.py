#!/usr/bin/env python3
"""User-space instructions per command of respscope, counted by callgrind.

    python3 bench/instructions.py [--pipeline 16] [--test get] [--binary build/respscope]

Starts redis-server on a free port and pre-fills the keys, then runs respscope (one IO thread)
under `valgrind --tool=callgrind` twice, with `redis-benchmark -c 50 -P N -t TEST` sending a
small and a larger number of requests; the difference of the two instruction totals divided by
the difference of the request counts removes start-up and shutdown. Deterministic code, but
not a deterministic figure: how many commands arrive per read depends on timing under
valgrind, so repeated runs spread by several percent. Compare variants in one sitting, more
than once.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

SMALL, LARGE = 50_000, 150_000


def total_instructions(binary, redis, pipeline, test, requests, out_dir):
    port, admin = harness.free_port(), harness.free_port()
    out = os.path.join(out_dir, f"callgrind-{requests}.out")
    proc = harness.Process(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
                            "--listen", f"127.0.0.1:{port}", "--upstream", redis.url(),
                            "--admin", f"127.0.0.1:{admin}", "--threads", "1"],
                           "respscope-callgrind")
    try:
        harness.wait_port(port, timeout=60)
        subprocess.run(["redis-benchmark", "-p", str(port), "-c", "50", "-P", str(pipeline),
                        "-n", str(requests), "-r", "100000", "-t", test, "-q"],
                       capture_output=True, check=True, timeout=600)
    finally:
        proc.stop(signal.SIGTERM, timeout=60)
    text = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True,
                          check=True).stdout
    m = re.search(r"([\d,]+) \([\d.]+%\)\s+PROGRAM TOTALS", text) or \
        re.search(r"([\d,]+)\s+PROGRAM TOTALS", text)
    if not m:
        sys.exit("callgrind_annotate printed no PROGRAM TOTALS")
    return int(m.group(1).replace(",", ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--test", default="get")
    ap.add_argument("--binary", default=harness.RESPSCOPE_BIN)
    args = ap.parse_args()
    redis = harness.Redis()
    try:
        subprocess.run(["redis-benchmark", "-p", str(redis.port), "-c", "10", "-P", "64", "-n",
                        "300000", "-r", "100000", "-t", "set", "-q"], capture_output=True,
                       check=True, timeout=300)
        with tempfile.TemporaryDirectory(prefix="respscope-callgrind-") as tmp:
            small = total_instructions(args.binary, redis, args.pipeline, args.test, SMALL, tmp)
            large = total_instructions(args.binary, redis, args.pipeline, args.test, LARGE, tmp)
    finally:
        redis.stop()
    print(f"{os.path.relpath(args.binary, ROOT)} {args.test.upper()} -c 50 -P {args.pipeline}: "
          f"{(large - small) / (LARGE - SMALL):,.0f} instructions per command")


if __name__ == "__main__":
    main()
