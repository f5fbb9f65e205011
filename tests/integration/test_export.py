"""Exports and the HTML report: every format parses, agrees with the API, carries no raw
sensitive key, and sits behind the admin token like the rest of the API."""
import csv
import io
import json
import unittest

import harness
import redis


class Export(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = harness.Redis()
        cls.rs = harness.Respscope(cls.redis.url(), env={"RESPSCOPE_HASH_KEY": "k"})
        r = redis.Redis(port=cls.rs.port)
        for i in range(20):
            r.set(f"user:{i}:profile", "x")
        for i in range(30):
            r.get(f"user:{i}:profile")          # 20 hits, 10 misses
        r.set("session:supersecretvalue42", "v")  # sensitive: never shown as written
        r.close()

    @classmethod
    def tearDownClass(cls):
        cls.rs.stop()
        cls.redis.stop()

    def get(self, path):
        status, body = self.rs.http(path)
        self.assertEqual(status, 200, body)
        self.assertNotIn("supersecretvalue42", body)
        return body

    def test_json(self):
        doc = json.loads(self.get("/api/v1/export?format=json"))
        self.assertEqual(doc["overview"]["totals"]["hits"], 20)
        self.assertEqual(doc["overview"]["totals"]["misses"], 10)
        calls = {c["command"]: c["calls"] for c in doc["commands"]}
        self.assertEqual(calls["get"], 30)
        self.assertEqual(calls["set"], 21)
        patterns = {p["pattern"] for p in doc["patterns"]}
        self.assertIn("user:{id}:profile", patterns)
        self.assertIn("session:*", patterns)

    def test_ndjson(self):
        lines = self.get("/api/v1/export?format=ndjson").strip().split("\n")
        rows = [json.loads(line) for line in lines]
        types = [r["type"] for r in rows]
        self.assertEqual(types[0], "overview")
        self.assertEqual(types.count("command"), len(
            json.loads(self.get("/api/v1/commands"))["commands"]))
        pat = [r for r in rows if r["type"] == "pattern" and r["pattern"] == "user:{id}:profile"]
        self.assertEqual(pat[0]["hits"], 20)

    def test_csv(self):
        rows = list(csv.DictReader(io.StringIO(self.get("/api/v1/export?format=csv"))))
        by = {(r["section"], r["name"]): r for r in rows}
        self.assertEqual(by[("command", "get")]["commands"], "30")
        p = by[("pattern", "user:{id}:profile")]
        self.assertEqual((p["hits"], p["misses"]), ("20", "10"))
        self.assertAlmostEqual(float(p["hit_rate"]), 20 / 30, places=4)

    def test_report(self):
        html = self.get("/api/v1/report?format=html")
        self.assertTrue(html.startswith("<!doctype html>"))
        self.assertIn("user:{id}:profile", html)
        self.assertIn("<code>get</code>", html)

    def test_bad_format(self):
        self.assertEqual(self.rs.http("/api/v1/export?format=xml")[0], 400)
        self.assertEqual(self.rs.http("/api/v1/report?format=pdf")[0], 400)


class ExportBehindToken(unittest.TestCase):
    def test_token_required(self):
        with harness.Redis() as rd, harness.Respscope(
                rd.url(), env={"RESPSCOPE_ADMIN_TOKEN": "t"}) as rs:
            self.assertEqual(rs.http("/api/v1/export?format=csv")[0], 401)
            self.assertEqual(rs.http("/api/v1/report?format=html")[0], 401)
            self.assertEqual(rs.http("/api/v1/export?format=csv", token="t")[0], 200)


if __name__ == "__main__":
    unittest.main()
