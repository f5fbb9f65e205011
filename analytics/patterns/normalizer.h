// Normalizer: key -> small integer pattern id, per recorder shard.
//
//   key --Classify--> sensitive? -> the sensitive glob itself ("session:*")
//                     rule match? -> the rule's name
//                     auto?       -> split on ':', id-like segments -> "{id}"
//                     else        -> "other"
//   pattern name --intern (transparent hash lookup, no allocation when known)--> id
//
// Ids are dense, start at 1, and are never reused or renamed; id 0 is "other", which also
// takes every new name once `max_patterns` names exist. Ids are local to one Normalizer
// (one per shard): merge across shards by name.
//
// Thread: not thread-safe; owned by one recorder shard. Steady state (no new pattern) does not
// allocate, except for regex rules (std::regex).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "analytics/patterns/key_rules.h"

namespace respscope::patterns {

class Normalizer {
 public:
  static constexpr uint32_t kOther = 0;
  static constexpr std::string_view kOtherName = "other";
  // Automatic names longer than this are cut and end in "…" (they are metric labels).
  static constexpr size_t kMaxNameLength = 128;

  Normalizer();

  // `cls` must come from rules.Classify(key) and must not be kExcluded. When `printable` is
  // given, it is set to true only if the key was scanned whole and is printable ASCII (the
  // automatic path sees every byte anyway; the caller can skip its own check).
  uint32_t PatternId(const KeyRules& rules, std::string_view key, KeyClass cls,
                     bool* printable = nullptr);

  std::string_view Name(uint32_t id) const { return names_[id]; }
  size_t size() const { return names_.size(); }  // including "other"

  // The automatic pattern of `key` (no rules), appended to `out` after clearing it. Returns
  // true if every byte of the key was scanned and is printable ASCII.
  static bool AutoPattern(std::string_view key, std::string& out);
  // True for a ':'-separated segment that looks like an identifier (see normalizer.cc).
  static bool LooksLikeId(std::string_view segment);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  uint32_t Intern(std::string_view name, size_t max_patterns);

  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> ids_;
  std::vector<std::string> names_;
  std::string buffer_;  // reused for the computed pattern; keeps its capacity
  uint32_t last_auto_ = kOther;  // id of the last automatic name interned (names_[id] is it)
};

}  // namespace respscope::patterns
