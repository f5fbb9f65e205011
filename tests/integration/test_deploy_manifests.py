"""deploy/kubernetes/ holds what a user applies as it is:

- every object in every manifest is valid for its schema (Kubernetes core and apps, Prometheus
  Operator CRDs), checked by the npm packages kubernetes-models and
  @kubernetes-models/prometheus-operator (tests/e2e/k8s_validate.mjs), with no field the schema
  does not know (a misspelt field would otherwise be ignored by the API server); the checker
  itself is shown to catch a wrong type, a bad duration and a misspelt field;
- prometheusrule.yaml is exactly what gen-prometheusrule.py makes of
  deploy/prometheus/rules.yaml, and holds the same rule groups;
- the pieces fit: the native sidecar is an init container with restartPolicy Always and a
  startupProbe on /readyz, the application's REDIS_URL points at the port respscope listens
  on, probes and the PodMonitor name a port respscope declares and select the pods' labels,
  every Secret key referenced exists in secret.example.yaml, the security context is non-root
  with a read-only root filesystem and no capabilities, resources are set, and the grace
  period covers drain_timeout (the classic pod holds idle connections for all of it);
- the respscope.yaml each ConfigMap carries passes `respscope --check-config`.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import yaml

import harness

KUBE_DIR = os.path.join(harness.SOURCE_DIR, "deploy", "kubernetes")
NODE_DIR = os.path.join(harness.SOURCE_DIR, "tests", "e2e", "node")
VALIDATOR = os.path.join(harness.SOURCE_DIR, "tests", "e2e", "k8s_validate.mjs")
PACKAGES = ("kubernetes-models", "@kubernetes-models/prometheus-operator")


def ensure_node_modules():
    """npm ci in tests/e2e/node when a package of the lock file is missing. No node or npm is
    a failure: the schemas are the input of this test."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node:
        raise AssertionError("node is not installed (deploy/install-deps.sh --test)")
    modules = os.path.join(NODE_DIR, "node_modules")
    if all(os.path.isfile(os.path.join(modules, p, "package.json")) for p in PACKAGES):
        return
    if not npm:
        raise AssertionError("npm is not installed and tests/e2e/node/node_modules is missing")
    out = subprocess.run([npm, "ci", "--prefix", NODE_DIR, "--no-audit", "--no-fund"],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise AssertionError("npm ci failed:\n" + out.stdout + out.stderr)


def validate(items):
    """[(name, doc)] -> {name: result} from k8s_validate.mjs."""
    out = subprocess.run(["node", VALIDATOR],
                         input=json.dumps([{"name": n, "doc": d} for n, d in items]),
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError("k8s_validate.mjs failed:\n" + out.stderr)
    return {r["name"]: r for r in json.loads(out.stdout)}


def manifests():
    """{file name: [documents]} of every deploy/kubernetes/*.yaml."""
    docs = {}
    for name in sorted(os.listdir(KUBE_DIR)):
        if name.endswith(".yaml"):
            with open(os.path.join(KUBE_DIR, name)) as f:
                docs[name] = [d for d in yaml.safe_load_all(f) if d is not None]
    return docs


def find(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, "%d objects of kind %s" % (len(found), kind)
    return found[0]


def seconds(duration):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", duration)
    assert m, duration
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


class DeployManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_node_modules()
        cls.docs = manifests()

    def test_every_object_matches_its_schema(self):
        items = [("%s#%d" % (f, i), d) for f, ds in self.docs.items() for i, d in enumerate(ds)]
        results = validate(items)
        kinds = sorted({"%s %s" % (d["apiVersion"], d["kind"]) for _, d in items})
        print("validated %d objects (%s)" % (len(items), ", ".join(kinds)))
        for name, r in results.items():
            print("  %s: %s, errors %s, unknown fields %s" % (name, r["model"], r["errors"],
                                                             r["unknown"]))
        self.assertEqual(len(results), len(items))
        for name, r in results.items():
            self.assertEqual(r["errors"], [], name)
            self.assertEqual(r["unknown"], [], name + ": fields the schema does not know")
        for want in ("apps/v1 Deployment", "v1 ConfigMap", "v1 Secret",
                     "monitoring.coreos.com/v1 PodMonitor",
                     "monitoring.coreos.com/v1 PrometheusRule"):
            self.assertIn(want, kinds)

    def test_the_checker_catches_mistakes(self):
        deployment = find(self.docs["native-sidecar.yaml"], "Deployment")
        typo = copy.deepcopy(deployment)
        typo["spec"]["template"]["spec"]["initContainers"][0]["startupProbes"] = \
            typo["spec"]["template"]["spec"]["initContainers"][0].pop("startupProbe")
        wrong_type = copy.deepcopy(deployment)
        wrong_type["spec"]["template"]["spec"]["initContainers"][0]["resources"]["limits"][
            "memory"] = "a lot"
        monitor = copy.deepcopy(find(self.docs["podmonitor.yaml"], "PodMonitor"))
        monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "15 seconds"
        rule = copy.deepcopy(find(self.docs["prometheusrule.yaml"], "PrometheusRule"))
        rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
        r = validate([("typo", typo), ("wrong_type", wrong_type), ("monitor", monitor),
                      ("rule", rule)])
        print({k: (v["errors"], v["unknown"]) for k, v in r.items()})
        self.assertEqual(r["typo"]["unknown"],
                         ["/spec/template/spec/initContainers/0/startupProbes"])
        self.assertTrue(any("memory" in e for e in r["wrong_type"]["errors"]))
        self.assertTrue(any("interval" in e for e in r["monitor"]["errors"]))
        self.assertTrue(any("for" in e for e in r["rule"]["errors"]))

    def test_prometheusrule_is_generated_from_the_rules(self):
        gen = os.path.join(KUBE_DIR, "gen-prometheusrule.py")
        out = subprocess.run(["python3", gen, "--check"], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        with open(os.path.join(harness.SOURCE_DIR, "deploy", "prometheus", "rules.yaml")) as f:
            rules = yaml.safe_load(f)
        rule = find(self.docs["prometheusrule.yaml"], "PrometheusRule")
        self.assertEqual(rule["spec"]["groups"], rules["groups"])
        self.assertGreaterEqual(len(rules["groups"][0]["rules"]), 6)

    def check_pod(self, name, docs, native):
        deployment = find(docs, "Deployment")
        config = yaml.safe_load(find(docs, "ConfigMap")["data"]["respscope.yaml"])
        pod = deployment["spec"]["template"]["spec"]
        sidecars = [c for c in pod.get("initContainers", []) + pod["containers"]
                    if c["name"] == "respscope"]
        self.assertEqual(len(sidecars), 1)
        rs = sidecars[0]
        if native:
            self.assertIn(rs, pod["initContainers"])
            self.assertEqual(rs["restartPolicy"], "Always")
            self.assertEqual(rs["startupProbe"]["httpGet"]["path"], "/readyz")
            self.assertNotIn("lifecycle", rs)
        else:
            self.assertIn(rs, pod["containers"])
            self.assertNotIn("initContainers", pod)
        ports = {p["name"]: p["containerPort"] for p in rs["ports"]}
        admin_port = int(config["admin"]["listen"].rsplit(":", 1)[1])
        self.assertEqual(config["admin"]["listen"].rsplit(":", 1)[0], "0.0.0.0")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            self.assertEqual(rs[probe]["httpGet"]["path"], path)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in rs:
                self.assertEqual(ports[rs[probe]["httpGet"]["port"]], admin_port, probe)
        app = [c for c in pod["containers"] if c["name"] != "respscope"]
        self.assertEqual(len(app), 1)
        redis_url = {e["name"]: e.get("value") for e in app[0]["env"]}["REDIS_URL"]
        if config["listen"].startswith("unix://"):
            self.check_unix_socket(name, pod, rs, app[0], config, redis_url)
        else:
            self.assertEqual(redis_url, "redis://" + config["listen"])
            self.assertTrue(config["listen"].startswith("127.0.0.1:"), "loopback only")
        # Security context: non-root, read-only root filesystem, no capabilities.
        sc = rs["securityContext"]
        self.assertTrue(sc["runAsNonRoot"])
        self.assertNotEqual(sc.get("runAsUser", 65532), 0)
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertNotIn("add", sc["capabilities"])
        self.assertIn("memory", rs["resources"]["limits"])
        self.assertIn("cpu", rs["resources"]["requests"])
        # The admin token comes from a Secret, and the config needs it.
        env = {e["name"]: e for e in rs["env"]}
        self.assertIn("secretKeyRef", env["RESPSCOPE_ADMIN_TOKEN"]["valueFrom"])
        self.assertIn("token", config["admin"])
        # Grace period: drain_timeout fits in it (after the application's shutdown, native).
        drain = seconds(config["limits"]["drain_timeout"])
        if not native:
            # Classic: respscope gets SIGTERM with the application and serves it while it
            # winds down; an idle pooled connection must not be closed under it, so idle
            # connections are held until the application exits (the kernel closes them).
            self.assertGreaterEqual(seconds(config["limits"]["drain_idle_timeout"]), drain)
            self.assertNotIn("preStop", rs.get("lifecycle", {}))
        self.assertGreater(pod["terminationGracePeriodSeconds"], drain, name)
        return deployment, rs

    def check_unix_socket(self, name, pod, rs, app, config, redis_url):
        """The socket's directory is one emptyDir mounted writable in both containers, the
        application's REDIS_URL is the socket, and the application may connect: the socket's
        group bits allow it and the pod's fsGroup is respscope's group."""
        path = config["listen"][len("unix://"):]
        self.assertEqual(redis_url, config["listen"], name)
        folder = os.path.dirname(path)

        def volume_at(container):
            found = [m for m in container.get("volumeMounts", []) if m["mountPath"] == folder]
            self.assertEqual(len(found), 1, "%s: %s mounts %s" % (name, container["name"], folder))
            self.assertFalse(found[0].get("readOnly", False))
            return found[0]["name"]
        vol = volume_at(rs)
        self.assertEqual(volume_at(app), vol)
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertIn("emptyDir", volumes[vol])
        mode = int(str(config.get("listen_unix_mode", "0660")), 8)
        self.assertEqual(mode & 0o060, 0o060, "the group may connect")
        self.assertEqual(mode & 0o007, 0, "others may not")
        self.assertEqual(pod["securityContext"]["fsGroup"], rs["securityContext"]["runAsGroup"])
        socket_env = {e["name"]: e.get("value") for e in app["env"]}.get("REDIS_SOCKET")
        self.assertEqual(socket_env, path)

    def test_native_and_classic_pods_fit_together(self):
        secret = find(self.docs["secret.example.yaml"], "Secret")
        monitor = find(self.docs["podmonitor.yaml"], "PodMonitor")
        for name, native in (("native-sidecar.yaml", True), ("sidecar.yaml", False),
                             ("unix-socket-sidecar.yaml", True)):
            deployment, rs = self.check_pod(name, self.docs[name], native)
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            for k, v in monitor["spec"]["selector"]["matchLabels"].items():
                self.assertEqual(labels.get(k), v, name + ": the PodMonitor selects the pods")
            port_names = {p["name"] for p in rs["ports"]}
            for ep in monitor["spec"]["podMetricsEndpoints"]:
                self.assertIn(ep["port"], port_names)
                self.assertEqual(ep["path"], "/metrics")
            refs = [e["valueFrom"]["secretKeyRef"] for e in rs["env"] if "valueFrom" in e]
            refs.append(monitor["spec"]["podMetricsEndpoints"][0]["authorization"]["credentials"])
            for ref in refs:
                self.assertEqual(ref["name"], secret["metadata"]["name"])
                self.assertIn(ref["key"], secret["stringData"])

    def test_embedded_configs_pass_check_config(self):
        for name in ("native-sidecar.yaml", "sidecar.yaml", "unix-socket-sidecar.yaml"):
            text = find(self.docs[name], "ConfigMap")["data"]["respscope.yaml"]
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                f.write(text)
            self.addCleanup(os.unlink, f.name)
            env = dict(os.environ, RESPSCOPE_ADMIN_TOKEN="t0ken",
                       RESPSCOPE_UPSTREAM="redis://127.0.0.1:1", RESPSCOPE_HASH_KEY="k")
            out = subprocess.run([harness.RESPSCOPE_BIN, "--check-config", "--config", f.name],
                                 capture_output=True, text=True, timeout=30, env=env)
            print("%s: --check-config exit %d %s" % (name, out.returncode,
                                                     (out.stdout + out.stderr).strip()[-300:]))
            self.assertEqual(out.returncode, 0, name + ":\n" + out.stdout + out.stderr)
        # And a mistake in such a config is caught, so the check above means something.
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text.replace("drain_timeout:", "drain_timeot:"))
        self.addCleanup(os.unlink, f.name)
        out = subprocess.run([harness.RESPSCOPE_BIN, "--check-config", "--config", f.name],
                             capture_output=True, text=True, timeout=30, env=env)
        self.assertNotEqual(out.returncode, 0)

    def test_unix_socket_config_serves(self):
        """The Unix-socket ConfigMap's respscope.yaml, run for real (the socket path moved
        into a temporary directory, the admin port to a free one): redis-cli reaches Redis
        through the socket, whose mode is the one the manifest asks for."""
        text = find(self.docs["unix-socket-sidecar.yaml"], "ConfigMap")["data"]["respscope.yaml"]
        config = yaml.safe_load(text)
        tmp = tempfile.mkdtemp(prefix="respscope-k8s-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "respscope.sock")
        admin = harness.free_port()
        text = text.replace(config["listen"], "unix://" + path).replace(
            config["admin"]["listen"], "127.0.0.1:%d" % admin)
        cfg = os.path.join(tmp, "respscope.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        with harness.Redis() as redis:
            env = {k: v for k, v in os.environ.items() if not k.startswith("RESPSCOPE_")}
            env.update(RESPSCOPE_ADMIN_TOKEN="t0ken", RESPSCOPE_UPSTREAM=redis.url(),
                       RESPSCOPE_HASH_KEY="k")
            rs = harness.Process([harness.RESPSCOPE_BIN, "--config", cfg], "respscope", env=env)
            try:
                def pong():
                    out = subprocess.run(["redis-cli", "-s", path, "PING"], capture_output=True,
                                         text=True, timeout=10)
                    return out.stdout.strip() == "PONG"
                ok = False
                for _ in range(100):
                    if pong():
                        ok = True
                        break
                    time.sleep(0.1)
                self.assertTrue(ok, rs.log()[-2000:])
                mode = os.stat(path).st_mode & 0o777
                self.assertEqual(mode, int(config["listen_unix_mode"], 8))
            finally:
                self.assertEqual(rs.stop(), 0)
            self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
    unittest.main(verbosity=2)
