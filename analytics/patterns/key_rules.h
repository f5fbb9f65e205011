// KeyRules: the compiled, immutable form of PatternOptions + SanitizeOptions, and RulesHub,
// which publishes a new KeyRules at run time (SIGHUP) to the recorder shards.
//
// Thread: a KeyRules is immutable once built and shared by all shards through
// shared_ptr<const KeyRules>. RulesHub::Publish may be called from any thread; shards poll
// RulesHub::Version() (one relaxed load) and call Get() (takes a mutex) only when it changed.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "analytics/patterns/options.h"

namespace respscope::patterns {

// What the rules say about one key. `index` is into sensitive() for kSensitive.
struct KeyClass {
  enum Kind : uint8_t { kNormal, kSensitive, kExcluded };
  Kind kind = kNormal;
  uint16_t index = 0;
};

class KeyRules {
 public:
  // Throws std::invalid_argument on an invalid regex, an empty rule, or a sample_rate
  // outside [0, 1] (start-up or reload boundary; the caller keeps the old rules).
  static std::shared_ptr<const KeyRules> Build(PatternOptions patterns,
                                               SanitizeOptions sanitize);

  // Exclusion is checked first, then sensitivity.
  KeyClass Classify(std::string_view key) const {
    if (!key.empty() && !maybe_classified_[static_cast<unsigned char>(key[0])]) return {};
    return ClassifyByGlobs(key);
  }

  // Index of the first user rule matching `key`, or -1. Glob rules never allocate; regex
  // rules go through std::regex (slower; prefer globs).
  int MatchRule(std::string_view key) const { return rules_.empty() ? -1 : MatchRuleSlow(key); }

  const PatternOptions& pattern_options() const { return patterns_; }
  const SanitizeOptions& sanitize_options() const { return sanitize_; }
  // The sensitive glob (also its pattern name) and its readable prefix, e.g. "session".
  const std::string& sensitive_glob(uint16_t i) const { return sanitize_.sensitive_key_patterns[i]; }
  std::string_view sensitive_prefix(uint16_t i) const { return sensitive_prefix_[i]; }
  const std::string& hash_key() const { return hash_key_; }
  const std::string& rule_name(int i) const { return patterns_.rules[i].name; }

 private:
  struct Glob {
    std::string pattern;
    size_t literal_prefix_len = 0;  // GlobLiteralPrefix(pattern).size(): cheap pre-filter
  };
  struct Rule {
    Glob glob;
    bool is_regex = false;
    std::regex regex;
  };
  KeyRules() = default;
  static bool Matches(const Glob& g, std::string_view key);
  KeyClass ClassifyByGlobs(std::string_view key) const;
  int MatchRuleSlow(std::string_view key) const;

  PatternOptions patterns_;
  SanitizeOptions sanitize_;
  std::vector<Glob> sensitive_, excluded_;
  // maybe_classified_[b]: some excluded or sensitive glob can match a key whose first byte is
  // b (every byte when a glob starts with a wildcard). Most keys start elsewhere: one load.
  std::array<bool, 256> maybe_classified_{};
  std::vector<std::string> sensitive_prefix_;
  std::vector<Rule> rules_;
  std::string hash_key_;
};

class RulesHub {
 public:
  explicit RulesHub(std::shared_ptr<const KeyRules> initial);
  void Publish(std::shared_ptr<const KeyRules> rules);
  std::shared_ptr<const KeyRules> Get() const;
  uint64_t Version() const { return version_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const KeyRules> rules_;
  std::atomic<uint64_t> version_{1};
};

}  // namespace respscope::patterns
