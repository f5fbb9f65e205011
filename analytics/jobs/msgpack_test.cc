#include "analytics/jobs/msgpack.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace respscope::analytics::jobs {
namespace {

std::string Hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// bullmq-6.7.0 capture, addStandardJob ARGV[1] and ARGV[3] of job-normal.
const std::string kAddArgs = Hex(
    "9aac62756c6c3a6f72646572733aaa6a6f622d6e6f726d616ca66e6f726d616ccb427a20748b054000c0c0c0c0c0"
    "c0");
const std::string kOpts = Hex("de0002a8617474656d70747300a56a6f624964aa6a6f622d6e6f726d616c");

TEST(Msgpack, DecodesBullMQAddArguments) {
  auto v = DecodeMsgpack(kAddArgs);
  ASSERT_TRUE(v);
  ASSERT_TRUE(v->IsArray());
  ASSERT_EQ(v->items.size(), 10u);
  EXPECT_EQ(v->At(0)->AsStr(), "bull:orders:");
  EXPECT_EQ(v->At(1)->AsStr(), "job-normal");
  EXPECT_EQ(v->At(2)->AsStr(), "normal");
  // Timestamps above 2^32 come as float64.
  EXPECT_EQ(v->At(3)->type, MpValue::Type::kFloat);
  EXPECT_EQ(v->At(3)->AsInt(), 1795418533972);
  for (size_t i = 4; i < 10; ++i) EXPECT_TRUE(v->At(i)->IsNil());
  EXPECT_EQ(v->At(10), nullptr);
}

TEST(Msgpack, DecodesMap16Opts) {
  auto v = DecodeMsgpack(kOpts);
  ASSERT_TRUE(v);
  ASSERT_TRUE(v->IsMap());
  EXPECT_EQ(v->MapSize(), 2u);
  EXPECT_EQ(v->Get("attempts")->AsInt(), 0);
  EXPECT_EQ(v->Get("jobId")->AsStr(), "job-normal");
  EXPECT_EQ(v->Get("missing"), nullptr);
}

TEST(Msgpack, ScalarsOfEveryWidth) {
  struct Case {
    std::string hex;
    std::optional<int64_t> as_int;
  };
  const Case cases[] = {
      {"00", 0},
      {"7f", 127},
      {"ff", -1},
      {"e0", -32},
      {"cc80", 128},
      {"cd0100", 256},
      {"ce00010000", 65536},
      {"cf0000000100000000", 4294967296},
      {"cfffffffffffffffff", std::nullopt},  // > INT64_MAX
      {"d080", -128},
      {"d18000", -32768},
      {"d280000000", -2147483648LL},
      {"d38000000000000000", INT64_MIN},
      {"cb3ff0000000000000", 1},             // 1.0
      {"cb3ff8000000000000", std::nullopt},  // 1.5
      {"ca3f800000", 1},                     // float32 1.0
      {"c0", std::nullopt},
      {"c3", std::nullopt},
  };
  for (const Case& c : cases) {
    auto v = DecodeMsgpack(Hex(c.hex));
    ASSERT_TRUE(v) << c.hex;
    EXPECT_EQ(v->AsInt(), c.as_int) << c.hex;
  }
}

TEST(Msgpack, StringsBinaryAndExtensions) {
  EXPECT_EQ(DecodeMsgpack(Hex("a3616263"))->AsStr(), "abc");
  EXPECT_EQ(DecodeMsgpack(Hex("d903616263"))->AsStr(), "abc");
  EXPECT_EQ(DecodeMsgpack(Hex("da0003616263"))->AsStr(), "abc");
  EXPECT_EQ(DecodeMsgpack(Hex("db00000003616263"))->AsStr(), "abc");
  auto bin = DecodeMsgpack(Hex("c4020102"));
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->type, MpValue::Type::kBin);
  EXPECT_EQ(bin->bytes.size(), 2u);
  auto ext = DecodeMsgpack(Hex("d4ff01"));  // fixext1, type -1
  ASSERT_TRUE(ext);
  EXPECT_EQ(ext->type, MpValue::Type::kExt);
  EXPECT_EQ(ext->ext_type, -1);
  EXPECT_TRUE(DecodeMsgpack(Hex("c70300616263")));  // ext8
}

TEST(Msgpack, RejectsMalformed) {
  const char* bad[] = {
      "",            // nothing
      "c1",          // never used
      "a36162",      // str shorter than declared
      "92a161",      // array of 2 with 1 element
      "dbffffffff",  // str32 of 4 GiB
      "ddffffffff",  // array32 of 4 G elements with no bytes
      "dfffffffff",  // map32
      "cd01",        // truncated uint16
      "cb3ff00000",  // truncated float64
      "a16100",      // trailing byte
  };
  for (const char* h : bad) EXPECT_FALSE(DecodeMsgpack(Hex(h))) << h;
}

TEST(Msgpack, BoundsNesting) {
  std::string deep(40, static_cast<char>(0x91));  // [[[[...]]]]
  deep.push_back(static_cast<char>(0xc0));
  EXPECT_FALSE(DecodeMsgpack(deep));
  MpLimits loose;
  loose.max_depth = 64;
  EXPECT_TRUE(DecodeMsgpack(deep, loose));
  std::string wide = Hex("dc0100") + std::string(256, '\x00');
  MpLimits few;
  few.max_values = 100;
  EXPECT_FALSE(DecodeMsgpack(wide, few));
  EXPECT_TRUE(DecodeMsgpack(wide));
}

TEST(Msgpack, EveryTruncationFailsCleanly) {
  for (const std::string& doc : {kAddArgs, kOpts}) {
    for (size_t n = 0; n < doc.size(); ++n) {
      EXPECT_FALSE(DecodeMsgpack(std::string_view(doc).substr(0, n))) << n;
    }
    size_t used = 0;
    std::string with_tail = doc + "xyz";
    auto v = DecodeMsgpackPrefix(with_tail, &used);
    ASSERT_TRUE(v);
    EXPECT_EQ(used, doc.size());
  }
}

TEST(Msgpack, RandomBytesAndMutationsNeverCrash) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 20000; ++round) {
    std::string doc;
    if (round % 2 == 0) {
      doc.resize(rng() % 64);
      for (char& c : doc) c = static_cast<char>(rng());
    } else {
      doc = (round % 4 == 1) ? kAddArgs : kOpts;
      for (int k = 0; k < 3; ++k) doc[rng() % doc.size()] = static_cast<char>(rng());
    }
    size_t used = 0;
    auto v = DecodeMsgpackPrefix(doc, &used);
    if (v) {
      EXPECT_GT(used, 0u);
      EXPECT_LE(used, doc.size());
    }
  }
}

TEST(Msgpack, LeadingElementsOfADamagedFieldList) {
  // ["failedReason", "boom", "stacktrace", <str16 claiming 0x0371 bytes, 5 present>]: the
  // shape of moveToDelayed ARGV[7] in the reference capture, whose stacktrace was edited.
  const std::string damaged = Hex("94ac6661696c6564526561736f6ea4626f6f6daa737461636b7472616365") +
                              Hex("da0371") + "[\"x\"]";
  EXPECT_FALSE(DecodeMsgpack(damaged));
  bool complete = true;
  auto v = DecodeMsgpackLeading(damaged, &complete);
  ASSERT_TRUE(v);
  EXPECT_FALSE(complete);
  ASSERT_EQ(v->items.size(), 3u);
  EXPECT_EQ(v->At(1)->AsStr(), "boom");
  // A map keeps whole pairs only.
  auto m = DecodeMsgpackLeading(Hex("83a16101a16202a163"), &complete);
  ASSERT_TRUE(m);
  EXPECT_FALSE(complete);
  EXPECT_EQ(m->MapSize(), 2u);
  // Intact input: complete.
  v = DecodeMsgpackLeading(kAddArgs, &complete);
  ASSERT_TRUE(v);
  EXPECT_TRUE(complete);
  EXPECT_EQ(v->items.size(), 10u);
  // Not an aggregate; nested damage is not forgiven.
  EXPECT_FALSE(DecodeMsgpackLeading(Hex("a161"), &complete));
  auto nested = DecodeMsgpackLeading(Hex("9201") + Hex("92a3"), &complete);
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->items.size(), 1u);
}

TEST(Msgpack, LooksLikeMsgpackFollowsBullMQRule) {
  EXPECT_TRUE(LooksLikeMsgpack(kAddArgs));
  EXPECT_TRUE(LooksLikeMsgpack(kOpts));
  EXPECT_FALSE(LooksLikeMsgpack("{\"n\":1}"));
  EXPECT_FALSE(LooksLikeMsgpack("job-1"));
  EXPECT_FALSE(LooksLikeMsgpack(""));
}

}  // namespace
}  // namespace respscope::analytics::jobs
