"""A 512 MiB value (Redis's default proto-max-bulk-len) is SET and read back through respscope
with a raw socket, compared by SHA-256, while respscope's peak RSS (VmHWM) grows by no more
than 64 MiB: large values stream through, they are never buffered whole. The reply is read
only after a pause, so that the client side is the slow one for a while (backpressure: Redis
keeps the reply; respscope must not).
"""
import hashlib
import os
import struct
import sys
import time
import unittest

import harness

SIZE = 512 * 1024 * 1024
CHUNK = 1024 * 1024
HWM_BOUND_KIB = 64 * 1024


def chunks():
    """512 different 1 MiB chunks (each starts with its index): misordering changes the hash."""
    block = os.urandom(CHUNK)
    for i in range(SIZE // CHUNK):
        yield struct.pack(">Q", i) + block[8:]


class LargeValue(unittest.TestCase):
    def test_512_mib_value(self):
        with harness.Redis() as redis, harness.Respscope(redis.url()) as rs:
            c = harness.RawClient(rs.port)
            c.send(harness.resp_command("SET", "warm", "up") + harness.resp_command("GET", "warm"))
            self.assertEqual(c.read_frames(2), [b"+OK\r\n", b"$2\r\nup\r\n"])
            hwm0 = harness.hwm_kib(rs.pid)
            s = c.sock
            s.settimeout(60)

            t0 = time.monotonic()
            sent = hashlib.sha256()
            s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % SIZE)
            for chunk in chunks():
                sent.update(chunk)
                s.sendall(chunk)
            s.sendall(b"\r\n")
            self.assertEqual(c.read_frames(1), [b"+OK\r\n"])
            t_set = time.monotonic() - t0

            t0 = time.monotonic()
            s.sendall(harness.resp_command("GET", "big") + harness.resp_command("STRLEN", "big"))
            time.sleep(2)  # the client is slow to read: respscope must hold back, not buffer
            hwm_paused = harness.hwm_kib(rs.pid)
            header = b"$%d\r\n" % SIZE
            got = hashlib.sha256()
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            head = b""
            while len(head) < len(header):
                head += s.recv(len(header) - len(head))
            self.assertEqual(head, header)
            left = SIZE
            while left:
                n = s.recv_into(view, min(CHUNK, left))
                self.assertGreater(n, 0, "closed with %d bytes left" % left)
                got.update(view[:n])
                left -= n
            tail = b""
            want_tail = b"\r\n:%d\r\n" % SIZE
            while len(tail) < len(want_tail):
                d = s.recv(len(want_tail) - len(tail))
                self.assertTrue(d)
                tail += d
            self.assertEqual(tail, want_tail)
            t_get = time.monotonic() - t0
            c.close()

            hwm1 = harness.hwm_kib(rs.pid)
            grew = hwm1 - hwm0
            print("512 MiB SET %.1fs, GET %.1fs (incl. 2s pause); same SHA-256: %s" % (
                t_set, t_get, sent.hexdigest() == got.hexdigest()))
            print("respscope VmHWM: %d KiB before, %d KiB after the paused read, %d KiB after: "
                  "grew %d KiB (bound %d KiB)" % (hwm0, hwm_paused, hwm1, grew, HWM_BOUND_KIB))
            self.assertEqual(sent.hexdigest(), got.hexdigest())
            self.assertLessEqual(grew, HWM_BOUND_KIB)
            self.assertTrue(rs.alive())


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
