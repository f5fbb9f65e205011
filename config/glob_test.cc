// Redis-style globs: the cases of Redis's own stringmatchlen tests plus the edges of our
// validation ("an invalid pattern matches nothing").
#include "config/glob.h"

#include <gtest/gtest.h>

#include <string>

namespace respscope::config {
namespace {

struct GlobCase {
  const char* pattern;
  const char* text;
  bool match;
};

TEST(GlobTest, Matches) {
  const GlobCase cases[] = {
      {"*", "", true},
      {"*", "anything:at:all", true},
      {"", "", true},
      {"", "a", false},
      {"user:*", "user:", true},
      {"user:*", "user:42:profile", true},
      {"user:*", "users:42", false},
      {"user:*:profile", "user:42:profile", true},
      {"user:*:profile", "user:42:settings", false},
      {"user:*:profile", "user:a:b:profile", true},  // '*' crosses ':'
      {"h?llo", "hello", true},
      {"h?llo", "hllo", false},
      {"h[ae]llo", "hallo", true},
      {"h[ae]llo", "hillo", false},
      {"h[^e]llo", "hallo", true},
      {"h[^e]llo", "hello", false},
      {"h[a-b]llo", "hbllo", true},
      {"h[a-b]llo", "hcllo", false},
      {"h[b-a]llo", "hallo", true},  // reversed range, swapped as Redis does
      {"h[a-]llo", "h-llo", true},   // '-' before ']' is literal
      {"h\\*llo", "h*llo", true},
      {"h\\*llo", "hello", false},
      {"h[\\]]llo", "h]llo", true},
      {"a*b*c", "aXXbYYc", true},
      {"a*b*c", "aXXbYY", false},
      {"*.json", "report.json", true},
      {"*.json", "report.jsonl", false},
      {"**a", "bba", true},
      {"bull:*:id", "bull:email:id", true},
      {"*?", "", false},
      {"*?", "x", true},
  };
  for (const GlobCase& c : cases) {
    EXPECT_EQ(GlobMatch(c.pattern, c.text), c.match) << c.pattern << " ~ " << c.text;
    EXPECT_EQ(GlobError(c.pattern), "") << c.pattern;
  }
}

TEST(GlobTest, ByteWiseAndCaseSensitive) {
  EXPECT_FALSE(GlobMatch("User:*", "user:1"));
  EXPECT_TRUE(GlobMatch("caf\xc3\xa9:*", "caf\xc3\xa9:1"));
  EXPECT_TRUE(GlobMatch("k?", std::string("k\0", 2)));
}

TEST(GlobTest, InvalidPatternsAreReportedAndMatchNothing) {
  const std::pair<const char*, const char*> cases[] = {
      {"user:[abc", "unbalanced '['"},
      {"[", "unbalanced '['"},
      {"a[\\]", "unbalanced '['"},
      {"user:[]", "empty '[]' matches nothing"},
      {"[^]x", "empty '[]' matches nothing"},
      {"user\\", "'\\' at the end escapes nothing"},
  };
  for (const auto& [pattern, error] : cases) {
    EXPECT_EQ(GlobError(pattern), error) << pattern;
    for (const char* text : {"", "user:a", "user:[abc", "user\\", "x", "["}) {
      EXPECT_FALSE(GlobMatch(pattern, text)) << pattern << " ~ " << text;
    }
  }
}

TEST(GlobTest, ManyStarsStayPolynomial) {
  // Exponential backtracking would not finish this in any reasonable time.
  std::string pattern;
  for (int i = 0; i < 30; ++i) pattern += "*a";
  pattern += "*b";
  const std::string text(5000, 'a');
  EXPECT_FALSE(GlobMatch(pattern, text));
  EXPECT_TRUE(GlobMatch(pattern, text + "b"));
}

}  // namespace
}  // namespace respscope::config
