"""Test certificates made with the openssl CLI in a temporary directory (removed at exit).

    pki = Pki()                                   # a CA
    server = pki.issue("server", dns=["localhost"], ips=["127.0.0.1"])
    client = pki.issue("client", client=True)
    other = Pki("other")                          # a CA nobody trusts
Each issued certificate is a Cert(cert=path, key=path). Keys are EC P-256 (fast to make).
"""
import atexit
import os
import shutil
import subprocess
import tempfile

_dirs = []


@atexit.register
def _cleanup():
    while _dirs:
        shutil.rmtree(_dirs.pop(), ignore_errors=True)


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(args), r.stderr))


class Cert:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key


class Pki:
    def __init__(self, name="respscope-test-ca", days=2, dir=None):
        if dir is None:
            dir = tempfile.mkdtemp(prefix="respscope-pki-")
            _dirs.append(dir)
        self.dir = dir
        self.name = name
        self.ca = Cert(os.path.join(dir, name + ".crt"), os.path.join(dir, name + ".key"))
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", self.ca.key, "-out", self.ca.cert, "-days", str(days),
                 "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=dir)

    def issue(self, name, dns=(), ips=(), client=False, days=2, expired=False):
        """A leaf certificate signed by this CA. expired: valid only in the past."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".crt")
        ext = os.path.join(self.dir, name + ".ext")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=" + name, cwd=self.dir)
        san = ["DNS:" + d for d in dns] + ["IP:" + i for i in ips]
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
            if san:
                f.write("subjectAltName=%s\n" % ",".join(san))
        args = ["x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key,
                "-CAcreateserial", "-out", crt, "-extfile", ext]
        if expired:
            # openssl x509 has no start date option: a -days 0... window is not enough, so sign
            # with the CA tool's explicit dates.
            args = ["ca", "-batch", "-notext", "-in", csr, "-cert", self.ca.cert, "-keyfile",
                    self.ca.key, "-out", crt, "-extfile", ext, "-startdate", "20200101000000Z",
                    "-enddate", "20200102000000Z", "-config", self._ca_config()]
        else:
            args += ["-days", str(days)]
        _openssl(*args, cwd=self.dir)
        return Cert(crt, key)

    def _ca_config(self):
        path = os.path.join(self.dir, "ca.cnf")
        if not os.path.exists(path):
            open(os.path.join(self.dir, "index.txt"), "w").close()
            with open(path, "w") as f:
                f.write("[ca]\ndefault_ca=d\n[d]\ndir=%s\ndatabase=$dir/index.txt\n"
                        "new_certs_dir=$dir\nserial=$dir/serial.txt\ndefault_md=sha256\n"
                        "policy=p\nunique_subject=no\n[p]\ncommonName=supplied\n" % self.dir)
            with open(os.path.join(self.dir, "serial.txt"), "w") as f:
                f.write("1000\n")
        return path


def redis_tls_args(tls_port, server, ca, auth_clients="no", protocols=None):
    """redis-server arguments for a TLS port with `server` (a Cert) and `ca` (path)."""
    args = ["--tls-port", str(tls_port), "--tls-cert-file", server.cert, "--tls-key-file",
            server.key, "--tls-ca-cert-file", ca, "--tls-auth-clients", auth_clients]
    if protocols:
        args += ["--tls-protocols", protocols]
    return args
