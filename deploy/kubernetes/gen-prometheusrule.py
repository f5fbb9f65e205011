#!/usr/bin/env python3
"""Writes deploy/kubernetes/prometheusrule.yaml, the Prometheus Operator form of
deploy/prometheus/rules.yaml, so the two never drift: the rule groups are copied line for line
(indented under `spec:`), nothing is retyped.

  deploy/kubernetes/gen-prometheusrule.py           rewrite prometheusrule.yaml
  deploy/kubernetes/gen-prometheusrule.py --check   exit 1 if it is not up to date
  deploy/kubernetes/gen-prometheusrule.py --stdout  print it

Uses nothing but the Python standard library.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "..", "prometheus", "rules.yaml")
OUT = os.path.join(HERE, "prometheusrule.yaml")

HEADER = """\
# GENERATED from deploy/prometheus/rules.yaml by deploy/kubernetes/gen-prometheusrule.py:
# edit rules.yaml and run the script (the test suite fails while the two differ).
# The Prometheus resource's ruleSelector must select this object's labels.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: respscope
  labels: {app.kubernetes.io/name: respscope}
spec:
"""


def render(rules_text):
    lines = rules_text.splitlines()
    # The file's leading comment describes the file, not the rules: the header replaces it.
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    if not lines or not lines[0].startswith("groups:"):
        raise SystemExit("gen-prometheusrule: %s must start with `groups:` after its comment"
                         % RULES)
    for n, line in enumerate(lines, 1):
        if "\t" in line:
            raise SystemExit("gen-prometheusrule: a tab on line %d of the rules" % n)
    # Uniform indentation keeps every YAML construct, block scalars included, as it was.
    return HEADER + "".join(("  " + l if l.strip() else "") + "\n" for l in lines)


def main(argv):
    with open(RULES) as f:
        text = render(f.read())
    if argv[1:] == ["--stdout"]:
        sys.stdout.write(text)
        return 0
    if argv[1:] == ["--check"]:
        current = open(OUT).read() if os.path.exists(OUT) else ""
        if current != text:
            print("gen-prometheusrule: %s is out of date; run %s" % (OUT, argv[0]))
            return 1
        return 0
    if argv[1:]:
        print(__doc__.strip())
        return 2
    with open(OUT, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
