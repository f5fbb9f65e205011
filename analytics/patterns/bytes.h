// SameBytes: equality of two short byte strings without a call into libc's memcmp; LoadU64:
// an unaligned 8-byte load (also the sketch's hash).
//
// The per-command path compares names and keys of a few to a few dozen bytes (the last
// pattern name, a command name, a hot key on a hash match); for those a call to memcmp costs
// more than the compare. Up to 16 bytes: two overlapping 8-byte loads per side.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace respscope::patterns {

// 8 bytes at p, any alignment.
inline uint64_t LoadU64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

inline bool SameBytes(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  if (n >= 8) {
    if (n > 16) return std::memcmp(p, q, n) == 0;
    return LoadU64(p) == LoadU64(q) && LoadU64(p + n - 8) == LoadU64(q + n - 8);
  }
  if (n >= 4) {
    uint32_t a0, a1, b0, b1;
    std::memcpy(&a0, p, 4);
    std::memcpy(&a1, p + n - 4, 4);
    std::memcpy(&b0, q, 4);
    std::memcpy(&b1, q + n - 4, 4);
    return a0 == b0 && a1 == b1;
  }
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != q[i]) return false;
  }
  return true;
}

}  // namespace respscope::patterns
