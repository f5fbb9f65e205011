#!/usr/bin/env python3
"""Quick A/B of respscope variants under redis-benchmark, for optimisation work.

    python3 bench/ab.py [--test get] [--pipeline 16] [--rounds 5] [-n 300000] \
        [--variant NAME=BINARY[,ENV=VALUE...]]... [--config NAME=FILE]... [--direct] [--twemproxy]

Starts one redis-server and one respscope per variant on free loopback ports (default variants:
`on` = build/respscope, `off` = build/respscope with RESPSCOPE_ANALYTICS=off), pre-fills the
keys, then runs `redis-benchmark -c 50 -P N -r 100000 -t TEST` against every variant in turn,
rotating the order each round (`--config NAME=FILE` starts variant NAME with that YAML file,
e.g. bench/insights-off.yaml), and prints the median requests/s, the ratio to the first variant,
the proxy's CPU per command, Redis's own CPU per command behind it (`redis`: what the proxy's
way of talking to Redis costs Redis; for `direct` both columns are Redis's) and how many
commands each of Redis's socket reads carried (`cmds/read`, from INFO stats), the load
generator's own CPU per command and how many cores the three processes kept busy together
(`cores busy`, their CPU over the run's wall time: below the machine's core count, the run was
bound by hand-offs between the processes, not by CPU). This is the tool
for one change at a time; the full, recorded comparison with twemproxy is bench/run.py.

--tls: redis-server also listens with TLS (certificates made for the run, tests/lib/tls_certs.py)
and every respscope variant reaches it over rediss:// (clients still speak plain TCP to
respscope); with --direct, `direct-tls` is redis-benchmark --tls straight to Redis's TLS port,
next to `direct` (plain). A variant with `upstream=plain` among its settings
(`--variant plain=build/respscope,upstream=plain`) keeps a plain upstream in the same run.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402
from run import Twemproxy  # noqa: E402


def parse_variant(text):
    name, _, rest = text.partition("=")
    parts = rest.split(",")
    env = dict(p.split("=", 1) for p in parts[1:])  # upstream=plain is ours, not the environment
    return name, parts[0], env


def redis_reads(redis):
    """Redis's (commands processed, socket reads) so far: their ratio over a run is how many
    commands each of Redis's reads carried (1 when every client sends one command and waits;
    what a proxy that multiplexes clients saves Redis)."""
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "info", "stats"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    stats = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return int(stats["total_commands_processed"]), int(stats["total_reads_processed"])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", default="get")
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=300000)
    ap.add_argument("--threads", type=int, default=None,
                    help="respscope IO threads (default: respscope's own default)")
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--config", action="append", default=[], metavar="NAME=FILE",
                    help="start variant NAME with --config FILE")
    ap.add_argument("--direct", action="store_true", help="also measure redis-server directly")
    ap.add_argument("--twemproxy", action="store_true", help="also measure nutcracker")
    ap.add_argument("--tls", action="store_true",
                    help="respscope's upstream over TLS; with --direct also direct-tls")
    args = ap.parse_args()
    binary = os.environ.get("RESPSCOPE_BIN", os.path.join(ROOT, "build", "respscope"))
    variants = [parse_variant(v) for v in args.variant] or [
        ("on", binary, {}), ("off", binary, {"RESPSCOPE_ANALYTICS": "off"})]
    configs = {}
    for c in args.config:
        name, _, path = c.partition("=")
        if name not in {v[0] for v in variants} or not path:
            ap.error(f"--config {c}: no variant named {name!r}, or no file")
        with open(path) as f:
            configs[name] = f.read()
    tmp = tempfile.mkdtemp(prefix="respscope-ab-")
    redis = harness.Redis(tls=args.tls)
    procs = []
    tls_args = {}  # target -> extra redis-benchmark arguments
    try:
        ports = {}
        pids = {}
        if args.direct:
            ports["direct"], pids["direct"] = redis.port, redis.pid
            if args.tls:
                ports["direct-tls"], pids["direct-tls"] = redis.tls_port, redis.pid
                tls_args["direct-tls"] = ["--tls", "--cacert",
                                          harness._tls_material()[0].ca.cert]
        for name, path, env in variants:
            copy = os.path.join(tmp, name)  # a rebuild meanwhile must not change what runs
            shutil.copy(path, copy)
            env = dict(env)
            plain = env.pop("upstream", "") == "plain"
            url = f"redis://127.0.0.1:{redis.port}" if plain else redis.url()
            p = harness.Respscope(url, config_text=configs.get(name), threads=args.threads,
                                  env=env, binary=copy)
            procs.append(p)
            ports[name], pids[name] = p.port, p.pid
            print(f"{name}: {p.io_threads()} IO thread(s)", flush=True)
        if args.twemproxy:
            t = Twemproxy(redis.port)
            procs.append(t)
            ports["twemproxy"], pids["twemproxy"] = t.port, t.pid
        subprocess.run(["redis-benchmark", "-p", str(redis.port), "-c", "10", "-P", "64", "-n",
                        "300000", "-r", "100000", "-t", "set", "-q"], capture_output=True,
                       check=True, timeout=300)
        names = list(ports)
        res = {k: [] for k in names}
        cpu = {k: [] for k in names}
        user = {k: [] for k in names}
        rcpu = {k: [] for k in names}
        batch = {k: [] for k in names}
        gen = {k: [] for k in names}   # the load generator's CPU per command
        busy = {k: [] for k in names}  # cores kept busy by generator + proxy + Redis
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for k in order:
                u0, s0 = harness.cpu_user_sys(pids[k])
                r0 = sum(harness.cpu_user_sys(redis.pid))
                c0, reads0 = redis_reads(redis)
                g0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.monotonic()
                out = subprocess.run(
                    ["redis-benchmark", "-p", str(ports[k]), "-c", str(args.clients), "-P",
                     str(args.pipeline), "-n", str(args.n), "-r", "100000", "-t", args.test,
                     "--csv"] + tls_args.get(k, []),
                    capture_output=True, text=True, timeout=600, check=True).stdout
                wall = time.monotonic() - t0
                g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                u1, s1 = harness.cpu_user_sys(pids[k])
                rcpu[k].append((sum(harness.cpu_user_sys(redis.pid)) - r0) * 1e6 / args.n)
                c1, reads1 = redis_reads(redis)
                batch[k].append((c1 - c0) / max(reads1 - reads0, 1))
                rps = float(out.strip().splitlines()[-1].split(",")[1].strip('"'))
                res[k].append(rps)
                cpu[k].append((u1 - u0 + s1 - s0) * 1e6 / args.n)
                user[k].append((u1 - u0) * 1e6 / args.n)
                gen[k].append((g1.ru_utime + g1.ru_stime - g0.ru_utime - g0.ru_stime) * 1e6 /
                              args.n)
                proxy = 0 if pids[k] == redis.pid else cpu[k][-1]
                busy[k].append((gen[k][-1] + proxy + rcpu[k][-1]) * args.n / 1e6 / wall)
                print(f"round {r + 1} {k:<10} {rps:>11,.0f} rps {cpu[k][-1]:6.2f} us/cmd",
                      file=sys.stderr)
        load = open("/proc/loadavg").read().split()[:3]
        print(f"\n{args.test.upper()} -c {args.clients} -P {args.pipeline} -n {args.n}, "
              f"{args.rounds} rounds, load {' '.join(load)}")
        base = statistics.median(res[names[0]])
        for k in names:
            m = statistics.median(res[k])
            print(f"{k:<10} {m:>11,.0f} rps  {m / base:5.3f} of {names[0]}  "
                  f"cpu {statistics.median(cpu[k]):5.2f} us/cmd "
                  f"(user {statistics.median(user[k]):4.2f})  "
                  f"redis {statistics.median(rcpu[k]):5.2f} us/cmd "
                  f"{statistics.median(batch[k]):5.1f} cmds/read  "
                  f"generator {statistics.median(gen[k]):5.2f} us/cmd  "
                  f"cores busy {statistics.median(busy[k]):4.2f}  "
                  f"(min {min(res[k]):,.0f} max {max(res[k]):,.0f})")
    finally:
        for p in procs:
            p.stop()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
