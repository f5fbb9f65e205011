"""The runtime image of deploy/Dockerfile has every shared library build/respscope needs,
checked without Docker: each library `ldd build/respscope` resolves is mapped to its Debian
package with `dpkg -S`, and that package must be in the runtime stage's image, i.e. among the
packages its `apt-get install` names, the packages any of them depend on (the Depends and
Pre-Depends of the installed packages, recursively), or the base image's own packages
(debian:*-slim holds the packages of priority `required`, and apt). The check is meaningful
because this machine runs the Debian release the Dockerfile builds on (asserted), so the
binary built here links what the image's build stage links.

Any program a Kubernetes manifest makes the kubelet exec in the respscope container (a
lifecycle hook, an exec probe) must come from a package in the image too.

The checker is shown to catch a missing library: with the package of libyaml-cpp taken out
of the install list it reports that package.
"""
import os
import re
import subprocess
import unittest

import yaml

import harness

DOCKERFILE = os.path.join(harness.SOURCE_DIR, "deploy", "Dockerfile")


def runtime_stage():
    """(base image, [packages installed by apt-get in the last stage])."""
    with open(DOCKERFILE) as f:
        text = f.read().replace("\\\n", " ")
    stages = re.split(r"(?m)^FROM\s+", text)[1:]
    last = stages[-1]
    base = last.split()[0]
    pkgs = []
    for m in re.finditer(r"apt-get install([^&;\n]*)", last):
        pkgs += [t for t in m.group(1).split() if not t.startswith("-")]
    return base, pkgs


def dpkg_field(pkg, field):
    out = subprocess.run(["dpkg-query", "-W", "-f=${%s}" % field, pkg], capture_output=True,
                         text=True, timeout=30)
    return out.stdout if out.returncode == 0 else None


def installed(pkg):
    status = dpkg_field(pkg, "Status")
    return status is not None and status.endswith("install ok installed")


_providers = None


def provider(name):
    """An installed package named `name` or providing it (virtual packages), else None."""
    global _providers
    bare = name.split(":")[0]
    if installed(bare):
        return bare
    if _providers is None:
        _providers = {}
        out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Provides}\n"],
                             capture_output=True, text=True, timeout=60).stdout
        for line in out.splitlines():
            pkg, _, provides = line.partition("\t")
            for p in provides.split(","):
                p = p.strip().split(" ")[0]
                if p:
                    _providers.setdefault(p, pkg)
    return _providers.get(bare)


def closure(pkgs):
    """pkgs and everything they depend on, as installed here (first installed alternative)."""
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        deps = (dpkg_field(p, "Depends") or "") + "," + (dpkg_field(p, "Pre-Depends") or "")
        for clause in deps.split(","):
            for alt in clause.split("|"):
                name = alt.strip().split(" ")[0]
                got = provider(name) if name else None
                if got:
                    todo.append(got)
                    break
    return seen


def base_image_packages():
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Priority}\t${Essential}\n"],
                         capture_output=True, text=True, timeout=60).stdout
    base = [l.split("\t")[0] for l in out.splitlines()
            if l.split("\t")[1] == "required" or l.split("\t")[2] == "yes"]
    return closure(base + ["apt"])


def needed_packages(binary):
    """{library path: package} for every library ldd resolves; raises on `not found`."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    libs = {}
    for line in out.stdout.splitlines():
        line = line.strip()
        assert "not found" not in line, "ldd: " + line
        m = re.match(r"(\S+) => (/\S+)", line) or re.match(r"(/\S+) \(", line)
        if not m:
            continue  # linux-vdso.so.1: in the kernel
        path = m.group(m.lastindex)
        candidates = [path, os.path.realpath(path)]
        for c in list(candidates):
            if c.startswith("/usr/"):
                candidates.append(c[4:])
            else:
                candidates.append("/usr" + c)
        pkg = None
        for c in candidates:
            r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                pkg = r.stdout.split(":")[0].split(",")[0].strip()
                break
        assert pkg, "no Debian package owns %s" % path
        libs[path] = pkg
    return libs


def missing(libs, install_list, base):
    allowed = closure([p for p in install_list if installed(p)]) | base
    return sorted({pkg for pkg in libs.values() if pkg not in allowed})


class DockerfileRuntime(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base_image, cls.install = runtime_stage()
        cls.libs = needed_packages(harness.RESPSCOPE_BIN)
        cls.base = base_image_packages()

    def test_same_release_as_the_image(self):
        with open("/etc/os-release") as f:
            codename = re.search(r"(?m)^VERSION_CODENAME=(\S+)", f.read()).group(1)
        print("runtime image %s; this machine: Debian %s" % (self.base_image, codename))
        self.assertTrue(self.base_image.startswith("debian:%s" % codename), self.base_image)

    def test_install_list_is_installable(self):
        print("runtime install list: %s" % " ".join(self.install))
        self.assertTrue(self.install)
        for p in self.install:
            out = subprocess.run(["apt-cache", "show", "--no-all-versions", p],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, "no such Debian package: " + p)

    def test_runtime_packages_cover_every_library(self):
        for path, pkg in sorted(self.libs.items()):
            where = ("install list" if pkg in self.install else
                     "base image" if pkg in self.base else "a dependency")
            print("  %-55s %-28s %s" % (path, pkg, where))
        not_installed = [p for p in self.install if not installed(p)]
        self.assertEqual(not_installed, [], "install list packages not installed here, so "
                         "their dependencies cannot be resolved offline")
        self.assertGreater(len(self.libs), 5)
        self.assertEqual(missing(self.libs, self.install, self.base), [],
                         "libraries of build/respscope that the runtime image lacks")

    def test_exec_commands_of_the_manifests_are_in_the_image(self):
        # The pods run respscope's image with no shell: any program a manifest makes the
        # kubelet exec in the respscope container (a lifecycle hook, an exec probe) must come
        # from a package the image has. Today's manifests use HTTP probes and no hook (the
        # classic sidecar's drain needs no preStop sleep); this keeps it so or checks the new one.
        kube = os.path.join(harness.SOURCE_DIR, "deploy", "kubernetes")
        manifests = sorted(f for f in os.listdir(kube) if f.endswith(".yaml"))
        containers = []
        for name in manifests:
            with open(os.path.join(kube, name)) as f:
                for d in yaml.safe_load_all(f):
                    pod = (d or {}).get("spec", {}).get("template", {}).get("spec", {})
                    for c in pod.get("containers", []) + pod.get("initContainers", []):
                        if c.get("name") == "respscope":
                            containers.append((name, c))
        self.assertGreaterEqual(len(containers), 3, "respscope containers in " + str(manifests))
        programs = []
        for name, c in containers:
            hooks = [c.get("lifecycle", {}).get(h, {}) for h in ("preStop", "postStart")]
            probes = [c.get(p, {}) for p in ("startupProbe", "readinessProbe", "livenessProbe")]
            for h in hooks + probes:
                if "exec" in h:
                    programs.append((name, h["exec"]["command"][0]))
        allowed = closure([p for p in self.install if installed(p)]) | self.base
        for name, program in programs:
            owners = []
            for c in (program, os.path.realpath(program)):
                r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True, timeout=30)
                if r.returncode == 0:
                    owners.append(r.stdout.split(":")[0])
            print("%s execs %s from %s" % (name, program, owners))
            self.assertTrue(owners, "%s: no Debian package owns %s" % (name, program))
            self.assertIn(owners[0], allowed, "%s: %s is not in the image" % (name, program))
        print("exec commands in respscope containers: %d" % len(programs))

    def test_the_check_catches_a_missing_package(self):
        yaml_pkg = [pkg for path, pkg in self.libs.items() if "libyaml-cpp" in path]
        self.assertEqual(len(yaml_pkg), 1, self.libs)
        without = [p for p in self.install if p != yaml_pkg[0]]
        self.assertEqual(len(without), len(self.install) - 1)
        self.assertEqual(missing(self.libs, without, self.base), yaml_pkg)


if __name__ == "__main__":
    unittest.main(verbosity=2)
