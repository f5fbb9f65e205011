"""respscope in front of a TLS-only redis-server (--port 0 --tls-port P), certificates made by the
test with the openssl CLI: verified TLS with redis-cli and redis-py, wrong CA, name mismatch,
server_name override, mutual TLS, min_version, verify: false, expired certificates, rotation of
the CA and of the client certificate on SIGHUP, and no descriptor leaked by failures.

Runs in the pooling mode of RESPSCOPE_UPSTREAM_POOLING (ctest runs it as auto and dedicated).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
import prom
import tls_certs

FAILURES = "respscope_upstream_tls_handshake_failures_total"
MODE = os.environ.get("RESPSCOPE_UPSTREAM_POOLING", "auto")


class TlsRedis(harness.Process):
    """redis-server with a TLS port and a plain admin port (for the test's own checks)."""

    def __init__(self, server, ca, auth_clients="no", protocols=None, plain=False):
        self._start_on(harness.free_port(), server, ca, auth_clients, protocols, plain)

    def _start_on(self, tls_port, server, ca, auth_clients="no", protocols=None, plain=False):
        self.tls_port = tls_port
        self.port = harness.free_port() if plain else 0
        self.dir = tempfile.mkdtemp(prefix="respscope-redis-tls-")
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir]
        argv += tls_certs.redis_tls_args(self.tls_port, server, ca, auth_clients, protocols)
        harness.Process.__init__(self, argv, "redis-tls")
        harness.wait_port(self.tls_port)

    def url(self):
        return f"rediss://127.0.0.1:{self.tls_port}"

    def stop(self, sig=signal.SIGTERM, timeout=15):
        rc = super().stop(sig, timeout)
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class DelayingRelay:
    """A loopback TCP relay to `port` that holds back, by `delay` seconds, what the server sends
    after the client's second flight: in TLS 1.3 the server's answer to the client's certificate
    and Finished (session tickets when it accepts, an alert when it refuses), as a busy server
    would send it late. Everything else passes at once."""

    def __init__(self, port, delay):
        self.upstream, self.delay = port, delay
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            flights = [0]  # chunks the client has sent so far
            threading.Thread(target=self._pipe, args=(client, server, flights, False),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, flights, True),
                             daemon=True).start()

    def _pipe(self, src, dst, flights, from_server):
        held = False
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not from_server:
                    flights[0] += 1
                elif flights[0] >= 2 and not held:
                    held = True
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def url(self):
        return f"rediss://127.0.0.1:{self.port}"

    def close(self):
        self.closed = True
        self.listener.close()


def tls_config(**keys):
    lines = ["upstream_tls:"]
    for k, v in keys.items():
        lines.append(f"  {k}: {v!r}" if isinstance(v, str) else f"  {k}: {str(v).lower()}")
    return "\n".join(lines) + "\n"


def cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                       timeout=20)
    return r.stdout.strip()


def first_reply(port):
    """The bytes respscope answers a PING with, and whether it closed the connection after."""
    c = harness.RawClient(port, timeout=10)
    try:
        c.send(harness.resp_command("PING"))
        frame = c.read_frames(1)[0]
        try:
            closed = c.sock.recv(1) == b""
        except OSError:
            closed = True
        return frame, closed
    finally:
        c.close()


def metrics(rs):
    status, body = rs.http("/metrics")
    assert status == 200, status
    return prom.parse_metrics(body)


class TlsUpstream(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tls_certs.Pki("test-ca")
        cls.other = tls_certs.Pki("other-ca")
        cls.server = cls.pki.issue("server", dns=["localhost"], ips=["127.0.0.1"])
        cls.wrong_name = cls.pki.issue("wrong-name", dns=["redis.internal"])
        cls.client = cls.pki.issue("client", client=True)
        cls.expired = cls.pki.issue("expired", dns=["localhost"], ips=["127.0.0.1"], expired=True)

    def start(self, redis, config_text, env=None):
        rs = harness.Respscope(redis.url(), config_text=config_text, env=env)
        self.addCleanup(self._stop, rs)
        return rs

    def _stop(self, rs):
        rc = rs.stop()
        with open(rs.log_path, errors="replace") as f:
            self.assertEqual(rc, 0, "respscope exited with %r:\n%s" % (rc, f.read()[-3000:]))

    def redis(self, server=None, **kw):
        r = TlsRedis(server or self.server, self.pki.ca.cert, **kw)
        self.addCleanup(r.stop)
        return r

    def assert_works(self, rs):
        self.assertEqual(cli(rs.port, "SET", "tls:k", "v1"), "OK")
        self.assertEqual(cli(rs.port, "GET", "tls:k"), "v1")
        import redis as redis_py
        c = redis_py.Redis(port=rs.port, socket_timeout=10)
        try:
            big = b"x" * (3 << 20)  # many TLS records each way
            c.set("tls:big", big)
            self.assertEqual(c.get("tls:big"), big)
            p = c.pipeline(transaction=True)  # MULTI pins the client in auto mode
            p.incr("tls:n")
            p.get("tls:k")
            self.assertEqual(p.execute()[1], b"v1")
            pipe = c.pipeline(transaction=False)
            for i in range(200):
                pipe.set(f"tls:p:{i}", i)
            self.assertEqual(len(pipe.execute()), 200)
            self.assertEqual(c.get("tls:p:199"), b"199")
        finally:
            c.close()

    def assert_refused(self, rs, reason):
        frame, closed = first_reply(rs.port)
        self.assertTrue(frame.startswith(b"-ERR upstream TLS handshake failed: " +
                                         reason.encode()), frame)
        self.assertTrue(closed, "the connection stays open after the handshake error")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = metrics(rs)
            if prom.value(m, FAILURES, reason=reason) >= 1 and \
                    prom.value(m, "respscope_upstream_up") == 0:
                break
            time.sleep(0.2)
        self.assertGreaterEqual(prom.value(m, FAILURES, reason=reason), 1)
        self.assertEqual(prom.value(m, "respscope_upstream_up"), 0)
        self.assertNotEqual(rs.http("/readyz")[0], 200)
        log = rs.log()
        self.assertIn("upstream TLS handshake with", log)
        self.assertIn("reason " + reason, log)

    def test_verified(self):
        r = self.redis()
        rs = self.start(r, tls_config(ca_file=self.pki.ca.cert))
        self.assert_works(rs)
        m = metrics(rs)
        self.assertEqual(sum(prom.series(m, FAILURES).values()), 0)
        self.assertEqual(prom.value(m, "respscope_upstream_tls_verify_disabled"), 0)
        self.assertEqual(prom.value(m, "respscope_upstream_up"), 1)
        self.assertEqual(rs.http("/readyz")[0], 200)
        self.assertIn("command table: ", rs.log())  # the side channel reached it over TLS
        self.assertNotIn("upstream not reachable", rs.log())

    def test_env_variables(self):
        r = self.redis()
        rs = self.start(r, None, env={"RESPSCOPE_UPSTREAM_TLS_CA_FILE": self.pki.ca.cert,
                                      "RESPSCOPE_UPSTREAM_TLS_MIN_VERSION": "1.3"})
        self.assert_works(rs)

    def test_wrong_ca_refused(self):
        r = self.redis()
        rs = self.start(r, tls_config(ca_file=self.other.ca.cert))
        self.assert_refused(rs, "unknown_ca")
        self.assertIn("certificate verify failed", rs.log())

    def test_name_mismatch_refused_and_server_name_override(self):
        r = self.redis(self.wrong_name)
        rs = self.start(r, tls_config(ca_file=self.pki.ca.cert))
        self.assert_refused(rs, "name_mismatch")
        rs2 = self.start(r, tls_config(ca_file=self.pki.ca.cert, server_name="redis.internal"))
        self.assert_works(rs2)

    def test_expired_refused(self):
        r = self.redis(self.expired)
        rs = self.start(r, tls_config(ca_file=self.pki.ca.cert))
        self.assert_refused(rs, "expired")

    def test_mutual_tls(self):
        r = self.redis(auth_clients="yes")
        rs = self.start(r, tls_config(ca_file=self.pki.ca.cert))
        self.assert_refused(rs, "client_cert_rejected")
        rs2 = self.start(r, tls_config(ca_file=self.pki.ca.cert, cert_file=self.client.cert,
                                       key_file=self.client.key))
        self.assert_works(rs2)

    def test_mutual_tls_late_verdict(self):
        """TLS 1.3 reports a refused client certificate after the client's side of the
        handshake: a verdict that comes 0.6 s late (a busy server; within the 2 s connect
        timeout) is still the handshake error, and a late acceptance still works."""
        r = self.redis(auth_clients="yes")
        relay = DelayingRelay(r.tls_port, 0.6)
        self.addCleanup(relay.close)
        rs = harness.Respscope(relay.url(), config_text=tls_config(ca_file=self.pki.ca.cert))
        self.addCleanup(self._stop, rs)
        self.assert_refused(rs, "client_cert_rejected")
        rs2 = harness.Respscope(relay.url(), config_text=tls_config(
            ca_file=self.pki.ca.cert, cert_file=self.client.cert, key_file=self.client.key))
        self.addCleanup(self._stop, rs2)
        self.assert_works(rs2)
        m = metrics(rs2)
        self.assertEqual(sum(prom.series(m, FAILURES).values()), 0)
        self.assertNotIn("sent nothing after a TLS 1.3 handshake", rs2.log())

    def test_mutual_tls_over_tls12(self):
        r = self.redis(auth_clients="yes", protocols="TLSv1.2")
        rs = self.start(r, tls_config(ca_file=self.pki.ca.cert))
        self.assert_refused(rs, "client_cert_rejected")
        rs2 = self.start(r, tls_config(ca_file=self.pki.ca.cert, cert_file=self.client.cert,
                                       key_file=self.client.key))
        self.assert_works(rs2)

    def test_min_version(self):
        old = self.redis(protocols="TLSv1.2")
        rs = self.start(old, tls_config(ca_file=self.pki.ca.cert, min_version="1.3"))
        self.assert_refused(rs, "protocol_version")
        rs12 = self.start(old, tls_config(ca_file=self.pki.ca.cert))  # default 1.2
        self.assert_works(rs12)
        new = self.redis(protocols="TLSv1.3")
        rs13 = self.start(new, tls_config(ca_file=self.pki.ca.cert, min_version="1.3"))
        self.assert_works(rs13)

    def test_verify_false(self):
        r = self.redis(self.wrong_name)
        rs = self.start(r, tls_config(ca_file=self.other.ca.cert, verify=False))
        self.assert_works(rs)
        m = metrics(rs)
        self.assertEqual(prom.value(m, "respscope_upstream_tls_verify_disabled"), 1)
        self.assertEqual(sum(prom.series(m, FAILURES).values()), 0)
        self.assertIn("upstream_tls.verify is false", rs.log())

    def test_rotation_on_sighup(self):
        """Redis moves to a certificate from a new CA; respscope's ca_file is rewritten and
        SIGHUP makes new upstream connections trust it. A bad file at reload keeps the old."""
        new_pki = tls_certs.Pki("rotated-ca")
        new_server = new_pki.issue("server2", dns=["localhost"], ips=["127.0.0.1"])
        bundle = os.path.join(new_pki.dir, "trusted.pem")
        shutil.copy(self.pki.ca.cert, bundle)
        r = self.redis(plain=True)
        rs = self.start(r, tls_config(ca_file=bundle))
        self.assert_works(rs)

        def redis_admin(*args):
            return cli(r.port, *args)

        # The server rotates (new connections to it get the new certificate); existing
        # connections keep their session: close them so respscope must reconnect.
        self.assertEqual(redis_admin("CONFIG", "SET", "tls-cert-file", new_server.cert,
                                     "tls-key-file", new_server.key), "OK")
        redis_admin("CLIENT", "KILL", "TYPE", "normal")
        self.assert_refused(rs, "unknown_ca")

        shutil.copy(new_pki.ca.cert, bundle)
        rs.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "upstream TLS certificate, key and CA files re-read" not in rs.log():
            self.assertLess(time.monotonic(), deadline, rs.log()[-2000:])
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while cli(rs.port, "PING") != "PONG":  # a shared connection may be in its backoff
            self.assertLess(time.monotonic(), deadline, rs.log()[-2000:])
            time.sleep(0.1)
        self.assert_works(rs)

        with open(bundle, "w") as f:
            f.write("not a certificate\n")
        rs.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "upstream TLS files rejected, previous ones kept" not in rs.log():
            self.assertLess(time.monotonic(), deadline, rs.log()[-2000:])
            time.sleep(0.05)
        self.assertIn("no usable PEM certificate", rs.log())
        redis_admin("CLIENT", "KILL", "TYPE", "normal")
        deadline = time.monotonic() + 10
        while cli(rs.port, "PING") != "PONG":
            self.assertLess(time.monotonic(), deadline, rs.log()[-2000:])
            time.sleep(0.1)
        self.assert_works(rs)

    def test_client_certificate_rotation_on_sighup(self):
        """Mutual TLS: cert_file and key_file are re-read on SIGHUP. A client certificate from a
        CA Redis does not trust gets new connections refused; the good one back, they work."""
        d = tempfile.mkdtemp(prefix="respscope-tls-client-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = os.path.join(d, "client.pem"), os.path.join(d, "client.key")
        untrusted = self.other.issue("client-untrusted", client=True)

        def install(c):
            shutil.copy(c.cert, cert)
            shutil.copy(c.key, key)

        def reload_and_wait():
            n = rs.log().count("upstream TLS certificate, key and CA files re-read")
            rs.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while rs.log().count("upstream TLS certificate, key and CA files re-read") <= n:
                self.assertLess(time.monotonic(), deadline, rs.log()[-2000:])
                time.sleep(0.05)
            cli(r.port, "CLIENT", "KILL", "TYPE", "normal")  # open connections keep their session

        install(self.client)
        r = self.redis(auth_clients="yes", plain=True)
        rs = self.start(r, tls_config(ca_file=self.pki.ca.cert, cert_file=cert, key_file=key))
        self.assert_works(rs)

        install(untrusted)
        reload_and_wait()
        self.assert_refused(rs, "client_cert_rejected")

        install(self.client)
        reload_and_wait()
        deadline = time.monotonic() + 10
        while cli(rs.port, "PING") != "PONG":  # a shared connection may be in its backoff
            self.assertLess(time.monotonic(), deadline, rs.log()[-2000:])
            time.sleep(0.1)
        self.assert_works(rs)

    def test_failures_and_flaps_leak_no_descriptor(self):
        """Refused handshakes and a TLS upstream that restarts: every client gets an answer or a
        close, respscope stays up, and its descriptor count comes back."""
        def fds(pid):
            return len(os.listdir(f"/proc/{pid}/fd"))

        r = self.redis()
        bad = self.start(r, tls_config(ca_file=self.other.ca.cert))
        good = self.start(r, tls_config(ca_file=self.pki.ca.cert))
        self.assert_works(good)
        time.sleep(0.5)
        base_bad, base_good = fds(bad.pid), fds(good.pid)
        for _ in range(100):
            frame, _ = first_reply(bad.port)
            self.assertTrue(frame.startswith(b"-ERR upstream TLS handshake failed: unknown_ca"))
        port = r.tls_port
        for _ in range(3):  # the upstream goes away and comes back on the same port
            r.stop()
            frame, _ = first_reply(good.port)
            self.assertTrue(frame.startswith(b"-ERR"), frame)
            r = TlsRedis.__new__(TlsRedis)  # again on the port respscope knows
            TlsRedis._start_on(r, port, self.server, self.pki.ca.cert)
            self.addCleanup(r.stop)
            deadline = time.monotonic() + 10
            while cli(good.port, "PING") != "PONG":
                self.assertLess(time.monotonic(), deadline, good.log()[-2000:])
                time.sleep(0.1)
        self.assert_works(good)
        self.assertTrue(bad.alive() and good.alive())
        deadline = time.monotonic() + 10
        while fds(bad.pid) > base_bad + 4 or fds(good.pid) > base_good + 4:
            self.assertLess(time.monotonic(), deadline,
                            "descriptors: bad %d (was %d), good %d (was %d)" % (
                                fds(bad.pid), base_bad, fds(good.pid), base_good))
            time.sleep(0.2)

    def test_check_config(self):
        """File errors are clear at start and in --check-config."""
        d = tempfile.mkdtemp(prefix="respscope-tls-cfg-")
        self.addCleanup(shutil.rmtree, d, True)
        cases = [
            (tls_config(ca_file=os.path.join(d, "missing.pem")),
             "upstream_tls.ca_file", "cannot read (No such file or directory)"),
            (tls_config(ca_file=self.pki.ca.cert, cert_file=self.client.cert,
                        key_file=self.server.key),
             "upstream_tls.key_file", "does not match cert_file"),
            (tls_config(cert_file=self.client.cert), "upstream_tls", "without key_file"),
            (tls_config(min_version="1.1"), "upstream_tls.min_version", "expected 1.2 or 1.3"),
        ]
        for text, where, what in cases:
            path = os.path.join(d, "c.yaml")
            with open(path, "w") as f:
                f.write("upstream: rediss://127.0.0.1:6390\n" + text)
            for extra in (["--check-config"], []):
                r = subprocess.run([harness.RESPSCOPE_BIN, "--config", path, "--listen",
                                    "127.0.0.1:0", "--admin", "127.0.0.1:0", *extra],
                                   capture_output=True, text=True, timeout=20)
                self.assertNotEqual(r.returncode, 0, (text, r.stdout))
                self.assertIn(where, r.stderr, text)
                self.assertIn(what, r.stderr, text)
        # verify: false passes with a warning.
        with open(path, "w") as f:
            f.write("upstream: rediss://127.0.0.1:6390\n" + tls_config(verify=False))
        r = subprocess.run([harness.RESPSCOPE_BIN, "--config", path, "--check-config"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("upstream_tls.verify is false", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
