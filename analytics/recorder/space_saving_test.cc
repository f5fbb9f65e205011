#include "analytics/recorder/space_saving.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

namespace respscope::recorder {
namespace {

TEST(SpaceSaving, GuaranteesOnZipfStream) {
  const size_t kCapacity = 100;
  const int kKeys = 5000, kN = 200'000;
  // Zipf(1.1) over kKeys keys.
  std::vector<double> weights(kKeys);
  for (int i = 0; i < kKeys; ++i) weights[i] = 1.0 / std::pow(i + 1, 1.1);
  std::discrete_distribution<int> dist(weights.begin(), weights.end());
  std::mt19937_64 rng(1);
  SpaceSaving ss(kCapacity);
  std::map<std::string, uint64_t> truth;
  for (int i = 0; i < kN; ++i) {
    std::string key = "user:" + std::to_string(dist(rng));
    ++truth[key];
    ss.Offer(key, 7);
  }
  std::vector<SpaceSaving::Item> items;
  uint64_t min_count = 0;
  ss.Publish();
  ss.ReadInto(items, min_count);
  ASSERT_EQ(items.size(), kCapacity);
  EXPECT_GT(min_count, 0u);
  uint64_t sum = 0;
  std::map<std::string, const SpaceSaving::Item*> by_key;
  for (const auto& it : items) {
    sum += it.count;
    by_key[it.key] = &it;
    EXPECT_EQ(it.tag, 7u);
    uint64_t t = truth[it.key];
    EXPECT_GE(it.count, t) << it.key;               // never underestimates
    EXPECT_LE(it.count - it.error, t) << it.key;    // guaranteed lower bound
    EXPECT_LE(it.error, kN / kCapacity);
  }
  EXPECT_EQ(sum, static_cast<uint64_t>(kN));  // Space-Saving conserves total weight
  for (const auto& [key, count] : truth) {
    if (count > kN / kCapacity) {
      EXPECT_TRUE(by_key.count(key)) << key << " " << count;
    }
    if (!by_key.count(key)) {
      EXPECT_LE(count, min_count);
    }
  }
}

TEST(SpaceSaving, ExactWhileUnderCapacityAndLongKeysCut) {
  SpaceSaving ss(4);
  for (int i = 0; i < 10; ++i) ss.Offer("a", 1);
  ss.Offer("b", 2, 5);
  std::string long_key(1000, 'x');
  ss.Offer(long_key, 3);
  ss.Offer(long_key, 3);
  std::vector<SpaceSaving::Item> items;
  uint64_t min_count = 1;
  ss.Publish();
  ss.ReadInto(items, min_count);
  EXPECT_EQ(min_count, 0u);  // not full
  ASSERT_EQ(items.size(), 3u);
  std::map<std::string, uint64_t> got;
  for (auto& it : items) {
    got[it.key] = it.count;
    EXPECT_EQ(it.error, 0u);
    EXPECT_LE(it.key.size(), kMaxStoredKey);
  }
  EXPECT_EQ(got["a"], 10u);
  EXPECT_EQ(got["b"], 5u);
}

TEST(SpaceSaving, ReadersSeeOnlyPublishedState) {
  SpaceSaving ss(4);
  ss.Offer("a", 1);
  std::vector<SpaceSaving::Item> items;
  uint64_t min_count = 0;
  ss.ReadInto(items, min_count);
  EXPECT_TRUE(items.empty());  // nothing published yet
  ss.Publish();
  ss.ReadInto(items, min_count);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].count, 1u);
  // Changes after a Publish() stay invisible until the next one; then all of them show.
  for (int i = 0; i < 9; ++i) ss.Offer("a", 1);
  for (const char* k : {"b", "c", "d", "e"}) ss.Offer(k, 2);  // "e" replaces a minimum
  items.clear();
  ss.ReadInto(items, min_count);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].count, 1u);
  ss.Publish();
  items.clear();
  ss.ReadInto(items, min_count);
  ASSERT_EQ(items.size(), 4u);
  uint64_t sum = 0;
  for (auto& it : items) sum += it.count;
  EXPECT_EQ(sum, 14u);
  EXPECT_EQ(min_count, 1u);
}

TEST(SpaceSaving, ChurnKeepsHashTableConsistent) {
  // Many replacements exercise backward-shift deletion; every tracked key must be found
  // again (a duplicate slot for one key would show up twice).
  SpaceSaving ss(16);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100'000; ++i) ss.Offer(std::string("k").append(std::to_string(rng() % 64)), 0);
  std::vector<SpaceSaving::Item> items;
  uint64_t min_count = 0;
  ss.Publish();
  ss.ReadInto(items, min_count);
  std::map<std::string, int> seen;
  uint64_t sum = 0;
  for (auto& it : items) {
    EXPECT_EQ(++seen[it.key], 1) << it.key;
    sum += it.count;
  }
  EXPECT_EQ(sum, 100'000u);
}

TEST(SpaceSaving, MixedWeightsKeepGuarantees) {
  // Weights > 1 move a slot past several counts; the bounds and conservation must still hold.
  const size_t kCapacity = 32;
  SpaceSaving ss(kCapacity);
  std::mt19937_64 rng(5);
  std::map<std::string, uint64_t> truth;
  uint64_t total = 0;
  for (int i = 0; i < 50'000; ++i) {
    uint64_t w = 1 + rng() % 7;
    std::string key = std::string("k").append(std::to_string(rng() % 3 == 0 ? rng() % 8 : rng() % 500));
    truth[key] += w;
    total += w;
    ss.Offer(key, 1, w);
  }
  std::vector<SpaceSaving::Item> items;
  uint64_t min_count = 0;
  ss.Publish();
  ss.ReadInto(items, min_count);
  ASSERT_EQ(items.size(), kCapacity);
  uint64_t sum = 0;
  std::map<std::string, int> seen;
  for (const auto& it : items) {
    EXPECT_EQ(++seen[it.key], 1) << it.key;
    sum += it.count;
    EXPECT_GE(it.count, truth[it.key]) << it.key;
    EXPECT_LE(it.count - it.error, truth[it.key]) << it.key;
    EXPECT_LE(it.error, total / kCapacity);
    EXPECT_GE(it.count, min_count);
  }
  EXPECT_EQ(sum, total);
  for (const auto& [key, count] : truth) {
    if (!seen.count(key)) {
      EXPECT_LE(count, min_count) << key;
    }
  }
}

}  // namespace
}  // namespace respscope::recorder
