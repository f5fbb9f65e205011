// DistinctSketch: a HyperLogLog counter of distinct keys (Flajolet et al. 2007, with the
// linear-counting correction for small counts), kept per key pattern by a recorder shard for
// the keys it sees written without an expiry (no_ttl_pattern).
//
// Memory: kRegisters bytes, fixed, whatever the number of keys (1 KiB: standard error
// 1.04/sqrt(1024) = 3.25%). Sketches merge exactly by taking the register-wise maximum, so the
// shards' sketches of one pattern give the distinct count of their union.
// Thread: one writer (the shard's IO thread: Add) and any readers (ReadInto), with no lock and
// no read-modify-write: each register is a relaxed atomic byte that only grows; a reader may
// see a register before or after a concurrent Add, never a torn one.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace respscope::recorder {

class DistinctSketch {
 public:
  static constexpr int kPrecision = 10;
  static constexpr size_t kRegisters = size_t{1} << kPrecision;
  using Registers = std::array<uint8_t, kRegisters>;

  // Writer only. `hash` must be a well-mixed 64-bit hash of the key.
  void Add(uint64_t hash) {
    const size_t index = hash >> (64 - kPrecision);
    const uint64_t rest = (hash << kPrecision) | (uint64_t{1} << (kPrecision - 1));
    const auto rank = static_cast<uint8_t>(__builtin_clzll(rest) + 1);
    if (rank > regs_[index].load(std::memory_order_relaxed)) {
      regs_[index].store(rank, std::memory_order_relaxed);
    }
  }

  // Any thread: out[i] = max(out[i], register i).
  void MaxInto(Registers& out) const {
    for (size_t i = 0; i < kRegisters; ++i) {
      const uint8_t r = regs_[i].load(std::memory_order_relaxed);
      if (r > out[i]) out[i] = r;
    }
  }

  // The distinct count estimated from (merged) registers.
  static double Estimate(const Registers& regs);

  // A 64-bit mix of the key's bytes for Add() (std::hash is not guaranteed to mix all bits).
  static uint64_t Hash(const char* data, size_t size);

 private:
  std::array<std::atomic<uint8_t>, kRegisters> regs_{};
};

}  // namespace respscope::recorder
