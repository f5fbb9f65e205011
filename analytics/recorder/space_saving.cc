#include "analytics/recorder/space_saving.h"

#include <bit>
#include <cstring>
#include <functional>

namespace respscope::recorder {

SpaceSaving::SpaceSaving(size_t capacity)
    : cap_(capacity < 1 ? 1 : capacity),
      slots_(cap_),
      heap_(cap_),
      table_(std::bit_ceil(cap_ * 2), -1),
      table_mask_(std::bit_ceil(cap_ * 2) - 1),
      pub_(new Published[cap_]) {}

int32_t SpaceSaving::Find(uint64_t hash, std::string_view key) const {
  for (size_t i = hash & table_mask_;; i = (i + 1) & table_mask_) {
    int32_t s = table_[i];
    if (s < 0) return -1;
    if (slots_[s].hash == hash && slots_[s].key.view() == key) return s;
  }
}

void SpaceSaving::TableInsert(uint32_t slot) {
  size_t i = slots_[slot].hash & table_mask_;
  while (table_[i] >= 0) i = (i + 1) & table_mask_;
  table_[i] = static_cast<int32_t>(slot);
}

void SpaceSaving::TableErase(uint32_t slot) {
  size_t i = slots_[slot].hash & table_mask_;
  while (table_[i] != static_cast<int32_t>(slot)) i = (i + 1) & table_mask_;
  // Backward-shift deletion keeps linear probing chains intact without tombstones.
  size_t j = i;
  while (true) {
    j = (j + 1) & table_mask_;
    if (table_[j] < 0) break;
    size_t home = slots_[table_[j]].hash & table_mask_;
    // Move table_[j] into the hole at i if its home is not in the cyclic range (i, j].
    bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      table_[i] = table_[j];
      i = j;
    }
  }
  table_[i] = -1;
}

void SpaceSaving::Swap(uint32_t a, uint32_t b) {
  std::swap(heap_[a], heap_[b]);
  slots_[heap_[a]].heap_pos = a;
  slots_[heap_[b]].heap_pos = b;
}

void SpaceSaving::SiftDown(uint32_t pos) {
  while (true) {
    uint32_t l = 2 * pos + 1, r = l + 1, m = pos;
    if (l < size_ && slots_[heap_[l]].count < slots_[heap_[m]].count) m = l;
    if (r < size_ && slots_[heap_[r]].count < slots_[heap_[m]].count) m = r;
    if (m == pos) return;
    Swap(pos, m);
    pos = m;
  }
}

void SpaceSaving::SiftUp(uint32_t pos) {
  while (pos > 0) {
    uint32_t parent = (pos - 1) / 2;
    if (slots_[heap_[parent]].count <= slots_[heap_[pos]].count) return;
    Swap(pos, parent);
    pos = parent;
  }
}

void SpaceSaving::PublishKey(uint32_t slot) {
  const Slot& s = slots_[slot];
  Published& p = pub_[slot];
  uint64_t words[kMaxStoredKey / 8] = {};
  std::memcpy(words, s.key.bytes, s.key.len);
  uint64_t g = p.gen.load(std::memory_order_relaxed);
  p.gen.store(g + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t i = 0; i < (s.key.len + 7u) / 8; ++i) p.words[i].store(words[i], std::memory_order_relaxed);
  p.len.store(s.key.len, std::memory_order_relaxed);
  p.tag.store(s.tag, std::memory_order_relaxed);
  p.count.store(s.count, std::memory_order_relaxed);
  p.error.store(s.error, std::memory_order_relaxed);
  p.gen.store(g + 2, std::memory_order_release);
}

void SpaceSaving::Offer(std::string_view key, uint32_t tag, uint64_t weight) {
  if (key.size() > kMaxStoredKey) {
    FixedText<kMaxStoredKey> cut;
    cut.Assign(key);
    return Offer(cut.view(), tag, weight);
  }
  uint64_t hash = std::hash<std::string_view>{}(key);
  int32_t found = Find(hash, key);
  if (found >= 0) {
    Slot& s = slots_[found];
    s.count += weight;
    // Count only grows within a generation: a plain store is enough for readers.
    pub_[found].count.store(s.count, std::memory_order_relaxed);
    SiftDown(s.heap_pos);
    return;
  }
  uint32_t slot;
  uint64_t base = 0;
  if (size_ < cap_) {
    slot = static_cast<uint32_t>(size_);
    heap_[size_] = slot;
    slots_[slot].heap_pos = static_cast<uint32_t>(size_);
    ++size_;
  } else {
    slot = heap_[0];
    base = slots_[slot].count;
    TableErase(slot);
  }
  Slot& s = slots_[slot];
  s.hash = hash;
  s.key.Assign(key);
  s.tag = tag;
  s.count = base + weight;
  s.error = base;
  TableInsert(slot);
  if (base == 0) {
    SiftUp(s.heap_pos);
  } else {
    SiftDown(s.heap_pos);
  }
  PublishKey(slot);
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
