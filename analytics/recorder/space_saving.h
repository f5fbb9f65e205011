// SpaceSaving: bounded heavy-hitter sketch (Metwally et al., 2005) for hot keys.
//
// Fixed capacity C. Every tracked key has a count that overestimates its true count by at
// most its `error` (and error <= N / C for N offers). Any key whose true count exceeds N / C is
// guaranteed to be tracked. Update: O(1) hash lookup + O(log C) min-heap fix; a new key
// replaces the minimum (count = min + w, error = min). Keys live inline in fixed buffers: no
// allocation after construction.
//
// Thread: Offer() on one writer thread; ReadInto() from any thread. Each slot is published
// with a per-slot generation (seqlock): a reader never sees a key with another key's count.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "analytics/recorder/single_writer.h"

namespace respscope::recorder {

inline constexpr size_t kMaxStoredKey = 256;  // bytes of a sanitised key kept anywhere

class SpaceSaving {
 public:
  struct Item {
    std::string key;
    uint32_t tag = 0;  // caller's data (the recorder stores the pattern id)
    uint64_t count = 0;
    uint64_t error = 0;
  };

  explicit SpaceSaving(size_t capacity);

  // Writer thread. `key` must already be sanitised; keys longer than kMaxStoredKey are cut.
  void Offer(std::string_view key, uint32_t tag, uint64_t weight = 1);

  // Any thread: appends the tracked items (unsorted). `min_count` is the smallest tracked
  // count when the sketch is full, else 0 (an untracked key's true count is <= min_count).
  void ReadInto(std::vector<Item>& out, uint64_t& min_count) const;

  size_t capacity() const { return cap_; }

 private:
  struct Published {
    std::atomic<uint64_t> gen{0};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> error{0};
    std::atomic<uint32_t> tag{0};
    std::atomic<uint32_t> len{0};
    std::array<std::atomic<uint64_t>, kMaxStoredKey / 8> words{};
  };
  struct Slot {
    uint64_t hash = 0;
    uint64_t count = 0;
    uint64_t error = 0;
    uint32_t tag = 0;
    uint32_t heap_pos = 0;
    FixedText<kMaxStoredKey> key;
  };

  int32_t Find(uint64_t hash, std::string_view key) const;
  void TableInsert(uint32_t slot);
  void TableErase(uint32_t slot);
  void SiftDown(uint32_t pos);
  void SiftUp(uint32_t pos);
  void Swap(uint32_t a, uint32_t b);
  void PublishKey(uint32_t slot);

  size_t cap_;
  size_t size_ = 0;
  std::vector<Slot> slots_;
  std::vector<uint32_t> heap_;   // min-heap of slot indices by count
  std::vector<int32_t> table_;   // open addressing, linear probing; -1 empty
  size_t table_mask_;
  std::unique_ptr<Published[]> pub_;
  std::atomic<uint32_t> pub_size_{0};
};

}  // namespace respscope::recorder
