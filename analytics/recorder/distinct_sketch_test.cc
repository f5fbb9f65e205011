#include "analytics/recorder/distinct_sketch.h"

#include <gtest/gtest.h>

#include <string>

#include "analytics/recorder/key_effect.h"

namespace respscope::recorder {
namespace {

void AddKeys(DistinctSketch& s, const std::string& prefix, int from, int to) {
  for (int i = from; i < to; ++i) {
    std::string k = prefix + std::to_string(i);
    s.Add(DistinctSketch::Hash(k.data(), k.size()));
  }
}

double EstimateOf(const DistinctSketch& s) {
  DistinctSketch::Registers regs{};
  s.MaxInto(regs);
  return DistinctSketch::Estimate(regs);
}

TEST(DistinctSketch, EmptyIsZero) {
  DistinctSketch s;
  EXPECT_EQ(EstimateOf(s), 0.0);
}

TEST(DistinctSketch, EstimatesWithinFourStandardErrors) {
  // 1.04 / sqrt(1024) = 3.25% standard error; 13% is four of them.
  for (int n : {10, 100, 1000, 10'000, 100'000, 1'000'000}) {
    DistinctSketch s;
    AddKeys(s, "user:", 0, n);
    EXPECT_NEAR(EstimateOf(s), n, std::max(2.0, 0.13 * n)) << n;
  }
}

TEST(DistinctSketch, RepeatsDoNotCount) {
  DistinctSketch s;
  for (int round = 0; round < 5; ++round) AddKeys(s, "session:", 0, 500);
  EXPECT_NEAR(EstimateOf(s), 500, 0.13 * 500);
}

TEST(DistinctSketch, MergeIsTheUnion) {
  DistinctSketch a, b, both;
  AddKeys(a, "k:", 0, 30'000);
  AddKeys(b, "k:", 20'000, 50'000);  // 10,000 keys in both
  AddKeys(both, "k:", 0, 50'000);
  DistinctSketch::Registers merged{}, direct{};
  a.MaxInto(merged);
  b.MaxInto(merged);
  both.MaxInto(direct);
  EXPECT_EQ(merged, direct);  // exact: the same keys set the same registers
  EXPECT_NEAR(DistinctSketch::Estimate(merged), 50'000, 0.13 * 50'000);
}

TEST(DistinctSketch, HashSpreadsSimilarKeys) {
  // Keys differing in one byte land in different registers (the top bits are the index).
  int same_index = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string a = "order:" + std::to_string(i), b = "order:" + std::to_string(i + 1);
    same_index += (DistinctSketch::Hash(a.data(), a.size()) >> 54) ==
                  (DistinctSketch::Hash(b.data(), b.size()) >> 54);
  }
  EXPECT_LT(same_index, 10);
}

TEST(KeyEffect, ByName) {
  EXPECT_EQ(KeyEffectOf("set"), KeyEffect::kCreate);
  EXPECT_EQ(KeyEffectOf("hset"), KeyEffect::kCreate);
  EXPECT_EQ(KeyEffectOf("lpush"), KeyEffect::kCreate);
  EXPECT_EQ(KeyEffectOf("xadd"), KeyEffect::kCreate);
  EXPECT_EQ(KeyEffectOf("zunionstore"), KeyEffect::kCreateFirst);
  EXPECT_EQ(KeyEffectOf("setex"), KeyEffect::kExpire);
  EXPECT_EQ(KeyEffectOf("pexpireat"), KeyEffect::kExpire);
  EXPECT_EQ(KeyEffectOf("persist"), KeyEffect::kPersist);
  EXPECT_EQ(KeyEffectOf("unlink"), KeyEffect::kDelete);
  EXPECT_EQ(KeyEffectOf("get"), KeyEffect::kNone);
  EXPECT_EQ(KeyEffectOf("getex"), KeyEffect::kNone);  // decided per call
  EXPECT_EQ(KeyEffectOf("evalsha"), KeyEffect::kNone);
  // SET EX / GETEX PERSIST: the session's flags decide.
  EXPECT_EQ(EffectOfCall(KeyEffect::kCreate, 1u << 11, 1u << 11, 1u << 12), KeyEffect::kExpire);
  EXPECT_EQ(EffectOfCall(KeyEffect::kNone, 1u << 12, 1u << 11, 1u << 12), KeyEffect::kPersist);
  EXPECT_EQ(EffectOfCall(KeyEffect::kCreate, 0, 1u << 11, 1u << 12), KeyEffect::kCreate);
}

}  // namespace
}  // namespace respscope::recorder
