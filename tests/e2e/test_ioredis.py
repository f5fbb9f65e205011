"""ioredis (the version pinned in tests/e2e/node/package-lock.json) through respscope: auto-
pipelining, pipelines, MULTI/EXEC/WATCH, pub/sub, blocking pops, Lua, binary and large values,
in RESP2 and RESP3 (tests/e2e/ioredis_client.js). The same script runs against Redis directly
first (it validates the script), then through respscope; both must pass every check.
"""
import json
import os
import shutil
import subprocess
import sys
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
SCRIPT = os.path.join(HERE, "ioredis_client.js")


def ensure_node_modules():
    if os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ioredis")):
        return
    subprocess.run(["npm", "ci", "--prefix", NODE_DIR, "--no-audit", "--no-fund"], check=True,
                   timeout=300, stdout=subprocess.DEVNULL)


def run_script(port):
    p = subprocess.run(["node", SCRIPT, str(port)], capture_output=True, text=True, timeout=150)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise AssertionError("no result from ioredis_client.js (rc %d):\n%s\n%s" % (
            p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    result = json.loads(lines[-1])
    result["rc"] = p.returncode
    return result


@unittest.skipUnless(shutil.which("node") and shutil.which("npm"), "node and npm are required")
class IORedis(unittest.TestCase):
    def test_ioredis_through_respscope(self):
        ensure_node_modules()
        with harness.Redis() as direct:
            want = run_script(direct.port)
        self.assertTrue(want["ok"], "the script fails against plain Redis: %r" % want["checks"])
        with harness.Redis() as redis, harness.Respscope(redis.url()) as rs:
            got = run_script(rs.port)
            failed = {k: v for k, v in got["checks"].items() if v is not True}
            print("ioredis through respscope: %d checks, %d failed %s" % (
                len(got["checks"]), len(failed), failed or ""))
            self.assertEqual(failed, {})
            self.assertEqual(sorted(got["checks"]), sorted(want["checks"]))
            self.assertEqual(got["rc"], 0)
            self.assertTrue(rs.alive())


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
