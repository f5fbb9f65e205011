#include "analytics/patterns/normalizer.h"

#include <gtest/gtest.h>

#include <random>

#include "analytics/patterns/bytes.h"
#include "analytics/patterns/glob.h"

namespace respscope::patterns {
namespace {

std::string Auto(std::string_view key) {
  std::string out;
  Normalizer::AutoPattern(key, out);
  return out;
}

TEST(Glob, RedisDialect) {
  EXPECT_TRUE(GlobMatch("session:*", "session:abc"));
  EXPECT_TRUE(GlobMatch("session:*", "session:"));
  EXPECT_FALSE(GlobMatch("session:*", "sessions:abc"));
  EXPECT_TRUE(GlobMatch("user:*:profile", "user:1:2:profile"));
  EXPECT_FALSE(GlobMatch("user:*:profile", "user:1:profiles"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_FALSE(GlobMatch("h?llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  // Redis (stringmatchlen) negates a class with '^' only: '!' is a literal member.
  EXPECT_TRUE(GlobMatch("h[!a]llo", "hallo"));
  EXPECT_TRUE(GlobMatch("h[!a]llo", "h!llo"));
  EXPECT_FALSE(GlobMatch("h[!a]llo", "hullo"));
  EXPECT_TRUE(GlobMatch("h[a-c]llo", "hbllo"));
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "axb"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*a*b*c*", "xxaxxbxxcxx"));
  EXPECT_FALSE(GlobMatch("*a*b*c*", "xxaxxcxxbxx"));
  EXPECT_EQ(GlobLiteralPrefix("session:*"), "session:");
  EXPECT_EQ(GlobLiteralPrefix("*pw*"), "");
}

TEST(Normalizer, IdLikeSegments) {
  EXPECT_TRUE(Normalizer::LooksLikeId("123"));
  EXPECT_TRUE(Normalizer::LooksLikeId("550e8400-e29b-41d4-a716-446655440000"));
  EXPECT_TRUE(Normalizer::LooksLikeId("5f2b9c1a"));
  EXPECT_TRUE(Normalizer::LooksLikeId("aZ3kL9qP0xW2vB7n"));
  EXPECT_TRUE(Normalizer::LooksLikeId("repeat_5adba9eaa101305b"));
  EXPECT_FALSE(Normalizer::LooksLikeId("habits"));
  EXPECT_FALSE(Normalizer::LooksLikeId("deadbeef"));  // letters only: a word, not an id
  EXPECT_FALSE(Normalizer::LooksLikeId("v2"));
  EXPECT_FALSE(Normalizer::LooksLikeId("profile_settings_extended"));  // no digit
  EXPECT_FALSE(Normalizer::LooksLikeId(""));
}

TEST(Normalizer, AutoPatterns) {
  EXPECT_EQ(Auto("user:123:habits"), "user:{id}:habits");
  EXPECT_EQ(Auto("bull:email:42"), "bull:email:{id}");
  EXPECT_EQ(Auto("bull:email:wait"), "bull:email:wait");
  EXPECT_EQ(Auto("cache:550e8400-e29b-41d4-a716-446655440000"), "cache:{id}");
  EXPECT_EQ(Auto("counter"), "counter");
  EXPECT_EQ(Auto("a::b:"), "a::b:");
  EXPECT_EQ(Auto("x:\x01y"), "x:?y");
  std::string long_key(500, 'k');
  std::string p = Auto(long_key);
  EXPECT_EQ(p.size(), Normalizer::kMaxNameLength + 3);
  EXPECT_EQ(p.substr(Normalizer::kMaxNameLength), "\xE2\x80\xA6");
}

// The normaliser's rules written the plain way (one predicate per segment), as the reference
// the table-driven implementation must agree with on any input.
bool RefIsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool RefLooksLikeId(std::string_view s) {
  if (s.empty()) return false;
  size_t digits = 0, alpha = 0, hex = 0;
  for (char c : s) {
    bool d = c >= '0' && c <= '9', a = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!d && !a && c != '_' && c != '-' && c != '+' && c != '/' && c != '=') return false;
    digits += d;
    alpha += a;
    hex += RefIsHex(c);
  }
  bool uuid = s.size() == 36;
  for (size_t i = 0; uuid && i < 36; ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    uuid = dash ? s[i] == '-' : RefIsHex(s[i]);
  }
  return digits == s.size() || uuid || (s.size() >= 8 && hex == s.size() && digits > 0) ||
         (s.size() >= 16 && digits > 0 && alpha > 0);
}
std::string RefAuto(std::string_view key) {
  std::string out;
  size_t start = 0;
  while (true) {
    size_t end = key.find(':', start);
    std::string_view seg = key.substr(start, end == key.npos ? key.npos : end - start);
    if (RefLooksLikeId(seg)) {
      out += "{id}";
    } else {
      for (char c : seg) out += (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) ? '?' : c;
    }
    if (out.size() > Normalizer::kMaxNameLength) {
      out.resize(Normalizer::kMaxNameLength);
      return out + "\xE2\x80\xA6";
    }
    if (end == key.npos) return out;
    out += ':';
    start = end + 1;
  }
}

TEST(Normalizer, AgreesWithTheReferenceOnRandomKeys) {
  std::mt19937_64 rng(11);
  const std::string alphabet = "0123456789abcdefxyzABCDEFXYZ:::_-+/=. {}\x01\x7f\xff\xc3";
  const std::string uuid = "550e8400-e29b-41d4-a716-446655440000";
  for (int i = 0; i < 200'000; ++i) {
    std::string key;
    size_t len = rng() % (i % 50 == 0 ? 300 : 40);
    while (key.size() < len) {
      if (rng() % 20 == 0) {
        key += uuid;
      } else {
        key += alphabet[rng() % alphabet.size()];
      }
    }
    ASSERT_EQ(Auto(key), RefAuto(key)) << key;
    ASSERT_EQ(Normalizer::LooksLikeId(key), RefLooksLikeId(key)) << key;
  }
}

TEST(SameBytes, EveryLengthAndPosition) {
  for (size_t n = 0; n <= 40; ++n) {
    std::string a(n, 'x'), b(n, 'x');
    for (size_t i = 0; i < n; ++i) a[i] = b[i] = static_cast<char>('a' + i % 26);
    EXPECT_TRUE(SameBytes(a, b)) << n;
    EXPECT_FALSE(SameBytes(a, b + "y")) << n;
    for (size_t i = 0; i < n; ++i) {
      std::string c = b;
      c[i] = static_cast<char>(c[i] ^ 0x40);
      EXPECT_FALSE(SameBytes(a, c)) << n << " " << i;
    }
  }
}

TEST(Normalizer, RulesSensitiveAndInterning) {
  PatternOptions po;
  po.rules = {{"user:*:profile", "user:{id}:profile"}, {"re:^feed:[a-z]+:\\d+$", "feed:{x}:{id}"}};
  auto rules = KeyRules::Build(po, SanitizeOptions{});
  Normalizer n;
  auto id = [&](std::string_view k) { return n.PatternId(*rules, k, rules->Classify(k)); };
  uint32_t a = id("user:abc:profile");
  EXPECT_EQ(n.Name(a), "user:{id}:profile");
  EXPECT_EQ(id("user:xyz:profile"), a);
  EXPECT_EQ(n.Name(id("feed:home:42")), "feed:{x}:{id}");
  // A sensitive key's pattern is its glob, never derived from the key text.
  EXPECT_EQ(n.Name(id("session:0123456789abcdef0123")), "session:*");
  EXPECT_EQ(n.Name(id("user:7:habits")), "user:{id}:habits");
  EXPECT_EQ(id("user:8:habits"), id("user:7:habits"));
  EXPECT_NE(a, Normalizer::kOther);
}

TEST(Normalizer, MaxPatternsOverflowToOther) {
  PatternOptions po;
  po.max_patterns = 3;
  auto rules = KeyRules::Build(po, SanitizeOptions{});
  Normalizer n;
  auto id = [&](std::string_view k) { return n.PatternId(*rules, k, rules->Classify(k)); };
  uint32_t a = id("a:1"), b = id("b:1"), c = id("c:1");
  EXPECT_NE(a, Normalizer::kOther);
  EXPECT_NE(b, Normalizer::kOther);
  EXPECT_NE(c, Normalizer::kOther);
  EXPECT_EQ(id("d:1"), Normalizer::kOther);
  EXPECT_EQ(id("e:1"), Normalizer::kOther);
  EXPECT_EQ(id("a:2"), a);  // known patterns keep working when full
  EXPECT_EQ(n.size(), 4u);
  EXPECT_EQ(n.Name(Normalizer::kOther), "other");
}

TEST(Normalizer, AutoOffSendsUnmatchedToOther) {
  PatternOptions po;
  po.auto_patterns = false;
  po.rules = {{"q:*", "q:*"}};
  auto rules = KeyRules::Build(po, SanitizeOptions{});
  Normalizer n;
  EXPECT_EQ(n.PatternId(*rules, "user:1", {}), Normalizer::kOther);
  EXPECT_EQ(n.Name(n.PatternId(*rules, "q:1", {})), "q:*");
}

TEST(KeyRules, InvalidInputThrows) {
  PatternOptions po;
  po.rules = {{"re:([", "bad"}};
  EXPECT_THROW(KeyRules::Build(po, {}), std::invalid_argument);
  SanitizeOptions so;
  so.sample_rate = 1.5;
  EXPECT_THROW(KeyRules::Build({}, so), std::invalid_argument);
}

TEST(RulesHub, PublishBumpsVersion) {
  RulesHub hub(KeyRules::Build({}, {}));
  uint64_t v = hub.Version();
  auto next = KeyRules::Build({}, {});
  hub.Publish(next);
  EXPECT_GT(hub.Version(), v);
  EXPECT_EQ(hub.Get(), next);
}

}  // namespace
}  // namespace respscope::patterns
