"""Differential test with password-protected redis-servers (requirepass): AUTH, HELLO AUTH, ACL
users, RESET de-authenticating, and the limits Redis applies to unauthenticated clients.
Identical bytes with and without respscope (see tests/lib/resp_diff.py).
"""
import sys
import unittest

from resp_diff import DifferentialCase, Scenario, norm_hello, print_summary

PASSWORD = "s3cret-pw"


class DifferentialAuth(DifferentialCase):
    REDIS_ARGS = ("--requirepass", PASSWORD)
    ADMIN_AUTH = (PASSWORD,)
    RESET_COMMANDS = (("FLUSHALL",), ("ACL", "DELUSER", "alice"))

    @classmethod
    def upstream_url(cls, redis):
        # The password in the URL is for respscope's own side channel; clients AUTH themselves.
        return "redis://default:%s@127.0.0.1:%d" % (PASSWORD, redis.port)

    def test_auth(self):
        s = Scenario("auth: requirepass")
        s.send("A", ("PING",), ("GET", "k"), ("HELLO", "3"), ("AUTH", "wrong"),
               ("AUTH", "default", "wrong"), ("AUTH", "a", "b", "c"), ("GET", "k"))
        s.expect("A", 7, check=b"NOAUTH")
        s.cmd("A", "AUTH", PASSWORD)
        s.send("A", ("SET", "k", "v"), ("GET", "k"), ("ACL", "WHOAMI"))
        s.expect("A", 3)
        s.cmd("A", "RESET")
        s.cmd("A", "GET", "k", check=b"NOAUTH")
        s.cmd("A", "HELLO", "3", "AUTH", "default", PASSWORD, "SETNAME", "x", norm=norm_hello)
        s.send("A", ("GET", "k"), ("CLIENT", "GETNAME"))
        s.expect("A", 2)
        s.cmd("A", "HELLO", "2", "AUTH", "default", "bad", check=b"WRONGPASS")
        s.send("B", ("AUTH", PASSWORD), ("GET", "k"), ("QUIT",))
        s.expect("B", 3)
        s.expect_close("B")
        self.check(s)

    def test_acl_user(self):
        s = Scenario("auth: ACL users")
        s.cmd("A", "AUTH", PASSWORD)
        s.cmd("A", "ACL", "SETUSER", "alice", "on", ">pw", "~app:*", "+get", "+set", "+acl|whoami")
        s.send("B", ("AUTH", "alice", "pw"), ("SET", "app:1", "x"), ("GET", "app:1"),
               ("GET", "other"), ("DEL", "app:1"), ("ACL", "WHOAMI"), ("AUTH", "alice", "no"),
               ("ACL", "WHOAMI"))
        s.expect("B", 8, check=b"NOPERM")
        s.cmd("B", "HELLO", "3", "AUTH", "alice", "pw", norm=norm_hello)
        s.cmd("B", "GET", "app:1")
        s.cmd("A", "ACL", "DELUSER", "alice")
        s.expect_close("B")  # Redis disconnects the clients of a deleted user
        self.check(s)

    def test_unauthenticated_limits(self):
        s = Scenario("auth: protocol limits before AUTH")
        s.send("A", b"*20\r\n")
        s.expect_close("A")
        s.send("B", b"*2\r\n$3\r\nGET\r\n$20000\r\n")
        s.expect_close("B")
        s.send("C", b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*20\r\n" % (len(PASSWORD),
                                                                PASSWORD.encode()))
        s.send("C", b"".join(b"$1\r\na\r\n" for _ in range(20)), b"*1\r\n$4\r\nPING\r\n")
        s.expect("C", 3)
        s.send("D", b"PING\r\n" * 3)
        s.expect("D", 3, check=b"NOAUTH")
        self.check(s)


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    print_summary("differential scenarios with requirepass (redis vs respscope):")
    sys.exit(0 if prog.result.wasSuccessful() else 1)
