"""Differential test of the data plane: every scenario is run against a plain redis-server and
against respscope in front of an identical fresh redis-server; the bytes each connection
receives must be identical (see tests/lib/resp_diff.py for the few documented normalisations:
client ids, CLIENT INFO, INFO, MONITOR timestamps and addresses).

Run: ctest --test-dir build -R integration_test_differential --output-on-failure
  or RESPSCOPE_BIN=build/respscope PYTHONPATH=tests/lib python3 tests/integration/test_differential.py
"""
import sys
import unittest

from resp_diff import (C, DifferentialCase, Scenario, capture_client_addr, capture_client_id,
                       capture_int, norm_client_info, norm_hello, norm_info, norm_int,
                       print_summary)


def lua_nested(depth):
    return ("local t = {1} for i = 1, %d do t = {t, i} end return t" % depth)


class Differential(DifferentialCase):

    # ------------------------------------------------------------------ pipelines

    def test_pipeline_mixed(self):
        cmds = []
        for i in range(40):
            cmds += [("SET", "k%d" % i, "v%d" % i), ("GET", "k%d" % i), ("INCR", "n"),
                     ("LPUSH", "l", i), ("HSET", "h", "f%d" % i, i)]
        cmds += [("LRANGE", "l", 0, -1), ("HGETALL", "h"), ("SADD", "s", 3, 1, 2),
                 ("SMEMBERS", "s"), ("GET", "nokey"), ("LPUSH", "k1", "x"), ("NOSUCH", "a"),
                 ("GET",), ("MGET", "k1", "k2", "nokey"), ("ZADD", "z", "1.5", "a", "2", "b"),
                 ("ZRANGE", "z", 0, -1, "WITHSCORES"), ("ZSCORE", "z", "a"), ("EXISTS", "k1", "k2"),
                 ("OBJECT", "ENCODING", "l"), ("TYPE", "h"), ("STRLEN", "k3"), ("ECHO", "")]
        inline = b"PING\r\nSET inl \"a b\\r\\n\" \r\nGET inl\r\nECHO 'x y'\n\r\n  PING hello  \r\n"
        s = Scenario("pipeline: 220 mixed commands in one write")
        s.send("A", *cmds, inline, ("PING",))
        s.expect("A", len(cmds) + 6, check=b"WRONGTYPE")
        self.check(s)

    def test_pipeline_large_values(self):
        big = b"".join(b"%07d" % i for i in range(30000))  # 210 kB: several 64 KiB reads
        s = Scenario("pipeline: 10k commands, 210 kB values")
        s.send("A", ("SET", "big", big), ("GET", "big"), ("APPEND", "big", "tail"),
               ("GETRANGE", "big", 65530, 65600), ("GET", "big"))
        s.expect("A", 5)
        s.send("A", *[("INCRBY", "c", i) for i in range(10000)])
        s.expect("A", 10000)
        s.send("A", ("RPUSH", "list", *range(5000)), ("LRANGE", "list", 0, -1))
        s.expect("A", 2)
        self.check(s)

    def test_byte_by_byte(self):
        s = Scenario("pipeline: sent one byte per write")
        s.send("A", ("SET", "k", "hello world"), ("GET", "k"), b"PING\r\n",
               ("HSET", "h", "a", "1", "b", "2"), ("HGETALL", "h"), chunk=1)
        s.expect("A", 5)
        self.check(s)

    def test_many_connections_interleaved(self):
        s = Scenario("pipeline: 8 connections interleaved")
        for r in range(5):  # all send, then all read: Redis serves them in any order
            for c in "ABCDEFGH":
                s.send(c, ("INCR", "ctr" + c), ("RPUSH", "log" + c, r), ("GET", "ctr" + c),
                       ("INCR", "shared"))
            for c in "ABCDEFGH":
                s.expect(c, 3).expect(c, 1, norm=norm_int)
        s.cmd("A", "GET", "shared")
        s.cmd("A", "LRANGE", "logH", 0, -1)
        self.check(s)

    # ------------------------------------------------------------------ RESP3 and HELLO

    def test_resp3_every_type(self):
        s = Scenario("resp3: every reply type (DEBUG PROTOCOL)")
        types = ["string", "integer", "double", "bignum", "null", "array", "set", "map",
                 "attrib", "push", "verbatim", "true", "false"]
        s.send("A", *[("DEBUG", "PROTOCOL", t) for t in types])
        s.expect("A", len(types))  # RESP2: push is an error
        s.cmd("A", "HELLO", "3", norm=norm_hello, check=b"%")
        s.send("A", *[("DEBUG", "PROTOCOL", t) for t in types])
        s.expect("A", len(types) + 1, check=b"|1\r\n")  # push: a push, then the reply
        s.send("A", ("HSET", "h", "a", "1", "b", "2"), ("HGETALL", "h"), ("SADD", "s", 1, 2),
               ("SMEMBERS", "s"), ("ZADD", "z", "1.5", "m"), ("ZSCORE", "z", "m"),
               ("ZRANGE", "z", 0, -1, "WITHSCORES"), ("GET", "missing"), ("CONFIG", "GET", "maxmemory"),
               ("EVAL", "redis.setresp(3) return redis.call('HGETALL', KEYS[1])", 1, "h"),
               ("EVAL", "return {double=3.25}", 0), ("EVAL", "return true", 0),
               ("LPOS", "nolist", "x"), ("XINFO", "STREAM", "nostream"))
        s.expect("A", 14)
        s.cmd("A", "HELLO", "2", norm=norm_hello)
        s.send("A", ("HGETALL", "h"), ("ZSCORE", "z", "m"), ("GET", "missing"))
        s.expect("A", 3)
        self.check(s)

    def test_hello_switches(self):
        s = Scenario("hello: switching protocol mid-connection")
        s.cmd("A", "HELLO", norm=norm_hello)
        s.cmd("A", "HELLO", "4", check=b"NOPROTO")
        s.cmd("A", "HELLO", "3", "SETNAME", "conn-a", norm=norm_hello)
        s.cmd("A", "CLIENT", "GETNAME")
        s.send("A", ("GET", "x"), ("HELLO", "2"), ("GET", "x"), ("HELLO", "3"), ("GET", "x"))
        s.expect("A", 5, norm=norm_hello)
        s.cmd("A", "HELLO", "3", "AUTH", "default", "any", norm=norm_hello)  # nopass user
        s.cmd("A", "HELLO", "abc")
        self.check(s)

    def test_deep_nesting(self):
        s = Scenario("replies nested 200 deep, then more commands")
        s.cmd("A", "EVAL", lua_nested(200), 0)
        s.send("A", ("SET", "k", "v"), ("GET", "k"))
        s.expect("A", 2)
        s.cmd("A", "HELLO", "3", norm=norm_hello)
        s.cmd("A", "EVAL", lua_nested(150), 0)
        s.cmd("A", "GET", "k")
        self.check(s)

    # ------------------------------------------------------------------ transactions

    def _transactions(self, s, c):
        s.send(c, ("MULTI",), ("SET", "a", "1"), ("INCR", "a"), ("GET", "a"), ("EXEC",))
        s.expect(c, 5, check=b"QUEUED")
        s.send(c, ("MULTI",), ("SET", "a", "2"), ("DISCARD",), ("GET", "a"))
        s.expect(c, 4)
        s.send(c, ("MULTI",), ("SET", "a", "3"), ("NOSUCHCMD",), ("GET", "a", "b"), ("EXEC",),
               ("GET", "a"))
        s.expect(c, 6, check=b"EXECABORT")
        s.send(c, ("MULTI",), ("SET", "str", "x"), ("LPUSH", "str", "y"), ("GET", "str"),
               ("EXEC",))
        s.expect(c, 5, check=b"WRONGTYPE")
        s.send(c, ("MULTI",), ("MULTI",), ("WATCH", "a"), ("EXEC",), ("EXEC",), ("DISCARD",))
        s.expect(c, 6, check=b"nested")
        s.cmd(c, "MULTI")
        s.cmd(c, "EVAL", "return redis.call('GET', 'a')", 0)
        s.cmd(c, "PING")
        s.cmd(c, "EXEC")
        s.cmd(c, "MULTI")
        s.cmd(c, "EXEC")

    def test_multi_exec_resp2(self):
        s = Scenario("multi/exec/discard/execabort resp2")
        self._transactions(s, "A")
        self.check(s)

    def test_multi_exec_resp3(self):
        s = Scenario("multi/exec/discard/execabort resp3")
        s.cmd("A", "HELLO", "3", norm=norm_hello)
        self._transactions(s, "A")
        self.check(s)

    def test_watch(self):
        s = Scenario("watch: abort by another connection, success, unwatch")
        for proto in ("2", "3"):
            s.cmd("A", "HELLO", proto, norm=norm_hello)
            s.cmd("A", "WATCH", "w")
            s.cmd("B", "SET", "w", "from-b")
            s.send("A", ("MULTI",), ("SET", "w", "from-a"), ("EXEC",), ("GET", "w"))
            s.expect("A", 4)
            s.cmd("A", "WATCH", "w")
            s.send("A", ("MULTI",), ("SET", "w", "from-a"), ("EXEC",))
            s.expect("A", 3)
            s.cmd("A", "WATCH", "w")
            s.cmd("A", "UNWATCH")
            s.cmd("B", "SET", "w", "again")
            s.send("A", ("MULTI",), ("INCR", "w"), ("EXEC",))
            s.expect("A", 3, check=b"not an integer")
        self.check(s)

    # ------------------------------------------------------------------ pub/sub

    def test_pubsub_resp2(self):
        s = Scenario("pubsub resp2: subscribed mode")
        s.cmd("A", "SUBSCRIBE", "c1", "c2", n=2)
        s.cmd("A", "PSUBSCRIBE", "p.*", n=1)
        s.cmd("A", "SSUBSCRIBE", "s1", n=1)
        s.cmd("B", "PUBLISH", "c1", "hello")
        s.cmd("B", "PUBLISH", "p.x", "pattern")
        s.cmd("B", "SPUBLISH", "s1", "shard")
        s.cmd("B", "PUBLISH", "nobody", "x")
        s.expect("A", 3, check=b"pmessage")
        s.cmd("A", "PING", check=b"pong")
        s.cmd("A", "PING", "hi")
        s.cmd("A", "GET", "x", check=b"only (P|S)SUBSCRIBE")
        # A message published between two commands arrives before the second reply.
        s.cmd("B", "PUBLISH", "c2", "between")
        s.cmd("A", "SUBSCRIBE", "c3", n=2)
        s.cmd("A", "UNSUBSCRIBE", "c1", "c3", n=2)
        s.cmd("A", "UNSUBSCRIBE", n=1)        # c2 (one left: a dict's order is random)
        s.cmd("A", "PUNSUBSCRIBE", n=1)
        s.cmd("A", "SUNSUBSCRIBE", "s1", n=1)
        s.cmd("A", "UNSUBSCRIBE", n=1)        # none left: one reply with a null channel
        s.cmd("A", "PING")
        s.cmd("A", "GET", "x")
        self.check(s)

    def test_pubsub_resp3(self):
        s = Scenario("pubsub resp3: pushes interleaved with replies")
        s.cmd("A", "HELLO", "3", norm=norm_hello)
        s.cmd("A", "SUBSCRIBE", "c1", n=1)
        s.cmd("A", "PSUBSCRIBE", "p.*", "q.*", n=2)
        s.cmd("A", "PUNSUBSCRIBE", "p.*")
        s.cmd("A", "PSUBSCRIBE", "p.*")
        s.cmd("A", "SSUBSCRIBE", "s1", n=1)
        s.cmd("A", "SET", "k", "v")
        s.cmd("B", "PUBLISH", "c1", "m1")
        s.cmd("B", "PUBLISH", "p.1", "m2")
        s.cmd("A", "GET", "k", n=3, check=b">4\r\n")  # two pushes, then the reply
        s.cmd("B", "SPUBLISH", "s1", "m3")
        s.send("A", ("PING",), ("HGETALL", "none"), ("UNSUBSCRIBE", "c1"))
        s.expect("A", 4)
        s.cmd("B", "PUBLISH", "c1", "lost")
        s.cmd("B", "PUBLISH", "q.2", "m4")
        s.send("A", ("PUNSUBSCRIBE", "q.*"), ("PUNSUBSCRIBE",), ("SUNSUBSCRIBE",), ("PING",))
        s.expect("A", 5)
        s.cmd("A", "UNSUBSCRIBE")
        self.check(s)

    def test_pubsub_many_messages(self):
        s = Scenario("pubsub: 2000 messages, big and small")
        s.cmd("A", "SUBSCRIBE", "ch")
        s.send("B", *[("PUBLISH", "ch", ("m%d" % i) * (1 + i % 300)) for i in range(2000)])
        s.expect("B", 2000)
        s.expect("A", 2000)
        self.check(s)

    # ------------------------------------------------------------------ MONITOR

    def test_monitor(self):
        s = Scenario("monitor: lines of another connection, then RESET")
        s.cmd("B", "CLIENT", "INFO", capture=capture_client_addr("B"), norm=norm_client_info)
        s.cmd("A", "CLIENT", "INFO", capture=capture_client_addr("A"), norm=norm_client_info)
        s.cmd("A", "MONITOR")
        s.send("B", ("SET", "k", "v"), ("GET", "k"), ("MULTI",), ("INCR", "n"), ("EXEC",),
               ("EVAL", "return redis.call('GET', KEYS[1])", 1, "k"), ("AUTH", "x", "secret"))
        s.expect("B", 7)
        s.monitor("A", 8, sources=["B"], lua=True)
        s.send("A", ("PING",))  # the monitor's own commands are monitored too
        s.monitor("A", 2, sources=["A", "B"])
        s.cmd("A", "RESET", check=b"+RESET")  # not itself monitored
        s.cmd("B", "SET", "after", "reset")
        s.quiet("A", 0.2)
        s.cmd("A", "GET", "after")
        self.check(s)

    # ------------------------------------------------------------------ CLIENT REPLY

    def test_client_reply(self):
        s = Scenario("client reply off/skip/on")
        s.send("A", ("CLIENT", "REPLY", "OFF"), ("SET", "a", "1"), ("NOSUCH",), ("GET", "a"),
               ("CLIENT", "REPLY", "ON"), ("GET", "a"))
        s.expect("A", 2)
        s.cmd("A", "CLIENT", "REPLY", "OFF", n=0)
        s.send("A", ("INCR", "a"))
        s.quiet("A", 0.15)
        s.cmd("A", "CLIENT", "REPLY", "ON")
        s.send("A", ("CLIENT", "REPLY", "SKIP"), ("INCR", "a"), ("INCR", "a"), ("GET", "a"))
        s.expect("A", 2)
        s.send("A", ("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "SKIP"), ("INCR", "a"),
               ("GET", "a"))
        s.expect("A", 1)
        s.send("A", ("CLIENT", "REPLY", "OFF"), ("CLIENT", "REPLY", "SKIP"), ("GET", "a"),
               ("CLIENT", "REPLY", "ON"), ("GET", "a"))
        s.expect("A", 2)
        s.send("A", ("HELLO", "3"), ("CLIENT", "REPLY", "OFF"), ("GET", "a"), ("RESET",),
               ("GET", "a"))
        s.expect("A", 3, norm=norm_hello, check=b"+RESET")
        self.check(s)

    # ------------------------------------------------------------------ CLIENT TRACKING

    def test_tracking_resp3(self):
        s = Scenario("client tracking resp3: invalidation pushes")
        s.cmd("A", "HELLO", "3", norm=norm_hello)
        s.cmd("A", "CLIENT", "TRACKING", "ON")
        s.send("A", ("SET", "k1", "a"), ("GET", "k1"), ("MGET", "k2", "k3"))
        s.expect("A", 3)
        s.cmd("B", "SET", "k1", "b")
        s.cmd("B", "MSET", "k2", "x", "k3", "y")
        # One push per key (k1, k2, k3), then the PONG: every later step reads its own reply,
        # so B's FLUSHDB below is sent only after A's GET has been answered.
        s.cmd("A", "PING", n=4, check=b"invalidate")
        s.cmd("A", "GET", "k1")
        s.cmd("A", "SET", "k1", "self")  # no NOLOOP: A is told about its own write
        s.expect("A", 1)
        s.cmd("A", "GET", "k1")
        s.cmd("B", "FLUSHDB")
        s.cmd("A", "PING", n=2)          # invalidate with a null key list
        s.cmd("A", "CLIENT", "TRACKING", "OFF")
        s.cmd("A", "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "NOLOOP")
        s.cmd("B", "SET", "user:1", "x")
        s.cmd("B", "SET", "other", "x")
        s.expect("A", 1, check=b"user:1")  # B's write under the prefix (none for "other")
        s.cmd("A", "SET", "user:2", "mine")  # NOLOOP: no push for A's own write
        s.cmd("A", "PING")
        s.cmd("A", "CLIENT", "TRACKING", "OFF")
        s.cmd("A", "CLIENT", "TRACKING", "ON", "OPTIN")
        s.send("A", ("GET", "o1"), ("CLIENT", "CACHING", "YES"), ("GET", "o2"))
        s.expect("A", 3)
        s.cmd("B", "MSET", "o1", "1", "o2", "2")
        s.cmd("A", "PING", n=2)
        s.cmd("A", "CLIENT", "TRACKINGINFO")
        self.check(s)

    def test_tracking_resp2_redirect(self):
        s = Scenario("client tracking resp2: redirect to a subscriber")
        s.cmd("B", "CLIENT", "ID", capture=capture_int("idB"), norm=norm_int)
        s.cmd("B", "SUBSCRIBE", "__redis__:invalidate")
        s.cmd("A", "CLIENT", "TRACKING", "ON", "REDIRECT", lambda ctx: ctx["idB"])
        s.send("A", ("SET", "k", "1"), ("GET", "k"), ("GET", "j"))
        s.expect("A", 3)
        s.cmd("C", "SET", "k", "2")
        s.expect("B", 1, check=b"__redis__:invalidate")
        s.cmd("C", "SET", "j", "2")
        s.expect("B", 1)
        s.cmd("A", "CLIENT", "GETREDIR", norm=norm_int)
        s.cmd("A", "CLIENT", "TRACKING", "ON", "REDIRECT", "999999", check=b"ERR")
        s.cmd("A", "GET", "k")
        s.cmd("C", "FLUSHALL")
        s.expect("B", 1)
        self.check(s)

    # ------------------------------------------------------------------ SELECT, RESET, QUIT

    def test_select(self):
        s = Scenario("select: databases per connection")
        s.send("A", ("SELECT", "1"), ("SET", "k", "db1"), ("SELECT", "0"), ("GET", "k"),
               ("SELECT", "1"), ("GET", "k"), ("SELECT", "99"), ("SELECT", "x"),
               ("MOVE", "k", "2"), ("SELECT", "2"), ("GET", "k"), ("DBSIZE",),
               ("SWAPDB", "0", "2"), ("SELECT", "0"), ("GET", "k"))
        s.expect("A", 15, check=b"out of range")
        s.cmd("B", "GET", "k")
        self.check(s)

    def test_reset(self):
        s = Scenario("reset: from every connection state")
        s.send("A", ("HELLO", "3", "SETNAME", "n"), ("SELECT", "3"), ("SET", "k", "3"),
               ("CLIENT", "TRACKING", "ON"), ("GET", "k"), ("WATCH", "k"), ("MULTI",),
               ("SET", "k", "x"))
        s.expect("A", 8, norm=norm_hello)
        s.cmd("A", "RESET", check=b"RESET")
        s.send("A", ("CLIENT", "GETNAME"), ("GET", "k"), ("CLIENT", "TRACKINGINFO"), ("EXEC",))
        s.expect("A", 4)
        s.cmd("A", "SUBSCRIBE", "c")
        s.cmd("A", "PSUBSCRIBE", "p*")
        s.cmd("A", "RESET")
        s.cmd("B", "PUBLISH", "c", "nobody-listens")
        s.cmd("A", "GET", "k")
        s.send("A", ("CLIENT", "REPLY", "OFF"), ("GET", "k"), ("RESET",), ("PING",))
        s.expect("A", 2)
        s.send("A", ("MULTI",), ("RESET",), ("PING",))
        s.expect("A", 3)
        self.check(s)

    def test_quit(self):
        s = Scenario("quit: plain, pipelined, subscribed, in MULTI")
        s.send("A", ("SET", "k", "v"), ("QUIT",), ("GET", "k"))
        s.expect_close("A")
        s.cmd("B", "SUBSCRIBE", "c")
        s.send("B", ("QUIT",))
        s.expect_close("B")
        s.send("C", ("HELLO", "3"), ("MULTI",), ("SET", "k", "w"), ("QUIT",))
        s.expect("C", 3, norm=norm_hello)
        s.expect_close("C")
        s.cmd("D", "GET", "k")
        s.send("E", b"QUIT\r\n")
        s.expect_close("E")
        self.check(s)

    def test_half_close_and_abandon(self):
        big = b"x" * (4 << 20)
        s = Scenario("half-close after a pipeline; client gone mid-reply")
        # Small replies only before the half-close: Redis drops whatever it has not written
        # when it reads the EOF, so a big reply there would be cut at a random point.
        s.send("A", ("SET", "big", big), ("PING",), ("GETRANGE", "big", 0, 99), ("ECHO", "last"))
        s.shutdown("A")
        s.expect_close("A")
        s.send("B", *[("GET", "big")] * 8)
        s.close("B")                      # 32 MiB of replies, nobody reads them
        s.cmd("C", "STRLEN", "big")
        self.check(s)

    def test_client_kill(self):
        s = Scenario("client kill / unblock from another connection")
        s.cmd("A", "CLIENT", "ID", capture=capture_int("idA"), norm=norm_int)
        s.send("A", ("BLPOP", "nolist", "0"))
        s.quiet("A", 0.2)
        s.cmd("B", "CLIENT", "UNBLOCK", lambda ctx: ctx["idA"])
        s.expect("A", 1)
        s.send("A", ("BLPOP", "nolist", "0"))
        s.quiet("A", 0.1)
        s.cmd("B", "CLIENT", "UNBLOCK", lambda ctx: ctx["idA"], "ERROR")
        s.expect("A", 1, check=b"UNBLOCKED")
        s.cmd("B", "CLIENT", "KILL", "ID", lambda ctx: ctx["idA"])
        s.expect_close("A")
        self.check(s)

    # ------------------------------------------------------------------ blocking commands

    def _blocking(self, s):
        # Woken by another connection.
        for cmd, wake, in (
                (("BLPOP", "l1", "l2", "5"), ("RPUSH", "l2", "a", "b")),
                (("BRPOPLPUSH", "src", "dst", "5"), ("LPUSH", "src", "x")),
                (("BLMOVE", "src2", "dst", "LEFT", "RIGHT", "5"), ("RPUSH", "src2", "y")),
                (("BLMPOP", "5", "2", "m1", "m2", "RIGHT", "COUNT", "2"),
                 ("RPUSH", "m2", "1", "2", "3")),
                (("BZPOPMIN", "z1", "5"), ("ZADD", "z1", "2.5", "m")),
                (("BZPOPMAX", "z2", "5"), ("ZADD", "z2", "1", "a", "3", "c")),
                (("BZMPOP", "5", "1", "z3", "MIN"), ("ZADD", "z3", "7", "q")),
        ):
            s.send("A", cmd)
            s.quiet("A", 0.15)
            s.cmd("B", *wake)
            s.expect("A", 1)
        # Timeouts.
        s.send("A", ("BLPOP", "none", "0.1"), ("BZPOPMIN", "none", "0.1"), ("PING",))
        s.expect("A", 3)
        # Immediately served, pipelined with other commands.
        s.send("A", ("RPUSH", "ready", "1", "2"), ("BLPOP", "ready", "1"), ("BRPOP", "ready", "1"),
               ("BLPOP", "ready", "0.05"), ("GET", "x"))
        s.expect("A", 5)
        # Streams.
        s.cmd("A", "XADD", "st", "1-1", "f", "v")
        s.send("A", ("XREAD", "BLOCK", "5000", "STREAMS", "st", "$"))
        s.quiet("A", 0.15)
        s.cmd("B", "XADD", "st", "2-1", "f", "w")
        s.expect("A", 1, check=b"2-1")
        s.cmd("A", "XGROUP", "CREATE", "st", "g", "$")
        s.send("A", ("XREADGROUP", "GROUP", "g", "c1", "BLOCK", "5000", "COUNT", "10",
                     "STREAMS", "st", ">"))
        s.quiet("A", 0.15)
        s.cmd("B", "XADD", "st", "3-1", "f", "x")
        s.expect("A", 1, check=b"3-1")
        s.send("A", ("XREAD", "BLOCK", "100", "STREAMS", "st", "$"))
        s.expect("A", 1)
        s.cmd("A", "XPENDING", "st", "g")
        # WAIT without replicas: immediate with 0, times out with 1 (see
        # test_differential_replication.py for WAIT woken by a replica).
        s.cmd("A", "WAIT", "0", "0")
        s.cmd("A", "WAIT", "1", "150")
        # Blocked inside MULTI does not block.
        s.send("A", ("MULTI",), ("BLPOP", "none", "0"), ("EXEC",))
        s.expect("A", 3)

    def test_blocking_resp2(self):
        s = Scenario("blocking commands resp2")
        self._blocking(s)
        self.check(s)

    def test_blocking_resp3(self):
        s = Scenario("blocking commands resp3")
        s.cmd("A", "HELLO", "3", norm=norm_hello)
        self._blocking(s)
        self.check(s)

    # ------------------------------------------------------------------ client protocol errors

    PROTOCOL_ERRORS = [
        b"*1\r\n$-5\r\n",
        b"*abc\r\n",
        b"*1\r\nfoo\r\n",
        b"SET \"a b\r\n",
        b"a" * 70000,
        b"*" + b"1" * 70000,
        b"*1\r\n$" + b"1" * 70000,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$600000000\r\n",
        b"*3000000000\r\n",
        b"*1\r$4\rPING\r\n",
        b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*x\r\nPING\r\n",
        b"*2\r\n$3\r\nSET\r\n$1\r\nk\r\n*1\r\n$-1\r\n",
    ]

    def _protocol_errors(self, s, hello3):
        for i, bad in enumerate(self.PROTOCOL_ERRORS):
            c = "P%d" % i
            if hello3:
                s.cmd(c, "HELLO", "3", norm=norm_hello)
            s.send(c, bad)
            s.expect_close(c)
        # Oddities Redis accepts: empty commands, blank lines, a missing final CRLF byte.
        s.send("Q", b"*-1\r\n*0\r\n\r\n\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPINGxx\r\n*1\r\n$4\r\nPING\n\n")
        s.expect("Q", 3)
        s.cmd("Q", "ECHO", "still here")

    def test_protocol_errors_resp2(self):
        s = Scenario("client protocol errors resp2")
        self._protocol_errors(s, hello3=False)
        self.check(s)

    def test_protocol_errors_resp3(self):
        s = Scenario("client protocol errors resp3")
        self._protocol_errors(s, hello3=True)
        self.check(s)

    # ------------------------------------------------------------------ introspection, scripts

    def test_introspection(self):
        s = Scenario("client info / info / client id (by shape)")
        s.cmd("A", "CLIENT", "SETNAME", "app-1")
        s.cmd("A", "CLIENT", "INFO", norm=norm_client_info, capture=capture_client_id("idA"))
        s.cmd("A", "CLIENT", "ID", norm=norm_int)
        s.cmd("A", "INFO", "server", norm=norm_info)
        s.cmd("A", "INFO", "keyspace")
        s.cmd("A", "SET", "k", "v")
        s.cmd("A", "INFO", "keyspace", norm=norm_info)
        s.cmd("A", "HELLO", "3", norm=norm_hello)
        s.cmd("A", "CLIENT", "INFO", norm=norm_client_info)
        s.cmd("A", "INFO", "clients", norm=norm_info)
        s.cmd("A", "INFO", "stats", norm=norm_info)
        s.cmd("A", "CLIENT", "NO-EVICT", "ON")
        s.cmd("A", "DBSIZE")
        self.check(s)

    def test_scripts_and_functions(self):
        lib = ("#!lua name=mylib\n"
               "redis.register_function('myincr', function(keys, args) "
               "return redis.call('INCRBY', keys[1], args[1]) end)")
        s = Scenario("eval / evalsha / function")
        s.cmd("A", "SCRIPT", "LOAD", "return {KEYS[1], ARGV[1], 42}")
        s.send("A", ("EVALSHA", "4d8f0d2e8f13b23c1d4f5d5a33a3ad12d1f3a72a", 0),
               ("EVAL", "return {KEYS[1], ARGV[1], 42}", 1, "key", "arg"),
               ("EVALSHA", "b0b1c3e4a64e7cfd5bfd2e7bb0d44aa1e1eb5a49", 1, "key", "arg"),
               ("EVAL", "return redis.call('NOSUCH')", 0), ("EVAL", "error(", 0),
               ("EVAL", "return redis.error_reply('MY error')", 0),
               ("EVAL", "return redis.status_reply('FINE')", 0),
               ("FUNCTION", "LOAD", lib), ("FCALL", "myincr", 1, "c", 5),
               ("FCALL_RO", "myincr", 1, "c", 5), ("FUNCTION", "LIST"))
        s.expect("A", 11, check=b"NOSCRIPT")
        self.check(s)


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    print_summary("differential scenarios (redis vs respscope, identical bytes):")
    sys.exit(0 if prog.result.wasSuccessful() else 1)
