#include "analytics/recorder/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace respscope::recorder {
namespace {

double ExactQuantile(std::vector<uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * v.size()));
  return static_cast<double>(v[std::max<size_t>(rank, 1) - 1]);
}

TEST(Histogram, BucketsAreContiguous) {
  for (int i = 0; i + 1 < kHistBuckets; ++i) {
    ASSERT_EQ(BucketUpperNs(i), BucketLowerNs(i + 1)) << i;
    ASSERT_EQ(BucketIndex(BucketLowerNs(i)), i);
    ASSERT_EQ(BucketIndex(BucketUpperNs(i) - 1), i);
  }
  EXPECT_EQ(BucketIndex(0), 0);
  EXPECT_EQ(BucketIndex(~uint64_t{0}), kHistBuckets - 1);
  // Above 1 us a bucket is at most 1/32 of its lower bound wide.
  for (int i = 64; i + 1 < kHistBuckets; ++i) {
    double width = static_cast<double>(BucketUpperNs(i) - BucketLowerNs(i));
    ASSERT_LE(width / BucketLowerNs(i), 1.0 / 32 + 1e-12);
  }
}

TEST(Histogram, QuantileRelativeErrorWithinTwoPercent) {
  std::mt19937_64 rng(42);
  // Log-normal latencies around 200 us with a long tail, plus a few 1-5 ms outliers.
  std::lognormal_distribution<double> dist(std::log(200'000.0), 1.0);
  for (int round = 0; round < 5; ++round) {
    std::vector<uint64_t> samples;
    Histogram h;
    for (int i = 0; i < 50'000; ++i) {
      uint64_t ns = static_cast<uint64_t>(dist(rng)) + 1'000;
      samples.push_back(ns);
      h.Record(ns);
    }
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
      double exact = ExactQuantile(samples, q);
      double est = h.Quantile(q);
      EXPECT_LE(std::abs(est - exact) / exact, 0.02) << "q=" << q << " round " << round;
    }
    EXPECT_EQ(h.count(), samples.size());
    EXPECT_EQ(h.max_ns(), *std::max_element(samples.begin(), samples.end()));
  }
}

TEST(Histogram, MergeEqualsRecordingEverything) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<uint64_t> dist(0, 50'000'000);
  Histogram a, b, all;
  for (int i = 0; i < 20'000; ++i) {
    uint64_t v = dist(rng);
    (i % 3 ? a : b).Record(v);
    all.Record(v);
  }
  Histogram merged = a;
  merged.Merge(b);
  EXPECT_EQ(merged.counts(), all.counts());
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.sum_ns(), all.sum_ns());
  EXPECT_EQ(merged.max_ns(), all.max_ns());
  EXPECT_DOUBLE_EQ(merged.Quantile(0.99), all.Quantile(0.99));
  // Subtract undoes Merge.
  merged.Subtract(b);
  EXPECT_EQ(merged.counts(), a.counts());
  EXPECT_EQ(merged.sum_ns(), a.sum_ns());
  EXPECT_EQ(merged.count(), a.count());
}

TEST(Histogram, AtomicReadMatchesPlain) {
  AtomicHistogram ah;
  Histogram plain;
  for (uint64_t v : {0ull, 15ull, 16ull, 1'000ull, 123'456ull, 9'999'999'999ull, 1ull << 50}) {
    ah.Record(v);
    plain.Record(v);
  }
  Histogram read;
  ah.ReadInto(read);
  EXPECT_EQ(read.counts(), plain.counts());
  EXPECT_EQ(read.count(), plain.count());
  EXPECT_EQ(read.sum_ns(), plain.sum_ns());
  EXPECT_EQ(read.max_ns(), plain.max_ns());
  EXPECT_EQ(Histogram().Quantile(0.5), 0.0);
}

}  // namespace
}  // namespace respscope::recorder
