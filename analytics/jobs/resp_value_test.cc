#include "analytics/jobs/resp_value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

namespace respscope::analytics::jobs {
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
  EXPECT_FALSE(ParseResp(deep));
  RespLimits loose;
  loose.max_depth = 200;
  EXPECT_TRUE(ParseResp(deep, loose));
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
}  // namespace respscope::analytics::jobs
