// Building blocks for state that one thread writes and another reads, with no lock and no
// atomic read-modify-write (no `lock`-prefixed instruction on x86):
//
//   Counter      monotonic u64; owner does load+store (relaxed), readers load (relaxed).
//                Every increment becomes visible eventually; a reader never sees a value go
//                back. Summing counters read at different instants is not an atomic cut, but
//                nothing is ever lost or counted twice.
//   SeqCell<T>   a trivially copyable T behind a sequence number (Boehm's seqlock: data held
//                in relaxed atomic words, fences around the copy). Writer never waits; a
//                reader retries while a write is in progress and may give up (TryRead false).
//
// Thread: exactly one writer thread per object (the recorder shard's IO thread); any number
// of readers.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace respscope::recorder {

class Counter {
 public:
  void Add(uint64_t d) { v_.store(v_.load(std::memory_order_relaxed) + d, std::memory_order_relaxed); }
  void Inc() { Add(1); }
  // Writer only: non-monotonic updates (gauges, maxima).
  void Set(uint64_t v) { v_.store(v, std::memory_order_relaxed); }
  uint64_t Load() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

template <typename T>
class SeqCell {
  static_assert(std::is_trivially_copyable_v<T>);
  static constexpr size_t kWords = (sizeof(T) + 7) / 8;

 public:
  void Write(const T& value) {
    uint64_t words[kWords] = {};
    std::memcpy(words, &value, sizeof(T));
    uint64_t s = seq_.load(std::memory_order_relaxed);
    seq_.store(s + 1, std::memory_order_relaxed);  // odd: write in progress
    std::atomic_thread_fence(std::memory_order_release);
    for (size_t i = 0; i < kWords; ++i) data_[i].store(words[i], std::memory_order_relaxed);
    seq_.store(s + 2, std::memory_order_release);
  }

  // Copies a consistent value into `out`. False if never written or if writes kept racing
  // the copy for `attempts` tries.
  bool TryRead(T& out, int attempts = 64) const {
    for (int a = 0; a < attempts; ++a) {
      uint64_t s1 = seq_.load(std::memory_order_acquire);
      if (s1 == 0) return false;
      if (s1 & 1) continue;
      uint64_t words[kWords];
      for (size_t i = 0; i < kWords; ++i) words[i] = data_[i].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq_.load(std::memory_order_relaxed) == s1) {
        std::memcpy(&out, words, sizeof(T));
        return true;
      }
    }
    return false;
  }

 private:
  std::atomic<uint64_t> seq_{0};
  std::array<std::atomic<uint64_t>, kWords> data_{};
};

// Fixed-capacity text for SeqCell payloads. Always NUL-padded; `len` bytes are valid.
template <size_t N>
struct FixedText {
  uint16_t len = 0;
  char bytes[N] = {};
  // Text longer than N is cut (at a UTF-8 boundary) and ends in "…".
  void Assign(std::string_view s) {
    if (s.size() <= N) {
      len = static_cast<uint16_t>(s.size());
      std::memcpy(bytes, s.data(), len);
      return;
    }
    size_t n = N - 3;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    std::memcpy(bytes, s.data(), n);
    std::memcpy(bytes + n, "\xE2\x80\xA6", 3);
    len = static_cast<uint16_t>(n + 3);
  }
  std::string_view view() const { return std::string_view(bytes, len); }
};

}  // namespace respscope::recorder
