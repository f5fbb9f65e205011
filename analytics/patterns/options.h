// Plain option structs for key patterns and sanitisation. The config module maps YAML onto
// them in the app; nothing here knows about YAML. Defaults match
// config/respscope.example.yaml.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace respscope::patterns {

// One `key_patterns.rules` entry: `match` is a glob, or a regex when it starts with "re:"
// (ECMAScript, whole-key match). First match wins; the key's pattern becomes `name`.
struct PatternRule {
  std::string match;
  std::string name;
};

struct PatternOptions {
  bool auto_patterns = true;      // collapse id-like segments to {id}; false: unmatched -> other
  size_t max_patterns = 1000;     // distinct pattern names per recorder shard; beyond -> "other"
  std::vector<PatternRule> rules;
};

enum class SanitizeMode { kHash, kRedact };

struct SanitizeOptions {
  // Keys matching one of these globs never leave the process as written.
  std::vector<std::string> sensitive_key_patterns = {"auth:*", "session:*", "token:*",
                                                     "password:*", "secret:*"};
  SanitizeMode mode = SanitizeMode::kHash;
  // HMAC-SHA256 key for kHash, raw bytes (the app reads it from the environment). Empty: a
  // random key is drawn when the rules are built, so hashes are stable only per process.
  std::string hash_key;
  bool capture_values = false;
  size_t max_value_size = 1024;   // bytes, for captured values (and quoted error text)
  size_t max_key_length = 200;    // bytes before the "…" marker
  std::vector<std::string> exclude_key_patterns;  // not observed per key at all
  double sample_rate = 1.0;       // per-key structures only; totals stay exact
};

}  // namespace respscope::patterns
