"""deploy/prometheus/rules.yaml is valid for a real promtool and names only metrics respscope
declares (the metric names in DESIGN.md are a contract with these files), and its unit tests
(deploy/prometheus/rules.test.yaml) pass under `promtool test rules`: every alert has a test
that expects it firing and one that expects it quiet, and the tests bind: an alert whose
expression never holds, or (for alerts with a `for`) whose `for` is removed, fails them."""
import os
import re
import shutil
import subprocess
import unittest

import harness


PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROM_DIR = os.path.join(harness.SOURCE_DIR, "deploy", "prometheus")


def promtool_test(rules_dir):
    """promtool test rules on rules.test.yaml in rules_dir: (exit code, output)."""
    out = subprocess.run([PROMTOOL, "test", "rules", "rules.test.yaml"], cwd=rules_dir,
                         capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


class DeployRules(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(PROMTOOL, os.X_OK), "promtool is not installed")

    def test_promtool_accepts_rules(self):
        promtool = PROMTOOL
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

    def test_promtool_unit_tests_pass(self):
        rc, out = promtool_test(PROM_DIR)
        print(out.strip())
        self.assertEqual(rc, 0, out)

    def test_every_alert_has_a_firing_and_a_quiet_case(self):
        import yaml
        with open(os.path.join(PROM_DIR, "rules.yaml")) as f:
            rules = yaml.safe_load(f)
        with open(os.path.join(PROM_DIR, "rules.test.yaml")) as f:
            tests = yaml.safe_load(f)
        alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
        cases = [c for t in tests["tests"] for c in t.get("alert_rule_test", [])]
        pending = " ".join(c["expr"] + str(c["exp_samples"]) for t in tests["tests"]
                           for c in t.get("promql_expr_test", []))
        with_for = [r["alert"] for g in rules["groups"] for r in g["rules"] if "for" in r]
        self.assertGreaterEqual(len(alerts), 6)
        for a in alerts:
            self.assertTrue([c for c in cases if c["alertname"] == a and c["exp_alerts"]],
                            a + " is never expected to fire")
            self.assertTrue([c for c in cases if c["alertname"] == a and not c["exp_alerts"]],
                            a + " is never expected to stay quiet")
        for a in with_for:
            self.assertIn('alertname="%s",alertstate="pending"' % a, pending,
                          a + ": no test that it is pending before its `for` passes")

    def test_unit_tests_catch_a_broken_rule(self):
        import tempfile
        import yaml
        with open(os.path.join(PROM_DIR, "rules.yaml")) as f:
            rules = yaml.safe_load(f)
        with open(os.path.join(PROM_DIR, "rules.test.yaml")) as f:
            test_text = f.read()
        mutants = []
        for gi, g in enumerate(rules["groups"]):
            for ri, r in enumerate(g["rules"]):
                if "alert" not in r:
                    continue
                never = yaml.safe_load(yaml.safe_dump(rules))
                never["groups"][gi]["rules"][ri]["expr"] = "vector(1) < 0"
                mutants.append((r["alert"] + " never true", never))
                if "for" in r:
                    no_for = yaml.safe_load(yaml.safe_dump(rules))
                    del no_for["groups"][gi]["rules"][ri]["for"]
                    mutants.append((r["alert"] + " without for", no_for))
        for name, mutant in mutants:
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "rules.yaml"), "w") as f:
                    yaml.safe_dump(mutant, f)
                with open(os.path.join(d, "rules.test.yaml"), "w") as f:
                    f.write(test_text)
                rc, out = promtool_test(d)
            print("%-45s promtool test rules exit %d" % (name, rc))
            self.assertNotEqual(rc, 0, name + ": the unit tests did not notice\n" + out)


if __name__ == "__main__":
    unittest.main()
