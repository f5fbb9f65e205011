#include "analytics/recorder/space_saving.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>

#include "analytics/patterns/bytes.h"

namespace respscope::recorder {
namespace {

uint64_t Mix(uint64_t h, uint64_t w) {
  h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 29);
}

}  // namespace

// Keys here are short (typically 10 to 40 bytes): a word at a time, the tail read as one
// overlapping word, then a final avalanche (the table indexes by the low bits). Seeded per
// sketch, so that chosen keys cannot be made to collide across processes.
uint64_t SpaceSaving::Hash(std::string_view key) const {
  const char* p = key.data();
  size_t n = key.size();
  uint64_t h = seed_ ^ (n * 0x9e3779b97f4a7c15ULL);
  if (n >= 8) {
    for (; n > 8; p += 8, n -= 8) h = Mix(h, patterns::LoadU64(p));
    h = Mix(h, patterns::LoadU64(p + n - 8));  // the last 8 bytes, overlapping what came before
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    h = Mix(h, (uint64_t{a} << 32) | b);
  } else if (n > 0) {
    h = Mix(h, (uint64_t{static_cast<unsigned char>(p[0])} << 16) |
                   (uint64_t{static_cast<unsigned char>(p[n / 2])} << 8) |
                   static_cast<unsigned char>(p[n - 1]));
  }
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ULL;
  return h ^ (h >> 32);
}

SpaceSaving::SpaceSaving(size_t capacity, uint64_t seed)
    : cap_(capacity < 1 ? 1 : capacity),
      seed_(seed != 0 ? seed
                      : (uint64_t{std::random_device{}()} << 32 | std::random_device{}()) ^
                            reinterpret_cast<uintptr_t>(this)),
      rng_(seed_ | 1),
      hash_(cap_),
      error_(cap_),
      tag_(cap_),
      pos_(cap_),
      keys_(cap_),
      order_(cap_),
      count_(cap_),
      dirty_(cap_, 0),
      table_(std::bit_ceil(cap_ * 4), Entry{0, -1}),
      table_mask_(std::bit_ceil(cap_ * 4) - 1),
      pub_(new Published[cap_]) {
  dirty_list_.reserve(cap_);
}

int32_t SpaceSaving::Find(uint32_t h, std::string_view key, size_t* empty) const {
  for (size_t i = h & table_mask_;; i = (i + 1) & table_mask_) {
    const Entry e = table_[i];
    if (e.slot < 0) {
      *empty = i;
      return -1;
    }
    if (e.hash == h && patterns::SameBytes(keys_[e.slot].view(), key)) return e.slot;
  }
}

void SpaceSaving::TableErase(uint32_t hash, uint32_t slot) {
  size_t i = hash & table_mask_;
  while (table_[i].slot != static_cast<int32_t>(slot) || table_[i].hash != hash) {
    i = (i + 1) & table_mask_;
  }
  // Backward-shift deletion keeps linear probing chains intact without tombstones.
  size_t j = i;
  while (true) {
    j = (j + 1) & table_mask_;
    if (table_[j].slot < 0) break;
    size_t home = table_[j].hash & table_mask_;
    // Move table_[j] into the hole at i if its home is not in the cyclic range (i, j].
    bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      table_[i] = table_[j];
      i = j;
    }
  }
  table_[i].slot = -1;
}

void SpaceSaving::SwapPos(uint32_t a, uint32_t b) {
  std::swap(order_[a], order_[b]);
  std::swap(count_[a], count_[b]);
  pos_[order_[a]] = a;
  pos_[order_[b]] = b;
}

uint32_t SpaceSaving::RunEnd(uint32_t p) const {
  // Branchless upper_bound over (p, size_): run lengths are random, so a branchy search
  // mispredicts at nearly every step. Requires count_[p + 1] == count_[p].
  const uint64_t c = count_[p];
  const uint64_t* base = count_.data() + p + 1;
  size_t len = size_ - p - 1;
  while (len > 1) {
    size_t half = len / 2;
    base = base[half] <= c ? base + half : base;
    len -= half;
  }
  base += *base <= c;
  return static_cast<uint32_t>(base - count_.data() - 1);
}

void SpaceSaving::Bump(uint32_t slot, uint64_t weight) {
  uint32_t p = pos_[slot];
  const uint64_t c = count_[p];
  const uint64_t nc = c + weight;
  const uint32_t n = static_cast<uint32_t>(size_);
  const bool in_min_run = c == count_[0];
  // Move to the end of the run of equal counts (a swap among equals keeps the order). The
  // end of the minimum's run is cached: with many keys nearly every offer replaces the
  // minimum, and the run shrinks by one each time.
  uint32_t last = p;
  if (in_min_run) {
    if (min_end_ == kUnknown) min_end_ = p + 1 < n && count_[p + 1] == c ? RunEnd(p) : p;
    last = min_end_;
    min_end_ = last == 0 ? kUnknown : last - 1;
  } else if (p + 1 < n && count_[p + 1] == c) {
    last = RunEnd(p);
  }
  if (last != p) {
    SwapPos(p, last);
    p = last;
  }
  // Every later count is > c >= nc - weight; for weight 1 none is < nc and this is a no-op.
  while (p + 1 < n && count_[p + 1] < nc) {
    order_[p] = order_[p + 1];
    count_[p] = count_[p + 1];
    pos_[order_[p]] = p;
    ++p;
  }
  order_[p] = slot;
  count_[p] = nc;
  pos_[slot] = p;
}

void SpaceSaving::PublishKey(uint32_t slot) {
  const FixedText<kMaxStoredKey>& key = keys_[slot];
  Published& p = pub_[slot];
  const size_t full = key.len / 8, rest = key.len % 8;
  uint64_t g = p.gen.load(std::memory_order_relaxed);
  p.gen.store(g + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t i = 0; i < full; ++i) {
    uint64_t w;
    std::memcpy(&w, key.bytes + 8 * i, 8);
    p.words[i].store(w, std::memory_order_relaxed);
  }
  if (rest != 0) {
    uint64_t w = 0;
    std::memcpy(&w, key.bytes + 8 * full, rest);
    p.words[full].store(w, std::memory_order_relaxed);
  }
  p.len.store(key.len, std::memory_order_relaxed);
  p.tag.store(tag_[slot], std::memory_order_relaxed);
  p.count.store(count_[pos_[slot]], std::memory_order_relaxed);
  p.error.store(error_[slot], std::memory_order_relaxed);
  p.gen.store(g + 2, std::memory_order_release);
}

void SpaceSaving::OfferCut(std::string_view key, uint32_t tag, uint64_t weight) {
  FixedText<kMaxStoredKey> cut;
  cut.Assign(key);
  OfferHashed(cut.view(), Hash(cut.view()), tag, weight);
}

void SpaceSaving::OfferHashed(std::string_view key, uint64_t full_hash, uint32_t tag,
                              uint64_t weight) {
  const uint32_t hash = static_cast<uint32_t>(full_hash);
  size_t empty = 0;
  const int32_t found = Find(hash, key, &empty);
  if (found >= 0) {
    Bump(static_cast<uint32_t>(found), weight);
    MarkDirty(static_cast<uint32_t>(found));
    return;
  }
  uint32_t slot;
  uint64_t base = 0;
  if (size_ < cap_) {
    // Fill phase: insert at the left end with count 0 (every tracked count is >= 1), then
    // bump like any other slot.
    slot = static_cast<uint32_t>(size_);
    ++size_;
    for (uint32_t q = slot; q > 0; --q) {
      order_[q] = order_[q - 1];
      count_[q] = count_[q - 1];
      pos_[order_[q]] = q;
    }
    order_[0] = slot;
    count_[0] = 0;
    pos_[slot] = 0;
    min_end_ = 0;  // the new slot alone has the minimum count
    table_[empty] = Entry{hash, static_cast<int32_t>(slot)};
  } else {
    // Randomized admission (RAP, Ben Basat et al., 2017): a new key replaces the minimum
    // with probability w / (min + w), else the offer is dropped. The expected count of an
    // admitted key stays min + w, the churn of a long tail (most offers, each a replacement
    // in plain Space-Saving) becomes rare, and a one-off key seldom evicts a warm one.
    if (!Admit(count_[0], weight)) return;
    slot = order_[0];  // the minimum
    base = count_[0];
    // Insert where Find stopped, then erase the evicted key's entry: the erase's backward
    // shift keeps the new entry reachable (erasing first could open a hole before `empty` on
    // the new key's probe path). The erase matches hash and slot, so it finds the evicted
    // entry, or the new one when both hashes are equal, and then the two are the same.
    const uint32_t old_hash = hash_[slot];
    table_[empty] = Entry{hash, static_cast<int32_t>(slot)};
    TableErase(old_hash, slot);
  }
  hash_[slot] = hash;
  keys_[slot].Assign(key);
  tag_[slot] = tag;
  error_[slot] = base;
  Bump(slot, weight);
  MarkDirty(slot);
}

bool SpaceSaving::Admit(uint64_t min, uint64_t weight) {
  // xorshift64*: a uniform draw in [0, min + weight) by multiply-shift, no division.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  const uint64_t r = rng_ * 0x2545f4914f6cdd1dULL;
  const uint64_t draw = static_cast<uint64_t>((static_cast<unsigned __int128>(r) * (min + weight)) >> 64);
  return draw < weight;
}

void SpaceSaving::Publish() {
  for (uint32_t slot : dirty_list_) {
    PublishKey(slot);
    dirty_[slot] = 0;
  }
  dirty_list_.clear();
  if (pub_size_.load(std::memory_order_relaxed) < size_) {
    pub_size_.store(static_cast<uint32_t>(size_), std::memory_order_release);
  }
}

void SpaceSaving::ReadInto(std::vector<Item>& out, uint64_t& min_count) const {
  uint32_t n = pub_size_.load(std::memory_order_acquire);
  min_count = 0;
  uint64_t min_seen = ~uint64_t{0};
  for (uint32_t i = 0; i < n; ++i) {
    const Published& p = pub_[i];
    for (int attempt = 0; attempt < 64; ++attempt) {
      uint64_t g1 = p.gen.load(std::memory_order_acquire);
      if (g1 & 1) continue;
      uint64_t words[kMaxStoredKey / 8];
      uint32_t len = p.len.load(std::memory_order_relaxed);
      if (len > kMaxStoredKey) continue;
      for (size_t w = 0; w < (len + 7u) / 8; ++w) words[w] = p.words[w].load(std::memory_order_relaxed);
      Item item;
      item.tag = p.tag.load(std::memory_order_relaxed);
      item.count = p.count.load(std::memory_order_relaxed);
      item.error = p.error.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (p.gen.load(std::memory_order_relaxed) != g1) continue;
      item.key.assign(reinterpret_cast<const char*>(words), len);
      min_seen = std::min(min_seen, item.count);
      out.push_back(std::move(item));
      break;
    }
  }
  if (n == cap_ && min_seen != ~uint64_t{0}) min_count = min_seen;
}

}  // namespace respscope::recorder
