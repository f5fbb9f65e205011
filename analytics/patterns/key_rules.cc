#include "analytics/patterns/key_rules.h"

#include <openssl/rand.h>

#include <stdexcept>

#include "analytics/patterns/glob.h"

namespace respscope::patterns {

std::shared_ptr<const KeyRules> KeyRules::Build(PatternOptions patterns,
                                                SanitizeOptions sanitize) {
  if (!(sanitize.sample_rate >= 0.0 && sanitize.sample_rate <= 1.0)) {
    throw std::invalid_argument("sanitization.sample_rate must be within [0, 1]");
  }
  std::shared_ptr<KeyRules> r(new KeyRules());
  r->patterns_ = std::move(patterns);
  r->sanitize_ = std::move(sanitize);
  auto make_globs = [](const std::vector<std::string>& in, std::vector<Glob>& out) {
    out.resize(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i].empty()) throw std::invalid_argument("empty key glob");
      out[i].pattern = in[i];
      out[i].literal_prefix_len = GlobLiteralPrefix(out[i].pattern).size();
    }
  };
  make_globs(r->sanitize_.sensitive_key_patterns, r->sensitive_);
  make_globs(r->sanitize_.exclude_key_patterns, r->excluded_);
  for (const auto* globs : {&r->sensitive_, &r->excluded_}) {
    for (const Glob& g : *globs) {
      if (g.literal_prefix_len == 0) {
        r->maybe_classified_.fill(true);
      } else {
        r->maybe_classified_[static_cast<unsigned char>(g.pattern[0])] = true;
      }
    }
  }
  for (const auto& g : r->sanitize_.sensitive_key_patterns) {
    std::string_view p = GlobLiteralPrefix(g);
    while (!p.empty() && (p.back() == ':' || p.back() == '_' || p.back() == '-' ||
                          p.back() == '.' || p.back() == '/')) {
      p.remove_suffix(1);
    }
    r->sensitive_prefix_.emplace_back(p.empty() ? std::string_view("sensitive") : p);
  }
  r->rules_.resize(r->patterns_.rules.size());
  for (size_t i = 0; i < r->patterns_.rules.size(); ++i) {
    const PatternRule& in = r->patterns_.rules[i];
    if (in.match.empty() || in.name.empty()) {
      throw std::invalid_argument("key_patterns.rules entries need match and name");
    }
    Rule& out = r->rules_[i];
    if (in.match.rfind("re:", 0) == 0) {
      out.is_regex = true;
      try {
        out.regex = std::regex(in.match.substr(3), std::regex::ECMAScript | std::regex::optimize);
      } catch (const std::regex_error& e) {
        throw std::invalid_argument("invalid key pattern regex '" + in.match + "': " + e.what());
      }
    } else {
      out.glob.pattern = in.match;
      out.glob.literal_prefix_len = GlobLiteralPrefix(out.glob.pattern).size();
    }
  }
  r->hash_key_ = r->sanitize_.hash_key;
  if (r->hash_key_.empty()) {
    r->hash_key_.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(r->hash_key_.data()), 32) != 1) {
      throw std::runtime_error("RAND_bytes failed");
    }
  }
  return r;
}

bool KeyRules::Matches(const Glob& g, std::string_view key) {
  // First byte inline before the memcmp call: most keys differ from most globs right there.
  if (key.size() < g.literal_prefix_len ||
      (g.literal_prefix_len > 0 && key[0] != g.pattern[0]) ||
      key.compare(0, g.literal_prefix_len, g.pattern, 0, g.literal_prefix_len) != 0) {
    return false;
  }
  return GlobMatch(g.pattern, key);
}

KeyClass KeyRules::ClassifyByGlobs(std::string_view key) const {
  for (const Glob& g : excluded_) {
    if (Matches(g, key)) return {KeyClass::kExcluded, 0};
  }
  for (size_t i = 0; i < sensitive_.size(); ++i) {
    if (Matches(sensitive_[i], key)) return {KeyClass::kSensitive, static_cast<uint16_t>(i)};
  }
  return {};
}

int KeyRules::MatchRuleSlow(std::string_view key) const {
  for (size_t i = 0; i < rules_.size(); ++i) {
    const Rule& r = rules_[i];
    if (r.is_regex ? std::regex_match(key.begin(), key.end(), r.regex) : Matches(r.glob, key)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

RulesHub::RulesHub(std::shared_ptr<const KeyRules> initial) : rules_(std::move(initial)) {}

void RulesHub::Publish(std::shared_ptr<const KeyRules> rules) {
  std::lock_guard lock(mu_);
  rules_ = std::move(rules);
  version_.fetch_add(1, std::memory_order_relaxed);
}

std::shared_ptr<const KeyRules> RulesHub::Get() const {
  std::lock_guard lock(mu_);
  return rules_;
}

}  // namespace respscope::patterns
