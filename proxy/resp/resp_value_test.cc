#include "proxy/resp/resp_value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>

namespace respscope::resp {
namespace {

using T = RespValue::Type;

// A bullmq 6.7.0 moveToActive reply (RESP3 connection: Lua tables stay arrays).
const std::string kActivation =
    "*4\r\n*6\r\n$4\r\nname\r\n$4\r\nlifo\r\n$11\r\nprocessedOn\r\n$13\r\n1795418534021\r\n"
    "$3\r\nats\r\n$1\r\n1\r\n$8\r\njob-lifo\r\n:0\r\n:0\r\n";

TEST(RespValue, Resp2Scalars) {
  auto s = ParseResp("+OK\r\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->type, T::kSimple);
  EXPECT_EQ(s->str, "OK");
  auto e = ParseResp("-NOSCRIPT No matching script\r\n");
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->IsError());
  EXPECT_EQ(e->str, "NOSCRIPT No matching script");
  auto i = ParseResp(":-3\r\n");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->integer, -3);
  auto b = ParseResp("$5\r\nhe\r\no\r\n");  // CRLF inside a bulk is data
  ASSERT_TRUE(b);
  EXPECT_EQ(b->str, "he\r\no");
  EXPECT_TRUE(ParseResp("$-1\r\n")->IsNull());
  EXPECT_TRUE(ParseResp("*-1\r\n")->IsNull());
  EXPECT_EQ(ParseResp("$0\r\n\r\n")->str, "");
}

TEST(RespValue, Resp3Types) {
  EXPECT_TRUE(ParseResp("_\r\n")->IsNull());
  EXPECT_TRUE(ParseResp("#t\r\n")->boolean);
  EXPECT_FALSE(ParseResp("#f\r\n")->boolean);
  EXPECT_DOUBLE_EQ(ParseResp(",1.5\r\n")->dbl, 1.5);
  EXPECT_DOUBLE_EQ(ParseResp(",0\r\n")->dbl, 0);
  EXPECT_TRUE(std::isinf(ParseResp(",-inf\r\n")->dbl));
  EXPECT_TRUE(std::isnan(ParseResp(",nan\r\n")->dbl));
  EXPECT_EQ(ParseResp("(3492890328409238509324850943850943825024385\r\n")->type, T::kBigNumber);
  auto v = ParseResp("=15\r\ntxt:Some string\r\n");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, T::kBulk);
  EXPECT_EQ(v->str, "Some string");
  auto be = ParseResp("!21\r\nSYNTAX invalid syntax\r\n");
  ASSERT_TRUE(be);
  EXPECT_TRUE(be->IsError());
  auto m = ParseResp("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n");
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->IsMap());
  ASSERT_EQ(m->items.size(), 4u);
  EXPECT_EQ(m->items[3].integer, 2);
  auto set = ParseResp("~2\r\n:1\r\n:2\r\n");
  ASSERT_TRUE(set);
  EXPECT_EQ(set->aggregate, RespValue::Aggregate::kSet);
  auto push = ParseResp(">3\r\n+message\r\n+ch\r\n+x\r\n");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->aggregate, RespValue::Aggregate::kPush);
  // Attributes are dropped; the value they annotate is returned.
  auto attr = ParseResp("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:7\r\n");
  ASSERT_TRUE(attr);
  EXPECT_EQ(attr->integer, 7);
}

TEST(RespValue, NestedActivationReply) {
  auto v = ParseResp(kActivation);
  ASSERT_TRUE(v);
  ASSERT_TRUE(v->IsArray());
  ASSERT_EQ(v->items.size(), 4u);
  ASSERT_TRUE(v->items[0].IsArray());
  EXPECT_EQ(v->items[0].items[3].str, "1795418534021");
  EXPECT_EQ(v->items[1].str, "job-lifo");
}

TEST(RespValue, RejectsMalformed) {
  const char* bad[] = {
      "",
      "+OK",                        // no CRLF
      "+OK\n",                      // bare LF
      "+OK\r",                      // CR without LF
      ":\r\n",                      // empty integer
      ":12a\r\n",                   // junk
      ":+1\r\n",                    // explicit plus
      ":99999999999999999999\r\n",  // overflow
      "$-2\r\n",                    // negative other than -1
      "$3\r\nab\r\n",               // short
      "$3\r\nabcd\r\n",             // long
      "$2\r\nabXY",                 // missing CRLF after payload
      "*2\r\n:1\r\n",               // missing element
      "*3000000000\r\n",            // count beyond the input
      "%-1\r\n",                    // map cannot be null
      "=3\r\ntxt\r\n",              // verbatim without format
      "#x\r\n",
      "_x\r\n",
      "$?\r\n;4\r\nabcd\r\n;0\r\n",  // streamed: never sent by Redis
      "*?\r\n:1\r\n.\r\n",
      "?\r\n",
      "+OK\r\n+OK\r\n",  // trailing reply
  };
  for (const char* b : bad) EXPECT_FALSE(ParseResp(b)) << b;
}

TEST(RespValue, BoundsNesting) {
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  std::string error;
  EXPECT_FALSE(ParseResp(deep, {}, &error));
  EXPECT_EQ(error, "nesting too deep at byte 132");  // just past the 33rd "*1\r\n"
  RespLimits loose;
  loose.max_depth = 200;
  EXPECT_TRUE(ParseResp(deep, loose));
}

// max_depth counts aggregates: exactly max_depth of them nest, one more does not, whether or
// not the innermost is empty; a null aggregate is a value, not a level.
TEST(RespValue, MaxDepthCountsAggregates) {
  RespLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(ParseResp("*1\r\n*1\r\n*1\r\n:1\r\n", limits));
  EXPECT_TRUE(ParseResp("*1\r\n*1\r\n*0\r\n", limits));
  EXPECT_TRUE(ParseResp("*1\r\n*1\r\n*1\r\n*-1\r\n", limits));
  EXPECT_FALSE(ParseResp("*1\r\n*1\r\n*1\r\n*0\r\n", limits));
  EXPECT_FALSE(ParseResp("*1\r\n%1\r\n+k\r\n~1\r\n>0\r\n", limits));
  // An attribute sits at the level of the value it annotates.
  EXPECT_TRUE(ParseResp("*1\r\n*1\r\n|1\r\n+k\r\n+v\r\n:1\r\n", limits));
  EXPECT_FALSE(ParseResp("*1\r\n*1\r\n|1\r\n+k\r\n*0\r\n:1\r\n", limits));
  limits.max_depth = 0;
  EXPECT_TRUE(ParseResp(":1\r\n", limits));
  EXPECT_FALSE(ParseResp("*0\r\n", limits));
}

TEST(RespValue, BoundsValues) {
  RespLimits limits;
  limits.max_values = 3;
  EXPECT_TRUE(ParseResp("*2\r\n:1\r\n:2\r\n", limits));
  std::string error;
  EXPECT_FALSE(ParseResp("*3\r\n:1\r\n:2\r\n:3\r\n", limits, &error));
  EXPECT_EQ(error.rfind("too many values", 0), 0u) << error;
}

// A long run of attributes is read in a loop: no stack growth, and the value after it is
// returned.
TEST(RespValue, LongAttributeRun) {
  std::string doc;
  for (int i = 0; i < 100000; ++i) doc += "|1\r\n+a\r\n:1\r\n";
  doc += ":7\r\n";
  auto v = ParseResp(doc);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->integer, 7);
}

// Lengths and integers are read as Redis's string2ll reads them.
TEST(RespValue, StrictIntegers) {
  for (const char* bad : {"*01\r\n_\r\n", ":007\r\n", ":-0\r\n", "$03\r\nabc\r\n", ": 1\r\n"}) {
    EXPECT_FALSE(ParseResp(bad)) << bad;
  }
  EXPECT_EQ(ParseResp(":9223372036854775807\r\n")->integer, INT64_MAX);
  EXPECT_EQ(ParseResp(":-9223372036854775808\r\n")->integer, INT64_MIN);
  EXPECT_FALSE(ParseResp(":9223372036854775808\r\n"));
}

TEST(RespValue, ErrorSaysWhatAndWhere) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "truncated at byte 0"},
      {"*1\r\n$5\r\nab\r\n", "truncated bulk at byte 8"},
      {"*1\r\n@1\r\n", "unknown RESP type at byte 4"},
      {"+OK\r\n+OK\r\n", "trailing bytes after the reply at byte 5"},
      {"*x\r\n", "bad length at byte 4"},
      {"*-2\r\n", "negative length at byte 5"},
  };
  for (const auto& [doc, want] : cases) {
    std::string error;
    EXPECT_FALSE(ParseResp(doc, {}, &error)) << doc;
    EXPECT_EQ(error, want) << doc;
  }
  std::string error = "untouched";
  EXPECT_TRUE(ParseResp("+OK\r\n", {}, &error));
  EXPECT_EQ(error, "untouched");
}

TEST(RespValue, EveryTruncationFailsAndPrefixReportsConsumed) {
  for (size_t n = 0; n < kActivation.size(); ++n) {
    EXPECT_FALSE(ParseResp(std::string_view(kActivation).substr(0, n))) << n;
  }
  size_t used = 0;
  const std::string two = kActivation + ":5\r\n";
  ASSERT_TRUE(ParseRespPrefix(two, &used));
  EXPECT_EQ(used, kActivation.size());
}

TEST(RespValue, RandomBytesAndMutationsNeverCrash) {
  std::mt19937 rng(777);
  const std::string alphabet = "+-:$*_,#(=%~>|!?.\r\n0123456789-abc";
  for (int round = 0; round < 30000; ++round) {
    std::string doc;
    if (round % 3 == 0) {
      doc.resize(rng() % 48);
      for (char& c : doc) c = alphabet[rng() % alphabet.size()];
    } else if (round % 3 == 1) {
      doc.resize(rng() % 48);
      for (char& c : doc) c = static_cast<char>(rng());
    } else {
      doc = kActivation;
      for (int k = 0; k < 2; ++k) doc[rng() % doc.size()] = alphabet[rng() % alphabet.size()];
    }
    size_t used = 0;
    if (auto v = ParseRespPrefix(doc, &used); v) {
      EXPECT_GT(used, 0u);
      EXPECT_LE(used, doc.size());
    }
  }
}

}  // namespace
}  // namespace respscope::resp
