"""Differential test of WAIT woken by a replica's acknowledgement: each of the two redis-servers
(direct, and behind respscope) has its own replica. Identical bytes with and without
respscope (see tests/lib/resp_diff.py).
"""
import re
import sys
import time
import unittest

import harness
from resp_diff import DifferentialCase, Scenario, print_summary


class DifferentialReplication(DifferentialCase):
    REDIS_ARGS = ()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.replicas = [harness.Redis(extra=("--replicaof", "127.0.0.1", str(r.port)))
                        for r in (cls.direct, cls.behind)]
        deadline = time.monotonic() + 20
        for r in (cls.direct, cls.behind):
            while True:
                info = cls._admin(r, "INFO", "replication")
                if re.search(rb"slave0:.*state=online", info):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError("replica of redis:%d not online: %r" % (r.port, info))
                time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        for r in cls.replicas:
            r.stop()
        super().tearDownClass()

    def test_wait_woken_by_replica(self):
        s = Scenario("wait: woken by the replica's ack")
        s.send("A", ("SET", "k", "v"), ("WAIT", "1", "5000"))
        s.expect("A", 2, check=b":1\r\n")
        s.send("A", ("INCR", "n"), ("WAIT", "2", "200"), ("GET", "n"))  # times out with 1
        s.expect("A", 3)
        s.cmd("A", "HELLO", "3", norm=lambda f: re.sub(rb"id\r\n:\d+", b"id\r\n:<id>", f))
        s.send("A", ("MULTI",), ("SET", "k", "w"), ("EXEC",), ("WAIT", "1", "5000"))
        s.expect("A", 4)
        s.cmd("A", "WAIT", "0", "0")
        self.check(s)


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    print_summary("differential scenarios with a replica (redis vs respscope):")
    sys.exit(0 if prog.result.wasSuccessful() else 1)
