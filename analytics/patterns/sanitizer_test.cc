#include "analytics/patterns/sanitizer.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

namespace respscope::patterns {
namespace {

struct Fixture {
  explicit Fixture(SanitizeOptions so) : rules(KeyRules::Build({}, std::move(so))) {
    s.Bind(*rules);
  }
  std::string Key(std::string_view k) { return std::string(s.Key(k, rules->Classify(k))); }
  std::shared_ptr<const KeyRules> rules;
  Sanitizer s;
};

SanitizeOptions WithKey(std::string key) {
  SanitizeOptions so;
  so.hash_key = std::move(key);
  return so;
}

TEST(Sanitizer, SensitiveKeysAreHashedStablyWithTheKey) {
  Fixture f(WithKey("k1"));
  std::string a = f.Key("session:abc123");
  EXPECT_EQ(a.rfind("session:", 0), 0u);
  EXPECT_EQ(a.size(), std::string("session:").size() + 16);
  EXPECT_EQ(a.find("abc123"), std::string::npos);
  EXPECT_EQ(f.Key("session:abc123"), a);  // stable across calls
  EXPECT_NE(f.Key("session:abc124"), a);
  // Equals HMAC-SHA256 computed independently.
  unsigned char md[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), "k1", 2, reinterpret_cast<const unsigned char*>("session:abc123"), 14, md,
       &len);
  char hex[17];
  for (int i = 0; i < 8; ++i) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  EXPECT_EQ(a, std::string("session:") + hex);
  // Another shard (another Sanitizer) with the same key agrees; a different key does not.
  Fixture g(WithKey("k1"));
  EXPECT_EQ(g.Key("session:abc123"), a);
  Fixture h(WithKey("k2"));
  EXPECT_NE(h.Key("session:abc123"), a);
}

TEST(Sanitizer, RedactMode) {
  SanitizeOptions so;
  so.mode = SanitizeMode::kRedact;
  so.sensitive_key_patterns = {"token:*", "*password*"};
  Fixture f(so);
  EXPECT_EQ(f.Key("token:xyz"), "token:[redacted]");
  EXPECT_EQ(f.Key("app:password:1"), "sensitive:[redacted]");
  EXPECT_EQ(f.Key("user:1"), "user:1");
}

TEST(Sanitizer, LongKeysAreCutWithMarker) {
  SanitizeOptions so;
  so.max_key_length = 10;
  Fixture f(so);
  EXPECT_EQ(f.Key("0123456789"), "0123456789");
  EXPECT_EQ(f.Key("0123456789abc"), "0123456789\xE2\x80\xA6");
  // Never splits a UTF-8 sequence; malformed bytes and controls become '?'.
  EXPECT_EQ(f.Key("012345678\xC3\xA9"), "012345678\xE2\x80\xA6");
  EXPECT_EQ(f.Key("a\xFF\x01z"), "a??z");
}

TEST(Sanitizer, ExcludedKeysClassify) {
  SanitizeOptions so;
  so.exclude_key_patterns = {"temp:*"};
  auto rules = KeyRules::Build({}, so);
  EXPECT_EQ(rules->Classify("temp:1").kind, KeyClass::kExcluded);
  EXPECT_EQ(rules->Classify("session:1").kind, KeyClass::kSensitive);
  EXPECT_EQ(rules->Classify("user:1").kind, KeyClass::kNormal);
}

TEST(Sanitizer, ClassifyFirstByteFilterKeepsEveryGlobKind) {
  // Classify skips globs by the key's first byte; globs that start with a wildcard, a class
  // or an escape must still be tried on every key.
  SanitizeOptions so;
  so.sensitive_key_patterns = {"auth:*"};
  auto plain = KeyRules::Build({}, so);
  EXPECT_EQ(plain->Classify("auth:x").kind, KeyClass::kSensitive);
  EXPECT_EQ(plain->Classify("user:auth:x").kind, KeyClass::kNormal);
  EXPECT_EQ(plain->Classify("").kind, KeyClass::kNormal);
  for (const char* glob : {"*secret*", "?ecret:*", "[sx]ecret:*", "\\secret:*"}) {
    so.sensitive_key_patterns = {"auth:*", glob};
    auto rules = KeyRules::Build({}, so);
    const char* key = glob[0] == '*' ? "my:secret:1" : "secret:1";
    EXPECT_EQ(rules->Classify(key).kind, KeyClass::kSensitive) << glob << " " << key;
    EXPECT_EQ(rules->Classify(key).index, 1) << glob;
    EXPECT_EQ(rules->Classify("auth:1").index, 0) << glob;
    EXPECT_EQ(rules->Classify("user:1").kind, KeyClass::kNormal) << glob;
  }
  so.sensitive_key_patterns = {};
  so.exclude_key_patterns = {"*:tmp"};
  auto excl = KeyRules::Build({}, so);
  EXPECT_EQ(excl->Classify("cache:tmp").kind, KeyClass::kExcluded);
  EXPECT_EQ(excl->Classify("cache:1").kind, KeyClass::kNormal);
}

TEST(Sanitizer, ErrorsKeepPrefixAndDropValues) {
  Fixture f(SanitizeOptions{});
  EXPECT_EQ(f.s.Error("WRONGTYPE",
                      "WRONGTYPE Operation against a key holding the wrong kind of value"),
            "WRONGTYPE Operation against a key holding the wrong kind of value");
  EXPECT_EQ(f.s.Error("ERR", "unknown command 'FOO', with args beginning with: 'hunter2' "),
            "ERR unknown command '[redacted]', with args beginning with: '[redacted]' ");
  EXPECT_EQ(f.s.Error("ERR", "bad key session:abc in script\r\nsecond line"),
            "ERR bad key [redacted] in script");
  EXPECT_EQ(f.s.Error("ERR", "invalid token aZ3kL9qP0xW2vB7nQ1 given"),
            "ERR invalid token [redacted] given");
  EXPECT_EQ(f.s.Error("bad prefix!", "x"), "ERR x");
  std::string long_text(400, 'a');
  std::string e(f.s.Error("ERR", long_text));
  EXPECT_EQ(e.size(), 4 + Sanitizer::kMaxErrorText + 3);
}

// Error texts as Redis 7 sends them, with the arguments of the command that caused them. The
// planted argument "plumtreeorbit" has no digit: no id-like rule would hide it.
using Args = std::vector<std::string_view>;

Sanitizer::ErrorArgs From(const Args& keys, const Args& args, bool known_code = false) {
  Sanitizer::ErrorArgs from;
  from.keys = keys;
  from.args = args;
  from.known_code = known_code;
  return from;
}

TEST(SanitizerErrorArgs, UnknownCommandWithArgs) {
  Fixture f(SanitizeOptions{});
  // Unknown commands are not captured: the quotes alone hide the name and the arguments.
  EXPECT_EQ(f.s.Error("ERR",
                      "ERR unknown command 'plumtreeorbit', with args beginning with: "
                      "'plumtreeorbit' 'kiwi' "),
            "ERR unknown command '[redacted]', with args beginning with: '[redacted]' "
            "'[redacted]' ");
}

TEST(SanitizerErrorArgs, FixedWordingIsKept) {
  Fixture f(SanitizeOptions{});
  Args keys{"cart:plumtreeorbit"}, args{"cart:plumtreeorbit", "plumtreeorbit"};
  EXPECT_EQ(f.s.Error("WRONGTYPE",
                      "WRONGTYPE Operation against a key holding the wrong kind of "
                      "value",
                      From(keys, args, true)),
            "WRONGTYPE Operation against a key holding the wrong kind of value");
  // AUTH's arguments are never captured; the texts are fixed.
  EXPECT_EQ(f.s.Error("WRONGPASS", "WRONGPASS invalid username-password pair or user is disabled.",
                      From({}, {}, true)),
            "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(f.s.Error("NOAUTH", "NOAUTH Authentication required.", From({}, {}, true)),
            "NOAUTH Authentication required.");
  // A script's WRONGTYPE from redis.call carries the script's SHA (id-like) and its own words.
  Args eval{"return redis.call('lpush', KEYS[1], ARGV[1])", "1", "cart:plumtreeorbit",
            "plumtreeorbit"};
  EXPECT_EQ(f.s.Error("WRONGTYPE",
                      "WRONGTYPE Operation against a key holding the wrong kind of "
                      "value script: bfd2c96b827c9f4a0ee02305e30a50573a708bda, on "
                      "@user_script:1.",
                      From({"cart:plumtreeorbit"}, eval, true)),
            "WRONGTYPE Operation against a key holding the wrong kind of value script: "
            "[redacted], on @user_script:1.");
}

TEST(SanitizerErrorArgs, EvalErrorReplyBuiltFromArgv) {
  Fixture f(SanitizeOptions{});
  Args args{"return redis.error_reply('bad ' .. ARGV[1])", "0", "plumtreeorbit"};
  // redis.error_reply('bad ' .. ARGV[1]): the reply is "-bad plumtreeorbit".
  EXPECT_EQ(f.s.Error("bad", "bad plumtreeorbit", From({}, args)), "ERR bad [redacted]");
  // Case changed by the script, punctuation around it, glued to a label.
  EXPECT_EQ(f.s.Error("ERR", "ERR bad PlumTreeOrbit.", From({}, args)), "ERR bad [redacted].");
  EXPECT_EQ(f.s.Error("ERR", "ERR bad:plumtreeorbit!", From({}, args)), "ERR [redacted]");
  // An argument of several words, and a short one as a whole word only.
  Args two{"return 1", "0", "my plumtree phrase", "z"};
  EXPECT_EQ(f.s.Error("ERR", "ERR bad my plumtree phrase and z (zone)", From({}, two)),
            "ERR bad [redacted] [redacted] [redacted] and [redacted] (zone)");
}

TEST(SanitizerErrorArgs, LuaErrorWrappedByRedis) {
  Fixture f(SanitizeOptions{});
  Args args{"error('bad ' .. ARGV[1])", "0", "plumtreeorbit"};
  EXPECT_EQ(f.s.Error("ERR",
                      "ERR user_script:1: bad plumtreeorbit script: "
                      "94803fec0a4ca9f247d595f927a1297dca0c2715, on @user_script:1.",
                      From({}, args, true)),
            "ERR user_script:1: bad [redacted] script: [redacted], on @user_script:1.");
}

TEST(SanitizerErrorArgs, FcallErrors) {
  Fixture f(SanitizeOptions{});
  Args f1{"f1", "0", "plumtreeorbit"};
  EXPECT_EQ(f.s.Error("bad", "bad plumtreeorbit", From({}, f1)), "ERR bad [redacted]");
  Args f2{"f2", "0", "plumtreeorbit"};
  // The function's name is an argument too.
  EXPECT_EQ(f.s.Error("ERR",
                      "ERR user_function:3: bad plumtreeorbit script: f2, on "
                      "@user_function:3.",
                      From({}, f2, true)),
            "ERR user_function:3: bad [redacted] script: [redacted], on @user_function:3.");
}

TEST(SanitizerErrorArgs, ErrorsQuotingOrNamingAKey) {
  Fixture f(SanitizeOptions{});
  Args keys{"orders:plumtreeorbit"};
  Args args{"GROUP", "g", "c", "STREAMS", "orders:plumtreeorbit", ">"};
  EXPECT_EQ(f.s.Error("NOGROUP",
                      "NOGROUP No such key 'orders:plumtreeorbit' or consumer group "
                      "'g' in XREADGROUP with GROUP option",
                      From(keys, {}, true)),
            "NOGROUP No such key '[redacted]' or consumer group '[redacted]' in XREADGROUP with "
            "GROUP option");
  // A script naming its key unquoted: keys are known for every command.
  EXPECT_EQ(f.s.Error("ERR", "ERR missing orders:plumtreeorbit, giving up", From(keys, {})),
            "ERR missing [redacted], giving up");
}

TEST(SanitizerErrorArgs, PrefixHoldingAnArgumentIsNotShown) {
  Fixture f(SanitizeOptions{});
  Args args{"return redis.error_reply(ARGV[1] .. ' failed')", "0", "PLUMTREE"};
  EXPECT_EQ(f.s.Error("PLUMTREE", "PLUMTREE failed", From({}, args)), "ERR [redacted] failed");
  Args phrase{"x", "0", "PLUMTREE ORBIT"};
  EXPECT_EQ(f.s.Error("PLUMTREE", "PLUMTREE ORBIT failed", From({}, phrase)),
            "ERR [redacted] [redacted] failed");
  // One of Redis's own codes stays: it is the label the error is counted under anyway.
  Args code{"return redis.error_reply('WRONGTYPE ' .. ARGV[1])", "0", "WRONGTYPE"};
  EXPECT_EQ(f.s.Error("WRONGTYPE", "WRONGTYPE WRONGTYPE", From({}, code, true)),
            "WRONGTYPE [redacted]");
}

TEST(SanitizerErrorArgs, ArgumentCutByTheTextsEnd) {
  Fixture f(SanitizeOptions{});
  std::string arg;
  while (arg.size() < 400) arg += "plumtreeorbit";
  Args args{"s", "0", arg};
  // The reply scanner keeps the first 256 bytes; the sanitiser shows 128 of them.
  std::string text = ("ERR bad " + arg).substr(0, 256);
  std::string e(f.s.Error("ERR", text, From({}, args)));
  EXPECT_EQ(e, "ERR bad [redacted]" + std::string(Sanitizer::kCutMarker));
  std::string near_end = "ERR " + std::string(120, 'w') + " " + arg.substr(0, 20);
  e = f.s.Error("ERR", near_end, From({}, args));
  EXPECT_EQ(e.find("plum"), std::string::npos) << e;
}

TEST(SanitizerErrorArgs, CaptureValuesKeepsArgumentsAndQuotes) {
  SanitizeOptions so;
  so.capture_values = true;
  Fixture f(so);
  Args args{"s", "0", "plumtreeorbit"};
  EXPECT_EQ(f.s.Error("ERR", "ERR bad plumtreeorbit in 'quoted words' \"x\"", From({}, args)),
            "ERR bad plumtreeorbit in 'quoted words' \"x\"");
  EXPECT_EQ(f.s.Error("PLUMTREE", "PLUMTREE failed", From({}, {"PLUMTREE"})), "PLUMTREE failed");
  // Sensitive keys and id-like tokens stay hidden.
  EXPECT_EQ(f.s.Error("ERR", "ERR 'session:abc' token aZ3kL9qP0xW2vB7nQ1", From({}, args)),
            "ERR '[redacted]' token [redacted]");
}

// Free text (a failed job's reason): first line, no prefix, same word rules, and nothing left
// over from the last error's arguments.
TEST(Sanitizer, TextIsTheFirstLineWithoutPrefix) {
  Fixture f(SanitizeOptions{});
  Args args{"s", "0", "plumtreeorbit"};
  EXPECT_EQ(f.s.Error("ERR", "ERR plumtreeorbit", From({}, args)), "ERR [redacted]");
  EXPECT_EQ(f.s.Text("  plumtreeorbit failed: token aZ3kL9qP0xW2vB7nQ1 for 'x'\nstack"),
            "plumtreeorbit failed: token [redacted] for '[redacted]'");
  std::string e(f.s.Text(std::string(400, 'a')));
  EXPECT_EQ(e, std::string(Sanitizer::kMaxErrorText, 'a') + std::string(Sanitizer::kCutMarker));
}

TEST(Sanitizer, ValuesOnlyWhenCaptured) {
  Fixture off(SanitizeOptions{});
  EXPECT_EQ(off.s.Value("v", {}), "");
  SanitizeOptions so;
  so.capture_values = true;
  so.max_value_size = 4;
  Fixture on(so);
  EXPECT_EQ(on.s.Value("abcdef", {}), "abcd\xE2\x80\xA6");
  EXPECT_EQ(on.s.Value("abcdef", {KeyClass::kSensitive, 0}), "");
}

// capture_values keeps the quoted text of errors and job failure reasons, cut at
// max_value_size; a quoted sensitive key stays hidden. (A quote used to stop the scan: the
// thread looped forever.)
TEST(Sanitizer, QuotedTextKeptOnlyWhenValuesAreCaptured) {
  Fixture off(SanitizeOptions{});
  EXPECT_EQ(std::string(off.s.Error("ERR", "ERR unknown command 'FOO', with args")),
            "ERR unknown command '[redacted]', with args");
  SanitizeOptions so;
  so.capture_values = true;
  so.max_value_size = 4;
  Fixture on(so);
  EXPECT_EQ(std::string(on.s.Error("ERR", "ERR unknown command 'FOO', with args")),
            "ERR unknown command 'FOO', with args");
  EXPECT_EQ(std::string(on.s.Text("bad value \"abcdefgh\" here")),
            "bad value \"abcd\xE2\x80\xA6\" here");
  EXPECT_EQ(std::string(on.s.Text("no 'session:42' today")), "no '[redacted]' today");
  EXPECT_EQ(std::string(on.s.Text("dangling 'quote")), "dangling 'quot\xE2\x80\xA6'");
}

TEST(Sanitizer, SampleRate) {
  SanitizeOptions so;
  so.sample_rate = 0.25;
  Fixture f(so);
  int n = 0;
  for (int i = 0; i < 100000; ++i) n += f.s.Sampled();
  EXPECT_NEAR(n, 25000, 1500);
  so.sample_rate = 0.0;
  Fixture none(so);
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(none.s.Sampled());
  Fixture all(SanitizeOptions{});
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(all.s.Sampled());
}

}  // namespace
}  // namespace respscope::patterns
