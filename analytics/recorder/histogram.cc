#include "analytics/recorder/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace respscope::recorder {
namespace {
constexpr int kLinear = 64;     // exact buckets
constexpr int kSubBits = 5;     // 32 sub-buckets per octave
constexpr int kFirstExp = 6;    // first log octave: [64, 128) units
}  // namespace

int BucketIndex(uint64_t ns) {
  uint64_t v = ns >> kHistUnitShift;
  if (v < kLinear) return static_cast<int>(v);
  int e = std::bit_width(v) - 1;
  int sub = static_cast<int>((v >> (e - kSubBits)) & ((1 << kSubBits) - 1));
  int idx = kLinear + ((e - kFirstExp) << kSubBits) + sub;
  return std::min(idx, kHistBuckets - 1);
}

uint64_t BucketLowerNs(int index) {
  if (index < kLinear) return static_cast<uint64_t>(index) << kHistUnitShift;
  int e = kFirstExp + ((index - kLinear) >> kSubBits);
  uint64_t sub = static_cast<uint64_t>((index - kLinear) & ((1 << kSubBits) - 1));
  uint64_t v = (uint64_t{1} << e) + (sub << (e - kSubBits));
  return v << kHistUnitShift;
}

uint64_t BucketUpperNs(int index) {
  if (index < kLinear) return static_cast<uint64_t>(index + 1) << kHistUnitShift;
  int e = kFirstExp + ((index - kLinear) >> kSubBits);
  return BucketLowerNs(index) + (uint64_t{1} << (e - kSubBits + kHistUnitShift));
}

double BucketMidNs(int index) {
  return (static_cast<double>(BucketLowerNs(index)) + static_cast<double>(BucketUpperNs(index))) /
         2.0;
}

void Histogram::Record(uint64_t ns, uint64_t n) {
  counts_[BucketIndex(ns)] += n;
  count_ += n;
  sum_ns_ += ns * n;
  max_ns_ = std::max(max_ns_, ns);
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kHistBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

void Histogram::Subtract(const Histogram& older) {
  // Guard against readings that are not ordered (should not happen): clamp at zero.
  uint64_t count = 0;
  for (int i = 0; i < kHistBuckets; ++i) {
    counts_[i] = counts_[i] >= older.counts_[i] ? counts_[i] - older.counts_[i] : 0;
    count += counts_[i];
  }
  count_ = count;
  sum_ns_ = sum_ns_ >= older.sum_ns_ ? sum_ns_ - older.sum_ns_ : 0;
  // max is not subtractable; keep the cumulative maximum as an upper bound.
}

double Histogram::Quantile(double q) const {
  if (count_ == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  // Rank of the q-quantile, 1-based (nearest-rank definition).
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (int i = 0; i < kHistBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      double mid = BucketMidNs(i);
      return i == kHistBuckets - 1 ? static_cast<double>(max_ns_) : std::min(mid, static_cast<double>(max_ns_));
    }
  }
  return static_cast<double>(max_ns_);
}

void AtomicHistogram::ReadInto(Histogram& out) const {
  auto& counts = out.mutable_counts();
  uint64_t count = 0;
  for (int i = 0; i < kHistBuckets; ++i) {
    counts[i] = buckets_[i].Load();
    count += counts[i];
  }
  out.SetTotals(count, sum_ns_.Load(), max_ns_.Load());
}

}  // namespace respscope::recorder
