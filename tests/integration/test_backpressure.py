"""Backpressure both ways: when one side cannot keep up, respscope stops reading the other
instead of buffering.

- Upstream stalled: redis-server is SIGSTOPped while a client pushes a 200 MB pipeline; then
  SIGCONT. Every reply arrives, correct, and respscope's peak RSS barely moves.
- Client not reading: a client asks for 200 MB of replies and reads none for a while; then
  reads them all, correct, with the same bound. That is the dedicated mode's promise (Redis is
  not read for that client); with shared upstream connections such a client is closed at
  limits.max_inflight_bytes_per_client instead (tests/integration/test_pool.py).
"""
import signal
import sys
import time
import unittest

import harness
from loadgen import PipelineClient, kv_commands, until, wait_all

BOUND_KIB = 32 * 1024


class Backpressure(unittest.TestCase):
    def test_upstream_stalled(self):
        with harness.Redis() as redis, harness.Respscope(redis.url()) as rs:
            warm = harness.RawClient(rs.port)
            warm.send(harness.resp_command("PING"))
            warm.read_frames(1)
            hwm0 = harness.hwm_kib(rs.pid)
            redis.send_signal(signal.SIGSTOP)
            try:
                pusher = PipelineClient(rs.port, kv_commands(1, value_sizes=(100000,)),
                                        window=200 << 20, batch=2000, name="pusher")
                pusher.start()
                time.sleep(2.0)
                hwm_stalled = harness.hwm_kib(rs.pid)
            finally:
                redis.send_signal(signal.SIGCONT)
            self.assertTrue(until(lambda: pusher.replies >= 4000, 60), pusher.summary())
            pusher.stop_sending.set()
            self.assertEqual(wait_all([pusher], 30), [])
            hwm1 = harness.hwm_kib(rs.pid)
            print("upstream SIGSTOPped for 2s under a %d MB pipeline: respscope VmHWM %d -> %d "
                  "(stalled) -> %d KiB; %s" % (pusher.replies * 50000 // 1000000, hwm0,
                                               hwm_stalled, hwm1, pusher.summary()))
            self.assertIsNone(pusher.mismatch)
            self.assertEqual(pusher.partial, 0)
            self.assertLessEqual(hwm1 - hwm0, BOUND_KIB)
            warm.close()

    def test_client_not_reading(self):
        value = b"".join(b"%07d" % i for i in range(150000))  # ~1 MB
        with harness.Redis() as redis, harness.Respscope(
                redis.url(), env={"RESPSCOPE_UPSTREAM_POOLING": "dedicated"}) as rs:
            c = harness.RawClient(redis.port)
            c.send(harness.resp_command("SET", "v", value))
            c.read_frames(1)
            c.close()
            hwm0 = harness.hwm_kib(rs.pid)
            raw = harness.RawClient(rs.port)
            raw.send(harness.resp_command("GET", "v") * 200)
            time.sleep(2.0)  # nothing read: the replies must wait in Redis, not in respscope
            hwm_stalled = harness.hwm_kib(rs.pid)
            want = b"$%d\r\n%s\r\n" % (len(value), value)
            got = 0
            raw.sock.settimeout(30)
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            expected = want  # every reply is the same
            pos = 0
            ok = True
            while got < len(want) * 200:
                n = raw.sock.recv_into(view)
                self.assertGreater(n, 0)
                chunk = view[:n]
                # Compare against the repeating reply without building 200 MB.
                k = 0
                while k < n:
                    take = min(n - k, len(expected) - pos)
                    if chunk[k:k + take] != expected[pos:pos + take]:
                        ok = False
                    pos = (pos + take) % len(expected)
                    k += take
                got += n
            raw.close()
            hwm1 = harness.hwm_kib(rs.pid)
            print("client read nothing for 2s of %d MB of replies: respscope VmHWM %d -> %d "
                  "(stalled) -> %d KiB; bytes correct: %s" % (got // 1000000, hwm0, hwm_stalled,
                                                              hwm1, ok))
            self.assertTrue(ok)
            self.assertLessEqual(hwm1 - hwm0, BOUND_KIB)


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
