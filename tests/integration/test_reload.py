"""SIGHUP reload of the live rules (key patterns, sanitisation) from the configuration file.

1. start with key_patterns.rules: [{match: "user:*", name: "users-a"}]; traffic -> "users-a";
2. rewrite the file (name "users-b", and acct:* added to the sensitive keys), SIGHUP, while a
   client stays connected across the reload: its connection still works (same upstream
   connection: CLIENT ID unchanged), its traffic and a new client's count as "users-b", the
   old series "users-a" keeps its value and stops moving, acct:<x> is hashed from then on;
3. write invalid files (a bad regex `re:([`, an unknown key, broken YAML), SIGHUP each: the
   log has the rejection with its reason, the old rules are kept (traffic still "users-b"),
   respscope keeps serving.
"""
import json
import re
import signal
import time
import unittest

import harness
from prom import parse_metrics
import redis





def config(name, sensitive=("session:*",)):
    return ("key_patterns:\n"
            "  rules:\n"
            "    - {match: \"user:*\", name: \"%s\"}\n"
            "sanitization:\n"
            "  sensitive_key_patterns: [%s]\n" % (name, ", ".join('"%s"' % s for s in sensitive)))


class Reload(unittest.TestCase):
    def setUp(self):
        self.redis = harness.Redis()
        self.addCleanup(self.redis.stop)
        self.rs = harness.Respscope(self.redis.url(), config_text=config("users-a"))
        self.addCleanup(self.rs.stop)

    def reads(self, pattern):
        status, body = self.rs.http("/metrics")
        self.assertEqual(status, 200)
        m = parse_metrics(body)
        return m.get(("respscope_pattern_commands_total",
                      (("kind", "read"), ("pattern", pattern))), 0.0)

    def wait_reads(self, pattern, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.reads(pattern) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.reads(pattern)

    def log_count(self, needle):
        with open(self.rs.log_path, encoding="utf-8", errors="replace") as f:
            return f.read().count(needle)

    def hup(self, needle):
        """SIGHUP, then wait (bounded) for one more log line containing needle."""
        before = self.log_count(needle)
        self.rs.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.log_count(needle) <= before:
            self.assertLess(time.monotonic(), deadline, "no %r in the log after SIGHUP" % needle)
            time.sleep(0.02)
        with open(self.rs.log_path, encoding="utf-8", errors="replace") as f:
            return [l for l in f.read().splitlines() if needle in l][-1]

    def write_config(self, text):
        with open(self.rs.config_path, "w") as f:
            f.write(text)

    def test_reload(self):
        keep = redis.Redis(port=self.rs.port, socket_timeout=10, single_connection_client=True)
        self.addCleanup(keep.close)
        keep.set("user:1", "x")
        for _ in range(5):
            self.assertEqual(keep.get("user:1"), b"x")
        self.assertEqual(self.wait_reads("users-a", 5), 5)
        self.assertEqual(self.reads("users-b"), 0)
        conn_id = keep.client_id()

        # A valid new file: users-b, and acct:* sensitive.
        self.write_config(config("users-b", ("session:*", "acct:*")))
        line = self.hup("SIGHUP: reloaded")
        print("reload:", line)
        self.assertEqual(keep.client_id(), conn_id, "the same connection across the reload")
        for _ in range(7):
            self.assertEqual(keep.get("user:1"), b"x")
        other = redis.Redis(port=self.rs.port, socket_timeout=10)
        self.addCleanup(other.close)
        for _ in range(3):
            self.assertEqual(other.get("user:1"), b"x")
        self.assertEqual(self.wait_reads("users-b", 10), 10)
        self.assertEqual(self.reads("users-a"), 5, "the old series keeps its value")
        secret = "acct:4f1c2b9e7d"
        keep.set(secret, "v")
        time.sleep(0.25)  # the API re-merges snapshots older than 200 ms
        status, body = self.rs.http("/api/v1/hotkeys")
        keys = [k["key"] for k in json.loads(body)["keys"]]
        print("hot keys after reload:", keys)
        self.assertTrue(any(re.fullmatch(r"acct:[0-9a-f]{16}", k) for k in keys), keys)
        self.assertNotIn(secret, body)

        # Invalid files: rejected with the reason, the old rules kept.
        invalid = [
            ("bad regex", config("users-c").replace('"user:*"', '"re:(["'), r"regex|re:\(\["),
            ("unknown key", config("users-c") + "bogus_key: 1\n", r"bogus_key"),
            ("broken YAML", config("users-c") + "key_patterns: [\n", r"line|yaml|YAML"),
        ]
        reads = 10
        for what, text, reason in invalid:
            self.write_config(text)
            line = self.hup("rejected")
            print("%s: %s" % (what, line))
            self.assertIn(self.rs.config_path, line)
            self.assertIn("previous configuration kept", line)
            self.assertRegex(line, reason)
            self.assertTrue(self.rs.alive())
            for _ in range(4):
                self.assertEqual(keep.get("user:1"), b"x")
            reads += 4
            self.assertEqual(self.wait_reads("users-b", reads), reads, what)
            self.assertEqual(self.reads("users-c"), 0, what)
            self.assertEqual(self.reads("users-a"), 5, what)
        self.assertEqual(keep.client_id(), conn_id)
        self.assertEqual(self.rs.stop(), 0)
        self.assertEqual(self.non_json_log_lines(), [])

    def non_json_log_lines(self):
        """Log lines that are not one JSON object each (logging.format: json by default when
        stderr is not a terminal)."""
        bad = []
        with open(self.rs.log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    json.loads(line)
                except ValueError:
                    bad.append(line)
        return bad

    # A rejection reason that quotes a config value containing '"' still makes one valid
    # JSON log line (logging.cc escapes every message).
    def test_rejection_log_line_is_json(self):
        self.write_config("key_patterns:\n  rules:\n    - {match: 're:\"([', name: x}\n")
        line = self.hup("rejected")
        print("rejection:", line)
        self.assertTrue(self.rs.alive())
        self.rs.stop()
        self.assertEqual(self.non_json_log_lines(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
