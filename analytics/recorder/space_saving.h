// SpaceSaving: bounded heavy-hitter sketch for hot keys: Space-Saving (Metwally et al., 2005)
// with randomized admission (RAP: Ben Basat, Chen, Einziger, Friedman, Kassner, 2017).
//
// Fixed capacity C. While fewer than C keys were seen, every count is exact. Then a key that
// is not tracked replaces the minimum with probability w / (min + w) (count = min + w,
// error = min) and is otherwise dropped. For every tracked key `count - error` is a guaranteed
// lower bound of its true count, and `count` an estimate whose expected value is the true count
// (plain Space-Saving's count is an upper bound instead, but it replaces the minimum on every
// untracked offer: with a long tail of keys, nearly every command). Heavy hitters are admitted
// after about min / w of their offers and counted exactly from then on; a one-off key seldom
// evicts a warm one.
// Keys live inline in fixed buffers: no allocation after construction.
//
// Layout (writer side, all compact arrays so an update stays in L1/L2): the slots are kept in
// an array ordered by count (ascending), so the minimum is position 0. A unit increment of the
// slot at position p swaps it with the last slot of equal count (found by binary search over
// the contiguous counts) and bumps it: one swap, O(log C) compares on 8-byte words, instead of
// a heap sift that walks and swaps up to log C levels. The end of the minimum's run is cached,
// so replacing the minimum is O(1) amortised. Larger
// weights shift the slot right.
// The hash table (open addressing, linear probing, backward-shift deletion) stores the low
// 32 bits of each key's hash next to the slot index, so probing and deletion never touch the
// slots.
//
// Thread: Offer() and Publish() on one writer thread; ReadInto() from any thread. Offer() only
// marks the slots it changed; Publish() copies the marked ones to the readers' side, each with a
// per-slot generation (seqlock): a reader never sees a key with another key's count. Deferring
// the copy keeps the readers' arrays out of the per-command path.
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

  // seed: of the hash and the admission draws; 0 picks one at random (tests pass their own).
  explicit SpaceSaving(size_t capacity, uint64_t seed = 0);

  // Writer thread. `key` must already be sanitised; keys longer than kMaxStoredKey are cut.
  void Offer(std::string_view key, uint32_t tag, uint64_t weight = 1) {
    if (key.size() > kMaxStoredKey) return OfferCut(key, tag, weight);
    OfferHashed(key, Hash(key), tag, weight);
  }
  // The same in two steps, for a caller with other work to do in between: Prefetch() starts
  // loading the table entries `key` will probe and returns its hash; OfferHashed() takes it.
  // `key` at most kMaxStoredKey bytes.
  uint64_t Prefetch(std::string_view key) const {
    const uint64_t h = Hash(key);
    __builtin_prefetch(&table_[h & table_mask_]);
    return h;
  }
  void OfferHashed(std::string_view key, uint64_t hash, uint32_t tag, uint64_t weight = 1);

  // Writer thread: makes every change since the last call visible to ReadInto(). The owner calls
  // it periodically (the recorder: from its thread's tick, every 100 ms).
  void Publish();

  // Any thread: appends the tracked items as of the last Publish() (unsorted). `min_count` is
  // the smallest tracked count when the sketch is full, else 0: the count an untracked key may
  // have had (a key offered more than a few times min_count is tracked with high probability).
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
  struct Entry {
    uint32_t hash;  // low 32 bits of the key's hash (home bucket = hash & mask)
    int32_t slot;   // -1: empty
  };

  uint64_t Hash(std::string_view key) const;
  void OfferCut(std::string_view key, uint32_t tag, uint64_t weight);
  bool Admit(uint64_t min, uint64_t weight);
  // The key's slot, or -1 and in *empty the free entry where its probe ended.
  int32_t Find(uint32_t hash, std::string_view key, size_t* empty) const;
  void TableErase(uint32_t hash, uint32_t slot);
  void Bump(uint32_t slot, uint64_t weight);  // count += weight, keeps order_ sorted
  uint32_t RunEnd(uint32_t pos) const;        // last position with count_[pos]
  void SwapPos(uint32_t a, uint32_t b);
  void PublishKey(uint32_t slot);
  void MarkDirty(uint32_t slot) {
    if (!dirty_[slot]) {
      dirty_[slot] = 1;
      dirty_list_.push_back(slot);  // capacity reserved: never allocates
    }
  }

  size_t cap_;
  size_t size_ = 0;
  uint64_t seed_;
  uint64_t rng_;
  // Per slot (writer only).
  std::vector<uint32_t> hash_;   // low 32 bits of the key's hash
  std::vector<uint64_t> error_;
  std::vector<uint32_t> tag_;
  std::vector<uint32_t> pos_;    // position in order_
  std::vector<FixedText<kMaxStoredKey>> keys_;
  // Per position, ascending count (writer only).
  std::vector<uint32_t> order_;  // slot at each position
  std::vector<uint64_t> count_;  // count of order_[i]
  static constexpr uint32_t kUnknown = ~uint32_t{0};
  uint32_t min_end_ = kUnknown;  // last position with count_[0], if known
  std::vector<uint8_t> dirty_;        // per slot: changed since the last Publish()
  std::vector<uint32_t> dirty_list_;  // those slots, capacity cap_
  std::vector<Entry> table_;
  size_t table_mask_;
  std::unique_ptr<Published[]> pub_;
  std::atomic<uint32_t> pub_size_{0};
};

}  // namespace respscope::recorder
