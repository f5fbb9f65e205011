"""deploy/prometheus/rules.yaml is valid for a real promtool and names only metrics respscope
declares (the metric names in DESIGN.md are a contract with these files)."""
import os
import re
import shutil
import subprocess
import unittest

import harness


class DeployRules(unittest.TestCase):
    def test_promtool_accepts_rules(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool not installed")
        path = os.path.join(harness.SOURCE_DIR, "deploy", "prometheus", "rules.yaml")
        out = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_rules_use_declared_metrics(self):
        readme = open(os.path.join(harness.SOURCE_DIR, "README.md")).read()
        declared = set(re.findall(r"`(respscope_[a-z_]+)`", readme))
        rules = open(os.path.join(harness.SOURCE_DIR, "deploy", "prometheus", "rules.yaml")).read()
        used = set(re.findall(r"(respscope_[a-z_]+?)(?:_bucket)?\b", rules))
        self.assertTrue(used)
        self.assertFalse(used - declared, f"undeclared metrics in rules: {used - declared}")


    def test_grafana_dashboard_uses_declared_metrics(self):
        readme = open(os.path.join(harness.SOURCE_DIR, "README.md")).read()
        declared = set(re.findall(r"`(respscope_[a-z_]+)`", readme))
        import json
        dash = json.load(open(os.path.join(harness.SOURCE_DIR, "deploy", "grafana",
                                           "respscope.json")))
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        self.assertGreater(len(exprs), 10)
        used = set()
        for e in exprs:
            used |= set(re.findall(r"(respscope_[a-z_]+?)(?:_bucket)?\b", e))
        self.assertFalse(used - declared, f"undeclared metrics in the dashboard: {used - declared}")
        promtool = shutil.which("promtool")
        if promtool:
            # Every query is valid PromQL: promtool parses the expressions of recording rules.
            import tempfile
            rules = "groups:\n  - name: dashboard\n    rules:\n" + "".join(
                "      - record: dashboard_query_%d\n        expr: %s\n"
                % (i, json.dumps(e.replace("$pod", ".*"))) for i, e in enumerate(exprs))
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                f.write(rules)
            out = subprocess.run([promtool, "check", "rules", f.name], capture_output=True,
                                 text=True, timeout=60)
            os.unlink(f.name)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

if __name__ == "__main__":
    unittest.main()
