// Log-linear latency histograms (HdrHistogram-like), in nanoseconds.
//
//   unit u = 16 ns; v = ns / u
//   v < 64                      -> bucket v                (exact to 16 ns below ~1 us)
//   2^e <= v < 2^(e+1), e >= 6  -> 32 linear sub-buckets   (width 1/32 of the octave)
//   up to 2^40 ns (~18 min); larger values land in the last bucket (sum and max stay exact)
//
// Quantiles report a bucket's midpoint: relative error <= 1/64 (~1.6%) above 1 us. Buckets are
// fixed, so histograms merge and subtract exactly, bucket by bucket.
//
// Histogram is a plain value (engine thread); AtomicHistogram is the single-writer form that
// a recorder shard records into while the engine reads it (see single_writer.h).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "analytics/recorder/single_writer.h"

namespace respscope::recorder {

inline constexpr int kHistBuckets = 1024;
inline constexpr int kHistUnitShift = 4;  // 16 ns

int BucketIndex(uint64_t ns);
uint64_t BucketLowerNs(int index);
uint64_t BucketUpperNs(int index);  // exclusive
double BucketMidNs(int index);

class Histogram {
 public:
  Histogram() : counts_(kHistBuckets, 0) {}
  void Record(uint64_t ns, uint64_t n = 1);
  void Merge(const Histogram& other);
  // this -= older (older must be an earlier reading of the same cumulative histogram).
  void Subtract(const Histogram& older);
  // q in [0, 1]; 0 when empty. Nanoseconds.
  double Quantile(double q) const;
  uint64_t count() const { return count_; }
  uint64_t sum_ns() const { return sum_ns_; }
  uint64_t max_ns() const { return max_ns_; }
  double mean_ns() const { return count_ ? static_cast<double>(sum_ns_) / count_ : 0.0; }
  const std::vector<uint64_t>& counts() const { return counts_; }
  std::vector<uint64_t>& mutable_counts() { return counts_; }
  void SetTotals(uint64_t count, uint64_t sum_ns, uint64_t max_ns) {
    count_ = count;
    sum_ns_ = sum_ns;
    max_ns_ = max_ns;
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t max_ns_ = 0;
};

class AtomicHistogram {
 public:
  // Writer thread only.
  void Record(uint64_t ns) {
    buckets_[BucketIndex(ns)].Inc();
    sum_ns_.Add(ns);
    if (ns > max_ns_.Load()) max_ns_.Set(ns);
  }
  // Any thread. count() of the result is the sum of the buckets read, so it always agrees
  // with the buckets; sum may lead or lag by in-flight records.
  void ReadInto(Histogram& out) const;

 private:
  std::array<Counter, kHistBuckets> buckets_;
  Counter sum_ns_;
  Counter max_ns_;
};

}  // namespace respscope::recorder
