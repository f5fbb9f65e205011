#include "analytics/recorder/distinct_sketch.h"

#include <cmath>
#include <cstring>

namespace respscope::recorder {

double DistinctSketch::Estimate(const Registers& regs) {
  constexpr double m = static_cast<double>(kRegisters);
  const double alpha = 0.7213 / (1.0 + 1.079 / m);
  double sum = 0;
  size_t zeros = 0;
  for (uint8_t r : regs) {
    sum += std::ldexp(1.0, -static_cast<int>(r));
    zeros += r == 0;
  }
  const double raw = alpha * m * m / sum;
  // Small counts: linear counting on the empty registers is the better estimate.
  if (raw <= 2.5 * m && zeros > 0) return m * std::log(m / static_cast<double>(zeros));
  return raw;
}

uint64_t DistinctSketch::Hash(const char* data, size_t size) {
  // FNV-1a over 8-byte words, then the murmur3 finaliser: cheap on short keys, every input bit
  // reaches the top bits (the register index) and the rank.
  uint64_t h = 0xcbf29ce484222325ULL ^ (size * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  if (i < size) {
    uint64_t w = 0;
    std::memcpy(&w, data + i, size - i);
    h = (h ^ w) * 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace respscope::recorder
