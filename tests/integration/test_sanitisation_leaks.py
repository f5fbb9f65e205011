"""Leak test: secrets sent through respscope never appear on any output surface.

Secrets are random 24-hex-digit strings generated per run. They are planted as:
  s1  a sensitive key `session:<s1>` (SET, GET, MULTI/EXEC, EVAL KEYS, MGET, DEL)
  s2  a sensitive key `token:<s2>` (HSET, HGET, BLPOP on `token:<s2>:q`)
  s3  values (of sensitive and ordinary keys, a big value)
  s4  the Redis password: redis-server --requirepass s4; AUTH s4 and HELLO 3 AUTH default s4
      through the proxy, and respscope's own upstream URL redis://:s4@...
  s5  CONFIG SET masterauth s5
  s6  a Lua error text: EVAL "error('<s6>')" 0 (the first ERR error, so it is the one sampled)
  s7  the end of an ordinary key longer than sanitization.max_key_length
  s8  a wrong AUTH password (WRONGPASS)
  s9  MIGRATE ... AUTH s9, ACL SETUSER ... >s9
with analytics.slow_command_threshold: 0ms (every command lands in the slow log), the slow log
and hot-key lists large enough to keep everything, sensitive_key_patterns at their defaults,
mode hash, `--log-level debug` and `logging: {level: debug}`.

Then EVERY output surface is scanned for every secret and every 12-character half of one:
/metrics, /, /healthz, /readyz, every /api/v1 endpoint (overview, commands, patterns, hotkeys,
slowlog, clients, history, queues, jobs/recent) and respscope's whole log. The surfaces are
also checked to have seen the planted data (hashed sensitive keys in hot keys and the slow log,
the Lua error's sanitised text), so a surface that shows nothing cannot pass by accident.

Error texts that echo an argument (test_error_text_*): Redis's own texts (unknown command with
args, WRONGTYPE, WRONGPASS, NOAUTH, NOGROUP quoting a key, EXPIRE's unquoted "Unsupported
option x") and script errors built from ARGV
through EVAL and FCALL (redis.error_reply, Lua error() that Redis wraps as "user_script:1: ..."),
also inside MULTI/EXEC. Each case runs on a fresh respscope (the first error of a label is the one
whose text is kept), with secrets made of letters only, so no id-like rule hides them: every
surface and the log must be free of them, while the error's label and fixed wording are shown.
With sanitization.capture_values on, the same texts keep the arguments.

Also: the hashed form is stable (same key -> same string, also across a restart with the same
RESPSCOPE_HASH_KEY) and keyed (another key gives another string); mode redact shows no hash.
"""
import json
import re
import secrets
import time
import unittest

import harness
import redis

SURFACES = ["/metrics", "/", "/healthz", "/readyz", "/api/v1/overview", "/api/v1/commands",
            "/api/v1/patterns", "/api/v1/hotkeys", "/api/v1/slowlog", "/api/v1/clients",
            "/api/v1/history", "/api/v1/history?step=1", "/api/v1/queues", "/api/v1/jobs/recent",
            "/api/v1/export?format=json", "/api/v1/export?format=ndjson",
            "/api/v1/export?format=csv", "/api/v1/report?format=html", "/api/v1/insights",
            "/api/v1/health", "/api/v1/correlations"]

CONFIG = """
analytics:
  slow_command_threshold: 0ms
  slowlog_size: 2000
  top_keys: 1000
  history: {fine: 1s for 10m, coarse: 10s for 1h}
sanitization:
  mode: %s
  max_key_length: 200
  capture_values: %s
logging: {level: debug, format: json}
"""

HASHED = re.compile(r"^(session|token):[0-9a-f]{16}$")


def new_secret():
    return secrets.token_hex(12)


def word_secret():
    """24 letters outside the hex digits: a secret that no id-like rule hides."""
    return "".join(secrets.choice("ghijklmnopqrstuvwxyz") for _ in range(24))


LIBRARY = """#!lua name=leaklib
redis.register_function('reply_bad', function(keys, args) return redis.error_reply('bad ' .. args[1]) end)
redis.register_function('raise_bad', function(keys, args) error('bad ' .. args[1]) end)
"""


def error_cases(a, b):
    """Error replies that echo the secrets a and b, sent as arguments. Each case: (name, setup
    commands, failing commands, run the failing ones inside MULTI/EXEC, the label the error is
    counted under, fixed words its shown text keeps, Redis needs a password)."""
    load = [("FUNCTION", "LOAD", "REPLACE", LIBRARY)]
    return [
        ("unknown command", [], [(a, b)], False, "ERR",
         "unknown command '[redacted]', with args beginning with:", False),
        ("WRONGTYPE", [("SET", "plain:wt", "v")], [("LPUSH", "plain:wt", a)], False, "WRONGTYPE",
         "Operation against a key holding the wrong kind of value", False),
        ("EVAL redis.error_reply", [],
         [("EVAL", "return redis.error_reply('bad ' .. ARGV[1])", 0, a)], False, "other",
         "ERR bad [redacted]", False),
        ("EVAL error()", [], [("EVAL", "error('bad ' .. ARGV[1])", 0, a)], False, "ERR",
         "ERR user_script:1: bad [redacted] script: [redacted], on @user_script:1.", False),
        ("EVAL two arguments, one of several words", [],
         [("EVAL", "return redis.error_reply('ERR bad ' .. ARGV[1] .. ' and ' .. ARGV[2])", 0,
           "two words " + a, b)], False, "ERR", "and [redacted]", False),
        ("EVAL argument as the first word", [],
         [("EVAL", "return redis.error_reply(ARGV[1] .. ' failed')", 0, a.upper())], False,
         "other", "ERR [redacted] failed", False),
        ("FCALL redis.error_reply", load, [("FCALL", "reply_bad", 0, a)], False, "other",
         "ERR bad [redacted]", False),
        ("FCALL error()", load, [("FCALL", "raise_bad", 0, a)], False, "ERR",
         "ERR user_function:", False),
        ("EVAL inside MULTI/EXEC", [],
         [("EVAL", "return redis.error_reply('bad ' .. ARGV[1])", 0, a)], True, "other",
         "ERR bad [redacted]", False),
        ("EXPIRE option", [("SET", "plain:ex", "v")], [("EXPIRE", "plain:ex", 10, a)], False,
         "ERR", "ERR Unsupported option [redacted]", False),
        ("WRONGPASS", [], [("AUTH", "nosuchuser", a)], False, "WRONGPASS",
         "WRONGPASS invalid username-password pair or user is disabled.", False),
        ("NOAUTH", [], [("SET", "plain:na", a)], False, "NOAUTH",
         "NOAUTH Authentication required.", True),
        ("NOGROUP quoting a key", [],
         [("XREADGROUP", "GROUP", "g", "c", "STREAMS", "session:" + a, ">")], False, "NOGROUP",
         "NOGROUP No such key '[redacted]' or consumer group '[redacted]'", False),
        ("script naming its key", [],
         [("EVAL", "return redis.error_reply('missing ' .. KEYS[1])", 1, "session:" + a)],
         False, "other", "ERR missing [redacted]", False),
    ]


def find_leaks(texts, secrets_by_name):
    """[(surface, secret name, fragment)] for every secret or 12-char half found."""
    leaks = []
    for surface, text in texts.items():
        low = text.lower()
        for name, s in secrets_by_name.items():
            for frag in (s, s[:12], s[12:]):
                if frag.lower() in low:
                    leaks.append((surface, name, frag))
                    break
    return leaks


class Leaks(unittest.TestCase):
    def start(self, mode="hash", hash_key=None, password=None, extra_redis=(), redis_server=None,
              capture_values=False):
        r = redis_server
        if r is None:
            extra = list(extra_redis)
            if password:
                extra += ["--requirepass", password]
            r = harness.Redis(extra=extra)
            self.addCleanup(r.stop)
        url = ("redis://:%s@127.0.0.1:%d" % (password, r.port)) if password else r.url()
        config = CONFIG % (mode, "true" if capture_values else "false")
        rs = harness.Respscope(url, config_text=config, extra=["--log-level", "debug"],
                               env={"RESPSCOPE_HASH_KEY": hash_key or new_secret()}, threads=2)
        self.addCleanup(rs.stop)
        return r, rs

    def api(self, rs, path):
        status, body = rs.http(path)
        self.assertEqual(status, 200, path)
        return json.loads(body)

    def wait_commands(self, rs, n, timeout=5.0):
        """Overview once it has counted n commands (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            ov = self.api(rs, "/api/v1/overview")
            if ov["totals"]["commands"] >= n or time.monotonic() > deadline:
                return ov
            time.sleep(0.05)

    def collect(self, rs):
        texts = {}
        for path in SURFACES:
            status, body = rs.http(path)
            self.assertIn(status, (200, 404), path)
            texts[path] = body
        return texts

    def test_no_secret_on_any_surface(self):
        S = {"s%d" % i: new_secret() for i in range(1, 10)}
        r, rs = self.start(password=S["s4"])
        c = redis.Redis(port=rs.port, socket_timeout=10)
        self.addCleanup(c.close)
        sent = 0

        def call(*args):
            nonlocal sent
            sent += 1
            return c.execute_command(*args)

        with self.assertRaises(redis.ResponseError) as cm:
            call("AUTH", S["s8"])
        self.assertIn("WRONGPASS", str(cm.exception))
        self.assertTrue(call("AUTH", S["s4"]))
        # The Lua error first: the first error of each prefix is the one whose text is kept.
        with self.assertRaises(redis.ResponseError) as cm:
            call("EVAL", "error('%s')" % S["s6"], 0)
        self.assertIn(S["s6"], str(cm.exception), "Redis echoes the Lua error text")

        sess, tok = "session:" + S["s1"], "token:" + S["s2"]
        long_key = "long:" + "a" * 300 + ":" + S["s7"]
        long_sess = "session:" + "b" * 300 + S["s1"]
        for _ in range(3):
            self.assertTrue(call("SET", sess, "value-" + S["s3"]))
            self.assertEqual(call("GET", sess), ("value-" + S["s3"]).encode())
            call("HSET", tok, "f", S["s3"])
            self.assertEqual(call("HGET", tok, "f"), S["s3"].encode())
            self.assertTrue(call("SET", long_key, S["s3"]))
            self.assertEqual(call("GET", long_key), S["s3"].encode())
            self.assertTrue(call("SET", long_sess, S["s3"]))
        self.assertTrue(call("SET", "plain:big", S["s3"] * 2000))
        self.assertEqual(len(call("GET", "plain:big")), 48000)
        self.assertEqual(call("MGET", sess, tok + ":none", "plain:big")[1], None)
        self.assertEqual(call("EVAL", "return redis.call('GET', KEYS[1])", 1, sess),
                         ("value-" + S["s3"]).encode())
        self.assertIsNone(call("BLPOP", tok + ":q", 0.05))
        p = c.pipeline(transaction=True)
        p.get(sess)
        p.hget(tok, "f")
        self.assertEqual(p.execute(), [("value-" + S["s3"]).encode(), S["s3"].encode()])
        sent += 4  # MULTI, GET, HGET, EXEC
        self.assertTrue(call("CONFIG", "SET", "masterauth", S["s5"]))
        with self.assertRaises(redis.ResponseError):
            call("MIGRATE", "127.0.0.1", harness.free_port(), sess, 0, 100, "AUTH", S["s9"])
        self.assertTrue(call("ACL", "SETUSER", "leaktest", "on", ">" + S["s9"], "~*", "+get"))
        with self.assertRaises(redis.ResponseError):
            call("INCR", sess)
        # HELLO 3 AUTH on a raw connection, then RESP3 traffic on a sensitive key.
        raw = harness.RawClient(rs.port)
        self.addCleanup(raw.close)
        raw.send(harness.resp_command("HELLO", "3", "AUTH", "default", S["s4"]))
        self.assertTrue(raw.read_frames(1)[0].startswith(b"%"))
        raw.send(harness.resp_command("GET", sess) + harness.resp_command("DEL", tok + ":q"))
        self.assertEqual(raw.read_frames(2)[0], b"$30\r\nvalue-%s\r\n" % S["s3"].encode())
        sent += 3

        ov = self.wait_commands(rs, sent)
        self.assertEqual(ov["totals"]["commands"], sent)
        time.sleep(2.5)  # fine history steps of 1 s, so /api/v1/history has points
        texts = self.collect(rs)
        self.assertEqual(rs.stop(), 0)
        with open(rs.log_path, encoding="utf-8", errors="replace") as f:
            texts["log"] = f.read()

        # The surfaces saw the planted data (in sanitised form).
        hot = json.loads(texts["/api/v1/hotkeys"])["keys"]
        hot_keys = {k["key"] for k in hot}
        print("hot keys:", sorted(k[:60] for k in hot_keys))
        hashed = [k for k in hot_keys if HASHED.match(k)]
        self.assertGreaterEqual(len([k for k in hashed if k.startswith("session:")]), 2, hot_keys)
        self.assertGreaterEqual(len([k for k in hashed if k.startswith("token:")]), 2, hot_keys)
        self.assertTrue(any(k.startswith("long:aaaa") and len(k) <= 210 for k in hot_keys))
        slow = json.loads(texts["/api/v1/slowlog"])["entries"]
        self.assertGreaterEqual(len(slow), sent - 10, "threshold 0: every timed command")
        self.assertTrue(any(HASHED.match(e["key"]) for e in slow))
        self.assertTrue({"auth", "hello", "config|set", "migrate", "eval"} <=
                        {e["command"] for e in slow}, {e["command"] for e in slow})
        errors = json.loads(texts["/api/v1/overview"])["errors"]
        print("errors:", errors)
        self.assertIn("user_script", errors["ERR"]["last_text"], "the Lua error was the sample")
        self.assertEqual(errors["WRONGPASS"]["count"], 1)
        pats = {p["pattern"] for p in json.loads(texts["/api/v1/patterns"])["patterns"]}
        self.assertTrue({"session:*", "token:*"} <= pats, pats)
        self.assertTrue(json.loads(texts["/api/v1/history?step=1"])["points"], "history has points")
        self.assertIn("listening on", texts["log"])

        leaks = find_leaks(texts, S)
        for surface, name, frag in leaks:
            i = texts[surface].lower().find(frag.lower())
            print("LEAK of %s on %s: ...%s..." % (name, surface,
                                                   texts[surface][max(0, i - 80):i + 40]))
        self.assertEqual(leaks, [])
        print("scanned %d surfaces (%d bytes) for %d secrets: none found" % (
            len(texts), sum(len(t) for t in texts.values()), len(S)))

    def hot_session_key(self, rs, key, total=2):
        """SET and GET key; the hot keys once `total` commands are counted."""
        c = redis.Redis(port=rs.port, socket_timeout=10)
        try:
            c.set(key, "v")
            c.get(key)
        finally:
            c.close()
        self.assertEqual(self.wait_commands(rs, total)["totals"]["commands"], total)
        return sorted(k["key"] for k in self.api(rs, "/api/v1/hotkeys")["keys"])

    def test_hash_is_stable_and_keyed(self):
        secret = new_secret()
        key = "session:" + secret
        hash_key = new_secret()
        shown = []
        for hk in (hash_key, hash_key, new_secret()):
            _, rs = self.start(hash_key=hk)
            keys = self.hot_session_key(rs, key)
            print("RESPSCOPE_HASH_KEY %s...: hot keys %s" % (hk[:6], keys))
            self.assertEqual(len(keys), 1, "SET and GET of one key: one hot key, one hash")
            self.assertRegex(keys[0], HASHED)
            self.assertNotIn(secret, keys[0])
            shown.append(keys[0])
            rs.stop()
        self.assertEqual(shown[0], shown[1], "same key, same RESPSCOPE_HASH_KEY: same hash")
        self.assertNotEqual(shown[0], shown[2], "another RESPSCOPE_HASH_KEY: another hash")

    def test_redact_mode_shows_no_hash(self):
        secret = new_secret()
        _, rs = self.start(mode="redact")
        keys = self.hot_session_key(rs, "session:" + secret)
        keys += self.hot_session_key(rs, "token:" + new_secret(), total=4)
        print("redact mode hot keys:", keys)
        self.assertEqual(sorted(set(keys)), ["session:[redacted]", "token:[redacted]"])
        texts = self.collect(rs)
        self.assertEqual(find_leaks(texts, {"s": secret}), [])
        for surface, text in texts.items():
            self.assertIsNone(re.search(r"(session|token):[0-9a-f]{16}", text), surface)

    # A word joining a label and a value with ':' ("pw:<secret>") is redacted by segment.
    def test_lua_error_word_with_colon(self):
        secret = new_secret()
        _, rs = self.start()
        c = redis.Redis(port=rs.port, socket_timeout=10)
        self.addCleanup(c.close)
        with self.assertRaises(redis.ResponseError) as cm:
            c.eval("error('pw:' .. ARGV[1])", 0, secret)
        self.assertIn(secret, str(cm.exception))
        errors = self.wait_commands(rs, 1)["errors"]
        print("errors:", errors)
        self.assertIn("user_script", errors["ERR"]["last_text"])
        self.assertEqual(find_leaks(self.collect(rs), {"s": secret}), [])

    # An upper-case token as an error reply's first word is not shown as its prefix.
    def test_uppercase_token_as_error_prefix(self):
        secret = new_secret().upper()
        _, rs = self.start()
        c = redis.Redis(port=rs.port, socket_timeout=10)
        self.addCleanup(c.close)
        with self.assertRaises(redis.ResponseError):
            c.eval("return redis.error_reply(ARGV[1] .. ' failed')", 0, secret)
        errors = self.wait_commands(rs, 1)["errors"]
        print("errors:", errors)
        self.assertEqual(sum(e["count"] for e in errors.values()), 1)
        self.assertEqual(find_leaks(self.collect(rs), {"s": secret}), [])


    def run_error_case(self, case, redis_servers, capture_values):
        """Runs one error case on a fresh respscope; (its error entry, every surface's text)."""
        name, setup, failing, in_multi, label, _, needs_password = case
        _, rs = self.start(redis_server=redis_servers[needs_password],
                           capture_values=capture_values)
        c = redis.Redis(port=rs.port, socket_timeout=10)
        self.addCleanup(c.close)
        for cmd in setup:
            c.execute_command(*cmd)
        sent = len(setup)
        if in_multi:
            p = c.pipeline(transaction=True)
            for cmd in failing:
                p.execute_command(*cmd)
            results = p.execute(raise_on_error=False)
            self.assertTrue(all(isinstance(x, redis.ResponseError) for x in results), results)
            sent += len(failing) + 2  # MULTI, EXEC
        else:
            for cmd in failing:
                # NOAUTH comes as redis-py's AuthenticationError, the others as ResponseError.
                with self.assertRaises(redis.RedisError, msg=name):
                    c.execute_command(*cmd)
            sent += len(failing)
        ov = self.wait_commands(rs, sent)
        self.assertEqual(ov["totals"]["commands"], sent, name)
        texts = self.collect(rs)
        self.assertEqual(rs.stop(), 0)
        with open(rs.log_path, encoding="utf-8", errors="replace") as f:
            texts["log"] = f.read()
        errors = ov["errors"]
        print("%s (capture_values %s): %s" % (name, capture_values, errors.get(label)))
        self.assertIn(label, errors, (name, errors))
        return errors[label], texts

    def error_servers(self):
        """An open Redis and one that wants a password (NOAUTH), shared by the cases."""
        servers = {False: harness.Redis(), True: harness.Redis(extra=["--requirepass",
                                                                      new_secret()])}
        for r in servers.values():
            self.addCleanup(r.stop)
        return servers

    # An error text keeps its label and Redis's fixed wording and never an argument.
    def test_error_text_never_echoes_an_argument(self):
        servers = self.error_servers()
        for i in range(len(error_cases("", ""))):
            a, b = word_secret(), word_secret()
            case = error_cases(a, b)[i]
            with self.subTest(case[0]):
                entry, texts = self.run_error_case(case, servers, capture_values=False)
                leaks = find_leaks(texts, {"a": a, "b": b})
                for surface, secret, frag in leaks:
                    i = texts[surface].lower().find(frag.lower())
                    print("LEAK of %s on %s: ...%s..." % (
                        secret, surface, texts[surface][max(0, i - 80):i + 40]))
                self.assertEqual(leaks, [], case[0])
                self.assertIn(case[5], entry["last_text"], case[0])

    # With capture_values on, the echoed arguments are kept (the rule is that option's).
    def test_error_text_keeps_arguments_with_capture_values(self):
        servers = self.error_servers()
        for name in ("unknown command", "EVAL redis.error_reply", "EVAL error()",
                     "FCALL error()", "EVAL inside MULTI/EXEC", "EXPIRE option"):
            a, b = word_secret(), word_secret()
            case = {c[0]: c for c in error_cases(a, b)}[name]
            with self.subTest(name):
                entry, _ = self.run_error_case(case, servers, capture_values=True)
                self.assertIn(a, entry["last_text"], name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
