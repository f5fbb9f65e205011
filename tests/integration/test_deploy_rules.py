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


if __name__ == "__main__":
    unittest.main()
